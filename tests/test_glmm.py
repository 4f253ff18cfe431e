"""fit_glmm: the logistic (and Poisson) mixed model against lme4::glmer, analytic cases and ground truth.

R reference values: ``tests/reference/glmm.R`` fits ``glmer(..., nAGQ = 1)`` on
lme4's ``cbpp`` (one row per animal) and on ``glmm_data.csv`` (a toolkit-like
data set written by ``glmm_data.py``) and stores ``glmm_reference.csv``; R and
package versions are in ``glmm_reference_provenance.txt``. Each model is there
twice: with glmer's defaults (``<model>``) and with tight optimiser tolerances
(``<model>_tight``), the optimum itself, which is what 1e-4 is checked against.
"""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import alignment_research as ar
from alignment_research import _glmm

REF = Path(__file__).parent / "reference"
R = pd.read_csv(REF / "glmm_reference.csv")
SIM = pd.read_csv(REF / "glmm_data.csv")
CBPP = pd.read_csv(REF / "glmm_cbpp.csv")

SIM_LOGIT = "left_within_year ~ alignment_cascade + manager_program + engagement + C(job_level)"
SIM_POISSON = "recognitions ~ alignment_cascade + manager_program"
# ours -> R: the model, its data, formula, groups, family, and R's names of our terms
CASES = {
    "cbpp": (CBPP, "y ~ C(period)", "herd", "binomial"),
    "sim_logit": (SIM, SIM_LOGIT, "manager_id", "binomial"),
    "sim_poisson": (SIM, SIM_POISSON, "manager_id", "poisson"),
}


def r_term(term: str) -> str:
    """R's name of one of our terms: ``C(period)[T.2]`` -> ``period2``."""
    if term == "Intercept":
        return "(Intercept)"
    if term.startswith("C("):
        var, level = term[2:].split(")[T.")
        return var + level.rstrip("]")
    return term


def r_values(model: str, quantity: str) -> pd.Series:
    rows = R[(R["model"] == model) & (R["quantity"] == quantity)]
    return pd.Series(rows["value"].to_numpy(float), index=rows["term"].fillna("").astype(str).to_numpy())


@pytest.fixture(scope="module")
def fits():
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ar.StatisticalWarning)  # none of the reference fits warns
        for name, (data, formula, groups, family) in CASES.items():
            out[name] = ar.fit_glmm(data, formula, groups=groups, family=family)
    return out


@pytest.mark.parametrize("model", list(CASES))
def test_estimates_and_standard_errors_match_glmer_at_its_optimum(fits, model):
    """``fixef(fit)``, ``sqrt(diag(vcov(fit)))`` (Hessian-based) of glmer with tight tolerances, to 1e-4."""
    t = fits[model].tidy()
    terms = [r_term(x) for x in t["term"]]
    assert_allclose(t["estimate"], r_values(f"{model}_tight", "estimate")[terms], rtol=1e-4)
    assert_allclose(t["std_error"], r_values(f"{model}_tight", "std_error")[terms], rtol=1e-4)
    rx = fits[model].extras["std_error_rx"]
    assert_allclose(rx["std_error_rx"], r_values(f"{model}_tight", "std_error_rx")[terms], rtol=1e-4)
    assert fits[model].model.cov_source == "hessian"


@pytest.mark.parametrize("model", list(CASES))
def test_variance_loglik_deviance_and_modes_match_glmer(fits, model):
    g = fits[model].glance().iloc[0]
    groups = CASES[model][2]
    ref = f"{model}_tight"
    assert_allclose(g[f"var_{groups}"], r_values(ref, "variance")[groups], rtol=1e-4)  # VarCorr
    assert_allclose(g[f"sd_{groups}"], r_values(ref, "theta")[groups], rtol=1e-4)  # getME(fit, "theta")
    assert abs(g["log_likelihood"] - r_values(ref, "log_likelihood")[""]) < 1e-6  # logLik(fit)
    assert abs(g["aic"] - r_values(ref, "aic")[""]) < 2e-6 and abs(g["bic"] - r_values(ref, "bic")[""]) < 2e-6
    assert abs(g["deviance"] - r_values(ref, "deviance")[""]) < 1e-4  # deviance(fit): conditional
    assert g["n"] == r_values(ref, "nobs")[""]
    assert g["method"] == "Laplace" and g["converged"] and not g["boundary"]
    modes = fits[model].random_effects.set_index("group")["estimate"]
    r_modes = r_values(ref, "ranef")
    modes.index = modes.index.astype(str)
    assert_allclose(modes[r_modes.index], r_modes, atol=1e-5)  # ranef(fit)


