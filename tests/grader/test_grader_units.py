"""Fast checks of the grader's pieces (no kernels, no nbgrader runs): file-name mapping, preflight
repairs, the tamper scan, feedback sanitising, exports and the command line."""

from __future__ import annotations

import contextlib
import copy
import html
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import cli, collect, export, feedback, tamper
from autograder.assignment import Assignment
from autograder.cells import grade_id_of, is_solution
from autograder.preflight import preflight
from autograder.probes import Verdict
from autograder.results import CellScore, NotebookResult, StudentResult
from tests.grader import fixture


@pytest.fixture(scope="module")
def assignment(tmp_path_factory) -> Assignment:
    """The fixture's source notebooks carry the same nbgrader metadata as its release."""
    folder = tmp_path_factory.mktemp("tiny") / fixture.ASSIGNMENT
    folder.mkdir()
    nbformat.write(fixture.ex12(), str(folder / "ex12_tiny.ipynb"))
    nbformat.write(fixture.ex34(), str(folder / "ex34_tiny.ipynb"))
    return Assignment.load(folder)


def student_copy(assignment, name="ex12_tiny"):
    return copy.deepcopy(assignment.notebooks[name].nb)


def ids(nb):
    return [grade_id_of(c) for c in nb.cells if grade_id_of(c)]


# -- collect -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stem, clean, copy_number",
    [
        ("ex12_tiny (1)", "ex12_tiny", 1),
        ("Copy of ex12_tiny", "ex12_tiny", 0),
        ("Copy of ex34_tiny (3)", "ex34_tiny", 3),
        ("ex2 - Copy", "ex2", 0),
        ("ex12_tiny-checkpoint", "ex12_tiny", 0),
    ],
)
def test_clean_stem_strips_browser_and_colab_decorations(stem, clean, copy_number):
    assert collect.clean_stem(stem) == (clean, copy_number)


@pytest.mark.parametrize(
    "text, numbers",
    [("ex12_skip", {1, 2}), ("alice_ex2", {2}), ("exercise-3", {3}), ("ex78_pipeline", {7, 8}), ("notes", set())],
)
def test_exercise_numbers_understand_bundled_notebook_names(text, numbers):
    assert collect.exercise_numbers(text) == numbers


def test_plan_places_mangled_names_and_reports_the_rest(assignment, tmp_path):
    nb12, nb34 = student_copy(assignment), student_copy(assignment, "ex34_tiny")
    files = {
        "alice/ex12_tiny (1).ipynb": nb12,
        "alice_ex4.ipynb": nb34,
        "Bob Stone_12345_assignsubmission_file_ex12_tiny.ipynb": nb12,
        "carol/Copy of ex34_tiny.ipynb": nb34,
        "dave/Untitled.ipynb": nb34,
        "eve/ex2.ipynb": nb12,
        "frank/notes.pdf": None,
        "grace/ex12_tiny.ipynb": "",
        "__MACOSX/alice/._ex12_tiny.ipynb": None,
    }
    for rel, nb in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, str) or nb is None:
            path.write_text("binary stuff" if nb is None else nb)
        else:
            nbformat.write(nb, str(path))
    placements, _ = collect.plan(tmp_path, assignment)
    got = {p.origin: (p.student, p.notebook, p.placed) for p in placements}
    assert got["alice/ex12_tiny (1).ipynb"] == ("alice", "ex12_tiny", True)
    assert got["alice_ex4.ipynb"] == ("alice", "ex34_tiny", True)  # exercise 4 lives in ex34
    assert got["Bob Stone_12345_assignsubmission_file_ex12_tiny.ipynb"] == ("bob_stone", "ex12_tiny", True)
    assert got["carol/Copy of ex34_tiny.ipynb"] == ("carol", "ex34_tiny", True)
    assert got["dave/Untitled.ipynb"] == ("dave", "ex34_tiny", True)  # recognised by its content
    assert got["eve/ex2.ipynb"] == ("eve", "ex12_tiny", True)
    assert got["frank/notes.pdf"][2] is False
    assert got["grace/ex12_tiny.ipynb"][2] is False
    assert "__MACOSX/alice/._ex12_tiny.ipynb" not in got
    why = {p.origin: p.how for p in placements}
    assert "not a notebook" in why["frank/notes.pdf"] and "empty" in why["grace/ex12_tiny.ipynb"]


