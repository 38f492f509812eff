"""Check a submitted notebook against its release before nbgrader sees it, and repair what is unambiguous.

Students (and Colab, which ignores ``deletable: false``) delete, duplicate, retype and strip graded
cells. Stock nbgrader then scores wrongly or aborts the batch. Every graded release cell is matched
to the student's cells by nbgrader grade_id, then cell id, then content (a test cell's text, the
names an answer cell defines), then position; the notebook is rebuilt with the release's metadata
on the matched cells. Findings carry a severity:
  info      — worth telling the student (edited test cell: nbgrader restores it anyway)
  repaired  — fixed unambiguously (metadata restored, cell retyped, duplicate dropped, test restored)
  review    — graded as repaired, but a human must look (answer cell deleted, ambiguous match, …)"""

from __future__ import annotations

import ast
import difflib
import json
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from rapidfuzz.distance import Indel

from . import tamper
from .assignment import Assignment, ReleaseCell, ReleaseNotebook
from .cells import CODE_STUB, TEXT_STUB, grade_id_of, nbgrader_meta, python_source

if TYPE_CHECKING:
    from types import FrameType
    from typing import NoReturn


@dataclass
class Finding:
    severity: str  # info | repaired | review | tamper
    grade_id: str | None
    message: str


@dataclass
class Report:
    """What preflight found in one notebook of one student (``exports/preflight.json`` holds them all)."""

    student: str
    notebook: str
    findings: list[Finding] = field(default_factory=list)
    missing: bool = False  # the student sent no such notebook

    def add(self, severity: str, grade_id: str | None, message: str) -> None:
        self.findings.append(Finding(severity, grade_id, message))

    @property
    def status(self) -> str:
        if self.missing:
            return "missing"
        severities = {f.severity for f in self.findings}
        for s in ("tamper", "review", "repaired"):
            if s in severities:
                return {"tamper": "needs_review", "review": "needs_review", "repaired": "repaired"}[s]
        return "ok"

    @property
    def tampered(self) -> bool:
        return any(f.severity == "tamper" for f in self.findings)

    def to_dict(self) -> dict:
        return {
            "student": self.student,
            "notebook": self.notebook,
            "status": self.status,
            "findings": [asdict(f) for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls(
            str(data["student"]),
            str(data["notebook"]),
            [Finding(f["severity"], f.get("grade_id"), f["message"]) for f in data.get("findings") or []],
            data.get("status") == "missing",
        )

    def for_review(self) -> list[str]:
        """The findings a human must look at (review and tamper), as messages."""
        return [f.message for f in self.findings if f.severity in ("review", "tamper")]

    def tamper_messages(self) -> list[str]:
        return [f.message for f in self.findings if f.severity == "tamper"]


Reports = dict[str, dict[str, Report]]  # {student: {notebook: Report}}


def read_reports(path: Path) -> Reports:
    """``exports/preflight.json`` ({} before the first preflight)."""
    path = Path(path)
    if not path.exists():
        return {}
    return {
        student: {nb: Report.from_dict(r) for nb, r in per.items()}
        for student, per in json.loads(path.read_text()).items()
    }


def write_reports(path: Path, reports: Reports) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {student: {nb: r.to_dict() for nb, r in per.items()} for student, per in reports.items()}
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


def tamper_flags(reports: Reports) -> dict[str, dict[str, list[str]]]:
    """{student: {notebook: tamper messages}} for the notebooks with any (grading notes them per notebook)."""
    return {s: {nb: r.tamper_messages() for nb, r in per.items() if r.tampered} for s, per in reports.items()}


def check_folder(folder: Path, rel: Assignment, student: str, originals: Path) -> dict[str, Report]:
    """Preflight every notebook of one student's submission folder in place.

    Each notebook is checked from what the student sent: a copy kept in ``originals`` by an earlier
    preflight comes back first. A notebook that needed any repair or review keeps its original there
    (for the human who looks at it); the repaired one is what gets graded."""
    reports: dict[str, Report] = {}
    for name, rnb in rel.notebooks.items():
        path = Path(folder) / rnb.filename
        original = Path(originals) / rnb.filename
        if original.exists():  # preflight again: start from what the student sent
            shutil.copy(original, path)
        if not path.exists():
            report = Report(student, name, missing=True)
            report.add("info", None, f"{rnb.filename} was not submitted: 0 points")
            reports[name] = report
            continue
        nb = nbformat.read(str(path), as_version=4)
        fixed, report = preflight_within(nb, rnb, student)
        reports[name] = report
        if report.status != "ok":
            original.parent.mkdir(parents=True, exist_ok=True)
            if not original.exists():
                shutil.copy(path, original)
        nbformat.write(fixed, str(path))
    return reports


def defined_names(text: str) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments)."""
    try:
        tree = ast.parse(python_source(text))
    except SyntaxError:
        # a student's half-written answer still shows its def/class lines
        return set(re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)", text, re.M))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _norm(text: str) -> str:
    return "\n".join(ln.rstrip() for ln in text.strip().splitlines() if ln.strip())


def similarity(a: str, b: str, floor: float = 0.0) -> float:
    """difflib ratio of the normalised texts, or 0 under ``floor`` (known early where it can be: speed).

    difflib's matching blocks are a common subsequence of the two texts, so its ratio is at most
    their longest common subsequence ratio: rapidfuzz's Indel similarity, bit-parallel C++. A pair
    under the floor by that bound skips difflib's quadratic scan, which took seconds on two 5 kB
    test cells (a Colab export with every cell's metadata gone compares many such pairs: 33 s a
    student). Pairs that can reach the floor still get difflib's own ratio, so matches are unchanged."""
    a, b = _norm(a), _norm(b)
    if a == b:
        return 1.0
    if floor and Indel.normalized_similarity(a, b) < floor - 1e-9:  # the margin: float rounding
        return 0.0
    ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
    return ratio if ratio >= floor else 0.0


STUB_LINES = {*CODE_STUB.splitlines(), TEXT_STUB}


def kept_lines(text: str, stub: str) -> float:
    """Share of the stub's own lines (comments, prints around the answer) still in the student's cell."""
    lines = [ln.strip() for ln in stub.splitlines() if ln.strip() and ln.strip() not in STUB_LINES]
    if len(lines) < 2:
        return 0.0
    have = {ln.strip() for ln in text.splitlines()}
    return sum(ln in have for ln in lines) / len(lines)


def content_score(cell: nbformat.NotebookNode, rc: ReleaseCell) -> float:
    """How much a student cell looks like release cell ``rc`` (0 = not at all)."""
    text = cell.get("source", "")
    if rc.kind == "answer" or (rc.kind == "manual" and rc.cell_type == "code"):
        stub_names = defined_names(rc.source)
        if stub_names and stub_names <= defined_names(text):
            return 0.9 + 0.1 * similarity(text, rc.source)
        kept = kept_lines(text, rc.source)
        if kept >= 0.8:
            return 0.85 + 0.1 * kept
        return similarity(text, rc.source, 0.85)
    if rc.kind == "manual":
        return 1.0 if _norm(text) == _norm(rc.source) else 0.0
    return similarity(text, rc.source, 0.75)


def _release_cell_node(rc: ReleaseCell) -> nbformat.NotebookNode:
    return nbformat.from_dict(
        nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(cells=[rc.cell])), as_version=4).cells[0]
    )


