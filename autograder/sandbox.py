"""Student kernels in a box: bubblewrap (when the OS allows it), a memory cap, and the in-kernel guard.

nbgrader starts one kernel per notebook through nbclient; ``SandboxedExecute`` swaps in
``SandboxedKernelManager``, which launches the kernel as

    python -c LIMITS  bwrap --ro-bind / / --tmpfs <hidden> … --unshare-all --die-with-parent  python -m ipykernel …

- LIMITS sets RLIMIT_DATA (heap and anonymous memory, not the ~3 GiB of address space torch's
  shared libraries map: a huge allocation raises MemoryError in that cell instead of taking the
  machine down) and ignores SIGINT for bwrap itself (the kernel installs its own handler), so a
  per-cell timeout interrupts the student's code rather than killing the box.
- bwrap hides the course, the repo (source/ = solutions + hidden tests), the gradebook, every other
  student's folder, $HOME and /tmp; only the student's own autograded folder and the kernel's own
  folder are visible (writable). ``--unshare-all`` removes the network, so the kernel talks ZMQ over
  unix sockets (ipc transport) in its own bound folder instead of TCP.
- The guard (kernel_guard.py) is loaded with ``exec_lines`` before the first cell.
Where bwrap or user namespaces are unavailable, kernels run unboxed and ``status()`` says why."""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, List, Unicode

GUARD_SOURCE = Path(__file__).with_name("kernel_guard.py")
LIMITS = ("import os,resource,signal,sys\n"
          "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
          "n = int(sys.argv[1])\n"
          "if n > 0: resource.setrlimit(resource.RLIMIT_DATA, (n, n))\n"
          "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
          "os.execvp(sys.argv[2], sys.argv[2:])")


@dataclass
class SandboxStatus:
    available: bool
    reason: str
    bwrap: str | None = None


@functools.lru_cache(maxsize=1)
def status() -> SandboxStatus:
    """Can student kernels be sandboxed here? Tries a real bwrap run with every namespace."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return SandboxStatus(False, "bubblewrap (bwrap) is not installed: `apt-get install bubblewrap`")
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
             "--unshare-all", "--die-with-parent", "--", sys.executable, "-c", "print('ok')"]
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxStatus(False, f"bwrap could not run: {exc}", bwrap)
    if out.returncode != 0 or "ok" not in out.stdout:
        why = (out.stderr or out.stdout).strip().splitlines()
        return SandboxStatus(False, "bwrap cannot create namespaces here (user namespaces disabled?): "
                                    + (why[-1] if why else f"exit {out.returncode}"), bwrap)
    return SandboxStatus(True, "bubblewrap: no network, no view of source/, the gradebook or other students",
                         bwrap)


class SandboxedKernelManager(AsyncKernelManager):
    use_sandbox = Bool(True, help="Run the kernel inside bubblewrap.").tag(config=True)
    memory_mb = Integer(4096, help="Data (heap) cap of a kernel (MiB); 0 = none.").tag(config=True)
    threads = Integer(1, help="Torch/OpenMP threads per kernel.").tag(config=True)
    hide = List(Unicode(), help="Paths the kernel must not see.").tag(config=True)
    guard = Dict(help="Guard settings (instructor_hashes, protected, preimport); empty = no guard.").tag(
        config=True)
    kernel_root = Unicode("", help="Where per-kernel folders are made (short path: unix sockets).").tag(
        config=True)

    async def _async_pre_start_kernel(self, **kw):
        self.kernel_dir = tempfile.mkdtemp(prefix="cg-", dir=self.kernel_root or None)
        self.transport = "ipc"
        self.connection_file = os.path.join(self.kernel_dir, "kernel.json")
        self.ip = os.path.join(self.kernel_dir, "s")
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.guard:
            guard_py = os.path.join(self.kernel_dir, "_course_guard.py")
            shutil.copy(GUARD_SOURCE, guard_py)
            config = dict(self.guard, report=os.path.join(self.kernel_dir, "guard.jsonl"))
            config_path = os.path.join(self.kernel_dir, "guard.json")
            Path(config_path).write_text(json.dumps(config))
            line = (f"__import__('runpy').run_path({guard_py!r}, run_name='_course_guard')"
                    f"['install']({config_path!r});")
            cmd = cmd + [f"--IPKernelApp.exec_lines={line}"]
        return cmd

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        cwd = os.path.realpath(kw.get("cwd") or os.getcwd())
        env = dict(kw.get("env") or os.environ)
        env.update({"OMP_NUM_THREADS": str(self.threads), "MKL_NUM_THREADS": str(self.threads),
                    "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"})
        if self.use_sandbox and status().available:
            env["HOME"] = os.path.join(self.kernel_dir, "home")
            os.makedirs(env["HOME"], exist_ok=True)
            kernel_cmd = self._bwrap_args(cwd) + kernel_cmd
        kw["env"] = env
        limits = int(self.memory_mb) * 2**20
        kernel_cmd = [sys.executable, "-c", LIMITS, str(limits)] + kernel_cmd
        # the kernel's own chatter ("To connect another client…") goes to a log, not the grader's screen
        with open(os.path.join(self.kernel_dir, "kernel.log"), "ab") as log:
            kw.setdefault("stdout", log)
            kw.setdefault("stderr", log)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    def _bwrap_args(self, cwd: str) -> list[str]:
        args = [status().bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        secret = {os.path.realpath(p) for p in self.hide if p}
        hidden = {"/tmp", os.path.expanduser("~")} | secret
        for path in sorted(hidden, key=len):
            if os.path.isdir(path):
                args += ["--tmpfs", path]
        # the interpreter and its packages stay visible (read-only) even when they live under a hidden path
        for path in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
                            os.path.realpath(os.path.dirname(os.path.dirname(sys.executable)))}, key=len):
            if any(path == h or path.startswith(h + os.sep) for h in hidden):
                args += ["--ro-bind", path, path]
        args += ["--bind", self.kernel_dir, self.kernel_dir, "--bind", cwd, cwd]
        for path in sorted(secret, key=len):   # empty AND read-only: writing there fails, as it should
            if os.path.isdir(path) and path != "/tmp" and not any(
                    p.startswith(path + os.sep) for p in (cwd, self.kernel_dir)):
                args += ["--remount-ro", path]
        args += ["--unshare-all", "--die-with-parent", "--unsetenv", "JPY_PARENT_PID", "--chdir", cwd, "--"]
        return args


class SandboxedExecute(Execute):
    """nbgrader's Execute with our kernel manager (nbgrader pins AsyncKernelManager by keyword).

    nbgrader runs the kernel in the autograded folder, next to the notebook file it is executing,
    which holds the hidden tests (and the student's other, already graded notebooks). The kernel
    gets a fresh working folder instead, with the submission's other files but no notebook."""

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        resources = dict(resources or {})
        meta = dict(resources.get("metadata") or {})
        original = meta.get("path")
        root = self.config.SandboxedKernelManager.get("kernel_root") or None
        clean = tempfile.mkdtemp(prefix="cwd-", dir=root)
        if original and os.path.isdir(original):
            shutil.copytree(original, clean, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        meta["path"] = clean
        resources["metadata"] = meta
        nb, resources = super().preprocess(nb, resources, km)
        resources["metadata"]["path"] = original
        return nb, resources


def guard_reports(kernel_root: Path) -> list[dict]:
    """Everything the guards of the kernels under ``kernel_root`` undid."""
    events = []
    for path in sorted(Path(kernel_root).glob("cg-*/guard.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                events.append({"undone": f"unreadable guard report line: {line[:80]}"})
    return events
