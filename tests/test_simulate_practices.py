"""The simulator's practices (issue 15): goal columns, the effects each claim's row estimates, and their switch."""

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from hazard_terms import exit_linear_predictor


@pytest.fixture(scope="module")
def sim():
    """A clean study with the default truth, practices switched on (history on)."""
    return ar.simulate_study(n_employees=2500, seed=15, messy=False, truth=ar.Truth(practices=True))


def test_goals_carry_difficulty_set_with_and_revisions(sim):
    g = sim.tables["goals"].merge(sim.tables["employees"].drop_duplicates("employee_id", keep="last")
                                  [["employee_id", "termination_date"]], left_on="owner_id", right_on="employee_id")
    assert list(sim.tables["goals"].columns[-3:]) == ["difficulty", "set_with", "revised_date"]
    assert str(g["difficulty"].dtype) == "Int64" and set(g["difficulty"].unique()) == {1, 2, 3, 4, 5}
    shares = g["difficulty"].value_counts(normalize=True).sort_index().to_numpy()
    np.testing.assert_allclose(shares, sim.truth.goal_difficulty_shares, atol=0.02)
    words = g["set_with"].value_counts(normalize=True)
    assert set(words.index) == {"employee", "manager", "jointly"}
    assert abs(words["jointly"] - sim.truth.goal_set_with_shares["jointly"]) < 0.02
    revised = g.dropna(subset=["revised_date"])
    assert 0.10 < len(revised) / len(g) <= sim.truth.goal_revision_share + 0.01  # a few fall after the exit
    assert (revised["revised_date"].dt.year.astype(str) == revised["cycle"].astype(str)).all()  # mid-cycle
    left = revised["termination_date"].notna()
    assert (revised.loc[left, "revised_date"] < revised.loc[left, "termination_date"]).all()


def test_the_exit_hazard_carries_the_check_in_and_recognition_terms(sim):
    """With the practices on, the log hazard is the stated predictor including the two feedback terms."""
    emp = sim.tables["employees"].assign(spell=lambda e: e.groupby("employee_id").cumcount() + 1)
    ti = sim.true_intervals.merge(emp[["employee_id", "spell", "hire_date"]], on=["employee_id", "spell"])
    ti["date"] = ti["hire_date"] + pd.to_timedelta(ti["start"], unit="D")
    ok = ti[["alignment_cascade", "engagement", "manager_rating"]].notna().all(axis=1)
    lp = exit_linear_predictor(sim.truth, ti, sim.tables["feedback"])
    np.testing.assert_allclose(ti.loc[ok, "log_hazard"], lp[ok], atol=1e-9)
    assert ok.mean() > 0.5


def test_goal_attainment_follows_the_practices(sim):
    """The inverted U, set jointly and revisions, each on the goal-level scale the scorecard reads."""
    g = sim.tables["goals"].copy()
    x = pd.DataFrame({"d": g["difficulty"].astype(float), "d2": g["difficulty"].astype(float) ** 2,
                      "jointly": (g["set_with"] == "jointly").astype(float),
                      "revised": g["revised_date"].notna().astype(float),
                      "cascaded": g["parent_goal_id"].notna().astype(float)})
    beta = np.linalg.lstsq(np.column_stack([np.ones(len(x)), x]), g["attainment"].to_numpy(float), rcond=None)[0]
    t = sim.truth
    assert abs(beta[2] - t.attainment_difficulty_curvature) < 0.003
    assert abs(-beta[1] / (2 * beta[2]) - t.difficulty_turning_point) < 0.25
    assert abs(beta[3] - t.attainment_set_jointly) < 0.006
    assert abs(beta[4] - t.attainment_revised) < 0.008


