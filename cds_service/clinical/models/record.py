"""What the assessment reads: the patient's record as the FHIR layer maps it
(clinical-rules.md §3.1-3.3, §3.6, §3.7)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum


class Series(StrEnum):
    TOTAL_IGM = "total-igm"
    M_SPIKE = "m-spike"


class DrugClass(StrEnum):
    BTKI = "BTK inhibitor"
    ANTI_CD20 = "anti-CD20 antibody"
    PROTEASOME_INHIBITOR = "proteasome inhibitor"
    MTOR_INHIBITOR = "mTOR inhibitor"
    OTHER = "other WM agent"
    # §3.3: corticosteroids given with a regimen; they never make, extend or end a line.
    PARTNER = "partner agent"
    # §3.5: high-dose conditioning, only as part of an autologous transplant.
    CONDITIONING = "conditioning"
    AUTOLOGOUS_TRANSPLANT = "autologous transplant"
    # §3.3: anticancer treatment the service cannot name (a trial drug): no class.
    UNRECOGNISED = "not recognised"


class EpisodeSource(StrEnum):
    """Which kind of record an episode comes from: §3.4 holds depend on it."""

    STATEMENT = "MedicationStatement"
    REQUEST = "MedicationRequest"
    ADMINISTRATION = "MedicationAdministration"


class Category(StrEnum):
    CR = "CR"
    VGPR = "VGPR"
    PR = "PR"
    MR = "MR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class Caveat(StrEnum):
    """Caveat codes, in the order of clinical-rules.md §5 (the order cards list them in)."""

    BTKI_DISCORDANCE = "btki-discordance"
    BTKI_INTERRUPTION = "btki-interruption"
    ANTI_CD20_FLARE = "anti-cd20-flare"
    PI_MTOR_DISCORDANCE = "pi-mtor-discordance"
    PLASMAPHERESIS = "plasmapheresis"
    HYPERVISCOSITY_RISK = "hyperviscosity-risk"
    METHOD_CHANGE = "method-change"
    UNCONFIRMED_PROGRESSION = "unconfirmed-progression"
    CR_NEEDS_MARROW = "cr-needs-marrow"
    LOW_BASELINE = "low-baseline"
    NO_BASELINE = "no-baseline"
    DELAYED_RESPONSE = "delayed-response"
    PD_THEN_FALL = "pd-then-fall"
    SMALL_ABSOLUTE_RISE = "small-absolute-rise"


CAVEAT_ORDER = {caveat: index for index, caveat in enumerate(Caveat)}


class IfeReading(StrEnum):
    """§3.2: what a serum immunofixation says; only NEGATIVE supports CR."""

    NEGATIVE = "negative"
    POSITIVE = "positive"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Exclusion:
    """A resource (or part of the data) the assessment could not use, and why."""

    reference: str
    reason: str


@dataclass(frozen=True)
class UnusableResult:
    """§3.1: an IgM or M-spike result of this patient that was measured but cannot be used
    (status, date, value, unit or reference range; or held back). It is never "no result"."""

    reference: str
    series: Series
    day: date | None
    reason: str


UPPER_BOUND_COMPARATORS = frozenset({"<", "<="})
LOWER_BOUND_COMPARATORS = frozenset({">", ">="})


@dataclass(frozen=True)
class LabResult:
    """One quantitative total IgM or M-spike result, converted to mg/dL."""

    reference: str
    series: Series
    day: date
    value_mg_dl: Decimal
    # `<`/`<=`: the true value is at most this ("IgM below 25 mg/dL"); `>`/`>=`: at least
    # this (above the laboratory's reporting range, "IgM above 7000 mg/dL").
    comparator: str | None = None
    uln_mg_dl: Decimal | None = None  # referenceRange.high, converted
    code: str | None = None  # the LOINC code (§3.1: 33358-3 replaces 51435-6 on one day)
    drawn_at: datetime | None = None  # with a time of day, when the source gives one (§7)

    @property
    def upper_bound(self) -> bool:
        return self.comparator in UPPER_BOUND_COMPARATORS

    @property
    def lower_bound(self) -> bool:
        return self.comparator in LOWER_BOUND_COMPARATORS

    @property
    def is_bound(self) -> bool:
        return self.comparator is not None

    @property
    def sort_key(self) -> tuple[date, str]:
        # Same-day results are ordered by reference so that the answer never depends on
        # the order in which the EHR listed them.
        return (self.day, self.reference)


@dataclass(frozen=True)
class ImmunofixationResult:
    reference: str
    day: date
    reading: IfeReading

    @property
    def negative(self) -> bool:
        return self.reading == IfeReading.NEGATIVE


@dataclass(frozen=True)
class ViscosityResult:
    """Serum viscosity (LOINC 3128-6), shown on the hyperviscosity card as written."""

    reference: str
    day: date
    text: str  # value and unit as reported, e.g. "3.2 cP"
    value: Decimal | None = None
    unit: str = ""  # as reported
    centipoise: bool = False  # the unit is cP or mPa.s (equal)
    reference_high: Decimal | None = None  # its own referenceRange.high, in its unit
    comparator: str | None = None
    drawn_at: datetime | None = None


@dataclass(frozen=True)
class DrugEpisode:
    """One record of one WM drug ingredient: a statement, an order or an administration."""

    reference: str
    ingredient: str
    drug_class: DrugClass
    start: date
    end: date | None = None  # the last day with the drug; None: ongoing (end unknown)
    on_hold: bool = False  # the record says the drug is interrupted now
    source: EpisodeSource = EpisodeSource.STATEMENT
    # An active order: the latest of its validity end, timing end and supply end (§3.3).
    # An order nobody renewed for 90 days after this ended there.
    order_runs_to: date | None = None
    status: str | None = None  # the record's status (§3.4: what follows an on-hold record)
    # §3.5 autologous transplant: the record says mobilisation (or priming), or high dose.
    mobilisation: bool = False
    high_dose: bool = False
    beam: bool = False  # the record names the BEAM conditioning regimen


@dataclass(frozen=True)
class Plasmapheresis:
    reference: str
    day: date
    started_at: datetime | None = None  # with a time of day, when the source gives one


@dataclass(frozen=True)
class Diagnosis:
    """§3.7: an active, not refuted Condition: WM, or another disease the WM drugs treat."""

    reference: str
    is_wm: bool


@dataclass(frozen=True)
class TransplantProcedure:
    """§3.5: a completed autologous transplant, or a stem-cell collection (mobilisation)."""

    reference: str
    day: date
    collection: bool  # a stem-cell collection, not the transplant


@dataclass
class PatientRecord:
    """Everything the assessment reads about one patient, already mapped and filtered."""

    lab_results: list[LabResult] = field(default_factory=list)
    immunofixations: list[ImmunofixationResult] = field(default_factory=list)
    drug_episodes: list[DrugEpisode] = field(default_factory=list)
    plasmaphereses: list[Plasmapheresis] = field(default_factory=list)
    viscosities: list[ViscosityResult] = field(default_factory=list)
    excluded: list[Exclusion] = field(default_factory=list)
    unusable: list[UnusableResult] = field(default_factory=list)  # §3.1, a subset of excluded
    diagnoses: list[Diagnosis] = field(default_factory=list)  # §3.7
    transplants: list[TransplantProcedure] = field(default_factory=list)  # §3.5
