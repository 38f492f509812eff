"""Benchmarks that print figures (never asserts): `make bench`.

- each lesson executed top to bottom in a fresh kernel (budget: ≤ 30 s each on 2 cores);
- one full-marks student's whole assignment: stock `nbgrader autograde`, then `course-grade` on the
  same notebooks (sandboxed kernels, the grader's probes, verdicts decided outside), side by side;
- the leak check of that student's feedback pages (every hidden line of the assignment), as it is and
  the text-by-text search it replaced;
- preflight of the demo class (one student's Colab export has every cell's metadata stripped, so its
  cells are matched by content), as it is and with the difflib-only comparison it replaced.
Run with --repeat N to take the median of N runs."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from autograder.grading import read_scores
from autograder.results import StudentResult
from tools import LAYOUT
from tools.nbgrader_course import Course, read, solved
from tools.notebooks import execute_notebook


def bench_lessons(repeat: int) -> list[tuple[str, float]]:
    rows = []
    for path in sorted(LAYOUT.lessons.glob("*.ipynb")):
        times = [execute_notebook(path, timeout=600)[1] for _ in range(repeat)]
        rows.append((path.name, statistics.median(times)))
        print(f"  lesson {path.name:<40} {rows[-1][1]:6.1f} s", flush=True)
    return rows


def autograded_points(course: Course, student: str) -> tuple[float, float, float]:
    """(points scored by the tests, points the tests can give, points of written (markdown) answers)."""
    scores = read_scores(course.root / "gradebook.db", LAYOUT.assignment, student)
    cells = [c for nb in scores.values() for c in nb.values()]
    tested = [c for c in cells if c.cell_type != "markdown"]
    return (
        sum(c.earned for c in tested),
        sum(c.max_score for c in tested),
        sum(c.max_score for c in cells if c.cell_type == "markdown"),
    )


def full_marks() -> dict[str, object]:
    """One full-marks student: each release notebook with the reference answers of source/ filled in."""
    release = LAYOUT.release()
    return {p.name: solved(read(p), read(LAYOUT.source() / p.name)) for p in sorted(release.glob("*.ipynb"))}


def full_marks_downloads(tmp: Path, student: str) -> Path:
    """A downloads folder (what `course-grade run` reads) holding that student's notebooks."""
    import nbformat

    folder = Path(tmp) / "downloads" / student
    folder.mkdir(parents=True)
    for name, nb in full_marks().items():
        nbformat.write(nb, str(folder / name))
    return folder.parent


def bench_autograde(repeat: int) -> float | None:
    notebooks = full_marks()
    if not notebooks:
        print("  no release notebooks yet")
        return None
    times = []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            course = Course(Path(tmp))
            course.generate()
            student = f"bench{i}"
            course.submit(student, notebooks)
            start = time.perf_counter()
            course.autograde(student)
            times.append(time.perf_counter() - start)
            got, out_of, written = autograded_points(course, student)
    print(
        f"  one full-marks student, {len(notebooks)} notebooks: {statistics.median(times):6.1f} s "
        f"(autograded {got:g}/{out_of:g} points; {written:g} points of written answers are graded by hand)",
        flush=True,
    )
    return statistics.median(times)


def bench_course_grade(repeat: int, kernel_start: str = "fork", notebook_jobs: int = 0) -> float | None:
    """The same full-marks student through course-grade: sandboxed kernels (forked from a zygote or started
    fresh), probes, verdicts outside. Each run is its own `course-grade` process, as a grader runs it: in
    one process a second run would find what the first cached (nbgrader's schema version, imports) and
    its student would wait for the zygote that the first run's slower start hid. ``notebook_jobs``: the
    student's notebooks graded at once (0: the machine's cores, course-grade's default for one student)."""
    import json
    import subprocess

    at_once = notebook_jobs or os.cpu_count() or 1
    times, walls, points = [], [], 0.0
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            downloads = full_marks_downloads(Path(tmp), f"bench{i}")
            args = ["run", str(downloads), "--course-dir", str(Path(tmp) / "course"), "--jobs", "1"]
            args += ["--no-feedback", "--probe-seed", "bench", "--kernel-start", kernel_start]
            args += ["--notebook-jobs", str(at_once)]
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autograder.cli", *args], check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            saved = json.loads((Path(tmp) / "course" / "exports" / "results.json").read_text())
            result = StudentResult.from_dict(saved[f"bench{i}"])
            times.append(result.seconds)
            points = result.points
    print(
        f"  course-grade, the same student ({kernel_start} kernels, {at_once} notebook(s) at once, sandbox, "
        "probes, verdicts): "
        f"{statistics.median(times):6.1f} s "
        f"(autograded {points:g} points; the whole run {statistics.median(walls):.1f} s)",
        flush=True,
    )
    return statistics.median(times)


def text_by_text_leaks(page: str, hidden_lines: set[str]) -> list[str]:
    """The baseline: the search feedback.leaks made before it joined the texts, every line in every text."""
    import re

    from autograder import feedback

    texts = feedback.page_texts(page)
    flat = [re.sub(r"\s+", "", t) for t in texts]
    found = set()
    for line in hidden_lines:
        squeezed = re.sub(r"\s+", "", line)
        if any(line in t for t in texts) or any(squeezed in f for f in flat):
            found.add(line)
    return sorted(found)


