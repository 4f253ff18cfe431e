"""Size gates count distinct people, not spells or responses (issue 10).

A rehired employee has two employment spells but is one person: the
Kaplan–Meier gates of leadership figures and sentences count people. The
event study hides a relative wave answered by fewer treated people than the
minimum, however many responses they gave.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import alignment_research as ar


def _spells(group: str, exits, events, *, prefix: str, rehired=None) -> list[dict]:
    """One spell per person (entry 0); ``rehired`` is ``(person index, exit, event)`` of a second spell."""
    rows = [dict(employee_id=f"{prefix}{i}", spell=1, team=group, entry=0.0, exit=float(x), event=int(e))
            for i, (x, e) in enumerate(zip(exits, events))]
    if rehired is not None:
        i, x, e = rehired
        rows.append(dict(employee_id=f"{prefix}{i}", spell=2, team=group, entry=0.0, exit=float(x), event=int(e)))
    return rows


def _person(small_rehired: bool = True) -> pd.DataFrame:
    """High: 30 people (one rehired, 31 spells); Low: 10 people; Small: 4 people + a rehired one = 5 spells.

    With ``small_rehired=False`` the fifth Small spell belongs to a fifth person.
    """
    high = _spells("High alignment", 200 + 20 * np.arange(30), np.arange(30) % 3 == 0, prefix="h",
                   rehired=(29, 900, 0))
    # Low: 6 leave early; of the 4 left at 12 months, one was rehired (5 spells, 4 people at risk)
    low = _spells("Low alignment", [50, 80, 110, 140, 170, 200, 500, 600, 700, 800], [1] * 6 + [1, 0, 1, 0],
                  prefix="l", rehired=(9, 650, 1))
    small = _spells("Small team", [100, 200, 300, 400], [1, 1, 0, 1], prefix="s", rehired=(0, 500, 0))
    if not small_rehired:
        small[-1]["employee_id"] = "s4"
        small[-1]["spell"] = 1
    return pd.DataFrame(high + low + small)


def test_fit_km_counts_people_beside_spells():
    km = ar.fit_km(_person(), group="team")
    people = km.extras["people"].set_index("group")
    assert people["n_people"].to_dict() == {"High alignment": 30, "Low alignment": 10, "Small team": 4}
    assert people["n_spells"].to_dict() == {"High alignment": 31, "Low alignment": 11, "Small team": 5}
    g = km.glance().iloc[0]
    assert (g["n"], g["n_people"]) == (47, 44)
    risk = km.extras["people_at_risk"].set_index(["group", "term"])
    assert risk.loc[("Low alignment", "retention_12_months"), "at_risk"] == 5  # spells, as R's n.risk
    assert risk.loc[("Low alignment", "retention_12_months"), "people_at_risk"] == 4
    grid = km.extras["at_risk"].set_index(["group", "time_months"])
    assert grid.loc[("Small team", 0.0), "at_risk"] == 5 and grid.loc[("Small team", 0.0), "people_at_risk"] == 4
    # the estimates are those of the spells: counting people changes no number of the model
    plain = ar.fit_km(_person(), group="team", person=None)
    pd.testing.assert_frame_equal(km.tidy(), plain.tidy())
    assert_allclose(km.extras["curves"]["estimate"], plain.extras["curves"]["estimate"], rtol=0)


def test_people_at_risk_matches_a_count_of_distinct_ids():
    person = _person()
    curves = ar.survival_table(person, group="team", person="employee_id")
    for row in curves.sample(15, random_state=0).itertuples():
        rows = person[(person["team"] == row.group) & (person["entry"] < row.time) & (person["exit"] >= row.time)]
        assert row.at_risk == len(rows)
        assert row.people_at_risk == rows["employee_id"].nunique()


def test_overlapping_spells_of_one_person_count_once():
    # spells (0, 100] and (50, 300] of one person, (200, 400] of another
    person = pd.DataFrame({"employee_id": ["a", "a", "b"], "team": "T", "entry": [0.0, 50.0, 200.0],
                           "exit": [100.0, 300.0, 400.0], "event": [1, 1, 1]})
    curves = ar.survival_table(person, person="employee_id").set_index("time")
    assert curves.loc[100.0, ["at_risk", "people_at_risk"]].tolist() == [2, 1]
    assert curves.loc[300.0, ["at_risk", "people_at_risk"]].tolist() == [2, 2]
    assert curves.loc[400.0, ["at_risk", "people_at_risk"]].tolist() == [1, 1]


def _legend(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else [line.get_label() for line in ax.lines]


def test_plot_retention_hides_a_group_of_five_spells_but_four_people():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax = ar.plot_retention(ar.fit_km(_person(), group="team"), min_group_size=5, ax=ax)
    # Small (4 people, 5 spells) is not drawn; Low, the next smallest, goes too (complementary suppression)
    assert _legend(ax) == ["High alignment"]
    assert [line.get_label() for line in ax.lines] == ["High alignment"]
    texts = [t.get_text() for t in ax.texts]
    assert "Small team" not in texts and "Groups of fewer than 5 people are not shown." in texts
    numbers = [int(t) for t in texts if t.isdigit()]
    assert 30 in numbers and 31 not in numbers  # people at risk at tenure 0, not spells
    assert min(numbers) >= 5
    plt.close(fig)


def test_plot_retention_draws_the_same_spells_when_they_are_five_people():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax = ar.plot_retention(ar.fit_km(_person(small_rehired=False), group="team"), min_group_size=5, ax=ax)
    assert sorted(line.get_label() for line in ax.lines) == ["High alignment", "Low alignment", "Small team"]
    small = next(line for line in ax.lines if line.get_label() == "Small team").get_xydata()
    # cut before fewer than 5 people remain: only the first exit (day 100, 5 at risk) is drawn
    assert_allclose(small, [[0.0, 1.0], [100 / ar.retention.DAYS_PER_MONTH, 0.8]])
    texts = [t.get_text() for t in ax.texts]
    assert "–" in texts  # e.g. Small at 12 months: 2 people at risk, suppressed, not rounded
    assert min(int(t) for t in texts if t.isdigit()) >= 5
    assert "Groups of fewer than 5 people are not shown." not in texts
    plt.close(fig)


def test_describe_retention_gates_on_people_at_that_tenure():
    person = _person(small_rehired=False)
    km = ar.fit_km(person, group="team")
    low = km.tidy().query("group == 'Low alignment' and term == 'retention_12_months'")["estimate"].item()
    low_pct = f"{low * 100:.0f}%"
    # Low: 10 people, 5 spells but 4 people at risk at 12 months
    assert low_pct not in ar.describe_retention(km, months=12, min_group_size=5).replace("95% CI", "")
    assert f"{low_pct} (95% CI" in ar.describe_retention(km, months=12, min_group_size=4)


def test_leadership_km_refuses_a_result_without_people():
    person = _person().drop(columns="employee_id")
    km = ar.fit_km(person, group="team")
    assert np.isnan(km.glance()["n_people"].item())
    with pytest.raises(ar.PrivacyError, match="distinct people"):
        ar.plot_retention(km)
    with pytest.raises(ar.PrivacyError, match="distinct people"):
        ar.describe_retention(km)


# --------------------------------------------------------------------------- event study


def _team_panel(seed: int = 0) -> pd.DataFrame:
    """30 matched sets (1 treated, 2 control teams of 5); waves 1..9, relative wave = wave - 5.

    Treated teams answer at relative waves 3 and 4 (binned into 3 with
    ``window=3``) only for three people of one team: 6 responses, 3 people.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(30):
        for j, treated in enumerate([1, 0, 0]):
            team_fe = rng.normal()
            for wave in range(1, 10):
                rel = wave - 5
                for p in range(5):
                    if treated and rel >= 3 and not (s == 0 and p < 3):
                        continue
                    y = team_fe + 0.1 * wave + 0.5 * treated * (rel >= 0) + rng.normal(scale=0.3)
                    rows.append(dict(matched_set=f"s{s}", manager_id=f"m{s}_{j}", employee_id=f"e{s}_{j}_{p}",
                                     treated=treated, wave=wave, rel_wave=rel, engagement=y))
    return pd.DataFrame(rows)


