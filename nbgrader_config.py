"""nbgrader configuration for `nbgrader …` run in this folder (formgrader, validate): the course id
and folders come from course.toml (read by autograder.course.Layout, as course-grade reads them); every
grading work folder lives under its work folder (autograder/ here) and is never committed (.gitignore)."""

import os
import sys

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)  # the `nbgrader` command does not put the course folder on the path
from autograder.course import Layout  # noqa: E402

course = Layout.load(ROOT)
c.CourseDirectory.root = ROOT
c.CourseDirectory.course_id = course.course_id
c.CourseDirectory.source_directory = course.source_folder
c.CourseDirectory.release_directory = course.release_folder
c.CourseDirectory.submitted_directory = f"{course.work_folder}/submitted"
c.CourseDirectory.autograded_directory = f"{course.work_folder}/autograded"
c.CourseDirectory.feedback_directory = f"{course.work_folder}/feedback"
c.CourseDirectory.solution_directory = f"{course.work_folder}/solution"
c.CourseDirectory.db_url = f"sqlite:///{course.work / 'gradebook.db'}"

# Torch imports and small models need more than the 30 s default on a 2-core CPU.
c.ExecutePreprocessor.timeout = 60
