"""Unit conversion to mg/dL (clinical-rules.md §3). Never guess a unit."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

UCUM_SYSTEM = "http://unitsofmeasure.org"

# Multiply a value in the unit by this to get mg/dL.
MG_DL_PER_UNIT: dict[str, Decimal] = {
    "mg/dL": Decimal(1),
    "g/L": Decimal(100),
    "mg/L": Decimal("0.1"),
    "g/dL": Decimal(1000),
}
# Unit strings are free text written by people: the same four units, any letter case.
_UNIT_TEXT = {unit.lower(): unit for unit in MG_DL_PER_UNIT}
# UCUM: `l` and `L` are both the litre, so `mg/dl` and `g/l` are valid codes of these units.
_UCUM_CODES = {
    **MG_DL_PER_UNIT,
    **{unit[:-1] + "l": factor for unit, factor in MG_DL_PER_UNIT.items()},
}


# [design] §3.1: IgM upper limits of normal are of the order of 200-300 mg/dL; a total-IgM
# result whose own ULN, converted, lies outside this range carries another unit than it says.
PLAUSIBLE_IGM_ULN_MG_DL = (Decimal(100), Decimal(1000))


class UnitError(ValueError):
    """The unit is missing, unknown or contradictory; the message says which."""


@lru_cache(maxsize=256)
def mg_dl_factor(system: str | None, code: str | None, unit: str | None) -> Decimal:
    """The factor to mg/dL: the UCUM code first, then the unit string."""
    from_code = None
    if code is not None and (system is None or system == UCUM_SYSTEM):
        from_code = _UCUM_CODES.get(code)
        if from_code is None:
            raise UnitError(f"unit '{code}' cannot be converted to mg/dL")
    elif code is not None:
        raise UnitError(f"unit code '{code}' is not UCUM and cannot be converted to mg/dL")
    from_text = None
    if unit is not None:
        canonical = _UNIT_TEXT.get(unit.strip().lower())
        from_text = MG_DL_PER_UNIT[canonical] if canonical else None
        if from_text is None and from_code is None:
            raise UnitError(f"unit '{unit}' cannot be converted to mg/dL")
    if from_code is not None and from_text is not None and from_code != from_text:
        raise UnitError(f"unit code '{code}' and unit '{unit}' disagree")
    factor = from_code if from_code is not None else from_text
    if factor is None:
        raise UnitError("the result has no unit")
    return factor


# §3.1 serum viscosity: cP and mPa.s are equal.
_CENTIPOISE = frozenset({"cp", "centipoise", "mpa.s", "mpa·s"})


def is_centipoise(unit: str | None) -> bool:
    return unit is not None and unit.strip().lower() in _CENTIPOISE
