"""A folder built once per test run and read by every pytest worker that asks for it.

Under xdist each worker is its own process with its own module fixtures, so two modules that need the
same expensive result (the demo class graded with forked kernels) would each build it. The first
worker to ask builds it under a file lock in the run's shared temporary folder; a worker that asks
meanwhile waits for it, one that asks later reads it. A build that raises leaves nothing behind: the
next asker builds again (and fails in its own test, with its own traceback)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

DONE = ".built"


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This run's folder seen by all its workers (a worker's own base folder lies inside it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``<run folder>/shared/<name>``, made by ``build(folder)`` the first time any worker asks."""
    shared = run_folder(tmp_path_factory) / "shared"
    shared.mkdir(exist_ok=True)
    target = shared / name
    with FileLock(str(shared / f"{name}.lock")):
        if not (target / DONE).exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / DONE).touch()
    return target
