"""Step 4 of a call: validated FHIR models -> the clinical core's internal models.

Applies clinical-rules.md §3: which codes, statuses, dates and units count. Every resource
that is relevant but cannot be used is reported as an `Exclusion` with a reason; nothing
is dropped silently and nothing is guessed. Resources that are simply not about WM
(other labs, other drugs, other procedures) are not ours to report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .clinical.models import (
    DrugEpisode,
    Exclusion,
    ImmunofixationResult,
    LabResult,
    PatientRecord,
    Plasmapheresis,
    Series,
)
from .clinical.units import UnitError, mg_dl_factor
from .clinical.valuesets import (
    COUNTED_OBSERVATION_STATUSES,
    IFE_NEGATIVE_CODES,
    IFE_POSITIVE_CODES,
    IMMUNOFIXATION_LOINC,
    LOINC_SYSTEM,
    SERIES_BY_LOINC,
    WmDrug,
    drug_by_code,
    drugs_named_in,
    immunofixation_reading,
    names_plasmapheresis,
)
from .fhir_parsing import ParsedResources

# clinical-rules.md §3: medication records that do not describe treatment taken.
LEFT_OUT_MEDICATION_STATUSES = frozenset(
    {"entered-in-error", "not-taken", "cancelled", "draft", "intended"}
)
ENDED_MEDICATION_STATUSES = frozenset({"completed", "stopped"})
_UPPER_BOUND = frozenset({"<", "<="})
_LOWER_BOUND = frozenset({">", ">="})


class _Excluded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_day(value: Any, what: str) -> dt.date:
    """A FHIR date/dateTime/instant at day granularity, as written (the source's local day)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        raise _Excluded(f"{what} '{value}' is not precise to the day")
    raise _Excluded(f"no {what}")


# Laboratory results ----------------------------------------------------------------------


def _loinc_codes(observation: Any) -> set[str]:
    codings = (observation.code.coding if observation.code else None) or []
    return {c.code for c in codings if c.system == LOINC_SYSTEM and c.code}


def _observation_day(observation: Any) -> dt.date:
    if observation.effectiveDateTime is not None:
        return to_day(observation.effectiveDateTime, "date")
    if observation.effectivePeriod is not None and observation.effectivePeriod.start is not None:
        return to_day(observation.effectivePeriod.start, "date")
    if observation.issued is not None:
        return to_day(observation.issued, "date")
    raise _Excluded("no date (effectiveDateTime, effectivePeriod.start or issued)")


def _quantity_mg_dl(quantity: Any) -> Decimal:
    if quantity.value is None:
        raise _Excluded("no value")
    try:
        factor = mg_dl_factor(quantity.system, quantity.code, quantity.unit)
    except UnitError as error:
        raise _Excluded(str(error)) from None
    return Decimal(quantity.value) * factor


def _upper_limit_of_normal(observation: Any) -> Decimal | None:
    for reference_range in observation.referenceRange or []:
        high = reference_range.high
        if high is None or high.value is None:
            continue
        try:
            return _quantity_mg_dl(high)
        except _Excluded:
            return None  # an unreadable range falls back to the default ULN, as the card says
    return None


def _lab_result(observation: Any, series: Series, reference: str) -> LabResult:
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
    comparator = quantity.comparator
    return LabResult(
        reference=reference,
        series=series,
        day=_observation_day(observation),
        value_mg_dl=value,
        upper_bound=comparator in _UPPER_BOUND,
        lower_bound=comparator in _LOWER_BOUND,
        uln_mg_dl=_upper_limit_of_normal(observation),
    )


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
    reading = _immunofixation_reading(observation)
    if reading is None:
        raise _Excluded("the immunofixation result reads neither negative nor positive")
    return ImmunofixationResult(reference=reference, day=day, negative=reading)


def _immunofixation_reading(observation: Any) -> bool | None:
    concepts = [observation.valueCodeableConcept, *(observation.interpretation or [])]
    for concept in concepts:
        if concept is None:
            continue
        for coding in concept.coding or []:
            if coding.code in IFE_NEGATIVE_CODES:
                return True
            if coding.code in IFE_POSITIVE_CODES:
                return False
        texts = [concept.text, *(c.display for c in concept.coding or [])]
        for text in texts:
            if text and (reading := immunofixation_reading(text)) is not None:
                return reading
    if observation.valueString:
        return immunofixation_reading(observation.valueString)
    return None


def map_observation(observation: Any, reference: str) -> LabResult | ImmunofixationResult | None:
    """Raises `_Excluded` for a relevant result that cannot be used; None if not relevant."""
    codes = _loinc_codes(observation)
    series = {SERIES_BY_LOINC[code] for code in codes if code in SERIES_BY_LOINC}
    is_ife = IMMUNOFIXATION_LOINC in codes
    if not series and not is_ife:
        return None
    if len(series) + is_ife > 1:
        raise _Excluded("coded as more than one kind of result (" + ", ".join(sorted(codes)) + ")")
    if observation.status not in COUNTED_OBSERVATION_STATUSES:
        raise _Excluded(f"status '{observation.status}' is not a final result")
    if is_ife:
        return _immunofixation(observation, reference)
    return _lab_result(observation, series.pop(), reference)


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


def _medication_drugs(resource: Any, medications: dict[str, Any]) -> list[WmDrug]:
    found, texts = _concept_drugs(resource.medicationCodeableConcept)
    reference = resource.medicationReference
    if reference is not None:
        if reference.display:
            texts.append(reference.display)
        medication = _resolve_medication(resource, reference.reference, medications)
        if medication is not None:
            more, more_texts = _concept_drugs(medication.code)
            found += more
            texts += more_texts
            for ingredient in medication.ingredient or []:
                more, more_texts = _concept_drugs(ingredient.itemCodeableConcept)
                found += more
                texts += more_texts
                if ingredient.itemReference is not None and ingredient.itemReference.display:
                    texts.append(ingredient.itemReference.display)
        elif not reference.display and not found:
            raise _Excluded(
                f"medication {reference.reference or '(no reference)'} could not be resolved"
            )
    for text in texts:
        found += drugs_named_in(text)
    return list({drug.ingredient: drug for drug in found}.values())


def _resolve_medication(resource: Any, reference: str | None, medications: dict[str, Any]) -> Any:
    if not reference:
        return None
    if reference.startswith("#"):
        for contained in resource.contained or []:
            if contained.get_resource_type() == "Medication" and contained.id == reference[1:]:
                return contained
        return None
    key = "Medication/" + reference.rsplit("Medication/", 1)[-1].split("/_history/")[0]
    return medications.get(key)


def _statement_dates(statement: Any) -> tuple[dt.date, dt.date | None]:
    period = statement.effectivePeriod
    if period is not None and period.start is not None:
        end = to_day(period.end, "end date") if period.end is not None else None
        return to_day(period.start, "start date"), end
    if statement.effectiveDateTime is not None:
        return to_day(statement.effectiveDateTime, "start date"), None
    raise _Excluded("no start date (effectivePeriod.start or effectiveDateTime)")


def _request_dates(request: Any) -> tuple[dt.date, dt.date | None]:
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
    end = None
    if request.status in ENDED_MEDICATION_STATUSES:
        if validity is not None and validity.end is not None:
            end = to_day(validity.end, "end date")
        elif bounds_ends := [b.end for b in bounds if b.end is not None]:
            end = max(to_day(e, "end date") for e in bounds_ends)
    return start, end


def map_medication(resource: Any, reference: str, medications: dict[str, Any]) -> list[DrugEpisode]:
    """One episode per WM ingredient; [] when the record is not about a WM drug."""
    drugs = _medication_drugs(resource, medications)
    if not drugs:
        return []
    status = resource.status
    if status in LEFT_OUT_MEDICATION_STATUSES:
        raise _Excluded(f"status '{status}': not treatment taken")
    is_statement = resource.get_resource_type() == "MedicationStatement"
    start, end = _statement_dates(resource) if is_statement else _request_dates(resource)
    if end is not None and end < start:
        raise _Excluded(f"ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    on_hold = status == "on-hold"
    # An active request is ongoing whatever its validity period says (clinical-rules.md §3).
    if not is_statement and status == "active":
        end = None
    ended = status in ENDED_MEDICATION_STATUSES or (
        is_statement and end is not None and not on_hold
    )
    return [
        DrugEpisode(
            reference=reference,
            ingredient=drug.ingredient,
            drug_class=drug.drug_class,
            start=start,
            end=end,
            ended=ended,
            on_hold=on_hold,
        )
        for drug in drugs
    ]


# Plasmapheresis ----------------------------------------------------------------------------


def map_procedure(procedure: Any, reference: str) -> Plasmapheresis | None:
    code = procedure.code
    texts = [code.text, *(c.display for c in code.coding or [])] if code else []
    if not any(text and names_plasmapheresis(text) for text in texts):
        return None
    if procedure.status != "completed":
        raise _Excluded(f"status '{procedure.status}': not a completed procedure")
    if procedure.performedDateTime is not None:
        day = to_day(procedure.performedDateTime, "date")
    elif procedure.performedPeriod is not None and procedure.performedPeriod.start is not None:
        day = to_day(procedure.performedPeriod.start, "date")
    else:
        raise _Excluded("no date (performedDateTime or performedPeriod.start)")
    return Plasmapheresis(reference=reference, day=day)


# The whole record ------------------------------------------------------------------------


def _each(
    resources: Iterable[tuple[str, Any]], mapper: Any, excluded: list[Exclusion]
) -> list[Any]:
    """Map each (reference, model); a resource that cannot be used is reported, not lost."""
    mapped: list[Any] = []
    for reference, resource in resources:
        try:
            result = mapper(resource, reference)
        except _Excluded as error:
            excluded.append(Exclusion(reference, error.reason))
            continue
        if isinstance(result, list):
            mapped.extend(result)
        elif result is not None:
            mapped.append(result)
    return mapped


def to_patient_record(parsed: ParsedResources) -> PatientRecord:
    excluded: list[Exclusion] = []
    observations = _each(parsed.models("Observation"), map_observation, excluded)
    episodes = _each(
        [*parsed.models("MedicationStatement"), *parsed.models("MedicationRequest")],
        lambda resource, reference: map_medication(resource, reference, parsed.medications),
        excluded,
    )
    procedures = _each(parsed.models("Procedure"), map_procedure, excluded)
    labs = [o for o in observations if isinstance(o, LabResult)]
    for lab in labs:
        if lab.lower_bound:
            excluded.append(
                Exclusion(
                    lab.reference,
                    "a lower bound ('>') says too little for a response; "
                    "used only for the hyperviscosity check",
                )
            )
    return PatientRecord(
        lab_results=labs,
        immunofixations=[o for o in observations if isinstance(o, ImmunofixationResult)],
        drug_episodes=episodes,
        plasmaphereses=procedures,
        excluded=[*parsed.excluded, *excluded],
    )
