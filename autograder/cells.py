"""What a notebook cell means to nbgrader and to the grader: one vocabulary, used everywhere.

Like nbgrader's ``nbgrader.utils`` (``is_grade``, ``is_solution``, ``is_locked``), but every
function here reads a notebook the student controls: a cell's ``metadata``, its ``nbgrader``
entry and every field in it may be missing, a list, a string or a number. Nothing here raises on
such data; malformed metadata reads as none (a plain cell), a ``grade_id`` that is not a non-empty
string is no grade_id, points that are not a number are 0. Flags keep nbgrader's own reading
(truthiness), so the grader and nbgrader agree on what a cell is.

Also here: the text nbgrader's markers put in a cell (solution and hidden-test blocks), and the
cell text that is Python (IPython magics and shell lines blanked)."""

from __future__ import annotations

import re

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
MAGIC = re.compile(r"^\s*[%!]")  # an IPython line magic, cell magic or shell escape
# what nbgrader's ClearSolutions leaves in a blank answer cell (its default stubs)
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"


# -- nbgrader metadata ---------------------------------------------------------------------------
def nbgrader_meta(cell: object) -> dict:
    """The cell's ``metadata["nbgrader"]`` when it is a dict, else ``{}``."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else None
    meta = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    return meta if isinstance(meta, dict) else {}


def grade_id_of(cell: object) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_grade(cell: object) -> bool:
    """Graded: an autograder test cell, or a manually graded answer."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: object) -> bool:
    """An answer cell (the student writes it)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_locked(cell: object) -> bool:
    """Read-only for the student (nbgrader's rule: answers never, graded cells always, else the flag)."""
    if is_solution(cell):
        return False
    return is_grade(cell) or bool(nbgrader_meta(cell).get("locked"))


def points(cell: object) -> float:
    value = nbgrader_meta(cell).get("points", 0)
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def cell_kind(cell: object) -> str:
    """nbgrader's cell types: answer (autograded answer), manual (manually graded answer),
    test (autograder tests), task, readonly, or plain."""
    meta = nbgrader_meta(cell)
    if meta.get("solution") and meta.get("grade"):
        return "manual"
    if meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test"
    if meta.get("task"):
        return "task"
    if meta.get("locked"):
        return "readonly"
    return "plain"


# -- cell text -----------------------------------------------------------------------------------
def python_source(text: str) -> str:
    """``text`` with IPython magics and shell lines blanked (line numbers kept), ready for ast.parse."""
    return "\n".join("" if MAGIC.match(ln) else ln for ln in text.splitlines())


def strip_solution_markers(text: str) -> str:
    return "\n".join(ln for ln in text.splitlines() if not SOLUTION_MARKER.match(ln))


def block_marker(line: str) -> str | None:
    """ "BEGIN" or "END" when ``line`` opens or closes a solution or hidden-test block, else None."""
    if line.strip() in (HIDDEN_BEGIN, HIDDEN_END):
        return line.split()[1]
    m = SOLUTION_MARKER.match(line)
    return m.group(1) if m else None


def without_hidden_blocks(text: str) -> str:
    """``text`` with every hidden-test block (markers included) removed: nothing hidden runs in a kernel."""
    out, inside = [], False
    for ln in text.splitlines():
        if ln.strip() == HIDDEN_BEGIN:
            inside = True
        elif ln.strip() == HIDDEN_END and inside:
            inside = False
        elif not inside:
            out.append(ln)
    return "\n".join(out).rstrip() + ("\n" if text.endswith("\n") else "")


def hidden_blocks(text: str) -> list[str]:
    blocks, current = [], None
    for ln in text.splitlines():
        if ln.strip() == HIDDEN_BEGIN:
            current = []
        elif ln.strip() == HIDDEN_END and current is not None:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(ln)
    return blocks
