"""The real server: `cds-service` (gunicorn) on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import pytest
import requests

from ..builders import hook_request, igm, statement
from ..servers import Server


@pytest.fixture
def server(tmp_path):
    # Feedback follows its card at once here, possibly on the other worker: each worker
    # records its cards with the request (batched recording: tests/store/test_issued_cards.py).
    handle = Server(tmp_path, CDS_CARD_RECORD_SECONDS="0")
    yield handle
    handle.close()


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
