"""The course gradebook in a real PostgreSQL server (a throwaway cluster on a free local port,
started here and stopped whatever happens): grading into it, regrading one student while another
connection records manual grades (two graders at once, as in formgrader), and exporting, with no
grade lost or doubled."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from autograder import cli, gradebook
from autograder.results import results_from_dict
from tests.grader import fixture
from tools.nbgrader_course import read, solved, with_answer

pytestmark = pytest.mark.slow
CHECKS = Path(__file__).with_name("fixture_checks")
STUDENTS = ("ann", "ben", "cat", "dan")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a server command as the `postgres` user when we are root (the server refuses root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


@pytest.fixture(scope="module")
def postgres():
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    # not under pytest's tmp folder: that one is private to root, and the server runs as `postgres`
    root = Path(tempfile.mkdtemp(prefix="course-grade-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"])
    assert out.returncode == 0, out.stderr
    out = _as_postgres(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-w",
            "-o",
            f"-p {port} -h 127.0.0.1 -k {sock}",
            "start",
        ]
    )
    assert out.returncode == 0, out.stderr + out.stdout
    try:
        out = _as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "grades"])
        assert out.returncode == 0, out.stderr
        yield f"postgresql://postgres@127.0.0.1:{port}/grades"
    finally:
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("pg_class")
    source, release = fixture.build_course(root)
    downloads = root / "downloads"
    import nbformat

    for i, student in enumerate(STUDENTS):
        (downloads / student).mkdir(parents=True)
        nb = solved(read(release / "ex12_tiny.ipynb"), read(source / "ex12_tiny.ipynb"))
        if i % 2:  # every other student gets exercise 1 wrong
            nb = with_answer(nb, "ex1_triple", "def triple(x):\n    return x + x")
        nbformat.write(nb, str(downloads / student / "ex12_tiny.ipynb"))
    return {"source": source, "release": release, "downloads": downloads, "root": root}


def run(course, course_dir: Path, *extra: str) -> dict:
    args = [
        "--course-dir",
        str(course_dir),
        "--release",
        str(course["release"]),
        "--source",
        str(course["source"]),
        "--checks",
        str(CHECKS),
        "--probe-seed",
        "pg-test",
        "--timeout",
        "10",
        "--jobs",
        "2",
        *extra,
    ]
    assert cli.main(["run", str(course["downloads"]), *args]) == 0
    return results_from_dict(json.loads((course_dir / "exports" / "results.json").read_text()))


def grade_rows(url: str) -> list[tuple]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as con:
        rows = con.execute(
            text(
                "select sa.student_id, n.name, b.name, g.auto_score, g.manual_score from grade g "
                "join submitted_notebook sn on g.notebook_id = sn.id "
                "join submitted_assignment sa on sn.assignment_id = sa.id "
                "join notebook n on sn.notebook_id = n.id join base_cell b on g.cell_id = b.id"
            )
        ).fetchall()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_grading_into_postgres_gives_the_sqlite_scores(course, postgres, tmp_path):
    lite = run(course, tmp_path / "sqlite")
    pg = run(course, tmp_path / "pg", "--db-url", postgres)
    for student in STUDENTS:
        assert pg[student].scores == lite[student].scores
        assert gradebook.read_scores(postgres, fixture.ASSIGNMENT, student) == gradebook.read_scores(
            tmp_path / "sqlite" / "gradebook.db", fixture.ASSIGNMENT, student
        )
    assert lite["ann"].scores["ex12_tiny"]["ex1_test_triple"].score == 2  # not vacuous
    assert lite["ben"].scores["ex12_tiny"]["ex1_test_triple"].score == 0
    assert not (tmp_path / "pg" / "gradebook.db").exists()  # nothing went to SQLite


def test_regrade_while_another_grader_records_manual_grades(course, postgres, tmp_path):
    run(course, tmp_path / "first", "--db-url", postgres)
    errors, written = [], []

    def second_grader():
        try:
            for round_ in range(5):
                for student in ("ben", "cat", "dan"):
                    with gradebook.opened(postgres) as gb:
                        grade = gb.find_grade("ex1_written_why", "ex12_tiny", fixture.ASSIGNMENT, student)
                        grade.manual_score = 1 if round_ % 2 else 0.5
                        gb.db.commit()
                        written.append((student, grade.manual_score))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=second_grader)
    thread.start()
    assert (
        cli.main(
            [
                "grade",
                "--course-dir",
                str(tmp_path / "first"),
                "--release",
                str(course["release"]),
                "--source",
                str(course["source"]),
                "--checks",
                str(CHECKS),
                "--students",
                "ann",
                "--db-url",
                postgres,
                "--probe-seed",
                "pg-test",
                "--timeout",
                "10",
                "--no-feedback",
            ]
        )
        == 0
    )
    thread.join(timeout=120)
    assert not errors, errors
    assert len(written) == 15
    rows = grade_rows(postgres)
    keys = [(s, nb, cell) for s, nb, cell, _, _ in rows]
    assert len(keys) == len(set(keys)), "a grade was doubled"
    assert {s for s, *_ in rows} == set(STUDENTS)
    manual = {s: m for s, nb, cell, _, m in rows if cell == "ex1_written_why"}
    assert manual["ben"] == manual["cat"] == manual["dan"] == 0.5  # the last round wrote 0.5: none lost
    auto = {(s, cell): a for s, nb, cell, a, _ in rows if cell == "ex1_test_triple"}
    assert auto[("ann", "ex1_test_triple")] == 2 and auto[("ben", "ex1_test_triple")] == 0


def test_export_from_postgres_has_every_grade_once(course, postgres, tmp_path):
    from nbgrader.plugins.export import CsvExportPlugin
    from traitlets.config import Config

    run(course, tmp_path / "c", "--db-url", postgres, "--fresh-gradebook")  # drops the other tests' grades
    with gradebook.opened(postgres) as gb:
        gb.find_grade("ex1_written_why", "ex12_tiny", fixture.ASSIGNMENT, "ann").manual_score = 1
        gb.db.commit()
    plugin = CsvExportPlugin(config=Config())
    plugin.to = str(tmp_path / "grades.csv")
    with gradebook.opened(postgres) as gb:
        plugin.export(gb)
    import csv

    rows = [r for r in csv.DictReader(open(tmp_path / "grades.csv")) if r["assignment"] == fixture.ASSIGNMENT]
    assert sorted(r["student_id"] for r in rows) == sorted(STUDENTS)
    by = {r["student_id"]: float(r["score"]) for r in rows}
    assert by["ann"] == 2 + 3 + 1 and by["ben"] == 3  # ex1 test + ex2 test (+ the manual point)
