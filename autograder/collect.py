"""From a folder (or zip) of downloads to nbgrader's ``submitted/<student>/<assignment>/<name>.ipynb``.

Graders get Colab downloads and LMS exports, not a tidy tree: "ex2 (1).ipynb", "alice_ex2.ipynb",
"Alice Smith_12345_assignsubmission_file_ex12_skip_connections.ipynb", "Copy of ex12_….ipynb".
The student comes from the LMS prefix, else the top folder, else the file-name prefix; the notebook
from the release name in the file name, else the exercise numbers ("ex2" → the notebook holding
exercise 2), else the notebook's own content (its grade_ids or cell text). Files that cannot be
placed are reported with the reason, never silently dropped. A file whose name claims another
student than the folder it is in is graded as neither (a human decides).

Downloads are untrusted: zips are opened within limits (member count, sizes, compression ratio,
nesting), and a notebook file above ``MAX_NOTEBOOK_BYTES`` is not read."""
from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from .assignment import Assignment, nbgrader_meta

LMS = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_?(?P<rest>.*)$")
COPY_SUFFIX = re.compile(r"\s*[\(\[]\s*(\d+)\s*[\)\]]$|\s*-\s*copy(?:\s*\d+)?$|-checkpoint$", re.I)
COLAB_PREFIX = re.compile(r"^(copy of\s+)+", re.I)
EXERCISE_TOKEN = re.compile(r"(?:^|[^a-z0-9])ex(?:ercise)?[\s_-]*(\d+)(?![0-9])", re.I)
IGNORED = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store", "Thumbs.db"}
MAX_NOTEBOOK_BYTES = 64 * 2**20
ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_MEMBER_BYTES = 256 * 2**20
ZIP_MAX_TOTAL_BYTES = 4 * 2**30
ZIP_MAX_RATIO = 200          # uncompressed / compressed, for members above 1 MiB
ZIP_MAX_DEPTH = 3            # zips inside zips inside zips


class UnsafeArchive(ValueError):
    """A zip that breaks the limits above; the message says which."""


@dataclass
class Placement:
    origin: str            # path inside the downloads (or zip)
    student: str | None
    notebook: str | None   # release stem
    how: str               # how the notebook was identified, or why it could not be placed
    copy_number: int = 0   # "(2)" in the name: later downloads of the same file
    mtime: float = 0.0
    placed: bool = False
    kept: bool = True      # False when a newer copy of the same notebook won


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return text or "unknown"


def clean_stem(stem: str) -> tuple[str, int]:
    """Strip browser and Colab decorations; return (clean stem, copy number)."""
    copy = 0
    while True:
        m = COPY_SUFFIX.search(stem)
        if not m:
            break
        if m.group(1):
            copy = max(copy, int(m.group(1)))
        stem = stem[:m.start()]
    return COLAB_PREFIX.sub("", stem).strip(), copy


def exercise_numbers(text: str) -> set[int]:
    """'ex12' → {1, 2} (the bundle naming), 'ex2' → {2}, 'exercise_3' → {3}."""
    found: set[int] = set()
    for m in EXERCISE_TOKEN.finditer(text):
        digits = m.group(1)
        found |= {int(d) for d in digits} if len(digits) > 1 else {int(digits)}
    return found


def notebook_from_name(stem: str, assignment: Assignment) -> tuple[str | None, str]:
    lowered = stem.lower()
    by_name = [n for n in assignment.notebooks if n.lower() in lowered]
    if len(by_name) == 1:
        return by_name[0], "file name"
    numbers = exercise_numbers(lowered)
    if numbers:
        name = assignment.notebook_for_exercises(numbers)
        if name:
            return name, f"exercise number(s) {sorted(numbers)} in the file name"
    return None, ""


def _lines(text: str) -> set[str]:
    return {ln.strip() for ln in text.splitlines() if len(ln.strip()) > 3}


def notebook_from_content(nb, assignment: Assignment, ids_only: bool = False) -> tuple[str | None, float]:
    """Which release notebook this is, by grade_ids (intact metadata) or by shared lines (stripped)."""
    ids = {nbgrader_meta(c).get("grade_id") for c in nb.cells} - {None}
    scores = {}
    for name, rnb in assignment.notebooks.items():
        release_ids = set(rnb.graded)
        if ids & release_ids:
            scores[name] = 1.0 + len(ids & release_ids) / len(release_ids)
    if not scores and not ids_only:
        mine = _lines("\n".join(c.source for c in nb.cells))
        for name, rnb in assignment.notebooks.items():
            theirs = _lines("\n".join(c.source for c in rnb.nb.cells))
            scores[name] = len(mine & theirs) / max(1, len(theirs))
    if not scores:
        return None, 0.0
    ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
    best, score = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
    if score >= 0.5 and score - runner_up >= 0.1:
        return best, score
    return None, score


