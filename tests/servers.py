"""A real `cds-service` (gunicorn) process on a loopback port, for tests that need one."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path: Path, port: int, workers: int = 2, **env: str) -> subprocess.Popen:
    executable = shutil.which("cds-service", path=str(Path(sys.executable).parent))
    assert executable, "cds-service is installed with the package"
    env = dict(os.environ, CDS_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"), **env)
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: one log line per request would fill a pipe nobody reads.
        stderr=log.open("ab"),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(log.read_text())


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


class Server:
    def __init__(self, tmp_path: Path, workers: int = 2) -> None:
        self.tmp_path = tmp_path
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start(tmp_path, self.port, workers)

    def restart(self) -> None:
        stop(self.process)
        self.process = start(self.tmp_path, self.port, self.workers)

    def close(self) -> None:
        if self.process.poll() is None:
            stop(self.process)
