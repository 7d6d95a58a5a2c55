"""The trend app's pages: the chart first, then the assessment in words (HTML, no script).

The page is self-contained (inline SVG and style, no script, no external resource), so it
works on offline workstations and under a strict Content-Security-Policy. It carries no
token and no link back to the FHIR server.
"""

from __future__ import annotations

from datetime import date
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt

from cards.build import CRITERIA_SOURCE, CRITERIA_URL
from cards.text import DisplayUnit

from ..clinical.criteria import CriteriaProfile
from ..clinical.models import Assessment, LabResult
from ..hooks.service import TrendView
from .chart import NARROW, WIDE, build_chart, thresholds

# Where the drawn windows come from (clinical-rules.md §4.6, §3.6), for the legend.
FLARE_SOURCE = (
    "Ghobrial et al., Cancer 2004 (IgM flare after rituximab)",
    "https://pubmed.ncbi.nlm.nih.gov/15493038/",
)
KEY_NAMES = {
    "observations": "laboratory results",
    "medicationStatements": "medication statements",
    "medicationRequests": "medication orders",
    "medicationAdministrations": "medication administrations",
    "procedures": "procedures (plasma exchange)",
    "conditions": "the problem list (WM diagnosis)",
    "patient": "the patient record",
}


@cache
def _templates() -> Environment:
    return Environment(
        loader=PackageLoader("cds_service.smart", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        auto_reload=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})


def _distances(assessment: Assessment, profile: CriteriaProfile, unit: DisplayUnit) -> list[str]:
    latest = assessment.latest
    if latest is None:
        return []
    lines = []
    for kind, label, level in thresholds(assessment, profile):
        if kind not in ("pr", "progression"):
            continue
        gap = latest.value_mg_dl - level
        where = "above" if gap > 0 else "below" if gap < 0 else "at"
        amount = f"{unit.level(abs(gap))} {unit.label} " if gap else ""
        lines.append(
            f"Latest {unit.result(latest)} {unit.label} ({latest.day.isoformat()}) is "
            f"{amount}{where} the {label.split(':')[0].upper() if kind == 'pr' else 'progression'}"
            f" line ({unit.level(level)} {unit.label}; {label.split(': ', 1)[1]})."
        )
    return lines


def _rows(assessment: Assessment, unit: DisplayUnit) -> list[dict[str, str]]:
    """Every value the rules used, newest first: the chart's text alternative."""
    return [
        {
            "date": result.day.isoformat(),
            "value": f"{unit.result(result)} {unit.label}",
            "note": _note(result, assessment),
        }
        for result in reversed(assessment.values)
    ]


def _note(result: LabResult, assessment: Assessment) -> str:
    notes = []
    for role, marked in (
        ("baseline", assessment.baseline),
        ("nadir", assessment.nadir),
        ("latest", assessment.latest),
    ):
        if marked is not None and marked.reference == result.reference:
            notes.append(role)
    if result.comparator in ("<", "<="):
        notes.append("upper bound: the true value is at most this")
    elif result.comparator in (">", ">="):
        notes.append("lower bound: the true value is at least this")
    return ", ".join(notes)


def render_trend(view: TrendView, profile: CriteriaProfile, today: date) -> str:
    assessment = view.assessment
    unit = view.context.unit
    plasmaphereses = view.record.plasmaphereses
    wide = build_chart(assessment, plasmaphereses, profile, today, unit, WIDE)
    narrow = build_chart(assessment, plasmaphereses, profile, today, unit, NARROW)
    card = view.cards[0] if view.cards else None
    return (
        _templates()
        .get_template("trend.html")
        .render(
            wide=wide,
            narrow=narrow,
            summary=card["summary"] if card else None,
            indicator=card["indicator"] if card else "info",
            detail=_markdown().render(card["detail"]) if card and card.get("detail") else "",
            distances=_distances(assessment, profile, unit),
            rows=_rows(assessment, unit),
            excluded=assessment.excluded,
            unavailable=[
                KEY_NAMES.get(key, key) for key in view.unavailable if key not in view.incomplete
            ],
            incomplete=[KEY_NAMES.get(key, key) for key in view.incomplete],
            patient_id=view.context.patient_id,
            banner=view.banner,
            today=today.isoformat(),
            criteria_source=CRITERIA_SOURCE,
            criteria_url=CRITERIA_URL,
            flare_source=FLARE_SOURCE,
            other_cards=[c["summary"] for c in view.cards[1:]],
            series_name="M-spike"
            if assessment.series and assessment.series.value == "m-spike"
            else "IgM",
        )
    )


def render_problem(message: str, title: str = "The IgM course cannot be shown") -> str:
    return _templates().get_template("problem.html").render(title=title, message=message)
