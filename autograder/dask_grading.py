"""Grade a class on a Dask cluster: one task per student, bytes in and bytes out.

    course-grade grade --executor dask --scheduler tcp://HOST:8786

Dask distributed does the scheduling, the retries when a worker dies and the spreading over
machines; this module only packs a student's grading into a self-contained task. No filesystem is
shared between the client and the workers:
- the task receives the student's submitted files, the template gradebook, the release notebooks
  and the hidden checks as bytes (``pack``), plus the options and the lines feedback must not show;
- on the worker (which needs the course environment and bubblewrap, like a local grader) it rebuilds
  them in a temporary folder and grades the student exactly as locally (``grading.grade_all`` with
  one job: same sandbox, same per-student budget, which kills a hung student inside the task since
  Dask has no task timeout of its own), then returns the result and the autograded and feedback
  files as bytes (``grade_task``), the result as ``StudentResult.to_dict`` data;
- the client alone writes the course gradebook, merging results as they complete, each student once
  (a task whose worker died is rerun by the scheduler; its result still arrives once).
Workers should run one task at a time (``dask worker --nthreads 1``): a student's kernels use the
cores."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .assignment import Assignment
from .grading import GradeOptions, Progress, Template, grade_all, student_root
from .probes import CHECKS_DIR
from .results import StudentResult, results_from_dict, results_to_dict

if TYPE_CHECKING:
    from distributed import Client


class SchedulerUnreachable(RuntimeError):
    """No Dask scheduler answered at the address given."""


def _files(folder: Path, pattern: str = "*") -> dict[str, bytes]:
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob(pattern)) if p.is_file()}


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = (folder / rel).resolve()
        if not str(target).startswith(str(folder.resolve()) + "/"):
            raise ValueError(f"refusing a path outside the task folder: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def pack(
    student: str,
    submission: Path,
    template: Template,
    rel: Assignment,
    opts: GradeOptions,
    hidden_lines: set[str],
    tampered: dict[str, list[str]],
) -> dict:
    """Everything one student's grading needs, as plain data and bytes."""
    checks = Path(opts.checks_dir) if opts.checks_dir else CHECKS_DIR
    return {
        "student": student,
        "submission": _files(submission),
        "template": {
            "gradebook": template.gradebook.read_bytes(),
            "assignment": template.assignment,
            "instructor_hashes": template.instructor_hashes,
            "preimport": template.preimport,
            "cells_digest": template.cells_digest,
        },
        "release": _files(rel.release_dir, "*.ipynb"),
        "checks": _files(checks, "*.py"),
        "options": dataclasses.asdict(opts),
        "hidden_lines": sorted(hidden_lines),
        "tampered": tampered,
    }


def worker_share() -> int:
    """Notebooks of one student graded at once on this Dask worker: its cores shared by the tasks it runs
    at once (its threads); 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, (os.cpu_count() or 1) // max(1, get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def grade_task(payload: dict) -> dict:
    """Runs on a Dask worker: grade one student from ``pack``'s payload; return result and files.

    The grading itself runs in a fresh ``python -m autograder.dask_grading`` process: a worker under
    Dask's nanny is a daemonic process, which may not start multiprocessing children, and a threaded
    worker should not fork."""
    import json
    import subprocess
    import sys

    student = payload["student"]
    t = payload["template"]
    opts = GradeOptions(**payload["options"])
    with tempfile.TemporaryDirectory(prefix="course-grade-task-") as tmp:
        tmp = Path(tmp)
        _write(tmp / "submission", payload["submission"])
        _write(tmp / "release" / t["assignment"], payload["release"])
        _write(tmp / "checks", payload["checks"])
        (tmp / "template").mkdir()
        (tmp / "template" / "gradebook.db").write_bytes(t["gradebook"])
        job = {
            "student": student,
            "template": {k: v for k, v in t.items() if k != "gradebook"},
            "options": dict(
                payload["options"],
                jobs=1,
                notebook_jobs=opts.notebook_jobs or worker_share(),
                checks_dir=str(tmp / "checks"),
            ),
            "hidden_lines": payload["hidden_lines"],
            "tampered": payload["tampered"],
        }
        (tmp / "job.json").write_text(json.dumps(job))
        # the student's own budget is enforced inside; this outer limit only guards the guard
        subprocess.run(
            [sys.executable, "-m", "autograder.dask_grading", str(tmp)], check=False, timeout=opts.student_timeout + 300
        )
        results_file = tmp / "results.json"
        result = (
            results_from_dict(json.loads(results_file.read_text()))[student]
            if results_file.exists()
            else StudentResult(student, error="the grading process on the worker died")
        )
        root = student_root(tmp / "work", student)
        return {
            "result": result.to_dict(),
            "autograded": _files(root / "autograded" / student / t["assignment"]),
            "feedback": _files(root / "feedback" / student / t["assignment"]),
        }


def _run_job(folder: Path) -> None:
    """``python -m autograder.dask_grading FOLDER``: the grading half of ``grade_task``."""
    import json

    job = json.loads((folder / "job.json").read_text())
    t, student = job["template"], job["student"]
    template = Template(
        folder / "template",
        folder / "template" / "gradebook.db",
        t["assignment"],
        list(t["instructor_hashes"]),
        {k: list(v) for k, v in t["preimport"].items()},
        t["cells_digest"],
    )
    rel = Assignment.load(folder / "release" / t["assignment"])
    results = grade_all(
        {student: folder / "submission"},
        template,
        rel,
        GradeOptions(**job["options"]),
        folder / "work",
        set(job["hidden_lines"]),
        {student: job["tampered"]},
    )
    (folder / "results.json").write_text(json.dumps(results_to_dict(results)))


def connect(address: str, timeout: float = 10.0) -> Client:
    """A Dask client for ``address``; SchedulerUnreachable (naming it) when nobody answers."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"no Dask scheduler answered at {address} within {timeout:g} s ({type(exc).__name__}: {exc}). "
            "Start one with `dask scheduler` (and workers with `dask worker ADDRESS --nthreads 1`), "
            "or grade here with --executor local."
        ) from exc


def grade_all_dask(
    client: Client,
    students: dict[str, Path],
    template: Template,
    rel: Assignment,
    opts: GradeOptions,
    work: Path,
    hidden_lines: set[str],
    tampered: dict[str, dict[str, list[str]]],
    progress: Progress | None = None,
) -> dict[str, StudentResult]:
    """``grading.grade_all`` on a Dask cluster: same arguments and results, files land under ``work``."""
    from distributed import as_completed

    futures = {}
    for student in sorted(students):
        payload = pack(student, students[student], template, rel, opts, hidden_lines, tampered.get(student, {}))
        future = client.submit(
            grade_task, payload, key=f"course-grade-{opts.probe_seed}-{student}", retries=1, pure=False
        )
        futures[future] = student
    results: dict[str, StudentResult] = {}
    for future in as_completed(futures):
        student = futures[future]
        if student in results:  # never merged twice
            continue
        try:
            out = future.result()
        except Exception as exc:  # noqa: BLE001 - one student's failure is that student's result
            results[student] = StudentResult(student, error=f"the Dask task failed: {type(exc).__name__}: {exc}")
        else:
            root = student_root(work, student)
            shutil.rmtree(root, ignore_errors=True)
            _write(root / "autograded" / student / template.assignment, out["autograded"])
            _write(root / "feedback" / student / template.assignment, out["feedback"])
            results[student] = StudentResult.from_dict(out["result"])
        if progress:
            progress(student, results[student])
    return results


if __name__ == "__main__":
    import sys

    _run_job(Path(sys.argv[1]))
