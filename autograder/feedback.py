"""Per-student feedback HTML built from the student's own cells and the verdicts, never hidden checks.

Before nbgrader renders a page, each notebook is rewritten:
- instructor cells get back their release text (public part only); a test cell's outputs are
  replaced by its verdict (what was checked and, when it failed, the teaching message), so nothing a
  kernel printed while the public tests ran is shown as a result;
- the student's own outputs keep plain text and images; error tracebacks keep "ErrorName: message";
  HTML and Markdown (outputs and the student's markdown cells) go through nh3, a maintained
  sanitizer (Ammonia), so student <script>, event handlers and javascript: links never reach a page;
  JavaScript, SVG and widget outputs are dropped with a note.
nh3 cleans HTML, but markdown becomes HTML later (nbconvert's mistune keeps ``[x](javascript:…)``
links) and the page loads MathJax, which turns ``$\\href{javascript:…}{x}$`` into a live link: so
student markdown and HTML also get unsafe link schemes and MathJax's link/markup commands defused
(``defuse``), and image data that is not base64 is dropped (it lands inside an ``src`` attribute).
A last check parses the rendered page (text, every attribute, and base64 blobs decoded) and refuses
to publish a page that contains any line of a hidden check or a reference solution, or student markup
that would still be live (an event handler, a javascript: URL, a MathJax link command)."""

from __future__ import annotations

import base64
import binascii
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
import nh3
from nbformat.v4 import new_output

from .assignment import ReleaseNotebook
from .cells import grade_id_of
from .probes import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BASE64 = re.compile(r"[A-Za-z0-9+/=_-]{16,}")
KEEP = ("text/plain", "image/png", "image/jpeg")
SANITIZE = ("text/html", "text/markdown")
BASE64_DATA = re.compile(r"[A-Za-z0-9+/=\s]*")


def _scheme(name: str) -> str:
    """A regex for ``name:`` as a browser reads it: any letter may be an HTML entity, and tabs,
    newlines and control characters between letters are ignored (``java&#9;script&colon;``)."""

    def char(c: str) -> str:
        return f"(?:{re.escape(c)}|&#0*{ord(c)};?|&#x0*{ord(c):x};?)"

    sep = r"(?:[\s\x00-\x1f]|&#0*(?:9|10|13);?|&#x0*(?:9|a|d);?|&(?:tab|newline);)*"
    colon = r"(?::|&colon;|&#0*58;?|&#x0*3a;?)"
    return sep.join(char(c) for c in name) + sep + colon


# Why: nbconvert's markdown renderer keeps these schemes in links and images (nh3 only sees the
# markdown text, where `[x](javascript:…)` is no tag). Defused in student markdown, wherever they are
# (no prose says "javascript:"; "data:" is prose, and browsers no longer run data: links).
UNSAFE_SCHEME = re.compile("|".join(_scheme(n) for n in ("javascript", "vbscript", "livescript")), re.I)
# Why: the feedback page loads MathJax, whose TeX commands \href/\url make links (javascript: too) and
# \class/\cssId/\style/\bbox/\unicode/\require/\mmlToken/\toggle/\texttip/\tooltip put student text
# into HTML attributes or load code. After \backslash{} they render as harmless symbols.
MATHJAX_ACTIVE = re.compile(
    r"\\(href|url|class|cssId|style|bbox|unicode|require|mmlToken|toggle|texttip|"
    r"tooltip)(?![A-Za-z])"
)


def defuse(text: str) -> str:
    """Student markdown/HTML with unsafe link schemes and MathJax's active commands made inert."""
    text = UNSAFE_SCHEME.sub("unsafe-link-removed:", text)
    return MATHJAX_ACTIVE.sub(r"\\backslash{}\1", text)


def not_theirs(secret_lines: set[str], notebooks: Iterable[nbformat.NotebookNode]) -> set[str]:
    """The secret lines a student's page must not show: a line the student wrote themselves is not a
    leak, even when a hidden check or the reference has it too (nor is one inside a line of theirs:
    "blocks = list(model.features)[-n:]" holds a reference line)."""
    own: set[str] = set()
    for nb in notebooks:
        for cell in nb.cells:
            own |= {ln.strip() for ln in str(cell.get("source", "")).splitlines()}
    own_text = "\n".join(own)
    return {line for line in secret_lines - own if line not in own_text}


