"""The checks every exercise notebook gets, written once; each test module holds one notebook's case.

A test module declares its notebook as data (a `Case`: the notebook, the autograded points of each
exercise, its banks of single mistakes and of differently written correct answers) and runs the shared
checks by subclassing `ExerciseSuite`::

    class TestNotebook(ExerciseSuite):
        case = CASE

Checks only one notebook has stay beside its case as plain test functions. One module per notebook
keeps `make test` (`--dist loadfile`) spreading the four notebooks over the workers.

Every variant is a student who submits only this notebook: the reference answers, the untouched
release, wrong answers (small edits of the reference, each one single mistake, stated with the
autograded cells it must cost) and correct answers written differently. The two exercises of a notebook
share no code, so each wrong-answer run carries one mistake of each exercise while both banks last (the
longer bank's rest runs alone); alternatives are paired the same way. A run's student name seeds the
hidden checks' random cases, so it is part of what a run checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import zip_longest

import nbformat
import pytest

from autograder import probes
from autograder.cells import grade_id_of
from autograder.cells import points as cell_points
from tests.exercises import submissions
from tests.harness.grading import (
    SOURCE,
    GradingRun,
    autograded_ids,
    lost,
    reference_submission,
    release_nb,
    source_nb,
    total,
)
from tests.harness.probing import ProbeKernels

EXERCISE_POINTS = 10  # every exercise: autograded cells plus its hand-graded written answers
MIN_ALTERNATIVES = 3  # differently written correct answers per exercise
GRADING_ENV = {"NBGRADER_EXECUTION": "autograde"}  # what nbgrader's autograde gives a kernel: demos skip
GRADING_SWITCH = 'GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))'

Answers = dict[str, str]  # {grade_id: the answer cell's source}
Bank = dict[str, tuple[Answers, set[str]]]  # {mistake: (answers, the autograded cells that must lose points)}


@dataclass(frozen=True)
class Case:
    """One exercise notebook, as data. Exercises are keyed "ex<N>", in the notebook's order."""

    notebook: str  # file name in source/ and release/
    autograded_points: dict[str, float]  # {exercise: points of its autograded cells}
    secret_lines_over: int  # fewer distinctive secret lines: the leak check is vacuous
    wrong: dict[str, Bank]  # {exercise: its bank of single mistakes}
    alternatives: dict[str, dict[str, Answers]]  # {exercise: {name: correct answers written differently}}
    demo: tuple[str, str] | None = field(default=None)  # (cell id, what it prints) of a demo skipped in grading

    def __post_init__(self):
        assert list(self.wrong) == list(self.alternatives) == list(self.autograded_points), self.notebook

    @property
    def stem(self) -> str:
        return self.notebook.removesuffix(".ipynb")

    @property
    def digits(self) -> str:
        """ "12" for exercises ex1 and ex2: the pattern submissions.naming_problems expects."""
        return "".join(exercise.removeprefix("ex") for exercise in self.autograded_points)

    def runs(self, banks: dict[str, dict]) -> list:
        """One pytest.param per run: the i-th entry of each exercise's bank (None once a bank is spent)."""
        return [pytest.param(names, id="+".join(n or "-" for n in names)) for names in zip_longest(*banks.values())]

    def wrong_answers(self, names) -> tuple[Answers, set[str]]:
        answers, expected = {}, set()
        for bank, name in zip(self.wrong.values(), names, strict=True):
            if name:
                answers.update(bank[name][0])
                expected |= bank[name][1]
        return answers, expected

    def alternative_answers(self, names) -> Answers:
        answers = {}
        for bank, name in zip(self.alternatives.values(), names, strict=True):
            answers.update(bank.get(name, {}))
        return answers


def student(kind: str, names) -> str:
    """The student a run grades: named after its last exercise's entry, as the runs always were."""
    return f"{kind}-{next(n for n in reversed(names) if n)}"


