"""Change from baseline and the nadir (clinical-rules.md §4.3, §4.4): exact arithmetic
(`Fraction`, `Decimal`), thresholds compared unrounded, the displayed percentage rounded
only at the end."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

from .models import (
    LabResult,
    TrendChange,
)


def displayed_percent(change: Fraction) -> Decimal:
    """§4.4: truncate toward zero to one decimal, so the shown figure never crosses a
    threshold the exact one did not (24.975 % shows as 24.9 %)."""
    tenths = int(change * 10)  # int() truncates toward zero
    return Decimal(tenths) / 10


def percent_change(baseline: Decimal, latest: Decimal) -> Fraction:
    return (Fraction(latest) - Fraction(baseline)) / Fraction(baseline) * 100


def nadir_key(result: LabResult) -> tuple[Decimal, date, str]:
    # The lowest value; a bound counts at its bound value; on a tie, the earliest.
    return (result.value_mg_dl, result.day, result.reference)


def nadir_of(values: list[LabResult]) -> LabResult | None:
    """§4.5: a lower bound (">7000") is never a nadir candidate."""
    candidates = [v for v in values if not v.lower_bound]
    return min(candidates, key=nadir_key) if candidates else None


def running_nadirs(values: list[LabResult]) -> list[LabResult | None]:
    """nadirs[i] = the nadir of values[:i]: every prefix's nadir in one pass (§4.5 compares
    each value with the lowest before it; recomputing it per value would be quadratic)."""
    nadirs: list[LabResult | None] = [None]
    best: LabResult | None = None
    best_key: tuple[Decimal, date, str] | None = None
    for value in values:
        if not value.lower_bound:
            key = nadir_key(value)
            if best_key is None or key < best_key:
                best, best_key = value, key
        nadirs.append(best)
    return nadirs


def trend_change(first: LabResult, latest: LabResult) -> TrendChange | None:
    """§4.10: omitted when there is no earlier value or either end is a bound."""
    if first is latest or first.is_bound or latest.is_bound or first.value_mg_dl <= 0:
        return None
    return TrendChange(percent_change(first.value_mg_dl, latest.value_mg_dl), first)
