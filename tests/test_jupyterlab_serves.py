"""The `make lab` server really serves the course: start JupyterLab on a free port, ask its API."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_jupyterlab_serves_lessons_and_release(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    jupyter = Path(sys.executable).with_name("jupyter")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "server.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={REPO}",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )

    def get(path):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read()

    try:
        deadline = time.time() + 90
        while True:
            try:
                status, _ = get("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log_text = (tmp_path / "server.log").read_text(errors="replace")[-2000:]
                    raise AssertionError("JupyterLab did not start:\n" + log_text) from None
                time.sleep(0.5)
        assert status == 200
        _, body = get("/api/contents/notebooks")
        listing = {item["name"] for item in json.loads(body)["content"]}
        expected = {p.name for p in (REPO / "notebooks").glob("*.ipynb")}
        assert expected <= listing, f"server lists {sorted(listing)}, expected the lessons {sorted(expected)}"
        status, body = get("/lab")
        assert status == 200 and b"JupyterLab" in body
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
