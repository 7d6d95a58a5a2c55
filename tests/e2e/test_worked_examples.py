"""clinical-rules.md §8 (version 3), the worked examples, through the HTTP endpoint.

Units mg/dL unless stated; dates relative to therapy start (day 0); "today" is 3 days
after the latest value; ULN 230; profile iwwm6 unless stated.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ..builders import hook_request, ife, igm, m_spike, on, statement

BR = [statement("m-benda", "bendamustine", 0, 150), statement("m-ritux", "rituximab", 0, 150)]


def igm_course(*points):
    """Total IgM results at (day, mg/dL) points."""
    return [igm(f"o{index}", offset, value) for index, (offset, value) in enumerate(points)]


def assessment_of(response):
    response_cards = [c for c in response["cards"] if "wm-igm-assessment" in c.get("extension", {})]
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
        category="NE",
        change=None,
        caveats=["anti-cd20-flare", "hyperviscosity-risk"],
        reason="IgM rose during the anti-CD20 flare window (until 2024-05-06)",
        cards=2,
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
        category="MR",
        change=-37.5,
        caveats=["pi-mtor-discordance", "small-absolute-rise"],
        regimen=["bortezomib", "rituximab", "dexamethasone"],
        indicator="info",
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
    "E11": dict(
        observations=[
            igm("o1", -5, 5000),
            igm("o2", 90, 1000),
            igm("o3", 180, 1300),
            igm("o4", 270, 1400),
            igm("o5", 360, 1500),
        ],
        statements=[
            statement("m1", "zanubrutinib", 0),
            statement("m2", "dexamethasone 4 mg tablet", 200, 204, status="completed"),
        ],
        category="PR",
        change=-70.0,
        caveats=["btki-discordance", "unconfirmed-progression"],
        regimen=["zanubrutinib"],
        indicator="warning",
    ),
    "E12": dict(
        observations=[
            igm("o1", -5, 4000),
            igm("o2", 30, 2500),
            igm("o3", 120, 1600),
            igm("o4", 200, 1500),
        ],
        statements=[
            statement("m1", "ibrutinib", 0),
            statement("m2", "rituximab", 60, 81, status="completed"),
        ],
        category="MR",
        change=-40.0,
        caveats=["btki-discordance", "delayed-response"],
        regimen=["ibrutinib", "rituximab"],
        start=60,
    ),
    "E13": dict(
        observations=[
            igm("o1", -5, 6000),
            igm("o2", 90, 2500),
            igm("o3", 180, 2600),
            igm("o4", 270, 7000, comparator=">"),
        ],
        statements=[statement("m1", "zanubrutinib", 0)],
        category="NE",
        change=None,
        caveats=["btki-discordance", "hyperviscosity-risk", "unconfirmed-progression"],
        reason="the latest IgM is above the laboratory's reporting range: ask for a diluted result",
        indicator="warning",
        cards=2,
    ),
    "E14": dict(
        observations=[
            igm("o1", -4, 2500),
            igm("o2", 300, 25, comparator="<"),
            ife("i1", 300, "Negative"),
            igm("o3", 390, 40),
            igm("o4", 480, 60),
        ],
        statements=[
            statement("m1", "bendamustine", 0, 150, status="completed"),
            statement("m2", "rituximab", 0, 150, status="completed"),
        ],
        category="CR",
        change=-97.6,
        caveats=["cr-needs-marrow"],
    ),
    "E15": dict(
        observations=[
            igm("o1", -5, 4000),
            igm("o2", 90, 1500),
            m_spike("s1", -5, "3.0"),
            m_spike("s2", 90, "1.0"),
            m_spike("s3", 360, "1.0"),
            m_spike("s4", 450, "1.4"),
            m_spike("s5", 540, "1.6"),
        ],
        statements=[statement("m1", "ibrutinib", 0)],
        category="MR",
        change=-46.6,
        caveats=["btki-discordance", "method-change", "unconfirmed-progression"],
        series="m-spike",
        indicator="warning",
    ),
    "E16": dict(
        observations=[
            igm("o1", -4, 2500),
            igm("o2", 300, 200),
            ife("i1", 300, "Negative for IgG and IgA. IgM kappa monoclonal band present."),
        ],
        statements=BR,
        category="VGPR",
        change=-92.0,
        caveats=[],
    ),
    "E21": dict(
        observations=igm_course(
            (-5, 4500),
            (90, 1200),
            (180, 800),
            (270, 650),
            (360, 560),
            (450, 640),
            (540, 700),
            (630, 705),
            (720, 660),
        ),
        statements=[statement("m1", "ibrutinib", 0)],
        category="PR",
        change=-85.3,
        caveats=["btki-discordance"],
        indicator="info",
    ),
    "E22": dict(
        observations=igm_course(
            (-7, 3600),
            (180, 700),
            (360, 400),
            (540, 300),
            (720, 260),
            (900, 240),
            (1080, 220),
            (1260, 210),
            (1440, 230),
            (1620, 250),
            (1770, 290),
            (1918, 300),
        ),
        statements=[statement("m1", "ibrutinib", 0)],
        category="VGPR",
        change=-91.6,
        caveats=["btki-discordance", "small-absolute-rise"],
        indicator="info",
    ),
}


def _today(example):
    latest = max(o["effectiveDateTime"] for o in example["observations"])
    return date.fromisoformat(latest) + timedelta(days=3)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_worked_example(name, call):
    example = EXAMPLES[name]
    request = hook_request(example["observations"], example["statements"])
    response = call(request, today=_today(example))
    extension, _card = assessment_of(response)
    assert extension["criteria"] == "IWWM-6"
    assert extension["category"] == example["category"]
    assert extension.get("percentChange") == example["change"]
    assert extension.get("caveats", []) == example["caveats"]
    assert extension["therapyStart"] == on(example.get("start", 0)).isoformat()
    for key in ("reason", "regimen", "series"):
        if key in example:
            assert extension.get(key) == example[key]
    if "indicator" in example:
        assert _card["indicator"] == example["indicator"]
    if "cards" in example:
        assert len(response["cards"]) == example["cards"]


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


def test_e7_rises_under_the_floor_are_stated_not_called_progression(call):
    example = EXAMPLES["E7"]
    response = call(hook_request(example["observations"], example["statements"]), today=on(273))
    extension, card = assessment_of(response)
    assert extension["nadir"] == {"valueMgDl": 900, "date": on(90).isoformat()}
    assert "progressionConfirmed" not in extension
    # (1250 - 900) / 900 = 38.88... %, shown truncated; 350 mg/dL is under the 500 floor
    assert extension["percentChangeFromNadir"] == 38.8
    assert extension["riseBelowFloor"] == {"riseMgDl": 350}
    assert card["summary"] == (
        "Minor response (MR), IWWM-6: IgM -37.5% on bortezomib + 2 more; +38.8% from nadir "
        "(+350 mg/dL), under the 500 mg/dL floor"
    )
    assert [s["label"] for s in card["suggestions"]][:1] == ["Repeat serum IgM"]
    assert "at least 500 mg/dL above the nadir" in card["detail"]


def test_e8_strict_profile_is_iwwm6_as_published(call):
    example = EXAMPLES["E7"]
    response = call(
        hook_request(example["observations"], example["statements"]),
        today=on(273),
        criteria="iwwm6-strict",
    )
    extension, card = assessment_of(response)
    assert extension["criteria"] == "IWWM-6-strict"
    assert extension["category"] == "PD"
    assert extension["progressionConfirmed"] == on(270).isoformat()
    assert extension["caveats"] == ["pi-mtor-discordance", "small-absolute-rise"]
    assert "riseBelowFloor" not in extension
    assert card["indicator"] == "warning"
    assert card["summary"] == (
        "Progressive disease (PD), IWWM-6-strict: IgM +38.8% from nadir (900 -> 1250 mg/dL), "
        "confirmed 2024-10-11, on bortezomib + 2 more"
    )


def test_e8_the_trial_name_is_the_default_profile(call):
    example = EXAMPLES["E7"]
    request = hook_request(example["observations"], example["statements"])
    default, _ = assessment_of(call(request, today=on(273)))
    trial, _ = assessment_of(call(request, today=on(273), criteria="iwwm6-trial"))
    assert trial == default and trial["criteria"] == "IWWM-6"


@pytest.mark.parametrize(
    "name, confirmed, caveats",
    [
        ("E7", 270, ["pi-mtor-discordance", "small-absolute-rise"]),
        ("E11", 270, ["btki-discordance", "small-absolute-rise"]),
        ("E15", 540, ["btki-discordance", "method-change", "small-absolute-rise"]),
        ("E21", 630, ["btki-discordance", "pd-then-fall", "small-absolute-rise"]),
        ("E22", 1918, ["btki-discordance", "small-absolute-rise"]),
    ],
)
def test_under_the_strict_profile_small_rises_are_progression(name, confirmed, caveats, call):
    example = EXAMPLES[name]
    request = hook_request(example["observations"], example["statements"])
    extension, card = assessment_of(call(request, today=_today(example), criteria="iwwm6-strict"))
    assert extension["category"] == "PD"
    assert extension["progressionConfirmed"] == on(confirmed).isoformat()
    assert extension["caveats"] == caveats
    assert card["indicator"] == "warning"


def test_e21_a_plateau_of_assay_noise_is_a_durable_response(call):
    example = EXAMPLES["E21"]
    request = hook_request(example["observations"], example["statements"])
    extension, card = assessment_of(call(request, today=_today(example)))
    assert extension["responseSince"] == on(90).isoformat()
    assert "durable" in card["detail"]
    assert "riseBelowFloor" not in extension
    assert [s["label"] for s in card.get("suggestions", [])] == [
        "Record disease status: improved (IgM-based)"  # no repeat IgM: nothing to confirm
    ]


def test_e22_a_rise_near_the_normal_range_is_a_note_not_progression(call):
    example = EXAMPLES["E22"]
    request = hook_request(example["observations"], example["statements"])
    extension, card = assessment_of(call(request, today=_today(example)))
    assert card["summary"] == (
        "Very good partial response (VGPR), IWWM-6: IgM -91.6% on ibrutinib; +42.8% from nadir "
        "(+90 mg/dL), under the 500 mg/dL floor"
    )
    assert extension["percentChangeFromNadir"] == 42.8
    assert extension["riseBelowFloor"] == {"riseMgDl": 90}
    assert [s["label"] for s in card["suggestions"]][:1] == ["Repeat serum IgM"]


def test_e12_reports_the_change_since_the_earlier_start(call):
    example = EXAMPLES["E12"]
    response = call(hook_request(example["observations"], example["statements"]), today=on(203))
    extension, card = assessment_of(response)
    assert extension["baseline"] == {"valueMgDl": 2500, "date": on(30).isoformat()}
    assert extension["continuingFrom"] == {
        "therapyStart": on(0).isoformat(),
        "baseline": {"valueMgDl": 4000, "date": on(-5).isoformat()},
        "percentChange": -62.5,
    }
    assert "-62.5%" in card["detail"]


def test_e13_keeps_the_lower_bound_and_escapes_it_once(call):
    example = EXAMPLES["E13"]
    response = call(hook_request(example["observations"], example["statements"]), today=on(273))
    extension, card = assessment_of(response)
    latest = {"valueMgDl": 7000, "date": on(270).isoformat(), "comparator": ">"}
    assert extension["latest"] == latest
    assert ">7000 mg/dL" in card["detail"]
    assert "&gt;" not in card["detail"] and "&gt;" not in card["summary"]
    assert card["summary"].endswith("; IgM rising, repeat to confirm")


def test_e10_bound_is_at_least(call):
    example = EXAMPLES["E10"]
    extension, card = assessment_of(
        call(hook_request(example["observations"], example["statements"]), today=on(303))
    )
    assert extension["percentChangeIsBound"] is True
    assert extension["latest"] == {"valueMgDl": 25, "date": on(300).isoformat(), "comparator": "<"}
    assert "-99.0% or more" in card["summary"]
