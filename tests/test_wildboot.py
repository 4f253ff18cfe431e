"""The wild cluster restricted bootstrap: algebra, R, and coverage with few treated managers (issue 16).

Three checks, as for every estimator here:

* analytic: the closed form equals refitting every bootstrap sample with all
  the dummies (full enumeration, so exactly); integer weights equal
  duplicated rows; scale and relabelling invariance; the observed t is CR1's;
* R: ``tests/reference/wildboot.R`` codes the WCR bootstrap by brute force in
  base R (``lm`` with the dummies, all ``2^12`` Rademacher sign patterns) on
  ``datasets::CO2`` and stores p-values and inverted intervals;
* recovery (slow): the programme's engagement effect under the default truth.
"""

import os
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research._estimators import WILD_WEIGHTS, cluster_robust_cov, demean, wild_cluster_bootstrap
from alignment_research.executors import Task, run_tasks

REFERENCE = Path(__file__).parent / "reference"


# --------------------------------------------------------------------------- brute force, for the analytic checks


def _dummies(codes: list[np.ndarray]) -> np.ndarray:
    """The full dummy matrix of several sets of fixed effects, collinear columns dropped."""
    D = np.column_stack([np.eye(c.max() + 1)[c] for c in codes])
    keep = []
    for j in range(D.shape[1]):
        if np.linalg.matrix_rank(D[:, keep + [j]]) == len(keep) + 1:
            keep.append(j)
    return D[:, keep]


def _brute_force_p(y, X, clusters, column, null, *, D=None, weights=None):
    """Symmetric WCR p-value by refitting every Rademacher pattern with the dummies (no algebraic shortcut)."""
    full = X if D is None else np.column_stack([X, D])
    root = np.ones(len(y)) if weights is None else np.sqrt(weights)
    ys, Xs = y * root, full * root[:, None]
    g, n, k = clusters.max() + 1, len(y), full.shape[1]
    factor = g / (g - 1) * (n - 1) / (n - k)

    def t_of(yy):
        bread = np.linalg.inv(Xs.T @ Xs)
        beta = bread @ Xs.T @ yy
        e = yy - Xs @ beta
        cov = cluster_robust_cov(Xs * e[:, None], bread, clusters)
        return (beta[column] - null) / np.sqrt(cov[column, column] / (g / (g - 1) * (n - 1) / (n - k)) * factor)

    t = t_of(ys)
    rest = np.delete(Xs, column, axis=1)
    yr = ys - null * Xs[:, column]
    u = yr - rest @ np.linalg.lstsq(rest, yr, rcond=None)[0]
    fitted = ys - u
    t_star = np.array([t_of(fitted + np.asarray(w)[clusters] * u) for w in product([-1.0, 1.0], repeat=g)])
    return float(np.mean(np.abs(t_star) >= abs(t) * (1 - 1e-10)))


@pytest.fixture(scope="module")
def panel():
    """7 clusters, 3 of them treated, a second fixed effect (wave) that crosses the clusters, unequal weights."""
    rng = np.random.default_rng(20)
    clusters = np.repeat(np.arange(7), 6)
    wave = np.tile(np.arange(3), 14)
    treated = (clusters < 3).astype(float) * (wave >= 1)
    z = rng.normal(size=len(clusters))
    y = 0.4 * treated + 0.3 * z + rng.normal(size=7)[clusters] + 0.2 * wave + rng.normal(size=len(clusters))
    weights = rng.uniform(0.3, 2.0, len(clusters))
    return dict(y=y, X=np.column_stack([treated, z]), clusters=clusters, fixed=[clusters, wave], weights=weights)


# --------------------------------------------------------------------------- analytic


