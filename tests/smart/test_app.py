"""The IgM trend SMART app (contract "SMART app"): the EHR launch end to end against
`cds-fixture-server --smart`, both on real loopback HTTP servers, and every error a user can
meet. A `requests` session plays the browser here (it keeps cookies per host and path, as a
browser does); `tests/browser/test_smart_app.py` does the same launches in headless Chromium."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from cds_service.app import create_app
from cds_service.smart import launch as smart_launch
from cds_service.tools.fixture_server import create_fixture_app
from cds_service.web.smart_routes import STATE_COOKIE

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
CLIENT_ID = "wm-igm-trend-test"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def patient_and_day(name: str) -> tuple[str, date]:
    document = fixture(name)
    return document["context"]["patientId"], date.fromisoformat(
        document["extension"]["wm-igm-as-of"]
    )


class Served:
    """A WSGI app on a loopback port in a thread; stopped on every path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def ehr() -> Iterator[Served]:
    """`cds-fixture-server --smart`'s app: the EHR's FHIR server and authorization server."""
    served = Served(create_fixture_app(FIXTURES, smart=True))
    try:
        yield served
    finally:
        served.close()


class Today:
    day = date(2026, 11, 30)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Served]:
    database = tmp_path_factory.mktemp("smart") / "store.sqlite3"
    app = create_app(
        {"feedback_db": database, "smart_client_id": CLIENT_ID, "card_record_seconds": 0},
        today=lambda: Today.day,
    )
    served = Served(app)
    try:
        yield served
    finally:
        served.close()


def launch(service: Served, ehr: Served, launch_id: str, **extra: str) -> requests.Response:
    """What the EHR does with a `smart` card link: open it with `iss` and `launch`."""
    session = requests.Session()
    params = {"iss": f"{ehr.url}/fhir", "launch": launch_id, **extra}
    return session.get(f"{service.url}/smart/launch", params=params, timeout=60)


def launched(service: Served, ehr: Served, name: str) -> requests.Response:
    patient, day = patient_and_day(name)
    Today.day = day
    response = launch(service, ehr, patient)
    assert response.status_code == 200, text_of(response)
    return response


def text_of(response: requests.Response) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", response.text))


def count(html: str, css_class: str) -> int:
    return len(re.findall(rf'class="[^"]*\b{re.escape(css_class)}\b[^"]*"', html))


# Launching from a card ------------------------------------------------------------------------


def test_the_card_links_to_the_app_only_when_it_is_configured(make_app):
    request = fixture("01-e1-zanubrutinib-pr")
    for client_id, expected in ((CLIENT_ID, 1), (None, 0)):
        app = make_app(date(2025, 1, 12), smart_client_id=client_id)
        card = app.test_client().post("/cds-services/wm-igm-response", json=request)
        links = card.get_json()["cards"][0]["links"]
        smart = [link for link in links if link["type"] == "smart"]
        assert len(smart) == expected
        if smart:
            assert smart[0]["url"] == "http://localhost/smart/launch"


def test_founding_example_ends_on_the_chart_with_its_category_and_values(service, ehr):
    response = launched(service, ehr, "01-e1-zanubrutinib-pr")
    html, text = response.text, text_of(response)
    assert response.url.startswith(f"{service.url}/smart/app?")
    assert "Partial response (PR)" in text and "-56.2%" in text
    assert "01 E1 Zanubrutinib Pr Fixture, born 1955-06-01" in text  # the patient banner
    assert "<svg" in html and 'role="img"' in html and "<title" in html
    rows = re.findall(r"<tr><td>(\d{4}-\d\d-\d\d)</td><td>([^<]+)</td>", html)
    assert ("5100 mg/dL" in [value for _, value in rows]) and (
        "2233 mg/dL" in [value for _, value in rows]
    )
    wide = html.split('<svg class="chart-wide"')[1].split("</svg>")[0]
    assert count(wide, "point") == len(rows)  # every value drawn, every value listed
    assert count(html, "baseline") >= 2  # the baseline point and its line
    assert 'class="level pr"' in html and 'class="level progression"' in html
    assert "zanubrutinib" in text
    assert "doi.org/10.1111/bjh.12102" in html  # the criteria, with their source
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "<script" not in html


def test_an_add_on_line_is_drawn_with_its_regimen(service, ehr):
    html = launched(service, ehr, "25-e12-rituximab-added-to-ibrutinib").text
    labels = re.findall(r'<text class="band-label"[^>]*>([^<]+)</text>', html)
    assert any("ibrutinib" in label and "rituximab" in label for label in labels), labels
    assert count(html, "flare") >= 1  # rituximab opened a flare window