def _retyped(cell: nbformat.NotebookNode, cell_type: str) -> nbformat.NotebookNode:
    if cell.cell_type == cell_type:
        return cell
    make = new_code_cell if cell_type == "code" else new_markdown_cell
    new = make(cell.get("source", ""), metadata=dict(cell.get("metadata", {})))
    if "id" in cell:
        new["id"] = cell["id"]
    return new


def match_cells(cells: list[nbformat.NotebookNode], rnb: ReleaseNotebook, report: Report) -> dict[int, str]:
    """student cell index → release grade_id."""
    release = rnb.graded
    owner: dict[int, str] = {}
    # 1. nbgrader metadata, 2. cell id (the course gives graded cells id == grade_id)
    release_ids = {rc.cell.get("id"): gid for gid, rc in release.items() if rc.cell.get("id")}
    for i, cell in enumerate(cells):
        gid = grade_id_of(cell)
        if gid in release:
            owner[i] = gid
        elif cell.get("id") in release_ids:
            owner[i] = release_ids[cell["id"]]
        elif cell.get("metadata", {}).get("id") in release_ids:  # Colab keeps its own id here
            owner[i] = release_ids[cell["metadata"]["id"]]
    # 3. content, for release cells not found yet
    taken = set(owner.values())
    cache: dict[tuple[int, str], float] = {}

    def score(i: int, rc: ReleaseCell) -> float:
        if (i, rc.grade_id) not in cache:
            cache[(i, rc.grade_id)] = content_score(cells[i], rc)
        return cache[(i, rc.grade_id)]

    for gid, rc in release.items():
        if gid in taken:
            continue
        scored = sorted(((score(i, rc), i) for i, c in enumerate(cells) if i not in owner), reverse=True)
        scored = [(s, i) for s, i in scored if s > 0]
        if not scored:
            continue
        best, i = scored[0]
        # the same cell may look like several release cells: it belongs to the one it resembles most
        rivals = [score(i, other) for og, other in release.items() if og != gid and og not in taken]
        if rivals and max(rivals) >= best:
            if max(rivals) == best:
                report.add("review", gid, f"cell #{i} looks equally like {gid} and another graded cell: left unmatched")
            continue
        duplicates = [j for s, j in scored[1:] if s >= best - 1e-9 and s >= 0.99]
        owner[i] = gid
        for j in duplicates:
            owner[j] = gid
        taken.add(gid)
    # 4. position: answers whose metadata and text both changed (a written answer replacing
    # "YOUR ANSWER HERE"): between two matched neighbours, as many unmatched cells of that type as
    # missing answers of that type means they are the answers, in order.
    order = [rc.grade_id for rc in rnb.cells]
    placed = {gid: i for i, gid in sorted(owner.items())}
    release_texts = {_norm(c.source) for c in rnb.nb.cells}
    gaps: dict[tuple[int, int, str], list[str]] = {}
    for k, gid in enumerate(order):
        rc = release[gid]
        if gid in placed or rc.kind not in ("answer", "manual"):
            continue
        lo = max((placed[g] for g in order[:k] if g in placed), default=-1)
        hi = min((placed[g] for g in order[k + 1 :] if g in placed), default=len(cells))
        gaps.setdefault((lo, hi, rc.cell_type), []).append(gid)
    for (lo, hi, cell_type), missing in gaps.items():
        between = [
            i
            for i in range(lo + 1, hi)
            if i not in owner
            and cells[i].cell_type == cell_type
            and _norm(cells[i].get("source", "")) not in release_texts
            and cells[i].get("source", "").strip()
        ]
        if len(between) == len(missing):
            for i, gid in zip(between, missing, strict=True):
                owner[i] = gid
                report.add(
                    "repaired",
                    gid,
                    f"{gid}: recognised cell #{i} by its place between the graded "
                    "cells around it (metadata gone, text rewritten)",
                )
    return owner


