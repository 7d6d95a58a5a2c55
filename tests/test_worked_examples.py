"""clinical-rules.md §7, E1-E10, through the HTTP endpoint.

Units mg/dL unless stated; dates relative to therapy start (day 0); "today" is 3 days
after the latest value; ULN 230; profile iwwm6 unless stated.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from .builders import hook_request, ife, igm, on, statement

BR = [statement("m-benda", "bendamustine", 0, 150), statement("m-ritux", "rituximab", 0, 150)]


def assessment_of(response):
    response_cards = [c for c in response["cards"] if "extension" in c]
    assert len(response_cards) == 1
    return response_cards[0]["extension"]["wm-igm-assessment"], response_cards[0]


EXAMPLES = {
    "E1": dict(
        observations=[igm("o1", -5, 5100), igm("o2", 360, 2233)],
        statements=[statement("m1", "zanubrutinib", 0)],
        category="PR",
        change=-56.2,
        caveats=["btki-discordance"],
    ),
    "E2": dict(
        observations=[igm("o1", -3, 51, "g/L"), igm("o2", 180, 2233)],
        statements=[statement("m1", "zanubrutinib", 0)],
        category="PR",
        change=-56.2,
        caveats=["btki-discordance"],
    ),
    "E3": dict(
        observations=[igm("o1", -10, 3000), igm("o2", 90, 2250)],
        statements=[statement("m1", "ibrutinib", 0)],
        category="MR",
        change=-25.0,
        caveats=["btki-discordance"],
    ),
    "E4": dict(
        observations=[igm("o1", -10, 3000), igm("o2", 90, 2251)],
        statements=[statement("m1", "ibrutinib", 0)],
        category="SD",
        change=-24.9,
        caveats=["btki-discordance"],
    ),
    "E5": dict(
        observations=[igm("o1", -1, 6000), igm("o2", 60, 4800), igm("o3", 120, 1000)],
        statements=BR,
        category="PR",
        change=-83.3,
        caveats=[],
    ),
    "E6": dict(
        observations=[igm("o1", -2, 4200), igm("o2", 28, 5900), igm("o3", 56, 5600)],
        statements=[statement("m1", "rituximab", 0)],
        category="SD",
        change=33.3,
        caveats=["anti-cd20-flare", "hyperviscosity-risk"],
    ),
    "E7": dict(
        observations=[
            igm("o1", -7, 2000),
            igm("o2", 90, 900),
            igm("o3", 180, 1200),
            igm("o4", 270, 1250),
        ],
        statements=[
            statement("m1", "bortezomib", 0),
            statement("m2", "dexamethasone", 0),
            statement("m3", "rituximab", 0),
        ],
        category="PD",
        change=-37.5,
        caveats=["pi-mtor-discordance"],
    ),
    "E9": dict(
        observations=[igm("o1", 30, 2100), igm("o2", 120, 1500)],
        statements=[statement("m1", "ibrutinib", 0)],
        category="NE",
        change=None,
        caveats=["btki-discordance", "no-baseline"],
    ),
    "E10": dict(
        observations=[
            igm("o1", -4, 2500),
            igm("o2", 300, 25, comparator="<"),
            ife("i1", 300, "Negative"),
        ],
        statements=BR,
        category="CR",
        change=-99.0,
        caveats=["cr-needs-marrow"],
    ),
}


def _today(example):
    latest = max(o["effectiveDateTime"] for o in example["observations"])
    return date.fromisoformat(latest) + timedelta(days=3)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_worked_example(name, call):
    example = EXAMPLES[name]
    request = hook_request(example["observations"], example["statements"])
    extension, _card = assessment_of(call(request, today=_today(example)))
    assert extension["criteria"] == "IWWM-6"
    assert extension["category"] == example["category"]
    assert extension.get("percentChange") == example["change"]
    assert extension.get("caveats", []) == example["caveats"]
    assert extension["therapyStart"] == on(0).isoformat()


def test_e1_card_reads_as_the_founding_answer(call):
    example = EXAMPLES["E1"]
    extension, card = assessment_of(
        call(hook_request(example["observations"], example["statements"]), today=on(363))
    )
    assert card["summary"] == (
        "Partial response (PR), IWWM-6: IgM -56.2% (5100 -> 2233 mg/dL) on zanubrutinib"
    )
    assert card["indicator"] == "info"
    assert extension["baseline"] == {"valueMgDl": 5100, "date": on(-5).isoformat()}
    assert extension["latest"] == {"valueMgDl": 2233, "date": on(360).isoformat()}
    assert extension["nadir"] == extension["latest"]
    assert extension["regimen"] == ["zanubrutinib"]
    assert extension["percentChangeIsBound"] is False
    assert "hyperviscosity-risk" not in extension.get("caveats", [])


def test_e2_converts_g_per_litre(call):
    example = EXAMPLES["E2"]
    extension, _ = assessment_of(
        call(hook_request(example["observations"], example["statements"]), today=on(183))
    )
    assert extension["baseline"]["valueMgDl"] == 5100


def test_e7_is_progression_with_warning(call):
    example = EXAMPLES["E7"]
    response = call(hook_request(example["observations"], example["statements"]), today=on(273))
    extension, card = assessment_of(response)
    assert card["indicator"] == "warning"
    assert extension["nadir"] == {"valueMgDl": 900, "date": on(90).isoformat()}
    assert card["summary"].startswith("Progressive disease (PD), IWWM-6")


def test_e8_trial_profile_needs_500_mg_dl(call):
    example = EXAMPLES["E7"]
    response = call(
        hook_request(example["observations"], example["statements"]),
        today=on(273),
        criteria="iwwm6-trial",
    )
    extension, card = assessment_of(response)
    assert extension["criteria"] == "IWWM-6-trial"
    assert extension["category"] == "MR"
    assert extension["percentChange"] == -37.5
    assert extension["caveats"] == ["pi-mtor-discordance"]
    assert card["indicator"] == "info"


def test_e10_bound_is_at_least(call):
    example = EXAMPLES["E10"]
    extension, card = assessment_of(
        call(hook_request(example["observations"], example["statements"]), today=on(303))
    )
    assert extension["percentChangeIsBound"] is True
    assert extension["latest"] == {"valueMgDl": 25, "date": on(300).isoformat(), "comparator": "<"}
    assert "-99.0% or more" in card["summary"]