def bench_feedback_check(repeat: int) -> None:
    """The published-page leak check on one full-marks student's four feedback pages, against every
    hidden line of the assignment: the check as it is and the text-by-text baseline, side by side."""
    import contextlib
    import io
    import json

    from autograder import cli, feedback
    from autograder.assignment import Assignment

    hidden = Assignment.load(LAYOUT.release(), LAYOUT.source()).secret_lines()
    with tempfile.TemporaryDirectory() as tmp:
        downloads = full_marks_downloads(Path(tmp), "bench")
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["run", str(downloads), "--course-dir", str(Path(tmp) / "course"), "--jobs", "1"])
        pages = [p.read_text(encoding="utf-8") for p in sorted((Path(tmp) / "course" / "feedback").rglob("*.html"))]
    answers = {}
    for name, check in (
        ("text by text (baseline)", text_by_text_leaks),
        ("joined, 12-character lookup", feedback.leaks),
    ):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            answers[name] = [check(page, hidden) for page in pages]
            times.append(time.perf_counter() - t0)
        print(
            f"  {name:28s} {statistics.median(times) / len(pages):6.3f} s a page ({len(pages)} pages, "
            f"{len(hidden)} hidden lines, {sum(map(len, answers[name]))} found)",
            flush=True,
        )
    same = len({json.dumps(found) for found in answers.values()}) == 1
    print(f"  the same lines found on every page: {'yes' if same else 'NO'}", flush=True)


def difflib_similarity(a: str, b: str, floor: float = 0.0) -> float:
    """The baseline: preflight's cell comparison before the longest-common-subsequence bound."""
    import difflib

    from autograder.preflight import _norm

    a, b = _norm(a), _norm(b)
    if a == b:
        return 1.0
    m = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if m.real_quick_ratio() < floor or m.quick_ratio() < floor:
        return 0.0
    ratio = m.ratio()
    return ratio if ratio >= floor else 0.0


def bench_preflight(repeat: int) -> None:
    """Every notebook of the demo class checked against the release, as course-grade's preflight step
    does: with the bounded comparison and with the difflib-only baseline, side by side."""
    import contextlib
    import io
    import json
    from unittest import mock

    from autograder import cli, preflight
    from autograder.assignment import Assignment

    assignment = Assignment.load(LAYOUT.release())
    with tempfile.TemporaryDirectory() as tmp:
        collected = Path(tmp) / "collected"
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["collect", str(LAYOUT.demo / "downloads"), "--course-dir", str(collected)])
        answers = {}
        for name, compare in (("difflib only (baseline)", difflib_similarity), ("LCS bound, then difflib", None)):
            times, slowest = [], (0.0, "")
            for k in range(repeat):
                # a fresh copy each time: preflight repairs in place, and a repaired notebook has nothing to find
                course = Path(tmp) / f"{len(answers)}-{k}"
                shutil.copytree(collected / "submitted", course)
                t0 = time.perf_counter()
                reports = {}
                for folder in sorted(course.iterdir()):
                    student, t1 = folder.name, time.perf_counter()
                    with contextlib.ExitStack() as stack:
                        # the matching itself, without preflight's time budget: the baseline on a busy
                        # machine goes over it, and the blank release it then grades has nothing to find
                        stack.enter_context(mock.patch.object(preflight, "preflight_within", preflight.preflight))
                        if compare:
                            stack.enter_context(mock.patch.object(preflight, "similarity", compare))
                        reports[student] = preflight.check_folder(
                            folder / LAYOUT.assignment,
                            assignment,
                            student,
                            Path(tmp) / f"originals-{len(answers)}-{k}" / student,
                        )
                    slowest = max(slowest, (time.perf_counter() - t1, student))
                times.append(time.perf_counter() - t0)
            answers[name] = json.dumps({s: {nb: r.to_dict() for nb, r in per.items()} for s, per in reports.items()})
            print(
                f"  {name:26s} {statistics.median(times):6.1f} s for {len(reports)} students "
                f"(slowest: {slowest[1]}, {slowest[0]:.1f} s)",
                flush=True,
            )
    print(f"  the same findings for every notebook: {'yes' if len(set(answers.values())) == 1 else 'NO'}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median is printed)")
    parser.add_argument(
        "--only", choices=["lessons", "autograde", "feedback-check", "preflight"], help="run one section"
    )
    args = parser.parse_args(argv)
    # nbgrader's gradebook trips SQLAlchemy 2's autoflush warnings on every autograde: not ours to fix
    warnings.filterwarnings("ignore", module="nbgrader")
    if args.only in (None, "lessons"):
        print("Lessons, top to bottom (budget 30 s each):")
        bench_lessons(args.repeat)
    if args.only in (None, "autograde"):
        print("Autograde, whole assignment for one student (budget: forked kernels ≤ 8 s and ≥ 3× stock):")
        stock = bench_autograde(args.repeat)
        fresh = bench_course_grade(args.repeat, "fresh")
        one_at_a_time = bench_course_grade(args.repeat, "fork", notebook_jobs=1)
        forked = bench_course_grade(args.repeat, "fork")
        if stock and fresh and forked and one_at_a_time:
            print(
                f"  course-grade vs stock nbgrader: {stock / forked:.2f}x with forked kernels "
                f"({stock / one_at_a_time:.2f}x one notebook at a time), {stock / fresh:.2f}x with fresh ones",
                flush=True,
            )
    if args.only in (None, "feedback-check"):
        print("Feedback pages checked for hidden lines before they are published:")
        bench_feedback_check(args.repeat)
    if args.only in (None, "preflight"):
        print("Preflight of the demo class (every submission matched against the release):")
        bench_preflight(args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
