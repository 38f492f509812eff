"""What the grader needs to know about an assignment, read from release/ (and source/) at run time.

Nothing here is hard-coded: notebook names, grade_ids, points and the exercise each cell belongs
to (grade_id prefix ``ex{N}_``) all come from the nbgrader metadata of the release notebooks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# the cell vocabulary lives in cells.py; these names stay importable from here (course.py, cli.py,
# demo_builder.py and grading.py read them from this module)
from .cells import cell_kind as cell_kind
from .cells import grade_id_of, hidden_blocks, is_solution, points
from .cells import nbgrader_meta as nbgrader_meta
from .cells import without_hidden_blocks as without_hidden_blocks

EXERCISE_PREFIX = re.compile(r"^ex(\d+)_")


def exercise_of(grade_id: str) -> str:
    m = EXERCISE_PREFIX.match(grade_id or "")
    return f"ex{m.group(1)}" if m else "other"


@dataclass
class ReleaseCell:
    grade_id: str
    kind: str  # answer | manual | test | task | readonly
    cell_type: str  # code | markdown
    source: str  # release text (no solutions, no hidden tests)
    points: float
    index: int  # position in the release notebook
    cell: dict = field(repr=False)

    @property
    def exercise(self) -> str:
        return exercise_of(self.grade_id)

    @property
    def autograded(self) -> bool:
        return self.kind == "test"


@dataclass
class ReleaseNotebook:
    name: str  # stem, e.g. ex12_skip_connections
    path: Path
    nb: object = field(repr=False)
    cells: list[ReleaseCell] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def graded(self) -> dict[str, ReleaseCell]:
        return {c.grade_id: c for c in self.cells}

    @property
    def exercises(self) -> set[int]:
        return {
            int(c.exercise[2:])
            for c in self.cells
            if c.exercise != "other" and c.kind in ("answer", "manual", "test", "task")
        }

    def points(self, autograded_only: bool = True) -> float:
        return sum(
            c.points for c in self.cells if c.kind == "test" or (not autograded_only and c.kind in ("manual", "task"))
        )


@dataclass
class Assignment:
    name: str
    release_dir: Path
    source_dir: Path | None
    notebooks: dict[str, ReleaseNotebook]

    @classmethod
    def load(cls, release_dir: Path, source_dir: Path | None = None) -> Assignment:
        release_dir = Path(release_dir)
        notebooks = {}
        for path in sorted(release_dir.glob("*.ipynb")):
            nb = nbformat.read(str(path), as_version=4)
            rnb = ReleaseNotebook(path.stem, path, nb)
            for i, cell in enumerate(nb.cells):
                if not grade_id_of(cell):
                    continue
                rnb.cells.append(
                    ReleaseCell(grade_id_of(cell), cell_kind(cell), cell.cell_type, cell.source, points(cell), i, cell)
                )
            notebooks[rnb.name] = rnb
        if not notebooks:
            raise FileNotFoundError(f"no release notebooks in {release_dir}: run `make release` first")
        return cls(release_dir.name, release_dir, Path(source_dir) if source_dir else None, notebooks)

    def exercises(self) -> list[str]:
        found = {c.exercise for nb in self.notebooks.values() for c in nb.cells if c.kind == "test"}
        return sorted(found, key=lambda e: (e == "other", int(e[2:]) if e != "other" else 0))

    def max_points(self) -> dict[str, float]:
        """Autograded points per exercise."""
        out: dict[str, float] = {}
        for nb in self.notebooks.values():
            for c in nb.cells:
                if c.kind == "test":
                    out[c.exercise] = out.get(c.exercise, 0.0) + c.points
        return out

    def manual_points(self) -> float:
        return sum(c.points for nb in self.notebooks.values() for c in nb.cells if c.kind in ("manual", "task"))

    def notebook_for_exercises(self, numbers: set[int]) -> str | None:
        """The notebook that holds exactly these exercises, or the only one holding all of them."""
        exact = [n for n, nb in self.notebooks.items() if nb.exercises == numbers]
        if len(exact) == 1:
            return exact[0]
        holding = [n for n, nb in self.notebooks.items() if numbers and numbers <= nb.exercises]
        return holding[0] if len(holding) == 1 else None

    def secret_lines(self, checks_dir: Path | None = None) -> set[str]:
        """Distinctive lines no student may receive: hidden tests and reference solutions in source/,
        and the grader's checks (verdict side)."""
        from .probes import verdict_lines

        lines = verdict_lines(checks_dir)
        if not self.source_dir:
            return lines
        release_text = "\n".join(c.source for nb in self.notebooks.values() for c in nb.cells)
        for path in sorted(self.source_dir.glob("*.ipynb")):
            for cell in nbformat.read(str(path), as_version=4).cells:
                blocks = hidden_blocks(cell.source)
                if is_solution(cell) and cell.cell_type == "code":
                    blocks.append(cell.source)
                for block in blocks:
                    for ln in block.splitlines():
                        s = ln.strip()
                        # imports say nothing about a test; only lines that do something count, and
                        # only distinctive ones (`raise ValueError(` would match any page that says so)
                        if (
                            len(re.sub(r"\s+", "", s)) >= 20
                            and not s.startswith(("#", "import ", "from "))
                            and s not in release_text
                        ):
                            lines.add(s)
        return lines
