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
import os
import sys
from pathlib import Path

from . import pipeline
from .course import Layout
from .export import StudentGrade
from .results import StudentResult


def _say(msg: str = "") -> None:
    print(msg, flush=True)


# -- from options to pipeline calls ------------------------------------------------------------
def open_run(args: argparse.Namespace) -> pipeline.Run:
    return pipeline.Run.open(
        course=args.course,
        assignment=args.assignment,
        work=args.course_dir,
        release=args.release,
        source=args.source,
        checks=args.checks,
        db_url=args.db_url,
    )


def collect(run: pipeline.Run, args: argparse.Namespace, downloads: Path) -> pipeline.Collected:
    opt = vars(args)  # demo has no collect options: the defaults
    return pipeline.collect(
        run=run,
        downloads=downloads,
        lms=opt.get("lms") or "names",
        roster=Path(opt["roster"]) if opt.get("roster") else None,
        timestamps=Path(opt["timestamps"]) if opt.get("timestamps") else None,
        due=opt.get("due", ""),
        late_policy=opt.get("late_policy", ""),
        say=_say,
    )


def grade(run: pipeline.Run, args: argparse.Namespace) -> dict[str, StudentResult]:
    return pipeline.grade(
        run=run,
        jobs=args.jobs,
        notebook_jobs=args.notebook_jobs,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
        student_timeout=args.student_timeout,
        sandbox=not args.no_sandbox,
        kernel_start=args.kernel_start,
        feedback=not args.no_feedback,
        students=args.students.split(",") if args.students else None,
        fresh_gradebook=args.fresh_gradebook,
        keep_work=args.keep_work,
        executor=args.executor,
        scheduler=args.scheduler,
        probe_seed=args.probe_seed,
        say=_say,
    )


def export(run: pipeline.Run, args: argparse.Namespace) -> list[StudentGrade]:
    opt = vars(args)  # demo has no export options: the defaults
    return pipeline.export(
        run=run,
        formats=opt.get("format") or ["csv"],
        assignment_title=opt.get("assignment_title", ""),
        canvas_assignment_id=opt.get("canvas_assignment_id", ""),
        similarity=bool(opt.get("similarity")),
        similarity_threshold=opt.get("similarity_threshold", 0.6),
        due=opt.get("due", ""),
        late_policy=opt.get("late_policy", ""),
        say=_say,
    )


# -- argument parsing --------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, grading: bool = False) -> None:
    p.add_argument(
        "--course",
        default=None,
        help="the course's folder, with course.toml (default: $COURSE_GRADE_COURSE, else the working "
        "folder or the nearest one above it that has a course.toml)",
    )
    p.add_argument(
        "--assignment", default="", help="which of the course's assignments (default: the first course.toml lists)"
    )
    p.add_argument(
        "--course-dir",
        default="",
        help="where submitted/, autograded/, feedback/, gradebook.db and exports/ go "
        "(default: course.toml's work folder)",
    )
    p.add_argument(
        "--release", default="", help="the release folder of the assignment (default: <course>/release/<assignment>)"
    )
    p.add_argument(
        "--source",
        default="",
        help="the nbgrader source folder, with hidden tests (default: <course>/source/<assignment>)",
    )
    p.add_argument(
        "--db-url",
        default=os.environ.get("COURSE_GRADE_DB_URL", ""),
        help="the course gradebook's database, e.g. postgresql://user@host/db (default: "
        "<course-dir>/gradebook.db, SQLite; or $COURSE_GRADE_DB_URL)",
    )
    p.add_argument(
        "--checks",
        default="",
        help="folder of the hidden checks, one <notebook>.py each (default: course.toml's checks, "
        "else the ones shipped with course-grade)",
    )
    if grading:
        p.add_argument("-j", "--jobs", type=int, default=0, help="students graded at once (default: CPU cores)")
        p.add_argument(
            "--notebook-jobs",
            type=int,
            default=0,
            help="notebooks of one student graded at once (default: the cores the students leave free; on Dask, "
            "each worker's cores over its threads)",
        )
        p.add_argument("--timeout", type=int, default=60, help="per-cell timeout in seconds (default: 60)")
        p.add_argument(
            "--memory-mb",
            type=int,
            default=4096,
            help="memory (heap) cap per student kernel in MiB, 0 = none (default: 4096)",
        )
        p.add_argument(
            "--student-timeout",
            type=int,
            default=900,
            help="wall-clock budget for one student's whole submission (default: 900 s)",
        )
        p.add_argument(
            "--no-sandbox",
            action="store_true",
            help="run student kernels without bubblewrap (a loud warning is printed)",
        )
        p.add_argument(
            "--kernel-start",
            choices=["fork", "fresh"],
            default=os.environ.get("COURSE_GRADE_KERNEL_START", "fork"),
            help="fork: kernels forked from a process that imported torch once (default; needs the "
            "sandbox, else fresh); fresh: a new Python per notebook (or $COURSE_GRADE_KERNEL_START)",
        )
        p.add_argument("--no-feedback", action="store_true", help="skip the feedback pages")
        p.add_argument("--students", default="", help="comma-separated subset of students to (re)grade")
        p.add_argument(
            "--fresh-gradebook", action="store_true", help="rebuild the course gradebook (loses manual grades in it)"
        )
        p.add_argument("--keep-work", action="store_true", help="keep the throwaway per-student courses")
        p.add_argument(
            "--executor",
            choices=["local", "dask"],
            default="local",
            help="local: forked workers on this machine (default); dask: one task per student "
            "on a Dask cluster (see --scheduler)",
        )
        p.add_argument(
            "--scheduler",
            default="tcp://127.0.0.1:8786",
            help="the Dask scheduler's address for --executor dask (default: %(default)s)",
        )
        p.add_argument(
            "--probe-seed",
            default="",
            help="seed of the inputs the hidden checks choose (default: new each run; "
            "give one to regrade with the same inputs)",
        )


