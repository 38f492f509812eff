"""Per-student feedback HTML that shows every test's result but never the hidden tests.

nbgrader's feedback renders the autograded notebook, whose test cells hold the hidden tests
verbatim, and IPython tracebacks quote the failing test line. So before nbgrader renders, each
instructor cell gets back its release text (public part only) and each error output keeps only
"ErrorName: message" (the teaching message). A last check strips the HTML to text and refuses to
publish a page containing any line of a hidden test."""
from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat

from .assignment import ReleaseNotebook, nbgrader_meta

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TAG = re.compile(r"<[^>]+>")


class HiddenTestLeak(RuntimeError):
    pass


def sanitize(nb, rnb: ReleaseNotebook):
    release = rnb.graded
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        rc = release.get(gid)
        if rc is not None and rc.kind in ("test", "readonly"):
            cell.source = rc.source
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                message = ANSI.sub("", f"{out.get('ename', 'Error')}: {out.get('evalue', '')}").strip()
                out["traceback"] = [message]
    return nb


def sanitize_file(path: Path, rnb: ReleaseNotebook) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.write(sanitize(nb, rnb), str(path))


def visible_text(page: str) -> str:
    return html.unescape(TAG.sub("", page))


def leaks(page: str, hidden_lines: set[str]) -> list[str]:
    text = visible_text(page)
    flat = re.sub(r"\s+", "", text)
    return sorted(line for line in hidden_lines if line in text or re.sub(r"\s+", "", line) in flat)


def check_page(path: Path, hidden_lines: set[str]) -> None:
    found = leaks(Path(path).read_text(encoding="utf-8", errors="replace"), hidden_lines)
    if found:
        Path(path).write_text("<html><body><p>Feedback withheld: it would have shown hidden tests. "
                              "The grader has been told.</p></body></html>")
        raise HiddenTestLeak(f"{path.name}: feedback would show hidden test lines, e.g. {found[0]!r}")