class HiddenTestLeak(RuntimeError):
    pass


def verdict_text(verdict: Verdict | None, points: float) -> str:
    if verdict is None:
        return "not checked (no check ran for this cell)"
    if verdict.passed:
        return f"✔ passed: {points:g} / {points:g} points"
    return f"✘ 0 / {points:g} points: {verdict.message}"


def clean_output(out: nbformat.NotebookNode) -> nbformat.NotebookNode:
    kind = out.get("output_type")
    if kind == "error":
        message = ANSI.sub("", f"{out.get('ename', 'Error')}: {out.get('evalue', '')}").strip()
        return new_output(
            "error", ename=str(out.get("ename", "Error")), evalue=str(out.get("evalue", "")), traceback=[message]
        )
    if kind == "stream":
        return new_output("stream", name=out.get("name", "stdout"), text=ANSI.sub("", str(out.get("text", ""))))
    if kind in ("display_data", "execute_result"):
        data, dropped = {}, []
        for mime, value in dict(out.get("data", {})).items():
            text = "".join(value) if isinstance(value, list) else str(value)
            if mime in KEEP:
                if mime != "text/plain" and not BASE64_DATA.fullmatch(text):
                    dropped.append(mime)  # not image data: it would be pasted into an src="…"
                    continue
                data[mime] = text
            elif mime in SANITIZE:
                data[mime] = defuse(nh3.clean(text))
            else:
                dropped.append(mime)
        if not data.get("text/plain") and dropped:
            data["text/plain"] = f"[{', '.join(sorted(dropped))} output not shown in feedback]"
        if kind == "execute_result":
            return new_output("execute_result", data=data, execution_count=out.get("execution_count"))
        return new_output("display_data", data=data)
    return new_output("stream", name="stdout", text=f"[{kind} output not shown in feedback]")


ATTACHMENT_REF = re.compile(r"attachment:([^\s)\"'<>\]]+)")


def _attachments(cell: nbformat.NotebookNode, source: str) -> str:
    """Keep a markdown cell's PNG/JPEG attachments (pasted screenshots); drop the rest (SVG can script).

    Why: nbconvert refuses to render a page whose markdown points at a missing attachment
    ("missing attachment: x.svg"), which cost the student every feedback page; references to what
    was dropped are renamed so they render as a broken image instead."""
    kept = {}
    for name, bundle in dict(cell.get("attachments") or {}).items():
        safe = {
            m: v
            for m, v in dict(bundle or {}).items()
            if m in ("image/png", "image/jpeg") and isinstance(v, str) and BASE64_DATA.fullmatch(v)
        }
        if safe:
            kept[name] = safe
    if kept:
        cell["attachments"] = kept
    else:
        cell.pop("attachments", None)
    return ATTACHMENT_REF.sub(
        lambda m: m.group(0) if m.group(1) in kept else f"attachment-removed:{m.group(1)}", source
    )


