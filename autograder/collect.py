"""From a folder (or zip) of downloads to nbgrader's ``submitted/<student>/<assignment>/<name>.ipynb``.

Graders get Colab downloads and LMS exports, not a tidy tree: "ex2 (1).ipynb", "alice_ex2.ipynb",
"Alice Smith_12345_assignsubmission_file_ex12_skip_connections.ipynb", "Copy of ex12_….ipynb".
The student comes from the LMS prefix, else the top folder, else the file-name prefix; the notebook
from the release name in the file name, else the exercise numbers ("ex2" → the notebook holding
exercise 2), else the notebook's own content (its grade_ids or cell text). Files that cannot be
placed are reported with the reason, never silently dropped. A file whose name claims another
student than the folder it is in is graded as neither (a human decides).

LMS file names (Canvas, Moodle) are parsed in ``lms``: with ``lms="canvas"|"moodle"|"auto"`` the
student id comes from the LMS user id (stable across resubmissions), the display name is kept beside
it, and Canvas's LATE tag and resubmission numbers are recorded. Each student's submission time
(timestamps CSV, zip entry time, else file time; see ``late``) goes to their ``timestamp.txt``.

Downloads are untrusted: zips are opened within limits (member count, sizes, compression ratio,
nesting), and a notebook file above ``MAX_NOTEBOOK_BYTES`` is not read."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import nbformat

from . import lms as lmsmod
from .assignment import Assignment
from .cells import grade_id_of
from .late import UTC, parse_time

LMS = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_?(?P<rest>.*)$")
COPY_SUFFIX = re.compile(r"\s*[\(\[]\s*(\d+)\s*[\)\]]$|\s*-\s*copy(?:\s*\d+)?$|-checkpoint$", re.I)
COLAB_PREFIX = re.compile(r"^(copy of\s+)+", re.I)
EXERCISE_TOKEN = re.compile(r"(?:^|[^a-z0-9])ex(?:ercise)?[\s_-]*(\d+)(?![0-9])", re.I)
IGNORED = {"__MACOSX", ".ipynb_checkpoints", ".DS_Store", "Thumbs.db"}
MAX_NOTEBOOK_BYTES = 64 * 2**20
ZIP_MAX_MEMBERS = 20_000
ZIP_MAX_MEMBER_BYTES = 256 * 2**20
ZIP_MAX_TOTAL_BYTES = 4 * 2**30
ZIP_MAX_RATIO = 200  # uncompressed / compressed, for members above 1 MiB
ZIP_MAX_DEPTH = 3  # zips inside zips inside zips


class UnsafeArchive(ValueError):
    """A zip that breaks the limits above; the message says which."""


@dataclass
class Placement:
    origin: str  # path inside the downloads (or zip)
    student: str | None
    notebook: str | None  # release stem
    how: str  # how the notebook was identified, or why it could not be placed
    copy_number: int = 0  # "(2)" in the name: later downloads of the same file
    mtime: float = 0.0
    placed: bool = False
    kept: bool = True  # False when a newer copy of the same notebook won
    display_name: str = ""
    lms: str = ""  # canvas | moodle | names
    lms_user_id: str = ""
    late_tag: bool = False  # Canvas's LATE in the file name
    resubmission: int = 0  # Canvas's "-N" on a re-uploaded file
    submitted_at: str = ""  # ISO 8601 UTC
    time_source: str = ""  # timestamps CSV | zip entry time | file time


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return text or "unknown"


def identity_in(rel: Path, mode: str) -> lmsmod.Identity | None:
    """The LMS identity a path names (its folders first, then the file stem), or None."""
    for part in list(rel.parts[:-1]) + [clean_stem(Path(rel.name).stem)[0]]:
        found = lmsmod.parse(part, mode)
        if found:
            return found
    return None


def clean_stem(stem: str) -> tuple[str, int]:
    """Strip browser and Colab decorations; return (clean stem, copy number)."""
    copy = 0
    while True:
        m = COPY_SUFFIX.search(stem)
        if not m:
            break
        if m.group(1):
            copy = max(copy, int(m.group(1)))
        stem = stem[: m.start()]
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


def notebook_from_content(
    nb: nbformat.NotebookNode, assignment: Assignment, ids_only: bool = False
) -> tuple[str | None, float]:
    """Which release notebook this is, by grade_ids (intact metadata) or by shared lines (stripped)."""
    ids = {grade_id_of(c) for c in nb.cells} - {None}
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


def student_from(rel: Path, stem: str, notebook: str | None, assignment: Assignment, mode: str = "names") -> str | None:
    for part in list(rel.parts[:-1]) + [rel.name]:
        found = lmsmod.parse(part, mode)
        if found:
            return found.student_id
    if len(rel.parts) > 1:
        top = rel.parts[0]
        if top != assignment.name:
            return slug(top)
    # flat folder: "alice_ex2", "alice-ex12_skip_connections", "ex2_alice"
    lowered = stem.lower()
    cut = None
    if notebook and notebook.lower() in lowered:
        i = lowered.index(notebook.lower())
        cut = (lowered[:i], lowered[i + len(notebook) :])
    else:
        m = EXERCISE_TOKEN.search(lowered)
        if m:
            cut = (lowered[: m.start()], lowered[m.end() :])
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
        if path.is_file() and not (set(path.relative_to(root).parts) & IGNORED) and not path.name.startswith("._"):
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
            raise UnsafeArchive(
                f"{name}: {m.filename} unpacks to {m.file_size / 2**20:.0f} MiB "
                f"(limit {ZIP_MAX_MEMBER_BYTES // 2**20} MiB)"
            )
        if m.file_size > 2**20 and m.file_size > ZIP_MAX_RATIO * max(1, m.compress_size):
            raise UnsafeArchive(
                f"{name}: {m.filename} is compressed {m.file_size // max(1, m.compress_size)}:1 "
                f"(a zip bomb? limit {ZIP_MAX_RATIO}:1)"
            )
    if total > ZIP_MAX_TOTAL_BYTES:
        raise UnsafeArchive(f"{name} unpacks to {total / 2**30:.1f} GiB (limit {ZIP_MAX_TOTAL_BYTES // 2**30} GiB)")


def _iso(posix: float) -> str:
    return dt.datetime.fromtimestamp(posix, UTC).isoformat(timespec="seconds")


def _extract(zf: zipfile.ZipFile, dest: Path, root: Path, zone: dt.tzinfo, times: dict) -> None:
    """extractall, then give each file its zip entry time (zip times have no zone: read in ``zone``)."""
    zf.extractall(dest)  # zipfile drops absolute paths and ".." parts
    for info in zf.infolist():
        if info.is_dir():
            continue
        parts = [p for p in Path(info.filename.replace("\\", "/")).parts if p not in ("..", "/", "")]
        path = Path(dest, *parts)
        if not path.is_file():
            continue
        try:
            when = dt.datetime(*info.date_time, tzinfo=zone).timestamp()
        except ValueError:  # a zip with a nonsense date: keep the file time
            continue
        os.utime(path, (when, when))
        times[path.relative_to(root).as_posix()] = (when, "zip entry time")


def unpack(
    downloads: Path,
    into: Path,
    refused: dict[str, str] | None = None,
    times: dict[str, tuple[float, str]] | None = None,
    zone: dt.tzinfo = UTC,
) -> Path:
    """A zip (possibly holding more zips, as LMS exports do) → a folder.

    The top zip must pass ``check_archive`` (else UnsafeArchive); an inner zip that does not, or that
    is nested too deep, stays packed and is listed in ``refused`` with the reason. ``times`` gets each
    unpacked file's zip entry time (relative path → (POSIX time, "zip entry time"))."""
    times = {} if times is None else times
    downloads = Path(downloads)
    if downloads.is_dir():
        return downloads
    if not zipfile.is_zipfile(downloads):
        raise ValueError(f"{downloads} is neither a folder nor a zip file")
    target = into / downloads.stem
    with zipfile.ZipFile(downloads) as zf:
        check_archive(zf, downloads.name)
        _extract(zf, target, target, zone, times)
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
                    _extract(zf, inner.with_suffix(""), target, zone, times)
            except (UnsafeArchive, zipfile.BadZipFile, OSError) as exc:
                refused[rel] = f"not unpacked: {exc}"
                continue
            inner.unlink()
    return target


