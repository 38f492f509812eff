from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