def test_newest_download_wins(assignment, tmp_path):
    old, new = student_copy(assignment), student_copy(assignment)
    new.cells[0].source = "newest"
    nbformat.write(old, str(tmp_path / "ann_ex12_tiny (2).ipynb"))
    nbformat.write(new, str(tmp_path / "ann_ex12_tiny.ipynb"))
    os.utime(tmp_path / "ann_ex12_tiny (2).ipynb", (time.time() - 600, time.time() - 600))
    placements = collect.collect(tmp_path, assignment, tmp_path / "out")
    kept = [p for p in placements if p.kept]
    assert [p.origin for p in kept] == ["ann_ex12_tiny.ipynb"]
    newest = nbformat.read(str(tmp_path / "out" / "ann" / fixture.ASSIGNMENT / "ex12_tiny.ipynb"), 4)
    assert newest.cells[0].source == "newest"


# -- preflight -----------------------------------------------------------------------------------
def test_intact_notebook_passes_untouched(assignment):
    nb = student_copy(assignment)
    fixed, report = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    assert report.status == "ok" and ids(fixed) == ids(nb)


def test_deleted_test_cell_is_restored_and_deleted_answer_flagged(assignment):
    rnb = assignment.notebooks["ex12_tiny"]
    nb = student_copy(assignment)
    nb.cells = [c for c in nb.cells if c.get("id") not in ("ex2_test_count_even", "ex1_triple")]
    fixed, report = preflight(nb, rnb, "s")
    assert ids(fixed) == [c.grade_id for c in rnb.cells]  # every graded cell, in release order
    assert report.status == "needs_review"
    kinds = {(f.severity, f.grade_id) for f in report.findings}
    assert ("repaired", "ex2_test_count_even") in kinds and ("review", "ex1_triple") in kinds


def test_duplicates_retyped_and_stripped_cells_are_repaired(assignment):
    rnb = assignment.notebooks["ex12_tiny"]
    nb = student_copy(assignment)
    i = next(i for i, c in enumerate(nb.cells) if c.get("id") == "ex1_test_triple")
    nb.cells.insert(i, copy.deepcopy(nb.cells[i]))  # duplicated graded cell
    j = next(i for i, c in enumerate(nb.cells) if c.get("id") == "ex2_count_even")
    nb.cells[j] = nbformat.v4.new_markdown_cell(nb.cells[j].source, metadata=nb.cells[j].metadata)
    for c in nb.cells:  # Colab-style stripping
        c.metadata = {}
        c.pop("id", None)
    fixed, report = preflight(nb, rnb, "s")
    assert ids(fixed) == [c.grade_id for c in rnb.cells]
    assert report.status == "repaired", report.findings
    answer = next(c for c in fixed.cells if grade_id_of(c) == "ex2_count_even")
    assert answer.cell_type == "code" and "def count_even" in answer.source
    nbformat.validate(fixed)


def test_two_different_versions_of_an_answer_keep_the_last_and_ask_a_human(assignment):
    nb = student_copy(assignment)
    i = next(i for i, c in enumerate(nb.cells) if c.get("id") == "ex1_triple")
    second = copy.deepcopy(nb.cells[i])
    second.source = "def triple(x):\n    return x + x + x"
    second.id = "mine"
    nb.cells.insert(i + 1, second)
    fixed, report = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    graded = [c for c in fixed.cells if grade_id_of(c) == "ex1_triple"]
    assert len(graded) == 1 and "x + x + x" in graded[0].source
    assert report.status == "needs_review"


def test_empty_notebook_is_rebuilt_from_the_release_and_flagged(assignment):
    nb = nbformat.v4.new_notebook()
    fixed, report = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    assert ids(fixed) == [c.grade_id for c in assignment.notebooks["ex12_tiny"].cells]
    assert any("empty notebook" in f.message for f in report.findings)


