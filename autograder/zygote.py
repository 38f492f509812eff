"""Kernels forked from a pre-warmed parent (the zygote): same box, same scores, no import cost.

A fresh kernel pays ~2 s for ``import torch`` and ~2.4 s more for torchvision, in every notebook.
The zygote pays it once per grading run:

1. ``Zygote.start`` launches this file as its own Python process (never forked from the grader, so
   nothing of the grader — gradebook handles, hidden checks, reference code — is in its memory),
   with the environment a kernel gets. It imports ipykernel and the heavy modules the exercises
   import, takes the in-kernel guard's snapshot of them once (kernel_guard.prepare: each kernel's
   guard adopts what still holds), then checks that it is still safe to fork: one thread (libgomp hangs children whose
   parent ran a multi-threaded op; OpenBLAS is held to one thread for that reason), no CUDA
   context (CUDA refuses forked children), no ZMQ context. Otherwise it refuses to serve and the
   grader starts kernels fresh, saying why.
2. For each notebook the kernel manager (``sandbox.SandboxedKernelManager``) starts that notebook's
   own bubblewrap box with a placeholder process in it (the same mounts, namespaces and limits as
   a fresh kernel's box) and sends the zygote one request over a unix socket: the placeholder's pid,
   the kernel's argv, environment, working folder and limits.
3. The zygote forks at once and reads the request only in the child, so it never holds another
   student's paths. The child joins the placeholder's namespaces (user, ipc, uts, net, pid, cgroup,
   mount: ``setns``), drops every capability and sets no_new_privs, then forks again so the kernel
   is inside the box's pid namespace (it cannot see or signal the zygote, the grader or another
   box), and reports the kernel's pid.
4. The kernel (grandchild) starts a new session, sets its rlimits, environment, working folder,
   fds (stdin /dev/null, output to the kernel log), signal handlers, fresh seeds (Python's
   ``random``, numpy, torch) and torch threads as a fresh kernel would have them, and runs
   ipykernel with the argv a fresh kernel gets. The kernel manager puts it in the kernel's cgroups
   and watches it like a fresh kernel (``ForkedKernel`` stands in for the Popen it would have).
   Killing the box's placeholder (or the worker that started it) kills the kernel with it.

One thing a fork cannot redo: Python's string-hash seed is the zygote's (random per run), shared by
the notebooks of that run. Nothing in grading depends on it.

This module imports only the standard library at top level: it is both the zygote's program and
the grader's client of it."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

CLONE = {
    "user": 0x10000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "net": 0x40000000,
    "pid": 0x20000000,
    "cgroup": 0x02000000,
    "mnt": 0x00020000,
}  # the order they are joined in
PR_SET_PDEATHSIG, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 1, 24, 36, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
REQUEST_LIMIT = 1 << 20
START_TIMEOUT = 180  # seconds for the zygote's imports on a slow, busy machine
REPLY_TIMEOUT = 120  # the first requests wait for the zygote's imports


# What every kernel imports on its way up (ipykernel's debugger: debugpy, ~60 ms; IPython's history:
# sqlite3) or at its first error (IPython's tracebacks: stack_data, pygments): imported once here.
# Imports only; the thread check after them (unsafe_to_fork) still decides whether the zygote serves.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.debugger",
    "sqlite3",
    "stack_data",
    "pygments.formatters",
    "pygments.styles",
)


class ZygoteError(RuntimeError):
    """The zygote cannot start or serve a kernel (the caller falls back to a fresh kernel)."""


# -- the zygote (runs as its own program) -------------------------------------------------------------
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def unsafe_to_fork() -> str:
    """Why forking kernels from this process would be unsafe, or ""."""
    if _threads() != 1:
        return f"the zygote runs {_threads()} threads (a forked child inherits locks they may hold)"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "the zygote initialised CUDA (CUDA refuses forked children)"
    zmq = sys.modules.get("zmq")
    if zmq is not None and getattr(zmq.Context, "_instance", None) is not None:
        return "the zygote created a ZMQ context"
    return ""


def _warm(modules: list[str]) -> list[str]:
    """Import what a kernel will import; returns the modules that could not be imported."""
    import importlib

    missing = []
    for name in [*KERNEL_MODULES, *modules]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module a kernel cannot import either: it fails there, not here
            missing.append(name)
    return missing


def _prepare_guard(protect: list[str]) -> None:
    """The guard's snapshot of the protected modules, taken once here for every kernel to adopt
    (kernel_guard.prepare); the guard's file lies beside this one. Without it, each kernel takes its own."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_course_guard.py")
    if not protect or not os.path.exists(path):
        return
    try:
        spec = importlib.util.spec_from_file_location("_course_guard_zygote", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.prepare(protect)
    except Exception:  # noqa: BLE001 - only a speed-up is lost: each kernel's guard snapshots for itself
        import traceback

        traceback.print_exc()


def serve(sock_path: str, parent: int, modules: list[str], protect: list[str] = ()) -> None:
    """The zygote's main loop: one fork per request, nothing else (no threads, no torch op)."""
    libc = _libc()
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the grader, even on SIGKILL
    if os.getppid() != parent:
        return
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphaned kernels are ours to reap
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # a kernel's sys.path, not this script's folder
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader stops it; a terminal's Ctrl-C is the grader's
    # listening before the imports: a kernel asked for meanwhile waits for them instead of starting fresh
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    os.chmod(sock_path, 0o600)
    server.listen(64)
    missing = _warm(modules)
    _prepare_guard(protect)
    why = unsafe_to_fork()
    print(json.dumps({"ready": not why, "why": why, "missing": missing}), flush=True)
    if why:
        return
    while True:
        readable, _, _ = select.select([server], [], [], 1.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if os.getppid() != parent:
            return
        if not readable:
            continue
        conn, _ = server.accept()
        why = unsafe_to_fork()
        if why:
            _reply(conn, {"error": why})
            conn.close()
            continue
        if os.fork() == 0:
            try:
                server.close()
                _start_kernel(conn)
            finally:
                os._exit(1)
        conn.close()


def _reply(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _read_line(conn: socket.socket, timeout: float) -> dict:
    conn.settimeout(timeout)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk or len(data) > REQUEST_LIMIT:
            break
        data += chunk
    if not data.endswith(b"\n"):
        raise ZygoteError("the zygote's connection closed mid-message")
    return json.loads(data)


def _join_box(holder: int) -> None:
    """Enter the namespaces of the box's placeholder process, then give up every privilege."""
    libc = _libc()
    fds = {}
    for name in CLONE:
        path = f"/proc/{holder}/ns/{name}"
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                fds[name] = os.open(path, os.O_RDONLY)
    if "mnt" not in fds or "pid" not in fds or "net" not in fds:
        raise ZygoteError(f"process {holder} is not in a box of its own")
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last_cap = int(f.read())
    for name, fd in fds.items():
        if libc.setns(fd, CLONE[name]) != 0:
            raise ZygoteError(f"setns({name}): {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    # what bwrap does for its own child: no capability left in any set, and none can come back
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    if libc.capset(ctypes.byref(Header(0x20080522, 0)), ctypes.byref((Data * 2)())) != 0:
        raise ZygoteError(f"capset: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise ZygoteError("prctl(PR_SET_NO_NEW_PRIVS) failed")


def _start_kernel(conn: socket.socket) -> None:
    """In the zygote's child: join the box, fork the kernel into it, report its pid, exit."""
    try:
        request = _read_line(conn, REPLY_TIMEOUT)
        if request.get("holder"):
            _join_box(int(request["holder"]))
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            conn.close()
            os.close(ready_r)
            _become_kernel(request, ready_w)
        os.close(ready_w)
        said = os.read(ready_r, 4096) if select.select([ready_r], [], [], REPLY_TIMEOUT)[0] else b""
        if said.startswith(b"!"):
            raise ZygoteError(f"the forked kernel could not start: {said[1:].decode(errors='replace')}")
        if said != b"1":
            with contextlib.suppress(ChildProcessError):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    raise ZygoteError(f"the forked kernel did not get ready ({_ended_how(status)})")
            raise ZygoteError("the forked kernel did not get ready")
        _reply(conn, {"pid": pid})
    except Exception as exc:  # noqa: BLE001 - the grader gets the reason and starts a fresh kernel
        _reply(conn, {"error": f"{type(exc).__name__}: {exc}"})


def _ended_how(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _become_kernel(request: dict, ready_w: int) -> None:
    import atexit
    import random
    import resource

    try:
        os.setsid()  # its own process group: an interrupt or kill reaches the kernel and its children
        for which, value in (
            ("RLIMIT_DATA", request.get("data_limit", 0)),
            ("RLIMIT_FSIZE", request.get("file_limit", 0)),
        ):
            if value:
                resource.setrlimit(getattr(resource, which), (value, value))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, ready_w)
        os.closerange(ready_w + 1, 65536)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.seed()
            torch.set_num_threads(int(request.get("threads", 1)))
        sys.argv = ["ipykernel_launcher", *request["argv"]]
        os.write(ready_w, b"1")
        os.close(ready_w)
    except BaseException as exc:  # noqa: BLE001 - no kernel: the intermediate reports why
        with contextlib.suppress(BaseException):
            os.write(ready_w, b"!" + f"{type(exc).__name__}: {exc}".encode()[:2000])
        os._exit(1)
    code = 0
    try:
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance(argv=request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


# -- the grader's side ----------------------------------------------------------------------------
class Zygote:
    """The grader's handle on one zygote process (one per grading run)."""

    def __init__(
        self,
        folder: str,
        env: dict[str, str],
        modules: list[str],
        guard_source: str = "",
        protect: tuple[str, ...] = (),
    ):
        """``guard_source``, ``protect``: the in-kernel guard's file and the packages it protects; the
        zygote takes the guard's snapshot of them once, for its kernels (kernel_guard.prepare)."""
        self.folder, self.modules = folder, modules
        self.socket = os.path.join(folder, "zygote.sock")
        env = dict(env, OPENBLAS_NUM_THREADS="1")  # OpenBLAS starts its threads at import otherwise
        env.pop("PYTHONPATH", None)  # a kernel's sys.path, not the grader's
        # run from a copy: a kernel's command line (inherited from the zygote) names no path of the grader's
        program = os.path.join(folder, "zygote.py")
        shutil.copy(__file__, program)
        options = []
        if guard_source and protect:
            shutil.copy(guard_source, os.path.join(folder, "_course_guard.py"))
            options = ["--protect=" + ",".join(protect)]
        with open(os.path.join(folder, "zygote.log"), "ab") as log:  # the zygote holds its own copy
            self.process = subprocess.Popen(
                [sys.executable, program, self.socket, str(os.getpid()), *options, *modules],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=folder,
                start_new_session=True,
            )
        self._status: dict | None = None

    def answered(self) -> bool:
        """Has the zygote said whether it serves (without waiting)?"""
        return self._status is not None or bool(select.select([self.process.stdout], [], [], 0)[0])

    def ready(self) -> str:
        """Wait until the zygote has imported everything; "" when it serves, else why not."""
        if self._status is None:
            line = b""
            if select.select([self.process.stdout], [], [], START_TIMEOUT)[0]:
                line = self.process.stdout.readline()
            try:
                self._status = json.loads(line)
            except ValueError:
                self._status = {
                    "ready": False,
                    "why": "the zygote did not start (see zygote.log)"
                    if line == b""
                    else f"the zygote said {line[:200]!r}",
                }
        return "" if self._status.get("ready") else self._status.get("why", "not ready")

    def stop(self) -> None:
        """Stop the zygote (kernels it forked live on in their boxes until their managers end them)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def request_kernel(sock_path: str, request: dict) -> int:
    """Ask the zygote for one kernel; returns its pid (raises ZygoteError)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.settimeout(REPLY_TIMEOUT)
            for _ in range(100):  # the zygote may not be listening yet (it binds first thing)
                try:
                    conn.connect(sock_path)
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    time.sleep(0.1)
            else:
                conn.connect(sock_path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            reply = _read_line(conn, REPLY_TIMEOUT)
        except (OSError, ValueError) as exc:
            raise ZygoteError(f"no reply from the zygote: {exc}") from exc
    if "pid" not in reply:
        raise ZygoteError(reply.get("error", "the zygote refused"))
    return int(reply["pid"])


def start_placeholder(box: list[str]) -> tuple[subprocess.Popen, int]:
    """Start a box (bwrap arguments up to, not including, ``--``) holding one idle process;
    returns the bwrap process and the placeholder's pid (in our pid namespace).

    Returns only once the placeholder runs: bwrap reports the pid before it has finished building
    the box's mounts, and a kernel that joined the mount namespace then could land in a half-built
    box (seen: 2 kernels in 100 under load never got ready)."""
    info_r, info_w = os.pipe()
    try:
        proc = subprocess.Popen(
            box
            + [
                "--info-fd",
                str(info_w),
                "--",
                sys.executable,
                "-S",
                "-c",
                "import os, signal\nos.write(1, b'up')\nwhile True: signal.pause()",
            ],
            pass_fds=(info_w,),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(info_w)
    deadline = time.monotonic() + REPLY_TIMEOUT
    with os.fdopen(info_r, "rb") as info:
        data = _read_until(info.fileno(), deadline, lambda d: json.loads(d)["child-pid"])
    pid = data and int(json.loads(data)["child-pid"])
    if pid and _read_until(proc.stdout.fileno(), deadline, lambda d: d.startswith(b"up")):
        return proc, pid
    proc.kill()
    _, err = proc.communicate()
    raise ZygoteError(f"the box did not start: {err.decode(errors='replace').strip()[-300:]}")


def _read_until(fd: int, deadline: float, complete: Callable[[bytes], object]) -> bytes:
    """Read ``fd`` until ``complete(data)`` holds (does not raise), EOF, or ``deadline``; b"" if it never held."""
    data = b""
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if complete(data):
                return data
    return b""


class ForkedKernel:
    """Stands in for the ``Popen`` of a fresh kernel: the kernel is not our child (it is the zygote's
    grandchild, reaped by its box), so its end is seen through a pidfd. Killing it kills its box."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, box: subprocess.Popen | None):
        self.pid, self.box = pid, box
        self.returncode: int | None = None
        self._signalled = 0
        try:
            self._fd = os.pidfd_open(pid)
        except OSError:  # already gone
            self._fd, self.returncode = -1, 1

    def _ended(self, timeout: float = 0) -> bool:
        if self.returncode is None and select.select([self._fd], [], [], timeout)[0]:
            self.returncode = -self._signalled if self._signalled else 0
            self._close()
        return self.returncode is not None

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.box is not None:
            with contextlib.suppress(OSError):
                self.box.kill()
            self.box.wait()
            for pipe in (self.box.stdout, self.box.stderr):
                if pipe:
                    pipe.close()
            self.box = None

    def poll(self) -> int | None:
        return self.returncode if self._ended() else None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended(1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._signalled = sig
            try:
                signal.pidfd_send_signal(self._fd, sig)
            except ProcessLookupError:  # it ended on its own (or with its box) since the last poll
                self._ended(1.0)

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(OSError):
                self.send_signal(signal.SIGKILL)
            self.wait(10)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


if __name__ == "__main__":
    _protect = [a for a in sys.argv[3:] if a.startswith("--protect=")]
    serve(
        sys.argv[1],
        int(sys.argv[2]),
        [a for a in sys.argv[3:] if a not in _protect],
        [p for a in _protect for p in a.split("=", 1)[1].split(",") if p],
    )
