"""Which servers the trend app may call: registered ones, never discovered into trust.

contract v3 ("SMART app", "Configuration"):
- a launch's `iss` must be a FHIR server of a trusted issuer; with authentication off, a
  loopback URL or one listed in `CDS_SMART_ISSUERS`;
- the authorization and token endpoints an `iss`'s SMART configuration names must share
  its origin, or be registered for its issuer (`smart_endpoints`, a URL or an origin);
- an endpoint on a loopback, private or link-local address is refused unless the FHIR server
  itself is on one (a hostile configuration must not turn the service on its own network);
- `/smart/app` checks the launch state's `iss` and token endpoint again before any use: the
  state came back through a browser.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from collections.abc import Iterable, Iterator

from ..config import Settings
from ..fhir.url_policy import UrlRefused, is_loopback_host, origin
from .auth import Authenticator, TrustedIssuer

Origin = tuple[str, str, int | None]


def _origin(url: str) -> Origin | None:
    try:
        return origin(url)
    except UrlRefused:
        return None


def _plain(url: str) -> bool:
    """No query, fragment or user info: a base URL, not a path to somewhere else."""
    return "?" not in url and "#" not in url and _origin(url) is not None


def _is_internal(host: str) -> bool:
    if is_loopback_host(host):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: what it resolves to is the network's business
    return address.is_private or address.is_link_local or address.is_reserved


class SmartPolicy:
    def __init__(self, settings: Settings, authenticator: Authenticator | None) -> None:
        self._settings = settings
        self._authenticator = authenticator

    def _issuer_of(self, iss: str) -> TrustedIssuer | None:
        if self._authenticator is None:
            return None
        for issuer in self._authenticator.issuers.values():
            if issuer.allows_fhir_server(iss):
                return issuer
        return None

    def launch_allowed(self, iss: str) -> bool:
        if not _plain(iss):
            return False
        if self._authenticator is not None:
            return self._issuer_of(iss) is not None
        found = _origin(iss)
        if found is not None and is_loopback_host(found[1]):
            return True
        return iss.rstrip("/") in self._settings.smart_issuers

    def endpoint_allowed(self, iss: str, endpoint: str) -> bool:
        """May the app send the browser to, or POST the code to, `endpoint` for `iss`?"""
        if not self.launch_allowed(iss):
            return False
        fhir, target = _origin(iss), _origin(endpoint)
        if fhir is None or target is None:
            return False
        if _is_internal(target[1]) and not _is_internal(fhir[1]):
            return False
        if target == fhir:
            return True
        issuer = self._issuer_of(iss)
        registered: Iterable[str] = issuer.smart_endpoints if issuer is not None else ()
        return any(
            endpoint == allowed or (_plain_origin(allowed) and target == _origin(allowed))
            for allowed in registered
        )


def _plain_origin(url: str) -> bool:
    """A registered value that is an origin only (`https://auth.example.org`)."""
    found = _origin(url)
    if found is None:
        return False
    _, _, rest = url.partition("://")
    return "/" not in rest.rstrip("/")


# contract v3: concurrent launches (discovery, token exchange and the FHIR reads that follow)
# per worker process, and per issuer; a slow or hostile EHR can hold no more threads than
# this, and the other threads keep serving other EHRs and /healthz.
MAX_LAUNCHES_PER_WORKER = 2
MAX_LAUNCHES_PER_ISSUER = 4


class LaunchesBusy(Exception):
    """Too many launches are in progress here, or for this EHR: try again shortly."""


class LaunchGate:
    """Counts the launches in progress in this process, by issuer. (With several worker
    processes each has its own count: `MAX_LAUNCHES_PER_ISSUER` bounds an issuer within a
    worker, `MAX_LAUNCHES_PER_WORKER` every issuer together.)"""

    def __init__(
        self,
        per_worker: int = MAX_LAUNCHES_PER_WORKER,
        per_issuer: int = MAX_LAUNCHES_PER_ISSUER,
    ) -> None:
        self._lock = threading.Lock()
        self._per_worker = per_worker
        self._per_issuer = per_issuer
        self._running = 0
        self._by_issuer: dict[str, int] = {}

    @contextlib.contextmanager
    def enter(self, iss: str) -> Iterator[None]:
        key = iss.rstrip("/")
        with self._lock:
            if self._running >= self._per_worker or self._by_issuer.get(key, 0) >= self._per_issuer:
                raise LaunchesBusy
            self._running += 1
            self._by_issuer[key] = self._by_issuer.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                left = self._by_issuer[key] - 1
                if left:
                    self._by_issuer[key] = left
                else:
                    del self._by_issuer[key]