def test_feedback_drawn_before_the_surveys_moves_engagement(sim):
    """Engagement rises by engagement_checkin_rate per check-in a month in the 3 months before the response."""
    panel = ar.clean_study(sim).analysis.survey_panel
    fb = sim.tables["feedback"]
    panel = panel[panel["survey_date"] >= pd.Timestamp(sim.truth.window_start) + pd.Timedelta(days=92)].copy()
    panel["rate"] = ar.trailing_event_rate(fb[fb["kind"] == "check_in"], panel, months=3, at_date="survey_date")
    fit = ar.fit_mixed(panel.dropna(subset=["engagement", "alignment_cascade"]),
                       "engagement ~ rate + alignment_cascade", groups="manager_id").tidy().set_index("term")
    assert fit.loc["rate", "conf_low"] < sim.truth.engagement_checkin_rate < fit.loc["rate", "conf_high"]
    assert fit.loc["rate", "conf_low"] > 0


def test_a_managers_first_360_lifts_the_teams_leadership_score():
    truth = ar.Truth(leadership_manager_360=1.0, history=False, practices=True)
    clean = ar.clean_study(ar.simulate_study(n_employees=1500, seed=3, messy=False, truth=truth))
    panel = ar.leader_feedback_panel(clean).dropna(subset=["leadership"])
    fit = ar.fit_within(panel, "leadership ~ after_360 + C(wave)", unit="manager_id", cluster="manager_id")
    row = fit.tidy().set_index("term").loc["after_360"]
    assert row["conf_low"] < 1.0 < row["conf_high"] and row["estimate"] > 0.7


def test_practices_off_has_no_goal_columns_and_zero_effects_leave_attainment_alone():
    off = ar.simulate_study(n_employees=400, seed=2, messy=False, truth=ar.Truth(practices=False))
    assert list(off.tables["goals"].columns) == ["goal_id", "owner_id", "cycle", "parent_goal_id", "weight",
                                                 "attainment"]
    assert "checkins_per_month" not in off.true_intervals
    zero = dict(attainment_difficulty_curvature=0.0, attainment_set_jointly=0.0, attainment_revised=0.0,
                attainment_alignment=0.0, engagement_checkin_rate=0.0, hr_checkin_rate=0.0, hr_recognitions=0.0,
                leadership_manager_360=0.0)
    on = ar.simulate_study(n_employees=400, seed=2, messy=False, truth=ar.Truth(practices=True, **zero))
    # the practices' generator is separate and zero effects add exactly 0: every table is as without practices
    # but the feedback and the employee programmes, whose dates are drawn on the spell's path instead (and the
    # promotions in job_history, which follow mentoring and coaching)
    pd.testing.assert_frame_equal(on.tables["goals"][off.tables["goals"].columns], off.tables["goals"])
    for name in ("employees", "reviews", "surveys"):
        pd.testing.assert_frame_equal(on.tables[name], off.tables[name])
    assert not on.tables["feedback"].equals(off.tables["feedback"])


def test_declared_zero_fields_cannot_be_set():
    with pytest.raises(ValueError, match="declared zero"):
        ar.Truth(rating_alignment=0.1)


@pytest.mark.parametrize("seed", [0, 6])
def test_messy_history_names_as_not_employed_only_a_manager_cleaning_keeps(seed):
    """The injected history_manager_not_employed row is reported as that rule, never as an unknown manager.

    Before the fix the injector could pick a manager whose own employees row carried an injected problem;
    cleaning quarantined that row and then reported history_unknown_manager instead.
    """
    sim = ar.simulate_study(n_employees=400, seed=seed)
    report = ar.clean_study(sim).report
    injected = sim.injected[sim.injected["rule"] == "history_manager_not_employed"]
    assert len(injected) == 1
    found = report[(report["table"] == "job_history") & (report["rule"] == "history_manager_not_employed")]
    assert set(injected["row"].astype(int)) <= set(found["row"].astype(int))
    unknown = report[(report["table"] == "job_history") & (report["rule"] == "history_unknown_manager")]
    assert not set(injected["row"].astype(int)) & set(unknown["row"].astype(int))
