"""Regenerate release/ from source/ with nbgrader (instructor's `make release`).

nbgrader runs in a temporary course so the repo gets no gradebook; the generated notebooks
are copied into release/ exactly as nbgrader wrote them."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from autograder.course import ASSIGNMENT, REPO, Course


def generate_release(workdir: Path) -> Path:
    """Run nbgrader generate_assignment on a copy of source/; return the generated folder."""
    return Course(workdir).generate()


def main() -> int:
    target = REPO / "release" / ASSIGNMENT
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate_release(Path(tmp))
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(generated, target)
    names = sorted(p.name for p in target.iterdir())
    print(f"release/{ASSIGNMENT}: regenerated {len(names)} file(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
