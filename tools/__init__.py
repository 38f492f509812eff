"""Developer tools: make release, the benchmarks, the demo-class builder. They run inside the checkout
and read its course from course.toml (``LAYOUT``); the grader itself (autograder/) needs none of them."""

from pathlib import Path

from autograder.course import Layout

CHECKOUT = Path(__file__).resolve().parents[1]
LAYOUT = Layout.load(CHECKOUT)
