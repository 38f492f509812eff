"""Teaching conventions of lessons 3 and 4 (issue 20), checked on the committed notebooks:

- every "predict" prompt is answered: a markdown cell whose source starts with ``<details>`` follows it before
  the next prompt or section heading, and an answer that quotes a number says the cell above printed it;
- every long code cell that defines functions or classes is collapsed: metadata ``jupyter.source_hidden`` and a
  first line ``#@title <summary>`` (Colab's form title), with a one-line markdown summary above naming what it
  defines; cells tagged ``student-reads`` (an architecture, a rule or a loop the text teaches) stay visible, and the
  shared ``show-figure`` cell (identical in every lesson, see test_widget_drawing) is hidden without a title;
- a markdown cell whose first line is ``## References`` is followed by one starting ``## Where to go next``, at the
  end, and the references name every paper the lesson's text cites as "Author et al. (YEAR)" or "A & B, YEAR".

Each check is a function of a notebook, so ``test_each_check_fails_on_a_planted_fault`` can show it failing.
"""
from __future__ import annotations

import ast
import copy
import re

import nbformat
import pytest

from tests.conftest import REPO

LESSONS = [REPO / "notebooks" / "03_transfer_learning.ipynb", REPO / "notebooks" / "04_advanced_architectures.ipynb"]
LONG_CELL_LINES = 12
READS = "student-reads"
SHARED_FIGURE_CELL = "show-figure"
PROMPT = re.compile(r"\bpredict\b", re.I)
HEADING = re.compile(r"^#{1,3} ", re.M)
CITATION = re.compile(r"\b([A-Z][A-Za-z-]+)(?: et al\.| & [A-Z][A-Za-z-]+),? \(?((?:19|20)\d\d)\)?")


def load(path):
    return nbformat.read(str(path), as_version=4)


