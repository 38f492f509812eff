"""The hand-graded part of the workflow, end to end in a real browser.

LMS downloads (a Canvas student who handed in LATE and a Moodle student, collected with
``--lms auto``) → ``course-grade run`` (real sandboxed nbgrader) → nbgrader's formgrader, driven in
headless Chromium, gives each student's written answer a score → ``course-grade export`` shows
that score in grades.csv, the Canvas import file and the Moodle grading worksheet; the Canvas
student's submission time and late penalty are in nbgrader's own gradebook.

Needs chromium, node and ``npm ci --prefix tests/browser`` (skips with the reason otherwise)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import cli
from tests.conftest import LAYOUT
from tests.grader import fixture
from tests.harness.lab_server import free_port
from tools.nbgrader_course import read, solved, with_answer

pytestmark = [pytest.mark.slow, pytest.mark.browser]
HERE = Path(__file__).resolve().parent
CHECKS = HERE / "fixture_checks"
DRIVER = HERE / "formgrade_written_answer.mjs"
PLAYWRIGHT = HERE.parent / "browser"
CHROMIUM = Path(os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium"))
DUE = "2026-12-08 23:59 Europe/Berlin"
WRITTEN = "ex1_written_why"  # the tiny assignment's manually graded answer (1 point)


def _missing() -> str:
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (PLAYWRIGHT / "node_modules" / "playwright-core" / "package.json").is_file():
        return "playwright-core missing: run npm ci --prefix tests/browser --no-audit --no-fund"
    return ""


@contextlib.contextmanager
def formgrader(course: Path, source: Path, workdir: Path):
    """A Jupyter server whose nbgrader config (read from its working directory) is the course's."""
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.course_id = '{LAYOUT.course_id}'\n"
        f"c.CourseDirectory.source_directory = {str(source.parent)!r}\n"
        f"c.CourseDirectory.db_url = {'sqlite:///' + str(course / 'gradebook.db')!r}\n"
    )
    port, token = free_port(), secrets.token_hex(16)
    log = open(workdir / "server.log", "wb")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jupyter")),
            "server",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={course}",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=course,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                req = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        "jupyter server did not start:\n" + (workdir / "server.log").read_text(errors="replace")[-3000:]
                    ) from None
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def test_written_answer_graded_in_formgrader_reaches_every_export(tmp_path):
    missing = _missing()
    if missing:
        pytest.skip(f"browser test skipped: {missing}")
    source, release = fixture.build_course(tmp_path / "build")
    good = {
        nb: solved(read(release / f"{nb}.ipynb"), read(source / f"{nb}.ipynb")) for nb in ("ex12_tiny", "ex34_tiny")
    }
    good["ex12_tiny"] = with_answer(good["ex12_tiny"], WRITTEN, "Tripling is linear, so one test value is not enough.")
    downloads = tmp_path / "downloads.zip"
    with zipfile.ZipFile(downloads, "w") as zf:
        for name, nb, when in [
            ("smithjohn_LATE_12345_7001_ex12_tiny.ipynb", "ex12_tiny", (2026, 12, 9, 12, 0, 0)),  # 1 day late
            ("smithjohn_12345_7002_ex34_tiny.ipynb", "ex34_tiny", (2026, 12, 8, 20, 0, 0)),
            ("Ann Lee_40012_assignsubmission_file_ex12_tiny.ipynb", "ex12_tiny", (2026, 12, 8, 21, 0, 0)),
            ("Ann Lee_40012_assignsubmission_file_ex34_tiny.ipynb", "ex34_tiny", (2026, 12, 8, 21, 0, 0)),
        ]:
            zf.writestr(zipfile.ZipInfo(name, date_time=when), nbformat.writes(good[nb]))
    course = tmp_path / "course"
    common = ["--course-dir", str(course), "--release", str(release), "--source", str(source), "--checks", str(CHECKS)]
    assert (
        cli.main(
            [
                "run",
                str(downloads),
                *common,
                "--lms",
                "auto",
                "--due",
                DUE,
                "--jobs",
                "2",
                "--timeout",
                "20",
                "--probe-seed",
                "formgrader",
            ]
        )
        == 0
    )

    # the submission time and the late penalty are in nbgrader's own gradebook
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_assignment(fixture.ASSIGNMENT).duedate == dt.datetime(2026, 12, 8, 22, 59)
        late_sub = gb.find_submission(fixture.ASSIGNMENT, "canvas_12345")
        on_time = gb.find_submission(fixture.ASSIGNMENT, "moodle_40012")
        assert late_sub.timestamp == dt.datetime(2026, 12, 9, 11, 0) and late_sub.total_seconds_late > 0
        assert late_sub.late_submission_penalty > 0 and on_time.late_submission_penalty == 0
        assert {
            g.name: g.manual_score
            for g in gb.find_submission_notebook("ex12_tiny", fixture.ASSIGNMENT, "canvas_12345").grades
        }[WRITTEN] is None
        ann = gb.find_student("moodle_40012")
        assert (ann.first_name, ann.last_name, ann.lms_user_id) == ("Ann", "Lee", "40012")
    feedback_page = next((course / "feedback" / "canvas_12345" / fixture.ASSIGNMENT).glob("*.html"))
    assert "Late submission:" in feedback_page.read_text()

    # formgrader lists students by the names export wrote into nbgrader's student table
    grades = [
        {"student": "canvas_12345", "shown_as": "smithjohn", "grade_id": WRITTEN, "score": 1},
        {"student": "moodle_40012", "shown_as": "Lee, Ann", "grade_id": WRITTEN, "score": 0.5},
    ]
    with formgrader(course, source, tmp_path) as (url, token):
        run = subprocess.run(
            [
                "node",
                str(DRIVER),
                "--url",
                url,
                "--token",
                token,
                "--assignment",
                fixture.ASSIGNMENT,
                "--notebook",
                "ex12_tiny",
                "--grades",
                json.dumps(grades),
                "--screenshot",
                str(tmp_path / "formgrader.png"),
                "--chromium",
                str(CHROMIUM),
                "--playwright",
                str(PLAYWRIGHT),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    report = json.loads(next(ln[7:] for ln in run.stdout.splitlines() if ln.startswith("REPORT ")))
    assert run.returncode == 0, (report, run.stderr[-2000:], (tmp_path / "server.log").read_text()[-2000:])
    assert [(s["student"], float(s["manual_score"])) for s in report["saved"]] == [
        ("canvas_12345", 1.0),
        ("moodle_40012", 0.5),
    ]

    assert (
        cli.main(["export", *common, "--format", "canvas", "--format", "moodle", "--assignment-title", "Week 7"]) == 0
    )
    exports = course / "exports"
    rows = {r["student"]: r for r in csv.DictReader((exports / "grades.csv").open())}
    auto = float(rows["canvas_12345"]["total"])
    assert auto > 0 and rows["canvas_12345"]["written"] == "1" and rows["moodle_40012"]["written"] == "0.5"
    assert rows["canvas_12345"]["manual_points_pending"] == "0"
    assert float(rows["canvas_12345"]["final"]) == pytest.approx((auto + 1) * 0.9)  # −10 %: one day late
    canvas = list(csv.reader((exports / "canvas_grades.csv").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Week 7"]
    assert [(r[1], float(r[5])) for r in canvas[2:]] == [("12345", pytest.approx((auto + 1) * 0.9))]
    moodle = list(csv.DictReader((exports / "moodle_grading_worksheet.csv").open()))
    assert [r["Identifier"] for r in moodle] == ["Participant 40012"]
    assert float(moodle[0]["Grade"]) == pytest.approx(float(rows["moodle_40012"]["total"]) + 0.5)
    assert "written answers 0.5/1" in moodle[0]["Feedback comments"]
