"""Results → grades.csv (per exercise and total), needs_review.csv and a summary figure.

An exercise's score is the sum of its autograded test cells (grade_id prefix ``ex{N}_``).
A notebook whose kernel died scores 0 here and is listed in needs_review.csv with the reason. Code
that looks like tampering is listed for review too, but keeps its score: scores are verdicts decided
outside the student's kernel, so tampering cannot raise them (and a false alarm costs nothing).

Written answers (nbgrader's manually graded cells) are read from the course gradebook, where
``nbgrader formgrader`` stores them; the late penalty (``late``) comes off the earned score. The
same grades go out in each LMS's own import format (``write_canvas``, ``write_moodle``); each
writer's docstring says where its format comes from."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from .assignment import Assignment
from .collect import Placement
from .late import Due, Lateness, Policy
from .lms import Student
from .preflight import Report
from .results import StudentResult


def text_cell(value: str) -> str:
    """Free text bound for a spreadsheet (names come from student-controlled file and profile names):
    a leading = + - @ would make Excel or LibreOffice run it as a formula, so it gets a quote (OWASP's
    CSV-injection advice). Ids and numbers are never passed through here."""
    value = value or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass
class StudentGrade:
    student: str
    exercises: dict[str, float]
    total: float
    manual_pending: float
    notes: list[str] = field(default_factory=list)
    review: list[tuple[str, str]] = field(default_factory=list)  # (notebook, reason)
    written: float = 0.0  # manual scores entered in formgrader
    penalty: float = 0.0  # late penalty, points
    late_note: str = ""
    person: Student | None = None  # who, as the LMS and the roster know them
    lateness: Lateness | None = None  # set by apply_late

    @property
    def final(self) -> float:
        return max(0.0, round(self.total + self.written - self.penalty, 4))

    @property
    def display_name(self) -> str:
        return self.person.display_name if self.person else self.student


def student_grade(
    student: str, result: StudentResult | None, rel: Assignment, preflight: dict[str, Report]
) -> StudentGrade:
    """One student's row: ``result`` is their grading (None: never graded, which is for review)."""
    result = result or StudentResult(student, error="not graded")
    exercises = dict.fromkeys(rel.exercises(), 0.0)
    manual = 0.0
    g = StudentGrade(student, exercises, 0.0, 0.0)
    if result.error:
        g.review.append(("", result.error))
    if result.zeroed:
        g.review.append(("", "the gradebook's tests changed during grading: every score set to 0"))
    for name, rnb in rel.notebooks.items():
        entry = result.notebooks.get(name)
        nb_scores = result.scores.get(name, {})
        report = preflight.get(name)
        if report:
            g.review += [(name, message) for message in report.for_review()]
        zero = result.zeroed
        if entry and entry.failed:
            g.review.append((name, f"not graded: {entry.reason}; scored 0"))
            zero = True
        if entry:
            g.notes += [f"{name}: {n}" for n in entry.notes]
            undone = entry.undone
            if undone:
                g.review.append(
                    (name, "tampering undone before the tests ran (no points gained): " + "; ".join(undone[:6]))
                )
        would_have = 0.0
        for rc in rnb.cells:
            got = nb_scores.get(rc.grade_id)
            score = got.earned if got else 0.0
            if rc.kind == "test":
                would_have += score
                if not zero:
                    exercises[rc.exercise] = exercises.get(rc.exercise, 0.0) + score
            elif rc.kind in ("manual", "task") and (got is None or got.needs_manual or got.score is None):
                manual += rc.points
        if entry and entry.tamper_flags:
            g.review.append(
                (
                    name,
                    f"possible tampering in the student's code (score {would_have:g} kept: "
                    "tampering cannot raise a verdict): " + "; ".join(entry.tamper_flags[:4]),
                )
            )
        g.review += [(name, w) for w in result.withheld if w.startswith(name)]
    g.total = sum(exercises.values())
    g.manual_pending = manual
    return g


