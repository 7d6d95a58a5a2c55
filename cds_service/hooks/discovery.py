"""The services' discovery entries: id, hook, texts and prefetch templates (contract.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SERVICE_ID = "wm-igm-response"
HOOK = "patient-view"
ORDER_SIGN_ID = "wm-anti-cd20-order-check"
ORDER_SELECT_ID = "wm-anti-cd20-order-select"

# LOINC codes of the results the assessment reads (clinical-rules.md §3.1, §7).
_OBSERVATION_CODES = ",".join(
    f"http://loinc.org|{code}" for code in ("2472-9", "33358-3", "51435-6", "25700-6", "3128-6")
)

PREFETCH_TEMPLATES: dict[str, str] = {
    "observations": (
        "Observation?patient={{context.patientId}}"
        f"&code={_OBSERVATION_CODES}&_sort=-date&_count=500"
    ),
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
    # contract v3: evidence of WM (clinical-rules.md §3.7)
    "conditions": (
        "Condition?patient={{context.patientId}}&clinical-status=active,recurrence,relapse"
    ),
}

# The SMART app reads what the patient-view service reads, and the Patient for its banner
# (minimum necessary: the CDS services do not ask for the Patient, contract v3).
TREND_READS: dict[str, str] = {**PREFETCH_TEMPLATES, "patient": "Patient/{{context.patientId}}"}

USAGE_REQUIREMENTS = (
    "Needs the patient's serum IgM (LOINC 2472-9) or M-spike (33358-3, 51435-6) results back "
    "to at least 90 days before the current line of therapy started, and the WM medication "
    "history (statements, orders, administrations), and the problem list for the WM "
    "diagnosis (it answers only for patients with evidence of WM). When prefetch is "
    "incomplete, fhirServer "
    "access with fhirAuthorization (patient/*.read) so the service can fetch the rest; only "
    "observations are required, other data that cannot be read is named on the card."
)


ORDER_USAGE_REQUIREMENTS = (
    "Needs the patient's serum IgM (LOINC 2472-9) or M-spike (33358-3, 51435-6) results of the "
    "last 92 days and any plasmapheresis; draft orders are read from the context. fhirServer "
    "access with fhirAuthorization when prefetch is incomplete."
)


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str
    prefetch: dict[str, str]

    def entry(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "usageRequirements": self.usage_requirements,
            "prefetch": dict(self.prefetch),
        }


# contract.md "Order check": observations (the same template) and procedures; v3: and, for
# evidence of WM, conditions and the medication history.
ORDER_PREFETCH = {
    key: PREFETCH_TEMPLATES[key]
    for key in (
        "observations",
        "procedures",
        "conditions",
        "medicationStatements",
        "medicationRequests",
        "medicationAdministrations",
    )
}
_ORDER_DESCRIPTION = (
    "When an anti-CD20 antibody (rituximab, obinutuzumab, ofatumumab) is ordered for a "
    "patient with Waldenström macroglobulinemia whose recent IgM is high (IgM flare and "
    "hyperviscosity risk, IWWM-8) or not measured in the last 3 months, says so before the "
    "order is {verb}."
)

SERVICES: dict[str, ServiceDefinition] = {
    definition.id: definition
    for definition in (
        ServiceDefinition(
            SERVICE_ID,
            HOOK,
            "Waldenström macroglobulinemia: IgM response (IWWM-6)",
            "Classifies the response of Waldenström macroglobulinemia to the current line of "
            "therapy from serial serum IgM (or M-spike) results under the IWWM-6 consensus "
            "criteria, with the caveats that matter for BTK inhibitors, anti-CD20 flare, "
            "plasmapheresis and unconfirmed rises.",
            USAGE_REQUIREMENTS,
            PREFETCH_TEMPLATES,
        ),
        ServiceDefinition(
            ORDER_SIGN_ID,
            "order-sign",
            "WM: anti-CD20 antibody with high or unknown IgM",
            _ORDER_DESCRIPTION.format(verb="signed"),
            ORDER_USAGE_REQUIREMENTS,
            ORDER_PREFETCH,
        ),
        ServiceDefinition(
            ORDER_SELECT_ID,
            "order-select",
            "WM: anti-CD20 antibody with high or unknown IgM (on selection)",
            _ORDER_DESCRIPTION.format(verb="selected"),
            ORDER_USAGE_REQUIREMENTS,
            ORDER_PREFETCH,
        ),
    )
}
SERVICE_BY_HOOK = {definition.hook: definition for definition in SERVICES.values()}


def discovery_document() -> dict[str, Any]:
    return {"services": [definition.entry() for definition in SERVICES.values()]}