@pytest.mark.parametrize("meta", [[], "ex1_triple", {"grade_id": ["ex1_triple"]}, {"grade_id": {"x": 1}}])
def test_hostile_nbgrader_metadata_is_removed_not_a_crash(assignment, meta):
    nb = student_copy(assignment)
    nb.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": meta}))
    fixed, _ = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    assert fixed.cells[-1].metadata == {} and fixed.cells[-1].source == "x = 1"


def test_cell_similarity_is_difflibs_ratio_wherever_it_can_reach_the_floor():
    """preflight's similarity skips difflib for pairs a cheaper bound (the longest common
    subsequence) rules out: every answer must be difflib's own ratio when that reaches the floor, and
    0 when it does not. The bank: the real release cells of the course against each other and against
    copies with a growing share of their characters changed, so ratios fall on both sides of the
    floors preflight uses (0.75, 0.85) and of no floor."""
    import difflib

    from autograder.preflight import _norm, similarity
    from tools import LAYOUT

    rng = random.Random(11)
    texts = [
        "".join(c["source"])
        for path in sorted(LAYOUT.release().glob("*.ipynb"))
        for c in nbformat.read(str(path), as_version=4).cells
    ]
    texts = [t for t in texts if 40 < len(t) < 800]  # difflib's own ratio, the expected value, is slow on more

    def edited(text, share):
        chars = list(text)
        for k in rng.sample(range(len(chars)), int(len(chars) * share)):
            chars[k] = rng.choice("abc xyz=()\n")
        return "".join(chars)

    pairs = [(rng.choice(texts), rng.choice(texts)) for _ in range(60)]
    pairs += [(t, edited(t, share)) for t in rng.sample(texts, 20) for share in (0.02, 0.1, 0.2, 0.3, 0.5)]
    near = {0.75: 0, 0.85: 0}
    for a, b in pairs:
        exact = difflib.SequenceMatcher(None, _norm(a), _norm(b), autojunk=False).ratio()
        assert similarity(a, b) == exact
        for floor in near:
            assert similarity(a, b, floor) == (exact if exact >= floor else 0.0), (floor, exact)
            near[floor] += abs(exact - floor) < 0.1
    assert min(near.values()) >= 10  # the bank does test the bound near each floor


def test_edited_public_test_is_noted(assignment):
    nb = student_copy(assignment)
    next(c for c in nb.cells if c.get("id") == "ex1_test_triple").source = "pass"
    _, report = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    assert any(f.severity == "info" and "edited" in f.message for f in report.findings)


# -- tampering -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, severity",
    [
        ("torch.allclose = lambda *a, **k: True", "tamper"),
        ("import torch\ntorch.Tensor.tolist = lambda self: [1.0]", "tamper"),
        ("import builtins\nbuiltins.isinstance = lambda *a: True", "tamper"),
        ("isinstance = lambda *a: True", "tamper"),
        ("def len(x):\n    return 3", "tamper"),
        ("get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)", "tamper"),
        ("import sys\nsys.settrace(lambda *a: None)", "tamper"),
        ("import sys\nsys.modules['math'] = object()", "tamper"),
        ("setattr(torch, 'equal', lambda *a: True)", "tamper"),
        ("import collections\ncollections.Counter = dict", "tamper"),  # once only the guard's list had it
        ("x = eval('1 + 1')", "review"),
    ],
)
def test_tamper_scan_flags_attempts(code, severity):
    assert severity in {s for s, _ in tamper.scan(code)}, tamper.scan(code)


@pytest.mark.parametrize(
    "code",
    [
        "torch.backends.cudnn.benchmark = True",
        "sum = 0",
        "input = torch.randn(3)",
        "class Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)",  # noqa: E501
        "def f(values):\n    max = values[0]\n    return max",
        "torch.manual_seed(0)",
        "def broken(:\n  pass",
    ],
)
def test_tamper_scan_leaves_ordinary_code_alone(code):
    assert not [m for s, m in tamper.scan(code) if s == "tamper"]


