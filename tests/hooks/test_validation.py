"""Step 1: the compiled schema validator and the reference validator give the same verdict.

The service trusts the compiled validator's "valid" (`validation.validate`); a document it
accepted that the reference refuses would weaken the check. Random changes anywhere in a
valid request, and in a valid feedback body, must get the same verdict from both.
"""

from __future__ import annotations

import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.hooks.validation import verdicts

from ..web.test_robustness import json_values, paths, replace_at, valid_request

AGREE = settings(max_examples=400, deadline=None)
REQUEST = valid_request()
REQUEST_PATHS = [p for p in paths(REQUEST) if "prefetch" not in p[:1] or len(p) <= 2]
FEEDBACK = {
    "feedback": [
        {
            "card": "7d3c4a8e-9b1f-4c2d-8e5a-6f7b8c9d0e1f",
            "outcome": "overridden",
            "outcomeTimestamp": "2024-01-15T10:00:00Z",
            "overrideReasons": [{"key": "not-relevant"}],
        }
    ]
}
FEEDBACK_PATHS = list(paths(FEEDBACK))
# Values that sit on the edges of the schemas' patterns and types.
EDGES = st.sampled_from(
    [
        "p1\n",
        "Patient/p1\n",
        "Patient/p1",
        "Practitioner/doc-1",
        "https://ehr.example/fhir",
        "https://ehr.example/fhir\n",
        "http://x y",
        "7d3c4a8e-9b1f-4c2d-8e5a-6f7b8c9d0e1f",
        "urn:uuid:7d3c4a8e-9b1f-4c2d-8e5a-6f7b8c9d0e1f",
        "7D3C4A8E-9B1F-4C2D-8E5A-6F7B8C9D0E1F\n",
        "2024-01-15T10:00:00Z",
        "2024-01-15t10:00:00z",
        "2024-01-15T10:00:00",
        "p" * 64,
        "p" * 65,
        "",
        "patient-view",
        "order-sign",
        1,
        1.5,
        True,
        None,
        [],
        {},
    ]
)


def _mutated(document, path, value):
    return replace_at(json.loads(json.dumps(document)), path, copy.deepcopy(value))


@AGREE
@given(index=st.integers(0, len(REQUEST_PATHS) - 1), value=json_values | EDGES)
def test_request_verdicts_agree(index, value):
    document = _mutated(REQUEST, REQUEST_PATHS[index], value)
    compiled, reference = verdicts("request", document)
    assert compiled == reference, (REQUEST_PATHS[index], value)


@AGREE
@given(index=st.integers(0, len(FEEDBACK_PATHS) - 1), value=json_values | EDGES)
def test_feedback_verdicts_agree(index, value):
    document = _mutated(FEEDBACK, FEEDBACK_PATHS[index], value)
    compiled, reference = verdicts("feedback", document)
    assert compiled == reference, (FEEDBACK_PATHS[index], value)


def test_the_starting_documents_are_valid_to_both():
    assert verdicts("request", REQUEST) == (True, True)
    assert verdicts("feedback", FEEDBACK) == (True, True)
