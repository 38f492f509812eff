"""Student kernels in a box: bubblewrap (when the OS allows it), a memory cap, and the in-kernel guard.

nbgrader starts one kernel per notebook through nbclient; ``SandboxedExecute`` swaps in
``SandboxedKernelManager``, which launches the kernel as

    python -c LIMITS  bwrap --ro-bind /usr … --ro-bind <python> … --size N --tmpfs /tmp
                            --bind <kernel dir> --bind <work dir> --unshare-all  python -m ipykernel …

- Deny by default: the box holds the system's /usr (and its /bin, /lib links), a few files of /etc,
  the course's Python environment (read-only), a size-capped /tmp, and, writable, the kernel's own
  folder (connection file, sockets, $HOME) and a fresh working folder. Nothing else of the machine
  exists there: no source/ (or any copy of it), no repo, no gradebook, no other student, no $HOME.
- LIMITS sets RLIMIT_DATA (heap and anonymous memory, not the ~3 GiB of address space torch's
  shared libraries map: a huge allocation raises MemoryError in that cell instead of taking the
  machine down), RLIMIT_FSIZE (no file bigger than the cap), puts the kernel in its own pids cgroup
  where the OS lets us (a fork bomb stops at the cap), and ignores SIGINT for bwrap itself (the
  kernel installs its own handler), so a per-cell timeout interrupts the student's code rather
  than killing the box.
- ``--unshare-all`` removes the network, so the kernel talks ZMQ over unix sockets (ipc transport)
  in its own bound folder instead of TCP.
- Output is capped per cell and per notebook (``SandboxedExecute.output``): one student cannot make
  a 200 MB feedback page or fill the grader's memory.
- With a zygote (``zygote`` set, the default of course-grade) the kernel is not a new Python: the box
  is started around a placeholder and the zygote forks an already-warm kernel into it (zygote.py);
  the same box, limits, cgroups and watchdog, and a fresh start whenever that cannot be done.
- The guard (kernel_guard.py) is loaded with ``exec_lines`` before the first cell; it only flags
  (no grade depends on it: scores come from verdicts computed outside, see probes.py).
Where bwrap or user namespaces are unavailable, kernels run unboxed and ``status()`` says why."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, DottedObjectName, Integer, Type, Unicode

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jupyter_client.connect import KernelConnectionInfo
    from jupyter_client.manager import KernelManager
    from nbformat import NotebookNode

GUARD_SOURCE = Path(__file__).with_name("kernel_guard.py")
LIMITS = (
    "import os,resource,signal,sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "n, f, procs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
    "if n > 0: resource.setrlimit(resource.RLIMIT_DATA, (n, n))\n"
    "if f > 0: resource.setrlimit(resource.RLIMIT_FSIZE, (f, f))\n"
    "resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n"
    "for p in filter(None, procs.split(',')):\n"
    "    with open(p, 'w') as fh: fh.write(str(os.getpid()))\n"
    "os.execvp(sys.argv[4], sys.argv[4:])"
)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/fonts",
    "/etc/mime.types",
    "/etc/hosts",
)
CGROUPS = "/sys/fs/cgroup"
# the watchdog's line above RLIMIT_DATA: the heap stops at RLIMIT_DATA with a clean MemoryError first;
# what RLIMIT_DATA does not count (shared memory) may add this much before the kernel is killed
WATCHDOG_SLACK = 256 * 2**20
# What a box drops of the environment it is given (a forked kernel drops the same itself)
UNSET_IN_BOX = ("JPY_PARENT_PID", "PYTHONPATH")
# What a kernel may see of the grader's environment: nothing else (tokens, paths) reaches student code.
ENV_ALLOWED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "NBGRADER_EXECUTION",
    "CUDA_VISIBLE_DEVICES",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "PYTHONIOENCODING",
    "PYTHONNOUSERSITE",
)


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
    probe = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--unshare-all",
        "--die-with-parent",
        "--",
        sys.executable,
        "-c",
        "print('ok')",
    ]
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxStatus(False, f"bwrap could not run: {exc}", bwrap)
    if out.returncode != 0 or "ok" not in out.stdout:
        why = (out.stderr or out.stdout).strip().splitlines()
        return SandboxStatus(
            False,
            "bwrap cannot create namespaces here (user namespaces disabled?): "
            + (why[-1] if why else f"exit {out.returncode}"),
            bwrap,
        )
    return SandboxStatus(True, "bubblewrap: no network, no view of source/, the gradebook or other students", bwrap)


BANNER = "!" * 78


def decide(enabled: bool) -> tuple[bool, list[str]]:
    """Whether this run's kernels are sandboxed (asked for and available), and the lines that say so:
    one when they are, a loud warning with the reason when they are not."""
    st = status()
    if enabled and st.available:
        return True, [f"    sandbox: ON ({st.reason})"]
    why = "disabled with --no-sandbox" if not enabled else st.reason
    return False, [
        BANNER,
        "!! WARNING: student kernels run WITHOUT a sandbox: they can read files the grader can read",
        "!! (source/ with solutions and hidden tests) and write anywhere the grader can write.",
        f"!! Reason: {why}",
        "!! Still in place: memory cap, per-cell timeout, tamper guard, gradebook integrity check.",
        BANNER,
    ]


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's client, without the 0.2 s wait for IOPub silence after a kernel says it is ready.

    jupyter_client drains IOPub until it has been quiet for 0.2 s, so that the kernel_info request's
    status messages are not taken for a cell's output. nbclient never takes them for one: it reads
    only the IOPub messages whose parent is the cell's own execute request (``_async_poll_output_msg``).
    What has arrived is drained all the same; the wait, paid by every kernel start, is not."""

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            with contextlib.suppress(Empty):
                msg = await self.shell_channel.get_msg(timeout=1)
                if msg["msg_type"] == "kernel_info_reply":
                    # IOPub connected: the kernel's busy status for that request is on it
                    with contextlib.suppress(Empty):
                        await self.iopub_channel.get_msg(timeout=0.2)
                        self._handle_kernel_info_reply(msg)
                        break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")
        with contextlib.suppress(Empty):
            while True:
                await self.iopub_channel.get_msg(timeout=0)

    wait_for_ready = _async_wait_for_ready


