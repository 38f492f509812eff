"""The grading pipeline: from a folder of downloaded notebooks to grades, feedback and a review list.

``course-grade run`` (and ``demo``) calls these steps in this order; each ``course-grade <step>``
calls one. Every step takes a ``Run`` (the course, its work folder, the assignment) and typed
keyword-only settings, and leaves its result in ``<work>/exports`` for the next step:

1. ``collect(run=, downloads=, lms=, roster=, timestamps=, due=, late_policy=)`` → ``Collected``
   Places every downloaded notebook (folder or zip; Colab and LMS names) as nbgrader's
   ``submitted/<student>/<assignment>/``; writes ``collect.csv`` (every file, placed or why not;
   ``collect.read_report``), ``collect.json`` (what collect was given; ``collect.read_record``) and
   ``students.json`` (who, with submission times; ``lmsmod.read_students``).
2. ``preflight(run=)`` → ``{student: {notebook: preflight.Report}}``
   Checks each submission against the release, repairs what is unambiguous (the student's original
   is kept in ``exports/originals``), flags the rest; ``preflight.json`` (``preflight.read_reports``).
3. ``grade(run=, jobs=, timeout=, …, executor=)`` → ``{student: results.StudentResult}``
   nbgrader generates the assignment once; each student is graded in a throwaway course, in parallel
   (forked workers, or one Dask task each), sandboxed; preflight's tamper findings go with them; the
   course gradebook gets every score; ``results.json`` (``results.read_results``).
4. ``feedback(run=, timeout=)`` → ``{student: results.FeedbackResult}``
   Renders the feedback pages again (grading already did), hidden tests removed; a page that would
   show one is withheld.
5. ``export(run=, formats=, …, similarity=)`` → ``[export.StudentGrade]``
   grades.csv (and the LMS import files asked for), needs_review.csv with the reason for each row,
   summary.png; written answers from the gradebook, late penalties, stray files and (optionally)
   similar pairs of students.

A step says what it does through ``say`` (the CLI passes ``print``; by default nothing is said) and
raises ``PipelineError`` with a message for the user when it cannot run."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import collect as collectmod
from . import export as exportmod
from . import grading, late, merge
from . import lms as lmsmod
from . import preflight as preflightmod
from . import similarity as similaritymod
from .assignment import Assignment
from .course import Layout
from .results import FeedbackResult, StudentResult, read_results, write_results

Say = Callable[[str], None]


def quiet(message: str = "") -> None:
    """The default ``say``: a step called from Python says nothing."""


class PipelineError(RuntimeError):
    """A step cannot run as asked (bad input, a missing folder, an unreachable scheduler): the message
    is for the user, and the CLI exits with it."""


@dataclass(frozen=True)
class Run:
    """One assignment of one course, and the work folder it is graded in."""

    layout: Layout
    assignment: Assignment
    work: Path  # submitted/, autograded/, feedback/, gradebook.db, exports/
    source: Path | None = None  # nbgrader's source/ (hidden tests); None: collect/preflight/export only
    checks: str = ""  # the hidden checks' folder; "": the ones shipped with the grader
    db_url: str = ""  # the course gradebook's database; "": <work>/gradebook.db

    @classmethod
    def open(
        cls,
        *,
        course: str | Path | None = None,
        assignment: str = "",
        work: str | Path = "",
        release: str | Path = "",
        source: str | Path = "",
        checks: str = "",
        db_url: str = "",
    ) -> Run:
        """The run for ``assignment`` of the course at ``course`` (course.toml), each folder the
        course's unless given."""
        layout = Layout.load(course)
        name = assignment or layout.assignment
        release_dir = Path(release or layout.release(name)).resolve()
        source_dir = Path(source or layout.source(name)).resolve()
        if not release_dir.is_dir():
            raise PipelineError(
                f"course-grade: no release folder at {release_dir}: generate it from source/ "
                "(`make release`) or give --release"
            )
        source_dir = source_dir if source_dir.is_dir() else None  # graders without source/ can still collect
        return cls(
            layout,
            Assignment.load(release_dir, source_dir),
            Path(work or layout.work).resolve(),
            source_dir,
            checks or (str(layout.checks) if layout.checks else ""),
            db_url,
        )

    @property
    def name(self) -> str:
        return self.assignment.name

    @property
    def submitted(self) -> Path:
        return self.work / "submitted"

    @property
    def exports(self) -> Path:
        return self.work / "exports"

    @property
    def originals(self) -> Path:
        """What students sent, for the notebooks preflight changed."""
        return self.exports / "originals"

    @property
    def collect_report(self) -> Path:
        return self.exports / "collect.csv"

    @property
    def collect_record(self) -> Path:
        return self.exports / "collect.json"

    @property
    def students_file(self) -> Path:
        return self.exports / "students.json"

    @property
    def preflight_file(self) -> Path:
        return self.exports / "preflight.json"

    @property
    def results_file(self) -> Path:
        return self.exports / "results.json"

    @property
    def gradebook(self) -> str | Path:
        """The course gradebook: a URL (``db_url``) or the work folder's SQLite file."""
        return self.db_url or self.work / "gradebook.db"

    @property
    def has_gradebook(self) -> bool:
        return bool(self.db_url) or (self.work / "gradebook.db").exists()

    def student_folders(self) -> dict[str, Path]:
        """{student: their submission folder} for everyone collected."""
        if not self.submitted.exists():
            return {}
        return {p.name: p / self.name for p in sorted(self.submitted.iterdir()) if (p / self.name).is_dir()}


