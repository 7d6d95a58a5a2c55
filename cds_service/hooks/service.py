"""The patient-view use case, start to finish, with no HTTP in it.

validation -> prefetch (fill the gaps from the FHIR server) -> FHIR parsing -> internal
models -> assessment -> cards. The web layer and the replay tool both call `evaluate`.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cards import CardContext, build_cards, card_facts
from cards.card_ids import issued_ms
from cards.order_check import build_order_cards
from cards.text import DISPLAY_UNITS

from ..clinical.assessment import assess_response
from ..clinical.criteria import profile_named
from ..clinical.models import Assessment, Exclusion, MonitoringDue, PatientRecord
from ..clinical.monitoring import monitoring_due
from ..clinical.order_check import WARNING_RULES, check_anti_cd20_order
from ..config import Settings
from ..fhir.client import FhirClient
from ..fhir.documents import resource_members
from ..fhir.mapping import to_patient_record
from ..fhir.parsing import parse_resources
from ..fhir.patient_banner import patient_banner
from ..fhir.prefetch import MEDICATIONS_READ, Prefetch, complete_prefetch
from ..store.issued_cards import IssuedCards
from ..store.sql import NO_ISSUER, SqlStore, StoreUnavailable, card_uuid, normalise_timestamp
from .discovery import (
    HOOK,
    PREFETCH_TEMPLATES,
    SERVICE_ID,
    SERVICES,
    TREND_READS,
    ServiceDefinition,
)
from .draft_orders import read_draft_orders
from .validation import InvalidBody, check_prefetch_values, validate, without_nulls

# clinical-rules.md §3.7: the prefetch keys evidence of WM is read from.
EVIDENCE_KEYS = (
    "conditions",
    "medicationStatements",
    "medicationRequests",
    "medicationAdministrations",
)
# contract v3: feedback bound to its source and bounded (a card gets a handful in practice).
MAX_FEEDBACK_PER_CARD = 20
MAX_FEEDBACK_PER_MINUTE = 600
# contract v3: /readyz answers within 3 s, whatever the store does.
READINESS_SECONDS = 2.5
# Request extension naming "today" for replayed fixtures; honoured only with allow_as_of.
AS_OF_EXTENSION = "wm-igm-as-of"


_UUID = re.compile(r"(urn:uuid:)?[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_HOOKS = frozenset({"patient-view", "order-select", "order-sign"})


def _speaks_for(assessment: Assessment, record: PatientRecord, unavailable: list[str]) -> bool:
    """clinical-rules.md §3.7: only for a patient with evidence of WM; when the conditions
    cannot be read and nothing else shows it, for any patient with an IgM or M-spike result
    (the card then says the diagnosis was not checked)."""
    if assessment.wm_evidence:
        return True
    return "conditions" in unavailable and bool(record.lab_results or record.unusable)


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


@dataclass
class CallStats:
    """What the request log line reports (never patient data)."""

    hook: str | None = None
    hook_instance: str | None = None
    cards: int | None = None
    fetched: list[str] = field(default_factory=list)
    excluded: int = 0
    other_patient: int = 0
    unavailable: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why keys were unavailable
    fetch_seconds: float | None = None  # time spent completing the prefetch, when it fetched
    today: date | None = None  # the day the assessment was made for
    issued: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, category)


@dataclass(frozen=True)
class TrendView:
    """What the SMART app's page shows: the assessment and the cards' words, with the record
    it was made from (for the chart)."""

    assessment: Assessment
    record: PatientRecord
    cards: list[dict[str, Any]]
    unavailable: tuple[str, ...]
    context: CardContext
    banner: str | None = None  # the patient's name and birth date, to confirm who this is
    incomplete: tuple[str, ...] = ()  # of `unavailable`, the keys the server returned in part


class FeedbackLimited(Exception):
    """Too much feedback (429); the message says which limit."""


class FeedbackTooEarly(Exception):
    """Feedback about cards issued moments ago whose records are not written yet (503 with
    Retry-After): the caller's retry finds them."""