class SandboxedKernelManager(AsyncKernelManager):
    use_sandbox = Bool(True, help="Run the kernel inside bubblewrap.").tag(config=True)
    memory_mb = Integer(4096, help="Data (heap) cap of a kernel (MiB); 0 = none.").tag(config=True)
    threads = Integer(1, help="Torch/OpenMP threads per kernel.").tag(config=True)
    guard = Dict(help="Guard settings (instructor_hashes, protected, preimport); empty = no guard.").tag(config=True)
    kernel_root = Unicode("", help="Where per-kernel folders are made (short path: unix sockets).").tag(config=True)
    tmp_mb = Integer(64, help="Size of the kernel's /tmp (MiB).").tag(config=True)
    file_mb = Integer(64, help="Largest file the kernel may write (MiB); 0 = no cap.").tag(config=True)
    disk_mb = Integer(256, help="What the kernel's writable folders may hold together (MiB); 0 = no cap.").tag(
        config=True
    )
    max_tasks = Integer(64, help="Processes and threads the kernel may run at once (pids cgroup).").tag(config=True)
    zygote = Unicode(
        "", help='Socket of the grading run\'s zygote: fork kernels from it (zygote.py); "" = start each kernel fresh.'
    ).tag(config=True)

    client_class = DottedObjectName("autograder.sandbox.PromptKernelClient")
    client_factory = Type(PromptKernelClient, klass=AsyncKernelClient)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # jupyter_client checks every 0.1 s whether a kernel told to stop has exited; a kernel exits
        # within milliseconds of the request, and each notebook paid up to 0.1 s waiting to notice
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))

    async def _async_pre_start_kernel(self, **kw):
        self.kernel_dir = tempfile.mkdtemp(prefix="cg-", dir=self.kernel_root or None)
        self.transport = "ipc"
        self.connection_file = os.path.join(self.kernel_dir, "kernel.json")
        self.ip = os.path.join(self.kernel_dir, "s")
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.guard:
            guard_py = os.path.join(self.kernel_dir, "_course_guard.py")
            shutil.copy(GUARD_SOURCE, guard_py)
            config = dict(self.guard, report=os.path.join(self.kernel_dir, "guard.jsonl"))
            config_path = os.path.join(self.kernel_dir, "guard.json")
            Path(config_path).write_text(json.dumps(config))
            line = f"__import__('runpy').run_path({guard_py!r}, run_name='_course_guard')['install']({config_path!r});"
            cmd = cmd + [f"--IPKernelApp.exec_lines={line}"]
        return cmd

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> KernelConnectionInfo | None:
        cwd = os.path.realpath(kw.get("cwd") or os.getcwd())
        env = kernel_env(kw.get("env") or os.environ, self.threads)
        boxed = self.use_sandbox and status().available
        if boxed:
            env["HOME"] = os.path.join(self.kernel_dir, "home")
            os.makedirs(env["HOME"], exist_ok=True)
        limits = int(self.memory_mb) * 2**20
        # the memory cgroup sits 1 GiB above RLIMIT_DATA: heap growth meets a MemoryError first (a clean
        # cell error); what RLIMIT_DATA does not count (shared mappings, tmpfs) meets the cgroup
        self.cgroups = (
            kernel_cgroups(self.kernel_dir, self.max_tasks, limits + 2**30 if limits else 0) if self.use_sandbox else []
        )
        log_path = os.path.join(self.kernel_dir, "kernel.log")
        forked = self._launch_forked(kernel_cmd, env, cwd, limits, log_path) if boxed and self.zygote else None
        if forked is not None:
            info = forked
        else:
            kw["env"] = env
            if boxed:
                kernel_cmd = self._bwrap_args(cwd) + kernel_cmd
            procs = ",".join(os.path.join(g, "cgroup.procs") for g in self.cgroups)
            kernel_cmd = [sys.executable, "-c", LIMITS, str(limits), str(int(self.file_mb) * 2**20), procs] + kernel_cmd
            # the kernel's own chatter ("To connect another client…") goes to a log, not the grader's screen
            with open(log_path, "ab") as log:
                kw.setdefault("stdout", log)
                kw.setdefault("stderr", log)
                info = await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None and (limits or self.disk_mb):
            self.watchdog = KernelWatchdog(
                process.pid, limits + WATCHDOG_SLACK if limits else 0, (self.kernel_dir, cwd), int(self.disk_mb) * 2**20
            )
            self.watchdog.start()
        return info

    def _launch_forked(
        self, kernel_cmd: list[str], env: dict, cwd: str, limits: int, log_path: str
    ) -> KernelConnectionInfo | None:
        """The kernel forked by the zygote into this notebook's own box; None (and a line in the kernel
        log) when that cannot be done, and the caller starts the kernel fresh."""
        from .zygote import ForkedKernel, ZygoteError, request_kernel, start_placeholder

        try:
            launcher = kernel_cmd.index("ipykernel_launcher")
        except ValueError:
            return None  # another kernel than ipykernel: nothing to fork
        box = None
        try:
            box, holder = start_placeholder(self._bwrap_args(cwd)[:-1])
            env = {k: v for k, v in env.items() if k not in UNSET_IN_BOX}
            pid = request_kernel(
                self.zygote,
                {
                    "holder": holder,
                    "argv": kernel_cmd[launcher + 1 :],
                    "env": env,
                    "cwd": cwd,
                    "log": log_path,
                    "data_limit": limits,
                    "file_limit": int(self.file_mb) * 2**20,
                    "threads": int(self.threads),
                },
            )
        except ZygoteError as exc:
            if box is not None:
                box.kill()
                box.communicate()
            with open(log_path, "a") as log:
                log.write(f"course-grade: no forked kernel ({exc}); starting a fresh one\n")
            Path(self.kernel_dir + ".fresh").write_text(str(exc)[:500])
            return None
        self.forked = ForkedKernel(pid, box)
        # beside the kernel's folder, not in it (the box can write there): how this notebook's kernel started
        Path(self.kernel_dir + ".forked").write_text(str(pid))
        for group in self.cgroups:
            with contextlib.suppress(OSError):
                Path(group, "cgroup.procs").write_text(str(pid))
        p = self.provisioner
        p.process, p.pid, p.pgid, p.cwd = self.forked, pid, pid, cwd
        self._reconcile_connection_info(p.connection_info)
        return p.connection_info

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        if getattr(self, "watchdog", None):
            self.watchdog.stop()
        if getattr(self, "forked", None):
            self.forked.kill()  # and its box: nothing of the notebook outlives it
        await super()._async_cleanup_resources(restart=restart)
        for group in getattr(self, "cgroups", []):
            release_cgroup(group)

    def _bwrap_args(self, cwd: str) -> list[str]:
        return box_args(status().bwrap, cwd, self.kernel_dir, self.tmp_mb) + ["--chdir", cwd, "--"]


