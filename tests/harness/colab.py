"""Run a notebook the way a student on Colab does: the notebook alone in an empty folder, nothing from
this repository importable, only the packages Colab preinstalls.

A first injected cell installs two guards in the kernel:
- an import blocker (``sys.meta_path``) that refuses any top-level module that is installed here but
  is neither in the standard library nor in Colab's preinstalled set (the packages the course relies
  on, their dependencies, and the kernel's own), and always refuses this project's modules;
- an audit hook that records every file the notebook opens or lists under the repository or the
  shared data folder (a hard-coded path there works here and breaks on Colab).
A second-to-last injected cell moves the first control of every live ``interactive`` widget three
times, as a student would, and records per move what the callback printed, the pictures it displayed
(measured by ``tests/harness/pictures.png_facts``, injected by its source) and any exception it raised.
A last injected cell prints what the guards and the widget moves saw, as JSON, for the test to read;
``widget_problems`` turns the moves into findings.
"""

from __future__ import annotations

import importlib.metadata as metadata
import inspect
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell
from packaging.requirements import Requirement

from tests.conftest import REPO
from tests.harness.pictures import picture_problems, png_facts
from tools.notebooks import execute_notebook

SHARED = REPO.parent / "shared"

# What Colab preinstalls that a notebook of this course may import (distribution names), plus the
# kernel itself. Their installed dependencies are allowed too: Colab has them.
COLAB_DISTRIBUTIONS = (
    "torch",
    "torchvision",
    "numpy",
    "pillow",
    "matplotlib",
    "ipywidgets",
    "ipython",
    "scikit-image",
    "scipy",
    "tqdm",
    "pandas",
    "scikit-learn",
    "ipykernel",
    "matplotlib-inline",
)
# Never importable on Colab, whatever is installed here: this project and the grader's tool.
PROJECT_MODULES = frozenset({"autograder", "tests", "tools", "nbgrader"})
REPORT_MARKER = "COLAB_GUARD_REPORT "


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_distributions() -> set[str]:
    """COLAB_DISTRIBUTIONS and everything they require, among the distributions installed here."""
    installed = {_norm(d.metadata["Name"]): d for d in metadata.distributions()}
    seen: set[str] = set()
    stack = [_norm(n) for n in COLAB_DISTRIBUTIONS]
    while stack:
        name = stack.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        for line in installed[name].requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(_norm(req.name))
    return seen


def allowed_modules() -> frozenset[str]:
    """Top-level module names a Colab notebook can import: stdlib + the Colab distributions' modules."""
    allowed = colab_distributions()
    third_party = {
        module for module, dists in metadata.packages_distributions().items() if any(_norm(d) in allowed for d in dists)
    }
    return frozenset((set(sys.stdlib_module_names) | third_party) - PROJECT_MODULES)


GUARD_CELL = """\
# Injected by tests/harness/colab.py: behave like Colab (see that module's docstring).
import importlib.abc as _abc, importlib.machinery as _machinery, os as _os, sys as _sys

_ALLOWED = frozenset({allowed!r})
_PROJECT = frozenset({project!r})
_WATCHED = {watched!r}
_colab_guard = {{"blocked_imports": [], "outside_files": []}}

class _ColabOnlyImports(_abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in _ALLOWED and top not in _PROJECT:
            return None  # let the normal finders load it
        if top in _PROJECT or _machinery.PathFinder.find_spec(top) is not None:
            _colab_guard["blocked_imports"].append(name)
            raise ModuleNotFoundError(f"No module named {{top!r}} (not available on Colab)", name=top)
        return None  # not installed here either: the normal "No module named" follows

_sys.meta_path.insert(0, _ColabOnlyImports())
# The repository itself must not be on the path (the environment may live inside it: keep that).
_sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") not in _WATCHED]
_ENVIRONMENT = tuple({{_sys.prefix, _sys.base_prefix, _os.path.realpath(_sys.prefix)}})

def _under(path, folders):
    return any(path == f or path.startswith(f.rstrip(_os.sep) + _os.sep) for f in folders)

def _watch_files(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, _os.PathLike)):
        path = _os.path.abspath(_os.fsdecode(args[0]))
        if _under(path, _WATCHED) and not _under(path, _ENVIRONMENT):
            _colab_guard["outside_files"].append(path)

_sys.addaudithook(_watch_files)
"""

WIDGET_MOVES = 3

