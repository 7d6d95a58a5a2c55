"""Series and baseline (clinical-rules.md §4.1, §4.2; the ULN of §3.1; plasmapheresis, §3.6):
one series read against one line of therapy, which series is assessed, and the other one's
newer values.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from .laboratory import lowered_by_exchange
from .models import (
    Caveat,
    IfeReading,
    ImmunofixationResult,
    LabResult,
    OtherSeries,
    Series,
    TherapyLine,
)
from .tracking import Track


class SeriesRules:
    """Which series, its baseline and its values after therapy start.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

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

    def track(self, series: Series, line: TherapyLine, before: date | None = None) -> Track:
        values = [v for v in self.values[series] if before is None or v.day < before]
        baseline = self.baseline(values, line.start)
        after_start = [v for v in values if v.day > line.start]
        sequence = ([baseline] if baseline else []) + [
            v for v in after_start if not self.after_plasmapheresis(v)
        ]
        windows = self.windows(line, sequence, series)
        progress = self.progression(sequence, series, windows)
        peaks = self.window_peaks(windows, sequence)
        return Track(series, values, baseline, sequence, after_start, progress, windows, peaks)

    def choose_series(self, igm: Track, m_spike: Track) -> Track | None:
        """§4.1: total IgM unless stale; a progression seen by one method is not erased."""
        chosen: Track | None = None
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

    def other_series(self, chosen: Track, other: Track) -> OtherSeries | None:
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

    def latest_immunofixation(self, therapy_start: date) -> ImmunofixationResult | None:
        after_start = [
            i
            for i in self.immunofixations
            if i.day > therapy_start and i.reading != IfeReading.UNREADABLE
        ]
        return after_start[-1] if after_start else None