def claimed_student(rel: Path, stem: str, folders: set[str], mode: str = "names") -> str | None:
    """The student a file's own name claims (LMS prefix, or another student's folder name as prefix)."""
    found = lmsmod.parse(stem, mode)
    if found:
        return found.student_id
    lowered = slug(stem)
    for other in folders:
        if other and other != slug(rel.parts[0]) and (lowered.startswith(other + "_") or lowered == other):
            return other
    return None


def plan(
    downloads: Path,
    assignment: Assignment,
    refused: dict[str, str] | None = None,
    lms: str = "names",
    times: dict[str, tuple[float, str]] | None = None,
) -> tuple[list[Placement], dict]:
    """Decide where every file goes; returns (placements, {origin: notebook node}).

    ``lms`` picks the file-name parser (``lms.LMS_CHOICES``); ``times`` maps origins to
    (POSIX time, source) where the download carried one (zip entry times)."""
    mode = lms
    times = times or {}
    placements, notebooks = [], {}
    for origin, why in sorted((refused or {}).items()):
        placements.append(Placement(origin, None, None, why))
    folders = {slug(p.name) for p in Path(downloads).iterdir() if p.is_dir() and p.name not in IGNORED}
    for path in _walk(downloads):
        rel = path.relative_to(downloads)
        origin = rel.as_posix()
        if len(rel.parts) > 1 and rel.parts[0] != assignment.name:
            claim = claimed_student(rel, clean_stem(path.stem)[0], folders, mode)
            lms_folder = lmsmod.parse(rel.parts[0], mode)
            owner = lms_folder.student_id if lms_folder else slug(rel.parts[0])
            if claim and claim != owner:
                placements.append(
                    Placement(
                        origin,
                        None,
                        None,
                        f"the file name says {claim} but it is in {rel.parts[0]}'s folder: "
                        "graded as neither, a human must decide",
                    )
                )
                continue
        if path.suffix.lower() != ".ipynb":
            owner = (
                student_from(rel, path.stem, None, assignment, mode)
                if len(rel.parts) > 1 or lmsmod.parse(path.stem, mode)
                else None
            )
            placements.append(Placement(origin, owner, None, f"not a notebook ({path.suffix or 'no extension'})"))
            continue
        stem, copy = clean_stem(path.stem)
        ident = identity_in(rel, mode)
        lms = lmsmod.parse(stem, mode)
        name_part = lms.rest if lms and lms.rest else stem
        nb, problem = _read_notebook(path)
        notebook, how = notebook_from_name(name_part, assignment)
        if nb is not None:
            by_content, score = notebook_from_content(nb, assignment, ids_only=notebook is not None)
            if notebook is None and by_content:
                notebook, how = by_content, f"notebook content (similarity {score:.2f})"
            elif notebook and by_content and by_content != notebook and score > 1.0:
                how = f"content says {by_content} (its grade_ids), file name says {notebook}: used content"
                notebook = by_content
        student = student_from(rel, name_part if not lms else stem, notebook, assignment, mode)
        if lms:
            student = lms.student_id
        when, source = times.get(origin, (path.stat().st_mtime, "file time"))
        p = Placement(origin, student, notebook, how, copy, when)
        p.submitted_at, p.time_source = _iso(when), source
        if ident:
            p.display_name, p.lms, p.lms_user_id = ident.display_name, ident.lms, ident.lms_user_id
            p.late_tag, p.resubmission = ident.late, ident.resubmission
        elif student:
            p.display_name, p.lms = (rel.parts[0] if len(rel.parts) > 1 else student), "names"
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
    refuse_loose_claims(placements)
    keep_newest(placements)
    return placements, notebooks