def kernel_env(given: Mapping[str, str], threads: int) -> dict[str, str]:
    """What a kernel's environment holds: the allowed variables of the grader's, and its thread settings."""
    env = {k: v for k, v in dict(given).items() if k in ENV_ALLOWED or k.startswith("LC_")}
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def box_args(bwrap: str, cwd: str, kernel_dir: str, tmp_mb: int) -> list[str]:
    """bwrap arguments for a deny-by-default box (see the module docstring)."""
    args = [bwrap]
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC:
        args += ["--ro-bind-try", path, path]
    # the course's Python: the venv and the interpreter it links to (read-only)
    for path in sorted(
        {
            os.path.realpath(p)
            for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.dirname(sys.executable)))
        },
        key=len,
    ):
        if not any(path.startswith(d + os.sep) or path == d for d in SYSTEM):
            args += ["--ro-bind", path, path]
            if os.path.realpath(sys.prefix) == path and os.path.abspath(sys.prefix) != path:
                args += ["--symlink", path, os.path.abspath(sys.prefix)]
    args += [
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--size",
        str(int(tmp_mb) * 2**20),
        "--tmpfs",
        "/tmp",
        "--bind",
        kernel_dir,
        kernel_dir,
        "--bind",
        cwd,
        cwd,
        "--remount-ro",
        "/",
        # bwrap run by root keeps root's capabilities in the box unless told
        "--unshare-all",
        "--die-with-parent",
        "--cap-drop",
        "ALL",
    ]
    for name in UNSET_IN_BOX:
        args += ["--unsetenv", name]
    return args


