"""A real `cds-service` (gunicorn) process on a loopback port, for tests that need one.

Robust on a slow, loaded machine: the wait for readiness retries on any error up to a
generous deadline, and the server runs in its own process group, so that stopping it (on
every path, including a failed start) ends the master and all its workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

READY_SECONDS = 90  # a worker importing pydantic models on a loaded 2-core machine is slow


def log_records(text: str) -> list[dict]:
    """The JSON lines of a server log, parsed (other lines, e.g. a traceback, are skipped)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def statuses(text: str) -> list[int]:
    return [r["status"] for r in log_records(text) if "status" in r]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen | None = None) -> None:
    """Until `url` answers 200: any error is retried, up to `READY_SECONDS`."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with status {process.returncode}")
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {READY_SECONDS} s")


def start(
    tmp_path: Path, port: int, workers: int = 2, args: tuple[str, ...] = (), **env: str
) -> subprocess.Popen:
    executable = shutil.which("cds-service", path=str(Path(sys.executable).parent))
    assert executable, "cds-service is installed with the package"
    env = dict(os.environ, CDS_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"), **env)
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [executable, "--port", str(port), "--workers", str(workers), *args]
        + ([] if "--host" in args else ["--host", "127.0.0.1"]),
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: one log line per request would fill a pipe nobody reads.
        stderr=log.open("ab"),
        start_new_session=True,  # its own process group: stop() ends master and workers
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz", process)
    except BaseException:
        stop(process)
        raise AssertionError(log.read_text()) from None
    return process


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group, then SIGKILL if it has not ended in 20 s."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)


class Server:
    def __init__(self, tmp_path: Path, workers: int = 2, **env: str) -> None:
        self.tmp_path = tmp_path
        self.workers = workers
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start(tmp_path, self.port, workers, **env)

    @property
    def log(self) -> str:
        return (self.tmp_path / "server.log").read_text(errors="replace")

    def restart(self) -> None:
        stop(self.process)
        self.process = start(self.tmp_path, self.port, self.workers, **self.env)

    def close(self) -> None:
        stop(self.process)


def run_gunicorn(tmp_path: Path, bind: str, **env: str) -> subprocess.CompletedProcess:
    """gunicorn over the app factory with the project's settings, as production runs it;
    for start-up checks that are expected to end it."""
    executable = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert executable, "gunicorn is installed with the package"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    environment.update({"CDS_FEEDBACK_DB": str(tmp_path / "f.sqlite3"), "HOME": str(tmp_path)})
    environment.update(env)
    command = [executable, "-c", "python:cds_service.gunicorn_conf", "--bind", bind]
    return subprocess.run(
        [*command, "cds_service.app:create_app()"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
