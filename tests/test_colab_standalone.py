"""Each lesson and each release notebook, uploaded alone to a Colab-like kernel, runs.

"Colab-like" (see tests/harness/colab.py): the notebook alone in an empty temporary folder, that folder
as the kernel's cwd, no PYTHONPATH and no environment variable pointing into the repository or the
shared data folder, imports limited to the standard library and what Colab preinstalls, this project's
modules refused, and every file the notebook touches under the repository or ../shared recorded.

Lessons must finish without any error and touch no file outside themselves (the shared ants/bees
data is optional: from an empty folder a lesson must fall back). After the last cell every live
``interactive`` widget has its first control moved three times: a callback that raises, a move that
shows nothing, or a picture that is undecodable, blank or unchanged after a move is a failure
(``tests.harness.colab.widget_problems``), as in the browser proof.

Release notebooks are blank exercises: run with errors allowed, every error output must be one the
unanswered stubs explain, and nothing else:
- ``NotImplementedError`` (the ``raise NotImplementedError()`` nbgrader puts in each answer cell,
  raised where the cell runs or where a stub function is called);
- ``NameError`` for a name that an answer cell of the matching source notebook defines (the blank
  answer never defined it, so later cells that use it cannot find it), or that an earlier release cell
  defines which itself stopped on one of these expected errors (e.g. a demo cell that calls a stub);
- ``AssertionError`` in an nbgrader test cell (a public test that checks the blank answer and fails).
Anything else (ImportError/ModuleNotFoundError, FileNotFoundError, TypeError, …) is a defect.
"""

from __future__ import annotations

import ast
import os
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.cells import cell_kind, is_solution
from tests.conftest import REPO, SHARED
from tests.harness.colab import WIDGET_MOVES, run_like_colab, widget_problems

LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))
RELEASE = sorted((REPO / "release").glob("*/*.ipynb"))
SOURCE = REPO / "source"
CELL_TIMEOUT_S = 600  # the machine is shared: generous, and never a timing assertion


@pytest.fixture
def colab_like_process(monkeypatch, tmp_path):
    """Strip from the environment what Colab would not have; run from a folder outside the repo."""
    watched = (str(REPO), str(REPO.resolve()), str(SHARED), str(SHARED.resolve()))
    for name, value in list(os.environ.items()):
        if name in ("PYTHONPATH", "PYTHONHOME", "NBGRADER_EXECUTION", "TORCH_HOME"):
            monkeypatch.delenv(name)
        elif name == "PATH":  # keep the PATH, minus entries inside the repository
            kept = [p for p in value.split(os.pathsep) if not p.startswith(watched)]
            monkeypatch.setenv("PATH", os.pathsep.join(kept))
        elif any(w in value for w in watched):  # e.g. a variable that tells lessons where the data is
            monkeypatch.delenv(name)
    # No cached pretrained weights either: Colab would download them, here the lesson must fall back.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def error_outputs(nb) -> list[tuple[int, dict, dict]]:
    return [
        (i, cell, out)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


def describe(index: int, cell, out) -> str:
    tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(out.get("traceback", [])))
    first = cell.source.strip().splitlines()[0][:80] if cell.source.strip() else "<empty>"
    return f"cell #{index} ({first}): {out['ename']}: {out['evalue']}\n{tb[-1500:]}"


def defined_names(source: str) -> set[str]:
    """Names a cell's code defines (assign, def, class, import)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics: nothing we can name
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return names


def defined_by_answers(source_nb) -> set[str]:
    """Names that the answer cells of an nbgrader source notebook define."""
    return set().union(*(defined_names(c.source) for c in source_nb.cells if c.cell_type == "code" and is_solution(c)))


def is_expected(cell, out, missing: set[str]) -> bool:
    """The error rules of this module's docstring; ``missing``: names blank answers left undefined."""
    if out["ename"] == "NotImplementedError":
        return True
    if out["ename"] == "NameError":
        match = re.search(r"name '([^']+)' is not defined", out["evalue"])
        return bool(match) and match.group(1) in missing
    return out["ename"] == "AssertionError" and cell_kind(cell) == "test"


