"""Wording shared by the cards: category names, numbers, and escaping of untrusted text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from cds_service.clinical.change import displayed_percent
from cds_service.clinical.models import Assessment, Category, LabResult, Series

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
_MARKDOWN_SPECIAL = "\\`*_{}[]()#+!|~>-"
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
# One table does both: a markdown special gets a backslash, then HTML specials become
# entities (">" becomes "\\&gt;", as escaping in two passes would make it).
_ESCAPES = str.maketrans(
    {
        **_HTML_SPECIAL,
        **{ch: "\\" + _HTML_SPECIAL.get(ch, ch) for ch in _MARKDOWN_SPECIAL},
    }
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# Markdown renderers turn URLs and addresses in plain text into links (GFM's autolinks,
# linkify): a zero-width space breaks each trigger, so text from the EHR never becomes a link
# (contract v3) and still reads the same.
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(?=://)|(?<=\bwww)(?=\.)|(?<=[\w.+-])(?=@)")
_ZERO_WIDTH_SPACE = "\u200b"


def escape_markdown(text: object) -> str:
    """Make text from the EHR inert in markdown and HTML, on one line, never a link."""
    escaped = _CONTROL.sub(" ", str(text)).translate(_ESCAPES)
    if ":" in escaped or "@" in escaped or "www" in escaped or "WWW" in escaped:
        escaped = _AUTOLINK.sub(_ZERO_WIDTH_SPACE, escaped)
    return escaped


def category_label(category: Category) -> str:
    return f"{CATEGORY_NAMES[category]} ({category.value})"


def mg_dl(value: Decimal) -> str:
    """5100, 2233, 22.5: no trailing zeros, no exponent."""
    text = format(value.normalize(), "f")
    return text


@dataclass(frozen=True)
class DisplayUnit:
    """The unit cards show values in (CDS_DISPLAY_UNIT); the extension is always mg/dL."""

    label: str
    per_mg_dl: Decimal  # a value in this unit is the mg/dL value times this

    def figure(self, value_mg_dl: Decimal) -> str:
        return mg_dl(value_mg_dl * self.per_mg_dl)

    def level(self, value_mg_dl: Decimal) -> str:
        """A derived level (a threshold, a distance): to a whole mg/dL, as results are shown
        ('2791.25' is 2791; in g/L, 27.91)."""
        whole = value_mg_dl.quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return self.figure(whole)

    def result(self, result: LabResult) -> str:
        """'5100', '<25', '>7000': safe in markdown mid-line (a comparator is never at the
        start of a line, and '<2' is no HTML tag)."""
        return (result.comparator or "") + self.figure(result.value_mg_dl)


MG_DL = DisplayUnit("mg/dL", Decimal(1))
G_L = DisplayUnit("g/L", Decimal("0.01"))  # UK and European laboratories report IgM in g/L
DISPLAY_UNITS = {unit.label: unit for unit in (MG_DL, G_L)}


def signed_percent(change: Fraction, is_bound: bool = False) -> str:
    """'-56.2%', '+38.8%', or '-99.0% or more' when the change is a bound."""
    shown = displayed_percent(change)
    sign = "+" if shown > 0 else ""
    text = f"{sign}{shown:.1f}%"
    return f"{text} or more" if is_bound else text


def percent(assessment: Assessment) -> str:
    assert assessment.percent_change is not None
    return signed_percent(assessment.percent_change, assessment.change_is_bound)


def day(value: date | None) -> str:
    return value.isoformat() if value else "unknown"
