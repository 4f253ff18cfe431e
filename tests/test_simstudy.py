"""simulation_study: the summary maths against hand-computed values, failures counted, the plot, bad estimators."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.simstudy import REPLICATE_COLUMNS, SUMMARY_COLUMNS, summarise_replicates

matplotlib.use("Agg")


def _replicates():
    """Five replicates of one estimand (truth 1.0) and one of them with a missing p-value."""
    return pd.DataFrame({
        "scenario": "s", "rep": range(5), "estimator": "ols", "estimand": "b", "truth": 1.0,
        "estimate": [0.5, 1.0, 1.5, 2.0, 1.0],
        "std_error": [0.2, 0.4, 0.3, 0.5, 0.6],
        "conf_low": [0.1, 0.2, 1.1, 1.2, -0.2],
        "conf_high": [0.9, 1.8, 1.9, 2.8, 2.2],
        "p_value": [0.01, 0.02, 0.001, 0.2, np.nan],  # the last: the interval contains 0 -> not rejected
        "error": "",
    })


def test_summary_matches_hand_computed_values():
    row = summarise_replicates(_replicates()).iloc[0]
    assert list(summarise_replicates(_replicates()).columns) == SUMMARY_COLUMNS
    # estimates 0.5, 1, 1.5, 2, 1: mean 1.2, sd = sqrt(((-.7)^2 + (-.2)^2 + .3^2 + .8^2 + (-.2)^2) / 4) = sqrt(1.3/4)
    sd = math.sqrt(1.3 / 4)
    assert row["n_reps"] == 5 and row["n_failed"] == 0
    assert row["mean_estimate"] == pytest.approx(1.2)
    assert row["bias"] == pytest.approx(0.2)
    assert row["bias_mcse"] == pytest.approx(sd / math.sqrt(5))
    assert row["empirical_se"] == pytest.approx(sd)
    assert row["empirical_se_mcse"] == pytest.approx(sd / math.sqrt(2 * 4))
    # model SEs .2 .4 .3 .5 .6: mean .4, sd sqrt(.1/4)
    assert row["mean_model_se"] == pytest.approx(0.4)
    assert row["mean_model_se_mcse"] == pytest.approx(math.sqrt(0.1 / 4) / math.sqrt(5))
    # truth 1.0 inside [.2,1.8], [-.2,2.2]; outside [.1,.9], [1.1,1.9], [1.2,2.8] -> coverage 2/5
    assert row["coverage"] == pytest.approx(0.4)
    assert row["coverage_mcse"] == pytest.approx(math.sqrt(0.4 * 0.6 / 5))
    # p < .05 in three of the first four; the fifth's interval contains 0 -> power 3/5
    assert row["power"] == pytest.approx(0.6)
    assert row["power_mcse"] == pytest.approx(math.sqrt(0.6 * 0.4 / 5))


def test_alpha_sets_the_rejection_threshold():
    assert summarise_replicates(_replicates(), alpha=0.015).iloc[0]["power"] == pytest.approx(0.4)


def test_failed_fits_are_counted_not_summarised():
    reps = _replicates()
    failed = pd.DataFrame([{"scenario": "s", "rep": 5, "estimator": "ols", "estimand": "", "truth": np.nan,
                            "estimate": np.nan, "std_error": np.nan, "conf_low": np.nan, "conf_high": np.nan,
                            "p_value": np.nan, "error": "no events"}])
    row = summarise_replicates(pd.concat([reps, failed], ignore_index=True)).iloc[0]
    assert (row["n_reps"], row["n_failed"]) == (5, 1)
    assert row["bias"] == pytest.approx(0.2)


def _sim(truth, n_employees, seed, messy):
    rng = np.random.default_rng(seed)
    return rng.normal(truth.engagement_manager_program, 1.0, n_employees)


def _mean(data):
    m, se = float(data.mean()), float(data.std(ddof=1) / np.sqrt(len(data)))
    return pd.DataFrame([{"estimand": "engagement_manager_program", "estimate": m, "std_error": se,
                          "conf_low": m - 1.96 * se, "conf_high": m + 1.96 * se, "p_value": 0.5}])


def _fails_when_negative(data):
    if data.mean() < 0:
        raise ar.ModelError("no variance")
    return _mean(data)


def _no_p_value(data):
    return [{"estimand": "engagement_manager_program", "estimate": 0.0, "std_error": 1.0, "conf_low": -1.0,
             "conf_high": 1.0}]


def _unknown_estimand(data):
    return [{"estimand": "effect_of_pizza", "estimate": 0.0, "std_error": 1.0, "conf_low": -1.0, "conf_high": 1.0,
             "p_value": 1.0}]


def test_study_reads_the_truth_and_keeps_every_replicate():
    result = ar.simulation_study({"null": {"truth": {"engagement_manager_program": 0.0}, "n_employees": 20},
                                  "effect": {"truth": ar.default_truth(), "n_employees": 20}},
                                 reps=6, estimators={"mean": _mean, "guarded": _fails_when_negative}, seed=4,
                                 simulate=_sim, progress=False)
    assert list(result.replicates.columns) == REPLICATE_COLUMNS
    assert result.table["scenario"].tolist() == ["null", "null", "effect", "effect"]  # the order given
    truth = result.table.set_index(["scenario", "estimator"])["truth"]
    assert truth["effect", "mean"] == ar.default_truth().engagement_manager_program
    assert truth["null", "mean"] == 0.0
    counts = result.table.set_index(["scenario", "estimator"])[["n_reps", "n_failed"]]
    assert counts.loc[("null", "mean")].tolist() == [6, 0]
    failed = (result.replicates["error"] == "no variance").sum()
    assert failed >= 1  # the null scenario has negative means
    assert counts.loc[("null", "guarded"), "n_failed"] == failed - (result.replicates.query("scenario == 'effect'")
                                                                      ["error"] == "no variance").sum()
    assert "SimulationStudyResult: 6 replicates per scenario, seed 4" in repr(result)


def test_plot_draws_coverage_and_power_with_bands():
    result = ar.simulation_study({"a": {"n_employees": 20}, "b": {"n_employees": 40}}, reps=4,
                                 estimators={"mean": _mean}, seed=1, simulate=_sim, progress=False)
    ax = result.plot()
    assert [a.get_title() for a in ax] == ["coverage of the 95% interval", "power (rejection rate)"]
    np.testing.assert_allclose(ax[0].lines[0].get_ydata(), result.table["coverage"])
    np.testing.assert_allclose(ax[1].lines[0].get_ydata(), result.table["power"])
    assert len(ax[0].collections) == 1  # the +/- 2 MC error band
    with pytest.raises(ar.ModelError, match="No estimand 'x'"):
        result.plot(estimand="x")


def test_estimator_rows_must_be_complete_and_have_a_truth():
    with pytest.raises(ar.ModelError, match=r"Estimator 'bad' returned a row without \['p_value'\]"):
        ar.simulation_study({"a": {}}, reps=1, estimators={"bad": _no_p_value}, seed=0, simulate=_sim, progress=False)
    with pytest.raises(ar.ModelError, match="estimand 'effect_of_pizza' is not a number in Truth"):
        ar.simulation_study({"a": {}}, reps=1, estimators={"bad": _unknown_estimand}, seed=0, simulate=_sim, progress=False)
    with pytest.raises(ar.ConfigError, match="estimators must be a non-empty dict"):
        ar.simulation_study({"a": {}}, reps=1, estimators={}, seed=0, simulate=_sim)
    with pytest.raises(ar.ConfigError, match="scenarios must be a non-empty dict"):
        ar.simulation_study({}, reps=1, estimators={"m": _mean}, seed=0, simulate=_sim)


def _program_ols(clean):
    fit = ar.fit_ols(clean.analysis.survey_panel, "engagement ~ alignment_cascade + manager_program",
                     cluster="manager_id")
    return fit.tidy().query("term == 'manager_program'").assign(estimand="engagement_manager_program")


@pytest.mark.filterwarnings("ignore::alignment_research.StatisticalWarning")  # 150 employees: few clusters
def test_default_simulation_is_the_cleaned_simulated_study():
    result = ar.simulation_study({"small": {"n_employees": 150}}, reps=1, estimators={"ols": _program_ols},
                                 seed=2, progress=False)
    rep = result.replicates.iloc[0]
    assert rep["truth"] == ar.default_truth().engagement_manager_program
    seed = ar.executors.Task("small", 0, 2).int_seed()
    clean = ar.clean_study(ar.simulate_study(n_employees=150, seed=seed, messy=False))
    assert rep["estimate"] == _program_ols(clean)["estimate"].item()


# ----------------------------------------------------------------------------- power by simulation
def test_simulated_power_sits_beside_the_formula():
    table = ar.simulate_power({"n_teams": [30], "effect": [0.0, 0.5], "attrition": [0.25]}, reps=40, seed=3,
                              progress=False)
    assert table["n_teams"].tolist() == [30, 30] and table["reps"].tolist() == [40, 40]
    assert table["respondents_per_team"].tolist() == [6.0, 6.0]  # 8 x (1 - 0.25)
    analytic = ar.power_engagement(n_teams=30, team_size=6.0, icc=0.1, effect=0.5)["power"].item()
    assert table["analytic_power"].tolist() == [0.05, analytic]
    p = table["simulated_power"].to_numpy()
    np.testing.assert_allclose(table["simulated_power_mcse"], np.sqrt(p * (1 - p) / 40))
    assert p[0] < 0.2 and p[1] > 0.4  # null near alpha, effect well above it
    again = ar.simulate_power({"n_teams": [30], "effect": [0.0, 0.5], "attrition": [0.25]}, reps=40, seed=3,
                              backend="processes", n_workers=2, progress=False)
    pd.testing.assert_frame_equal(again, table, check_exact=True)


@pytest.mark.parametrize("grid, message", [
    ({"n_teams": [30]}, "key 'effect' is required"),
    ({"n_teams": [30], "effect": [0.2], "iccs": [0.1]}, r"unknown key\(s\) \['iccs'\]"),
    ({"n_teams": [30], "effect": [0.2], "attrition": [1.0]}, r"attrition must be in \[0, 1\); got 1"),
    ({"n_teams": [2.5], "effect": [0.2]}, "n_teams must be an integer >= 4; got 2.5"),
    ({"n_teams": [30], "effect": ["big"]}, "key 'effect' must be a non-empty list of numbers"),
])
def test_bad_power_grid_is_refused(grid, message):
    with pytest.raises(ar.ConfigError, match=message):
        ar.simulate_power(grid, reps=2, progress=False)


def test_power_simulate_command_writes_csv_and_png(tmp_path):
    from typer.testing import CliRunner

    from alignment_research.cli import app

    grid = tmp_path / "grid.yaml"
    grid.write_text("n_teams: [20, 40]\neffect: [0.0, 0.4]\nicc: [0.05]\n", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["power", "simulate", "--grid", str(grid), "--reps", "10", "--backend",
                                      "sequential", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "power_simulation.csv")
    assert table[["n_teams", "effect"]].values.tolist() == [[20, 0.0], [20, 0.4], [40, 0.0], [40, 0.4]]
    assert (table["reps"] == 10).all() and (table["icc"] == 0.05).all()
    assert (out / "power_simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "simulated 4 design(s) x 10 trials (sequential)" in result.output


def test_power_simulate_command_reports_bad_input_without_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from alignment_research.cli import app

    grid = tmp_path / "grid.yaml"
    grid.write_text("n_teams: [20]\neffect: [0.2]\nteam_sise: [8]\n", encoding="utf-8")
    runner = CliRunner()
    bad_key = runner.invoke(app, ["power", "simulate", "--grid", str(grid), "--reps", "5"])
    assert bad_key.exit_code == 1
    assert f"{grid}: unknown key(s) ['team_sise']" in bad_key.output and "Traceback" not in bad_key.output
    no_grid = runner.invoke(app, ["power", "simulate", "--reps", "5"])
    assert no_grid.exit_code == 1 and "power simulate needs --grid" in no_grid.output
    grid.write_text("n_teams: [20]\neffect: [0.2]\n", encoding="utf-8")
    bad_backend = runner.invoke(app, ["power", "simulate", "--grid", str(grid), "--backend", "gpu"])
    assert bad_backend.exit_code == 1 and "Unknown backend 'gpu'" in bad_backend.output
