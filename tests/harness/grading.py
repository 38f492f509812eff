"""Grade many variant students of one notebook in one temporary nbgrader course."""

from __future__ import annotations

from pathlib import Path

from autograder.cells import cell_kind, grade_id_of, points
from autograder.results import CellScore
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
    """Grades variant students of one notebook: {grade_id: CellScore} of its autograded cells.

    Scores are the hidden checks' verdicts (autograder.probes): points when the verdict passes. Each
    student runs in a kernel of its own from ``kernels`` (tests.harness.probing.ProbeKernels: forked
    from one zygote into the grader's box); None: a fresh kernel per student."""

    def __init__(self, tmp: Path, kernels=None):
        self.tmp = Path(tmp)
        self.kernels = kernels

    def grade(self, student: str, name: str, nb) -> dict[str, CellScore]:
        from tests.harness.probing import probe_verdicts

        worth = {grade_id_of(c): points(c) for c in source_nb(name).cells if cell_kind(c) == "test"}
        verdicts = probe_verdicts(nb, name, student=student, kernels=self.kernels)
        self.verdicts = verdicts  # the last run's messages, for assertion texts
        return {
            gid: CellScore(worth[gid] if v.passed else 0.0, worth[gid], cell_type="code") for gid, v in verdicts.items()
        }


def total(scores: dict[str, CellScore]) -> tuple[float, float]:
    """(points scored, points possible)."""
    return sum(c.earned for c in scores.values()), sum(c.max_score for c in scores.values())


def autograded_ids(name: str) -> set[str]:
    """grade_ids of the autograded test cells of a source notebook."""
    return {grade_id_of(c) for c in source_nb(name).cells if cell_kind(c) == "test"}


def lost(scores: dict[str, CellScore]) -> set[str]:
    """grade_ids of autograded cells that scored below their maximum."""
    return {gid for gid, c in scores.items() if c.earned < c.max_score}
