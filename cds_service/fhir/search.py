"""The searches the service makes itself, written the way real FHIR servers answer them.

contract.md, "Searches real servers answer": the prefetch templates are CDS Hooks text
(`Observation?patient={{context.patientId}}&code=http://loinc.org|2472-9`), but a search
sent as that text finds nothing on some servers and is mangled by some proxies. So when the
service fetches a key itself, the template is rewritten:

- the patient is named as a typed reference (`patient=Patient/123`): some servers match a
  reference search only in that form;
- every parameter value is percent-encoded (`code=http%3A%2F%2Floinc.org%7C2472-9`): some
  proxies collapse `//` anywhere in a raw URL, and `|` is not a valid URL character.

Commas between a parameter's alternatives stay commas: they are FHIR's "or", and a server
reads an encoded comma as part of one value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

# Search parameters whose value is a reference to the patient (FHIR R4 search parameters of
# the resources the service reads).
PATIENT_PARAMETERS = frozenset({"patient", "subject"})
_CONTEXT_TOKENS = ("patientId", "encounterId", "userId")


def fill_tokens(template: str, context: Mapping[str, Any]) -> str:
    """Fill `{{context.x}}` tokens. Ids were checked against the FHIR id pattern on entry."""
    text = template
    for name in _CONTEXT_TOKENS:
        token = f"{{{{context.{name}}}}}"
        if token in text:
            text = text.replace(token, str(context.get(name, "")))
    return text


def _encode(value: str) -> str:
    return ",".join(quote(alternative, safe="") for alternative in value.split(","))


def search_query(template: str, context: Mapping[str, Any]) -> str:
    """The relative URL the service fetches for a prefetch template: tokens filled, the
    patient typed, every value percent-encoded. A read (`Patient/{{context.patientId}}`) is
    returned with its id filled."""
    path, _, query = template.partition("?")
    path = fill_tokens(path, context)
    if not query:
        return path
    parameters = []
    for parameter in query.split("&"):
        name, _, value = parameter.partition("=")
        value = fill_tokens(value, context)
        if name in PATIENT_PARAMETERS and value and "/" not in value:
            value = f"Patient/{value}"
        parameters.append(f"{name}={_encode(value)}")
    return f"{path}?{'&'.join(parameters)}"
