"""Exact comparisons of laboratory values: thresholds compare unrounded values (§4.4)."""

from __future__ import annotations

from decimal import Context, Decimal
from fractions import Fraction

# Enough digits that products of laboratory values are never rounded.
_EXACT = Context(prec=200)


def at_least(value: Decimal, factor: Fraction, reference: Decimal) -> bool:
    """value >= factor * reference, exactly."""
    numerator, denominator = factor.as_integer_ratio()
    return _EXACT.multiply(value, denominator) >= _EXACT.multiply(reference, numerator)


def times(value: Decimal, factor: int) -> Decimal:
    return _EXACT.multiply(value, factor)
