"""Medplum's FHIR server for tests: `tests/medplum/server.mjs` (its FHIR router over its
in-memory repository, pinned in `tests/medplum/package-lock.json`, installed by `make
fhir-server`) on a free loopback port, with every fixture Bundle loaded through its own
transaction endpoint. Stopped on every path, its whole process group with it.

Skipped when it is not installed, except where `REQUIRE_FHIR_SERVER` is set (CI), like
PostgreSQL and the browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .servers import stop

HERE = Path(__file__).resolve().parent / "medplum"
ROOT = HERE.parent.parent
READY_SECONDS = 90


def installed() -> bool:
    return shutil.which("node") is not None and (HERE / "node_modules" / "@medplum").is_dir()


def require() -> None:
    if installed():
        return
    if os.environ.get("REQUIRE_FHIR_SERVER"):
        pytest.fail("Medplum's FHIR server is required here: run `make fhir-server`")
    pytest.skip("Medplum's FHIR server is not installed (make fhir-server)")


def _read_base(process: subprocess.Popen, deadline: float) -> str:
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    buffered = b""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the FHIR server exited with status {process.returncode}")
        with contextlib.suppress(BlockingIOError, TypeError):
            buffered += process.stdout.read() or b""
        if b"\n" in buffered:
            return json.loads(buffered.split(b"\n", 1)[0])["base"]
        time.sleep(0.1)
    raise AssertionError(f"the FHIR server did not start within {READY_SECONDS} s")


def load_bundles(base: str, directory: Path = ROOT / "fixtures" / "bundles") -> None:
    """Every fixture transaction Bundle, through the server's own transaction endpoint."""
    for path in sorted(directory.glob("*.json")):
        response = requests.post(
            base,
            data=path.read_bytes(),
            headers={"Content-Type": "application/fhir+json"},
            timeout=120,
        )
        assert response.status_code == 200, (path.name, response.text[:500])
        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        assert all(s.startswith("2") for s in statuses), (path.name, statuses)


@contextlib.contextmanager
def medplum_server() -> Iterator[str]:
    """The base URL of a running server with the fixtures loaded."""
    process = subprocess.Popen(
        ["node", str(HERE / "server.mjs"), "0"],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + READY_SECONDS
        base = _read_base(process, deadline)
        while True:  # listening is not yet answering, on a loaded machine: retry any error
            try:
                if requests.get(f"{base}/Patient?_count=1", timeout=10).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the FHIR server did not answer within {READY_SECONDS} s")
            time.sleep(0.2)
        load_bundles(base)
        yield base
    finally:
        stop(process)