def _due_and_policy(due: str, late_policy: str) -> tuple[late.Due | None, late.Policy]:
    try:
        return late.due_and_policy(due, late_policy)
    except late.LateError as exc:
        raise PipelineError(f"course-grade: {exc}") from None


def _no_tqdm_monitor():
    from tqdm.auto import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: a single-threaded grader forks its workers (warm imports)
    return tqdm


# -- 1. collect --------------------------------------------------------------------------------
@dataclass
class Collected:
    placements: list[collectmod.Placement]
    people: dict[str, lmsmod.Student]


def collect(
    *,
    run: Run,
    downloads: Path,
    lms: str = "names",
    roster: Path | None = None,
    timestamps: Path | None = None,
    due: str = "",
    late_policy: str = "",
    say: Say = quiet,
) -> Collected:
    """Place ``downloads`` as ``submitted/<student>/<assignment>/`` (replacing what an earlier collect
    placed) and report every file.

    Args:
        lms: how download names are read: canvas, moodle, auto or names (``lms.LMS_CHOICES``).
        roster: a class list, Canvas gradebook export or Moodle grading worksheet.
        timestamps: a CSV (student,timestamp) of submission times when the download carries none.
        due, late_policy: as ``late.parse_due`` / ``late.parse_policy`` read them; recorded for export.
    Returns:
        every file's placement and every student (roster included)."""
    mode = lms or "names"
    due_at, policy = _due_and_policy(due, late_policy)
    the_roster = None
    if roster:
        try:
            the_roster = lmsmod.load_roster(Path(roster))
        except lmsmod.RosterError as exc:
            raise PipelineError(f"course-grade: {exc}") from None
    if timestamps and not Path(timestamps).is_file():
        raise PipelineError(
            f"course-grade: no timestamps file at {timestamps} (a CSV with the columns student,timestamp)"
        )
    say(f"==> collect: {downloads} → {run.submitted}/<student>/{run.name}/ (file names read as: {mode})")
    if run.submitted.exists():
        shutil.rmtree(run.submitted)
    shutil.rmtree(run.originals, ignore_errors=True)
    try:
        placements, people = collectmod.collect_students(
            downloads,
            run.assignment,
            run.submitted,
            lms=mode,
            roster=the_roster,
            timestamps=Path(timestamps) if timestamps else None,
            zone=due_at.zone if due_at else late.UTC,
        )
    except collectmod.UnsafeArchive:
        raise
    except ValueError as exc:
        raise PipelineError(f"course-grade: {exc}") from None
    collectmod.write_report(placements, run.collect_report)
    collectmod.write_record(
        run.collect_record,
        collectmod.Record(
            str(Path(downloads).resolve()),
            mode,
            due,
            late_policy or late.DEFAULT_POLICY,
            the_roster.to_dict() if the_roster else None,
        ),
    )
    lmsmod.write_students(run.students_file, people)

    placed = [p for p in placements if p.placed and p.kept]
    say(
        f"    {len(placements)} file(s): {len(placed)} notebook(s) placed for "
        f"{len({p.student for p in placed})} student(s)"
    )
    for p in placements:
        if p.placed and not p.kept:
            say(f"    older copy ignored: {p.origin} ({p.how})")
    for p in placements:
        if not p.placed:
            say(f"    NOT PLACED: {p.origin}: {p.how}")
    for sid, person in sorted(people.items()):
        lateness = late.lateness(late.from_iso(person.submitted_at), due_at, policy, person.late_tag)
        if lateness.note:
            say(f"    LATE {sid} ({person.display_name}): {lateness.note}")
        if not person.submitted:
            say(f"    NO SUBMISSION: {sid} ({person.display_name}) is in the roster and sent nothing")
        elif the_roster and not person.in_roster:
            say(f"    NOT IN ROSTER: {sid} ({person.display_name})")
    say(f"    report: {run.collect_report}; students: {run.students_file}")
    return Collected(placements, people)


