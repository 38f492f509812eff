"""Bring the throwaway courses' results into the course folder, single-threaded.

The course gradebook (``<course>/gradebook.db``) gets every student's autograded scores, so
``nbgrader formgrader`` can be used for the manually graded answers; the autograded notebooks and
the feedback pages are copied to nbgrader's usual places. Manual scores already entered are kept."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

from .gradebook import cells_digest, has_assignment, opened, reset, url_of
from .grading import Template, student_root
from .results import StudentResult


class StaleGradebook(RuntimeError):
    pass


def course_gradebook(course: Path, template: Template, fresh: bool = False, db_url: str = "") -> str:
    """The course gradebook's URL, holding this assignment: ``<course>/gradebook.db`` (SQLite) by
    default, or the database at ``db_url`` (e.g. PostgreSQL, shared by several graders)."""
    stale = (
        "was made from a different version of source/ (tests or points changed). Re-run with "
        "--fresh-gradebook (manual grades in it will be lost; back it up first)."
    )
    if not db_url:
        path = Path(course) / "gradebook.db"
        if path.exists() and not fresh and cells_digest(path) != template.cells_digest:
            raise StaleGradebook(f"{path} {stale}")
        if fresh or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(template.gradebook, path)
        return url_of(path)
    if fresh:
        reset(db_url)
    if has_assignment(db_url, template.assignment):
        if cells_digest(db_url) != template.cells_digest:
            raise StaleGradebook(f"the gradebook at {safe_url(db_url)} {stale}")
        return db_url
    # an empty database: nbgrader itself writes the assignment into it, from the template's source
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .course import course_config

    config = course_config(template.root, course_id=template.course_id)
    config.CourseDirectory.db_url = db_url
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        result = api.generate_assignment(template.assignment, force=True, create=True)
    if not result.get("success"):
        raise RuntimeError(f"nbgrader could not write the assignment into {safe_url(db_url)}:\n{result.get('log')}")
    if cells_digest(db_url) != template.cells_digest:
        raise StaleGradebook(f"the gradebook at {safe_url(db_url)} holds other assignments or cells than source/")
    return db_url


def safe_url(url: str) -> str:
    """A database URL fit to print: the password, if any, masked."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def merge_student(
    course: Path, gradebook: str, template: Template, result: StudentResult, work: Path, timestamp: str | None = None
) -> None:
    """One student's files into the course folder and scores into the course gradebook: a failed
    notebook's tests score 0 (flagged for a human), written answers wait for one."""
    student = result.student
    src = student_root(work, student)
    for kind in ("autograded", "feedback"):
        folder = src / kind / student / template.assignment
        dest = Path(course) / kind / student / template.assignment
        if dest.exists():
            shutil.rmtree(dest)
        if folder.exists():
            shutil.copytree(folder, dest)
    with opened(gradebook) as gb:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(
            template.assignment, student, **({"timestamp": timestamp} if timestamp else {})
        )
        for nb in sub.notebooks:
            graded = result.scores.get(nb.name, {})
            entry = result.notebooks.get(nb.name)
            failed = entry is not None and entry.failed
            answers = {c.name for c in nb.notebook.solution_cells}
            for grade in nb.grades:
                got = graded.get(grade.name)
                if got is not None and not failed:
                    grade.auto_score, grade.needs_manual_grade = got.score, got.needs_manual
                elif grade.name in answers:  # a written answer: a human grades it
                    grade.auto_score, grade.needs_manual_grade = None, True
                else:  # a test that never ran
                    grade.auto_score, grade.needs_manual_grade = 0, bool(failed)
        gb.db.commit()
