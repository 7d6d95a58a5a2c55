"""Suppression windows (clinical-rules.md §4.6, §4.7): anti-CD20 flare, BTK-inhibitor holds and
withdrawal, and the rises they hold back.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from .change import running_nadirs
from .courses import induction_starts
from .models import (
    Caveat,
    DrugClass,
    Hold,
    LabResult,
    Series,
    SuppressedRise,
    TherapyLine,
    TreatmentCourse,
    WindowKind,
    Withdrawal,
)
from .reasons import (
    RISE_WHILE_ON_HOLD,
    SERIES_WORDS,
)
from .tracking import WINDOW_ORDER, Block, Progress, Rise, Track, Window


class WindowRules:
    """The windows in which a rise is no evidence of progression.

    One part of the assessment: `assessment._Assessor` combines the parts; the methods read
    the inputs and the working state its `__init__` sets up.
    """

    # §4.6 suppression windows ----------------------------------------------------------------
    def windows(self, line: TherapyLine, sequence: list[LabResult], series: Series) -> list[Window]:
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
                Window(s, s + flare, WindowKind.ANTI_CD20_FLARE, drug=course.ingredient)
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
    ) -> Window:
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
        return Window(
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
        nadirs = running_nadirs(sequence)
        for index, value in enumerate(sequence):
            if value.day >= before:
                break
            nadir = nadirs[index]
            if index == 0 or nadir is None or self.rise(value, nadir, series) != Rise.RISE:
                last = value.day
        return last

    def withdrawal_window(self, line: TherapyLine) -> Window | None:
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
        return Window(last.end, end, WindowKind.BTKI_WITHDRAWAL, drug=last.ingredient)

    @staticmethod
    def window_peaks(windows: list[Window], sequence: list[LabResult]) -> dict[Window, Decimal]:
        """The highest value inside each window that holds any (for §4.6's recovery)."""
        peaks: dict[Window, Decimal] = {}
        for window in windows:
            inside = [v.value_mg_dl for v in sequence if window.contains(v.day)]
            if inside:
                peaks[window] = max(inside)
        return peaks

    def blocks(
        self, value: LabResult, windows: list[Window], peaks: dict[Window, Decimal]
    ) -> list[Block]:
        """The windows (and recovery periods) that make `value` no evidence of progression."""
        found = []
        recovery = timedelta(days=self.profile.recovery_days)
        for window in windows:
            if window.contains(value.day):
                found.append(Block(window, window.end, recovery=False))
                continue
            if not window.end < value.day <= window.end + recovery:
                continue
            peak = peaks.get(window)
            if peak is not None and value.value_mg_dl <= peak:
                found.append(Block(window, window.end + recovery, recovery=True))
        return found

    # §4.7 suppressed rises --------------------------------------------------------------
    def latest_suppressed(self, track: Track) -> tuple[LabResult, list[Block]] | None:
        """(m, the windows that hold it back) when vn is a rise over m = min(v0 ... v(n-1))
        that a window, or its recovery period, suppressed."""
        sequence = track.sequence
        if len(sequence) < 2 or sequence[-1] is not track.latest:
            return None  # the latest value is plasmapheresis-affected: no rise to speak of
        return track.progress.latest_suppressed

    @staticmethod
    def named_block(blocks: list[Block]) -> Block:
        """§4.7: a BTK-inhibitor hold, then a withdrawal, then a flare window."""
        return min(blocks, key=lambda b: (WINDOW_ORDER.index(b.window.kind), b.recovery))

    def suppressed_rise(self, blocks: list[Block]) -> SuppressedRise:
        block = self.named_block(blocks)
        until: date | None = max(b.until for b in blocks)
        if block.window.on_hold_now and not block.window.start_recorded and not block.recovery:
            until = None  # a hold on now with no recorded start: no end to name
        return SuppressedRise(block.window.kind, until, block.recovery)

    def rise_while_on_hold(
        self, track: Track, suppressed: tuple[LabResult, list[Block]] | None
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

    def flare_end(self, track: Track, latest: LabResult) -> date | None:
        """§4.7: SD is provisional while the latest value lies inside a flare window."""
        ends = [
            w.end
            for w in track.windows
            if w.kind == WindowKind.ANTI_CD20_FLARE and w.contains(latest.day)
        ]
        return max(ends) if ends else None

    def note_withdrawal(self, track: Track, values: dict) -> None:
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

    def note_suppressed(self, progress: Progress) -> None:
        self.caveats.update(block.window.caveat for block in progress.suppressed)

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
