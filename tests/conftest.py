from pathlib import Path

import pytest

from tools import CHECKOUT as REPO
from tools import LAYOUT  # the course's facts (course.toml), for every test module

__all__ = ["LAYOUT", "REPO", "SHARED", "HYMENOPTERA"]

SHARED = REPO.parent / "shared"
HYMENOPTERA = SHARED / "data" / "hymenoptera_data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def hymenoptera() -> Path:
    """The real ants/bees images beside the repo; tests that need them skip without them."""
    if not (HYMENOPTERA / "train").is_dir():
        pytest.skip(f"real dataset not found at {HYMENOPTERA} (../shared is absent)")
    return HYMENOPTERA
