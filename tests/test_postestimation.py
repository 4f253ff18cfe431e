"""Post-estimation on any fitted regression: predictions, marginal effects, per-group effects, p-value adjustment."""

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from numpy.testing import assert_allclose

import alignment_research as ar

DATA = pd.read_csv(Path(__file__).parent / "reference" / "engagement_data.csv")


def test_predicted_values_and_marginal_effects_follow_the_coefficients():
    res = ar.fit_ols(DATA, "engagement ~ alignment_cascade * manager_program + C(job_level)", cluster="manager_id")
    b = res.tidy().set_index("term").estimate
    me = ar.marginal_effects(res, DATA, x="alignment_cascade", by="manager_program")
    assert_allclose(me.estimate, [b["alignment_cascade"], b["alignment_cascade"] + b["alignment_cascade:manager_program"]],
                    rtol=1e-6)
    pv = ar.predicted_values(res, DATA, x="alignment_cascade", by="manager_program", values=[0.0, 1.0])
    # job level held at its most common level (3 here): intercept + job-level-3 shift
    level = DATA.job_level.value_counts().idxmax()
    base = b["Intercept"] + b.get(f"C(job_level)[T.{level}]", 0.0)
    assert_allclose(pv.estimate.iloc[0], base, rtol=1e-10)
    assert_allclose(pv.estimate.iloc[3] - pv.estimate.iloc[2], me.estimate.iloc[1], rtol=1e-6)
    assert (pv.conf_low < pv.estimate).all()
    ax = ar.plot_predicted(pv, by="manager_program", xlabel="Cascade alignment (share of goals)")
    assert len(ax.lines) == 2
    assert_allclose(ax.lines[1].get_xydata()[:, 1], pv.estimate.iloc[2:])


def test_logit_predictions_are_probabilities():
    res = ar.fit_logit(DATA, "left_next_cycle ~ engagement + manager_program")
    pv = ar.predicted_values(res, DATA, x="engagement", n_points=5)
    assert ((pv.estimate > 0) & (pv.estimate < 1)).all()
    assert pv.estimate.is_monotonic_decreasing


def test_adjust_pvalues_matches_r_p_adjust():
    p = [0.01, 0.04, 0.03, 0.2]
    assert_allclose(ar.adjust_pvalues(p), [0.04, 0.09, 0.09, 0.2])  # p.adjust(p, "holm")
    assert_allclose(ar.adjust_pvalues(p, method="fdr_bh"), [0.04, 0.0533333333, 0.0533333333, 0.2])  # p.adjust(p, "BH")
    t = ar.adjust_pvalues(pd.DataFrame({"p_value": [0.01, np.nan]}))
    assert t.p_adjusted.iloc[0] == 0.01 and np.isnan(t.p_adjusted.iloc[1])


class TestEffectByGroup:
    """One effect per group, with groups that cannot be estimated listed, not dropped."""

    @staticmethod
    def _data(rng):
        n = 600
        dept = np.repeat(["a", "b", "c", "d"], [250, 250, 96, 4])
        treated = rng.integers(0, 2, n).astype(float)
        treated[dept == "c"] = 0.0  # no variation: cannot be estimated
        effect = np.select([dept == "a", dept == "b"], [0.5, 0.0], 0.0)
        y = 1.0 + effect * treated + rng.normal(0, 0.3, n)
        return pd.DataFrame({"y": y, "x": treated, "dept": dept, "team": rng.integers(0, 60, n)})

    def test_per_group_estimates_equal_separate_regressions(self, rng):
        data = self._data(rng)
        table = ar.effect_by_group(data, "y ~ x", term="x", by="dept", person=None)
        for group in ["a", "b"]:
            own = ar.fit_ols(data[data["dept"] == group], "y ~ x").tidy().set_index("term")
            row = table.set_index("dept").loc[group]
            np.testing.assert_allclose(row["estimate"], own.loc["x", "estimate"], rtol=1e-10)
        assert table.set_index("dept").loc["a", "p_adjusted"] < 0.001

    def test_groups_without_variation_or_too_small_are_listed_with_a_note(self, rng):
        table = ar.effect_by_group(self._data(rng), "y ~ x", term="x", by="dept", person=None).set_index("dept")
        assert table.loc["c", "note"] == "no variation in x" and np.isnan(table.loc["c", "estimate"])
        other = "Other depts (each < 5 people)"  # d (4 people) pooled alone: still too small
        assert table.loc[other, "note"].startswith("suppressed") and pd.isna(table.loc[other, "n"])
        assert list(table.index) == ["a", "b", "c", other]

    def test_holm_adjustment_covers_the_estimable_groups(self, rng):
        table = ar.effect_by_group(self._data(rng), "y ~ x", term="x", by="dept", person=None).dropna(subset=["p_value"])
        expected = ar.adjust_pvalues(table["p_value"].to_numpy())
        np.testing.assert_allclose(table["p_adjusted"], expected)

    def test_unknown_term_is_named(self, rng):
        with pytest.raises(ar.ModelError, match=r"no column\(s\) \['z'\]"):
            ar.effect_by_group(self._data(rng), "y ~ x", term="z", by="dept")


def test_marginal_effects_intervals_follow_alpha():
    res = ar.fit_ols(DATA, "engagement ~ alignment_cascade + manager_program")
    me = ar.marginal_effects(res, DATA, x="alignment_cascade", alpha=0.1)
    assert_allclose((me.conf_high - me.estimate) / me.std_error, st.norm.ppf(0.95), rtol=1e-10)
    assert_allclose(me.estimate, res.tidy().set_index("term").loc["alignment_cascade", "estimate"], rtol=1e-6)


def test_postestimation_sits_above_the_models_without_a_cycle():
    # postestimation imports engagement (its result class, fit_ols); engagement must not import postestimation
    source = (Path(ar.__file__).parent / "engagement.py").read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "postestimation" not in imported
    assert ar.predicted_values.__module__ == "alignment_research.postestimation"


def test_plot_labels_follow_the_interval_level(tiny_clean):
    panel = tiny_clean.analysis.survey_panel  # simulate_study(n_employees=300, seed=0), cleaned once per process
    fit = ar.fit_ols(panel, "engagement ~ alignment_cascade")
    table = ar.predicted_values(fit, panel, x="alignment_cascade", alpha=0.2)
    assert ar.plot_predicted(table).get_ylabel() == "Predicted value (80% CI)"
    drivers = ar.driver_analysis(panel, n_boot=20, alpha=0.1)
    assert drivers.plot().get_xlabel() == "Share of explained variance (%, 90% CI)"
    assert ar.plot_drivers(drivers.tidy()).get_xlabel().endswith("90% CI)")


def test_holm_equals_statsmodels_multipletests_with_ties_and_a_p_of_one():
    """The toolkit's one Holm step-down (no garbage collection per call) gives multipletests' values."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 40):
        p = np.round(rng.uniform(0, 0.2, m), 2)  # rounded: ties
        p[0] = 1.0 if m > 2 else p[0]
        assert_allclose(ar.adjust_pvalues(p), multipletests(p, method="holm")[1], rtol=0, atol=1e-15)
    assert ar.adjust_pvalues(np.array([])).shape == (0,)


def test_holm_runs_no_garbage_collection(monkeypatch):
    import gc

    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    ar.adjust_pvalues([0.01, 0.04, 0.03])
    assert calls == []
