"""Adjusted survival curves of a Cox model (cox_survival) against R's survfit(coxph, newdata)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignment_research.errors import ModelError
from alignment_research.retention import cox_survival, fit_cox, survival_at

REF = Path(__file__).parent / "reference"
TOL = 1e-6
VET_NEW = pd.DataFrame({"trt": [1, 2, 1.0], "karno": [60, 60, 90.0], "age": [60, 60, 45.0]})
HEART_NEW = pd.DataFrame({"age": [-10, 5, 0.0], "surgery": [0, 1, 0.0], "transplant": [0, 1, 1.0]})
PAIRS = [("estimate", "surv"), ("std_error", "std_err"), ("conf_low", "lower"), ("conf_high", "upper"),
         ("cumulative_hazard", "cumhaz")]


@pytest.fixture(scope="module")
def ref():
    return pd.read_csv(REF / "cox_survfit_reference.csv")


@pytest.fixture(scope="module")
def veteran_fit():
    vet = pd.read_csv(REF / "cox_survfit_veteran.csv")
    return fit_cox(vet, "trt + karno + age", duration="time", event="status")


@pytest.fixture(scope="module")
def heart():
    return pd.read_csv(REF / "cox_survfit_heart.csv")


def _compare(got, r):
    assert len(got) == len(r)
    np.testing.assert_array_equal(got["profile"].to_numpy(), r["profile"].to_numpy())
    np.testing.assert_allclose(got["time"], r["time"], rtol=0, atol=0)
    np.testing.assert_array_equal(got["at_risk"], r["n_risk"])
    np.testing.assert_array_equal(got["events"], r["n_event"])
    for ours, theirs in PAIRS:
        np.testing.assert_allclose(got[ours], r[theirs], rtol=0, atol=TOL, err_msg=ours)


def test_veteran_matches_r(veteran_fit, ref):
    _compare(cox_survival(veteran_fit, VET_NEW), ref[ref.case == "veteran"])


def test_veteran_at_chosen_times_matches_r(veteran_fit, ref):
    got = cox_survival(veteran_fit, VET_NEW, times=[0.5, 30, 100.5, 365, 999])
    _compare(got, ref[ref.case == "veteran_times"])
    assert got["estimate"].iloc[0] == 1.0 and got["std_error"].iloc[0] == 0.0  # before the first event


def test_start_stop_matches_r(heart, ref):
    fit = fit_cox(heart, "age + surgery + transplant", start="start", stop="stop", event="event")
    _compare(cox_survival(fit, HEART_NEW), ref[ref.case == "heart"])


def test_robust_fit_uses_robust_variance_as_r(heart, ref):
    fit = fit_cox(heart, "age + surgery + transplant", start="start", stop="stop", event="event", cluster="id")
    r = ref[ref.case == "heart_robust"]
    _compare(cox_survival(fit, HEART_NEW), r)
    # the robust band differs from the model-based one (so the test can tell them apart)
    assert np.max(np.abs(r["std_err"].to_numpy() - ref[ref.case == "heart"]["std_err"].to_numpy())) > 1e-3


def _efron_hazard(t, s, at):
    """Efron-type (no covariate) cumulative hazard at each time of ``at``, written out by hand."""
    h = []
    for u in at:
        n = (t >= u).sum()
        d = ((t == u) & (s == 1)).sum()
        h.append(sum(1 / (n - k / d * d) for k in range(d)) if d else 0.0)
    return np.cumsum(h)


def test_r_null_model_is_efron_exp_minus_h(ref):
    # the hand formula is R's coxph(~ 1) curve: sum over k < d of 1 / (n - k/d * d) at each event time
    vet = pd.read_csv(REF / "cox_survfit_veteran.csv")
    r = ref[ref.case == "veteran_null"]
    h = _efron_hazard(vet["time"].to_numpy(float), vet["status"].to_numpy(int), r["time"])
    np.testing.assert_allclose(np.exp(-h), r["surv"], rtol=0, atol=TOL)
    # and its std.err (no coefficient) is the square root of the summed squared Efron increments
    t, s = vet["time"].to_numpy(float), vet["status"].to_numpy(int)
    v = [sum(1 / (((t >= u).sum() - k) ** 2) for k in range(((t == u) & (s == 1)).sum())) for u in r["time"]]
    np.testing.assert_allclose(np.sqrt(np.cumsum(v)), r["std_err"], rtol=0, atol=TOL)


def test_covariate_without_effect_gives_efron_exp_minus_h():
    # the veteran data twice, once with x = 0 and once with x = 1: by symmetry beta is exactly 0,
    # so every profile's curve is the covariate-free Efron exp(-H) of the doubled data
    vet = pd.read_csv(REF / "cox_survfit_veteran.csv")
    both = pd.concat([vet.assign(x=0.0), vet.assign(x=1.0)], ignore_index=True)
    fit = fit_cox(both, "x", duration="time", event="status")
    assert abs(fit.model.beta[0]) < 1e-12
    got = cox_survival(fit, pd.DataFrame({"x": [0.0, 1.0]}))
    t, s = both["time"].to_numpy(float), both["status"].to_numpy(int)
    times = np.unique(t[s == 1])
    expected = np.exp(-_efron_hazard(t, s, times))
    for profile in (0, 1):
        np.testing.assert_allclose(got.loc[got.profile == profile, "estimate"], expected, rtol=1e-12)
    np.testing.assert_array_equal(got.loc[got.profile == 0, "events"], [((t == u) & (s == 1)).sum() for u in times])


def test_survival_at_reads_the_step_and_counts_per_100(veteran_fit):
    curves = cox_survival(veteran_fit, VET_NEW)
    at = survival_at(curves, 100.5, per=100)
    direct = cox_survival(veteran_fit, VET_NEW, times=[100.5])
    np.testing.assert_allclose(at["estimate"], direct["estimate"], rtol=1e-12)
    np.testing.assert_allclose(at["still_here"], 100 * direct["estimate"], rtol=1e-12)
    assert at["still_here_low"].iloc[0] < at["still_here"].iloc[0] < at["still_here_high"].iloc[0]


def test_default_profile_is_the_means(veteran_fit):
    # R's survfit(fit) without newdata: one curve at the column means of the data used
    vet = pd.read_csv(REF / "cox_survfit_veteran.csv")
    means = vet[["trt", "karno", "age"]].mean().to_frame().T
    default = cox_survival(veteran_fit)
    assert default["profile"].unique().tolist() == ["mean"]
    np.testing.assert_allclose(default["estimate"], cox_survival(veteran_fit, means)["estimate"], rtol=1e-12)


@pytest.mark.parametrize("newdata, message", [
    (pd.DataFrame({"trt": [1.0], "karno": [60.0]}), "lacks the model term"),
    (pd.DataFrame({"trt": [1.0], "karno": [np.nan], "age": [50.0]}), "row 0, column 'karno'"),
    (pd.DataFrame({"trt": [1.0], "karno": ["high"], "age": [50.0]}), "not a finite number"),
    (pd.DataFrame({"trt": [], "karno": [], "age": []}), "no rows"),
    ([1, 60, 50], "must be a DataFrame"),
])
def test_bad_newdata_is_named(veteran_fit, newdata, message):
    with pytest.raises(ModelError, match=message):
        cox_survival(veteran_fit, newdata)


def test_stratified_fit_and_other_results_are_refused(heart):
    fit = fit_cox(heart, "age + transplant", start="start", stop="stop", event="event", strata="surgery")
    with pytest.raises(ModelError, match="stratified"):
        cox_survival(fit, HEART_NEW)
    with pytest.raises(ModelError, match="needs a result of fit_cox"):
        cox_survival(object(), HEART_NEW)
