"""Hidden checks of the tiny fixture's exercises 1-2 (loaded by path with ``--checks``)."""
from __future__ import annotations

from autograder.checks import common
from autograder.probes import Check, Fail


def triple_cases(rng):
    return [rng.choice([-1, 1]) * round(rng.uniform(0.5, 50), 2) for _ in range(4)] + [rng.randint(-9, 9)]


def triple_probe(cases, rec):
    for i, x in enumerate(cases):
        rec.call(i, "triple", x)


def triple_verdict(cases, results):
    for i, x in enumerate(cases):
        common.expect_number(results, i, 3 * x, f"triple({x})", "triple multiplies by three")


def count_even_cases(rng):
    return [[rng.randint(-20, 20) for _ in range(rng.randint(0, 9))] for _ in range(4)]


def count_even_probe(cases, rec):
    for i, values in enumerate(cases):
        rec.call(i, "count_even", values)


def count_even_verdict(cases, results):
    for i, values in enumerate(cases):
        call = f"count_even({values})"
        got = results.returned(i, call)
        if isinstance(got, bool) or not isinstance(got, int):
            raise Fail(f"{call} should return an int, got {common.describe(got)}")
        if got != sum(1 for v in values if v % 2 == 0):
            raise Fail(f"{call} returned {got}, which is not the number of even values")


CHECKS = [
    Check("ex1_test_triple", triple_cases, triple_probe, triple_verdict),
    Check("ex2_test_count_even", count_even_cases, count_even_probe, count_even_verdict),
]
