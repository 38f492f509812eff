"""A throwaway JupyterLab server from the project's environment, for tests that drive it in a browser.

Loopback only, a free port, a random token, and its own settings/workspace/runtime folders so that
neither the user's JupyterLab settings nor a saved workspace leak into a test. The settings turn
autosave off: the browser runs the committed lessons in place and must never write outputs into them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# User settings the server starts with (one file per plugin, JSON with comments allowed).
LAB_SETTINGS = {
    # Never save the notebooks we run: they are committed without outputs.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # Keep every cell in the DOM (no virtual scrolling) and start the kernel without asking.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
    # No "would you like news?" toast over the notebook, no update check (there is no internet).
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log_path: Path

    def api(self, method: str, path: str, timeout: float = 10):
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every session's kernel (a lesson's kernel holds torch and its models in memory)."""
        for session in self.api("GET", "/api/sessions"):
            with contextlib.suppress(OSError):
                self.api("DELETE", f"/api/sessions/{session['id']}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def running_jupyterlab(root: Path, workdir: Path, start_timeout: float = 120):
    """Start JupyterLab serving ``root``; yield a LabServer; stop it whatever happened."""
    port, token = free_port(), secrets.token_hex(16)
    settings = workdir / "lab-user-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(workdir / "lab-workspaces"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    jupyter = Path(sys.executable).with_name("jupyter")
    log_path = workdir / "jupyterlab.log"
    log = open(log_path, "wb")  # a file, not a pipe: a full pipe would stall the server
    server = subprocess.Popen(
        [
            str(jupyter),
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            # window.jupyterapp: the driver runs JupyterLab's own commands (run all cells) through it.
            "--LabApp.expose_app_in_browser=True",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    lab = LabServer(f"http://127.0.0.1:{port}", token, Path(root), log_path)
    try:
        deadline = time.time() + start_timeout
        while True:
            try:
                lab.api("GET", "/api/status", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + lab.log_tail()) from None
                time.sleep(0.5)
        yield lab
    finally:
        with contextlib.suppress(Exception):
            lab.shutdown_kernels()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