WIDGET_CELL = (
    inspect.getsource(png_facts)
    + """

# Injected by tests/harness/colab.py: move each widget like a student; record what each move showed.
def _colab_move_widgets(moves):
    import base64, contextlib, io, sys
    import ipywidgets
    ip = get_ipython()
    registry = getattr(ipywidgets.widgets.widget, "_instances", None)
    if registry is None:  # ipywidgets 7, as on Colab
        registry = ipywidgets.Widget.widgets
    seen = {"pictures": [], "errors": []}
    publish, showtraceback = ip.display_pub.publish, ip.showtraceback

    def recording_publish(data, *args, **kwargs):
        if "image/png" in data:
            png = data["image/png"]
            seen["pictures"].append(png_facts(base64.b64decode(png) if isinstance(png, str) else png))
        return publish(data, *args, **kwargs)

    def recording_showtraceback(*args, **kwargs):
        etype, value = sys.exc_info()[:2]
        seen["errors"].append(f"{getattr(etype, '__name__', etype)}: {value}")
        return showtraceback(*args, **kwargs)

    def run(action):
        seen["pictures"], seen["errors"] = [], []
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            action()
        return {"text": text.getvalue()[-500:], "pictures": seen["pictures"], "errors": seen["errors"]}

    def move(control):
        old = control.value
        if hasattr(control, "index") and len(getattr(control, "options", ())) > 1:
            control.index = (control.index + 1) % len(control.options)
        elif isinstance(control.value, bool):
            control.value = not control.value
        elif isinstance(control, ipywidgets.FloatLogSlider):
            up = control.value * control.base ** control.step
            control.value = up if up <= control.base ** control.max else control.value / control.base ** control.step
        elif hasattr(control, "step") and hasattr(control, "max"):
            up = control.value + control.step
            control.value = up if up <= control.max else control.value - control.step
        return f"{control.description or type(control).__name__}: {old!r} -> {control.value!r}"

    found = []
    ip.display_pub.publish, ip.showtraceback = recording_publish, recording_showtraceback
    try:
        for widget in list(registry.values()):
            if not isinstance(widget, ipywidgets.interactive) or widget.comm is None or not widget.kwargs_widgets:
                continue
            control = widget.kwargs_widgets[0]
            record = {"function": getattr(widget.f, "__name__", "?"), "control": type(control).__name__,
                      "before": run(widget.update), "moves": []}
            for _ in range(moves):
                how = []
                record["moves"].append(run(lambda: how.append(move(control))))
                record["moves"][-1]["how"] = how[0] if how else "could not move"
            found.append(record)
    finally:
        ip.display_pub.publish, ip.showtraceback = publish, showtraceback
    return found


_colab_guard["widgets"] = _colab_move_widgets(WIDGET_MOVES)
""".replace("WIDGET_MOVES", str(WIDGET_MOVES))
)

REPORT_CELL = f"""\
# Injected by tests/harness/colab.py: what the guards saw.
import json as _json
print({REPORT_MARKER!r} + _json.dumps(_colab_guard))
"""


def guarded(nb):
    """A copy of ``nb`` with the guard cell first and the report cell last."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    watched = sorted({str(REPO), str(REPO.resolve()), str(SHARED), str(SHARED.resolve())})
    guard = new_code_cell(
        GUARD_CELL.format(allowed=sorted(allowed_modules()), project=sorted(PROJECT_MODULES), watched=watched)
    )
    nb.cells = [guard, *nb.cells, new_code_cell(WIDGET_CELL), new_code_cell(REPORT_CELL)]
    return nb


def guard_report(executed_nb) -> dict:
    """The guards' JSON from the last cell of an executed guarded notebook."""
    for out in executed_nb.cells[-1].get("outputs", []):
        if out.get("output_type") == "stream":
            for line in out.get("text", "").splitlines():
                if line.startswith(REPORT_MARKER):
                    return json.loads(line[len(REPORT_MARKER) :])
    raise AssertionError("the injected guard report cell printed nothing: the kernel died or the run stopped early")


def widget_problems(widgets: list[dict]) -> list[str]:
    """Findings from the widget moves of a guard report: a callback that raised, a move that showed
    nothing at all, and the picture rules of ``tests.harness.pictures.picture_problems``."""
    problems = []
    for w in widgets:
        name = f"widget {w['function']}() ({w['control']})"
        problems += [f"{name}, first render: raised {e}" for e in w["before"]["errors"]]
        before = w["before"]["pictures"]
        for i, m in enumerate(w["moves"], 1):
            where = f"{name}, move {i} ({m['how']})"
            problems += [f"{where}: raised {e}" for e in m["errors"]]
            if not m["errors"] and not m["text"].strip() and not m["pictures"]:
                problems.append(f"{where}: showed nothing (no text, no picture)")
            problems += [f"{where}: {p}" for p in picture_problems(before, m["pictures"])]
            before = m["pictures"]
    return problems


def run_like_colab(notebook: Path, folder: Path, *, timeout: int = 300, allow_errors: bool = False):
    """Copy ``notebook`` alone into the empty ``folder`` (guarded) and execute it there.

    Returns (executed notebook, seconds, guard report). The caller makes sure the environment is
    clean (no PYTHONPATH, no variables pointing into the repository) and the cwd is elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise ValueError(f"{folder} is not empty")
    target = folder / notebook.name
    nbformat.write(guarded(nbformat.read(str(notebook), as_version=4)), str(target))
    nb, seconds = execute_notebook(target, cwd=folder, timeout=timeout, allow_errors=allow_errors)
    return nb, seconds, guard_report(nb)


def remove_copy(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