def kernel_cgroups(kernel_dir: str, max_tasks: int, memory_bytes: int) -> list[str]:
    """A kernel's own cgroups (v1 controllers pids and memory) where the OS lets us make them.

    pids.max stops a fork bomb (RLIMIT_NPROC does nothing for root); the memory limit counts what
    RLIMIT_DATA does not (shared mappings, tmpfs pages). Each group sits under this process's own
    group of that controller, so a container's limits stay above ours."""
    own = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(","):
                own[c] = path
    except (OSError, ValueError):
        return []
    wanted = {"pids": {"pids.max": str(int(max_tasks))}}
    if memory_bytes > 0:
        wanted["memory"] = {"memory.limit_in_bytes": str(int(memory_bytes))}
    groups = []
    for controller, limits in wanted.items():
        parent = os.path.join(CGROUPS, controller) + own.get(controller, "/").rstrip("/")
        if not os.path.isfile(os.path.join(parent, "cgroup.procs")) or not os.access(parent, os.W_OK):
            continue
        group = os.path.join(parent, "course-grade-" + os.path.basename(kernel_dir))
        try:
            os.makedirs(group, exist_ok=True)
            for name, value in limits.items():
                Path(group, name).write_text(value)
        except OSError:
            release_cgroup(group)
            continue
        groups.append(group)
    return groups


