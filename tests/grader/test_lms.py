"""The grader's round trip with the LMS, without kernels: download names → stable student ids,
submission times → lateness, grades → each LMS's import file, and the similarity report.

Each check is paired with the fault it must catch (a renamed LATE student, a late file graded on
time, a copied pair, an honest pair wrongly flagged)."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import json
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import cli, collect, export, late, lms, similarity
from autograder.assignment import Assignment
from autograder.cells import grade_id_of
from autograder.results import CellScore, NotebookResult, StudentResult, results_to_dict
from tests.grader import fixture

BERLIN = "Europe/Berlin"
DUE = "2026-12-08 23:59 Europe/Berlin"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Assignment:
    """The tiny fixture's real release (nbgrader generated: stubs, no solutions)."""
    _, rel = fixture.build_course(tmp_path_factory.mktemp("course"))
    return Assignment.load(rel)


def answered(rel: Assignment, name: str, answers: dict[str, str] | None = None):
    nb = copy.deepcopy(rel.notebooks[name].nb)
    for cell in nb.cells:
        gid = grade_id_of(cell)
        if answers and gid in answers:
            cell.source = answers[gid]
    return nb


def zip_with_times(path: Path, members: dict[str, tuple[object, tuple]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (nb, when) in members.items():
            info = zipfile.ZipInfo(name, date_time=when)
            zf.writestr(info, nbformat.writes(nb) if not isinstance(nb, str) else nb)
    return path


# -- names → identities --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "part, sid, name, late_tag, resub, rest",
    [
        ("smithjohn_LATE_12345_6789012_ex12_tiny", "canvas_12345", "smithjohn", True, 0, "ex12_tiny"),
        ("smithjohn_12345_6789555_ex12_tiny-1", "canvas_12345", "smithjohn", False, 1, "ex12_tiny"),
        ("oconnorsean_777_42_Copy of ex34", "canvas_777", "oconnorsean", False, 0, "Copy of ex34"),
    ],
)
def test_canvas_names_give_one_stable_id(part, sid, name, late_tag, resub, rest):
    got = lms.parse(part, "canvas")
    assert (got.student_id, got.display_name, got.late, got.resubmission, got.rest) == (
        sid,
        name,
        late_tag,
        resub,
        rest,
    )


def test_moodle_names_keep_the_participant_id_and_names_mode_keeps_old_ids():
    part = "Ann Lee_40012_assignsubmission_file_ex12_tiny"
    assert lms.parse(part, "moodle").student_id == "moodle_40012"
    assert lms.parse(part, "auto").display_name == "Ann Lee"
    assert lms.parse(part, "names").student_id == "ann_lee"  # the default: unchanged behaviour
    assert lms.parse("smithjohn_LATE_12345_6789012_ex12", "names") is None
    with pytest.raises(ValueError, match="canvas, moodle"):
        lms.parse(part, "blackboard")


def test_canvas_resubmission_and_late_tag_map_to_one_student(release, tmp_path):
    """The fault from the issue: 'smithjohn_late_12345_6789012' and a new id per resubmission."""
    downloads = zip_with_times(
        tmp_path / "submissions.zip",
        {
            "smithjohn_LATE_12345_6789012_ex12_tiny.ipynb": (answered(release, "ex12_tiny"), (2026, 12, 9, 10, 0, 0)),
            "smithjohn_12345_6789001_ex12_tiny.ipynb": (answered(release, "ex12_tiny"), (2026, 12, 8, 20, 0, 0)),
            "smithjohn_12345_6789002_ex34_tiny.ipynb": (answered(release, "ex34_tiny"), (2026, 12, 8, 21, 0, 0)),
            "leeann_555_6789100_ex12_tiny.ipynb": (answered(release, "ex12_tiny"), (2026, 12, 8, 12, 0, 0)),
            "notes_without_any_id.ipynb": ("{}", (2026, 12, 8, 12, 0, 0)),
        },
    )
    out = tmp_path / "submitted"
    placements, people = collect.collect_students(downloads, release, out, lms="auto", zone=late.parse_due(DUE).zone)
    assert sorted(p.name for p in out.iterdir()) == ["canvas_12345", "canvas_555"]
    kept = {p.origin: p for p in placements if p.placed and p.kept}
    assert "smithjohn_LATE_12345_6789012_ex12_tiny.ipynb" in kept  # the newer upload wins
    assert people["canvas_12345"].late_tag and people["canvas_12345"].display_name == "smithjohn"
    assert people["canvas_12345"].time_source == "zip entry time"
    # the zip entry time (Berlin, UTC+1 in December) reaches nbgrader's timestamp.txt
    stamp = (out / "canvas_12345" / fixture.ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp == "2026-12-09 09:00:00.000000 UTC"
    from nbgrader.utils import parse_utc

    assert parse_utc(stamp) == dt.datetime(2026, 12, 9, 9, 0)
    unplaced = [p for p in placements if not p.placed]
    assert [p.origin for p in unplaced] == ["notes_without_any_id.ipynb"] and unplaced[0].how
    # the fault this guards against: read as plain names, the LATE upload is another "student"
    legacy, _ = collect.collect_students(downloads, release, tmp_path / "legacy")
    assert {"smithjohn_late_12345_6789012", "smithjohn_12345_6789001"} <= {p.student for p in legacy}


def test_bad_due_date_or_roster_stops_collect_with_what_to_do(release, tmp_path, capsys):
    downloads = tmp_path / "d"
    downloads.mkdir()
    common = ["collect", str(downloads), "--course-dir", str(tmp_path / "c"), "--release", str(release.release_dir)]
    with pytest.raises(SystemExit, match="Area/City"):
        cli.main(common + ["--due", "next friday"])
    (tmp_path / "r.csv").write_text("")
    with pytest.raises(SystemExit, match="no rows"):
        cli.main(common + ["--roster", str(tmp_path / "r.csv")])


def test_roster_maps_folder_names_and_lists_who_sent_nothing(release, tmp_path):
    roster_csv = tmp_path / "roster.csv"
    roster_csv.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section\n"
        "    Points Possible,,,,\n"
        '"Smith, John",12345,S-1,jsmith,Group A\n'
        '"Lee, Ann",555,S-2,alee,Group B\n'
        '"Quiet, Kim",999,S-3,kquiet,Group B\n'
    )
    roster = lms.load_roster(roster_csv)
    assert roster.lms == "canvas" and [e.id for e in roster.entries] == ["12345", "555", "999"]
    downloads = tmp_path / "downloads"
    (downloads / "jsmith").mkdir(parents=True)  # a Colab download in a folder named by login
    nbformat.write(answered(release, "ex12_tiny"), str(downloads / "jsmith" / "ex12_tiny (1).ipynb"))
    nbformat.write(answered(release, "ex12_tiny"), str(downloads / "leeann_555_1_ex12_tiny.ipynb"))
    nbformat.write(answered(release, "ex12_tiny"), str(downloads / "stranger_ex12_tiny.ipynb"))
    _, people = collect.collect_students(downloads, release, tmp_path / "submitted", lms="auto", roster=roster)
    assert people["canvas_12345"].in_roster and people["canvas_12345"].section == "Group A"
    assert people["canvas_555"].sis_user_id == "S-2"
    assert not people["canvas_999"].submitted and people["canvas_999"].display_name == "Quiet, Kim"
    assert people["stranger"].submitted and not people["stranger"].in_roster
    assert not (tmp_path / "submitted" / "canvas_999").exists()


def test_a_roster_without_the_needed_columns_says_what_it_needs(tmp_path):
    bad = tmp_path / "r.csv"
    bad.write_text("who,when\nann,today\n")
    with pytest.raises(lms.RosterError, match="needs id, name"):
        lms.load_roster(bad)


# -- lateness ------------------------------------------------------------------------------------
def test_due_dates_need_a_zone_and_say_how_to_write_one():
    assert late.parse_due(DUE).utc == dt.datetime(2026, 12, 8, 22, 59, tzinfo=dt.UTC)
    with pytest.raises(late.LateError, match="no time zone"):
        late.parse_due("2026-12-08 23:59")
    with pytest.raises(late.LateError, match="IANA"):
        late.parse_due("2026-12-08 23:59 Mars/Olympus")
    with pytest.raises(late.LateError, match="per-day"):
        late.parse_policy("-10%")


@pytest.mark.parametrize(
    "submitted, fraction",
    [
        ("2026-12-08T23:00:00+01:00", 0.0),  # on time
        ("2026-12-09T00:30:00+01:00", 0.1),  # 31 minutes late: first started day
        ("2026-12-11T10:00:00+01:00", 0.3),  # third day
        ("2026-12-15T23:58:00+01:00", 0.7),  # within day 7
        ("2026-12-16T00:30:00+01:00", 1.0),  # day 8: zero
    ],
)
def test_per_day_policy(submitted, fraction):
    got = late.lateness(dt.datetime.fromisoformat(submitted), late.parse_due(DUE), late.parse_policy(""))
    assert got.fraction == pytest.approx(fraction)
    assert bool(got.note) == (fraction > 0)
    # nbgrader's plugin form of the same policy agrees (it is given seconds late and a notebook score)
    plugin = late.PerDayPenalty()
    assert plugin.late_submission_penalty("s", 10.0, got.seconds_late) == pytest.approx(10 * fraction)


def test_timestamps_csv_beats_the_file_time(release, tmp_path):
    downloads = tmp_path / "d"
    (downloads / "ann").mkdir(parents=True)
    nbformat.write(answered(release, "ex12_tiny"), str(downloads / "ann" / "ex12_tiny.ipynb"))
    stamps = tmp_path / "times.csv"
    stamps.write_text("student,timestamp\nann,2026-12-10 08:00\n")
    _, people = collect.collect_students(
        downloads, release, tmp_path / "s", timestamps=stamps, zone=late.parse_due(DUE).zone
    )
    assert people["ann"].time_source == "timestamps CSV"
    assert people["ann"].submitted_at == "2026-12-10T07:00:00+00:00"
    stamps.write_text("student,timestamp\nann,yesterday\n")
    with pytest.raises(ValueError, match="line 2"):
        collect.collect_students(downloads, release, tmp_path / "s", timestamps=stamps)


# -- import files, round trip from downloads ------------------------------------------------------
def fake_results(rel: Assignment, score: float, student: str = "student") -> StudentResult:
    scores = {
        name: {
            c.grade_id: CellScore(score if c.kind == "test" else None, c.points, c.kind != "test", c.cell_type)
            for c in rnb.cells
            if c.kind in ("test", "manual")
        }
        for name, rnb in rel.notebooks.items()
    }
    return StudentResult(student, scores=scores, notebooks={n: NotebookResult("graded") for n in rel.notebooks})


def read_canvas_import(path: Path) -> tuple[list[str], float, dict[str, str]]:
    """Read the file the way Canvas's gradebook import does: header, 'Points Possible' row, rows by ID."""
    rows = list(csv.reader(path.open(encoding="utf-8")))
    header, possible = rows[0], rows[1]
    assert possible[0].strip() == "Points Possible"
    return header, float(possible[5]), {r[1]: r[5] for r in rows[2:]}


def read_moodle_import(path: Path) -> dict[str, tuple[float, dt.datetime, str]]:
    """As Moodle's assignfeedback_offline importer does: find Identifier, Grade, Last modified (grade)
    by header, take the user id after 'Participant ', parse the date."""
    rows = list(csv.reader(path.open(encoding="utf-8")))
    header = rows[0]
    i_id, i_grade, i_mod = header.index("Identifier"), header.index("Grade"), header.index("Last modified (grade)")
    i_fb = header.index("Feedback comments")
    out = {}
    for r in rows[1:]:
        assert r[i_id].startswith("Participant ")
        out[r[i_id][len("Participant ") :]] = (
            float(r[i_grade]),
            dt.datetime.strptime(r[i_mod], export.MOODLE_DATE),
            r[i_fb],
        )
    return out


def course_from_downloads(release, tmp_path, downloads, *extra) -> Path:
    course = tmp_path / "course"
    cli.main(
        [
            "collect",
            str(downloads),
            "--course-dir",
            str(course),
            "--release",
            str(release.release_dir),
            "--lms",
            "auto",
            "--due",
            DUE,
            *extra,
        ]
    )
    people = json.loads((course / "exports" / "students.json").read_text())
    results = {sid: fake_results(release, 2.0, sid) for sid, p in people.items() if p["submitted"]}
    (course / "exports" / "results.json").write_text(json.dumps(results_to_dict(results)))
    return course


def test_canvas_round_trip(release, tmp_path):
    downloads = zip_with_times(
        tmp_path / "canvas.zip",
        {
            "smithjohn_LATE_12345_6789012_ex12_tiny.ipynb": (answered(release, "ex12_tiny"), (2026, 12, 10, 12, 0, 0)),
            "smithjohn_12345_6789013_ex34_tiny.ipynb": (answered(release, "ex34_tiny"), (2026, 12, 8, 12, 0, 0)),
            "leeann_555_6789100_ex12_tiny.ipynb": (answered(release, "ex12_tiny"), (2026, 12, 8, 12, 0, 0)),
            "leeann_555_6789101_ex34_tiny.ipynb": (answered(release, "ex34_tiny"), (2026, 12, 8, 12, 0, 0)),
        },
    )
    course = course_from_downloads(release, tmp_path, downloads)
    cli.main(
        [
            "export",
            "--course-dir",
            str(course),
            "--release",
            str(release.release_dir),
            "--format",
            "canvas",
            "--assignment-title",
            "Week 7",
            "--canvas-assignment-id",
            "4242",
            "--similarity",
        ]
    )
    header, possible, by_id = read_canvas_import(course / "exports" / "canvas_grades.csv")
    assert header == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Week 7 (4242)"]
    assert possible == sum(release.max_points().values()) + release.manual_points()
    # both Canvas user ids from the download names come back; 2 points per test cell, −20 % for 2 days late
    per_student = 2.0 * sum(1 for rnb in release.notebooks.values() for c in rnb.cells if c.kind == "test")
    assert by_id == {"12345": f"{per_student * 0.8:g}", "555": f"{per_student:g}"}
    grades = {r["student"]: r for r in csv.DictReader((course / "exports" / "grades.csv").open())}
    assert "2 day(s) late" in grades["canvas_12345"]["late"] and grades["canvas_555"]["late"] == ""
    # both handed in the untouched release: the stubs are boilerplate, so no pair is listed
    assert json.loads((course / "exports" / "similarity.json").read_text()) == []
    assert "No pair" in (course / "exports" / "similarity.html").read_text()


def test_moodle_round_trip_and_roster_absentee(release, tmp_path):
    downloads = zip_with_times(
        tmp_path / "moodle.zip",
        {
            "Ann Lee_40012_assignsubmission_file_/ex12_tiny.ipynb": (
                answered(release, "ex12_tiny"),
                (2026, 12, 8, 22, 0, 0),
            ),
            "Ann Lee_40012_assignsubmission_file_/ex34_tiny.ipynb": (
                answered(release, "ex34_tiny"),
                (2026, 12, 8, 22, 5, 0),
            ),
            "Bo Chan_40013_assignsubmission_file_ex12_tiny.ipynb": (
                answered(release, "ex12_tiny"),
                (2026, 12, 9, 8, 0, 0),
            ),
            "Ann Lee_40012_assignsubmission_file_/scan.pdf": ("%PDF-1.4", (2026, 12, 8, 22, 0, 0)),
        },
    )
    worksheet = tmp_path / "worksheet.csv"  # Moodle's own "Download grading worksheet" as the roster
    worksheet.write_text(
        "Identifier,Full name,Email address,Status,Grade,Maximum grade,Grade can be changed,"
        "Last modified (submission),Last modified (grade),Feedback comments\n"
        "Participant 40012,Ann Lee,ann@uni.example,Submitted for grading,,10.00,Yes,-,-,\n"
        "Participant 40013,Bo Chan,bo@uni.example,Submitted for grading,,10.00,Yes,-,-,\n"
        "Participant 40014,Cy Dunn,cy@uni.example,No submission,,10.00,Yes,-,-,\n"
    )
    course = course_from_downloads(release, tmp_path, downloads, "--roster", str(worksheet))
    cli.main(
        [
            "export",
            "--course-dir",
            str(course),
            "--release",
            str(release.release_dir),
            "--format",
            "moodle",
            "--format",
            "canvas",
        ]
    )
    header = next(csv.reader((course / "exports" / "moodle_grading_worksheet.csv").open()))
    assert header == [
        "Identifier",
        "Full name",
        "Email address",
        "Status",
        "Grade",
        "Maximum grade",
        "Grade can be changed",
        "Last modified (submission)",
        "Last modified (grade)",
        "Feedback comments",
    ]
    got = read_moodle_import(course / "exports" / "moodle_grading_worksheet.csv")
    assert set(got) == {"40012", "40013", "40014"}
    assert got["40014"][0] == 0 and got["40012"][0] > got["40013"][0]  # Bo: one notebook, and late
    assert "late penalty" in got["40013"][2] and "late" not in got["40012"][2]
    assert abs((got["40012"][1] - dt.datetime.now()).total_seconds()) < 600  # newer than any grade in Moodle
    review = list(csv.DictReader((course / "exports" / "needs_review.csv").open()))
    absent = [r["reason"] for r in review if r["student"] == "moodle_40014"]
    assert "in the roster but submitted nothing: 0 points" in absent and not any("not graded" in r for r in absent)
    assert any(r["student"] == "moodle_40012" and "scan.pdf" in r["reason"] for r in review)  # nothing lost
    # Moodle students have no Canvas id: listed, not silently dropped
    assert any(r["student"] == "moodle_40012" and "no canvas id" in r["reason"] for r in review)


# -- similarity ----------------------------------------------------------------------------------
ORIGINAL = {
    "ex1_triple": "def triple(x):\n    if isinstance(x, (list, tuple)):\n        result = []\n"
    "        for item in x:\n            result.append(item * 3)\n        return type(x)(result)\n"
    "    total = 0\n    for _ in range(3):\n        total = total + x\n    return total\n",
    "ex2_count_even": "def count_even(values):\n    counter = 0\n    for value in values:\n"
    "        remainder = value % 2\n        if remainder == 0:\n            counter += 1\n"
    "        else:\n            continue\n    return counter\n",
}
RENAMED = {
    k: v.replace("result", "out")
    .replace("item", "el")
    .replace("total", "acc")
    .replace("counter", "n_even")
    .replace("remainder", "rest")
    .replace("value", "v")
    for k, v in ORIGINAL.items()
}
HONEST_1 = {
    "ex1_triple": 'def triple(x):\n    """Three times x, for numbers and arrays alike."""\n    return x * 3\n',
    "ex2_count_even": "def count_even(values):\n    evens = [v for v in values if v % 2 == 0]\n    return len(evens)\n",
}
HONEST_2 = {
    "ex1_triple": "def triple(x):\n    doubled = x + x\n    return doubled + x\n",
    "ex2_count_even": "def count_even(values):\n    import numpy as np\n    arr = np.asarray(list(values))\n"
    "    mask = (arr % 2) == 0\n    return int(mask.sum())\n",
}


def test_similarity_finds_the_copied_pair_and_not_the_honest_ones(release, tmp_path):
    subs = {}
    for student, answers in {"ann": ORIGINAL, "bob": RENAMED, "cat": HONEST_1, "dan": HONEST_2}.items():
        folder = tmp_path / student
        folder.mkdir()
        nbformat.write(answered(release, "ex12_tiny", answers), str(folder / "ex12_tiny.ipynb"))
        subs[student] = {"ex12_tiny": folder / "ex12_tiny.ipynb"}
    assert RENAMED["ex2_count_even"] != ORIGINAL["ex2_count_even"]
    pairs = similarity.compare(subs, release, {"ann": "Ann Lee", "bob": "Bob Stone"})
    assert [(p.student_a, p.student_b) for p in pairs] == [("ann", "bob")], pairs
    everyone = {(p.student_a, p.student_b): p.score for p in similarity.compare(subs, release, threshold=0.0)}
    assert len(everyone) == 6 and max(v for k, v in everyone.items() if k != ("ann", "bob")) < 0.2
    p = pairs[0]
    assert p.score >= 0.9 and p.name_b == "Bob Stone"
    assert any("n_even += 1" in line for line in p.lines_b) and any("counter += 1" in line for line in p.lines_a)
    rows = similarity.review_rows(pairs)
    assert {r[0] for r in rows} == {"ann", "bob"} and "Bob Stone" in rows[0][2]
    similarity.write_html(pairs, tmp_path / "s.html", similarity.THRESHOLD)
    page = (tmp_path / "s.html").read_text()
    assert "<mark>" in page and "Ann Lee" in page
    # the release's stub is boilerplate: students who only left the stub do not match each other
    blank = {s: {"ex12_tiny": tmp_path / f"{s}.ipynb"} for s in ("x", "y")}
    for s in blank:
        nbformat.write(answered(release, "ex12_tiny"), str(blank[s]["ex12_tiny"]))
    assert similarity.compare(blank, release) == []


def test_submission_time_and_penalty_reach_nbgraders_gradebook(release, tmp_path):
    """record_in_gradebook writes what nbgrader itself reads; nbgrader's AssignLatePenalties with our
    plugin then computes the same penalty (and none for an on-time student: the planted contrast)."""
    import shutil

    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties

    db = tmp_path / "gradebook.db"
    shutil.copy(release.release_dir.parents[1] / "gradebook.db", db)
    with Gradebook(f"sqlite:///{db}") as gb:
        for student in ("late_one", "on_time"):
            gb.update_or_create_student(student)
            sub = gb.update_or_create_submission(fixture.ASSIGNMENT, student)
            for nb in sub.notebooks:
                for g in nb.grades:
                    g.auto_score = g.max_score
        gb.db.commit()
    due = late.parse_due(DUE)
    times = {
        "late_one": dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC),
        "on_time": dt.datetime(2026, 12, 8, 9, 0, tzinfo=dt.UTC),
    }
    policy = late.parse_policy("")
    late.record_in_gradebook(
        db, fixture.ASSIGNMENT, due, {s: (t, late.lateness(t, due, policy).fraction) for s, t in times.items()}
    )
    with Gradebook(f"sqlite:///{db}") as gb:
        ours = {s: gb.find_submission(fixture.ASSIGNMENT, s).late_submission_penalty for s in times}
        behind = times["late_one"] - due.utc
        late_one = gb.find_submission(fixture.ASSIGNMENT, "late_one")
        assert late_one.total_seconds_late == behind.seconds + 86400 * behind.days
    assert ours["late_one"] > 0 and ours["on_time"] == 0
    nbgrader_says = {}
    for student in times:
        for name in release.notebooks:
            pp = AssignLatePenalties(plugin_class=late.PerDayPenalty)
            pp.preprocess(
                nbformat.v4.new_notebook(),
                {
                    "nbgrader": {
                        "notebook": name,
                        "assignment": fixture.ASSIGNMENT,
                        "student": student,
                        "db_url": f"sqlite:///{db}",
                    }
                },
            )
        with Gradebook(f"sqlite:///{db}") as gb:
            nbgrader_says[student] = gb.find_submission(fixture.ASSIGNMENT, student).late_submission_penalty
    assert nbgrader_says == pytest.approx(ours)


