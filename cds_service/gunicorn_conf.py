"""gunicorn settings for the service, used by `cds-service` and in production:

    gunicorn -c python:cds_service.gunicorn_conf --bind 0.0.0.0:8080 'cds_service.app:create_app()'

Configuration is read and validated once, here in the master, before any worker starts.
"""

from __future__ import annotations

import sys
from typing import Any

from .auth import load_trusted_issuers
from .config import ConfigError, settings_from_env
from .url_policy import is_loopback_host

worker_class = "cds_service.worker.BoundedReadWorker"
workers = 2
threads = 4
timeout = 30
# Where the EHR called us is CDS_PUBLIC_BASE_URL's to say: never X-Forwarded-* headers.
forwarded_allow_ips = ""
# gunicorn's control socket is one path per user, shared by every instance on the machine.
control_socket_disable = True
accesslog = None
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
    if settings.trusted_issuers is None and not settings.allow_unauthenticated:
        exposed = [address for address in server.cfg.bind if not _bound_to_loopback(address)]
        if exposed:
            _refuse(
                f"refusing to serve {', '.join(exposed)} without authentication: set "
                "CDS_TRUSTED_ISSUERS, bind 127.0.0.1, or set CDS_ALLOW_UNAUTHENTICATED=1"
            )


def _bound_to_loopback(address: str) -> bool:
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return is_loopback_host(host)


def _refuse(message: str) -> None:
    print(f"cds-service: {message}", file=sys.stderr, flush=True)
    sys.exit(2)
