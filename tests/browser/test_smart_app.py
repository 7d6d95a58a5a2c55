"""The trend app launched from a fixture patient's card link in headless Chromium, through
`cds-fixture-server --smart`, as the CDS Hooks sandbox does it: ask the FHIR server for a
launch id, open the card's `smart` link with `launch` and `iss`, follow the authorization
redirects (cookies and all) to the chart page. The page is checked at 400 px and 1200 px.

Set SMART_SCREENSHOTS=DIR to keep the screenshots for a look."""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
from urllib.parse import urlencode

import pytest
import requests

from ..smart.test_app import Today, ehr, fixture, patient_and_day, service
from .test_caveat_pages import chromium

pytestmark = pytest.mark.browser
__all__ = ["ehr", "service"]  # module fixtures shared with the HTTP tests

# Fixture -> words the page must show besides the category and values of the card.
CASES = {
    "01-e1-zanubrutinib-pr": "zanubrutinib",
    "25-e12-rituximab-added-to-ibrutinib": "ibrutinib + rituximab",
    "06-e6-rituximab-flare": "flare window",
    "12-plasmapheresis-latest": "plasma exchange",
    "32-pd-then-fall": "progression",
}


def card_launch_url(service_url: str, ehr_url: str, name: str) -> tuple[str, dict]:
    """The `smart` link of the patient's card, opened the way the sandbox opens it, and the
    card's assessment extension."""
    request = fixture(name)
    patient, day = patient_and_day(name)
    Today.day = day
    answer = requests.post(f"{service_url}/cds-services/wm-igm-response", json=request, timeout=60)
    answer.raise_for_status()
    card = answer.json()["cards"][0]
    (link,) = [x for x in card["links"] if x["type"] == "smart"]
    launch = requests.post(
        f"{ehr_url}/fhir/_services/smart/Launch",
        json={"launchUrl": link["url"], "parameters": {"patient": patient}},
        timeout=60,
    ).json()["launch_id"]
    query = urlencode({"launch": launch, "iss": f"{ehr_url}/fhir"})
    return f"{link['url']}?{query}", card["extension"]["wm-igm-assessment"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("name", list(CASES))
def test_launch_from_the_card_ends_on_the_chart(service, ehr, tmp_path, name):
    url, assessment = card_launch_url(service.url, ehr.url, name)
    expected = fixture(name)["extension"]["wm-igm-expected"]
    assert assessment["category"] == expected["category"]
    dom = chromium(tmp_path, "--dump-dom", "--window-size=1200,1600", url)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())
    assert "<svg" in dom and 'id="chart-title-wide"' in dom, dom[:2000]
    assert 'id="summary"' in dom and 'id="values"' in dom
    # The page shows the card's category and its values, read again with the app's token.
    summary = re.search(r'<p class="summary[^"]*" id="summary">([^<]+)</p>', dom)
    assert summary and f"({expected['category']})" in html.unescape(summary.group(1))
    for point in ("baseline", "nadir", "latest"):
        if assessment.get(point):
            assert f"{assessment[point]['date']} {assessment[point]['valueMgDl']} mg/dL" in text
    assert CASES[name] in text
    assert "<script" not in dom
    simulator = ehr.app.extensions["smart_simulator"]
    assert not [token for token in simulator.tokens if token in dom]
    keep = os.environ.get("SMART_SCREENSHOTS")
    if keep:  # for a person to look at
        url, _ = card_launch_url(service.url, ehr.url, name)
        shot = os.path.join(keep, f"{name}.png")
        chromium(tmp_path / "shot", f"--screenshot={shot}", "--window-size=1000,1300", url)


@pytest.mark.parametrize("width", [400, 1200])
def test_screenshots_at_400_and_1200_px(service, ehr, tmp_path, width):
    url, _ = card_launch_url(service.url, ehr.url, "01-e1-zanubrutinib-pr")
    dom = chromium(tmp_path, "--dump-dom", f"--window-size={width},1600", url)
    # Two drawings, one shown by width: text stays legible in a 400 px panel.
    assert 'viewBox="0 0 800 440"' in dom and 'viewBox="0 0 420 360"' in dom
    assert re.search(r"svg\{width:100%", dom)
    assert dom.count('class="point') >= 2 and 'class="level pr"' in dom
    shot = tmp_path / f"trend-{width}.png"
    url, _ = card_launch_url(service.url, ehr.url, "01-e1-zanubrutinib-pr")
    chromium(
        tmp_path / "shot",
        f"--screenshot={shot}",
        f"--window-size={width},1400",
        "--hide-scrollbars",
        url,
    )
    data = shot.read_bytes()
    assert png_size(data) == (width, 1400)
    assert len(data) > 20_000  # a drawn page, not a blank one
    keep = os.environ.get("SMART_SCREENSHOTS")
    if keep:
        shutil.copy(shot, os.path.join(keep, shot.name))


def test_the_sandbox_sequence_against_one_smart_fixture_server(service, ehr, tmp_path):
    """The CDS Hooks sandbox's own sequence (read in its source) against one
    `cds-fixture-server --smart` (contract v3): it reads its FHIR server without a token for
    the prefetch, calls the service, asks the same base URL for a launch id, then opens the
    link with `launch` and `iss` appended as they are (not URL-encoded)."""
    name = "01-e1-zanubrutinib-pr"
    patient, day = patient_and_day(name)
    Today.day = day
    fhir = f"{ehr.url}/fhir"
    discovery = requests.get(f"{service.url}/cds-services", timeout=60).json()
    (entry,) = [s for s in discovery["services"] if s["hook"] == "patient-view"]
    prefetch = {}
    for key, template in entry["prefetch"].items():
        query = template.replace("{{context.patientId}}", patient)
        answer = requests.get(f"{fhir}/{query}", timeout=60)  # no Authorization header
        assert answer.status_code == 200, (key, answer.text[:300])
        prefetch[key] = answer.json()
    request = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": fhir,
        "context": {"userId": "Practitioner/COREPRACTITIONER1", "patientId": patient},
        "prefetch": prefetch,
        "extension": {"wm-igm-as-of": day.isoformat()},
    }
    answer = requests.post(f"{service.url}/cds-services/wm-igm-response", json=request, timeout=60)
    assert answer.status_code == 200, answer.text[:500]
    card = answer.json()["cards"][0]
    assert card["extension"]["wm-igm-assessment"]["category"] == "PR"
    (link,) = [x for x in card["links"] if x["type"] == "smart"]
    launch_id = requests.post(
        f"{fhir}/_services/smart/Launch",
        json={"launchUrl": link["url"], "parameters": {"patient": patient, "appContext": ""}},
        timeout=60,
    ).json()["launch_id"]
    url = f"{link['url']}?launch={launch_id}&iss={fhir}"
    dom = chromium(tmp_path, "--dump-dom", "--window-size=1200,1600", url)
    assert 'id="chart-title-wide"' in dom and "Partial response (PR)" in dom, dom[:2000]
