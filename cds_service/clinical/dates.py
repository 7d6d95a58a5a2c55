"""Calendar arithmetic the rules need ("12 months", "2 years")."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or that month's last day (31 Jan + 1 month = end of Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def whole_months(first: date, last: date) -> int:
    """The whole calendar months from `first` to `last` (§4: durations shown to a clinician)."""
    months = (last.year - first.year) * 12 + last.month - first.month
    return months - (last.day < first.day)