def write_grades(grades: list[StudentGrade], rel: Assignment, path: Path) -> None:
    maxima = rel.max_points()
    columns = (
        ["student"]
        + list(rel.exercises())
        + [
            "total",
            "max_total",
            "manual_points_pending",
            "needs_review",
            "notes",
            "display_name",
            "lms_user_id",
            "submitted_at",
            "written",
            "late_penalty",
            "late",
            "final",
            "max_final",
        ]
    )
    max_final = sum(maxima.values()) + rel.manual_points()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerow(
            ["(max)"]
            + [f"{maxima.get(e, 0):g}" for e in rel.exercises()]
            + [
                f"{sum(maxima.values()):g}",
                "",
                f"{rel.manual_points():g}",
                "",
                "",
                "",
                "",
                "",
                f"{rel.manual_points():g}",
                "",
                "",
                f"{max_final:g}",
                "",
            ]
        )
        for g in grades:
            w.writerow(
                [g.student]
                + [f"{g.exercises.get(e, 0):g}" for e in rel.exercises()]
                + [
                    f"{g.total:g}",
                    f"{sum(maxima.values()):g}",
                    f"{g.manual_pending:g}",
                    "yes" if g.review else "",
                    " | ".join(g.notes),
                    text_cell(g.display_name),
                    g.person.lms_user_id if g.person else "",
                    g.person.submitted_at if g.person else "",
                    f"{g.written:g}",
                    f"{g.penalty:g}",
                    text_cell(g.late_note),
                    f"{g.final:g}",
                    f"{max_final:g}",
                ]
            )


def write_review(grades: list[StudentGrade], unplaced: list[Placement], path: Path) -> int:
    """needs_review.csv: one row per (student, notebook, reason), then the files nobody was graded for;
    returns the row count."""
    rows = [(g.student, nb, why) for g in grades for nb, why in g.review]
    rows += [(p.student or "", "", f"{p.origin}: {p.how}") for p in unplaced]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "notebook", "reason"])
        w.writerows(rows)
    return len(rows)


