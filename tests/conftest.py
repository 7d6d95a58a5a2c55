"""Shared fixtures: an app on a temporary SQLite file, a client whose every service
response is checked against the project's CDS Hooks response schema."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pytest_httpserver import HTTPServer
from werkzeug.serving import make_server

from cds_service.app import create_app
from cds_service.hooks.validation import schema_errors
from cds_service.tools.fixture_server import create_fixture_app

FIXED_TODAY = date(2026, 11, 24)


class CheckedClient(FlaskClient):
    """Flask's test client; every 200 from a CDS service call must be schema-valid."""

    def open(self, *args: Any, **kwargs: Any):
        response = super().open(*args, **kwargs)
        path = response.request.path
        if (
            response.status_code == 200
            and path.startswith("/cds-services/")
            and not path.endswith("/feedback")
            and response.request.method == "POST"
        ):
            errors = schema_errors("response", response.get_json())
            assert not errors, errors
        return response


@pytest.fixture
def make_app(tmp_path) -> Callable[..., Flask]:
    def factory(today: date = FIXED_TODAY, **overrides: Any) -> Flask:
        overrides.setdefault("feedback_db", tmp_path / "feedback.sqlite3")
        # In process, issued cards are recorded with the request (tests read them at once);
        # batching is tested in test_issued_cards.py and under gunicorn.
        overrides.setdefault("card_record_seconds", 0)
        app = create_app(overrides, today=lambda: today)
        app.test_client_class = CheckedClient
        return app

    return factory


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def call(make_app) -> Callable[..., Any]:
    """POST a patient-view request with "today" set; return the JSON response (asserts 200)."""

    def post(request: dict[str, Any], today: date = FIXED_TODAY, **overrides: Any) -> Any:
        response = (
            make_app(today, **overrides)
            .test_client()
            .post("/cds-services/wm-igm-response", json=request)
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return post


@pytest.fixture
def fhir() -> HTTPServer:
    """A real HTTP server on loopback to play the EHR's FHIR server. Handlers that must
    hang can wait on `fhir.release`, which is set before the server stops."""
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    server.release = threading.Event()
    yield server
    server.release.set()
    server.clear()
    server.stop()


@pytest.fixture(scope="module")
def fhir_base():
    """The fixture Bundles served by `cds-fixture-server`'s app on a loopback port."""
    root = Path(__file__).resolve().parent.parent
    server = make_server("127.0.0.1", 0, create_fixture_app(root / "fixtures"), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/fhir"
    finally:
        server.shutdown()
