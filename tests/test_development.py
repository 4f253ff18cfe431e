"""The employee's own programmes: emulated trials without look-ahead, matched, against the naive comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.errors import ModelError


@pytest.fixture(scope="module")
def clean():
    return ar.clean_study(ar.simulate_study(n_employees=1200, seed=5))


@pytest.fixture(scope="module")
def trials(clean):
    return ar.development_trials(clean, "mentoring")


def test_every_trial_has_its_starter_and_controls_not_started_that_day(clean, trials):
    per_trial = trials.groupby("trial")["treated"].agg(["sum", "size"])
    assert (per_trial["sum"] >= 1).all() and (per_trial["size"] > per_trial["sum"]).all()
    # the starter's trial day is its own start; a control's own start, if any, comes later
    starters = trials[trials["treated"] == 1]
    assert (starters["enrol_day"] == starters["day"]).all()
    controls = trials[trials["treated"] == 0]
    assert ((controls["enrol_day"] == -1) | (controls["enrol_day"] > controls["day"])).all()
    assert np.allclose(trials["tenure_years"], trials["day"] / 365.25)
    # trial dates fall inside the window
    window = clean.config.window
    assert trials["index_date"].between(pd.Timestamp(window.start), pd.Timestamp(window.end)).all()


def test_trial_covariates_are_those_in_force_on_the_day_before_the_start(clean, trials):
    iv = clean.analysis.intervals
    starter = trials[trials["treated"] == 1].iloc[0]
    rows = iv[(iv["employee_id"] == starter["employee_id"]) & (iv["spell"] == starter["spell"])]
    in_force = rows[(rows["start"] < starter["day"]) & (rows["stop"] >= starter["day"])].iloc[0]
    assert in_force["program_mentoring"] == 0  # the row before the start: nothing after it leaks in
    assert starter["manager_program"] == in_force["manager_program"]
    if not np.isnan(in_force["rating"]):
        assert starter["rating"] == in_force["rating"]


def test_the_effect_has_an_adjusted_and_a_naive_row_and_the_naive_one_shows_immortal_time(clean):
    res = ar.estimate_development_effect(clean, "mentoring", outcome="retention", warn=False)
    table = res.tidy().set_index("method")
    assert list(table.index) == ["adjusted", "naive"]
    assert set(table["term"]) == {"program_mentoring"}
    # the ever-started comparison credits the time before the start to the programme: a lower exit hazard
    assert table.loc["naive", "exp_estimate"] < table.loc["adjusted", "exp_estimate"]
    glance = res.glance().iloc[0]
    assert glance["n_treated"] <= glance["n_enrolled"] and glance["events"] > 0
    assert glance["max_abs_smd_after"] < glance["max_abs_smd_before"]
    follow = res.extras["outcome_data"]
    assert (follow["start"] >= follow["day"]).all() and (follow["stop"] > follow["start"]).all()
    # controls are censored at their own start
    late = follow[(follow["treated"] == 0) & (follow["enrol_day"] > follow["day"])]
    assert (late["stop"] <= late["enrol_day"]).all()
    assert res.plot().get_xlabel().startswith("Hazard ratio of a voluntary exit")


def test_clear_errors_for_an_unknown_programme_outcome_or_missing_history(clean):
    with pytest.raises(ModelError, match="no programme 'yoga'"):
        ar.development_trials(clean, "yoga")
    with pytest.raises(ModelError, match="'promotion' or 'retention'"):
        ar.estimate_development_effect(clean, outcome="salary")
    if clean.analysis.careers.empty:
        with pytest.raises(ModelError, match="job history"):
            ar.estimate_development_effect(clean, outcome="promotion")


def test_the_careers_paragraph_is_empty_without_history_and_states_each_effect_with_it(clean):
    no_history = ar.clean_study(ar.simulate_study(n_employees=300, seed=2, truth=ar.Truth(history=False)))
    assert no_history.analysis.careers.empty and str(ar.describe_careers(no_history)) == ""
    text = str(ar.describe_careers(clean))
    assert "started mentoring" in text and "change of manager" in text
    # the same numbers as the analyst notebook's objects: the matched effect's own sentence
    res = ar.estimate_development_effect(clean, "mentoring", outcome="promotion", warn=False)
    assert str(ar.describe_effect(res, "adjusted", comparison="for employees who started mentoring, compared with "
                                  "matched colleagues who had not")) in text


@pytest.mark.parametrize("ratio, caliper", [(3, 0.2), (1, 0.05), (5, 1.0)])
def test_vectorised_matching_picks_what_match_trials_picks(clean, trials, ratio, caliper):
    from alignment_research.development import DEVELOPMENT_FORMULA, _match, _usable

    scored = ar.fit_propensity(trials, _usable(DEVELOPMENT_FORMULA, trials)).trials
    ours = _match(scored, ratio=ratio, caliper=caliper)
    loop = ar.match_trials(scored, ratio=ratio, caliper=caliper, unit="employee_id")
    pd.testing.assert_frame_equal(ours, loop)
    assert ours["matched_set"].notna().sum() > 2 * ours["treated"].sum() * min(ratio, 2) / 3


def test_greedy_matching_takes_starters_in_order_and_uses_each_control_once_per_trial():
    from alignment_research._estimators import greedy_caliper_match

    # trial 0: starters at 1.0 (taken first) and 0.9 both want the control at 0.95; trial 1 is independent
    group = np.array([0, 0, 0, 0, 1, 1, 1])
    treated = np.array([True, True, False, False, True, False, False])
    score = np.array([1.0, 0.9, 0.95, 0.7, 0.0, 0.05, np.nan])
    owner, weight = greedy_caliper_match(group, treated, score, np.arange(7), width=0.25, ratio=1)
    assert owner.tolist() == [0, 1, 0, 1, 4, 4, -1]
    assert weight.tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    owner, weight = greedy_caliper_match(group, treated, score, np.arange(7), width=0.1, ratio=2)
    assert owner.tolist() == [0, -1, 0, -1, 4, 4, -1]  # 0.9's only control within 0.1 is taken; 0.7 is too far


def test_sampled_trials_are_the_same_whatever_the_block_of_candidate_rows(clean, monkeypatch):
    """The candidates are made a block at a time: the sample (one draw per candidate, in order) must not move."""
    from alignment_research import development

    monkeypatch.setattr(development, "_MAX_TRIAL_ROWS", 20_000)  # the study has more candidates: controls sampled
    monkeypatch.setattr(development, "_TRIAL_BLOCK", 1 << 30)  # every candidate in one block
    whole = development.development_trials(clean, "mentoring", seed=3)
    monkeypatch.setattr(development, "_TRIAL_BLOCK", 997)  # many blocks, none aligned with a trial or a person
    blocks = development.development_trials(clean, "mentoring", seed=3)
    pd.testing.assert_frame_equal(whole, blocks, check_exact=True)
    assert 15_000 < len(whole) < 25_000  # sampled: about 20,000 rows kept of more
    starters = development.development_trials(clean, "mentoring")["treated"].sum()
    assert whole["treated"].sum() == starters  # every starter kept


def test_promotion_and_retention_share_one_matching_and_match_a_fresh_study(clean):
    """The retention effect after the promotion effect of the same programme equals it computed alone."""
    study = ar.simulate_study(n_employees=1200, seed=5)
    alone = ar.estimate_development_effect(ar.clean_study(study), "mentoring", outcome="retention", warn=False)
    shared = ar.clean_study(study)
    promotion = ar.estimate_development_effect(shared, "mentoring", outcome="promotion", warn=False)
    after = ar.estimate_development_effect(shared, "mentoring", outcome="retention", warn=False)
    for a, b in ((alone.tidy(), after.tidy()), (alone.glance(), after.glance()),
                 (alone.extras["trials"], after.extras["trials"]), (alone.extras["balance"], after.extras["balance"])):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert alone.caveats == after.caveats
    # one matching, each result its own frame of it: a column added to one result's trials is not in the other's
    pd.testing.assert_frame_equal(promotion.extras["trials"], after.extras["trials"], check_exact=True)
    promotion.extras["trials"]["mark"] = 1
    assert "mark" not in after.extras["trials"]
    assert after.glance()["n_trials"].iloc[0] == promotion.glance()["n_trials"].iloc[0] > 10


def test_trial_order_is_lexsort_by_trial_then_id():
    # rows in id order take a radix sort by trial date alone; any other order falls back to the lexsort
    from alignment_research.development import _by_trial_then_id

    rng = np.random.default_rng(2)
    t = rng.integers(0, 30, 500)
    ids = np.sort(rng.integers(0, 80, 500))
    assert np.array_equal(_by_trial_then_id(t, ids, 30), np.lexsort((ids, t)))
    shuffled = rng.permutation(ids)
    assert np.array_equal(_by_trial_then_id(t, shuffled, 30), np.lexsort((shuffled, t)))
    assert np.array_equal(_by_trial_then_id(t, ids, 40_000), np.lexsort((ids, t)))  # too many dates for 16 bits


def test_fill_trial_mean_fills_in_place_with_the_trial_then_overall_mean():
    from alignment_research.development import _fill_trial_mean

    trial = np.array([0, 0, 0, 1, 1, 2])
    values = np.array([1.0, np.nan, 3.0, np.nan, np.nan, 7.0])
    out = _fill_trial_mean(values, trial, np.bincount(trial))
    assert out is values
    assert out.tolist() == [1.0, 2.0, 3.0, 11 / 3, 11 / 3, 7.0]  # trial 1 has none: the mean over all trials
