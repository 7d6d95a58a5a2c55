"""Value sets: which codes and names mean what (clinical-rules.md §3). One place only.

Codes are those clinical-rules.md lists as verified; names (ingredient and brand) are the
safety net, as sites code medications inconsistently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import DrugClass, IfeReading, Series

LOINC_SYSTEM = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

# §3.1 LOINC (loinc.org entries 2472-9, 33358-3, 51435-6, 25700-6, 3128-6).
SERIES_BY_LOINC: dict[str, Series] = {
    "2472-9": Series.TOTAL_IGM,  # IgM [Mass/volume] in Serum or Plasma
    # Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis (and band 1)
    "33358-3": Series.M_SPIKE,
    "51435-6": Series.M_SPIKE,
}
# §3.1 one value per day: in the M-spike series, 33358-3 replaces 51435-6.
PREFERRED_M_SPIKE_LOINC = "33358-3"
IMMUNOFIXATION_LOINC = "25700-6"  # Immunofixation for Serum or Plasma
SERUM_VISCOSITY_LOINC = "3128-6"  # Viscosity of Serum (§7)
OBSERVATION_CODES = frozenset({*SERIES_BY_LOINC, IMMUNOFIXATION_LOINC, SERUM_VISCOSITY_LOINC})

# Counted laboratory statuses (§3.1).
COUNTED_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})
# §3.1: a result in these statuses was never a measurement: not even "measured but unusable".
NEVER_MEASURED_STATUSES = frozenset({"entered-in-error", "cancelled"})

# §3.2 serum immunofixation: SNOMED CT qualifier values (260385009 Negative, 260415000 Not
# detected, 10828004 Positive, 260373001 Detected) and v3 ObservationInterpretation codes.
IFE_NEGATIVE_CODES = frozenset({"260385009", "260415000"})
IFE_POSITIVE_CODES = frozenset({"10828004", "260373001"})
IFE_NEGATIVE_INTERPRETATIONS = frozenset({"NEG", "ND", "N"})
IFE_POSITIVE_INTERPRETATIONS = frozenset({"POS", "DET", "A", "AA"})

# §3.2 free text, clause by clause.
_CLAUSE_SPLIT = re.compile(r"[.;:,\n\r]+")
_FINDINGS = (
    "igm kappa",
    "igm lambda",
    "m-protein",
    "paraprotein",
    "monoclonal",
    "positive",
    "detected",
    "present",
    "identified",
    "seen",
    "band",
    "kappa",
    "lambda",
)
# Longest first, so that a finding inside a longer one is one finding.
_FINDING = re.compile(
    r"(?<![\w-])("
    + "|".join(re.escape(f) for f in sorted(_FINDINGS, key=len, reverse=True))
    + r")(?![\w-])"
)
_NEGATIONS = frozenset({"no", "not", "negative", "without", "absent", "none"})
_NEGATIVE_ENDINGS = ("not detected", "not seen", "not identified", "absent")
_ALWAYS_POSITIVE = re.compile(r"\b(present|positive|persists|unchanged|no change)\b")
_UNREADABLE = re.compile(
    r"\b(not performed|not done|insufficient|no sample|cancelled|canceled|pending"
    r"|see comment|polyclonal|oligoclonal)\b"
)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# [design] §3.2: a negation among a clause's first 2 words makes it negative.
NEGATION_LEAD_WORDS = 2


def _read_clause(clause: str) -> IfeReading | None:
    """One clause: negative, positive, unreadable, or None when it says nothing."""
    if _UNREADABLE.search(clause):
        return IfeReading.UNREADABLE
    if _ALWAYS_POSITIVE.search(clause):
        return IfeReading.POSITIVE
    words = _WORD.findall(clause)
    if not words:
        return None
    has_finding = bool(_FINDING.search(clause))
    negated = [w for w in words if w in _NEGATIONS]
    if any(w in _NEGATIONS for w in words[:NEGATION_LEAD_WORDS]):
        return IfeReading.NEGATIVE
    if " ".join(words).endswith(_NEGATIVE_ENDINGS):
        return IfeReading.NEGATIVE
    if negated and not has_finding:
        return IfeReading.NEGATIVE
    if has_finding:
        return IfeReading.POSITIVE
    return None


def immunofixation_text_readings(text: str) -> list[IfeReading]:
    """What each clause of a free-text immunofixation result says (§3.2)."""
    lowered = text.lower()
    readings = []
    for clause in _CLAUSE_SPLIT.split(lowered):
        reading = _read_clause(" ".join(clause.split()))
        if reading is not None:
            readings.append(reading)
    return readings


def combine_ife_readings(readings: list[IfeReading]) -> IfeReading:
    """§3.2: positive if anything says positive; negative only when something says negative
    and nothing makes the result unreadable; otherwise unreadable."""
    if IfeReading.POSITIVE in readings:
        return IfeReading.POSITIVE
    if IfeReading.NEGATIVE in readings and IfeReading.UNREADABLE not in readings:
        return IfeReading.NEGATIVE
    return IfeReading.UNREADABLE


@dataclass(frozen=True)
class WmDrug:
    ingredient: str
    drug_class: DrugClass
    rxnorm: frozenset[str] = frozenset()
    atc: frozenset[str] = frozenset()
    brands: tuple[str, ...] = ()


def _drug(
    ingredient: str,
    drug_class: DrugClass,
    rxnorm: str = "",
    atc: str = "",
    brands: tuple[str, ...] = (),
) -> WmDrug:
    return WmDrug(
        ingredient,
        drug_class,
        frozenset(filter(None, [rxnorm])),
        frozenset(filter(None, [atc])),
        brands,
    )


# §3.3 table (RxNorm and ATC codes verified there: RxNav ingredient concepts; WHO ATC/DDD).
WM_DRUGS: tuple[WmDrug, ...] = (
    _drug("ibrutinib", DrugClass.BTKI, rxnorm="1442981", atc="L01EL01", brands=("Imbruvica",)),
    _drug("acalabrutinib", DrugClass.BTKI, atc="L01EL02", brands=("Calquence",)),
    _drug("zanubrutinib", DrugClass.BTKI, atc="L01EL03", brands=("Brukinsa",)),
    _drug("pirtobrutinib", DrugClass.BTKI, brands=("Jaypirca",)),
    _drug("tirabrutinib", DrugClass.BTKI, brands=("Velexbru",)),
    _drug("orelabrutinib", DrugClass.BTKI, brands=("Hibruka",)),
    _drug(
        "rituximab",
        DrugClass.ANTI_CD20,
        rxnorm="121191",
        atc="L01FA01",
        brands=(
            "Rituxan Hycela",
            "Rituxan",
            "MabThera",
            "Truxima",
            "Ruxience",
            "Riabni",
            "Rixathon",
        ),
    ),
    _drug("obinutuzumab", DrugClass.ANTI_CD20, atc="L01FA03", brands=("Gazyva", "Gazyvaro")),
    _drug("ofatumumab", DrugClass.ANTI_CD20, brands=("Arzerra",)),
    _drug("bortezomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="358258", brands=("Velcade",)),
    _drug("carfilzomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1302966", brands=("Kyprolis",)),
    _drug("ixazomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1723735", brands=("Ninlaro",)),
    _drug("everolimus", DrugClass.MTOR_INHIBITOR, brands=("Afinitor",)),
    _drug(
        "bendamustine",
        DrugClass.OTHER,
        brands=("Treanda", "Bendeka", "Belrapzo", "Vivimusta", "Levact"),
    ),
    _drug("cyclophosphamide", DrugClass.OTHER, rxnorm="3002", brands=("Cytoxan", "Endoxan")),
    _drug("fludarabine", DrugClass.OTHER, brands=("Fludara",)),
    _drug("cladribine", DrugClass.OTHER, brands=("Leustatin",)),
    _drug("chlorambucil", DrugClass.OTHER, brands=("Leukeran",)),
    _drug("venetoclax", DrugClass.OTHER, brands=("Venclexta", "Venclyxto")),
    _drug("dexamethasone", DrugClass.PARTNER, brands=("Decadron", "Hemady")),
    _drug("prednisone", DrugClass.PARTNER),
    _drug("prednisolone", DrugClass.PARTNER),
)
# §5 delayed-response: IgM responses to these are often slow (IWWM-6).
SLOW_RESPONSE_INGREDIENTS = frozenset({"bendamustine", "fludarabine", "cladribine"})

_BY_CODE: dict[tuple[str, str], WmDrug] = {
    **{(RXNORM_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.rxnorm},
    **{(ATC_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.atc},
}
_BY_NAME: dict[str, WmDrug] = {
    name.lower(): drug for drug in WM_DRUGS for name in (drug.ingredient, *drug.brands)
}
# Whole words, case-insensitive, longest name first: "Rituximab-abbs 500 mg", "BRUKINSA 160 mg"
# and "Rituxan Hycela" match; "ibrutinibum-like" text does not invent a drug.
_NAME_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(n) for n in sorted(_BY_NAME, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


def drug_by_code(system: str | None, code: str | None) -> WmDrug | None:
    if system is None or code is None:
        return None
    return _BY_CODE.get((system, code))


def drugs_named_in(text: str) -> list[WmDrug]:
    """Every WM drug whose ingredient or brand name appears as a word in `text`."""
    found = dict.fromkeys(_BY_NAME[match.lower()] for match in _NAME_PATTERN.findall(text))
    return list(found)


# §3.6 plasmapheresis: by words (no SNOMED CT code has been verified for the product yet).
_PLASMA_EXCHANGE = re.compile(r"\b(plasmapheresis|plasma exchange|tpe)\b", re.IGNORECASE)
_BARE_APHERESIS = re.compile(r"\bapheresis\b", re.IGNORECASE)
_OTHER_APHERESIS = re.compile(
    r"stem cell|progenitor|\bpbsc\b|\bhpc\b|leukapheresis|leukocytapheresis|lymphocyte|platelet"
    r"|red cell|red blood cell|\brbc\b|erythrocyt|photopheresis|\bldl\b|lipoprotein|donor"
    r"|donation|collection|harvest|car-t|car t",
    re.IGNORECASE,
)


def names_plasmapheresis(text: str) -> bool:
    if _PLASMA_EXCHANGE.search(text):
        return True
    return bool(_BARE_APHERESIS.search(text)) and not _OTHER_APHERESIS.search(text)


# §3.7 evidence of WM [design] ---------------------------------------------------------------

WM_SNOMED_CODE = "35601003"  # Waldenström macroglobulinemia
WM_ICD10_PREFIX = "C88.0"  # and national extensions beginning with it
_WM_TEXT = re.compile(r"waldenstr[öo]m|macroglobulina?emia", re.IGNORECASE)
# Other diseases the same drugs treat (ICD-10): CLL, myeloma, mantle cell and other B-cell
# lymphomas, ITP, rheumatoid arthritis, granulomatosis with polyangiitis.
OTHER_DISEASE_ICD10_PREFIXES = (
    "C91.1",
    "C90.0",
    "C83.1",
    "C82",
    "C83.0",
    "C83.3",
    "C85",
    "C88.4",
    "D69.3",
    "M05",
    "M06",
    "M31.3",
)
ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})
NOT_A_DIAGNOSIS_STATUSES = frozenset({"entered-in-error", "refuted"})


def _icd10(system: str | None) -> bool:
    return system is not None and "icd-10" in system.lower()


def condition_kind(codings: list[tuple[str | None, str | None]], texts: list[str]) -> str | None:
    """ "wm" for Waldenström macroglobulinemia (ICD-10 C88.0*, SNOMED CT 35601003, or named
    in the text); "other" for another disease the WM drugs treat; None otherwise."""
    for system, code in codings:
        if code and _icd10(system) and code.upper().startswith(WM_ICD10_PREFIX):
            return "wm"
        if code == WM_SNOMED_CODE and system == SNOMED_SYSTEM:
            return "wm"
    if any(_WM_TEXT.search(text) for text in texts if text):
        return "wm"
    for system, code in codings:
        if code and _icd10(system) and code.upper().startswith(OTHER_DISEASE_ICD10_PREFIXES):
            return "other"
    return None