@pytest.mark.parametrize("model", list(CASES))
def test_glmer_defaults_stop_short_of_our_optimum(fits, model):
    """glmer's default Nelder-Mead stops near the optimum: ours has at least its logLik, estimates within 1e-2."""
    res = fits[model]
    t = res.tidy()
    terms = [r_term(x) for x in t["term"]]
    assert res.glance()["log_likelihood"].iloc[0] >= r_values(model, "log_likelihood")[""] - 1e-9
    assert_allclose(t["estimate"], r_values(model, "estimate")[terms], rtol=1e-2)
    assert_allclose(t["std_error"], r_values(model, "std_error")[terms], rtol=2e-2)


def test_binary_rows_equal_the_cbind_form_in_r():
    """glmer on cbind(incidence, size - incidence) equals the binary-row fit (estimates, SEs, variance)."""
    for q in ("estimate", "std_error", "variance"):
        assert_allclose(r_values("cbpp_tight", q), r_values("cbpp_cbind_tight", q), rtol=1e-5)


def test_analytic_gradient_equals_finite_differences_of_the_laplace_deviance():
    codes, labels = pd.factorize(CBPP["herd"], sort=True)
    X = np.column_stack([np.ones(len(CBPP))] + [(CBPP["period"] == k).to_numpy(float) for k in (2, 3, 4)])
    for family, y in (("binomial", CBPP["y"].to_numpy(float)), ("poisson", CBPP["y"].to_numpy(float) * 2)):
        prob = _glmm._Problem(X, y, codes, len(labels), family)
        z = np.array([0.7, -1.3, -1.0, -1.1, -1.5])
        _, grad = prob.gradient(z)
        h = 1e-4  # the modes are solved to ~1e-11: smaller steps would difference that noise
        numeric = [(prob.deviance(z + h * e) - prob.deviance(z - h * e)) / (2 * h) for e in np.eye(len(z))]
        assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6)


def _identical_groups(n_groups=30):
    """Every group holds the same rows: no variation between groups at all."""
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, -1.5, 0.25])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    return pd.DataFrame({"y": np.tile(y, n_groups), "x": np.tile(x, n_groups),
                         "manager_id": np.repeat([f"M{i:02d}" for i in range(n_groups)], len(x))})


def test_identical_groups_are_a_boundary_fit_equal_to_fit_logit():
    """No between-group variation: the variance is 0 and the model is the logistic regression, numbers included."""
    data = _identical_groups()
    with pytest.warns(ar.StatisticalWarning, match="singular fit"):
        res = ar.fit_glmm(data, "y ~ x", groups="manager_id")
    logit = ar.fit_logit(data, "y ~ x")
    g = res.glance().iloc[0]
    assert g["boundary"] and g["var_manager_id"] == 0.0
    assert_allclose(res.tidy()["estimate"], logit.tidy()["estimate"], rtol=1e-10)
    assert_allclose(res.tidy()["std_error"], logit.tidy()["std_error"], rtol=1e-8)
    assert_allclose(g["log_likelihood"], logit.glance()["log_likelihood"].iloc[0], rtol=1e-12)
    assert_allclose(res.random_effects["estimate"], 0.0)
    assert any("singular fit" in c for c in res.caveats)


def test_a_small_variance_approaches_fit_logit():
    rng = np.random.default_rng(3)
    team = np.repeat(np.arange(60), 20)
    x = rng.normal(size=len(team))
    eta = -0.5 + 0.7 * x + rng.normal(0, 0.05, 60)[team]
    data = pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x, "manager_id": team})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        res = ar.fit_glmm(data, "y ~ x", groups="manager_id")
    logit = ar.fit_logit(data, "y ~ x")
    assert res.glance()["var_manager_id"].iloc[0] < 0.02
    assert_allclose(res.tidy()["estimate"], logit.tidy()["estimate"], atol=0.02)
    assert_allclose(res.tidy()["std_error"], logit.tidy()["std_error"], rtol=0.05)


def test_a_bool_outcome_equals_the_0_1_outcome(fits):
    data = SIM.assign(left_within_year=SIM["left_within_year"].astype(bool))
    res = ar.fit_glmm(data, SIM_LOGIT, groups="manager_id")
    assert_allclose(res.tidy()["estimate"], fits["sim_logit"].tidy()["estimate"], rtol=1e-12)


def test_the_result_says_what_it_is(fits):
    res = fits["sim_logit"]
    assert isinstance(res, ar.engagement.GLMMResult)
    assert list(res.tidy().columns[:10]) == [*ar.results.TIDY_COLUMNS, *ar.results.RATIO_COLUMNS]
    assert res.scale == "ratio" and res.measure == "odds ratio" and res.family == "binomial"
    assert_allclose(res.tidy()["exp_estimate"], np.exp(res.tidy()["estimate"]))
    g = res.glance().iloc[0]
    assert g["n_groups"] == 100 and g["events"] == int(SIM["left_within_year"].sum())
    assert g["cov_type"] == "random intercept: manager_id" and g["family"] == "binomial"
    assert len(res.random_effects) == 100
    assert fits["sim_poisson"].measure == "rate ratio"
    pv = ar.predicted_values(res, SIM, x="alignment_cascade", n_points=3)  # a typical team (intercept 0)
    assert pv["estimate"].between(0, 1).all()


