"""nbgrader preprocessor: put the grader's probe cells into the notebook just before it runs.

It sits first in ``grading.autograde_preprocessors`` (after nbgrader has restored the instructor
cells from the gradebook, before Execute), so each probe runs right after its test cell, in the
student's sandboxed kernel. The probes' sources are made per student (``probes.probe_cell``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict

from . import probes

if TYPE_CHECKING:
    from nbformat import NotebookNode


class InsertProbes(NbGraderPreprocessor):
    probes = Dict(help="grade_id → probe cell source for the notebook being graded").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        probes.insert_probes(nb, dict(self.probes))
        return nb, resources
