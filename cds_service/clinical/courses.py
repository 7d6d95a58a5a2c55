"""Courses and holds (clinical-rules.md §3.4): one ingredient's episodes joined into courses,
the gaps and on-hold records that are holds, and the inductions inside a course."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from .criteria import CriteriaProfile
from .models import (
    DrugClass,
    DrugEpisode,
    EpisodeSource,
    Hold,
    TreatmentCourse,
)

# §3.4: after an on-hold record, these statuses stop the drug for good (no resumption).
STOP_STATUSES = frozenset({"stopped", "completed", "not-taken"})


def _is_hold_gap(previous: DrugEpisode, following: DrugEpisode) -> bool:
    """§3.4: a gap is a hold only between two statements or two administrations."""
    sources = {previous.source, following.source}
    return EpisodeSource.REQUEST not in sources and len(sources) == 1


def _resumes(episode: DrugEpisode) -> bool:
    """§3.4: after an on-hold record, an active record (or an administration) resumes the
    drug; a stopped, completed or not-taken one stops it for good."""
    return episode.source == EpisodeSource.ADMINISTRATION or episode.status not in STOP_STATUSES


def _recorded_hold_start(episode: DrugEpisode) -> date | None:
    """§3.4: an on-hold statement's `effectivePeriod.end` is the last day taken; an order's
    dates record prescribing, never when a hold started."""
    if episode.source == EpisodeSource.STATEMENT and episode.end is not None:
        return episode.end + timedelta(days=1)
    return None


def build_courses(episodes: list[DrugEpisode], profile: CriteriaProfile) -> list[TreatmentCourse]:
    """Join the episodes of one ingredient: an episode starting at most `course_gap_days`
    after the previous one ended continues the course; an ongoing episode continues it
    for as long as it runs. Holds: gaps between statements or between administrations, and
    on-hold records (§3.4)."""
    by_ingredient: dict[str, list[DrugEpisode]] = defaultdict(list)
    for episode in episodes:
        by_ingredient[episode.ingredient].append(episode)
    courses: list[TreatmentCourse] = []
    for group in by_ingredient.values():
        # On the same day, a record with another status is later than an on-hold one.
        group.sort(key=lambda e: (e.start, not e.on_hold, e.end or date.max, e.reference))
        current: list[DrugEpisode] = []
        holds: list[Hold] = []
        ongoing = False  # an episode of the course runs with no known end
        covered_to = date.min  # otherwise: the last day with the drug so far
        last = group[0]  # the episode that reaches `covered_to`
        held: DrugEpisode | None = None  # an on-hold record not yet followed by another
        for episode in group:
            if current and not ongoing:
                gap_days = (episode.start - covered_to).days
                if gap_days > profile.course_gap_days:
                    courses.append(_course(current, holds, held))
                    current, holds, covered_to, held = [], [], date.min, None
                elif gap_days >= 2 and held is None and _is_hold_gap(last, episode):
                    # At least one whole day without the drug (§3.4).
                    holds.append(Hold(start=covered_to + timedelta(days=1), resumed=episode.start))
            if held is not None and not episode.on_hold:
                if _resumes(episode):
                    holds.append(Hold(start=_recorded_hold_start(held), resumed=episode.start))
                    held = None
                else:  # a permanent stop: the course ends here
                    current.append(episode)
                    courses.append(_course(current, holds, None))
                    current, holds, covered_to, held, ongoing = [], [], date.min, None, False
                    continue
            if episode.on_hold:
                if held is None:
                    held = episode
                ongoing = False  # the drug is not taken from the hold on
            current.append(episode)
            if episode.end is None and not episode.on_hold:
                ongoing = True
            elif (episode.end or episode.start) > covered_to:
                covered_to, last = episode.end or episode.start, episode
        if current:
            courses.append(_course(current, holds, held))
    courses.sort(key=lambda c: (c.start, c.ingredient))
    return courses


def _course(
    episodes: list[DrugEpisode], holds: list[Hold], held: DrugEpisode | None
) -> TreatmentCourse:
    """`held`: the on-hold record no later record followed: the course is on hold now."""
    on_hold = held is not None
    open_ended = not on_hold and any(e.end is None and not e.on_hold for e in episodes)
    if held is not None:
        holds = [*holds, Hold(start=_recorded_hold_start(held), resumed=None)]
    ends = [e.end for e in episodes if e.end is not None]
    last = (
        episodes[0]
        if len(episodes) == 1
        else max(
            episodes, key=lambda e: (e.end or e.start, e.source == EpisodeSource.ADMINISTRATION)
        )
    )
    return TreatmentCourse(
        ingredient=episodes[0].ingredient,
        drug_class=episodes[0].drug_class,
        start=min(e.start for e in episodes),
        end=None if open_ended or on_hold or not ends else max(ends),
        on_hold=on_hold,
        holds=tuple(holds),
        references=tuple(e.reference for e in episodes),
        last_from_administration=last.source == EpisodeSource.ADMINISTRATION,
        # only anti-CD20 courses make inductions (§3.4)
        dose_days=tuple(sorted({e.start for e in episodes if e.source != EpisodeSource.STATEMENT}))
        if episodes[0].drug_class == DrugClass.ANTI_CD20
        else (),
        mobilisation=any(e.mobilisation for e in episodes),
    )


def induction_starts(course: TreatmentCourse, profile: CriteriaProfile) -> list[date]:
    """§3.4 [design]: at least 3 administrations or orders on distinct days whose first and
    last lie at most 35 days apart make an induction, starting on the earliest day that
    begins such a set; overlapping sets are one induction. Statements never make one."""
    days = course.dose_days
    span = timedelta(days=profile.induction_span_days)
    count = profile.induction_min_doses
    starts: list[date] = []
    covered_to: date | None = None
    for index, first in enumerate(days):
        in_set = [d for d in days[index:] if d - first <= span]
        if len(in_set) < count:
            continue
        if covered_to is None or first > covered_to:
            starts.append(first)
        covered_to = max(covered_to or in_set[-1], in_set[-1])
    return starts