def preflight(nb: nbformat.NotebookNode, rnb: ReleaseNotebook, student: str) -> tuple[nbformat.NotebookNode, Report]:
    """Return (repaired notebook, report). The input notebook is not modified."""
    report = Report(student, rnb.name)
    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))
    cells = list(nb.cells)
    if not any(c.get("source", "").strip() for c in cells):
        report.add("review", None, "empty notebook: every answer graded as blank")
    owner = match_cells(cells, rnb, report)
    release = rnb.graded

    # duplicates: keep the last copy graded (what ran last when the student ran top to bottom)
    by_gid: dict[str, list[int]] = {}
    for i in sorted(owner):
        by_gid.setdefault(owner[i], []).append(i)
    dropped: set[int] = set()
    demoted: set[int] = set()
    for gid, idxs in by_gid.items():
        if len(idxs) < 2:
            continue
        rc = release[gid]
        keep = idxs[-1]
        texts = {_norm(cells[i].get("source", "")) for i in idxs}
        if rc.kind in ("test", "readonly"):
            dropped |= set(idxs[:-1])
            report.add("repaired", gid, f"{gid} appeared {len(idxs)} times: extra copies removed")
        elif len(texts) == 1:
            dropped |= set(idxs[:-1])
            report.add("repaired", gid, f"{gid} appeared {len(idxs)} times with the same text: kept one")
        else:
            demoted |= set(idxs[:-1])
            report.add(
                "review",
                gid,
                f"{gid} appeared {len(idxs)} times with different text: graded the last "
                "one (what ran last), earlier ones kept as plain cells",
            )
        for i in idxs[:-1]:
            del owner[i]
        owner[keep] = gid

    out = []
    for i, cell in enumerate(cells):
        if i in dropped:
            continue
        gid = owner.get(i)
        if gid is None:
            if nbgrader_meta(cell) and i not in demoted and grade_id_of(cell) not in release:
                report.add("repaired", None, f"cell #{i}: nbgrader metadata of an unknown cell removed")
            # a cell of the student's own carries no instructions for the run (tags such as
            # skip-execution or raises-exception, nbgrader metadata): only its text and outputs count
            cell.metadata = nbformat.NotebookNode()
            out.append(cell)
            continue
        rc = release[gid]
        meta = nbgrader_meta(cell)
        if rc.cell_type != cell.cell_type:
            cell = _retyped(cell, rc.cell_type)
            report.add("repaired", gid, f"{gid} was turned into a {cells[i].cell_type} cell: back to {rc.cell_type}")
        if meta != nbgrader_meta(rc.cell):
            if not meta:
                report.add("repaired", gid, f"{gid}: nbgrader metadata was stripped, restored from the release")
            elif meta.get("grade_id") != gid:
                report.add("repaired", gid, f"{gid}: metadata named {meta.get('grade_id')!r}, restored")
            elif {k: v for k, v in meta.items() if k != "checksum"} != {
                k: v for k, v in nbgrader_meta(rc.cell).items() if k != "checksum"
            }:
                report.add("repaired", gid, f"{gid}: nbgrader metadata had been edited, restored")
        if rc.kind in ("test", "readonly"):
            # an instructor cell is the release's cell, whole: text, metadata and tags, no outputs
            if _norm(cell.source) != _norm(rc.source):
                report.add("info", gid, f"{gid} was edited by the student: nbgrader runs the original")
            rebuilt = _release_cell_node(rc)
            if "id" in cell:
                rebuilt["id"] = cell["id"]
            out.append(rebuilt)
            continue
        # an answer cell keeps the student's text under the release's metadata (tags included)
        cell.metadata = nbformat.from_dict(json.loads(json.dumps(rc.cell.get("metadata", {}))))
        out.append(cell)

    # graded cells with no counterpart: put the release cell back after its predecessor
    present = {owner[i]: True for i in owner if i not in dropped}
    for k, rc in enumerate(rnb.cells):
        if rc.grade_id in present:
            continue
        prev = [r.grade_id for r in rnb.cells[:k] if r.grade_id in present]
        pos = 0
        if prev:
            pos = next(j for j, c in enumerate(out) if grade_id_of(c) == prev[-1]) + 1
        out.insert(pos, _release_cell_node(rc))
        present[rc.grade_id] = True
        if rc.kind in ("test", "readonly"):
            report.add("repaired", rc.grade_id, f"{rc.grade_id} was missing: restored from the release")
        elif rc.kind == "answer":
            report.add(
                "review",
                rc.grade_id,
                f"answer cell {rc.grade_id} was deleted: graded with the blank "
                "stub; check whether the student's code is elsewhere",
            )
        else:
            report.add("review", rc.grade_id, f"{rc.grade_id} ({rc.kind}) was deleted: restored blank")

    # notes for the student / reviewer: syntax errors and tampering in the student's own code
    graded_locked = {gid for gid, rc in release.items() if rc.kind in ("test", "readonly")}
    for cell in out:
        if cell.cell_type != "code":
            continue
        gid = grade_id_of(cell)
        if gid in graded_locked:
            continue
        try:
            ast.parse(python_source(cell.source))
        except SyntaxError as exc:
            report.add("info", gid, f"{gid or 'a student cell'} has a syntax error (line {exc.lineno}): {exc.msg}")
        for severity, message in tamper.scan(cell.source):
            report.add(severity, gid, message)

    nb.cells = out
    _fix_ids(nb)
    nb.metadata["kernelspec"] = dict(rnb.nb.metadata.get("kernelspec", {})) or nb.metadata.get("kernelspec", {})
    return nb, report


