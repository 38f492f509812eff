"""The demo class graded by course-grade, as the demo-class tests read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import cli
from autograder.results import results_from_dict
from tests.harness.once import built_once

SEED = "demo-both-modes"  # the same grader inputs in both runs: any score difference is the kernels'
# One demo student's answer loops forever and is stopped by the cell timeout; the loop holds a core
# for the whole timeout in each run. 20 s is still 60 times the longest cell of the class (0.32 s).
CELL_TIMEOUT_S = 20


def grade(course: Path, kernels: str, *extra: str) -> None:
    args = ["demo", "--course-dir", str(course), "--probe-seed", SEED, "--kernel-start", kernels]
    assert cli.main([*args, "--timeout", str(CELL_TIMEOUT_S), *extra]) == 0


def graded_with_forked_kernels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The course folder of the demo class graded with kernels forked from the zygote (the default):
    graded once per test run, shared by the modules that read it (tests.harness.once)."""
    return built_once(tmp_path_factory, "demo-forked", lambda folder: grade(folder / "course", "fork")) / "course"


def cell_scores(course: Path, kernels: str) -> dict:
    """Scores by student, notebook and cell; every notebook that ran must have had ``kernels`` kernels."""
    results = results_from_dict(json.loads((course / "exports" / "results.json").read_text()))
    started = {e.kernel for r in results.values() for e in r.notebooks.values() if e.kernel}
    assert started == {kernels}, started
    return {student: r.scores for student, r in results.items()}