def held_memory(pids: Iterable[int]) -> int:
    """Bytes the processes hold of their own: resident anonymous plus shared memory (RssAnon +
    RssShmem), not the pages of files they map (libraries: a kernel forked from the zygote maps fewer
    of those than a fresh one, and neither chose them)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(("RssAnon:", "RssShmem:")):
                    total += int(line.split()[1]) * 1024
    return total


def shared_out_memory(pids: list[int]) -> int:
    """Bytes the processes hold together, each page once: the sum of their proportional shares
    (Pss_Anon + Pss_Shmem of ``/proc/<pid>/smaps_rollup``), but never less than the first process's own
    ``held_memory`` (a kernel alone is measured as it always was, forked or fresh).

    ``held_memory`` counts a page copy-on-write shared after a fork once in every process that maps it:
    a kernel holding 300 MB that forks eight children (DataLoader workers, or a fork still short of its
    exec on a busy machine) reads as 2.7 GB. Proportional shares add up to the pages really held. They
    cost a walk of each process's page tables (tens of ms for a kernel with torch loaded), so the
    watchdog asks only when ``held_memory`` is over the limit. Where smaps_rollup is missing (Linux
    before 4.14, or without Pss_Anon before 5.7), ``held_memory``."""
    if not pids:
        return 0
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except FileNotFoundError:
            continue  # ended since it was listed
        except OSError:
            return held_memory(pids)
        fields = dict(line.split(":", 1) for line in text.splitlines()[1:] if ":" in line)
        if "Pss_Anon" not in fields:
            return held_memory(pids)
        total += sum(int(fields[k].split()[0]) * 1024 for k in ("Pss_Anon", "Pss_Shmem") if k in fields)
    return max(total, held_memory(pids[:1]))


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants ([] once it has ended), read from each thread's ``children`` list.

    Why not psutil's ``children(recursive=True)``: it reads the status of every process on the
    machine to find them, ten times a second per running kernel; a kernel's tree is a few files.
    Where the kernel does not list children (built without CONFIG_PROC_CHILDREN), psutil does it."""
    if not _LISTS_CHILDREN:
        import psutil

        try:
            root = psutil.Process(pid)
            return [pid] + [p.pid for p in root.children(recursive=True)]
        except psutil.Error:
            return []
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            threads = os.listdir(f"/proc/{p}/task")
        except OSError:  # ended: its children, if any, now belong to someone else's list
            continue
        tree.append(p)
        for tid in threads:
            with contextlib.suppress(OSError, ValueError):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
    return tree


_LISTS_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


class KernelWatchdog(threading.Thread):
    """Kills a kernel whose processes together hold more memory of their own (``held_memory``, and
    counted each page once, ``shared_out_memory``) than ``limit`` bytes, or whose writable folders
    grow past ``disk_limit`` bytes.

    RLIMIT_DATA stops heap growth with a clean MemoryError, but not shared mappings (mmap of
    anonymous shared memory, tmpfs pages); memory cgroups are not enforced on every host (seen
    here: a container whose cgroup limits are accepted and ignored); RLIMIT_FSIZE caps one file, not
    many. Memory summed over the kernel's process tree, and the size of its folders, polled, work
    everywhere."""

    def __init__(self, pid: int, limit: int, folders: tuple[str, ...] = (), disk_limit: int = 0, every: float = 0.1):
        super().__init__(daemon=True, name=f"kernel-watchdog-{pid}")
        self.pid, self.limit, self.every = pid, limit, every
        self.folders, self.disk_limit = folders, disk_limit
        self.stopped = threading.Event()
        self.killed = ""

    def disk_used(self) -> int:
        total = 0
        for folder in self.folders:
            for root, _dirs, files in os.walk(folder):
                for name in files:
                    with contextlib.suppress(OSError):
                        total += os.lstat(os.path.join(root, name)).st_blocks * 512
        return total

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        polls = 0
        recount_at = 0.0  # when the page-by-page count may run again
        while not self.stopped.wait(self.every):
            polls += 1
            tree = process_tree(self.pid)
            if not tree:
                return
            if self.limit and held_memory(tree) > self.limit and time.monotonic() >= recount_at:
                started = time.thread_time()
                if shared_out_memory(tree) > self.limit:
                    self.killed = "memory"
                # a tree that stays over the cheap count (many forks) must not keep this thread walking
                # page tables: a tenth of its CPU at most, and not more often than every half second. CPU,
                # not wall time: on a loaded machine the walk waits for a core, and waiting costs nothing
                recount_at = time.monotonic() + max(0.5, 9 * (time.thread_time() - started))
            if not self.killed and self.disk_limit and polls % 10 == 0 and self.disk_used() > self.disk_limit:
                self.killed = "disk"  # once a second: walking the folders costs more than reading memory
            if self.killed:
                # psutil checks each pid is still the process it was (not a reused number) before the signal
                family = [root]
                with contextlib.suppress(psutil.Error):
                    family += root.children(recursive=True)
                for p in reversed(family):
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                return

    def stop(self) -> None:
        self.stopped.set()


