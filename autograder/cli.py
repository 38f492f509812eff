"""course-grade: from a folder of downloaded notebooks to grades.csv, safe feedback and a review list.

    course-grade run DOWNLOADS      collect → preflight → grade (parallel, sandboxed) → export
    course-grade demo               the same on the course's demo class (course.toml: demo)
    course-grade collect|preflight|grade|feedback|export|sandbox   one step at a time

The course is the folder with course.toml (--course DIR; default: the working folder or one above
it): its id, assignments and folders. Everything about an assignment (notebooks, grade_ids, points,
exercises) is read from its release/ and source/ at run time. Work folders live in --course-dir
(default: course.toml's work folder, autograder/ here, git-ignored)."""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .assignment import Assignment
from .course import Layout

BANNER = "!" * 78


def _say(msg: str = "") -> None:
    print(msg, flush=True)


class Context:
    def __init__(self, args):
        self.args = args
        self.layout = Layout.load(args.course)
        assignment = args.assignment or self.layout.assignment
        self.course = Path(args.course_dir or self.layout.work).resolve()
        self.release = Path(args.release or self.layout.release(assignment)).resolve()
        source = Path(args.source or self.layout.source(assignment)).resolve()
        self.source = source if source.is_dir() else None     # graders without source/ can still collect
        if not args.checks and self.layout.checks:
            args.checks = str(self.layout.checks)
        if not self.release.is_dir():
            raise SystemExit(f"course-grade: no release folder at {self.release}: generate it from source/ "
                             "(`make release`) or give --release")
        self.rel = Assignment.load(self.release, self.source)
        self.exports = self.course / "exports"
        self.submitted = self.course / "submitted"

    @property
    def name(self) -> str:
        return self.rel.name

    def student_folders(self) -> dict[str, Path]:
        if not self.submitted.exists():
            return {}
        return {p.name: p / self.name for p in sorted(self.submitted.iterdir()) if (p / self.name).is_dir()}

    def load_json(self, name: str, default):
        path = self.exports / name
        return json.loads(path.read_text()) if path.exists() else default

    def save_json(self, name: str, data) -> None:
        self.exports.mkdir(parents=True, exist_ok=True)
        (self.exports / name).write_text(json.dumps(data, indent=1, sort_keys=True))


# -- steps -------------------------------------------------------------------------------------
def _due_and_policy(ctx: Context, saved: dict | None = None):
    """--due / --late-policy from the command line, else what collect recorded."""
    from . import late

    saved = saved or {}
    due_text = getattr(ctx.args, "due", "") or saved.get("due", "")
    policy_text = getattr(ctx.args, "late_policy", "") or saved.get("late_policy", "")
    try:
        due = late.parse_due(due_text) if due_text else None
        policy = late.parse_policy(policy_text)
    except late.LateError as exc:
        raise SystemExit(f"course-grade: {exc}") from None
    return due, policy, due_text, policy_text or "per-day:10,max-days:7"


