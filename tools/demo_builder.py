"""Build the demo class (course.toml's demo, tools/demo_class/): downloads as a grader receives them,
made from the real reference solutions (``nbgrader_course.solved``) plus deliberate mistakes, some repairable, some not.

    python -m tools.demo_builder          # rewrite tools/demo_class/ from release/ and source/
    python -m tools.demo_builder --check  # exit 1 if the committed demo class is out of date

Everything is derived from release/ and source/ at run time (notebooks, exercises, grade_ids), so
the class follows the exercises; expected.json says what the grader must conclude for each
student (checked by tests/grader/test_demo_class.py)."""

from __future__ import annotations

import argparse
import copy
import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.assignment import Assignment, ReleaseNotebook
from autograder.cells import grade_id_of
from tools import LAYOUT
from tools.nbgrader_course import read, solved

TARGET = LAYOUT.demo

SNOOP = """
# --- the student goes looking for the hidden tests and the gradebook ---
import os as _os
_found, _wrote = [], []
_start = _os.path.abspath(_os.path.join(_os.getcwd(), *[".."] * 4))
for _dir, _dirs, _files in _os.walk(_start):
    if _dir.count(_os.sep) - _start.count(_os.sep) >= 5 or len(_found) > 50:
        _dirs[:] = []
    for _f in _files:
        if _f == "gradebook.db":
            _found.append(_os.path.join(_dir, _f))
        elif _f.endswith(".ipynb"):
            try:
                with open(_os.path.join(_dir, _f), errors="ignore") as _fh:
                    if "BEGIN HIDDEN TESTS" in _fh.read():
                        _found.append(_os.path.join(_dir, _f))
            except OSError:
                pass
for _target in ("../../../gradebook.db", "../../../../gradebook.db"):
    try:
        with open(_target, "a") as _fh:
            _fh.write("pwned")
        _wrote.append(_target)
    except OSError:
        pass
print("looked for hidden tests and gradebooks, found:", _found[:5], "| wrote into:", _wrote)
"""


