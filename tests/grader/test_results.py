"""The typed results (autograder.results): a JSON round trip loses nothing, and what an older or
interrupted run wrote (a partial result.json, results.json with positional cell scores) still reads."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder import export, grading
from autograder.assignment import Assignment
from autograder.probes import Verdict
from autograder.results import (
    CellScore,
    FeedbackResult,
    GuardEvent,
    NotebookResult,
    StudentResult,
    results_from_dict,
    results_to_dict,
)
from tests.grader import fixture


def full_result() -> StudentResult:
    """A result with every field set to something other than its default."""
    return StudentResult(
        "ann",
        notebooks={
            "ex12_tiny": NotebookResult(
                "graded",
                "",
                3.25,
                "fresh (no pidfd)",
                [GuardEvent("torch.allclose restored", "ab12cd34ef56")],
                ["ex1_test_triple: stopped after the 10 s cell timeout"],
                {"ex1_test_triple": Verdict(True), "ex2_test_count_even": Verdict(False, "count_even([]) raised")},
                0.5,
                ["rebinds builtins.print"],
            ),
            "ex34_tiny": NotebookResult("failed", "the kernel died", 1.0, "forked"),
        },
        scores={
            "ex12_tiny": {
                "ex1_test_triple": CellScore(2.0, 2.0, False, "code"),
                "ex1_written_why": CellScore(None, 1.0, True, "markdown"),
                "ex2_test_count_even": CellScore(0.0, 3.0, False, "code"),
            }
        },
        gradebook_intact=True,
        feedback=FeedbackResult(True, ["ex12_tiny.html: a hidden line"], ""),
        error="",
        trace="Traceback …",
        started=1764590000.5,
        seconds=7.75,
    )


def test_every_result_type_survives_a_json_round_trip():
    result = full_result()
    data = json.loads(json.dumps(result.to_dict()))
    assert StudentResult.from_dict(data) == result
    assert StudentResult.from_dict(data).to_dict() == data
    # the whole results.json too, and each piece on its own
    assert results_from_dict(json.loads(json.dumps(results_to_dict({"ann": result})))) == {"ann": result}
    for piece in (
        result.notebooks["ex12_tiny"],
        result.scores["ex12_tiny"]["ex1_written_why"],
        result.feedback,
        result.notebooks["ex12_tiny"].guard[0],
    ):
        assert type(piece).from_dict(json.loads(json.dumps(piece.to_dict()))) == piece


def test_a_partial_old_style_result_reads_with_defaults():
    """What a worker stopped after one notebook left behind, as results were written before the types:
    no scores, feedback, seconds or tamper flags; cell scores (in results.json) as positional lists."""
    partial = {
        "student": "ben",
        "started": 1764590000.0,
        "notebooks": {
            "ex12_tiny": {
                "status": "graded",
                "reason": "",
                "seconds": 2.1,
                "notes": [],
                "guard": [{"cell": "ab12", "undone": "math.isclose"}],
                "kernel": "forked",
                "verdict_seconds": 0.2,
                "verdicts": {"ex1_test_triple": {"passed": True, "message": ""}},
            }
        },
    }
    result = StudentResult.from_dict(partial)
    nb = result.notebooks["ex12_tiny"]
    assert nb.status == "graded" and not nb.failed and nb.undone == ["math.isclose"] and nb.tamper_flags == []
    assert nb.verdicts == {"ex1_test_triple": Verdict(True, "")}
    assert result.scores == {} and result.feedback is None and result.withheld == []
    assert result.gradebook_intact is None and not result.zeroed and result.seconds == 0.0 and result.error == ""

    older = {
        "student": "cat",
        "error": "the grading worker died",
        "scores": {"ex12_tiny": {"ex1_test_triple": [2, 2, False, "code"], "ex1_written_why": [None, 1, True]}},
        "notebooks": {"ex12_tiny": {"status": "failed", "reason": "the kernel died"}},
        "gradebook_intact": False,
        "feedback": {"error": "nothing was autograded"},
    }
    result = StudentResult.from_dict(older)
    assert result.scores["ex12_tiny"]["ex1_test_triple"] == CellScore(2.0, 2.0, False, "code")
    assert result.scores["ex12_tiny"]["ex1_written_why"] == CellScore(None, 1.0, True, None)
    assert result.points == 2.0 and result.zeroed
    assert result.problems() == ["ex12_tiny: the kernel died", "the grading worker died"]
    assert result.feedback == FeedbackResult(False, [], "nothing was autograded")


def test_a_guard_report_the_kernel_garbled_stays_readable():
    """guard.jsonl is written inside the student's kernel: any JSON value must read as an event."""
    for junk in ([1, 2], "text", None, {"undone": 7}, {"cell": "ab"}):
        event = GuardEvent.from_dict(junk)
        assert event.undone.startswith("unreadable guard report") and isinstance(event.cell, str)
    nb = NotebookResult.from_dict({"status": "graded", "guard": [[1], {"undone": "x", "cell": "c"}]})
    assert nb.undone == ["unreadable guard report: [1]", "x"]


