"""The security review's eleven findings, each reproduced against the real server process
(gunicorn, authentication on) on loopback, and shown refused or bounded."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import uuid
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pytest_httpserver import HTTPServer

from .. import servers
from ..builders import founding_request, hook_request, igm
from ..hostile import Listener, answer, trickle, wait_until

ISS = "https://ehr.example.org"
SERVICE = "/cds-services/wm-igm-response"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ACCESS_TOKEN = "SECRET-ACCESS-TOKEN-4711"
PATIENT_NAME = "Wilhelmina Zwanenburg"
BIRTH_DATE = "1931-02-29"
DEADLINE = 2.0
READ_TIMEOUT = 2.0
MAX_BODY = 200_000


def public_jwk(private_key, kid, alg):
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class Setup:
    """One service process and the hostile servers around it, shared by this module."""

    def __init__(self, tmp: Path) -> None:
        self.fhir = HTTPServer(host="127.0.0.1")
        self.fhir.start()
        self.victim = Listener()
        self.trickler = Listener(trickle())
        self.oversized = Listener(
            answer(b'{"resourceType": "Bundle", "entry": [' + b"1.5," * (3 * 1024 * 1024) + b"1]}")
        )
        closed = servers.free_port()  # nothing listens there
        self.fhir_url = self.fhir.url_for("/fhir")
        self.trickle_url = f"http://127.0.0.1:{self.trickler.port}/fhir"
        self.oversized_url = f"http://127.0.0.1:{self.oversized.port}/fhir"
        self.closed_url = f"http://127.0.0.1:{closed}/fhir"
        issuers = tmp / "issuers.json"
        issuers.write_text(
            json.dumps(
                {
                    "issuers": [
                        {
                            "iss": ISS,
                            "jwks": {
                                "keys": [
                                    public_jwk(EC_KEY, "ec-1", "ES384"),
                                    public_jwk(RSA_KEY, "rsa-1", "RS384"),
                                ]
                            },
                            "algorithms": ["ES384", "RS384"],
                            "fhir_servers": [
                                self.fhir_url,
                                self.trickle_url,
                                self.oversized_url,
                                self.closed_url,
                            ],
                        }
                    ]
                }
            )
        )
        self.home = tmp / "home"
        self.home.mkdir()
        self.tmp = tmp
        self.port = servers.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            "CDS_TRUSTED_ISSUERS": str(issuers),
            "CDS_PUBLIC_BASE_URL": self.base,
            "CDS_FHIR_DEADLINE_SECONDS": str(DEADLINE),
            "CDS_MAX_BODY_BYTES": str(MAX_BODY),
            "CDS_CLIENT_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
            "HOME": str(self.home),
            "XDG_RUNTIME_DIR": "",
        }
        self.process = servers.start(tmp, self.port, **env)

    @property
    def log(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")

    def close(self) -> None:
        servers.stop(self.process)
        for listener in (self.victim, self.trickler, self.oversized):
            listener.close()
        self.fhir.clear()
        self.fhir.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    handle = Setup(tmp_path_factory.mktemp("security"))
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def fhir(setup):
    setup.fhir.clear()
    yield setup.fhir
    setup.fhir.clear()


def token(setup, path=SERVICE, **claims):
    now = int(time.time())
    payload = {
        "iss": ISS,
        "aud": setup.base + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, EC_KEY, algorithm="ES384", headers={"kid": "ec-1", "typ": "JWT"})


def forged(header, payload):
    """A token of any shape, signed with nothing: it must be refused before any key is used."""

    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.AAAA"


def call(setup, body=None, bearer=None, path=SERVICE, data=None, headers=None, **kw):
    headers = dict(headers or {})
    headers["Authorization"] = f"Bearer {bearer or token(setup, path)}"
    if data is None:
        return requests.post(setup.base + path, json=body, headers=headers, timeout=30, **kw)
    headers.setdefault("Content-Type", "application/json")
    return requests.post(setup.base + path, data=data, headers=headers, timeout=30, **kw)


def fetching(fhir_server, missing=("observations", "procedures")):
    request = founding_request(fhir_server, missing=missing)
    request["fhirAuthorization"] = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds-service",
    }
    return request


def no_500_no_traceback(setup):
    assert "Traceback" not in setup.log
    assert 500 not in servers.statuses(setup.log)


# 1. SSRF through a Bundle's next link ------------------------------------------------------


def _bundle(*resources, next_url=None):
    document = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        document["link"] = [{"relation": "next", "url": next_url}]
    return document


def test_ssrf_next_link_from_the_allowed_server_reaches_no_other_port(setup, fhir):
    sneaky = f"http://127.0.0.1:{setup.victim.port}\\@127.0.0.1:{fhir.port}/fhir/Observation?p=2"
    fhir.expect_request("/fhir/Observation").respond_with_json(
        _bundle(igm("o1", -5, 5100), next_url=sneaky)
    )
    fhir.expect_request("/fhir/Procedure").respond_with_json(_bundle())
    before = setup.victim.accepted
    response = call(setup, fetching(setup.fhir_url))
    assert response.status_code == 412
    time.sleep(0.5)
    assert setup.victim.accepted == before, "a connection reached the other port"
    assert ACCESS_TOKEN.encode() not in setup.victim.received


def test_ssrf_next_link_in_the_callers_prefetch_reaches_no_other_port(setup, fhir):
    request = fetching(setup.fhir_url, missing=())
    sneaky = f"http://127.0.0.1:{setup.victim.port}\\@127.0.0.1:{fhir.port}/fhir/Observation"
    request["prefetch"]["observations"] = _bundle(igm("o1", -5, 5100), next_url=sneaky)
    before = setup.victim.accepted
    response = call(setup, request)
    assert response.status_code == 412
    time.sleep(0.5)
    assert setup.victim.accepted == before


def test_the_412_is_the_same_whatever_went_wrong_upstream(setup, fhir):
    fhir.expect_request("/fhir/Observation").respond_with_json({}, status=404)
    fhir.expect_request("/fhir/Procedure").respond_with_json(_bundle())
    not_found = call(setup, fetching(setup.fhir_url))
    unreachable = call(setup, fetching(setup.closed_url))
    assert not_found.status_code == unreachable.status_code == 412
    # a caller must not learn from the wording which ports are open
    assert not_found.json() == unreachable.json()
    assert "HTTP 404" in setup.log and "could not be reached" in setup.log


# 2, 6, 7. tokens of every shape: a 401, never a 500 -------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "iss-list",
        "iss-object",
        "alg-list",
        "alg-object",
        "kid-list",
        "ec-kid-with-rs384",
        "aud-array-foreign",
        "exp-huge",
        "exp-string",
        "jti-object",
    ],
)
def test_tokens_of_odd_shape_are_401_not_500(setup, name):
    now = int(time.time())
    aud = setup.base + SERVICE
    good = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    header = {"alg": "ES384", "kid": "ec-1", "typ": "JWT"}
    if name == "iss-list":
        bearer = forged(header, {**good, "iss": [ISS]})
    elif name == "iss-object":
        bearer = forged(header, {**good, "iss": {"a": ISS}})
    elif name == "alg-list":
        bearer = forged({**header, "alg": ["ES384"]}, good)
    elif name == "alg-object":
        bearer = forged({**header, "alg": {"x": 1}}, good)
    elif name == "kid-list":
        bearer = forged({**header, "kid": ["ec-1"]}, good)
    elif name == "ec-kid-with-rs384":
        bearer = jwt.encode(good, RSA_KEY, algorithm="RS384", headers={"kid": "ec-1"})
    elif name == "aud-array":
        # contains the right URL, plus another: the spec asks that aud equal the URL called
        claims = {**good, "aud": [aud, "https://other.example"]}
        bearer = jwt.encode(claims, EC_KEY, algorithm="ES384", headers={"kid": "ec-1"})
    elif name == "exp-huge":
        claims = {**good, "exp": 10**19}
        bearer = jwt.encode(claims, EC_KEY, algorithm="ES384", headers={"kid": "ec-1"})
    elif name == "exp-string":
        bearer = forged(header, {**good, "exp": "tomorrow"})
    else:
        bearer = forged(header, {**good, "jti": {"a": 1}})
    response = call(setup, hook_request(), bearer=bearer)
    assert response.status_code == 401
    assert response.json()["issue"][0]["diagnostics"] == "authentication required"
    no_500_no_traceback(setup)


# 3. deadlines that really end ----------------------------------------------------------------


def test_a_trickling_fhir_server_is_cut_at_the_deadline_with_nothing_left_open(setup):
    started = time.monotonic()
    response = call(setup, fetching(setup.trickle_url))
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    assert elapsed < DEADLINE + 3, elapsed
    # every connection the service opened to it is closed promptly
    assert wait_until(lambda: setup.trickler.open_connections == 0, 3)
    # and healthy requests still get answers
    assert call(setup, founding_request()).status_code == 200


def test_an_oversized_fhir_answer_is_refused_before_parsing(setup):
    started = time.monotonic()
    response = call(setup, fetching(setup.oversized_url))
    assert response.status_code == 412
    assert time.monotonic() - started < DEADLINE + 3
    assert "too large" in setup.log


# 4. slow clients -----------------------------------------------------------------------------


def test_trickling_clients_do_not_stop_healthz(setup):
    connections = 12  # more than the 2 workers x 4 threads
    stop = threading.Event()
    sockets = []

    def slowloris():
        sock = socket.create_connection(("127.0.0.1", setup.port), timeout=30)
        sockets.append(sock)
        try:
            for byte in b"POST /cds-services/wm-igm-response HTTP/1.1\r\nHost: x\r\n":
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
        except OSError:
            return  # closed by the server: the point

    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        health = requests.get(setup.base + "/healthz", timeout=20)
        assert health.status_code == 200
        assert time.monotonic() - started < READ_TIMEOUT + 5
        # the trickling connections are closed by the server after the read timeout
        for thread in threads:
            thread.join(timeout=READ_TIMEOUT + 10)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        stop.set()
        for sock in sockets:
            sock.close()


# 5. tokens and patient data never in a log or an error body ------------------------------------


def test_secrets_and_patient_data_reach_no_log_and_no_error_body(setup, fhir):
    bodies = []
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"text": PATIENT_NAME}],
        "birthDate": BIRTH_DATE,
    }
    # a double-encoded fhirAuthorization: a string holding the token
    request = founding_request(setup.fhir_url)
    request["fhirAuthorization"] = json.dumps({"access_token": ACCESS_TOKEN})
    bodies.append(call(setup, request))
    # a prefetch value that is an array holding the patient
    request = founding_request()
    request["prefetch"]["procedures"] = [patient]
    bodies.append(call(setup, request))
    # a client's OperationOutcome with the patient's name in it, and no FHIR server: for the
    # required key (412) and for another (the answer degrades)
    for key in ("observations", "procedures"):
        request = founding_request()
        request["prefetch"][key] = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "exception", "diagnostics": PATIENT_NAME * 1000}
            ],
        }
        bodies.append(call(setup, request))
    # the access token in places a value is checked
    request = founding_request()
    request["context"]["patientId"] = ACCESS_TOKEN + "!"
    bodies.append(call(setup, request))
    request = founding_request()
    request["hookInstance"] = ACCESS_TOKEN
    bodies.append(call(setup, request))
    # the token in the path, the Content-Type and the bearer header
    bodies.append(call(setup, hook_request(), path=f"/cds-services/{ACCESS_TOKEN}"))
    bodies.append(call(setup, data=b"{}", headers={"Content-Type": f"text/{ACCESS_TOKEN}"}))
    bodies.append(call(setup, hook_request(), bearer=ACCESS_TOKEN))
    # a fetch that fails, with the token sent upstream
    fhir.expect_request("/fhir/Observation").respond_with_data(
        PATIENT_NAME, status=500, content_type="text/plain"
    )
    fhir.expect_request("/fhir/Procedure").respond_with_json(_bundle())
    bodies.append(call(setup, fetching(setup.fhir_url)))
    statuses = [b.status_code for b in bodies]
    assert statuses.count(200) == 1 and all(s < 500 for s in statuses), statuses
    for response in bodies:
        text = response.text
        for secret in (ACCESS_TOKEN, PATIENT_NAME, BIRTH_DATE):
            assert secret not in text, (response.status_code, text)
    log = setup.log
    for secret in (ACCESS_TOKEN, PATIENT_NAME, BIRTH_DATE):
        assert secret not in log
    no_500_no_traceback(setup)


# 7. numbers and calendars ------------------------------------------------------------------------


def test_numbers_of_any_size_and_calendar_edges_are_400(setup):
    long_integer = b'{"hook": "patient-view", "x": ' + b"9" * 4301 + b"}"
    assert call(setup, data=long_integer).status_code == 400
    request = founding_request()
    request["context"]["encounterId"] = 1e300
    body = json.dumps(request).replace("1e+300", "1e999999999").encode()
    assert call(setup, data=body).status_code == 400
    feedback = {
        "feedback": [
            {
                "card": str(uuid.uuid4()),
                "outcome": "overridden",
                "overrideReason": {"userComment": "x"},
                "outcomeTimestamp": "9999-12-31T23:59:59-23:59",
            }
        ]
    }
    path = SERVICE + "/feedback"
    assert call(setup, feedback, path=path).status_code == 400
    feedback["feedback"][0]["outcomeTimestamp"] = "0001-01-01T00:00:00+23:59"
    assert call(setup, feedback, path=path).status_code == 400
    no_500_no_traceback(setup)


def test_a_number_out_of_range_in_a_result_leaves_that_result_out_with_its_reason(setup):
    """Inside a prefetch resource the number is read only when the rules read it (issue
    "validate what the rules read"): the result is left out and named, never guessed, and
    the rest of the record is still used. The number is never converted at its size."""
    body = json.dumps(founding_request()).replace("2233", "1e999999999").encode()
    response = call(setup, data=body)
    assert response.status_code == 200
    assessment = response.json()["cards"][0]["extension"]["wm-igm-assessment"]
    assert "1e999999999" not in response.text
    reasons = [item["reason"] for item in assessment["excluded"]]
    assert any("valueQuantity.value" in r and "out of range" in r for r in reasons), reasons
    assert assessment["latest"]["valueMgDl"] != 2233
    no_500_no_traceback(setup)


# 8. chunked bodies -------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413_not_cut(setup):
    chunk = b" " * 10_000

    def body():
        yield b'{"hook": "patient-view", "pad": "'
        for _ in range(MAX_BODY // len(chunk) + 2):
            yield chunk
        yield b'"}'

    response = call(setup, data=body())
    assert response.status_code == 413
    small = json.dumps(founding_request()).encode()
    assert call(setup, data=iter([small[:100], small[100:]])).status_code == 200


# 9. ids end where they end ---------------------------------------------------------------------


def test_a_trailing_newline_in_an_id_is_400(setup):
    request = founding_request()
    request["context"]["patientId"] = "p1\n"
    response = call(setup, request)
    assert response.status_code == 400
    assert "context.patientId" in response.json()["issue"][0]["diagnostics"]


# 10. Host and forwarded headers choose nothing ---------------------------------------------------


def test_host_and_forwarded_headers_choose_neither_audience_nor_links(setup):
    spoofed = {
        "Host": "attacker.example",
        "X-Forwarded-Host": "attacker.example",
        "X-Forwarded-Proto": "https",
    }
    bad = jwt.encode(
        {
            "iss": ISS,
            "aud": "https://attacker.example" + SERVICE,
            "exp": int(time.time()) + 300,
            "iat": int(time.time()),
            "jti": str(uuid.uuid4()),
        },
        EC_KEY,
        algorithm="ES384",
        headers={"kid": "ec-1"},
    )
    assert call(setup, founding_request(), bearer=bad, headers=spoofed).status_code == 401
    response = call(setup, founding_request(), headers=spoofed)
    assert response.status_code == 200
    links = [link["url"] for card in response.json()["cards"] for link in card.get("links", [])]
    assert links and not any("attacker" in url for url in links)


# 11. the server's own errors, and no shared control socket ---------------------------------------


def test_the_servers_own_errors_are_json(setup):
    long_uri = requests.get(setup.base + "/healthz?" + "a" * 9000, timeout=10)
    assert long_uri.status_code == 414
    assert long_uri.headers["Content-Type"] == "application/fhir+json"
    assert long_uri.json()["resourceType"] == "OperationOutcome"
    huge_header = requests.get(setup.base + "/healthz", headers={"X-Big": "b" * 20000}, timeout=10)
    assert huge_header.status_code in (400, 431)
    assert huge_header.json()["resourceType"] == "OperationOutcome"
    assert "a" * 100 not in long_uri.text


def test_no_control_socket_is_shared_between_instances(setup):
    assert not list(setup.home.rglob("gunicorn.ctl"))


# production hygiene --------------------------------------------------------------------------


def test_gunicorn_over_the_app_factory_refuses_a_public_bind_without_authentication(tmp_path):
    result = servers.run_gunicorn(tmp_path, f"0.0.0.0:{servers.free_port()}")
    assert result.returncode == 2
    assert "refusing to serve" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_stops_the_master_with_one_line(tmp_path):
    result = servers.run_gunicorn(tmp_path, f"127.0.0.1:{servers.free_port()}", CDS_CRITERIA="nope")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("cds-service:")]
    assert len(lines) == 1 and "CDS_CRITERIA" in lines[0]
    assert "Traceback" not in result.stderr


def test_without_authentication_only_loopback_pages_may_call(tmp_path):
    server = servers.Server(tmp_path)
    try:
        for origin, allowed in (
            ("https://evil.example", False),
            ("https://sandbox.cds-hooks.org", False),  # unless named in CDS_CORS_ORIGINS
            ("http://127.0.0.1:3000", True),
        ):
            response = requests.options(
                server.url + SERVICE,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
                timeout=10,
            )
            assert (response.headers.get("Access-Control-Allow-Origin") == origin) is allowed
    finally:
        server.close()
