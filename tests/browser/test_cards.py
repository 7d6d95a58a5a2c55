"""The cards of every fixture, rendered as an EHR shows them: in a side panel 260 px wide
(Oracle Health's is about an eighth of the screen) and at full width, with basic
CommonMark (no tables, as some clients render only that), in headless Chromium."""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from cds_service.tools.replay import InProcess, fixture_files, replay

from .test_caveat_pages import chromium

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PANEL_STYLE = """
body{margin:0;font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.panel{width:%dpx;padding:6px;box-sizing:border-box}
.card{border:1px solid #bbb;border-left:4px solid #3a6ea5;margin:0 0 8px;padding:6px;
overflow:hidden}.card.warning{border-left-color:#c77700}.summary{font-weight:600}
.links a{display:block}
"""
# Marks every card whose content is wider than its box (a long unbroken word, a table).
MEASURE = """
<script>
const cards = [...document.querySelectorAll('.card')];
const wide = cards.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id);
const tables = document.querySelectorAll('table').length;
document.getElementById('result').textContent = JSON.stringify({cards: cards.length, wide, tables});
</script>
"""


def _page(cards_by_fixture: dict[str, list[dict]], width: int) -> str:
    markdown = MarkdownIt("commonmark", {"html": False})
    parts = []
    for name, cards in cards_by_fixture.items():
        for index, card in enumerate(cards):
            links = "".join(
                f'<a href="{html.escape(link["url"])}">{html.escape(link["label"])}</a>'
                for link in card.get("links", [])
            )
            parts.append(
                f'<div class="card {card["indicator"]}" id="{name}-{index}">'
                f'<div class="summary">{html.escape(card["summary"])}</div>'
                f'{markdown.render(card.get("detail", ""))}<div class="links">{links}</div></div>'
            )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{PANEL_STYLE % width}'
        f'</style></head><body><div class="panel">{"".join(parts)}</div>'
        f'<pre id="result"></pre>{MEASURE}</body></html>'
    )


@pytest.fixture(scope="module")
def all_cards():
    results = replay(fixture_files([str(FIXTURES)]), InProcess(), None)
    return {r.path.stem: r.body["cards"] for r in results}


@pytest.mark.parametrize("width", [260, 1200])
def test_every_fixtures_cards_fit_the_panel(tmp_path, all_cards, width):
    page = tmp_path / f"cards-{width}.html"
    page.write_text(_page(all_cards, width), encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", f"--window-size={width + 20},900", page.as_uri())
    measured = json.loads(html.unescape(dom.split('<pre id="result">')[1].split("</pre>")[0]))
    assert measured["cards"] == sum(len(cards) for cards in all_cards.values())
    assert measured["tables"] == 0
    assert measured["wide"] == [], f"cards wider than {width} px: {measured['wide']}"


@pytest.mark.parametrize("width", [260, 1200])
def test_screenshots_of_the_worked_examples(tmp_path, all_cards, width):
    examples = {k: v for k, v in all_cards.items() if k.startswith(("01-", "07-", "25-", "26-"))}
    page = tmp_path / "examples.html"
    page.write_text(_page(examples, width), encoding="utf-8")
    shot = tmp_path / f"cards-{width}.png"
    chromium(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={width + 20},2400",
        "--hide-scrollbars",
        page.as_uri(),
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    keep = os.environ.get("SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, keep)
