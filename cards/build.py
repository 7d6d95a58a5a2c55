"""Assessment -> CDS Hooks cards (contract.md, "Cards").

The wording lives in `templates/` (markdown) and `caveats/` (one file per caveat); this
module chooses what to say and fills in the numbers. Text that came from the EHR is
escaped before it reaches markdown: the CDS Hooks sandbox renders raw HTML in `detail`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from cds_service.clinical.criteria import CriteriaProfile
from cds_service.clinical.dates import whole_months
from cds_service.clinical.models import (
    Assessment,
    Category,
    Caveat,
    Hyperviscosity,
    LabResult,
    MonitoringDue,
    MonitoringReason,
    MonitoringState,
    Series,
)

from .card_ids import new_card_uuid
from .caveat_pages import caveat_text
from .disease_status import record_status_suggestion
from .extension import assessment_extension
from .suggestions import (
    monitoring_igm_suggestion,
    repeat_igm_suggestion,
    serum_viscosity_suggestion,
)
from .summary import WINDOW_WORDS, records_not_all_read, response_summary
from .text import (
    MG_DL,
    SERIES_NAMES,
    DisplayUnit,
    category_label,
    day,
    escape_markdown,
    percent,
    signed_percent,
)

EXCLUDED_SHOWN = 20
CRITERIA_URL = "https://doi.org/10.1111/bjh.12102"
CRITERIA_SOURCE = "IWWM-6 consensus response criteria (Owen et al., Br J Haematol 2013)"
TOPIC_SYSTEM = "urn:wm-igm-cds:topic"
OVERRIDE_SYSTEM = "urn:wm-igm-cds:override-reason"
DATA_INCOMPLETE = ("data-incomplete", "IgM or treatment data in the EHR are incomplete")
CLINICAL_JUDGEMENT = (
    "clinical-judgement",
    "Clinical picture differs; acting on clinical judgement",
)
RESPONSE_OVERRIDES = (
    ("marrow-assessed", "Response already assessed by bone marrow or imaging"),
    DATA_INCOMPLETE,
    CLINICAL_JUDGEMENT,
)
HYPERVISCOSITY_OVERRIDES = (
    ("viscosity-checked", "Serum viscosity and symptoms already checked"),
    DATA_INCOMPLETE,
    CLINICAL_JUDGEMENT,
)
MONITORING_OVERRIDES = (
    ("igm-ordered", "IgM already ordered, or measured elsewhere"),
    DATA_INCOMPLETE,
    CLINICAL_JUDGEMENT,
)
# What each prefetch key that could not be read leaves unchecked (contract v2).
NOT_CHECKED = {
    "medicationStatements": "Medication statements could not be read: the treatment history "
    "may be incomplete.",
    "medicationRequests": "Medication orders could not be read: the treatment history may be "
    "incomplete.",
    "medicationAdministrations": "Medication administrations (infusions) could not be read: "
    "the treatment history may be incomplete.",
    "procedures": "Procedures could not be read: plasmapheresis was not checked.",
    "conditions": "Conditions could not be read: the WM diagnosis was not checked.",
    "patient": "The patient record could not be read (nothing here depends on it).",
}
# contract v3, "Incomplete is not complete": the server returned part of a search.
NOT_ALL_RETURNED = {
    "observations": "Some IgM results were not returned by the FHIR server: the category is "
    "based on those that were, and a missing result could change it.",
    "medicationStatements": "Some medication statements were not returned by the FHIR server: "
    "the treatment history may be incomplete.",
    "medicationRequests": "Some medication orders were not returned by the FHIR server: the "
    "treatment history may be incomplete.",
    "medicationAdministrations": "Some medication administrations (infusions) were not "
    "returned by the FHIR server: the treatment history may be incomplete.",
    "procedures": "Some procedures were not returned by the FHIR server: a plasmapheresis may "
    "have been missed.",
    "conditions": "Some conditions were not returned by the FHIR server: the WM diagnosis may "
    "not have been seen.",
}


@dataclass(frozen=True)
class CardContext:
    """What the cards need to know besides the assessment."""

    patient_id: str
    base_url: str  # absolute, no trailing slash: links to /caveats/<code>
    today: date
    unavailable: tuple[str, ...] = ()  # prefetch keys that could not be read
    incomplete: tuple[str, ...] = ()  # of those, the keys the server returned in part
    unit: DisplayUnit = MG_DL
    smart_launch_url: str | None = None  # the trend app, when it is configured


_BLANK_LINES = re.compile(r"\n{3,}")


@cache
def _templates() -> Environment:
    # Markdown, not HTML: escaping is explicit (escape_markdown) for EHR-supplied text.
    return Environment(
        loader=PackageLoader("cards", "templates"),
        autoescape=False,
        undefined=StrictUndefined,
        auto_reload=False,  # templates ship with the package: no stat() per render
        trim_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **values: Any) -> str:
    text = _templates().get_template(name).render(**values)
    lines = [line.rstrip() for line in text.strip().splitlines()]
    # Sections are separated by one blank line however many conditional blocks were empty.
    return _BLANK_LINES.sub("\n\n", "\n".join(lines))


def caveat_url(base_url: str, caveat: Caveat) -> str:
    return f"{base_url}/caveats/{caveat.value}"


def topic(code: str, display: str) -> dict[str, str]:
    return {"system": TOPIC_SYSTEM, "code": code, "display": display}


def override_reasons(reasons: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display} for code, display in reasons
    ]


def caveat_link(context: CardContext, caveat: Caveat) -> dict[str, str]:
    return {
        "label": caveat_text(caveat.value).title,
        "url": caveat_url(context.base_url, caveat),
        "type": "absolute",
    }


# Detail ----------------------------------------------------------------------------------


def _point(name: str, result: LabResult | None, unit: DisplayUnit) -> dict[str, str] | None:
    if result is None:
        return None
    return {"name": name, "value": unit.result(result), "day": day(result.day)}


def _line_status(assessment: Assessment, unit: DisplayUnit) -> dict[str, Any] | None:
    line = assessment.line
    if line is None:
        return None
    ended = assessment.line_ended
    confirmed = assessment.progression_confirmed
    status: dict[str, Any] = {
        "regimen": escape_markdown(" + ".join(line.regimen)),
        "start": day(line.start),
        "ended": day(ended) if ended else None,
        "continues": None,
        # contract v3 detail: holds, switches, and how each course of an ongoing line stands
        "held": None,
        "switched": [
            f"Switched from {escape_markdown(drug)} on {day(when)}."
            for drug, when in assessment.switched_from
        ],
        "courses": [],
        "months_off": (
            whole_months(ended, confirmed)
            if ended and confirmed and confirmed > ended and assessment.category == Category.PD
            else None
        ),
    }
    if assessment.held_drug:
        since = (
            f"since {day(assessment.hold_since)}" if assessment.hold_since else "start not recorded"
        )
        status["held"] = f"{escape_markdown(assessment.held_drug)} on hold now ({since})."
    if ended is None:
        for course in line.main_courses:
            if course.end is None or course.on_hold:
                continue
            kind = "last dose" if course.last_from_administration else "ended"
            status["courses"].append(
                f"{escape_markdown(course.ingredient)} ({kind} {day(course.end)})"
            )
    earlier = assessment.continuing_from
    if earlier is not None:
        status["continues"] = {
            "start": day(earlier.therapy_start),
            "regimen": " + ".join(line.continues.regimen) if line.continues else "",
            "baseline": _point("Baseline", earlier.baseline, unit),
            "change": (
                signed_percent(earlier.percent_change)
                if earlier.percent_change is not None
                else None
            ),
        }
    return status


def _unrecognised_sentences(assessment: Assessment, unit: DisplayUnit) -> list[str]:
    """§4.7: a line of unknown regimen, and the progression of the line before."""
    line = assessment.line
    if line is None or not line.unknown_regimen:
        return []
    first = min(line.unrecognised, key=lambda c: (c.start, c.ingredient))
    sentence = (
        f"Current treatment not recognised: {escape_markdown(first.ingredient)}, since "
        f"{day(first.start)}."
    )
    baseline, latest = assessment.baseline, assessment.latest
    if assessment.change_since_line_start is not None and baseline and latest:
        series = SERIES_NAMES.get(assessment.series, "IgM") if assessment.series else "IgM"
        sentence += (
            f" Since then {series} {unit.result(baseline)} -> {unit.result(latest)} "
            f"{unit.label} ({signed_percent(assessment.change_since_line_start)})."
        )
    if assessment.progression_confirmed is not None:
        sentence += (
            f" Progression confirmed {day(assessment.progression_confirmed)} since it started."
        )
    sentences = [sentence]
    if assessment.earlier_progression is not None:
        regimen, confirmed = assessment.earlier_progression
        sentences.append(
            f"Earlier: progression on {escape_markdown(' + '.join(regimen))} confirmed "
            f"{day(confirmed)}."
        )
    return sentences


def _trend_sentences(assessment: Assessment, unit: DisplayUnit) -> list[str]:
    """§4.10: the changes of an untreated patient's series."""
    sentences = []
    if assessment.change_since_first is not None:
        change = signed_percent(assessment.change_since_first.percent_change)
        sentences.append(f"Change since the first value: **{change}**.")
    if assessment.change_12_months is not None:
        since = assessment.change_12_months.since
        change = signed_percent(assessment.change_12_months.percent_change)
        sentences.append(
            f"Change over the last 12 months: **{change}** (from {unit.result(since)} "
            f"{unit.label} on {day(since.day)})."
        )
    return sentences


