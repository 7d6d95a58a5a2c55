"""What the assessment returns (clinical-rules.md §4, §5, §7) and the monitoring reminder
(§6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from .record import (
    Category,
    Caveat,
    Exclusion,
    ImmunofixationResult,
    LabResult,
    Series,
    UnusableResult,
    ViscosityResult,
)
from .treatment import TherapyLine


class Progression(StrEnum):
    CONFIRMED = "confirmed"
    POSSIBLE = "possible"  # only the latest value rose: unconfirmed
    SUPPRESSED = "suppressed"  # a rise inside a flare or hold window (or its recovery)


@dataclass(frozen=True)
class ContinuingFrom:
    """§4.9: for an add-on line, the change since the start of the line it continued."""

    therapy_start: date
    baseline: LabResult | None
    percent_change: Fraction | None


@dataclass(frozen=True)
class Discordance:
    """§3.1: same-day plain values that differ by more than 20 %."""

    day: date
    low: Decimal
    high: Decimal


@dataclass(frozen=True)
class Hyperviscosity:
    """§7: the reference value that reached its threshold, and whether a warning card is due."""

    reference_value: LabResult
    warning_card: bool
    latest_viscosity: ViscosityResult | None
    viscosity_order_due: bool  # none in the last 183 days
    anti_cd20_recent: bool = False  # an anti-CD20 course started in the last 112 days
    recent_plasmapheresis: date | None = None  # an exchange in the last 42 days


class WindowKind(StrEnum):
    """§4.6: the suppression windows, as the card extension names them."""

    BTKI_HOLD = "btki-hold"
    ANTI_CD20_FLARE = "anti-cd20-flare"
    BTKI_WITHDRAWAL = "btki-withdrawal"


class LineStatus(StrEnum):
    """§3.5: the current line is on hold now, ongoing, or ended."""

    ONGOING = "ongoing"
    ON_HOLD = "on-hold"
    ENDED = "ended"


@dataclass(frozen=True)
class SuppressedRise:
    """§4.7: the latest value is a rise that a window (or its recovery period) suppressed."""

    window: WindowKind
    until: date | None  # None: a hold on now whose start is not recorded
    recovery: bool = False


@dataclass(frozen=True)
class SuppressionWindow:
    """§4.6: a window of the current line, as the trend app draws it."""

    kind: WindowKind
    start: date
    end: date
    drug: str | None = None


@dataclass(frozen=True)
class Withdrawal:
    """§4.6: a BTKi of an earlier line stopped shortly before the current line started."""

    ingredient: str
    stopped: date
    until: date


@dataclass(frozen=True)
class BestResponse:
    """§4.8: the reduction category the nadir reached, and the first value that reached it."""

    category: Category
    since: date


@dataclass(frozen=True)
class ResponseDuration:
    """§4 step 8: how long the response before a progression lasted."""

    category: Category
    since: date
    until: date
    months: int


@dataclass(frozen=True)
class TrendChange:
    """§4.10: the change of an untreated patient's series from an earlier value."""

    percent_change: Fraction
    since: LabResult


@dataclass(frozen=True)
class OtherSeries:
    """§4.1: values of the series not chosen, dated after the chosen series' latest."""

    series: Series
    values: tuple[LabResult, ...]
    rising: bool  # its latest value is a possible PD (step 5 on its own values)