def test_a_flare_window_is_shaded(service, ehr):
    response = launched(service, ehr, "06-e6-rituximab-flare")
    assert count(response.text, "flare") >= 1
    assert "rituximab flare window" in response.text
    assert "pubmed.ncbi.nlm.nih.gov/15493038" in response.text  # Ghobrial 2004, the source


def test_a_plasma_exchange_is_marked(service, ehr):
    response = launched(service, ehr, "12-plasmapheresis-latest")
    assert count(response.text, "exchange") >= 1
    assert "plasma exchange" in text_of(response)


def test_a_progression_shows_the_progression_line_and_how_far_the_latest_is(service, ehr):
    response = launched(service, ehr, "32-pd-then-fall")
    text = text_of(response)
    assert "Progressive disease (PD)" in text
    assert 'class="level progression"' in response.text
    assert re.search(r"Latest \S+ mg/dL \(\d{4}-\d\d-\d\d\) is .* the progression line", text)


def test_a_patient_without_igm_is_told_so(service, ehr):
    response = launched(service, ehr, "17-no-wm-data")
    assert "No IgM or M-spike result could be used" in text_of(response)
    assert "<svg" not in response.text
    # clinical-rules.md §3.7: no card (not even a monitoring reminder) without evidence of WM
    assert "No evidence of Waldenström macroglobulinemia in this record" in text_of(response)
    assert "monitoring due" not in text_of(response)


def test_values_left_out_are_listed_with_why(service, ehr):
    response = launched(service, ehr, "20-left-out-data")
    listed = re.findall(r'<ul id="excluded">(.*?)</ul>', response.text, re.S)
    assert listed and listed[0].count("<li>") >= 1


# The token stays on the server ---------------------------------------------------------------


def test_the_token_is_never_in_the_page_the_cookies_or_the_logs(service, ehr, capfd, caplog):
    simulator = ehr.app.extensions["smart_simulator"]
    before = set(simulator.tokens)
    patient, Today.day = patient_and_day("01-e1-zanubrutinib-pr")
    session = requests.Session()
    seen: list[str] = []
    step = session.get(
        f"{service.url}/smart/launch",
        params={"iss": f"{ehr.url}/fhir", "launch": patient},
        allow_redirects=False,
        timeout=60,
    )
    while step.is_redirect:
        seen += [step.headers.get("Location", ""), step.headers.get("Set-Cookie", "")]
        step = session.get(step.headers["Location"], allow_redirects=False, timeout=60)
    assert step.status_code == 200 and "Partial response (PR)" in text_of(step)
    (token,) = set(simulator.tokens) - before
    seen += [step.text, json.dumps(dict(step.headers)), *session.cookies.values()]
    out, err = capfd.readouterr()
    seen += [out, err, caplog.text]
    assert len(token) > 20
    assert not [where for where in seen if token in where]


def test_the_state_cookie_is_signed_short_lived_and_kept_to_the_app_path(service, ehr):
    patient, Today.day = patient_and_day("01-e1-zanubrutinib-pr")
    response = requests.get(
        f"{service.url}/smart/launch",
        params={"iss": f"{ehr.url}/fhir", "launch": patient},
        allow_redirects=False,
        timeout=60,
    )
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{STATE_COOKIE}=")
    assert "HttpOnly" in cookie and "Path=/smart/app" in cookie
    assert f"Max-Age={smart_launch.LAUNCH_SECONDS}" in cookie
    location = response.headers["Location"]
    assert location.startswith(f"{ehr.url}/smart/authorize?")
    assert "code_challenge_method=S256" in location and f"client_id={CLIENT_ID}" in location


# Errors a user can understand ------------------------------------------------------------------


def test_a_refused_iss(service):
    response = requests.get(
        f"{service.url}/smart/launch",
        params={"iss": "http://127.0.0.1:1\\@example.org/fhir", "launch": "x"},
        timeout=60,
    )
    assert response.status_code == 403 and "Launch refused" in response.text


def test_an_iss_no_trusted_issuer_names_is_refused(tmp_path, ehr):
    issuers = tmp_path / "issuers.json"
    issuers.write_text(
        json.dumps(
            {
                "issuers": [
                    {
                        "iss": "https://ehr.example",
                        "algorithms": ["ES384"],
                        "jwks_url": "https://ehr.example/jwks",
                        "fhir_servers": ["https://ehr.example/fhir"],
                    }
                ]
            }
        )
    )
    app = create_app(
        {
            "feedback_db": tmp_path / "s.sqlite3",
            "smart_client_id": CLIENT_ID,
            "trusted_issuers": issuers,
            "card_record_seconds": 0,
        }
    )
    client = app.test_client()
    refused = client.get("/smart/launch", query_string={"iss": f"{ehr.url}/fhir", "launch": "p"})
    assert refused.status_code == 403 and b"may not read from the FHIR server" in refused.data