def refuse_loose_claims(placements: list[Placement]) -> None:
    """A loose file (no folder, no LMS prefix) whose name starts with a student who handed in the same
    notebook in their own folder must not replace it as "the newest": graded as neither, listed."""
    in_folder = {(p.student, p.notebook) for p in placements if p.placed and "/" in p.origin}
    for p in placements:
        if p.placed and "/" not in p.origin and p.lms in ("", "names") and (p.student, p.notebook) in in_folder:
            p.how += (
                f"; the file name says {p.student}, who handed in {p.notebook} in their own folder: "
                "not graded, a human must decide"
            )
            p.placed, p.student = False, None


def keep_newest(placements: list[Placement]) -> None:
    """Several downloads of the same notebook: keep the newest (then the highest resubmission, "(n)")."""
    chosen: dict[tuple[str, str], Placement] = {}
    for p in placements:
        if not (p.placed and p.kept):
            continue
        key = (p.student, p.notebook)
        best = chosen.get(key)
        if best is None or (p.mtime, p.resubmission, p.copy_number) > (best.mtime, best.resubmission, best.copy_number):
            if best is not None:
                best.kept = False
                best.how += f"; superseded by {p.origin}"
            chosen[key] = p
        else:
            p.kept = False
            p.how += f"; superseded by {best.origin}"


