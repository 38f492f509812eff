import os
import sys
from pathlib import Path

import pytest

# One BLAS/OpenMP pool per pytest worker, sized so the workers together use each core once. Every
# worker runs torch itself or a kernel it starts (lessons, Colab-like runs, JupyterLab); with torch's
# default (one thread per core in every process) two workers on two cores oversubscribe, and
# MobileNetV2's hundreds of small parallel regions per step then wait at barriers on a descheduled
# thread: lesson 3 measured 130 s instead of 50 s that way. The kernels inherit it through the
# environment. A value the caller set is kept; results do not depend on it (no test compares
# numbers computed under different thread counts).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, _CORES // _WORKERS)))
    if "torch" in sys.modules:  # a plugin imported it before this file: tell the running pool too
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

from tools import CHECKOUT as REPO  # noqa: E402
from tools import LAYOUT  # noqa: E402  (the course's facts, course.toml, for every test module)

__all__ = ["HYMENOPTERA", "LAYOUT", "REPO", "SHARED"]

SHARED = REPO.parent / "shared"
HYMENOPTERA = SHARED / "data" / "hymenoptera_data"


# The longest modules first. Under `--dist loadfile` a module is one unit of work and xdist hands the
# units out in collection order (the Makefile turns off its reordering by test count, which put the
# demo class last: the run then waited minutes on one worker while the others had nothing left).
# Longest first, the short modules fill the end. A module not named here keeps its place after these.
LONGEST_FIRST = (
    "tests/grader/test_demo_class_kernel_modes.py",  # the demo class graded with fresh kernels
    "tests/grader/test_demo_class.py",  # … and with forked ones
    "tests/browser/test_lessons_in_browser.py",
    "tests/grader/test_dask_grading.py",
    "tests/exercises/test_ex78.py",
    "tests/grader/test_attacks.py",
    "tests/test_colab_standalone.py",
    "tests/exercises/test_ex56.py",
    "tests/exercises/test_ex12.py",
    "tests/grader/test_bad_submissions.py",
    "tests/grader/test_postgres_gradebook.py",
    "tests/grader/test_other_course.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hymenoptera() -> Path:
    """The real ants/bees images beside the repo; tests that need them skip without them."""
    if not (HYMENOPTERA / "train").is_dir():
        pytest.skip(f"real dataset not found at {HYMENOPTERA} (../shared is absent)")
    return HYMENOPTERA
