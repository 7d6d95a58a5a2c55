"""Answers without a category (NE): no line of therapy (clinical-rules.md §4.10), a treatment
not recognised (§4.7), and no usable series (§4.1).
"""

from __future__ import annotations

from datetime import timedelta

from .change import (
    nadir_of,
    percent_change,
    trend_change,
)
from .models import (
    Assessment,
    Category,
    Caveat,
    Series,
    TherapyLine,
)
from .reasons import (
    ALL_AFTER_PLASMAPHERESIS,
    NO_BASELINE,
    NO_BASELINE_PD,
    NO_ON_TREATMENT_RESULT,
    NO_RESULTS,
    NO_TREATMENT,
    RISE_UNCONFIRMED,
    SERIES_WORDS,
    UNRECOGNISED_TEXT_CHARS,
    UNRECOGNISED_TREATMENT,
    cut_words,
    unusable_reason,
)
from .tracking import Track


class NotEvaluable:
    """The NE answers.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

    def unknown_regimen(self, line: TherapyLine, track: Track, common: dict) -> Assessment:
        """§4.7: the current treatment is not recognised: NE, the change since it started as
        information, a progression of the line before as history, and a progression on the
        unrecognised treatment itself said, never hidden."""
        self.line_caveats(line, track.latest)
        self.shown_windows = track.windows
        first = min(line.unrecognised, key=lambda c: (c.start, c.ingredient))
        reason = UNRECOGNISED_TREATMENT.format(
            text=cut_words(first.ingredient, UNRECOGNISED_TEXT_CHARS),
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
            "nadir": nadir_of(track.sequence) if track.after_start else None,
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
            change_since_first=trend_change(values[0], latest),
            change_12_months=trend_change(in_year[0], latest) if in_year else None,
            **common,
        )

    def without_usable_series(
        self, line: TherapyLine, igm: Track, m_spike: Track, common: dict
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
                    nadir=nadir_of(primary.sequence),
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
                    nadir=nadir_of(primary.sequence),
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
            nadir=nadir_of(primary.sequence) if primary.after_start else None,
            **common,
        )
