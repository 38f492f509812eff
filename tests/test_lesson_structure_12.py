"""Lessons 1 and 2 follow the course's teaching conventions (issue 20), checked on the committed files:

- every "predict first" / "pause and predict" prompt is answered by a markdown cell whose source starts with
  ``<details>``, after the cell that resolves it and before the next prompt or section heading; an answer
  that quotes numbers says that a cell prints them (it never types a result that could go stale);
- every long helper cell (more than ``LONG_CELL_LINES`` lines, defining a function) is collapsed in
  JupyterLab (``metadata.jupyter.source_hidden``), starts with a ``#@title`` line for Colab, and has a
  one-line markdown summary right above it naming everything it defines. Cells a student should read are
  tagged ``student-reads``; the ``show_figure`` cell is shared verbatim by all four lessons and left as it is;
- the lesson ends with a markdown cell starting ``## References`` and then one starting
  ``## Where to go next``; the references give the papers behind the lesson's architectures, and every
  paper the lesson's text cites (``Name et al. (2016)``, ``Name & Name, 2015``, ``(Name, 2017)``) is listed
  with its year.

Each rule is a function returning a list of problems, shown failing on a planted fault at the end."""
from __future__ import annotations

import ast
import copy
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from tests.conftest import REPO

LESSON_1 = REPO / "notebooks" / "01_skip_connections.ipynb"
LESSON_2 = REPO / "notebooks" / "02_depthwise_separable.ipynb"
LESSONS = [LESSON_1, LESSON_2]
LONG_CELL_LINES = 20
PROMPT = re.compile(r"(?i)\b(?:pause and predict|predict first)\b")
# the papers behind each lesson's architectures: (surname, year) that its references must list
REQUIRED_PAPERS = {
    LESSON_1.name: [("He", "2016"), ("Ioffe", "2015")],
    LESSON_2.name: [("Howard", "2017"), ("Sandler", "2018"), ("Howard", "2019"), ("Hu", "2018"),
                    ("Chollet", "2017")],
}
CITATION = re.compile(
    r"\b([A-Z][\w-]+)(?: et al\.| & [A-Z][\w-]+),? \(?((?:19|20)\d\d)\b"   # He et al. (2016), Ioffe & Szegedy, 2015
    r"|\(([A-Z][\w-]+), ((?:19|20)\d\d)\)"                                 # (Chollet, 2017)
    r"|\b([A-Z][\w-]+) \(((?:19|20)\d\d)\)")                               # Chollet (2017)


def load(path: Path):
    return nbformat.read(str(path), as_version=4)


def is_heading(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith("#")


def is_answer(cell) -> bool:
    return cell.cell_type == "markdown" and cell.source.lstrip().startswith("<details>")


def prose(text: str) -> str:
    """Markdown without its formulas and code spans."""
    return re.sub(r"`[^`]*`", " ", re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S))


# --------------------------------------------------------------------------- the rules

def unanswered_prompts(nb) -> list[str]:
    problems = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown" or not PROMPT.search(cell.source):
            continue
        answer, code_between = None, False
        for later in cells[i + 1:]:
            if is_answer(later):
                answer = later
                break
            if is_heading(later) or (later.cell_type == "markdown" and PROMPT.search(later.source)):
                break
            code_between |= later.cell_type == "code"
        where = f"prompt in cell {cell.get('id')}"
        if answer is None:
            problems.append(f"{where}: no <details> answer before the next prompt or section heading")
            continue
        if not code_between:
            problems.append(f"{where}: its answer {answer.get('id')} comes before any cell that resolves it")
        if re.search(r"\d", prose(answer.source)) and "print" not in answer.source:
            problems.append(f"{where}: its answer {answer.get('id')} quotes numbers but does not say which cell "
                            f"prints them")
        if answer.source.count("<details>") != answer.source.count("</details>"):
            problems.append(f"{where}: its answer {answer.get('id')} does not close its <details>")
    return problems


