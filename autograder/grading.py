"""Autograde a class in parallel, each student in a throwaway nbgrader course.

Stock nbgrader grades students one after another into one sqlite gradebook, which is not safe for
concurrent writers, and one dead kernel fails the student's whole submission. Here:
- nbgrader generates the assignment once (a template gradebook: cells, points, hidden tests);
- each student is graded in a forked worker process (``--jobs`` at a time) inside its own
  throwaway course: a copy of the template gradebook plus the student's submission, no source/;
- each notebook is its own nbgrader run, so a kernel that dies or hangs costs only that notebook;
  on cores the students leave free, several notebooks of a student run at once (``notebooks_graded``);
- no hidden test runs in a student kernel: the gradebook's test cells hold the public tests only, the
  grader's probes (``probes``) run after them and emit plain data, and the autograded scores are the
  verdicts computed here from that data (the public tests' own pass/fail counts for nothing);
- a worker past its wall-clock budget is killed with its kernels; finished notebooks are kept;
- results come back as JSON files (``results.StudentResult.to_dict``); the parent alone writes the
  course gradebook (merge)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from . import probes
from .assignment import Assignment
from .cells import grade_id_of, python_source, without_hidden_blocks
from .course import course_config
from .gradebook import cells_digest, opened, read_scores, record_verdicts
from .results import FeedbackResult, GuardEvent, NotebookResult, StudentResult
from .sandbox import guard_reports, kernel_start
from .tamper import PROTECTED

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    from .zygote import Zygote

Progress = Callable[[str, StudentResult], None]  # called as each student finishes
Say = Callable[[str], None]  # one line for the grader to read


@dataclass
class GradeOptions:
    timeout: int = 60  # per cell, seconds
    jobs: int = max(1, os.cpu_count() or 1)
    memory_mb: int = 4096  # per kernel
    sandbox: bool = True
    student_timeout: int = 900  # whole student, seconds
    feedback: bool = True
    threads: int = 0  # torch threads per kernel; 0 = cores // jobs
    probe_seed: str = field(default_factory=lambda: secrets.token_hex(8))  # the grader's inputs, per run
    checks_dir: str = ""  # where the hidden checks live; "" = autograder/checks
    # "fork": kernels forked from a pre-warmed zygote (zygote.py); "fresh": a new Python per notebook
    kernel_start: str = field(default_factory=lambda: os.environ.get("COURSE_GRADE_KERNEL_START", "fork"))
    zygote: str = ""  # the running zygote's socket (set by grade_all)
    notebook_jobs: int = 1  # notebooks of one student graded at once (notebooks_graded); 0 = the Dask worker decides


def kernel_threads(opts: GradeOptions) -> int:
    return opts.threads or max(1, (os.cpu_count() or 1) // (max(1, opts.jobs) * max(1, opts.notebook_jobs)))


def _api(root: Path, timeout: int, course_id: str, notebook_id: str = "*", extra: Config | None = None) -> NbGraderAPI:
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    c = course_config(root, timeout, course_id)
    c.CourseDirectory.notebook_id = notebook_id
    if extra:
        c.merge(extra)
    return NbGraderAPI(coursedir=CourseDirectory(config=c), config=c)


# -- template ------------------------------------------------------------------------------
@dataclass
class Template:
    root: Path
    gradebook: Path
    assignment: str
    instructor_hashes: list[str]
    preimport: dict[str, list[str]]  # per notebook: protected modules its instructor cells import
    cells_digest: str
    course_id: str = ""  # nbgrader files every gradebook row under it: one per course


def build_template(source_dir: Path, work: Path, timeout: int = 60, course_id: str = "") -> Template:
    """nbgrader generate_assignment on a copy of source/ → the gradebook every student starts from."""

    name = Path(source_dir).name
    root = Path(work) / "template"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(
        source_dir, root / "source" / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    )
    for path in (root / "source" / name).glob("*.ipynb"):  # hidden tests never reach a kernel
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            cell.source = without_hidden_blocks(cell.source)
        nbformat.write(nb, str(path))
    result = _api(root, timeout, course_id).generate_assignment(name, force=True, create=True)
    if not result.get("success"):
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('error')}\n{result.get('log')}")
    gradebook = root / "gradebook.db"
    hashes, modules = set(), {}
    with opened(gradebook) as gb:
        for nb in gb.find_assignment(name).notebooks:
            found = set()
            for cell in nb.source_cells:
                if cell.locked:  # test cells and read-only cells: the instructor's code
                    hashes.add(hashlib.sha256(cell.source.encode()).hexdigest())
                    found |= imported_modules(cell.source)
            modules[nb.name] = sorted(found & set(PROTECTED))
    return Template(root, gradebook, name, sorted(hashes), modules, cells_digest(gradebook), course_id)


def imported_modules(text: str, dotted: bool = False) -> set[str]:
    """The modules a cell imports: top-level names (``torch``), or with ``dotted`` the full names
    (``torch.nn.functional``). IPython magics and shell lines are skipped; a cell that does not parse
    imports nothing."""
    import ast

    try:
        tree = ast.parse(python_source(text))
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names if dotted else {name.split(".")[0] for name in names}


# -- one student (runs in a worker process) --------------------------------------------------
def autograde_preprocessors() -> list:
    """nbgrader's own autograde pipeline with Execute swapped for the sandboxed one, probes put in first."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        IgnorePattern,
        LimitOutput,
        SaveAutoGrades,
    )

    from .insert_probes import InsertProbes
    from .sandbox import SandboxedExecute

    return [
        InsertProbes,
        SandboxedExecute,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        AssignLatePenalties,
        CheckCellMetadata,
    ]