MAX_CELLS = 3000  # a real exercise notebook has well under 200
MAX_SOURCE_CHARS = 8 * 2**20  # all cell sources together
# Matching is quadratic in cells: a hostile notebook must not stall the run. An honest, messy one takes
# well under a second (the demo class's jo, every cell's metadata stripped: 0.2 s a notebook here).
# Seconds of this process's CPU, not of the clock: on a busy machine an honest notebook waits for a core,
# and must not be graded as the blank release for it (seen before the LCS bound: jo went over under load).
SECONDS = 30


class _OutOfTime(Exception):
    pass


def preflight_within(
    nb: nbformat.NotebookNode, rnb: ReleaseNotebook, student: str, seconds: int = SECONDS
) -> tuple[nbformat.NotebookNode, Report]:
    """``preflight`` within bounds: a notebook too large to check, or one that takes more than
    ``seconds`` of CPU, is graded as the blank release and sent to a human (the caller keeps the original)."""
    import signal
    import threading

    def blank(why: str) -> tuple[nbformat.NotebookNode, Report]:
        report = Report(student, rnb.name)
        report.add("review", None, f"{why}: graded as the blank release; a human must look at the original")
        return _fix_blank(rnb), report

    cells = nb.get("cells", [])
    if len(cells) > MAX_CELLS or sum(len(str(c.get("source", ""))) for c in cells) > MAX_SOURCE_CHARS:
        return blank(f"the notebook is too large to check ({len(cells)} cells)")
    if threading.current_thread() is not threading.main_thread():
        return preflight(nb, rnb, student)  # no timer signal off the main thread

    def out_of_time(signum: int, frame: FrameType | None) -> NoReturn:
        raise _OutOfTime()

    previous = signal.signal(signal.SIGPROF, out_of_time)
    signal.setitimer(signal.ITIMER_PROF, seconds)  # the process's user + system CPU time
    try:
        return preflight(nb, rnb, student)
    except _OutOfTime:
        return blank(f"checking the notebook took longer than {seconds} s of CPU")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _fix_blank(rnb: ReleaseNotebook) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(rnb.nb), as_version=4))
    _fix_ids(nb)
    return nb


def _fix_ids(nb: nbformat.NotebookNode) -> None:
    """nbformat 4.5 with unique cell ids (Colab writes 4.4 without ids; duplicates copy ids)."""
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    seen: set[str] = set()
    for i, cell in enumerate(nb.cells):
        cid = cell.get("id")
        if not cid or cid in seen or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", cid):
            base = (grade_id_of(cell) or f"cell-{i}")[:50]
            cid, n = base, 1
            while cid in seen:
                cid, n = f"{base}-{n}", n + 1
            cell["id"] = cid
        seen.add(cid)
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