def test_a_denied_authorization(service, ehr):
    response = launch(service, ehr, "no-such-patient")
    assert response.status_code == 403
    assert "Access not granted" in response.text and "(access_denied)" in response.text


def until_back_from_the_ehr(service: Served, ehr: Served) -> tuple[requests.Session, str]:
    """Launch E1 and stop where the EHR sends the browser back: (session, that URL)."""
    patient, Today.day = patient_and_day("01-e1-zanubrutinib-pr")
    session = requests.Session()
    params = {"iss": f"{ehr.url}/fhir", "launch": patient}
    first = session.get(
        f"{service.url}/smart/launch", params=params, allow_redirects=False, timeout=60
    )
    back = session.get(first.headers["Location"], allow_redirects=False, timeout=60)
    return session, back.headers["Location"]


def test_an_expired_launch(service, ehr, monkeypatch):
    session, back = until_back_from_the_ehr(service, ehr)
    monkeypatch.setattr(smart_launch, "LAUNCH_SECONDS", 1)
    time.sleep(2.2)  # itsdangerous timestamps have one-second resolution
    page = session.get(back, timeout=60)
    assert page.status_code == 400 and "expired" in page.text


def test_a_page_opened_without_a_launch(service):
    response = requests.get(f"{service.url}/smart/app?code=abc&state=def", timeout=60)
    assert response.status_code == 400 and "launch the app again" in response.text


def test_a_forged_state_is_refused(service, ehr):
    session, back = until_back_from_the_ehr(service, ehr)
    forged = re.sub(r"state=[^&]+", "state=forged", back)
    page = session.get(forged, timeout=60)
    assert page.status_code == 400 and "does not belong to the launch" in page.text


def test_without_a_client_id_there_is_no_app(make_app):
    response = make_app().test_client().get("/smart/launch?iss=http://127.0.0.1/fhir&launch=x")
    assert response.status_code == 404 and b"not set up" in response.data


def test_a_launch_without_iss_or_launch(service):
    response = requests.get(f"{service.url}/smart/launch", timeout=60)
    assert response.status_code == 400 and "Open this app from the EHR" in response.text
    huge = requests.get(
        f"{service.url}/smart/launch",
        params={"iss": "http://127.0.0.1/" + "x" * 3000, "launch": "p"},
        timeout=60,
    )
    assert huge.status_code == 400


def test_a_state_too_long_for_a_cookie_is_refused_in_words():
    cookie = smart_launch.StateCookie("k" * 32)
    endpoint = "http://x/" + secrets.token_urlsafe(4000)  # random: it does not compress
    state = smart_launch.LaunchState("http://127.0.0.1/fhir", "s", "v", endpoint)
    with pytest.raises(smart_launch.LaunchError, match="too long"):
        cookie.dump(state)
    short = smart_launch.LaunchState("http://127.0.0.1/fhir", "s", "v", "http://x/token")
    assert cookie.load(cookie.dump(short)) == short
    with pytest.raises(smart_launch.LaunchError, match="not valid"):
        cookie.load(cookie.dump(short)[:-2] + "xx")  # tampered


# A FHIR server that fails ----------------------------------------------------------------------


def _failing_ehr(fhir, failing: set[str], short: frozenset[str] = frozenset()) -> None:
    """pytest-httpserver as an EHR that launches at once and whose `failing` searches
    answer 500, and whose `short` searches give a total above their entries; the
    observations are E1's."""
    from werkzeug import Request, Response

    base = fhir.url_for("/fhir")
    observations = [
        entry for entry in fixture("01-e1-zanubrutinib-pr")["prefetch"]["observations"]["entry"]
    ]
    statements = fixture("01-e1-zanubrutinib-pr")["prefetch"]["medicationStatements"]

    def configuration(_: Request) -> Response:
        body = {
            "authorization_endpoint": fhir.url_for("/authorize"),
            "token_endpoint": fhir.url_for("/token"),
            "code_challenge_methods_supported": ["S256"],
        }
        return Response(json.dumps(body), content_type="application/json")

    def authorize(request: Request) -> Response:
        target = f"{request.args['redirect_uri']}?code=c1&state={request.args['state']}"
        return Response(status=302, headers={"Location": target})

    def token(_: Request) -> Response:
        body = {"access_token": "t-1234567890-secret", "token_type": "Bearer", "patient": "p1"}
        return Response(json.dumps(body), content_type="application/json")

    def search(request: Request) -> Response:
        kind = request.path.rsplit("/", 1)[-1]
        if kind in failing:
            return Response("down", status=500)
        patient = "wm-01-e1-zanubrutinib-pr"
        if kind == "Observation":
            entries = observations
        elif kind == "MedicationStatement":
            entries = statements["entry"]
        else:
            entries = []
        document = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if kind in short:
            document["total"] = len(entries) + 10
        text = json.dumps(document)
        return Response(text.replace(patient, "p1"), content_type="application/fhir+json")

    fhir.expect_request("/fhir/.well-known/smart-configuration").respond_with_handler(configuration)
    fhir.expect_request("/authorize").respond_with_handler(authorize)
    fhir.expect_request("/token", method="POST").respond_with_handler(token)
    fhir.expect_request(re.compile(r"/fhir/[A-Za-z]+")).respond_with_handler(search)
    assert base