def _notebook_outcome(result: dict, autograded: Path) -> tuple[str, str]:
    if result.get("success") and autograded.exists():
        return "graded", ""
    log = (result.get("log") or "") + (result.get("error") or "")
    if "Kernel died" in log or "DeadKernelError" in log:
        why = "the kernel died (os._exit, a crash, or stopped for holding too much memory or disk)"
    elif "Kernel didn't respond" in log or "Timeout waiting for IOPub" in log or "CellTimeoutError" in log:
        why = "a cell ran past the timeout and could not be interrupted"
    elif "UnresponsiveKernelError" in log or "unresponsive" in log:
        why = "the kernel became unresponsive"
    else:
        lines = [ln for ln in log.strip().splitlines() if ln.strip()]
        why = "nbgrader failed: " + (lines[-1][:200] if lines else "no log")
    return "failed", why


def _cell_notes(nb: NotebookNode, timeout: int) -> list[str]:
    notes = []
    for cell in nb.cells:
        gid = grade_id_of(cell) or cell.get("id", "?")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                if out.get("ename") == "CellTimeoutError":
                    notes.append(f"{gid}: stopped after the {timeout} s cell timeout")
                elif out.get("ename") == "MemoryError":
                    notes.append(f"{gid}: hit the kernel memory limit (MemoryError)")
    return notes


def student_root(work: Path, student: str) -> Path:
    """One student's throwaway course: under ``students/`` so no student name (``template``,
    ``_results``) can be the grader's own folder."""
    return Path(work) / "students" / student


