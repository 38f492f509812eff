"""Submission times, the due date and the late policy.

Where a submission time comes from, best first (``collect`` records the source per student):

1. a timestamps CSV the grader passes (``--timestamps FILE``: columns ``student`` (an id, an LMS
   user id, a display name or a file name) and ``timestamp`` (ISO 8601; a time without a zone is in
   the due date's zone));
2. the zip entry times of the LMS export (Moodle's "Download all submissions" stamps each entry with
   the file's time in Moodle; zip times carry no zone: read in the due date's zone);
3. the file's own modification time (downloads unpacked by hand, Colab files).

Canvas's ``LATE`` tag says late without saying when: with no time from 1 or 2 the file time is
used, and a LATE tag with an on-time file time is listed for review (the penalty then needs the
real time from Canvas's submission details).

Each student's time is written to ``submitted/<student>/<assignment>/timestamp.txt`` in the form
nbgrader's ``parse_utc`` reads ("2026-12-09 10:00:00.000000 UTC"), so nbgrader's own gradebook and
``AssignLatePenalties`` see it.

The policy (``--late-policy``), applied to the score a student earned:

- ``per-day:10,max-days:7`` (the default): −10 % of the earned score per started day late, zero
  after 7 days;
- ``zero``: any lateness scores zero (nbgrader's own ``penalty_method = 'zero'``);
- ``none``: times are recorded and shown, nothing is deducted.

``PerDayPenalty`` is the same policy as an nbgrader ``LateSubmissionPlugin`` (for
``AssignLatePenalties.plugin_class``): nbgrader calls it per notebook with that notebook's score,
so the per-notebook penalties add up to the penalty computed here on the total."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float, Int

if TYPE_CHECKING:
    from pathlib import Path

UTC = dt.UTC
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"


class LateError(ValueError):
    """A due date or policy that cannot be read; the message shows the accepted forms."""


@dataclass(frozen=True)
class Due:
    at: dt.datetime  # aware
    zone: dt.tzinfo

    @property
    def utc(self) -> dt.datetime:
        return self.at.astimezone(UTC)


def parse_due(text: str) -> Due:
    """'2026-12-08 23:59 Europe/Berlin', '2026-12-08T23:59:00+01:00', '2026-12-08 23:59 UTC'."""
    text = (text or "").strip()
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}:\d{2}(?::\d{2})?)\s*(.*)$", text)
    if not m:
        raise LateError(
            f"due date {text!r} not understood: write it as 'YYYY-MM-DD HH:MM Area/City', "
            "e.g. '2026-12-08 23:59 Europe/Berlin' (or an ISO time with an offset)"
        )
    when = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
    rest = m.group(3).strip()
    if re.match(r"^[+-]\d{2}:?\d{2}$", rest) or rest == "Z":
        aware = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{'+00:00' if rest == 'Z' else rest}")
        return Due(aware, aware.tzinfo)
    if not rest:
        raise LateError(f"due date {text!r} has no time zone: add one, e.g. '{text} Europe/London' or '{text} UTC'")
    try:
        zone = UTC if rest.upper() == "UTC" else ZoneInfo(rest)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LateError(f"unknown time zone {rest!r} in the due date: use an IANA name such as Europe/Paris") from exc
    return Due(when.replace(tzinfo=zone), zone)


@dataclass(frozen=True)
class Policy:
    kind: str = "per-day"  # per-day | zero | none
    percent_per_day: float = 10.0
    max_days: int = 7

    def describe(self) -> str:
        if self.kind == "none":
            return "no late penalty"
        if self.kind == "zero":
            return "late submissions score 0"
        return f"-{self.percent_per_day:g} % per started day late, 0 after {self.max_days} days"

    def fraction(self, seconds_late: float) -> float:
        """The share of the earned score taken away."""
        if seconds_late <= 0 or self.kind == "none":
            return 0.0
        if self.kind == "zero":
            return 1.0
        days = math.ceil(seconds_late / 86400)
        if days > self.max_days:
            return 1.0
        return min(1.0, days * self.percent_per_day / 100.0)


DEFAULT_POLICY = "per-day:10,max-days:7"


def parse_policy(text: str) -> Policy:
    text = (text or DEFAULT_POLICY).strip().lower()
    if text in ("none", "zero"):
        return Policy(text)
    m = re.match(r"^per-day:(\d+(?:\.\d+)?)(?:,max-days:(\d+))?$", text)
    if not m:
        raise LateError(f"late policy {text!r} not understood: use 'per-day:10,max-days:7', 'zero' or 'none'")
    return Policy("per-day", float(m.group(1)), int(m.group(2) or 7))


def due_and_policy(due_text: str, policy_text: str) -> tuple[Due | None, Policy]:
    """The due date (None: no due date given) and the late policy (default ``DEFAULT_POLICY``);
    LateError when either cannot be read."""
    return (parse_due(due_text) if due_text else None), parse_policy(policy_text)


def from_iso(text: str) -> dt.datetime | None:
    """An ISO 8601 time as collect records it (``Student.submitted_at``); None for ''."""
    return dt.datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class Lateness:
    submitted_at: dt.datetime | None
    seconds_late: float
    days_late: int  # started days
    fraction: float  # of the earned score
    note: str

    def penalty(self, score: float) -> float:
        return round(score * self.fraction, 4)


def lateness(submitted_at: dt.datetime | None, due: Due | None, policy: Policy, late_tag: bool = False) -> Lateness:
    if submitted_at is None or due is None:
        note = "LATE in the LMS, but no due date given: no penalty (pass --due)" if late_tag and due is None else ""
        return Lateness(submitted_at, 0.0, 0, 0.0, note)
    seconds = max(0.0, (submitted_at - due.utc).total_seconds())
    days = math.ceil(seconds / 86400) if seconds > 0 else 0
    frac = policy.fraction(seconds)
    if seconds > 0:
        local = submitted_at.astimezone(due.zone).strftime("%Y-%m-%d %H:%M %Z")
        note = (
            f"submitted {local}, {_span(seconds)} after the due date: {days} day(s) late, "
            f"-{frac * 100:g} % ({policy.describe()})"
        )
    elif late_tag:
        note = "the LMS marks this submission LATE but its recorded time is before the due date: check the time"
    else:
        note = ""
    return Lateness(submitted_at, seconds, days, frac, note)


def _span(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    return f"{h} h {rem // 60:02d} min" if h else f"{rem // 60} min"


def to_timestamp(when: dt.datetime) -> str:
    """nbgrader's timestamp.txt form (read by ``nbgrader.utils.parse_utc``)."""
    return when.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_time(text: str, zone: dt.tzinfo = UTC) -> dt.datetime:
    """An ISO time (zone optional: then ``zone``) or nbgrader's '... UTC' form → an aware datetime."""
    text = text.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError as exc:
        raise LateError(f"time {text!r} not understood: use ISO 8601, e.g. 2026-12-08 23:10:00+01:00") from exc
    return when if when.tzinfo else when.replace(tzinfo=zone)


