"""Step 4 of a call: the checked FHIR elements -> the clinical core's internal models.

Applies clinical-rules.md §3: which codes, statuses, dates and units count. Every resource
that is relevant but cannot be used is reported as an `Exclusion` with a reason; nothing
is dropped silently and nothing is guessed. Resources that are simply not about WM
(other labs, other drugs, other procedures) are not ours to report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..clinical.models import (
    Diagnosis,
    DrugClass,
    DrugEpisode,
    EpisodeSource,
    Exclusion,
    IfeReading,
    ImmunofixationResult,
    LabResult,
    PatientRecord,
    Plasmapheresis,
    Series,
    TransplantProcedure,
    UnusableResult,
    ViscosityResult,
)
from ..clinical.units import PLAUSIBLE_IGM_ULN_MG_DL, UnitError, is_centipoise, mg_dl_factor
from ..clinical.valuesets import (
    ACTIVE_CONDITION_STATUSES,
    ATC_SYSTEM,
    COUNTED_OBSERVATION_STATUSES,
    IFE_NEGATIVE_CODES,
    IFE_NEGATIVE_INTERPRETATIONS,
    IFE_POSITIVE_CODES,
    IFE_POSITIVE_INTERPRETATIONS,
    IMMUNOFIXATION_LOINC,
    LOINC_SYSTEM,
    NEVER_MEASURED_STATUSES,
    NOT_A_DIAGNOSIS_STATUSES,
    PREFERRED_M_SPIKE_LOINC,
    SERIES_BY_LOINC,
    SERUM_VISCOSITY_LOINC,
    WmDrug,
    combine_ife_readings,
    condition_kind,
    drug_by_code,
    drugs_in_text,
    immunofixation_text_readings,
    looks_anticancer,
    looks_investigational,
    names_beam,
    names_plasmapheresis,
    says_high_dose,
    says_mobilisation,
    transplant_kind,
)
from .elements import NotValidFhir, parse_datetime, read_contained
from .parsing import ParsedResources

# clinical-rules.md §3.3: records that do not describe treatment taken, by resource type.
LEFT_OUT_STATUSES = {
    "MedicationStatement": frozenset({"entered-in-error", "not-taken", "intended"}),
    "MedicationRequest": frozenset({"entered-in-error", "cancelled", "draft"}),
    "MedicationAdministration": frozenset({"not-done", "entered-in-error"}),
}
STATUS_REASONS = {
    "intended": "status 'intended': planned, not yet taken",
}
ENDED_MEDICATION_STATUSES = frozenset({"completed", "stopped"})
# §3.3: a suggestion is not an order.
COUNTED_REQUEST_INTENTS = frozenset(
    {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
)
# Supply durations in these UCUM units convert to days; anything else is not guessed.
DAYS_PER_DURATION_UNIT = {"d": 1, "wk": 7}
SERIES_CODES = frozenset(SERIES_BY_LOINC)
IFE_UNREADABLE = "immunofixation result could not be read"


class _Excluded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        # §3.1: set for an IgM or M-spike result measured but unusable
        self.unusable: UnusableResult | None = None


def _moment(value: str, what: str) -> dt.date | dt.datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:
        raise _Excluded(f"not valid FHIR R4: {what} is not a date the calendar has") from None


def to_day(value: str | None, what: str) -> dt.date:
    """A FHIR date/dateTime/instant at day granularity, as written (the source's local day)."""
    if value is None:
        raise _Excluded(f"no {what}")
    moment = _moment(value, what)
    if isinstance(moment, dt.datetime):
        return moment.date()
    if moment is None:
        raise _Excluded(f"{what} '{value}' is not precise to the day")
    return moment


def _with_time(value: str, what: str) -> dt.datetime | None:
    """The instant, when the source gives a time of day with a zone (§7 compares them)."""
    moment = _moment(value, what)
    return moment if isinstance(moment, dt.datetime) else None


# Laboratory results ----------------------------------------------------------------------


def _observation_when(observation: Any) -> Any:
    if observation.effectiveDateTime is not None:
        return observation.effectiveDateTime
    if observation.effectivePeriod is not None and observation.effectivePeriod.start is not None:
        return observation.effectivePeriod.start
    if observation.issued is not None:
        return observation.issued
    raise _Excluded("no date (effectiveDateTime, effectivePeriod.start or issued)")


def _observation_day(observation: Any) -> dt.date:
    return to_day(_observation_when(observation), "date")


def _quantity_mg_dl(quantity: Any) -> Decimal:
    if quantity.value is None:
        raise _Excluded("no value")
    try:
        factor = mg_dl_factor(quantity.system, quantity.code, quantity.unit)
    except UnitError as error:
        raise _Excluded(str(error)) from None
    return Decimal(quantity.value) * factor


@dataclass(frozen=True)
class _UpperLimit:
    """`referenceRange.high`: in mg/dL when it names its unit, else as written (§3.1: then it
    is read in the value's unit)."""

    value: Decimal
    in_mg_dl: bool
    # §3.1: an IgM ULN of the order of 200-300 mg/dL; known once per range when in mg/dL
    plausible: bool = True


def _upper_limit_of_normal(reference_ranges: list[Any]) -> _UpperLimit | None:
    for reference_range in reference_ranges:
        high = reference_range.high
        if high is None or high.value is None:
            continue
        if high.unit is None and high.code is None:
            return _UpperLimit(Decimal(high.value), in_mg_dl=False)
        try:
            value = _quantity_mg_dl(high)
            low, top = PLAUSIBLE_IGM_ULN_MG_DL
            return _UpperLimit(value, in_mg_dl=True, plausible=low <= value <= top)
        except _Excluded:
            return None  # an unreadable range falls back to the default ULN, as the card says
    return None


def _uln_mg_dl(limit: _UpperLimit | None, quantity: Any) -> Decimal | None:
    if limit is None:
        return None
    if limit.in_mg_dl:
        return limit.value
    return limit.value * mg_dl_factor(quantity.system, quantity.code, quantity.unit)


def _lab_result(
    observation: Any, series: Series, code: str, reference: str, limit: _UpperLimit | None
) -> LabResult:
    if observation.dataAbsentReason is not None:
        reason = observation.dataAbsentReason.text or _first_display(observation.dataAbsentReason)
        raise _Excluded(f"no value (data absent: {reason or 'reason not given'})")
    quantity = observation.valueQuantity
    if quantity is None:
        if _has_other_value(observation):
            raise _Excluded("the result is not a quantity")
        raise _Excluded("no value")
    value = _quantity_mg_dl(quantity)
    if value < 0:
        raise _Excluded("negative value")
    uln = None
    if limit is not None and series == Series.TOTAL_IGM:
        if limit.in_mg_dl:
            uln, plausible = limit.value, limit.plausible
        else:
            uln = _uln_mg_dl(limit, quantity)
            plausible = PLAUSIBLE_IGM_ULN_MG_DL[0] <= uln <= PLAUSIBLE_IGM_ULN_MG_DL[1]
        if not plausible:
            # "16 mg/dL, ULN 2.3 mg/dL" is 16 g/L mislabelled (§3.1)
            raise _Excluded("reference range implies a different unit")
    comparator = quantity.comparator  # one of <, <=, >=, > (checked when read)
    when = _observation_when(observation)
    moment = _moment(when, "date")
    if moment is None:
        raise _Excluded(f"date '{when}' is not precise to the day")
    return LabResult(
        reference=reference,
        series=series,
        day=moment.date() if isinstance(moment, dt.datetime) else moment,
        value_mg_dl=value,
        comparator=str(comparator) if comparator is not None else None,
        uln_mg_dl=uln,
        code=code,
        drawn_at=moment if isinstance(moment, dt.datetime) else None,
    )


def _day_if_any(observation: Any) -> dt.date | None:
    try:
        return _observation_day(observation)
    except (_Excluded, ValueError):
        return None


def _has_other_value(observation: Any) -> bool:
    return any(
        getattr(observation, name, None) is not None
        for name in ("valueString", "valueCodeableConcept", "valueInteger", "valueRatio")
    )


def _first_display(concept: Any) -> str | None:
    for coding in concept.coding or []:
        if coding.display:
            return coding.display
        if coding.code:
            return coding.code
    return None


def _immunofixation(observation: Any, reference: str) -> ImmunofixationResult:
    if observation.dataAbsentReason is not None:
        raise _Excluded("no result (data absent)")
    day = _observation_day(observation)
    return ImmunofixationResult(reference=reference, day=day, reading=_ife_reading(observation))


def _ife_reading(observation: Any) -> IfeReading:
    """§3.2: codes, interpretation codes and free text, clause by clause."""
    readings: list[IfeReading] = []
    texts: list[str] = []
    concept = observation.valueCodeableConcept
    if concept is not None:
        for coding in concept.coding or []:
            if coding.code in IFE_NEGATIVE_CODES:
                readings.append(IfeReading.NEGATIVE)
            elif coding.code in IFE_POSITIVE_CODES:
                readings.append(IfeReading.POSITIVE)
            if coding.display:
                texts.append(coding.display)
        if concept.text:
            texts.append(concept.text)
    for interpretation in observation.interpretation or []:
        for coding in interpretation.coding or []:
            if coding.code in IFE_NEGATIVE_INTERPRETATIONS:
                readings.append(IfeReading.NEGATIVE)
            elif coding.code in IFE_POSITIVE_INTERPRETATIONS:
                readings.append(IfeReading.POSITIVE)
    if observation.valueString:
        texts.append(observation.valueString)
    for text in texts:
        readings += immunofixation_text_readings(text)
    return combine_ife_readings(readings)


def _viscosity(observation: Any, reference: str) -> ViscosityResult:
    """§7: serum viscosity in cP or mPa.s (equal); any other unit is read only against its
    own reference range (the order check)."""
    quantity = observation.valueQuantity
    if quantity is None or quantity.value is None:
        raise _Excluded("no value")
    unit = quantity.unit or quantity.code or ""
    text = f"{quantity.comparator or ''}{quantity.value} {unit}".strip()
    high = next(
        (
            Decimal(r.high.value)
            for r in observation.referenceRange or []
            if r.high is not None and r.high.value is not None
        ),
        None,
    )
    when = _observation_when(observation)
    moment = _moment(when, "date")
    return ViscosityResult(
        reference=reference,
        day=_observation_day(observation),
        text=text,
        value=Decimal(quantity.value),
        unit=unit,
        centipoise=is_centipoise(quantity.code) or is_centipoise(quantity.unit),
        reference_high=high,
        comparator=str(quantity.comparator) if quantity.comparator else None,
        drawn_at=moment if isinstance(moment, dt.datetime) else None,
    )


@dataclass(frozen=True)
class _Kind:
    """What an Observation's code makes it: one series, an IFE, a viscosity, or nothing."""

    series: Series | None = None
    code: str | None = None
    is_ife: bool = False
    is_viscosity: bool = False
    ambiguous: str | None = None  # the codes, when they name more than one kind


def _kind(code: Any) -> _Kind:
    codings = (code.coding if code else None) or []
    codes = {c.code for c in codings if c.system == LOINC_SYSTEM and c.code}
    series = {SERIES_BY_LOINC[code] for code in codes if code in SERIES_BY_LOINC}
    is_ife = IMMUNOFIXATION_LOINC in codes
    is_viscosity = SERUM_VISCOSITY_LOINC in codes
    if len(series) + is_ife + is_viscosity > 1:
        return _Kind(ambiguous=", ".join(sorted(codes)))
    if not series:
        return _Kind(is_ife=is_ife, is_viscosity=is_viscosity)
    # Both M-spike codes on one result: §3.1 prefers 33358-3.
    series_codes = codes & SERIES_CODES
    preferred = PREFERRED_M_SPIKE_LOINC in series_codes
    chosen = PREFERRED_M_SPIKE_LOINC if preferred else min(series_codes)
    return _Kind(series=series.pop(), code=str(chosen))


class ObservationMapper:
    """Maps one record's Observations. The reader gives results with the same code text one
    code object (and the same reference range text one list), so what a code means, and a
    range's upper limit, are worked out once per distinct text."""

    def __init__(self) -> None:
        # Each entry keeps its object, so the id stays that object's while it is used.
        self._kinds: dict[int, tuple[Any, _Kind]] = {}
        self._limits: dict[int, tuple[Any, _UpperLimit | None]] = {}

    def _upper_limit(self, reference_ranges: list[Any]) -> _UpperLimit | None:
        known = self._limits.get(id(reference_ranges))
        if known is None:
            limit = _upper_limit_of_normal(reference_ranges)
            known = self._limits[id(reference_ranges)] = (reference_ranges, limit)
        return known[1]

    def __call__(
        self, observation: Any, reference: str
    ) -> LabResult | ImmunofixationResult | ViscosityResult | None:
        """Raises `_Excluded` for a relevant result that cannot be used; None if not
        relevant."""
        known = self._kinds.get(id(observation.code))
        if known is None:
            known = self._kinds[id(observation.code)] = (observation.code, _kind(observation.code))
        kind = known[1]
        if kind.ambiguous is not None:
            raise _Excluded(f"coded as more than one kind of result ({kind.ambiguous})")
        if kind.series is None and not kind.is_ife and not kind.is_viscosity:
            return None
        if kind.series is None:
            if observation.status not in COUNTED_OBSERVATION_STATUSES:
                raise _Excluded(f"status '{observation.status}' is not a final result")
            if kind.is_ife:
                return _immunofixation(observation, reference)
            return _viscosity(observation, reference)
        try:
            if observation.status not in COUNTED_OBSERVATION_STATUSES:
                raise _Excluded(f"status '{observation.status}' is not a final result")
            limit = self._upper_limit(observation.referenceRange)
            return _lab_result(observation, kind.series, kind.code, reference, limit)
        except _Excluded as error:
            if observation.status not in NEVER_MEASURED_STATUSES:
                error.unusable = UnusableResult(
                    reference, kind.series, _day_if_any(observation), error.reason
                )
            raise


def map_observation(
    observation: Any, reference: str
) -> LabResult | ImmunofixationResult | ViscosityResult | None:
    """One Observation on its own; raises `_Excluded` for a relevant result that cannot be
    used; None if not relevant."""
    return ObservationMapper()(observation, reference)


# Treatment ---------------------------------------------------------------------------------


def _concept_drugs(concept: Any) -> tuple[list[WmDrug], list[str]]:
    """WM drugs in a CodeableConcept, and the texts that were read for names."""
    found: list[WmDrug] = []
    texts: list[str] = []
    if concept is None:
        return found, texts
    for coding in concept.coding or []:
        drug = drug_by_code(coding.system, coding.code)
        if drug:
            found.append(drug)
        if coding.display:
            texts.append(coding.display)
    if concept.text:
        texts.append(concept.text)
    return found, texts


@dataclass
class _Named:
    """What a medication record names: WM drugs, and the texts and ATC codes read."""

    drugs: list[WmDrug]
    texts: list[str]
    atc: list[str]
    name: str  # code.text, else the first coding's display (§3.3)


def _concept_atc(concept: Any) -> list[str]:
    if concept is None:
        return []
    return [c.code for c in concept.coding or [] if c.system == ATC_SYSTEM and c.code]


def _concept_name(concept: Any) -> str | None:
    if concept is None:
        return None
    displays = [c.display for c in concept.coding or [] if c.display]
    return concept.text or (displays[0] if displays else None)


MedicationLookup = Callable[[str], Any]  # a Medication reference -> the read Medication


def _medication_named(resource: Any, medications: MedicationLookup) -> _Named:
    """§3.3: WM drugs by code, name or regimen acronym, in the record and its Medication
    (contained, in the same Bundle); the texts read; the ATC codes; the record's name."""
    concept = resource.medicationCodeableConcept
    found, texts = _concept_drugs(concept)
    atc = _concept_atc(concept)
    name = _concept_name(concept)
    # Texts that name drugs but are not the record's own (§3.3: acronyms and trial words
    # are read in the record's and its Medication's code texts only).
    extra_texts: list[str] = []
    reference = resource.medicationReference
    if reference is not None:
        if reference.display:
            extra_texts.append(reference.display)
        medication = _resolve_medication(resource, reference.reference, medications)
        if medication is not None:
            more, more_texts = _concept_drugs(medication.code)
            found += more
            texts += more_texts
            atc += _concept_atc(medication.code)
            name = name or _concept_name(medication.code)
            for ingredient in medication.ingredient or []:
                more, more_texts = _concept_drugs(ingredient.itemCodeableConcept)
                found += more
                extra_texts += more_texts
                if ingredient.itemReference is not None and ingredient.itemReference.display:
                    extra_texts.append(ingredient.itemReference.display)
        elif not reference.display and not found:
            raise _Excluded(
                f"medication {reference.reference or '(no reference)'} could not be resolved"
            )
        name = name or reference.display
    for text in (*texts, *extra_texts):
        found += drugs_in_text(text)
    drugs = list({drug.ingredient: drug for drug in found}.values())
    return _Named(drugs, texts, atc, name or "")


def _resolve_medication(resource: Any, reference: str | None, medications: MedicationLookup) -> Any:
    if not reference:
        return None
    if reference.startswith("#"):
        try:
            return read_contained(resource.contained, reference[1:])
        except NotValidFhir as error:
            raise _Excluded(f"contained {reference}: {error}") from None
    return medications(reference)


def _statement_dates(statement: Any) -> tuple[dt.date, dt.date | None]:
    """§3.3: effectivePeriod, or effectiveDateTime as the start (a completed or stopped
    statement with only effectiveDateTime ends that day)."""
    period = statement.effectivePeriod
    if period is not None and period.start is not None:
        end = to_day(period.end, "end date") if period.end is not None else None
        return to_day(period.start, "start date"), end
    if statement.effectiveDateTime is not None:
        start = to_day(statement.effectiveDateTime, "start date")
        return start, start if statement.status in ENDED_MEDICATION_STATUSES else None
    raise _Excluded("no start date (effectivePeriod.start or effectiveDateTime)")


def _supply_days(request: Any) -> int | None:
    """expectedSupplyDuration x (1 + numberOfRepeatsAllowed), in days, when given in days
    or weeks."""
    dispense = request.dispenseRequest
    duration = dispense.expectedSupplyDuration if dispense else None
    if duration is None or duration.value is None:
        return None
    per_unit = DAYS_PER_DURATION_UNIT.get(duration.code or "")
    if per_unit is None:
        return None
    repeats = dispense.numberOfRepeatsAllowed or 0
    return int(Decimal(duration.value) * per_unit * (1 + repeats))


def _request_dates(request: Any) -> tuple[dt.date, dt.date | None, dt.date | None]:
    """§3.3: (start, end of a completed or stopped order, the day an active order runs to)."""
    validity = request.dispenseRequest.validityPeriod if request.dispenseRequest else None
    bounds = [
        dosage.timing.repeat.boundsPeriod
        for dosage in request.dosageInstruction or []
        if dosage.timing and dosage.timing.repeat and dosage.timing.repeat.boundsPeriod
    ]
    if validity is not None and validity.start is not None:
        start = to_day(validity.start, "start date")
    elif bounds_starts := [b.start for b in bounds if b.start is not None]:
        start = min(to_day(s, "start date") for s in bounds_starts)
    elif request.authoredOn is not None:
        start = to_day(request.authoredOn, "start date")
    else:
        raise _Excluded("no start date (validityPeriod, timing bounds or authoredOn)")
    validity_end = (
        to_day(validity.end, "end date") if validity is not None and validity.end else None
    )
    bounds_ends = [to_day(b.end, "end date") for b in bounds if b.end is not None]
    timing_end = max(bounds_ends) if bounds_ends else None
    supply = _supply_days(request)
    try:
        supply_end = start + dt.timedelta(days=supply) if supply is not None else None
    except OverflowError:
        raise _Excluded("the supply duration runs past any date") from None
    if request.status in ENDED_MEDICATION_STATUSES:
        end = validity_end or timing_end or supply_end or start
        return start, end, None
    known_ends = [d for d in (validity_end, timing_end, supply_end) if d is not None]
    return start, None, max(known_ends) if known_ends else None


def _administration_dates(administration: Any) -> tuple[dt.date, dt.date]:
    """§3.3: one dose on effectiveDateTime, or effectivePeriod."""
    if administration.effectiveDateTime is not None:
        day = to_day(administration.effectiveDateTime, "date")
        return day, day
    period = administration.effectivePeriod
    if period is not None and period.start is not None:
        start = to_day(period.start, "start date")
        return start, to_day(period.end, "end date") if period.end is not None else start
    raise _Excluded("no date (effectiveDateTime or effectivePeriod)")


def map_medication(
    resource: Any, reference: str, medications: MedicationLookup
) -> list[DrugEpisode]:
    """One episode per WM ingredient (or one of unrecognised therapy, §3.3); [] when the
    record is not about WM treatment."""
    named = _medication_named(resource, medications)
    drugs: list[WmDrug] = named.drugs
    if not drugs:
        if looks_investigational(named.texts, named.atc):
            drugs = [WmDrug(named.name or "unnamed treatment", DrugClass.UNRECOGNISED)]
        elif looks_anticancer(named.texts, named.atc):
            raise _Excluded(f"not recognised as a WM treatment: {named.name}")
        else:
            return []
    resource_type = resource.resource_type
    source = EpisodeSource(resource_type)
    status = resource.status
    if status in LEFT_OUT_STATUSES[resource_type]:
        raise _Excluded(STATUS_REASONS.get(status, f"status '{status}': not treatment taken"))
    runs_to = None
    if source == EpisodeSource.STATEMENT:
        start, end = _statement_dates(resource)
    elif source == EpisodeSource.REQUEST:
        if resource.intent not in COUNTED_REQUEST_INTENTS:
            raise _Excluded(f"intent '{resource.intent}': a suggestion, not an order")
        start, end, runs_to = _request_dates(resource)
    else:
        start, end = _administration_dates(resource)
    if end is not None and end < start:
        raise _Excluded(f"ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    # §3.5 transplant flags: read only where they can matter
    mobilisation = says_mobilisation(named.texts)
    conditioning = any(d.drug_class == DrugClass.CONDITIONING for d in drugs)
    high_dose = conditioning and says_high_dose(named.texts)
    beam = conditioning and any(names_beam(t) for t in named.texts)
    return [
        DrugEpisode(
            reference=reference,
            ingredient=drug.ingredient,
            drug_class=drug.drug_class,
            start=start,
            end=end,
            on_hold=status == "on-hold",
            source=source,
            order_runs_to=runs_to,
            status=status,
            mobilisation=mobilisation,
            high_dose=high_dose,
            beam=beam,
        )
        for drug in drugs
    ]


# Plasmapheresis ----------------------------------------------------------------------------


def map_procedure(procedure: Any, reference: str) -> Plasmapheresis | TransplantProcedure | None:
    """§3.6 plasmapheresis; §3.5 an autologous transplant or a stem-cell collection."""
    code = procedure.code
    texts = [t for t in ([code.text, *(c.display for c in code.coding or [])] if code else []) if t]
    if not any(names_plasmapheresis(text) for text in texts):
        kinds = {transplant_kind(text) for text in texts} - {None}
        if not kinds or procedure.status != "completed":
            return None
        when = procedure.performedDateTime or (
            procedure.performedPeriod.start if procedure.performedPeriod else None
        )
        if when is None:
            raise _Excluded("no date (performedDateTime or performedPeriod.start)")
        return TransplantProcedure(reference, to_day(when, "date"), "transplant" not in kinds)
    if procedure.status != "completed":
        raise _Excluded(f"status '{procedure.status}': not a completed procedure")
    if procedure.performedDateTime is not None:
        when = procedure.performedDateTime
    elif procedure.performedPeriod is not None and procedure.performedPeriod.start is not None:
        when = procedure.performedPeriod.start
    else:
        raise _Excluded("no date (performedDateTime or performedPeriod.start)")
    day = to_day(when, "date")
    return Plasmapheresis(reference=reference, day=day, started_at=_with_time(when, "date"))


# Conditions (§3.7) --------------------------------------------------------------------------


def _codes(concept: Any) -> list[str]:
    return [coding.code for coding in (concept.coding or []) if coding.code] if concept else []


def map_condition(condition: Any, reference: str) -> Diagnosis | None:
    """An active, not refuted Condition of WM or of another disease the WM drugs treat;
    None for anything else (a problem list holds much that is not ours)."""
    clinical = _codes(condition.clinicalStatus)
    if clinical and not ACTIVE_CONDITION_STATUSES & set(clinical):
        return None
    if NOT_A_DIAGNOSIS_STATUSES & set(_codes(condition.verificationStatus)):
        return None
    code = condition.code
    if code is None:
        return None
    codings = [(coding.system, coding.code) for coding in code.coding or []]
    texts = [code.text, *(coding.display for coding in code.coding or [])]
    kind = condition_kind(codings, [t for t in texts if t])
    return Diagnosis(reference, is_wm=kind == "wm") if kind else None


# The whole record ------------------------------------------------------------------------


def _each(
    resources: Iterable[tuple[str, Any]],
    mapper: Any,
    excluded: list[Exclusion],
    unusable: list[UnusableResult] | None = None,
) -> list[Any]:
    """Map each (reference, model); a resource that cannot be used is reported, not lost."""
    mapped: list[Any] = []
    for reference, resource in resources:
        try:
            result = mapper(resource, reference)
        except _Excluded as error:
            excluded.append(Exclusion(reference, error.reason))
            if error.unusable is not None and unusable is not None:
                unusable.append(error.unusable)
            continue
        if isinstance(result, list):
            mapped.extend(result)
        elif result is not None:
            mapped.append(result)
    return mapped


def to_patient_record(parsed: ParsedResources) -> PatientRecord:
    excluded: list[Exclusion] = []
    unusable: list[UnusableResult] = []
    observations = _each(parsed.models("Observation"), ObservationMapper(), excluded, unusable)
    episodes = _each(
        [
            *parsed.models("MedicationStatement"),
            *parsed.models("MedicationRequest"),
            *parsed.models("MedicationAdministration"),
        ],
        lambda resource, reference: map_medication(resource, reference, parsed.medication),
        excluded,
    )
    procedures = _each(parsed.models("Procedure"), map_procedure, excluded)
    transplants = [p for p in procedures if isinstance(p, TransplantProcedure)]
    procedures = [p for p in procedures if isinstance(p, Plasmapheresis)]
    diagnoses = _each(parsed.models("Condition"), map_condition, excluded)
    immunofixations = [o for o in observations if isinstance(o, ImmunofixationResult)]
    # §3.2: an unreadable IFE is left out of CR and reported, yet it still withholds CR.
    excluded += [
        Exclusion(i.reference, IFE_UNREADABLE)
        for i in immunofixations
        if i.reading == IfeReading.UNREADABLE
    ]
    return PatientRecord(
        lab_results=[o for o in observations if isinstance(o, LabResult)],
        immunofixations=immunofixations,
        drug_episodes=episodes,
        plasmaphereses=procedures,
        viscosities=[o for o in observations if isinstance(o, ViscosityResult)],
        excluded=[*parsed.excluded, *excluded],
        unusable=unusable,
        diagnoses=diagnoses,
        transplants=transplants,
    )
