"""gunicorn settings for the service, used by `cds-service` and in production:

    gunicorn -c python:cds_service.gunicorn_conf --bind 0.0.0.0:8080 'cds_service.app:create_app()'

Configuration is read and validated once, here in the master, before any worker starts.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
from typing import Any

from .config import ConfigError, settings_from_env
from .fhir.url_policy import is_loopback_host
from .store.factory import open_store
from .store.sql import StoreUnavailable
from .web.auth import load_trusted_issuers

worker_class = "cds_service.web.worker.BoundedReadWorker"
workers = 2
threads = 4
timeout = 30
# Where the EHR called us is CDS_PUBLIC_BASE_URL's to say: never X-Forwarded-* headers.
forwarded_allow_ips = ""
# gunicorn's control socket is one path per user, shared by every instance on the machine.
control_socket_disable = True
accesslog = None
# gunicorn's own log lines as JSON, like the service's (time, level, pid, event).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "cds_service.web.request_log.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # The store's connection pool says when it cannot reach PostgreSQL (no password).
        "psycopg": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        # Raw request lines can hold tokens: the service logs each request itself, safely.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    # The service's own logger writes its lines itself (request_log.py): none here.
    "root": {"level": "WARNING", "handlers": []},
}
# Request line and headers: gunicorn's defaults, stated (431/414 beyond them, in JSON).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190


def on_starting(server: Any) -> None:
    """Refuse to start with a bad setting, or on a non-loopback address without
    authentication: one clear line, exit status 2."""
    try:
        settings = settings_from_env()
        if settings.trusted_issuers:
            load_trusted_issuers(settings.trusted_issuers)
    except ConfigError as error:
        _refuse(str(error))
    try:
        store = open_store(settings)  # created (or migrated) once, here
    except StoreUnavailable as error:
        where = (
            "CDS_DATABASE_URL"
            if settings.database_url
            else f"CDS_FEEDBACK_DB={settings.feedback_db}"
        )
        _refuse(f"{where}: the store cannot be reached ({error})")
    except (sqlite3.Error, OSError) as error:
        _refuse(f"CDS_FEEDBACK_DB={settings.feedback_db}: cannot be written ({error})")
    else:
        getattr(store, "close", lambda: None)()  # no connection crosses gunicorn's fork
    _prepare_metrics_directory()
    if settings.trusted_issuers is None and not settings.allow_unauthenticated:
        exposed = [address for address in server.cfg.bind if not _bound_to_loopback(address)]
        if exposed:
            _refuse(
                f"refusing to serve {', '.join(exposed)} without authentication: set "
                "CDS_TRUSTED_ISSUERS, bind 127.0.0.1, or set CDS_ALLOW_UNAUTHENTICATED=1"
            )


def _prepare_metrics_directory() -> None:
    """Prometheus multiprocess mode: every worker writes its samples to one directory, set
    here before any worker starts, emptied at each start."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cds-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _bound_to_loopback(address: str) -> bool:
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return is_loopback_host(host)


def _refuse(message: str) -> None:
    print(f"cds-service: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