def step_collect(ctx: Context, downloads: Path) -> None:
    from dataclasses import asdict

    from . import collect, late, lms

    a = ctx.args
    mode = getattr(a, "lms", "names") or "names"
    due, policy, due_text, policy_text = _due_and_policy(ctx)
    roster = None
    if getattr(a, "roster", ""):
        try:
            roster = lms.load_roster(Path(a.roster))
        except lms.RosterError as exc:
            raise SystemExit(f"course-grade: {exc}") from None
    stamps = Path(a.timestamps) if getattr(a, "timestamps", "") else None
    if stamps and not stamps.is_file():
        raise SystemExit(f"course-grade: no timestamps file at {stamps} (a CSV with the columns student,timestamp)")
    _say(f"==> collect: {downloads} → {ctx.submitted}/<student>/{ctx.name}/ (file names read as: {mode})")
    if ctx.submitted.exists():
        shutil.rmtree(ctx.submitted)
    shutil.rmtree(ctx.exports / "originals", ignore_errors=True)
    try:
        placements, people = collect.collect_students(downloads, ctx.rel, ctx.submitted, lms=mode, roster=roster,
                                                      timestamps=stamps, zone=due.zone if due else late.UTC)
    except ValueError as exc:
        if isinstance(exc, collect.UnsafeArchive):
            raise
        raise SystemExit(f"course-grade: {exc}") from None
    collect.write_report(placements, ctx.exports / "collect.csv")
    ctx.save_json("collect.json", {"downloads": str(Path(downloads).resolve()), "lms": mode, "due": due_text,
                                   "late_policy": policy_text, "roster": roster.to_dict() if roster else None})
    ctx.save_json("students.json", {sid: asdict(s) for sid, s in sorted(people.items())})
    placed = [p for p in placements if p.placed and p.kept]
    students = sorted({p.student for p in placed})
    _say(f"    {len(placements)} file(s): {len(placed)} notebook(s) placed for {len(students)} student(s)")
    for p in placements:
        if p.placed and not p.kept:
            _say(f"    older copy ignored: {p.origin} ({p.how})")
    unplaced = [p for p in placements if not p.placed]
    for p in unplaced:
        _say(f"    NOT PLACED: {p.origin}: {p.how}")
    for sid, person in sorted(people.items()):
        when = datetime_from_iso(person.submitted_at)
        lateness = late.lateness(when, due, policy, person.late_tag)
        if lateness.note:
            _say(f"    LATE {sid} ({person.display_name}): {lateness.note}")
        if not person.submitted:
            _say(f"    NO SUBMISSION: {sid} ({person.display_name}) is in the roster and sent nothing")
        elif roster and not person.in_roster:
            _say(f"    NOT IN ROSTER: {sid} ({person.display_name})")
    _say(f"    report: {ctx.exports / 'collect.csv'}; students: {ctx.exports / 'students.json'}")


def datetime_from_iso(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text) if text else None


