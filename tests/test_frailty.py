"""Tests of the shared gamma frailty (fit_cox(frailty=...)), strata by manager and retention_sensitivity.

Reference chain: tests/reference/frailty.R (R 4.2.2, survival 3.5-3; see frailty_reference_provenance.txt)
writes frailty_reference.csv from survival::rats (exported as frailty_rats.csv) and from the
start/stop data retention_input_intervals.csv. ``theta`` and ``c_loglik`` are R's
``fit$history[[1]]$theta`` and ``$c.loglik`` (the integrated likelihood that chooses theta).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import alignment_research as ar
from alignment_research import _cox
from alignment_research.errors import ModelError, StatisticalWarning

REF = Path(__file__).parent / "reference"
REFERENCE = pd.read_csv(REF / "frailty_reference.csv", keep_default_na=False)
REFERENCE["value"] = pd.to_numeric(REFERENCE["value"])
COVARIATES = "alignment_cascade + engagement + manager_program"


def R(model, quantity, term=None):
    rows = REFERENCE[(REFERENCE["model"] == model) & (REFERENCE["quantity"] == quantity)]
    if term is not None:
        rows = rows[rows["term"] == term]
    return rows["value"].to_numpy(float)


@pytest.fixture(scope="module")
def rats():
    return pd.read_csv(REF / "frailty_rats.csv")


@pytest.fixture(scope="module")
def intervals():
    return pd.read_csv(REF / "retention_input_intervals.csv")


def penalised_at(data, columns, theta, *, time="time", status="status", group="litter"):
    """The engine's fit at a fixed theta: coxph(... + frailty(group, theta = theta))."""
    X = data[columns].to_numpy(float)
    codes = pd.factorize(data[group], sort=True)[0]
    G, p = codes.max() + 1, X.shape[1]
    design = np.zeros((len(X), p + G))
    design[:, :p] = X
    design[np.arange(len(X)), p + codes] = 1.0
    cd = _cox.prepare(design, np.zeros(len(X)), data[time].to_numpy(float), data[status].to_numpy())
    events = np.bincount(codes, weights=data[status].to_numpy(float), minlength=G)
    return cd, codes, _cox.fit_gamma_frailty(cd, p, theta, events, codes=codes)


# --------------------------------------------------------------------------- the engine at a fixed theta
@pytest.mark.parametrize("theta", [0.5, 1, 2])
def test_fixed_theta_matches_coxph(rats, theta):
    """coxph(Surv(time, status) ~ rx + frailty(litter, theta = theta), rats): the objective and the fit."""
    model = f"rats_theta_{theta:g}"
    _, _, fit = penalised_at(rats, ["rx"], theta)
    assert fit.converged
    # the integrated likelihood that chooses theta, to rounding
    assert_allclose(fit.integrated, R(model, "c_loglik"), rtol=1e-12)
    assert_allclose(fit.coef[0], R(model, "coef"), rtol=1e-7)
    se = np.sqrt(np.linalg.inv(fit.info)[0, 0])  # R's sparse information: diagonal frailty block
    assert_allclose(se, R(model, "se"), rtol=1e-8)
    # the partial likelihood and the penalty split the same total (R stops at its eps = 1e-12)
    assert_allclose(fit.evaluation.loglik, R(model, "loglik"), rtol=1e-8)
    assert_allclose(fit.penalty, R(model, "penalty"), rtol=1e-7)
    assert_allclose(np.mean(np.exp(fit.coef[1:])), 1.0, rtol=1e-12)  # recentred as R


