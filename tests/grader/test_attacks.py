"""The attack bank (tests/grader/attacks.py) against ONE real `course-grade run`.

The class: an honest full-marks student, a victim (also full marks, targeted by a file name), a blank
student, and one submission per group of attacks, each with BLANK exercise answers: the honest code in
an attacker's notebook earns 0 autograded points, so any point is forged. Per attack we check:
- no forged points (raw gradebook scores and grades.csv), unless the design passes that cell for any
  self-consistent answer (``Attack.may_pass``);
- nothing the student receives (feedback HTML, decoded every way we can) holds a hidden-check,
  verdict or reference-solution line, and no student HTML/JS is live in it;
- nothing was written outside the student's box, nothing the box saw that it should not
  (``CG-REPORT`` lines the attacks print, read from the graders' copy of the autograded notebook);
- the rest of the class is graded as if the attackers were not there.
Known holes in files the lead owns are ``xfail(strict=True)`` with the fix in the reason."""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import csv
import html
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import zlib
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder import cli, probes
from autograder.assignment import Assignment
from autograder.feedback import leaks
from autograder.results import NotebookResult, StudentResult, results_from_dict
from autograder.sandbox import status
from tests.grader import attacks
from tests.grader.attacks import ASSIGNMENT, ATTACKS, BASELINE, FILE, NB, XSS
from tests.harness.grading import RELEASE, SOURCE, reference_submission, release_nb