class ExerciseSuite:
    """The shared checks; a subclass sets `case`."""

    case: Case

    def pytest_generate_tests(self, metafunc):
        if "wrong_run" in metafunc.fixturenames:
            metafunc.parametrize("wrong_run", self.case.runs(self.case.wrong))
        if "alternative_run" in metafunc.fixturenames:
            metafunc.parametrize("alternative_run", self.case.runs(self.case.alternatives))

    @pytest.fixture(scope="class")
    @classmethod
    def grading_run(cls, tmp_path_factory) -> Iterator[GradingRun]:
        # one zygote per notebook: its variants' kernels are forked from it into the grader's box
        with ProbeKernels() as kernels:
            yield GradingRun(tmp_path_factory.mktemp(f"{cls.case.stem}_course"), kernels)

    @pytest.fixture
    def grading(self, grading_run, monkeypatch) -> GradingRun:
        # the kernels inherit these, as under nbgrader's autograde: a demo is skipped, torch runs on one thread
        for name, value in GRADING_ENV.items():
            monkeypatch.setenv(name, value)
        return grading_run

    # ------------------------------------------------------------------------- static checks (fast)

    def test_each_exercise_is_worth_ten_points(self):
        expected = dict.fromkeys(self.case.autograded_points, EXERCISE_POINTS)
        assert submissions.points_per_exercise(source_nb(self.case.notebook)) == expected

    def test_graded_cells_follow_the_naming_and_have_stable_ids(self):
        assert not submissions.naming_problems(source_nb(self.case.notebook), self.case.digits)

    def test_release_holds_no_solution_and_no_hidden_test(self):
        # the hidden tests left the notebook for autograder/checks: what is left to find is the solutions
        # and the model written answers, so the guard asks for more than the case's floor
        name = self.case.notebook
        secrets = submissions.secret_lines(source_nb(name))
        assert len(secrets) > self.case.secret_lines_over, "too few distinctive lines found: the check would be vacuous"
        assert not submissions.leaks(release_nb(name), secrets), "release/ shows solution or hidden-test text"
        assert not submissions.stub_problems(release_nb(name)), "release/ answer cells must be blank stubs"

    def test_source_holds_no_hidden_test_block(self):
        assert not any("HIDDEN TESTS" in c.source for c in source_nb(self.case.notebook).cells)

    def test_every_autograded_cell_has_a_hidden_check(self):
        assert set(probes.checks_for(self.case.stem)) == autograded_ids(self.case.notebook)

    def test_largest_cost_of_one_single_mistake_is_below_each_exercise_total(self, capsys):
        worth = {
            grade_id_of(c): cell_points(c)
            for c in source_nb(self.case.notebook).cells
            if grade_id_of(c) in autograded_ids(self.case.notebook)
        }
        for exercise, bank in self.case.wrong.items():
            autograded = sum(p for gid, p in worth.items() if gid.startswith(exercise + "_"))
            costs = {mistake: sum(worth[gid] for gid in cells) for mistake, (_, cells) in bank.items()}
            assert costs, f"{exercise} has no single-mistake bank"
            worst = max(costs, key=costs.get)
            with capsys.disabled():
                print(
                    f"\n{exercise}: one single mistake costs at most {costs[worst]:g} of {autograded:g} "
                    f"autograded points ({worst})"
                )
            assert costs[worst] < autograded

    def test_each_exercise_has_three_differently_written_correct_answers(self):
        sizes = {exercise: len(bank) for exercise, bank in self.case.alternatives.items()}
        assert min(sizes.values()) >= MIN_ALTERNATIVES, sizes

    # ------------------------------------------------------------------------- graded runs (slow)

    @pytest.mark.slow
    def test_variants_run_in_a_grading_kernel(self, grading):
        """What the notebooks rely on while graded holds in the harness's kernels: NBGRADER_EXECUTION
        (their GRADING switch), an empty working folder of their own; and, where the box runs, the
        grader's box (no view of source/) and a kernel forked from this notebook's zygote."""
        probe = (
            "import json, os\n"
            "print(json.dumps({'execution': os.environ.get('NBGRADER_EXECUTION'), 'cwd': os.listdir('.'),\n"
            f"  'source': os.path.exists({str(SOURCE)!r})}}))"
        )
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
        forked = grading.kernels.run(nb, 60)
        seen = json.loads(nb.cells[0].outputs[0]["text"])
        assert seen["execution"] == GRADING_ENV["NBGRADER_EXECUTION"] and seen["cwd"] == [], seen
        if grading.kernels.boxed:
            assert not seen["source"], "the box shows source/"
        assert forked == (grading.kernels.zygote is not None), grading.kernels.mode

    @pytest.mark.slow
    def test_reference_answers_score_full_marks(self, grading):
        name = self.case.notebook
        scores = grading.grade("reference", name, reference_submission(name))
        graded = autograded_ids(name)
        assert graded <= set(scores)
        assert not lost({g: scores[g] for g in graded}), f"reference lost points: {scores} {grading.verdicts}"
        per_exercise = {
            exercise: sum(scores[g].max_score for g in graded if g.startswith(exercise + "_"))
            for exercise in self.case.autograded_points
        }
        assert per_exercise == self.case.autograded_points  # the rest of each exercise's points: by hand
        assert sum(scores[g].max_score for g in graded) == sum(self.case.autograded_points.values())

    @pytest.mark.slow
    def test_untouched_release_scores_zero_without_crashing(self, grading):
        name = self.case.notebook
        scores = grading.grade("blank", name, release_nb(name))
        assert autograded_ids(name) <= set(scores), "every test cell must be graded even when nothing is answered"
        assert total(scores)[0] == 0, f"blank notebook scored points: {scores}"

    @pytest.mark.slow
    def test_wrong_answers_lose_points_on_their_own_cells(self, grading, wrong_run):
        name = self.case.notebook
        answers, expected = self.case.wrong_answers(wrong_run)
        scores = grading.grade(student("wrong", wrong_run), name, submissions.submission(name, answers))
        got = lost(scores) & autograded_ids(name)
        messages = {gid: v.message for gid, v in grading.verdicts.items() if not v.passed}
        runs = " + ".join(n or "-" for n in wrong_run)
        assert got == expected, f"{runs}: lost {sorted(got)}, expected {sorted(expected)}: {messages}"

    @pytest.mark.slow
    def test_differently_written_correct_answers_score_full_marks(self, grading, alternative_run):
        name = self.case.notebook
        answers = self.case.alternative_answers(alternative_run)
        scores = grading.grade(student("alt", alternative_run), name, submissions.submission(name, answers))
        messages = {gid: v.message for gid, v in grading.verdicts.items() if not v.passed}
        runs = " + ".join(n or "-" for n in alternative_run)
        assert not lost(scores) & autograded_ids(name), f"{runs} lost points: {messages}"


class DemoSuite:
    """For a notebook with a demo (`case.demo`): the demo is skipped while nbgrader grades it."""

    case: Case

    def test_the_demo_is_skipped_while_grading(self):
        cells = {c.get("id"): c.source for c in source_nb(self.case.notebook).cells}
        demo, notice = self.case.demo
        assert GRADING_SWITCH in cells[f"ex{self.case.digits}_setup"]
        assert cells[demo].splitlines()[2:4] == ["if GRADING:", f'    print("{notice}")'], (
            f"{demo} must be guarded by GRADING"
        )