class Builder:
    def __init__(self, release: Path, source: Path):
        self.rel = Assignment.load(release, source)
        self.source = Path(source)
        self.files: dict[str, object] = {}
        self.expected: dict[str, dict] = {}

    # -- helpers -----------------------------------------------------------------------------
    def nb_of(self, exercise: int) -> ReleaseNotebook:
        return next(nb for nb in self.rel.notebooks.values() if exercise in nb.exercises)

    def good(self, name: str):
        rnb = self.rel.notebooks[name]
        return solved(copy.deepcopy(rnb.nb), read(self.source / rnb.filename))

    def tested_answer(self, exercise: int) -> str:
        """An answer cell of the exercise that a test cell right after it checks."""
        cells = self.nb_of(exercise).cells
        for a, b in zip(cells, cells[1:], strict=False):
            if a.kind == "answer" and b.kind == "test" and a.exercise == f"ex{exercise}":
                return a.grade_id
        return self.answers(exercise)[0]

    def answers(self, exercise: int) -> list[str]:
        return [c.grade_id for c in self.nb_of(exercise).cells if c.kind == "answer" and c.exercise == f"ex{exercise}"]

    def tests(self, exercise: int) -> list[str]:
        return [c.grade_id for c in self.nb_of(exercise).cells if c.kind == "test" and c.exercise == f"ex{exercise}"]

    @staticmethod
    def cell(nb, grade_id):
        return next(c for c in nb.cells if grade_id_of(c) == grade_id)

    def stub_out(self, nb, exercise: int):
        """The student did not do this exercise: its answer cells are back to the release stub."""
        rnb = self.nb_of(exercise)
        for gid in self.answers(exercise):
            self.cell(nb, gid).source = rnb.graded[gid].source
        return nb

    def all_good(self) -> dict:
        return {name: self.good(name) for name in self.rel.notebooks}

    def add(self, student: str, paths: dict, what: str, below=(), zero=(), review=False, why=()):
        for rel_path, nb in paths.items():
            self.files[rel_path] = nb
        exercises = [e for e in self.rel.exercises() if e != "other"]
        zero = set(zero)
        below = set(below) | zero
        self.expected[student] = {
            "what": what,
            "full": sorted(set(exercises) - below),
            "below": sorted(below),
            "zero": sorted(zero),
            "review": review,
            "why": list(why),
        }

    def exs_of(self, name: str) -> list[str]:
        return [f"ex{n}" for n in sorted(self.rel.notebooks[name].exercises)]

    # -- the class ---------------------------------------------------------------------------
    def build(self) -> None:
        names = list(self.rel.notebooks)
        first, second = names[0], names[1 % len(names)]
        last = names[-1]
        ex_numbers = sorted(n for nb in self.rel.notebooks.values() for n in nb.exercises)

        def folder(student, nbs, rename=lambda n: f"{n}.ipynb"):
            return {f"{student}/{rename(n)}": nb for n, nb in nbs.items()}

        self.add("ada", folder("ada", self.all_good()), "reference solutions, one folder per student")
        lms = {f"Ben Okafor_40012_assignsubmission_file_{n}.ipynb": nb for n, nb in self.all_good().items()}
        self.add("ben_okafor", lms, "reference solutions, LMS export names")
        self.add(
            "chen",
            folder("chen", self.all_good(), lambda n: f"Copy of {n}.ipynb"),
            "reference solutions, Colab 'Copy of' names",
        )
        self.add(
            "dana",
            {
                f"dana_ex{''.join(map(str, sorted(self.rel.notebooks[n].exercises)))}.ipynb": nb
                for n, nb in self.all_good().items()
            },
            "reference solutions, short 'dana_ex12' names",
        )
        self.add(
            "yuri",
            folder("yuri", self.all_good(), lambda n: f"{n} (1).ipynb"),
            "reference solutions, browser '(1)' names",
        )

        # unfinished work: realistic partial credit
        for student, exercises in (
            ("eli", [ex_numbers[1]]),
            ("fay", [ex_numbers[3], ex_numbers[5 % len(ex_numbers)]]),
            ("gus", [ex_numbers[-1]]),
            ("zoe", [ex_numbers[0], ex_numbers[-2]]),
        ):
            nbs = self.all_good()
            for e in exercises:
                self.stub_out(nbs[self.nb_of(e).name], e)
            self.add(
                student,
                folder(student, nbs),
                f"did not do exercise(s) {exercises}",
                below=[f"ex{e}" for e in exercises],
            )
        nbs = self.all_good()
        self.add(
            "hana",
            folder("hana", {n: nbs[n] for n in names[:2]}),
            "submitted only the first two notebooks",
            zero=[e for n in names[2:] for e in self.exs_of(n)],
        )
        self.add(
            "ivan",
            folder("ivan", {n: copy.deepcopy(self.rel.notebooks[n].nb) for n in names}),
            "the untouched release",
            zero=[e for n in names for e in self.exs_of(n)],
        )

        # structural damage that preflight repairs
        nbs = self.all_good()
        for nb in nbs.values():
            for c in nb.cells:
                c.metadata = {}
                c.pop("id", None)
            nb.nbformat_minor = 4
        self.add("jo", folder("jo", nbs), "Colab export: every cell's metadata and id stripped (repaired)")
        nbs = self.all_good()
        e = min(self.rel.notebooks[second].exercises)
        nbs[second].cells.remove(self.cell(nbs[second], self.tests(e)[0]))
        for c in nbs[second].cells:
            c.metadata.pop("deletable", None)
        third = names[2 % len(names)]
        e3 = min(self.rel.notebooks[third].exercises)
        answer = self.cell(nbs[third], self.answers(e3)[0])
        nbs[third].cells[nbs[third].cells.index(answer)] = nbformat.v4.new_markdown_cell(
            answer.source, metadata=answer.metadata, id=answer.id
        )
        self.add("kai", folder("kai", nbs), "deleted a test cell, turned an answer cell into markdown (repaired)")
        nbs = self.all_good()
        e1 = min(self.rel.notebooks[first].exercises)
        for gid in (self.answers(e1)[0], self.tests(e1)[0]):
            c = self.cell(nbs[first], gid)
            dup = copy.deepcopy(c)
            dup["id"] = c.id + "-copy"
            nbs[first].cells.insert(nbs[first].cells.index(c) + 1, dup)
        self.add("lea", folder("lea", nbs), "duplicated graded cells (stock nbgrader aborts the batch; repaired)")

        # damage that needs a human
        nbs = self.all_good()
        e_last = max(self.rel.notebooks[last].exercises)
        gid = self.tested_answer(e_last)
        nbs[last].cells.remove(self.cell(nbs[last], gid))
        self.add(
            "max",
            folder("max", nbs),
            f"deleted the answer cell {gid}",
            below=[f"ex{e_last}"],
            review=True,
            why=["deleted"],
        )
        nbs = self.all_good()
        c = self.cell(nbs[first], self.answers(e1)[0])
        c.source = c.source + "\n\nthis line is not python\n"
        self.add("nia", folder("nia", nbs), "a syntax error in an answer", below=[f"ex{e1}"])
        nbs = self.all_good()
        c = self.cell(nbs[third], self.answers(e3)[0])
        c.source = "import os\nos._exit(1)  # the kernel dies here\n\n" + c.source
        self.add(
            "omar",
            folder("omar", nbs),
            "the kernel dies (os._exit) in one notebook",
            zero=self.exs_of(third),
            review=True,
            why=["kernel died"],
        )
        nbs = self.all_good()
        e2 = min(self.rel.notebooks[second].exercises)
        c = self.cell(nbs[second], self.answers(e2)[0])
        c.source = "while True:  # an infinite loop before the answer\n    pass\n\n" + c.source
        self.add(
            "pia",
            folder("pia", nbs),
            "an infinite loop in an answer cell (stopped by the cell timeout)",
            below=[f"ex{e2}"],
            why=["timeout"],
        )
        nbs = self.all_good()
        c = self.cell(nbs[second], self.answers(max(self.rel.notebooks[second].exercises))[0])
        c.source = "_hoard = bytearray(2**40)  # a terabyte\n\n" + c.source
        self.add(
            "quinn",
            folder("quinn", nbs),
            "a huge allocation (MemoryError under the kernel's memory cap)",
            below=[f"ex{max(self.rel.notebooks[second].exercises)}"],
            why=["memory"],
        )
        nbs = self.all_good()
        e_t = max(self.rel.notebooks[third].exercises)
        self.stub_out(nbs[third], e_t)
        c = self.cell(nbs[third], self.answers(e_t)[0])
        c.source = (
            "import torch\ntorch.allclose = lambda *args, **kwargs: True\n"
            "torch.Tensor.tolist = lambda self: []\n\n" + c.source
        )
        self.add(
            "rosa",
            folder("rosa", nbs),
            "replaces torch.allclose and a torch.Tensor method (gains nothing, flagged)",
            zero=[f"ex{e_t}"],
            review=True,
            why=["tamper"],
        )
        nbs = self.all_good()
        c = self.cell(nbs[first], self.answers(e1)[0])
        c.source = c.source + "\n" + SNOOP
        self.add("sam", folder("sam", nbs), "reads around for source/ and writes the gradebook (sees nothing)")
        nbs = self.all_good()
        c = self.cell(nbs[first], self.answers(e1)[0])
        c.source = (
            "import sys\nimport warnings\nprint('debug: starting', file=sys.stderr)\n"
            "warnings.warn('a deprecation warning from my code', DeprecationWarning)\n\n" + c.source
        )
        self.add("tess", folder("tess", nbs), "prints to stderr and warns in an answer cell (no effect)")
        nbs = self.all_good()
        self.stub_out(nbs[first], e1)
        for gid in self.tests(e1):
            self.cell(nbs[first], gid).source = "# the tests were in my way\npass"
        self.add(
            "uma",
            folder("uma", nbs),
            "edited the public tests away, answers not done (nbgrader runs the real ones)",
            below=[f"ex{e1}"],
        )
        nbs = self.all_good()
        empty = nbformat.v4.new_notebook()
        self.add(
            "vic",
            {**folder("vic", {n: nbs[n] for n in names[:-1]}), f"vic/{last}.ipynb": empty},
            "an empty notebook",
            zero=self.exs_of(last),
            review=True,
            why=["empty notebook"],
        )
        self.add(
            "will",
            {
                **folder("will", self.all_good()),
                "will/answers.pdf": b"%PDF-1.4 demo",
                "will/helpers.py": b"def helper():\n    return 1\n",
            },
            "reference solutions plus files that are not notebooks (reported for a look)",
            review=True,
            why=["not a notebook"],
        )
        lesson = nbformat.v4.new_notebook(
            cells=[  # fixed ids: the build must be reproducible
                nbformat.v4.new_markdown_cell("# My notes on skip connections", id="notes-title"),
                nbformat.v4.new_code_cell("print('hello')", id="notes-code"),
            ]
        )
        nbs = self.all_good()
        self.add(
            "xena",
            {**folder("xena", {n: nbs[n] for n in names[1:]}), "xena/my_lesson_notes.ipynb": lesson},
            "sent lesson notes instead of the first notebook (not placed)",
            zero=self.exs_of(first),
            review=True,
            why=["could not tell"],
        )

    def write(self, target: Path) -> None:
        downloads = target / "downloads"
        if downloads.exists():
            shutil.rmtree(downloads)
        for rel_path, nb in sorted(self.files.items()):
            path = downloads / rel_path
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(nb, bytes):
                path.write_bytes(nb)
            else:
                path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        (target / "expected.json").write_text(json.dumps(self.expected, indent=1, sort_keys=True) + "\n")
        lines = [
            "# Demo class (generated: `python -m tools.demo_builder`; do not edit by hand)",
            "",
            "Downloads as a grader receives them, built from the reference solutions in source/ plus",
            "deliberate mistakes. Grade them with `make grade-demo` (= `course-grade demo`).",
            "",
            "| student | what was done | grader must conclude |",
            "|---|---|---|",
        ]
        for student, e in sorted(self.expected.items()):
            outcome = ", ".join(
                filter(
                    None,
                    [
                        "full marks" if not e["below"] else "",
                        f"loses points on {', '.join(e['below'])}" if e["below"] else "",
                        f"0 on {', '.join(e['zero'])}" if e["zero"] else "",
                        "needs review" if e["review"] else "",
                    ],
                )
            )
            lines.append(f"| {student} | {e['what']} | {outcome} |")
        (target / "README.md").write_text("\n".join(lines) + "\n")


