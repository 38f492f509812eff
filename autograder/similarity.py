"""Which students handed in the same code: a similarity report over the answer cells.

Only what students write is compared: the code cells nbgrader marks as solution cells, with the
release's stub text of those cells (signatures, ``raise NotImplementedError()``, comments) removed
as boilerplate. The comparison is copydetect's (winnowed k-gram fingerprints of the tokenised code,
Schleimer, Wilkerson & Aiken's MOSS method): identifiers, strings and comments are normalised
before fingerprinting, so renaming variables does not hide a copy. A pair scores the larger of the
two shares of each student's fingerprinted code that the other has; pairs at or above the threshold
go to needs_review with both names, the score and the matching lines, and to an HTML report."""

from __future__ import annotations

import html
import io
import json
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from .assignment import Assignment
from .cells import grade_id_of, is_solution

if TYPE_CHECKING:
    import numpy as np
    from copydetect import CodeFingerprint

NOISE_TOKENS = 25  # copydetect's default noise threshold (k): shorter matches are ignored
GUARANTEE_TOKENS = 30  # copydetect's default guarantee threshold: longer matches are always found
THRESHOLD = 0.6


@dataclass
class Pair:
    notebook: str
    student_a: str
    name_a: str
    student_b: str
    name_b: str
    score: float  # max of the two shares (0..1)
    share_a: float  # share of a's answer code found in b's
    share_b: float
    lines_a: list[str] = field(default_factory=list)  # the matching lines, as each wrote them
    lines_b: list[str] = field(default_factory=list)
    html_a: str = field(default="", repr=False)
    html_b: str = field(default="", repr=False)

    def reason(self, me: str) -> str:
        """The review line for one of the two students: both named, the score, that student's matching lines."""
        if me == self.student_a:
            you, other, mine = f"{self.student_a} ({self.name_a})", f"{self.student_b} ({self.name_b})", self.lines_a
        else:
            you, other, mine = f"{self.student_b} ({self.name_b})", f"{self.student_a} ({self.name_a})", self.lines_b
        shown = "; ".join(mine[:8]) + (f" … ({len(mine) - 8} more in similarity.html)" if len(mine) > 8 else "")
        return (
            f"answer code of {you} {self.score * 100:.0f} % similar to {other} in {self.notebook} "
            f"(copydetect; matching lines: {shown})"
        )