def test_a_separating_term_gets_fit_logits_caveat():
    data = _identical_groups().assign(flag=0)
    data.loc[data["y"] == 1, "flag"] = np.tile([1, 0, 0, 0], len(data) // 8)  # flag = 1 only among events
    with pytest.warns(ar.StatisticalWarning) as caught:
        res = ar.fit_glmm(data, "y ~ x + flag", groups="manager_id")
    assert any("separation" in str(w.message) for w in caught)
    assert any("`flag` (only events among its rows" in c for c in res.caveats)


def test_a_fit_that_did_not_converge_warns(monkeypatch):
    engine = _glmm.fit_glmm_laplace
    monkeypatch.setattr(_glmm, "fit_glmm_laplace",
                        lambda *a, **k: dataclasses.replace(engine(*a, **k), converged=False))
    with pytest.warns(ar.StatisticalWarning, match="did not converge"):
        res = ar.fit_glmm(SIM, SIM_POISSON, groups="manager_id", family="poisson")
    assert not res.glance()["converged"].iloc[0]


@pytest.mark.parametrize("kwargs, data, formula, match", [
    ({"family": "gaussian"}, SIM, SIM_LOGIT, "must be one of"),
    ({}, SIM, "recognitions ~ alignment_cascade", "must be 0/1"),
    ({"family": "poisson"}, SIM.assign(recognitions=SIM["recognitions"] - 0.5), SIM_POISSON, "whole-number"),
    ({}, SIM.assign(manager_id="M1"), SIM_LOGIT, "at least 2 groups"),
    ({}, SIM.assign(manager_id=SIM["employee_id"]), SIM_LOGIT, "not identified"),
    ({"groups": ["manager_id"]}, SIM, SIM_LOGIT, "one column name"),
    ({"groups": "team"}, SIM, SIM_LOGIT, "team"),
])
def test_bad_input_raises_model_error(kwargs, data, formula, match):
    kwargs = {"groups": "manager_id", **kwargs}
    with pytest.raises(ar.ModelError, match=match):
        ar.fit_glmm(data, formula, **kwargs)


# --------------------------------------------------------------------------- ground truth

TRUE_SLOPE, TRUE_PROGRAM, TRUE_SD = -0.8, -0.4, 0.7


def _recovery_seed(seed: int) -> dict:
    """Simulate 200 teams of 4-16 people from the random-intercept logit; fit; did each 95% CI cover the truth?"""
    rng = np.random.default_rng(seed)
    n_mgr = 200
    size = rng.integers(4, 17, n_mgr)
    team = np.repeat(np.arange(n_mgr), size)
    program = rng.binomial(1, 0.5, n_mgr)
    align = rng.beta(3, 2, len(team))
    eta = -0.5 + TRUE_SLOPE * align + TRUE_PROGRAM * program[team] + rng.normal(0, TRUE_SD, n_mgr)[team]
    data = pd.DataFrame({"left": rng.binomial(1, 1 / (1 + np.exp(-eta))), "alignment_cascade": align,
                         "manager_program": program[team], "manager_id": team})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        res = ar.fit_glmm(data, "left ~ alignment_cascade + manager_program", groups="manager_id")
    t = res.tidy().set_index("term")
    covered = {term: bool(t.loc[term, "conf_low"] <= truth <= t.loc[term, "conf_high"])
               for term, truth in (("alignment_cascade", TRUE_SLOPE), ("manager_program", TRUE_PROGRAM))}
    return {"covered": covered, "estimate": t["estimate"].to_dict(), "sd": float(res.glance()["sd_manager_id"].iloc[0])}


@pytest.mark.slow
def test_fixed_effects_are_recovered_over_50_seeds():
    runs = [_recovery_seed(seed) for seed in range(50)]
    for term, truth in (("alignment_cascade", TRUE_SLOPE), ("manager_program", TRUE_PROGRAM)):
        coverage = np.mean([r["covered"][term] for r in runs])
        assert coverage >= 0.90, (term, coverage)
        bias = np.mean([r["estimate"][term] for r in runs]) - truth
        assert abs(bias) < 0.1, (term, bias)
    assert abs(np.mean([r["sd"] for r in runs]) - TRUE_SD) < 0.1


def test_runs_on_the_cycles_table(tiny_clean):
    """The analysis table the issue names: an exit in the next cycle, with the manager's intercept."""
    cycles = tiny_clean.analysis.cycles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        res = ar.fit_glmm(cycles, "left_next_cycle ~ alignment_cascade + C(cycle)", groups="manager_id")
    used = cycles.dropna(subset=["left_next_cycle", "alignment_cascade", "cycle", "manager_id"])
    g = res.glance().iloc[0]
    assert g["n"] == len(used) and g["n_groups"] == used["manager_id"].nunique()
    assert g["converged"] and np.isfinite(res.tidy()["std_error"]).all()
