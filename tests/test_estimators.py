"""The shared engines agree with statsmodels and with algebra: logistic fit, demeaning, CR1."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from alignment_research._estimators import cluster_codes, cluster_robust_cov, demean, fit_logistic


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 600
    x1, x2 = rng.normal(size=n), rng.integers(0, 2, n).astype(float)
    groups = rng.integers(0, 40, n)
    eta = -0.4 + 0.8 * x1 - 0.5 * x2 + rng.normal(0, 0.5, 40)[groups]
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    X = np.column_stack([np.ones(n), x1, x2])
    return X, y, groups


def test_logistic_matches_statsmodels_to_1e9(data):
    X, y, groups = data
    ours = fit_logistic(X, y)
    ref = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-14, maxiter=100)
    assert ours.converged and not ours.separated
    np.testing.assert_allclose(ours.params, ref.params, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.std_errors, ref.bse, rtol=1e-9)
    assert ours.log_likelihood == pytest.approx(ref.llf, abs=1e-8)


def test_logistic_cr1_matches_statsmodels_cluster(data):
    X, y, groups = data
    fit = fit_logistic(X, y)
    cov = cluster_robust_cov(fit.scores(X, y), fit.cov, groups)
    ref = sm.Logit(y, X).fit(disp=0, method="newton", tol=1e-14, cov_type="cluster", cov_kwds={"groups": groups})
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), ref.bse, rtol=1e-8)


def test_weighted_logistic_equals_duplicated_rows():
    X = np.column_stack([np.ones(5), [0.0, 1, 2, 3, 4]])
    y = np.array([0.0, 0, 1, 0, 1])
    w = np.array([1.0, 2, 1, 3, 2])
    rows = np.repeat(np.arange(5), w.astype(int))
    a, b = fit_logistic(X, y, weights=w), fit_logistic(X[rows], y[rows])
    np.testing.assert_allclose(a.params, b.params, atol=1e-10)
    np.testing.assert_allclose(a.cov, b.cov, atol=1e-10)


def test_complete_separation_is_flagged():
    X = np.column_stack([np.ones(8), [0.0, 0, 0, 0, 1, 1, 1, 1]])
    y = np.array([0.0, 0, 0, 0, 1, 1, 1, 1])
    assert fit_logistic(X, y).separated


def test_quasi_complete_separation_is_flagged():
    X = np.column_stack([np.ones(8), [0.0, 0, 0, 0, 1, 1, 1, 1], [0.3, 1.2, 0.1, 0.8, 0.5, 0.9, 0.2, 0.7]])
    y = np.array([0.0, 1, 0, 1, 1, 1, 1, 1])  # x1 = 1 only ever has events
    assert fit_logistic(X, y).separated


def test_logistic_known_answer_two_by_two():
    # a 2x2 table: the slope is the log odds ratio (3/1)/(2/2) = log 3
    X = np.column_stack([np.ones(8), [0.0, 0, 0, 0, 1, 1, 1, 1]])
    y = np.array([0.0, 0, 1, 1, 1, 1, 1, 0])
    fit = fit_logistic(X, y)
    assert fit.params[1] == pytest.approx(np.log(3), abs=1e-12)
    assert fit.std_errors[1] == pytest.approx(np.sqrt(1 / 2 + 1 / 2 + 1 / 3 + 1), abs=1e-10)


def test_demean_one_factor_is_exact_and_two_factors_match_dummies():
    rng = np.random.default_rng(3)
    n = 200
    a, b = rng.integers(0, 7, n), rng.integers(0, 5, n)
    v = rng.normal(size=(n, 2))
    one = demean(v, a)
    expected = v - pd.DataFrame(v).groupby(a).transform("mean").to_numpy()
    np.testing.assert_allclose(one, expected, atol=1e-14)
    two = demean(v, [a, b])
    D = np.column_stack([np.eye(7)[a], np.eye(5)[b][:, 1:]])
    resid = v - D @ np.linalg.lstsq(D, v, rcond=None)[0]
    np.testing.assert_allclose(two, resid, atol=1e-8)
    np.testing.assert_allclose(demean(v[:, 0], a), expected[:, 0], atol=1e-14)


def test_cr1_matches_statsmodels_ols_cluster(data):
    X, _, groups = data
    rng = np.random.default_rng(5)
    y = X @ np.array([1.0, 0.5, -0.2]) + rng.normal(size=len(X))
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    resid = y - X @ beta
    cov = cluster_robust_cov(X * resid[:, None], np.linalg.inv(X.T @ X), groups)
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
    np.testing.assert_allclose(cov, ref.cov_params(), rtol=1e-10)


def test_cluster_codes_are_dense_integers():
    assert cluster_codes(["m2", "m1", "m2", 3]).tolist() == [0, 1, 0, 2]


# --------------------------------------------------------------------------- multiway clustering

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def petersen():
    """sandwich's PetersenCL plus yb = (y > 0) and region = (firm + year) mod 5 (tests/reference/multiway.R)."""
    d = pd.read_csv(REF / "multiway_data.csv")
    X = np.column_stack([np.ones(len(d)), d["x"]])
    pinv = np.linalg.pinv(X)
    resid = d["y"].to_numpy() - X @ (pinv @ d["y"].to_numpy())
    logit = fit_logistic(X, d["yb"].to_numpy(float))
    yb = d["yb"].to_numpy(float)
    pieces = {"lm": (X * resid[:, None], pinv @ pinv.T), "logit": (logit.scores(X, yb), logit.cov)}
    return d, pieces