def student_from(rel: Path, stem: str, notebook: str | None, assignment: Assignment) -> str | None:
    for part in list(rel.parts[:-1]) + [rel.name]:
        m = LMS.match(part)
        if m:
            return slug(m.group("name"))
    if len(rel.parts) > 1:
        top = rel.parts[0]
        if top != assignment.name:
            return slug(top)
    # flat folder: "alice_ex2", "alice-ex12_skip_connections", "ex2_alice"
    lowered = stem.lower()
    cut = None
    if notebook and notebook.lower() in lowered:
        i = lowered.index(notebook.lower())
        cut = (lowered[:i], lowered[i + len(notebook):])
    else:
        m = EXERCISE_TOKEN.search(lowered)
        if m:
            cut = (lowered[:m.start()], lowered[m.end():])
    if cut:
        before, after = (slug(x) for x in cut)
        for candidate in (before, after):
            candidate = re.sub(r"^(ex|exercise)$", "", candidate)
            if candidate and candidate != "unknown" and not candidate.isdigit():
                return candidate
    return None


def _read_notebook(path: Path):
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"too large to be a notebook ({path.stat().st_size / 2**20:.0f} MiB)"
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        return None, f"unreadable ({type(exc).__name__})"
    if not text.strip():
        return None, "empty file (0 bytes of notebook JSON)"
    try:
        return nbformat.reads(text, as_version=4), ""
    except Exception as exc:  # nbformat raises several types for broken JSON or schema
        return None, f"not a valid notebook ({type(exc).__name__})"