def _brute_force_two_way_p(y, X, boot, ways, column, null, *, D, weights):
    """As `_brute_force_p`, with the weights drawn per ``boot`` cluster and every t from the multiway CR1 of ``ways``
    (``cluster_robust_cov`` with a list, i.e. sandwich's ``vcovCL(cluster = ~ a + b)``)."""
    full = np.column_stack([X, D])
    root = np.sqrt(weights)
    ys, Xs = y * root, full * root[:, None]

    def t_of(yy):
        bread = np.linalg.inv(Xs.T @ Xs)
        beta = bread @ Xs.T @ yy
        cov = cluster_robust_cov(Xs * (yy - Xs @ beta)[:, None], bread, ways)
        return (beta[column] - null) / np.sqrt(cov[column, column])

    t = t_of(ys)
    rest = np.delete(Xs, column, axis=1)
    yr = ys - null * Xs[:, column]
    u = yr - rest @ np.linalg.lstsq(rest, yr, rcond=None)[0]
    t_star = np.array([t_of(ys - u + np.asarray(w)[boot] * u) for w in product([-1.0, 1.0], repeat=boot.max() + 1)])
    return float(np.mean(np.abs(t_star) >= abs(t) * (1 - 1e-10))), t


@pytest.mark.parametrize("null", [0.0, 0.9])
def test_two_way_t_with_weights_by_a_crossing_dimension_equals_refitting_every_pattern(panel, null):
    """The engagement model's bootstrap: weights drawn per matched set (here 5 'sets' crossing the 7 clusters), each
    draw's t from the two-way CR1 (clusters and sets), fixed effects purged, WLS: equal to brute force."""
    sets = np.arange(len(panel["y"])) % 5
    w = panel["weights"]
    Xd = demean(panel["X"], panel["fixed"], weights=w)
    yd = demean(panel["y"], panel["fixed"], weights=w)
    D = _dummies(panel["fixed"])
    ways = [panel["clusters"], sets]
    res = wild_cluster_bootstrap(yd, Xd, sets, column=0, weights=w, fixed=panel["fixed"], null=null,
                                 n_params=2 + D.shape[1], weight_type="rademacher", variance_clusters=ways)
    expected, t = _brute_force_two_way_p(panel["y"], panel["X"], sets, ways, 0, null, D=D, weights=w)
    assert res.enumerated and res.n_boot == 2**5
    assert res.p_value == expected
    assert res.statistic == pytest.approx(t, rel=1e-10)
    # the two-way t is not the one-way one: the second dimension enters the variance
    one_way = wild_cluster_bootstrap(yd, Xd, sets, column=0, weights=w, fixed=panel["fixed"], null=null,
                                     n_params=2 + D.shape[1], weight_type="rademacher")
    assert abs(one_way.std_error / res.std_error - 1) > 0.01
    # variance_clusters equal to the bootstrap's own clusters is the one-way bootstrap, to the last digit
    same = wild_cluster_bootstrap(yd, Xd, sets, column=0, weights=w, fixed=panel["fixed"], null=null,
                                  n_params=2 + D.shape[1], weight_type="rademacher", variance_clusters=[sets])
    assert (same.p_value, same.conf_low, same.conf_high) == (one_way.p_value, one_way.conf_low, one_way.conf_high)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("null", [0.0, 0.9, -0.5])
def test_closed_form_equals_refitting_every_pattern_with_the_dummies(panel, weighted, null):
    w = panel["weights"] if weighted else None
    Xd = demean(panel["X"], panel["fixed"], weights=w)
    yd = demean(panel["y"], panel["fixed"], weights=w)
    D = _dummies(panel["fixed"])
    res = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, weights=w, fixed=panel["fixed"], null=null,
                                 n_params=2 + D.shape[1], weight_type="rademacher")
    assert res.enumerated and res.n_boot == 2**7
    expected = _brute_force_p(panel["y"], panel["X"], panel["clusters"], 0, null, D=D, weights=w)
    assert res.p_value == expected
    # a non-nested fixed effect (wave) must be purged from each sample's residuals: without `fixed` it is not
    if not weighted and null == 0.0:
        loose = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, null=null, weight_type="rademacher")
        assert abs(loose.conf_high - res.conf_high) > 0.01 * res.std_error