OTHER_SERIES_SHOWN = 5


def _other_series_sentence(assessment: Assessment, unit: DisplayUnit) -> str | None:
    """§4.1: newer results of the other method, listed, never compared across methods."""
    other = assessment.other_series
    if other is None:
        return None
    newest = list(other.values)[-OTHER_SERIES_SHOWN:]
    shown = ", ".join(f"{unit.result(v)} {unit.label} ({day(v.day)})" for v in reversed(newest))
    rising = (
        " They are rising: measure the usual series in the usual laboratory."
        if (other.rising)
        else ""
    )
    return f"Newer {SERIES_NAMES[other.series]} results (another method): {shown}.{rising}"


def _duration_sentence(assessment: Assessment) -> str | None:
    """§4 step 8: on a PD card, how long the response before it lasted (a fact; retreatment
    choices weigh it, IWWM-7)."""
    duration = assessment.response_duration
    if duration is None:
        return None
    label = category_label(duration.category)
    months = (
        "less than a month"
        if duration.months == 0
        else f"{duration.months} month{'' if duration.months == 1 else 's'}"
    )
    return (
        f"The progression came after a {label[0].lower()}{label[1:]} lasting {months} "
        f"(from {day(duration.since)} to {day(duration.until)})."
    )


def _suppressed_sentence(assessment: Assessment) -> str | None:
    """§4.7: the rise a window held back, said, never hidden behind the category."""
    suppressed = assessment.rise_suppressed
    if suppressed is None or assessment.percent_change_from_nadir is None:
        return None
    series = SERIES_NAMES.get(assessment.series, "IgM") if assessment.series else "IgM"
    when = "after" if suppressed.recovery else "during"
    window = WINDOW_WORDS[suppressed.window][0]
    repeat = f", repeat after {day(suppressed.until)}" if suppressed.until else ""
    rise = signed_percent(assessment.percent_change_from_nadir)
    return f"{series} {rise} from nadir {when} {window}{repeat}."


