"""One policy for every URL the service fetches: the verified FHIR server, and nothing else.

A link is checked with the parser the HTTP client itself uses (urllib3's) as well as the
standard library's, so that the two can never disagree about the host:
`http://127.0.0.1:1\\@127.0.0.1:2/` reads as port 2 to `urlsplit` but connects to port 1.
Userinfo, backslashes, control characters and whitespace are refused outright.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Anything a parser may read differently: control characters, whitespace, backslash.
_AMBIGUOUS = re.compile(r"[\x00-\x20\x7f\\]")


class UrlRefused(ValueError):
    """The URL is not on the FHIR server the request may use; the message says why."""


def _origin_urllib3(url: str) -> tuple[str, str, int | None]:
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise UrlRefused("unparseable URL") from None
    if parts.auth is not None:
        raise UrlRefused("userinfo in URL")
    scheme = (parts.scheme or "").lower()
    return scheme, (parts.host or "").lower().strip("[]"), parts.port or _DEFAULT_PORTS.get(scheme)


def _origin_stdlib(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 literal)
        raise UrlRefused("unparseable URL") from None
    if "@" in parts.netloc:
        raise UrlRefused("userinfo in URL")
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused("invalid port") from None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of an absolute http(s) URL that both parsers read alike."""
    if _AMBIGUOUS.search(url):
        raise UrlRefused("control character, whitespace or backslash in URL")
    ours, theirs = _origin_stdlib(url), _origin_urllib3(url)
    if ours != theirs:
        raise UrlRefused("URL parsers disagree about its origin")
    if ours[0] not in _DEFAULT_PORTS or not ours[1]:
        raise UrlRefused("not an absolute http(s) URL")
    return ours


def on_server(link: str, base: str) -> str:
    """The absolute URL of `link` (relative to `base`) when it stays on `base`'s scheme,
    host and port; `UrlRefused` otherwise."""
    if _AMBIGUOUS.search(link):
        raise UrlRefused("control character, whitespace or backslash in URL")
    try:
        url = urljoin(base, link)
    except ValueError:
        raise UrlRefused("unparseable URL") from None
    if origin(url) != origin(base):
        raise UrlRefused("link points away from the FHIR server")
    return url


@lru_cache(maxsize=256)  # asked twice a request; bounded, since a Host header is the client's
@lru_cache(maxsize=1024)  # asked on every call (twice); parsing an address is the cost
def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (a Host header's port, if any, is ignored)."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