def test_names_that_look_like_formulas_are_quoted_in_every_spreadsheet(release, tmp_path):
    """A student's profile name is theirs to choose: '=HYPERLINK(…)' must not become a live formula."""
    person = lms.Student("moodle_7", '=HYPERLINK("http://x")', "moodle", "7")
    g = export.student_grade("moodle_7", fake_results(release, 2.0, "moodle_7"), release, {})
    g.person = person
    export.write_moodle([g], release, tmp_path / "m.csv")
    export.write_grades([g], release, tmp_path / "g.csv")
    moodle = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert moodle[0]["Full name"] == '\'=HYPERLINK("http://x")' and moodle[0]["Identifier"] == "Participant 7"
    rows = list(csv.DictReader((tmp_path / "g.csv").open()))  # rows[0] is the "(max)" row
    assert rows[1]["student"] == "moodle_7" and rows[1]["display_name"].startswith("'=")
    assert export.text_cell("Ann Lee") == "Ann Lee" and export.text_cell("-1") == "'-1"


def test_export_similarity_lists_both_students_of_a_copied_pair(release, tmp_path):
    when = (2026, 12, 8, 12, 0, 0)
    downloads = zip_with_times(
        tmp_path / "canvas.zip",
        {
            "smithjohn_12345_1_ex12_tiny.ipynb": (answered(release, "ex12_tiny", ORIGINAL), when),
            "leeann_555_2_ex12_tiny.ipynb": (answered(release, "ex12_tiny", RENAMED), when),
            "okaforben_777_3_ex12_tiny.ipynb": (answered(release, "ex12_tiny", HONEST_2), when),
        },
    )
    course = course_from_downloads(release, tmp_path, downloads)
    cli.main(["export", "--course-dir", str(course), "--release", str(release.release_dir), "--similarity"])
    review = list(csv.DictReader((course / "exports" / "needs_review.csv").open()))
    similar = {r["student"]: r["reason"] for r in review if "similar to" in r["reason"]}
    assert set(similar) == {"canvas_12345", "canvas_555"}
    assert "canvas_12345 (smithjohn)" in similar["canvas_12345"] and "canvas_555 (leeann)" in similar["canvas_12345"]
    assert "out = []" in similar["canvas_555"]
    grades = {r["student"]: r for r in csv.DictReader((course / "exports" / "grades.csv").open())}
    assert grades["canvas_777"]["needs_review"] == "" and grades["canvas_555"]["needs_review"] == "yes"
