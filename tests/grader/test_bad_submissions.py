"""The whole grader (course-grade run) on a class of bad submissions of the tiny fixture assignment.

One real run — collect, preflight, parallel sandboxed nbgrader, feedback, export — then one test
per bad submission checks its expected outcome (see tests/grader/students.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from autograder import cli
from autograder.cells import grade_id_of
from autograder.results import results_from_dict
from autograder.sandbox import status
from tests.grader import fixture
from tests.grader.students import EXPECTED, Class

pytestmark = pytest.mark.slow
CELL_TIMEOUT = 10
CHECKS = Path(__file__).with_name("fixture_checks")  # the tiny assignment's hidden checks


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grader_e2e")
    source, release = fixture.build_course(root)
    course, downloads = root / "course", root / "downloads"
    secrets = {
        "repo": str(Path(__file__).resolve().parents[2]),
        "course": str(course),
        "source": str(source.parent),
        "downloads": str(downloads),
        "gradebook": str(course / "gradebook.db"),
        "victim": str(course / "submitted" / "good" / fixture.ASSIGNMENT / "ex12_tiny.ipynb"),
    }
    Class(downloads, release, source, secrets).build()
    cli.main(
        [
            "run",
            str(downloads),
            "--course-dir",
            str(course),
            "--release",
            str(release),
            "--source",
            str(source),
            "--checks",
            str(CHECKS),
            "--probe-seed",
            "bad-submissions",
            "--timeout",
            str(CELL_TIMEOUT),
            "--memory-mb",
            "1536",
            "--jobs",
            "2",
        ]
    )
    exports = course / "exports"
    with open(exports / "grades.csv") as f:
        grades = {r["student"]: r for r in csv.DictReader(f) if r["student"] != "(max)"}
    with open(exports / "needs_review.csv") as f:
        review = list(csv.DictReader(f))
    return {
        "course": course,
        "exports": exports,
        "grades": grades,
        "review": review,
        "secrets": secrets,
        "results": results_from_dict(json.loads((exports / "results.json").read_text())),
        "release": release,
    }


def reasons(graded, student):
    return " | ".join(f"{r['notebook']}: {r['reason']}" for r in graded["review"] if r["student"] == student)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_each_submission_gets_its_expected_outcome(graded, student):
    row = graded["grades"][student]
    expected = EXPECTED[student]
    got = {ex: float(row[ex]) for ex in expected["scores"]}
    assert got == pytest.approx(expected["scores"]), (student, reasons(graded, student), row["notes"])
    assert (row["needs_review"] == "yes") == expected["review"], (student, reasons(graded, student))
    text = (reasons(graded, student) + " " + row["notes"]).lower()
    for word in expected["why"]:
        assert word.lower() in text, (student, word, text)


def test_tampering_gains_nothing(graded):
    """The verdicts (decided outside the kernel) of the tampering students' wrong answers: 0."""
    raw = {s: graded["results"][s].scores for s in ("tamper", "sneaky", "builtins", "custom_exc")}
    assert raw["tamper"]["ex34_tiny"]["ex3_test_scale"].score == 0
    assert raw["sneaky"]["ex34_tiny"]["ex3_test_scale"].score == 0
    assert raw["builtins"]["ex12_tiny"]["ex2_test_count_even"].score == 0
    assert raw["custom_exc"]["ex12_tiny"]["ex1_test_triple"].score == 0
    undone = graded["results"]["sneaky"].notebooks["ex34_tiny"].undone
    assert any("torch.allclose" in u for u in undone)


def test_one_dead_kernel_or_stuck_loop_costs_only_that_notebook(graded):
    crash = graded["results"]["crash"].notebooks
    assert crash["ex34_tiny"].status == "failed" and crash["ex12_tiny"].status == "graded"
    stubborn = graded["results"]["stubborn"].notebooks
    assert stubborn["ex12_tiny"].status == "failed" and stubborn["ex34_tiny"].status == "graded"
    assert len(graded["grades"]) == len(EXPECTED)  # and every other student was graded


def test_collect_reports_what_it_could_not_place(graded):
    rows = {r["origin"]: r for r in csv.DictReader(open(graded["exports"] / "collect.csv"))}
    assert rows["README.pdf"]["placed"] == "False" and "not a notebook" in rows["README.pdf"]["how"]
    assert rows["good/notes.txt"]["placed"] == "False"
    assert rows["empty/ex34_tiny.ipynb"]["placed"] == "False" and "empty" in rows["empty/ex34_tiny.ipynb"]["how"]
    assert rows["stripped/ex34_tiny.ipynb"]["kept"] == "False"  # the older of two downloads
    review = " ".join(r["reason"] for r in graded["review"])
    assert "README.pdf" in review and "empty/ex34_tiny.ipynb" in review


