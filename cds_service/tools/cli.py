"""Command-line entry points (contract.md, "Command line")."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from .. import gunicorn_conf
from ..config import ConfigError, settings_from_env
from ..fhir.url_policy import is_loopback_host
from ..web.auth import load_trusted_issuers


class _Server(BaseApplication):
    """gunicorn, configured from code: the same server as in production."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        # The same settings as `gunicorn -c python:cds_service.gunicorn_conf` in production.
        for key in dir(gunicorn_conf):
            if key in self.cfg.settings:
                self.cfg.set(key, getattr(gunicorn_conf, key))
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from ..app import create_app

        return create_app()


def serve_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-service", description="Run the WM IgM response CDS Hooks service."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="serve a non-loopback address without CDS_TRUSTED_ISSUERS (never with real data)",
    )
    args = parser.parse_args(argv)
    try:
        settings = settings_from_env()
        if settings.trusted_issuers:
            load_trusted_issuers(settings.trusted_issuers)
    except ConfigError as error:
        print(f"cds-service: {error}", file=sys.stderr)
        return 2
    if settings.trusted_issuers is None and not is_loopback_host(args.host):
        if not args.allow_unauthenticated:
            print(
                f"cds-service: refusing to serve {args.host} without authentication: set "
                "CDS_TRUSTED_ISSUERS, bind 127.0.0.1, or pass --allow-unauthenticated",
                file=sys.stderr,
            )
            return 2
        print(
            "cds-service: WARNING: AUTHENTICATION IS OFF on a non-loopback address. Anyone who "
            "can reach this port can call the service and make it fetch from FHIR servers.",
            file=sys.stderr,
            flush=True,
        )
        os.environ["CDS_ALLOW_UNAUTHENTICATED"] = "1"  # for the workers' own check
    print(
        f"cds-service: discovery at http://{args.host}:{args.port}/cds-services "
        f"(criteria {settings.criteria}, feedback in {settings.feedback_db})",
        file=sys.stderr,
        flush=True,
    )
    _Server({"bind": f"{args.host}:{args.port}", "workers": args.workers}).run()
    return 0