def _walk(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file() and not (set(path.relative_to(root).parts) & IGNORED) \
                and not path.name.startswith("._"):
            yield path


def check_archive(zf: zipfile.ZipFile, name: str) -> None:
    """Refuse a zip bomb before extracting anything (UnsafeArchive says which limit it breaks)."""
    members = zf.infolist()
    if len(members) > ZIP_MAX_MEMBERS:
        raise UnsafeArchive(f"{name} holds {len(members)} files (limit {ZIP_MAX_MEMBERS})")
    total = 0
    for m in members:
        total += m.file_size
        if m.file_size > ZIP_MAX_MEMBER_BYTES:
            raise UnsafeArchive(f"{name}: {m.filename} unpacks to {m.file_size / 2**20:.0f} MiB "
                                f"(limit {ZIP_MAX_MEMBER_BYTES // 2**20} MiB)")
        if m.file_size > 2**20 and m.file_size > ZIP_MAX_RATIO * max(1, m.compress_size):
            raise UnsafeArchive(f"{name}: {m.filename} is compressed {m.file_size // max(1, m.compress_size)}:1 "
                                f"(a zip bomb? limit {ZIP_MAX_RATIO}:1)")
    if total > ZIP_MAX_TOTAL_BYTES:
        raise UnsafeArchive(f"{name} unpacks to {total / 2**30:.1f} GiB (limit {ZIP_MAX_TOTAL_BYTES // 2**30} GiB)")


def unpack(downloads: Path, into: Path, refused: dict[str, str] | None = None) -> Path:
    """A zip (possibly holding more zips, as LMS exports do) → a folder.

    The top zip must pass ``check_archive`` (else UnsafeArchive); an inner zip that does not, or that
    is nested too deep, stays packed and is listed in ``refused`` with the reason."""
    downloads = Path(downloads)
    if downloads.is_dir():
        return downloads
    if not zipfile.is_zipfile(downloads):
        raise ValueError(f"{downloads} is neither a folder nor a zip file")
    target = into / downloads.stem
    with zipfile.ZipFile(downloads) as zf:
        check_archive(zf, downloads.name)
        zf.extractall(target)     # zipfile drops absolute paths and ".." parts
    refused = {} if refused is None else refused
    for depth in range(1, ZIP_MAX_DEPTH + 1):
        inner_zips = [z for z in target.rglob("*.zip") if z.relative_to(target).as_posix() not in refused]
        for inner in inner_zips:
            rel = inner.relative_to(target).as_posix()
            try:
                if depth == ZIP_MAX_DEPTH:
                    raise UnsafeArchive(f"{rel} is nested more than {ZIP_MAX_DEPTH - 1} zips deep")
                with zipfile.ZipFile(inner) as zf:
                    check_archive(zf, rel)
                    zf.extractall(inner.with_suffix(""))
            except (UnsafeArchive, zipfile.BadZipFile, OSError) as exc:
                refused[rel] = f"not unpacked: {exc}"
                continue
            inner.unlink()
    return target


def claimed_student(rel: Path, stem: str, folders: set[str]) -> str | None:
    """The student a file's own name claims (LMS prefix, or another student's folder name as prefix)."""
    m = LMS.match(stem)
    if m:
        return slug(m.group("name"))
    lowered = slug(stem)
    for other in folders:
        if other and other != slug(rel.parts[0]) and (lowered.startswith(other + "_") or lowered == other):
            return other
    return None


def plan(downloads: Path, assignment: Assignment,
         refused: dict[str, str] | None = None) -> tuple[list[Placement], dict]:
    """Decide where every file goes; returns (placements, {origin: notebook node})."""
    placements, notebooks = [], {}
    for origin, why in sorted((refused or {}).items()):
        placements.append(Placement(origin, None, None, why))
    folders = {slug(p.name) for p in Path(downloads).iterdir() if p.is_dir() and p.name not in IGNORED}
    for path in _walk(downloads):
        rel = path.relative_to(downloads)
        origin = rel.as_posix()
        if len(rel.parts) > 1 and rel.parts[0] != assignment.name:
            claim = claimed_student(rel, clean_stem(path.stem)[0], folders)
            lms_folder = LMS.match(rel.parts[0])
            owner = slug(lms_folder.group("name")) if lms_folder else slug(rel.parts[0])
            if claim and claim != owner:
                placements.append(Placement(origin, None, None,
                                            f"the file name says {claim} but it is in {rel.parts[0]}'s folder: "
                                            "graded as neither, a human must decide"))
                continue
        if path.suffix.lower() != ".ipynb":
            owner = student_from(rel, path.stem, None, assignment) if len(rel.parts) > 1 or LMS.match(path.stem) \
                else None
            placements.append(Placement(origin, owner, None, f"not a notebook ({path.suffix or 'no extension'})"))
            continue
        stem, copy = clean_stem(path.stem)
        lms = LMS.match(stem)
        name_part = lms.group("rest") if lms and lms.group("rest") else stem
        nb, problem = _read_notebook(path)
        notebook, how = notebook_from_name(name_part, assignment)
        if nb is not None:
            by_content, score = notebook_from_content(nb, assignment, ids_only=notebook is not None)
            if notebook is None and by_content:
                notebook, how = by_content, f"notebook content (similarity {score:.2f})"
            elif notebook and by_content and by_content != notebook and score > 1.0:
                how = f"content says {by_content} (its grade_ids), file name says {notebook}: used content"
                notebook = by_content
        student = student_from(rel, name_part if not lms else stem, notebook, assignment)
        if lms:
            student = slug(lms.group("name"))
        p = Placement(origin, student, notebook, how, copy, path.stat().st_mtime)
        if nb is None:
            p.how = problem + (f"; the student scores 0 for {notebook}" if notebook and student else "")
        elif notebook is None:
            p.how = "could not tell which exercise notebook this is (name and content match none)"
        elif student is None:
            p.how = f"{how}; but no student name in the path or file name"
        else:
            p.placed = True
            notebooks[origin] = nb
        placements.append(p)
    # several downloads of the same notebook: keep the newest (then the highest "(n)")
    chosen: dict[tuple[str, str], Placement] = {}
    for p in placements:
        if not p.placed:
            continue
        key = (p.student, p.notebook)
        best = chosen.get(key)
        if best is None or (p.mtime, p.copy_number) > (best.mtime, best.copy_number):
            if best is not None:
                best.kept = False
                best.how += f"; superseded by {p.origin}"
            chosen[key] = p
        else:
            p.kept = False
            p.how += f"; superseded by {best.origin}"
    return placements, notebooks


def collect(downloads: Path, assignment: Assignment, submitted: Path,
            timestamp: str = "2026-01-01 00:00:00.000000 UTC") -> list[Placement]:
    """Copy every placeable notebook to ``submitted``; return the placements (report rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        refused: dict[str, str] = {}
        folder = unpack(Path(downloads), Path(tmp), refused)
        placements, notebooks = plan(folder, assignment, refused)
        # a student whose only file is unreadable still gets a (notebook-less) folder: graded 0, listed
        students = sorted({p.student for p in placements if p.student and (p.placed and p.kept or p.notebook)})
        for student in students:
            dest = Path(submitted) / student / assignment.name
            if dest.exists():
                shutil.rmtree(dest)
        for student in students:
            dest = Path(submitted) / student / assignment.name
            dest.mkdir(parents=True)
            (dest / "timestamp.txt").write_text(timestamp)
        for p in placements:
            if p.placed and p.kept:
                dest = Path(submitted) / p.student / assignment.name
                nbformat.write(notebooks[p.origin], str(dest / f"{p.notebook}.ipynb"))
    return placements


def write_report(placements: list[Placement], path: Path) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(placements[0]).keys()) if placements else ["origin"])
        w.writeheader()
        for p in placements:
            w.writerow(asdict(p))