def build(target: Path = TARGET, release: Path | None = None, source: Path | None = None) -> Path:
    b = Builder(release or LAYOUT.release(), source or LAYOUT.source())
    b.build()
    target.mkdir(parents=True, exist_ok=True)
    b.write(target)
    return target


def differences(committed: Path = TARGET) -> list[str]:
    """Files that differ between the committed demo class and a fresh build."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp) / "demo_class")
        out = []
        for base in (fresh, committed):
            other = committed if base == fresh else fresh
            for path in sorted(p for p in base.rglob("*") if p.is_file()):
                rel = path.relative_to(base)
                if not (other / rel).exists():
                    out.append(f"{rel}: only in the {'fresh build' if base == fresh else 'committed class'}")
                elif base == fresh and not filecmp.cmp(path, other / rel, shallow=False):
                    out.append(f"{rel}: differs")
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tools.demo_builder", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--check", action="store_true", help="only compare with the committed class")
    args = ap.parse_args(argv)
    if args.check:
        diff = differences()
        for line in diff:
            print(line)
        print(
            "demo class is up to date" if not diff else "demo class is OUT OF DATE: run `python -m tools.demo_builder`"
        )
        return 1 if diff else 0
    target = build()
    students = json.loads((target / "expected.json").read_text())
    print(
        f"wrote {target}: {len(students)} students, "
        f"{sum(1 for p in (target / 'downloads').rglob('*') if p.is_file())} files"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