_REF_CASES = pd.read_csv(REF / "multiway_reference.csv")
_REF_CASES = _REF_CASES[_REF_CASES["col"] != "estimate"]


@pytest.mark.parametrize("case", list(dict.fromkeys(_REF_CASES["case"])))
def test_multiway_matches_sandwich_vcovcl_on_petersen(petersen, case):
    """Every entry of ``vcovCL(fit, cluster = ~ ..., type = "HC1"[, multi0, fix])`` (tests/reference/multiway.R)."""
    d, pieces = petersen
    ref = _REF_CASES[_REF_CASES["case"] == case]
    first = ref.iloc[0]
    codes = [cluster_codes(d[c.strip()]) for c in first["cluster"].split("+")]
    cov = cluster_robust_cov(*pieces[first["model"]], codes, multi0=bool(first["multi0"]), fix=bool(first["fix"]))
    np.testing.assert_allclose(cov.ravel(), ref["value"].to_numpy(float), rtol=1e-9, atol=0)


def test_multiway_hand_computed_two_by_two():
    # ways a = [0,0,1,1] (sums 0, 0) and b = [0,1,0,1] (sums 3, -3); every cell is one row (sum of squares 10)
    s = np.array([[1.0], [-1.0], [2.0], [-2.0]])
    cov = cluster_robust_cov(s, np.eye(1), [np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])])
    # 0 * 2/1 + 18 * 2/1 - 10 * 4/3, times (N-1)/(N-K) = 3/3
    assert cov[0, 0] == pytest.approx(36 - 40 / 3, rel=1e-14)


def test_single_cluster_in_a_list_is_bit_identical(data):
    X, y, groups = data
    fit = fit_logistic(X, y)
    one = cluster_robust_cov(fit.scores(X, y), fit.cov, groups)
    assert np.array_equal(cluster_robust_cov(fit.scores(X, y), fit.cov, [groups]), one)


def test_two_way_with_a_nested_way_equals_one_way(data):
    # b nested in a: the a-b cells are b's clusters, so the b piece and the intersection cancel
    X, y, groups = data
    fit = fit_logistic(X, y)
    coarse = groups // 8
    one = cluster_robust_cov(fit.scores(X, y), fit.cov, coarse)
    two = cluster_robust_cov(fit.scores(X, y), fit.cov, [coarse, groups])
    np.testing.assert_allclose(two, one, rtol=1e-12)


def test_multiway_fix_zeroes_negative_eigenvalues():
    # both ways sum to zero, the cells do not: the inclusion-exclusion variance is -10 * 4/3 * 3/3 < 0
    s = np.array([[1.0], [-1.0], [-1.0], [1.0]])
    ways = [np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])]
    assert cluster_robust_cov(s, np.eye(1), ways)[0, 0] == pytest.approx(-16 / 3, rel=1e-14)
    assert cluster_robust_cov(s, np.eye(1), ways, fix=True)[0, 0] == 0.0


def test_multi0_uses_hc0_for_the_intersection():
    s = np.array([[1.0], [-1.0], [2.0], [-2.0]])
    cov = cluster_robust_cov(s, np.eye(1), [np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])], n_params=2, multi0=True)
    # (0 * 2 + 18 * 2) * (N-1)/(N-K) = 36 * 3/2, minus the HC0 piece 10 (no factor at all)
    assert cov[0, 0] == pytest.approx(36 * 1.5 - 10, rel=1e-14)


def test_logistic_summed_in_blocks_matches_statsmodels_on_many_rows():
    # more rows than one block of a Newton step (16,384): the blockwise sums are the whole-array ones
    rng = np.random.default_rng(3)
    n = 40_000
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 3, n).astype(float)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3.0 + 0.5 * X[:, 1] - 0.3 * X[:, 2])))).astype(float)
    w = rng.uniform(0.5, 2.0, n)
    ours = fit_logistic(X, y, weights=w)
    ref = sm.GLM(y, X, family=sm.families.Binomial(), freq_weights=w).fit(tol=1e-14, maxiter=100)
    np.testing.assert_allclose(ours.params, ref.params, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.std_errors, ref.bse, rtol=1e-8)
    assert ours.log_likelihood == pytest.approx(ref.llf, abs=1e-6)


def test_intersection_codes_number_cells_as_unique_rows():
    # the cells' numbering orders the multiway cluster sums, so it must be np.unique(axis=0)'s exactly
    from alignment_research._estimators import _intersection_codes

    rng = np.random.default_rng(3)
    for size in (5, 40, 3000):
        codes = [np.unique(rng.integers(0, size, 500), return_inverse=True)[1] for _ in range(3)]
        for ways in (codes[:2], codes):
            want = np.unique(np.column_stack(ways), axis=0, return_inverse=True)[1].reshape(-1)
            assert np.array_equal(_intersection_codes(ways), want)
    assert _intersection_codes([np.array([1, 0, 1, 0]), np.array([0, 0, 2, 0])]).tolist() == [1, 0, 2, 0]
