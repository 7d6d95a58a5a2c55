"""The real server: `cds-service` (gunicorn) on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .builders import hook_request, igm, statement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path: Path, port: int) -> subprocess.Popen:
    executable = shutil.which("cds-service", path=str(Path(sys.executable).parent))
    assert executable, "cds-service is installed with the package"
    env = dict(os.environ, CDS_FEEDBACK_DB=str(tmp_path / "feedback.sqlite3"))
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(process.stderr.read().decode())


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start(tmp_path, self.port)

    def restart(self) -> None:
        stop(self.process)
        self.process = start(self.tmp_path, self.port)


@pytest.fixture
def server(tmp_path):
    handle = Server(tmp_path)
    yield handle
    if handle.process.poll() is None:
        stop(handle.process)


def test_service_over_http_and_feedback_across_restart(server):
    url = server.url
    discovery = requests.get(f"{url}/cds-services", timeout=5).json()
    assert discovery["services"][0]["id"] == "wm-igm-response"

    request = hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233)], [statement("m1", "zanubrutinib", 0)]
    )
    response = requests.post(f"{url}/cds-services/wm-igm-response", json=request, timeout=10)
    assert response.status_code == 200
    card = response.json()["cards"][0]
    assert card["summary"].startswith("Partial response (PR)")
    assert card["links"][0]["url"] == f"{url}/caveats/btki-discordance"

    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"userComment": "seen"},
                "outcomeTimestamp": "2026-11-24T09:00:00Z",
            }
        ]
    }
    feedback_url = f"{url}/cds-services/wm-igm-response/feedback"
    stored = requests.post(feedback_url, json=feedback, timeout=5).json()
    assert stored == {"stored": 1, "duplicates": 0}
    bad = requests.post(
        f"{url}/cds-services/wm-igm-response",
        data="x",
        headers={"Content-Type": "text/plain"},
        timeout=5,
    )
    assert bad.status_code == 415

    server.restart()
    again = requests.post(feedback_url, json=feedback, timeout=5).json()
    assert again == {"stored": 0, "duplicates": 1}