def test_observed_t_and_std_error_are_cr1(panel):
    """The CR1 of the absorbed fit, with K counting the dummies: statsmodels' cov_type="cluster" on the dummies."""
    import statsmodels.api as sm

    D = _dummies(panel["fixed"])
    full = np.column_stack([panel["X"], D])
    ref = sm.WLS(panel["y"], full, weights=panel["weights"]).fit(cov_type="cluster",
                                                                 cov_kwds={"groups": panel["clusters"]})
    w = panel["weights"]
    res = wild_cluster_bootstrap(demean(panel["y"], panel["fixed"], weights=w),
                                 demean(panel["X"], panel["fixed"], weights=w), panel["clusters"], column=0,
                                 weights=w, fixed=panel["fixed"], n_params=full.shape[1], null=0.25)
    assert res.estimate == pytest.approx(ref.params[0], rel=1e-10)
    assert res.std_error == pytest.approx(ref.bse[0], rel=1e-9)
    assert res.statistic == pytest.approx((ref.params[0] - 0.25) / ref.bse[0], rel=1e-9)


def test_p_value_is_one_at_the_estimate_and_the_interval_inverts_the_test(panel):
    kw = dict(column=0, fixed=panel["fixed"], weight_type="webb", rng=3)
    yd, Xd = demean(panel["y"], panel["fixed"]), demean(panel["X"], panel["fixed"])
    res = wild_cluster_bootstrap(yd, Xd, panel["clusters"], **kw)
    assert not res.enumerated and res.n_boot == 9999
    at = wild_cluster_bootstrap(yd, Xd, panel["clusters"], null=res.estimate, **kw)
    assert at.p_value == 1.0
    step = 1e-6 * res.std_error
    for bound, outward in ((res.conf_low, -step), (res.conf_high, step)):
        inside = wild_cluster_bootstrap(yd, Xd, panel["clusters"], null=bound - outward, **kw).p_value
        outside = wild_cluster_bootstrap(yd, Xd, panel["clusters"], null=bound + outward, **kw).p_value
        assert inside > 0.05 >= outside
    assert res.conf_low < res.estimate < res.conf_high


def test_rademacher_enumerates_and_its_p_value_is_a_multiple_of_one_over_2_to_the_g(panel):
    yd, Xd = demean(panel["y"], panel["fixed"]), demean(panel["X"], panel["fixed"])
    res = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, fixed=panel["fixed"], weight_type="rademacher")
    assert res.enumerated and res.n_boot == 128
    assert res.p_value * 128 == round(res.p_value * 128)
    assert "all 128 weight patterns of 7 clusters enumerated" in res.method
    # the draws w = 1 and w = -1 reproduce the observed |t|: the p-value is at least 2 / 2^G
    far = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, fixed=panel["fixed"],
                                 weight_type="rademacher", null=res.estimate + 50 * res.std_error)
    assert far.p_value >= 2 / 128
    # Webb has 6^G patterns: enumerated up to G = 5 with 9,999 draws, drawn above
    assert wild_cluster_bootstrap(yd[:30], Xd[:30], panel["clusters"][:30], column=0).enumerated
    assert WILD_WEIGHTS["webb"].var() == pytest.approx(1.0) and WILD_WEIGHTS["webb"].mean() == 0.0


def test_invariant_to_scale_shift_and_cluster_labels(panel):
    yd, Xd = demean(panel["y"], panel["fixed"]), demean(panel["X"], panel["fixed"])
    kw = dict(column=0, fixed=panel["fixed"], weight_type="rademacher")
    base = wild_cluster_bootstrap(yd, Xd, panel["clusters"], **kw)
    scaled = wild_cluster_bootstrap(3.0 * yd, Xd, panel["clusters"], **kw)
    assert scaled.p_value == base.p_value
    np.testing.assert_allclose([scaled.conf_low, scaled.conf_high], [3 * base.conf_low, 3 * base.conf_high],
                               rtol=1e-7)
    # y + c x_k moves the estimate and the interval by c, and the p-value of null + c is the old one
    moved = wild_cluster_bootstrap(yd + 0.7 * Xd[:, 0], Xd, panel["clusters"], null=0.7, **kw)
    assert moved.p_value == base.p_value
    np.testing.assert_allclose([moved.conf_low, moved.conf_high], [base.conf_low + 0.7, base.conf_high + 0.7],
                               atol=1e-7 * base.std_error)
    relabel = np.array([4, 6, 0, 2, 1, 5, 3])[panel["clusters"]]
    fixed = [relabel, panel["fixed"][1]]
    other = wild_cluster_bootstrap(yd, Xd, relabel, column=0, fixed=fixed, weight_type="rademacher")
    assert other.p_value == base.p_value
    assert other.conf_high == pytest.approx(base.conf_high, rel=1e-9)