# A worker writes its cards' records within CDS_CARD_RECORD_SECONDS of issuing them, by a
# timer; under load the timer can run late, so feedback about an unrecorded card whose id
# says it was issued this recently is asked to retry, and refused only after.
RECORDING_MARGIN_SECONDS = 3.0


class PerMinute:
    """Items per key per clock minute, in this process (each worker counts its own)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._counts: dict[str, int] = {}

    def take(self, key: str, items: int) -> None:
        minute = int(self._clock() // 60)
        with self._lock:
            if minute != self._minute:
                self._minute, self._counts = minute, {}
            count = self._counts.get(key, 0) + items
            if count > self._limit:
                raise FeedbackLimited(f"at most {self._limit} feedback items a minute")
            self._counts[key] = count


@dataclass(frozen=True)
class CohortView:
    """One patient of a population worklist: what patient-view would say of them."""

    assessment: Assessment
    due: MonitoringDue | None
    cards: list[dict[str, Any]]
    speaks: bool  # clinical-rules.md §3.7: evidence of WM (the patient gets a row)
    unavailable: tuple[str, ...]


class _PerProcess:
    """A thread pool per process: gunicorn forks after import."""

    def __init__(self, concurrency: int, name: str = "fhir-fetch") -> None:
        self._concurrency = concurrency
        self._name = name
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._executor: ThreadPoolExecutor | None = None

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pid != os.getpid() or self._executor is None:
                self._pid = os.getpid()
                self._executor = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix=self._name
                )
            return self._executor


class CdsHooksService:
    """The use cases of every service of discovery, from validated request to cards."""

    def __init__(self, settings: Settings, store: SqlStore) -> None:
        self.settings = settings
        self.profile = profile_named(settings.criteria)
        self.store = store
        self.issued_cards = IssuedCards(store, settings.card_record_seconds)
        self._resources = _PerProcess(settings.fhir_max_concurrency)
        self._readiness = _PerProcess(2, "readiness")
        self._feedback_rate = PerMinute(MAX_FEEDBACK_PER_MINUTE)

    def _client_factory(
        self, request: dict[str, Any], allowed_fhir_servers: tuple[str, ...] | None
    ) -> Callable[[], FhirClient] | None:
        fhir_server = request.get("fhirServer")
        if not fhir_server:
            return None
        if allowed_fhir_servers is not None and fhir_server.rstrip("/") not in {
            server.rstrip("/") for server in allowed_fhir_servers
        }:
            # Fetching from a URL the caller chose is a server-side request forgery hole:
            # only servers configured for the verified issuer, else as if none was given.
            return None
        token = (request.get("fhirAuthorization") or {}).get("access_token")

        def make_client() -> FhirClient:
            return FhirClient(
                fhir_server,
                token,
                connect_timeout=self.settings.fhir_connect_timeout_seconds,
                max_pages=self.settings.fhir_max_pages,
                deadline_seconds=self.settings.fhir_deadline_seconds,
                concurrency=self.settings.fhir_max_concurrency,
            )

        return make_client

    def evaluate(
        self,
        request: Any,
        today: date,
        base_url: str,
        stats: CallStats | None = None,
        allowed_fhir_servers: tuple[str, ...] | None = None,
        service_id: str = SERVICE_ID,
        issuer: str | None = None,
    ) -> dict[str, Any]:
        """A validated CDS Hooks response for one call of the service `service_id`, from
        `issuer` (the verified EHR, None with authentication off).

        `allowed_fhir_servers`: the FHIR servers this caller may send us to (None: any).
        Raises `InvalidBody` (400) or `PrefetchUnavailable` (412).
        """
        definition = SERVICES[service_id]
        stats = stats if stats is not None else CallStats()
        request = without_nulls("request", request)
        if isinstance(request, dict):
            hook = request.get("hook")
            stats.hook = hook if isinstance(hook, str) and hook in _HOOKS else None
            instance = request.get("hookInstance")
            # Logged only when it is what it should be: a client's text is not ours to log.
            stats.hook_instance = instance if _is_uuid(instance) else None
        if isinstance(request, dict) and request.get("hook") != definition.hook:
            message = f"hook: the service {definition.id} answers '{definition.hook}' calls"
            raise InvalidBody(message, location="hook")
        validate("request", request)
        check_prefetch_values(request, definition.prefetch)
        today = self._today(request, today)
        stats.today = today
        if definition.hook == HOOK:
            cards = self._patient_view(
                request, definition, today, base_url, stats, allowed_fhir_servers
            )
        else:
            cards = self._order_check(
                request, definition, today, base_url, stats, allowed_fhir_servers
            )
        issued = [(card["uuid"], *card_facts(card)) for card in cards]
        self.issued_cards.add(definition.id, issued, issuer or NO_ISSUER)
        stats.issued = [(kind, category) for _, kind, category in issued]
        stats.cards = len(cards)
        return {"cards": cards}

    def _read_patient(
        self,
        request: dict[str, Any],
        templates: dict[str, str],
        stats: CallStats,
        allowed_fhir_servers: tuple[str, ...] | None,
        earlier: Prefetch | None = None,
        also_read: list[str] | None = None,
    ) -> tuple[PatientRecord, Prefetch]:
        """The shared steps: prefetch (filling gaps from the FHIR server) -> FHIR parsing ->
        internal models. `earlier`: keys already read in this call, read again with these."""
        started = time.perf_counter()
        try:
            prefetch = complete_prefetch(
                request,
                templates,
                self._client_factory(request, allowed_fhir_servers),
                self._resources.get(),
                also_read or (),
            )
        finally:
            stats.fetch_seconds = (stats.fetch_seconds or 0) + time.perf_counter() - started
        if earlier is not None:
            prefetch = earlier.merged_with(prefetch)
        stats.fetched = prefetch.fetched_keys
        stats.unavailable = prefetch.unavailable
        stats.problems = prefetch.problems
        patient_id = request["context"]["patientId"]
        parsed = parse_resources(prefetch.resources, patient_id, request.get("fhirServer"))
        record = to_patient_record(parsed)
        for key in prefetch.truncated_keys:
            record.excluded.append(
                Exclusion(
                    f"prefetch {key}",
                    f"more than {self.settings.fhir_max_pages} pages; older results not read",
                )
            )
        stats.other_patient = parsed.other_patient_count
        return record, prefetch

    def _context(
        self, request: dict[str, Any], base_url: str, today: date, prefetch: Prefetch
    ) -> CardContext:
        return CardContext(
            request["context"]["patientId"],
            base_url,
            today,
            tuple(prefetch.unavailable),
            tuple(prefetch.incomplete),
            DISPLAY_UNITS[self.settings.display_unit],
            f"{base_url}/smart/launch" if self.settings.smart_client_id else None,
        )

    def _patient_view(
        self,
        request: dict[str, Any],
        definition: ServiceDefinition,
        today: date,
        base_url: str,
        stats: CallStats,
        allowed_fhir_servers: tuple[str, ...] | None,
    ) -> list[dict[str, Any]]:
        record, prefetch = self._read_patient(
            request, definition.prefetch, stats, allowed_fhir_servers
        )
        assessment = assess_response(record, self.profile, today)
        stats.excluded = len(assessment.excluded)
        if not _speaks_for(assessment, record, prefetch.unavailable):
            return []
        due = monitoring_due(assessment, self.profile, today)
        context = self._context(request, base_url, today, prefetch)
        return build_cards(assessment, due, context, self.profile)

    def assess_exported(
        self,
        patient_id: str,
        keyed: dict[str, list[Any]],
        incomplete: dict[str, str],
        today: date,
        base_url: str,
    ) -> CohortView:
        """The population worklist's use case (`cds-cohort`): the patient-view steps on one
        patient's resources from a Bulk Data export, by prefetch key; `incomplete`: keys the
        export's error files say are incomplete for this patient (and why)."""
        request = {
            "hook": HOOK,
            "context": {"patientId": patient_id, "userId": "Practitioner/cds-cohort"},
            "prefetch": {
                key: {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}
                for key, resources in keyed.items()
            },
        }
        stats = CallStats()
        record, prefetch = self._read_patient(request, PREFETCH_TEMPLATES, stats, ())
        for key, why in incomplete.items():
            prefetch.incomplete[key] = why
            if key not in prefetch.unavailable:
                prefetch.unavailable.append(key)
        assessment = assess_response(record, self.profile, today)
        speaks = _speaks_for(assessment, record, prefetch.unavailable)
        due = monitoring_due(assessment, self.profile, today)
        context = self._context(request, base_url, today, prefetch)
        cards = build_cards(assessment, due, context, self.profile) if speaks else []
        return CohortView(assessment, due, cards, speaks, tuple(prefetch.unavailable))

    def trend(
        self, fhir_server: str, access_token: str, patient_id: str, today: date, base_url: str
    ) -> TrendView:
        """The SMART app's use case: the patient-view steps on data fetched from the EHR with
        the app's token (every page), the same assessment and card text, and what the chart
        needs. Raises `PrefetchUnavailable` when the IgM results cannot be read."""
        request = {
            "hook": HOOK,
            "context": {"patientId": patient_id},
            "fhirServer": fhir_server,
            "fhirAuthorization": {"access_token": access_token, "token_type": "Bearer"},
            "prefetch": {},
        }
        stats = CallStats()
        record, prefetch = self._read_patient(request, TREND_READS, stats, (fhir_server,))
        assessment = assess_response(record, self.profile, today)
        due = monitoring_due(assessment, self.profile, today)
        context = self._context(request, base_url, today, prefetch)
        # clinical-rules.md §3.7: the page shows the course, but no card for a patient the
        # service would not speak for (it says why instead).
        speaks = _speaks_for(assessment, record, prefetch.unavailable)
        cards = build_cards(assessment, due, context, self.profile) if speaks else []
        banner = patient_banner(prefetch.resources.get("patient", []), patient_id)
        return TrendView(
            assessment,
            record,
            cards,
            tuple(prefetch.unavailable),
            context,
            banner,
            tuple(prefetch.incomplete),
        )

    def _order_check(
        self,
        request: dict[str, Any],
        definition: ServiceDefinition,
        today: date,
        base_url: str,
        stats: CallStats,
        allowed_fhir_servers: tuple[str, ...] | None,
    ) -> list[dict[str, Any]]:
        """contract "Order check": drafts first; nothing is fetched unless an anti-CD20
        antibody is being ordered for this patient."""
        patient_id = request["context"]["patientId"]
        drafts = read_draft_orders(request["context"], patient_id, request.get("fhirServer"))
        stats.excluded = len(drafts.excluded)
        if not drafts.anti_cd20 and not drafts.unidentified:
            return []
        # The warnings do not depend on evidence of WM; the info cards do (contract v3), so
        # the keys evidence is read from are fetched only when an info card would be given.
        given = request.get("prefetch") or {}
        first = {
            k: t for k, t in definition.prefetch.items() if k not in EVIDENCE_KEYS or k in given
        }
        record, prefetch = self._read_patient(
            request, first, stats, allowed_fhir_servers, also_read=drafts.to_read
        )
        if drafts.to_read and MEDICATIONS_READ in prefetch.resources:
            # contract v3: a draft naming its drug by reference, resolved by a read
            fetched = [resource_members(r) or {} for r in prefetch.resources[MEDICATIONS_READ]]
            drafts = read_draft_orders(
                request["context"], patient_id, request.get("fhirServer"), fetched
            )
            if not drafts.anti_cd20 and not drafts.unidentified:
                return []
        ordered, unidentified = tuple(drafts.anti_cd20), bool(drafts.unidentified)
        check = check_anti_cd20_order(
            record, ordered, self.profile, today, True, unidentified=unidentified
        )
        if check is not None and check.rule not in WARNING_RULES:
            rest = {k: t for k, t in definition.prefetch.items() if k not in first}
            if rest:
                record, prefetch = self._read_patient(
                    request, rest, stats, allowed_fhir_servers, earlier=prefetch
                )
            # When a key evidence depends on could not be read, the card says the diagnosis
            # was not checked.
            evidence: bool | None = assess_response(record, self.profile, today).wm_evidence
            if not evidence and any(key in prefetch.unavailable for key in EVIDENCE_KEYS):
                evidence = None
            check = check_anti_cd20_order(
                record, ordered, self.profile, today, evidence, unidentified=unidentified
            )
        draft = (drafts.references or drafts.unidentified)[0]
        return build_order_cards(check, self._context(request, base_url, today, prefetch), draft)

    def _today(self, request: dict[str, Any], today: date) -> date:
        as_of = (request.get("extension") or {}).get(AS_OF_EXTENSION)
        if as_of is None or not self.settings.allow_as_of:
            return today
        try:
            return date.fromisoformat(as_of)
        except (TypeError, ValueError):
            where = f"extension.{AS_OF_EXTENSION}"
            raise InvalidBody(f"{where}: not a date (YYYY-MM-DD)", location=where) from None

    def store_problem(self) -> str | None:
        """Why the store cannot be used now, or None (for readiness), within
        `READINESS_SECONDS` whatever the store does."""
        future = self._readiness.get().submit(self._ping)
        try:
            return future.result(timeout=READINESS_SECONDS)
        except FutureTimeout:
            return f"the store did not answer within {READINESS_SECONDS:g} s"

    def _ping(self) -> str | None:
        try:
            self.store.ping()
        except StoreUnavailable as error:
            return f"the store cannot be reached ({error})"
        except (sqlite3.Error, OSError) as error:
            return f"the store cannot be read ({type(error).__name__})"
        return None

    def _just_issued(self, card: str) -> bool:
        issued = issued_ms(card)
        if issued is None:
            return False
        age = time.time() - issued / 1000
        return -1.0 <= age <= self.settings.card_record_seconds + RECORDING_MARGIN_SECONDS

    def record_feedback(
        self, body: Any, service_id: str = SERVICE_ID, issuer: str | None = None
    ) -> dict[str, Any]:
        """Store feedback (CDS Hooks 2.0), only about cards this service issued (to this
        issuer, when authentication is on): `InvalidBody` (400) for another card,
        `FeedbackTooEarly` (503, retry) for cards issued moments ago and not yet recorded,
        `FeedbackLimited` (429) past `MAX_FEEDBACK_PER_CARD` items for a card or
        `MAX_FEEDBACK_PER_MINUTE` items from an issuer."""
        body = without_nulls("feedback", body)
        validate("feedback", body)
        items = body["feedback"]
        for index, item in enumerate(items):
            try:
                normalise_timestamp(item["outcomeTimestamp"])
            except ValueError:
                where = f"feedback[{index}].outcomeTimestamp"
                raise InvalidBody(f"{where}: not a valid date and time", location=where) from None
        caller = issuer or NO_ISSUER
        self._feedback_rate.take(caller, len(items))
        self.issued_cards.flush()  # this worker's own cards are then in the store
        cards = [item["card"] for item in items]
        unknown, counts, unrecorded = self.store.feedback_standing(service_id, cards, caller)
        if unknown and set(unknown) <= unrecorded and all(map(self._just_issued, unknown)):
            # Issued by another worker moments ago (its id says when), not yet recorded. No
            # waiting here: a caller must not hold a thread by naming cards; it retries.
            raise FeedbackTooEarly("the card was issued moments ago: retry shortly")
        for index, item in enumerate(items):
            if card_uuid(item["card"]) in unknown:
                where = f"feedback[{index}].card"
                raise InvalidBody(f"{where}: not a card this service issued", location=where)
        for item in items:
            card = card_uuid(item["card"])
            counts[card] = counts.get(card, 0) + 1
            if counts[card] > MAX_FEEDBACK_PER_CARD:
                raise FeedbackLimited(
                    f"a card takes at most {MAX_FEEDBACK_PER_CARD} feedback items"
                )
        stored, duplicates = self.store.store(service_id, items)
        return {"stored": stored, "duplicates": duplicates}
