"""Hidden checks in two halves: a probe inside the student's box, the verdict in the grader.

An in-kernel test can be beaten by the code it tests (the student controls every byte their kernel
runs), so no hidden test runs there. Each autograded test cell has a ``Check``
(``autograder/checks/<notebook>.py``) made of three parts:

- ``cases(rng)``: the inputs the grader picks for this run, plain data, seeded per student and cell,
  never the public tests' inputs;
- ``probe(cases, rec)``: kernel-side code, shipped as source text into one cell inserted after the
  test cell (``probe_cell``). It calls the student's functions on those inputs and records what came
  back through ``probe_runtime.Recorder``: numbers, strings, shapes, tensors as raw bytes of a fixed
  dtype. It holds no expected value and no rule;
- ``verdict(cases, results)``: runs here, in the grader, which never imports or calls student code
  and never unpickles student data. It computes the expected values itself and raises ``Fail`` with
  the teaching message, or returns.

The gradebook's autograded scores are the verdicts (a cell's points when it passes, else 0). The
public test cells still run in the notebook for the student's own self-check, but nothing they do
changes a score. A probe that crashed, timed out or emitted garbage simply has no (usable) data,
and its verdict fails with the reason."""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import inspect
import json
import random
import sys
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import probe_runtime
from .cells import grade_id_of

if TYPE_CHECKING:
    from nbformat import NotebookNode

# A probe cell is known by its cell id (nbgrader's autograde clears cell metadata other than its own);
# a student cell that claims the prefix is renamed when the probes go in.
PROBE_ID = "course-probe-"
MAX_RECORD_CHARS = 32 * 2**20  # a probe's line is small; anything bigger is not read
MAX_TENSOR_ELEMENTS = 4 * 2**20
DTYPES = {"float64": "<f8", "int64": "<i8", "bool": "u1"}


# -- what a verdict says -----------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Verdict:
        return cls(bool(data["passed"]), str(data.get("message", "")))


class Fail(Exception):
    """Raised by a verdict function: the message is what the student reads."""


@dataclass(frozen=True)
class Raised:
    """The student's code raised this (name and message, as text)."""

    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


@dataclass(frozen=True)
class Opaque:
    """Something the probe could not turn into plain data (its type name only)."""

    type_name: str


class Results:
    """The decoded record of one probe: case key → value, ``Raised``, or absent."""

    def __init__(self, values: dict[str, Any], problem: str = ""):
        self.values = values
        self.problem = problem  # why there is no (complete) record, e.g. a timeout

    def __contains__(self, key: object) -> bool:
        return str(key) in self.values

    def returned(self, key: str | int, call: str) -> Any:
        """The value ``call`` returned; ``Fail`` when it raised or never returned."""
        key = str(key)
        if key not in self.values:
            why = f" ({self.problem})" if self.problem else ""
            raise Fail(f"{call} did not return: the check stopped before it finished{why}")
        value = self.values[key]
        if isinstance(value, Raised):
            raise Fail(f"{call} raised {value}")
        return value

    def raised(self, key: str | int) -> Raised | None:
        value = self.values.get(str(key))
        return value if isinstance(value, Raised) else None


# -- a check -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    grade_id: str
    cases: Callable[[random.Random], Any]
    probe: Callable  # (cases, rec) -> None, runs in the kernel
    verdict: Callable[[Any, Results], None]  # raises Fail
    helpers: tuple[Callable, ...] = field(default=())  # more kernel-side functions the probe calls


CHECKS_DIR = Path(__file__).with_name("checks")  # the course's own checks (a package)


def checks_for(notebook: str, folder: Path | None = None) -> dict[str, Check]:
    """The checks of one notebook, by grade_id: ``<folder>/<notebook stem>.py``'s ``CHECKS``.

    ``folder`` defaults to this package's ``checks``; another folder (another course's checks, a
    test fixture's) is loaded by path and its modules import what they need absolutely."""
    folder = Path(folder or CHECKS_DIR).resolve()
    path = folder / f"{notebook}.py"
    if not path.is_file():
        return {}
    if folder == CHECKS_DIR.resolve():
        module = importlib.import_module(f"{__package__}.checks.{notebook}")
    else:
        name = f"_course_checks_{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}_{notebook}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            module.__package__ = f"{__package__}.checks"  # so `from . import common` works from any folder
            sys.modules[name] = module
            spec.loader.exec_module(module)
    return {c.grade_id: c for c in module.CHECKS}