def test_p_value_and_interval_do_not_depend_on_the_cr1_factor(panel):
    """``n_params`` (K of ``(N-1)/(N-K)``, the absorbed dummies counted) scales the CR1 standard error, and so
    the normal interval, but t and every t* alike: the bootstrap's p-value and interval stay put. Why the
    engagement model's two-way CR1 interval (K counts ~1,360 person x set and wave x set dummies of ~3,600 rows,
    standard error x 1.26) is wider than its bootstrap interval (test_wild_bootstrap_restores_coverage_...)."""
    w = panel["weights"]
    yd, Xd = demean(panel["y"], panel["fixed"], weights=w), demean(panel["X"], panel["fixed"], weights=w)
    kw = dict(column=0, weights=w, fixed=panel["fixed"], weight_type="rademacher", null=0.1)
    n, k_absorbed = len(yd), _dummies(panel["fixed"]).shape[1]
    few = wild_cluster_bootstrap(yd, Xd, panel["clusters"], **kw)  # K = 2, the columns of X
    many = wild_cluster_bootstrap(yd, Xd, panel["clusters"], n_params=2 + k_absorbed, **kw)
    assert many.std_error / few.std_error == pytest.approx(np.sqrt((n - 2) / (n - 2 - k_absorbed)), rel=1e-12)
    assert many.std_error / few.std_error > 1.1  # 9 dummies of 42 rows
    assert many.p_value == few.p_value
    assert many.conf_low == pytest.approx(few.conf_low, abs=1e-8 * few.std_error)
    assert many.conf_high == pytest.approx(few.conf_high, abs=1e-8 * few.std_error)


def test_integer_weights_equal_duplicated_rows(panel):
    w = np.tile([1.0, 2.0, 3.0], 14)
    rows = np.repeat(np.arange(len(w)), w.astype(int))
    yw, Xw = demean(panel["y"], panel["fixed"], weights=w), demean(panel["X"], panel["fixed"], weights=w)
    weighted = wild_cluster_bootstrap(yw, Xw, panel["clusters"], column=0, weights=w, fixed=panel["fixed"],
                                      weight_type="rademacher")
    fixed = [f[rows] for f in panel["fixed"]]
    dup = wild_cluster_bootstrap(demean(panel["y"][rows], fixed), demean(panel["X"][rows], fixed),
                                 panel["clusters"][rows], column=0, fixed=fixed, weight_type="rademacher")
    assert weighted.estimate == pytest.approx(dup.estimate, rel=1e-10)
    assert weighted.p_value == dup.p_value
    assert weighted.conf_low == pytest.approx(dup.conf_low, rel=1e-7)


def test_deterministic_given_the_seed_and_errors(panel):
    yd, Xd = demean(panel["y"], panel["fixed"]), demean(panel["X"], panel["fixed"])
    a = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, rng=5)
    b = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, rng=np.random.default_rng(5))
    c = wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, rng=6)
    assert a == b and a.p_value != c.p_value
    with pytest.raises(ar.ModelError, match=r"`weight_type` must be one of \['rademacher', 'webb'\], but 'mammen'"):
        wild_cluster_bootstrap(yd, Xd, panel["clusters"], column=0, weight_type="mammen")
    with pytest.raises(ar.ModelError, match="at least two clusters"):
        wild_cluster_bootstrap(yd, Xd, np.zeros(len(yd), int), column=0)


# --------------------------------------------------------------------------- R (base R brute force, stored)


