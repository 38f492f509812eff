"""Run a notebook with the grader's probes in a grading kernel and return the verdicts.

No nbgrader here (a quick loop, for developing checks and for the exercise tests' many variants), but
the kernel is the one a graded notebook gets: ``ProbeKernels`` starts one zygote (autograder/zygote.py)
that imports torch, torchvision, ipykernel and what else the release notebooks import once, and each
run's kernel is forked from it into that notebook's own bubblewrap box by the grader's
``sandbox.SandboxedKernelManager`` (same mounts, no network, memory and file caps, the kernel
environment ``sandbox.kernel_env`` allows, a fresh working folder). So the harness is *more* like real
grading than the plain kernel it used to start, and a variant pays its own code, not ~2-4 s of imports.

Fallbacks, each said once (a warning): where the sandbox cannot run here (``sandbox.status()``: no
bubblewrap, no user namespaces) or the OS has no pidfd, a fresh plain ``python3`` kernel per run, as
before; where the zygote refuses to serve, or ``COURSE_GRADE_KERNEL_START=fresh`` (course-grade's
switch), a fresh kernel in the same box. The verdicts are computed here, outside the kernel
(``probes.decide``), from the cases ``probes.choose_cases`` draws from seed + student + notebook."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from nbclient import NotebookClient

from autograder import probes

_SAID: set[str] = set()


def say_once(message: str) -> None:
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, stacklevel=3)


def kernel_threads() -> int:
    """Torch threads per kernel: the cores shared by this run's pytest workers (grading's rule)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, (os.cpu_count() or 1) // max(1, workers))


class ProbeKernels:
    """Where probe runs get their kernels: forked from one zygote into a box each (the default), or
    fresh (see the module docstring). A context manager: the zygote is stopped whatever happens."""

    def __init__(self, kernel_start: str | None = None, modules: list[str] | None = None):
        """``kernel_start``: "fork" or "fresh" (course-grade's ``--kernel-start``); None = what
        ``COURSE_GRADE_KERNEL_START`` says, else "fork". ``modules``: what the zygote imports (None = what
        course-grade's does: every module the release notebooks import)."""
        from autograder import sandbox

        self.threads = kernel_threads()
        self.root = tempfile.mkdtemp(prefix="cgt-")  # short: kernels' unix sockets live under it
        self.zygote = None
        self.boxed = sandbox.status().available and hasattr(os, "pidfd_open")
        self.mode = "fresh plain kernels"
        if not self.boxed:
            why = sandbox.status().reason if not sandbox.status().available else "this OS has no pidfd"
            say_once(f"exercise harness: fresh plain kernels, no box and no zygote ({why})")
            return
        self.mode = "fresh kernels in the grader's box"
        if kernel_start is None:
            kernel_start = os.environ.get("COURSE_GRADE_KERNEL_START", "fork")
            if kernel_start == "fresh":
                say_once("exercise harness: fresh kernels in the grader's box (COURSE_GRADE_KERNEL_START=fresh)")
        if kernel_start == "fresh":
            return
        from autograder import zygote
        from autograder.grading import warm_modules
        from tools import LAYOUT

        self.zygote = zygote.Zygote(
            tempfile.mkdtemp(prefix="cgz-"),
            sandbox.kernel_env(os.environ, self.threads),
            warm_modules(LAYOUT.release()) if modules is None else modules,
        )
        self.mode = "kernels forked from a zygote into the grader's box"
        self._checked = False

    def __enter__(self) -> ProbeKernels:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.zygote is not None:
            self.zygote.stop()
            self.zygote = None
        shutil.rmtree(self.root, ignore_errors=True)

    def _socket(self) -> str:
        """The zygote's socket once it serves (its imports done); "" when kernels start fresh."""
        if self.zygote is None:
            return ""
        if not self._checked:
            self._checked = True
            why = self.zygote.ready()
            if why:
                say_once(f"exercise harness: fresh kernels in the grader's box, the zygote refused: {why}")
                self.zygote.stop()
                self.zygote = None
                self.mode = "fresh kernels in the grader's box"
                return ""
        return self.zygote.socket

    def run(self, nb, timeout: int) -> bool:
        """Execute ``nb`` in place in a kernel of its own, in a fresh working folder; True when that
        kernel was forked from the zygote."""
        with tempfile.TemporaryDirectory(dir=self.root) as work:
            cwd = os.path.join(work, "cwd")
            os.mkdir(cwd)
            if not self.boxed:
                NotebookClient(
                    nb, timeout=timeout, allow_errors=True, kernel_name="python3", resources={"metadata": {"path": cwd}}
                ).execute()
                return False
            from autograder.sandbox import SandboxedKernelManager

            socket = self._socket()
            km = SandboxedKernelManager(kernel_name="python3", zygote=socket, kernel_root=work, threads=self.threads)
            # km given: nbclient only shuts the kernel down when asked (cleanup_kc), and then does so
            # whatever the cells did
            NotebookClient(
                nb, km=km, timeout=timeout, allow_errors=True, resources={"metadata": {"path": cwd}}
            ).execute(cleanup_kc=True)
            fresh = Path(getattr(km, "kernel_dir", "") + ".fresh")
            if socket and fresh.is_file():
                say_once(f"exercise harness: a kernel started fresh instead of forked: {fresh.read_text()}")
            return getattr(km, "forked", None) is not None


def probe_verdicts(
    nb,
    notebook: str,
    *,
    student: str = "student",
    seed: str = "dev",
    timeout: int = 60,
    kernels: ProbeKernels | None = None,
) -> dict[str, probes.Verdict]:
    """Run ``nb`` (a copy) with the probes of ``notebook``'s checks; ``kernels`` None: one fresh set for
    this run alone (a zygote for one kernel costs more than it saves, so: fresh kernels)."""
    checks = probes.checks_for(Path(notebook).stem)
    cases = probes.choose_cases(checks, seed, student, Path(notebook).stem)
    nb = copy.deepcopy(nb)
    probes.insert_probes(nb, {gid: probes.probe_cell(checks[gid], cases[gid]) for gid in checks})
    if kernels is None:
        with ProbeKernels("fresh") as own:
            own.run(nb, timeout)
    else:
        kernels.run(nb, timeout)
    return probes.decide(checks, cases, probes.read_records(nb))
