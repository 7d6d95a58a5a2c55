"""The response card's machine-readable `extension["wm-igm-assessment"]` (contract.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cds_service.clinical.change import displayed_percent
from cds_service.clinical.laboratory import HELD_BACK
from cds_service.clinical.models import Assessment, Category, LabResult

EXTENSION_KEY = "wm-igm-assessment"


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _point(result: LabResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    point: dict[str, Any] = {
        "valueMgDl": _number(result.value_mg_dl),
        "date": result.day.isoformat(),
    }
    if result.comparator:
        point["comparator"] = result.comparator
    return point


def recognised_regimen(assessment: Assessment) -> list[str]:
    """contract v3 `regimen`: recognised ingredients only (switched-from ones excluded)."""
    line = assessment.line
    if line is None:
        return []
    unrecognised = {c.ingredient for c in line.unrecognised}
    return [name for name in line.regimen if name not in unrecognised]


def _v3_keys(assessment: Assessment) -> dict[str, Any]:
    """The keys contract v3 adds, each only when it applies."""
    keys: dict[str, Any] = {}
    line = assessment.line
    if line is not None and line.unrecognised:
        keys["unrecognisedTherapy"] = [
            {"reference": c.references[0], "text": c.ingredient, "since": c.start.isoformat()}
            for c in line.unrecognised
        ]
    if assessment.change_since_line_start is not None:
        keys["changeSinceLineStart"] = float(displayed_percent(assessment.change_since_line_start))
    if assessment.earlier_progression is not None:
        regimen, confirmed = assessment.earlier_progression
        keys["earlierProgression"] = {"regimen": list(regimen), "confirmed": confirmed.isoformat()}
    if assessment.line_status is not None:
        keys["lineStatus"] = assessment.line_status.value
    if assessment.hold_since is not None:
        keys["holdSince"] = assessment.hold_since.isoformat()
    if assessment.switched_from:
        keys["switchedFrom"] = [
            {"ingredient": ingredient, "date": when.isoformat()}
            for ingredient, when in assessment.switched_from
        ]
    suppressed = assessment.rise_suppressed
    if suppressed is not None:
        rise: dict[str, Any] = {"window": suppressed.window.value}
        if suppressed.until is not None:
            rise["until"] = suppressed.until.isoformat()
        if suppressed.recovery:
            rise["recovery"] = True
        keys["riseSuppressed"] = rise
    if assessment.withdrawal is not None:
        keys["withdrawal"] = {
            "ingredient": assessment.withdrawal.ingredient,
            "stopped": assessment.withdrawal.stopped.isoformat(),
            "until": assessment.withdrawal.until.isoformat(),
        }
    if assessment.best_response is not None:
        keys["bestResponse"] = {
            "category": assessment.best_response.category.value,
            "since": assessment.best_response.since.isoformat(),
        }
    if assessment.provisional_until is not None:
        keys["provisionalUntil"] = assessment.provisional_until.isoformat()
    if assessment.rise_below_floor is not None:
        keys["riseBelowFloor"] = {"riseMgDl": _number(assessment.rise_below_floor)}
    if assessment.cr_lost is not None:
        keys["crLost"] = assessment.cr_lost.isoformat()
    duration = assessment.response_duration
    if duration is not None:
        keys["responseDuration"] = {
            "category": duration.category.value,
            "since": duration.since.isoformat(),
            "until": duration.until.isoformat(),
            "months": duration.months,
        }
    for key, change in (
        ("changeSinceFirst", assessment.change_since_first),
        ("change12Months", assessment.change_12_months),
    ):
        if change is not None:
            keys[key] = {
                "percentChange": float(displayed_percent(change.percent_change)),
                "from": _point(change.since),
            }
    if assessment.held_back:
        keys["heldBack"] = [
            {
                "reference": value.reference,
                "valueMgDl": _number(value.value_mg_dl),
                "date": value.day.isoformat(),
                "reason": HELD_BACK,
            }
            for value in assessment.held_back
        ]
    other = assessment.other_series
    if other is not None:
        keys["otherSeries"] = {
            "series": other.series.value,
            "values": [_point(value) for value in other.values],
            "rising": other.rising,
        }
    return keys


INCOMPLETE_TREATMENT_REASON = "no WM treatment found in the treatment records that could be read"


def assessment_extension(
    assessment: Assessment, unavailable: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Contract keys only, and optional keys omitted when empty (CDS Hooks forbids null)."""
    body: dict[str, Any] = {
        "criteria": assessment.criteria,
        "category": assessment.category.value,
    }
    is_ne = assessment.category == Category.NE
    if assessment.series is not None:
        body["series"] = assessment.series.value
    if assessment.percent_change is not None and not is_ne:
        body["percentChange"] = float(displayed_percent(assessment.percent_change))
        body["percentChangeIsBound"] = assessment.change_is_bound
    if assessment.percent_change_from_nadir is not None:
        # PD, a suppressed rise and a sub-floor rise (contract v3)
        body["percentChangeFromNadir"] = float(
            displayed_percent(assessment.percent_change_from_nadir)
        )
    for key, result in (
        ("baseline", assessment.baseline),
        ("nadir", assessment.nadir),
        ("latest", assessment.latest),
    ):
        point = _point(result)
        if point:
            body[key] = point
    if assessment.therapy_start is not None:
        body["therapyStart"] = assessment.therapy_start.isoformat()
    if assessment.line_ended is not None:
        body["lineEnded"] = assessment.line_ended.isoformat()
    recognised = recognised_regimen(assessment)
    if recognised:
        body["regimen"] = recognised
    body.update(_v3_keys(assessment))
    if assessment.caveats:
        body["caveats"] = [caveat.value for caveat in assessment.caveats]
    if assessment.response_since is not None:
        body["responseSince"] = assessment.response_since.isoformat()
    if assessment.progression_confirmed is not None:
        body["progressionConfirmed"] = assessment.progression_confirmed.isoformat()
    earlier = assessment.continuing_from
    if earlier is not None:
        continuing: dict[str, Any] = {"therapyStart": earlier.therapy_start.isoformat()}
        if earlier.baseline is not None:
            continuing["baseline"] = _point(earlier.baseline)
        if earlier.percent_change is not None:
            continuing["percentChange"] = float(displayed_percent(earlier.percent_change))
        body["continuingFrom"] = continuing
    if assessment.reason and is_ne:
        body["reason"] = assessment.reason
        treatment_keys = ("medicationStatements", "medicationRequests", "medicationAdministrations")
        if assessment.line is None and any(key in unavailable for key in treatment_keys):
            body["reason"] = INCOMPLETE_TREATMENT_REASON
    if unavailable:
        body["unavailable"] = list(unavailable)
    if assessment.excluded:
        body["excluded"] = [
            {"reference": item.reference, "reason": item.reason} for item in assessment.excluded
        ]
    return {EXTENSION_KEY: body}
