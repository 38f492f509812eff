"""Every lesson, opened in a real JupyterLab in headless Chromium, runs all its cells, renders every
widget, and each widget shows the student something new after each move of one of its controls.

The browser work is done by ``drive_lesson.mjs`` (playwright-core driving Debian's /usr/bin/chromium);
this wrapper starts one JupyterLab for the module, runs the driver once per lesson and turns its
report into assertions. A control is moved three times (keys, keys, then a mouse drag); after each
move, with the kernel idle, every picture in the widget's output must decode, be non-blank and differ
from the picture before the move. One screenshot per moved widget after its last move,
``<lesson>-<cell id>-<control>.png``, goes to $BROWSER_SCREENSHOTS or a pytest temporary folder, printed
at the start of the run. Needs: chromium, node, and ``npm ci --prefix tests/browser``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.conftest import REPO
from tests.harness.lab_server import running_jupyterlab

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "drive_lesson.mjs"
CHROMIUM = Path(os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium"))
LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))
# One lesson alone runs in ≤ 30 s; the machine may be shared and JupyterLab adds its own start-up.
DRIVER_TIMEOUT_S = 600
MOVES = 3  # the driver's default: keys, keys, then a mouse drag

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def missing_requirement() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium chromium-driver)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (HERE / "node_modules" / "playwright-core" / "package.json").is_file():
        return "playwright-core is not installed (npm ci --prefix tests/browser)"
    return None


@pytest.fixture(scope="module")
def screenshot_dir(request, tmp_path_factory) -> Path:
    folder = Path(os.environ.get("BROWSER_SCREENSHOTS") or tmp_path_factory.mktemp("lesson-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:  # print past pytest's capture so the folder is always shown
        reporter.write_line(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing_requirement()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    with running_jupyterlab(REPO, tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


def saved_with_outputs(path: Path) -> bool:
    """True when the notebook on disk carries outputs or execution counts (i.e. someone saved a run)."""
    nb = nbformat.read(str(path), as_version=4)
    return any(c.get("outputs") or c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def run_driver(lab, notebook: Path, screenshot_dir: Path, change_timeout_s: int = 90) -> tuple[dict | None, str]:
    cmd = [
        "node",
        str(DRIVER),
        "--url",
        lab.url,
        "--token",
        lab.token,
        "--path",
        notebook.relative_to(lab.root).as_posix(),
        "--screenshot-dir",
        str(screenshot_dir),
        "--name",
        notebook.stem,
        "--timeout-s",
        str(DRIVER_TIMEOUT_S),
        "--change-timeout-s",
        str(change_timeout_s),
        "--chromium",
        str(CHROMIUM),
    ]
    proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S + 300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")), None)
    report = json.loads(line[len("REPORT ") :]) if line else None
    return report, f"driver exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"


def describe_images(images: list[dict]) -> str:
    return ", ".join(i.get("error") or f"{i['width']}x{i['height']} ink {i['ink']:.1%}" for i in images) or "no picture"


def describe(report: dict) -> str:
    lines = [
        f"screenshot of the page: {report['screenshot']}",
        f"widget outputs: {report.get('expectedWidgets')} in the notebook, {report.get('renderedWidgets')} "
        f"rendered, {report.get('closedWidgets')} closed by the kernel",
    ]
    lines += [f"problem: {p}" for p in report["problems"]]
    lines += [f"JavaScript error: {e}" for e in report["jsErrors"]]
    lines += [f"console error: {e}" for e in report["consoleErrors"]]
    for w in report["widgets"]:
        lines.append(
            f"widget in cell #{w['cell']} ({w.get('cellId')}): {w.get('control')}, "
            f"changed={w.get('changed')}, "
            f"pictures before: {describe_images(w.get('imagesBefore', []))}"
        )
        lines += [
            f"    move {m['move']}: {m.get('how')} -> changed={m.get('changed')}, "
            f"pictures: {describe_images(m.get('images', []))}"
            for m in w.get("moves", [])
        ]
    return "\n".join(lines)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_runs_and_its_widgets_respond_in_jupyterlab(lesson, lab, screenshot_dir):
    before = hashlib.sha256(lesson.read_bytes()).hexdigest()
    try:
        report, driver_log = run_driver(lab, lesson, screenshot_dir)
    finally:
        lab.shutdown_kernels()  # a lesson's kernel holds torch and its models: free it before the next
    assert report is not None, f"the browser driver gave no report\n{driver_log}\nserver log:\n{lab.log_tail()}"
    print(
        f"{lesson.name}: {report['seconds']:.0f} s in the browser (cells {report.get('runSeconds')} s), "
        f"screenshots: {[Path(w['screenshot']).name for w in report['widgets'] if w.get('screenshot')]}"
    )

    assert report["ok"], f"{lesson.name} failed in JupyterLab:\n{describe(report)}"
    assert report["renderedWidgets"] >= 1, f"{lesson.name} displayed no widget: every lesson has a live demo"
    # Closed by the kernel (a finished tqdm bar with leave=False) is fine; failing to render is not.
    assert report["renderedWidgets"] + report["closedWidgets"] == report["expectedWidgets"], describe(report)
    moved = [w for w in report["widgets"] if w.get("control") != "none"]
    assert moved, f"{lesson.name}: no widget had a control the driver could move\n{describe(report)}"
    assert all(w["changed"] and len(w["moves"]) == MOVES for w in moved), describe(report)
    # Every widget that draws was checked picture by picture after each move (the driver reports failures).
    assert all(w["imagesOk"] for w in moved if w["imagesBefore"]), describe(report)
    for w in moved:
        shot = Path(w["screenshot"])
        assert shot.is_file() and shot.stat().st_size > 2_000, f"no useful screenshot at {shot}"
    # Autosave is off: the run must not have written outputs into the committed lesson.
    if hashlib.sha256(lesson.read_bytes()).hexdigest() != before:
        assert not saved_with_outputs(lesson), f"{lesson.name} was saved with outputs during the browser run"


# --- the driver's checks can fail: a notebook made to break each of them, and a healthy one ---


def shared_drawing_helper() -> str:
    """The cell every lesson uses to draw inside a widget (tests/test_widget_drawing.py: identical in all)."""
    nb = nbformat.read(str(LESSONS[0]), as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "def show_figure(" in c.source)


WIDGETS = "import ipywidgets as widgets\nfrom IPython.display import Javascript, display\n"
PLOTS = "import matplotlib.pyplot as plt\nimport numpy as np\n"
HEALTHY_CELLS = [
    WIDGETS,
    "def show(x=1):\n    print('x squared is', x * x)\nwidgets.interactive(show, x=widgets.IntSlider(1, 0, 9))",
    "dd = widgets.Dropdown(options=['a', 'b'])\nout = widgets.Output()\n"
    "dd.observe(lambda change: out.append_stdout(f'chose {change.new}\\n'), names='value')\n"
    "widgets.VBox([dd, out])",
    PLOTS + shared_drawing_helper(),
    # Two drawing widgets in one notebook, one of them streaming values while its slider is dragged.
    "def wave(k=1.0):\n    fig = Figure(figsize=(5, 2.5))\n    ax = fig.subplots()\n"
    "    x = np.linspace(0, 10, 200)\n    ax.plot(x, np.sin(k * x))\n    ax.set_xlabel('x')\n"
    "    ax.set_ylabel(f'sin({k:.1f} x)')\n    show_figure(fig)\n"
    "widgets.interactive(wave, k=widgets.FloatSlider(1.0, min=0.5, max=5, step=0.1, continuous_update=True))",
    "def bars(n=3):\n    fig = Figure(figsize=(4, 2.5))\n    ax = fig.subplots()\n"
    "    ax.bar(range(n), range(1, n + 1))\n    ax.set_xlabel('bar')\n    ax.set_ylabel('height')\n"
    "    show_figure(fig)\n"
    "widgets.interactive(bars, n=widgets.ToggleButtons(options=[3, 5, 8]))",
]
BROKEN_CELLS = [
    WIDGETS,
    # a view of a model that does not exist: "Error displaying widget"
    "display({'application/vnd.jupyter.widget-view+json': {'model_id': 'missing', 'version_major': 2, "
    "'version_minor': 0}}, raw=True)",
    # a callback that raises when the slider moves: a traceback in the widget's output
    "def fragile(x=1):\n    assert x == 1, 'moved'\n    print(x)\n"
    "widgets.interactive(fragile, x=widgets.IntSlider(1, 0, 9))",
    # a widget whose output ignores its control
    "def constant(x=1):\n    print('same')\nwidgets.interactive(constant, x=widgets.IntSlider(1, 0, 9))",
    PLOTS + shared_drawing_helper(),
    # The lessons' old fault, made deterministic: after a move the pyplot figure is shown (and closed) by
    # plt.show() before anything is drawn on it, which is what another callback's plt.show() did to it:
    # a blank white box.
    "def blank_after_move(x=1):\n    print('x =', x)\n    fig = plt.figure(figsize=(5, 2.5))\n"
    "    ax = fig.add_subplot()\n    ax.set_axis_off()\n    if x != 1:\n        plt.show()\n"
    "    ax.set_axis_on()\n    ax.plot([0, 1, 2], [0, x, 0])\n    ax.set_xlabel('x')\n    ax.set_ylabel('y')\n"
    "    plt.show()\n"
    "widgets.interactive(blank_after_move, x=widgets.IntSlider(1, 0, 9))",
    # draws before the move, nothing after it
    "def vanishing(x=1):\n    print('x =', x)\n    if x == 1:\n        fig = Figure(figsize=(4, 2.5))\n"
    "        fig.subplots().plot([0, 1], [0, 1])\n        show_figure(fig)\n"
    "widgets.interactive(vanishing, x=widgets.IntSlider(1, 0, 9))",
    # the text follows the slider, the picture does not
    "def stale(x=1):\n    print('x =', x)\n    fig = Figure(figsize=(4, 2.5))\n"
    "    fig.subplots().plot([0, 1], [1, 0])\n    show_figure(fig)\n"
    "widgets.interactive(stale, x=widgets.IntSlider(1, 0, 9))",
    # last: run-all stops at the first cell that raises
    "display(Javascript(\"setTimeout(() => { throw new Error('broken on purpose'); }, 0)\"))",
    "1 / 0",
]


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Cells with ids <first letter of the stem><index>: h1, h2, ... (the screenshots are named by them)."""
    nb = new_notebook(cells=[new_code_cell(c, id=f"{path.stem[0]}{i}") for i, c in enumerate(cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def problems_of_cell(report: dict, cell: int) -> str:
    return "\n".join(p for p in report["problems"] if f"cell #{cell} " in p)


def test_driver_passes_a_healthy_notebook_and_catches_each_breakage(tmp_path_factory):
    reason = missing_requirement()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")
    root = tmp_path_factory.mktemp("driver-selftest")
    healthy = write_notebook(root / "notebooks" / "healthy.ipynb", HEALTHY_CELLS)
    broken = write_notebook(root / "notebooks" / "broken.ipynb", BROKEN_CELLS)
    shots = root / "screenshots"
    with running_jupyterlab(root, tmp_path_factory.mktemp("jupyterlab-selftest")) as server:
        good, good_log = run_driver(server, healthy, shots, change_timeout_s=30)
        server.shutdown_kernels()
        bad, bad_log = run_driver(server, broken, shots, change_timeout_s=15)
    assert good is not None and good["ok"], f"{good_log}\n{good and describe(good)}"
    assert [w["control"] for w in good["widgets"]] == ["slider", "dropdown", "slider", "toggle-buttons"]
    assert all(w["changed"] and len(w["moves"]) == MOVES for w in good["widgets"]), describe(good)
    drawing = [w for w in good["widgets"] if w["imagesBefore"]]
    assert [w["cell"] for w in drawing] == [4, 5], describe(good)
    assert all(w["imagesOk"] and all(len(m["images"]) == 1 for m in w["moves"]) for w in drawing), describe(good)
    assert "mouse drag" in drawing[0]["moves"][-1]["how"], describe(good)  # continuous_update streamed values
    assert sorted(p.name for p in shots.glob("healthy-*.png")) == [  # named by cell id, not by index
        "healthy-h1-slider.png",
        "healthy-h2-dropdown.png",
        "healthy-h4-slider.png",
        "healthy-h5-toggle-buttons.png",
    ]

    assert bad is not None and not bad["ok"], bad_log
    problems = "\n".join(bad["problems"])
    assert "Error displaying widget" in problems, describe(bad)
    assert "AssertionError: moved" in problems, describe(bad)  # the callback's traceback
    assert "to change after moving its slider" in problems, describe(bad)
    assert "ZeroDivisionError" in problems, describe(bad)
    assert any("broken on purpose" in e for e in bad["jsErrors"]), describe(bad)
    assert "picture 1 of 1 is blank" in problems_of_cell(bad, 5), describe(bad)
    assert "1 picture(s) before the move and none after" in problems_of_cell(bad, 6), describe(bad)
    assert "same image as before the move" in problems_of_cell(bad, 7), describe(bad)
    assert (shots / "broken-page.png").is_file()