def _hyperviscosity_sentence(assessment: Assessment, unit: DisplayUnit) -> str | None:
    """§7: the value behind the caveat, or an old high IgM that was not re-measured."""
    finding = assessment.hyperviscosity
    if finding is not None and finding.warning_card:
        return None  # the warning card says it (§7: otherwise a sentence on this card)
    if finding is not None:
        value = finding.reference_value
        return (
            f"Hyperviscosity reference: {SERIES_NAMES[value.series]} "
            f"{unit.result(value)} {unit.label} "
            f"on {day(value.day)}."
        )
    old = assessment.old_high_igm
    if old is not None:
        return (
            f"Last IgM >= {unit.figure(Decimal(4000))} {unit.label}: "
            f"{unit.result(old)} {unit.label} on {day(old.day)}, "
            "not re-measured since."
        )
    return None


def response_detail(assessment: Assessment, context: CardContext) -> str:
    unit = context.unit
    if assessment.line is None:
        # §4.10: the trend of an untreated patient: first and latest, never a nadir
        first = assessment.change_since_first.since if assessment.change_since_first else None
        points = [_point("First", first, unit), _point("Latest", assessment.latest, unit)]
    else:
        points = [
            _point("Baseline", assessment.baseline, unit),
            _point("Nadir", assessment.nadir, unit),
            _point("Latest", assessment.latest, unit),
        ]
    excluded = list(assessment.excluded)
    latest = assessment.latest
    since = assessment.response_since
    is_pd = assessment.category == Category.PD
    return render(
        "response_detail.md.j2",
        label=category_label(assessment.category),
        criteria=assessment.criteria,
        treated=assessment.line is not None,
        series_name=SERIES_NAMES.get(assessment.series) if assessment.series else None,
        reason=assessment.reason,
        is_ne=assessment.category == Category.NE,
        points=[p for p in points if p],
        change=percent(assessment) if assessment.percent_change is not None else None,
        rise=(
            signed_percent(assessment.percent_change_from_nadir)
            if is_pd and assessment.percent_change_from_nadir is not None
            else None
        ),
        confirmed=day(assessment.progression_confirmed) if is_pd else None,
        fallen_to=(
            _point("Latest", latest, unit) if Caveat.PD_THEN_FALL in assessment.caveats else None
        ),
        unit=unit.label,
        floor=(
            unit.figure(assessment.progression_floor_mg_dl)
            if assessment.progression_floor_mg_dl is not None
            else None
        ),
        sub_floor=(
            {
                "rise": signed_percent(assessment.percent_change_from_nadir),
                "amount": unit.figure(assessment.rise_below_floor),
            }
            if assessment.rise_below_floor is not None
            and assessment.percent_change_from_nadir is not None
            else None
        ),
        after_cr=assessment.rise_after_cr,
        line=_line_status(assessment, unit),
        since=day(since) if since else None,
        best=(
            f"Best response {assessment.best_response.category.value} since "
            f"{day(assessment.best_response.since)}."
            if assessment.best_response
            else None
        ),
        suppressed=_suppressed_sentence(assessment),
        duration=_duration_sentence(assessment),
        trend=_trend_sentences(assessment, unit),
        unrecognised=_unrecognised_sentences(assessment, unit),
        other_series=_other_series_sentence(assessment, unit),
        cr_lost=(
            f"CR lost since {day(assessment.cr_lost)}: the monoclonal protein was found again "
            f"on {day(assessment.cr_lost)} and {day(assessment.cr_lost_confirmed)}."
            if assessment.cr_lost
            else None
        ),
        resume_repeat=(
            f"Repeat IgM 4 weeks after {escape_markdown(assessment.held_drug)} is resumed."
            if assessment.held_drug
            and assessment.rise_suppressed is not None
            and assessment.category == Category.NE
            else None
        ),
        withdrawal=(
            f"{escape_markdown(assessment.withdrawal.ingredient).capitalize()} was stopped on "
            f"{day(assessment.withdrawal.stopped)}; IgM can rebound for weeks after a BTK "
            f"inhibitor is stopped, into the next regimen (window until "
            f"{day(assessment.withdrawal.until)})."
            if assessment.withdrawal
            else None
        ),
        durable=assessment.durable,
        since_is_latest=bool(latest and since == latest.day),
        held_months=whole_months(since, latest.day) if since and latest else 0,
        immunofixation=_immunofixation(assessment),
        uln=unit.figure(assessment.uln_mg_dl) if assessment.uln_mg_dl is not None else None,
        uln_is_default=assessment.uln_is_default,
        held_back=[_point("Held back", value, unit) for value in assessment.held_back],
        discordances=[
            {"day": day(d.day), "low": unit.figure(d.low), "high": unit.figure(d.high)}
            for d in assessment.discordances
        ],
        hyperviscosity=_hyperviscosity_sentence(assessment, unit),
        caveats=[
            {
                "code": caveat.value,
                "sentence": caveat_text(caveat.value).sentence,
                "url": caveat_url(context.base_url, caveat),
            }
            for caveat in assessment.caveats
        ],
        excluded=[
            {"reference": escape_markdown(item.reference), "reason": escape_markdown(item.reason)}
            for item in excluded[:EXCLUDED_SHOWN]
        ],
        excluded_more=max(0, len(excluded) - EXCLUDED_SHOWN),
        is_pd=is_pd,
        not_checked=not_checked(context),
        untreated_incomplete=(
            assessment.line is None and records_not_all_read(assessment, context.unavailable)
        ),
    )


