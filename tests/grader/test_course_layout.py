"""course.toml → Layout: where it is looked for, what it says, and what a grader is told when it is wrong."""

from __future__ import annotations

import pytest

from autograder import cli
from autograder.course import ENV_COURSE, CourseNotFound, Layout
from tests.conftest import LAYOUT, REPO


def write(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "course.toml").write_text(text)
    return folder


def test_this_checkout_is_a_course_whose_folders_exist():
    assert LAYOUT.root == REPO
    assert LAYOUT.source().is_dir() and LAYOUT.release().is_dir() and LAYOUT.lessons.is_dir()
    assert LAYOUT.checks.is_dir() and (LAYOUT.demo / "downloads").is_dir()


def test_folders_are_relative_to_the_file_and_the_first_assignment_is_the_default(tmp_path):
    root = write(tmp_path / "c", '[course]\nid = "c1"\nassignments = ["w1", "w2"]\nrelease = "out"\nwork = "grading"\n')
    layout = Layout.load(root / "course.toml")
    assert (layout.course_id, layout.assignment) == ("c1", "w1")
    assert layout.release() == root / "out" / "w1" and layout.release("w2") == root / "out" / "w2"
    assert layout.source("w2") == root / "source" / "w2"  # an unnamed folder keeps nbgrader's name
    assert layout.work == root / "grading"
    assert layout.checks is None and layout.demo is None


def test_found_in_the_working_folder_or_above_or_through_the_environment(tmp_path, monkeypatch):
    root = write(tmp_path / "course", '[course]\nid = "up"\nassignments = ["a"]\n')
    (root / "deep" / "er").mkdir(parents=True)
    monkeypatch.delenv(ENV_COURSE, raising=False)
    monkeypatch.chdir(root / "deep" / "er")
    assert Layout.load().root == root
    other = write(tmp_path / "other", '[course]\nid = "env"\nassignments = ["b"]\n')
    monkeypatch.setenv(ENV_COURSE, str(other))
    assert Layout.load().course_id == "env"
    assert Layout.load(root).course_id == "up"  # --course wins over the environment


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "no course.toml"),
        ('[course]\nid = "x"\n', "has no assignments"),
        ('[course]\nassignments = ["a"]\n', "has no id"),
        ("[course\nid = ", "cannot read"),
    ],
)
def test_a_missing_or_broken_course_file_says_what_to_do(tmp_path, monkeypatch, text, says):
    folder = tmp_path / "c"
    folder.mkdir()
    if text is not None:
        (folder / "course.toml").write_text(text)
    monkeypatch.delenv(ENV_COURSE, raising=False)
    with pytest.raises(CourseNotFound, match=says):
        Layout.load(folder)


def test_the_cli_stops_with_the_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ENV_COURSE, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        cli.main(["preflight"])
    assert "no course.toml" in str(stop.value) and "--course" in str(stop.value)
    empty = write(tmp_path / "empty", '[course]\nid = "e"\nassignments = ["a"]\n')
    with pytest.raises(SystemExit) as stop:
        cli.main(["preflight", "--course", str(empty)])
    assert "no release folder" in str(stop.value) and "make release" in str(stop.value)
