"""Results → grades.csv (per exercise and total), needs_review.csv and a summary figure.

An exercise's score is the sum of its autograded test cells (grade_id prefix ``ex{N}_``).
A notebook whose kernel died scores 0 here and is listed in needs_review.csv with the reason. Code
that looks like tampering is listed for review too, but keeps its score: scores are verdicts decided
outside the student's kernel, so tampering cannot raise them (and a false alarm costs nothing)."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .assignment import Assignment


@dataclass
class StudentGrade:
    student: str
    exercises: dict[str, float]
    total: float
    manual_pending: float
    notes: list[str] = field(default_factory=list)
    review: list[tuple[str, str]] = field(default_factory=list)   # (notebook, reason)


def student_grade(student: str, result: dict | None, rel: Assignment, preflight: dict[str, dict]) -> StudentGrade:
    result = result or {"notebooks": {}, "scores": {}, "error": "not graded"}
    scores = result.get("scores") or {}
    exercises = {e: 0.0 for e in rel.exercises()}
    manual = 0.0
    g = StudentGrade(student, exercises, 0.0, 0.0)
    if result.get("error"):
        g.review.append(("", result["error"]))
    if result.get("gradebook_intact") is False:
        g.review.append(("", "the gradebook's tests changed during grading: every score set to 0"))
    for name, rnb in rel.notebooks.items():
        entry = result.get("notebooks", {}).get(name)
        nb_scores = scores.get(name, {})
        report = preflight.get(name)
        if report:
            for f in report["findings"]:
                if f["severity"] in ("review", "tamper"):
                    g.review.append((name, f["message"]))
        zero = result.get("gradebook_intact") is False
        if entry and entry.get("status") == "failed":
            g.review.append((name, f"not graded: {entry.get('reason')}; scored 0"))
            zero = True
        if entry:
            g.notes += [f"{name}: {n}" for n in entry.get("notes", [])]
            undone = sorted({e["undone"] for e in entry.get("guard", [])})
            if undone:
                g.review.append((name, "tampering undone before the tests ran (no points gained): "
                                 + "; ".join(undone[:6])))
        would_have = 0.0
        for rc in rnb.cells:
            got = nb_scores.get(rc.grade_id)
            score = float(got[0]) if got and got[0] is not None else 0.0
            if rc.kind == "test":
                would_have += score
                if not zero:
                    exercises[rc.exercise] = exercises.get(rc.exercise, 0.0) + score
            elif rc.kind in ("manual", "task") and (got is None or got[2] or got[0] is None):
                manual += rc.points
        if entry and entry.get("tamper_flags"):
            g.review.append((name, f"possible tampering in the student's code (score {would_have:g} kept: "
                             "tampering cannot raise a verdict): " + "; ".join(entry["tamper_flags"][:4])))
        if result.get("feedback", {}).get("withheld"):
            g.review += [(name, w) for w in result["feedback"]["withheld"] if w.startswith(name)]
    g.total = sum(exercises.values())
    g.manual_pending = manual
    return g


def write_grades(grades: list[StudentGrade], rel: Assignment, path: Path) -> None:
    maxima = rel.max_points()
    columns = ["student"] + list(rel.exercises()) + ["total", "max_total", "manual_points_pending", "needs_review",
                                                     "notes"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerow(["(max)"] + [f"{maxima.get(e, 0):g}" for e in rel.exercises()]
                   + [f"{sum(maxima.values()):g}", "", f"{rel.manual_points():g}", "", ""])
        for g in grades:
            w.writerow([g.student] + [f"{g.exercises.get(e, 0):g}" for e in rel.exercises()]
                       + [f"{g.total:g}", f"{sum(maxima.values()):g}", f"{g.manual_pending:g}",
                          "yes" if g.review else "", " | ".join(g.notes)])


def write_review(grades: list[StudentGrade], unplaced: list[tuple[str, str, str]], path: Path) -> int:
    """needs_review.csv: one row per (student, notebook, reason); returns the row count."""
    rows = [(g.student, nb, why) for g in grades for nb, why in g.review]
    rows += [(student or "", "", f"{origin}: {why}") for origin, student, why in unplaced]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "notebook", "reason"])
        w.writerows(rows)
    return len(rows)


def summary_figure(grades: list[StudentGrade], rel: Assignment, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maxima = rel.max_points()
    total_max = sum(maxima.values())
    exercises = [e for e in rel.exercises() if maxima.get(e)]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    totals = [g.total for g in grades]
    bins = min(20, max(5, int(total_max) or 5))
    ax1.hist(totals, bins=bins, range=(0, total_max or 1), color="#4C72B0", edgecolor="white")
    ax1.set_xlabel(f"autograded score (out of {total_max:g} points)")
    ax1.set_ylabel("number of students")
    ax1.set_title(f"Score distribution ({len(grades)} students)")
    rates = [100.0 * sum(g.exercises.get(e, 0) >= maxima[e] - 1e-9 for g in grades) / max(1, len(grades))
             for e in exercises]
    bars = ax2.bar(exercises, rates, color="#55A868")
    for bar, rate in zip(bars, rates, strict=True):
        ax2.annotate(f"{rate:.0f}%", (bar.get_x() + bar.get_width() / 2, rate), ha="center", va="bottom",
                     fontsize=8)
    ax2.set_ylim(0, 105)
    ax2.set_xlabel("exercise")
    ax2.set_ylabel("students with every autograded test passed (%)")
    ax2.set_title("Pass rate per exercise")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