def test_event_study_counts_people_and_hides_a_wave_of_three():
    panel = _team_panel()
    open_table = ar.event_study(panel, window=3).set_index("rel_wave")
    assert open_table.loc[3, "n_people"] == 3 and open_table.loc[3, "n"] == 6  # 6 responses, 3 people
    assert open_table.loc[0, "n_people"] == 150 and np.isfinite(open_table.loc[3, "estimate"])

    gated = ar.event_study(panel, window=3, min_group_size=5).set_index("rel_wave")
    assert gated["suppressed"].tolist() == [False, False, False, False, False, False, True]
    assert gated.loc[3, "suppression"] == "small group"
    assert gated.loc[3, ["n", "n_people"]].isna().all()
    assert gated.loc[3, ["estimate", "std_error", "conf_low", "conf_high"]].isna().all()
    shown = gated.index != 3
    cols = ["estimate", "std_error", "conf_low", "conf_high"]
    assert_allclose(gated.loc[shown, cols].to_numpy(float), open_table.loc[shown, cols].to_numpy(float), rtol=0)
    assert gated.loc[shown, "n_people"].tolist() == open_table.loc[shown, "n_people"].tolist()
    # nothing small reaches the plot either
    assert 3 not in ar.plot_event_study(gated.reset_index()).lines[0].get_xdata()
    # the gate follows the study's size: with 3 the wave is shown
    assert not ar.event_study(panel, window=3, min_group_size=3)["suppressed"].any()
