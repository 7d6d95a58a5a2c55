"""IgM response assessment under IWWM-6 (clinical-rules.md §4, §5 and §7), step by step.

`assess_response` is a pure function of the patient's record, the criteria profile and
"today". Arithmetic is exact (`Fraction`, `Decimal` products); thresholds compare
unrounded values.

This module holds the order of the steps (`_Assessor.assess`) and what the answer is made
of (`_Assessor.result`); each rule lives in the module of its section of
clinical-rules.md:

- `series`: §4.1 which series, §4.2 baseline (with §3.1 ULN and §3.6 plasmapheresis);
- `change`: §4.3-4.4 change and nadir;
- `progression`: §4.5 rises, confirmation, the floor, CR lost;
- `windows`: §4.6-4.7 flare, hold and withdrawal windows, and the rises they hold back;
- `response`: §4.7-4.9 category, response since, durability, best response;
- `caveats`: §5 caveats of the line, §7 hyperviscosity;
- `not_evaluable`: the NE answers (§4.1, §4.7, §4.10);
- `reasons`: the words of those answers; `tracking`: the working state they share.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from .caveats import CaveatRules
from .change import nadir_of, percent_change
from .criteria import CriteriaProfile
from .laboratory import HELD_BACK, hold_back_implausible, one_value_per_day
from .models import (
    CAVEAT_ORDER,
    Assessment,
    BestResponse,
    Category,
    Caveat,
    ContinuingFrom,
    DrugClass,
    Exclusion,
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
    TrendChange,
    UnusableResult,
    Withdrawal,
)
from .not_evaluable import NotEvaluable
from .progression import ProgressionRules
from .reasons import (
    BASELINE_ABOVE_RANGE,
    IGM_NOT_MEASURABLE,
    LATEST_ABOVE_RANGE,
    LATEST_AFTER_PLASMAPHERESIS,
    SERIES_WORDS,
)
from .response import ResponseRules
from .series import SeriesRules
from .therapy import TreatmentHistory, line_status, treatment_history
from .tracking import Track, Window
from .windows import WindowRules

# §3.7: courses that are no evidence of WM (used in other diseases, or only with a regimen).
NOT_EVIDENCE = frozenset(
    {
        DrugClass.PARTNER,
        DrugClass.UNRECOGNISED,
        DrugClass.AUTOLOGOUS_TRANSPLANT,
        DrugClass.CONDITIONING,
    }
)


class _Assessor(
    SeriesRules, ProgressionRules, WindowRules, ResponseRules, CaveatRules, NotEvaluable
):
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
        self.shown_windows: list[Window] = []  # the chosen series' windows, for the chart
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

    def with_series(
        self, line: TherapyLine, track: Track, common: dict, reason: str | None = None
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
            "nadir": nadir_of(track.sequence),
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
