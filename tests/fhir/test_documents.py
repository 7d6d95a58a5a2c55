"""Reading a request or a FHIR server's answer down to its resources' JSON text (`fhir_json`).

The resources inside Bundles stay text until the reader reads them; everything else is
parsed as strictly as before. Whatever the shape of the prefetch, the document handed on is
the one a whole, strict parse gives, but for those texts and for what `TYPE_ONLY` drops.
"""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.fhir import documents as fhir_json
from cds_service.fhir import strict_json
from cds_service.fhir.documents import bundle_resources, loads_document, loads_request

from ..builders import bundle, founding_request, igm, lab


def _as_plain(value):
    """The document with every resource text parsed: comparable with a whole parse."""
    if isinstance(value, msgspec.Raw):
        return strict_json.loads(value)
    if isinstance(value, dict):
        return {key: _as_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_plain(item) for item in value]
    return value


def _body(document) -> bytes:
    return json.dumps(document).encode()


def test_bundle_resources_stay_text_and_the_rest_is_parsed_strictly():
    request = founding_request()
    request["prefetch"]["observations"]["link"] = [{"relation": "self", "url": "x", "n": 1.50}]
    document = loads_request(_body(request))
    observations = document["prefetch"]["observations"]
    resources = bundle_resources(observations)
    assert all(isinstance(r, msgspec.Raw) for r in resources)
    assert [strict_json.loads(r)["id"] for r in resources] == ["o1", "o2"]
    assert observations["link"][0]["n"] == Decimal("1.50")  # exact, as strict_json reads
    assert document["context"] == request["context"]
    assert document["hook"] == "patient-view"


def test_a_patient_prefetch_keeps_only_its_type():
    # EHRs registered before contract v3 may still send the Patient: nothing reads it.
    request = founding_request()
    request["prefetch"]["patient"] = {"resourceType": "Patient", "id": "p1", "name": [{}]}
    document = loads_request(_body(request))
    assert document["prefetch"]["patient"] == {"resourceType": "Patient"}


def test_a_single_resource_of_another_type_is_kept_whole_and_read(client):
    request = founding_request()
    observation = lab("o9", 360, 2233)
    request["prefetch"]["observations"] = observation
    document = loads_request(_body(request))
    assert _as_plain(document["prefetch"]["observations"]) == observation
    response = client.post(
        "/cds-services/wm-igm-response", data=_body(request), content_type="application/json"
    )
    assert response.status_code == 200
    assessment = response.get_json()["cards"][0]["extension"]["wm-igm-assessment"]
    assert assessment["latest"]["valueMgDl"] == 2233


@pytest.mark.parametrize(
    "value",
    [
        "a string",
        [1, 2],
        {"resourceType": ["Bundle"]},
        {"resourceType": "Bundle", "entry": "not a list"},
        {"resourceType": "Bundle", "entry": [1, {"resource": 2}, {}, {"resource": None}]},
        {"no": "type"},
        None,
    ],
)
def test_any_prefetch_shape_reads_as_a_whole_parse_does(value):
    request = founding_request()
    request["prefetch"]["observations"] = value
    document = loads_request(_body(request))
    assert _as_plain(document["prefetch"]["observations"]) == value


def test_an_entry_without_a_resource_object_is_passed_over():
    page = bundle(igm("o1", 0, 100))
    page["entry"] += [{"fullUrl": "urn:x"}, {"resource": None}, {"resource": 3}]
    resources = bundle_resources(loads_document(_body(page)))
    # Text that is not an object reaches the reader, which finds no resource in it.
    assert [strict_json.loads(r) if bytes(r)[:1] == b"{" else None for r in resources] == [
        igm("o1", 0, 100),
        None,
        None,
    ]


def test_numbers_out_of_range_outside_resources_are_refused():
    request = founding_request()
    request["prefetch"]["observations"]["total"] = 1e300
    body = _body(request).replace(b"1e+300", b"1e999999")
    with pytest.raises(strict_json.JsonRefused):
        loads_request(body)


def test_a_fhir_server_answer_reads_like_a_prefetch_value():
    page = bundle(igm("o1", 0, 100), next_url="http://fhir.example/page2")
    document = loads_document(_body(page))
    assert fhir_json.next_link(document) == "http://fhir.example/page2"
    assert [strict_json.loads(r) for r in bundle_resources(document)] == [igm("o1", 0, 100)]
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-02"}
    assert loads_document(_body(patient)) == patient  # single resources are read whole


def _usual_entries(entries) -> bool:
    return entries is None or (
        isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
    )


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
_prefetch_values = st.one_of(
    _json_values,
    st.builds(
        lambda entries, extra: {"resourceType": "Bundle", "entry": entries, **extra},
        st.lists(st.one_of(_json_values, st.builds(lambda r: {"resource": r}, _json_values))),
        st.dictionaries(st.sampled_from(["link", "total", "type", "id"]), _json_values),
    ),
    st.builds(
        lambda extra: {"resourceType": "Observation", **extra},
        st.dictionaries(st.text(max_size=5), _json_values),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["observations", "procedures", "x"]), _prefetch_values))
def test_the_document_is_a_whole_parse_but_for_texts_and_type_only_values(prefetch):
    request = {"hook": "patient-view", "context": {"patientId": "p1"}, "prefetch": prefetch}
    body = _body(request)
    expected = strict_json.loads(body)
    document = _as_plain(loads_request(body))
    for key, value in expected["prefetch"].items():
        kind = value.get("resourceType") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind in fhir_json.TYPE_ONLY:
            expected["prefetch"][key] = {"resourceType": kind}
        elif kind == "Bundle" and _usual_entries(value.get("entry")):
            # A Bundle keeps the members the service reads (and an entry's members as text).
            kept = {"resourceType", "type", "total", "link", "entry"}
            expected["prefetch"][key] = {k: v for k, v in value.items() if k in kept}
            # and whether its text may hold an OperationOutcome: never False when it does
            names = document["prefetch"][key].pop(fhir_json.NAMES_OUTCOME)
            assert names is True or "OperationOutcome" not in json.dumps(value)
    assert document == expected
