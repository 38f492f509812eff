"""Per-student feedback HTML built from the student's own cells and the verdicts, never hidden checks.

Before nbgrader renders a page, each notebook is rewritten:
- instructor cells get back their release text (public part only); a test cell's outputs are
  replaced by its verdict (what was checked and, when it failed, the teaching message), so nothing a
  kernel printed while the public tests ran is shown as a result;
- the student's own outputs keep plain text and images; error tracebacks keep "ErrorName: message";
  HTML and Markdown (outputs and the student's markdown cells) go through nh3, a maintained
  sanitizer (Ammonia), so student <script>, event handlers and javascript: links never reach a page;
  JavaScript, SVG and widget outputs are dropped with a note.
A last check parses the rendered page (text, every attribute, and base64 blobs decoded) and refuses
to publish a page that contains any line of a hidden check or a reference solution."""
from __future__ import annotations

import base64
import binascii
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import nh3
from nbformat.v4 import new_output

from .assignment import ReleaseNotebook, nbgrader_meta

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
KEEP = ("text/plain", "image/png", "image/jpeg")
SANITIZE = ("text/html", "text/markdown")


class HiddenTestLeak(RuntimeError):
    pass


def verdict_text(verdict: dict | None, points: float) -> str:
    if verdict is None:
        return "not checked (no check ran for this cell)"
    if verdict.get("passed"):
        return f"✔ passed: {points:g} / {points:g} points"
    return f"✘ 0 / {points:g} points: {verdict.get('message', '')}"


def clean_output(out):
    kind = out.get("output_type")
    if kind == "error":
        message = ANSI.sub("", f"{out.get('ename', 'Error')}: {out.get('evalue', '')}").strip()
        return new_output("error", ename=str(out.get("ename", "Error")), evalue=str(out.get("evalue", "")),
                          traceback=[message])
    if kind == "stream":
        return new_output("stream", name=out.get("name", "stdout"), text=ANSI.sub("", str(out.get("text", ""))))
    if kind in ("display_data", "execute_result"):
        data, dropped = {}, []
        for mime, value in dict(out.get("data", {})).items():
            text = "".join(value) if isinstance(value, list) else str(value)
            if mime in KEEP:
                data[mime] = text
            elif mime in SANITIZE:
                data[mime] = nh3.clean(text)
            else:
                dropped.append(mime)
        if not data.get("text/plain") and dropped:
            data["text/plain"] = f"[{', '.join(sorted(dropped))} output not shown in feedback]"
        if kind == "execute_result":
            return new_output("execute_result", data=data, execution_count=out.get("execution_count"))
        return new_output("display_data", data=data)
    return new_output("stream", name="stdout", text=f"[{kind} output not shown in feedback]")


def disarm(nb):
    """The student's HTML/JS made harmless in place: for the graders' copy (formgrader renders it in a
    grader's browser) and, with more removed, for the student's feedback (``sanitize``)."""
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            cell.source = nh3.clean(cell.source)
            cell.pop("attachments", None)
        else:
            cell.outputs = [clean_output(o) for o in cell.get("outputs", [])]
    return nb


def sanitize(nb, rnb: ReleaseNotebook, verdicts: dict[str, dict] | None = None):
    release = rnb.graded
    disarm(nb)
    for cell in nb.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        rc = release.get(gid)
        if rc is not None and rc.kind in ("test", "readonly"):
            cell.source = rc.source
        if cell.cell_type == "code" and rc is not None and rc.kind == "test" and verdicts is not None:
            cell.outputs = [new_output("stream", name="stdout", text=verdict_text(verdicts.get(gid), rc.points))]
    return nb


def sanitize_file(path: Path, rnb: ReleaseNotebook, verdicts: dict[str, dict] | None = None) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.write(sanitize(nb, rnb, verdicts), str(path))


class _Texts(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.data: list[str] = []
        self.attributes: list[str] = []

    def handle_data(self, data):
        self.data.append(data)

    def handle_starttag(self, tag, attrs):
        self.attributes += [v for _, v in attrs if v]

    handle_startendtag = handle_starttag


def page_texts(page: str) -> list[str]:
    """Everything a page carries as text: its text, every attribute value, and base64 blobs decoded."""
    parser = _Texts()
    parser.feed(page)
    parser.close()
    # the visible text as one string (syntax highlighting splits a line over many tags)
    texts = ["".join(parser.data)] + [html.unescape(a) for a in parser.attributes] + [page]
    for blob in BASE64.findall(page):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(blob + "=" * (-len(blob) % 4))
            except (binascii.Error, ValueError):
                continue
            text = raw.decode("utf-8", errors="ignore")
            if sum(ch.isprintable() for ch in text) > 0.8 * max(1, len(text)):
                texts.append(text)
    return texts


def leaks(page: str, hidden_lines: set[str]) -> list[str]:
    texts = page_texts(page)
    flat = [re.sub(r"\s+", "", t) for t in texts]
    found = set()
    for line in hidden_lines:
        squeezed = re.sub(r"\s+", "", line)
        if any(line in t for t in texts) or any(squeezed in f for f in flat):
            found.add(line)
    return sorted(found)


def check_page(path: Path, hidden_lines: set[str]) -> None:
    found = leaks(Path(path).read_text(encoding="utf-8", errors="replace"), hidden_lines)
    if found:
        Path(path).write_text("<html><body><p>Feedback withheld: it would have shown hidden tests. "
                              "The grader has been told.</p></body></html>")
        raise HiddenTestLeak(f"{path.name}: feedback would show hidden test lines, e.g. {found[0]!r}")
