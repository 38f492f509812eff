"""The committed demo class: up to date with release/ and source/, and graded as expected.json says."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from autograder import cli, feedback
from autograder.assignment import Assignment
from autograder.results import results_from_dict
from tests.conftest import LAYOUT
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


SEED = "demo-both-modes"  # the same grader inputs in both runs: any score difference is the kernels'


@pytest.fixture(scope="module")
def graded_demo(tmp_path_factory):
    """The demo class graded with kernels forked from the zygote (the default)."""
    course = tmp_path_factory.mktemp("demo-fork") / "course"
    assert cli.main(["demo", "--course-dir", str(course), "--probe-seed", SEED, "--kernel-start", "fork"]) == 0
    return course


def cell_scores(course: Path, kernels: str) -> dict:
    """Scores by student, notebook and cell; every notebook that ran must have had ``kernels`` kernels."""
    results = results_from_dict(json.loads((course / "exports" / "results.json").read_text()))
    started = {e.kernel for r in results.values() for e in r.notebooks.values() if e.kernel}
    assert started == {kernels}, started
    return {student: r.scores for student, r in results.items()}


@pytest.mark.slow
def test_forked_and_fresh_kernels_give_identical_scores_cell_by_cell(graded_demo, tmp_path):
    course = tmp_path / "course"
    assert cli.main(["demo", "--course-dir", str(course), "--probe-seed", SEED, "--kernel-start", "fresh"]) == 0
    forked, fresh = cell_scores(graded_demo, "forked"), cell_scores(course, "fresh")
    assert set(forked) == set(fresh) and len(forked) >= 24
    different = {
        (s, nb, cell): (forked[s][nb][cell], fresh[s].get(nb, {}).get(cell))
        for s in forked
        for nb in forked[s]
        for cell in forked[s][nb]
        if forked[s][nb][cell] != fresh[s].get(nb, {}).get(cell)
    }
    assert not different and forked == fresh, different
    review = [
        (course / "exports" / "needs_review.csv").read_text(),
        (graded_demo / "exports" / "needs_review.csv").read_text(),
    ]
    assert review[0] == review[1]


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
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        student = page.parent.parent.name
        theirs = [
            nbformat.read(str(p), as_version=4)
            for p in (course / "submitted" / student / LAYOUT.assignment).glob("*.ipynb")
        ]
        assert "### BEGIN HIDDEN TESTS" not in text, page
        assert not feedback.leaks(text, feedback.not_theirs(hidden, theirs)), page
    assert Path(course / "exports" / "summary.png").stat().st_size > 10_000
