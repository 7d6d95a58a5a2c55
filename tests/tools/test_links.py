"""`cds-links`: the manifest of every URL a card can carry holds every link on every
fixture's cards (contract v3, "Link manifest")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cards.links import card_links
from cds_service.hooks.discovery import SERVICE_BY_HOOK

from ..fetched_answers import load

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "fixtures").glob("*.json"))
BASE = "https://cds.example.org/wm"
# A markdown link's target, or an autolink: what a client renders as a link in `detail`.
_DETAIL_LINK = re.compile(r"\]\((https?://[^\s)]+(?:\([^\s)]*\)[^\s)]*)?)\)|<(https?://[^>\s]+)>")


def urls_on(card: dict) -> set[str]:
    urls = {link["url"] for link in card.get("links", [])}
    if card["source"].get("url"):
        urls.add(card["source"]["url"])
    for markdown, auto in _DETAIL_LINK.findall(card.get("detail", "")):
        urls.add(markdown or auto)
    return urls


@pytest.fixture(scope="module")
def every_card(tmp_path_factory):
    from cds_service.app import create_app

    app = create_app(
        {
            "feedback_db": tmp_path_factory.mktemp("links") / "feedback.sqlite3",
            "allow_as_of": True,
            "public_base_url": BASE,
            "smart_client_id": "wm-igm-trend",
            "card_record_seconds": 0,
        }
    )
    cards = []
    client = app.test_client()
    for path in FIXTURES:
        request = load(path)
        url = f"/cds-services/{SERVICE_BY_HOOK[request['hook']].id}"
        cards.extend(client.post(url, json=request).get_json()["cards"])
    return cards


def test_every_link_on_every_fixtures_cards_is_in_the_manifest(every_card):
    manifest = {link.url for link in card_links(BASE)}
    seen = set().union(*(urls_on(card) for card in every_card))
    assert seen, "the fixtures' cards carry links"
    assert seen - manifest == set()
    # and the manifest lists what cards carry: caveat pages, the app, the literature
    assert f"{BASE}/smart/launch" in seen and f"{BASE}/caveats/btki-discordance" in seen
    assert "https://doi.org/10.1111/bjh.12102" in seen


def test_the_manifest_names_no_code_system_and_nothing_twice():
    urls = [link.url for link in card_links(BASE)]
    assert len(urls) == len(set(urls))
    assert not [u for u in urls if "loinc.org" in u or "snomed.info" in u]
    assert all(u.startswith(("https://", BASE)) for u in urls)


def test_the_command_prints_text_and_json():
    executable = Path(sys.executable).parent / "cds-links"
    text = subprocess.run(
        [str(executable), "--base-url", BASE + "/"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "# caveat page" in text and f"{BASE}/caveats/hyperviscosity-risk" in text
    document = json.loads(
        subprocess.run(
            [str(executable), "--base-url", BASE, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    )
    assert document["baseUrl"] == BASE
    assert {link["url"] for link in document["links"]} == {link.url for link in card_links(BASE)}
    refused = subprocess.run(
        [str(executable), "--base-url", "ftp://x"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 2 and "cds-links" in refused.stderr
