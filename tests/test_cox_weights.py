"""Weighted Cox models (fit_cox(weights=)) against R's coxph(weights = ), plus analytic cases.

Reference values: ``tests/reference/cox_weights.R`` (provenance in ``cox_weights_provenance.txt``),
run with ``coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-13)``.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignment_research import _cox
from alignment_research.errors import ModelError
from alignment_research.retention import cox_survival, fit_cox, ph_test

REF = Path(__file__).parent / "reference"
COEF_RTOL = 1e-9
SE_RTOL = 1e-8
VET_FORMULA = "trt + karno + age"
HEART_FORMULA = "age + surgery + transplant"
HEART_NEW = pd.DataFrame({"age": [-10, 5, 0.0], "surgery": [0, 1, 0.0], "transplant": [0, 1, 1.0]})

# case -> (data set, fit_cox keywords); the R call of each case is in cox_weights.R
CASES = {
    # coxph(Surv(time, status) ~ trt + karno + age, weights = w_int, ties = "efron")
    "vet_int_efron": ("veteran", dict(duration="time", event="status", weights="w_int")),
    "vet_int_breslow": ("veteran", dict(duration="time", event="status", weights="w_int", ties="breslow")),
    # non-integer weights: R's default variance is robust with each row its own cluster
    "vet_frac_efron": ("veteran", dict(duration="time", event="status", weights="w_frac")),
    "vet_frac_breslow": ("veteran", dict(duration="time", event="status", weights="w_frac", ties="breslow")),
    # coxph(Surv(month, status) ~ ..., weights = w_frac): heavy ties, Efron with weighted tied deaths
    "vet_month_efron": ("veteran", dict(duration="month", event="status", weights="w_frac")),
    "vet_month_int_efron": ("veteran", dict(duration="month", event="status", weights="w_int")),
    # coxph(Surv(start, stop, event) ~ age + surgery + transplant + cluster(id), weights = w)
    "heart_efron": ("heart", dict(start="start", stop="stop", event="event", weights="w", cluster="id")),
    "heart_breslow": ("heart", dict(start="start", stop="stop", event="event", weights="w", cluster="id",
                                    ties="breslow")),
}


@pytest.fixture(scope="module")
def ref():
    return pd.read_csv(REF / "cox_weights_reference.csv", keep_default_na=False)


@pytest.fixture(scope="module")
def data():
    return {"veteran": pd.read_csv(REF / "cox_weights_veteran.csv"),
            "heart": pd.read_csv(REF / "cox_weights_heart.csv")}


def _fit(data, case):
    name, kwargs = CASES[case]
    formula = HEART_FORMULA if name == "heart" else VET_FORMULA
    return fit_cox(data[name], formula, **kwargs)


def _r(ref, case, quantity):
    rows = ref[(ref["case"] == case) & (ref["quantity"] == quantity)]
    return rows.set_index("term")["value"].astype(float)


@pytest.mark.parametrize("case", list(CASES))
def test_coefficients_and_errors_match_r(data, ref, case):
    res = _fit(data, case)
    tidy = res.tidy().set_index("term")
    coef = _r(ref, case, "coef")
    # coef(fit)
    np.testing.assert_allclose(tidy.loc[coef.index, "estimate"], coef, rtol=COEF_RTOL)
    # sqrt(diag(fit$var)): model-based for whole-number weights, robust (weighted dfbeta) otherwise
    np.testing.assert_allclose(tidy.loc[coef.index, "std_error"], _r(ref, case, "se"), rtol=SE_RTOL)
    # sqrt(diag(fit$naive.var))
    np.testing.assert_allclose(np.sqrt(np.diag(res.model.naive_var)), _r(ref, case, "naive_se"), rtol=SE_RTOL)
    g = res.glance().iloc[0]
    # fit$loglik
    np.testing.assert_allclose(g["log_likelihood"], _r(ref, case, "loglik").iloc[0], rtol=1e-12)
    np.testing.assert_allclose(g["log_likelihood_null"], _r(ref, case, "loglik0").iloc[0], rtol=1e-12)
    # fit$concordance["concordance"]: pairs weighted by the product of the weights
    np.testing.assert_allclose(g["concordance"], _r(ref, case, "concordance").iloc[0], rtol=1e-12)
    # fit$n, fit$nevent (unweighted counts)
    assert g["n"] == _r(ref, case, "n").iloc[0] and g["events"] == _r(ref, case, "nevent").iloc[0]
    assert g["weights"] == CASES[case][1]["weights"]


def test_reported_variance_follows_rs_default(data):
    assert _fit(data, "vet_int_efron").glance()["cov_type"].iloc[0] == "model-based"
    assert _fit(data, "vet_frac_efron").glance()["cov_type"].iloc[0] == "robust (non-integer weights)"
    assert _fit(data, "heart_efron").glance()["cov_type"].iloc[0] == "cluster: id"


@pytest.mark.parametrize("duration", ["time", "month"])
def test_integer_weights_equal_repeated_rows_with_breslow_ties(data, duration):
    # Breslow: a weight k is k copies of the row (estimates, model-based errors, log-likelihood, concordance)
    vet = data["veteran"]
    weighted = fit_cox(vet, VET_FORMULA, duration=duration, event="status", weights="w_int", ties="breslow")
    repeated = vet.loc[vet.index.repeat(vet["w_int"])].reset_index(drop=True)
    plain = fit_cox(repeated, VET_FORMULA, duration=duration, event="status", ties="breslow")
    np.testing.assert_allclose(weighted.tidy()["estimate"], plain.tidy()["estimate"], rtol=1e-10)
    np.testing.assert_allclose(weighted.tidy()["std_error"], plain.tidy()["std_error"], rtol=1e-9)
    for column in ("log_likelihood", "log_likelihood_null", "concordance"):
        np.testing.assert_allclose(weighted.glance()[column], plain.glance()[column], rtol=1e-12, err_msg=column)


def test_integer_weights_are_not_copies_under_efron(data):
    # Efron: copies of an event are tied deaths, a weighted event is one death (R's agfit4 does the same:
    # the R reference case vet_int_efron is the weighted fit), so the two differ
    vet = data["veteran"]
    weighted = fit_cox(vet, VET_FORMULA, duration="time", event="status", weights="w_int")
    repeated = vet.loc[vet.index.repeat(vet["w_int"])].reset_index(drop=True)
    plain = fit_cox(repeated, VET_FORMULA, duration="time", event="status")
    assert np.max(np.abs(weighted.tidy()["estimate"] - plain.tidy()["estimate"])) > 1e-3


def test_unit_weights_equal_the_unweighted_fit(data):
    vet = data["veteran"].assign(one=1.0)
    a = fit_cox(vet, VET_FORMULA, duration="month", event="status", weights="one")
    b = fit_cox(vet, VET_FORMULA, duration="month", event="status")
    np.testing.assert_allclose(a.tidy()["estimate"], b.tidy()["estimate"], rtol=1e-12)
    np.testing.assert_allclose(a.tidy()["std_error"], b.tidy()["std_error"], rtol=1e-11)
    np.testing.assert_allclose(a.glance()["concordance"], b.glance()["concordance"], rtol=1e-13)
    assert "weights" not in b.glance().columns


def test_scaling_weights_keeps_estimates_and_robust_errors(data):
    heart = data["heart"]
    a = fit_cox(heart, HEART_FORMULA, start="start", stop="stop", weights="w", cluster="id")
    b = fit_cox(heart.assign(w=heart["w"] * 3.7), HEART_FORMULA, start="start", stop="stop", weights="w",
                cluster="id")
    np.testing.assert_allclose(a.tidy()["estimate"], b.tidy()["estimate"], rtol=1e-10)
    np.testing.assert_allclose(a.tidy()["std_error"], b.tidy()["std_error"], rtol=1e-9)


def test_zero_weights_drop_the_rows(data):
    vet = data["veteran"].copy()
    vet["w0"] = vet["w_frac"].where(vet.index % 5 != 0, 0.0)
    got = fit_cox(vet, VET_FORMULA, duration="month", event="status", weights="w0")
    kept = fit_cox(vet[vet["w0"] > 0], VET_FORMULA, duration="month", event="status", weights="w0")
    np.testing.assert_allclose(got.tidy()["estimate"], kept.tidy()["estimate"], rtol=1e-13)
    np.testing.assert_allclose(got.tidy()["std_error"], kept.tidy()["std_error"], rtol=1e-13)
    assert got.glance()["n"].iloc[0] == (vet["w0"] > 0).sum()


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf, "x"])
def test_bad_weights_name_column_and_row(data, bad):
    vet = data["veteran"].astype({"w_frac": object})
    vet.loc[7, "w_frac"] = bad
    with pytest.raises(ModelError, match=r"'w_frac', row 7"):
        fit_cox(vet, VET_FORMULA, duration="time", event="status", weights="w_frac")


def test_unknown_weights_column(data):
    with pytest.raises(ModelError, match="nope"):
        fit_cox(data["veteran"], VET_FORMULA, duration="time", event="status", weights="nope")


def test_weighted_survival_curves_match_r(data):
    # survfit(coxph(..., weights = w), newdata = heart_new, conf.type = "log") and at the weighted means
    sv = pd.read_csv(REF / "cox_weights_survfit.csv")
    fit = _fit(data, "heart_efron")
    for case, newdata in (("heart_efron", HEART_NEW), ("heart_efron_mean", None)):
        r = sv[sv["case"] == case]
        got = cox_survival(fit, newdata)
        assert len(got) == len(r)
        np.testing.assert_array_equal(got["time"], r["time"])
        np.testing.assert_allclose(got["estimate"], r["surv"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(got["cumulative_hazard"], r["cumhaz"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got["std_error"], r["std_err"], rtol=1e-8, atol=1e-12)


def test_ph_test_refuses_a_weighted_fit(data):
    with pytest.raises(ModelError, match="weighted"):
        ph_test(_fit(data, "heart_efron"))


def test_weighted_concordance_by_hand():
    # every (event, at-risk row) pair counted with w_event * w_row; tied events not comparable
    rng = np.random.default_rng(3)
    n = 60
    start = rng.integers(0, 5, n).astype(float)
    stop = start + rng.integers(1, 8, n)
    event = rng.random(n) < 0.6
    eta = rng.integers(0, 6, n).astype(float)  # ties in the predictor
    w = rng.uniform(0.2, 2.0, n)
    cd = _cox.prepare(eta[:, None], start, stop, event, weights=w)
    got = _cox.concordance(cd, eta[cd.rows])
    conc = disc = tied = 0.0
    for i in np.flatnonzero(event):
        t = stop[i]
        for j in range(n):
            if j == i or not (start[j] < t <= stop[j]) or (event[j] and stop[j] == t):
                continue
            pw = w[i] * w[j]
            if eta[i] > eta[j]:
                conc += pw
            elif eta[i] < eta[j]:
                disc += pw
            else:
                tied += pw
    np.testing.assert_allclose([got["concordant"], got["discordant"], got["tied_x"]], [conc, disc, tied],
                               rtol=1e-12)


def test_weighted_score_residuals_sum_to_score(data):
    heart = data["heart"]
    X = heart[["age", "surgery", "transplant"]].to_numpy(float)
    cd = _cox.prepare(X, heart["start"], heart["stop"], heart["event"], weights=heart["w"])
    ev = _cox.evaluate(cd, np.array([0.03, -0.5, 0.1]))
    np.testing.assert_allclose((_cox.score_residuals(cd, ev) * cd.w[:, None]).sum(axis=0), ev.grad,
                               rtol=1e-10, atol=1e-12)


def test_weighted_information_is_the_score_derivative(data):
    heart = data["heart"]
    X = heart[["age", "surgery", "transplant"]].to_numpy(float)
    for ties in ("efron", "breslow"):
        cd = _cox.prepare(X, heart["start"], heart["stop"], heart["event"], weights=heart["w"], ties=ties)
        beta = np.array([0.03, -0.5, 0.1])
        info = _cox.evaluate(cd, beta).info
        h = 1e-6
        num = np.column_stack([(_cox.evaluate(cd, beta - h * e).grad - _cox.evaluate(cd, beta + h * e).grad) / (2 * h)
                               for e in np.eye(3)])
        np.testing.assert_allclose(info, num, rtol=1e-6, atol=1e-8)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_allclose(
                _cox.evaluate(cd, beta + 1e-6).loglik - _cox.evaluate(cd, beta).loglik,
                1e-6 * _cox.evaluate(cd, beta).grad.sum(), rtol=1e-4)
