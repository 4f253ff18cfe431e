"""Measures: cascade alignment (incl. broken chains), team and attainment alignment, scales, reliability vs R, feedback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import alignment_research as ar

NA = pd.NA
REFERENCE = Path(__file__).parent / "reference"


def _employees(rows):
    return pd.DataFrame(rows, columns=["employee_id", "hire_date", "manager_id"]).assign(
        hire_date=lambda d: pd.to_datetime(d["hire_date"]))


EMPLOYEES = _employees([("C", "2010-01-01", NA), ("M", "2012-01-01", "C"), ("E", "2015-01-01", "M")])

GOALS = pd.DataFrame([
    # goal, owner, cycle, parent, weight
    ("G1", "C", "c1", NA, np.nan),       # organisation goal (owner has no manager)
    ("G1", "M", "c1", NA, np.nan),       # duplicate id: dropped and reported
    ("G2", "M", "c1", "G1", np.nan),     # linked to the manager's goal
    ("G3", "E", "c1", "G2", 2.0),        # linked; chain reaches G1
    ("G4", "E", "c1", "GX", 1.0),        # parent does not exist
    ("G5", "E", "c1", "G6", 1.0),        # G5 -> G6 -> G5: a loop
    ("G6", "E", "c1", "G5", np.nan),     # a missing weight: equal weights for E in c1
    ("G7", "E", "c1", "G7", 1.0),        # its own parent
    ("G10", "C", "c2", NA, np.nan),
    ("G9", "M", "c2", "G10", np.nan),
    ("G8", "E", "c2", "G9", 3.0),        # linked, weight 3
    ("G11", "E", "c2", NA, 1.0),         # no parent, but E has a manager: not an organisation goal
    ("G12", "E", "c2", "G2", 1.0),       # parent in another cycle: not cascade, but reaches G1
], columns=["goal_id", "owner_id", "cycle", "parent_goal_id", "weight"])


def test_cascade_alignment_shares_and_broken_chains():
    table, problems = ar.cascade_alignment(GOALS, EMPLOYEES, cycles=["c1", "c2"])
    expected = pd.DataFrame({
        "employee_id": pd.array(["C", "C", "E", "E", "M", "M"], dtype="string"),
        "cycle": pd.array(["c1", "c2", "c1", "c2", "c1", "c2"], dtype="string"),
        "manager_id": pd.array([NA, NA, "M", "M", "C", "C"], dtype="string"),
        "n_goals": np.array([1, 1, 5, 3, 1, 1], dtype="int64"),
        # E c1: equal weights (G6 has none), only G3 of 5 is linked; E c2: weights 3, 1, 1 -> 3/5
        "alignment_cascade": [np.nan, np.nan, 1 / 5, 3 / 5, 1.0, 1.0],
        # E c1: only G3 reaches G1; E c2: G8 (3) and G12 (1) reach an organisation goal -> 4/5
        "alignment_org": [1.0, 1.0, 1 / 5, 4 / 5, 1.0, 1.0],
    })
    assert_frame_equal(table, expected)
    expected_problems = pd.DataFrame({
        "goal_id": ["G1", "G4", "G12", "G5", "G6", "G7"],
        "cycle": ["c1", "c1", "c2", "c1", "c1", "c1"],
        "rule": ["duplicate_goal_id", "parent_not_found", "parent_in_other_cycle", "parent_chain_cycle",
                 "parent_chain_cycle", "parent_chain_cycle"],
        "value": ["G1", "GX", "G2", "G6", "G5", "G7"],
    }).astype("string")
    assert_frame_equal(problems, expected_problems)


def test_cascade_alignment_result_holds_both_tables():
    result = ar.cascade_alignment(GOALS, EMPLOYEES)
    assert isinstance(result, ar.measures.MeasureResult)
    assert len(result.table) == 6 and len(result.problems) == 6


def test_a_long_parent_chain_resolves_beyond_any_fixed_depth():
    """400 goals, each the parent of the next: all reach the organisation goal at the top."""
    n = 400
    goals = pd.DataFrame({"goal_id": [f"G{i}" for i in range(n)], "owner_id": "C", "cycle": "c1",
                          "parent_goal_id": [NA] + [f"G{i - 1}" for i in range(1, n)], "weight": np.nan})
    goals.loc[n - 1, "owner_id"] = "E"
    table, problems = ar.cascade_alignment(goals, EMPLOYEES)
    assert table.set_index("employee_id").loc["E", "alignment_org"] == 1.0
    assert problems.empty
    # break the top: the whole chain is now a loop of 400 goals, found without hanging
    goals.loc[0, "parent_goal_id"] = f"G{n - 1}"
    table, problems = ar.cascade_alignment(goals, EMPLOYEES)
    assert table["alignment_org"].tolist() == [0.0, 0.0]
    assert (problems["rule"] == "parent_chain_cycle").sum() == n


def test_cascade_alignment_takes_a_rehires_manager_from_the_current_spell():
    employees = _employees([("C", "2010-01-01", NA), ("D", "2010-01-01", NA), ("E", "2015-01-01", "C"),
                            ("E", "2021-06-01", "D")])
    cycles = [ar.config.Cycle(name="2020", start="2020-01-01", end="2020-12-31"),
              ar.config.Cycle(name="2021", start="2021-01-01", end="2021-12-31")]
    goals = pd.DataFrame({"goal_id": ["C1", "D1", "E1", "C2", "D2", "E2"], "owner_id": ["C", "D", "E"] * 2,
                          "cycle": ["2020"] * 3 + ["2021"] * 3,
                          "parent_goal_id": [NA, NA, "C1", NA, NA, "D2"], "weight": np.nan})
    table, _ = ar.cascade_alignment(goals, employees, cycles=cycles)
    e = table[table["employee_id"] == "E"]
    assert e["manager_id"].tolist() == ["C", "D"]
    assert e["alignment_cascade"].tolist() == [1.0, 1.0]



def test_a_rehires_manager_ties_and_cycles_before_any_spell():
    # spells hired the same day: the later row of the table holds (an as-of merge keeps the last); a cycle
    # that ends before any spell began takes the first spell's manager
    employees = _employees([("C", "2010-01-01", NA), ("D", "2010-01-01", NA), ("F", "2010-01-01", NA),
                            ("E", "2021-06-01", "D"), ("E", "2015-01-01", "C"), ("E", "2021-06-01", "F")])
    cycles = [ar.config.Cycle(name=str(y), start=f"{y}-01-01", end=f"{y}-12-31") for y in (2014, 2020, 2021)]
    goals = pd.DataFrame({"goal_id": ["E14", "E20", "E21"], "owner_id": "E", "cycle": ["2014", "2020", "2021"],
                          "parent_goal_id": NA, "weight": np.nan})
    table, _ = ar.cascade_alignment(goals, employees, cycles=cycles)
    assert table["manager_id"].tolist() == ["C", "C", "F"]
    assert table["cycle"].tolist() == ["2014", "2020", "2021"]


@pytest.mark.parametrize("employee_dtype, goal_dtype", [("string", object), (object, "string"), ("string", "string")])
def test_a_rehires_manager_is_found_whatever_text_dtype_the_ids_have(employee_dtype, goal_dtype):
    # pseudonymised or vendor-typed ids ("string") beside object ids made merge_asof raise MergeError
    employees = _employees([("C", "2010-01-01", NA), ("D", "2010-01-01", NA), ("E", "2015-01-01", "C"),
                            ("E", "2021-06-01", "D")])
    employees = employees.astype({"employee_id": employee_dtype, "manager_id": employee_dtype})
    cycles = [ar.config.Cycle(name="2020", start="2020-01-01", end="2020-12-31"),
              ar.config.Cycle(name="2021", start="2021-01-01", end="2021-12-31")]
    goals = pd.DataFrame({"goal_id": ["C1", "D1", "E1", "C2", "D2", "E2"], "owner_id": ["C", "D", "E"] * 2,
                          "cycle": ["2020"] * 3 + ["2021"] * 3,
                          "parent_goal_id": [NA, NA, "C1", NA, NA, "D2"], "weight": np.nan})
    goals = goals.astype({"owner_id": goal_dtype})
    table, _ = ar.cascade_alignment(goals, employees, cycles=cycles)
    assert table.loc[table["employee_id"] == "E", "manager_id"].tolist() == ["C", "D"]
    reviews = pd.DataFrame({"employee_id": pd.array(["E", "E"], dtype=goal_dtype), "cycle": ["2020", "2021"],
                            "target_attainment": [1.0, 0.9]})
    goals = goals.assign(attainment=1.0)
    out = ar.attainment_alignment(goals, reviews, employees, cycles=cycles, min_cycles=1)
    assert sorted(out["manager_id"].astype(str)) == ["C", "D"]

def test_team_alignment_per_manager_and_cycle():
    table, _ = ar.cascade_alignment(GOALS, EMPLOYEES, cycles=["c1", "c2"])
    team = ar.team_alignment(table, cycles=["c1", "c2"])
    expected = pd.DataFrame({
        "manager_id": pd.array(["C", "C", "M", "M"], dtype="string"),
        "cycle": pd.array(["c1", "c2", "c1", "c2"], dtype="string"),
        "n_reports": np.array([1, 1, 1, 1], dtype="int64"),
        "team_alignment_cascade": [1.0, 1.0, 0.2, 0.6],
        "team_alignment_org": [1.0, 1.0, 0.2, 0.8],
        "manager_alignment_cascade": [np.nan, np.nan, 1.0, 1.0],  # C has no leader; M's goals link to C's
        "manager_alignment_org": [1.0, 1.0, 1.0, 1.0],
    })
    assert_frame_equal(team, expected)


def test_attainment_alignment_slope_and_correlation():
    employees = _employees([("M", "2010-01-01", NA), ("E", "2012-01-01", "M"), ("F", "2012-01-01", "M"),
                            ("N", "2010-01-01", NA), ("G", "2012-01-01", "N")])
    goals = pd.DataFrame({
        "goal_id": ["a", "b", "c", "d", "e", "f"], "owner_id": ["M", "M", "M", "M", "N", "N"],
        "cycle": ["1", "1", "2", "3", "1", "2"], "weight": [1.0, 3.0, np.nan, np.nan, np.nan, np.nan],
        "attainment": [0.4, 0.9, 1.0, 1.2, 1.0, 1.0]})  # M: cycle 1 = (0.4 + 3 * 0.9) / 4 = 0.775
    reviews = pd.DataFrame({"employee_id": ["E", "F", "E", "F", "E", "G", "G"],
                            "cycle": ["1", "1", "2", "2", "3", "1", "2"],
                            "target_attainment": [0.8, 1.0, 1.0, 1.0, 1.2, 0.5, 0.6]})
    out = ar.attainment_alignment(goals, reviews, employees)
    x, y = np.array([0.775, 1.0, 1.2]), np.array([0.9, 1.0, 1.2])
    slope = np.polyfit(x, y, 1)[0]
    m = out.set_index("manager_id")
    assert m.loc["M", "n_cycles"] == 3
    assert m.loc["M", "n_reports"] == pytest.approx(5 / 3)
    assert m.loc["M", "slope"] == pytest.approx(slope, abs=1e-12)
    assert m.loc["M", "correlation"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert m.loc["N", "n_cycles"] == 2 and np.isnan(m.loc["N", "slope"])  # fewer than min_cycles


# --------------------------------------------------------------------------- scales


def test_score_scales_needs_the_minimum_share_answered():
    scales = {"alignment": ar.config.Scale(items=["alignment_1", "alignment_2", "alignment_3", "alignment_4"],
                                    reverse=["alignment_3"], min_answered=0.5)}
    surveys = pd.DataFrame({"employee_id": ["a", "b", "c"],
                            "survey_date": pd.to_datetime(["2022-01-01"] * 3),
                            "alignment_1": [4.0, 5.0, 1.0], "alignment_2": [2.0, np.nan, np.nan],
                            "alignment_3": [1.0, 3.0, np.nan], "alignment_4": [np.nan, np.nan, np.nan]},
                           index=[2, 3, 4])
    scores = ar.score_scales(surveys, scales)
    assert scores.index.tolist() == [2, 3, 4]
    # 3 of 4 answered: mean; 2 of 4 (= 0.5) still enough; 1 of 4 not
    np.testing.assert_array_equal(scores["alignment"].to_numpy(), [7 / 3, 4.0, np.nan])


R_SCALES = {"engagement": ar.config.Scale(items=[f"engagement_{i}" for i in range(1, 6)]),
            "alignment": ar.config.Scale(items=[f"alignment_{i}" for i in range(1, 4)])}


@pytest.fixture(scope="module")
def reliability_res():
    data = pd.read_csv(REFERENCE / "measures_input.csv")
    return (ar.scale_reliability(data, R_SCALES, n_boot=200, seed=1).set_index("scale"),
            ar.item_statistics(data, R_SCALES).set_index("item"))


class TestReliabilityAgainstR:
    """``Rscript tests/reference/measures.R`` on ``measures_input.csv`` (psych 2.2.9)."""

    @pytest.fixture
    def res(self, reliability_res):
        return reliability_res

    @pytest.fixture
    def ref(self):
        return pd.read_csv(REFERENCE / "measures_output.csv")

    def _scale(self, ref, quantity):
        return ref[ref["quantity"] == quantity].set_index("scale")["value"]

    def _item(self, ref, quantity):
        return ref[ref["quantity"] == quantity].set_index("item")["value"]

    def test_alpha(self, res, ref):
        # psych::alpha(x)$total$raw_alpha
        rel, _ = res
        np.testing.assert_allclose(rel["cronbach_alpha"], self._scale(ref, "raw_alpha")[rel.index], rtol=0, atol=1e-6)
        # psych::alpha(x)$total$std.alpha and $average_r
        np.testing.assert_allclose(rel["standardized_alpha"], self._scale(ref, "std_alpha")[rel.index], atol=1e-6)
        np.testing.assert_allclose(rel["mean_inter_item_r"], self._scale(ref, "average_r")[rel.index], atol=1e-6)

    def test_feldt_interval(self, res, ref):
        # psych::alpha(x)$feldt$lower.ci, $upper.ci
        rel, _ = res
        np.testing.assert_allclose(rel["alpha_conf_low"], self._scale(ref, "feldt_lower")[rel.index], atol=1e-6)
        np.testing.assert_allclose(rel["alpha_conf_high"], self._scale(ref, "feldt_upper")[rel.index], atol=1e-6)

    def test_omega(self, res, ref):
        # 1 - sum(fa(x, 1, fm = "minres")$uniquenesses) / sum(cor(x)) = psych::omega(x, nfactors = 1)$omega.tot
        rel, _ = res
        np.testing.assert_allclose(rel["mcdonald_omega"], self._scale(ref, "omega_total")[rel.index], atol=1e-6)
        assert (rel["omega_conf_low"] < rel["mcdonald_omega"]).all()
        assert (rel["mcdonald_omega"] < rel["omega_conf_high"]).all()

    def test_item_statistics(self, res, ref):
        # psych::alpha(x)$item.stats$r.drop, $alpha.drop$raw_alpha, $item.stats$mean, $item.stats$sd
        _, items = res
        for ours, theirs in (("item_rest_r", "r_drop"), ("alpha_if_dropped", "alpha_drop"), ("mean", "mean"),
                             ("sd", "sd")):
            np.testing.assert_allclose(items[ours], self._item(ref, theirs)[items.index], rtol=0, atol=1e-6)

    def test_one_factor_loadings(self, ref):
        # psych::fa(x, nfactors = 1, fm = "minres")$loadings
        from alignment_research.measures import _one_factor

        data = pd.read_csv(REFERENCE / "measures_input.csv")
        cols = [f"engagement_{i}" for i in range(1, 6)]
        loadings, _ = _one_factor(data[cols].corr().to_numpy())
        np.testing.assert_allclose(loadings, self._item(ref, "loading")[cols], atol=1e-5)


def test_a_stack_of_bootstrap_correlations_gets_each_matrix_alone_loadings():
    """A stack's iteration runs on power steps, confirmed by an eigendecomposition at the end; each matrix of it
    gets the loadings that an eigendecomposition at every step gives that matrix alone (the fit checked against psych).
    """
    from alignment_research.measures import _one_factor

    data = pd.read_csv(REFERENCE / "measures_input.csv")
    rng = np.random.default_rng(11)
    for cols in ([f"engagement_{i}" for i in range(1, 6)], [f"alignment_{i}" for i in range(1, 4)]):
        x = data[cols].dropna().to_numpy(float)
        stack = np.stack([np.corrcoef(x[rng.integers(0, len(x), len(x))], rowvar=False) for _ in range(40)])
        loadings, uniq = _one_factor(stack)
        alone = np.stack([_one_factor(r, tol=1e-14)[0] for r in stack])  # each at its fixed point
        np.testing.assert_allclose(loadings, alone, rtol=0, atol=1e-8)  # (the default tolerance stops within 1e-9)
        np.testing.assert_allclose(uniq, 1 - alone**2, rtol=0, atol=1e-8)


def test_bootstrap_interval_repeats_with_its_seed():
    data = pd.read_csv(REFERENCE / "measures_input.csv")
    scales = {"alignment": ar.config.Scale(items=["alignment_1", "alignment_2", "alignment_3"])}
    a = ar.scale_reliability(data, scales, n_boot=50, seed=7)
    b = ar.scale_reliability(data, scales, n_boot=50, seed=7)
    assert_frame_equal(a, b)
    c = ar.scale_reliability(data, scales, n_boot=0)
    assert np.isnan(c.loc[0, "omega_conf_low"]) and c.loc[0, "cronbach_alpha"] == a.loc[0, "cronbach_alpha"]


# --------------------------------------------------------------------------- feedback


def test_feedback_rate_per_quarter_and_kind():
    employees = pd.DataFrame({"employee_id": ["A", "B"], "hire_date": pd.to_datetime(["2022-02-15", "2020-01-01"]),
                              "termination_date": pd.to_datetime([None, "2022-05-10"])})
    feedback = pd.DataFrame({
        "employee_id": ["A", "A", "A", "A", "B", "B", "B"],
        "date": pd.to_datetime(["2022-02-01",   # before A's hire: ignored
                                "2022-03-01", "2022-03-31", "2022-04-02", "2021-12-31",  # B: before the window
                                "2022-05-10", "2022-05-11"]),  # B: on the last day (counted), after (ignored)
        "kind": ["check_in", "check_in", "recognition", "check_in", "check_in", "recognition", "check_in"]})
    out = ar.feedback_rate(feedback, employees, window=("2022-01-01", "2022-06-30"))
    assert out[["employee_id", "quarter"]].astype(str).values.tolist() == [
        ["A", "2022Q1"], ["A", "2022Q2"], ["B", "2022Q1"], ["B", "2022Q2"]]
    # A 2022Q1: 2022-02-15 .. 03-31 = 45 days, 2 events; Q2: 91 days, 1 event; B Q2: 04-01 .. 05-10 = 40 days
    assert out["exposure_days"].tolist() == [45, 91, 90, 40]
    assert out["n_events"].tolist() == [2, 1, 0, 1]
    np.testing.assert_allclose(out["feedback_rate"], [2 / 45 * 90, 1 / 91 * 90, 0.0, 1 / 40 * 90])
    assert out["n_check_in"].tolist() == [1, 1, 0, 0] and out["n_recognition"].tolist() == [1, 0, 0, 1]
    assert out["known_from"].tolist() == list(pd.to_datetime(["2022-04-01", "2022-07-01", "2022-04-01", "2022-07-01"]))


# --------------------------------------------------------------------------- on the simulator


@pytest.fixture(scope="module")
def sim_clean():
    sim = ar.simulate_study(n_employees=1500, seed=11, messy=False)
    return sim, ar.clean_study(sim)


def test_cascade_alignment_reproduces_the_simulated_truth(sim_clean):
    sim, clean = sim_clean
    t = clean.tables
    # the simulator links goals to the manager in force in the cycle: the job history names them
    table, problems = ar.cascade_alignment(t["goals"], t["employees"], cycles=clean.config.cycles,
                                           history=t.get("job_history"))
    got = table.drop(columns=["manager_id", "n_goals"]).sort_values(["employee_id", "cycle"]).reset_index(drop=True)
    want = sim.true_alignment.astype({"employee_id": "string", "cycle": "string"})
    # the simulator's truth names the manager in force on the cycle's first day; the measure also credits
    # goals that serve a successor who took over during the cycle (the zeros of an unnamed successor):
    # those few employee-cycles may read higher, never lower, and everything else is equal
    gap = got["alignment_cascade"].fillna(-1) - want["alignment_cascade"].fillna(-1)
    successor = gap > 1e-12
    assert successor.mean() < 0.01 and not (gap < -1e-12).any()
    assert_frame_equal(got[~successor], want[~successor], check_exact=False, rtol=0, atol=1e-12)
    assert problems.empty


def test_alpha_matches_the_simulators_implied_reliability(sim_clean):
    sim, clean = sim_clean
    rel = ar.scale_reliability(clean.tables["surveys"], clean.config.scales, n_boot=0).set_index("scale")
    implied = pd.Series(sim.derived["implied_alpha"])
    assert set(implied.index) == set(rel.index)
    np.testing.assert_allclose(rel.loc[implied.index, "cronbach_alpha"], implied, atol=0.05)


def test_alignment_by_group_suppresses_small_groups(sim_clean):
    _, clean = sim_clean
    measures = ar.alignment_measures(clean.analysis)
    assert set(measures["measure"]) == {"cascade", "perceived", "attainment"}
    out = ar.alignment_by_group(measures, by="department", min_group_size=5)
    shown = out[~out["suppressed"]]
    assert (shown["n_people"] >= 5).all()
    # a tiny group made up for the test is suppressed, with its statistics hidden
    tiny = pd.concat([measures, pd.DataFrame({"measure": "cascade", "value": [0.1, 0.9], "person_id": ["x", "y"],
                                              "department": "Tiny", "job_level": 1})])
    out = ar.alignment_by_group(tiny, by="department", min_group_size=5).set_index(["measure", "department"])
    other = ("cascade", "Other departments (each < 5 people)")  # Tiny pooled (alone: still too small)
    assert ("cascade", "Tiny") not in out.index
    assert out.loc[other, "suppressed"] and np.isnan(out.loc[other, "mean"])


def test_plot_alignment_distribution_draws_one_box_per_shown_group():
    data = pd.DataFrame({"measure": "cascade", "value": np.linspace(0, 1, 12),
                         "person_id": [f"p{i}" for i in range(12)], "department": ["A"] * 6 + ["B"] * 4 + ["C"] * 2})
    ax = ar.plot_alignment_distribution(data, by="department", measure="cascade", min_group_size=4)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]  # C (2 people) left out
    assert len(ax.patches) == 2
    assert ax.get_xlabel() == "cascade"


def test_plot_alignment_overview_lines_groups_up_across_panels():
    data = pd.DataFrame({"measure": ["cascade"] * 10 + ["attainment"] * 5, "value": np.linspace(0, 1, 15),
                         "person_id": [f"p{i}" for i in range(15)],
                         "job_level": [1] * 5 + [2] * 5 + [2] * 5})
    fig = ar.plot_alignment_overview(data, by="job_level", min_group_size=5)
    cascade, attainment = fig.axes
    assert [t.get_text() for t in cascade.get_yticklabels()] == ["1", "2"]  # the shared axis
    # the attainment panel has only level 2: one box, drawn on level 2's row
    assert len(attainment.patches) == 1 and len(cascade.patches) == 2
    y = attainment.patches[0].get_path().vertices[:, 1]
    assert (y.min() + y.max()) / 2 == pytest.approx(2.0)
    with pytest.raises(TypeError):
        ar.plot_alignment_overview(data, by="job_level", ax=cascade)


def test_alignment_correlations_table(sim_clean):
    _, clean = sim_clean
    corr = ar.alignment_correlations(clean.analysis)
    assert corr[["measure_x", "measure_y", "level"]].values.tolist() == [
        ["cascade", "perceived", "survey response"], ["cascade", "attainment", "manager"],
        ["perceived", "attainment", "manager"]]
    # perceived alignment is built on cascade alignment in the simulator: clearly positive
    assert corr.loc[0, "correlation"] > 0.2 and corr.loc[0, "n"] > 1000


# --------------------------------------------------------------------------- fast paths give the slow paths' answers


def test_assign_spell_matches_an_as_of_merge_on_rehires_times_of_day_and_odd_ids():
    from alignment_research.spells import assign_spell

    spells = pd.DataFrame({
        "employee_id": ["A", "A", "B", "C"],
        "hire_date": pd.to_datetime(["2020-01-01", "2022-01-01", "2021-06-01 09:00", "2021-01-01"], format="ISO8601"),
        "termination_date": pd.to_datetime(["2020-12-31", None, None, "2021-03-31"]),
    })
    rows = pd.DataFrame({
        "employee_id": pd.array(["A", "A", "A", "B", "B", "C", None, "Z", "A"], dtype=object),
        "d": pd.to_datetime(["2020-06-01", "2021-06-01", "2023-01-01", "2021-06-01 08:00", "2021-06-01 10:00",
                             "2021-04-01", "2021-01-01", "2021-01-01", None], format="ISO8601"),
    })
    # A: first spell, gap between spells, second spell; B: before and after the hire hour; C: after its end
    assert assign_spell(rows, spells, "d")["_sid"].tolist() == [0, -1, 1, -1, 2, -1, -1, -1, -1]
    as_text = rows.assign(employee_id=rows["employee_id"].astype("string"))
    assert assign_spell(as_text, spells, "d")["_sid"].tolist() == [0, -1, 1, -1, 2, -1, -1, -1, -1]


def test_bootstrap_patterns_are_the_distinct_rows_with_their_counts():
    from alignment_research.measures import _row_patterns

    x = np.array([[2.0, 1.0], [1.0, 5.0], [2.0, 1.0], [1.0, 2.0], [2.0, 1.0]])
    patterns, freq = _row_patterns(x)
    assert patterns.tolist() == [[1.0, 2.0], [1.0, 5.0], [2.0, 1.0]]
    assert freq.tolist() == [1, 1, 3]
    expected = np.unique(x, axis=0, return_counts=True)
    assert np.array_equal(patterns, expected[0]) and np.array_equal(freq, expected[1])


def test_cascade_alignment_of_non_text_ids_converts_them_as_text():
    goals = pd.DataFrame({"goal_id": [1, 2, 3], "owner_id": ["C", "M", "M"], "cycle": [2024, 2024, 2024],
                          "parent_goal_id": [None, "1", 9]})
    table, problems = ar.cascade_alignment(goals, EMPLOYEES)
    assert table["cycle"].tolist() == ["2024", "2024"]
    assert table["alignment_cascade"].tolist()[1] == 0.5  # goal 2 -> goal "1" of the manager C; goal 3 dangles
    assert problems[["goal_id", "rule", "value"]].values.tolist() == [["3", "parent_not_found", "9"]]


def test_feedback_rate_reports_the_kinds_of_events_with_an_employee_only():
    emp = pd.DataFrame({"employee_id": ["A", "B"], "hire_date": pd.to_datetime(["2021-01-01", "2021-02-01"])})
    fb = pd.DataFrame({"employee_id": ["A", None, "Z", "A", "B"],
                       "date": pd.to_datetime(["2021-01-05", "2021-02-01", "2021-02-01", "2021-03-01", "2021-01-15"]),
                       "kind": ["praise", "nudge", "memo", "praise", "check_in"]})
    rates = ar.feedback_rate(fb, emp, window=("2021-01-01", "2021-03-31"))
    # no employee: not counted and its kind not reported; an unknown employee (Z): not counted, its kind reported;
    # B's event before B's hire: not counted
    assert [c for c in rates.columns if c.startswith("n_")] == ["n_events", "n_check_in", "n_memo", "n_praise"]
    assert rates[["n_events", "n_check_in", "n_memo", "n_praise"]].values.tolist() == [[2, 0, 0, 2], [0, 0, 0, 0]]
    from alignment_research.spells import numbered_spells
    same = ar.feedback_rate(fb, emp, window=("2021-01-01", "2021-03-31"), spells=numbered_spells(emp))
    assert_frame_equal(same, rates, check_exact=True)


def test_feedback_kinds_ignore_missing_kinds_but_keep_their_events():
    emp = pd.DataFrame({"employee_id": ["A"], "hire_date": pd.to_datetime(["2021-01-01"])})
    fb = pd.DataFrame({"employee_id": ["A", "A", "A"], "date": pd.to_datetime(["2021-01-05", "2021-02-01", "2021-02-02"]),
                       "kind": ["praise", None, 7]})
    rates = ar.feedback_rate(fb, emp, window=("2021-01-01", "2021-03-31"))
    assert rates[["n_events", "n_7", "n_praise"]].values.tolist() == [[3, 1, 1]]


def test_feedback_rate_rows_name_each_row_s_spell():
    """feedback_rate_rows gives feedback_rate's table and, per row, its spell's position among the spells."""
    from alignment_research.measures import feedback_rate_rows
    from alignment_research.spells import numbered_spells

    employees = pd.DataFrame({"employee_id": ["A", "B", "A"],
                              "hire_date": pd.to_datetime(["2022-02-15", "2020-01-01", "2022-08-01"]),
                              "termination_date": pd.to_datetime(["2022-05-31", "2022-05-10", None])})
    feedback = pd.DataFrame({"employee_id": ["A", "B", "A"], "kind": ["check_in"] * 3,
                             "date": pd.to_datetime(["2022-03-01", "2022-04-01", "2022-09-01"])})
    spells = numbered_spells(employees)
    table, sid = feedback_rate_rows(feedback, spells, window=("2022-01-01", "2022-12-31"))
    assert_frame_equal(table, ar.feedback_rate(feedback, employees, window=("2022-01-01", "2022-12-31")))
    got = list(zip(table["employee_id"], table["spell"], table["quarter"]))
    assert got == [("A", 1, "2022Q1"), ("A", 1, "2022Q2"), ("A", 2, "2022Q3"), ("A", 2, "2022Q4"),
                   ("B", 1, "2022Q1"), ("B", 1, "2022Q2")]
    assert spells["employee_id"].to_numpy()[sid].tolist() == table["employee_id"].tolist()
    assert spells["spell"].to_numpy()[sid].tolist() == table["spell"].tolist()