def _immunofixation(assessment: Assessment) -> str | None:
    ife = assessment.latest_immunofixation
    if ife is None:
        return None
    return f"{ife.reading.value} ({day(ife.day)})"


def not_checked(context: CardContext, only: tuple[str, ...] | None = None) -> list[str]:
    """What could not be read, or was returned in part, one sentence per prefetch key (of
    `only`, when given)."""
    sentences = []
    for key in context.unavailable:
        if only is not None and key not in only:
            continue
        texts = NOT_ALL_RETURNED if key in context.incomplete else NOT_CHECKED
        if key in texts:
            sentences.append(texts[key])
    return sentences


# Cards -----------------------------------------------------------------------------------


def is_warning(assessment: Assessment) -> bool:
    """contract.md: `warning` for PD, for a confirmed PD on a line of unknown regimen, and
    whenever unconfirmed-progression applies."""
    return (
        assessment.category == Category.PD
        or assessment.progression_confirmed is not None
        or Caveat.UNCONFIRMED_PROGRESSION in assessment.caveats
    )


def response_card(assessment: Assessment, context: CardContext) -> dict[str, Any]:
    links = [caveat_link(context, caveat) for caveat in assessment.caveats]
    links.append(
        {
            "label": "IWWM-6 response criteria (Owen et al. 2013)",
            "url": CRITERIA_URL,
            "type": "absolute",
        }
    )
    if context.smart_launch_url:
        links.append(
            {
                "label": "IgM course over time (app)",
                "url": context.smart_launch_url,
                "type": "smart",
            }
        )
    card: dict[str, Any] = {
        "uuid": new_card_uuid(),
        "summary": response_summary(assessment, context.today, context.unavailable, context.unit),
        "detail": response_detail(assessment, context),
        "indicator": "warning" if is_warning(assessment) else "info",
        "source": {
            "label": CRITERIA_SOURCE,
            "url": CRITERIA_URL,
            "topic": topic("wm-igm-response", "Waldenström macroglobulinemia IgM response"),
        },
        "links": links,
        "overrideReasons": override_reasons(RESPONSE_OVERRIDES),
        "extension": assessment_extension(assessment, context.unavailable),
    }
    suggestions = [_repeat_igm(assessment, context)]
    # contract v3: the assessment as mCODE disease status, beside the repeat IgM; not when
    # the results were returned in part (the status could say more than the data)
    if "observations" not in context.unavailable:
        suggestions.append(record_status_suggestion(assessment, context.patient_id))
    chosen = [suggestion for suggestion in suggestions if suggestion is not None]
    if chosen:
        card["suggestions"] = chosen
        card["selectionBehavior"] = "any" if len(chosen) > 1 else "at-most-one"
    return card


