"""Hidden checks of the tiny fixture's exercises 3-4 (torch; loaded by path with ``--checks``)."""
from __future__ import annotations

import numpy as np

from autograder.checks import common
from autograder.probes import Check, Fail


def scale_cases(rng):
    return [[[round(rng.uniform(-5, 5), 3) for _ in range(rng.randint(1, 6))], round(rng.uniform(-3, 3), 3)]
            for _ in range(3)]


def scale_probe(cases, rec):
    import torch

    for i, (values, k) in enumerate(cases):
        rec.call(i, "scale", torch.tensor(values, dtype=torch.float64), k)


def scale_verdict(cases, results):
    for i, (values, k) in enumerate(cases):
        call = f"scale(torch.tensor({values}), {k})"
        got = results.returned(i, call)
        if not isinstance(got, np.ndarray) or got.shape != (len(values),):
            raise Fail(f"{call} should return a tensor of shape ({len(values)},), got {common.describe(got)}")
        if not np.allclose(got, np.array(values) * k):
            raise Fail(f"{call} did not multiply every entry by k")


def count_positive_cases(rng):
    return [[[round(rng.uniform(-3, 3), 2) for _ in range(3)] for _ in range(rng.randint(1, 4))] for _ in range(3)]


def count_positive_probe(cases, rec):
    import torch

    for i, rows in enumerate(cases):
        rec.call(i, "count_positive", torch.tensor(rows))


def count_positive_verdict(cases, results):
    for i, rows in enumerate(cases):
        call = f"count_positive(torch.tensor({rows}))"
        got = results.returned(i, call)
        if isinstance(got, bool) or not isinstance(got, int):
            raise Fail(f"{call} should return a Python int, got {common.describe(got)}")
        if got != int((np.array(rows) > 0).sum()):
            raise Fail(f"{call} returned {got}, which is not the number of positive entries")


CHECKS = [
    Check("ex3_test_scale", scale_cases, scale_probe, scale_verdict),
    Check("ex4_test_count_positive", count_positive_cases, count_positive_probe, count_positive_verdict),
]
