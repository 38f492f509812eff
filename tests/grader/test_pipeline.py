"""The pipeline's steps called from Python, no argparse: collect → preflight → export on the tiny
fixture course (no kernels; grading's results are written as a grader's run would leave them).

Each step's typed return must be what the next step reads back from exports/, and the review list
must hold the repair, the stray file and the missing notebook."""

from __future__ import annotations

import csv

import nbformat
import pytest

from autograder import collect, lms, pipeline, preflight
from autograder.assignment import Assignment
from autograder.course import Layout
from autograder.results import CellScore, NotebookResult, StudentResult, read_results, write_results
from tests.grader import fixture
from tools.nbgrader_course import read, solved


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pipeline.Run:
    root = tmp_path_factory.mktemp("course")
    source, release = fixture.build_course(root)
    layout = Layout(root=root, course_id=fixture.COURSE_ID, assignments=(fixture.ASSIGNMENT,))
    return pipeline.Run(layout, Assignment.load(release, source), root / "work", source)


def test_collect_preflight_export_from_python(run, tmp_path):
    downloads = tmp_path / "downloads"
    for student in ("ann", "ben"):
        (downloads / student).mkdir(parents=True)
    rel = run.assignment
    good = {name: solved(read(rnb.path), read(run.source / rnb.filename)) for name, rnb in rel.notebooks.items()}
    stripped = good["ex12_tiny"]
    for cell in stripped.cells:  # what some tools and Colab exports do
        cell.metadata = {}
    nbformat.write(stripped, str(downloads / "ann" / "ex12_tiny.ipynb"))
    nbformat.write(good["ex34_tiny"], str(downloads / "ann" / "ex34_tiny.ipynb"))
    (downloads / "ann" / "notes.txt").write_text("my notes, not a notebook")
    nbformat.write(good["ex12_tiny"], str(downloads / "ben" / "ex12_tiny.ipynb"))  # ex34 never sent

    said: list[str] = []
    collected = pipeline.collect(run=run, downloads=downloads, say=said.append)
    assert said[0].startswith("==> collect:")
    assert sorted(collected.people) == ["ann", "ben"]
    assert collect.read_report(run.collect_report) == collected.placements
    assert lms.read_students(run.students_file) == collected.people
    assert sorted(run.student_folders()) == ["ann", "ben"]

    reports = pipeline.preflight(run=run)
    assert preflight.read_reports(run.preflight_file) == reports
    assert reports["ann"]["ex12_tiny"].status == "repaired" and reports["ann"]["ex34_tiny"].status == "ok"
    assert reports["ben"]["ex34_tiny"].status == "missing"
    assert (run.originals / "ann" / "ex12_tiny.ipynb").exists()  # what ann sent, kept for a human

    full = {
        name: {
            c.grade_id: CellScore(c.points if c.kind == "test" else None, c.points, c.kind != "test", c.cell_type)
            for c in rnb.cells
            if c.kind in ("test", "manual")
        }
        for name, rnb in rel.notebooks.items()
    }
    write_results(
        run.results_file,
        {
            "ann": StudentResult("ann", {n: NotebookResult("graded") for n in rel.notebooks}, full),
            "ben": StudentResult("ben", {"ex12_tiny": NotebookResult("graded")}, {"ex12_tiny": full["ex12_tiny"]}),
        },
    )
    assert sorted(read_results(run.results_file)) == ["ann", "ben"]

    grades = pipeline.export(run=run)
    by = {g.student: g for g in grades}
    assert sorted(by) == ["ann", "ben"]
    assert by["ann"].total == sum(rel.max_points().values())
    assert by["ben"].total == sum(c.points for c in rel.notebooks["ex12_tiny"].cells if c.kind == "test")
    assert any("notes.txt" in why for _, why in by["ann"].review)  # the stray file is ann's to review
    with open(run.exports / "grades.csv") as f:
        totals = {r["student"]: float(r["total"]) for r in csv.DictReader(f) if r["student"] != "(max)"}
    assert totals == {"ann": by["ann"].total, "ben": by["ben"].total}
    with open(run.exports / "needs_review.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(r["student"] == "ann" and "notes.txt" in r["reason"] for r in rows)


def test_a_step_refuses_with_a_message_not_an_exit(run):
    with pytest.raises(pipeline.PipelineError, match="late policy"):
        pipeline.export(run=run, late_policy="sometimes")
    with pytest.raises(pipeline.PipelineError, match="source folder"):
        pipeline.grade(run=pipeline.Run(run.layout, run.assignment, run.work))
