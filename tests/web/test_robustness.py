"""No input produces a 500 or a hang: fuzzing the request, the prefetch resources and the
feedback body, and a FHIR server that misbehaves in every way we could think of."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug import Response

from cds_service.hooks.validation import schema_errors

from ..builders import (
    GENERIC_412,
    bundle,
    founding_request,
    hook_request,
    ife,
    igm,
    logged_reasons,
    plasmapheresis,
    request_for,
    statement,
)

SERVICE = "/cds-services/wm-igm-response"
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ACCEPTABLE = {200, 400, 412, 413, 415}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
    | st.sampled_from(
        ["", "Patient/p1", "2024-01-15", "final", "mg/dL", "<", "\u202e\u0000", "x" * 5000]
    )
    # The security review's input classes: ids with a final newline, instants at the
    # calendar's edges, and numbers no JSON library agrees on (written raw, see `dumps`).
    | st.sampled_from(
        [
            "p1\n",
            "Patient/p1\n",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "2024-02-30",
            "1e999999999",
        ]
    )
    | st.sampled_from(["1e999999999", "9" * 4301, "-1E+401", "1e-999999", "1" + "0" * 120]).map(
        lambda number: f"@@RAW:{number}@@"
    )
)
_RAW = re.compile(r'"@@RAW:([^@]+)@@"')


def dumps(document) -> str:
    """JSON text with the raw numbers put in (json.dumps cannot write them)."""
    return _RAW.sub(lambda match: match.group(1), json.dumps(document))


json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def valid_request():
    return hook_request(
        [igm("o1", -5, 5100), igm("o2", 360, 2233), ife("i1", 360, "Negative")],
        [statement("m1", "zanubrutinib", 0)],
        [request_for("r1", "rituximab", 10)],
        [plasmapheresis("pp1", -100)],
    )


def paths(document, prefix=()):
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from paths(value, (*prefix, index))


def replace_at(document, path, value):
    if not path:
        return value
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return document


def check_answer(response):
    assert response.status_code in ACCEPTABLE, (
        response.status_code,
        response.get_data(as_text=True)[:500],
    )
    body = response.get_json()
    if response.status_code == 200:
        assert schema_errors("response", body) == []
    else:
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["diagnostics"]


def test_fuzzed_requests_never_fail(client):
    all_paths = list(paths(valid_request()))

    @FUZZ
    @given(index=st.integers(0, len(all_paths) - 1), value=json_values)
    def check(index, value):
        request = replace_at(valid_request(), all_paths[index], value)
        check_answer(client.post(SERVICE, data=dumps(request), content_type="application/json"))

    check()


def test_fuzzed_prefetch_resources_never_fail(client):
    @FUZZ
    @given(
        resources=st.lists(
            st.dictionaries(
                st.sampled_from(
                    [
                        "resourceType",
                        "id",
                        "status",
                        "code",
                        "subject",
                        "effectiveDateTime",
                        "valueQuantity",
                        "effectivePeriod",
                        "medicationCodeableConcept",
                        "contained",
                        "referenceRange",
                        "performedDateTime",
                        "dispenseRequest",
                        "extra",
                    ]
                ),
                json_values,
            ).map(lambda r: {**r, "resourceType": r.get("resourceType", "Observation")}),
            max_size=6,
        ),
        key=st.sampled_from(
            [
                "observations",
                "medicationStatements",
                "medicationRequests",
                "medicationAdministrations",
                "procedures",
            ]
        ),
    )
    def check(resources, key):
        request = valid_request()
        request["prefetch"][key]["entry"] += [{"resource": r} for r in resources]
        check_answer(client.post(SERVICE, data=dumps(request), content_type="application/json"))

    check()


def test_fuzzed_feedback_never_fails(client):
    @FUZZ
    @given(
        body=json_values | st.fixed_dictionaries({"feedback": st.lists(json_values, max_size=3)})
    )
    def check(body):
        response = client.post(
            SERVICE + "/feedback", data=dumps(body), content_type="application/json"
        )
        assert response.status_code in {200, 400}
        assert response.get_json()

    check()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"hook": "patient-view", "x": NaN}',
        b'{"hook": Infinity}',
        b"-Infinity",
        b"[" * 50000,
        b'{"a":' * 50000,
        b"\x00\x01\x02",
        b'"just a string"',
        b"12345678901234567890123456789012345678901234567890",
        json.dumps({"hook": "patient-view", "hookInstance": "1" * 100000}).encode(),
    ],
)
def test_hostile_bodies_get_a_clear_400(client, raw):
    response = client.post(SERVICE, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["diagnostics"]


def test_huge_and_odd_numbers_in_results(call):
    request = hook_request(
        [igm("o1", -5, 10**25), igm("o2", 360, 1e-300), igm("o3", 361, -0.0)],
        [statement("m1", "zanubrutinib", 0)],
    )
    result = call(request)["cards"][0]["extension"]["wm-igm-assessment"]
    assert result["category"] == "VGPR"


def test_duplicate_ids_with_different_content(call):
    request = hook_request(
        [
            igm("o1", -5, 5100),
            igm("o2", 360, 2233),
            igm("o2", 360, 9999, meta={"lastUpdated": "2020-01-01T00:00:00Z"}),
        ],
        [statement("m1", "zanubrutinib", 0)],
    )
    # The copy updated most recently wins whatever the order; here the one without meta
    # sorts first, so the 2020 copy wins over it.
    result = call(request)["cards"][0]["extension"]["wm-igm-assessment"]
    assert result["latest"]["valueMgDl"] == 9999
    request["prefetch"]["observations"]["entry"].reverse()
    assert (
        call(request)["cards"][0]["extension"]["wm-igm-assessment"]["latest"]["valueMgDl"] == 9999
    )


# A FHIR server that misbehaves ------------------------------------------------------------


def fetch_request(base):
    return founding_request(base, missing=("procedures",))


def answer_procedures(fhir, handler):
    fhir.expect_request("/fhir/Procedure").respond_with_handler(handler)


def observations_request(base):
    """Observations are the one required key (contract v2): failing them is a 412."""
    return founding_request(base, missing=("observations",))


def answer_observations(fhir, handler):
    fhir.expect_request("/fhir/Observation").respond_with_handler(handler)


@pytest.mark.parametrize(
    "response, fragment",
    [
        (Response("<html>oops</html>", content_type="text/html"), "not acceptable JSON"),
        (Response('{"hello": "world"}', content_type="application/json"), "not a FHIR resource"),
        (Response("[1, 2, 3]", content_type="application/json"), "not a FHIR resource"),
        (
            Response('{"resourceType": "OperationOutcome"}', content_type="application/json"),
            "OperationOutcome",
        ),
        (Response("", status=302, headers={"Location": "http://169.254.169.254/"}), "HTTP 302"),
    ],
)
def test_bad_answers_from_the_fhir_server_are_412(fhir, client, response, fragment, caplog):
    answer_observations(fhir, lambda request: response)
    result = client.post(SERVICE, json=observations_request(fhir.url_for("/fhir")))
    assert result.status_code == 412
    assert GENERIC_412 in result.get_json()["issue"][0]["diagnostics"]
    assert fragment in logged_reasons(caplog)


def test_wrong_resource_types_in_a_bundle_are_ignored(fhir, call):
    answer_procedures(
        fhir,
        lambda request: Response(
            json.dumps(bundle({"resourceType": "Basic", "id": "b1"}, igm("o9", 100, 100))),
            content_type="application/fhir+json",
        ),
    )
    result = call(fetch_request(fhir.url_for("/fhir")))["cards"][0]["extension"][
        "wm-igm-assessment"
    ]
    assert result["category"] == "PR"  # an Observation arriving under "procedures" still counts
    assert result["latest"]["valueMgDl"] == 2233


def test_a_10000_entry_bundle(fhir, call):
    entries = [plasmapheresis(f"pp{i}", -2000 - i, text="Appendectomy") for i in range(10000)]
    payload = json.dumps(bundle(*entries))
    answer_procedures(fhir, lambda request: Response(payload, content_type="application/fhir+json"))
    result = call(fetch_request(fhir.url_for("/fhir")))["cards"][0]["extension"][
        "wm-igm-assessment"
    ]
    assert result["category"] == "PR"


def test_connection_reset_mid_body_is_412():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100000\r\n\r\n{"resourceType": "Bun'
            )
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        from cds_service.app import create_app

        settings = {"feedback_db": "/tmp/robust-reset.sqlite3", "card_record_seconds": 0}
        client = create_app(settings).test_client()
        request = observations_request(f"http://127.0.0.1:{port}/fhir")
        response = client.post(SERVICE, json=request)
        assert response.status_code == 412
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_server_that_trickles_bytes_is_cut_at_the_deadline(fhir, make_app):
    def trickle(request):
        def body():
            yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
            for _ in range(100):
                if fhir.release.wait(0.1):
                    return
                yield b" "
            yield b"]}"

        return Response(body(), content_type="application/fhir+json")

    answer_observations(fhir, trickle)
    client = make_app(fhir_deadline_seconds=0.5).test_client()
    started = time.monotonic()
    response = client.post(SERVICE, json=observations_request(fhir.url_for("/fhir")))
    assert response.status_code == 412
    assert time.monotonic() - started < 3
