"""The committed demo class: up to date with release/ and source/, and graded as expected.json says.

The same class graded with fresh kernels must score the same: test_demo_class_kernel_modes.py (a module
of its own, so the two gradings run on two workers at once)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from autograder import feedback
from autograder.assignment import Assignment
from tests.conftest import LAYOUT
from tests.grader import demo
from tools import demo_builder

DEMO = demo_builder.TARGET


def test_committed_demo_class_matches_a_fresh_build():
    """Regenerating from release/ and source/ must give the committed files: the demo never drifts."""
    diff = demo_builder.differences()
    assert not diff, "demo class out of date; run `python -m tools.demo_builder`:\n" + "\n".join(diff[:20])


def test_demo_class_is_big_enough_and_uses_every_notebook():
    expected = json.loads((DEMO / "expected.json").read_text())
    assert len(expected) >= 24
    names = {p.stem for p in LAYOUT.release().glob("*.ipynb")}
    text = " ".join(p.name for p in (DEMO / "downloads").rglob("*.ipynb"))
    assert all(name in text for name in names)


@pytest.fixture(scope="module")
def graded_demo(tmp_path_factory):
    return demo.graded_with_forked_kernels(tmp_path_factory)


@pytest.mark.slow
def test_demo_class_grades_as_expected(graded_demo):
    course = graded_demo
    expected = json.loads((DEMO / "expected.json").read_text())
    with open(course / "exports" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    maxima = {k: float(v) for k, v in rows[0].items() if k.startswith("ex")}
    grades = {r["student"]: r for r in rows[1:]}
    with open(course / "exports" / "needs_review.csv") as f:
        review = list(csv.DictReader(f))
    assert set(grades) == set(expected)
    for student, exp in expected.items():
        row = grades[student]
        why = " | ".join(r["reason"] for r in review if r["student"] == student) + " " + row["notes"]
        for ex in exp["full"]:
            assert float(row[ex]) == maxima[ex], (student, ex, row, why)
        for ex in exp["below"]:
            assert float(row[ex]) < maxima[ex], (student, ex, row, why)
        for ex in exp["zero"]:
            assert float(row[ex]) == 0, (student, ex, row, why)
        assert (row["needs_review"] == "yes") == exp["review"], (student, why)
        for word in exp["why"]:
            assert word.lower() in why.lower(), (student, word, why)
    hidden = Assignment.load(LAYOUT.release(), LAYOUT.source()).secret_lines()
    assert hidden
    secret = {}  # per student: the hidden lines they did not write themselves
    for page in sorted((course / "feedback").rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        student = page.parent.parent.name
        if student not in secret:
            theirs = [
                nbformat.read(str(p), as_version=4)
                for p in (course / "submitted" / student / LAYOUT.assignment).glob("*.ipynb")
            ]
            secret[student] = feedback.not_theirs(hidden, theirs)
        assert "### BEGIN HIDDEN TESTS" not in text, page
        assert not feedback.leaks(text, secret[student]), page
    assert len(secret) >= 24  # every student's pages were read
    assert Path(course / "exports" / "summary.png").stat().st_size > 10_000
