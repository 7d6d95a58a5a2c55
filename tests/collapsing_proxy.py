"""A reverse proxy that collapses `//` anywhere in the URL it forwards, as the SMART
launcher's FHIR proxy does (`http://loinc.org|2472-9` arrives as `http:/loinc.org|2472-9`):
a search sent with raw values finds nothing behind it; percent-encoded values pass intact.
Its own base URL rewrites the target's in the answers (next links)."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@contextlib.contextmanager
def collapsing_proxy(target: str) -> Iterator[str]:
    """`target`: the FHIR base URL behind it. Yields the proxy's own FHIR base URL."""
    target = target.rstrip("/")
    holder: dict[str, str] = {}

    @Request.application
    def forward(request: Request) -> Response:
        raw = request.environ.get("RAW_URI") or request.full_path
        collapsed = re.sub(r"/{2,}", "/", raw.removeprefix("/fhir"))
        upstream = requests.get(
            target + collapsed,
            headers={k: v for k, v in request.headers.items() if k.lower() == "authorization"},
            timeout=60,
        )
        body = upstream.content.replace(target.encode(), holder["base"].encode())
        return Response(body, status=upstream.status_code, content_type="application/fhir+json")

    server = make_server("127.0.0.1", 0, forward, threaded=True)
    holder["base"] = f"http://127.0.0.1:{server.server_port}/fhir"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["base"]
    finally:
        server.shutdown()
        thread.join(timeout=30)