def launch_at_failing_ehr(
    service, fhir, failing: set[str], short: frozenset[str] = frozenset()
) -> requests.Response:
    _failing_ehr(fhir, failing, short)
    Today.day = date(2025, 1, 12)
    return requests.get(
        f"{service.url}/smart/launch",
        params={"iss": fhir.url_for("/fhir"), "launch": "L1"},
        timeout=60,
    )


def test_a_fhir_server_that_fails_for_the_results(service, fhir):
    response = launch_at_failing_ehr(service, fhir, {"Observation"})
    assert response.status_code == 502
    assert "laboratory results could not be read" in response.text
    assert "t-1234567890-secret" not in response.text


def test_a_fhir_server_that_fails_for_medications_says_what_could_not_be_read(service, fhir):
    response = launch_at_failing_ehr(
        service, fhir, {"MedicationRequest", "MedicationAdministration"}
    )
    assert response.status_code == 200
    text = text_of(response)
    assert "Could not be read from the EHR: medication orders, medication administrations" in text
    assert "Partial response (PR)" in text  # what could be read is still shown


def test_a_search_returned_in_part_is_said_on_the_page(service, fhir):
    response = launch_at_failing_ehr(service, fhir, set(), short=frozenset({"Observation"}))
    assert response.status_code == 200
    text = text_of(response)
    assert "Returned only in part by the EHR's FHIR server: laboratory results" in text
    assert "some IgM results not returned" in text
    assert "Could not be read from the EHR" not in text


def test_the_banner_names_only_the_launched_patient():
    from cds_service.fhir.patient_banner import patient_banner

    jane = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"use": "old", "text": "Jane Old"}, {"given": ["Jane"], "family": "Doe"}],
        "birthDate": "1950-01-02",
    }
    assert patient_banner([jane], "p1") == "Jane Doe, born 1950-01-02"
    assert patient_banner([jane], "p2") is None
    assert patient_banner([{**jane, "name": [{"text": "x\u0000y"}], "birthDate": 5}], "p1") is None
    # contract v3: bidirectional and C1 controls never reach the banner ("Trojan Source")
    tricked = {**jane, "name": [{"text": "Jane \u202eeoD\u202c\u2066 \u0085Smith"}]}
    assert patient_banner([tricked], "p1") == "Jane eoD Smith, born 1950-01-02"


def test_the_default_scopes_are_what_the_app_reads():
    # contract v3: `launch` and `patient/<Type>.rs` for each type read; no openid fhirUser
    from cds_service.config import DEFAULT_SMART_SCOPES
    from cds_service.hooks.discovery import TREND_READS

    scopes = DEFAULT_SMART_SCOPES.split()
    assert scopes[0] == "launch" and "openid" not in scopes and "fhirUser" not in scopes
    read = {template.split("?")[0].split("/")[0] for template in TREND_READS.values()}
    # Medication: a medicationReference is read as Medication/{id} (contract v3)
    assert {scope.removeprefix("patient/").removesuffix(".rs") for scope in scopes[1:]} == {
        *read,
        "Medication",
    }


def test_derived_levels_are_shown_as_the_cards_show_values(service, ehr):
    # contract v3: E1's nadir 2233 gives a progression line at 1.25 x 2233 = 2791.25 mg/dL;
    # the page shows whole mg/dL, as the cards do, never a fraction of one.
    response = launched(service, ehr, "01-e1-zanubrutinib-pr")
    assert "2791.25" not in response.text and "558.25" not in response.text
    assert "PD 2791" in response.text or "progression line (2791 mg/dL" in text_of(response)
    assert "558 mg/dL below the progression line (2791 mg/dL" in text_of(response)
