"""IgM response assessment under IWWM-6 (clinical-rules.md §4 and §5), step by step.

`assess_response` is a pure function of the patient's record, the criteria profile and
"today". Arithmetic is exact (`Fraction`); thresholds compare unrounded values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Context, Decimal
from fractions import Fraction

from .criteria import CriteriaProfile
from .dates import add_months
from .models import (
    CAVEAT_ORDER,
    Assessment,
    Category,
    Caveat,
    DrugClass,
    Exclusion,
    ImmunofixationResult,
    LabResult,
    PatientRecord,
    Progression,
    Series,
    TherapyLine,
)
from .therapy import current_line, lines_of_therapy

# Enough digits that products of laboratory values are never rounded.
_EXACT = Context(prec=200)

NO_TREATMENT = "no WM treatment found"
NO_RESULTS = "no IgM or M-spike results"
NO_ON_TREATMENT_RESULT = "no on-treatment result yet"
LATEST_AFTER_PLASMAPHERESIS = (
    "the latest result was measured within {days} days after plasmapheresis"
)


def displayed_percent(change: Fraction) -> Decimal:
    """§4.4: truncate toward zero to one decimal, so the shown figure never crosses a
    threshold the exact one did not (24.975 % shows as 24.9 %)."""
    tenths = int(change * 10)  # int() truncates toward zero
    return Decimal(tenths) / 10


def percent_change(baseline: Decimal, latest: Decimal) -> Fraction:
    return (Fraction(latest) - Fraction(baseline)) / Fraction(baseline) * 100


@dataclass(frozen=True)
class _Window:
    """A period in which a rise is no evidence of progression (§4.6)."""

    start: date
    end: date | None  # None: still open
    caveat: Caveat

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


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
        self.all_results = sorted(results, key=lambda r: r.sort_key)
        self.immunofixations = sorted(
            (i for i in record.immunofixations if i.day <= latest_allowed),
            key=lambda i: (i.day, i.reference),
        )
        self.plasmaphereses = sorted(
            p.day for p in record.plasmaphereses if p.day <= latest_allowed
        )
        self.plasmapheresis_window = timedelta(days=profile.plasmapheresis_window_days)
        # A drug that starts after today is planned, not given: it is in no line yet.
        given = [episode for episode in record.drug_episodes if episode.start <= today]
        self.line = current_line(lines_of_therapy(given, profile), today)
        self.caveats: set[Caveat] = set()

    # §3 ULN --------------------------------------------------------------------------
    def uln(self, result: LabResult) -> tuple[Decimal, bool]:
        if result.uln_mg_dl is not None and result.uln_mg_dl > 0:
            return result.uln_mg_dl, False
        return self.profile.default_uln_mg_dl, True

    # §4.2 plasmapheresis -------------------------------------------------------------
    def after_plasmapheresis(self, day: date) -> bool:
        window = self.plasmapheresis_window
        return any(p <= day <= p + window for p in self.plasmaphereses)

    def series_values(self, series: Series) -> list[LabResult]:
        # A lower bound (">7000") says too little for a response: left out when mapped,
        # except for the hyperviscosity check.
        return [r for r in self.all_results if r.series == series and not r.lower_bound]

    # §4.2 baseline --------------------------------------------------------------------
    def baseline(self, values: list[LabResult], therapy_start: date) -> LabResult | None:
        earliest = therapy_start - timedelta(days=self.profile.baseline_window_days)
        for result in reversed(values):
            if result.day > therapy_start or result.day < earliest:
                continue
            if result.upper_bound or result.value_mg_dl <= 0:
                continue  # a bound is never a baseline; a zero gives no change
            if self.after_plasmapheresis(result.day):
                continue
            return result
        return None

    def usable(self, values: list[LabResult], therapy_start: date) -> bool:
        """§4.1: a series is usable with a baseline and an on-treatment value."""
        return self.baseline(values, therapy_start) is not None and any(
            r.day > therapy_start for r in values
        )

    # §4.6 suppression windows -----------------------------------------------------------
    def windows(self, line: TherapyLine) -> list[_Window]:
        windows = []
        flare = timedelta(days=self.profile.flare_window_days)
        after_hold = timedelta(days=self.profile.post_hold_window_days)
        for course in line.courses_of(DrugClass.ANTI_CD20):
            windows.append(_Window(course.start, course.start + flare, Caveat.ANTI_CD20_FLARE))
        for course in line.courses_of(DrugClass.BTKI):
            for hold in course.holds:
                if hold.start is None:
                    continue  # start unknown: the caveat is shown, nothing is suppressed
                end = hold.resumed + after_hold if hold.resumed else None
                windows.append(_Window(hold.start, end, Caveat.BTKI_INTERRUPTION))
        return windows

    # §4.5 progression ---------------------------------------------------------------
    def rises(self, value: LabResult, nadir: Decimal) -> bool:
        if value.upper_bound:
            return False  # "<25" can never prove a rise
        factor = self.profile.progression_factor
        # value >= factor * nadir, exactly: value * denominator >= nadir * numerator.
        if _EXACT.multiply(value.value_mg_dl, factor.denominator) < _EXACT.multiply(
            nadir, factor.numerator
        ):
            return False
        floor = self.profile.progression_min_rise_mg_dl
        return floor is None or value.value_mg_dl - nadir >= floor

    def progression(self, values: list[LabResult], line: TherapyLine) -> Progression | None:
        """values: v0 (baseline) ... vn (latest), plasmapheresis-affected values skipped."""
        windows = self.windows(line)

        def suppressing(*points: LabResult) -> set[Caveat]:
            return {w.caveat for w in windows for p in points if w.contains(p.day)}

        n = len(values) - 1
        suppressed: set[Caveat] = set()
        if n >= 2:
            nadir = min(v.value_mg_dl for v in values[: n - 1])
            if self.rises(values[n - 1], nadir) and self.rises(values[n], nadir):
                suppressed = suppressing(values[n - 1], values[n])
                if not suppressed:
                    return Progression.CONFIRMED
        if n >= 1:
            nadir = min(v.value_mg_dl for v in values[:n])
            if self.rises(values[n], nadir):
                latest_suppressed = suppressing(values[n])
                if not latest_suppressed:
                    self.caveats.add(Caveat.UNCONFIRMED_PROGRESSION)
                    self.caveats |= suppressed
                    return Progression.POSSIBLE
                suppressed |= latest_suppressed
        if suppressed:
            self.caveats |= suppressed
            return Progression.SUPPRESSED
        return None

    # §4.7 CR ------------------------------------------------------------------------------
    def latest_immunofixation(self, therapy_start: date) -> ImmunofixationResult | None:
        after_start = [i for i in self.immunofixations if i.day > therapy_start]
        return after_start[-1] if after_start else None

    def igm_for_cr(
        self, series: Series, latest: LabResult, therapy_start: date
    ) -> LabResult | None:
        if series == Series.TOTAL_IGM:
            return latest
        # Assessed on the M-spike: CR still needs a normal total IgM after therapy start.
        igm = [r for r in self.series_values(Series.TOTAL_IGM) if r.day > therapy_start]
        return igm[-1] if igm else None

    def complete_response(self, series: Series, latest: LabResult, therapy_start: date) -> bool:
        igm = self.igm_for_cr(series, latest, therapy_start)
        if igm is None or igm.value_mg_dl > self.uln(igm)[0]:
            return False
        ife = self.latest_immunofixation(therapy_start)
        return ife is not None and ife.negative

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
    def response_since(
        self, category: Category, values: list[LabResult], baseline: LabResult
    ) -> date | None:
        """§4.8: the first on-treatment value that reached the category's threshold."""
        thresholds = {
            Category.VGPR: self.profile.vgpr_reduction_percent,
            Category.PR: self.profile.pr_reduction_percent,
            Category.MR: self.profile.mr_reduction_percent,
        }
        for value in values[1:]:
            if category == Category.CR:
                reached = value.value_mg_dl <= self.uln(value)[0]
            elif category in thresholds:
                # reduction >= t %  <=>  value * 100 <= baseline * (100 - t), exactly.
                limit = _EXACT.multiply(baseline.value_mg_dl, 100 - thresholds[category])
                reached = _EXACT.multiply(value.value_mg_dl, 100) <= limit
            else:
                return None
            if reached:
                return value.day
        return None

    def durable(self, since: date | None, latest: LabResult) -> bool:
        if since is None:
            return False
        return latest.day >= add_months(since, self.profile.durable_months)

    # §5 caveats that depend on the line, not the category ---------------------------------
    def line_caveats(self, line: TherapyLine, latest: LabResult | None) -> None:
        if line.has_class(DrugClass.BTKI):
            self.caveats.add(Caveat.BTKI_DISCORDANCE)
        if line.has_class(DrugClass.PROTEASOME_INHIBITOR, DrugClass.MTOR_INHIBITOR):
            self.caveats.add(Caveat.PI_MTOR_DISCORDANCE)
        flare = timedelta(days=self.profile.flare_window_days)
        for course in line.courses_of(DrugClass.ANTI_CD20):
            if course.start <= self.today <= course.start + flare:
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

    def hyperviscosity(self) -> LabResult | None:
        """The latest total IgM, which may be a lower bound but not an upper bound."""
        igm = [r for r in self.all_results if r.series == Series.TOTAL_IGM]
        return igm[-1] if igm else None

    def plasmapheresis_between(self, first: date, last: date) -> bool:
        return any(first <= p <= last for p in self.plasmaphereses)

    # the whole assessment --------------------------------------------------------------
    def assess(self) -> Assessment:
        latest_igm = self.hyperviscosity()
        if (
            latest_igm is not None
            and not latest_igm.upper_bound
            and latest_igm.value_mg_dl >= self.profile.hyperviscosity_igm_mg_dl
        ):
            self.caveats.add(Caveat.HYPERVISCOSITY_RISK)
        igm = self.series_values(Series.TOTAL_IGM)
        m_spike = self.series_values(Series.M_SPIKE)
        line = self.line
        if line is None:
            values = igm or m_spike
            return self.result(
                Category.NE,
                reason=NO_TREATMENT,
                series=values[0].series if values else None,
                latest=values[-1] if values else None,
                nadir=min(values, key=_nadir_key) if values else None,
                latest_igm=latest_igm,
            )
        start = line.start
        both = bool(igm) and bool(m_spike)
        if self.usable(igm, start):
            series, values = Series.TOTAL_IGM, igm
        elif self.usable(m_spike, start):
            series, values = Series.M_SPIKE, m_spike
            if both:
                self.caveats.add(Caveat.METHOD_CHANGE)
        else:
            if both:
                self.caveats.add(Caveat.METHOD_CHANGE)
            values = igm or m_spike
            latest = values[-1] if values else None
            self.line_caveats(line, latest)
            baseline = self.baseline(values, start) if values else None
            reason = NO_ON_TREATMENT_RESULT
            if baseline is None:
                self.caveats.add(Caveat.NO_BASELINE)
                reason = self.no_baseline_reason(values, start)
                earliest = start - timedelta(
                    days=self.profile.baseline_window_days + self.profile.plasmapheresis_window_days
                )
                if self.plasmapheresis_between(earliest, latest.day if latest else self.today):
                    self.caveats.add(Caveat.PLASMAPHERESIS)
            return self.result(
                Category.NE,
                reason=reason,
                series=values[0].series if values else None,
                baseline=baseline,
                latest=latest,
                latest_igm=latest_igm,
            )

        baseline = self.baseline(values, start)
        assert baseline is not None  # usable() checked it
        latest = values[-1]
        self.line_caveats(line, latest)
        if self.plasmapheresis_between(
            baseline.day - timedelta(days=self.profile.plasmapheresis_window_days), latest.day
        ):
            self.caveats.add(Caveat.PLASMAPHERESIS)
        uln, _ = self.uln(baseline)
        if baseline.value_mg_dl < self.profile.low_baseline_uln_multiple * uln:
            self.caveats.add(Caveat.LOW_BASELINE)
        if self.after_plasmapheresis(latest.day):
            self.caveats.add(Caveat.PLASMAPHERESIS)
            return self.result(
                Category.NE,
                reason=LATEST_AFTER_PLASMAPHERESIS.format(
                    days=self.profile.plasmapheresis_window_days
                ),
                series=series,
                baseline=baseline,
                latest=latest,
                latest_igm=latest_igm,
            )
        baseline_key = baseline.sort_key
        sequence = [baseline] + [
            v for v in values if v.sort_key > baseline_key and not self.after_plasmapheresis(v.day)
        ]
        change = percent_change(baseline.value_mg_dl, latest.value_mg_dl)
        progression = self.progression(sequence, line)
        if progression == Progression.CONFIRMED:
            category = Category.PD
        elif self.complete_response(series, latest, start):
            category = Category.CR
            self.caveats.add(Caveat.CR_NEEDS_MARROW)
        else:
            category = self.category_by_reduction(change)
        since = self.response_since(category, sequence, baseline)
        return self.result(
            category,
            series=series,
            change=change,
            baseline=baseline,
            latest=latest,
            nadir=min(sequence, key=_nadir_key),
            latest_igm=latest_igm,
            progression=progression,
            since=since,
            durable=self.durable(since, latest),
            immunofixation=self.latest_immunofixation(start),
        )

    def no_baseline_reason(self, values: list[LabResult], start: date) -> str:
        if not values:
            return NO_RESULTS
        return (
            f"no usable {values[0].series.value} result in the "
            f"{self.profile.baseline_window_days} days up to therapy start ({start.isoformat()})"
        )

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
        latest_igm: LabResult | None = None,
        progression: Progression | None = None,
        since: date | None = None,
        durable: bool = False,
        immunofixation: ImmunofixationResult | None = None,
    ) -> Assessment:
        uln_source = latest or baseline
        uln, uln_is_default = self.uln(uln_source) if uln_source else (None, False)
        return Assessment(
            criteria=self.profile.label,
            category=category,
            series=series,
            percent_change=change,
            change_is_bound=bool(change is not None and latest and latest.upper_bound),
            baseline=baseline,
            nadir=nadir,
            latest=latest,
            line=self.line,
            caveats=tuple(sorted(self.caveats, key=CAVEAT_ORDER.__getitem__)),
            reason=reason,
            # Sorted, so the answer never depends on the order the EHR listed resources in.
            excluded=tuple(sorted(self.excluded, key=lambda e: (e.reference, e.reason))),
            uln_mg_dl=uln,
            uln_is_default=uln_is_default,
            progression=progression,
            response_since=since,
            durable=durable,
            latest_total_igm=latest_igm,
            latest_immunofixation=immunofixation,
        )


def _nadir_key(result: LabResult) -> tuple[Decimal, date, str]:
    # The lowest value; a bound counts at its bound value (the best figure available).
    return (result.value_mg_dl, result.day, result.reference)


def assess_response(record: PatientRecord, profile: CriteriaProfile, today: date) -> Assessment:
    """Classify the response to the current line of therapy (clinical-rules.md §4)."""
    return _Assessor(record, profile, today).assess()