def test_feedback_shows_results_but_never_hidden_tests(graded):
    pages = sorted((graded["course"] / "feedback").rglob("*.html"))
    assert len(pages) >= 2 * 15
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for marker in fixture.HIDDEN_MARKERS:
            assert marker not in text, (page, marker)
        assert "BEGIN HIDDEN TESTS" not in text
    wrong = (graded["course"] / "feedback" / "edits_tests" / fixture.ASSIGNMENT / "ex12_tiny.html").read_text()
    assert "triple multiplies by three" in wrong  # the verdict's teaching message is shown


def test_stderr_warnings_in_student_code_do_not_cost_points(graded):
    nb = nbformat.read(str(graded["course"] / "autograded" / "noisy" / fixture.ASSIGNMENT / "ex12_tiny.ipynb"), 4)
    test = next(c for c in nb.cells if grade_id_of(c) == "ex2_test_count_even")
    shown = "".join(o.get("text", "") for o in test.outputs)
    assert "values should be a list" in shown  # the warning is shown, on stdout


def test_student_code_sees_and_changes_nothing_outside_its_box(graded):
    if not status().available:
        pytest.skip(f"no sandbox here: {status().reason}")
    nb = nbformat.read(str(graded["course"] / "autograded" / "snoop" / fixture.ASSIGNMENT / "ex12_tiny.ipynb"), 4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "SNOOP notebooks or gradebooks found: 0" in printed, printed
    assert "SNOOP saw hidden tests: False" in printed
    assert "SNOOP wrote: []" in printed, printed
    for path in (graded["secrets"]["gradebook"], graded["secrets"]["victim"]):
        assert b"pwned" not in Path(path).read_bytes()[-64:]


def test_course_gradebook_holds_every_student_for_formgrader(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}") as gb:
        students = {s.id for s in gb.students}
        good = gb.find_submission(fixture.ASSIGNMENT, "good")
        assert students == set(EXPECTED)
        assert good.score == pytest.approx(10)


def test_summary_figure_exists(graded):
    assert (graded["exports"] / "summary.png").stat().st_size > 10_000


def test_feedback_can_be_rendered_again_from_the_course_folder(graded):
    course, release = graded["course"], graded["release"]
    page = course / "feedback" / "edits_tests" / fixture.ASSIGNMENT / "ex12_tiny.html"
    page.unlink()
    cli.main(
        [
            "feedback",
            "--course-dir",
            str(course),
            "--release",
            str(release),
            "--source",
            str(Path(graded["secrets"]["source"]) / fixture.ASSIGNMENT),
            "--checks",
            str(CHECKS),
        ]
    )
    text = page.read_text(encoding="utf-8")
    assert "triple multiplies by three" in text
    assert not any(marker in text for marker in fixture.HIDDEN_MARKERS)


def test_regrading_one_student_reuses_the_course_gradebook_and_keeps_manual_grades(graded):
    """A second `grade` into the same course (a fixed submission, say) regenerates the template
    gradebook: it must be recognised as the same assignment, not refused as stale."""
    from nbgrader.api import Gradebook

    course, db = graded["course"], f"sqlite:///{graded['course'] / 'gradebook.db'}"
    with Gradebook(db) as gb:
        written = gb.find_grade("ex1_written_why", "ex12_tiny", fixture.ASSIGNMENT, "good")
        written.manual_score = 1
        gb.db.commit()
    assert (
        cli.main(
            [
                "grade",
                "--course-dir",
                str(course),
                "--release",
                str(graded["release"]),
                "--source",
                str(Path(graded["secrets"]["source"]) / fixture.ASSIGNMENT),
                "--students",
                "good",
                "--checks",
                str(CHECKS),
                "--timeout",
                str(CELL_TIMEOUT),
                "--jobs",
                "1",
                "--no-feedback",
            ]
        )
        == 0
    )
    with Gradebook(db) as gb:
        assert {s.id for s in gb.students} == set(EXPECTED)
        assert gb.find_grade("ex1_written_why", "ex12_tiny", fixture.ASSIGNMENT, "good").manual_score == 1
        assert gb.find_submission(fixture.ASSIGNMENT, "good").score == pytest.approx(10 + 1)
