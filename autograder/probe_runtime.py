"""The kernel side of a hidden check: calls the student's code and writes down what came back.

This file is never imported by the kernel: ``probes.probe_cell`` pastes its source (and a check's
probe function) into one cell that runs in the student's sandboxed kernel. It therefore imports
nothing from the grader and holds no expected value, no reference code and no pass/fail rule:
everything it emits is plain data (JSON numbers, strings, lists; tensors as base64 bytes of a
fixed dtype), which the grader decodes without ever unpickling or evaluating it.

The student controls this process, so they can change anything this code does or prints. That is
fine: the grader only learns *data*, and a verdict computed outside for inputs the student did not
know in advance can only be passed by code that computes the right thing.

Its type hints are strings of builtin names: the pasted source runs inside a function in the
student's kernel, with no ``from __future__ import annotations`` and nothing to import, so a hint
is never evaluated there (nor can a student's global named ``dict`` or ``str`` make one fail)."""

RECORD_MARK = "\x1fcourse-probe\x1f"


class Recorder:
    """What one probe found, keyed by case; emitted as one JSON line on stdout at the end."""

    MAX_STR = 2000

    def __init__(self, namespace: "dict[str, object]") -> "None":
        self.ns = namespace
        self.results = {}

    # -- calling the student's code ------------------------------------------------------------
    def lookup(self, name: "str") -> "object":
        """The student's object called ``name`` (KeyError with a teaching message when absent)."""
        if name not in self.ns:
            raise KeyError(f"{name} is not defined: run its answer cell (and keep its name)")
        return self.ns[name]

    def call(self, key: "str | int", name: "str", *args: "object", **kwargs: "object") -> "object":
        """Call the student's ``name(*args, **kwargs)``; record its result or the exception it raised."""
        try:
            value = self.lookup(name)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the student's exception is data for the verdict
            self.error(key, exc)
            return None
        self.put(key, value)
        return value

    def put(self, key: "str | int", value: "object") -> "None":
        try:
            self.results[str(key)] = self.encode(value)
        except Exception as exc:  # noqa: BLE001
            self.error(key, exc)

    def error(self, key: "str | int", exc: "BaseException") -> "None":
        message = "?"
        try:
            message = str(exc)[: self.MAX_STR]
        except Exception:  # noqa: BLE001 - a hostile __str__
            pass
        self.results[str(key)] = {"__raised__": [type(exc).__name__[:100], message]}

    # -- plain data ------------------------------------------------------------------------
    def encode(
        self, value: "object", depth: "int" = 0
    ) -> "bool | int | float | list[object] | dict[str, object] | None":
        import base64
        import math

        if depth > 12:
            raise ValueError("nested too deeply")
        if value is None or type(value) is bool:
            return value
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy ships with torch
            np = None
        try:
            import torch
        except ImportError:  # pragma: no cover
            torch = None
        if torch is not None and isinstance(value, torch.Size):
            return {"__tuple__": [int(v) for v in value]}
        if torch is not None and isinstance(value, torch.Tensor):
            t = value.detach().cpu()
            kind = "bool" if t.dtype == torch.bool else ("int64" if not t.is_floating_point() else "float64")
            t = t.to({"bool": torch.uint8, "int64": torch.int64, "float64": torch.float64}[kind]).contiguous()
            data = t.numpy().tobytes()
            return {
                "__tensor__": {
                    "dtype": kind,
                    "shape": [int(s) for s in t.shape],
                    "b64": base64.b64encode(data).decode(),
                }
            }
        if np is not None and isinstance(value, np.ndarray):
            return self.encode(torch.from_numpy(np.ascontiguousarray(value)), depth) if torch is not None else None
        if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
            return bool(value)
        if isinstance(value, int) or (np is not None and isinstance(value, np.integer)):
            return {"__int__": str(int(value))} if abs(int(value)) > 2**53 else int(value)
        if isinstance(value, float) or (np is not None and isinstance(value, np.floating)):
            f = float(value)
            return {"__float__": repr(f)} if (math.isnan(f) or math.isinf(f)) else f
        if isinstance(value, str):
            return {"__str__": str.__str__(value)[: self.MAX_STR]}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, depth + 1) for v in tuple(value)[:10000]]}
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in list(value)[:10000]]
        if isinstance(value, dict):
            return {
                "__dict__": [
                    [self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in list(dict.items(value))[:10000]
                ]
            }
        return {"__object__": type(value).__qualname__[:200]}

    # -- the one line the grader reads ---------------------------------------------------------
    def emit(self, grade_id: "str") -> "None":
        import json

        line = json.dumps({"grade_id": grade_id, "results": self.results}, separators=(",", ":"))
        print(RECORD_MARK + line, flush=True)


def rng_state() -> "dict[str, object]":
    """Probes seed their own generators; the student's random state is put back afterwards."""
    import random

    state = {"random": random.getstate()}
    try:
        import numpy as np

        state["numpy"] = np.random.get_state()
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        state["torch"] = torch.get_rng_state()
    except ImportError:  # pragma: no cover
        pass
    return state


def restore_rng(state: "dict[str, object]") -> "None":
    import random

    random.setstate(state["random"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
