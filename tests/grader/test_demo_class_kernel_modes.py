"""The demo class graded with kernels started fresh, two notebooks of a student at once, scores exactly as
with kernels forked from the zygote, one notebook at a time.

Its own module (the fresh grading is the suite's longest step): it runs on one worker while another
grades the class with forked kernels for test_demo_class.py, and both read that grading (tests.harness.once)."""

from __future__ import annotations

import pytest

from tests.grader import demo


@pytest.mark.slow
def test_forked_and_fresh_kernels_and_notebooks_at_once_give_identical_scores_cell_by_cell(
    tmp_path_factory, tmp_path, capsys
):
    course = tmp_path / "course"
    # No feedback pages: they are rendered outside the kernels, from the scores compared here, and
    # the forked grading's pages are checked by test_demo_class.py.
    # Two notebooks of each student at once: their nbgrader steps take turns at the student's gradebook
    # (grading.notebooks_graded), which a race there would show here as a lost or doubled score.
    demo.grade(course, "fresh", "--no-feedback", "--notebook-jobs", "2")
    assert "2 notebooks of each at once" in capsys.readouterr().out
    forked_course = demo.graded_with_forked_kernels(tmp_path_factory)
    forked, fresh = demo.cell_scores(forked_course, "forked"), demo.cell_scores(course, "fresh")
    assert set(forked) == set(fresh) and len(forked) >= 24
    different = {
        (s, nb, cell): (forked[s][nb][cell], fresh[s].get(nb, {}).get(cell))
        for s in forked
        for nb in forked[s]
        for cell in forked[s][nb]
        if forked[s][nb][cell] != fresh[s].get(nb, {}).get(cell)
    }
    assert not different and forked == fresh, different
    review = [
        (course / "exports" / "needs_review.csv").read_text(),
        (forked_course / "exports" / "needs_review.csv").read_text(),
    ]
    assert review[0] == review[1]
