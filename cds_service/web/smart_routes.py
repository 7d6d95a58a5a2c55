"""The trend app's HTTP routes: `GET /smart/launch` and `GET /smart/app` (contract "SMART app").

Thin: the launch is `launch.py`, the data and the assessment the service's `trend`, the page
`page.py`. Every answer is an HTML page a clinician can read, errors included; none carries
the access token, and none is cached.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, redirect, request

from ..fhir.prefetch import PrefetchUnavailable
from ..smart import launch as smart_launch
from ..smart.page import render_problem, render_trend
from ..store.sql import StoreUnavailable
from .routes import public_base_url
from .smart_policy import LaunchesBusy, LaunchGate, SmartPolicy

smart = Blueprint("smart", __name__)

STATE_COOKIE = "wm_igm_smart_launch"
APP_PATH = "/smart/app"
_OAUTH_ERROR = re.compile(r"[a-z_]{1,40}")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # No script at all; inline style only; nothing loaded from elsewhere.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(html: str, status: int = 200) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers.update(_SECURITY_HEADERS)
    return response


def _problem(message: str, status: int, title: str | None = None) -> Response:
    html = render_problem(message, title) if title else render_problem(message)
    return _page(html, status)


def _state_cookie() -> smart_launch.StateCookie:
    return smart_launch.StateCookie(current_app.extensions["wm_igm_launch_keys"])


def _policy() -> SmartPolicy:
    return current_app.extensions["wm_igm_smart_policy"]


_GATE = LaunchGate()  # one per worker process
_BUSY = (
    "Too many launches of the IgM course app are in progress here right now: try again in a moment."
)
_ENDPOINT_REFUSED = (
    "The EHR's SMART configuration names an authorization server this service is not set up "
    "to use. The service's operator can register it for this EHR (smart_endpoints)."
)


@smart.before_request
def configured() -> Response | None:
    if not current_app.config["CDS_SETTINGS"].smart_client_id:
        return _problem("The IgM course app is not set up on this service.", 404)
    return None


@smart.get("/smart/launch")
def launch() -> Response:
    settings = current_app.config["CDS_SETTINGS"]
    iss, launch_id = request.args.get("iss", ""), request.args.get("launch", "")
    if not iss or not launch_id or len(iss) > 2000 or len(launch_id) > 2000:
        return _problem(
            "Open this app from the EHR: it must be launched with the EHR's 'iss' and "
            "'launch' parameters.",
            400,
        )
    if not _policy().launch_allowed(iss):
        return _problem(
            "This app may not read from the FHIR server it was launched with. The service's "
            "operator can add it to the trusted issuers' FHIR servers.",
            403,
            title="Launch refused",
        )
    base = public_base_url()
    try:
        with _GATE.enter(iss):
            endpoints = smart_launch.discover(iss)
        if not all(
            _policy().endpoint_allowed(iss, url) for url in (endpoints.authorize, endpoints.token)
        ):
            return _problem(_ENDPOINT_REFUSED, 502, title="Launch refused")
        authorize_url, state = smart_launch.begin(
            iss, launch_id, settings.smart_client_id, settings.smart_scopes,
            base + APP_PATH, endpoints,
        )  # fmt: skip
        cookie = _state_cookie().dump(state)
    except LaunchesBusy:
        return _problem(_BUSY, 503, title="Busy")
    except smart_launch.LaunchError as error:
        return _problem(str(error), error.status)
    except StoreUnavailable:
        return _problem("The service cannot start a launch right now: try again shortly.", 503)
    response = redirect(authorize_url, 302)
    secure = base.startswith("https://")
    response.set_cookie(
        STATE_COOKIE,
        cookie,
        max_age=smart_launch.LAUNCH_SECONDS,
        path=APP_PATH,
        httponly=True,
        secure=secure,
        # Cross-site (an EHR that frames the app) needs None, which browsers allow on https
        # only; on plain-http development the top-level redirect works with Lax.
        samesite="None" if secure else "Lax",
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


@smart.get(APP_PATH)
def app_page() -> Response:
    response = _app_page()
    response.delete_cookie(STATE_COOKIE, path=APP_PATH)  # a launch is finished once
    return response


def _app_page() -> Response:
    settings = current_app.config["CDS_SETTINGS"]
    error = request.args.get("error")
    if error is not None:
        code = f" ({error})" if _OAUTH_ERROR.fullmatch(error) else ""
        return _problem(
            f"Access was not granted in the EHR{code}, so the IgM course cannot be shown. "
            "Launch the app again and allow access to read the patient's results.",
            403,
            title="Access not granted",
        )
    base = public_base_url()
    service = current_app.extensions["wm_igm_service"]
    today = current_app.extensions["wm_igm_today"]()
    try:
        state = _state_cookie().load(request.cookies.get(STATE_COOKIE))
        # The state came back through the browser: what it names is checked again here.
        policy = _policy()
        if not policy.launch_allowed(state.iss) or not policy.endpoint_allowed(
            state.iss, state.token_endpoint
        ):
            return _problem(_ENDPOINT_REFUSED, 403, title="Launch refused")
        with _GATE.enter(state.iss):
            granted = smart_launch.finish(
                state, request.args.get("state"), request.args.get("code"),
                settings.smart_client_id, base + APP_PATH,
            )  # fmt: skip
            view = service.trend(state.iss, granted.access_token, granted.patient, today, base)
    except LaunchesBusy:
        return _problem(_BUSY, 503, title="Busy")
    except smart_launch.LaunchError as error:
        return _problem(str(error), error.status)
    except PrefetchUnavailable:
        return _problem(
            "The patient's laboratory results could not be read from the EHR's FHIR server, "
            "so nothing can be shown. Try again; if it persists, the EHR's FHIR server is "
            "not answering.",
            502,
        )
    except StoreUnavailable:
        return _problem("The service cannot finish a launch right now: try again shortly.", 503)
    return _page(render_trend(view, service.profile, today))