def top_level_names(source: str) -> tuple[list[str], bool]:
    """Public names a cell defines (functions and classes) and whether it defines a function."""
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    return ([n.name for n in defs if not n.name.startswith("_")],
            any(isinstance(n, ast.FunctionDef) for n in defs))


def uncollapsed_helpers(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        hidden = cell.metadata.get("jupyter", {}).get("source_hidden") is True
        names, has_function = top_level_names(cell.source)
        long_helper = (len(cell.source.splitlines()) > LONG_CELL_LINES and has_function
                       and "student-reads" not in cell.metadata.get("tags", []))
        where = f"cell {cell.get('id')}"
        if long_helper and not hidden:
            problems.append(f"{where}: {len(cell.source.splitlines())} lines defining {names}: collapse it "
                            f"(metadata jupyter.source_hidden) or tag it 'student-reads'")
        if not (hidden or long_helper):
            continue
        if not cell.source.startswith("#@title "):
            problems.append(f"{where}: a collapsed helper starts with a '#@title <summary>' line for Colab")
        above = nb.cells[i - 1] if i else None
        summary = above.source.strip() if above is not None and above.cell_type == "markdown" else ""
        if not summary or "\n" in summary:
            problems.append(f"{where}: needs a one-line markdown summary right above it")
        else:
            missing = [name for name in names if name not in summary]
            if missing:
                problems.append(f"{where}: its summary does not name {missing}")
    return problems


def citations(text: str) -> set[tuple[str, str]]:
    found = set()
    for match in CITATION.finditer(text):
        groups = [g for g in match.groups() if g]
        found.add((groups[0], groups[1]))
    return found


def reference_problems(nb, required: list[tuple[str, str]]) -> list[str]:
    cells = nb.cells
    starts = [i for i, c in enumerate(cells) if c.cell_type == "markdown"
              and c.source.splitlines()[:1] == ["## References"]]
    if len(starts) != 1:
        return [f"expected one markdown cell whose first line is '## References', found {len(starts)}"]
    i = starts[0]
    problems = []
    following = cells[i + 1] if i + 1 < len(cells) else None
    if not (following is not None and following.cell_type == "markdown"
            and following.source.startswith("## Where to go next")):
        problems.append("the References cell must be followed by a markdown cell starting '## Where to go next'")
    elif i + 2 != len(cells):
        problems.append("References and Where to go next must be the last two cells of the lesson")
    entries = [ln for ln in cells[i].source.splitlines() if ln.startswith("- ")]
    joined = []  # one string per bullet, continuation lines included
    for line in cells[i].source.splitlines():
        if line.startswith("- "):
            joined.append(line)
        elif joined and line.startswith("  "):
            joined[-1] += " " + line.strip()
    if not entries:
        problems.append("the References cell lists no entries ('- ' bullets)")

    def listed(name, year):
        return any(re.search(rf"\b{re.escape(name)}\b", entry) and f"({year})" in entry for entry in joined)

    text = "\n".join(c.source for j, c in enumerate(cells) if c.cell_type == "markdown" and j != i)
    for name, year in sorted(citations(text) | set(required)):
        if not listed(name, year):
            problems.append(f"{name} ({year}) is cited or required but not in References")
    return problems


# --------------------------------------------------------------------------- the lessons follow them

@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_every_prediction_prompt_gets_a_details_answer(path):
    nb = load(path)
    assert any(PROMPT.search(c.source) for c in nb.cells if c.cell_type == "markdown"), "no prompt found at all"
    assert not unanswered_prompts(nb), "\n".join(unanswered_prompts(nb))


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_long_helper_cells_are_collapsed_titled_and_summarised(path):
    nb = load(path)
    assert any(c.metadata.get("jupyter", {}).get("source_hidden") for c in nb.cells), "no collapsed helper"
    assert not uncollapsed_helpers(nb), "\n".join(uncollapsed_helpers(nb))


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_ends_with_references_and_where_to_go_next(path):
    nb = load(path)
    problems = reference_problems(nb, REQUIRED_PAPERS[path.name])
    assert not problems, "\n".join(problems)


def test_citation_pattern_reads_the_usual_forms():
    text = ("He et al. (2016) showed it; BatchNorm (Ioffe & Szegedy, 2015); Xception, Chollet (2017); "
            "SENet (Hu et al., 2018); (Sifre, 2014). Around 2015 nothing; lesson 2 (2 s).")
    assert citations(text) == {("He", "2016"), ("Ioffe", "2015"), ("Chollet", "2017"), ("Hu", "2018"),
                               ("Sifre", "2014")}


# --------------------------------------------------------------------------- each rule fails on a planted fault

def planted(path, change):
    nb = copy.deepcopy(load(path))
    change(nb)
    return nb


def drop_cell(nb, predicate):
    nb.cells = [c for c in nb.cells if not predicate(c)]


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_prompt_rule_catches_a_missing_a_misplaced_and_a_typed_answer(path):
    first_answer = next(i for i, c in enumerate(load(path).cells) if is_answer(c)
                        and any(PROMPT.search(p.source) for p in load(path).cells[:i] if p.cell_type == "markdown"))

    def remove_answer(nb):
        del nb.cells[first_answer]

    def move_answer_up(nb):
        answer = nb.cells.pop(first_answer)
        prompt = max(i for i, c in enumerate(nb.cells[:first_answer]) if c.cell_type == "markdown"
                     and PROMPT.search(c.source))
        nb.cells.insert(prompt + 1, answer)

    def type_the_number(nb):
        nb.cells[first_answer].source = "<details><summary>Answer</summary>\n\nIt is 30.\n</details>"

    for fault in (remove_answer, move_answer_up, type_the_number):
        assert unanswered_prompts(planted(path, fault)), f"{fault.__name__} went unnoticed"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_helper_rule_catches_an_expanded_an_untitled_and_an_unsummarised_helper(path):
    hidden = next(i for i, c in enumerate(load(path).cells) if c.metadata.get("jupyter", {}).get("source_hidden"))

    def expand(nb):
        nb.cells[hidden].metadata.pop("jupyter")

    def untitle(nb):
        nb.cells[hidden].source = nb.cells[hidden].source.split("\n", 1)[1]

    def unsummarise(nb):
        del nb.cells[hidden - 1]

    def summary_forgets_a_name(nb):
        nb.cells[hidden].source += "\n\n\ndef a_new_helper():\n    return 1\n"

    def new_long_helper(nb):
        body = "".join(f"    x{i} = {i}\n" for i in range(LONG_CELL_LINES + 1))
        nb.cells.insert(2, new_code_cell(f"def long_helper():\n{body}    return 0\n"))

    for fault in (expand, untitle, unsummarise, summary_forgets_a_name, new_long_helper):
        assert uncollapsed_helpers(planted(path, fault)), f"{fault.__name__} went unnoticed"


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_reference_rule_catches_missing_sections_and_uncited_papers(path):
    def no_references(nb):
        drop_cell(nb, lambda c: c.source.startswith("## References"))

    def no_where_next(nb):
        drop_cell(nb, lambda c: c.source.startswith("## Where to go next"))

    def cite_a_new_paper(nb):
        nb.cells.insert(1, new_markdown_cell("As Srivastava et al. (2015) showed with highway networks."))

    def drop_a_required_paper(nb):
        refs = next(c for c in nb.cells if c.source.startswith("## References"))
        name, year = REQUIRED_PAPERS[path.name][0]
        refs.source = "\n".join(ln for ln in refs.source.splitlines() if f"({year})" not in ln or name not in ln)

    def references_not_at_the_end(nb):
        nb.cells.append(new_markdown_cell("## Appendix"))

    for fault in (no_references, no_where_next, cite_a_new_paper, drop_a_required_paper, references_not_at_the_end):
        assert reference_problems(planted(path, fault), REQUIRED_PAPERS[path.name]), f"{fault.__name__} went unnoticed"
