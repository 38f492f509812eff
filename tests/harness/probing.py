"""Run a notebook with the grader's probes in a plain kernel and return the verdicts.

A quick loop for developing checks (no nbgrader, no sandbox); the grading tests go through the
real pipeline (``autograder.grading``)."""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from nbclient import NotebookClient

from autograder import probes


def probe_verdicts(nb, notebook: str, *, student: str = "student", seed: str = "dev",
                   timeout: int = 60) -> dict[str, probes.Verdict]:
    checks = probes.checks_for(Path(notebook).stem)
    cases = probes.choose_cases(checks, seed, student, Path(notebook).stem)
    nb = copy.deepcopy(nb)
    probes.insert_probes(nb, {gid: probes.probe_cell(checks[gid], cases[gid]) for gid in checks})
    with tempfile.TemporaryDirectory() as cwd:
        NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": cwd}}).execute()
    return probes.decide(checks, cases, probes.read_records(nb))