def test_matches_brute_force_wcr_in_r_on_co2():
    """``tests/reference/wildboot.R``: CO2, uptake ~ chilled + log(conc) | conc FE, clusters = Plant (12)."""
    ref = pd.read_csv(REFERENCE / "wildboot_reference.csv").set_index(["case", "quantity"])["value"]
    co2 = pd.read_csv(REFERENCE / "wildboot_co2.csv")
    clusters = pd.factorize(co2["Plant"])[0]
    conc = pd.factorize(co2["conc"])[0]
    X = np.column_stack([(co2["Treatment"] == "chilled").astype(float), (co2["Type"] == "Mississippi").astype(float)])
    for case, w in (("unweighted", None), ("weighted", co2["w"].to_numpy(float))):
        res = wild_cluster_bootstrap(demean(co2["uptake"].to_numpy(float), conc, weights=w),
                                     demean(X, conc, weights=w), clusters, column=0, weights=w, fixed=conc,
                                     n_params=2 + 7, weight_type="rademacher", alpha=0.05)
        assert res.n_boot == ref[case, "n_boot"] == 4096
        assert res.estimate == pytest.approx(ref[case, "estimate"], rel=1e-10)  # coef(lm(...))["chilled"]
        assert res.std_error == pytest.approx(ref[case, "std_error"], rel=1e-9)  # CR1 by hand
        assert res.p_value == pytest.approx(ref[case, "p_value"], abs=1e-12)  # mean(abs(t*) >= abs(t))
        at = wild_cluster_bootstrap(demean(co2["uptake"].to_numpy(float), conc, weights=w),
                                    demean(X, conc, weights=w), clusters, column=0, weights=w, fixed=conc,
                                    weight_type="rademacher", null=-5.0)
        assert at.p_value == pytest.approx(ref[case, "p_value_minus5"], abs=1e-12)  # pval(-5)
        assert res.conf_low == pytest.approx(ref[case, "conf_low"], abs=1e-5 * res.std_error)
        assert res.conf_high == pytest.approx(ref[case, "conf_high"], abs=1e-5 * res.std_error)


# --------------------------------------------------------------------------- recovery (slow)


def _few_treated_panel(rng, n_clusters=30, n_treated=4, waves=6) -> pd.DataFrame:
    """Teams of 3-12 people over 6 waves; 4 of 30 managers treated from wave 3 (effect 0.5), manager-specific trends."""
    rows = []
    for m in range(n_clusters):
        size, level, trend = rng.integers(3, 13), rng.normal(0, 0.3), rng.normal(0, 0.15)
        for p in range(size):
            person = rng.normal(0, 0.3)
            for w in range(waves):
                post = float(m < n_treated and w >= 3)
                y = 0.5 * post + level + person + (0.1 + trend) * w + rng.normal(0, 0.3)
                rows.append((m, f"{m}-{p}", w, post, y))
    return pd.DataFrame(rows, columns=["manager_id", "employee_id", "wave", "treated_post", "y"])


@pytest.mark.slow
def test_wild_bootstrap_covers_where_cr1_does_not_with_four_treated_clusters():
    """200 synthetic panels (person and wave fixed effects, clusters = managers), 4 of 30 managers treated.

    Measured when written (about 30 s): coverage of the 95% interval, wild
    bootstrap (Webb, 9,999 draws) 93.5%, CR1 87%.
    """
    from alignment_research.programs import _ols_cluster

    rng = np.random.default_rng(1)
    covered = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)  # "Only 30 clusters": the point of the test
        for _ in range(200):
            d = _few_treated_panel(rng)
            one = pd.Series(0, index=d.index)
            fit = _ols_cluster(d["y"], d[["treated_post"]], [(one, d["employee_id"]), (one, d["wave"])],
                               d["manager_id"], alpha=0.05)
            cr1 = fit.tidy(["treated_post"], alpha=0.05).iloc[0]
            boot = fit.wild_bootstrap("treated_post", alpha=0.05)
            covered.append((cr1["conf_low"] <= 0.5 <= cr1["conf_high"], boot.conf_low <= 0.5 <= boot.conf_high))
    cr1_coverage, wild_coverage = np.mean(covered, axis=0)
    print(f"\nfour treated clusters: CR1 {cr1_coverage:.3f}, wild {wild_coverage:.3f}")
    assert wild_coverage >= 0.93
    assert cr1_coverage < 0.90

N = 800
SEEDS = range(50)
BACKEND = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"