pytestmark = pytest.mark.slow
CELL_TIMEOUT = 10
MEMORY_MB = 2048
BUDGET_S = 180


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not status().available:
        pytest.skip(f"no sandbox here: {status().reason}")
    # Outside /tmp on purpose: the box hides /tmp wholesale, so a course under it would not test that
    # the course, downloads and source folders themselves are hidden.
    root = Path(tempfile.mkdtemp(prefix="cg-attacks-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    try:
        token = secrets.token_hex(6)
        course, downloads, canary = root / "course", root / "downloads", root / "canary"
        canary.mkdir()
        paths = {
            "repo": str(Path(__file__).resolve().parents[2]),
            "course": str(course),
            "source": str(SOURCE),
            "downloads": str(downloads),
            "canary_dir": str(canary),
        }
        kit = attacks.Kit(release_nb(FILE), reference_submission(FILE), token, paths)
        attacks.build_downloads(kit, downloads)
        targets = attacks.outside_targets(kit)
        before = {t: _has_token(t, token) for t in targets}
        old = os.environ.get("CG_GRADER_CANARY")
        os.environ["CG_GRADER_CANARY"] = token  # the grader's environment holds a "secret"
        t0 = time.perf_counter()
        try:
            cli.main(
                [
                    "run",
                    str(downloads),
                    "--course-dir",
                    str(course),
                    "--release",
                    str(RELEASE),
                    "--source",
                    str(SOURCE),
                    "--timeout",
                    str(CELL_TIMEOUT),
                    "--memory-mb",
                    str(MEMORY_MB),
                    "-j",
                    "2",
                    "--probe-seed",
                    "fixed",
                ]
            )
        finally:
            if old is None:
                os.environ.pop("CG_GRADER_CANARY", None)
            else:
                os.environ["CG_GRADER_CANARY"] = old
        seconds = time.perf_counter() - t0
        written = [t for t in targets if _has_token(t, token) and not before[t]]
        for t in written:  # never leave a planted file behind (a .pth would run!)
            _scrub(t, token)
        leftovers = _leftover_processes()
        exports = course / "exports"
        with open(exports / "grades.csv") as f:
            grades = {r["student"]: r for r in csv.DictReader(f) if r["student"] != "(max)"}
        with open(exports / "needs_review.csv") as f:
            review = list(csv.DictReader(f))
        results = results_from_dict(json.loads((exports / "results.json").read_text()))
        rel = Assignment.load(RELEASE, SOURCE)
        yield {
            "course": course,
            "grades": grades,
            "review": review,
            "results": results,
            "seconds": seconds,
            "written": written,
            "leftovers": leftovers,
            "token": token,
            "rel": rel,
            "secret": rel.secret_lines(),
            "reports": {s: _reports(course, s) for s in results},
            "host_tmp": sorted(
                str(p)
                for pattern in (f"cg_fill_{token}", f"cgk-*/**/cg_fill_{token}")
                for p in Path("/tmp").glob(pattern)
            ),
        }
    finally:
        if os.environ.get("CG_KEEP_ATTACKS"):
            print(f"\nattack run kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _has_token(path: str, token: str) -> bool:
    try:
        with open(path, "rb") as f:
            return token.encode() in f.read()
    except OSError:
        return False


def _scrub(path: str, token: str) -> None:
    p = Path(path)
    data = p.read_bytes()
    kept = b"".join(ln for ln in data.splitlines(True) if token.encode() not in ln)
    if kept.strip() or p.suffix in (".db", ".ipynb"):
        p.write_bytes(kept)
    else:
        p.unlink()


def _leftover_processes() -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"sleep {attacks.SLEEP_MARK}"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    for pid in pids:  # the bank's own children: ours to end
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _reports(course: Path, student: str) -> dict:
    """CG-REPORT lines from the graders' copy of the autograded notebook (never sent to students)."""
    path = course / "autograded" / student / ASSIGNMENT / FILE
    found: dict = {}
    if not path.exists():
        return found
    for cell in nbformat.read(str(path), as_version=4).cells:
        for out in cell.get("outputs", []):
            for ln in str(out.get("text", "")).splitlines():
                if ln.startswith("CG-REPORT "):
                    with contextlib.suppress(json.JSONDecodeError):
                        found.update(json.loads(ln[len("CG-REPORT ") :]))
    return found


def _pages(run, student) -> dict[str, str]:
    folder = run["course"] / "feedback" / student / ASSIGNMENT
    return {p.name: p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.html"))}


def _review(run, student) -> str:
    return " | ".join(r["reason"] for r in run["review"] if r["student"] == student)


def _result(run, student) -> StudentResult:
    """The student's result (an empty one when the run has none, which every check below notices)."""
    return run["results"].get(student) or StudentResult(student, error="no result")


def _entry(run, student) -> NotebookResult | None:
    return _result(run, student).notebooks.get(NB)


def _cell_scores(run, student) -> dict[str, tuple[float, float]]:
    """{grade_id: (points, max)} of the attacked notebook's autograded test cells."""
    return {
        gid: (c.earned, c.max_score)
        for gid, c in _result(run, student).scores.get(NB, {}).items()
        if run["rel"].notebooks[NB].graded[gid].kind == "test"
    }


# -- the run as a whole --------------------------------------------------------------------------------
def test_the_run_grades_every_submission_within_budget(run):
    expected = set(BASELINE) | {a.student for a in ATTACKS}
    assert max(expected) == "template", "the student named template must be graded last (see attacks.py)"
    missing = expected - set(run["grades"])
    load = os.getloadavg()[0]
    print(f"\ncourse-grade run over {len(run['grades'])} submissions: {run['seconds']:.1f} s (load {load:.1f})")
    assert not missing, f"the run lost submissions: {sorted(missing)}"
    for student, result in run["results"].items():
        entry = result.notebooks.get(NB)
        if entry and entry.status == "graded" and student != "template":
            assert result.feedback and result.feedback.ok, f"{student} got no feedback: {result.feedback}"
            assert _pages(run, student), f"{student} has no feedback page"
    if load > (os.cpu_count() or 1):
        pytest.skip(f"machine busy (load {load:.1f}): the run took {run['seconds']:.0f} s, budget not judged")
    assert run["seconds"] < BUDGET_S, f"the attack run took {run['seconds']:.0f} s (budget {BUDGET_S} s)"


def test_the_rest_of_the_class_is_unaffected(run):
    honest = _cell_scores(run, "honest")
    assert honest and all(s == m for s, m in honest.values()), f"honest student lost points: {honest}"
    row = run["grades"]["honest"]
    assert float(row["ex1"]) == 6 and float(row["ex2"]) == 10, row
    assert not run["results"]["honest"].error
    assert all(s == 0 for s, _ in _cell_scores(run, "blank").values()), _cell_scores(run, "blank")
    for student in ("honest", "blank"):
        pages = _pages(run, student)
        assert FILE.replace(".ipynb", ".html") in pages, f"{student} got no feedback page"
        assert not any("Feedback withheld" in p for p in pages.values()), f"{student}'s feedback was withheld"
    assert "passed" in _pages(run, "honest")[f"{NB}.html"]


def test_every_autograded_cell_has_a_check():
    """The bank's premise: a test cell without a Check keeps nbgrader's in-kernel score (grading.py
    overwrites only checked cells), and in-kernel public tests are beaten by every forger here."""
    rel = Assignment.load(RELEASE, SOURCE)
    for name, rnb in rel.notebooks.items():
        unchecked = {c.grade_id for c in rnb.cells if c.kind == "test"} - set(probes.checks_for(name))
        assert not unchecked, f"{name}: test cells scored by the in-kernel test alone: {sorted(unchecked)}"


# -- per attack -----------------------------------------------------------------------------------------
def _marks(attack):
    return [pytest.mark.xfail(strict=True, reason=attack.xfail)] if attack.xfail else []


SCORED = [a for a in ATTACKS if a.name not in ("name_claim", "template")]


@pytest.mark.parametrize("attack", [pytest.param(a, id=a.name, marks=_marks(a)) for a in SCORED])
def test_attack_forges_no_points(run, attack):
    student = attack.student
    checked = set(probes.checks_for(NB))
    scores = _cell_scores(run, student)
    assert scores, f"{student} ({attack.name}) has no scores: {_result(run, student).error}"
    entry = _entry(run, student)
    verdicts = entry.verdicts if entry else {}
    forged = {gid: s for gid, (s, _) in scores.items() if s > 0 and gid not in attack.may_pass}
    others = [a.name for a in ATTACKS if a.student == student and a is not attack]
    assert not forged, f"{attack.name} (in {student!r} with {others}) forged points on blank code: " + "; ".join(
        f"{gid} = {s:g} ({_why(gid, checked, verdicts)})" for gid, s in forged.items()
    )
    allowed = sum(run["rel"].notebooks[NB].graded[g].points for g in attack.may_pass)
    for ex in ("ex1", "ex2"):
        assert float(run["grades"][student][ex]) <= (allowed if ex == "ex1" else 0), (
            f"grades.csv gives {student} {run['grades'][student][ex]} on {ex}"
        )


def _why(gid, checked, verdicts) -> str:
    if gid not in checked:
        return "no Check: scored by the in-kernel public test"
    return "verdict: " + (verdicts[gid].message if gid in verdicts else "?")


def _decoded_views(page: str) -> list[str]:
    """The page and what a student could decode from it (feedback.leaks itself adds base64 blobs)."""
    views = [page, codecs.encode(page, "rot13"), page[::-1], urllib.parse.unquote(html.unescape(page))]
    for blob in re.findall(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){16,}(?![0-9a-fA-F])", page):
        with contextlib.suppress(binascii.Error, ValueError):
            views.append(binascii.unhexlify(blob).decode("utf-8", "ignore"))
    for blob in re.findall(r"[A-Za-z0-9+/=_-]{24,}", page):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(blob + "=" * (-len(blob) % 4))
                views.append(zlib.decompress(raw).decode("utf-8", "ignore"))
            except (binascii.Error, ValueError, zlib.error):
                pass
    return views


ALL_STUDENTS = list(BASELINE) + sorted({a.student for a in ATTACKS})


@pytest.mark.parametrize("student", ALL_STUDENTS)
def test_feedback_shows_no_hidden_check_or_solution(run, student):
    own = set()
    sub = run["course"] / "submitted" / student / ASSIGNMENT / FILE
    if sub.exists():  # what the student wrote themselves is not a leak
        own = {ln.strip() for c in nbformat.read(str(sub), as_version=4).cells for ln in c.source.splitlines()}
    secret = run["secret"] - own
    assert secret, "no secret lines to look for"
    squeezed = {ln: re.sub(r"\s+", "", ln) for ln in secret}
    for name, page in _pages(run, student).items():
        found = set(leaks(page, secret))  # the grader's own check, on the page as sent
        for view in _decoded_views(page)[1:]:  # and on what a student could decode from it
            flat = re.sub(r"\s+", "", view)
            found |= {ln for ln, sq in squeezed.items() if sq in flat}
        assert not found, f"{student}'s {name} shows {len(found)} secret line(s), e.g. {sorted(found)[:3]}"
        if "Feedback withheld" in page:
            print(f"\n{student}: {name} withheld by the grader")


class _Live(HTMLParser):
    """Where student markup would be live in a browser (script, handlers, URLs, math links)."""

    URL_ATTRS = {
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "srcdoc",
        "style",
        "content",
        "xlink:href",
        "background",
        "poster",
        "srcset",
    }
    ACTIVE_TAGS = {
        "script",
        "iframe",
        "object",
        "embed",
        "base",
        "form",
        "svg",
        "math",
        "frame",
        "frameset",
        "meta",
        "link",
        "style",
        "applet",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found, self.stack, self.handlers, self.tags = [], [], 0, {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag not in ("meta", "link", "br", "img", "hr", "input"):
            self.stack.append(tag)
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self.handlers += 1
                self.found.append(f"<{tag} {name}={value[:60]!r}>")
            elif (XSS in value and (tag in self.ACTIVE_TAGS or name in ("srcdoc", "style"))) or (
                name in self.URL_ATTRS
                and re.match(
                    r"(javascript|vbscript|livescript|data:(text/html|image/svg))",
                    re.sub(r"[\x00-\x20]", "", html.unescape(value)),
                    re.I,
                )
            ):
                self.found.append(f"<{tag} {name}={value[:60]!r}>")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        inside = set(self.stack)
        if XSS in data and inside & {"script", "style"}:
            self.found.append(f"{XSS} inside <{'/'.join(sorted(inside & {'script', 'style'}))}>: {data[:80]!r}")
        # MathJax renders $\href{javascript:...}$ as a live link (outside <pre>/<code>)
        if not inside & {"pre", "code", "script", "style", "textarea"} and re.search(
            r"\\(href|url)\s*\{\s*(javascript|vbscript|data)", data, re.I
        ):
            self.found.append(f"MathJax link: {data.strip()[:80]!r}")


def test_the_live_markup_oracle_sees_live_markup():
    assert _live(f"<img src=x onerror=\"alert('{XSS}')\">").found
    assert _live("<a href='javascript:alert(1)'>x</a>").found
    assert _live(f"<script>alert('{XSS}')</script>").found
    assert _live("<p>$\\href{javascript:alert(1)}{x}$</p>").found
    assert not _live(f"<pre>&lt;script&gt;alert('{XSS}')&lt;/script&gt;</pre><p>{XSS}</p>").found


def test_feedback_defuses_what_nh3_lets_through():
    """Without a run: markdown links, MathJax commands, fake image data and a dropped attachment."""
    import nh3
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from autograder import feedback

    def page(defused: bool):
        md = new_markdown_cell(
            f"[a](javascript:alert('{XSS}')) [b](java&#9;script&colon;x) "
            "$\\href{javascript:x}{c}$ ![s](attachment:evil.svg) [ok](https://example.org) $x^2$"
        )
        md["attachments"] = {"evil.svg": {"image/svg+xml": "<svg onload='alert(1)'/>"}}
        code = new_code_cell("x")
        code.outputs = [
            new_output(
                "display_data",
                data={"text/html": "<div>$\\href{javascript:y}{d}$</div>", "image/png": '" onerror="alert(1)'},
            )
        ]
        nb = new_notebook(cells=[md, code])
        if defused:
            feedback.disarm(nb)
        else:  # nh3 alone (what the feedback did before)
            md.source = nh3.clean(md.source)
            md.pop("attachments")
            md.source = md.source.replace("attachment:", "")
            code.outputs[0]["data"]["text/html"] = nh3.clean(code.outputs[0]["data"]["text/html"])
        return HTMLExporter(template_name="classic").from_notebook_node(nb)[0]

    assert feedback.live_markup(page(False)), "the oracle should see the live markup nh3 lets through"
    body = page(True)  # renders (the missing SVG attachment no longer stops nbconvert)
    assert not feedback.live_markup(body) and not _live(body).found
    assert 'href="https://example.org"' in body and "x^2" in body


def _live(page: str) -> _Live:
    p = _Live()
    p.feed(page)
    p.close()
    return p


@pytest.mark.parametrize("student", ALL_STUDENTS)
def test_feedback_runs_no_student_markup(run, student):
    baseline = _live(_pages(run, "honest")[f"{NB}.html"])
    for name, page in _pages(run, student).items():
        live = _live(page)
        assert not live.found, f"{student}'s {name}: student markup is live: {live.found[:5]}"
        extra = {t: n for t, n in live.tags.items() if t in _Live.ACTIVE_TAGS and n > baseline.tags.get(t, 0)}
        assert not extra, f"{student}'s {name} has more active elements than the honest page: {extra}"


def test_nothing_written_outside_the_box(run):
    assert not run["written"], f"student kernels wrote outside their box: {run['written']}"
    assert not run["host_tmp"], f"box files left on the host: {run['host_tmp']}"
    wrote = run["reports"].get(attacks.BY_NAME["outside_write"].student, {}).get("box_writes")
    entry = _entry(run, attacks.BY_NAME["outside_write"].student)
    assert wrote is not None, f"the writing attack did not report (did its cell run?): {entry}"
    print("\nwrites the box accepted (inside it, gone afterwards):", wrote)


def test_no_student_process_outlives_its_kernel(run):
    assert not run["leftovers"], f"student processes outlived grading: {run['leftovers']}"


REPORTS = [(a, c) for a in ATTACKS for c in a.reports]


@pytest.mark.parametrize(
    "attack,check",
    [
        pytest.param(
            a,
            c,
            id=f"{a.name}-{c.key}",
            marks=[pytest.mark.xfail(strict=True, raises=AssertionError, reason=c.xfail)] if c.xfail else [],
        )
        for a, c in REPORTS
    ],
)
def test_what_the_box_shows(run, attack, check):
    seen = run["reports"].get(attack.student, {})
    entry = _entry(run, attack.student)
    if check.key not in seen and check.killed_ok and entry and entry.failed:
        return  # the box stopped the kernel (e.g. its memory cgroup): contained
    if check.key not in seen:  # not an AssertionError: an xfail must not hide an attack that never ran
        how = f"the notebook {entry.status}: {entry.reason}" if entry else "no result for the notebook"
        raise RuntimeError(f"{attack.name} did not report {check.key!r}: its cell did not run ({seen}; {how})")
    assert check.ok(seen[check.key]), f"{attack.name}: {check.meaning}: {seen[check.key]!r}"


def test_kernel_deaths_and_loops_cost_only_their_own_notebook(run):
    for student in ("hog_in_probe", "loop_in_probe", "giant_output"):
        result = run["results"][student]
        assert not result.error, (student, result.error)
        entry = result.notebooks[NB]
        print(f"\n{student}: {entry.status} {entry.reason} ({entry.seconds} s)")
        assert all(s == 0 for s, _ in _cell_scores(run, student).values())


def test_giant_output_does_not_reach_the_feedback(run):
    pages = _pages(run, "giant_output")
    size = max((len(p) for p in pages.values()), default=0)
    assert size < 20 * 2**20, f"a 200 MB print made a {size / 2**20:.0f} MB feedback page"
    graded = run["course"] / "autograded" / "giant_output" / ASSIGNMENT / FILE
    if graded.exists():
        assert graded.stat().st_size < 50 * 2**20, f"autograded copy is {graded.stat().st_size / 2**20:.0f} MB"


def test_a_file_name_cannot_replace_another_students_submission(run):
    pat = _cell_scores(run, "pat")
    assert pat, f"pat was not graded: {_result(run, 'pat').error}"
    flagged = any("pat_ex12" in r["reason"] for r in run["review"])
    assert all(s == m for s, m in pat.values()) or flagged, (
        f"a file named pat_ex12_skip_connections.ipynb replaced pat's submission, unflagged: {pat}"
    )


def test_an_lms_name_part_cannot_claim_another_student(run):
    assert _cell_scores(run, "constant_functions"), "the LMS file was not placed under its LMS prefix"
    assert all(s == m for s, m in _cell_scores(run, "honest").values())


def test_a_student_named_template_is_graded_like_anyone(run):
    result = run["results"].get("template")
    assert result is not None and not result.error, result
    assert _cell_scores(run, "template"), "no scores for the student named template"
