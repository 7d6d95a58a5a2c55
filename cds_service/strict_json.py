"""Strict JSON: exact decimals, no NaN or Infinity, and numbers of sane size.

Used for request bodies and for FHIR servers' answers alike. A number with more than
`MAX_DIGITS` digits or an exponent beyond `MAX_EXPONENT` is refused: no laboratory value or
date needs one, and arithmetic on them is where overflow and runaway memory begin.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_DIGITS = 100
MAX_EXPONENT = 400  # beyond any IEEE double, so no value a system could send is refused


class JsonRefused(ValueError):
    """Not acceptable JSON; the message names the rule broken, never the value."""


def _float(text: str) -> Decimal:
    if len(text) > MAX_DIGITS + 20:
        raise JsonRefused("a number has too many digits")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise JsonRefused("a number cannot be read") from None
    if not value.is_finite() or abs(value.adjusted()) > MAX_EXPONENT:
        raise JsonRefused("a number is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise JsonRefused("a number has too many digits")
    return int(text)


def _constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def loads(text: str | bytes) -> Any:
    """Parse strictly; `JsonRefused` or `json.JSONDecodeError` (a `ValueError`) otherwise."""
    try:
        return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=_constant)
    except RecursionError:
        raise JsonRefused("nested too deeply") from None