@dataclass(frozen=True)
class Assessment:
    """The answer for one patient (clinical-rules.md §4), ready to be put on cards."""

    criteria: str
    category: Category
    # §4.5: the profile's progression floor (None under `iwwm6-strict`), for the card's words.
    progression_floor_mg_dl: Decimal | None = None
    series: Series | None = None
    percent_change: Fraction | None = None  # exact; see `displayed_percent`
    change_is_bound: bool = False  # the true change is at least this large
    baseline: LabResult | None = None
    nadir: LabResult | None = None
    latest: LabResult | None = None
    line: TherapyLine | None = None
    line_ended: date | None = None
    caveats: tuple[Caveat, ...] = ()
    reason: str | None = None  # why NE
    excluded: tuple[Exclusion, ...] = ()
    uln_mg_dl: Decimal | None = None  # total-IgM series only
    uln_is_default: bool = False
    progression: Progression | None = None
    progression_confirmed: date | None = None
    progression_value: LabResult | None = None  # the second value of the confirming pair
    percent_change_from_nadir: Fraction | None = None
    response_since: date | None = None
    durable: bool = False
    latest_immunofixation: ImmunofixationResult | None = None  # the latest after therapy start
    continuing_from: ContinuingFrom | None = None
    discordances: tuple[Discordance, ...] = ()
    hyperviscosity: Hyperviscosity | None = None
    # §7: no recent total IgM, and the newest older one was >= 4000 mg/dL.
    old_high_igm: LabResult | None = None
    rise_after_cr: bool = False  # §4.5: a rise after CR was discounted: repeat immunofixation
    # §4.5 sub-floor rise: vn - m, when the latest two values rose 25 % under the floor.
    rise_below_floor: Decimal | None = None
    line_status: LineStatus | None = None
    rise_suppressed: SuppressedRise | None = None
    best_response: BestResponse | None = None
    provisional_until: date | None = None  # SD while the latest value is in a flare window
    cr_lost: date | None = None  # §4.5: the first of two results showing the protein again
    cr_lost_confirmed: date | None = None  # the second
    response_duration: ResponseDuration | None = None
    withdrawal: Withdrawal | None = None
    held_drug: str | None = None  # a BTKi of the current line on hold now
    hold_since: date | None = None  # its recorded hold start
    switched_from: tuple[tuple[str, date], ...] = ()  # §3.5 rule 3: (ingredient, switch day)
    other_series: OtherSeries | None = None
    # §4.7 a line of unknown regimen: the change since it started, as information, and a
    # confirmed PD of the line before, as history (regimen, date).
    change_since_line_start: Fraction | None = None
    earlier_progression: tuple[tuple[str, ...], date] | None = None
    held_back: tuple[LabResult, ...] = ()  # §3.1 implausible change: check the unit
    windows: tuple[SuppressionWindow, ...] = ()  # §4.6, of the current line
    wm_evidence: bool = True  # §3.7: without it, patient-view says nothing
    wm_condition: str | None = None  # §3.7: the WM Condition's reference, when there is one
    # Both series' values that count (§3.1: one per day, not held back), for §6 and §4.10:
    # total IgM in date order, then the M-spike in date order.
    usable_results: tuple[LabResult, ...] = ()
    change_since_first: TrendChange | None = None  # §4.10, no line of therapy
    change_12_months: TrendChange | None = None
    unusable: tuple[UnusableResult, ...] = ()  # §3.1 measured but unusable (held back too)
    # For drawing the course (the SMART app): the series' values as the rules used them (one
    # per day, §3.1), and every line of therapy that has started (§3.5), oldest first.
    values: tuple[LabResult, ...] = ()
    lines: tuple[TherapyLine, ...] = ()

    @property
    def therapy_start(self) -> date | None:
        return self.line.start if self.line else None


class MonitoringState(StrEnum):
    """§6: the states that set the monitoring interval (the card extension's `state`)."""

    ON_THERAPY = "on-therapy"
    OFF_THERAPY = "off-therapy"
    PROGRESSION_OFF_THERAPY = "progression-off-therapy"
    UNTREATED = "untreated"


class MonitoringReason(StrEnum):
    OVERDUE = "overdue"
    TOTAL_IGM_DUE = "total-igm-due"


@dataclass(frozen=True)
class MonitoringDue:
    """§6: no usable IgM or M-spike result within the interval of the patient's state (or,
    on therapy, only M-spikes since a total IgM more than 183 days old)."""

    state: MonitoringState
    interval_days: int
    reason: MonitoringReason
    last_result_day: date | None  # the newest usable result (total IgM for total-igm-due)
    days_since: int | None  # from the newest usable result or the line's start, if later
    line: TherapyLine | None = None
    line_ended: date | None = None
    progression_confirmed: date | None = None
    unusable_count: int = 0  # results dated after the newest usable one that could not be used
    unusable_since: date | None = None
    unusable_reason: str | None = None
