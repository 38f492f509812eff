"""The probe/verdict split on its own (no kernels): what enters a student's kernel, and how the
grader reads what comes back. The student controls the kernel, so everything read here is hostile."""

from __future__ import annotations

import ast
import base64
import inspect
import json
import random

import nbformat
import numpy as np
import pytest

from autograder import probes
from autograder.assignment import Assignment
from autograder.probe_runtime import RECORD_MARK
from tests.conftest import LAYOUT

NOTEBOOKS = sorted(p.stem for p in LAYOUT.release().glob("*.ipynb"))


def probe_cells(notebook: str, seed: str = "test") -> dict[str, str]:
    checks = probes.checks_for(notebook)
    cases = probes.choose_cases(checks, seed, "student", notebook)
    return {gid: probes.probe_cell(checks[gid], cases[gid]) for gid in checks}


def executed(cell_outputs: dict[str, list]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for gid, outputs in cell_outputs.items():
        cell = nbformat.v4.new_code_cell("")
        cell["id"] = probes.PROBE_ID + gid
        cell.outputs = outputs
        nb.cells.append(cell)
    return nb


def stdout(text: str):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_probe_cells_carry_no_reference_code_or_verdict(notebook):
    rel = Assignment.load(LAYOUT.release(), LAYOUT.source())
    secret = rel.secret_lines()
    assert len(secret) > 50, "too few secret lines: the check would be vacuous"
    generic = {ln.strip() for ln in probes._runtime_source().splitlines()}  # the same in every probe
    # short solution lines are PyTorch idioms (`optimizer.step()`) a grader stand-in may share
    secret = probes.verdict_lines() | {ln for ln in secret if len(ln) >= 25}
    cells = probe_cells(notebook)
    for gid, source in cells.items():
        lines = {ln.strip() for ln in source.splitlines()} - generic
        assert not lines & secret, (gid, sorted(lines & secret)[:3])
        compile(source, gid, "exec")  # every probe cell is valid Python


def test_the_check_catches_a_verdict_line_planted_in_a_probe():
    """The test above can fail: a probe cell that quotes a verdict line is caught."""
    secret = probes.verdict_lines()
    planted = next(iter(sorted(secret)))
    source = probe_cells("ex12_skip_connections")["ex1_test_plain"] + "\n" + planted
    assert {ln.strip() for ln in source.splitlines()} & secret


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_a_probe_cell_is_one_exec_of_its_program_with_the_lines_as_written(notebook):
    """IPython re-tokenizes and re-parses every cell several times before it runs it: a probe cell
    hands it one statement (a string literal), whose program keeps its lines for a reader."""
    checks = probes.checks_for(notebook)
    for gid, source in probe_cells(notebook).items():
        tree = ast.parse(source)
        assert len(tree.body) == 1, (gid, len(tree.body))
        program = tree.body[0].value.args[0].args[0].value
        assert program.startswith("def __course_probe():\n"), gid
        probe_lines = inspect.getsource(checks[gid].probe).strip().splitlines()
        assert all(line.strip() in source for line in probe_lines), gid  # as written, not escaped


@pytest.mark.parametrize(
    "program",
    [
        "x = 1\n",
        "x = '''a'''\n",  # cannot go in a ''' literal
        "x = '''a''' + \"\"\"b\"\"\"\n",  # in neither: repr
        "x = 'it\\'s'  # a backslash \\ in a comment\n",
        "x = 'ends in its quote'",
        'x = "ends in the other quote"',
    ],
)
def test_any_program_runs_unchanged_as_one_statement(program):
    expected: dict = {}
    exec(compile(program, "<direct>", "exec"), expected)
    namespace: dict = {}
    exec(probes._as_one_statement(program, "<test>"), namespace)
    assert namespace["x"] == expected["x"]


def test_cases_are_new_per_seed_and_student_but_reproducible():
    checks = probes.checks_for("ex12_skip_connections")
    a = probes.choose_cases(checks, "run-1", "ann", "ex12_skip_connections")
    assert a == probes.choose_cases(checks, "run-1", "ann", "ex12_skip_connections")
    assert a != probes.choose_cases(checks, "run-2", "ann", "ex12_skip_connections")
    assert a != probes.choose_cases(checks, "run-1", "bob", "ex12_skip_connections")


def tensor_record(array: np.ndarray, dtype="float64", shape=None):
    return {
        "__tensor__": {
            "dtype": dtype,
            "shape": list(shape if shape is not None else array.shape),
            "b64": base64.b64encode(array.astype("<f8").tobytes()).decode(),
        }
    }


def test_decode_turns_plain_data_back_and_refuses_the_rest():
    arr = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(probes.decode(tensor_record(arr)), arr)
    assert probes.decode({"__tuple__": [1, {"__str__": "a"}]}) == (1, "a")
    assert isinstance(probes.decode(tensor_record(arr, shape=[4, 4])), probes.Opaque)  # wrong size
    assert isinstance(probes.decode(tensor_record(arr, dtype="object")), probes.Opaque)  # no such dtype
    assert isinstance(probes.decode({"__reduce__": "os.system"}), probes.Opaque)
    assert isinstance(
        probes.decode({"__tensor__": {"dtype": "float64", "shape": [10**9, 10**9], "b64": ""}}), probes.Opaque
    )
    assert probes.decode({"__raised__": ["ValueError", "no"]}) == probes.Raised("ValueError", "no")


def test_records_are_read_per_probe_cell_and_garbage_fails_only_its_cell():
    good = {"grade_id": "ex1_test_plain", "results": {"0": 1.5}}
    forged_other = {"grade_id": "ex1_test_residual", "results": {"v0": 1.0}}
    records = probes.read_records(
        executed(
            {
                "ex1_test_plain": [stdout("chatter\n" + RECORD_MARK + json.dumps(good) + "\n")],
                "ex1_test_residual": [stdout(RECORD_MARK + "{not json")],
                "ex1_test_worked_example": [stdout(RECORD_MARK + json.dumps(forged_other))],
            }
        )
    )
    assert records["ex1_test_plain"].values == {"0": 1.5}
    assert records["ex1_test_residual"].values == {} and "could not be read" in records["ex1_test_residual"].problem
    assert records["ex1_test_worked_example"].values == {}  # a record for another cell counts for nothing


def test_deeply_nested_or_huge_records_do_not_break_the_grader():
    deep = "[" * 100_000 + "]" * 100_000
    line = RECORD_MARK + '{"grade_id": "ex1_test_plain", "results": {"0": ' + deep + "}}"
    records = probes.read_records(executed({"ex1_test_plain": [stdout(line)]}))
    verdicts = probes.decide(
        probes.checks_for("ex12_skip_connections"),
        probes.choose_cases(probes.checks_for("ex12_skip_connections"), "s", "x", "ex12_skip_connections"),
        records,
    )
    assert not verdicts["ex1_test_plain"].passed


def test_a_verdict_that_breaks_on_odd_data_fails_that_cell_only():
    def explode(cases, results):
        raise ZeroDivisionError("boom")

    checks = {
        "a": probes.Check("a", lambda rng: [], lambda cases, rec: None, explode),
        "b": probes.Check("b", lambda rng: [], lambda cases, rec: None, lambda cases, results: None),
    }
    verdicts = probes.decide(checks, {"a": [], "b": []}, {"a": probes.Results({}), "b": probes.Results({})})
    assert not verdicts["a"].passed and "could not be checked" in verdicts["a"].message
    assert verdicts["b"].passed


def test_student_cells_under_a_reserved_probe_id_are_renamed():
    nb = nbformat.v4.new_notebook()
    fake = nbformat.v4.new_code_cell("print('forged')")
    fake["id"] = probes.PROBE_ID + "ex1_test_plain"
    test = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": {"grade_id": "ex1_test_plain", "grade": True}})
    nb.cells = [fake, test]
    probes.insert_probes(nb, {"ex1_test_plain": "print('probe')"})
    assert [probes.probe_of(c) for c in nb.cells] == [None, None, "ex1_test_plain"]
    assert nb.cells[2].source == "print('probe')"


@pytest.mark.parametrize("seed", range(20))
def test_random_json_never_raises(seed):
    rng = random.Random(seed)

    def junk(depth=0):
        kind = rng.randrange(7 if depth < 4 else 4)
        if kind == 0:
            return rng.random()
        if kind == 1:
            return rng.choice(["__tensor__", "__tuple__", "x", "__raised__"])
        if kind == 2:
            return None
        if kind == 3:
            return rng.randint(-5, 5)
        if kind == 4:
            return [junk(depth + 1) for _ in range(rng.randrange(3))]
        return {
            rng.choice(["__tensor__", "__tuple__", "__dict__", "__raised__", "__int__", "__float__", "k"]): junk(
                depth + 1
            )
            for _ in range(rng.randrange(1, 3))
        }

    for _ in range(50):
        line = RECORD_MARK + json.dumps({"grade_id": "ex1_test_plain", "results": {"0": junk()}})
        results = probes.read_records(executed({"ex1_test_plain": [stdout(line)]}))["ex1_test_plain"]
        assert isinstance(results, probes.Results)  # read, or refused with a reason
        assert results.values or results.problem


def test_the_mobilenet_stand_in_is_torchvisions_architecture_and_puts_torchs_init_back(monkeypatch):
    """Built with torch.nn.init's fills skipped (ex56's checks read its shapes and flags only): the same
    modules, parameters and buffers as torchvision builds, and torch.nn.init as it was, even after a failure."""
    import torch.nn.init as init
    import torchvision.models
    from torchvision.models import mobilenet_v2

    from autograder.checks import ex56_transfer_learning as ex56

    before = dict(vars(init))
    net, reference = ex56.mnv2_standin(7), mobilenet_v2(weights=None, num_classes=7)
    assert dict(vars(init)) == before and all(vars(init)[k] is v for k, v in before.items())

    def layout(model):
        return (
            [(name, type(m).__name__) for name, m in model.named_modules()],
            [(name, tuple(t.shape), t.dtype) for name, t in [*model.named_parameters(), *model.named_buffers()]],
        )

    assert layout(net) == layout(reference)
    assert not any(p.requires_grad for p in net.features.parameters())
    assert all(p.requires_grad for p in net.classifier.parameters())

    def broken(**kwargs):
        raise RuntimeError("a build that fails")

    monkeypatch.setattr(torchvision.models, "mobilenet_v2", broken)
    with pytest.raises(RuntimeError):
        ex56.mnv2_standin(3)
    assert all(vars(init)[k] is v for k, v in before.items())
