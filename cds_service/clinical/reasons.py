"""The words an assessment gives when it cannot categorise, or qualifies a category
(clinical-rules.md §4: the `reason` of an NE, and of a rise held back or unconfirmed)."""

from __future__ import annotations

from collections import Counter
from datetime import date

from .models import (
    Series,
    UnusableResult,
)

NO_TREATMENT = "no WM treatment found"
NO_RESULTS = "no IgM or M-spike results"
NO_ON_TREATMENT_RESULT = "no on-treatment result yet"
ALL_AFTER_PLASMAPHERESIS = (
    "every result since therapy start was measured within {days} days after plasmapheresis"
)
LATEST_AFTER_PLASMAPHERESIS = (
    "the latest result was measured within {days} days after plasmapheresis"
)
NO_BASELINE = "no usable {series} result in the {days} days up to therapy start ({start})"
BASELINE_ABOVE_RANGE = "baseline above the reporting range"
LATEST_ABOVE_RANGE = (
    "the latest {series} is above the laboratory's reporting range: ask for a diluted result"
)
RISE_UNCONFIRMED = "rise not yet confirmed: repeat {series}"
RISE_IN_FLARE = "{series} rose during the anti-CD20 flare window (until {until})"
RISE_IN_HOLD = "{series} rose during or just after a BTK-inhibitor hold (until {until})"
RISE_IN_RECOVERY = (
    "{series} falling after the flare or hold window (until {until}): repeat {series}"
)
RISE_IN_WITHDRAWAL = (
    "{series} rose during BTK-inhibitor withdrawal ({drug} stopped {stopped}; until {until})"
)
RISE_AFTER_WITHDRAWAL = (
    "{series} falling after BTK-inhibitor withdrawal (until {until}): repeat {series}"
)
RISE_WHILE_ON_HOLD = "{series} rise while {drug} is on hold ({since})"
IGM_NOT_MEASURABLE = (
    "IgM not measurable (baseline within the normal range): assess by marrow, counts and imaging"
)
UNRECOGNISED_TREATMENT = "current treatment not recognised ({text}, since {since})"
UNRECOGNISED_TEXT_CHARS = 40  # contract: the text cut after the last whole word within 40
NO_BASELINE_PD = "no pre-treatment baseline: progression judged from the on-treatment nadir"
SERIES_WORDS = {Series.TOTAL_IGM: "IgM", Series.M_SPIKE: "M-spike"}


def cut_words(text: str, limit: int) -> str:
    """Cut after the last whole word within `limit` characters, then "…"."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut + "…"


def unusable_reason(unusable: list[UnusableResult]) -> str | None:
    """§3.1: "N IgM results could not be used (REASON)", REASON the one most of them share
    (on a tie, the earliest result's); never "no results" when results exist."""
    if not unusable:
        return None
    kinds = {u.series for u in unusable}
    what = SERIES_WORDS[kinds.pop()] if len(kinds) == 1 else "IgM or M-spike"
    noun = "result" if len(unusable) == 1 else "results"
    return f"{len(unusable)} {what} {noun} could not be used ({commonest_reason(unusable)})"


def commonest_reason(unusable: list[UnusableResult]) -> str:
    """The reason most unusable results share; on a tie, the earliest result's."""
    counts = Counter(u.reason for u in unusable)
    by_date = sorted(unusable, key=lambda u: (u.day or date.max, u.reference))
    first_seen = {u.reason: index for index, u in reversed(list(enumerate(by_date)))}
    return max(counts, key=lambda r: (counts[r], -first_seen[r]))