def grade_student(
    student: str,
    submission: Path,
    template: Template,
    rel: Assignment,
    opts: GradeOptions,
    work: Path,
    hidden_lines: set[str],
    tampered: dict[str, list[str]],
) -> StudentResult:
    """Grade one student in ``work``/<student>; returns the result, also written to its ``result.json``
    after each notebook (what a worker stopped mid-student leaves behind)."""
    root = student_root(work, student)
    if root.exists():
        shutil.rmtree(root)
    (root / "submitted").mkdir(parents=True)
    shutil.copytree(submission, root / "submitted" / student / template.assignment)
    shutil.copy(template.gradebook, root / "gradebook.db")
    result = StudentResult(student, started=time.time())
    result_path = root / "result.json"
    notebooks = sorted(
        p.stem for p in (root / "submitted" / student / template.assignment).glob("*.ipynb") if p.stem in rel.notebooks
    )

    def grade_one(name: str, turn: int = -1) -> NotebookResult:
        return grade_notebook(name, student, root, template, opts, turn)

    try:
        for name, entry in notebooks_graded(notebooks, opts.notebook_jobs, grade_one, root):
            result.notebooks[name] = entry
            result_path.write_text(json.dumps(result.to_dict(), indent=1))
    except NotebookCrashed as exc:  # the student's other notebooks are graded: they keep their scores
        result.error, result.trace = f"{type(exc).__name__}: {exc}", exc.trace
    result.notebooks = {n: result.notebooks[n] for n in notebooks if n in result.notebooks}
    # what the gradebook says, checked against the template (nothing may have rewritten the tests)
    record_verdicts(
        root / "gradebook.db", template.assignment, student, {nb: e.verdicts for nb, e in result.notebooks.items()}
    )
    result.scores = read_scores(root / "gradebook.db", template.assignment, student)
    result.gradebook_intact = cells_digest(root / "gradebook.db") == template.cells_digest
    for name, entry in result.notebooks.items():
        if name in tampered:
            entry.tamper_flags = list(tampered[name])
    if opts.feedback and notebooks:
        verdicts = {nb: e.verdicts for nb, e in result.notebooks.items()}
        result.feedback = render_feedback(root, student, template, rel, hidden_lines, opts.timeout, verdicts)
    result.seconds = round(time.time() - result.started, 2)
    result_path.write_text(json.dumps(result.to_dict(), indent=1))
    return result


def grade_notebook(
    name: str, student: str, root: Path, template: Template, opts: GradeOptions, turn: int = -1
) -> NotebookResult:
    """One notebook of the student in ``root``: its own nbgrader run and kernel, then the verdicts.
    ``turn``: an fd whose lock (flock) this run holds while it reads or writes ``root``'s gradebook,
    -1 when it is the only run (``notebooks_graded``)."""
    from traitlets.config import Config

    from . import feedback as fb

    t0 = time.perf_counter()
    kernel_root = tempfile.mkdtemp(prefix="cgk-")
    extra = Config()
    extra.Autograde.autograde_preprocessors = autograde_preprocessors()
    extra.SandboxedKernelManager.use_sandbox = opts.sandbox
    extra.SandboxedKernelManager.memory_mb = opts.memory_mb
    extra.SandboxedKernelManager.threads = kernel_threads(opts)
    extra.SandboxedKernelManager.kernel_root = kernel_root
    extra.SandboxedKernelManager.zygote = opts.zygote
    extra.SandboxedKernelManager.guard = {
        "instructor_hashes": template.instructor_hashes,
        "protected": list(PROTECTED),
        "preimport": template.preimport.get(name, []),
    }
    extra.SandboxedExecute.gradebook_turn = turn
    checks = probes.checks_for(name, Path(opts.checks_dir) if opts.checks_dir else None)
    cases = probes.choose_cases(checks, opts.probe_seed, student, name)
    extra.InsertProbes.probes = {gid: probes.probe_cell(checks[gid], cases[gid]) for gid in checks}
    api = _api(root, opts.timeout, template.course_id, name, extra)
    with _turn(turn):
        res = api.autograde(template.assignment, student, force=True, create=True)
    autograded = root / "autograded" / student / template.assignment / f"{name}.ipynb"
    status, why = _notebook_outcome(res, autograded)
    entry = NotebookResult(
        status,
        why,
        round(time.perf_counter() - t0, 2),
        kernel_start(Path(kernel_root)),
        [GuardEvent.from_dict(e) for e in guard_reports(Path(kernel_root))],
    )
    shutil.rmtree(kernel_root, ignore_errors=True)
    if status == "graded":
        nb = nbformat.read(str(autograded), as_version=4)
        t1 = time.perf_counter()
        verdicts = probes.decide(checks, cases, probes.read_records(nb))
        entry.verdict_seconds = round(time.perf_counter() - t1, 2)
        # graders read this copy in formgrader, in their browser: no student script may run there
        nbformat.write(fb.disarm(probes.remove_probes(nb)), str(autograded))
        entry.verdicts = verdicts
        entry.notes = _cell_notes(nb, opts.timeout)
    return entry