def _repeat_igm(assessment: Assessment, context: CardContext) -> dict[str, Any] | None:
    """contract.md: a repeat serum IgM on unconfirmed progression, a sub-floor rise and a
    suppressed rise (dated after the window only when progression is not unconfirmed)."""
    if Caveat.UNCONFIRMED_PROGRESSION in assessment.caveats:
        return repeat_igm_suggestion(context.patient_id)
    suppressed = assessment.rise_suppressed
    if suppressed is not None:
        return repeat_igm_suggestion(context.patient_id, suppressed.until)
    if assessment.rise_below_floor is not None:
        return repeat_igm_suggestion(context.patient_id)
    return None


def hyperviscosity_card(finding: Hyperviscosity, context: CardContext) -> dict[str, Any]:
    """§7: a separate warning card, only when the risk is near."""
    value = finding.reference_value
    unit = context.unit
    series = SERIES_NAMES[value.series]
    threshold = unit.figure(Decimal(4000 if value.series == Series.TOTAL_IGM else 3000))
    method = "nephelometry" if value.series == Series.TOTAL_IGM else "electrophoresis"
    card: dict[str, Any] = {
        "uuid": new_card_uuid(),
        "summary": (
            f"Hyperviscosity risk: {series} {unit.result(value)} {unit.label} on "
            f"{day(value.day)} (>= {threshold} {unit.label})"
        ),
        "detail": render(
            "hyperviscosity_detail.md.j2",
            series=series,
            value=unit.result(value),
            unit=unit.label,
            method=method,
            day=day(value.day),
            threshold=threshold,
            flare=finding.anti_cd20_recent,
            viscosity=(
                {
                    "text": escape_markdown(finding.latest_viscosity.text),
                    "day": day(finding.latest_viscosity.day),
                }
                if finding.latest_viscosity
                else None
            ),
            order_due=finding.viscosity_order_due,
            exchange=day(finding.recent_plasmapheresis) if finding.recent_plasmapheresis else None,
        ),
        "indicator": "warning",
        "source": {
            "label": "Gustine et al., Br J Haematol 2017: serum IgM and symptomatic hyperviscosity",
            "url": "https://pubmed.ncbi.nlm.nih.gov/28485115/",
            "topic": topic("hyperviscosity-risk", "Hyperviscosity risk"),
        },
        "links": [caveat_link(context, Caveat.HYPERVISCOSITY_RISK)],
        "overrideReasons": override_reasons(HYPERVISCOSITY_OVERRIDES),
    }
    if finding.viscosity_order_due:
        card["suggestions"] = [serum_viscosity_suggestion(context.patient_id)]
        card["selectionBehavior"] = "at-most-one"
    return card