def step_preflight(ctx: Context) -> dict:
    from tqdm.auto import tqdm

    tqdm.monitor_interval = 0     # no monitor thread: a single-threaded grader forks its workers (warm imports)

    from .preflight import preflight_within

    _say(f"==> preflight: checking every submission against release/{ctx.name}")
    reports: dict[str, dict] = {}
    folders = ctx.student_folders()
    originals = ctx.exports / "originals"
    for student, folder in tqdm(folders.items(), desc="preflight", unit="student", disable=None):
        reports[student] = {}
        for name, rnb in ctx.rel.notebooks.items():
            path = folder / rnb.filename
            original = originals / student / rnb.filename
            if original.exists():          # preflight again: start from what the student sent
                shutil.copy(original, path)
            if not path.exists():
                reports[student][name] = {"student": student, "notebook": name, "status": "missing",
                                          "findings": [{"severity": "info", "grade_id": None,
                                                        "message": f"{rnb.filename} was not submitted: 0 points"}]}
                continue
            nb = nbformat.read(str(path), as_version=4)
            fixed, report = preflight_within(nb, rnb, student)
            reports[student][name] = report.to_dict()
            if report.status != "ok":
                original.parent.mkdir(parents=True, exist_ok=True)
                if not original.exists():
                    shutil.copy(path, original)
            nbformat.write(fixed, str(path))
    ctx.save_json("preflight.json", reports)
    counts: dict[str, int] = {}
    for per in reports.values():
        for r in per.values():
            counts[r["status"]] = counts.get(r["status"], 0) + 1
    _say("    notebooks: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    for student, per in reports.items():
        for name, r in per.items():
            for f in r["findings"]:
                if f["severity"] in ("review", "tamper"):
                    _say(f"    REVIEW {student}/{name}: {f['message']}")
    return reports


def sandbox_banner(enabled: bool) -> bool:
    from .sandbox import status

    st = status()
    if enabled and st.available:
        _say(f"    sandbox: ON ({st.reason})")
        return True
    why = "disabled with --no-sandbox" if not enabled else st.reason
    _say(BANNER)
    _say("!! WARNING: student kernels run WITHOUT a sandbox: they can read files the grader can read")
    _say("!! (source/ with solutions and hidden tests) and write anywhere the grader can write.")
    _say(f"!! Reason: {why}")
    _say("!! Still in place: memory cap, per-cell timeout, tamper guard, gradebook integrity check.")
    _say(BANNER)
    return False


def step_grade(ctx: Context) -> dict:
    from tqdm.auto import tqdm

    tqdm.monitor_interval = 0     # no monitor thread: a single-threaded grader forks its workers (warm imports)

    from . import grading, merge
    from .results import results_from_dict, results_to_dict

    a = ctx.args
    if not ctx.source:
        raise SystemExit("course-grade: grading needs the assignment's source folder (nbgrader's source/ holds "
                         "the hidden tests): give --source or put it where course.toml says")
    folders = ctx.student_folders()
    if a.students:
        wanted = set(a.students.split(","))
        folders = {s: f for s, f in folders.items() if s in wanted}
    if not folders:
        raise SystemExit(f"nothing to grade in {ctx.submitted}: run `course-grade collect DOWNLOADS` first")
    jobs = a.jobs or os.cpu_count() or 1
    _say(f"==> grade: {len(folders)} student(s), {jobs} in parallel, cell timeout {a.timeout} s, "
         f"memory cap {a.memory_mb} MiB per kernel")
    sandboxed = sandbox_banner(not a.no_sandbox)
    client = None
    if a.executor == "dask":    # before anything is written: an unreachable scheduler changes nothing
        from .dask_grading import SchedulerUnreachable, connect

        try:
            client = connect(a.scheduler)
        except SchedulerUnreachable as exc:
            raise SystemExit(f"course-grade: {exc}") from None
        workers = len(client.scheduler_info().get("workers", {}))
        _say(f"    executor: Dask at {a.scheduler} ({workers} worker(s) now; each student is one task)")
    work = Path(tempfile.mkdtemp(prefix="course-grade-"))
    opts = grading.GradeOptions(timeout=a.timeout, jobs=jobs, memory_mb=a.memory_mb, sandbox=sandboxed,
                                student_timeout=a.student_timeout, feedback=not a.no_feedback,
                                checks_dir=a.checks, kernel_start=a.kernel_start,
                                **({"probe_seed": a.probe_seed} if a.probe_seed else {}))
    # the zygote imports torch & co. while nbgrader generates the assignment (local workers use it)
    # (when it cannot, grade_all says why once)
    zygote = grading.start_zygote(opts, ctx.rel)[0] if client is None else None
    try:
        t0 = time.perf_counter()
        template = grading.build_template(ctx.source, work, a.timeout, ctx.layout.course_id)
        _say(f"    nbgrader generated the assignment once ({time.perf_counter() - t0:.1f} s)")
        preflight = ctx.load_json("preflight.json", {})
        tampered = {s: {nb: [f["message"] for f in r["findings"] if f["severity"] == "tamper"]
                         for nb, r in per.items() if any(f["severity"] == "tamper" for f in r["findings"])}
                    for s, per in preflight.items()}
        gradebook = merge.course_gradebook(ctx.course, template, fresh=a.fresh_gradebook, db_url=a.db_url)
        bar = tqdm(total=len(folders), desc="grading", unit="student", disable=None)
        results = results_from_dict(ctx.load_json("results.json", {}))
        t0 = time.perf_counter()

        def done(student, result):
            merge.merge_student(ctx.course, gradebook, template, result, work)
            results[student] = result
            bar.set_postfix_str(f"{student} {result.seconds:.0f}s")
            bar.update(1)
            if bar.disable:   # no terminal (CI, a log file): one line per student instead of a bar
                _say(f"    graded {student} in {result.seconds:.1f} s ({result.points:g} points before review)")
            for p in result.problems():
                bar.write(f"    {student}: {p}")

        secret = ctx.rel.secret_lines(a.checks or None)
        if client is not None:
            from .dask_grading import grade_all_dask

            grade_all_dask(client, folders, template, ctx.rel, opts, work, secret, tampered, progress=done)
        else:
            grading.grade_all(folders, template, ctx.rel, opts, work, secret, tampered, progress=done, say=bar.write,
                              zygote=zygote)
        bar.close()
        wall = time.perf_counter() - t0
        ctx.save_json("results.json", results_to_dict(results))
        per_student = [r.seconds for s, r in results.items() if s in folders]
        _say(f"    graded {len(folders)} student(s) in {wall:.1f} s wall clock "
             f"({wall / len(folders):.1f} s per student; one student alone took "
             f"{min(per_student):.1f}–{max(per_student):.1f} s)")
        _say(f"    course gradebook: {merge.safe_url(gradebook)} (open `nbgrader formgrader` for the written answers)")
        return results
    finally:
        if client is not None:
            client.close()
        if zygote is not None:
            zygote.stop()
        if a.keep_work:
            _say(f"    work folders kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def step_feedback(ctx: Context) -> None:
    """Re-render feedback from the course folder's autograded notebooks (grading already does it)."""
    from . import grading
    from .results import results_from_dict, results_to_dict

    results = results_from_dict(ctx.load_json("results.json", {}))
    hidden = ctx.rel.secret_lines(ctx.args.checks or None)
    _say(f"==> feedback: {len(results)} student(s)")
    work = Path(tempfile.mkdtemp(prefix="course-grade-fb-"))
    try:
        for student in sorted(results):
            root = work / student
            src = ctx.course / "autograded" / student / ctx.name
            if not src.exists():
                continue
            shutil.copytree(src, root / "autograded" / student / ctx.name)
            if (ctx.submitted / student / ctx.name).exists():   # the student's own lines are no leak
                shutil.copytree(ctx.submitted / student / ctx.name, root / "submitted" / student / ctx.name)
            if not ctx.args.db_url:
                shutil.copy(ctx.course / "gradebook.db", root / "gradebook.db")
            template = grading.Template(root, root / "gradebook.db", ctx.name, [], [], "")
            verdicts = {nb: e.verdicts for nb, e in results[student].notebooks.items()}
            out = grading.render_feedback(root, student, template, ctx.rel, hidden, ctx.args.timeout, verdicts,
                                          db_url=ctx.args.db_url)
            dest = ctx.course / "feedback" / student / ctx.name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(root / "feedback" / student / ctx.name, dest)
            results[student].feedback = out
            for w in out.withheld:
                _say(f"    WITHHELD {student}: {w}")
        ctx.save_json("results.json", results_to_dict(results))
        _say(f"    feedback pages: {ctx.course / 'feedback'}/<student>/{ctx.name}/*.html")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def step_export(ctx: Context) -> list:
    from . import export, late, lms, similarity
    from .results import StudentResult, results_from_dict

    a = ctx.args
    results = results_from_dict(ctx.load_json("results.json", {}))
    preflight = ctx.load_json("preflight.json", {})
    people = {sid: lms.Student.from_dict(d) for sid, d in ctx.load_json("students.json", {}).items()}
    due, policy, _, _ = _due_and_policy(ctx, ctx.load_json("collect.json", {}))
    folders = ctx.student_folders()
    absent = sorted(sid for sid, p in people.items() if not p.submitted and sid not in folders)
    students = sorted(set(folders) | set(results) | set(absent))
    # a roster student who sent nothing: 0, no grading error
    grades = [export.student_grade(s, StudentResult(s) if s in absent else results.get(s), ctx.rel,
                                   preflight.get(s, {})) for s in students]
    for g in grades:
        g.person = people.get(g.student)
        if g.student in absent:
            g.review.append(("", "in the roster but submitted nothing: 0 points"))
    gradebook = a.db_url or ctx.course / "gradebook.db"        # a URL (--db-url) or the course's SQLite file
    have_gradebook = bool(a.db_url) or (ctx.course / "gradebook.db").exists()
    export.apply_written(grades, ctx.rel, export.written_scores(gradebook, ctx.rel) if have_gradebook else {})
    export.apply_late(grades, due, policy)
    unplaced = []
    collect_csv = ctx.exports / "collect.csv"
    if collect_csv.exists():
        with open(collect_csv) as f:
            unplaced = [(r["origin"], r["student"], r["how"]) for r in csv.DictReader(f) if r["placed"] != "True"]
    by_name = {g.student: g for g in grades}
    for origin, student, how in list(unplaced):   # a student's stray file is part of their review
        if student in by_name:
            by_name[student].review.append(("", f"file {origin}: {how}"))
            unplaced.remove((origin, student, how))
    if getattr(a, "similarity", False):
        threshold = a.similarity_threshold
        subs = {s: {nb: f / rnb.filename for nb, rnb in ctx.rel.notebooks.items()} for s, f in folders.items()}
        pairs = similarity.compare(subs, ctx.rel, {g.student: g.display_name for g in grades}, threshold)
        for student, nb, why in similarity.review_rows(pairs):
            by_name[student].review.append((nb, why))
        ctx.exports.mkdir(parents=True, exist_ok=True)
        similarity.write_json(pairs, ctx.exports / "similarity.json")
        similarity.write_html(pairs, ctx.exports / "similarity.html", threshold)
        _say(f"    similarity: {len(pairs)} pair(s) at or above {threshold * 100:.0f} %: "
             f"{ctx.exports / 'similarity.html'}")
    if have_gradebook and people:
        lms.name_in_gradebook(gradebook, people)
    if have_gradebook and due:     # due date, times and penalties into nbgrader's gradebook (formgrader shows them)
        late.record_in_gradebook(gradebook, ctx.name, due, {
            g.student: (datetime_from_iso(g.person.submitted_at) if g.person else None,
                        late.lateness(datetime_from_iso(g.person.submitted_at) if g.person else None, due, policy,
                                      bool(g.person and g.person.late_tag)).fraction)
            for g in grades})
    for g in grades:
        folder = ctx.course / "feedback" / g.student / ctx.name
        if folder.exists():
            late.annotate_feedback(folder, f"{g.late_note}; {g.penalty:g} points deducted" if g.penalty
                                   else g.late_note)
    formats = getattr(a, "format", None) or ["csv"]
    export.write_grades(grades, ctx.rel, ctx.exports / "grades.csv")
    written = [ctx.exports / "grades.csv"]
    for fmt in formats:
        if fmt == "canvas":
            path = ctx.exports / "canvas_grades.csv"
            left = export.write_canvas(grades, ctx.rel, path, a.assignment_title, a.canvas_assignment_id)
        elif fmt == "moodle":
            path = ctx.exports / "moodle_grading_worksheet.csv"
            left = export.write_moodle(grades, ctx.rel, path)
        else:
            continue
        written.append(path)
        for student in left:
            by_name[student].review.append(("", f"no {fmt} id (collect with --lms {fmt} or map it with --roster): "
                                                f"not in {path.name}, enter the grade by hand"))
    n_review = export.write_review(grades, unplaced, ctx.exports / "needs_review.csv")
    if grades:
        export.summary_figure(grades, ctx.rel, ctx.exports / "summary.png")
    maxima = sum(ctx.rel.max_points().values())
    _say(f"==> export: {len(grades)} student(s), autograded total out of {maxima:g}"
         + (f", due {due.at:%Y-%m-%d %H:%M %Z} ({policy.describe()})" if due else ""))
    if grades:
        totals = sorted(g.total for g in grades)
        _say(f"    median {totals[len(totals) // 2]:g}, min {totals[0]:g}, max {totals[-1]:g}; "
             f"{sum(1 for g in grades if g.review)} student(s) and {len(unplaced)} file(s) need a human look")
        late_ones = [g for g in grades if g.penalty]
        if late_ones:
            _say(f"    late: {', '.join(f'{g.student} -{g.penalty:g}' for g in late_ones)}")
    for path in written:
        _say(f"    {path}")
    _say(f"    {ctx.exports / 'needs_review.csv'} ({n_review} row(s))")
    _say(f"    {ctx.exports / 'summary.png'}")
    return grades


# -- argument parsing --------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, grading: bool = False) -> None:
    p.add_argument("--course", default=None,
                   help="the course's folder, with course.toml (default: $COURSE_GRADE_COURSE, else the working "
                        "folder or the nearest one above it that has a course.toml)")
    p.add_argument("--assignment", default="",
                   help="which of the course's assignments (default: the first course.toml lists)")
    p.add_argument("--course-dir", default="",
                   help="where submitted/, autograded/, feedback/, gradebook.db and exports/ go "
                        "(default: course.toml's work folder)")
    p.add_argument("--release", default="",
                   help="the release folder of the assignment (default: <course>/release/<assignment>)")
    p.add_argument("--source", default="",
                   help="the nbgrader source folder, with hidden tests (default: <course>/source/<assignment>)")
    p.add_argument("--db-url", default=os.environ.get("COURSE_GRADE_DB_URL", ""),
                   help="the course gradebook's database, e.g. postgresql://user@host/db (default: "
                        "<course-dir>/gradebook.db, SQLite; or $COURSE_GRADE_DB_URL)")
    p.add_argument("--checks", default="",
                   help="folder of the hidden checks, one <notebook>.py each (default: course.toml's checks, "
                        "else the ones shipped with course-grade)")
    if grading:
        p.add_argument("-j", "--jobs", type=int, default=0, help="students graded at once (default: CPU cores)")
        p.add_argument("--timeout", type=int, default=60, help="per-cell timeout in seconds (default: 60)")
        p.add_argument("--memory-mb", type=int, default=4096,
                       help="memory (heap) cap per student kernel in MiB, 0 = none (default: 4096)")
        p.add_argument("--student-timeout", type=int, default=900,
                       help="wall-clock budget for one student's whole submission (default: 900 s)")
        p.add_argument("--no-sandbox", action="store_true",
                       help="run student kernels without bubblewrap (a loud warning is printed)")
        p.add_argument("--kernel-start", choices=["fork", "fresh"],
                       default=os.environ.get("COURSE_GRADE_KERNEL_START", "fork"),
                       help="fork: kernels forked from a process that imported torch once (default; needs the "
                            "sandbox, else fresh); fresh: a new Python per notebook (or $COURSE_GRADE_KERNEL_START)")
        p.add_argument("--no-feedback", action="store_true", help="skip the feedback pages")
        p.add_argument("--students", default="", help="comma-separated subset of students to (re)grade")
        p.add_argument("--fresh-gradebook", action="store_true",
                       help="rebuild the course gradebook (loses manual grades in it)")
        p.add_argument("--keep-work", action="store_true", help="keep the throwaway per-student courses")
        p.add_argument("--executor", choices=["local", "dask"], default="local",
                       help="local: forked workers on this machine (default); dask: one task per student "
                            "on a Dask cluster (see --scheduler)")
        p.add_argument("--scheduler", default="tcp://127.0.0.1:8786",
                       help="the Dask scheduler's address for --executor dask (default: %(default)s)")
        p.add_argument("--probe-seed", default="",
                       help="seed of the inputs the hidden checks choose (default: new each run; "
                            "give one to regrade with the same inputs)")


def _late_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--due", default="",
                   help="due date with its time zone, e.g. '2026-12-08 23:59 Europe/Berlin' (export: default "
                        "what collect was given)")
    p.add_argument("--late-policy", default="",
                   help="'per-day:10,max-days:7' (default: -10 %% of the earned score per started day, 0 after "
                        "7 days), 'zero' or 'none'")


def _collect_options(p: argparse.ArgumentParser) -> None:
    from .lms import LMS_CHOICES

    p.add_argument("--lms", choices=LMS_CHOICES, default="names",
                   help="how to read download names: canvas, moodle, auto (either), or names (default: folder "
                        "and file-name prefixes, Moodle names by full name, as before)")
    p.add_argument("--roster", default="",
                   help="class list CSV (id,name,email,section), or a Canvas gradebook export or Moodle grading "
                        "worksheet as downloaded: maps students and lists who submitted nothing")
    p.add_argument("--timestamps", default="",
                   help="CSV of submission times (columns student,timestamp) when the download carries none")
    if not any(a.dest == "due" for a in p._actions):
        _late_options(p)


def _export_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", action="append", choices=["csv", "canvas", "moodle"],
                   help="grade import file(s) to write besides grades.csv (repeatable): canvas → "
                        "canvas_grades.csv, moodle → moodle_grading_worksheet.csv")
    p.add_argument("--assignment-title", default="", help="the assignment's name in the LMS gradebook")
    p.add_argument("--canvas-assignment-id", default="",
                   help="Canvas assignment id (the number in its URL): the column becomes 'Title (id)'")
    p.add_argument("--similarity", action="store_true",
                   help="compare students' answer code (copydetect); similar pairs go to needs_review and "
                        "exports/similarity.html")
    p.add_argument("--similarity-threshold", type=float, default=0.6,
                   help="share of answer code two students must have in common to be listed (default: 0.6)")
    if not any(a.dest == "due" for a in p._actions):
        _late_options(p)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="course-grade", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="collect, preflight, grade and export in one go",
                       description="Collect DOWNLOADS, preflight, grade in parallel, write feedback and exports.")
    p.add_argument("downloads", help="folder or .zip of downloaded notebooks")
    _common(p, grading=True)
    _collect_options(p)
    _export_options(p)
    p = sub.add_parser("demo", help="grade the course's demo class (course.toml: demo)",
                       description="Run the whole pipeline on the bundled demo class of submissions.")
    _common(p, grading=True)
    p = sub.add_parser("collect", help="map downloaded files to submitted/<student>/<assignment>/",
                       description="Place downloads (folder or zip; Colab and LMS names) as nbgrader submissions "
                                   "and report the files that could not be placed.")
    p.add_argument("downloads", help="folder or .zip of downloaded notebooks")
    _common(p)
    _collect_options(p)
    p = sub.add_parser("preflight", help="check and repair submissions against the release",
                       description="Find missing, duplicated, retyped and metadata-stripped graded cells; "
                                   "repair what is unambiguous, flag the rest.")
    _common(p)
    p = sub.add_parser("grade", help="autograde every student in parallel (sandboxed)",
                       description="Autograde each student in a throwaway nbgrader course, in parallel; "
                                   "merge into the course gradebook.")
    _common(p, grading=True)
    p = sub.add_parser("feedback", help="re-render feedback HTML without hidden tests",
                       description="Render per-student feedback from autograded notebooks, hidden tests removed.")
    _common(p)
    p.add_argument("--timeout", type=int, default=60, help=argparse.SUPPRESS)
    p = sub.add_parser("export", help="write grades.csv, needs_review.csv and summary.png",
                       description="Per-exercise and total grades, the review list and a summary figure.")
    _common(p)
    _export_options(p)
    p = sub.add_parser("sandbox", help="say whether student kernels can be sandboxed here",
                       description="Probe bubblewrap and user namespaces.")
    return ap


def demo_downloads(layout: Layout) -> Path:
    if layout.demo is None or not (layout.demo / "downloads").is_dir():
        raise SystemExit(f"course-grade: the course at {layout.root} has no demo class (course.toml: demo = "
                         "a folder with downloads/)")
    return layout.demo / "downloads"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "sandbox":
        from .sandbox import status

        st = status()
        _say(("sandbox available: " if st.available else "sandbox NOT available: ") + st.reason)
        return 0 if st.available else 1
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # alembic
    ctx = Context(args)
    if args.command in ("run", "demo"):
        downloads = Path(args.downloads) if args.command == "run" else demo_downloads(ctx.layout)
        if args.command == "demo":
            _say(f"Demo class: {downloads} ({sum(1 for _ in downloads.rglob('*') if _.is_file())} files)")
        step_collect(ctx, downloads)
        step_preflight(ctx)
        step_grade(ctx)
        step_export(ctx)
    elif args.command == "collect":
        step_collect(ctx, Path(args.downloads))
    elif args.command == "preflight":
        step_preflight(ctx)
    elif args.command == "grade":
        step_grade(ctx)
    elif args.command == "feedback":
        step_feedback(ctx)
    elif args.command == "export":
        step_export(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