@contextlib.contextmanager
def _turn(fd: int):
    """Hold the student's gradebook (the lock on ``fd``) for the duration; nothing when fd is -1."""
    if fd < 0:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class NotebookCrashed(RuntimeError):
    """A notebook's grading raised (not the student's code: that is a cell error); ``trace`` is where."""

    def __init__(self, message: str, trace: str = ""):
        super().__init__(message)
        self.trace = trace


def notebooks_graded(
    names: list[str], parallel: int, grade_one: Callable[..., NotebookResult], root: Path
) -> Iterator[tuple[str, NotebookResult]]:
    """``(name, result)`` for each notebook as it finishes, ``parallel`` at a time.

    One at a time they are graded here, in order. Several at a time, each is graded in a child forked
    from this worker, before it has started any kernel (a worker with ZMQ's threads must not fork);
    nbgrader's steps of the runs take turns at the student's one SQLite gradebook (a lock file: two
    writers at once can fail with "database is locked"), and only their kernels run side by side. A
    run that raises stops nothing: the others finish and ``NotebookCrashed`` is raised after them."""
    if parallel <= 1 or len(names) <= 1:
        for name in names:
            yield name, grade_one(name)
        return
    folder = root / "notebook_results"
    folder.mkdir(exist_ok=True)
    lock = folder / "gradebook.lock"
    lock.touch()
    pending, running, crashed = list(names), {}, None
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            out = folder / f"{name}.json"
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child leaves through os._exit
                try:
                    # its own open file: an flock held through an fd inherited from the parent is every child's
                    data = {"result": grade_one(name, os.open(lock, os.O_RDWR)).to_dict()}
                except BaseException as exc:  # noqa: BLE001 - the parent reports it
                    data = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
                with contextlib.suppress(BaseException):
                    out.write_text(json.dumps(data))
                os._exit(0)
            running[pid] = (name, out)
        pid, _ = os.wait()
        if pid not in running:
            continue
        name, out = running.pop(pid)
        try:
            data = json.loads(out.read_text())
        except (OSError, ValueError):  # no file, or half of one: the child died before it had written it
            data = {"error": "its grading process died"}
        if "result" in data:
            yield name, NotebookResult.from_dict(data["result"])
        elif crashed is None:
            crashed = NotebookCrashed(f"{name}: {data['error']}", data.get("trace", ""))
    if crashed is not None:
        raise crashed


def render_feedback(
    root: Path,
    student: str,
    template: Template,
    rel: Assignment,
    hidden_lines: set[str],
    timeout: int,
    verdicts: dict[str, dict[str, probes.Verdict]],
    db_url: str = "",
) -> FeedbackResult:
    """Render feedback from sanitized copies (the true autograded notebooks stay for graders)."""
    from . import feedback as fb

    folder = root / "autograded" / student / template.assignment
    if not folder.exists():
        return FeedbackResult(error="nothing was autograded")
    keep = root / "autograded_true"
    shutil.copytree(folder, keep)
    for path in folder.glob("*.ipynb"):
        if path.stem in rel.notebooks:
            fb.sanitize_file(path, rel.notebooks[path.stem], verdicts.get(path.stem, {}))
    extra = None
    if db_url:  # scores straight from the course's database server
        from traitlets.config import Config

        extra = Config()
        extra.CourseDirectory.db_url = db_url
    api = _api(root, timeout, template.course_id, extra=extra)
    res = api.generate_feedback(template.assignment, student, force=True)
    shutil.rmtree(folder)
    shutil.move(str(keep), str(folder))
    out = FeedbackResult(ok=bool(res.get("success")))
    if not res.get("success"):
        out.error = (res.get("error") or res.get("log") or "")[-500:]
    # a line the student wrote themselves is not a leak, even if a hidden test has it too
    submitted = (
        nbformat.read(str(p), as_version=4)
        for p in (root / "submitted" / student / template.assignment).glob("*.ipynb")
    )
    secret = fb.not_theirs(hidden_lines, submitted)
    for page in sorted((root / "feedback" / student / template.assignment).glob("*.html")):
        try:
            fb.check_page(page, secret)
        except fb.HiddenTestLeak as exc:
            out.withheld.append(str(exc))
    return out


