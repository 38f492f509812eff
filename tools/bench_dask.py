"""The demo class graded three ways in one run: `--executor local --jobs 2`, and `--executor dask`
with one and with two local workers (real worker processes, one thread each); prints wall times,
per-student seconds and the Dask path's overhead per student.

    python -m tools.bench_dask [--students N] [--timeout S]

On one 2-core machine two Dask workers compete for the same cores as `--jobs 2`: the figure to read
is the overhead (packing, shipping and unpacking a student), not a speed-up; across machines each
worker brings its own cores."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from autograder.results import StudentResult, results_from_dict
from tools import CHECKOUT as REPO
from tools import LAYOUT

DOWNLOADS = LAYOUT.demo / "downloads"


def grade(course: Path, students: list[str], extra: list[str], timeout: int) -> tuple[float, dict[str, StudentResult]]:
    """`course-grade grade` in its own process, as a grader runs it (this one hosts the Dask cluster)."""
    import os
    import subprocess

    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder.cli",
            "grade",
            "--course-dir",
            str(course),
            "--no-feedback",
            "--timeout",
            str(timeout),
            "--students",
            ",".join(students),
            "--probe-seed",
            "bench",
            *extra,
        ],
        check=True,
        capture_output=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    wall = time.perf_counter() - t0
    return wall, results_from_dict(json.loads((course / "exports" / "results.json").read_text()))


def main(argv=None) -> int:
    from distributed import LocalCluster

    from autograder import cli

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=0, help="grade only the first N students (default: all)")
    ap.add_argument("--timeout", type=int, default=60)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        base = Path(tmp) / "base"
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["collect", str(DOWNLOADS), "--course-dir", str(base)])
            cli.main(["preflight", "--course-dir", str(base)])
        students = sorted(p.name for p in (base / "submitted").iterdir())
        students = students[: args.students] if args.students else students
        print(f"demo class: {len(students)} students, cell timeout {args.timeout} s", flush=True)
        rows, scores = [], {}

        def course_copy(name):
            target = Path(tmp) / name
            shutil.copytree(base, target)
            return target

        wall, res = grade(course_copy("local"), students, ["--jobs", "2"], args.timeout)
        rows.append(("local, --jobs 2", wall, res))
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
                wall, res = grade(
                    course_copy(f"dask{workers}"),
                    students,
                    ["--executor", "dask", "--scheduler", lc.scheduler_address],
                    args.timeout,
                )
            rows.append((f"dask, {workers} worker(s)", wall, res))
        print("\nresult")
        base_wall = rows[0][1]
        for label, wall, res in rows:
            inner = sorted(r.seconds for s, r in res.items() if s in students)
            scores[label] = {s: res[s].scores for s in students}
            print(
                f"  {label:<20} {wall:7.1f} s wall ({wall / len(students):5.1f} s per student; one student's "
                f"own grading median {inner[len(inner) // 2]:.1f} s)"
            )
        one = rows[1]
        inner_local = sorted(r.seconds for s, r in rows[0][2].items() if s in students)
        inner_dask = sorted(r.seconds for s, r in one[2].items() if s in students)
        print(
            f"  Dask overhead per student (1 worker, one student's own time vs local): "
            f"{inner_dask[len(inner_dask) // 2] - inner_local[len(inner_local) // 2]:+.1f} s"
        )
        print(f"  2 Dask workers vs local --jobs 2 on this machine: {base_wall / rows[2][1]:.2f}x")
        same = all(scores[label] == scores[rows[0][0]] for label, *_ in rows)
        print(f"  identical scores in all three runs: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
