"""The working state of one assessment (clinical-rules.md §4): a series read against a line
(`Track`), its progression so far (`Progress`, §4.5), and the windows that hold rises back
(`Window`, `Block`, §4.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum

from .models import (
    Caveat,
    LabResult,
    Series,
    WindowKind,
)


class Rise(Enum):
    NONE = "none"
    RISE = "rise"
    # §4.5 (`iwwm6`): meets the IWWM-6 arithmetic, but less than the floor above the nadir.
    SUB_FLOOR = "sub-floor"
    AFTER_CR = "after-cr"  # would be a rise, but the monoclonal protein has not come back


WINDOW_CAVEATS = {
    WindowKind.ANTI_CD20_FLARE: Caveat.ANTI_CD20_FLARE,
    WindowKind.BTKI_HOLD: Caveat.BTKI_INTERRUPTION,
    WindowKind.BTKI_WITHDRAWAL: Caveat.BTKI_INTERRUPTION,
}
# §4.7: when the latest value lies in more than one window, the one named.
WINDOW_ORDER = (WindowKind.BTKI_HOLD, WindowKind.BTKI_WITHDRAWAL, WindowKind.ANTI_CD20_FLARE)


@dataclass(frozen=True)
class Window:
    """§4.6: a period in which a rise is no evidence of progression."""

    start: date
    end: date
    kind: WindowKind
    drug: str | None = None  # the BTKi held or stopped
    on_hold_now: bool = False  # a hold of the current line that goes on today
    start_recorded: bool = True  # a hold's start as the record gives it (§3.4)

    @property
    def caveat(self) -> Caveat:
        return WINDOW_CAVEATS[self.kind]

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Block:
    """Why a value is no evidence of progression: inside a window, or in its recovery."""

    window: Window
    until: date
    recovery: bool


@dataclass
class Progress:
    """§4.5 on one sequence of values."""

    confirmed_index: int | None = None
    nadir: LabResult | None = None  # m of the first confirming pair
    possible: bool = False
    after_cr: bool = False  # vn was discounted by the after-CR rule
    suppressed: list[Block] = field(default_factory=list)
    # §4.5 sub-floor rise: (m, vn) when the latest two values rose 25 % under the floor.
    sub_floor: tuple[LabResult, LabResult] | None = None
    # §4.7: (m, the windows) when vn is a rise over m = min(v0 ... v(n-1)) a window held back
    latest_suppressed: tuple[LabResult, list[Block]] | None = None


@dataclass
class Track:
    """One series read against one line: baseline, the values after therapy start, §4.5."""

    series: Series
    values: list[LabResult]  # every value of the series (one per day), in date order
    baseline: LabResult | None
    sequence: list[LabResult]  # v0 (when there is a baseline), v1 ... vn: not plasma-affected
    after_start: list[LabResult]  # every value dated after therapy start
    progress: Progress
    windows: list[Window] = field(default_factory=list)  # §4.6, of the line, for this series
    peaks: dict[Window, Decimal] = field(default_factory=dict)

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
