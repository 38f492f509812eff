"""Who handed a file in: one parser per LMS download format, and the class roster.

``collect --lms canvas|moodle|auto`` reads the student from the LMS's own file names, keyed by the
LMS's user id, so a resubmission or a renamed student keeps the same nbgrader student id and the
grade import files (``export --format canvas|moodle``) can name the student the way the LMS does.

Formats (where each comes from):

- **Canvas** "Download Submissions" zip: ``<sortablename>[_LATE]_<user id>_<file id>_<original name>``,
  e.g. ``smithjohn_LATE_12345_6789012_ex12.ipynb``. The name is the student's sortable name with
  spaces and punctuation removed, lower case; ``LATE`` is Canvas's own flag for a submission after
  the due date; the user id is the Canvas user id (the ``ID`` column of Canvas's gradebook CSV, see
  Canvas's ``Course#gradebook_to_csv``); the second number is the attachment (file) id, new at every
  upload. A student who uploads the same file name again gets ``ex12-1.ipynb``, ``ex12-2.ipynb``
  (Canvas numbers duplicate names in the student's files): recorded as the resubmission count.
  Student id: ``canvas_<user id>``.
- **Moodle** assignment "Download all submissions": ``<Full name>_<participant id>_assignsubmission_file_<name>``
  (or a folder of that name when "Download submissions in folders" is on). The participant id is
  the assignment's unique id for the user, the number Moodle's offline grading worksheet writes as
  ``Participant <id>`` in its ``Identifier`` column and reads back on import
  (``assignfeedback_offline`` ``gradeimporter::next``: the id is what follows the ``hiddenuser``
  string "Participant "). Student id: ``moodle_<participant id>``.
- **Folder / Colab / browser** names (``alice/ex12 (1).ipynb``, ``alice_ex12.ipynb``,
  ``Copy of ex12.ipynb``): as before, the student id is the slug of the folder or file-name prefix.

``--lms names`` (the default) keeps the old behaviour exactly: Moodle names become the slug of the
full name, Canvas names are not recognised.

The roster (``--roster FILE``) is a CSV with the columns ``id, name, email, section`` (optionally
``sis_user_id, login_id``); a Canvas gradebook export (``Student, ID, SIS User ID, SIS Login ID,
Section``) or a Moodle grading worksheet (``Identifier, Full name, Email address``) is accepted as
it is downloaded. Roster ids are LMS user ids (Canvas) or participant ids (Moodle)."""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path

LMS_CHOICES = ("names", "canvas", "moodle", "auto")

CANVAS = re.compile(r"^(?P<name>[A-Za-z0-9-]+?)(?P<late>_(?i:late))?_(?P<uid>\d+)_(?P<fid>\d+)_(?P<rest>.+)$")
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<uid>\d+)_assignsubmission_(?:file|onlinetext)_?(?P<rest>.*)$")
CANVAS_RESUBMISSION = re.compile(r"-(\d+)$")  # ex12-1.ipynb: the second upload of ex12.ipynb


def slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return text or "unknown"


def squash(text: str) -> str:
    """What Canvas does to a sortable name in download file names: 'Smith, John' → 'smithjohn'."""
    return slug(text).replace("_", "")


@dataclass(frozen=True)
class Identity:
    """The student one file belongs to, as its name tells it."""

    student_id: str  # the nbgrader student id (folder under submitted/)
    display_name: str  # as the LMS wrote it ("smithjohn", "Alice Smith"), or the folder name
    lms: str  # canvas | moodle | names
    lms_user_id: str = ""  # Canvas user id / Moodle participant id
    file_id: str = ""  # Canvas attachment id
    late: bool = False  # Canvas's LATE tag
    resubmission: int = 0  # Canvas's "-N" on a re-uploaded file name
    rest: str = ""  # what is left of the name: the student's own file name


