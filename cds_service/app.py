"""The Flask application factory: `create_app()` for tests, the CLI and gunicorn.

Production: gunicorn --workers 2 --bind 0.0.0.0:8080 'cds_service.app:create_app()'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from flask import Flask
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from .config import Settings, settings_from_env
from .hooks.service import CdsHooksService
from .secret_keys import launch_keys
from .store.factory import open_store
from .store.sql import SqlStore, StoreUnavailable
from .web import gc_pause, routes, smart_routes
from .web.auth import Authenticator, load_trusted_issuers
from .web.json_response import FastJsonProvider
from .web.request_log import configure_logging
from .web.smart_policy import SmartPolicy

LOOPBACK_ORIGIN = r"^https?://(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$"


def create_app(
    config: Settings | Mapping[str, Any] | None = None,
    today: Callable[[], date] = date.today,
) -> Flask:
    """Build the app.

    `config`: a `Settings`, or overrides of the environment's settings. `today`: the
    clock the rules read "today" from (a fixed date in tests).
    """
    if isinstance(config, Settings):
        settings = config
    else:
        settings = settings_from_env()
        if config:
            settings = settings.with_overrides(config)
    configure_logging(settings.log_level)
    app = Flask(__name__)
    app.json = FastJsonProvider(app)
    app.config["CDS_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    store = _open_store(settings)
    app.extensions["wm_igm_store"] = store
    app.extensions["wm_igm_service"] = CdsHooksService(settings, store)
    app.extensions["wm_igm_auth"] = (
        Authenticator(
            load_trusted_issuers(settings.trusted_issuers),
            store,
            settings.max_token_lifetime_seconds,
        )
        if settings.trusted_issuers
        else None
    )
    app.extensions["wm_igm_smart_policy"] = SmartPolicy(settings, app.extensions["wm_igm_auth"])
    app.extensions["wm_igm_launch_keys"] = launch_keys(settings) if settings.smart_client_id else ()
    if settings.trusted_issuers and not settings.public_base_url:
        logging.getLogger("cds_service").warning(
            "CDS_PUBLIC_BASE_URL is not set: the JWT audience is checked against the Host "
            "header the client sent; set it in production"
        )
    if settings.database_url and settings.smart_client_id and settings.secret_key_file is None:
        logging.getLogger("cds_service").warning(
            "CDS_SECRET_KEY_FILE is not set: each instance signs launches with its own key, so "
            "a launch started on one instance cannot finish on another; set the same file on "
            "every instance"
        )
    if settings.trusted_issuers is None:
        logging.getLogger("cds_service").warning(
            "authentication is OFF (CDS_TRUSTED_ISSUERS not set): development use only"
        )
    app.extensions["wm_igm_today"] = today
    app.register_blueprint(routes.cds)
    app.register_blueprint(routes.pages)
    app.register_blueprint(smart_routes.smart)
    # The CDS Hooks sandbox runs in a browser and sends Authorization: answer preflight.
    # With authentication off, only loopback pages (and configured origins) may call:
    # otherwise any web page open in the developer's browser could use the service.
    origins: Any = "*"
    if settings.trusted_issuers is None:
        origins = [LOOPBACK_ORIGIN, *settings.cors_origins]
    CORS(
        app,
        resources={r"/cds-services*": {"origins": origins}},
        allow_headers=["Authorization", "Content-Type"],
        methods=["GET", "POST", "OPTIONS"],
        max_age=86400,
    )
    app.before_request(gc_pause.pause)
    app.teardown_request(gc_pause.resume)
    app.before_request(routes.start_timer)
    app.before_request(routes.loopback_only)
    app.after_request(routes.log_response)
    app.register_error_handler(HTTPException, routes.http_error)
    app.register_error_handler(Exception, routes.unexpected_error)
    return app


def _open_store(settings: Settings) -> SqlStore:
    """The store; a worker that starts while PostgreSQL is away still starts (the master
    created the tables), answers /readyz with 503 and recovers when the database is back."""
    try:
        return open_store(settings)
    except StoreUnavailable:
        if not settings.database_url:
            raise
        from .store.postgres import PostgresStore

        logging.getLogger("cds_service").warning("the store cannot be reached: not ready yet")
        return PostgresStore(settings.database_url, prepare=False)
