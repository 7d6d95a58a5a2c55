"""Assessment -> CDS Hooks cards (contract.md, "Cards").

The wording lives in `templates/` (markdown) and `caveats/` (one file per caveat); this
module chooses what to say and fills in the numbers. Text that came from the EHR is
escaped before it reaches markdown: the CDS Hooks sandbox renders raw HTML in `detail`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from cds_service.clinical.assessment import displayed_percent
from cds_service.clinical.criteria import CriteriaProfile
from cds_service.clinical.models import (
    Assessment,
    Category,
    Caveat,
    MonitoringDue,
    Progression,
)

from .caveat_pages import caveat_text
from .extension import assessment_extension
from .suggestions import repeat_igm_suggestion, serum_viscosity_suggestion
from .text import SERIES_NAMES, bounded, category_label, day, escape_markdown, mg_dl, percent

SUMMARY_LIMIT = 139  # CDS Hooks: summary < 140 characters
EXCLUDED_SHOWN = 20
CRITERIA_URL = "https://doi.org/10.1111/bjh.12102"
CRITERIA_SOURCE = "IWWM-6 consensus response criteria (Owen et al., Br J Haematol 2013)"
TOPIC_SYSTEM = "urn:wm-igm-cds:topic"
OVERRIDE_SYSTEM = "urn:wm-igm-cds:override-reason"
OVERRIDE_REASONS = (
    ("marrow-assessed", "Response already assessed by bone marrow or imaging"),
    ("data-incomplete", "IgM or treatment data in the EHR are incomplete"),
    ("clinical-judgement", "Clinical picture differs; acting on clinical judgement"),
)


@dataclass(frozen=True)
class CardContext:
    """What the cards need to know besides the assessment."""

    patient_id: str
    base_url: str  # absolute, no trailing slash: links to /caveats/<code>
    today: date


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


def _render(name: str, **values: Any) -> str:
    text = _templates().get_template(name).render(**values)
    lines = [line.rstrip() for line in text.strip().splitlines()]
    # Sections are separated by one blank line however many conditional blocks were empty.
    return _BLANK_LINES.sub("\n\n", "\n".join(lines))


def caveat_url(base_url: str, caveat: Caveat) -> str:
    return f"{base_url}/caveats/{caveat.value}"


def _source(topic_code: str, topic_display: str) -> dict[str, Any]:
    return {
        "label": CRITERIA_SOURCE,
        "url": CRITERIA_URL,
        "topic": {"system": TOPIC_SYSTEM, "code": topic_code, "display": topic_display},
    }


def _override_reasons() -> list[dict[str, str]]:
    return [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": display}
        for code, display in OVERRIDE_REASONS
    ]


# Summary ---------------------------------------------------------------------------------


def _regimen_variants(regimen: tuple[str, ...]) -> list[str]:
    if not regimen:
        return [""]
    variants = [" on " + " + ".join(regimen)]
    if len(regimen) > 1:
        variants.append(f" on {regimen[0]} + {len(regimen) - 1} more")
    variants.append("")
    return variants


def _rise_from_nadir(assessment: Assessment) -> str | None:
    nadir, latest = assessment.nadir, assessment.latest
    if nadir is None or latest is None or nadir.value_mg_dl <= 0 or latest.upper_bound:
        return None
    rise = (Fraction(latest.value_mg_dl) - Fraction(nadir.value_mg_dl)) / Fraction(
        nadir.value_mg_dl
    )
    return f"+{displayed_percent(rise * 100):.1f}%"


def response_summary(assessment: Assessment) -> str:
    """Category in words and abbreviation, criteria, change and values, then the regimen;
    shorter wording (never a cut word) when it would pass 139 characters."""
    head = f"{category_label(assessment.category)}, {assessment.criteria}"
    series = SERIES_NAMES.get(assessment.series, "IgM") if assessment.series else "IgM"
    regimen = assessment.line.regimen if assessment.line else ()
    facts: list[str] = []
    baseline, latest, nadir = assessment.baseline, assessment.latest, assessment.nadir
    if assessment.category == Category.PD and nadir and latest:
        rise = _rise_from_nadir(assessment)
        facts = [
            f": {series} {rise} from nadir ({mg_dl(nadir.value_mg_dl)} -> "
            f"{mg_dl(latest.value_mg_dl)} mg/dL)",
            f": {series} {rise} from nadir",
        ]
    elif assessment.percent_change is not None and baseline and latest:
        change = percent(assessment)
        values = (
            f"({mg_dl(baseline.value_mg_dl)} -> "
            f"{bounded(latest.value_mg_dl, latest.upper_bound)} mg/dL)"
        )
        facts = [f": {series} {change} {values}", f": {series} {change}"]
    elif assessment.reason:
        facts = [f": {assessment.reason}", ""]
    facts.append("")
    for fact in facts:
        for regimen_text in _regimen_variants(regimen):
            if assessment.category == Category.NE and assessment.reason and regimen_text:
                continue  # "Not evaluable: no baseline ... on X" reads oddly; the detail has it
            summary = head + fact + regimen_text
            if len(summary) <= SUMMARY_LIMIT:
                return summary
    return head[:SUMMARY_LIMIT]


# Detail ----------------------------------------------------------------------------------


def _months_between(first: date, last: date) -> int:
    months = (last.year - first.year) * 12 + last.month - first.month
    return months - (last.day < first.day)


def _immunofixation(assessment: Assessment) -> str | None:
    ife = assessment.latest_immunofixation
    if ife is None:
        return None
    return f"{'negative' if ife.negative else 'positive'} ({day(ife.day)})"


def response_detail(assessment: Assessment, context: CardContext) -> str:
    rows = []
    for name, result in (
        ("Baseline", assessment.baseline),
        ("Nadir", assessment.nadir),
        ("Latest", assessment.latest),
    ):
        if result is not None:
            rows.append(
                {
                    "name": name,
                    "value": escape_markdown(bounded(result.value_mg_dl, result.upper_bound)),
                    "day": day(result.day),
                }
            )
    excluded = list(assessment.excluded)
    latest = assessment.latest
    return _render(
        "response_detail.md.j2",
        label=category_label(assessment.category),
        criteria=assessment.criteria,
        series_name=SERIES_NAMES.get(assessment.series) if assessment.series else None,
        reason=assessment.reason,
        rows=rows,
        change=percent(assessment) if assessment.percent_change is not None else None,
        rise=_rise_from_nadir(assessment) if assessment.category == Category.PD else None,
        regimen=" + ".join(assessment.line.regimen) if assessment.line else None,
        therapy_start=day(assessment.therapy_start),
        since=day(assessment.response_since) if assessment.response_since else None,
        durable=assessment.durable,
        since_is_latest=bool(latest and assessment.response_since == latest.day),
        held_months=(
            _months_between(assessment.response_since, latest.day)
            if assessment.response_since and latest
            else 0
        ),
        immunofixation=_immunofixation(assessment),
        uln=mg_dl(assessment.uln_mg_dl) if assessment.uln_mg_dl is not None else None,
        uln_is_default=assessment.uln_is_default,
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
    )


# Cards -----------------------------------------------------------------------------------


def _links(assessment: Assessment, context: CardContext) -> list[dict[str, str]]:
    links = [
        {
            "label": caveat_text(caveat.value).title,
            "url": caveat_url(context.base_url, caveat),
            "type": "absolute",
        }
        for caveat in assessment.caveats
    ]
    links.append(
        {
            "label": "IWWM-6 response criteria (Owen et al. 2013)",
            "url": CRITERIA_URL,
            "type": "absolute",
        }
    )
    return links


def response_card(assessment: Assessment, context: CardContext) -> dict[str, Any]:
    warning = assessment.category == Category.PD or (assessment.progression == Progression.POSSIBLE)
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": response_summary(assessment),
        "detail": response_detail(assessment, context),
        "indicator": "warning" if warning else "info",
        "source": _source("wm-igm-response", "Waldenström macroglobulinemia IgM response"),
        "links": _links(assessment, context),
        "overrideReasons": _override_reasons(),
        "extension": assessment_extension(assessment),
    }
    if Caveat.UNCONFIRMED_PROGRESSION in assessment.caveats:
        card["suggestions"] = [repeat_igm_suggestion(context.patient_id)]
        card["selectionBehavior"] = "at-most-one"
    return card


def hyperviscosity_card(assessment: Assessment, context: CardContext) -> dict[str, Any]:
    latest = assessment.latest_total_igm
    assert latest is not None
    value = bounded(latest.value_mg_dl, latest.upper_bound, latest.lower_bound)
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"Hyperviscosity risk: IgM {value} mg/dL on {day(latest.day)} (>= 4000 mg/dL)",
        "detail": _render(
            "hyperviscosity_detail.md.j2",
            value=escape_markdown(value),
            day=day(latest.day),
            threshold=4000,
            flare=Caveat.ANTI_CD20_FLARE in assessment.caveats,
        ),
        "indicator": "warning",
        "source": {
            "label": "Stone & Bogen, Blood 2012: hyperviscosity in WM",
            "topic": {
                "system": TOPIC_SYSTEM,
                "code": "hyperviscosity-risk",
                "display": "Hyperviscosity risk",
            },
        },
        "links": [
            {
                "label": caveat_text(Caveat.HYPERVISCOSITY_RISK.value).title,
                "url": caveat_url(context.base_url, Caveat.HYPERVISCOSITY_RISK),
                "type": "absolute",
            }
        ],
        "suggestions": [serum_viscosity_suggestion(context.patient_id)],
        "selectionBehavior": "at-most-one",
        "overrideReasons": _override_reasons(),
    }


def monitoring_card(
    due: MonitoringDue, context: CardContext, profile: CriteriaProfile
) -> dict[str, Any]:
    last = (
        f"last result {due.days_since} days ago" if due.last_result_day else "none since line start"
    )
    return {
        "uuid": str(uuid.uuid4()),
        "summary": f"WM monitoring due: serum IgM expected every {due.interval_days} days; {last}",
        "detail": _render(
            "monitoring_detail.md.j2",
            line_start=day(due.line_start),
            expected="3 months" if due.interval_days <= 92 else "4 to 6 months",
            last_day=day(due.last_result_day) if due.last_result_day else None,
            days_since=due.days_since,
            early_interval=profile.monitoring_early_interval_days,
            early_years=profile.monitoring_early_years,
            late_interval=profile.monitoring_late_interval_days,
        ),
        "indicator": "info",
        "source": {
            "label": "IgM monitoring interval (service design, clinical-rules §6)",
            "topic": {
                "system": TOPIC_SYSTEM,
                "code": "monitoring-due",
                "display": "IgM monitoring due",
            },
        },
        "suggestions": [repeat_igm_suggestion(context.patient_id)],
        "selectionBehavior": "at-most-one",
        "overrideReasons": _override_reasons(),
    }


def build_cards(
    assessment: Assessment | None,
    due: MonitoringDue | None,
    context: CardContext,
    profile: CriteriaProfile,
) -> list[dict[str, Any]]:
    """The response card (when there is IgM data or a WM drug), then the warnings."""
    if assessment is None:
        return []
    has_data = assessment.latest is not None or assessment.line is not None
    if not has_data:
        return []
    cards = [response_card(assessment, context)]
    if Caveat.HYPERVISCOSITY_RISK in assessment.caveats:
        cards.append(hyperviscosity_card(assessment, context))
    if due is not None:
        cards.append(monitoring_card(due, context, profile))
    return cards
