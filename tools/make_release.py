"""Regenerate release/ from source/ with nbgrader (instructor's `make release`), every assignment
course.toml lists (or the ones named).

    python -m tools.make_release [--course DIR] [ASSIGNMENT …]

nbgrader runs in a temporary course so the repo gets no gradebook; the generated notebooks
are copied into release/ exactly as nbgrader wrote them."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from autograder.course import Layout
from tools import LAYOUT
from tools.nbgrader_course import Course


def generate_release(workdir: Path, layout: Layout = LAYOUT, assignment: str | None = None) -> Path:
    """Run nbgrader generate_assignment on a copy of source/; return the generated folder."""
    return Course(workdir, layout, assignment=assignment).generate()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.make_release", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--course", default=None, help="the course's folder (with course.toml; default: this checkout)")
    ap.add_argument("assignments", nargs="*", help="default: every assignment course.toml lists")
    args = ap.parse_args(argv)
    layout = Layout.load(args.course) if args.course else LAYOUT
    for assignment in args.assignments or layout.assignments:
        target = layout.release(assignment)
        with tempfile.TemporaryDirectory() as tmp:
            generated = generate_release(Path(tmp), layout, assignment)
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(generated, target)
        names = sorted(p.name for p in target.iterdir())
        print(f"{target.relative_to(layout.root)}: regenerated {len(names)} file(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
