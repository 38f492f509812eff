"""Several notebooks of one student graded at once (``grading.notebooks_graded``): nbgrader's steps take
turns at the student's gradebook, the kernels run side by side, and one notebook's crash stops no other.

In the first tests no kernel runs: ``grade_one`` stands in for a notebook's nbgrader run, holding the gradebook lock
(``grading._turn``) where nbgrader would read or write the gradebook, and letting it go where the
kernel would run. The last test runs real kernels against the student's budget; the scores of real runs
are compared cell by cell in test_demo_class_kernel_modes.py."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
from pathlib import Path

import nbformat
import pytest

from autograder import cli, grading
from autograder.assignment import Assignment
from autograder.results import NotebookResult, results_from_dict
from tests.grader import fixture
from tests.grader.students import FULL
from tools.nbgrader_course import read, solved, with_answer

CHECKS = Path(__file__).with_name("fixture_checks")  # the tiny assignment's hidden checks

WAIT_S = 10  # how long a stand-in waits for another to be in its "kernel" phase


def wait_for(path: Path) -> bool:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.01)
    return False


def stand_in(folder: Path):
    """A notebook's run: two turns at the gradebook (before and after the kernel) and a kernel phase
    that waits to see another notebook's kernel phase too. What it saw goes to files in ``folder``."""

    def grade_one(name: str, turn: int = -1) -> NotebookResult:
        notes = []
        for phase in ("before", "after"):
            with grading._turn(turn):
                try:  # O_EXCL: a second holder of the lock at the same moment cannot create it
                    os.close(os.open(folder / "holder", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    notes.append(f"{phase}: another notebook held the gradebook too")
                time.sleep(0.05)
                (folder / "holder").unlink(missing_ok=True)
            if phase == "before":
                (folder / f"{name}.running").touch()
                other = folder / ("b.running" if name == "a" else "a.running")
                notes.append("ran beside another" if wait_for(other) else "ran alone")
        return NotebookResult("graded", notes=notes, kernel=str(os.getpid()))

    return grade_one


def test_turns_at_the_gradebook_never_overlap_and_the_kernels_run_side_by_side(tmp_path):
    root, log = tmp_path / "student", tmp_path / "log"
    root.mkdir()
    log.mkdir()
    got = dict(grading.notebooks_graded(["a", "b"], 2, stand_in(log), root))
    assert sorted(got) == ["a", "b"]
    for name, entry in got.items():
        assert entry.notes == ["ran beside another"], (name, entry.notes)
        assert entry.kernel != str(os.getpid())  # graded in a child of its own
    assert got["a"].kernel != got["b"].kernel


def test_one_at_a_time_the_notebooks_are_graded_here_in_order(tmp_path):
    calls = []

    def grade_one(name: str, turn: int = -1) -> NotebookResult:
        calls.append((name, turn, os.getpid()))
        return NotebookResult("graded")

    got = [name for name, _ in grading.notebooks_graded(["a", "b", "c"], 1, grade_one, tmp_path)]
    assert got == ["a", "b", "c"]
    assert calls == [(n, -1, os.getpid()) for n in "abc"]


@pytest.mark.parametrize("how", ["raises", "dies", "dies mid-write"])
def test_a_notebook_that_crashes_stops_none_of_the_others(tmp_path, how):
    def grade_one(name: str, turn: int = -1) -> NotebookResult:
        if name == "b":
            if how == "raises":
                raise ValueError("nbgrader could not read the gradebook")
            if how == "dies mid-write":  # half of the result file it would have written
                (tmp_path / "notebook_results" / "b.json").write_text('{"result": {"status": "gra')
            os._exit(3)
        return NotebookResult("graded", seconds=1.5)

    got = {}
    with pytest.raises(grading.NotebookCrashed) as crashed:
        for name, entry in grading.notebooks_graded(["a", "b", "c"], 2, grade_one, tmp_path):
            got[name] = entry
    assert sorted(got) == ["a", "c"] and all(e.seconds == 1.5 for e in got.values())
    if how == "raises":
        assert str(crashed.value) == "b: ValueError: nbgrader could not read the gradebook"
        assert "in grade_one" in crashed.value.trace  # where it was raised, in the child
    else:
        assert str(crashed.value) == "b: its grading process died"


def looping(nb, answer: str, name: str):
    """``nb`` with an answer that names its kernel process ``name`` (seen in the grader's /proc) and
    never ends, not even when interrupted; asleep, so the wait costs the test suite no CPU."""
    code = (
        "import ctypes, time\n"
        f"ctypes.CDLL(None).prctl(15, {name.encode()!r}, 0, 0, 0)  # PR_SET_NAME\n"
        "while True:\n    try:\n        time.sleep(1)\n    except BaseException:\n        pass\n"
    )
    return with_answer(nb, answer, code)


def named(name: str) -> int:
    """Processes of this machine called ``name``."""
    count = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            count += comm.read_text().strip() == name
    return count


@pytest.mark.slow
def test_the_student_budget_stops_every_notebook_running_at_once(tmp_path):
    """Both notebooks of a student loop at once; at the student's budget the run stops them both and
    no kernel of theirs is left, and the run still ends with a result that says so."""
    source, release = fixture.build_course(tmp_path)
    marker = f"cg-{secrets.token_hex(4)}"  # this test's kernels: a name no other test's process has
    folder = tmp_path / "downloads" / "stuck"
    folder.mkdir(parents=True)
    for nb, answer in (("ex12", "ex1_triple"), ("ex34", "ex3_scale")):
        good = solved(read(release / f"{nb}_tiny.ipynb"), read(source / f"{nb}_tiny.ipynb"))
        nbformat.write(looping(good, answer, marker), str(folder / f"{nb}_tiny.ipynb"))
    seen, stop = [], threading.Event()

    def watch() -> None:
        while not stop.wait(0.2):
            seen.append(named(marker))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        args = ["run", str(tmp_path / "downloads"), "--course-dir", str(tmp_path / "course")]
        args += ["--release", str(release), "--source", str(source), "--checks", str(CHECKS)]
        cli.main([*args, "--jobs", "1", "--notebook-jobs", "2", "--timeout", "300", "--student-timeout", "20"])
    finally:
        stop.set()
        watcher.join()
    assert max(seen) == 2, f"the two notebooks never looped at once: {seen}"
    deadline = time.monotonic() + WAIT_S
    while named(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert named(marker) == 0, "a kernel outlived the student's budget"
    results = results_from_dict(json.loads((tmp_path / "course" / "exports" / "results.json").read_text()))
    assert results["stuck"].error == "grading took longer than 20 s and was stopped"


@pytest.mark.slow
def test_a_notebook_whose_grading_dies_leaves_the_others_graded(tmp_path, monkeypatch):
    """One notebook's grading process dies (not its kernel: the grader's own child); the student's other
    notebook keeps its verdicts and scores, and the student's result says what was lost."""
    source, release = fixture.build_course(tmp_path)
    submission = tmp_path / "submission"
    submission.mkdir()
    for nb in ("ex12", "ex34"):
        good = solved(read(release / f"{nb}_tiny.ipynb"), read(source / f"{nb}_tiny.ipynb"))
        nbformat.write(good, str(submission / f"{nb}_tiny.ipynb"))
    template = grading.build_template(source, tmp_path / "work", timeout=30)
    real = grading.grade_notebook

    def dies_on_ex34(name: str, *args) -> NotebookResult:
        if name == "ex34_tiny":
            os._exit(3)
        return real(name, *args)

    monkeypatch.setattr(grading, "grade_notebook", dies_on_ex34)
    opts = grading.GradeOptions(jobs=1, notebook_jobs=2, feedback=False, checks_dir=str(CHECKS), kernel_start="fresh")
    result = grading.grade_student(
        "ann", submission, template, Assignment.load(release), opts, tmp_path / "work", set(), {}
    )
    assert result.error == "NotebookCrashed: ex34_tiny: its grading process died"
    assert list(result.notebooks) == ["ex12_tiny"] and result.notebooks["ex12_tiny"].status == "graded"
    tested = [c for c in result.scores["ex12_tiny"].values() if c.cell_type != "markdown"]
    assert sum(c.earned for c in tested) == FULL["ex1"] + FULL["ex2"]