def test_fixed_theta_two_covariates(rats):
    """coxph(Surv(time, status) ~ rx + sex + frailty(litter, theta = 1), rats)."""
    data = rats.assign(sexm=(rats["sex"] == "m").astype(float))
    _, _, fit = penalised_at(data, ["rx", "sexm"], 1.0)
    # R's Newton stops at a relative change of 1e-12 in the penalised likelihood: sexm (-3.2, a flat
    # direction) is then 2e-7 relative from the optimum, where our penalised score is zero
    assert_allclose(fit.coef[:2], [*R("rats_sex_theta_1", "coef", "rx"), *R("rats_sex_theta_1", "coef", "sexm")],
                    rtol=1e-6)
    w = fit.coef[2:]
    score = fit.evaluation.grad.copy()
    score[2:] -= (np.exp(w) - 1)  # nu = 1
    assert np.max(np.abs(score)) < 1e-8
    se = np.sqrt(np.diag(np.linalg.inv(fit.info))[:2])
    assert_allclose(se, [*R("rats_sex_theta_1", "se", "rx"), *R("rats_sex_theta_1", "se", "sexm")], rtol=1e-7)
    assert_allclose(fit.integrated, R("rats_sex_theta_1", "c_loglik"), rtol=1e-12)


def test_grouped_information_equals_the_dense_one(rats):
    """evaluate_grouped builds X'WX from group sums: the same numbers as the dense product."""
    cd, codes, fit = penalised_at(rats, ["rx"], 1.0)
    for coef in (np.zeros(cd.X.shape[1]), fit.coef):
        dense, grouped = _cox.evaluate(cd, coef), _cox.evaluate_grouped(cd, coef, 1, codes)
        assert_allclose(grouped.info, dense.info, rtol=1e-12, atol=1e-12)
        assert_allclose(grouped.grad, dense.grad, rtol=1e-12, atol=1e-12)
        assert grouped.loglik == dense.loglik


def test_gamma_correction_is_the_gamma_integral():
    """Analytic: one group, d events, nu = 1/theta: d + nu log nu - (nu+d) log(nu+d) + log Gamma(nu+d)/Gamma(nu)."""
    nu, d = 2.0, 3
    expected = d + nu * np.log(nu) - (nu + d) * np.log(nu + d) + np.log(2 * 3 * 4)  # Gamma(5)/Gamma(2) = 4!/1!
    assert_allclose(_cox.gamma_correction(np.array([d]), nu), expected, rtol=1e-14)
    assert _cox.gamma_correction(np.array([0.0]), nu) == pytest.approx(0.0, abs=1e-14)  # no events: no term


# --------------------------------------------------------------------------- theta by the integrated likelihood
def test_frailty_fit_matches_coxph_default(rats):
    """coxph(Surv(time, status) ~ rx + frailty(litter, eps = 1e-12), rats, tight control), and R's default."""
    res = ar.fit_cox(rats, "rx", duration="time", event="status", frailty="litter")
    g = res.glance().iloc[0]
    assert_allclose(g["theta"], R("rats_tight", "theta"), rtol=1e-6)
    assert_allclose(g["log_likelihood_integrated"], R("rats_tight", "c_loglik"), rtol=1e-12)
    assert_allclose(res.tidy()["estimate"], R("rats_tight", "coef"), rtol=1e-7)
    assert_allclose(res.tidy()["std_error"], R("rats_tight", "se"), rtol=1e-7)
    assert_allclose(g["log_likelihood"], R("rats_tight", "loglik"), rtol=1e-7)
    assert_allclose(g["log_likelihood_null"], R("rats_tight", "loglik_null"), rtol=1e-12)
    assert_allclose(g["n_params"], R("rats_tight", "df"), rtol=1e-6)  # sum(fit$df)
    assert_allclose(g["aic"], -2 * g["log_likelihood"] + 2 * g["n_params"], rtol=1e-12)
    assert g["n_groups"] == 100 and g["events"] == 42 and g["cov_type"] == "gamma frailty: litter"
    # R's default stopping rule (eps = 1e-5 on the integrated likelihood) lands within 1e-5 of the optimum
    assert_allclose(g["theta"], R("rats_default", "theta"), rtol=1e-4)
    assert_allclose(res.tidy()["estimate"], R("rats_default", "coef"), rtol=1e-4)
    frail = res.extras["frailty"]
    assert_allclose(frail["log_frailty"], R("rats_tight", "frail"), rtol=1e-5, atol=1e-6)
    assert res.caveats == ()


