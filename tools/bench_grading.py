"""Stock sequential `nbgrader autograde` vs `course-grade grade` on the demo class: same machine,
same (preflighted) submissions, same cell timeout; prints both wall times, the speed-up and the
time per student, and compares the scores cell by cell. They agree on correct answers; on wrong
ones they may not, by design: stock nbgrader runs only the public tests, in the student's kernel
(which the student controls), while course-grade's scores are the hidden checks' verdicts.

    python -m tools.bench_grading [--jobs N] [--timeout S] [--skip STUDENT,...]

The snooping demo student is left out by default: under stock nbgrader (no sandbox) its code
appends to the gradebook it is being graded into. Students that stock nbgrader cannot grade
(a kernel that dies fails the whole submission) are listed, not compared."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.results import results_from_dict
from tools import CHECKOUT as REPO
from tools import LAYOUT


def run(cmd, cwd, env, may_fail=False) -> float:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0 and not may_fail:
        print(out.stdout[-3000:], out.stderr[-3000:])
        raise SystemExit(f"{cmd[:3]} failed with exit code {out.returncode}")
    return seconds


def stock_scores(gradebook: Path, students: list[str]) -> dict:
    """{student: {notebook: {grade_id: auto_score}}} of stock nbgrader's gradebook."""
    from autograder.gradebook import read_scores

    return {
        s: {nb: {gid: cell.score for gid, cell in cells.items()} for nb, cells in scores.items()}
        for s in students
        if (scores := read_scores(gradebook, LAYOUT.assignment, s))
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--skip", default="sam", help="students left out (comma-separated)")
    args = ap.parse_args(argv)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    skip = {s for s in args.skip.split(",") if s}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        mine, stock = tmp / "mine", tmp / "stock"
        cli = [sys.executable, "-m", "autograder.cli"]
        run(cli + ["collect", str(LAYOUT.demo / "downloads"), "--course-dir", str(mine)], REPO, env)
        run(cli + ["preflight", "--course-dir", str(mine)], REPO, env)
        for s in skip:
            shutil.rmtree(mine / "submitted" / s, ignore_errors=True)
        students = sorted(p.name for p in (mine / "submitted").iterdir())
        # stock nbgrader: a standard course with the same submissions, generated before timing
        shutil.copytree(LAYOUT.root / LAYOUT.source_folder, stock / "source")
        shutil.copytree(mine / "submitted", stock / "submitted")
        (stock / "nbgrader_config.py").write_text(
            "c = get_config()\nc.CourseDirectory.course_id = 'bench'\n"
            f"c.ExecutePreprocessor.timeout = {args.timeout}\nc.Execute.timeout = {args.timeout}\n"
            # the same kernel shutdown as course-grade, so the comparison measures the parallelism
            "c.ExecutePreprocessor.shutdown_kernel = 'immediate'\n"
        )
        run([sys.executable, "-m", "nbgrader", "generate_assignment", LAYOUT.assignment, "--force"], stock, env)
        print(
            f"demo class: {len(students)} students ({', '.join(sorted(skip)) or 'none'} left out), "
            f"cell timeout {args.timeout} s, {os.cpu_count()} CPU cores"
        )
        print(f"stock: nbgrader autograde {LAYOUT.assignment} (sequential) ...", flush=True)
        # exits 1 when any student failed (a dead kernel): expected with the demo class
        t_stock = run(
            [sys.executable, "-m", "nbgrader", "autograde", LAYOUT.assignment, "--force"], stock, env, may_fail=True
        )
        print(f"  {t_stock:.1f} s")
        shutil.copytree(mine, tmp / "mine-fresh")
        times = {}
        for kernels, course in (("fresh", tmp / "mine-fresh"), ("fork", mine)):
            print(
                f"course-grade grade --jobs {args.jobs} --kernel-start {kernels} (sandboxed, no feedback) ...",
                flush=True,
            )
            times[kernels] = run(
                cli
                + [
                    "grade",
                    "--course-dir",
                    str(course),
                    "--no-feedback",
                    "--jobs",
                    str(args.jobs),
                    "--timeout",
                    str(args.timeout),
                    "--kernel-start",
                    kernels,
                    "--probe-seed",
                    "bench-grading",
                ],
                REPO,
                env,
            )
            print(f"  {times[kernels]:.1f} s (includes generating the assignment once)")
        t_mine = times["fork"]
        results = results_from_dict(json.loads((mine / "exports" / "results.json").read_text()))
        fresh_results = results_from_dict(json.loads((tmp / "mine-fresh" / "exports" / "results.json").read_text()))
        modes_agree = sum(s in fresh_results and results[s].scores == fresh_results[s].scores for s in students)
        theirs = stock_scores(stock / "gradebook.db", students)
        same, differ, stock_failed = [], [], []
        for s in students:
            # a written answer nobody graded yet: nbgrader stores None, its score reads 0
            ours = {nb: {gid: cell.earned for gid, cell in cells.items()} for nb, cells in results[s].scores.items()}
            failed = {nb for nb, e in results[s].notebooks.items() if e.failed}
            # notebooks stock nbgrader never got to (it stops a student at the first dead kernel)
            skipped = {nb for nb, cells in theirs.get(s, {}).items() if all(v is None for v in cells.values())}
            if s not in theirs or skipped - failed:
                stock_failed.append(f"{s} ({', '.join(sorted(skipped - failed)) or 'everything'})")
            failed |= skipped
            a = {(nb, c): v for nb, cells in ours.items() if nb not in failed for c, v in cells.items()}
            b = {
                (nb, c): v or 0 for nb, cells in theirs.get(s, {}).items() if nb not in failed for c, v in cells.items()
            }
            (same if a == b else differ).append(s)
            if a != b:
                print(
                    f"  {s}: scores differ: "
                    + ", ".join(
                        f"{k}: ours {a.get(k)} stock {b.get(k)}"
                        for k in sorted(set(a) | set(b))
                        if a.get(k) != b.get(k)
                    )
                )
        print(
            "  (compared: every graded cell of every notebook both tools graded; a difference is a cell the\n"
            "   public tests pass and the hidden checks do not, or a cascade stock nbgrader charges twice)"
        )
        worker = sorted(r.seconds for r in results.values())
        print("\nresult")
        print(f"  stock nbgrader, sequential : {t_stock:7.1f} s  ({t_stock / len(students):.1f} s per student)")
        print(
            f"  course-grade, {args.jobs} jobs, fresh: {times['fresh']:7.1f} s  "
            f"({times['fresh'] / len(students):.1f} s per student)"
        )
        print(
            f"  course-grade, {args.jobs} jobs, fork : {t_mine:7.1f} s  ({t_mine / len(students):.1f} s per student; "
            f"one student's own grading took median {worker[len(worker) // 2]:.1f} s)"
        )
        print(f"  speed-up vs stock          : {t_stock / t_mine:.2f}x forked, {t_stock / times['fresh']:.2f}x fresh")
        print(f"  forked vs fresh kernels    : identical scores cell by cell for {modes_agree}/{len(students)}")
        print(
            f"  identical scores on {len(same)}/{len(same) + len(differ)} students graded by both"
            + (f"; stock nbgrader never graded: {'; '.join(stock_failed)}" if stock_failed else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