MONITORING_MONTHS = {92: 3, 122: 4, 183: 6, 365: 12}
MONITORING_EXTENSION = "wm-igm-monitoring"


def _state_sentence(due: MonitoringDue) -> str:
    """§6: the sentence of the patient's state; never "On therapy" for an ended line."""
    months = MONITORING_MONTHS.get(due.interval_days)
    expected = (
        f"IgM expected every {months} months"
        if months
        else f"IgM expected every {due.interval_days} days"
    )
    line = due.line
    regimen = escape_markdown(" + ".join(line.regimen)) if line else ""
    if due.state == MonitoringState.PROGRESSION_OFF_THERAPY:
        return (
            f"Progression confirmed {day(due.progression_confirmed)} after {regimen} "
            f"(ended {day(due.line_ended)}); {expected}"
        )
    if due.state == MonitoringState.OFF_THERAPY:
        return f"Off therapy since {day(due.line_ended)} ({regimen}); {expected}"
    if due.state == MonitoringState.ON_THERAPY and line is not None:
        return f"On therapy since {day(line.start)} ({regimen}); {expected}"
    return f"No WM treatment recorded; {expected}"


def _monitoring_summary(due: MonitoringDue) -> str:
    if due.reason == MonitoringReason.TOTAL_IGM_DUE:
        return f"Total IgM due: last measured {day(due.last_result_day)}; only the M-spike since"
    head = f"WM monitoring due: serum IgM expected every {due.interval_days} days; "
    if due.last_result_day is not None:
        return head + f"last result {due.days_since} days ago"
    where = " since line start" if due.line is not None else ""
    if due.unusable_count:
        return head + f"{due.unusable_count}{where} could not be used"
    return head + ("none since line start" if due.line is not None else "none recorded")