def unexpected_errors(nb, answer_names: set[str]) -> list[str]:
    bad, missing = [], set(answer_names)
    for index, cell in enumerate(nb.cells):
        errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        for out in errors:
            if not is_expected(cell, out, missing):
                bad.append(describe(index, cell, out))
        if errors and all(is_expected(cell, out, missing) for out in errors):
            missing |= defined_names(cell.source)  # it stopped early: what it defines may not exist
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_alone_like_on_colab(lesson, colab_like_process, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"colab-{lesson.stem}")
    nb, seconds, guard = run_like_colab(lesson, folder, timeout=CELL_TIMEOUT_S)
    widgets = guard["widgets"]
    print(
        f"{lesson.name}: ran alone in {seconds:.1f} s; imports refused: {guard['blocked_imports'] or 'none'}; "
        f"widgets moved {WIDGET_MOVES}x each: {[w['function'] for w in widgets]}"
    )
    assert not error_outputs(nb)
    assert widgets, f"{lesson.name}: no interactive widget to move, yet every lesson has a live demo"
    assert not widget_problems(widgets), f"{lesson.name}: " + "\n".join(widget_problems(widgets))
    assert all(w["before"]["pictures"] for w in widgets), (
        f"{lesson.name}: widgets that draw nothing: {[w['function'] for w in widgets if not w['before']['pictures']]}"
    )
    assert not guard["outside_files"], (
        f"{lesson.name} read files outside itself (they do not exist on Colab): {sorted(set(guard['outside_files']))}"
    )
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".ipynb") == [lesson.name]


@pytest.mark.slow
@pytest.mark.parametrize("exercise", RELEASE, ids=[p.name for p in RELEASE])
def test_release_notebook_runs_alone_up_to_its_stubs(exercise, colab_like_process, tmp_path_factory):
    source = SOURCE / exercise.relative_to(REPO / "release")
    answer_names = defined_by_answers(nbformat.read(str(source), as_version=4)) if source.is_file() else set()
    folder = tmp_path_factory.mktemp(f"colab-{exercise.stem}")
    nb, seconds, guard = run_like_colab(exercise, folder, timeout=CELL_TIMEOUT_S, allow_errors=True)
    errors = error_outputs(nb)
    print(
        f"{exercise.name}: ran alone in {seconds:.1f} s, {len(errors)} error output(s): "
        f"{sorted({out['ename'] for _, _, out in errors})}; imports refused: {guard['blocked_imports'] or 'none'}"
    )
    assert not unexpected_errors(nb, answer_names), (
        f"{exercise.name} raised errors the blank answers do not explain:\n\n"
        + "\n\n".join(unexpected_errors(nb, answer_names))
    )
    assert any(out["ename"] == "NotImplementedError" for _, _, out in errors), (
        f"{exercise.name}: no stub raised NotImplementedError, so the blank exercise was not exercised"
    )
    assert not guard["outside_files"], (
        f"{exercise.name} read files outside itself: {sorted(set(guard['outside_files']))}"
    )


# --- the checks above can fail: the guards and the error rules, on notebooks made to break them ---


def error_cell(source: str, ename: str, evalue: str, nbgrader: dict | None = None):
    cell = new_code_cell(source, metadata={"nbgrader": nbgrader} if nbgrader else {})
    cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=[])]
    return cell


TEST_CELL = {"grade": True, "solution": False, "grade_id": "t", "points": 1}


def test_error_rules_accept_what_blank_answers_explain():
    nb = new_notebook(
        cells=[
            error_cell("def f():\n    raise NotImplementedError()\nf()", "NotImplementedError", ""),
            error_cell("print(answer)", "NameError", "name 'answer' is not defined"),
            error_cell("history = f()", "NotImplementedError", ""),
            error_cell("plot(history)", "NameError", "name 'history' is not defined"),
            error_cell("assert answer == 1", "AssertionError", "", TEST_CELL),
        ]
    )
    assert unexpected_errors(nb, {"answer"}) == []


@pytest.mark.parametrize(
    "cell",
    [
        error_cell("import nbgrader", "ModuleNotFoundError", "No module named 'nbgrader'"),
        error_cell("open('../data/x.csv')", "FileNotFoundError", "[Errno 2] No such file or directory"),
        error_cell("print(typo)", "NameError", "name 'typo' is not defined"),
        error_cell("assert 1 == 2", "AssertionError", ""),  # not an nbgrader test cell
        error_cell("torch.ones(2) @ torch.ones(3)", "RuntimeError", "size mismatch", TEST_CELL),
    ],
    ids=["import", "file", "unrelated-name", "assert-outside-tests", "other-error-in-test"],
)
def test_error_rules_reject_anything_else(cell):
    nb = new_notebook(cells=[error_cell("f()", "NotImplementedError", ""), cell])
    assert len(unexpected_errors(nb, {"answer"})) == 1


