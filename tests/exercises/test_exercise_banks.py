"""What every exercise notebook must have, checked once for all four (fast, no kernels): no hidden
test in source/, a grader check for every autograded cell, and single-mistake banks in which no one
mistake costs a whole exercise (the largest cost per exercise is printed)."""
from __future__ import annotations

import pytest

from autograder import probes
from autograder.cells import grade_id_of, points
from tests.exercises import test_ex12, test_ex34, test_ex56, test_ex78
from tests.harness.grading import autograded_ids, source_nb

BANKS = {  # notebook → {exercise: its bank of (answers, the cells that must lose points)}
    test_ex12.NAME: {"ex1": test_ex12.EX1_WRONG, "ex2": test_ex12.EX2_WRONG},
    test_ex34.NAME: {"ex3": test_ex34.EX3_WRONG, "ex4": test_ex34.EX4_WRONG},
    test_ex56.NAME: {"ex5": test_ex56.EX5_WRONG, "ex6": test_ex56.EX6_WRONG},
    test_ex78.NAME: {"ex7": test_ex78.EX7_WRONG, "ex8": test_ex78.EX8_WRONG},
}


def cell_points(name: str) -> dict[str, float]:
    return {grade_id_of(c): points(c) for c in source_nb(name).cells if grade_id_of(c) in autograded_ids(name)}


@pytest.mark.parametrize("name", sorted(BANKS))
def test_source_holds_no_hidden_test_block(name):
    assert not any("HIDDEN TESTS" in c.source for c in source_nb(name).cells)


@pytest.mark.parametrize("name", sorted(BANKS))
def test_every_autograded_cell_has_a_hidden_check(name):
    assert set(probes.checks_for(name.removesuffix(".ipynb"))) == autograded_ids(name)


@pytest.mark.parametrize("name", sorted(BANKS))
def test_largest_cost_of_one_single_mistake_is_below_each_exercise_total(name, capsys):
    points = cell_points(name)
    for exercise, bank in BANKS[name].items():
        autograded = sum(p for gid, p in points.items() if gid.startswith(exercise + "_"))
        costs = {mistake: sum(points[gid] for gid in cells) for mistake, (_, cells) in bank.items()}
        assert costs, f"{exercise} has no single-mistake bank"
        worst = max(costs, key=costs.get)
        with capsys.disabled():
            print(f"\n{exercise}: one single mistake costs at most {costs[worst]:g} of {autograded:g} autograded "
                  f"points ({worst})")
        assert costs[worst] < autograded
