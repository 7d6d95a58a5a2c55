"""Wording shared by the cards: category names, numbers, and escaping of untrusted text."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from cds_service.clinical.assessment import displayed_percent
from cds_service.clinical.models import Assessment, Category, Series

CATEGORY_NAMES = {
    Category.CR: "Complete response",
    Category.VGPR: "Very good partial response",
    Category.PR: "Partial response",
    Category.MR: "Minor response",
    Category.SD: "Stable disease",
    Category.PD: "Progressive disease",
    Category.NE: "Not evaluable",
}
SERIES_NAMES = {Series.TOTAL_IGM: "IgM", Series.M_SPIKE: "M-spike"}

# Characters that mean something in GitHub-flavoured markdown or in HTML (the CDS Hooks
# sandbox renders raw HTML in `detail`).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def escape_markdown(text: object) -> str:
    """Make text from the EHR inert in markdown and HTML, on one line."""
    flat = _CONTROL.sub(" ", str(text))
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
    return "".join(_HTML_SPECIAL.get(ch, ch) for ch in escaped)


def category_label(category: Category) -> str:
    return f"{CATEGORY_NAMES[category]} ({category.value})"


def mg_dl(value: Decimal) -> str:
    """5100, 2233, 22.5: no trailing zeros, no exponent."""
    text = format(value.normalize(), "f")
    return text


def bounded(value: Decimal, upper_bound: bool, lower_bound: bool = False) -> str:
    return ("<" if upper_bound else ">" if lower_bound else "") + mg_dl(value)


def percent(assessment: Assessment) -> str:
    """'-56.2%' (or '-99.0% or more' when the latest value is an upper bound)."""
    assert assessment.percent_change is not None
    shown = displayed_percent(assessment.percent_change)
    sign = "+" if shown > 0 else ""
    text = f"{sign}{shown:.1f}%"
    return f"{text} or more" if assessment.change_is_bound else text


def day(value: date | None) -> str:
    return value.isoformat() if value else "unknown"
