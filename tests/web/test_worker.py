"""The real server: `cds-service` (gunicorn) on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from ..builders import hook_request, igm, statement
from ..servers import Server


@pytest.fixture
def server(tmp_path):
    handle = Server(tmp_path)
    yield handle
    handle.close()


def post_as_an_ehr(url: str, body: dict, deadline_seconds: float = 60) -> requests.Response:
    """POST, and on 503 wait as Retry-After says and try again, up to a deadline."""
    give_up = time.monotonic() + deadline_seconds
    while True:
        response = requests.post(url, json=body, timeout=10)
        if response.status_code != 503 or time.monotonic() > give_up:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))


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
    # Sent at once, the feedback may reach the other worker before this card's record is
    # written (within CDS_CARD_RECORD_SECONDS): it is then asked to retry, as an EHR does.
    stored = post_as_an_ehr(feedback_url, feedback)
    assert stored.json() == {"stored": 1, "duplicates": 0}
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
