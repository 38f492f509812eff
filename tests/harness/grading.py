"""Grade many variant students of one notebook in one temporary nbgrader course."""
from __future__ import annotations

from pathlib import Path

from autograder.cells import cell_kind, grade_id_of, points
from tools import LAYOUT
from tools.nbgrader_course import read, solved

SOURCE = LAYOUT.source()
RELEASE = LAYOUT.release()


def source_nb(name: str):
    return read(SOURCE / name)


def release_nb(name: str):
    return read(RELEASE / name)


def reference_submission(name: str):
    """The release notebook with the reference answers filled in (a full-marks student)."""
    return solved(release_nb(name), source_nb(name))


class GradingRun:
    """Grades variant students of one notebook: {grade_id: (score, max)} of its autograded cells.

    Scores are the hidden checks' verdicts (autograder.probes): points when the verdict passes."""

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)

    def grade(self, student: str, name: str, nb) -> dict[str, tuple[float, float]]:
        from tests.harness.probing import probe_verdicts

        worth = {grade_id_of(c): points(c) for c in source_nb(name).cells if cell_kind(c) == "test"}
        verdicts = probe_verdicts(nb, name, student=student)
        self.verdicts = verdicts          # the last run's messages, for assertion texts
        return {gid: (worth[gid] if v.passed else 0.0, worth[gid]) for gid, v in verdicts.items()}


def total(scores: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(s for s, _ in scores.values()), sum(m for _, m in scores.values())


def autograded_ids(name: str) -> set[str]:
    """grade_ids of the autograded test cells of a source notebook."""
    return {grade_id_of(c) for c in source_nb(name).cells if cell_kind(c) == "test"}


def lost(scores: dict[str, tuple[float, float]]) -> set[str]:
    """grade_ids of autograded cells that scored below their maximum."""
    return {gid for gid, (s, m) in scores.items() if s < m}