def test_a_stopped_worker_keeps_the_notebooks_it_finished(tmp_path):
    """grading._collect_result reads the partial result.json a killed worker left (no gradebook yet)."""
    root = tmp_path / "students" / "ben"
    root.mkdir(parents=True)
    finished = NotebookResult("graded", seconds=2.0, kernel="forked", verdicts={"ex1_test_triple": Verdict(True)})
    (root / "result.json").write_text(json.dumps(StudentResult("ben", {"ex12_tiny": finished}).to_dict()))
    result = grading._collect_result(
        "ben",
        tmp_path / "_results" / "ben.json",
        root,
        fixture.ASSIGNMENT,
        True,
        grading.GradeOptions(student_timeout=5, jobs=1),
    )
    assert result.notebooks == {"ex12_tiny": finished} and result.scores == {}
    assert result.error == "grading took longer than 5 s and was stopped"


@pytest.fixture(scope="module")
def assignment(tmp_path_factory) -> Assignment:
    folder = tmp_path_factory.mktemp("tiny") / fixture.ASSIGNMENT
    folder.mkdir()
    nbformat.write(fixture.ex12(), str(folder / "ex12_tiny.ipynb"))
    nbformat.write(fixture.ex34(), str(folder / "ex34_tiny.ipynb"))
    return Assignment.load(folder)


def test_export_reads_an_old_results_json_like_a_new_one(assignment):
    """grades.csv from results.json as written before the types equals grades.csv from the typed result."""
    cells = {
        "ex12_tiny": {
            "ex1_test_triple": [2, 2, False, "code"],
            "ex1_written_why": [None, 1, True, "markdown"],
            "ex2_test_count_even": [3, 3, False, "code"],
        },
        "ex34_tiny": {"ex3_test_scale": [0, 2, False, "code"], "ex4_test_count_positive": [3, 3, False, "code"]},
    }
    old = {
        "student": "dan",
        "scores": cells,
        "seconds": 4.0,
        "notebooks": {
            "ex12_tiny": {"status": "graded", "tamper_flags": ["rebinds print"]},
            "ex34_tiny": {"status": "failed", "reason": "the kernel died"},
        },
    }
    typed = StudentResult.from_dict(json.loads(json.dumps(StudentResult.from_dict(old).to_dict())))
    for result in (StudentResult.from_dict(old), typed):
        g = export.student_grade("dan", result, assignment, {})
        assert g.exercises == {"ex1": 2, "ex2": 3, "ex3": 0, "ex4": 0} and g.manual_pending == 1
        assert ("ex34_tiny", "not graded: the kernel died; scored 0") in g.review
        assert any(nb == "ex12_tiny" and "rebinds print" in why for nb, why in g.review)
