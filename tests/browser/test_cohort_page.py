"""The worklist page (`cds-cohort`) in a real headless browser: one row per patient, and a
click on a column header reorders the rows."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from ..tools.test_cohort import AS_OF, run, write_export
from .test_caveat_pages import chromium

pytestmark = pytest.mark.browser
ROW = re.compile(r"<tr[^>]*><td>([^<]*)</td>")


@pytest.fixture(scope="module")
def worklist(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    write_export(folder)
    out = tmp_path_factory.mktemp("out")
    result = run(str(folder), "--as-of", AS_OF, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return out / "worklist.html", result.stdout.count("\n")


def _clicked(page, tmp_path, column: int, clicks: int) -> str:
    """The page as the browser holds it after `clicks` clicks on header `column`."""
    copy = tmp_path / "clicked.html"
    script = f"<script>for (let i = 0; i < {clicks}; i++) " + (
        f"document.querySelectorAll('th')[{column}].click();</script>"
    )
    copy.write_text(
        page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8"
    )
    return chromium(tmp_path, "--dump-dom", copy.as_uri())


def test_one_row_per_patient_in_attention_order(worklist, tmp_path):
    page, rows = worklist
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    shown = ROW.findall(dom)
    assert len(shown) == rows > 40
    assert shown == ROW.findall(page.read_text(encoding="utf-8"))  # as written: attention first


def test_clicking_a_header_reorders_the_rows(worklist, tmp_path):
    page, _ = worklist
    before = ROW.findall(page.read_text(encoding="utf-8"))
    once = ROW.findall(_clicked(page, tmp_path, 0, 1))  # patientId
    assert once == sorted(before) != before
    twice = ROW.findall(_clicked(page, tmp_path, 0, 2))
    assert twice == sorted(before, reverse=True)


def test_screenshot_of_the_worklist(worklist, tmp_path):
    page, _ = worklist
    shot = tmp_path / "worklist.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1600,1000", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, keep)
