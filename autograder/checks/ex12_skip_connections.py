"""Hidden checks of exercises 1-2 (skip connections)."""
from __future__ import annotations

from ..probes import Check, Fail
from . import common


# -- exercise 1: gradient fractions --------------------------------------------------------------
def plain_expected(delta: float, num_layers: int) -> float:
    # layers 2..L lie between a_1 and a_L: one factor delta each
    fraction = 1.0
    for _ in range(2, num_layers + 1):
        fraction *= delta
    return fraction


def residual_expected(delta: float, num_layers: int, block_size: int) -> float:
    # walk back from a_L: each block above block 1 has Jacobian 1 + delta**b (skip + branch);
    # inside block 1 only layers 2..b separate a_1 from the block output (its skip carries a_0)
    fraction = 1.0
    for _ in range(num_layers // block_size - 1):
        fraction *= 1 + delta ** block_size
    for _ in range(block_size - 1):
        fraction *= delta
    return fraction


def plain_cases(rng):
    return [[round(rng.uniform(0.05, 1.5), 4), rng.randint(1, 80)] for _ in range(12)]


def plain_probe(cases, rec):
    for i, (delta, num_layers) in enumerate(cases):
        rec.call(i, "plain_gradient_fraction", delta, num_layers)


def plain_verdict(cases, results):
    for i, (delta, num_layers) in enumerate(cases):
        call = f"plain_gradient_fraction({delta}, {num_layers})"
        common.expect_number(results, i, plain_expected(delta, num_layers), call,
                             "count the layers that lie between the output of layer 1 and the network output")


def residual_cases(rng):
    valid = []
    for _ in range(10):
        block_size = rng.randint(1, 5)
        valid.append([round(rng.uniform(0.05, 1.2), 4), block_size * rng.randint(1, 12), block_size])
    block_size = rng.randint(2, 6)
    valid.append([round(rng.uniform(0.1, 0.9), 4), block_size, block_size])     # one block around everything
    invalid = []
    for _ in range(2):
        block_size = rng.randint(2, 5)
        invalid.append([0.5, block_size * rng.randint(1, 6) + rng.randint(1, block_size - 1), block_size])
    return {"valid": valid, "invalid": invalid}


def residual_probe(cases, rec):
    for i, (delta, num_layers, block_size) in enumerate(cases["valid"]):
        rec.call(f"v{i}", "residual_gradient_fraction", delta, num_layers, block_size=block_size)
    for i, (delta, num_layers, block_size) in enumerate(cases["invalid"]):
        rec.call(f"x{i}", "residual_gradient_fraction", delta, num_layers, block_size=block_size)


def residual_verdict(cases, results):
    for i, (delta, num_layers, block_size) in enumerate(cases["valid"]):
        call = f"residual_gradient_fraction({delta}, {num_layers}, block_size={block_size})"
        hint = ("with a single block around the whole stack the skip carries a_0, so layer 1 gets no help"
                if num_layers == block_size else
                "walk back block by block; the skip of block 1 carries a_0, not a_1")
        common.expect_number(results, f"v{i}", residual_expected(delta, num_layers, block_size), call, hint)
    for i, (delta, num_layers, block_size) in enumerate(cases["invalid"]):
        call = f"residual_gradient_fraction({delta}, {num_layers}, block_size={block_size})"
        common.expect_raises(results, f"x{i}", "ValueError", call,
                             f"{num_layers} layers cannot be split into blocks of {block_size}")


def worked_cases(rng):
    return {}


def worked_probe(cases, rec):
    for name in ("plain_6", "residual_6"):
        if name in rec.ns:
            rec.put(name, rec.ns[name])
    rec.call("plain_fn", "plain_gradient_fraction", 0.7, 6)
    rec.call("residual_fn", "residual_gradient_fraction", 0.7, 6, block_size=2)


def worked_verdict(cases, results):
    # A wrong function is charged to its own test: the worked example passes when each value is the
    # true answer or what the student's own function returns (the text says so).
    for name, fn_key, expected, call in (
            ("plain_6", "plain_fn", plain_expected(0.7, 6), "plain_gradient_fraction(0.7, 6)"),
            ("residual_6", "residual_fn", residual_expected(0.7, 6, 2),
             "residual_gradient_fraction(0.7, 6, block_size=2)")):
        if name not in results:
            raise Fail(f"define {name} in the worked-example cell")
        got = common.number(results.returned(name, name), name)
        own = results.values.get(fn_key)
        if common.close(got, expected) or (isinstance(own, (int, float)) and not isinstance(own, bool)
                                           and common.close(got, float(own))):
            continue
        raise Fail(f"{name} is {got:.6g}: it should be {call}, computed with your function")


CHECKS = [
    Check("ex1_test_plain", plain_cases, plain_probe, plain_verdict),
    Check("ex1_test_residual", residual_cases, residual_probe, residual_verdict),
    Check("ex1_test_worked_example", worked_cases, worked_probe, worked_verdict),
]
