"""Bring the throwaway courses' results into the course folder, single-threaded.

The course gradebook (``<course>/gradebook.db``) gets every student's autograded scores, so
``nbgrader formgrader`` can be used for the manually graded answers; the autograded notebooks and
the feedback pages are copied to nbgrader's usual places. Manual scores already entered are kept."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from .grading import Template, cells_digest


class StaleGradebook(RuntimeError):
    pass


def course_gradebook(course: Path, template: Template, fresh: bool = False) -> Path:
    path = Path(course) / "gradebook.db"
    if path.exists() and not fresh and cells_digest(path) != template.cells_digest:
        raise StaleGradebook(f"{path} was made from a different version of source/ (tests or points changed). "
                             "Re-run with --fresh-gradebook (manual grades in it will be lost; back it up first).")
    if fresh or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(template.gradebook, path)
    return path


def merge_student(course: Path, gradebook: Path, template: Template, result: dict, work: Path,
                  timestamp: str | None = None) -> None:
    from nbgrader.api import Gradebook

    student = result["student"]
    src = Path(work) / student
    for kind in ("autograded", "feedback"):
        folder = src / kind / student / template.assignment
        dest = Path(course) / kind / student / template.assignment
        if dest.exists():
            shutil.rmtree(dest)
        if folder.exists():
            shutil.copytree(folder, dest)
    scores = result.get("scores") or {}
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{gradebook}") as gb:
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy autoflush chatter
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(template.assignment, student, **(
            {"timestamp": timestamp} if timestamp else {}))
        for nb in sub.notebooks:
            graded = scores.get(nb.name, {})
            failed = result.get("notebooks", {}).get(nb.name, {}).get("status") == "failed"
            answers = {c.name for c in nb.notebook.solution_cells}
            for grade in nb.grades:
                got = graded.get(grade.name)
                if got is not None and not failed:
                    grade.auto_score, grade.needs_manual_grade = got[0], bool(got[2])
                elif grade.name in answers:      # a written answer: a human grades it
                    grade.auto_score, grade.needs_manual_grade = None, True
                else:                             # a test that never ran
                    grade.auto_score, grade.needs_manual_grade = 0, bool(failed)
        gb.db.commit()
