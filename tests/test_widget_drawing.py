"""Every widget that draws, in every lesson, draws one way: on a ``matplotlib.figure.Figure`` that pyplot
never sees, shown as PNG bytes by ``show_figure``, a helper each lesson defines in the same cell.

Why (the comment in that cell says it too): widget callbacks run outside cells, some on a second
kernel thread, and pyplot's global figure list let one callback's ``plt.show()`` display and close
another's half-drawn figure, which reached the student as a blank white box. Checked here in-process:
the copies are identical; every widget of every lesson, each control moved in turn and two widgets of a
lesson interleaved, shows one new, non-blank PNG per move and never touches pyplot's figure list. The
picture rules (``tests/harness/pictures.py``, the twin of the browser driver's) are shown failing on
planted faults.
"""

from __future__ import annotations

import ast
import io
import re

import matplotlib

matplotlib.use("Agg")

import IPython.display  # noqa: E402
import ipywidgets as widgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tests.conftest import REPO  # noqa: E402
from tests.harness.pictures import MIN_INK, picture_problems, png_facts  # noqa: E402
from tools.notebooks import FUNCTIONS_TAG, notebook_namespace  # noqa: E402

LESSONS = sorted((REPO / "notebooks").glob("*.ipynb"))


def helper_cells(path):
    nb = nbformat.read(str(path), as_version=4)
    return [c for c in nb.cells if c.cell_type == "code" and "def show_figure(" in c.source]


def test_every_lesson_defines_show_figure_once_and_identically():
    assert len(LESSONS) == 4
    sources = {}
    for lesson in LESSONS:
        cells = helper_cells(lesson)
        assert len(cells) == 1, f"{lesson.name}: {len(cells)} cells define show_figure, expected one"
        assert FUNCTIONS_TAG in cells[0].metadata.get("tags", []), f"{lesson.name}: tag the helper cell"
        sources[lesson.name] = cells[0].source
    first = sources[LESSONS[0].name]
    different = [name for name, source in sources.items() if source != first]
    assert not different, f"show_figure's cell differs from {LESSONS[0].name}'s in {different}: keep them identical"
    tree = ast.parse(first)
    assert [type(n).__name__ for n in tree.body] == ["ImportFrom", "FunctionDef"], "the cell: one import, one def"


# ------------------------------------------------------------------ driving every lesson widget in-process


def lesson(name):
    return next(p for p in LESSONS if p.name.startswith(name))


@pytest.fixture(scope="module")
def lesson_widgets():
    """Every widget of every lesson, built with small inputs: {lesson: [(name, widget), ...]}."""
    built = {}
    ns = notebook_namespace(lesson("01"))
    built["01"] = [
        ("gradient", ns["make_gradient_widget"]()),
        ("depth", ns["make_depth_widget"](ns["measure_depth_effect"](depths=(2, 4, 8), steps=10))),
    ]
    ns = notebook_namespace(lesson("02"))
    built["02"] = [("cost explorer", ns["make_cost_widget"]()), ("speed", ns["make_speed_widget"](device="cpu"))]
    ns = notebook_namespace(lesson("03"))
    built["03"] = [
        ("decision matrix", ns["make_decision_matrix_widget"]()),
        ("strategy selector", ns["make_strategy_selector_widget"](ns["build_mobilenet_v2"](num_classes=2))),
        ("learning rates", ns["make_lr_calculator_widget"]()),
    ]
    ns = notebook_namespace(lesson("04"))
    built["04"] = [
        ("scaling", ns["make_scaling_widget"](ns["efficientnet_records"]())),
        ("tokens", ns["make_tokens_widget"](dim=32, heads=2)),
    ]
    return built


@pytest.fixture
def shown(monkeypatch):
    """What show_figure (or anything else) displays, instead of a kernel."""
    out = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: out.extend(objs))
    return out


def move(control):
    """A student's move of one control: the next option, or one step (back at the top end)."""
    if isinstance(control, (widgets.Dropdown, widgets.ToggleButtons, widgets.SelectionSlider)):
        control.index = (control.index + 1) % len(control.options)
    elif isinstance(control, widgets.FloatLogSlider):
        up = control.value * control.base**control.step
        control.value = up if up <= control.base**control.max else control.value / control.base**control.step
    else:
        up = control.value + control.step
        control.value = up if up <= control.max else control.value - control.step


def pictures(objs):
    return [png_facts(o.data) for o in objs if isinstance(o, IPython.display.Image)]


