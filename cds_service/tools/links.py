"""`cds-links`: every URL a card can carry, for EHR link allowlists (contract v3)."""

from __future__ import annotations

import argparse
import json
import sys

from cards.links import card_links

from ..config import ConfigError, settings_from_env
from ..fhir.url_policy import UrlRefused, origin

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cds-links",
        description="Print every URL a card of this service can carry (for EHR link "
        "allowlists): caveat pages, the SMART app's launch URL, and the sources cited.",
    )
    parser.add_argument(
        "--base-url",
        help="the service's public base URL (default: CDS_PUBLIC_BASE_URL, else "
        f"{DEFAULT_BASE_URL})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args(argv)
    base_url = args.base_url
    if base_url is None:
        try:
            base_url = settings_from_env().public_base_url or DEFAULT_BASE_URL
        except ConfigError as error:
            print(f"cds-links: {error}", file=sys.stderr)
            return 2
    base_url = base_url.rstrip("/")
    try:
        origin(base_url)
    except UrlRefused as error:
        print(f"cds-links: --base-url {error}", file=sys.stderr)
        return 2
    links = card_links(base_url)
    if args.json:
        document = {
            "baseUrl": base_url,
            "links": [
                {"url": link.url, "kind": link.kind, **({"note": link.note} if link.note else {})}
                for link in links
            ],
        }
        print(json.dumps(document, indent=2))
        return 0
    for kind in dict.fromkeys(link.kind for link in links):
        print(f"# {kind}")
        for link in links:
            if link.kind == kind:
                print(link.url + (f"  ({link.note})" if link.note else ""))
    return 0