# -- feedback ------------------------------------------------------------------------------------
def test_sanitize_puts_back_public_tests_and_drops_tracebacks(assignment, tmp_path):
    rnb = assignment.notebooks["ex12_tiny"]
    nb = student_copy(assignment)
    test = next(c for c in nb.cells if c.get("id") == "ex1_test_triple")
    test.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="AssertionError",
            evalue="triple fails on other inputs",
            traceback=["\x1b[0;31m" + test.source],
        )
    ]
    release_like = copy.deepcopy(rnb)
    for c in release_like.cells:  # what the release holds: the public part only
        c.source = c.source.split("### BEGIN HIDDEN TESTS")[0]
    feedback.sanitize(nb, release_like)
    text = nbformat.writes(nb)
    assert "hidden_probe_triple_7331" not in text
    assert "triple fails on other inputs" in text  # the teaching message stays


def test_leak_check_sees_through_syntax_highlighting():
    line = "assert hidden_probe_triple_7331 == [15, -3, 1.5]"
    page = '<span class="k">assert</span> <span class="n">hidden_probe_triple_7331</span> == [15, -3, 1.5]'
    assert feedback.leaks(page, {line}) == [line]
    assert feedback.leaks("<p>all good</p>", {line}) == []


# -- export and command line ---------------------------------------------------------------------
def test_grade_rows_and_figure(assignment, tmp_path):
    def result(student, score3):
        return StudentResult(
            student,
            scores={
                "ex12_tiny": {
                    "ex1_test_triple": CellScore(2, 2, False, "code"),
                    "ex1_written_why": CellScore(None, 1, True, "markdown"),
                    "ex2_test_count_even": CellScore(0, 3, False, "code"),
                },
                "ex34_tiny": {
                    "ex3_test_scale": CellScore(score3, 2, False, "code"),
                    "ex4_test_count_positive": CellScore(3, 3, False, "code"),
                },
            },
            notebooks={"ex12_tiny": NotebookResult("graded"), "ex34_tiny": NotebookResult("graded")},
        )

    ok = export.student_grade("ok", result("ok", 2), assignment, {})
    assert ok.exercises == {"ex1": 2, "ex2": 0, "ex3": 2, "ex4": 3} and ok.total == 7 and ok.manual_pending == 1
    crashed = result("bad", 2)
    crashed.notebooks["ex34_tiny"] = NotebookResult("failed", "the kernel died")
    bad = export.student_grade("bad", crashed, assignment, {})
    assert bad.total == 2 and any("kernel died" in why for _, why in bad.review)
    export.write_grades([ok, bad], assignment, tmp_path / "grades.csv")
    rows = (tmp_path / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,ex1,ex2,ex3,ex4,total") and rows[3].startswith("bad,2,0,0,0,2")
    export.summary_figure([ok, bad], assignment, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 10_000


def test_sandbox_refusal_is_loud():
    from autograder.sandbox import decide

    sandboxed, lines = decide(False)  # what pipeline.grade prints when --no-sandbox is given
    out = "\n".join(lines)
    assert not sandboxed and "WITHOUT a sandbox" in out and "--no-sandbox" in out


@pytest.mark.parametrize("command", ["run", "demo", "collect", "preflight", "grade", "feedback", "export", "sandbox"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0 and f"usage: course-grade {command}" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    assert out.returncode == 0 and "collect" in out.stdout and "preflight" in out.stdout


def test_rewritten_written_answer_without_metadata_is_found_by_its_place(assignment):
    rnb = assignment.notebooks["ex12_tiny"]
    nb = student_copy(assignment)
    next(c for c in nb.cells if c.get("id") == "ex1_written_why").source = "Because tripling is linear."
    for c in nb.cells:
        c.metadata = {}
        c.pop("id", None)
    fixed, report = preflight(nb, rnb, "s")
    written = next(c for c in fixed.cells if grade_id_of(c) == "ex1_written_why")
    assert written.source == "Because tripling is linear." and report.status == "repaired"


def test_collect_reads_an_lms_zip(assignment, tmp_path):
    import zipfile

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        text = nbformat.writes(student_copy(assignment, "ex34_tiny"))
        zf.writestr("Ann Lee_777_assignsubmission_file_/ex34_tiny.ipynb", text)
        zf.writestr("Ann Lee_777_assignsubmission_file_/scan.jpg", b"\xff\xd8")
    placements = collect.collect(archive, assignment, tmp_path / "out")
    assert (tmp_path / "out" / "ann_lee" / fixture.ASSIGNMENT / "ex34_tiny.ipynb").exists()
    assert {p.origin.split("/")[-1]: p.placed for p in placements} == {"ex34_tiny.ipynb": True, "scan.jpg": False}


# -- untrusted downloads and notebooks (the threat model) ------------------------------------------
def test_zip_bomb_is_refused_before_extraction(assignment, tmp_path):
    import zipfile

    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice/ex12_tiny.ipynb", b"0" * (64 * 2**20))  # 64 MiB of zeros: ~1000:1
    with pytest.raises(collect.UnsafeArchive, match="compressed"):
        collect.collect(archive, assignment, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zips_nested_too_deep_stay_packed_and_are_listed(assignment, tmp_path):
    import io
    import zipfile

    def zipped(name, data):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, data)
        return buf.getvalue()

    inner = zipped("ex12_tiny.ipynb", nbformat.writes(student_copy(assignment)))
    for level in range(4):
        inner = zipped(f"level{level}.zip", inner)
    archive = tmp_path / "deep.zip"
    archive.write_bytes(inner)
    placements = collect.collect(archive, assignment, tmp_path / "out")
    assert any("nested more than" in p.how and not p.placed for p in placements), [p.how for p in placements]


def test_a_file_naming_another_student_is_graded_as_neither(assignment, tmp_path):
    downloads = tmp_path / "dl"
    for student, name in (
        ("alice", "ex12_tiny.ipynb"),
        ("bob", "ex34_tiny.ipynb"),
        ("bob", "alice_ex12_tiny.ipynb"),
        ("carol", "Dave Smith_42_assignsubmission_file_ex12_tiny.ipynb"),
    ):
        (downloads / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(student_copy(assignment), str(downloads / student / name))
    placements = {p.origin: p for p in collect.plan(downloads, assignment)[0]}
    assert placements["alice/ex12_tiny.ipynb"].placed and placements["bob/ex34_tiny.ipynb"].placed
    for origin in ("bob/alice_ex12_tiny.ipynb", "carol/Dave Smith_42_assignsubmission_file_ex12_tiny.ipynb"):
        assert not placements[origin].placed and "graded as neither" in placements[origin].how


def test_preflight_rebuilds_instructor_cells_whole_and_drops_student_tags(assignment):
    nb = student_copy(assignment)
    for cell in nb.cells:
        cell.metadata.setdefault("tags", []).append("skip-execution")
        if grade_id_of(cell) == "ex1_test_triple":
            cell.metadata["jupyter"] = {"source_hidden": True}
    fixed, _ = preflight(nb, assignment.notebooks["ex12_tiny"], "s")
    release = {grade_id_of(c): c for c in assignment.notebooks["ex12_tiny"].nb.cells}
    for cell in fixed.cells:
        assert "skip-execution" not in cell.metadata.get("tags", []), cell.get("id")
        gid = grade_id_of(cell)
        if gid in release:
            assert dict(cell.metadata) == dict(release[gid].metadata), gid


def test_feedback_sanitizes_student_html_and_markdown(assignment):
    nb = student_copy(assignment)
    answer = next(c for c in nb.cells if is_solution(c) and c.cell_type == "code")
    answer.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": '<b>ok</b><img src=x onerror="alert(1)"><script>steal()</script>',
                "application/javascript": "steal()",
                "text/plain": "plain",
            },
        )
    ]
    written = next(c for c in nb.cells if c.cell_type == "markdown")
    written.source += '\n<script>steal()</script><a href="javascript:steal()">x</a>'
    feedback.sanitize(nb, assignment.notebooks["ex12_tiny"], verdicts={})
    text = nbformat.writes(nb)
    for bad in ("<script", "onerror", "javascript:", "application/javascript"):
        assert bad not in text, bad
    assert "<b>ok</b>" in text


def test_test_cell_outputs_are_replaced_by_the_verdict(assignment):
    nb = student_copy(assignment)
    test = next(c for c in nb.cells if c.get("id") == "ex1_test_triple")
    test.outputs = [nbformat.v4.new_output("stream", name="stdout", text="forged: all hidden tests passed")]
    feedback.sanitize(
        nb, assignment.notebooks["ex12_tiny"], verdicts={"ex1_test_triple": Verdict(False, "triple(4) returned 13")}
    )
    text = nbformat.writes(nb)
    assert "forged" not in text and "triple(4) returned 13" in text


@pytest.mark.parametrize(
    "wrap",
    [
        lambda s: f'<div data-x="{s}">ok</div>',
        lambda s: "<pre>" + __import__("base64").b64encode(s.encode()).decode() + "</pre>",
        lambda s: '<img src="data:text/plain;base64,' + __import__("base64").b64encode(s.encode()).decode() + '">',
    ],
)
def test_leak_check_reads_attributes_and_base64(wrap):
    line = "assert hidden_probe_triple_7331 == [15, -3, 1.5]"
    assert feedback.leaks(wrap(line), {line}) == [line]
    assert feedback.leaks(wrap("nothing secret here at all"), {line}) == []


def test_leak_check_finds_what_a_text_by_text_search_finds():
    """leaks() searches the page's texts joined, after a lookup of each line's first characters: the
    answer must be the one a plain search of every text gives (written out here), for lines shorter
    than the lookup, lines that differ only late, lines spread over two attributes (no leak: no
    single text holds them) and lines holding the separator itself."""
    rng = random.Random(7)
    words = ["conv", "x", "=", "model(", "assert", "torch.", "zeros", "[1,", "3]", "\x00", "<", "&amp;", " ", "\n"]
    attributes = ["".join(rng.choice(words) for _ in range(rng.randint(1, 9))) for _ in range(60)]
    page = "".join(f'<span class="{html.escape(a)}">{html.escape(a[::-1])}</span>\n' for a in attributes)
    texts = feedback.page_texts(page)
    lines = {"", " ", "x", "\x00", attributes[0] + attributes[1], attributes[2][:5] + "\x00" + "zz"}
    lines |= {a[rng.randrange(len(a)) :][: rng.randint(1, 30)] for a in attributes}
    lines |= {"".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(400)}
    lines |= {a + "~" for a in attributes if len(a) > 14}  # the first characters match, the rest not

    def squeezed(t):
        return re.sub(r"\s+", "", t)

    expected = sorted(line for line in lines if any(squeezed(line) in squeezed(t) for t in texts))
    found = feedback.leaks(page, lines)
    assert found == expected
    assert 30 < len(found) < len(lines) - 30  # both kinds of line are in the bank


def test_preflight_has_a_time_and_size_budget(assignment, monkeypatch):
    from autograder import preflight as pf

    rnb = assignment.notebooks["ex12_tiny"]
    huge = student_copy(assignment)
    huge.cells = huge.cells + [nbformat.v4.new_code_cell("x = 1") for _ in range(pf.MAX_CELLS + 1)]
    fixed, report = pf.preflight_within(huge, rnb, "s")
    assert report.status == "needs_review" and "too large" in report.findings[0].message
    assert len(fixed.cells) == len(rnb.nb.cells)  # graded as the blank release

    def slow(*args):
        spin_until = time.process_time() + 5  # matching burns CPU
        while time.process_time() < spin_until:
            pass

    monkeypatch.setattr(pf, "preflight", slow)
    started = time.process_time()
    fixed, report = pf.preflight_within(student_copy(assignment), rnb, "s", seconds=1)
    assert time.process_time() - started < 4
    assert "longer than 1 s of CPU" in report.findings[0].message
    assert len(fixed.cells) == len(rnb.nb.cells)

    def waits(*args):  # a busy machine: the clock runs, this process's CPU does not
        time.sleep(2)
        return "checked", None

    monkeypatch.setattr(pf, "preflight", waits)
    assert pf.preflight_within(student_copy(assignment), rnb, "s", seconds=1) == ("checked", None)


@pytest.mark.parametrize(
    "what, code",
    [
        (
            "memory",
            "import mmap, time\nm = mmap.mmap(-1, 768 * 2**20)\n"
            "for o in range(0, len(m), 2**20):\n    m[o:o + 2**20] = b'1' * 2**20\ntime.sleep(5)",
        ),
        (
            "disk",
            "import os, sys, time\nfor i in range(40):\n"
            "    open(os.path.join(sys.argv[1], f'f{i}'), 'wb').write(b'0' * 2**20)\ntime.sleep(5)",
        ),
    ],
)
def test_the_kernel_watchdog_stops_what_rlimits_miss(tmp_path, what, code):
    """Shared memory (RLIMIT_DATA does not count it) and many files (RLIMIT_FSIZE caps only one)."""
    from autograder.sandbox import KernelWatchdog

    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    dog = KernelWatchdog(proc.pid, 256 * 2**20, (str(tmp_path),), 16 * 2**20)
    dog.start()
    started = time.monotonic()
    assert proc.wait(timeout=30) != 0 and time.monotonic() - started < 5, "the process was not stopped"
    assert dog.killed == what
    calm = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(1.5)"])
    quiet = KernelWatchdog(calm.pid, 256 * 2**20, (str(tmp_path / "empty"),), 16 * 2**20)
    quiet.start()
    assert calm.wait(timeout=30) == 0 and not quiet.killed  # a well-behaved kernel is left alone


# A kernel that starts a process from a thread, whose child starts another that maps memory.
FAMILY = """
import mmap, subprocess, sys, threading, time
grandchild = "import mmap, time\\nm = mmap.mmap(-1, 768 * 2**20)\\n" \\
    "for o in range(0, len(m), 2**20):\\n    m[o:o + 2**20] = b'1' * 2**20\\ntime.sleep(30)"
child = f"import subprocess, sys, time\\nsubprocess.Popen([sys.executable, '-c', {grandchild!r}])\\ntime.sleep(30)"
# the thread stays: a thread that ends hands its children to the main thread's list
threading.Thread(target=lambda: (subprocess.Popen([sys.executable, "-c", child]), time.sleep(29))).start()
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(30)
"""


def test_a_kernels_process_tree_is_every_descendant_psutil_finds():
    import psutil

    from autograder.sandbox import process_tree

    proc = subprocess.Popen([sys.executable, "-c", FAMILY.replace("768 * 2**20", "2**20")])
    try:
        deadline = time.monotonic() + 30
        while len(psutil.Process(proc.pid).children(recursive=True)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(expected) == 4  # the kernel, its two children (one from a thread), a grandchild
        assert sorted(process_tree(proc.pid)) == sorted(expected)
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.wait()
    assert process_tree(proc.pid) == []  # ended (and reaped)


def test_the_kernel_watchdog_counts_memory_held_by_a_grandchild():
    import psutil

    from autograder.sandbox import KernelWatchdog

    marker = f"# family {os.getpid()} {time.time()}"  # in every member's command line, for the clean-up
    proc = subprocess.Popen([sys.executable, "-c", FAMILY.replace("time.sleep(30)", f"time.sleep(30)  {marker}")])
    dog = KernelWatchdog(proc.pid, 256 * 2**20)
    dog.start()
    try:
        assert proc.wait(timeout=30) != 0, "the kernel was not stopped"
        assert dog.killed == "memory"
    finally:
        for p in psutil.process_iter(["cmdline"]):  # whatever the watchdog missed
            if marker in " ".join(p.info["cmdline"] or []):
                p.kill()


# A kernel holding 300 MB that forks eight children which touch none of it (DataLoader workers, or forks
# still short of their exec on a busy machine): 2.7 GB counted once per process, 300 MB held.
FORKS = """
import os, sys, time
held = bytearray(300 * 2**20)
for o in range(0, len(held), 4096):
    held[o] = 1
kids = []
for _ in range(8):
    kid = os.fork()
    if kid == 0:
        time.sleep(30 if sys.argv[1:] == ["grow"] else 5)  # growing on a busy machine takes seconds
        os._exit(0)
    kids.append(kid)
time.sleep(1)  # the watchdog has counted the tree page by page and found 300 MB
if sys.argv[1:] == ["grow"]:  # then the kernel itself takes 1.2 GB, the forks still there
    import mmap
    grown = mmap.mmap(-1, 1200 * 2**20)
    for o in range(0, len(grown), 2**20):
        grown[o:o + 2**20] = b'1' * 2**20
for k in kids:
    os.waitpid(k, 0)
"""


def stop_family(proc: subprocess.Popen) -> None:
    """Kill a test kernel and whatever of its forks the watchdog left."""
    import psutil

    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
    proc.kill()
    proc.wait()


def test_the_kernel_watchdog_counts_pages_shared_after_a_fork_once():
    """Seen: a forked kernel's fork bomb, on a machine under load, was killed for memory its children
    only shared with it, and the notebook failed with none of its cells' output."""
    from autograder.sandbox import KernelWatchdog, held_memory, process_tree, shared_out_memory

    proc = subprocess.Popen([sys.executable, "-c", FORKS])
    dog = KernelWatchdog(proc.pid, 2**30)
    try:
        deadline = time.monotonic() + 30
        while len(process_tree(proc.pid)) < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = process_tree(proc.pid)
        assert len(tree) == 9 and held_memory(tree) > 2 * 2**30  # what the watchdog used to judge by
        assert 290 * 2**20 < shared_out_memory(tree) < 600 * 2**20
        dog.start()
        assert proc.wait(timeout=30) == 0 and not dog.killed, "a kernel was stopped for memory it does not hold"
    finally:
        stop_family(proc)


def test_the_kernel_watchdog_counts_again_while_the_forks_live():
    """The page-by-page count is rationed, not done once: memory taken after it is still stopped."""
    from autograder.sandbox import KernelWatchdog

    proc = subprocess.Popen([sys.executable, "-c", FORKS, "grow"])
    dog = KernelWatchdog(proc.pid, 2**30)
    dog.start()
    try:
        assert proc.wait(timeout=60) != 0, "the kernel was not stopped"
        assert dog.killed == "memory"
    finally:
        stop_family(proc)


def test_new_gradebooks_carry_the_schema_version_of_nbgrader_asked_once(tmp_path):
    """nbgrader stamps each new gradebook with its schema version (`alembic heads`); course-grade reads
    it once per process (gradebook.ask_alembic_once): every gradebook must still carry what the command says."""
    import sqlite3

    import nbgrader.api
    from nbgrader.dbutil import _temp_alembic_ini

    from autograder.course import course_config
    from autograder.gradebook import opened

    course_config(tmp_path)  # every nbgrader API of course-grade's is configured through here
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'unused.db'}") as ini:  # the command, as nbgrader runs it
        said = subprocess.run(["alembic", "-c", ini, "heads"], capture_output=True, text=True, check=True).stdout
    head = said.splitlines()[0].split(" ")[0]
    for name in ("first.db", "second.db"):
        with opened(tmp_path / name):
            pass
        with sqlite3.connect(tmp_path / name) as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
    assert nbgrader.api.get_alembic_version.cache_info().hits >= 1  # the second one did not ask again


def test_leak_check_memory_does_not_grow_with_the_page():
    """A page of many plots is megabytes of base64: the check keeps what the hidden lines need, not
    every substring of the page (a set of all its 12-character windows took ~100 bytes per byte)."""
    import base64
    import tracemalloc

    line = "assert hidden_probe_triple_7331 == [15, -3, 1.5]"
    blob = base64.b64encode(random.Random(3).randbytes(750_000)).decode()
    page = f'<img src="data:image/png;base64,{blob}"><pre>{line}</pre>'
    tracemalloc.start()
    try:
        found = feedback.leaks(page, {line, "x = 1"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == [line]
    assert peak < 20 * len(page), f"{peak / 1e6:.0f} MB for a {len(page) / 1e6:.1f} MB page"


def test_the_grader_starts_without_the_iri_format_grammars():
    """jsonschema's optional "iri" format checker builds 38 lark grammars at import (a second of every
    course-grade start); the grader keeps it out, and nbformat still validates a notebook."""
    code = (
        "import sys, autograder.cli, nbformat\n"
        "nbformat.validate(nbformat.v4.new_notebook())\n"
        "print(sys.modules.get('rfc3987_syntax') is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stdout + out.stderr
