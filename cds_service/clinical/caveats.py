"""Caveats that depend on the line of therapy (clinical-rules.md §5) and the hyperviscosity
reference values (§7).
"""

from __future__ import annotations

from datetime import timedelta

from .courses import induction_starts
from .exact import at_least as _at_least
from .hyperviscosity import reference_values
from .models import (
    Caveat,
    DrugClass,
    Hyperviscosity,
    LabResult,
    Series,
    TherapyLine,
)


class CaveatRules:
    """Caveats of the line and the hyperviscosity reference values.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

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