def _late_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--due",
        default="",
        help="due date with its time zone, e.g. '2026-12-08 23:59 Europe/Berlin' (export: default "
        "what collect was given)",
    )
    p.add_argument(
        "--late-policy",
        default="",
        help="'per-day:10,max-days:7' (default: -10 %% of the earned score per started day, 0 after "
        "7 days), 'zero' or 'none'",
    )


def _collect_options(p: argparse.ArgumentParser, late: bool = True) -> None:
    from .lms import LMS_CHOICES

    p.add_argument(
        "--lms",
        choices=LMS_CHOICES,
        default="names",
        help="how to read download names: canvas, moodle, auto (either), or names (default: folder "
        "and file-name prefixes, Moodle names by full name, as before)",
    )
    p.add_argument(
        "--roster",
        default="",
        help="class list CSV (id,name,email,section), or a Canvas gradebook export or Moodle grading "
        "worksheet as downloaded: maps students and lists who submitted nothing",
    )
    p.add_argument(
        "--timestamps",
        default="",
        help="CSV of submission times (columns student,timestamp) when the download carries none",
    )
    if late:
        _late_options(p)


def _export_options(p: argparse.ArgumentParser, late: bool = True) -> None:
    p.add_argument(
        "--format",
        action="append",
        choices=["csv", "canvas", "moodle"],
        help="grade import file(s) to write besides grades.csv (repeatable): canvas → "
        "canvas_grades.csv, moodle → moodle_grading_worksheet.csv",
    )
    p.add_argument("--assignment-title", default="", help="the assignment's name in the LMS gradebook")
    p.add_argument(
        "--canvas-assignment-id",
        default="",
        help="Canvas assignment id (the number in its URL): the column becomes 'Title (id)'",
    )
    p.add_argument(
        "--similarity",
        action="store_true",
        help="compare students' answer code (copydetect); similar pairs go to needs_review and exports/similarity.html",
    )
    p.add_argument(
        "--similarity-threshold",
        type=float,
        default=0.6,
        help="share of answer code two students must have in common to be listed (default: 0.6)",
    )
    if late:
        _late_options(p)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="course-grade", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "run",
        help="collect, preflight, grade and export in one go",
        description="Collect DOWNLOADS, preflight, grade in parallel, write feedback and exports.",
    )
    p.add_argument("downloads", help="folder or .zip of downloaded notebooks")
    _common(p, grading=True)
    _collect_options(p)
    _export_options(p, late=False)  # --due and --late-policy once, with collect's
    p = sub.add_parser(
        "demo",
        help="grade the course's demo class (course.toml: demo)",
        description="Run the whole pipeline on the bundled demo class of submissions.",
    )
    _common(p, grading=True)
    p = sub.add_parser(
        "collect",
        help="map downloaded files to submitted/<student>/<assignment>/",
        description="Place downloads (folder or zip; Colab and LMS names) as nbgrader submissions "
        "and report the files that could not be placed.",
    )
    p.add_argument("downloads", help="folder or .zip of downloaded notebooks")
    _common(p)
    _collect_options(p)
    p = sub.add_parser(
        "preflight",
        help="check and repair submissions against the release",
        description="Find missing, duplicated, retyped and metadata-stripped graded cells; "
        "repair what is unambiguous, flag the rest.",
    )
    _common(p)
    p = sub.add_parser(
        "grade",
        help="autograde every student in parallel (sandboxed)",
        description="Autograde each student in a throwaway nbgrader course, in parallel; "
        "merge into the course gradebook.",
    )
    _common(p, grading=True)
    p = sub.add_parser(
        "feedback",
        help="re-render feedback HTML without hidden tests",
        description="Render per-student feedback from autograded notebooks, hidden tests removed.",
    )
    _common(p)
    p.add_argument("--timeout", type=int, default=60, help=argparse.SUPPRESS)
    p = sub.add_parser(
        "export",
        help="write grades.csv, needs_review.csv and summary.png",
        description="Per-exercise and total grades, the review list and a summary figure.",
    )
    _common(p)
    _export_options(p)
    p = sub.add_parser(
        "sandbox",
        help="say whether student kernels can be sandboxed here",
        description="Probe bubblewrap and user namespaces.",
    )
    return ap


def demo_downloads(layout: Layout) -> Path:
    if layout.demo is None or not (layout.demo / "downloads").is_dir():
        raise SystemExit(
            f"course-grade: the course at {layout.root} has no demo class (course.toml: demo = "
            "a folder with downloads/)"
        )
    return layout.demo / "downloads"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "sandbox":
        from .sandbox import status

        st = status()
        _say(("sandbox available: " if st.available else "sandbox NOT available: ") + st.reason)
        return 0 if st.available else 1
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # alembic
    try:
        run = open_run(args)
        if args.command in ("run", "demo"):
            downloads = Path(args.downloads) if args.command == "run" else demo_downloads(run.layout)
            if args.command == "demo":
                _say(f"Demo class: {downloads} ({sum(1 for _ in downloads.rglob('*') if _.is_file())} files)")
            collect(run, args, downloads)
            pipeline.preflight(run=run, say=_say)
            grade(run, args)
            export(run, args)
        elif args.command == "collect":
            collect(run, args, Path(args.downloads))
        elif args.command == "preflight":
            pipeline.preflight(run=run, say=_say)
        elif args.command == "grade":
            grade(run, args)
        elif args.command == "feedback":
            pipeline.feedback(run=run, timeout=args.timeout, say=_say)
        elif args.command == "export":
            export(run, args)
    except pipeline.PipelineError as exc:
        raise SystemExit(str(exc)) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