def parse_canvas(part: str) -> Identity | None:
    m = CANVAS.match(part)
    if not m:
        return None
    rest = m.group("rest")
    resub = CANVAS_RESUBMISSION.search(rest)
    if resub:
        rest = rest[: resub.start()]
    return Identity(
        f"canvas_{m.group('uid')}",
        m.group("name"),
        "canvas",
        m.group("uid"),
        m.group("fid"),
        bool(m.group("late")),
        int(resub.group(1)) if resub else 0,
        rest,
    )


def parse_moodle(part: str, stable: bool = True) -> Identity | None:
    m = MOODLE.match(part)
    if not m:
        return None
    sid = f"moodle_{m.group('uid')}" if stable else slug(m.group("name"))
    return Identity(sid, m.group("name"), "moodle", m.group("uid"), rest=m.group("rest"))


def parse(part: str, lms: str) -> Identity | None:
    """One path part (a folder name or a file stem) → the identity it names, or None.

    ``lms`` is one of ``LMS_CHOICES``; "names" recognises Moodle names but keeps the old name-slug ids."""
    if lms not in LMS_CHOICES:
        raise ValueError(f"unknown LMS {lms!r}: use one of {', '.join(LMS_CHOICES)}")
    if lms in ("canvas", "auto"):
        found = parse_canvas(part)
        if found:
            return found
    if lms in ("moodle", "auto"):
        return parse_moodle(part)
    if lms == "names":
        return parse_moodle(part, stable=False)
    return None


# -- roster ------------------------------------------------------------------------------------
@dataclass
class RosterEntry:
    id: str
    name: str
    email: str = ""
    section: str = ""
    sis_user_id: str = ""
    login_id: str = ""


@dataclass
class Roster:
    entries: list[RosterEntry] = field(default_factory=list)
    source: str = ""
    lms: str = ""  # canvas | moodle when the file is that LMS's own export

    def find(self, identity: Identity) -> RosterEntry | None:
        """By LMS user id first; then by name (Canvas's squashed sortable name, a full name, or a
        folder name equal to the e-mail's local part or the login id)."""
        if identity.lms_user_id:
            for e in self.entries:
                if e.id == identity.lms_user_id:
                    return e
        wanted = {squash(identity.display_name), squash(identity.student_id)}
        matches = [
            e
            for e in self.entries
            if {squash(e.name), squash(_first_last(e.name)), squash(e.email.split("@")[0]), squash(e.login_id)}
            & wanted - {""}
        ]
        return matches[0] if len(matches) == 1 else None

    def to_dict(self) -> dict:
        return {"source": self.source, "lms": self.lms, "entries": [asdict(e) for e in self.entries]}


def _first_last(name: str) -> str:
    """'Smith, John' → 'John Smith' (Canvas's sortable name back to a display name)."""
    if "," in name:
        last, first = name.split(",", 1)
        return f"{first.strip()} {last.strip()}"
    return name


class RosterError(ValueError):
    """A roster file that cannot be read; the message says which columns it needs."""


