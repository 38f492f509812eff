"""Repository-wide checks: notebooks committed clean, lint, release/ == nbgrader(source/)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tests.conftest import LAYOUT, REPO

# The demo class holds student submissions on purpose: they may carry outputs.
EXEMPT = (f"{LAYOUT.demo_folder}/",)


def tracked_notebooks() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.ipynb"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(p for p in out if not p.startswith(EXEMPT) and (REPO / p).exists())


@pytest.mark.parametrize("path", tracked_notebooks() or ["<none>"])
def test_notebook_committed_without_outputs(path):
    if path == "<none>":
        pytest.skip("no notebooks yet")
    nb = json.loads((REPO / path).read_text(encoding="utf-8"))
    nbformat.validate(nbformat.from_dict(nb))
    dirty = [
        i
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path}: code cells {dirty} carry outputs or execution counts; clear them before committing"


def make_recipe(target: str) -> list[str]:
    """The command lines of one Makefile target (its recipe), as make would run them."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"^{re.escape(target)}:", ln))
    recipe = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("\t"):
            break
        recipe.append(ln.strip())
    return recipe


@pytest.mark.parametrize("command", [c.replace("$(RUN) $(BIN)/", "") for c in make_recipe("lint")])
def test_lint_passes_as_make_lint_runs_it(command):
    """Each command of `make lint` (ruff check, ruff format --check) passes on the tree."""
    ruff = Path(sys.executable).with_name("ruff")
    args = command.split()
    assert args[0] == "ruff", command
    result = subprocess.run([str(ruff), *args[1:], "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"`{command}` found problems:\n{result.stdout}\n{result.stderr}"


def test_pre_commit_runs_what_ci_runs():
    """The pre-commit hooks are `make lint` on commit and the README's test command on push (CI's .ci/run
    ends with the same command)."""
    import yaml

    hooks = {
        h["id"]: h for r in yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())["repos"] for h in r["hooks"]
    }
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert hooks["lint"]["entry"] == "make lint" and make_recipe("lint")
    assert hooks["test"]["entry"] == ci[-1] == "make test" and "make test" in readme
    assert hooks["test"]["stages"] == ["pre-push"] and hooks["test"]["always_run"]


@pytest.mark.slow
@pytest.mark.parametrize("assignment", LAYOUT.assignments)
def test_release_is_exactly_what_nbgrader_generates(tmp_path, assignment):
    from tools.make_release import generate_release

    if not list(LAYOUT.source(assignment).glob("*.ipynb")):
        pytest.skip(f"{LAYOUT.source(assignment)} has no exercise notebooks yet")
    generated = generate_release(tmp_path, LAYOUT, assignment)
    committed = LAYOUT.release(assignment)
    fresh_files = sorted(p.name for p in generated.iterdir())
    committed_files = sorted(p.name for p in committed.iterdir()) if committed.exists() else []
    assert committed_files == fresh_files, "release/ has different files from nbgrader's output: run `make release`"
    for name in fresh_files:
        assert (committed / name).read_bytes() == (generated / name).read_bytes(), (
            f"{committed.relative_to(REPO)}/{name} differs from what nbgrader generates from source/: "
            "run `make release`"
        )


def test_lock_pins_every_dependency_declared_in_pyproject():
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    pinned = {}
    for line in (REPO / "requirements" / "lock.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pinned[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    missing = [d for d in declared if re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ \[]", d)[0].lower()) not in pinned]
    assert not missing, f"declared in pyproject but not pinned in requirements/lock.txt: {missing}"
    assert pinned["torch"] == "2.14.1" and pinned["torchvision"] == "0.29.1", (
        "torch/torchvision must stay a pair that imports on these machines (see COURSE_SPEC)"
    )


def course_fact_pattern() -> re.Pattern:
    """The course id or an assignment name as a whole word (``modern-cnns-course``, the package's
    distribution name, is another word)."""
    words = "|".join(re.escape(w) for w in (LAYOUT.course_id, *LAYOUT.assignments))
    return re.compile(rf"(?<![\w-])({words})(?![\w-])")


def test_course_facts_are_written_only_in_course_toml():
    """No code file names the course or an assignment: the grader, the tools and the tests read
    course.toml (notebooks, the demo class and the README are content, not code)."""
    out = subprocess.run(
        [
            "git",
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "*.py",
            "*.mjs",
            "*.toml",
            "*.cfg",
            "Makefile",
            ".ci/*",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    pattern = course_fact_pattern()
    offenders = [
        f"{path}:{n}: {line.strip()}"
        for path in out
        if path != "course.toml" and (REPO / path).is_file() and not path.startswith(EXEMPT)
        for n, line in enumerate((REPO / path).read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, "course facts outside course.toml:\n" + "\n".join(offenders[:40])


def test_the_course_fact_pattern_finds_the_facts_and_nothing_else():
    pattern = course_fact_pattern()
    assert pattern.search(f'ASSIGNMENT = "{LAYOUT.assignment}"')
    assert pattern.search(f"release/{LAYOUT.assignment}/x.ipynb")
    assert pattern.search(f"c.CourseDirectory.course_id = '{LAYOUT.course_id}'")
    assert not pattern.search(f'name = "{LAYOUT.course_id}-course"')
    assert not pattern.search(f"{LAYOUT.assignment}x")


def imports_of(path: Path) -> set[str]:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return found | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}


@pytest.mark.parametrize(("folder", "forbidden"), [("autograder", ("tests", "tools")), ("tools", ("tests",))])
def test_layers_import_only_downwards(folder, forbidden):
    """The grader needs neither the dev tools nor the tests; the tools need no test code."""
    wrong = [
        f"{p.relative_to(REPO)}: {m}"
        for p in sorted((REPO / folder).rglob("*.py"))
        if LAYOUT.demo is None or LAYOUT.demo not in p.parents
        for m in sorted(imports_of(p))
        if m.split(".")[0] in forbidden
    ]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_grader_finds_nothing_through_the_checkout():
    """An installed course-grade has no checkout above it: the package reaches only its own files
    (``Path(__file__).parent``) and the course through course.toml (``Layout``)."""
    wrong = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sorted((REPO / "autograder").rglob("*.py"))
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"__file__\)?(\.resolve\(\))?\.(parents\[|parent\.parent)", line)
    ]
    assert not wrong, "paths outside the package:\n" + "\n".join(wrong)
