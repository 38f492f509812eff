"""The grader's side of the course: nbgrader course folders, grading CLI, demo class."""

import sys

# jsonschema (nbformat's and nbgrader's validator) imports rfc3987_syntax where it is installed, only to
# check the "iri" string formats, and that import builds 38 lark grammars: a second of CPU at every start of
# course-grade, every grading process and every Dask task. Nothing here checks string formats (nbformat and
# nbgrader never pass jsonschema a format checker), so the grader's processes go without it: None in
# sys.modules makes that import fail, and jsonschema skips those two formats, as where it is not installed.
sys.modules.setdefault("rfc3987_syntax", None)
