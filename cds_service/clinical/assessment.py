"""IgM response assessment under IWWM-6 (clinical-rules.md §4, §5 and §7), step by step.

`assess_response` is a pure function of the patient's record, the criteria profile and
"today". Arithmetic is exact (`Fraction`, `Decimal` products); thresholds compare
unrounded values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from itertools import pairwise

from .criteria import CriteriaProfile
from .dates import add_months, whole_months
from .exact import at_least as _at_least
from .exact import times
from .hyperviscosity import reference_values
from .laboratory import HELD_BACK, hold_back_implausible, lowered_by_exchange, one_value_per_day
from .models import (
    CAVEAT_ORDER,
    Assessment,
    BestResponse,
    Category,
    Caveat,
    ContinuingFrom,
    DrugClass,
    Exclusion,
    Hold,
    Hyperviscosity,
    IfeReading,
    ImmunofixationResult,
    LabResult,
    OtherSeries,
    PatientRecord,
    Progression,
    ResponseDuration,
    Series,
    SuppressedRise,
    SuppressionWindow,
    TherapyLine,
    TreatmentCourse,
    TrendChange,
    UnusableResult,
    WindowKind,
    Withdrawal,
)
from .therapy import TreatmentHistory, induction_starts, line_status, treatment_history
from .valuesets import SLOW_RESPONSE_INGREDIENTS

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


def _cut_words(text: str, limit: int) -> str:
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


def displayed_percent(change: Fraction) -> Decimal:
    """§4.4: truncate toward zero to one decimal, so the shown figure never crosses a
    threshold the exact one did not (24.975 % shows as 24.9 %)."""
    tenths = int(change * 10)  # int() truncates toward zero
    return Decimal(tenths) / 10


def percent_change(baseline: Decimal, latest: Decimal) -> Fraction:
    return (Fraction(latest) - Fraction(baseline)) / Fraction(baseline) * 100


def _nadir_key(result: LabResult) -> tuple[Decimal, date, str]:
    # The lowest value; a bound counts at its bound value; on a tie, the earliest.
    return (result.value_mg_dl, result.day, result.reference)


def _nadir(values: list[LabResult]) -> LabResult | None:
    """§4.5: a lower bound (">7000") is never a nadir candidate."""
    candidates = [v for v in values if not v.lower_bound]
    return min(candidates, key=_nadir_key) if candidates else None


def _running_nadirs(values: list[LabResult]) -> list[LabResult | None]:
    """nadirs[i] = the nadir of values[:i]: every prefix's nadir in one pass (§4.5 compares
    each value with the lowest before it; recomputing it per value would be quadratic)."""
    nadirs: list[LabResult | None] = [None]
    best: LabResult | None = None
    best_key: tuple[Decimal, date, str] | None = None
    for value in values:
        if not value.lower_bound:
            key = _nadir_key(value)
            if best_key is None or key < best_key:
                best, best_key = value, key
        nadirs.append(best)
    return nadirs


def _trend_change(first: LabResult, latest: LabResult) -> TrendChange | None:
    """§4.10: omitted when there is no earlier value or either end is a bound."""
    if first is latest or first.is_bound or latest.is_bound or first.value_mg_dl <= 0:
        return None
    return TrendChange(percent_change(first.value_mg_dl, latest.value_mg_dl), first)


class _Rise(Enum):
    NONE = "none"
    RISE = "rise"
    # §4.5 (`iwwm6`): meets the IWWM-6 arithmetic, but less than the floor above the nadir.
    SUB_FLOOR = "sub-floor"
    AFTER_CR = "after-cr"  # would be a rise, but the monoclonal protein has not come back


_WINDOW_CAVEATS = {
    WindowKind.ANTI_CD20_FLARE: Caveat.ANTI_CD20_FLARE,
    WindowKind.BTKI_HOLD: Caveat.BTKI_INTERRUPTION,
    WindowKind.BTKI_WITHDRAWAL: Caveat.BTKI_INTERRUPTION,
}
# §3.7: courses that are no evidence of WM (used in other diseases, or only with a regimen).
NOT_EVIDENCE = frozenset(
    {
        DrugClass.PARTNER,
        DrugClass.UNRECOGNISED,
        DrugClass.AUTOLOGOUS_TRANSPLANT,
        DrugClass.CONDITIONING,
    }
)
# §4.8: the categories at least as good as each reduction category.
_AT_LEAST = {
    Category.VGPR: {Category.VGPR},
    Category.PR: {Category.VGPR, Category.PR},
    Category.MR: {Category.VGPR, Category.PR, Category.MR},
}
# §4.7: when the latest value lies in more than one window, the one named.
_WINDOW_ORDER = (WindowKind.BTKI_HOLD, WindowKind.BTKI_WITHDRAWAL, WindowKind.ANTI_CD20_FLARE)


@dataclass(frozen=True)
class _Window:
    """§4.6: a period in which a rise is no evidence of progression."""

    start: date
    end: date
    kind: WindowKind
    drug: str | None = None  # the BTKi held or stopped
    on_hold_now: bool = False  # a hold of the current line that goes on today
    start_recorded: bool = True  # a hold's start as the record gives it (§3.4)

    @property
    def caveat(self) -> Caveat:
        return _WINDOW_CAVEATS[self.kind]

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class _Block:
    """Why a value is no evidence of progression: inside a window, or in its recovery."""

    window: _Window
    until: date
    recovery: bool


@dataclass
class _Progress:
    """§4.5 on one sequence of values."""

    confirmed_index: int | None = None
    nadir: LabResult | None = None  # m of the first confirming pair
    possible: bool = False
    after_cr: bool = False  # vn was discounted by the after-CR rule
    suppressed: list[_Block] = field(default_factory=list)
    # §4.5 sub-floor rise: (m, vn) when the latest two values rose 25 % under the floor.
    sub_floor: tuple[LabResult, LabResult] | None = None
    # §4.7: (m, the windows) when vn is a rise over m = min(v0 ... v(n-1)) a window held back
    latest_suppressed: tuple[LabResult, list[_Block]] | None = None


@dataclass
class _Track:
    """One series read against one line: baseline, the values after therapy start, §4.5."""

    series: Series
    values: list[LabResult]  # every value of the series (one per day), in date order
    baseline: LabResult | None
    sequence: list[LabResult]  # v0 (when there is a baseline), v1 ... vn: not plasma-affected
    after_start: list[LabResult]  # every value dated after therapy start
    progress: _Progress
    windows: list[_Window] = field(default_factory=list)  # §4.6, of the line, for this series
    peaks: dict[_Window, Decimal] = field(default_factory=dict)

    @property
    def latest(self) -> LabResult | None:
        return self.values[-1] if self.values else None

    @property
    def usable(self) -> bool:
        """§4.1: a baseline and a value after therapy start that is not plasma-affected."""
        return self.baseline is not None and len(self.sequence) > 1

    @property
    def confirmed(self) -> bool:
        return self.progress.confirmed_index is not None


class _Assessor:
    """Holds one assessment's inputs so each rule reads as a short method."""

    def __init__(self, record: PatientRecord, profile: CriteriaProfile, today: date) -> None:
        self.profile = profile
        self.today = today
        self.excluded: list[Exclusion] = list(record.excluded)
        latest_allowed = today + timedelta(days=profile.future_tolerance_days)
        results: list[LabResult] = []
        for result in record.lab_results:
            if result.day > latest_allowed:
                self.excluded.append(
                    Exclusion(result.reference, f"dated {result.day.isoformat()}, after today")
                )
            else:
                results.append(result)
        self.plasmaphereses = sorted(
            (p for p in record.plasmaphereses if p.day <= latest_allowed), key=lambda p: p.day
        )
        per_day = one_value_per_day(results, profile)
        self.values = per_day.values
        self.discordances = per_day.discordances
        self.excluded.extend(per_day.replaced)
        self.held_back: list[LabResult] = []
        exchange_days = [p.day for p in self.plasmaphereses]
        for series in Series:
            self.values[series], held = hold_back_implausible(
                self.values[series],
                exchange_days,
                self.after_plasmapheresis,
                profile,
            )
            self.held_back += held
        self.unusable: list[UnusableResult] = [
            *record.unusable,
            *(UnusableResult(v.reference, v.series, v.day, HELD_BACK) for v in self.held_back),
        ]
        self.immunofixations = sorted(
            (i for i in record.immunofixations if i.day <= latest_allowed),
            key=lambda i: (i.day, i.reference),
        )
        self.viscosities = sorted(
            (v for v in record.viscosities if v.day <= latest_allowed), key=lambda v: v.day
        )
        self.caveats: set[Caveat] = set()
        self.rise_after_cr = False
        self.lines: tuple[TherapyLine, ...] = ()  # while lines are built: none before them
        self.shown_windows: list[_Window] = []  # the chosen series' windows, for the chart
        history = treatment_history(
            record.drug_episodes, today, profile, self, tuple(record.transplants)
        )
        self.excluded.extend(history.excluded)
        self.anti_cd20_starts = history.anti_cd20_starts
        self.line = history.current_line(today)
        self.lines = tuple(line for line in history.lines if line.start <= today)
        self.evidence = self.wm_evidence(record, history)
        self.wm_condition = next((d.reference for d in record.diagnoses if d.is_wm), None)

    # §3.7 evidence of WM ------------------------------------------------------------------
    def wm_evidence(self, record: PatientRecord, history: TreatmentHistory) -> bool:
        """A WM Condition; a course of a WM drug (not a partner agent), unless the problem
        list names only another disease those drugs treat; a positive IFE or an M-spike
        above 0; or a total IgM above twice its ULN (IgM tests and anti-CD20 antibodies are
        used for many other diseases)."""
        if any(d.is_wm for d in record.diagnoses):
            return True
        other_disease = bool(record.diagnoses)
        treated = any(
            c.drug_class not in NOT_EVIDENCE and c.start <= self.today for c in history.courses
        )
        if treated and not other_disease:
            return True
        if any(i.reading == IfeReading.POSITIVE for i in self.immunofixations):
            return True
        if any(v.value_mg_dl > 0 and not v.upper_bound for v in self.values[Series.M_SPIKE]):
            return True
        multiple = self.profile.evidence_uln_multiple
        return any(
            not v.upper_bound and v.value_mg_dl > multiple * self.uln(v)[0]
            for v in self.values[Series.TOTAL_IGM]
        )

    # §3.1 ULN ---------------------------------------------------------------------------------
    def uln(self, result: LabResult) -> tuple[Decimal, bool]:
        if result.uln_mg_dl is not None and result.uln_mg_dl > 0:
            return result.uln_mg_dl, False
        return self.profile.default_uln_mg_dl, True

    # §3.6 plasmapheresis ----------------------------------------------------------------------
    def after_plasmapheresis(self, result: LabResult) -> bool:
        """§3.6: plasmapheresis-affected (a value drawn before that day's exchange is not)."""
        return bool(self.plasmaphereses) and lowered_by_exchange(
            result, self.plasmaphereses, self.profile
        )

    def plasmapheresis_between(self, first: date, last: date) -> bool:
        return any(first <= p.day <= last for p in self.plasmaphereses)

    # §4.2 baseline -------------------------------------------------------------------------
    def baseline(self, values: list[LabResult], therapy_start: date) -> LabResult | None:
        earliest = therapy_start - timedelta(days=self.profile.baseline_window_days)
        for result in reversed(values):
            if result.day > therapy_start or result.day < earliest:
                continue
            if result.upper_bound or result.value_mg_dl <= 0:
                continue  # an upper bound is never a baseline; a zero gives no change
            if self.after_plasmapheresis(result):
                continue
            return result
        return None

    def track(self, series: Series, line: TherapyLine, before: date | None = None) -> _Track:
        values = [v for v in self.values[series] if before is None or v.day < before]
        baseline = self.baseline(values, line.start)
        after_start = [v for v in values if v.day > line.start]
        sequence = ([baseline] if baseline else []) + [
            v for v in after_start if not self.after_plasmapheresis(v)
        ]
        windows = self.windows(line, sequence, series)
        progress = self.progression(sequence, series, windows)
        peaks = self.window_peaks(windows, sequence)
        return _Track(series, values, baseline, sequence, after_start, progress, windows, peaks)

    # §4.5 rises --------------------------------------------------------------------------
    def rise(self, value: LabResult, nadir: LabResult, series: Series) -> _Rise:
        """§4.5: the IWWM-6 arithmetic, then the profile's progression floor."""
        if value.upper_bound:
            return _Rise.NONE  # "<25" can never prove a rise
        amount, lowest = value.value_mg_dl, nadir.value_mg_dl
        if not _at_least(amount, self.profile.progression_factor, lowest):
            return _Rise.NONE
        if series == Series.TOTAL_IGM:
            if amount <= self.uln(value)[0]:
                return _Rise.NONE  # inside the normal range: noise, not progression
        elif amount < self.profile.m_spike_rise_floor_mg_dl:
            return _Rise.NONE  # a band too small to quantify reliably
        floor = self.profile.progression_min_rise_mg_dl
        if floor is not None and amount - lowest < floor:
            return _Rise.SUB_FLOOR
        if series == Series.TOTAL_IGM and self.discounted_after_cr(value, nadir):
            return _Rise.AFTER_CR
        return _Rise.RISE

    def discounted_after_cr(self, value: LabResult, nadir: LabResult) -> bool:
        """§4.5 after a complete response: polyclonal IgM recovers after rituximab; relapse is
        the return of the monoclonal protein."""
        if nadir.value_mg_dl > self.uln(nadir)[0]:
            return False
        if value.value_mg_dl > self.profile.after_cr_uln_multiple * self.uln(value)[0]:
            return False
        readable = [
            i
            for i in self.immunofixations
            if i.day <= value.day and i.reading != IfeReading.UNREADABLE
        ]
        if not readable or not readable[-1].negative:
            return False
        negative_day = readable[-1].day
        return not self.protein_back_after(negative_day)

    def protein_back_after(self, day: date) -> bool:
        positive_ife = any(
            i.day > day and i.reading == IfeReading.POSITIVE for i in self.immunofixations
        )
        m_spike = any(v.day > day and v.value_mg_dl > 0 for v in self.values[Series.M_SPIKE])
        return positive_ife or m_spike

    # §4.6 suppression windows ----------------------------------------------------------------
    def windows(
        self, line: TherapyLine, sequence: list[LabResult], series: Series
    ) -> list[_Window]:
        profile = self.profile
        flare = timedelta(days=profile.flare_window_days)
        windows = []
        for course in line.courses_of(DrugClass.ANTI_CD20):
            # A re-course opens no window (back-to-back windows would hide progression for
            # years), except for an induction inside it (§3.4: a re-induction flares too).
            starts = (
                induction_starts(course, profile) if course in line.recourses else [course.start]
            )
            windows += [
                _Window(s, s + flare, WindowKind.ANTI_CD20_FLARE, drug=course.ingredient)
                for s in starts
            ]
        for course in line.courses_of(DrugClass.BTKI):
            windows += [self.hold_window(course, hold, sequence, series) for hold in course.holds]
        withdrawal = self.withdrawal_window(line)
        if withdrawal is not None:
            windows.append(withdrawal)
        return windows

    def hold_window(
        self, course: TreatmentCourse, hold: Hold, sequence: list[LabResult], series: Series
    ) -> _Window:
        """§4.6 hold window: to 28 days after the resumption; on hold now, to 90 days after a
        recorded start, else to today. An unrecorded start is the day after the last value
        that was no rise, but not earlier than 90 days before today (or the resumption)."""
        profile = self.profile
        start = hold.start
        if start is None:
            until = hold.resumed or self.today
            earliest = until - timedelta(days=profile.open_hold_window_days)
            start = max(earliest, self.last_no_rise(sequence, series, until) + timedelta(days=1))
        if hold.resumed is not None:
            end = hold.resumed + timedelta(days=profile.post_hold_window_days)
        elif hold.start is not None:
            end = hold.start + timedelta(days=profile.open_hold_window_days)
        else:
            end = self.today
        return _Window(
            start,
            end,
            WindowKind.BTKI_HOLD,
            drug=course.ingredient,
            on_hold_now=hold.resumed is None,
            start_recorded=hold.start is not None,
        )

    def last_no_rise(self, sequence: list[LabResult], series: Series, before: date) -> date:
        """The day of the last value before `before` that was no rise over the values
        before it (v0 never is one)."""
        last = date.min
        nadirs = _running_nadirs(sequence)
        for index, value in enumerate(sequence):
            if value.day >= before:
                break
            nadir = nadirs[index]
            if index == 0 or nadir is None or self.rise(value, nadir, series) != _Rise.RISE:
                last = value.day
        return last

    def withdrawal_window(self, line: TherapyLine) -> _Window | None:
        """§4.6 [design]: a line without a BTKi that starts at most 60 days after a BTKi of
        an earlier line ended (or up to 60 days before it ended): IgM rebounds for weeks,
        into the next regimen (Castillo-2018)."""
        if line.has_class(DrugClass.BTKI):
            return None
        gap = self.profile.withdrawal_gap_days
        stopped = [
            course
            for earlier in self.lines
            if earlier is not line and earlier.start < line.start
            for course in earlier.courses_of(DrugClass.BTKI)
            if course.ended
            and course.end is not None
            and abs((line.start - course.end).days) <= gap
        ]
        if not stopped:
            return None
        last = max(stopped, key=lambda c: (c.end, c.ingredient))
        assert last.end is not None
        end = line.start + timedelta(days=self.profile.withdrawal_window_days)
        return _Window(last.end, end, WindowKind.BTKI_WITHDRAWAL, drug=last.ingredient)

    @staticmethod
    def window_peaks(windows: list[_Window], sequence: list[LabResult]) -> dict[_Window, Decimal]:
        """The highest value inside each window that holds any (for §4.6's recovery)."""
        peaks: dict[_Window, Decimal] = {}
        for window in windows:
            inside = [v.value_mg_dl for v in sequence if window.contains(v.day)]
            if inside:
                peaks[window] = max(inside)
        return peaks

    def blocks(
        self, value: LabResult, windows: list[_Window], peaks: dict[_Window, Decimal]
    ) -> list[_Block]:
        """The windows (and recovery periods) that make `value` no evidence of progression."""
        found = []
        recovery = timedelta(days=self.profile.recovery_days)
        for window in windows:
            if window.contains(value.day):
                found.append(_Block(window, window.end, recovery=False))
                continue
            if not window.end < value.day <= window.end + recovery:
                continue
            peak = peaks.get(window)
            if peak is not None and value.value_mg_dl <= peak:
                found.append(_Block(window, window.end + recovery, recovery=True))
        return found

    # §4.5 progression -----------------------------------------------------------------------
    def progression(
        self, sequence: list[LabResult], series: Series, windows: list[_Window]
    ) -> _Progress:
        progress = _Progress()
        n = len(sequence) - 1
        nadirs = _running_nadirs(sequence)
        peaks = self.window_peaks(windows, sequence)
        for k in range(2, n + 1):
            nadir = nadirs[k - 1]  # min(v0 ... v(k-2))
            if nadir is None:
                continue
            pair = (sequence[k - 1], sequence[k])
            if all(self.rise(v, nadir, series) == _Rise.RISE for v in pair):
                blocked = [b for v in pair for b in self.blocks(v, windows, peaks)]
                if not blocked:
                    progress.confirmed_index, progress.nadir = k, nadir
                    return progress
                progress.suppressed += blocked
        nadir = nadirs[n] if n >= 1 else None  # min(v0 ... v(n-1))
        if nadir is not None:
            latest_rise = self.rise(sequence[n], nadir, series)
            if latest_rise == _Rise.RISE:
                blocked = self.blocks(sequence[n], windows, peaks)
                progress.suppressed += blocked
                progress.possible = not blocked
                if blocked:
                    progress.latest_suppressed = (nadir, blocked)
            progress.after_cr = latest_rise == _Rise.AFTER_CR
        if not progress.possible and n >= 2 and nadirs[n - 1] is not None:
            progress.sub_floor = self.sub_floor_rise(
                sequence, series, nadirs[n - 1], windows, peaks
            )
        return progress

    def sub_floor_rise(
        self,
        sequence: list[LabResult],
        series: Series,
        nadir: LabResult,
        windows: list[_Window],
        peaks: dict[_Window, Decimal],
    ) -> tuple[LabResult, LabResult] | None:
        """§4.5 sub-floor rise: v(n-1) and vn both meet the IWWM-6 arithmetic over
        m = min(v0 ... v(n-2)), at least one under the floor, both outside every window. Judged
        on the latest two values only; it never stands for the line."""
        pair = (sequence[-2], sequence[-1])
        kinds = [self.rise(v, nadir, series) for v in pair]
        if _Rise.SUB_FLOOR not in kinds or not all(
            kind in (_Rise.RISE, _Rise.SUB_FLOOR) for kind in kinds
        ):
            return None
        if any(self.blocks(v, windows, peaks) for v in pair):
            return None
        return nadir, pair[1]

    # §3.5 the questions rules 2 and 3 ask of a line built so far ----------------------------
    def rise_before(self, line: TherapyLine, day: date) -> bool:
        for series in Series:
            sequence = self.track(series, line, before=day).sequence
            nadirs = _running_nadirs(sequence)
            for k in range(1, len(sequence)):
                nadir = nadirs[k]
                if nadir is not None and self.rise(sequence[k], nadir, series) == _Rise.RISE:
                    return True
        return False

    def confirmed_pd_before(self, line: TherapyLine, day: date) -> bool:
        return any(self.track(series, line, before=day).confirmed for series in Series)

    # §4.7 CR ------------------------------------------------------------------------------
    def complete_response(self, track: _Track, start: date) -> tuple[date, date] | None:
        """(the first day of the run at or below the ULN, the negative IFE's day) when the
        CR criteria hold, else None."""
        latest = track.latest
        if latest is None or latest.lower_bound:
            return None
        if track.series == Series.M_SPIKE and latest.value_mg_dl != 0:
            return None
        igm_after = [v for v in self.values[Series.TOTAL_IGM] if v.day > start]
        run = self.latest_run(igm_after, lambda v: v.value_mg_dl <= self.uln(v)[0])
        if not run or run[-1] is not igm_after[-1]:
            return None
        after_start = [i for i in self.immunofixations if i.day > start]
        readable = [i for i in after_start if i.reading != IfeReading.UNREADABLE]
        if not readable or not readable[-1].negative:
            return None
        negative = readable[-1]
        if any(i.reading == IfeReading.UNREADABLE and i.day >= negative.day for i in after_start):
            return None  # doubt never supports CR
        if negative.day < run[0].day:
            return None
        if any(v.day >= negative.day and v.value_mg_dl > 0 for v in self.values[Series.M_SPIKE]):
            return None
        return run[0].day, negative.day

    @staticmethod
    def latest_run(values: list[LabResult], meets: object) -> list[LabResult]:
        """The latest unbroken run of values (ending at the last) that all meet `meets`."""
        run: list[LabResult] = []
        for value in reversed(values):
            if value.lower_bound or not meets(value):  # type: ignore[operator]
                break
            run.insert(0, value)
        return run

    def category_by_reduction(self, change: Fraction) -> Category:
        reduction = -change
        if reduction >= self.profile.vgpr_reduction_percent:
            return Category.VGPR
        if reduction >= self.profile.pr_reduction_percent:
            return Category.PR
        if reduction >= self.profile.mr_reduction_percent:
            return Category.MR
        return Category.SD

    # §4.8 response since ----------------------------------------------------------------
    def response_run(
        self, category: Category, track: _Track, cr: tuple[date, date] | None
    ) -> list[LabResult]:
        values = track.sequence[1:] if track.baseline else track.sequence
        if category == Category.CR and cr is not None:
            if track.series == Series.M_SPIKE:
                run = self.latest_run(values, lambda v: v.value_mg_dl == 0)
            else:
                run = self.latest_run(values, lambda v: v.value_mg_dl <= self.uln(v)[0])
            return run
        thresholds = {
            Category.VGPR: self.profile.vgpr_reduction_percent,
            Category.PR: self.profile.pr_reduction_percent,
            Category.MR: self.profile.mr_reduction_percent,
        }
        if category not in thresholds or track.baseline is None:
            return []
        # reduction >= t %  <=>  value * 100 <= baseline * (100 - t), exactly.
        limit = times(track.baseline.value_mg_dl, 100 - thresholds[category])
        return self.latest_run(values, lambda v: times(v.value_mg_dl, 100) <= limit)

    def response_since(
        self, run: list[LabResult], category: Category, cr: tuple[date, date] | None
    ) -> date | None:
        if not run:
            return None
        if category == Category.CR and cr is not None:
            return max(run[0].day, cr[1])
        return run[0].day

    def durable(self, run: list[LabResult], since: date | None, latest: LabResult) -> bool:
        profile = self.profile
        if since is None or (latest.day - since).days < profile.durable_days:
            return False
        held = [v for v in run if v.day >= since]
        gaps = [(b.day - a.day).days for a, b in pairwise(held)]
        return len(held) >= profile.durable_min_values and all(
            gap <= profile.durable_max_gap_days for gap in gaps
        )

    # §5 caveats that depend on the line, not the category ---------------------------------
    def line_caveats(self, line: TherapyLine, latest: LabResult | None) -> None:
        if line.has_class(DrugClass.BTKI):
            self.caveats.add(Caveat.BTKI_DISCORDANCE)
        if line.has_class(DrugClass.PROTEASOME_INHIBITOR, DrugClass.MTOR_INHIBITOR):
            self.caveats.add(Caveat.PI_MTOR_DISCORDANCE)
        flare = timedelta(days=self.profile.flare_window_days)
        for course in line.courses_of(DrugClass.ANTI_CD20):
            # §5: a course that is not a re-course, or an induction inside a re-course
            starts = (
                induction_starts(course, self.profile)
                if course in line.recourses
                else [course.start]
            )
            if any(start <= self.today <= start + flare for start in starts):
                self.caveats.add(Caveat.ANTI_CD20_FLARE)
        if self.btki_interrupted(line, latest):
            self.caveats.add(Caveat.BTKI_INTERRUPTION)

    def btki_interrupted(self, line: TherapyLine, latest: LabResult | None) -> bool:
        """On hold now, or held or stopped within the lookback before the latest value."""
        lookback = timedelta(days=self.profile.btki_interruption_lookback_days)
        for course in line.courses_of(DrugClass.BTKI):
            if course.on_hold:
                return True
            if latest is None:
                continue
            since = latest.day - lookback
            for hold in course.holds:
                hold_start = hold.start or hold.resumed
                hold_end = hold.resumed or self.today
                if hold_start is not None and hold_start <= latest.day and hold_end >= since:
                    return True
            if course.ended and course.end is not None and since <= course.end <= latest.day:
                return True
        return False

    def delayed_response(self, category: Category, line: TherapyLine, track: _Track) -> bool:
        """§5: antibody and chemoimmunotherapy responses deepen slowly (IWWM-6)."""
        latest, nadir = track.latest, _nadir(track.sequence)
        slow = line.has_class(DrugClass.ANTI_CD20) or bool(
            SLOW_RESPONSE_INGREDIENTS & set(line.regimen)
        )
        return (
            category in (Category.SD, Category.MR)
            and slow
            and self.today <= add_months(line.start, self.profile.delayed_response_months)
            and latest is not None
            and nadir is not None
            and not _at_least(
                latest.value_mg_dl, self.profile.progression_factor, nadir.value_mg_dl
            )
            and (track.baseline is None or latest.value_mg_dl <= track.baseline.value_mg_dl)
            and Caveat.UNCONFIRMED_PROGRESSION not in self.caveats
        )

    # §7 hyperviscosity ----------------------------------------------------------------------
    def hyperviscosity(self) -> tuple[Hyperviscosity | None, LabResult | None]:
        profile = self.profile
        refs = reference_values(self.values, self.plasmaphereses, profile, self.today)
        igm = refs.counting[Series.TOTAL_IGM]
        old = refs.references[Series.TOTAL_IGM] is None and bool(igm)
        # "last IgM >= 4000 mg/dL: VALUE on DATE, not re-measured since"
        high = old and igm[-1].value_mg_dl >= profile.hyperviscosity_igm_mg_dl
        old_high = igm[-1] if high else None
        reference = refs.triggered(profile)
        if reference is None:
            return None, old_high
        return (
            Hyperviscosity(
                reference_value=reference,
                warning_card=self.hyperviscosity_warning(reference, refs.counting),
                latest_viscosity=self.viscosities[-1] if self.viscosities else None,
                viscosity_order_due=not any(
                    v.day >= self.today - timedelta(days=profile.viscosity_order_days)
                    for v in self.viscosities
                ),
                anti_cd20_recent=self.anti_cd20_recent(),
                recent_plasmapheresis=refs.recent_plasmapheresis,
            ),
            old_high,
        )

    def anti_cd20_recent(self) -> bool:
        flare = timedelta(days=self.profile.flare_window_days)
        return any(start <= self.today <= start + flare for start in self.anti_cd20_starts)

    def hyperviscosity_warning(
        self, reference: LabResult, counting: dict[Series, list[LabResult]]
    ) -> bool:
        profile = self.profile
        if self.anti_cd20_recent():
            return True
        if reference.series != Series.TOTAL_IGM:
            return False
        if reference.value_mg_dl >= profile.hyperviscosity_warning_igm_mg_dl:
            return True
        since = reference.day - timedelta(days=profile.hyperviscosity_reference_days)
        before = [v for v in counting[Series.TOTAL_IGM] if since <= v.day < reference.day]
        lowest = min((v.value_mg_dl for v in before), default=None)
        return lowest is not None and _at_least(
            reference.value_mg_dl, profile.progression_factor, lowest
        )

    # the whole assessment --------------------------------------------------------------
    def assess(self) -> Assessment:
        hyperviscosity, old_high = self.hyperviscosity()
        if hyperviscosity is not None:
            self.caveats.add(Caveat.HYPERVISCOSITY_RISK)
        common = {"hyperviscosity": hyperviscosity, "old_high_igm": old_high}
        line = self.line
        if line is None:
            return self.untreated(common)
        igm, m_spike = (self.track(series, line) for series in Series)
        both_exist = bool(igm.values) and bool(m_spike.values)
        chosen = self.choose_series(igm, m_spike)
        if both_exist and (chosen is None or chosen.series != Series.TOTAL_IGM):
            self.caveats.add(Caveat.METHOD_CHANGE)
        if line.unknown_regimen:
            return self.unknown_regimen(line, chosen or (igm if igm.values else m_spike), common)
        if chosen is None:
            return self.without_usable_series(line, igm, m_spike, common)
        other = self.other_series(chosen, m_spike if chosen is igm else igm)
        if other is not None:
            common["other_series"] = other
        return self.with_series(line, chosen, common)

    def unknown_regimen(self, line: TherapyLine, track: _Track, common: dict) -> Assessment:
        """§4.7: the current treatment is not recognised: NE, the change since it started as
        information, a progression of the line before as history, and a progression on the
        unrecognised treatment itself said, never hidden."""
        self.line_caveats(line, track.latest)
        self.shown_windows = track.windows
        first = min(line.unrecognised, key=lambda c: (c.start, c.ingredient))
        reason = UNRECOGNISED_TREATMENT.format(
            text=_cut_words(first.ingredient, UNRECOGNISED_TEXT_CHARS),
            since=first.start.isoformat(),
        )
        baseline, latest = track.baseline, track.latest
        since_start = (
            percent_change(baseline.value_mg_dl, latest.value_mg_dl)
            if baseline is not None and latest is not None and not baseline.lower_bound
            else None
        )
        values: dict = {
            "series": track.series if track.values else None,
            "baseline": baseline,
            "latest": latest,
            "nadir": _nadir(track.sequence) if track.after_start else None,
            "change_since_start": since_start,
            "earlier": self.earlier_progression(line, track.series),
            **common,
        }
        progress = track.progress
        if progress.confirmed_index is not None:
            confirmed = track.sequence[progress.confirmed_index]
            values["progression_confirmed"] = confirmed.day
            values["progression_value"] = confirmed
        elif progress.possible:
            self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
        return self.result(Category.NE, reason=reason, **values)

    def earlier_progression(
        self, line: TherapyLine, series: Series
    ) -> tuple[TherapyLine, date] | None:
        """§4.7: the line before had confirmed PD (shown as history)."""
        earlier = [other for other in self.lines if other.start < line.start]
        if not earlier:
            return None
        before = earlier[-1]
        for candidate in (series, *(s for s in Series if s != series)):
            track = self.track(candidate, before, before=line.start)
            if track.progress.confirmed_index is not None:
                return before, track.sequence[track.progress.confirmed_index].day
        return None

    def other_series(self, chosen: _Track, other: _Track) -> OtherSeries | None:
        """§4.1: values of the series not chosen that are newer than the chosen series'
        latest are listed, never compared across methods; step 5 on that series' own values
        says whether they are rising (a possible PD there)."""
        latest = chosen.latest
        newer = [v for v in other.values if latest is not None and v.day > latest.day]
        if not newer:
            return None
        self.caveats.add(Caveat.METHOD_CHANGE)
        if other.progress.possible:
            self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
        return OtherSeries(other.series, tuple(newer), other.progress.possible)

    def untreated(self, common: dict) -> Assessment:
        """§4.10: no line of therapy: the trend without a category, and never a nadir."""
        values = self.values[Series.TOTAL_IGM] or self.values[Series.M_SPIKE]
        if not values:
            return self.result(Category.NE, reason=NO_TREATMENT, **common)
        latest = values[-1]
        year_before = latest.day - timedelta(days=self.profile.trend_days)
        in_year = [v for v in values if year_before <= v.day < latest.day]
        return self.result(
            Category.NE,
            reason=NO_TREATMENT,
            series=latest.series,
            latest=latest,
            change_since_first=_trend_change(values[0], latest),
            change_12_months=_trend_change(in_year[0], latest) if in_year else None,
            **common,
        )

    def choose_series(self, igm: _Track, m_spike: _Track) -> _Track | None:
        """§4.1: total IgM unless stale; a progression seen by one method is not erased."""
        chosen: _Track | None = None
        if igm.usable:
            chosen = igm
            if m_spike.usable and igm.latest and m_spike.latest:
                stale = timedelta(days=self.profile.stale_series_days)
                if igm.latest.day < m_spike.latest.day - stale:
                    chosen = m_spike
        elif m_spike.usable:
            chosen = m_spike
        if chosen is not None:
            other = m_spike if chosen is igm else igm
            if other.confirmed and not chosen.confirmed:
                chosen = other
        return chosen

    def without_usable_series(
        self, line: TherapyLine, igm: _Track, m_spike: _Track, common: dict
    ) -> Assessment:
        """§4.1: neither series usable. A series with values after therapy start but no
        baseline is still checked for progression (and CR)."""
        for track in (igm, m_spike):
            if track.baseline is None and track.confirmed:
                return self.with_series(line, track, common, reason=NO_BASELINE_PD)
        primary = igm if igm.values else m_spike
        latest = primary.latest
        self.line_caveats(line, latest)
        start = line.start
        series = primary.series if primary.values else None
        if primary.baseline is None and primary.after_start:
            progress = primary.progress
            self.note_suppressed(progress)
            if progress.possible:
                self.caveats |= {Caveat.UNCONFIRMED_PROGRESSION, Caveat.NO_BASELINE}
                return self.result(
                    Category.NE,
                    reason=RISE_UNCONFIRMED.format(series=SERIES_WORDS[primary.series]),
                    series=series,
                    latest=latest,
                    nadir=_nadir(primary.sequence),
                    **common,
                )
            cr = self.complete_response(primary, start)
            if cr is not None and not self.after_plasmapheresis(latest):
                self.caveats.add(Caveat.CR_NEEDS_MARROW)
                run = self.response_run(Category.CR, primary, cr)
                since = self.response_since(run, Category.CR, cr)
                return self.result(
                    Category.CR,
                    series=series,
                    latest=latest,
                    nadir=_nadir(primary.sequence),
                    since=since,
                    durable=self.durable(run, since, latest),
                    immunofixation=self.latest_immunofixation(start),
                    **common,
                )
        if not primary.values:
            reason = unusable_reason(self.unusable) or NO_RESULTS
            self.caveats.add(Caveat.NO_BASELINE)
        elif primary.baseline is None:
            self.caveats.add(Caveat.NO_BASELINE)
            reason = NO_BASELINE.format(
                series=SERIES_WORDS[primary.series],
                days=self.profile.baseline_window_days,
                start=start.isoformat(),
            )
            earliest = start - timedelta(
                days=self.profile.baseline_window_days + self.profile.plasmapheresis_window_days
            )
            if self.plasmapheresis_between(earliest, latest.day if latest else self.today):
                self.caveats.add(Caveat.PLASMAPHERESIS)
        elif primary.after_start:
            self.caveats.add(Caveat.PLASMAPHERESIS)
            reason = ALL_AFTER_PLASMAPHERESIS.format(days=self.profile.plasmapheresis_window_days)
        else:
            reason = NO_ON_TREATMENT_RESULT
        return self.result(
            Category.NE,
            reason=reason,
            series=series,
            baseline=primary.baseline,
            latest=latest,
            nadir=_nadir(primary.sequence) if primary.after_start else None,
            **common,
        )

    def note_suppressed(self, progress: _Progress) -> None:
        self.caveats.update(block.window.caveat for block in progress.suppressed)

    def with_series(
        self, line: TherapyLine, track: _Track, common: dict, reason: str | None = None
    ) -> Assessment:
        start, baseline, latest = line.start, track.baseline, track.latest
        assert latest is not None
        progress = track.progress
        self.shown_windows = track.windows
        self.line_caveats(line, latest)
        self.note_suppressed(progress)
        exchange_from = (baseline.day if baseline else start) - timedelta(
            days=self.profile.plasmapheresis_window_days
        )
        if self.plasmapheresis_between(exchange_from, latest.day):
            self.caveats.add(Caveat.PLASMAPHERESIS)
        if baseline is not None and self.low_baseline(baseline):
            self.caveats.add(Caveat.LOW_BASELINE)
        change = percent_change(baseline.value_mg_dl, latest.value_mg_dl) if baseline else None
        values = {
            "series": track.series,
            "baseline": baseline,
            "latest": latest,
            "change": change,
            "nadir": _nadir(track.sequence),
            "continuing": self.continuing_from(line, track),
            "immunofixation": self.latest_immunofixation(start),
            **common,
        }
        if progress.possible:
            self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
        if progress.after_cr:
            self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
            self.rise_after_cr = True
        if progress.confirmed_index is not None:
            return self.progressive(track, values, reason)
        if self.after_plasmapheresis(latest):
            self.caveats.add(Caveat.PLASMAPHERESIS)
            days = self.profile.plasmapheresis_window_days
            values["change"] = None
            return self.result(
                Category.NE, reason=LATEST_AFTER_PLASMAPHERESIS.format(days=days), **values
            )
        assert baseline is not None  # without one, only a confirmed PD reaches here
        words = SERIES_WORDS[track.series]
        if (
            track.series == Series.TOTAL_IGM
            and not baseline.lower_bound
            and baseline.value_mg_dl <= self.uln(baseline)[0]
        ):
            # §4.7: a paraprotein inside the normal range cannot show a response.
            values["change"] = None
            return self.result(Category.NE, reason=IGM_NOT_MEASURABLE, **values)
        if baseline.lower_bound and not latest.value_mg_dl < baseline.value_mg_dl:
            values["change"] = None
            return self.result(Category.NE, reason=BASELINE_ABOVE_RANGE, **values)
        if latest.lower_bound:
            return self.result(
                Category.NE, reason=LATEST_ABOVE_RANGE.format(series=words), **values
            )
        suppressed = self.latest_suppressed(track)
        self.note_withdrawal(track, values)
        on_hold = self.rise_while_on_hold(track, suppressed)
        if on_hold is not None and suppressed is not None:
            values["suppressed"] = self.suppressed_rise(suppressed[1])
            return self.result(Category.NE, reason=on_hold, **values)
        rise_reason = self.rise_over_baseline(track)
        if rise_reason is not None:
            if suppressed is not None:
                values["suppressed"] = self.suppressed_rise(suppressed[1])
            return self.result(Category.NE, reason=rise_reason, **values)
        cr = self.complete_response(track, start)
        if cr is not None:
            category = Category.CR
            self.caveats.add(Caveat.CR_NEEDS_MARROW)
        else:
            assert change is not None
            category = self.category_by_reduction(change)
        if self.delayed_response(category, line, track):
            self.caveats.add(Caveat.DELAYED_RESPONSE)
        if progress.sub_floor is not None:
            nadir, risen = progress.sub_floor
            self.caveats.add(Caveat.SMALL_ABSOLUTE_RISE)
            values["rise_below_floor"] = risen.value_mg_dl - nadir.value_mg_dl
            values["from_nadir"] = percent_change(nadir.value_mg_dl, risen.value_mg_dl)
        if category == Category.SD:
            values["provisional_until"] = self.flare_end(track, latest)
        values["cr_lost"] = self.cr_lost(start)
        if suppressed is not None:
            # §4.7: the reduction is true, but the latest value is a rise a window held back:
            # said on the card, with the best response instead of "response since" (§4.8).
            nadir, blocks = suppressed
            values["suppressed"] = self.suppressed_rise(blocks)
            values["from_nadir"] = percent_change(nadir.value_mg_dl, latest.value_mg_dl)
            values["best"] = self.best_response(track)
            return self.result(category, **values)
        run = self.response_run(category, track, cr)
        since = self.response_since(run, category, cr)
        return self.result(
            category, since=since, durable=self.durable(run, since, latest), **values
        )

    # §4.5 CR lost --------------------------------------------------------------------------
    def cr_lost(self, start: date) -> tuple[date, date] | None:
        """§4.5: the line reached CR (a negative readable IFE after therapy start with the
        most recent total IgM on or before it at or below its ULN), then two consecutive
        results on different days showed the monoclonal protein again: (first, second)."""
        igm = self.values[Series.TOTAL_IGM]
        reached = [
            ife
            for ife in self.immunofixations
            if ife.day > start
            and ife.negative
            and (before := [v for v in igm if v.day <= ife.day])
            and not before[-1].lower_bound
            and before[-1].value_mg_dl <= self.uln(before[-1])[0]
        ]
        if not reached:
            return None
        since = reached[-1].day
        shows: dict[date, bool] = {}
        for ife in self.immunofixations:
            if ife.day > since and ife.reading != IfeReading.UNREADABLE:
                shows[ife.day] = shows.get(ife.day, False) or not ife.negative
        for value in self.values[Series.M_SPIKE]:
            if value.day > since and not value.is_bound:
                shows[value.day] = shows.get(value.day, False) or value.value_mg_dl > 0
        days = sorted(shows)
        for first, second in pairwise(days):
            if shows[first] and shows[second]:
                return first, second
        return None

    # §4.7 suppressed rises --------------------------------------------------------------
    def latest_suppressed(self, track: _Track) -> tuple[LabResult, list[_Block]] | None:
        """(m, the windows that hold it back) when vn is a rise over m = min(v0 ... v(n-1))
        that a window, or its recovery period, suppressed."""
        sequence = track.sequence
        if len(sequence) < 2 or sequence[-1] is not track.latest:
            return None  # the latest value is plasmapheresis-affected: no rise to speak of
        return track.progress.latest_suppressed

    @staticmethod
    def named_block(blocks: list[_Block]) -> _Block:
        """§4.7: a BTK-inhibitor hold, then a withdrawal, then a flare window."""
        return min(blocks, key=lambda b: (_WINDOW_ORDER.index(b.window.kind), b.recovery))

    def suppressed_rise(self, blocks: list[_Block]) -> SuppressedRise:
        block = self.named_block(blocks)
        until: date | None = max(b.until for b in blocks)
        if block.window.on_hold_now and not block.window.start_recorded and not block.recovery:
            until = None  # a hold on now with no recorded start: no end to name
        return SuppressedRise(block.window.kind, until, block.recovery)

    def rise_while_on_hold(
        self, track: _Track, suppressed: tuple[LabResult, list[_Block]] | None
    ) -> str | None:
        """§4.7: a BTKi of the line is on hold now and the latest value is a rise inside
        that hold's window."""
        if suppressed is None:
            return None
        for block in suppressed[1]:
            window = block.window
            if window.kind == WindowKind.BTKI_HOLD and window.on_hold_now and not block.recovery:
                since = (
                    f"since {window.start.isoformat()}"
                    if window.start_recorded
                    else "start not recorded"
                )
                words = SERIES_WORDS[track.series]
                return RISE_WHILE_ON_HOLD.format(series=words, drug=window.drug, since=since)
        return None

    def flare_end(self, track: _Track, latest: LabResult) -> date | None:
        """§4.7: SD is provisional while the latest value lies inside a flare window."""
        ends = [
            w.end
            for w in track.windows
            if w.kind == WindowKind.ANTI_CD20_FLARE and w.contains(latest.day)
        ]
        return max(ends) if ends else None

    def note_withdrawal(self, track: _Track, values: dict) -> None:
        """§4.6: the withdrawal is named when its window suppressed a rise or holds the
        latest value."""
        latest = track.latest
        for window in track.windows:
            if window.kind != WindowKind.BTKI_WITHDRAWAL:
                continue
            suppressed = any(b.window == window for b in track.progress.suppressed)
            holds_latest = latest is not None and window.contains(latest.day)
            if suppressed or holds_latest:
                self.caveats.add(Caveat.BTKI_INTERRUPTION)
                values["withdrawal"] = Withdrawal(window.drug or "", window.start, window.end)

    def best_response(self, track: _Track) -> BestResponse | None:
        """§4.8: the reduction category the nadir reached, from the first value reaching it."""
        baseline = track.baseline
        after = [v for v in track.sequence[1:] if not v.lower_bound]
        nadir = _nadir(after)
        if baseline is None or nadir is None:
            return None
        category = self.category_by_reduction(
            percent_change(baseline.value_mg_dl, nadir.value_mg_dl)
        )
        if category == Category.SD:
            return None
        first = next(
            v
            for v in after
            if self.category_by_reduction(percent_change(baseline.value_mg_dl, v.value_mg_dl))
            in _AT_LEAST[category]
        )
        return BestResponse(category, first.day)

    def low_baseline(self, baseline: LabResult) -> bool:
        if baseline.series == Series.M_SPIKE:
            return baseline.value_mg_dl < self.profile.low_baseline_m_spike_mg_dl
        multiple = self.profile.low_baseline_uln_multiple
        return baseline.value_mg_dl < multiple * self.uln(baseline)[0]

    def rise_over_baseline(self, track: _Track) -> str | None:
        """§4.7: a latest value that is a rise over the baseline, with PD not confirmed, is
        no stable disease (a change of less than 25 % either way): NE, and why."""
        baseline, latest = track.baseline, track.latest
        assert baseline is not None and latest is not None
        if baseline.lower_bound or self.rise(latest, baseline, track.series) != _Rise.RISE:
            return None
        words = SERIES_WORDS[track.series]
        blocked = self.blocks(latest, track.windows, track.peaks)
        if not blocked:
            self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
            return RISE_UNCONFIRMED.format(series=words)
        self.caveats.update(block.window.caveat for block in blocked)
        block = self.named_block(blocked)
        until = max(b.until for b in blocked).isoformat()
        window = block.window
        if block.recovery and window.kind == WindowKind.BTKI_WITHDRAWAL:
            return RISE_AFTER_WITHDRAWAL.format(series=words, until=until)
        if block.recovery:
            return RISE_IN_RECOVERY.format(series=words, until=until)
        if window.kind == WindowKind.ANTI_CD20_FLARE:
            return RISE_IN_FLARE.format(series=words, until=until)
        if window.kind == WindowKind.BTKI_WITHDRAWAL:
            return RISE_IN_WITHDRAWAL.format(
                series=words, drug=window.drug, stopped=window.start.isoformat(), until=until
            )
        return RISE_IN_HOLD.format(series=words, until=until)

    def progressive(self, track: _Track, values: dict, reason: str | None) -> Assessment:
        """§4.5: PD confirmed at any point of the line stands for that line."""
        progress = track.progress
        k = progress.confirmed_index
        nadir = progress.nadir
        assert k is not None and nadir is not None
        first, second = track.sequence[k - 1], track.sequence[k]
        floor = self.profile.small_absolute_rise_mg_dl
        if any(v.value_mg_dl - nadir.value_mg_dl < floor for v in (first, second)):
            # Only possible without a progression floor (`iwwm6-strict`, §5).
            self.caveats.add(Caveat.SMALL_ABSOLUTE_RISE)
        latest = track.sequence[-1]
        if latest is not second and self.rise(latest, nadir, track.series) != _Rise.RISE:
            self.caveats.add(Caveat.PD_THEN_FALL)
        self.caveats.discard(Caveat.UNCONFIRMED_PROGRESSION)
        # The rise that confirmed progression: a later fall does not undo it (§4.5), and the
        # card says that IgM has since fallen (pd-then-fall).
        from_nadir = (
            percent_change(nadir.value_mg_dl, second.value_mg_dl) if nadir.value_mg_dl > 0 else None
        )
        values["nadir"] = nadir
        values["duration"] = self.response_duration(track, nadir, first)
        return self.result(
            Category.PD,
            reason=reason,
            progression_confirmed=second.day,
            progression_value=second,
            from_nadir=from_nadir,
            **values,
        )

    def response_duration(
        self, track: _Track, nadir: LabResult, first_rise: LabResult
    ) -> ResponseDuration | None:
        """§4 step 8 [design]: how long the response before the progression lasted, from the
        first value reaching the nadir's category to the first value of the confirming pair
        (IWWM-7: retreatment weighs it; the card states it and recommends nothing)."""
        baseline = track.baseline
        if baseline is None or baseline.lower_bound:
            return None
        category = self.category_by_reduction(
            percent_change(baseline.value_mg_dl, nadir.value_mg_dl)
        )
        if category not in _AT_LEAST:
            return None
        reached = next(
            v
            for v in track.sequence[1:]
            if not v.lower_bound
            and self.category_by_reduction(percent_change(baseline.value_mg_dl, v.value_mg_dl))
            in _AT_LEAST[category]
        )
        return ResponseDuration(
            category, reached.day, first_rise.day, whole_months(reached.day, first_rise.day)
        )

    def continuing_from(self, line: TherapyLine, track: _Track) -> ContinuingFrom | None:
        """§4.9: for an add-on line, the change since the line it continued started."""
        earlier = line.continues
        if earlier is None:
            return None
        baseline = self.baseline(track.values, earlier.start)
        latest = track.latest
        change = None
        if baseline is not None and latest is not None:
            change = percent_change(baseline.value_mg_dl, latest.value_mg_dl)
        return ContinuingFrom(earlier.start, baseline, change)

    @staticmethod
    def held_drug(line: TherapyLine | None) -> str | None:
        """§3.5: the BTKi of the line that is on hold now."""
        held = [c for c in line.courses_of(DrugClass.BTKI) if c.on_hold] if line else []
        return held[0].ingredient if held else None

    @staticmethod
    def hold_since(line: TherapyLine | None) -> date | None:
        held = [c for c in line.courses_of(DrugClass.BTKI) if c.on_hold] if line else []
        starts = [h.start for c in held for h in c.holds if h.resumed is None and h.start]
        return starts[0] if starts else None

    def latest_immunofixation(self, therapy_start: date) -> ImmunofixationResult | None:
        after_start = [
            i
            for i in self.immunofixations
            if i.day > therapy_start and i.reading != IfeReading.UNREADABLE
        ]
        return after_start[-1] if after_start else None

    def result(
        self,
        category: Category,
        *,
        reason: str | None = None,
        series: Series | None = None,
        change: Fraction | None = None,
        baseline: LabResult | None = None,
        latest: LabResult | None = None,
        nadir: LabResult | None = None,
        since: date | None = None,
        durable: bool = False,
        immunofixation: ImmunofixationResult | None = None,
        continuing: ContinuingFrom | None = None,
        progression_confirmed: date | None = None,
        progression_value: LabResult | None = None,
        from_nadir: Fraction | None = None,
        hyperviscosity: Hyperviscosity | None = None,
        old_high_igm: LabResult | None = None,
        other_series: OtherSeries | None = None,
        rise_below_floor: Decimal | None = None,
        suppressed: SuppressedRise | None = None,
        best: BestResponse | None = None,
        provisional_until: date | None = None,
        withdrawal: Withdrawal | None = None,
        duration: ResponseDuration | None = None,
        cr_lost: tuple[date, date] | None = None,
        change_since_start: Fraction | None = None,
        earlier: tuple[TherapyLine, date] | None = None,
        change_since_first: TrendChange | None = None,
        change_12_months: TrendChange | None = None,
    ) -> Assessment:
        uln, uln_is_default = None, False
        uln_source = latest or baseline
        if series == Series.TOTAL_IGM and uln_source is not None:
            uln, uln_is_default = self.uln(uln_source)
        if Caveat.UNCONFIRMED_PROGRESSION in self.caveats:
            progression = Progression.POSSIBLE
        elif category == Category.PD:
            progression = Progression.CONFIRMED
        else:
            progression = None
        bound = bool(
            change is not None
            and ((latest and latest.is_bound) or (baseline and baseline.lower_bound))
        )
        line = self.line
        status, ended = line_status(line, self.today, self.profile) if line else (None, None)
        return Assessment(
            criteria=self.profile.label,
            category=category,
            wm_evidence=self.evidence,
            wm_condition=self.wm_condition,
            progression_floor_mg_dl=self.profile.progression_min_rise_mg_dl,
            series=series,
            values=tuple(self.values[series]) if series is not None else (),
            lines=self.lines,
            percent_change=change,
            change_is_bound=bound,
            baseline=baseline,
            nadir=nadir,
            latest=latest,
            line=line,
            line_ended=ended,
            line_status=status,
            caveats=tuple(sorted(self.caveats, key=CAVEAT_ORDER.__getitem__)),
            reason=reason,
            # Sorted, so the answer never depends on the order the EHR listed resources in.
            excluded=tuple(sorted(set(self.excluded), key=lambda e: (e.reference, e.reason))),
            uln_mg_dl=uln,
            uln_is_default=uln_is_default,
            progression=progression,
            progression_confirmed=progression_confirmed,
            progression_value=progression_value,
            percent_change_from_nadir=from_nadir,
            response_since=since,
            durable=durable,
            latest_immunofixation=immunofixation,
            continuing_from=continuing,
            discordances=tuple(self.discordances),
            hyperviscosity=hyperviscosity,
            old_high_igm=old_high_igm,
            rise_after_cr=self.rise_after_cr and Caveat.UNCONFIRMED_PROGRESSION in self.caveats,
            rise_below_floor=rise_below_floor,
            rise_suppressed=suppressed,
            best_response=best,
            provisional_until=provisional_until,
            withdrawal=withdrawal,
            response_duration=duration,
            other_series=other_series,
            change_since_line_start=change_since_start,
            earlier_progression=(earlier[0].regimen, earlier[1]) if earlier else None,
            cr_lost=cr_lost[0] if cr_lost else None,
            cr_lost_confirmed=cr_lost[1] if cr_lost else None,
            switched_from=tuple((c.ingredient, day) for c, day in line.switched) if line else (),
            held_drug=self.held_drug(line),
            hold_since=self.hold_since(line),
            held_back=tuple(self.held_back),
            windows=tuple(
                SuppressionWindow(w.kind, w.start, w.end, w.drug) for w in self.shown_windows
            ),
            # each series in date order, one after the other
            usable_results=(*self.values[Series.TOTAL_IGM], *self.values[Series.M_SPIKE]),
            change_since_first=change_since_first,
            change_12_months=change_12_months,
            unusable=tuple(self.unusable),
        )


def assess_response(record: PatientRecord, profile: CriteriaProfile, today: date) -> Assessment:
    """Classify the response to the current line of therapy (clinical-rules.md §4)."""
    return _Assessor(record, profile, today).assess()
