"""Verdict-side helpers: run in the grader's process only, on decoded probe data.

Messages say what was called, what came back and what to look at; for the grader's own inputs they
never print the expected value (the student can compute it with a correct function)."""
from __future__ import annotations

import math
from typing import Any

from ..probes import Fail, Opaque


def describe(value: Any) -> str:
    """How a returned value reads in a message (short)."""
    if isinstance(value, Opaque):
        return f"a {value.type_name} object"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"a tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(value: Any, call: str) -> float:
    """``value`` as a float; Fail unless it is a plain int or float (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Fail(f"{call} should return a number, got {describe(value)}")
    return float(value)


def integer(value: Any, call: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise Fail(f"{call} should return a whole number, got {describe(value)}")
    return value


def close(got: float, expected: float, rel: float = 1e-9, abs_tol: float = 0.0) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    return math.isclose(got, expected, rel_tol=rel, abs_tol=abs_tol)


def expect_number(results, key, expected: float, call: str, hint: str, rel: float = 1e-9) -> None:
    got = number(results.returned(key, call), call)
    if not close(got, expected, rel):
        raise Fail(f"{call} returned {got:.6g}, which is not right: {hint}")


def expect_raises(results, key, exception: str, call: str, why: str) -> None:
    raised = results.raised(key)
    if raised is None:
        got = results.returned(key, call)
        raise Fail(f"{call} should raise {exception} ({why}), but it returned {describe(got)}")
    if raised.name != exception:
        raise Fail(f"{call} should raise {exception} ({why}), but it raised {raised}")


def filled_values(table: list, seed: int) -> dict[str, Any]:
    """The values ``kernel.fill_module`` gave each tensor of ``table`` (regenerated, not received)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, shape, dtype in table:
        values = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
        if str(name).endswith("running_var"):
            values = values.abs() + 0.5
        out[str(name)] = values.to(getattr(torch, str(dtype), torch.float32))
    return out
