"""The claims scorecard: verdict rules, the estimators behind each claim, missing data, the plot."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from pathlib import Path

from scipy import stats as st

import alignment_research as ar
from alignment_research.errors import ModelError
from alignment_research.scorecard import (
    CONTRADICTED,
    INCONCLUSIVE,
    NOT_TESTABLE,
    SCORECARD_COLUMNS,
    SUPPORTED,
    VERDICT_COLOURS,
    claim_verdicts,
)


REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def r_values():
    """Values written by tests/reference/scorecard.R (R 4.2.2, sandwich 3.0.2; see the provenance file)."""
    return pd.read_csv(REFERENCE / "scorecard_reference.csv").set_index("quantity")["value"]


def _rows(estimate, std_error, direction, ratio=False, needs=""):
    n = len(estimate)
    return pd.DataFrame({"estimate": estimate, "std_error": std_error, "direction": direction,
                         "ratio": [ratio] * n if np.isscalar(ratio) else ratio,
                         "needs": [needs] * n if isinstance(needs, str) else needs})


# ----------------------------------------------------------------------------- verdict rules, one by one
def test_supported_needs_the_adjusted_interval_wholly_on_the_claimed_side():
    # m = 2 testable rows: half-width z(1 - 0.05/4) = 2.2414 standard errors
    out = claim_verdicts(_rows([0.23, 0.22], [0.1, 0.1], [1, 1]))
    z_adj = st.norm.ppf(1 - 0.05 / 4)
    assert out["adj_conf_low"].tolist() == pytest.approx([0.23 - z_adj * 0.1, 0.22 - z_adj * 0.1])
    assert out["verdict"].tolist() == [SUPPORTED, INCONCLUSIVE]  # 0.23 - 0.2241 > 0 > 0.22 - 0.2241


def test_a_claim_of_lower_is_supported_below_the_null_and_contradicted_above():
    out = claim_verdicts(_rows([-0.5, 0.5, -0.5, 0.5], [0.1] * 4, [-1, -1, 1, 1]))
    assert out["verdict"].tolist() == [SUPPORTED, CONTRADICTED, CONTRADICTED, SUPPORTED]


def test_significant_before_but_not_after_the_family_adjustment_is_inconclusive():
    # z = 2.5 beats 1.96 but not z(1 - 0.05/10) = 2.807 for m = 5
    out = claim_verdicts(_rows([0.25, 0.0, 0.0, 0.0, 0.0], [0.1] * 5, [1] * 5))
    assert out.loc[0, "conf_low"] > 0 and out.loc[0, "p_value"] < 0.05
    assert out.loc[0, "verdict"] == INCONCLUSIVE
    assert out.loc[0, "p_holm"] == pytest.approx(min(1.0, 5 * out.loc[0, "p_value"]))


def test_holm_matches_r_p_adjust():
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") -> 0.03 0.06 0.06 0.02
    rows = _rows([1.0] * 4, [1.0] * 4, [1] * 4).assign(p_value=[0.01, 0.04, 0.03, 0.005])
    out = claim_verdicts(rows)
    assert out["p_holm"].tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_not_testable_rows_keep_needs_and_stay_out_of_the_family():
    rows = _rows([0.3, 0.1, np.nan], [0.1, 0.1, np.nan], [1, 1, 1], needs=["", "", "goals.difficulty"])
    out = claim_verdicts(rows)
    assert out["verdict"].tolist() == [SUPPORTED, INCONCLUSIVE, NOT_TESTABLE]
    assert out.loc[2, "needs"] == "goals.difficulty" and np.isnan(out.loc[2, "p_holm"])
    z_adj = st.norm.ppf(1 - 0.05 / 4)  # m = 2, not 3
    assert out.loc[1, "adj_conf_high"] == pytest.approx(0.1 + z_adj * 0.1)


def test_mde_is_stated_for_inconclusive_rows_on_the_rows_scale():
    out = claim_verdicts(_rows([0.05, 0.8, np.log(0.95)], [0.1, 0.1, 0.2], [1, 1, -1], ratio=[False, False, True]))
    z_adj = st.norm.ppf(1 - 0.05 / 6)
    z_pow = st.norm.ppf(0.8)
    assert out.loc[0, "mde"] == pytest.approx((z_adj + z_pow) * 0.1)
    assert np.isnan(out.loc[1, "mde"])  # supported: nothing to detect
    # a claimed lower hazard: the smallest detectable hazard ratio is below 1
    assert out.loc[2, "mde"] == pytest.approx(np.exp(-(z_adj + z_pow) * 0.2))
    assert out.loc[2, "estimate"] == pytest.approx(0.95)
    assert out.loc[2, "conf_low"] == pytest.approx(0.95 * np.exp(-st.norm.ppf(0.975) * 0.2))


def test_power_and_alpha_change_the_mde_and_a_claim_needs_a_direction():
    a = claim_verdicts(_rows([0.0], [0.1], [1]), power=0.9)
    assert a.loc[0, "mde"] == pytest.approx((st.norm.ppf(0.975) + st.norm.ppf(0.9)) * 0.1)
    with pytest.raises(ModelError, match="direction"):
        claim_verdicts(_rows([0.1], [0.1], [0]))


def test_holm_matches_r_on_a_family_of_seven(r_values):
    p = r_values[[f"p_{i}" for i in range(1, 8)]].to_numpy()
    out = claim_verdicts(_rows([1.0] * 7, [1.0] * 7, [1] * 7).assign(p_value=p))
    # p.adjust(c(0.001, 0.2, 0.013, 0.04, 0.0004, 0.6, 0.03), "holm")
    np.testing.assert_allclose(out["p_holm"], r_values[[f"holm_{i}" for i in range(1, 8)]], rtol=1e-12)


def test_difficulty_curve_matches_r_on_chickweight(r_values):
    chicks = pd.read_csv(REFERENCE / "scorecard_chickweight.csv")
    curve = ar.difficulty_curve(chicks, outcome="weight", exposure="time", cluster="chick").set_index("term")
    # coef(lm(weight ~ time)), sqrt(diag(vcovCL(., cluster = ~chick, type = "HC1")))
    assert curve.loc["linear", "estimate"] == pytest.approx(r_values["linear_estimate"], rel=1e-9)
    assert curve.loc["linear", "std_error"] == pytest.approx(r_values["linear_std_error"], rel=1e-7)
    # lm(weight ~ time + I(time^2)) with vcovCL HC1
    assert curve.loc["quadratic", "estimate"] == pytest.approx(r_values["quadratic_estimate"], rel=1e-9)
    assert curve.loc["quadratic", "std_error"] == pytest.approx(r_values["quadratic_std_error"], rel=1e-7)
    # -b1 / (2 b2) and its delta-method standard error
    assert curve.loc["turning_point", "estimate"] == pytest.approx(r_values["turning_point"], rel=1e-9)
    assert curve.loc["turning_point", "std_error"] == pytest.approx(r_values["turning_point_std_error"], rel=1e-7)
    assert not bool(curve["inside"].iloc[0])  # weight grows convexly: the turning point is before day 0


# ----------------------------------------------------------------------------- building blocks with known answers
def test_difficulty_curve_finds_the_turning_point_of_an_exact_quadratic():
    x = np.repeat([1.0, 2, 3, 4, 5], 40)
    noise = np.tile(np.linspace(-0.02, 0.02, 40), 5)
    y = 0.5 + 0.48 * x - 0.08 * x ** 2 + noise  # turning point 3.0
    data = pd.DataFrame({"difficulty": x, "attainment": y, "owner_id": np.arange(200) // 5})
    curve = ar.difficulty_curve(data).set_index("term")
    assert curve.loc["quadratic", "estimate"] == pytest.approx(-0.08, abs=1e-10)
    assert curve.loc["turning_point", "estimate"] == pytest.approx(3.0, abs=1e-8)
    assert bool(curve["inside"].iloc[0])
    assert curve.loc["turning_point", "conf_low"] < 3 < curve.loc["turning_point", "conf_high"]
    # the linear test first: symmetric inverted U on a symmetric design has no slope
    assert curve.loc["linear", "estimate"] == pytest.approx(0.0, abs=1e-10)


def test_difficulty_curve_delta_method_matches_statsmodels_cluster_covariance(rng):
    x = rng.integers(1, 6, 400).astype(float)
    g = np.arange(400) % 50
    y = 0.6 + 0.3 * x - 0.05 * x ** 2 + rng.normal(0, 0.2, 400) + rng.normal(0, 0.1, 50)[g]
    data = pd.DataFrame({"difficulty": x, "attainment": y, "owner_id": g})
    curve = ar.difficulty_curve(data).set_index("term")
    X = sm.add_constant(np.column_stack([x, x ** 2]))
    res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g})
    b, V = res.params, res.cov_params()
    grad = np.array([0, -1 / (2 * b[2]), b[1] / (2 * b[2] ** 2)])
    assert curve.loc["turning_point", "estimate"] == pytest.approx(-b[1] / (2 * b[2]), rel=1e-10)
    assert curve.loc["turning_point", "std_error"] == pytest.approx(np.sqrt(grad @ V @ grad), rel=1e-8)
    assert curve.loc["quadratic", "std_error"] == pytest.approx(res.bse[2], rel=1e-8)


def test_difficulty_curve_on_a_clean_line_shows_a_slope_and_no_curve():
    x = np.repeat([1.0, 2, 3, 4, 5], 20)
    y = 0.4 + 0.15 * x + np.tile(np.linspace(-0.01, 0.01, 20), 5)
    curve = ar.difficulty_curve(pd.DataFrame({"difficulty": x, "attainment": y, "owner_id": np.arange(100) // 2}))
    curve = curve.set_index("term")
    assert curve.loc["linear", "estimate"] == pytest.approx(0.15, abs=1e-10)
    assert curve.loc["quadratic", "estimate"] == pytest.approx(0.0, abs=1e-10)


def test_checkin_regularity_mean_gap_and_cv_per_cycle():
    dates = ["2022-01-01", "2022-01-11", "2022-03-02",  # gaps 10, 50 in 2022
             "2023-01-01", "2023-01-31", "2023-03-02", "2023-04-01",  # gaps 30, 30, 30 in 2023
             "2022-05-01", "2022-06-01"]  # b: only two check-ins -> no row
    fb = pd.DataFrame({"employee_id": ["a"] * 7 + ["b"] * 2, "date": pd.to_datetime(dates),
                       "kind": ["check_in"] * 9})
    fb.loc[len(fb)] = ["a", pd.Timestamp("2022-02-01"), "recognition"]  # another kind does not count
    cycles = pd.DataFrame({"name": ["2022", "2023"], "start": ["2022-01-01", "2023-01-01"],
                           "end": ["2022-12-31", "2023-12-31"]})
    out = ar.checkin_regularity(fb, cycles).set_index("cycle")
    assert out.index.tolist() == ["2022", "2023"] and (out["employee_id"] == "a").all()
    assert out.loc["2022", "mean_gap_days"] == 30
    assert out.loc["2022", "gap_cv"] == pytest.approx(np.std([10, 50], ddof=1) / 30)
    assert out.loc["2023", "gap_cv"] == 0 and out.loc["2023", "n_checkins"] == 4


def test_trailing_event_rate_has_no_look_ahead():
    ev = pd.DataFrame({"employee_id": ["a", "a", "a", "b"],
                       "date": pd.to_datetime(["2022-01-01", "2022-02-15", "2022-04-01", "2022-03-01"])})
    at = pd.DataFrame({"employee_id": ["a", "a", "b", None],
                       "date": pd.to_datetime(["2022-04-01", "2022-04-02", "2022-04-01", "2022-04-01"])})
    days = round(3 * 365.25 / 12)  # 91: the window [date - 91 days, date)
    rate = ar.trailing_event_rate(ev, at, months=3)
    per_month = days / (365.25 / 12)
    # 1 April: 1 Jan is 90 days back (in), 15 Feb in, 1 April itself not yet known
    assert rate[0] == pytest.approx(2 / per_month)
    # 2 April: 1 Jan is 91 days back (still in), 1 April now known
    assert rate[1] == pytest.approx(3 / per_month)
    assert rate[2] == pytest.approx(1 / per_month) and np.isnan(rate[3])


# ----------------------------------------------------------------------------- the scorecard on a simulated study
@pytest.fixture(scope="module")
def card(tiny_clean):
    return ar.claims_scorecard(tiny_clean, n_boot=50)


#: The optional goal columns; the simulator writes difficulty, set_with and revised_date (practices on by default).
GOAL_COLUMNS = ["difficulty", "target", "baseline", "set_with", "revised_date"]


@pytest.fixture(scope="module")
def bare_clean(tiny_study):
    """The tiny study cleaned without the optional goal columns (a study whose goals have none of them)."""
    goals = tiny_study.tables["goals"].drop(columns=GOAL_COLUMNS, errors="ignore")
    return ar.clean_study(dataclasses.replace(tiny_study, tables={**tiny_study.tables, "goals": goals}),
                          progress=False)


@pytest.fixture(scope="module")
def bare_card(bare_clean):
    return ar.claims_scorecard(bare_clean, n_boot=50)


def test_one_row_per_claim_with_every_column(card):
    assert list(card.columns) == SCORECARD_COLUMNS
    assert sorted(card["claim_no"].unique()) == list(range(1, 10))
    assert set(card["verdict"]) <= {SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE}
    testable = card[card["verdict"] != NOT_TESTABLE]
    assert len(testable) >= 10
    assert (testable["p_holm"] >= testable["p_value"] - 1e-12).all()
    assert (testable["adj_conf_low"] <= testable["conf_low"]).all()
    assert (testable["threats"].str.len() > 0).all()
    supported = card[card["verdict"] == SUPPORTED]
    assert (supported["p_holm"] < 0.05).all()
    ratio = testable[testable["ratio"]]
    assert len(ratio) >= 3 and (ratio["estimate"] > 0).all() and (ratio["scale"].str.contains("hazard")).all()


def test_goal_claims_without_the_goal_columns_are_not_testable_and_say_what_they_need(bare_card):
    card = bare_card
    for no in (5, 6):
        part = card[card["claim_no"] == no]
        assert (part["verdict"] == NOT_TESTABLE).all()
    assert card.loc[card["claim_no"] == 5, "needs"].str.contains("goals.difficulty").all()
    assert card.loc[card["claim_no"] == 6, "needs"].eq("goals.set_with").all()
    assert card.loc[card["exposure"] == "goal revised mid-cycle", "needs"].tolist() == ["goals.revised_date"]
    assert card.loc[card["verdict"] != NOT_TESTABLE, "needs"].eq("").all()


def test_the_scorecard_does_not_fail_without_feedback_or_surveys(tiny_clean):
    tables = {k: v for k, v in tiny_clean.tables.items() if k not in ("feedback", "surveys")}
    lean = dataclasses.replace(tiny_clean, tables=tables)
    out = ar.claims_scorecard(lean, n_boot=20).set_index("claim_no")
    for no in (1, 2, 3):
        assert (out.loc[[no], "verdict"] == NOT_TESTABLE).all()
        assert out.loc[[no], "needs"].str.contains("feedback.kind").all()
    eight = out.loc[[8]].set_index(["exposure", "outcome"])
    # only the cascade's link to retention needs no survey
    assert eight.loc[("cascade alignment", "voluntary exit"), "verdict"] != NOT_TESTABLE
    rest = eight.drop(("cascade alignment", "voluntary exit"))
    assert (rest["verdict"] == NOT_TESTABLE).all() and rest["needs"].str.contains("surveys").all()
    assert (out.loc[[9], "verdict"] != NOT_TESTABLE).all()  # alignment -> performance needs neither


@pytest.fixture(scope="module")
def goal_study(tiny_clean):
    """The tiny study with the optional goal columns, and known effects built in."""
    rng = np.random.default_rng(7)
    goals = tiny_clean.tables["goals"].copy()
    n = len(goals)
    difficulty = rng.integers(1, 6, n).astype(float)
    set_with = rng.choice(["employee", "manager", "jointly"], n)
    revised = rng.random(n) < 0.3
    start = pd.to_datetime(goals["cycle"].astype(str) + "-06-15")
    goals["difficulty"] = difficulty
    goals["set_with"] = set_with
    goals["revised_date"] = start.where(revised)
    # inverted U with its top at difficulty 3, +0.15 for goals set jointly, no effect of revisions
    goals["attainment"] = (0.55 + 0.3 * difficulty - 0.05 * difficulty ** 2 + 0.15 * (set_with == "jointly")
                           + rng.normal(0, 0.1, n))
    return dataclasses.replace(tiny_clean, tables={**tiny_clean.tables, "goals": goals})


def test_goal_claims_with_the_columns_recover_the_built_in_effects(goal_study):
    out = ar.claims_scorecard(goal_study, n_boot=20)
    five = out[(out["claim_no"] == 5) & (out["outcome"] == "goal attainment")].iloc[0]
    assert five["verdict"] == SUPPORTED and five["estimate"] == pytest.approx(-0.05, abs=0.01)
    assert "turning point 3.0" in five["detail"] or "turning point 2.9" in five["detail"]
    joint = out[(out["claim_no"] == 6) & (out["outcome"] == "goal attainment")].iloc[0]
    assert joint["verdict"] == SUPPORTED and joint["estimate"] == pytest.approx(0.15, abs=0.02)
    revised = out[out["exposure"] == "goal revised mid-cycle"].iloc[0]
    assert revised["verdict"] == INCONCLUSIVE and abs(revised["estimate"]) < 0.02 and revised["mde"] > 0
    assert out.loc[out["claim_no"].isin([5, 6, 7]), "verdict"].ne(NOT_TESTABLE).all()


# ----------------------------------------------------------------------------- the plot
def test_plot_scorecard_draws_adjusted_intervals_in_verdict_colours():
    rows = _rows([0.5, -0.5, 0.05, np.nan], [0.1, 0.1, 0.1, np.nan], [1, 1, 1, 1])
    table = claim_verdicts(rows).assign(claim=list("abcd"), exposure=list("wxyz"), outcome="o")
    ax = ar.plot_scorecard(table)
    assert len(ax.containers) == 3  # supported, contradicted, inconclusive; not testable as a marker
    z_adj = st.norm.ppf(1 - 0.05 / 6)
    by_colour = {}
    for container in ax.containers:
        line = container.lines[0]
        by_colour[line.get_color()] = line.get_xydata()
        segments = container.lines[2][0].get_segments()
        assert segments[0][1][0] - segments[0][0][0] == pytest.approx(2 * z_adj)
    assert by_colour[VERDICT_COLOURS[SUPPORTED]].tolist() == [[5.0, 0.0]]
    assert by_colour[VERDICT_COLOURS[CONTRADICTED]].tolist() == [[-5.0, 1.0]]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["w -> o", "x -> o", "y -> o", "z -> o"]
    assert ax.lines[-1].get_xdata()[0] == 0  # the null line


# ----------------------------------------------------------------------------- claim estimators on built-in answers
def _context(clean, **cache):
    from alignment_research.scorecard import _Context

    return _Context(clean, feedback_months=3, recognition_months=6, kinds=None, n_boot=20, seed=0, cache=cache)


@pytest.fixture(scope="module")
def static_clean():
    """The tiny study without job history: every report keeps one manager, so a built-in manager effect is fixed."""
    return ar.clean_study(ar.simulate_study(n_employees=300, seed=0, truth=ar.Truth(history=False)))


def test_360_before_after_recovers_a_built_in_team_effect(static_clean):
    from alignment_research.scorecard import _claim_360, _leader_panel

    tiny_clean = static_clean

    rng = np.random.default_rng(3)
    panel, n_switch = _leader_panel(_context(tiny_clean))
    assert n_switch >= 2
    base = tiny_clean.analysis.survey_panel.copy()
    # a manager effect, a wave effect, +0.3 after the manager's first 360, noise
    manager = pd.factorize(base["manager_id"])[0]
    lifted = np.zeros(len(base), dtype=bool)
    lifted[base.index.get_indexer(panel.index)] = panel["after_360"].to_numpy() == 1
    base["engagement"] = (3 + rng.normal(0, 0.3, manager.max() + 2)[manager] + 0.05 * base["wave"]
                          + 0.3 * lifted + rng.normal(0, 0.05, len(base)))
    rows = pd.DataFrame(_claim_360(_context(tiny_clean, survey_panel=base))).set_index("outcome")
    assert rows.loc["team engagement", "estimate"] == pytest.approx(0.3, abs=0.02)
    assert rows.loc["team engagement", "std_error"] < 0.02
    assert "pre-trend (year before)" in rows.loc["team engagement", "detail"]
    # the event study on the same built-in effect: flat before, +0.3 from the first wave after
    es = ar.event_study(ar.leader_feedback_panel(tiny_clean, survey_panel=base), outcome="engagement", window=2)
    es = es.set_index("rel_wave")
    assert es.loc[-1, "estimate"] == 0 and abs(es.loc[-2, "estimate"]) < 0.03
    assert es.loc[[0, 1, 2], "estimate"].to_numpy() == pytest.approx([0.3] * 3, abs=0.03)


def test_leader_feedback_panel_times_each_response_against_the_managers_first_360(tiny_clean):
    panel = ar.leader_feedback_panel(tiny_clean)
    fb = tiny_clean.tables["feedback"]
    first = fb[fb["kind"] == "360_review"].groupby("employee_id")["date"].min()
    row = panel[panel["treated"] == 1].iloc[0]
    assert row["first_360"] == first[row["manager_id"]]
    assert row["after_360"] == int(row["survey_date"] >= row["first_360"])
    treated = panel[panel["treated"] == 1]
    # rel_wave 0 is the first wave with a response after the review (it may straddle the date);
    # every earlier wave is wholly before it, every later one wholly after
    assert (treated.loc[treated["rel_wave"] < 0, "after_360"] == 0).all()
    assert (treated.loc[treated["rel_wave"] > 0, "after_360"] == 1).all()
    assert treated.loc[treated["rel_wave"] == 0, "after_360"].mean() > 0.5
    assert (panel.loc[panel["treated"] == 0, ["after_360", "rel_wave"]] == 0).all().all()


def test_alignment_to_performance_recovers_a_built_in_slope(tiny_clean):
    from alignment_research.scorecard import _claim_performance

    rng = np.random.default_rng(4)
    cycles = tiny_clean.analysis.cycles.copy()
    cycles["attainment"] = 0.8 + 0.2 * cycles["alignment_cascade"] + rng.normal(0, 0.02, len(cycles))
    rows = pd.DataFrame(_claim_performance(_context(tiny_clean, cycles=cycles))).set_index("outcome")
    assert rows.loc["target attainment", "estimate"] == pytest.approx(0.2, abs=0.01)
    assert rows.loc["target attainment", "direction"] == 1


def test_feedback_rate_in_the_scorecard_is_the_lagged_rate_of_the_chosen_kinds(tiny_clean):
    from alignment_research.scorecard import _claim_feedback

    rng = np.random.default_rng(5)
    panel = tiny_clean.analysis.survey_panel.copy()
    checks = tiny_clean.tables["feedback"]
    checks = checks[checks["kind"] == "check_in"]
    rate = ar.trailing_event_rate(checks, panel, months=3, at_date="survey_date")
    manager = pd.factorize(panel["manager_id"])[0]
    team = rng.normal(0, 0.2, manager.max() + 2)[manager]
    panel["engagement"] = 3 + 0.1 * rate + team + rng.normal(0, 0.02, len(panel))
    rows = pd.DataFrame(_claim_feedback(_context(tiny_clean, survey_panel=panel))).set_index("outcome")
    assert rows.loc["engagement", "estimate"] == pytest.approx(0.1, abs=0.01)
    assert rows.loc["engagement", "detail"].startswith("kinds: check_in;")


def test_a_study_with_employees_only_lists_every_claim_as_not_testable(tiny_clean):
    lean = dataclasses.replace(tiny_clean, tables={"employees": tiny_clean.tables["employees"]})
    out = ar.claims_scorecard(lean, n_boot=20)
    assert sorted(out["claim_no"].unique()) == list(range(1, 10))
    assert (out["verdict"] == NOT_TESTABLE).all()
    assert out["needs"].str.match(r"^(feedback|programs|goals|surveys|reviews)\.").all()
    assert out["p_holm"].isna().all() and out["mde"].isna().all()


def test_stretch_from_target_and_baseline_stands_in_for_rated_difficulty(tiny_clean):
    from alignment_research.scorecard import _claim_difficulty

    rng = np.random.default_rng(8)
    goals = tiny_clean.tables["goals"].drop(columns=["difficulty"])  # stretch stands in when no difficulty is rated
    stretch = rng.uniform(0, 0.6, len(goals))
    goals["baseline"] = 100.0
    goals["target"] = 100.0 * (1 + stretch)
    goals["attainment"] = 1.0 + 1.2 * stretch - 2.0 * stretch ** 2 + rng.normal(0, 0.02, len(goals))  # top at 0.3
    goals = ar.clean.derive_stretch(goals).data  # cleaning derives stretch; the scorecard reads the clean column
    study = dataclasses.replace(tiny_clean, tables={**tiny_clean.tables, "goals": goals})
    rows = pd.DataFrame(_claim_difficulty(_context(study))).set_index("outcome")
    att = rows.loc["goal attainment"]
    assert att["exposure"].startswith("stretch") and att["estimate"] == pytest.approx(-2.0, abs=0.1)
    assert any(f"turning point {x}" in att["detail"] for x in ("0.29", "0.30", "0.31"))


def test_under_an_all_null_truth_a_supported_verdict_anywhere_stays_below_alpha():
    # 400 families of 20 correlated null estimates (correlation 0.5): the rules must keep the family-wise
    # rate of any "supported" at or below alpha / 2 (one-sided), give or take 3 Monte Carlo standard errors
    rng = np.random.default_rng(11)
    reps, m, rho = 400, 20, 0.5
    z = np.sqrt(rho) * rng.normal(size=(reps, 1)) + np.sqrt(1 - rho) * rng.normal(size=(reps, m))
    any_supported = [
        (claim_verdicts(_rows(z[r] * 0.1, [0.1] * m, [1] * m))["verdict"] == SUPPORTED).any() for r in range(reps)
    ]
    rate = float(np.mean(any_supported))
    assert rate <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / reps)


def test_a_window_of_no_months_is_refused_with_its_name(tiny_clean):
    with pytest.raises(ModelError, match="recognition_months"):
        ar.claims_scorecard(tiny_clean, recognition_months=0)


# ----------------------------------------------------------------------------- the brief: the scorecard in plain words
_WORDS = {SUPPORTED: "the evidence supports it", CONTRADICTED: "the evidence points the other way",
          INCONCLUSIVE: "the evidence cannot tell yet", NOT_TESTABLE: "not testable with this study's data"}
#: A raw ``table.column`` or snake_case column name: never in text for leaders.
_RAW_NAME = re.compile(r"\b(?:goals|surveys|feedback|programs|reviews|employees)\.[a-z_]+|\b[a-z0-9]+_[a-z0-9_]+\b")
_ADJUSTED = "95% CI, all claims together"


def _assert_words_follow_the_card(section, card):
    lines = str(section).splitlines()
    assert section.title == "What the evidence says about each practice"
    assert len(lines) == len(card)
    for line, (_, row) in zip(lines, card.iterrows()):
        assert line.startswith(f"{row['claim']} [{row['exposure']} → {row['outcome']}]: {_WORDS[row['verdict']]}")
        assert sum(words in line for words in _WORDS.values()) == 1, line
        assert not _RAW_NAME.search(line), line
        if row["verdict"] == NOT_TESTABLE:
            assert "; it needs " in line and "Estimate" not in line
            continue
        if row["ratio"]:  # the family-adjusted interval, in the one format of the brief
            assert ar.format_estimate(row["estimate"], row["adj_conf_low"], row["adj_conf_high"], ci=_ADJUSTED) in line
        assert _ADJUSTED in line
        if row["verdict"] == INCONCLUSIVE:
            assert "this study could detect" in line and "Main threat" not in line
        else:
            assert "Main threat: " in line and "could detect" not in line


def test_describe_practices_says_every_verdict_of_a_simulated_study_in_words(tiny_clean, card, bare_clean, bare_card):
    for clean, one in ((tiny_clean, card), (bare_clean, bare_card)):
        _assert_words_follow_the_card(ar.describe_practices(clean, card=one), one)
    # the words are tested on each kind: the tiny study (practices on) has every verdict but not testable, which
    # the same study without its goal columns has
    assert set(card["verdict"]) | set(bare_card["verdict"]) >= {SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE}
    text = str(ar.describe_practices(bare_clean, card=bare_card))
    assert "it needs a difficulty rating of each goal" in text
    assert "it needs who set each goal (the employee, the manager or both)" in text
    section = ar.describe_practices(tiny_clean, card=card)
    supported = str(section).splitlines()[int(np.flatnonzero(card["verdict"] == SUPPORTED)[0])]
    assert "Estimate: " in supported
    html = section._repr_html_()
    assert html.startswith("<h2>What the evidence says") and html.count("<li>") == len(card)
    ids = tiny_clean.tables["employees"]["employee_id"].astype(str)
    assert ar.privacy.find_identifiers(html, ids=ids).empty


@pytest.fixture(scope="module")
def sample_clean():
    return ar.clean_study(ar.load_study(Path(__file__).resolve().parents[1] / "data" / "sample"))


def test_describe_practices_on_the_sample_follows_its_scorecard(sample_clean):
    card = ar.claims_scorecard(sample_clean, n_boot=50)
    _assert_words_follow_the_card(ar.describe_practices(sample_clean, card=card), card)
    # the sample has difficulty and revised_date but not set_with (`make sample` leaves it out, so the sample
    # shows every verdict): only collaborative goal-setting asks for data, and says which
    text = str(ar.describe_practices(sample_clean, card=card))
    assert "it needs a difficulty rating of each goal" not in text
    assert "it needs who set each goal (the employee, the manager or both)" in text
    assert set(card["verdict"]) == {"supported", "contradicted", "inconclusive", "not testable"}
    assert card.loc[card["verdict"] == "not testable", ["claim_no", "needs"]].drop_duplicates().values.tolist() == [
        [6, "goals.set_with"]]


def test_describe_practices_without_goals_or_feedback_lists_them_as_not_testable(tiny_clean):
    tables = {k: v for k, v in tiny_clean.tables.items() if k not in ("goals", "feedback")}
    lean = dataclasses.replace(tiny_clean, tables=tables)
    card = ar.claims_scorecard(lean, n_boot=20)
    section = ar.describe_practices(lean, card=card)
    _assert_words_follow_the_card(section, card)
    lines = dict(zip(card["claim_no"].astype(str) + card["outcome"], str(section).splitlines()))
    assert "it needs feedback records with their kind" in lines["1engagement"]
    assert "it needs recognition" not in lines["3voluntary exit"]  # the kind is named in words, not as a column
    assert "feedback records with their kind (recognition)" in lines["3voluntary exit"]
    assert "links from goals to the manager's goals" in lines["9target attainment"]


def test_describe_practices_shows_no_numbers_for_a_practice_fewer_than_min_group_size_took(tiny_clean, card):
    k = tiny_clean.config.min_group_size
    programs = tiny_clean.tables["programs"]
    coaching = programs["program"].astype(str) == "coaching"
    few = programs.loc[coaching, "employee_id"].drop_duplicates().iloc[: k - 1]
    keep = ~coaching | programs["employee_id"].isin(few)
    study = dataclasses.replace(tiny_clean, tables={**tiny_clean.tables, "programs": programs[keep.to_numpy()]})
    lines = str(ar.describe_practices(study, card=card)).splitlines()
    for line, (_, row) in zip(lines, card.iterrows()):
        if row["exposure"] == "own coaching" and row["verdict"] != NOT_TESTABLE:
            assert f"Too few people in this comparison to show its numbers (fewer than {k})" in line
            assert "Estimate" not in line and not re.search(r"\d", line.replace(str(k), ""))
        elif row["exposure"] == "own mentoring" and row["verdict"] != NOT_TESTABLE:
            assert "Estimate: " in line