def feedback_again(
    course: Path,
    student: str,
    rel: Assignment,
    hidden_lines: set[str],
    timeout: int,
    verdicts: dict[str, dict[str, probes.Verdict]],
    work: Path,
    db_url: str = "",
    course_id: str = "",
) -> FeedbackResult | None:
    """Render one student's feedback again from the course folder's autograded notebooks (grading does
    it once already): in a throwaway course under ``work`` holding copies of their autograded and
    submitted notebooks and the gradebook, then into ``<course>/feedback``. None: nothing autograded."""
    name = rel.name
    src = Path(course) / "autograded" / student / name
    if not src.exists():
        return None
    root = Path(work) / student
    shutil.copytree(src, root / "autograded" / student / name)
    submitted = Path(course) / "submitted" / student / name
    if submitted.exists():  # the student's own lines are no leak
        shutil.copytree(submitted, root / "submitted" / student / name)
    if not db_url:
        shutil.copy(Path(course) / "gradebook.db", root / "gradebook.db")
    template = Template(root, root / "gradebook.db", name, [], {}, "", course_id)
    out = render_feedback(root, student, template, rel, hidden_lines, timeout, verdicts, db_url=db_url)
    dest = Path(course) / "feedback" / student / name
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(root / "feedback" / student / name, dest)
    return out


