"""Run notebooks the way a student does (a real kernel, top to bottom) and load their
pure functions into the test process so demos can be tested with many inputs (the lesson
benchmarks and the tests both use it)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

# Lesson cells tagged with this hold imports, pure compute functions and thin widget
# builders: no training, no downloads, no display. Tests exec them in-process.
FUNCTIONS_TAG = "functions"


# nbclient waits for a cell's execute_reply with one poll of the whole cell timeout. After a cell
# that displays widgets that poll sometimes misses the reply already in the socket
# (jupyter/nbclient#312) and the run stalls for the full timeout before going on. Polling in
# short slices sees the reply on the next slice; the overall deadline is unchanged.
SHELL_POLL_SLICE = 0.5


class PromptNotebookClient(NotebookClient):
    """NotebookClient whose shell-reply wait cannot sleep through a reply (see above)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        whole_wait = kc.shell_channel.get_msg

        async def sliced_get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = SHELL_POLL_SLICE if deadline is None else deadline - time.monotonic()
                try:
                    return await whole_wait(timeout=max(0.0, min(SHELL_POLL_SLICE, left)))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        kc.shell_channel.get_msg = sliced_get_msg
        return kc


class NotebookFailed(AssertionError):
    """A cell raised: names the notebook, the cell and the error so the report is useful."""


def cell_label(nb, index: int) -> str:
    cell = nb.cells[index]
    first = next((ln for ln in cell.source.splitlines() if ln.strip()), "<empty>")
    return f"cell #{index} (id={cell.get('id', '?')}): {first[:80]}"


def execute_notebook(
    path: Path, *, cwd: Path | None = None, timeout: int = 120, env: dict | None = None, allow_errors: bool = False
):
    """Execute ``path`` in a fresh python3 kernel; return (executed notebook, seconds).

    On failure raise NotebookFailed naming the failing cell and the exception.
    ``env`` entries are set in the kernel's environment (e.g. NBGRADER_EXECUTION)."""
    nb = nbformat.read(str(path), as_version=4)
    kernel_env = dict(os.environ)
    # A kernel draws inline like a student's; an inherited Agg backend would hide every figure.
    kernel_env.pop("MPLBACKEND", None)
    if env:
        kernel_env.update(env)
    client = PromptNotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=allow_errors,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd or Path(path).parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as exc:
        failing = next(
            (
                i
                for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and any(o.get("output_type") == "error" for o in c.get("outputs", []))
            ),
            None,
        )
        where = cell_label(nb, failing) if failing is not None else "unknown cell"
        raise NotebookFailed(f"{Path(path).name} failed at {where}\n{exc}") from None
    return nb, time.perf_counter() - start


def outputs_text(nb) -> str:
    """All stream and text/plain outputs of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "\n".join(parts)


def stderr_text(nb) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stderr"
    )


def notebook_namespace(path: Path, tag: str = FUNCTIONS_TAG) -> dict:
    """Exec every code cell tagged ``tag`` into one namespace and return it."""
    nb = nbformat.read(str(path), as_version=4)
    ns: dict = {"__name__": f"notebook_{Path(path).stem}"}
    cells = [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    if not cells:
        raise AssertionError(f"{Path(path).name} has no code cell tagged {tag!r}")
    for cell in cells:
        exec(compile(cell.source, f"<{Path(path).name}:{cell.get('id', '?')}>", "exec"), ns)
    return ns
