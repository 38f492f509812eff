"""Kernels forked from the zygote: real zygote, real bubblewrap boxes, real ipykernel kernels.

What a forked kernel must share with no other notebook (state, random streams, files), what it
must not see or signal (the zygote, the grader), what it must not hold (capabilities), and that a
dead zygote or kernel only ever costs a fresh start or that notebook."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autograder import sandbox, zygote
from tests.conftest import LAYOUT

SOURCE = LAYOUT.root / LAYOUT.source_folder
pytestmark = pytest.mark.skipif(not sandbox.status().available, reason="forked kernels need bubblewrap")


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zygote")
    z = zygote.Zygote(str(folder), sandbox.kernel_env(os.environ, 1), ["torch", "numpy"])
    assert z.ready() == "", z.ready()
    yield z
    z.stop()


def run_kernel(socket: str, cells: list[str], root: Path, timeout: float = 60, guard: dict | None = None) -> dict:
    """Start one kernel (forked when ``socket`` is given), run ``cells``; each must print one JSON line.
    Returns {"outputs": [parsed line per cell], "forked": bool, "pid": kernel pid, "log": kernel log}."""

    async def go():
        km = sandbox.SandboxedKernelManager(zygote=socket, kernel_root=str(root), guard=guard or {})
        await km.start_kernel(cwd=tempfile.mkdtemp(dir=root))
        kc = km.client()
        kc.start_channels()
        outputs = []
        try:
            await kc.wait_for_ready(timeout=timeout)
            for code in cells:
                msg_id, text = kc.execute(code), ""
                while True:
                    msg = await kc.get_iopub_msg(timeout=timeout)
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    if msg["msg_type"] == "stream":
                        text += msg["content"]["text"]
                    elif msg["msg_type"] == "error":
                        text += json.dumps({"error": msg["content"]["ename"]})
                    elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                        break
                outputs.append(json.loads(text.strip().splitlines()[-1]) if text.strip() else None)
            log = Path(km.kernel_dir, "kernel.log").read_text(errors="replace")
            return {
                "outputs": outputs,
                "forked": getattr(km, "forked", None) is not None,
                "pid": km.provisioner.pid,
                "log": log,
            }
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    return asyncio.run(go())


STATE = (
    "import builtins, os, random, json, numpy, torch\n"
    "print(json.dumps({'leak': hasattr(builtins, 'LEAK'), 'patched': torch.nn.Module.__call__ is None,\n"
    "  'env': os.environ.get('LEAKED'), 'tmp': os.path.exists('/tmp/leak'), 'cwd': sorted(os.listdir('.')),\n"
    "  'random': [random.random(), float(numpy.random.rand()), float(torch.rand(1))],\n"
    "  'threads': torch.get_num_threads(), 'path0': __import__('sys').path[0]}))"
)
POISON = (
    "import builtins, os, torch, json\n"
    "builtins.LEAK = 1; torch.nn.Module.__call__ = None; os.environ['LEAKED'] = 'yes'\n"
    "open('/tmp/leak', 'w').write('x'); open('mine.txt', 'w').write('x')\n"
    "print(json.dumps({'done': True}))"
)


def test_a_forked_kernel_starts_clean_every_time(warm, tmp_path):
    """Nothing one notebook does reaches the next: globals, monkeypatches, environment, files, random
    streams (each fork reseeds: a shared stream would make two students' 'random' results equal)."""
    first = run_kernel(warm.socket, [STATE, POISON], tmp_path)
    second = run_kernel(warm.socket, [STATE], tmp_path)
    assert first["forked"] and second["forked"], first["log"] + second["log"]
    before, after = first["outputs"][0], second["outputs"][0]
    assert first["outputs"][1] == {"done": True}
    assert after["leak"] is False and after["patched"] is False and after["env"] is None
    assert after["tmp"] is False and after["cwd"] == []
    assert all(a != b for a, b in zip(before["random"], after["random"], strict=True)), (before, after)
    assert after["threads"] == 1
    assert after["path0"] != str(Path(zygote.__file__).parent)  # a kernel's sys.path, not the zygote's


def test_a_forked_kernel_is_boxed_like_a_fresh_one(warm, tmp_path):
    """The same view of the machine in both modes; no capability left; the zygote out of sight."""
    probe = (
        "import os, json\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n"
        "procs = [p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]\n"
        "cmds = [open(f'/proc/{p}/cmdline', 'rb').read().decode(errors='replace') for p in procs]\n"
        f"print(json.dumps({{'root': sorted(os.listdir('/')), 'repo': os.path.exists({str(SOURCE)!r}),\n"
        "  'caps': [status[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd', 'CapAmb')],\n"
        "  'nnp': status.get('NoNewPrivs', '').strip(), 'zygote': any('zygote' in c for c in cmds),\n"
        "  'procs': len(procs)}))"
    )
    forked = run_kernel(warm.socket, [probe], tmp_path)
    fresh = run_kernel("", [probe], tmp_path)
    assert forked["forked"] and not fresh["forked"]
    f, s = forked["outputs"][0], fresh["outputs"][0]
    assert f["root"] == s["root"] and not f["repo"] and not s["repo"]
    assert set(f["caps"]) == {"0000000000000000"} and set(s["caps"]) <= {"0000000000000000"}, (f, s)
    assert f["nnp"] == "1"
    # other than itself (a fork of the zygote's program) only the box's init and placeholder
    assert not f["zygote"] and f["procs"] <= 2, f


def test_a_kernel_that_kills_everything_it_can_leaves_the_zygote_serving(warm, tmp_path):
    """Signals reach only the box: its placeholder dies, the box's pid namespace with it, the kernel too."""
    killer = "import os, signal\nos.kill(-1, signal.SIGKILL)"
    later = "import json, time\ntime.sleep(5)\nprint(json.dumps('still alive'))"
    with pytest.raises(queue.Empty):  # no reply to the second cell: the kernel died with its box
        run_kernel(warm.socket, [killer, later], tmp_path, timeout=15)
    assert warm.process.poll() is None
    again = run_kernel(warm.socket, ["import json; print(json.dumps(1 + 1))"], tmp_path)
    assert again["forked"] and again["outputs"] == [2]


def test_killing_the_kernel_kills_its_box(warm, tmp_path):
    async def go():
        km = sandbox.SandboxedKernelManager(zygote=warm.socket, kernel_root=str(tmp_path))
        await km.start_kernel(cwd=tempfile.mkdtemp(dir=tmp_path))
        box = km.forked.box
        assert box.poll() is None
        await km.shutdown_kernel(now=True)
        return box

    box = asyncio.run(go())
    assert box.poll() is not None  # no placeholder (or kernel) left behind


def test_without_a_zygote_the_kernel_starts_fresh_and_says_why(tmp_path):
    out = run_kernel(str(tmp_path / "no-such.sock"), ["import json; print(json.dumps('ok'))"], tmp_path)
    assert not out["forked"] and out["outputs"] == ["ok"]
    assert "no forked kernel" in out["log"] and "starting a fresh one" in out["log"]


@pytest.mark.parametrize(
    "fault, expected",
    [
        ("import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()", "threads"),
        (
            "import os\nos.environ.pop('OPENBLAS_NUM_THREADS', None); os.environ['OMP_NUM_THREADS'] = '2'\n"
            "import numpy",
            "threads",
        ),
    ],
)
def test_a_zygote_that_could_hang_its_children_refuses_to_serve(tmp_path, fault, expected):
    """A thread in the zygote (OpenBLAS's pool is the real-world one) would be copied as a held lock."""
    if "numpy" in fault and (os.cpu_count() or 1) < 2:
        pytest.skip("OpenBLAS starts no thread on one core")
    script = (
        f"{fault}\nimport os, sys\nsys.path.insert(0, {str(Path(zygote.__file__).parents[1])!r})\n"
        f"from autograder import zygote\nzygote.serve({str(tmp_path / 'z.sock')!r}, os.getppid(), [])"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    status = json.loads(out.stdout.strip().splitlines()[-1])
    assert status["ready"] is False and expected in status["why"], status
    assert out.returncode == 0  # it said why and stopped: nothing was forked


# The guard's snapshot as the kernel holds it, against one taken now by the same code (the kernel's
# start-up is over, nothing ran since): every module and class of the fresh one, the same objects.
SNAPSHOT_NOW = """
import json, sys, warnings
ip = get_ipython()
hooks = ip.events.callbacks["pre_run_cell"]
g = next(cb.__self__ for cb in hooks if type(getattr(cb, "__self__", None)).__name__ == "Guard")
now = type(g).__new__(type(g))
now.packages, now.modules, now.classes, now.class_keys = g.packages, {}, {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    now._snapshot_modules()
    for cls in type(ip).__mro__ + type(ip.kernel).__mro__:
        now._snapshot_class(cls)
same = lambda a, b: a.keys() == b.keys() and all(a[k] is b[k] for k in a)
modules = [n for n in now.modules if n not in g.modules or not same(now.modules[n][1], g.modules[n][1])]
classes = [c.__qualname__ for c in now.classes
           if c not in g.classes or not same(now.classes[c], g.classes[c]) or now.class_keys[c] != g.class_keys[c]]
print(json.dumps({"adopted": g.adopted, "modules": len(now.modules), "classes": len(now.classes),
                  "differ": modules[:5] + classes[:5], "left": "_course_guard_warm" in sys.modules}))
"""


def test_a_forked_kernels_guard_adopts_the_zygotes_snapshot_and_holds_what_it_would_have_taken(tmp_path):
    """The zygote snapshots the protected modules once (kernel_guard.prepare); each kernel's guard
    adopts what still holds and takes the rest again (its own warning hook, ipykernel's start-up)."""
    from autograder.tamper import PROTECTED

    (tmp_path / "z").mkdir()
    z = zygote.Zygote(
        str(tmp_path / "z"), sandbox.kernel_env(os.environ, 1), ["torch", "numpy"], str(sandbox.GUARD_SOURCE), PROTECTED
    )
    try:
        assert z.ready() == "", z.ready()
        guard = {"instructor_hashes": [], "protected": list(PROTECTED), "preimport": []}
        got = run_kernel(z.socket, [SNAPSHOT_NOW], tmp_path, guard=guard)
    finally:
        z.stop()
    assert got["forked"], got["log"]
    seen = got["outputs"][0]
    assert seen["modules"] > 300 and seen["classes"] > 1000, seen  # torch's are there
    assert seen["differ"] == [], seen
    assert seen["adopted"] > seen["modules"] // 2, seen  # most came from the zygote
    assert seen["left"] is False  # the zygote's copy is out of the student's reach (sys.modules)