def summary_figure(grades: list[StudentGrade], rel: Assignment, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maxima = rel.max_points()
    total_max = sum(maxima.values())
    exercises = [e for e in rel.exercises() if maxima.get(e)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    totals = [g.total for g in grades]
    bins = min(20, max(5, int(total_max) or 5))
    ax1.hist(totals, bins=bins, range=(0, total_max or 1), color="#4C72B0", edgecolor="white")
    ax1.set_xlabel(f"autograded score (out of {total_max:g} points)")
    ax1.set_ylabel("number of students")
    ax1.set_title(f"Score distribution ({len(grades)} students)")
    rates = [
        100.0 * sum(g.exercises.get(e, 0) >= maxima[e] - 1e-9 for g in grades) / max(1, len(grades)) for e in exercises
    ]
    bars = ax2.bar(exercises, rates, color="#55A868")
    for bar, rate in zip(bars, rates, strict=True):
        ax2.annotate(f"{rate:.0f}%", (bar.get_x() + bar.get_width() / 2, rate), ha="center", va="bottom", fontsize=8)
    ax2.set_ylim(0, 105)
    ax2.set_xlabel("exercise")
    ax2.set_ylabel("students with every autograded test passed (%)")
    ax2.set_title("Pass rate per exercise")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- written answers and lateness --------------------------------------------------------------
def written_scores(gradebook: str | Path, rel: Assignment) -> dict[str, dict[str, float | None]]:
    """{student: {"notebook/grade_id": manual score or None}} for every manually graded cell, read from
    nbgrader's gradebook (a path or a URL; formgrader writes ``Grade.manual_score``; extra credit counts)."""
    from nbgrader.api import MissingEntry

    from .gradebook import opened

    manual = {
        (name, c.grade_id) for name, rnb in rel.notebooks.items() for c in rnb.cells if c.kind in ("manual", "task")
    }
    out: dict[str, dict[str, float | None]] = {}
    if "://" not in str(gradebook) and not Path(gradebook).exists():
        return out
    with opened(gradebook) as gb:
        try:
            subs = gb.assignment_submissions(rel.name)
        except MissingEntry:
            return out
        for sub in subs:
            per = out.setdefault(sub.student.id, {})
            for nb in sub.notebooks:
                for g in nb.grades:
                    if (nb.name, g.name) in manual:
                        per[f"{nb.name}/{g.name}"] = (
                            None if g.manual_score is None else float(g.manual_score) + float(g.extra_credit or 0)
                        )
    return out


def apply_written(grades: list[StudentGrade], rel: Assignment, scores: dict[str, dict[str, float | None]]) -> None:
    """Add the written answers' scores; what is still ungraded stays in manual_points_pending."""
    points = {
        f"{name}/{c.grade_id}": c.points
        for name, rnb in rel.notebooks.items()
        for c in rnb.cells
        if c.kind in ("manual", "task")
    }
    for g in grades:
        mine = scores.get(g.student)
        if not mine:
            continue
        given = {k: v for k, v in mine.items() if v is not None}
        g.written = round(sum(given.values()), 4)
        g.manual_pending = sum(p for k, p in points.items() if k not in given)


def apply_late(grades: list[StudentGrade], due: Due | None, policy: Policy) -> None:
    """The late penalty on each student's earned score (autograded + written), noted per student."""
    from .late import lateness

    for g in grades:
        p = g.person
        when = dt.datetime.fromisoformat(p.submitted_at) if p and p.submitted_at else None
        late = lateness(when, due, policy, bool(p and p.late_tag))
        g.lateness = late
        g.penalty = late.penalty(g.total + g.written)
        g.late_note = late.note
        if late.note and late.seconds_late == 0:  # a LATE tag the recorded time contradicts
            g.review.append(("", late.note))
        elif late.seconds_late > 0 and p and p.time_source == "file time":
            g.review.append(("", f"late by the file's own date only ({late.note}): check the time in the LMS"))


def late_record(grades: list[StudentGrade]) -> dict[str, tuple[dt.datetime | None, float]]:
    """{student: (submission time, late fraction)} as ``apply_late`` found them, for
    ``late.record_in_gradebook``."""
    return {g.student: (g.lateness.submitted_at, g.lateness.fraction) if g.lateness else (None, 0.0) for g in grades}


def add_roster_absences(grades: list[StudentGrade], people: dict[str, Student], absent: set[str]) -> None:
    """Who each student is (``person``), and a review row for each roster student who sent nothing."""
    for g in grades:
        g.person = people.get(g.student)
        if g.student in absent:
            g.review.append(("", "in the roster but submitted nothing: 0 points"))


def add_stray_files(grades: list[StudentGrade], placements: list[Placement]) -> list[Placement]:
    """A file collect could not place joins its student's review; returns the files of nobody graded
    (they go to needs_review.csv on their own rows)."""
    by_name = {g.student: g for g in grades}
    left = []
    for p in placements:
        if p.placed:
            continue
        if p.student in by_name:
            by_name[p.student].review.append(("", f"file {p.origin}: {p.how}"))
        else:
            left.append(p)
    return left


# -- LMS grade import files --------------------------------------------------------------------
def _comment(g: StudentGrade, rel: Assignment) -> str:
    auto = sum(rel.max_points().values())
    parts = [f"autograded {g.total:g}/{auto:g}"]
    if rel.manual_points():
        parts.append(
            f"written answers {g.written:g}/{rel.manual_points():g}"
            + (f" ({g.manual_pending:g} points not graded yet)" if g.manual_pending else "")
        )
    if g.penalty:
        parts.append(f"late penalty -{g.penalty:g}: {g.late_note}")
    return "; ".join(parts)


def _lms_id(g: StudentGrade, lms: str) -> str:
    p = g.person
    if p and p.lms == lms and p.lms_user_id:
        return p.lms_user_id
    prefix = f"{lms}_"
    return g.student[len(prefix) :] if g.student.startswith(prefix) and g.student[len(prefix) :].isdigit() else ""


CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def write_canvas(
    grades: list[StudentGrade], rel: Assignment, path: Path, title: str = "", assignment_id: str = ""
) -> list[str]:
    """Canvas Gradebook → Import (CSV). The layout is the one Canvas's own gradebook export writes and
    its import reads back (canvas-lms ``Course#gradebook_to_csv``; Canvas guide "How do I import grades
    in the Gradebook?"): the columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column
    per assignment titled ``<name> (<assignment id>)`` (a title without an id makes Canvas create a new
    assignment), a second row ``    Points Possible`` with the assignment's points, then one row per
    student, matched by ``ID`` (the Canvas user id). Students without a Canvas id cannot be imported:
    returned (and left out) so the caller lists them."""
    title = title or rel.name
    column = f"{title} ({assignment_id})" if assignment_id else title
    maximum = sum(rel.max_points().values()) + rel.manual_points()
    skipped = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CANVAS_COLUMNS + [column])
        w.writerow(["    Points Possible", "", "", "", "", f"{maximum:g}"])
        for g in grades:
            uid = _lms_id(g, "canvas")
            if not uid:
                skipped.append(g.student)
                continue
            p = g.person
            w.writerow(
                [
                    text_cell(p.display_name if p else g.student),
                    uid,
                    p.sis_user_id if p else "",
                    p.login_id if p else "",
                    text_cell(p.section if p else ""),
                    f"{g.final:g}",
                ]
            )
    return skipped


MOODLE_COLUMNS = [
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
# "Maximum grade" is mod_assign's 'maxgrade' string today (Moodle 2.x wrote "Maximum Grade"); the importer
# reads only Identifier, Grade, Last modified (grade) and the feedback columns, so either spelling imports.
MOODLE_DATE = "%A, %d %B %Y, %I:%M %p"  # Moodle's strftimedatetime, what its worksheet shows


def write_moodle(grades: list[StudentGrade], rel: Assignment, path: Path, now: dt.datetime | None = None) -> list[str]:
    """Moodle assignment → "Upload grading worksheet" (offline grading worksheet, a feedback type of the
    assignment). The columns are those Moodle's own "Download grading worksheet" writes (mod/assign
    ``gradingtable`` when downloading: Identifier, Full name, the identity fields such as Email address,
    Status, Grade, Maximum grade, Grade can be changed, Last modified (submission), Last modified (grade),
    then one column per feedback plugin field, "Feedback comments"). On upload Moodle
    (``assignfeedback_offline`` ``gradeimporter``) needs the columns ``Identifier``, ``Grade`` and
    ``Last modified (grade)``, takes the user from ``Participant <id>`` (the participant id of the
    download file names), skips a row whose grade in Moodle is newer than ``Last modified (grade)``
    (so it is the export time), and reads ``Feedback comments`` when that plugin is on. Students
    without a Moodle participant id are returned (and left out)."""
    now = now or dt.datetime.now().astimezone()
    maximum = sum(rel.max_points().values()) + rel.manual_points()
    skipped = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(MOODLE_COLUMNS)
        for g in grades:
            uid = _lms_id(g, "moodle")
            if not uid:
                skipped.append(g.student)
                continue
            p = g.person
            submitted = p.submitted if p else True
            when = dt.datetime.fromisoformat(p.submitted_at).astimezone() if p and p.submitted_at else None
            w.writerow(
                [
                    f"Participant {uid}",
                    text_cell(p.display_name if p else g.student),
                    p.email if p else "",
                    "Submitted for grading" if submitted else "No submission",
                    f"{g.final:.2f}",
                    f"{maximum:.2f}",
                    "Yes",
                    when.strftime(MOODLE_DATE) if when else "-",
                    now.strftime(MOODLE_DATE),
                    text_cell(_comment(g, rel)),
                ]
            )
    return skipped


LMS_FILES = {"canvas": "canvas_grades.csv", "moodle": "moodle_grading_worksheet.csv"}


def write_lms_files(
    grades: list[StudentGrade],
    rel: Assignment,
    formats: list[str],
    folder: Path,
    title: str = "",
    canvas_assignment_id: str = "",
) -> list[Path]:
    """Each LMS import file named in ``formats`` (``LMS_FILES``; "csv" is grades.csv, written anyway) in
    ``folder``; a student the file had to leave out (no LMS id) gets a review row. Returns the files."""
    by_name = {g.student: g for g in grades}
    written = []
    for fmt in formats:
        if fmt not in LMS_FILES:
            continue
        path = Path(folder) / LMS_FILES[fmt]
        if fmt == "canvas":
            left = write_canvas(grades, rel, path, title, canvas_assignment_id)
        else:
            left = write_moodle(grades, rel, path)
        written.append(path)
        for student in left:
            by_name[student].review.append(
                (
                    "",
                    f"no {fmt} id (collect with --lms {fmt} or map it with --roster): "
                    f"not in {path.name}, enter the grade by hand",
                )
            )
    return written
