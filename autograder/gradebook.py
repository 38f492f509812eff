"""Every read and write of a gradebook goes through here, by URL: SQLite (a file path or
``sqlite:///…``, the default) or a database server such as PostgreSQL (``postgresql://…``) that
several graders (formgrader, regrades) can use at once. Queries go through SQLAlchemy and nbgrader's
own ``Gradebook`` API, so no SQL here is specific to one database."""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .probes import Verdict
from .results import CellScore, Scores

if TYPE_CHECKING:
    from collections.abc import Iterator

    from nbgrader.api import Gradebook


def alembic_head() -> str:
    """nbgrader's schema version, as `alembic heads` prints it first, read from nbgrader's migration
    scripts in this process: nbgrader runs that command (a Python process of its own, ~2 s of CPU)."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def ask_alembic_once() -> None:
    """nbgrader stamps every gradebook it creates with its schema version, asked of the `alembic heads`
    command each time. The answer is fixed for the installed nbgrader, so course-grade reads it once per
    process, without the command (``alembic_head``). nbgrader has no setting for it; ``Gradebook`` looks
    the function up when it runs."""
    import nbgrader.api

    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.cache(alembic_head)


def url_of(location: str | Path) -> str:
    """A gradebook URL from a URL or a path to an SQLite file."""
    text = str(location)
    return text if "://" in text else f"sqlite:///{Path(text).resolve()}"


@contextmanager
def opened(location: str | Path) -> Iterator[Gradebook]:
    """nbgrader's Gradebook for ``location``, its SQLAlchemy autoflush chatter silenced."""
    from nbgrader.api import Gradebook

    with warnings.catch_warnings(), Gradebook(url_of(location)) as gb:
        warnings.simplefilter("ignore")
        yield gb


def cells_digest(location: str | Path) -> str:
    """A fingerprint of every instructor cell and point value in a gradebook (tamper check)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url_of(location))
    try:
        with engine.connect() as con:
            # notebooks by name: their ids are random UUIDs, new at every generate_assignment
            rows = [
                list(r)
                for r in con.execute(
                    text(
                        "select s.name, n.name, s.source, s.checksum, s.locked, s.cell_type from source_cell s "
                        "join notebook n on n.id = s.notebook_id order by n.name, s.name"
                    )
                )
            ]
            rows += [
                list(r)
                for r in con.execute(
                    text(
                        "select b.name, n.name, g.max_score, g.cell_type from grade_cells g "
                        "join base_cell b on b.id = g.id join notebook n on n.id = b.notebook_id "
                        "order by n.name, b.name"
                    )
                )
            ]
    finally:
        engine.dispose()
    # one text form and one order for every database (SQLite gives 1/0 for booleans, PostgreSQL
    # True/False; PostgreSQL sorts text by locale)
    norm = sorted(
        json.dumps([float(v) if isinstance(v, (bool, int, float)) else v for v in r], default=str) for r in rows
    )
    return hashlib.sha256(json.dumps(norm).encode()).hexdigest()


def has_assignment(location: str | Path, assignment: str) -> bool:
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url_of(location))
    try:
        if "assignment" not in inspect(engine).get_table_names():
            return False
        with engine.connect() as con:
            return con.execute(text("select count(*) from assignment where name = :n"), {"n": assignment}).scalar() > 0
    finally:
        engine.dispose()


def reset(location: str | Path) -> None:
    """Drop every nbgrader table (a fresh course gradebook on a database server)."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine

    engine = create_engine(url_of(location))
    try:
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()


def read_scores(location: str | Path, assignment: str, student: str) -> Scores:
    """{notebook: {grade_id: CellScore}} of one submission ({} when the gradebook has none)."""
    from nbgrader.api import MissingEntry

    out: Scores = {}
    with opened(location) as gb:
        try:
            sub = gb.find_submission(assignment, student)
        except MissingEntry:
            return out
        for nb in sub.notebooks:
            out[nb.name] = {
                g.name: CellScore(
                    None if g.score is None else float(g.score),
                    float(g.max_score),
                    bool(g.needs_manual_grade),
                    g.cell.cell_type if g.cell else None,
                )
                for g in nb.grades
            }
    return out


def record_verdicts(
    location: str | Path, assignment: str, student: str, verdicts: dict[str, dict[str, Verdict]]
) -> None:
    """The autograded score of each checked cell is its verdict: all its points, or none.

    ``verdicts`` is {notebook: {grade_id: Verdict}}; one session for all of them (opening
    nbgrader's Gradebook costs ~0.3 s)."""
    from nbgrader.api import MissingEntry

    with opened(location) as gb:
        for notebook, by_cell in verdicts.items():
            try:
                nb = gb.find_submission_notebook(notebook, assignment, student)
            except MissingEntry:
                continue
            for grade in nb.grades:
                v = by_cell.get(grade.name)
                if v is not None:
                    grade.auto_score = float(grade.max_score) if v.passed else 0.0
                    grade.needs_manual_grade = False
        gb.db.commit()