def release_cgroup(group: str) -> None:
    """Kill whatever the kernel left running in its cgroup (nothing outlives its notebook), then remove it."""
    import signal
    import time

    for _ in range(50):
        try:
            pids = [int(p) for p in Path(group, "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(group)
            return
        except OSError:
            time.sleep(0.02)


class SandboxedExecute(Execute):
    """nbgrader's Execute with our kernel manager (nbgrader pins AsyncKernelManager by keyword).

    nbgrader runs the kernel in the autograded folder, next to the notebook file it is executing,
    which holds the hidden tests (and the student's other, already graded notebooks). The kernel
    gets a fresh working folder instead, with the submission's other files but no notebook."""

    cell_output_kb = Integer(2048, help="Output kept per student cell (KiB); the rest is cut with a note.").tag(
        config=True
    )
    notebook_output_kb = Integer(16384, help="Output kept per notebook (KiB), probe cells aside.").tag(config=True)
    probe_output_kb = Integer(16384, help="Output kept per probe cell (KiB).").tag(config=True)
    gradebook_turn = Integer(
        -1, help="fd of the lock this run holds on the student's gradebook; let go while the kernel runs (-1: none)."
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxedKernelManager
        super().__init__(*args, **kwargs)

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        """nbclient's output handler, with caps: past them an output is dropped and one note is left."""
        from nbformat.v4 import new_output

        from .probes import probe_of

        size = len(json.dumps(msg.get("content", {}), default=str))
        self._cell_bytes[cell_index] = self._cell_bytes.get(cell_index, 0) + size
        probe = probe_of(self.nb.cells[cell_index]) is not None
        if not probe:
            self._notebook_bytes += size
        cap = (self.probe_output_kb if probe else self.cell_output_kb) * 1024
        if self._cell_bytes[cell_index] > cap or (not probe and self._notebook_bytes > self.notebook_output_kb * 1024):
            if cell_index not in self._truncated:
                self._truncated.add(cell_index)
                outs.append(
                    new_output(
                        "stream",
                        name="stdout",
                        text="\n[output cut by the grader: this cell or notebook printed too much]\n",
                    )
                )
            return None
        return super().output(outs, msg, display_id, cell_index)

    def preprocess(
        self, nb: NotebookNode, resources: dict[str, Any] | None = None, km: KernelManager | None = None
    ) -> tuple[NotebookNode, dict[str, Any]]:
        resources = dict(resources or {})
        meta = dict(resources.get("metadata") or {})
        original = meta.get("path")
        root = self.config.SandboxedKernelManager.get("kernel_root") or None
        clean = tempfile.mkdtemp(prefix="cwd-", dir=root)
        if original and os.path.isdir(original):
            shutil.copytree(
                original, clean, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints")
            )
        meta["path"] = clean
        resources["metadata"] = meta
        self._cell_bytes, self._notebook_bytes, self._truncated = {}, 0, set()
        # the other notebooks of the student take their turns at the gradebook while this one's cells run
        if self.gradebook_turn >= 0:
            fcntl.flock(self.gradebook_turn, fcntl.LOCK_UN)
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self.gradebook_turn >= 0:
                fcntl.flock(self.gradebook_turn, fcntl.LOCK_EX)
        resources["metadata"]["path"] = original
        return nb, resources


def kernel_start(kernel_root: Path) -> str:
    """How the kernels under ``kernel_root`` started: "forked", "fresh", or "fresh (why no fork)"."""
    fallbacks = [p.read_text(errors="replace") for p in sorted(Path(kernel_root).glob("cg-*.fresh"))]
    if fallbacks:
        return f"fresh ({fallbacks[0]})"
    return "forked" if any(Path(kernel_root).glob("cg-*.forked")) else "fresh"


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
