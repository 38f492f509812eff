"""What grading produced, as typed objects: one vocabulary for every producer and every consumer.

    StudentResult                      one student's grading (grading.grade_student, a worker that died,
    ├── notebooks: {name: NotebookResult}    a Dask task that failed)
    │       status, reason, seconds, kernel, guard: [GuardEvent], notes, verdicts: {grade_id: Verdict},
    │       verdict_seconds, tamper_flags
    ├── scores: {notebook: {grade_id: CellScore}}   what the gradebook says (gradebook.read_scores)
    ├── gradebook_intact, feedback: FeedbackResult, error, trace, started, seconds

A result crosses process boundaries: a forked worker leaves it as a JSON file for the parent, a Dask
task returns it as plain data, and ``exports/results.json`` keeps it between ``course-grade grade``,
``feedback`` and ``export``. So each type has ``to_dict()`` (JSON-ready data) and ``from_dict()``, the
one place that reads that data. ``from_dict`` takes what an interrupted or older run wrote: a missing
optional key gets its default (a worker stopped mid-student leaves a partial ``result.json`` with no
scores, feedback or timing), and a cell score may still be the positional list
``[score, max_score, needs_manual, cell_type]`` that results.json held before these types.

Part of ``guard`` comes from a file the student's kernel wrote, so ``GuardEvent.from_dict`` accepts
any JSON value and turns what is not an event into a readable one rather than failing the export."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .probes import Verdict

Scores = dict[str, dict[str, "CellScore"]]  # {notebook: {grade_id: CellScore}}


@dataclass
class CellScore:
    """One graded cell of one submission, as the gradebook holds it."""

    score: float | None  # None: not graded (a written answer waiting for a human)
    max_score: float
    needs_manual: bool = False
    cell_type: str | None = None  # "code" or "markdown"; None when the gradebook has no source cell

    @property
    def earned(self) -> float:
        """The points this cell counts for now (an ungraded cell counts 0)."""
        return float(self.score or 0.0)

    def to_dict(self) -> dict:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "needs_manual": self.needs_manual,
            "cell_type": self.cell_type,
        }

    @classmethod
    def from_dict(cls, data: dict | list) -> CellScore:
        if isinstance(data, (list, tuple)):  # the positional form of results.json before these types
            data = dict(zip(("score", "max_score", "needs_manual", "cell_type"), data, strict=False))
        score = data.get("score")
        return cls(
            None if score is None else float(score),
            float(data["max_score"]),
            bool(data.get("needs_manual", False)),
            data.get("cell_type"),
        )


def scores_to_dict(scores: Scores) -> dict:
    return {nb: {gid: cell.to_dict() for gid, cell in cells.items()} for nb, cells in scores.items()}


def scores_from_dict(data: dict | None) -> Scores:
    return {nb: {gid: CellScore.from_dict(cell) for gid, cell in cells.items()} for nb, cells in (data or {}).items()}


@dataclass
class GuardEvent:
    """Something the kernel guard undid before the tests ran (``kernel_guard``)."""

    undone: str
    cell: str = ""  # the start of the hash of the cell that did it

    def to_dict(self) -> dict:
        return {"undone": self.undone, "cell": self.cell}

    @classmethod
    def from_dict(cls, data: Any) -> GuardEvent:
        if not isinstance(data, dict) or not isinstance(data.get("undone"), str):
            return cls(f"unreadable guard report: {str(data)[:80]}")
        return cls(data["undone"], str(data.get("cell", "")))


@dataclass
class NotebookResult:
    """One notebook of one student: its own nbgrader run in its own kernel."""

    status: str  # "graded" or "failed"
    reason: str = ""  # why it failed
    seconds: float = 0.0
    kernel: str = ""  # "forked", "fresh" or "fresh (why not forked)"; "" when unknown
    guard: list[GuardEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # cell timeouts, memory errors
    verdicts: dict[str, Verdict] = field(default_factory=dict)  # {grade_id: Verdict}; graded notebooks only
    verdict_seconds: float | None = None
    tamper_flags: list[str] = field(default_factory=list)  # preflight's tamper findings

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def undone(self) -> list[str]:
        """What the guard undid, each thing once, sorted."""
        return sorted({e.undone for e in self.guard})

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "reason": self.reason,
            "seconds": self.seconds,
            "kernel": self.kernel,
            "guard": [e.to_dict() for e in self.guard],
            "notes": list(self.notes),
            "verdicts": {gid: v.to_dict() for gid, v in self.verdicts.items()},
            "verdict_seconds": self.verdict_seconds,
            "tamper_flags": list(self.tamper_flags),
        }

    @classmethod
    def from_dict(cls, data: dict) -> NotebookResult:
        vs = data.get("verdict_seconds")
        return cls(
            str(data["status"]),
            str(data.get("reason") or ""),
            float(data.get("seconds") or 0.0),
            str(data.get("kernel") or ""),
            [GuardEvent.from_dict(e) for e in data.get("guard") or []],
            [str(n) for n in data.get("notes") or []],
            {gid: Verdict.from_dict(v) for gid, v in (data.get("verdicts") or {}).items()},
            None if vs is None else float(vs),
            [str(t) for t in data.get("tamper_flags") or []],
        )


@dataclass
class FeedbackResult:
    """The feedback pages of one student (``grading.render_feedback``)."""

    ok: bool = False
    withheld: list[str] = field(default_factory=list)  # pages not given out: "<notebook>.html: why"
    error: str = ""

    def to_dict(self) -> dict:
        return {"ok": self.ok, "withheld": list(self.withheld), "error": self.error}

    @classmethod
    def from_dict(cls, data: dict) -> FeedbackResult:
        return cls(
            bool(data.get("ok", False)), [str(w) for w in data.get("withheld") or []], str(data.get("error") or "")
        )


@dataclass
class StudentResult:
    """One student's grading, finished or not."""

    student: str
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    scores: Scores = field(default_factory=dict)
    gradebook_intact: bool | None = None  # the tests and points unchanged after grading; None: not checked
    feedback: FeedbackResult | None = None  # None: not rendered (--no-feedback, nothing submitted, stopped)
    error: str = ""  # why grading did not finish (a stopped or crashed worker)
    trace: str = ""  # the worker's traceback, when it raised
    started: float | None = None  # time.time() when grading began
    seconds: float = 0.0

    @property
    def zeroed(self) -> bool:
        """Every autograded score counts 0: the gradebook's tests changed while this student was graded."""
        return self.gradebook_intact is False

    @property
    def withheld(self) -> list[str]:
        return self.feedback.withheld if self.feedback else []

    @property
    def points(self) -> float:
        """Every cell's points as the gradebook says, before review (zeroing, failed notebooks)."""
        return sum(cell.earned for cells in self.scores.values() for cell in cells.values())

    def problems(self) -> list[str]:
        """What went wrong, one line each: failed notebooks ("name: reason"), then the worker's error."""
        return [f"{name}: {nb.reason}" for name, nb in self.notebooks.items() if nb.failed] + (
            [self.error] if self.error else []
        )

    def to_dict(self) -> dict:
        return {
            "student": self.student,
            "notebooks": {name: nb.to_dict() for name, nb in self.notebooks.items()},
            "scores": scores_to_dict(self.scores),
            "gradebook_intact": self.gradebook_intact,
            "feedback": self.feedback.to_dict() if self.feedback else None,
            "error": self.error,
            "trace": self.trace,
            "started": self.started,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StudentResult:
        intact, feedback, started = data.get("gradebook_intact"), data.get("feedback"), data.get("started")
        return cls(
            str(data["student"]),
            {name: NotebookResult.from_dict(nb) for name, nb in (data.get("notebooks") or {}).items()},
            scores_from_dict(data.get("scores")),
            None if intact is None else bool(intact),
            None if feedback is None else FeedbackResult.from_dict(feedback),
            str(data.get("error") or ""),
            str(data.get("trace") or ""),
            None if started is None else float(started),
            float(data.get("seconds") or 0.0),
        )


def results_to_dict(results: dict[str, StudentResult]) -> dict:
    """{student: StudentResult} as JSON-ready data (``exports/results.json``)."""
    return {student: result.to_dict() for student, result in results.items()}


def results_from_dict(data: dict | None) -> dict[str, StudentResult]:
    return {student: StudentResult.from_dict(result) for student, result in (data or {}).items()}


def read_results(path: Path) -> dict[str, StudentResult]:
    """``exports/results.json``: every student graded so far ({} when nothing was graded yet)."""
    path = Path(path)
    return results_from_dict(json.loads(path.read_text())) if path.exists() else {}


def write_results(path: Path, results: dict[str, StudentResult]) -> None:
    """Write ``exports/results.json`` (the one writer; ``read_results`` is the one reader)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_to_dict(results), indent=1, sort_keys=True))
