"""The LMS round trip on a course gradebook in PostgreSQL (``--db-url``): submission time, late
penalty, student names and a hand-entered written score all go through the database server."""

from __future__ import annotations

import csv
import datetime as dt
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import cli, gradebook
from tests.grader import fixture
from tests.grader.test_postgres_gradebook import postgres  # noqa: F401  (the throwaway cluster fixture)
from tools.nbgrader_course import read, solved

pytestmark = pytest.mark.slow
CHECKS = Path(__file__).with_name("fixture_checks")
DUE = "2026-12-08 23:59 Europe/Berlin"


def test_lateness_names_and_written_scores_through_postgres(postgres, tmp_path):  # noqa: F811
    source, release = fixture.build_course(tmp_path / "build")
    nb = solved(read(release / "ex12_tiny.ipynb"), read(source / "ex12_tiny.ipynb"))
    downloads = tmp_path / "canvas.zip"
    with zipfile.ZipFile(downloads, "w") as zf:
        zf.writestr(
            zipfile.ZipInfo("smithjohn_LATE_12345_1_ex12_tiny.ipynb", date_time=(2026, 12, 10, 12, 0, 0)),
            nbformat.writes(nb),
        )
    course = tmp_path / "course"
    common = ["--course-dir", str(course), "--release", str(release), "--source", str(source), "--db-url", postgres]
    assert (
        cli.main(
            [
                "run",
                str(downloads),
                *common,
                "--checks",
                str(CHECKS),
                "--lms",
                "auto",
                "--due",
                DUE,
                "--jobs",
                "1",
                "--timeout",
                "20",
                "--probe-seed",
                "pg-lms",
            ]
        )
        == 0
    )
    assert not (course / "gradebook.db").exists()
    with gradebook.opened(postgres) as gb:  # what nbgrader (and formgrader) read from the server
        sub = gb.find_submission(fixture.ASSIGNMENT, "canvas_12345")
        assert sub.timestamp == dt.datetime(2026, 12, 10, 11, 0) and sub.late_submission_penalty > 0
        assert gb.find_student("canvas_12345").lms_user_id == "12345"
        grade = next(
            g
            for g in gb.find_submission_notebook("ex12_tiny", fixture.ASSIGNMENT, "canvas_12345").grades
            if g.name == "ex1_written_why"
        )
        grade.manual_score = 1.0  # a grader's score, as formgrader saves it
        gb.db.commit()
    assert cli.main(["export", *common, "--format", "canvas"]) == 0
    row = next(r for r in csv.DictReader((course / "exports" / "grades.csv").open()) if r["student"] == "canvas_12345")
    assert row["written"] == "1" and float(row["final"]) == pytest.approx((float(row["total"]) + 1) * 0.8)
    canvas = list(csv.reader((course / "exports" / "canvas_grades.csv").open()))
    assert canvas[2][1] == "12345" and float(canvas[2][5]) == pytest.approx(float(row["final"]))