def test_compare_frailty_with_plain_cox(rats):
    """compare_models tests the frailty by its integrated likelihood (R's c.loglik), one parameter more."""
    plain = ar.fit_cox(rats, "rx", duration="time", event="status")
    frailty = ar.fit_cox(rats, "rx", duration="time", event="status", frailty="litter")
    with pytest.warns(StatisticalWarning, match="integrated likelihood"):
        table = ar.compare_models(plain, frailty)
    assert table["df"].tolist() == [1, 2]
    assert_allclose(table["log_likelihood"].iloc[1], R("rats_tight", "c_loglik"), rtol=1e-12)
    expected = 2 * (R("rats_tight", "c_loglik")[0] - plain.glance()["log_likelihood"].iloc[0])
    assert_allclose(table["lr_statistic"].iloc[1], expected, rtol=1e-10)
    assert any("boundary" in c for c in table.attrs["caveats"])
    with pytest.raises(ModelError, match="intercept-only"):
        ar.compare_models(frailty)  # no null model known for a frailty fit


@pytest.fixture(scope="module")
def sensitivity(intervals):
    with pytest.warns(StatisticalWarning, match="estimated at zero"):
        return ar.retention_sensitivity(intervals, COVARIATES, group="manager_id")


def test_frailty_at_zero_on_start_stop_data(sensitivity):
    """coxph(Surv(start, stop, event) ~ ... + frailty(manager_id)): R's theta is 1e-8, the plain Cox fit."""
    res = sensitivity.attrs["results"]["frailty"]
    g = res.glance().iloc[0]
    assert g["theta"] == 0 and R("intervals_frailty", "theta")[0] < 1e-7
    assert_allclose(res.tidy()["estimate"], R("intervals_frailty", "coef"), rtol=1e-7)
    assert_allclose(res.tidy()["std_error"], R("intervals_frailty", "se"), rtol=1e-6)
    assert_allclose(g["log_likelihood"], R("intervals_frailty", "loglik"), rtol=1e-8)
    assert_allclose(g["n_params"], R("intervals_frailty", "df"), rtol=1e-5)
    assert any("estimated at zero" in c for c in res.caveats)


def test_fixed_theta_on_start_stop_data(intervals):
    """coxph(... + frailty(manager_id, theta = 0.1)) on (start, stop] rows with left truncation."""
    cols = COVARIATES.split(" + ")
    X = intervals[cols].to_numpy(float)
    codes = pd.factorize(intervals["manager_id"], sort=True)[0]
    G = codes.max() + 1
    design = np.zeros((len(X), 3 + G))
    design[:, :3] = X
    design[np.arange(len(X)), 3 + codes] = 1.0
    cd = _cox.prepare(design, intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float),
                      intervals["event"].to_numpy())
    events = np.bincount(codes, weights=intervals["event"].to_numpy(float), minlength=G)
    fit = _cox.fit_gamma_frailty(cd, 3, 0.1, events, codes=codes)
    ref = "intervals_theta_0.1"
    assert_allclose(fit.coef[:3], [R(ref, "coef", c)[0] for c in cols], rtol=1e-7)
    assert_allclose(np.sqrt(np.diag(np.linalg.inv(fit.info))[:3]), [R(ref, "se", c)[0] for c in cols], rtol=1e-7)
    assert_allclose(fit.integrated, R(ref, "c_loglik"), rtol=1e-11)


# --------------------------------------------------------------------------- strata and the side-by-side table
def test_strata_by_manager_matches_coxph(intervals):
    """coxph(Surv(start, stop, event) ~ ... + strata(manager_id)) on start/stop data."""
    res = ar.fit_cox(intervals, COVARIATES, start="start", stop="stop", strata="manager_id")
    cols = COVARIATES.split(" + ")
    assert_allclose(res.tidy()["estimate"], [R("intervals_strata", "coef", c)[0] for c in cols], rtol=1e-8)
    assert_allclose(res.tidy()["std_error"], [R("intervals_strata", "se", c)[0] for c in cols], rtol=1e-8)
    assert_allclose(res.glance()["log_likelihood"].iloc[0], R("intervals_strata", "loglik"), rtol=1e-10)


