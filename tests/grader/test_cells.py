"""The cell vocabulary (autograder/cells.py) on the metadata a student can write: anything."""

from __future__ import annotations

import nbformat
import pytest

from autograder import cells

HOSTILE = [
    {},
    {"metadata": []},
    {"metadata": "x"},
    {"metadata": {"nbgrader": []}},
    {"metadata": {"nbgrader": "solution"}},
    {"metadata": {"nbgrader": None}},
    {"metadata": {"nbgrader": 7}},
    {"metadata": {"nbgrader": {"grade_id": ["ex1_triple"], "points": "lots"}}},
    {"metadata": {"nbgrader": {"grade_id": {"a": 1}, "points": [3]}}},
]


@pytest.mark.parametrize("cell", HOSTILE)
def test_malformed_metadata_reads_as_a_plain_cell(cell):
    assert cells.grade_id_of(cell) is None and cells.points(cell) == 0.0
    assert cells.cell_kind(cell) == "plain"
    assert not (cells.is_grade(cell) or cells.is_solution(cell) or cells.is_locked(cell))


@pytest.mark.parametrize(
    "meta, kind, locked",
    [
        ({"grade": True, "solution": False, "grade_id": "ex1_test_a", "points": 2}, "test", True),
        ({"grade": False, "solution": True, "grade_id": "ex1_a"}, "answer", False),
        ({"grade": True, "solution": True, "grade_id": "ex1_written_a", "points": 1}, "manual", False),
        ({"task": True, "grade_id": "ex1_task"}, "task", False),
        ({"locked": True, "grade_id": "ex1_setup"}, "readonly", True),
    ],
)
def test_nbgraders_cell_types(meta, kind, locked):
    cell = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": meta})
    assert cells.cell_kind(cell) == kind and cells.is_locked(cell) == locked
    assert cells.grade_id_of(cell) == meta["grade_id"] and cells.points(cell) == float(meta.get("points", 0))


def test_magics_and_shell_lines_are_blanked_in_place():
    text = "%matplotlib inline\n  !pip install x\nimport torch\n%%time"
    assert cells.python_source(text) == "\n\nimport torch\n"


def test_block_markers():
    assert [
        cells.block_marker(ln)
        for ln in (
            "  ### BEGIN SOLUTION",
            "### END SOLUTION  ",
            "### BEGIN HIDDEN TESTS",
            "### END HIDDEN TESTS",
            "x = 1  # ### BEGIN SOLUTION",
        )
    ] == ["BEGIN", "END", "BEGIN", "END", None]
