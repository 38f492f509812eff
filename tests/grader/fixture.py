"""A tiny nbgrader assignment (two notebooks, four exercises) for the grader's tests.

It has what the real assignment has — a read-only setup cell, answer cells, public tests, hidden
tests, a manually graded answer — but kernels start in a second, so the pathological students
(infinite loops, kernel deaths, tampering) cost little. nbgrader generates the release."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.course import Layout
from tools.nbgrader_course import Course

COURSE_ID, ASSIGNMENT = "tiny-course", "tiny07"  # not the real course's: nothing may assume its names
# Distinctive strings that live only in hidden tests: feedback must never show them.
HIDDEN_MARKERS = ("hidden_probe_triple_7331", "hidden_probe_scale_4242", "hidden_probe_count_9090")


def _meta(grade_id, *, solution=False, grade=False, locked=False, points=0):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _cell(kind, source, grade_id, points=0, cell_type="code"):
    make = new_code_cell if cell_type == "code" else new_markdown_cell
    flags = {
        "setup": {"locked": True},
        "answer": {"solution": True},
        "test": {"grade": True, "locked": True, "points": points},
        "manual": {"solution": True, "grade": True, "points": points},
    }[kind]
    cell = make(source, metadata=_meta(grade_id, **flags))
    cell.id = grade_id
    return cell


def _nb(cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, c in enumerate(nb.cells):
        if "id" not in c or not c.id or c.id.startswith("cell"):
            c.id = f"cell-{i}"
    return nb


def ex12() -> nbformat.NotebookNode:
    """Exercises 1 and 2, plain Python (no torch): fast kernels for the pathological students."""
    return _nb(
        [
            new_markdown_cell("# Tiny exercises 1 and 2\nEach exercise is worth its test points."),
            _cell("setup", "import math\nimport warnings\nwarnings.filterwarnings('ignore')", "setup12"),
            new_markdown_cell("## Exercise 1: triple a number"),
            _cell(
                "answer", "def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION", "ex1_triple"
            ),
            _cell(
                "test",
                "assert triple(2) == 6, 'expected triple(2) == 6'\n"
                "### BEGIN HIDDEN TESTS\n"
                "hidden_probe_triple_7331 = [triple(v) for v in (5, -1, 0.5)]\n"
                "assert hidden_probe_triple_7331 == [15, -3, 1.5], 'triple fails on other inputs'\n"
                "### END HIDDEN TESTS",
                "ex1_test_triple",
                points=2,
            ),
            _cell("manual", "YOUR ANSWER HERE", "ex1_written_why", points=1, cell_type="markdown"),
            new_markdown_cell("## Exercise 2: count the even numbers"),
            _cell(
                "answer",
                "def count_even(values):\n    ### BEGIN SOLUTION\n"
                "    return sum(1 for v in values if v % 2 == 0)\n    ### END SOLUTION",
                "ex2_count_even",
            ),
            _cell(
                "test",
                "assert count_even([1, 2, 4]) == 2, 'expected 2 even numbers in [1, 2, 4]'\n"
                "### BEGIN HIDDEN TESTS\n"
                "assert type(count_even([3, 6, 8, 10])) is int, 'return an int'\n"
                "assert count_even(range(10)) == 5, 'count_even fails on range(10)'\n"
                "### END HIDDEN TESTS",
                "ex2_test_count_even",
                points=3,
            ),
        ]
    )


def ex34() -> nbformat.NotebookNode:
    """Exercises 3 and 4 with torch: the tampering students live here."""
    return _nb(
        [
            new_markdown_cell("# Tiny exercises 3 and 4 (torch)"),
            _cell(
                "setup",
                "import math\nimport torch\nimport warnings\nwarnings.filterwarnings('ignore')\ntorch.manual_seed(0)",
                "setup34",
            ),
            new_markdown_cell("## Exercise 3: scale a tensor"),
            _cell(
                "answer",
                "def scale(t, k):\n    ### BEGIN SOLUTION\n    return t * k\n    ### END SOLUTION",
                "ex3_scale",
            ),
            _cell(
                "test",
                "t = torch.arange(4.0)\n"
                "assert torch.allclose(scale(t, 2.0), t * 2.0), 'scale(t, 2) should double t'\n"
                "### BEGIN HIDDEN TESTS\n"
                "hidden_probe_scale_4242 = scale(torch.ones(3), -1.5).tolist()\n"
                "assert hidden_probe_scale_4242 == [-1.5, -1.5, -1.5], 'scale fails for k=-1.5'\n"
                "### END HIDDEN TESTS",
                "ex3_test_scale",
                points=2,
            ),
            new_markdown_cell("## Exercise 4: count positive entries"),
            _cell(
                "answer",
                "def count_positive(t):\n    ### BEGIN SOLUTION\n"
                "    return int((t > 0).sum().item())\n    ### END SOLUTION",
                "ex4_count_positive",
            ),
            _cell(
                "test",
                "n = count_positive(torch.tensor([-1.0, 2.0, 3.0]))\n"
                "assert isinstance(n, int) and n == 2, f'expected 2 positive entries, got {n!r}'\n"
                "### BEGIN HIDDEN TESTS\n"
                "hidden_probe_count_9090 = count_positive(torch.tensor([[1.0, -2.0], [0.0, 5.0]]))\n"
                "assert type(hidden_probe_count_9090) is int and hidden_probe_count_9090 == 2\n"
                "### END HIDDEN TESTS",
                "ex4_test_count_positive",
                points=3,
            ),
        ]
    )


def build_course(root: Path) -> tuple[Path, Path]:
    """Write the source notebooks under ``root``/source and let nbgrader generate the release.
    Returns (source dir, release dir) of the assignment."""
    source = Path(root) / "source" / ASSIGNMENT
    source.mkdir(parents=True, exist_ok=True)
    nbformat.write(ex12(), str(source / "ex12_tiny.ipynb"))
    nbformat.write(ex34(), str(source / "ex34_tiny.ipynb"))
    layout = Layout(root=Path(root), course_id=COURSE_ID, assignments=(ASSIGNMENT,))
    release = Course(Path(root) / "nbgrader", layout).generate()
    return source, release
