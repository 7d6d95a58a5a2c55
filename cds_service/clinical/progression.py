"""Rises and progression (clinical-rules.md §4.5): a rise over the nadir, its confirmation,
the floor, the after-CR rule, CR lost, and the questions the line rules (§3.5 rules 2 and 3)
ask of progression.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

from .change import (
    percent_change,
    running_nadirs,
)
from .exact import at_least as _at_least
from .models import (
    Assessment,
    Category,
    Caveat,
    IfeReading,
    LabResult,
    Series,
    TherapyLine,
    WindowKind,
)
from .reasons import (
    RISE_AFTER_WITHDRAWAL,
    RISE_IN_FLARE,
    RISE_IN_HOLD,
    RISE_IN_RECOVERY,
    RISE_IN_WITHDRAWAL,
    RISE_UNCONFIRMED,
    SERIES_WORDS,
)
from .tracking import Progress, Rise, Track, Window


class ProgressionRules:
    """Rises over the nadir and when they are progression.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

    # §4.5 rises --------------------------------------------------------------------------
    def rise(self, value: LabResult, nadir: LabResult, series: Series) -> Rise:
        """§4.5: the IWWM-6 arithmetic, then the profile's progression floor."""
        if value.upper_bound:
            return Rise.NONE  # "<25" can never prove a rise
        amount, lowest = value.value_mg_dl, nadir.value_mg_dl
        if not _at_least(amount, self.profile.progression_factor, lowest):
            return Rise.NONE
        if series == Series.TOTAL_IGM:
            if amount <= self.uln(value)[0]:
                return Rise.NONE  # inside the normal range: noise, not progression
        elif amount < self.profile.m_spike_rise_floor_mg_dl:
            return Rise.NONE  # a band too small to quantify reliably
        floor = self.profile.progression_min_rise_mg_dl
        if floor is not None and amount - lowest < floor:
            return Rise.SUB_FLOOR
        if series == Series.TOTAL_IGM and self.discounted_after_cr(value, nadir):
            return Rise.AFTER_CR
        return Rise.RISE

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

    # §4.5 progression -----------------------------------------------------------------------
    def progression(
        self, sequence: list[LabResult], series: Series, windows: list[Window]
    ) -> Progress:
        progress = Progress()
        n = len(sequence) - 1
        nadirs = running_nadirs(sequence)
        peaks = self.window_peaks(windows, sequence)
        for k in range(2, n + 1):
            nadir = nadirs[k - 1]  # min(v0 ... v(k-2))
            if nadir is None:
                continue
            pair = (sequence[k - 1], sequence[k])
            if (
                self.rise(pair[0], nadir, series) == Rise.RISE
                and self.rise(pair[1], nadir, series) == Rise.RISE
            ):
                blocked = [b for v in pair for b in self.blocks(v, windows, peaks)]
                if not blocked:
                    progress.confirmed_index, progress.nadir = k, nadir
                    return progress
                progress.suppressed += blocked
        nadir = nadirs[n] if n >= 1 else None  # min(v0 ... v(n-1))
        if nadir is not None:
            latest_rise = self.rise(sequence[n], nadir, series)
            if latest_rise == Rise.RISE:
                blocked = self.blocks(sequence[n], windows, peaks)
                progress.suppressed += blocked
                progress.possible = not blocked
                if blocked:
                    progress.latest_suppressed = (nadir, blocked)
            progress.after_cr = latest_rise == Rise.AFTER_CR
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
        windows: list[Window],
        peaks: dict[Window, Decimal],
    ) -> tuple[LabResult, LabResult] | None:
        """§4.5 sub-floor rise: v(n-1) and vn both meet the IWWM-6 arithmetic over
        m = min(v0 ... v(n-2)), at least one under the floor, both outside every window. Judged
        on the latest two values only; it never stands for the line."""
        pair = (sequence[-2], sequence[-1])
        kinds = [self.rise(v, nadir, series) for v in pair]
        if Rise.SUB_FLOOR not in kinds or not all(
            kind in (Rise.RISE, Rise.SUB_FLOOR) for kind in kinds
        ):
            return None
        if any(self.blocks(v, windows, peaks) for v in pair):
            return None
        return nadir, pair[1]

    # §3.5 the questions rules 2 and 3 ask of a line built so far ----------------------------
    def rise_before(self, line: TherapyLine, day: date) -> bool:
        for series in Series:
            sequence = self.track(series, line, before=day).sequence
            nadirs = running_nadirs(sequence)
            for k in range(1, len(sequence)):
                nadir = nadirs[k]
                if nadir is not None and self.rise(sequence[k], nadir, series) == Rise.RISE:
                    return True
        return False

    def confirmed_pd_before(self, line: TherapyLine, day: date) -> bool:
        return any(self.track(series, line, before=day).confirmed for series in Series)

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

    def low_baseline(self, baseline: LabResult) -> bool:
        if baseline.series == Series.M_SPIKE:
            return baseline.value_mg_dl < self.profile.low_baseline_m_spike_mg_dl
        multiple = self.profile.low_baseline_uln_multiple
        return baseline.value_mg_dl < multiple * self.uln(baseline)[0]

    def rise_over_baseline(self, track: Track) -> str | None:
        """§4.7: a latest value that is a rise over the baseline, with PD not confirmed, is
        no stable disease (a change of less than 25 % either way): NE, and why."""
        baseline, latest = track.baseline, track.latest
        assert baseline is not None and latest is not None
        if baseline.lower_bound or self.rise(latest, baseline, track.series) != Rise.RISE:
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

    def progressive(self, track: Track, values: dict, reason: str | None) -> Assessment:
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
        if latest is not second and self.rise(latest, nadir, track.series) != Rise.RISE:
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
