"""Caveat pages in a real headless browser (Debian's chromium), served over loopback HTTP."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

import pytest
from werkzeug.serving import make_server

from cds_service.clinical.models import Caveat

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.browser

if CHROMIUM is None:
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError("chromium is required (REQUIRE_BROWSER is set) but not installed")
    pytest.skip("chromium is not installed (`make browser` installs it)", allow_module_level=True)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Everything but this machine is unreachable: the page must need nothing from outside.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def chromium(tmp_path, *args):
    profile = tmp_path / "profile"
    completed = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return completed.stdout


@pytest.mark.parametrize("caveat", list(Caveat))
def test_page_renders_in_a_browser(served, tmp_path, caveat):
    dom = chromium(tmp_path, "--dump-dom", f"{served}/caveats/{caveat.value}")
    assert "<h1>" in dom
    assert '<p class="lead">' in dom
    assert "Sources" in dom
    assert "<script" not in dom


def test_screenshot_of_a_page(served, tmp_path):
    shot = tmp_path / "anti-cd20-flare.png"
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=900,1200",
        "--hide-scrollbars",
        f"{served}/caveats/anti-cd20-flare",
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a rendered page of text, not a blank canvas
    keep = os.environ.get("SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, keep)