def test_retention_sensitivity_table(sensitivity):
    cols = COVARIATES.split(" + ")
    assert sensitivity["model"].tolist() == ["clustered"] * 3 + ["stratified"] * 3 + ["frailty"] * 3
    assert list(sensitivity.columns) == ["model", "term", "estimate", "std_error", "conf_low", "conf_high",
                                         "exp_estimate", "exp_conf_low", "exp_conf_high", "note"]
    by = sensitivity.set_index(["model", "term"])
    # clustered: coxph(... + cluster(manager_id)) robust errors; stratified as strata(manager_id)
    assert_allclose(by.loc["clustered", "std_error"][cols], [R("intervals_cluster", "se", c)[0] for c in cols],
                    rtol=1e-7)
    assert_allclose(by.loc["stratified", "estimate"][cols], [R("intervals_strata", "coef", c)[0] for c in cols],
                    rtol=1e-8)
    assert_allclose(by["exp_estimate"], np.exp(by["estimate"]), rtol=1e-14)
    assert_allclose(by["conf_high"] - by["estimate"], 1.959963984540054 * by["std_error"], rtol=1e-12)
    assert "variance 0" in by.loc["frailty", "note"].iloc[0]
    assert any("estimated at zero" in c for c in sensitivity.attrs["caveats"])


def test_frailty_refusals(rats):
    with pytest.raises(ModelError, match="drop `cluster` and `strata`"):
        ar.fit_cox(rats, "rx", duration="time", event="status", frailty="litter", cluster="litter")
    with pytest.raises(ModelError, match="at least 2 groups"):
        ar.fit_cox(rats.assign(one=1), "rx", duration="time", event="status", frailty="one")
    with pytest.raises(ModelError, match="unknown|not in|missing|column"):
        ar.fit_cox(rats, "rx", duration="time", event="status", frailty="no_such_column")


# --------------------------------------------------------------------------- simulator ground truth
def simulate_gamma_frailty(seed, *, groups=60, size=15, beta=0.5, theta=0.5):
    """Right-censored times with hazard 0.1 Z exp(beta x), Z ~ Gamma(mean 1, variance theta) per group."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), size)
    z = rng.gamma(1 / theta, theta, groups)[g]
    x = rng.normal(size=len(g))
    t = rng.exponential(1 / (0.1 * z * np.exp(beta * x)))
    c = rng.uniform(0, 20, len(g))
    return pd.DataFrame({"time": np.minimum(t, c), "status": (t <= c).astype(int), "x": x,
                         "manager_id": [f"M{i:03d}" for i in g]})


@pytest.mark.slow
def test_frailty_recovers_the_simulated_truth():
    """20 seeds: the hazard ratio's 95% intervals cover the truth, theta is found near its true value."""
    beta, theta = 0.5, 0.5
    estimates, covered, thetas = [], 0, []
    for seed in range(20):
        res = ar.fit_cox(simulate_gamma_frailty(seed, beta=beta, theta=theta), "x", duration="time",
                         event="status", frailty="manager_id")
        row = res.tidy().iloc[0]
        estimates.append(row["estimate"])
        covered += row["conf_low"] <= beta <= row["conf_high"]
        thetas.append(res.glance()["theta"].iloc[0])
    assert abs(np.mean(estimates) - beta) < 0.05
    assert covered >= 17
    assert abs(np.mean(thetas) - theta) < 0.15


def test_weights_and_frailty_together_are_refused(rats):
    with pytest.raises(ModelError, match="cannot be combined"):
        ar.fit_cox(rats.assign(w=1.0), "rx", duration="time", event="status", frailty="litter", weights="w")
