# One entry point for students, graders, instructors and CI.
# The environment lives outside the clone, keyed by the hash of the lock,
# so a fresh clone reuses it and a changed lock builds a new one.
PYTHON ?= python3
ENV_KEY := $(shell cat requirements/lock.txt | $(PYTHON) -c "import hashlib,sys;print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])")
VENV ?= $(HOME)/.cache/cnn-course/venv-$(ENV_KEY)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# nbgrader calls `alembic` from PATH when it first creates a gradebook.
# The checkout is put on PYTHONPATH rather than pip-installed, so one cached environment
# serves every clone (CI's fresh clone included) without pointing back at another checkout.
RUN := PATH="$(BIN):$$PATH" PYTHONNOUSERSITE=1 PYTHONPATH="$(CURDIR)"
PORT ?= 8888
# JupyterLab refuses to run as root unless told; containers and CI often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: setup lab test test-fast lint release bench bench-grading bench-dask bench-features grade-demo clean-grading

setup: $(STAMP)

$(STAMP): requirements/lock.txt
	@echo "==> creating the course environment in $(VENV) (first time only, a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	$(RUN) $(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@touch $(STAMP)
	@echo "==> environment ready"

# .venv points at the environment so editors and JupyterLab users can find it.
setup: .venv
.venv: $(STAMP)
	ln -sfn $(VENV) .venv

## Students: set everything up and open the course in JupyterLab.
lab: setup
	$(RUN) $(BIN)/jupyter lab --port=$(PORT) --ServerApp.root_dir="$(CURDIR)" $(ALLOW_ROOT) notebooks/01_skip_connections.ipynb

## Everyone: set everything up and run the whole test suite (TEST_JOBS pytest workers, one module each:
## module fixtures such as a generated course or a JupyterLab server are shared within a module; the
## longest modules are handed out first, tests/conftest.py). More workers than cores: a fifth of the
## suite's time is spent waiting (kernels starting, servers, a browser), and the third worker fills it.
TEST_JOBS ?= 3
test: setup
	$(RUN) $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: setup
	$(RUN) $(BIN)/python -m pytest -m "not slow and not browser" $(PYTEST_ARGS)

## Everyone: lint (pyflakes, bugbear, import order, pyupgrade, simplifications, the grader's type hints) and
## the formatter's check; `pre-commit install --hook-type pre-commit --hook-type pre-push` runs it on commit.
lint: setup
	$(RUN) $(BIN)/ruff check .
	$(RUN) $(BIN)/ruff format --check .

## Instructors: regenerate release/ from source/ with nbgrader.
release: setup
	$(RUN) $(BIN)/python -m tools.make_release

## Benchmarks: per-notebook execution time and per-student autograde time.
bench: setup
	$(RUN) $(BIN)/python -m tools.bench $(BENCH_ARGS)

## Stock sequential nbgrader vs course-grade on the demo class (same submissions, same scores).
bench-grading: setup
	$(RUN) $(BIN)/python -m tools.bench_grading $(BENCH_ARGS)

## The demo class on Dask (1 and 2 local workers) beside local grading; BENCH_ARGS="--students 8" for a slice.
bench-dask: setup
	$(RUN) $(BIN)/python -m tools.bench_dask $(BENCH_ARGS)

## Lesson 3's strategy A on the real ants/bees images: frozen backbone every epoch vs cached features.
bench-features: setup
	$(RUN) $(BIN)/python -m tools.bench_cached_features $(BENCH_ARGS)

## Graders: grade the bundled demo class.
grade-demo: setup
	$(RUN) $(BIN)/python -m autograder.cli demo

clean-grading:
	rm -rf autograder/submitted autograder/autograded autograder/feedback autograder/gradebook.db autograder/exports