def load_timestamps(path: Path, zone: dt.tzinfo = UTC) -> dict[str, dt.datetime]:
    """A timestamps CSV (columns ``student``, ``timestamp``) → {key: aware time}; keys are matched
    against student ids, LMS user ids, display names and file names."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"student", "timestamp"} <= {(c or "").strip().lower() for c in rows[0]}:
        raise ValueError(
            f"{path} needs the columns student,timestamp (one row per student or file), "
            f"found {list(rows[0]) if rows else 'no rows'}"
        )
    out = {}
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not row["student"]:
            continue
        try:
            out[row["student"]] = parse_time(row["timestamp"], zone)
        except ValueError as exc:
            raise ValueError(f"{path} line {n}: {exc}") from exc
    return out


def _time_from_csv(p: Placement, stamps: dict[str, dt.datetime], first_id: str | None = None) -> dt.datetime | None:
    for key in (
        p.student,
        first_id,
        p.lms_user_id,
        p.display_name,
        slug(p.display_name or ""),
        p.origin,
        Path(p.origin).name,
    ):
        if key and key in stamps:
            return stamps[key]
    return None


def apply_roster(placements: list[Placement], roster: lmsmod.Roster | None, mode: str) -> dict[str, lmsmod.Student]:
    """Group placements by student, add what the roster knows, and the roster's students who sent
    nothing; placements of a student the roster maps to an LMS id are renamed to that id."""
    students: dict[str, lmsmod.Student] = {}
    for p in placements:
        if not p.student:
            continue
        if not p.lms:  # a stray file (a PDF, a refused zip): what its path says
            found = identity_in(Path(p.origin), mode)
            if found and found.student_id == p.student:
                p.display_name, p.lms, p.lms_user_id = found.display_name, found.lms, found.lms_user_id
        ident = lmsmod.Identity(p.student, p.display_name or p.student, p.lms or "names", p.lms_user_id)
        entry = roster.find(ident) if roster else None
        if entry is not None:
            lms = (
                p.lms
                if p.lms in ("canvas", "moodle")
                else (roster.lms or (mode if mode in ("canvas", "moodle") else ""))
            )
            if lms:
                p.student, p.lms, p.lms_user_id = f"{lms}_{entry.id}", lms, entry.id
            else:
                p.lms_user_id = p.lms_user_id or entry.id
        s = students.get(p.student)
        if s is None:
            s = students[p.student] = lmsmod.Student(
                p.student, p.display_name or p.student, p.lms or "names", p.lms_user_id
            )
            if entry is not None:
                s.display_name, s.email, s.section = entry.name, entry.email, entry.section
                s.sis_user_id, s.login_id, s.in_roster = entry.sis_user_id, entry.login_id, True
        if not s.lms_user_id and p.lms_user_id:
            s.lms_user_id = p.lms_user_id
        if s.lms == "names" and p.lms in ("canvas", "moodle"):
            s.lms, s.display_name = p.lms, p.display_name or s.display_name
        s.origins.append(p.origin)
        s.late_tag = s.late_tag or (p.late_tag and p.placed and p.kept)
        s.resubmissions = max(s.resubmissions, p.resubmission)
    if roster:
        seen = {s.lms_user_id for s in students.values() if s.in_roster}
        for e in roster.entries:
            if e.id not in seen:
                lms = roster.lms or (mode if mode in ("canvas", "moodle") else "")
                absent = lmsmod.roster_student(e, lms or "names")
                students.setdefault(absent.student_id, absent)
    return students


def collect(
    downloads: Path,
    assignment: Assignment,
    submitted: Path,
    timestamp: str | None = None,
    lms: str = "names",
    roster: lmsmod.Roster | None = None,
    timestamps: Path | None = None,
    zone: dt.tzinfo = UTC,
) -> list[Placement]:
    """Copy every placeable notebook to ``submitted``; return the placements (report rows).

    Each student's ``timestamp.txt`` holds their latest kept file's time (timestamps CSV, else zip
    entry time, else file time; ``timestamp`` forces one time for everyone, the old behaviour)."""
    return collect_students(downloads, assignment, submitted, timestamp, lms, roster, timestamps, zone)[0]


def collect_students(
    downloads: Path,
    assignment: Assignment,
    submitted: Path,
    timestamp: str | None = None,
    lms: str = "names",
    roster: lmsmod.Roster | None = None,
    timestamps: Path | None = None,
    zone: dt.tzinfo = UTC,
) -> tuple[list[Placement], dict[str, lmsmod.Student]]:
    """``collect``, also returning every student (roster included) with their submission time."""
    from .late import to_timestamp

    stamps = load_timestamps(timestamps, zone) if timestamps else {}
    with tempfile.TemporaryDirectory() as tmp:
        refused: dict[str, str] = {}
        times: dict[str, tuple[float, str]] = {}
        folder = unpack(Path(downloads), Path(tmp), refused, times, zone)
        placements, notebooks = plan(folder, assignment, refused, lms, times)
        before = {id(p): p.student for p in placements}
        people = apply_roster(placements, roster, lms)
        for p in placements:  # the CSV may name a student by the id before or after the roster
            when = _time_from_csv(p, stamps, before[id(p)]) if stamps else None
            if when is not None:
                p.mtime, p.submitted_at, p.time_source = when.timestamp(), _iso(when.timestamp()), "timestamps CSV"
        keep_newest(placements)  # the roster may have joined two names into one student
        # a student whose only file is unreadable still gets a (notebook-less) folder: graded 0, listed
        students = sorted({p.student for p in placements if p.student and (p.placed and p.kept or p.notebook)})
        for student in students:
            dest = Path(submitted) / student / assignment.name
            if dest.exists():
                shutil.rmtree(dest)
        for student in students:
            dest = Path(submitted) / student / assignment.name
            dest.mkdir(parents=True)
            mine = [p for p in placements if p.student == student and (p.placed and p.kept)] or [
                p for p in placements if p.student == student
            ]
            latest = max(mine, key=lambda p: p.mtime)
            person = people[student]
            person.submitted_at, person.time_source = latest.submitted_at, latest.time_source
            (dest / "timestamp.txt").write_text(timestamp or to_timestamp(dt.datetime.fromtimestamp(latest.mtime, UTC)))
        for p in placements:
            if p.placed and p.kept:
                dest = Path(submitted) / p.student / assignment.name
                nbformat.write(notebooks[p.origin], str(dest / f"{p.notebook}.ipynb"))
        for sid, person in people.items():
            if sid not in students:
                person.submitted = False
    return placements, people


def write_report(placements: list[Placement], path: Path) -> None:
    """``exports/collect.csv``: one row per file in the downloads (``read_report`` reads it back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(placements[0]).keys()) if placements else ["origin"])
        w.writeheader()
        for p in placements:
            w.writerow(asdict(p))


def _cell(kind: str, text: str):
    if kind == "bool":
        return text == "True"
    if kind in ("int", "float"):
        return (int if kind == "int" else float)(text or 0)
    if kind.endswith("| None"):
        return text or None
    return text


def read_report(path: Path) -> list[Placement]:
    """The placements ``write_report`` wrote ([] when there is no report: nothing was collected)."""
    path = Path(path)
    if not path.exists():
        return []
    kinds = {f.name: str(f.type) for f in fields(Placement)}
    with open(path, newline="") as f:
        return [Placement(**{k: _cell(kinds[k], v) for k, v in row.items() if k in kinds}) for row in csv.DictReader(f)]


@dataclass
class Record:
    """What collect was given (``exports/collect.json``): export takes the due date and late policy
    from here when its own command line gives none."""

    downloads: str
    lms: str = "names"
    due: str = ""
    late_policy: str = ""
    roster: dict | None = None  # ``lms.Roster.to_dict()``

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def write_record(path: Path, record: Record) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_dict(), indent=1, sort_keys=True))


def read_record(path: Path) -> Record | None:
    """``exports/collect.json``; None before the first collect."""
    path = Path(path)
    return Record.from_dict(json.loads(path.read_text())) if path.exists() else None
