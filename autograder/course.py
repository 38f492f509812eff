"""The course's facts (``course.toml``) and the nbgrader configuration every grading course uses.

``course.toml`` sits at the course's root and names the course id, its assignments and its folders.
Everything that needs one of those facts — the grader, ``nbgrader_config.py``, the tools and the
tests — asks ``Layout`` instead of writing it down, so the kit grades another course or another
week with no code change."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from traitlets.config import Config

FACTS_FILE = "course.toml"
ENV_COURSE = "COURSE_GRADE_COURSE"  # where an installed course-grade looks when no --course is given


class CourseNotFound(SystemExit):
    """No course.toml where one was looked for; says where and what to do (exits the CLI cleanly)."""


@dataclass(frozen=True)
class Layout:
    """One course: its root folder and what course.toml says about it."""

    root: Path
    course_id: str
    assignments: tuple[str, ...]
    source_folder: str = "source"
    release_folder: str = "release"
    lessons_folder: str = "notebooks"
    work_folder: str = "autograder"
    checks_folder: str = ""
    demo_folder: str = ""

    @classmethod
    def load(cls, course: str | Path | None = None) -> Layout:
        """The course at ``course`` (a folder with course.toml, or the file itself); by default the one
        named by $COURSE_GRADE_COURSE, else the working folder or the nearest one above it."""
        path = _facts_file(course)
        try:
            with open(path, "rb") as f:
                facts = tomllib.load(f).get("course", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CourseNotFound(f"course-grade: cannot read {path}: {exc}") from None
        missing = [k for k in ("id", "assignments") if not facts.get(k)]
        if missing:
            raise CourseNotFound(f"course-grade: {path} has no {' or '.join(missing)} under [course]")
        names = {
            "source": "source_folder",
            "release": "release_folder",
            "lessons": "lessons_folder",
            "work": "work_folder",
            "checks": "checks_folder",
            "demo": "demo_folder",
        }
        return cls(
            root=path.parent,
            course_id=str(facts["id"]),
            assignments=tuple(facts["assignments"]),
            **{field: str(facts[key]) for key, field in names.items() if key in facts},
        )

    @property
    def assignment(self) -> str:
        """The default assignment: the first one course.toml lists."""
        return self.assignments[0]

    def source(self, assignment: str | None = None) -> Path:
        return self.root / self.source_folder / (assignment or self.assignment)

    def release(self, assignment: str | None = None) -> Path:
        return self.root / self.release_folder / (assignment or self.assignment)

    @property
    def lessons(self) -> Path:
        return self.root / self.lessons_folder

    @property
    def work(self) -> Path:
        return self.root / self.work_folder

    @property
    def checks(self) -> Path | None:
        """The hidden checks' folder; None: the checks shipped with the grader (autograder/checks)."""
        return self.root / self.checks_folder if self.checks_folder else None

    @property
    def demo(self) -> Path | None:
        return self.root / self.demo_folder if self.demo_folder else None


def _facts_file(course: str | Path | None) -> Path:
    if course is None and os.environ.get(ENV_COURSE):
        course = os.environ[ENV_COURSE]
    if course is not None:
        path = Path(course).expanduser().resolve()
        path = path if path.is_file() else path / FACTS_FILE
        if not path.is_file():
            raise CourseNotFound(
                f"course-grade: no {FACTS_FILE} in {path.parent}: give --course the folder "
                f"that holds the course's {FACTS_FILE} (with source/ and release/ beside it)"
            )
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / FACTS_FILE).is_file():
            return folder / FACTS_FILE
    raise CourseNotFound(
        f"course-grade: no {FACTS_FILE} in {here} or any folder above it: run it inside the "
        f"course's folder or give --course DIR (or set ${ENV_COURSE})"
    )


def course_config(root: Path, timeout: int = 60, course_id: str = "") -> Config:
    """nbgrader's configuration for a course folder at ``root`` with an SQLite gradebook in it."""
    from .gradebook import ask_alembic_once

    ask_alembic_once()  # every nbgrader API this process makes comes through here
    c = Config()
    c.CourseDirectory.root = str(root)
    if course_id:
        c.CourseDirectory.course_id = course_id
    c.CourseDirectory.db_url = f"sqlite:///{Path(root) / 'gradebook.db'}"
    c.ExecutePreprocessor.timeout = timeout
    c.ExecutePreprocessor.shutdown_kernel = "immediate"
    return c
