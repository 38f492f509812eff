"""The in-kernel guard (kernel_guard.py) in a real IPython kernel, unboxed, with the grader's own
protected list: what it undoes before an instructor cell, and that an honest notebook leaves it
nothing to report (a false report sends an honest student to review)."""

from __future__ import annotations

import hashlib
import json

import pytest

from autograder.grading import imported_modules
from autograder.sandbox import GUARD_SOURCE
from autograder.tamper import PROTECTED

INSTRUCTOR = [
    "import inspect, collections, sys\nimport torch\nprint(inspect.signature(len))",
    "assert inspect.cleandoc('  a') == 'a' and collections.Counter('aab')['a'] == 2\n"
    "print(sys.displayhook, sys.excepthook)\n3 + 4",
]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    from jupyter_client.manager import start_new_kernel

    root = tmp_path_factory.mktemp("guard")
    preimport = sorted(set().union(*map(imported_modules, INSTRUCTOR)) & set(PROTECTED))
    config = {
        "instructor_hashes": [hashlib.sha256(c.encode()).hexdigest() for c in INSTRUCTOR],
        "protected": list(PROTECTED),
        "preimport": preimport,
        "report": str(root / "guard.jsonl"),
    }
    (root / "guard.json").write_text(json.dumps(config))
    line = (
        f"__import__('runpy').run_path({str(GUARD_SOURCE)!r}, run_name='_course_guard')"
        f"['install']({str(root / 'guard.json')!r});"
    )
    km, kc = start_new_kernel(extra_arguments=[f"--IPKernelApp.exec_lines={line}"])

    def run(code: str) -> dict:
        out = []
        reply = kc.execute_interactive(code, timeout=60, output_hook=out.append)
        return {
            "status": reply["content"]["status"],
            "text": "".join(m["content"].get("text", "") for m in out if m["msg_type"] == "stream"),
        }

    def reports() -> list[str]:
        path = root / "guard.jsonl"
        return [json.loads(ln)["undone"] for ln in path.read_text().splitlines()] if path.exists() else []

    yield run, reports
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def test_honest_notebook_leaves_nothing_to_undo_then_tampering_is_undone(kernel):
    run, reports = kernel
    assert run(INSTRUCTOR[0])["status"] == "ok"
    assert run("def triple(x):\n    return 3 * x\nprint(triple(2))")["text"] == "6\n"
    assert run("raise ValueError('a student bug')")["status"] == "error"  # IPython's own hooks at work
    assert run(INSTRUCTOR[1])["status"] == "ok"
    assert reports() == [], reports()
    # modules only one of the two old lists held: the scan's (inspect) and the guard's (collections)
    run("import inspect, collections\ninspect.cleandoc = lambda s: 'x'\ncollections.Counter = dict")
    assert run(INSTRUCTOR[1])["status"] == "ok", "the instructor cell did not see the real objects"
    assert {"inspect.cleandoc was replaced", "collections.Counter was replaced"} <= set(reports()), reports()
