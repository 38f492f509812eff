"""The grader's side of the course: nbgrader course folders, grading CLI, demo class."""