# -- the pool --------------------------------------------------------------------------------
def _child(args: tuple, result_file: Path) -> None:
    os.setsid()  # our own process group: the parent can kill this worker and everything it started
    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter from nbgrader's API
    try:
        result = grade_student(*args)
    except BaseException as exc:  # noqa: BLE001 - a worker must always leave a result behind
        result = StudentResult(args[0], error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
    Path(result_file).write_text(json.dumps(result.to_dict(), indent=1))
    os._exit(0)


def warm_imports() -> None:
    """Import what the verdicts use (torch, torchvision) once, in the grader, before workers fork:
    every student's worker then starts with them loaded instead of paying ~2 s each. Imports only:
    no torch op runs here, so forked children stay safe (libgomp hangs children of a parent that ran
    a multi-threaded op)."""
    import importlib

    for name in ("torch", "torchvision"):
        with contextlib.suppress(ImportError):  # a course without torch: the checks import what they need
            importlib.import_module(name)


def warm_modules(release_dir: Path) -> list[str]:
    """The modules (dotted names) the release notebooks import: what a zygote imports before forking."""
    found = {"torch", "torchvision"}
    for path in sorted(Path(release_dir).glob("*.ipynb")):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == "code":
                found |= imported_modules(cell.source, dotted=True)
    return sorted(found)


def start_zygote(opts: GradeOptions, rel: Assignment) -> tuple[Zygote | None, str]:
    """A zygote for this run's kernels (``zygote.Zygote``), or None with the reason kernels start fresh."""
    from .sandbox import GUARD_SOURCE, kernel_env, status
    from .zygote import Zygote

    if opts.kernel_start != "fork":
        return None, "kernels start fresh (--kernel-start fresh)"
    if not (opts.sandbox and status().available):
        return None, "kernels start fresh: forked kernels need the sandbox (bubblewrap) to join each notebook's box"
    if not hasattr(os, "pidfd_open"):
        return None, "kernels start fresh: this OS has no pidfd (Linux 5.3+) to watch a forked kernel"
    env = kernel_env(os.environ, kernel_threads(opts))
    folder = tempfile.mkdtemp(prefix="cgz-")
    return Zygote(folder, env, warm_modules(rel.release_dir), str(GUARD_SOURCE), PROTECTED), ""


def zygote_line(zygote: Zygote) -> str:
    why = zygote.ready()
    return (
        f"    kernels: forked from a pre-warmed zygote ({len(zygote.modules)} modules imported once)"
        if not why
        else f"    kernels start fresh: {why}"
    )


def grade_all(
    students: dict[str, Path],
    template: Template,
    rel: Assignment,
    opts: GradeOptions,
    work: Path,
    hidden_lines: set[str],
    tampered: dict[str, dict[str, list[str]]],
    progress: Progress | None = None,
    start_method: str = "",
    say: Say | None = None,
    zygote: Zygote | None = None,
) -> dict[str, StudentResult]:
    """Grade ``{student: submission folder}`` with ``opts.jobs`` workers; return results by student.

    Workers are forked (cheap) from a single-threaded grader. From a process with other threads (a
    Dask worker, a test runner, a library's background thread) a fork copies locks those threads may
    hold and the child can hang on one forever, so workers then come from a clean forkserver.
    Kernels are forked from ``zygote`` (``zygote.py``; one is started here when none is given, first, so
    its imports overlap ours); the caller stops a zygote it gave."""
    own = zygote is None
    why = ""
    if own:
        zygote, why = start_zygote(opts, rel)
    try:
        warm_imports()
        for name in rel.notebooks:  # the checks too: every worker would import them again
            probes.checks_for(name, Path(opts.checks_dir) if opts.checks_dir else None)
        if zygote is not None:
            opts = dataclasses.replace(opts, zygote=zygote.socket)
        return _pool(
            students, template, rel, opts, work, hidden_lines, tampered, progress, start_method, say, zygote, why
        )
    finally:
        if own and zygote is not None:
            zygote.stop()


def _pool(
    students: dict[str, Path],
    template: Template,
    rel: Assignment,
    opts: GradeOptions,
    work: Path,
    hidden_lines: set[str],
    tampered: dict[str, dict[str, list[str]]],
    progress: Progress | None,
    start_method: str,
    say: Say | None,
    zygote: Zygote | None,
    why: str,
) -> dict[str, StudentResult]:
    import threading

    if say and why:
        say(f"    {why}")
    if not start_method:
        start_method = "fork" if threading.active_count() == 1 else "forkserver"
    ctx = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # nbgrader, the grader and what the verdicts use imported once, in the server
        ctx.set_forkserver_preload([__name__, "torch", "torchvision"])
    pending = sorted(students)
    running: dict[str, tuple] = {}
    results: dict[str, StudentResult] = {}
    (Path(work) / "_results").mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < max(1, opts.jobs):
            s = pending.pop(0)
            result_file = Path(work) / "_results" / f"{s}.json"
            result_file.unlink(missing_ok=True)
            args = (s, students[s], template, rel, opts, Path(work), hidden_lines, tampered.get(s, {}))
            p = ctx.Process(target=_child, args=(args, result_file), daemon=False)
            p.start()
            running[s] = (p, time.monotonic(), result_file)
        time.sleep(0.05)
        if say and zygote is not None and zygote.answered():
            say(zygote_line(zygote))
            say = None  # said once
        for s, (p, t0, result_file) in list(running.items()):
            if p.is_alive() and time.monotonic() - t0 <= opts.student_timeout:
                continue
            killed = p.is_alive()
            if killed:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            p.join()
            results[s] = _collect_result(s, result_file, student_root(work, s), template.assignment, killed, opts)
            del running[s]
            if progress:
                progress(s, results[s])
    return results


def _collect_result(
    student: str, result_file: Path, root: Path, assignment: str, killed: bool, opts: GradeOptions
) -> StudentResult:
    if result_file.exists():
        return StudentResult.from_dict(json.loads(result_file.read_text()))
    partial = root / "result.json"
    result = StudentResult.from_dict(json.loads(partial.read_text())) if partial.exists() else StudentResult(student)
    result.error = (
        f"grading took longer than {opts.student_timeout} s and was stopped" if killed else "the grading worker died"
    )
    # notebooks finished before the stop keep their scores; the one running scores 0
    if (root / "gradebook.db").exists():  # the notebooks finished before the stop count: their verdicts
        record_verdicts(
            root / "gradebook.db", assignment, student, {nb: e.verdicts for nb, e in result.notebooks.items()}
        )
        result.scores = read_scores(root / "gradebook.db", assignment, student)
    else:
        result.scores = {}
    return result