def load_roster(path: Path) -> Roster:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"cannot read the roster {path}: {exc}") from exc
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise RosterError(f"the roster {path} has no rows")
    cols = {c.strip().lower(): c for c in rows[0] if c}
    entries: list[RosterEntry] = []
    kind = ""

    def get(row: dict[str, str | None], *names: str) -> str:
        for n in names:
            if n in cols and row.get(cols[n]):
                return row[cols[n]].strip()
        return ""

    if "identifier" in cols:  # a Moodle grading worksheet
        kind = "moodle"
        for row in rows:
            ident = get(row, "identifier")
            m = re.search(r"(\d+)\s*$", ident)
            if m:
                entries.append(RosterEntry(m.group(1), get(row, "full name"), get(row, "email address")))
    elif "student" in cols and "id" in cols:  # a Canvas gradebook export
        kind = "canvas"
        for row in rows:
            if "points possible" in get(row, "student").lower() or not get(row, "id"):
                continue  # Canvas's second row, and "Muted" rows
            entries.append(
                RosterEntry(
                    get(row, "id"),
                    get(row, "student"),
                    "",
                    get(row, "section"),
                    get(row, "sis user id"),
                    get(row, "sis login id"),
                )
            )
    elif "id" in cols and "name" in cols:
        for row in rows:
            if get(row, "id"):
                entries.append(
                    RosterEntry(
                        get(row, "id"),
                        get(row, "name"),
                        get(row, "email"),
                        get(row, "section"),
                        get(row, "sis_user_id", "sis user id"),
                        get(row, "login_id", "login"),
                    )
                )
    else:
        raise RosterError(
            f"the roster {path} has the columns {list(rows[0].keys())}: it needs id, name "
            "(and optionally email, section), or be a Canvas gradebook export or a Moodle "
            "grading worksheet as downloaded"
        )
    seen: dict[str, RosterEntry] = {}
    for e in entries:
        if e.id in seen:
            raise RosterError(f"the roster {path} lists id {e.id} twice ({seen[e.id].name!r} and {e.name!r})")
        seen[e.id] = e
    return Roster(entries, str(path), kind)


@dataclass
class Student:
    """Everything the exports need about one student (exports/students.json)."""

    student_id: str
    display_name: str
    lms: str
    lms_user_id: str = ""
    email: str = ""
    section: str = ""
    sis_user_id: str = ""
    login_id: str = ""
    late_tag: bool = False
    resubmissions: int = 0
    submitted_at: str = ""  # ISO 8601, UTC
    time_source: str = ""  # timestamps CSV | zip entry time | file time
    origins: list[str] = field(default_factory=list)
    in_roster: bool = False
    submitted: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> Student:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def read_students(path: Path) -> dict[str, Student]:
    """``exports/students.json``: every student collect saw or the roster named ({} before collect)."""
    path = Path(path)
    if not path.exists():
        return {}
    return {sid: Student.from_dict(d) for sid, d in json.loads(path.read_text()).items()}


def write_students(path: Path, people: dict[str, Student]) -> None:
    """Write ``exports/students.json`` (the one writer; ``read_students`` is the one reader)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({sid: asdict(s) for sid, s in sorted(people.items())}, indent=1, sort_keys=True))


def roster_student(e: RosterEntry, lms: str) -> Student:
    prefix = lms if lms in ("canvas", "moodle") else ""
    sid = f"{prefix}_{e.id}" if prefix else slug(e.name)
    return Student(
        sid, e.name, lms, e.id, e.email, e.section, e.sis_user_id, e.login_id, in_roster=True, submitted=False
    )


def split_name(display: str) -> tuple[str, str]:
    """(first, last) for nbgrader's student table: 'Smith, John' → ('John', 'Smith'), 'Ann Lee' →
    ('Ann', 'Lee'), 'smithjohn' → ('', 'smithjohn')."""
    if "," in display:
        last, first = display.split(",", 1)
        return first.strip(), last.strip()
    parts = display.split()
    return (" ".join(parts[:-1]), parts[-1]) if len(parts) > 1 else ("", display)


def name_in_gradebook(gradebook: str | Path, people: dict[str, Student]) -> int:
    """Give nbgrader's student records (gradebook: a path or a URL) the display name, e-mail and LMS
    user id (formgrader then shows names, ``nbgrader export`` carries the LMS id). Returns the count."""
    from nbgrader.api import MissingEntry

    from .gradebook import opened

    n = 0
    with opened(gradebook) as gb:
        for sid, person in people.items():
            try:
                student = gb.find_student(sid)
            except MissingEntry:
                continue
            student.first_name, student.last_name = split_name(person.display_name)
            student.email = person.email or student.email
            student.lms_user_id = person.lms_user_id or student.lms_user_id
            n += 1
        gb.db.commit()
    return n
