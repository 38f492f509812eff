"""The shared exercise suite is a plain module the test modules import: have pytest rewrite its asserts
too, so a failing shared check shows the values it compared."""

import pytest

pytest.register_assert_rewrite("tests.exercises.suite")
