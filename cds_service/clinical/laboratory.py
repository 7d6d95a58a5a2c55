"""§3.1 laboratory series: one value per day (repeat draws on one day are one measurement,
never a confirmation), and values held back as an implausible change."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from .criteria import CriteriaProfile
from .models import Discordance, Exclusion, LabResult, Plasmapheresis, Series
from .valuesets import PREFERRED_M_SPIKE_LOINC

REPLACED_SAME_DAY = "another result of the same day stands for that day ({kept})"


@dataclass
class SeriesByDay:
    values: dict[Series, list[LabResult]] = field(default_factory=dict)  # date order
    discordances: list[Discordance] = field(default_factory=list)
    replaced: list[Exclusion] = field(default_factory=list)


def _satisfies(plain: LabResult, bound: LabResult) -> bool:
    """A plain value that the bound allows: a diluted rerun of ">7000" that reads 9200."""
    if bound.lower_bound:
        return plain.value_mg_dl >= bound.value_mg_dl
    return plain.value_mg_dl <= bound.value_mg_dl


def _one_day(results: list[LabResult]) -> LabResult:
    if any(r.code == PREFERRED_M_SPIKE_LOINC for r in results):
        results = [r for r in results if r.code == PREFERRED_M_SPIKE_LOINC]
    plain = [r for r in results if not r.is_bound]
    bounds = [r for r in results if r.is_bound and not any(_satisfies(p, r) for p in plain)]
    # The lowest; bounds compared at their bound; on a tie a plain value wins.
    return min([*plain, *bounds], key=lambda r: (r.value_mg_dl, r.is_bound, r.reference))


def one_value_per_day(results: list[LabResult], profile: CriteriaProfile) -> SeriesByDay:
    grouped: dict[tuple[Series, date], list[LabResult]] = defaultdict(list)
    for result in results:
        grouped[(result.series, result.day)].append(result)
    by_day = SeriesByDay(values={series: [] for series in Series})
    for (series, day), same_day in sorted(grouped.items()):
        if len(same_day) == 1:  # the usual day: one draw, nothing to choose or compare
            by_day.values[series].append(same_day[0])
            continue
        kept = _one_day(same_day)
        by_day.values[series].append(kept)
        for other in same_day:
            if other is not kept:
                by_day.replaced.append(
                    Exclusion(other.reference, REPLACED_SAME_DAY.format(kept=kept.reference))
                )
        plain = [r.value_mg_dl for r in same_day if not r.is_bound]
        if len(plain) > 1:
            low, high = min(plain), max(plain)
            if high * 100 > low * (100 + profile.discordant_percent):
                by_day.discordances.append(Discordance(day, low, high))
    return by_day


# §3.1 implausible change [design] --------------------------------------------------------

HELD_BACK = "implausible change: check the unit"


def _within_factor_two(value: LabResult, held: LabResult) -> bool:
    """Half to twice, inclusive; a bound counts at its bound."""
    return held.value_mg_dl <= 2 * value.value_mg_dl and value.value_mg_dl <= 2 * held.value_mg_dl


def hold_back_implausible(
    values: list[LabResult],
    exchange_days: list[date],
    affected: Callable[[LabResult], bool],
    profile: CriteriaProfile,
) -> tuple[list[LabResult], list[LabResult]]:
    """§3.1: (the values that count, the values held back) of one series, one per day.

    A plain value at least 10 times, or at most a tenth of, the previous plain value of the
    series (not held back, not plasmapheresis-affected) dated at most 183 days earlier, with no
    exchange between them, is held back ("16 mg/dL" that was 16 g/L). The next value releases
    it when it lies within a factor of 2 of it; both then count, as the change is real.
    """
    factor = profile.implausible_change_factor
    amounts = [v.value_mg_dl for v in values if v.comparator is None and v.value_mg_dl > 0]
    if len(amounts) < 2 or max(amounts) < factor * min(amounts):
        return values, []  # no two plain values lie tenfold apart: nothing to hold back
    window = profile.implausible_change_days
    held: set[int] = set()
    previous: LabResult | None = None
    previous_times_factor = Decimal(0)  # the previous value x 10, worked out once
    for index, value in enumerate(values):
        releases = index - 1 in held and _within_factor_two(value, values[index - 1])
        if releases:
            held.discard(index - 1)
        amount = value.value_mg_dl
        if value.comparator is not None or amount <= 0:
            continue  # only plain values above 0 are held back, or compared with
        if (
            previous is not None
            and not releases
            and (value.day - previous.day).days <= window
            and (amount >= previous_times_factor or amount * factor <= previous.value_mg_dl)
            and not any(previous.day <= day <= value.day for day in exchange_days)
        ):
            held.add(index)
            continue
        if not affected(value):
            previous, previous_times_factor = value, amount * factor
    if not held:
        return values, []
    kept = [value for index, value in enumerate(values) if index not in held]
    return kept, [values[index] for index in sorted(held)]


# §3.6 plasmapheresis-affected values --------------------------------------------------------


def lowered_by_exchange(
    value: LabResult, plasmaphereses: list[Plasmapheresis], profile: CriteriaProfile
) -> bool:
    """§3.6: measured on the day of an exchange or in the 42 days after it, except a value
    drawn on the exchange day before the exchange started (both times known)."""
    for exchange in plasmaphereses:
        if exchange.day < value.day <= exchange.day + profile.plasmapheresis_window:
            return True
        if exchange.day == value.day:
            drawn, started = value.drawn_at, exchange.started_at
            if drawn is None or started is None or not drawn < started:
                return True  # only a value drawn before the exchange started counts
    return False