def unanswered_prompts(nb) -> list[str]:
    """Prompt cells (markdown mentioning predict) with no <details> answer before the next prompt or heading."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or not PROMPT.search(cell.source) or cell.source.startswith("<details>"):
            continue
        answered = False
        for later in nb.cells[i + 1:]:
            if later.cell_type == "markdown" and later.source.startswith("<details>"):
                answered = True
                break
            if later.cell_type == "markdown" and (PROMPT.search(later.source) or HEADING.search(later.source)):
                break
        if not answered:
            problems.append(f"cell {cell.get('id')}: {cell.source.strip().splitlines()[0][:70]}")
    return problems


def typed_numbers_in_answers(nb) -> list[str]:
    """Answers after a prompt that quote a decimal or a multi-digit count without pointing at the printing cell."""
    problems = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("<details><summary>Answer to the"):
            body = cell.source.split("</summary>", 1)[1]
            numbers = re.findall(r"(?<![\w.^{])\d[\d,]*\.\d+|(?<![\w^{])\d{1,3}(?:,\d{3})+", body)
            if numbers and "cell above prints" not in " ".join(body.split()):
                problems.append(f"cell {cell.get('id')}: typed {numbers}")
    return problems


def defined_names(source: str) -> list[str]:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    return [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def uncollapsed_helpers(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not defined_names(cell.source):
            continue
        hidden = cell.metadata.get("jupyter", {}).get("source_hidden") is True
        if cell.get("id") == SHARED_FIGURE_CELL:
            if not hidden:
                problems.append(f"cell {SHARED_FIGURE_CELL}: not source_hidden")
            continue
        if READS in cell.metadata.get("tags", []) or len(cell.source.splitlines()) <= LONG_CELL_LINES:
            continue
        first = cell.source.splitlines()[0]
        if not hidden:
            problems.append(f"cell {cell.get('id')}: {len(cell.source.splitlines())} lines, not source_hidden")
        if not re.fullmatch(r"#@title \S.*", first):
            problems.append(f"cell {cell.get('id')}: first line {first[:50]!r} is not '#@title <summary>'")
        above = nb.cells[i - 1] if i else None
        missing = [n for n in defined_names(cell.source) if above is None or f"`{n}`" not in above.source]
        if above is None or above.cell_type != "markdown" or missing:
            problems.append(f"cell {cell.get('id')}: the markdown above does not name {missing}")
    return problems


def reference_problems(nb) -> list[str]:
    markdown = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
    refs = [i for i, c in markdown if c.source.splitlines()[0].strip() == "## References"]
    if len(refs) != 1:
        return [f"{len(refs)} markdown cells start with '## References', expected 1"]
    ref = refs[0]
    problems = []
    after = nb.cells[ref + 1] if ref + 1 < len(nb.cells) else None
    if after is None or after.cell_type != "markdown" or not after.source.startswith("## Where to go next"):
        problems.append("the cell after '## References' does not start with '## Where to go next'")
    if ref + 2 != len(nb.cells):
        problems.append("References and Where to go next must be the last two cells")
    references = nb.cells[ref].source
    for i, cell in markdown:
        if i in (ref, ref + 1):
            continue
        for author, year in CITATION.findall(cell.source):
            if not re.search(rf"{author}\b[^\n]*\({year}\)", references):
                problems.append(f"cell {cell.get('id')} cites {author} {year}, missing from the references")
    return problems


CHECKS = [unanswered_prompts, typed_numbers_in_answers, uncollapsed_helpers, reference_problems]


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_lesson_follows_the_teaching_conventions(lesson, check):
    problems = check(load(lesson))
    assert not problems, f"{lesson.name}: " + "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_has_prompts_answers_and_collapsed_helpers_to_check(lesson):
    """The checks above must have something to check (an empty pass proves nothing)."""
    nb = load(lesson)
    assert sum(1 for c in nb.cells if c.cell_type == "markdown" and PROMPT.search(c.source)) >= 2
    assert sum(1 for c in nb.cells if c.metadata.get("jupyter", {}).get("source_hidden")) >= 5
    refs = next(c.source for c in nb.cells if c.source.startswith("## References"))
    assert len(CITATION.findall(refs)) >= 3 or refs.count("(20") + refs.count("(19") >= 5


# ----------------------------------------------------------------------- each check shown failing once

def plant(nb, fault: str):
    nb = copy.deepcopy(nb)
    cells = nb.cells
    if fault == "answer removed":
        first = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and PROMPT.search(c.source)
                     and not c.source.startswith("<details>"))
        answer = next(i for i in range(first + 1, len(cells)) if cells[i].source.startswith("<details>"))
        del cells[answer]
    elif fault == "typed number":
        answer = next(c for c in cells if c.source.startswith("<details><summary>Answer to the"))
        answer.source = (answer.source.replace("cell above prints", "text says")
                         .replace("</details>", "It is 4.50e-05.\n</details>"))
    elif fault == "helper shown":
        cell = next(c for c in cells if c.metadata.get("jupyter", {}).get("source_hidden")
                    and c.get("id") != SHARED_FIGURE_CELL)
        del cell.metadata["jupyter"]
        cell.source = "\n".join(cell.source.splitlines()[1:])
    elif fault == "reference dropped":
        refs = next(c for c in cells if c.source.startswith("## References"))
        refs.source = "\n".join(line for line in refs.source.splitlines() if "(2019)" not in line)
        if "(2019)" not in "".join(c.source for c in cells if c.cell_type == "markdown"):
            cells[0].source += "\n\nKornblith et al. (2019) measured it."
    return nb


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.name for p in LESSONS])
@pytest.mark.parametrize("fault,check", [("answer removed", unanswered_prompts),
                                         ("typed number", typed_numbers_in_answers),
                                         ("helper shown", uncollapsed_helpers),
                                         ("reference dropped", reference_problems)])
def test_each_check_fails_on_a_planted_fault(lesson, fault, check, tmp_path):
    broken = plant(load(lesson), fault)
    path = tmp_path / lesson.name  # a broken copy in a temporary folder, never committed
    nbformat.write(broken, str(path))
    assert not check(load(lesson)), "the committed lesson passes"
    assert check(load(path)), f"{check.__name__} did not notice '{fault}' in {lesson.name}"
