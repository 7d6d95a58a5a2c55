"""Strict JSON: exact decimals, no NaN or Infinity, and numbers of sane size.

Used for request bodies and for FHIR servers' answers alike, through `fhir.documents`, which
keeps each resource in a Bundle as JSON text until the reader reads from it (with these
same number rules). A number with a fraction or an exponent is read as an exact `Decimal`;
one with more than `MAX_DIGITS` digits or an exponent beyond `MAX_EXPONENT` is refused: no
laboratory value or date needs one, and arithmetic on them is where overflow and runaway
memory begin. Integers beyond Python's
4,300-digit conversion limit are refused while parsing; integers the rules read are bounded
where they are read (`fhir.elements`).

Parsing is msgspec's (a C parser, several times faster than the standard library's on a
prefetch). When it refuses a document, the standard library's parser with the same rules
reads it again, only to name the problem precisely.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

MAX_DIGITS = 100
MAX_EXPONENT = 400  # beyond any IEEE double, so no value a system could send is refused


class JsonRefused(ValueError):
    """Not acceptable JSON; the message names the rule broken, never the value."""


def parse_float(text: str) -> Decimal:
    """A JSON number with a fraction or an exponent, as an exact, bounded `Decimal`."""
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


_DECODER = msgspec.json.Decoder(float_hook=parse_float)


def _explain(text: str | bytes | msgspec.Raw) -> JsonRefused | ValueError:
    """Why a document msgspec refused is not acceptable, in the standard parser's words."""
    if not isinstance(text, (str, bytes)):
        text = bytes(text)  # a slice of a larger document (`fhir.documents`)
    try:
        json.loads(text, parse_float=parse_float, parse_int=_int, parse_constant=_constant)
    except (JsonRefused, json.JSONDecodeError) as error:
        return error
    except RecursionError:
        return JsonRefused("nested too deeply")
    except ValueError:  # e.g. an integer longer than Python converts
        return JsonRefused("a number has too many digits")
    # Read by the lenient parser yet not by msgspec: a lone UTF-16 surrogate escape.
    return JsonRefused("a string is not valid Unicode")


def loads(text: str | bytes | msgspec.Raw) -> Any:
    """Parse strictly; `JsonRefused` or `json.JSONDecodeError` (a `ValueError`) otherwise."""
    try:
        return _DECODER.decode(text)
    except JsonRefused:
        raise
    except RecursionError:
        raise JsonRefused("nested too deeply") from None
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise _explain(text) from None
