"""Grade many variant students of one notebook in one temporary nbgrader course."""
from __future__ import annotations

from pathlib import Path

from autograder.course import REPO, Course, read, solved

SOURCE = REPO / "source" / "week07"
RELEASE = REPO / "release" / "week07"


def source_nb(name: str):
    return read(SOURCE / name)


def release_nb(name: str):
    return read(RELEASE / name)


def reference_submission(name: str):
    """The release notebook with the reference answers filled in (a full-marks student)."""
    return solved(release_nb(name), source_nb(name))


class GradingRun:
    """One generated course; each variant is a separate student submitting one notebook."""

    def __init__(self, tmp: Path):
        self.course = Course(tmp)
        self.course.generate()

    def grade(self, student: str, name: str, nb) -> dict[str, tuple[float, float]]:
        """Autograde ``nb`` as ``student``'s ``name``; return {grade_id: (score, max)}."""
        self.course.submit(student, {name: nb})
        self.course.autograde(student)
        return self.course.scores(student)[Path(name).stem]


def total(scores: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())


def autograded_ids(name: str) -> set[str]:
    """grade_ids of the autograded test cells of a source notebook."""
    return {c.metadata["nbgrader"]["grade_id"] for c in source_nb(name).cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}


def lost(scores: dict[str, tuple[float, float]]) -> set[str]:
    """grade_ids of autograded cells that scored below their maximum."""
    return {gid for gid, (s, m) in scores.items() if s < m}
