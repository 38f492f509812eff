"""The kit's course facts live in course.toml alone: the real assignment, copied under another name
into another course (another id, other folders), is graded by an *installed* course-grade with no
code change — run from outside the checkout, which is not on its path."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import LAYOUT, REPO
from tools.nbgrader_course import read, solved

pytestmark = pytest.mark.slow
OTHER_ID, OTHER_ASSIGNMENT = "other-course", "week08"
FACTS = f"""[course]
id = "{OTHER_ID}"
assignments = ["{OTHER_ASSIGNMENT}"]
source = "instructor"
release = "handout"
work = "grading"
checks = "hidden_checks"
"""


def _run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{cmd[:4]} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def other_course(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("other")
    course = tmp / "course"
    shutil.copytree(
        LAYOUT.source(), course / "instructor" / OTHER_ASSIGNMENT, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    shutil.copytree(LAYOUT.checks, course / "hidden_checks", ignore=shutil.ignore_patterns("__pycache__"))
    (course / "course.toml").write_text(FACTS)
    # the package as a grader installs it, into a folder of its own (no checkout on the path)
    site = tmp / "site"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(REPO),
        ],
        tmp,
        dict(os.environ, PIP_NO_INDEX="1"),
    )
    shutil.rmtree(REPO / "build", ignore_errors=True)  # setuptools' build folder in the checkout
    for egg in REPO.glob("*.egg-info"):
        shutil.rmtree(egg, ignore_errors=True)
    dev = dict(os.environ, PYTHONPATH=str(REPO))
    _run([sys.executable, "-m", "tools.make_release", "--course", str(course)], REPO, dev)
    downloads = tmp / "downloads"
    names = sorted(p.name for p in (course / "handout" / OTHER_ASSIGNMENT).glob("*.ipynb"))
    for student, nb_of in (
        (
            "full",
            lambda n: solved(
                read(course / "handout" / OTHER_ASSIGNMENT / n), read(course / "instructor" / OTHER_ASSIGNMENT / n)
            ),
        ),
        ("blank", lambda n: read(course / "handout" / OTHER_ASSIGNMENT / n)),
    ):
        (downloads / student).mkdir(parents=True)
        for n in names:
            nbformat.write(nb_of(n), str(downloads / student / n))
    installed = dict(os.environ, PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    installed.pop("COURSE_GRADE_COURSE", None)
    where = _run([sys.executable, "-c", "import autograder; print(autograder.__file__)"], tmp, installed).stdout
    run = _run(
        [
            sys.executable,
            "-m",
            "autograder.cli",
            "run",
            str(downloads),
            "--course",
            str(course),
            "--jobs",
            "2",
            "--probe-seed",
            "other-course",
        ],
        tmp,
        installed,
    )
    return {"course": course, "installed_at": where.strip(), "out": run.stdout, "names": names}


def test_the_grader_ran_from_its_installed_copy(other_course):
    assert other_course["installed_at"].startswith(str(other_course["course"].parent / "site")), other_course


def test_the_other_assignment_is_graded_in_the_other_courses_folders(other_course):
    course = other_course["course"]
    grades = {r["student"]: r for r in csv.DictReader(open(course / "grading" / "exports" / "grades.csv"))}
    maxima = grades.pop("(max)")
    assert set(grades) == {"full", "blank"}, other_course["out"]
    exercises = [k for k in maxima if k.startswith("ex") and k[2:].isdigit()]
    assert len(exercises) == 8, maxima
    assert all(float(maxima[ex]) > 0 for ex in exercises), maxima
    assert {ex: float(grades["full"][ex]) for ex in exercises} == {ex: float(maxima[ex]) for ex in exercises}
    assert all(float(grades["blank"][ex]) == 0 for ex in exercises), grades["blank"]
    for name in other_course["names"]:
        assert (course / "grading" / "autograded" / "full" / OTHER_ASSIGNMENT / name).is_file()
        assert (course / "grading" / "feedback" / "full" / OTHER_ASSIGNMENT / name.replace(".ipynb", ".html")).is_file()


def test_nbgrader_files_the_grades_under_the_other_course_id(other_course):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{other_course['course'] / 'grading' / 'gradebook.db'}") as gb:
        assignment = gb.find_assignment(OTHER_ASSIGNMENT)
        assert assignment.course_id == OTHER_ID
        assert {s.student.id for s in assignment.submissions} == {"full", "blank"}
