"""course-grade on a real Dask cluster: a `dask scheduler` and two `dask worker` processes on
127.0.0.1 (random free ports), started here and stopped whatever happens.

The same slice of bad submissions is graded locally and on Dask: the scores must agree cell by
cell, also when a worker is killed in the middle of a student (the scheduler reruns the task on
the other worker, and the student is merged once). No scheduler: a clear error, nothing written."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder import cli
from autograder.results import results_from_dict
from tests.grader import fixture
from tests.grader.students import Class

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow
CHECKS = Path(__file__).with_name("fixture_checks")
SLICE = ("good", "loop", "crash", "hog", "slow")  # slow: sleeps, so a worker can be killed mid-task
TIMEOUT = 10


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env)


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """{"address": ..., "workers": {address: Popen}}; every process is killed at the end."""
    folder = tmp_path_factory.mktemp("dask")
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [
        _start(
            dask
            + [
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(folder / "scheduler.json"),
            ],
            folder / "scheduler.log",
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not (folder / "scheduler.json").exists():
            assert time.monotonic() < deadline, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        address = json.loads((folder / "scheduler.json").read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for i in range(2):
            procs.append(
                _start(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    folder / f"worker{i}.log",
                )
            )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
            by_name = {info["name"]: addr for addr, info in client.scheduler_info()["workers"].items()}
        workers = {by_name[f"w{i}"]: p for i, p in enumerate(procs[1:])}
        yield {"address": address, "workers": workers, "folder": folder}
    finally:
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask_class")
    source, release = fixture.build_course(root)
    everyone = root / "everyone"
    Class(
        everyone,
        release,
        source,
        {"repo": "", "course": "", "source": "", "downloads": "", "gradebook": "", "victim": ""},
    ).build()
    chosen = root / "downloads"
    for student in SLICE[:-1]:
        for path in everyone.glob(f"{student}*"):
            target = chosen / path.relative_to(everyone)
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
    from tools.nbgrader_course import read, solved, with_answer

    slow = chosen / "slow"
    slow.mkdir()
    good = solved(read(release / "ex12_tiny.ipynb"), read(source / "ex12_tiny.ipynb"))
    import nbformat

    nbformat.write(
        with_answer(good, "ex1_triple", "import time\ntime.sleep(6)\n\ndef triple(x):\n    return 3 * x"),
        str(slow / "ex12_tiny.ipynb"),
    )
    return {"downloads": chosen, "source": source, "release": release, "root": root}


def grade(downloads, course: Path, *extra: str) -> dict:
    d = downloads
    code = cli.main(
        [
            "run",
            str(d["downloads"]),
            "--course-dir",
            str(course),
            "--release",
            str(d["release"]),
            "--source",
            str(d["source"]),
            "--checks",
            str(CHECKS),
            "--probe-seed",
            "dask-test",
            "--timeout",
            str(TIMEOUT),
            "--memory-mb",
            "1536",
            *extra,
        ]
    )
    assert code == 0
    results = results_from_dict(json.loads((course / "exports" / "results.json").read_text()))
    return {s: r.scores for s, r in results.items()}


@pytest.fixture(scope="module")
def local(downloads, tmp_path_factory):
    return grade(downloads, tmp_path_factory.mktemp("local") / "course", "--jobs", "2")


def test_dask_scores_equal_local_cell_by_cell(downloads, local, cluster, tmp_path):
    ours = grade(downloads, tmp_path / "course", "--executor", "dask", "--scheduler", cluster["address"])
    assert set(ours) == set(SLICE)
    assert ours == local
    assert local["good"]["ex12_tiny"]["ex1_test_triple"].score == 2  # the check is not vacuous: good scores ...
    assert local["loop"]["ex12_tiny"]["ex1_test_triple"].score == 0  # ... and the looping student does not
    grades = {r["student"]: r for r in csv.DictReader(open(tmp_path / "course" / "exports" / "grades.csv"))}
    assert "kernel died" in grades["crash"]["notes"] + open(tmp_path / "course" / "exports" / "needs_review.csv").read()
    assert (tmp_path / "course" / "feedback" / "good" / fixture.ASSIGNMENT / "ex12_tiny.html").exists()


def test_a_worker_killed_mid_student_is_retried_on_the_other(downloads, local, cluster, tmp_path):
    from distributed import Client

    killed = []

    def kill_when_slow_runs():
        with Client(cluster["address"], timeout=30) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                for worker, keys in client.processing().items():
                    if any(str(k).endswith("-slow") for k in keys) and worker in cluster["workers"]:
                        time.sleep(2)  # well inside the slow student's sleep
                        _stop(cluster["workers"][worker])
                        killed.append(worker)
                        return
                time.sleep(0.1)

    watcher = threading.Thread(target=kill_when_slow_runs, daemon=True)
    watcher.start()
    ours = grade(downloads, tmp_path / "course", "--executor", "dask", "--scheduler", cluster["address"])
    watcher.join(timeout=5)
    assert killed, "the slow student never ran on a worker we could kill"
    assert ours == local


def test_no_scheduler_is_a_clear_error_and_writes_nothing(downloads, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    course = tmp_path / "course"
    d = downloads
    cli.main(["collect", str(d["downloads"]), "--course-dir", str(course), "--release", str(d["release"])])
    with pytest.raises(SystemExit) as err:
        cli.main(
            [
                "grade",
                "--course-dir",
                str(course),
                "--release",
                str(d["release"]),
                "--source",
                str(d["source"]),
                "--executor",
                "dask",
                "--scheduler",
                address,
            ]
        )
    assert address in str(err.value) and "dask scheduler" in str(err.value)
    assert not (course / "gradebook.db").exists()
