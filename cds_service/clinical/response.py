"""Category and durability (clinical-rules.md §4.7, §4.8, §4.9): CR, the reduction categories,
response since, durable, best response and how long a response lasted.
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from itertools import pairwise

from .change import (
    nadir_of,
    percent_change,
)
from .dates import add_months, whole_months
from .exact import at_least as _at_least
from .exact import times
from .models import (
    BestResponse,
    Category,
    Caveat,
    ContinuingFrom,
    DrugClass,
    IfeReading,
    LabResult,
    ResponseDuration,
    Series,
    TherapyLine,
)
from .tracking import Track
from .valuesets import SLOW_RESPONSE_INGREDIENTS

# §4.8: the categories at least as good as each reduction category.
AT_LEAST = {
    Category.VGPR: {Category.VGPR},
    Category.PR: {Category.VGPR, Category.PR},
    Category.MR: {Category.VGPR, Category.PR, Category.MR},
}


class ResponseRules:
    """The response category and how long it has held.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

    # §4.7 CR ------------------------------------------------------------------------------
    def complete_response(self, track: Track, start: date) -> tuple[date, date] | None:
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
        self, category: Category, track: Track, cr: tuple[date, date] | None
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

    def best_response(self, track: Track) -> BestResponse | None:
        """§4.8: the reduction category the nadir reached, from the first value reaching it."""
        baseline = track.baseline
        after = [v for v in track.sequence[1:] if not v.lower_bound]
        nadir = nadir_of(after)
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
            in AT_LEAST[category]
        )
        return BestResponse(category, first.day)

    def response_duration(
        self, track: Track, nadir: LabResult, first_rise: LabResult
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
        if category not in AT_LEAST:
            return None
        reached = next(
            v
            for v in track.sequence[1:]
            if not v.lower_bound
            and self.category_by_reduction(percent_change(baseline.value_mg_dl, v.value_mg_dl))
            in AT_LEAST[category]
        )
        return ResponseDuration(
            category, reached.day, first_rise.day, whole_months(reached.day, first_rise.day)
        )

    def continuing_from(self, line: TherapyLine, track: Track) -> ContinuingFrom | None:
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

    def delayed_response(self, category: Category, line: TherapyLine, track: Track) -> bool:
        """§5: antibody and chemoimmunotherapy responses deepen slowly (IWWM-6)."""
        latest, nadir = track.latest, nadir_of(track.sequence)
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
