"""Value sets: which codes and names mean what (clinical-rules.md §3). One place only.

"verified" notes say where each code was checked; codes the clinical rules do not list
as verified are not used (names are the safety net, as sites code inconsistently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import DrugClass, Series

LOINC_SYSTEM = "http://loinc.org"
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC_SYSTEM = "http://www.whocc.no/atc"
SNOMED_SYSTEM = "http://snomed.info/sct"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

# LOINC (verified: clinical-rules.md §3 table; loinc.org entries 2472-9, 33358-3, 51435-6,
# 25700-6).
SERIES_BY_LOINC: dict[str, Series] = {
    "2472-9": Series.TOTAL_IGM,  # IgM [Mass/volume] in Serum or Plasma
    # Protein.monoclonal [Mass/volume] in Serum or Plasma by Electrophoresis (and band 1)
    "33358-3": Series.M_SPIKE,
    "51435-6": Series.M_SPIKE,
}
IMMUNOFIXATION_LOINC = "25700-6"  # Immunofixation for Serum or Plasma
OBSERVATION_CODES = frozenset({*SERIES_BY_LOINC, IMMUNOFIXATION_LOINC})

# Counted laboratory statuses (clinical-rules.md §3).
COUNTED_OBSERVATION_STATUSES = frozenset({"final", "amended", "corrected"})

# Serum immunofixation results. SNOMED CT qualifier values and HL7 v3 interpretation
# codes (verified: SNOMED CT browser 260385009 Negative, 260415000 Not detected,
# 10828004 Positive, 260373001 Detected; terminology.hl7.org v3-ObservationInterpretation
# NEG, ND, POS, DET).
IFE_NEGATIVE_CODES = frozenset({"260385009", "260415000", "NEG", "ND"})
IFE_POSITIVE_CODES = frozenset({"10828004", "260373001", "POS", "DET"})
_IFE_NEGATIVE_TEXT = re.compile(
    r"\b(negative|not detected|none detected|no monoclonal|no paraprotein"
    r"|no m[- ]?protein|absent)\b"
)
_IFE_POSITIVE_TEXT = re.compile(r"\b(positive|detected|present|monoclonal|paraprotein)\b")


def immunofixation_reading(text: str) -> bool | None:
    """True for negative, False for positive, None when the text says neither clearly."""
    lowered = " ".join(text.lower().split())
    if _IFE_NEGATIVE_TEXT.search(lowered):
        return True
    if _IFE_POSITIVE_TEXT.search(lowered):
        return False
    return None


@dataclass(frozen=True)
class WmDrug:
    ingredient: str
    drug_class: DrugClass
    rxnorm: frozenset[str] = frozenset()
    atc: frozenset[str] = frozenset()


def _drug(ingredient: str, drug_class: DrugClass, rxnorm: str = "", atc: str = "") -> WmDrug:
    return WmDrug(
        ingredient,
        drug_class,
        frozenset(filter(None, [rxnorm])),
        frozenset(filter(None, [atc])),
    )


# clinical-rules.md §3 "Treatment" (RxNorm and ATC codes verified there: RxNav ingredient
# concepts; WHO ATC/DDD index).
WM_DRUGS: tuple[WmDrug, ...] = (
    _drug("ibrutinib", DrugClass.BTKI, rxnorm="1442981", atc="L01EL01"),
    _drug("acalabrutinib", DrugClass.BTKI, atc="L01EL02"),
    _drug("zanubrutinib", DrugClass.BTKI, atc="L01EL03"),
    _drug("pirtobrutinib", DrugClass.BTKI),
    _drug("rituximab", DrugClass.ANTI_CD20, rxnorm="121191", atc="L01FA01"),
    _drug("obinutuzumab", DrugClass.ANTI_CD20, atc="L01FA03"),
    _drug("ofatumumab", DrugClass.ANTI_CD20),
    _drug("bortezomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="358258"),
    _drug("carfilzomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1302966"),
    _drug("ixazomib", DrugClass.PROTEASOME_INHIBITOR, rxnorm="1723735"),
    _drug("everolimus", DrugClass.MTOR_INHIBITOR),
    _drug("bendamustine", DrugClass.OTHER),
    _drug("cyclophosphamide", DrugClass.OTHER, rxnorm="3002"),
    _drug("dexamethasone", DrugClass.OTHER),
    _drug("fludarabine", DrugClass.OTHER),
    _drug("cladribine", DrugClass.OTHER),
    _drug("chlorambucil", DrugClass.OTHER),
    _drug("venetoclax", DrugClass.OTHER),
)

_BY_CODE: dict[tuple[str, str], WmDrug] = {
    **{(RXNORM_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.rxnorm},
    **{(ATC_SYSTEM, code): drug for drug in WM_DRUGS for code in drug.atc},
}
# Word match, case-insensitive: "Rituximab-abbs 500 mg" and "ZANUBRUTINIB" match,
# "ibrutinibum-like" text does not invent a drug.
_NAME_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(drug.ingredient) for drug in WM_DRUGS) + r")\b", re.IGNORECASE
)
_BY_NAME = {drug.ingredient: drug for drug in WM_DRUGS}


def drug_by_code(system: str | None, code: str | None) -> WmDrug | None:
    if system is None or code is None:
        return None
    return _BY_CODE.get((system, code))


def drugs_named_in(text: str) -> list[WmDrug]:
    """Every WM drug whose ingredient name appears as a word in `text`."""
    found = dict.fromkeys(match.lower() for match in _NAME_PATTERN.findall(text))
    return [_BY_NAME[name] for name in found]


# Plasmapheresis procedures are recognised by words (clinical-rules.md §3); no SNOMED CT
# code has been verified for the product yet.
_PLASMAPHERESIS_TEXT = re.compile(r"\b(plasmapheresis|plasma exchange|apheresis)\b", re.IGNORECASE)


def names_plasmapheresis(text: str) -> bool:
    return bool(_PLASMAPHERESIS_TEXT.search(text))