def _one_seed(task) -> dict:
    """The engagement effect of one default-truth study, with the wild bootstrap and (same fit) CR1."""
    from test_recovery_programs import _as_clean, _as_clean_study  # deferred: the recovery test's study builders

    truth = ar.default_truth()
    sim = ar.simulate_study(n_employees=N, seed=5000 + task.rep, truth=truth, messy=False)
    tables = _as_clean(sim)
    analysis = ar.build_analysis_tables(tables, sim.config, n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        res = ar.estimate_program_effect(_as_clean_study(sim, tables, analysis), outcome="engagement",
                                         inference="wild")
    wild = res.tidy().iloc[0]
    cr1 = res.model.tidy(["treated_post"], alpha=0.05).iloc[0]
    data = res.extras["outcome_data"]
    return dict(seed=task.rep, truth=truth.engagement_manager_program, estimate=wild["estimate"],
                wild_low=wild["conf_low"], wild_high=wild["conf_high"], cr1_low=cr1["conf_low"],
                cr1_high=cr1["conf_high"], treated=data.loc[data["treated"] == 1, "manager_id"].nunique())


@pytest.mark.slow
def test_wild_bootstrap_restores_coverage_with_few_treated_managers():
    """Default truth (job history and practices on), N = 800, 50 seeds: 19-38 treated managers (median 29).

    Measured at the default truth (practices on since the sample is drawn
    with them): the wild bootstrap covers 96% (48 of 50; two-way CR1 98%),
    and 93% (93 of 100; CR1 96%) on seeds 50-149. The figures below were
    measured before, with the practices off:
    coverage of the 95% interval of the weighted fit, wild bootstrap (Webb,
    9,999 draws, weights by matched set, two-way t) 92% (46 of 50; seeds 6,
    12, 26 and 44 missed) against the two-way CR1 normal interval 96% on the
    same fits; bias +0.006. The estimate's SD over seeds is 0.037; the mean
    two-way CR1 standard error 0.047, clustered by manager alone 0.035 (CR1
    92%, the bootstrap by manager 92%), by matched set 0.045. The same seeds
    without job history (``history=False``, the truth this test ran on when
    written): SD 0.038, by manager 0.030 (CR1 80%, bootstrap 84%), by matched
    set 0.038, two-way 0.040 (CR1 98%, this bootstrap 92%). The effect is
    homogeneous (0.2 on the latent score of every response under a developed
    manager; clipping at 1..5 is negligible), so the truth is the estimand;
    regression adjustment (trial covariates x post, each person's pre-period
    mean x post) and ANCOVA left the SD unchanged or worse; what clustering
    by manager alone missed is dependence *between* the managers of one
    matched set, which clustering by set captures (Abadie and Spiess 2022).

    Why 92% is not a defect of the bootstrap (measured with the fits of this
    test dumped per seed, issue 16):

    * the two-way CR1 interval is wider than the bootstrap's because its
      ``(N-1)/(N-K)`` counts the absorbed person x set and wave x set dummies
      (K about 1,400 of N about 3,900 rows: standard error x 1.25); the
      bootstrap's p-value and interval do not depend on that factor
      (test_p_value_and_interval_do_not_depend_on_the_cr1_factor). Without
      it the two-way standard error is 0.037, the estimate's SD, and the
      bootstrap interval's half-width is 2.16 of those standard errors
      (2.00-2.57 over seeds): wider than a normal interval, not narrower;
    * on the next 200 seeds (50-249, same N and truth) this bootstrap covers
      98.0% (196 of 200, Clopper-Pearson 95.0-99.5%), the two-way CR1 normal
      interval 98.5%; over all 250 seeds 96.8% (242 of 250). With a true
      coverage of 95% (96.8%), 50 seeds cover at most 46 times with
      probability 0.24 (0.08);
    * the four seeds are missed by every variant tried on the same fits (this
      bootstrap's p at the truth 0.023-0.040): one way by matched set, the t
      from the cluster jackknife (CV3) and/or jackknife-transformed residuals
      in the bootstrap DGP (WCR31, WCR13, WCR33 of MacKinnon, Nielsen and Webb
      2023) or the CR1 t (WCR11), p 0.016-0.028, each 92%; CV3 with normal or
      t(G-1) critical values, 92%; weights by manager instead of by set, Webb
      or Rademacher (the same four seeds, so the union of the two covers no
      more: seed 26's upper bounds 0.1972-0.1995 against 0.2); an
      equal-tailed p-value (WCR11, seed 26: 0.028, seed 44: 0.026); the
      employee as a third clustering dimension (three-way standard error
      1.001 times the two-way one on average);
    * with the practices on (the default now) the same 50 seeds cover 96%.
    """
    tasks = [Task("default", seed, seed=0) for seed in SEEDS]
    results = run_tasks(_one_seed, tasks, backend=BACKEND, progress=False)
    runs = pd.DataFrame([results[t.key] for t in tasks])
    wild = ((runs["wild_low"] <= runs["truth"]) & (runs["truth"] <= runs["wild_high"])).mean()
    cr1 = ((runs["cr1_low"] <= runs["truth"]) & (runs["truth"] <= runs["cr1_high"])).mean()
    print(f"\nwild {wild:.2f}, CR1 {cr1:.2f}, treated {runs['treated'].describe().round(1).to_dict()}, "
          f"bias {(runs['estimate'] - runs['truth']).mean():+.4f}")
    assert runs["treated"].median() < ar.programs.WILD_BOOTSTRAP_BELOW
    assert wild >= 0.93


def test_two_way_fixed_effects_fit_equals_the_dummy_regression_with_two_way_cr1():
    """The engagement model's fit with ``groups=[manager, set]``: the dummy regression's two-way CR1
    (``cluster_robust_cov`` with a list: sandwich's ``vcovCL(cluster = ~ manager + set, type = "HC1")``, checked
    against R in test_estimators), weighted, with a set dimension that crosses the managers."""
    from alignment_research.programs import _ols_cluster

    rng = np.random.default_rng(7)
    n = 400
    d = pd.DataFrame({"set": rng.integers(0, 6, n), "team": rng.integers(0, 3, n), "wave": rng.integers(0, 5, n)})
    d["mgr"] = (d["team"] + d["set"] % 4).astype(str)  # managers recur across sets
    d["x"] = rng.normal(size=n) + 0.3 * d["wave"]
    d["y"] = 0.7 * d["x"] + d["team"] * 0.5 - d["set"] * 0.2 + rng.normal(size=6)[d["set"]] + rng.normal(size=n)
    w = rng.uniform(0.3, 1.0, n)
    fit = _ols_cluster(d["y"], d[["x"]], [(d["set"], d["team"]), (d["set"], d["wave"])], [d["mgr"], d["set"]],
                       alpha=0.05, weights=w)
    team = pd.get_dummies(d["set"].astype(str) + "|" + d["team"].astype(str), dtype=float)
    wave = pd.get_dummies(d["set"].astype(str) + "|" + d["wave"].astype(str), dtype=float)
    first = (d.assign(l=d["set"].astype(str) + "|" + d["wave"].astype(str)).sort_values("l")
             .groupby("set")["l"].first())
    X = pd.concat([d[["x"]], team, wave.drop(columns=list(first))], axis=1).to_numpy(float) * np.sqrt(w)[:, None]
    y = d["y"].to_numpy(float) * np.sqrt(w)
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ y
    ways = [pd.factorize(d["mgr"])[0], d["set"].to_numpy()]
    cov = cluster_robust_cov(X * (y - X @ beta)[:, None], bread, ways)
    assert fit.params["x"] == pytest.approx(beta[0], rel=1e-8)
    assert fit.bse["x"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-8)
    one_way = _ols_cluster(d["y"], d[["x"]], [(d["set"], d["team"]), (d["set"], d["wave"])], d["mgr"], alpha=0.05,
                           weights=w)
    assert abs(one_way.bse["x"] / fit.bse["x"] - 1) > 0.01
    # its bootstrap draws weights by the last dimension (sets) with the two-way t: the CR1 standard error is its own
    boot = fit.wild_bootstrap("x", alpha=0.05)
    assert boot.n_clusters == 6 and boot.std_error == pytest.approx(fit.bse["x"], rel=1e-10)
