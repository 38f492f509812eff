"""Build variant student submissions of one exercise notebook, and read its grading metadata.

A wrong answer is a small edit of the reference answer (`edit`), checked to hit the reference
text exactly, so a refactored reference cannot silently turn a "wrong" variant into a correct one."""

from __future__ import annotations

import re

from autograder.assignment import exercise_of
from autograder.cells import (
    CODE_STUB,
    TEXT_STUB,
    block_marker,
    cell_kind,
    grade_id_of,
    is_grade,
    is_solution,
    nbgrader_meta,
    points,
    strip_solution_markers,
)
from tests.harness.grading import reference_submission, source_nb
from tools.nbgrader_course import solution_cells, with_answer


def reference_answer(name: str, grade_id: str) -> str:
    """The reference answer of one answer cell, as a student would type it (no markers)."""
    return strip_solution_markers(solution_cells(source_nb(name))[grade_id].source)


def edit(name: str, grade_id: str, *replacements: tuple) -> dict[str, str]:
    """``{grade_id: reference answer with each (old, new[, count]) applied}``.

    Each ``old`` must occur exactly ``count`` times (default 1) in the reference."""
    source = reference_answer(name, grade_id)
    for old, new, *count in replacements:
        expected = count[0] if count else 1
        assert source.count(old) == expected, f"{grade_id}: expected {expected} occurrence(s) of {old!r}"
        source = source.replace(old, new)
    return {grade_id: source}


def submission(name: str, answers: dict[str, str]):
    """The full-marks submission of ``name`` with some answer cells replaced."""
    nb = reference_submission(name)
    for grade_id, source in answers.items():
        nb = with_answer(nb, grade_id, source)
    return nb


def points_per_exercise(nb) -> dict[str, float]:
    """{"ex1": points, ...} summed over every graded cell (autograded tests and written answers)."""
    total: dict[str, float] = {}
    for cell in nb.cells:
        if is_grade(cell):
            exercise = exercise_of(grade_id_of(cell))
            total[exercise] = total.get(exercise, 0) + points(cell)
    return total


def naming_problems(nb, exercises: str) -> list[str]:
    """Graded cells whose id or grade_id breaks the shared convention (empty when all is well)."""
    problems = []
    for cell in nb.cells:
        if not nbgrader_meta(cell):
            continue
        grade_id = grade_id_of(cell) or ""
        if cell.id != grade_id:
            problems.append(f"cell id {cell.id!r} differs from grade_id {grade_id!r}")
        if cell_kind(cell) == "test" and not re.fullmatch(rf"ex[{exercises}]_test_\w+", grade_id):
            problems.append(f"test cell {grade_id!r} is not named ex<N>_test_<name>")
        if cell_kind(cell) == "manual" and not (
            re.fullmatch(rf"ex[{exercises}]_written_\w+", grade_id) and cell.cell_type == "markdown"
        ):
            problems.append(f"manually graded cell {grade_id!r} is not a markdown ex<N>_written_<part>")
    return problems


def secret_lines(nb) -> set[str]:
    """Lines of solutions, hidden tests and model written answers in a source notebook that appear
    nowhere in its public text (statements, stubs, public tests)."""
    secret, public = set(), []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and is_solution(cell):
            secret.update(ln.strip() for ln in cell.source.splitlines())
            continue
        inside = False
        for line in cell.source.splitlines():
            marker = block_marker(line)
            if marker:
                inside = marker == "BEGIN"
            elif inside:
                secret.add(line.strip())
            else:
                public.append(line)
    public_text = "\n".join(public)
    return {ln for ln in secret if len(ln) >= 20 and ln not in public_text}


def leaks(release, secrets: set[str]) -> list[str]:
    """Secret lines and nbgrader markers visible in a release notebook."""
    text = "\n".join(cell.source for cell in release.cells)
    found = sorted(ln for ln in secrets if ln in text)
    return found + [m for m in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS") if m in text]


def stub_problems(release) -> list[str]:
    """Answer cells of a release notebook that are not nbgrader's blank stubs."""
    problems = []
    for cell in release.cells:
        if not is_solution(cell):
            continue
        blank = (
            CODE_STUB.splitlines()[-1] in cell.source if cell.cell_type == "code" else cell.source.strip() == TEXT_STUB
        )
        if not blank:
            problems.append(cell.id)
    return problems