@pytest.mark.slow
def test_colab_guard_refuses_project_modules_and_records_outside_files(colab_like_process, tmp_path_factory):
    probe = tmp_path_factory.mktemp("probe") / "probe.ipynb"
    nb = new_notebook(
        cells=[
            new_code_cell(
                "import numpy, torch, PIL, ipywidgets  # on Colab\n"
                "refused = []\n"
                "for name in ('autograder', 'tests', 'nbgrader', 'jupyter_server'):\n"
                "    try:\n"
                "        __import__(name)\n"
                "    except ModuleNotFoundError:\n"
                "        refused.append(name)\n"
                f"open({str(REPO / 'README.md')!r}).close()\n"
                "print('refused', refused)"
            )
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(probe))
    executed, _, guard = run_like_colab(probe, tmp_path_factory.mktemp("probe-run"), timeout=CELL_TIMEOUT_S)
    assert "refused ['autograder', 'tests', 'nbgrader', 'jupyter_server']" in executed.cells[1].outputs[0]["text"]
    assert guard["outside_files"] == [str(REPO / "README.md")]


def shared_drawing_helper() -> str:
    nb = nbformat.read(str(LESSONS[0]), as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "def show_figure(" in c.source)


WIDGET_PROBE_CELLS = [
    "import ipywidgets as widgets\nimport matplotlib.pyplot as plt\nimport numpy as np",
    shared_drawing_helper(),
    "def healthy(k=1.0):\n    print('k =', k)\n    fig = Figure(figsize=(4, 2.5))\n    ax = fig.subplots()\n"
    "    ax.plot(np.sin(k * np.linspace(0, 6, 50)))\n    ax.set_xlabel('x')\n    ax.set_ylabel('y')\n"
    "    show_figure(fig)\n"
    "widgets.interactive(healthy, k=widgets.FloatSlider(1.0, min=0.5, max=3.0, step=0.1))",
    "def raising(n=1):\n    assert n == 1, 'moved'\n    print(n)\n"
    "widgets.interactive(raising, n=widgets.IntSlider(1, 0, 9))",
    # the lessons' old fault made deterministic (see tests/browser): shown by plt.show() before it is drawn on
    "def blank_after_move(x=1):\n    print('x =', x)\n    fig = plt.figure(figsize=(5, 2.5))\n"
    "    ax = fig.add_subplot()\n    ax.set_axis_off()\n    if x != 1:\n        plt.show()\n"
    "    ax.set_axis_on()\n    ax.plot([0, 1, 2], [0, x, 0])\n    plt.show()\n"
    "widgets.interactive(blank_after_move, x=widgets.IntSlider(1, 0, 9))",
    "def silent(choice='a'):\n    if choice == 'a':\n        print('first choice')\n"
    "widgets.interactive(silent, choice=widgets.Dropdown(options=['a', 'b', 'c']))",
]


@pytest.mark.slow
def test_colab_widget_moves_catch_a_raising_a_blank_and_a_silent_widget(colab_like_process, tmp_path_factory):
    probe = tmp_path_factory.mktemp("widget-probe") / "widget_probe.ipynb"
    nb = new_notebook(cells=[new_code_cell(c) for c in WIDGET_PROBE_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(probe))
    _, _, guard = run_like_colab(probe, tmp_path_factory.mktemp("widget-probe-run"), timeout=CELL_TIMEOUT_S)
    by_name = {w["function"]: w for w in guard["widgets"]}
    assert sorted(by_name) == ["blank_after_move", "healthy", "raising", "silent"]
    assert all(len(w["moves"]) == WIDGET_MOVES for w in by_name.values())

    def problems(name):
        return "\n".join(widget_problems([by_name[name]]))

    assert problems("healthy") == ""
    assert [m["pictures"][0]["ink"] > 0.01 for m in by_name["healthy"]["moves"]] == [True] * WIDGET_MOVES
    assert "move 1 (n: 1 -> 2): raised AssertionError: moved" in problems("raising")
    assert "move 1 (x: 1 -> 2): picture 1 of 1 is blank" in problems("blank_after_move")
    assert "move 1 (choice: 'a' -> 'b'): showed nothing" in problems("silent")
