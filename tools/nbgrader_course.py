"""A throwaway nbgrader course driven through nbgrader's Python API, and the submissions the tools
and the tests build from source/ (a student who wrote the reference answers, or one variant of them).

Used by the instructor's `make release`, by the benchmarks (stock `nbgrader autograde`) and by the
tests. Everything goes through NbGraderAPI and the gradebook, never through printed output:
`nbgrader validate` and the CLI exit 0 even on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograder.cells import grade_id_of, is_solution, strip_solution_markers
from autograder.course import Layout, course_config
from autograder.gradebook import read_scores
from autograder.results import Scores
from tools import CHECKOUT

SUBMITTED_AT = "2026-11-23 12:00:00.000000 UTC"  # every test submission's timestamp.txt: on time, fixed


class NbgraderStepFailed(RuntimeError):
    """An nbgrader step reported failure; carries nbgrader's own log."""


def _checked(result: dict, step: str) -> dict:
    if not result.get("success"):
        raise NbgraderStepFailed(f"nbgrader {step} failed:\n{result.get('error', '')}\n{result.get('log', '')}")
    return result


class Course:
    """A course folder in nbgrader's standard layout (source/ release/ submitted/ autograded/ feedback/),
    its source/ copied from ``layout``'s (default: the course this checkout holds)."""

    def __init__(self, root: Path, layout: Layout | None = None, timeout: int = 60, assignment: str | None = None):
        self.layout = layout or Layout.load(CHECKOUT)
        self.assignment = assignment or self.layout.assignment
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "source").exists():
            shutil.copytree(
                self.layout.root / self.layout.source_folder,
                self.root / "source",
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
        self.config = course_config(self.root, timeout, self.layout.course_id)
        self._api = None

    @property
    def api(self):
        if self._api is None:
            from nbgrader.apps import NbGraderAPI
            from nbgrader.coursedir import CourseDirectory

            self._api = NbGraderAPI(coursedir=CourseDirectory(config=self.config), config=self.config)
        return self._api

    @property
    def release_dir(self) -> Path:
        return self.root / "release" / self.assignment

    def generate(self) -> Path:
        _checked(self.api.generate_assignment(self.assignment, force=True, create=True), "generate_assignment")
        return self.release_dir

    def submit(self, student: str, notebooks: dict) -> Path:
        """Place ``{release file name: notebook node}`` as the student's submission."""
        folder = self.root / "submitted" / student / self.assignment
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, str(folder / name))
        (folder / "timestamp.txt").write_text(SUBMITTED_AT)
        return folder

    def autograde(self, student: str) -> dict:
        return _checked(self.api.autograde(self.assignment, student, force=True, create=True), "autograde")

    def scores(self, student: str) -> Scores:
        """{notebook: {grade_id: CellScore}} for one student's autograded submission (the grader's reader)."""
        return read_scores(self.config.CourseDirectory.db_url, self.assignment, student)

    def feedback(self, student: str) -> dict[str, str]:
        _checked(self.api.generate_feedback(self.assignment, student, force=True), "generate_feedback")
        folder = self.root / "feedback" / student / self.assignment
        return {p.stem: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.html"))}

    def export_csv(self, path: Path | None = None) -> str:
        from nbgrader.api import Gradebook
        from nbgrader.plugins.export import CsvExportPlugin

        path = Path(path or self.root / "grades.csv")
        plugin = CsvExportPlugin(config=self.config)
        plugin.to = str(path)
        with Gradebook(self.config.CourseDirectory.db_url) as gb:
            plugin.export(gb)
        return path.read_text()


def solution_cells(nb) -> dict[str, nbformat.NotebookNode]:
    return {grade_id_of(c): c for c in nb.cells if is_solution(c) and grade_id_of(c)}


def solved(release_nb, source_nb):
    """What a student who wrote the reference solutions would submit: the release notebook
    with every answer cell filled from source/ (markers removed, no hidden tests)."""
    nb = _copy(release_nb)
    answers = solution_cells(source_nb)
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if is_solution(cell) and grade_id in answers:
            cell.source = strip_solution_markers(answers[grade_id].source)
    return nb


def with_answer(nb, grade_id: str, new_source: str):
    """A copy of ``nb`` whose answer cell ``grade_id`` holds ``new_source`` (a student's variant)."""
    nb = _copy(nb)
    for cell in nb.cells:
        if grade_id_of(cell) == grade_id:
            cell.source = new_source
            return nb
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def _copy(nb):
    return nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))


def read(path: Path):
    return nbformat.read(str(path), as_version=4)