# -- nbgrader ----------------------------------------------------------------------------------
class PerDayPenalty(LateSubmissionPlugin):
    """nbgrader late-submission plugin: ``percent_per_day`` of the notebook's score per started day,
    all of it after ``max_days``. Use with ``c.AssignLatePenalties.plugin_class = PerDayPenalty``."""

    percent_per_day = Float(10.0, help="share of the score taken per started day late (percent)").tag(config=True)
    max_days = Int(7, help="after this many days late the notebook scores 0").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        policy = Policy("per-day", self.percent_per_day, self.max_days)
        return round((score or 0.0) * policy.fraction(total_seconds_late), 4)


def record_in_gradebook(
    gradebook: str | Path, assignment: str, due: Due | None, students: dict[str, tuple[dt.datetime | None, float]]
) -> int:
    """Write the due date, each student's submission time and per-notebook late penalties
    (``fraction`` of each notebook's score, as ``PerDayPenalty`` would) into nbgrader's gradebook (a
    path or a URL), so formgrader and ``nbgrader export`` show them. Returns the submissions updated."""
    from nbgrader.api import MissingEntry

    from .gradebook import opened

    n = 0
    with opened(gradebook) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            return 0
        a.duedate = due.utc.replace(tzinfo=None) if due else None
        for student, (when, fraction) in students.items():
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            if when is not None:
                sub.timestamp = when.astimezone(UTC).replace(tzinfo=None)
            for nb in sub.notebooks:
                score = sum(float(g.score or 0) for g in nb.grades)
                nb.late_submission_penalty = round(score * fraction, 4) if fraction else None
            n += 1
        gb.db.commit()
    return n


LATE_START, LATE_END = "<!-- course-grade:late -->", "<!-- /course-grade:late -->"


def annotate_feedback(folder: str | Path, note: str) -> int:
    """Put (or replace, or remove when ``note`` is empty) a one-line late-penalty notice at the top
    of every feedback page in ``folder``; returns the pages changed. The note is escaped text."""
    import html
    from pathlib import Path

    changed = 0
    for page in sorted(Path(folder).glob("*.html")):
        text = page.read_text(encoding="utf-8")
        new = re.sub(re.escape(LATE_START) + ".*?" + re.escape(LATE_END), "", text, flags=re.S)
        if note:
            banner = (
                f'{LATE_START}<div id="late-penalty" style="border:2px solid #c60;padding:.5em;margin:.5em">'
                f"<strong>Late submission:</strong> {html.escape(note)}</div>{LATE_END}"
            )
            m = re.search(r"<body[^>]*>", new)
            new = new[: m.end()] + banner + new[m.end() :] if m else banner + new
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    return changed