def answer_code(nb: nbformat.NotebookNode, answer_ids: set[str]) -> str:
    """The student's solution code cells of one notebook, joined (by grade_id; else every code cell
    nbgrader marks as a solution)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and grade_id_of(c) in answer_ids]
    if not cells:
        cells = [c for c in nb.cells if c.cell_type == "code" and is_solution(c)]
    return "\n\n".join(c.source for c in cells)


def _fingerprint(code: str, boilerplate: list[np.integer] | None = None) -> CodeFingerprint:
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        "answer.py",
        NOISE_TOKENS,
        GUARANTEE_TOKENS - NOISE_TOKENS + 1,
        boilerplate=boilerplate,
        language="python",
        fp=io.StringIO(code),
    )


def _lines(code: str, slices: np.ndarray) -> list[str]:
    """The lines a set of character slices touch, stripped, in order, without repeats."""
    out: list[str] = []
    if getattr(slices, "size", 0) == 0:  # no overlap: copydetect returns an empty array
        return out
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = code.splitlines()
    for a, b in zip(slices[0], slices[1], strict=True):
        for i, line in enumerate(lines):
            if starts[i] < b and starts[i + 1] > a and line.strip() and line.strip() not in out:
                out.append(line.strip())
    return out


def _highlight(code: str, slices: np.ndarray) -> str:
    from copydetect.utils import highlight_overlap

    if getattr(slices, "size", 0) == 0:
        return html.escape(code)
    text, _ = highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)
    return text


def compare(
    submissions: dict[str, dict[str, Path]],
    rel: Assignment,
    names: dict[str, str] | None = None,
    threshold: float = THRESHOLD,
) -> list[Pair]:
    """submissions: {student: {notebook: path}} → the pairs at or above ``threshold``, highest first."""
    from copydetect import compare_files

    names = names or {}
    pairs: list[Pair] = []
    for name, rnb in rel.notebooks.items():
        ids = {c.grade_id for c in rnb.cells if c.kind in ("answer", "manual") and c.cell_type == "code"}
        stub = "\n\n".join(c.source for c in rnb.cells if c.grade_id in ids)
        boiler = list(_fingerprint(stub).hashes) if stub.strip() else None
        prints = {}
        for student, notebooks in sorted(submissions.items()):
            path = notebooks.get(name)
            if not path or not Path(path).exists():
                continue
            try:
                code = answer_code(nbformat.read(str(path), as_version=4), ids)
            except Exception:  # unreadable notebooks are reported by collect/preflight already
                continue
            fp = _fingerprint(code, boiler)
            if fp.token_coverage:
                prints[student] = (code, fp)
        for a, b in combinations(sorted(prints), 2):
            (code_a, fa), (code_b, fb) = prints[a], prints[b]
            _, (sa, sb), (sl_a, sl_b) = compare_files(fa, fb)
            score = float(max(sa, sb))
            if score >= threshold:
                pairs.append(
                    Pair(
                        name,
                        a,
                        names.get(a, a),
                        b,
                        names.get(b, b),
                        round(score, 3),
                        round(float(sa), 3),
                        round(float(sb), 3),
                        _lines(code_a, sl_a),
                        _lines(code_b, sl_b),
                        _highlight(code_a, sl_a),
                        _highlight(code_b, sl_b),
                    )
                )
    return sorted(pairs, key=lambda p: -p.score)


def review_rows(pairs: list[Pair]) -> list[tuple[str, str, str]]:
    """(student, notebook, reason) for both students of each pair."""
    return [(s, p.notebook, p.reason(s)) for p in pairs for s in (p.student_a, p.student_b)]


def write_json(pairs: list[Pair], path: Path) -> None:
    path.write_text(
        json.dumps([{k: v for k, v in asdict(p).items() if not k.startswith("html")} for p in pairs], indent=1)
    )


def write_html(pairs: list[Pair], path: Path, threshold: float) -> None:
    """One page for graders: the pairs, highest first, each with both students' answer code and the
    matching parts marked."""
    e = html.escape
    rows = "".join(
        f"<tr><td><a href='#p{i}'>{p.score * 100:.0f} %</a></td><td>{e(p.notebook)}</td>"
        f"<td>{e(p.student_a)} ({e(p.name_a)})</td><td>{e(p.student_b)} ({e(p.name_b)})</td></tr>"
        for i, p in enumerate(pairs)
    )
    details = "".join(
        f"<h2 id='p{i}'>{e(p.notebook)}: {e(p.student_a)} ↔ {e(p.student_b)}, {p.score * 100:.0f} %</h2>"
        f"<p>{p.share_a * 100:.0f} % of {e(p.name_a)}'s answer code is in {e(p.name_b)}'s; "
        f"{p.share_b * 100:.0f} % the other way.</p><div class='pair'>"
        f"<div><h3>{e(p.student_a)} ({e(p.name_a)})</h3><pre>{p.html_a}</pre></div>"
        f"<div><h3>{e(p.student_b)} ({e(p.name_b)})</h3><pre>{p.html_b}</pre></div></div>"
        for i, p in enumerate(pairs)
    )
    body = (
        f"<table><tr><th>score</th><th>notebook</th><th>student</th><th>student</th></tr>{rows}</table>{details}"
        if pairs
        else f"<p>No pair of students at or above {threshold * 100:.0f} %.</p>"
    )
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Answer similarity</title><style>"
        "body{font-family:sans-serif;margin:2em} td,th{padding:.2em .8em;text-align:left} mark{background:#fd6}"
        ".pair{display:flex;gap:1em} .pair>div{flex:1;overflow:auto} pre{background:#f6f6f6;padding:.5em}</style>"
        f"<h1>Answer similarity (threshold {threshold * 100:.0f} %)</h1><p>Solution cells only, the release's "
        "stub text removed; identifiers are normalised, so renamed variables still match. A high score is a "
        "reason to look, not a verdict.</p>" + body,
        encoding="utf-8",
    )