def shown_by(action, shown):
    shown.clear()
    action()
    return pictures(shown)


@pytest.fixture
def pyplot_calls(monkeypatch):
    """Every call into pyplot's figure list (make, show, close) from now on, by name."""
    calls = []
    for attr in ("figure", "subplots", "subplot", "show", "gcf", "gca", "close"):
        original = getattr(plt, attr)

        def spy(*args, _attr=attr, _original=original, **kwargs):
            calls.append(_attr)
            return _original(*args, **kwargs)

        monkeypatch.setattr(plt, attr, spy)
    return calls


@pytest.mark.slow  # every control of every widget, three moves each: about a minute on 2 cores
@pytest.mark.parametrize("key", ["01", "02", "03", "04"])
def test_each_move_of_each_control_shows_one_drawn_picture_without_pyplot(lesson_widgets, shown, pyplot_calls, key):
    for name, widget in lesson_widgets[key]:
        before = shown_by(widget.update, shown)
        for i, control in enumerate(widget.kwargs_widgets):
            for move_number in range(1, 4):  # a move, a second and a third
                after = shown_by(lambda c=control: move(c), shown)
                label = f"{key} {name}, move {move_number} of {control.description!r}"
                assert len(before) == 1 and len(after) == 1, f"{label}: {len(before)} -> {len(after)} pictures"
                # The first control always changes the picture; another may not (e.g. "B unfreezes" under A).
                problems = picture_problems(before if i == 0 else [], after)
                assert problems == [], f"{label}: {problems}"
                before = after
    assert pyplot_calls == [], f"{key}: widget callbacks used pyplot's global figure list: {pyplot_calls}"


@pytest.mark.parametrize("key", ["01", "02", "03", "04"])
def test_two_widgets_of_a_lesson_interleaved_keep_their_own_pictures(lesson_widgets, shown, key):
    (name_a, a), (name_b, b) = lesson_widgets[key][:2]
    last = {}
    for _ in range(3):
        for name, widget in ((name_a, a), (name_b, b)):
            shown.clear()
            move(widget.kwargs_widgets[0])
            (picture,) = pictures(shown)
            assert picture_problems([last[name]] if name in last else [], [picture]) == [], name
            last[name] = picture
    assert last[name_a]["hash"] != last[name_b]["hash"]


def test_the_pyplot_spy_catches_the_old_way_of_drawing(shown, pyplot_calls):
    # The lessons' old callbacks, in miniature: plt.subplots + plt.show + plt.close inside the widget.
    def old_way(x=1):
        fig, ax = plt.subplots()
        ax.plot([0, x])
        plt.show()
        plt.close(fig)

    w = widgets.interactive(old_way, x=widgets.IntSlider(1, 0, 9))
    move(w.kwargs_widgets[0])
    assert [pyplot_calls.count(name) for name in ("subplots", "show", "close")] == [2, 2, 2]  # first render + move


# ------------------------------------------------------------------ the picture rules, on planted faults


def png_of(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def drawn(k=1.0) -> dict:
    fig = Figure(figsize=(4, 2.5))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, k, 0])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return png_facts(png_of(fig))


def test_picture_rules_pass_a_new_drawn_picture():
    before, after = drawn(1.0), drawn(2.0)
    assert after["ink"] > 0.01 and before["hash"] != after["hash"]
    assert picture_problems([before], [after]) == []


def test_picture_rules_catch_a_blank_a_missing_a_stale_and_a_broken_picture():
    before = drawn(1.0)
    blank = png_facts(png_of(Figure(figsize=(4, 2.5))))  # the white box of the issue
    assert blank["ink"] == 0
    assert "picture 1 of 1 is blank" in picture_problems([before], [blank])[0]
    assert picture_problems([before], []) == ["it showed 1 picture(s) before the move and none after"]
    assert picture_problems([before], [drawn(1.0)]) == ["picture 1 of 1 is the same image as before the move"]
    broken = png_facts(png_of(Figure(figsize=(4, 2.5)))[:100])
    assert picture_problems([before], [broken])[0].startswith("picture 1 of 1 is not decodable")


def test_browser_driver_and_python_twin_use_the_same_threshold():
    driver = (REPO / "tests" / "browser" / "drive_lesson.mjs").read_text()
    match = re.search(r"^const MIN_INK = ([0-9.]+);", driver, re.MULTILINE)
    assert match and float(match.group(1)) == MIN_INK, "keep MIN_INK in drive_lesson.mjs and pictures.py equal"
