"""The bad (and good) submissions of the tiny fixture assignment, written as a grader receives them:
student folders, flat "alice_ex2.ipynb" names, LMS prefixes, Colab copies, stray files.

``EXPECTED[student]`` is the outcome the grader must produce: autograded points per exercise
(ex1 2, ex2 3, ex3 2, ex4 3 at most), whether a human must look, and words the reason must contain."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import nbformat

from tools.nbgrader_course import read, solved, with_answer

FULL = {"ex1": 2, "ex2": 3, "ex3": 2, "ex4": 3}


def _expect(review=False, why=(), **scores):
    out = dict(FULL)
    out.update(scores)
    return {"scores": out, "review": review, "why": tuple(why)}


EXPECTED = {
    "good": _expect(review=True, why=("notes.txt", "not a notebook")),
    "blank": _expect(ex1=0, ex2=0, ex3=0, ex4=0),
    "loop": _expect(ex1=0, why=("timeout",)),
    "stubborn": _expect(ex1=0, ex2=0, review=True, why=("ex12_tiny", "timeout")),
    "crash": _expect(ex3=0, ex4=0, review=True, why=("kernel died",)),
    "hog": _expect(ex4=0, why=("memory",)),
    "syntax": _expect(ex2=0),
    "deleted": _expect(ex1=0, review=True, why=("ex1_triple", "deleted")),
    "duplicated": _expect(),
    "retyped": _expect(),
    "stripped": _expect(),
    "noisy": _expect(),
    "lms_student": _expect(),
    "empty": _expect(ex1=0, ex2=0, ex3=0, ex4=0, review=True, why=("empty notebook", "0 bytes")),
    "edits_tests": _expect(ex1=0),
    # tampering gains nothing (the verdicts are decided outside the kernel) and is flagged for a
    # human; the student's correct answers keep their points
    "tamper": _expect(ex3=0, review=True, why=("torch.allclose", "tampering")),
    "sneaky": _expect(ex3=0, review=True, why=("torch.allclose was replaced",)),
    "builtins": _expect(ex2=0, review=True, why=("builtin `type`",)),
    "custom_exc": _expect(ex1=0, review=True, why=("set_custom_exc",)),
    "snoop": _expect(),
}
# Students that submit only one notebook score 0 on the other one.
ONLY = {
    "syntax": "ex12",
    "retyped": "ex12",
    "edits_tests": "ex12",
    "custom_exc": "ex12",
    "sneaky": "ex34",
    "builtins": "ex12",
    "hog": "ex34",
}
for _student, _nb in ONLY.items():
    for _ex in ("ex3", "ex4") if _nb == "ex12" else ("ex1", "ex2"):
        EXPECTED[_student]["scores"][_ex] = 0


class Class:
    """Writes every student's downloads into ``folder``."""

    def __init__(self, folder: Path, release: Path, source: Path, secrets: dict[str, str]):
        self.folder = Path(folder)
        self.release, self.source = Path(release), Path(source)
        self.secrets = secrets  # absolute paths the snooping student goes after

    def blank(self, nb):
        return read(self.release / f"{nb}_tiny.ipynb")

    def good(self, nb):
        return solved(self.blank(nb), read(self.source / f"{nb}_tiny.ipynb"))

    def write(self, rel: str, nb=None, *, text: str | None = None, mtime: float | None = None):
        path = self.folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            path.write_text(text)
        else:
            nbformat.write(nb, str(path))
        if mtime:
            os.utime(path, (mtime, mtime))

    def build(self) -> None:
        now = time.time()
        w = self.write
        w("good/ex12_tiny.ipynb", self.good("ex12"))
        w("good/ex34_tiny.ipynb", self.good("ex34"))
        w("good/notes.txt", text="my notes, not a notebook")
        w("README.pdf", text="%PDF-1.4 not a notebook")
        w("blank_ex12_tiny.ipynb", self.blank("ex12"))
        w("blank_ex34_tiny.ipynb", self.blank("ex34"))

        # infinite loop inside the function: every test calling it runs into the per-cell timeout
        w(
            "loop/ex12_tiny.ipynb",
            with_answer(self.good("ex12"), "ex1_triple", "def triple(x):\n    while True:\n        pass"),
        )
        w("loop/ex34_tiny.ipynb", self.good("ex34"))
        # a loop that swallows the interrupt: the notebook cannot finish, the other one is graded
        w(
            "stubborn/ex12_tiny.ipynb",
            with_answer(
                self.good("ex12"),
                "ex1_triple",
                "def triple(x):\n    return 3 * x\n\nwhile True:\n    try:\n        while True:\n            pass\n"
                "    except BaseException:\n        pass",
            ),
        )
        w("stubborn/ex34_tiny.ipynb", self.good("ex34"))
        # the kernel dies: only this notebook is lost
        w("crash/ex12_tiny.ipynb", self.good("ex12"))
        w(
            "crash/ex34_tiny.ipynb",
            with_answer(self.good("ex34"), "ex3_scale", "import os\nos._exit(1)\n\ndef scale(t, k):\n    return t * k"),
        )
        # allocates until the kernel's memory cap: a MemoryError in the test, not a dead machine
        w(
            "hog/ex34_tiny.ipynb",
            with_answer(
                self.good("ex34"),
                "ex4_count_positive",
                "def count_positive(t):\n    hoard = []\n    while True:\n        hoard.append(bytearray(2**28))",
            ),
        )
        w(
            "syntax_ex12_tiny.ipynb",
            with_answer(self.good("ex12"), "ex2_count_even", "def count_even(values)\n    return 0"),
        )
        self._structural()
        self._noise_and_names(now)
        self._cheats()

    def _structural(self):
        w = self.write
        nb = self.good("ex12")
        nb.cells = [c for c in nb.cells if c.get("id") not in ("ex1_triple", "ex2_test_count_even")]
        for c in nb.cells:
            c.metadata.pop("deletable", None)  # Colab drops it, so cells can be deleted
        w("deleted/ex12_tiny.ipynb", nb)
        w("deleted/ex34_tiny.ipynb", self.good("ex34"))

        nb = self.good("ex12")
        i = next(i for i, c in enumerate(nb.cells) if c.get("id") == "ex1_triple")
        nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
        nb34 = self.good("ex34")
        j = next(i for i, c in enumerate(nb34.cells) if c.get("id") == "ex3_test_scale")
        nb34.cells.insert(j, copy.deepcopy(nb34.cells[j]))
        for c in nb.cells + nb34.cells:
            c.pop("id", None)
        nb.nbformat_minor = nb34.nbformat_minor = 4
        w("duplicated/ex12_tiny.ipynb", nb)
        w("duplicated/ex34_tiny.ipynb", nb34)

        nb = self.good("ex12")
        cell = next(c for c in nb.cells if c.get("id") == "ex2_count_even")
        idx = nb.cells.index(cell)
        nb.cells[idx] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata, id=cell.id)
        w("retyped/ex12_tiny.ipynb", nb)

        for nbname in ("ex12", "ex34"):
            nb = self.good(nbname)
            for c in nb.cells:  # what some tools and Colab exports do
                c.metadata = {}
                c.pop("id", None)
            nb.nbformat_minor = 4
            target = "stripped/Copy of ex12_tiny.ipynb" if nbname == "ex12" else "stripped/ex34_tiny (1).ipynb"
            w(target, nb)
        w("stripped/ex34_tiny.ipynb", self.blank("ex34"), mtime=time.time() - 3600)  # older download

    def _noise_and_names(self, now):
        w = self.write
        nb = with_answer(
            self.good("ex12"),
            "ex2_count_even",
            "import sys\nimport warnings\nwarnings.simplefilter('always')\n"
            "print('debugging output', file=sys.stderr)\n\n"
            "def count_even(values):\n"
            "    warnings.warn('count_even: values should be a list', UserWarning)\n"
            "    return sum(1 for v in values if v % 2 == 0)",
        )
        w("noisy/ex12_tiny.ipynb", nb)
        w("noisy/ex34_tiny.ipynb", self.good("ex34"))
        w("Lms Student_12345_assignsubmission_file_ex12_tiny.ipynb", self.good("ex12"))
        w("Lms Student_12345_assignsubmission_file_ex34_tiny.ipynb", self.good("ex34"))
        w("empty/ex12_tiny.ipynb", text=json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        w("empty/ex34_tiny.ipynb", text="")

    def _cheats(self):
        w = self.write
        nb = with_answer(self.good("ex12"), "ex1_triple", "def triple(x):\n    return 2 * x")
        for c in nb.cells:
            if c.get("id") == "ex1_test_triple":
                c.source = "pass  # the test was in my way"
        w("edits_tests/ex12_tiny.ipynb", nb)

        w("tamper/ex12_tiny.ipynb", self.good("ex12"))
        nb = with_answer(
            self.good("ex34"),
            "ex3_scale",
            "import torch\ntorch.allclose = lambda *a, **k: True\n"
            "torch.Tensor.tolist = lambda self: [-1.5, -1.5, -1.5]\n\n"
            "def scale(t, k):\n    return t + k",
        )
        w("tamper/ex34_tiny.ipynb", nb)

        w(
            "sneaky/ex34_tiny.ipynb",
            with_answer(
                self.good("ex34"),
                "ex3_scale",
                "_t = __import__('torch')\n_put = vars(__builtins__)['setattr'] if isinstance(__builtins__, dict) "
                "else __builtins__.setattr\n_put(_t, 'allclose', lambda *a, **k: True)\n\n"
                "def scale(t, k):\n    return t + k",
            ),
        )

        w(
            "builtins/ex12_tiny.ipynb",
            with_answer(
                self.good("ex12"),
                "ex2_count_even",
                "class _Anything(int):\n    def __eq__(self, other):\n        return True\n\n"
                "type = lambda obj: int\n\ndef count_even(values):\n    return _Anything(0)",
            ),
        )

        w(
            "custom_exc/ex12_tiny.ipynb",
            with_answer(
                self.good("ex12"),
                "ex1_triple",
                "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n\n"
                "def triple(x):\n    return x",
            ),
        )

        s = self.secrets
        snoop = (
            "import os\n\ndef triple(x):\n    return 3 * x\n\n"
            f"_places = {[s['repo'], s['course'], s['source'], s['downloads'], '/tmp']!r}\n"
            "_up = os.path.abspath(os.path.join(os.getcwd(), '..', '..'))\n"
            "_found, _leaked = [], False\n"
            "for _root in _places + [_up]:\n"
            "    for _dir, _dirs, _files in os.walk(_root):\n"
            "        for _f in _files:\n"
            "            _p = os.path.join(_dir, _f)\n"
            "            if _f.endswith(('.ipynb', '.db')):\n"
            "                _found.append(_p)\n"
            "                try:\n"
            "                    _leaked = _leaked or 'hidden_probe' in open(_p, errors='ignore').read()\n"
            "                except OSError:\n"
            "                    pass\n"
            "_wrote = []\n"
            f"for _target in [{s['gradebook']!r}, os.path.join(_up, '..', 'gradebook.db'), {s['victim']!r}]:\n"
            "    try:\n"
            "        with open(_target, 'a') as _fh:\n"
            "            _fh.write('pwned')\n"
            "        _wrote.append(_target)\n"
            "    except OSError:\n"
            "        pass\n"
            "print('SNOOP notebooks or gradebooks found:', len(_found), _found[:3])\n"
            "print('SNOOP saw hidden tests:', _leaked)\n"
            "print('SNOOP wrote:', _wrote)"
        )
        w("snoop/ex12_tiny.ipynb", with_answer(self.good("ex12"), "ex1_triple", snoop))
        w("snoop/ex34_tiny.ipynb", self.good("ex34"))