# -- 2. preflight ------------------------------------------------------------------------------
def preflight(*, run: Run, say: Say = quiet) -> preflightmod.Reports:
    """Check and repair every collected submission against the release (``preflight.check_folder``).

    Returns:
        {student: {notebook: Report}}, also written to ``exports/preflight.json``."""
    tqdm = _no_tqdm_monitor()
    say(f"==> preflight: checking every submission against release/{run.name}")
    reports: preflightmod.Reports = {}
    for student, folder in tqdm(run.student_folders().items(), desc="preflight", unit="student", disable=None):
        reports[student] = preflightmod.check_folder(folder, run.assignment, student, run.originals / student)
    preflightmod.write_reports(run.preflight_file, reports)
    counts: dict[str, int] = {}
    for per in reports.values():
        for r in per.values():
            counts[r.status] = counts.get(r.status, 0) + 1
    say("    notebooks: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for student, per in reports.items():
        for name, r in per.items():
            for message in r.for_review():
                say(f"    REVIEW {student}/{name}: {message}")
    return reports


# -- 3. grade ----------------------------------------------------------------------------------
DEFAULT_SCHEDULER = "tcp://127.0.0.1:8786"


def grade(
    *,
    run: Run,
    jobs: int = 0,
    notebook_jobs: int = 0,
    timeout: int = 60,
    memory_mb: int = 4096,
    student_timeout: int = 900,
    sandbox: bool = True,
    kernel_start: str = "fork",
    feedback: bool = True,
    students: list[str] | None = None,
    fresh_gradebook: bool = False,
    keep_work: bool = False,
    executor: str = "local",
    scheduler: str = DEFAULT_SCHEDULER,
    probe_seed: str = "",
    say: Say = quiet,
) -> dict[str, StudentResult]:
    """Autograde every collected student (or ``students``) and merge them into the course gradebook.

    Args:
        jobs: students graded at once (0: the CPU cores); notebook_jobs: notebooks of one student graded
            at once (0: the cores the students leave free; on Dask, a worker's cores over its threads);
            timeout: per cell, seconds; memory_mb: heap cap per kernel (0: none); student_timeout: one
            student's whole submission, seconds.
        sandbox: bubblewrap when available (else, or with False, a loud warning and no box).
        kernel_start: "fork" (from a pre-warmed zygote) or "fresh"; feedback: render the pages.
        fresh_gradebook: rebuild the course gradebook (loses manual grades); keep_work: keep the
            throwaway courses; executor: "local" or "dask" (at ``scheduler``); probe_seed: the hidden
            checks' inputs ("" = new each run).
    Returns:
        every student's result so far (earlier runs' too), also in ``exports/results.json``."""
    tqdm = _no_tqdm_monitor()
    if not run.source:
        raise PipelineError(
            "course-grade: grading needs the assignment's source folder (nbgrader's source/ "
            "holds the hidden tests): give --source or put it where course.toml says"
        )
    folders = run.student_folders()
    if students:
        folders = {s: f for s, f in folders.items() if s in set(students)}
    if not folders:
        raise PipelineError(f"nothing to grade in {run.submitted}: run `course-grade collect DOWNLOADS` first")
    jobs = jobs or os.cpu_count() or 1
    # a core no student uses grades another notebook of one: one student on two cores takes half the time
    if not notebook_jobs and executor != "dask":  # on Dask each worker decides (dask_grading.worker_share)
        notebook_jobs = max(1, (os.cpu_count() or 1) // min(jobs, len(folders)))
    each = f", {notebook_jobs} notebooks of each at once" if notebook_jobs > 1 else ""
    say(
        f"==> grade: {len(folders)} student(s), {jobs} in parallel{each}, cell timeout {timeout} s, "
        f"memory cap {memory_mb} MiB per kernel"
    )
    from .sandbox import decide

    sandboxed, lines = decide(sandbox)
    for line in lines:
        say(line)
    client = None
    if executor == "dask":  # before anything is written: an unreachable scheduler changes nothing
        from .dask_grading import SchedulerUnreachable, connect

        try:
            client = connect(scheduler)
        except SchedulerUnreachable as exc:
            raise PipelineError(f"course-grade: {exc}") from None
        workers = len(client.scheduler_info().get("workers", {}))
        say(f"    executor: Dask at {scheduler} ({workers} worker(s) now; each student is one task)")
    work = Path(tempfile.mkdtemp(prefix="course-grade-"))
    opts = grading.GradeOptions(
        timeout=timeout,
        jobs=jobs,
        notebook_jobs=notebook_jobs,
        memory_mb=memory_mb,
        sandbox=sandboxed,
        student_timeout=student_timeout,
        feedback=feedback,
        checks_dir=run.checks,
        kernel_start=kernel_start,
        **({"probe_seed": probe_seed} if probe_seed else {}),
    )
    # the zygote imports torch & co. while nbgrader generates the assignment (local workers use it)
    # (when it cannot, grade_all says why once)
    zygote = grading.start_zygote(opts, run.assignment)[0] if client is None else None
    try:
        t0 = time.perf_counter()
        template = grading.build_template(run.source, work, timeout, run.layout.course_id)
        say(f"    nbgrader generated the assignment once ({time.perf_counter() - t0:.1f} s)")
        tampered = preflightmod.tamper_flags(preflightmod.read_reports(run.preflight_file))
        gradebook = merge.course_gradebook(run.work, template, fresh=fresh_gradebook, db_url=run.db_url)
        bar = tqdm(total=len(folders), desc="grading", unit="student", disable=None)

        def write(message: str) -> None:  # a line above the progress bar
            with tqdm.external_write_mode():
                say(message)

        results = read_results(run.results_file)
        t0 = time.perf_counter()

        def done(student: str, result: StudentResult) -> None:
            merge.merge_student(run.work, gradebook, template, result, work)
            results[student] = result
            bar.set_postfix_str(f"{student} {result.seconds:.0f}s")
            bar.update(1)
            if bar.disable:  # no terminal (CI, a log file): one line per student instead of a bar
                say(f"    graded {student} in {result.seconds:.1f} s ({result.points:g} points before review)")
            for p in result.problems():
                write(f"    {student}: {p}")

        secret = run.assignment.secret_lines(run.checks or None)
        if client is not None:
            from .dask_grading import grade_all_dask

            grade_all_dask(client, folders, template, run.assignment, opts, work, secret, tampered, progress=done)
        else:
            grading.grade_all(
                folders, template, run.assignment, opts, work, secret, tampered, progress=done, say=write, zygote=zygote
            )
        bar.close()
        wall = time.perf_counter() - t0
        write_results(run.results_file, results)
        per_student = [r.seconds for s, r in results.items() if s in folders]
        say(
            f"    graded {len(folders)} student(s) in {wall:.1f} s wall clock "
            f"({wall / len(folders):.1f} s per student; one student alone took "
            f"{min(per_student):.1f}–{max(per_student):.1f} s)"
        )
        say(f"    course gradebook: {merge.safe_url(gradebook)} (open `nbgrader formgrader` for the written answers)")
        return results
    finally:
        if client is not None:
            client.close()
        if zygote is not None:
            zygote.stop()
        if keep_work:
            say(f"    work folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# -- 4. feedback -------------------------------------------------------------------------------
def feedback(*, run: Run, timeout: int = 60, say: Say = quiet) -> dict[str, FeedbackResult]:
    """Render every graded student's feedback pages again from the course folder's autograded
    notebooks (``grading.feedback_again``); ``exports/results.json`` notes what was withheld.

    Returns:
        {student: FeedbackResult} for the students with autograded notebooks."""
    results = read_results(run.results_file)
    hidden = run.assignment.secret_lines(run.checks or None)
    say(f"==> feedback: {len(results)} student(s)")
    work = Path(tempfile.mkdtemp(prefix="course-grade-fb-"))
    rendered: dict[str, FeedbackResult] = {}
    try:
        for student in sorted(results):
            verdicts = {nb: e.verdicts for nb, e in results[student].notebooks.items()}
            out = grading.feedback_again(
                run.work,
                student,
                run.assignment,
                hidden,
                timeout,
                verdicts,
                work,
                db_url=run.db_url,
                course_id=run.layout.course_id,
            )
            if out is None:
                continue
            results[student].feedback = rendered[student] = out
            for w in out.withheld:
                say(f"    WITHHELD {student}: {w}")
        write_results(run.results_file, results)
        say(f"    feedback pages: {run.work / 'feedback'}/<student>/{run.name}/*.html")
        return rendered
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- 5. export ---------------------------------------------------------------------------------
def export(
    *,
    run: Run,
    formats: list[str] | None = None,
    assignment_title: str = "",
    canvas_assignment_id: str = "",
    similarity: bool = False,
    similarity_threshold: float = 0.6,
    due: str = "",
    late_policy: str = "",
    say: Say = quiet,
) -> list[exportmod.StudentGrade]:
    """Grades from everything the earlier steps left in ``exports/``, and the files a grader needs.

    Args:
        formats: LMS import files besides grades.csv ("canvas", "moodle"; "csv" is grades.csv).
        assignment_title, canvas_assignment_id: the Canvas column ("Title (id)").
        similarity: compare students' answer code; pairs at or above ``similarity_threshold``
            go to the review list and exports/similarity.html.
        due, late_policy: the due date and policy (default: what collect was given).
    Returns:
        one StudentGrade per student (graded, or in the roster with nothing sent)."""
    record = collectmod.read_record(run.collect_record)
    due_at, policy = _due_and_policy(
        due or (record.due if record else ""), late_policy or (record.late_policy if record else "")
    )
    results = read_results(run.results_file)
    reports = preflightmod.read_reports(run.preflight_file)
    people = lmsmod.read_students(run.students_file)
    folders = run.student_folders()
    absent = {sid for sid, p in people.items() if not p.submitted and sid not in folders}
    # a roster student who sent nothing: 0, no grading error
    grades = [
        exportmod.student_grade(
            s, StudentResult(s) if s in absent else results.get(s), run.assignment, reports.get(s, {})
        )
        for s in sorted(set(folders) | set(results) | absent)
    ]
    exportmod.add_roster_absences(grades, people, absent)
    written = exportmod.written_scores(run.gradebook, run.assignment) if run.has_gradebook else {}
    exportmod.apply_written(grades, run.assignment, written)
    exportmod.apply_late(grades, due_at, policy)
    unplaced = exportmod.add_stray_files(grades, collectmod.read_report(run.collect_report))
    if similarity:
        _similar_pairs(run, grades, folders, similarity_threshold, say)
    if run.has_gradebook and people:
        lmsmod.name_in_gradebook(run.gradebook, people)
    if run.has_gradebook and due_at:  # due date, times and penalties into nbgrader's gradebook (formgrader shows them)
        late.record_in_gradebook(run.gradebook, run.name, due_at, exportmod.late_record(grades))
    for g in grades:
        folder = run.work / "feedback" / g.student / run.name
        if folder.exists():
            late.annotate_feedback(
                folder, f"{g.late_note}; {g.penalty:g} points deducted" if g.penalty else g.late_note
            )
    exportmod.write_grades(grades, run.assignment, run.exports / "grades.csv")
    files = [run.exports / "grades.csv"]
    files += exportmod.write_lms_files(
        grades, run.assignment, formats or ["csv"], run.exports, assignment_title, canvas_assignment_id
    )
    n_review = exportmod.write_review(grades, unplaced, run.exports / "needs_review.csv")
    if grades:
        exportmod.summary_figure(grades, run.assignment, run.exports / "summary.png")

    maxima = sum(run.assignment.max_points().values())
    say(
        f"==> export: {len(grades)} student(s), autograded total out of {maxima:g}"
        + (f", due {due_at.at:%Y-%m-%d %H:%M %Z} ({policy.describe()})" if due_at else "")
    )
    if grades:
        totals = sorted(g.total for g in grades)
        say(
            f"    median {totals[len(totals) // 2]:g}, min {totals[0]:g}, max {totals[-1]:g}; "
            f"{sum(1 for g in grades if g.review)} student(s) and {len(unplaced)} file(s) need a human look"
        )
        late_ones = [g for g in grades if g.penalty]
        if late_ones:
            say(f"    late: {', '.join(f'{g.student} -{g.penalty:g}' for g in late_ones)}")
    for path in files:
        say(f"    {path}")
    say(f"    {run.exports / 'needs_review.csv'} ({n_review} row(s))")
    say(f"    {run.exports / 'summary.png'}")
    return grades


def _similar_pairs(
    run: Run, grades: list[exportmod.StudentGrade], folders: dict[str, Path], threshold: float, say: Say
) -> None:
    """Pairs of students whose answer code is alike: review rows, similarity.json and .html."""
    subs = {s: {nb: f / rnb.filename for nb, rnb in run.assignment.notebooks.items()} for s, f in folders.items()}
    pairs = similaritymod.compare(subs, run.assignment, {g.student: g.display_name for g in grades}, threshold)
    by_name = {g.student: g for g in grades}
    for student, nb, why in similaritymod.review_rows(pairs):
        by_name[student].review.append((nb, why))
    run.exports.mkdir(parents=True, exist_ok=True)
    similaritymod.write_json(pairs, run.exports / "similarity.json")
    similaritymod.write_html(pairs, run.exports / "similarity.html", threshold)
    say(f"    similarity: {len(pairs)} pair(s) at or above {threshold * 100:.0f} %: {run.exports / 'similarity.html'}")
