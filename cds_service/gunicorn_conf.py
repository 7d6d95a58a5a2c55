"""gunicorn settings for the service, used by `cds-service` and in production:

    gunicorn -c python:cds_service.gunicorn_conf --bind 0.0.0.0:8080 'cds_service.app:create_app()'

Configuration is read and validated once, here in the master, before any worker starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
import tempfile
from typing import Any

from .config import ConfigError, settings_from_env
from .fhir.url_policy import is_loopback_host
from .secret_keys import launch_keys
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
        if settings.smart_client_id:
            launch_keys(settings)  # the default key is made here, once, before the workers
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


# The files prometheus-client's multiprocess mode writes (e.g. counter_1234.db).
_METRIC_FILE = re.compile(r"(counter|gauge_[a-z]+|histogram|summary)_\d+\.db")


def _prepare_metrics_directory() -> None:
    """Prometheus multiprocess mode: every worker writes its samples to one directory, set
    here before any worker starts. A configured directory is cleared of the sample files a
    previous run left, and of nothing else (contract v3: it may be shared or mistyped)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for name in os.listdir(directory):
            if _METRIC_FILE.fullmatch(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="cds-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _bound_to_loopback(address: str) -> bool:
    # contract v3: a unix socket is not loopback: whoever can reach the socket (a proxy in
    # front of it, any local user) is a client, and the Host header they send proves nothing.
    if address.startswith("unix:"):
        return False
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return is_loopback_host(host)


def _refuse(message: str) -> None:
    print(f"cds-service: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