def disarm(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student's HTML/JS made harmless in place: for the graders' copy (formgrader renders it in a
    grader's browser) and, with more removed, for the student's feedback (``sanitize``)."""
    for cell in nb.cells:
        if cell.cell_type in ("markdown", "raw"):
            cell.source = _attachments(cell, defuse(nh3.clean(cell.source)))
        else:
            cell.outputs = [clean_output(o) for o in cell.get("outputs", [])]
    return nb


def sanitize(
    nb: nbformat.NotebookNode, rnb: ReleaseNotebook, verdicts: dict[str, Verdict] | None = None
) -> nbformat.NotebookNode:
    release = rnb.graded
    disarm(nb)
    for cell in nb.cells:
        gid = grade_id_of(cell)
        rc = release.get(gid)
        if rc is not None and rc.kind in ("test", "readonly"):
            cell.source = rc.source
        if cell.cell_type == "code" and rc is not None and rc.kind == "test" and verdicts is not None:
            cell.outputs = [new_output("stream", name="stdout", text=verdict_text(verdicts.get(gid), rc.points))]
    return nb


def sanitize_file(path: Path, rnb: ReleaseNotebook, verdicts: dict[str, Verdict] | None = None) -> None:
    nb = nbformat.read(str(path), as_version=4)
    nbformat.write(sanitize(nb, rnb, verdicts), str(path))


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.data: list[str] = []
        self.attributes: list[str] = []

    def handle_data(self, data: str) -> None:
        self.data.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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


SEPARATOR = "\x00"  # joins a page's texts: a line without it can only match inside one of them
GRAM = 12  # characters of a line looked up before searching for the whole line


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def leaks(page: str, hidden_lines: set[str]) -> list[str]:
    """The hidden lines found on a page, in any of its texts, whitespace aside.

    A line found as written is also found squeezed (deleting whitespace keeps a match a match), so
    one search of each squeezed line in the page's squeezed texts decides. The texts are joined by
    SEPARATOR (a match cannot cross a separator the line does not hold) and a line is searched only
    when its first GRAM characters occur somewhere: a page has thousands of attribute values and an
    assignment over a thousand hidden lines, and text by text the check took longer than grading."""
    texts = list(dict.fromkeys(squeeze(t) for t in page_texts(page)))  # attribute values repeat
    flat = SEPARATOR.join(texts)
    lines = {line: squeeze(line) for line in hidden_lines}
    starts = {s[:GRAM] for s in lines.values() if len(s) >= GRAM}
    # only the starts that occur are kept: memory stays that of the lines, whatever the page's size
    present = {g for i in range(len(flat) - GRAM + 1) if (g := flat[i : i + GRAM]) in starts}
    found = set()
    for line, squeezed in lines.items():
        if SEPARATOR in squeezed:
            hit = any(squeezed in t for t in texts)
        else:
            hit = (len(squeezed) < GRAM or squeezed[:GRAM] in present) and squeezed in flat
        if hit:
            found.add(line)
    return sorted(found)


INERT = ("pre", "code", "script", "style", "textarea")  # MathJax does not typeset inside these


class _Live(HTMLParser):
    """Markup on a rendered page that a browser would run: event handlers, script URLs, MathJax links."""

    URL_ATTRS = {
        "href",
        "src",
        "action",
        "formaction",
        "data",
        "srcdoc",
        "xlink:href",
        "background",
        "poster",
        "srcset",
        "content",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.inert = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inert += tag in INERT
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            elif name in self.URL_ATTRS and (
                UNSAFE_SCHEME.match(value) or re.match(r"data:(text/html|image/svg|application/xhtml)", value, re.I)
            ):
                self.found.append(f"<{tag} {name}={value[:40]!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.inert -= tag in INERT

    def handle_endtag(self, tag: str) -> None:
        if tag in INERT and self.inert:
            self.inert -= 1

    def handle_data(self, data: str) -> None:
        if not self.inert and MATHJAX_ACTIVE.search(data):
            self.found.append(f"MathJax command in {data.strip()[:40]!r}")


def live_markup(page: str) -> list[str]:
    parser = _Live()
    parser.feed(page)
    parser.close()
    return parser.found


def check_page(path: Path, hidden_lines: set[str]) -> None:
    page = Path(path).read_text(encoding="utf-8", errors="replace")
    found = leaks(page, hidden_lines)
    if found:
        Path(path).write_text(
            "<html><body><p>Feedback withheld: it would have shown hidden tests. "
            "The grader has been told.</p></body></html>"
        )
        raise HiddenTestLeak(f"{path.name}: feedback would show hidden test lines, e.g. {found[0]!r}")
    # Why: sanitize() defuses what it knows of; anything still live on the rendered page (a renderer
    # quirk nobody foresaw) withholds the page rather than run the student's markup in a browser.
    live = live_markup(page)
    if live:
        Path(path).write_text(
            "<html><body><p>Feedback withheld: it would have run markup from the notebook. "
            "The grader has been told.</p></body></html>"
        )
        raise HiddenTestLeak(f"{path.name}: feedback would run markup from the notebook, e.g. {live[0]}")