def monitoring_extension(due: MonitoringDue) -> dict[str, Any]:
    body: dict[str, Any] = {
        "state": due.state.value,
        "intervalDays": due.interval_days,
        "reason": due.reason.value,
    }
    if due.last_result_day is not None:
        body["lastResult"] = due.last_result_day.isoformat()
    if due.days_since is not None:
        body["daysSince"] = due.days_since
    if due.unusable_count:
        body["unusableResults"] = due.unusable_count
    return {MONITORING_EXTENSION: body}


def monitoring_card(
    due: MonitoringDue, context: CardContext, profile: CriteriaProfile, suggest: bool
) -> dict[str, Any]:
    """§6 and contract "Monitoring card"."""
    last_days = (
        (context.today - due.last_result_day).days if due.last_result_day is not None else None
    )
    card: dict[str, Any] = {
        "uuid": new_card_uuid(),
        "summary": _monitoring_summary(due),
        "detail": render(
            "monitoring_detail.md.j2",
            state_sentence=_state_sentence(due),
            total_igm=due.reason == MonitoringReason.TOTAL_IGM_DUE,
            last_day=day(due.last_result_day) if due.last_result_day else None,
            last_days=last_days,
            since_line=due.line is not None and due.days_since is not None,
            days_since=due.days_since,
            unusable_count=due.unusable_count,
            unusable_since=day(due.unusable_since) if due.unusable_since else None,
            unusable_reason=escape_markdown(due.unusable_reason or ""),
            not_checked=not_checked(context, only=("observations",)),
        ),
        "indicator": "info",
        "source": {
            "label": "WM follow-up: BSH 2022 (Pratt et al.), ESMO 2018; interval by state "
            "(service design, clinical-rules §6)",
            "url": "https://doi.org/10.1111/bjh.18036",
            "topic": topic("monitoring-due", "IgM monitoring due"),
        },
        "overrideReasons": override_reasons(MONITORING_OVERRIDES),
        "extension": monitoring_extension(due),
    }
    if suggest:
        card["suggestions"] = [monitoring_igm_suggestion(context.patient_id)]
        card["selectionBehavior"] = "at-most-one"
    return card


def build_cards(
    assessment: Assessment | None,
    due: MonitoringDue | None,
    context: CardContext,
    profile: CriteriaProfile,
) -> list[dict[str, Any]]:
    """The response card (when there is IgM data or a WM drug), then the warnings."""
    if assessment is None:
        return []
    cards = []
    has_data = (
        assessment.latest is not None or assessment.line is not None or bool(assessment.unusable)
    )
    if has_data:
        cards.append(response_card(assessment, context))
        finding = assessment.hyperviscosity
        if finding is not None and finding.warning_card:
            cards.append(hyperviscosity_card(finding, context))
    if due is not None:
        # §3.7: a WM diagnosis with no result yet gets this card alone. The same order is
        # never suggested twice in one response.
        suggested = bool(cards) and any(
            action.get("resource", {}).get("resourceType") == "ServiceRequest"
            for suggestion in cards[0].get("suggestions", [])
            for action in suggestion["actions"]
        )
        cards.append(monitoring_card(due, context, profile, suggest=not suggested))
    return cards


def card_facts(card: dict[str, Any]) -> tuple[str, str | None]:
    """(kind, category) of a card this module built: the kind is its topic code."""
    kind = card.get("source", {}).get("topic", {}).get("code", "unknown")
    assessment = card.get("extension", {}).get("wm-igm-assessment") or {}
    return kind, assessment.get("category")
