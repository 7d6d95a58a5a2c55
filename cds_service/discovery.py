"""The service's discovery entry: id, hook and prefetch templates (contract.md)."""

from __future__ import annotations

from typing import Any

SERVICE_ID = "wm-igm-response"
HOOK = "patient-view"

# LOINC codes of the results the assessment reads (clinical-rules.md §3.1, §7).
_OBSERVATION_CODES = ",".join(
    f"http://loinc.org|{code}" for code in ("2472-9", "33358-3", "51435-6", "25700-6", "3128-6")
)

PREFETCH_TEMPLATES: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "observations": (
        "Observation?patient={{context.patientId}}"
        f"&code={_OBSERVATION_CODES}&_sort=-date&_count=500"
    ),
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
    "procedures": "Procedure?patient={{context.patientId}}",
}


USAGE_REQUIREMENTS = (
    "Needs the patient's serum IgM (LOINC 2472-9) or M-spike (33358-3, 51435-6) results back "
    "to at least 90 days before the current line of therapy started, and the WM medication "
    "history (statements, orders, administrations). When prefetch is incomplete, fhirServer "
    "access with fhirAuthorization (patient/*.read) so the service can fetch the rest; only "
    "observations are required, other data that cannot be read is named on the card."
)


def discovery_document() -> dict[str, Any]:
    return {
        "services": [
            {
                "hook": HOOK,
                "id": SERVICE_ID,
                "title": "Waldenström macroglobulinemia: IgM response (IWWM-6)",
                "description": (
                    "Classifies the response of Waldenström macroglobulinemia to the current "
                    "line of therapy from serial serum IgM (or M-spike) results under the "
                    "IWWM-6 consensus criteria, with the caveats that matter for BTK "
                    "inhibitors, anti-CD20 flare, plasmapheresis and unconfirmed rises."
                ),
                "usageRequirements": USAGE_REQUIREMENTS,
                "prefetch": dict(PREFETCH_TEMPLATES),
            }
        ]
    }


def render_template(template: str, context: dict[str, Any]) -> str:
    """Fill `{{context.x}}` tokens. Ids were checked against the FHIR id pattern on entry."""
    query = template
    for name in ("patientId", "encounterId", "userId"):
        token = f"{{{{context.{name}}}}}"
        if token in query:
            query = query.replace(token, str(context.get(name, "")))
    return query