def case_rng(seed: str, student: str, notebook: str, grade_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\0{student}\0{notebook}\0{grade_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def choose_cases(checks: dict[str, Check], seed: str, student: str, notebook: str) -> dict[str, Any]:
    """Each check's inputs for this student, as JSON-able data (checked here, not in the kernel)."""
    out = {}
    for gid, check in checks.items():
        cases = check.cases(case_rng(seed, student, notebook, gid))
        out[gid] = json.loads(json.dumps(cases))  # plain data only, the same on both sides
    return out


# -- the probe cell ----------------------------------------------------------------------------
def _runtime_source() -> str:
    text = inspect.getsource(probe_runtime)
    return text.split('"""', 2)[2].lstrip("\n")  # drop the module docstring


def probe_cell(check: Check, cases: Any) -> str:
    """Source of the cell that runs ``check.probe`` on ``cases`` in the student's kernel."""
    parts = [_runtime_source()] + [inspect.getsource(f) for f in (*check.helpers, check.probe)]
    body = "\n\n".join(textwrap.dedent(p) for p in parts)
    call = (
        f"_state = rng_state()\n"
        f"rec = Recorder(globals())\n"
        f"try:\n"
        f"    {check.probe.__name__}(json.loads({json.dumps(json.dumps(cases))}), rec)\n"
        f"finally:\n"
        f"    restore_rng(_state)\n"
        f"    rec.emit({check.grade_id!r})\n"
    )
    inner = "import json\n\n" + body + "\n\n" + call
    program = (
        "def __course_probe():\n" + textwrap.indent(inner, "    ") + "\n\n"
        "try:\n    __course_probe()\nfinally:\n    globals().pop('__course_probe', None)\n"
    )
    return (
        f"# Grader's probe for {check.grade_id}: calls your code on new inputs (added by course-grade)\n"
        + _as_one_statement(program, f"<course-probe {check.grade_id}>")
    )


def _as_one_statement(program: str, filename: str) -> str:
    """``program`` as one ``exec`` of a string literal, which runs it unchanged in the cell's namespace.

    Why: IPython re-tokenizes a cell once per input transformer and parses and compiles it twice
    more (top-level await, then per statement) before running it: ~25 ms for a 250-line probe cell,
    38 of them a student. One string literal is one token to those passes; the program is compiled
    once (~6 ms). A raw triple-quoted literal keeps its lines as written, for a reader of the
    autograded notebook and for the check that no probe line is a hidden one."""
    for quote in ("'''", '"""'):
        if quote not in program and not program.endswith(("\\", quote[0])):
            literal = f"r{quote}{program}{quote}"
            break
    else:
        literal = repr(program)
    return f"exec(compile({literal}, {filename!r}, 'exec'), globals())\n"


def probe_of(cell: NotebookNode) -> str | None:
    """The grade_id a probe cell belongs to, or None for any other cell."""
    cid = str(cell.get("id") or "")
    return cid[len(PROBE_ID) :] if cid.startswith(PROBE_ID) else None


def insert_probes(nb: NotebookNode, probes: dict[str, str]) -> int:
    """Put each probe cell right after its test cell (at the end if that cell is missing)."""
    from nbformat.v4 import new_code_cell

    def probe(gid: str) -> NotebookNode:
        cell = new_code_cell(probes[gid])
        cell["id"] = PROBE_ID + gid
        return cell

    placed, cells, done = 0, [], set()
    used = {str(c.get("id")) for c in nb.cells}
    for i, cell in enumerate(nb.cells):
        if probe_of(cell) is not None:  # a student's cell under a reserved id
            # Why: the new id must be free too; a student cell already called "student-cell-<i>"
            # would otherwise give the notebook two cells with one id (nbformat then renames cells).
            new, n = f"student-cell-{i}", 0
            while new in used:
                n += 1
                new = f"student-cell-{i}-{n}"
            cell["id"] = new
            used.add(new)
        cells.append(cell)
        gid = grade_id_of(cell)
        if gid in probes and gid not in done and cell.cell_type == "code":
            cells.append(probe(gid))
            done.add(gid)
            placed += 1
    cells += [probe(gid) for gid in probes if gid not in done]
    nb.cells = cells
    return placed


def remove_probes(nb: NotebookNode) -> NotebookNode:
    nb.cells = [c for c in nb.cells if probe_of(c) is None]
    return nb


# -- reading what the probes emitted -----------------------------------------------------------
def decode(obj: Any, depth: int = 0) -> Any:
    """Plain JSON data → Python values; tensors become numpy arrays. Never evaluates anything."""
    import numpy as np

    if depth > 40:
        raise ValueError("nested too deeply")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [decode(v, depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        return Opaque("dict")
    ((tag, value),) = obj.items()
    if tag == "__tuple__" and isinstance(value, list):
        return tuple(decode(v, depth + 1) for v in value)
    if tag == "__str__" and isinstance(value, str):
        return value
    if tag == "__int__" and isinstance(value, str) and len(value) < 400:
        return int(value)
    if tag == "__float__" and value in ("nan", "inf", "-inf"):
        return float(value)
    if tag == "__raised__" and isinstance(value, list) and len(value) == 2:
        return Raised(str(value[0])[:100], str(value[1])[:2000])
    if tag == "__dict__" and isinstance(value, list):
        out = {}
        for pair in value:
            if isinstance(pair, list) and len(pair) == 2:
                key = decode(pair[0], depth + 1)
                try:
                    out[key] = decode(pair[1], depth + 1)
                except TypeError:  # an unhashable key (a list): not plain data we use
                    return Opaque("dict")
        return out
    if tag == "__tensor__" and isinstance(value, dict):
        dtype, shape = DTYPES.get(value.get("dtype")), value.get("shape")
        if dtype is None or not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            return Opaque("tensor")
        count = int(np.prod(shape)) if shape else 1
        raw = base64.b64decode(str(value.get("b64", "")), validate=True)
        if count > MAX_TENSOR_ELEMENTS or len(raw) != count * np.dtype(dtype).itemsize:
            return Opaque("tensor")
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        return array.astype(bool) if value["dtype"] == "bool" else array.copy()
    if tag == "__object__" and isinstance(value, str):
        return Opaque(value[:200])
    return Opaque("dict")


def _cell_problem(cell: NotebookNode) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            name = str(out.get("ename", "Error"))
            if name in ("CellTimeoutError", "KeyboardInterrupt"):
                return "it ran past the cell timeout"
            return f"{name}: {str(out.get('evalue', ''))[:300]}"
    return ""


def read_records(nb: NotebookNode) -> dict[str, Results]:
    """Every probe cell's last record line, decoded; a missing or unreadable one has no values."""
    found: dict[str, Results] = {}
    for cell in nb.cells:
        gid = probe_of(cell)
        if not gid:
            continue
        text = "".join(
            str(o.get("text", ""))
            for o in cell.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stdout"
        )
        lines = [ln for ln in text[-MAX_RECORD_CHARS:].splitlines() if ln.startswith(probe_runtime.RECORD_MARK)]
        problem = _cell_problem(cell)
        values: dict[str, Any] = {}
        if lines:
            try:
                record = json.loads(lines[-1][len(probe_runtime.RECORD_MARK) :])
                if not (
                    isinstance(record, dict)
                    and record.get("grade_id") == gid
                    and isinstance(record.get("results"), dict)
                ):
                    raise ValueError("not a probe record")
                values = {str(k): decode(v) for k, v in record["results"].items()}
            except (ValueError, TypeError, RecursionError, OverflowError, MemoryError) as exc:
                problem = problem or f"its output could not be read ({type(exc).__name__})"
                values = {}
        elif not problem:
            problem = "it printed no result"
        found[gid] = Results(values, problem)
    return found


def decide(checks: dict[str, Check], cases: dict[str, Any], records: dict[str, Results]) -> dict[str, Verdict]:
    """Every check's verdict. A verdict function that breaks on odd data fails that cell only.

    Verdicts run torch on one thread: their tensors are small, and on a machine whose cores are busy
    with kernels a second OpenMP thread spins against them (seen: exercise 6's verdict 0.5 s on one
    thread, 11 s on two, while another student's kernel ran)."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else 0
    if torch is not None:
        torch.set_num_threads(1)
    try:
        return _decide(checks, cases, records)
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


def _decide(checks: dict[str, Check], cases: dict[str, Any], records: dict[str, Results]) -> dict[str, Verdict]:
    verdicts = {}
    for gid, check in checks.items():
        results = records.get(gid) or Results({}, "the check never ran (the kernel stopped before it)")
        try:
            check.verdict(cases[gid], results)
        except Fail as exc:
            verdicts[gid] = Verdict(False, str(exc))
        except Exception as exc:  # noqa: BLE001 - odd student data must not stop the grader
            verdicts[gid] = Verdict(False, f"your result could not be checked ({type(exc).__name__}: {exc})"[:500])
        else:
            verdicts[gid] = Verdict(True, "passed")
    return verdicts


def verdict_lines(folder: Path | None = None) -> set[str]:
    """Distinctive lines of the grader-side checks (verdicts, expected values): for the leak check.

    Lines that are shipped to kernels anyway (probe functions, kernel helpers, the runtime) and
    message text (string-only lines, shown to students on purpose) do not count."""
    shipped = {ln.strip() for ln in _runtime_source().splitlines()}
    found: set[str] = set()
    for path in sorted(Path(folder or CHECKS_DIR).glob("*.py")):
        if path.stem in ("__init__", "kernel", "common"):
            continue
        for check in checks_for(path.stem, folder).values():
            for fn in (*check.helpers, check.probe):
                shipped |= {ln.strip() for ln in inspect.getsource(fn).splitlines()}
        for line in path.read_text().splitlines():
            text = line.strip()
            if text in shipped:
                continue
            if len(text) >= 12 and not text.startswith(("#", "import ", "from ", '"', "'", 'f"', "f'")):
                found.add(text)
    return found
