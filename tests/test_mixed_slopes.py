"""Random slopes in ``fit_mixed`` against lme4, analytic checks, and recovery over seeds.

Reference chain: ``tests/reference/mixed_slopes.R`` exports lme4's ``sleepstudy``
(``mixed_slopes_sleepstudy.csv``) and fits it and the toolkit's simulated survey
panel (``mixed_slopes_panel.csv``, written by ``mixed_slopes_data.py``) with
``lmer(..., control = tight)``; it writes ``mixed_slopes_reference.csv``
(model, term, quantity, value) and ``mixed_slopes_reference_provenance.txt``
(R and lme4 versions, every call). Each class names the lmer call it matches.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import alignment_research as ar
from alignment_research._formula import formula_variables, split_random_terms
from alignment_research._lmm import GroupProducts, fit_random_slopes, theta_pattern
from alignment_research.executors import Task, run_tasks

REF = Path(__file__).parent / "reference"
SLEEP = pd.read_csv(REF / "mixed_slopes_sleepstudy.csv")
PANEL = pd.read_csv(REF / "mixed_slopes_panel.csv")
R = pd.read_csv(REF / "mixed_slopes_reference.csv")


def r_values(model, quantity) -> pd.Series:
    """Stored R values of one model and quantity, as a Series by R's term name."""
    x = R[(R.model == model) & (R.quantity == quantity)]
    return pd.Series(x.value.to_numpy(float), index=x.term.fillna("").to_numpy())


def r_name(term: str) -> str:
    return "(Intercept)" if term == "Intercept" else term


def glance_key(r_term: str, kind: str) -> str:
    """R's VarCorr name (``Subject:(Intercept):Days``) -> our glance column (``cor_Subject_Days``)."""
    group, *effects = r_term.split(":")
    effects = [e for e in effects if e != "(Intercept)"]
    prefix = "var" if kind == "variance" else "cor"
    return f"{prefix}_{group}" + (f"_{':'.join(effects)}" if effects else "")


class CheckSlopesAgainstR:
    """res1 = ours, res2 = the R model name (statsmodels' Check* pattern); 1e-6 relative as the issue asks."""

    rtol = 1e-6
    data = SLEEP
    formula = ""
    reml = True

    @classmethod
    def setup_class(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ar.StatisticalWarning)
            cls.res1 = ar.fit_mixed(cls.data, cls.formula, reml=cls.reml)

    def test_fixed_effects(self):
        # fixef(fit)
        t = self.res1.tidy()
        assert_allclose(t.estimate, r_values(self.res2, "estimate").loc[[r_name(x) for x in t.term]], rtol=self.rtol)

    def test_std_errors(self):
        # sqrt(diag(vcov(fit)))
        t = self.res1.tidy()
        assert_allclose(t.std_error, r_values(self.res2, "std_error").loc[[r_name(x) for x in t.term]],
                        rtol=self.rtol)

    def test_variance_components(self):
        # as.data.frame(VarCorr(fit)): standard deviations (sdcor, as VarCorr prints them) within 1e-6 relative,
        # correlations within 1e-6 absolute; sigma(fit)^2. (A small variance or correlation is where lmer's tight
        # optimum itself is uncertain at ~1e-6 relative: see test_ours_is_at_least_as_optimal_as_lmer.)
        g = self.res1.glance().iloc[0]
        variances = r_values(self.res2, "variance")
        assert_allclose(g["sigma2"], variances["Residual"], rtol=self.rtol)
        expected_var = {glance_key(t, "variance"): v for t, v in variances.drop("Residual").items()}
        expected_cor = {glance_key(t, "correlation"): v for t, v in r_values(self.res2, "correlation").items()}
        ours = [k for k in g.index if k.startswith(("var_", "cor_"))]
        assert sorted(ours) == sorted([*expected_var, *expected_cor])
        assert_allclose(np.sqrt([g[k] for k in expected_var]), np.sqrt(list(expected_var.values())), rtol=self.rtol)
        assert_allclose([g[k] for k in expected_cor], list(expected_cor.values()), rtol=0, atol=1e-6)

    def test_theta(self):
        # getME(fit, "theta"): the same parameters in the same order, within 1e-6 of the largest
        theta = r_values(self.res2, "theta").to_numpy()
        assert_allclose(self.res1.extras["theta"], theta, rtol=0, atol=self.rtol * np.abs(theta).max())

    def test_ours_is_at_least_as_optimal_as_lmer(self):
        # lme4's criterion (deviance or REML criterion) at lmer's theta is not below ours at our theta
        info, frame = self.res1.design_info, self.data
        design = pd.DataFrame(np.asarray(patsy.build_design_matrices([info], frame)[0]), columns=info.column_names)
        Xm = design[list(self.res1.tidy().term)].to_numpy(float)
        names = list(self.res1.random_effects.columns[1:])
        Z = np.column_stack([np.ones(len(frame)) if n == "Intercept" else frame[n].to_numpy(float) for n in names])
        group = self.res1.glance()["cov_type"].iloc[0].split(" by ")[1].split(":")[0]
        codes, labels = pd.factorize(frame[group].astype(str), sort=True)
        blocks = [1] * len(names) if "(uncorrelated)" in self.res1.glance()["cov_type"].iloc[0] else [len(names)]
        prods = GroupProducts(Xm, frame[self.res1.formula.split("~")[0].strip()].to_numpy(float), Z, codes,
                              len(labels), blocks)
        ours = prods.criterion(self.res1.extras["theta"], self.reml)
        theirs = prods.criterion(r_values(self.res2, "theta").to_numpy(), self.reml)
        assert ours <= theirs + 1e-9, ours - theirs
        assert_allclose(-0.5 * ours, self.res1.glance()["log_likelihood"].iloc[0], rtol=1e-12)

    def test_log_likelihood_and_criteria(self):
        # logLik(fit); AIC(fit) counts fixed effects, sigma and theta
        g = self.res1.glance().iloc[0]
        llf = r_values(self.res2, "log_likelihood").iloc[0]
        assert_allclose(g["log_likelihood"], llf, rtol=1e-9)
        df = len(self.res1.tidy()) + 1 + len(r_values(self.res2, "theta"))
        assert_allclose(g["aic"], -2 * llf + 2 * df, rtol=1e-9)
        assert g["n"] == r_values(self.res2, "nobs").iloc[0]

    def test_icc(self):
        # Nakagawa: mean(rowSums((getME(fit, "Z") %*% getME(fit, "Lambda"))^2)) sigma^2 over that + sigma^2
        assert_allclose(self.res1.glance()["icc"].iloc[0], r_values(self.res2, "icc").iloc[0], rtol=self.rtol)

    def test_random_effects(self):
        # ranef(fit)[[1]]: one column per effect
        ours = self.res1.random_effects.set_index("group")
        ref = r_values(self.res2, "ranef")
        for column in ours.columns:
            expected = ref[ref.index.str.endswith(":" + r_name(column))]
            groups = [i.rsplit(":", 1)[0] for i in expected.index]
            scale = np.abs(expected.to_numpy()).max()
            assert_allclose(ours.loc[groups, column], expected.to_numpy(), rtol=self.rtol, atol=self.rtol * scale)

    def test_boundary_flag(self):
        # isSingular(fit)
        assert bool(self.res1.glance()["boundary"].iloc[0]) == bool(r_values(self.res2, "singular").iloc[0])
        assert self.res1.glance()["converged"].iloc[0]


class TestSleepCorrelatedREML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE, control = tight)
    res2 = "sleep_corr_reml"
    formula = "Reaction ~ Days + (Days | Subject)"

    def test_glance_names_and_shape(self):
        g = self.res1.glance()
        assert list(g.columns) == ["n", "n_groups", "log_likelihood", "aic", "bic", "sigma2", "var_Subject",
                                   "var_Subject_Days", "cor_Subject_Days", "icc", "boundary", "converged", "method",
                                   "engine", "cov_type", "formula"]
        assert g["n_groups"].iloc[0] == 18 and g["method"].iloc[0] == "REML"
        assert g["cov_type"].iloc[0] == "random effects by Subject: Intercept, Days (correlated)"
        assert list(self.res1.random_effects.columns) == ["group", "Intercept", "Days"]
        vc = self.res1.extras["variance_components"]
        assert list(vc.effect2.fillna("-")) == ["-", "-", "Days", "-"]

    def test_lme4_default_stopping_rule_is_within_1e5(self):
        # lmer(Reaction ~ Days + (Days | Subject), sleepstudy) with lme4's default control stops short of the
        # optimum by a few 1e-6 relative in the standard errors: ours is compared with the tight fit above.
        t = self.res1.tidy()
        default = r_values("sleep_corr_reml_default_control", "std_error").loc[[r_name(x) for x in t.term]]
        assert_allclose(t.std_error, default, rtol=1e-5)

    def test_fitted_values_add_each_groups_intercept_and_slope(self):
        res = self.res1.extras["residuals"]
        b = self.res1.random_effects.set_index("group")
        beta = self.res1.tidy().estimate.to_numpy()
        g = SLEEP.Subject.astype(str)
        expected = (beta[0] + b.loc[g, "Intercept"].to_numpy()) + (beta[1] + b.loc[g, "Days"].to_numpy()) * SLEEP.Days
        assert_allclose(res["fitted"], expected, rtol=1e-12)
        assert_allclose(res["fitted"] + res["residual"], SLEEP.Reaction, rtol=1e-12)


class TestSleepCorrelatedML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE, control = tight)
    res2 = "sleep_corr_ml"
    formula = "Reaction ~ Days + (Days | Subject)"
    reml = False


class TestSleepUncorrelatedREML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = TRUE, control = tight)
    res2 = "sleep_uncorr_reml"
    formula = "Reaction ~ Days + (Days || Subject)"

    def test_spelt_as_two_terms_is_the_same_model(self):
        # (Days || Subject) is lme4's shorthand for (1 | Subject) + (0 + Days | Subject)
        other = ar.fit_mixed(SLEEP, "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)")
        assert_allclose(other.tidy().std_error, self.res1.tidy().std_error, rtol=1e-9)
        assert_allclose(other.glance()["log_likelihood"], self.res1.glance()["log_likelihood"], rtol=1e-12)
        assert "(uncorrelated)" in self.res1.glance()["cov_type"].iloc[0]


class TestSleepUncorrelatedML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = FALSE, control = tight)
    res2 = "sleep_uncorr_ml"
    formula = "Reaction ~ Days + (1 + Days || Subject)"
    reml = False


class TestSleepSlopeOnlyREML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (0 + Days | Subject), sleepstudy, REML = TRUE, control = tight)
    res2 = "sleep_slope_only_reml"
    formula = "Reaction ~ Days + (0 + Days | Subject)"


class TestSleepSlopeOnlyML(CheckSlopesAgainstR):
    # lmer(Reaction ~ Days + (0 + Days | Subject), sleepstudy, REML = FALSE, control = tight)
    res2 = "sleep_slope_only_ml"
    formula = "Reaction ~ Days + (0 + Days | Subject)"
    reml = False


class TestPanelCorrelatedREML(CheckSlopesAgainstR):
    # lmer(engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id), panel, REML = TRUE, control = tight)
    res2 = "panel_corr_reml"
    data = PANEL
    formula = "engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id)"


class TestPanelCorrelatedML(CheckSlopesAgainstR):
    # lmer(engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id), panel, REML = FALSE, control = tight)
    res2 = "panel_corr_ml"
    data = PANEL
    formula = "engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id)"
    reml = False


class TestPanelUncorrelatedREML(CheckSlopesAgainstR):
    # lmer(engagement ~ alignment_cascade + (1 + alignment_cascade || manager_id), panel, REML = TRUE, control = tight)
    res2 = "panel_uncorr_reml"
    data = PANEL
    formula = "engagement ~ alignment_cascade + (1 + alignment_cascade || manager_id)"


class TestPanelThreeEffectsBoundary(CheckSlopesAgainstR):
    # lmer(engagement ~ alignment_cascade + manager_program + (1 + alignment_cascade + manager_program | manager_id),
    #      panel, REML = TRUE, control = tight): singular (the last diagonal of Lambda is 0)
    res2 = "panel_three_reml"
    data = PANEL
    formula = ("engagement ~ alignment_cascade + manager_program "
               "+ (1 + alignment_cascade + manager_program | manager_id)")

    def test_boundary_is_warned_and_kept_as_a_caveat(self):
        with pytest.warns(ar.StatisticalWarning, match="is singular"):
            res = ar.fit_mixed(self.data, self.formula)
        assert any("isSingular" in c for c in res.caveats)
        assert res.extras["theta"][-1] == 0.0  # exactly at the bound, as lme4 reports it
        assert "cor_manager_id_alignment_cascade:manager_program" in res.glance().columns


# --------------------------------------------------------------------------- what the slope changes


def test_intercept_only_model_understates_the_se_of_days_1_9_times():
    # sqrt(diag(vcov(.)))["Days"]: (Days | Subject) 1.5458 vs (1 | Subject) 0.8042, REML, tight
    slope = ar.fit_mixed(SLEEP, "Reaction ~ Days + (Days | Subject)").tidy().set_index("term")
    intercept = ar.fit_mixed(SLEEP, "Reaction ~ Days", groups="Subject").tidy().set_index("term")
    ratio = slope.loc["Days", "std_error"] / intercept.loc["Days", "std_error"]
    r_ratio = r_values("sleep_corr_reml", "std_error")["Days"] / r_values("sleep_intercept_reml", "std_error")["Days"]
    assert_allclose(ratio, r_ratio, rtol=1e-6)
    assert 1.9 < ratio < 1.95
    assert_allclose(intercept.loc["Days", "std_error"], r_values("sleep_intercept_reml", "std_error")["Days"],
                    rtol=1e-6)
    assert_allclose(intercept.loc["Days", "estimate"], slope.loc["Days", "estimate"], rtol=1e-10)  # balanced design


@pytest.mark.parametrize("reml", [True, False])
def test_bar_random_intercept_is_the_groups_model_bit_for_bit(reml):
    # (1 | g) in the formula takes the existing random-intercept engine: identical numbers to groups=
    bar = ar.fit_mixed(SLEEP, "Reaction ~ Days + (1 | Subject)", reml=reml)
    kw = ar.fit_mixed(SLEEP, "Reaction ~ Days", groups="Subject", reml=reml)
    pd.testing.assert_frame_equal(bar.tidy(), kw.tidy(), check_exact=True)
    pd.testing.assert_frame_equal(bar.glance().drop(columns="formula"), kw.glance().drop(columns="formula"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(bar.random_effects, kw.random_effects, check_exact=True)
    assert bar.glance()["formula"].iloc[0] == "Reaction ~ Days + (1 | Subject)"
    same = ar.fit_mixed(SLEEP, "Reaction ~ Days + (1 | Subject)", groups="Subject", reml=reml)
    assert_array_equal(same.tidy().std_error, kw.tidy().std_error)


def test_random_slope_engine_matches_the_intercept_engine_for_q_equal_1():
    # the general engine with one intercept column is the random-intercept model (two independent codes)
    X = np.column_stack([np.ones(len(SLEEP)), SLEEP.Days])
    fit = fit_random_slopes(X, SLEEP.Reaction.to_numpy(), X[:, :1], SLEEP.Subject, blocks=[1])
    ref = r_values("sleep_intercept_reml", "theta").iloc[0]
    assert_allclose(fit.theta[0], ref, rtol=1e-7)
    assert_allclose(fit.log_likelihood, r_values("sleep_intercept_reml", "log_likelihood").iloc[0], rtol=1e-10)


def test_gradient_is_the_derivative_of_the_criterion():
    X = np.column_stack([np.ones(len(PANEL)), PANEL.alignment_cascade, PANEL.manager_program])
    codes, labels = pd.factorize(PANEL.manager_id, sort=True)
    prods = GroupProducts(X, PANEL.engagement.to_numpy(), X, codes, len(labels), [3])
    theta = np.array([0.7, -0.2, 0.1, 0.3, -0.1, 0.15])
    for reml in (True, False):
        _, grad = prods.criterion(theta, reml, with_gradient=True)
        h = 1e-4  # the criterion is exact to ~1e-10 absolute; central differences then to ~1e-5
        numeric = [(prods.criterion(theta + h * e, reml) - prods.criterion(theta - h * e, reml)) / (2 * h)
                   for e in np.eye(len(theta))]
        assert_allclose(grad, numeric, rtol=1e-6, atol=1e-5)


def test_theta_pattern_follows_lme4_order():
    # getME(lmer(y ~ (1 + a + b | g)), "theta"): (1,1) (2,1) (3,1) (2,2) (3,2) (3,3); blocks for ||
    rows, cols = theta_pattern([3])
    assert list(zip(rows, cols)) == [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)]
    rows, cols = theta_pattern([1, 2])
    assert list(zip(rows, cols)) == [(0, 0), (1, 1), (2, 1), (2, 2)]


def test_predictions_use_the_fixed_part():
    res = ar.fit_mixed(SLEEP, "Reaction ~ Days + (Days | Subject)")
    grid = ar.predicted_values(res, SLEEP, x="Days", values=[0.0, 5.0])
    beta = res.tidy().estimate.to_numpy()
    assert_allclose(grid["estimate"], beta[0] + beta[1] * np.array([0, 5]), rtol=1e-12)
    assert_allclose(grid["std_error"].iloc[0], res.tidy().std_error.iloc[0], rtol=1e-12)


# --------------------------------------------------------------------------- the formula


@pytest.mark.parametrize(
    "formula, fixed, effects, group, correlated",
    [
        ("y ~ x + (1 + x | g)", "y ~ x", ["1 + x"], "g", [True]),
        ("y ~ x + (x | g)", "y ~ x", ["x"], "g", [True]),
        ("y ~ (0 + x | g) + x", "y ~ x", ["0 + x"], "g", [True]),
        ("y ~ x + (1 + x || g)", "y ~ x", ["1 + x"], "g", [False]),
        ("y ~ (1 | g)", "y ~ 1", ["1"], "g", [True]),
        ("y ~ 0 + x + (1 | g) + (0 + x | g)", "y ~ 0 + x", ["1", "0 + x"], "g", [True, True]),
        ("y ~ C(d, Treatment('a|b')) + (1|g)", "y ~ C(d, Treatment('a|b'))", ["1"], "g", [True]),
    ],
)
def test_split_random_terms(formula, fixed, effects, group, correlated):
    got_fixed, terms = split_random_terms(formula)
    assert got_fixed == fixed
    assert [t.effects for t in terms] == effects
    assert {t.group for t in terms} == {group}
    assert [t.correlated for t in terms] == correlated


def test_formula_variables_read_bar_terms():
    assert formula_variables("y ~ z + (1 + x || g)") == ["y", "z", "x", "g"]
    assert formula_variables("y ~ z") == ["y", "z"]


@pytest.mark.parametrize(
    "formula, kwargs, match",
    [
        ("Reaction ~ Days + (Days | Subject)", {"groups": "Days"}, r"groups='Days' and the formula's random-effect "
                                                                   r"grouping 'Subject' disagree"),
        ("Reaction ~ Days + (1 | Subject/Days)", {}, r"grouping 'Subject/Days'.*nested or crossed.*Supported"),
        ("Reaction ~ Days + (1 | Subject) + (0 + Days | Days)", {}, r"several grouping columns \['Subject', 'Days'\]"),
        ("Reaction ~ Days + (Days | Subject)", {"vc": "Days"}, "`vc` cannot be combined"),
        ("Reaction ~ Days + (Days | Subject)", {"engine": "statsmodels"}, "engine='auto' or 'numpy'"),
        ("Reaction ~ Days | Subject", {}, r"'\|' outside parentheses"),
        ("Reaction ~ Days", {}, r"needs the grouping of its random effects.*\(1 \| g\), \(1 \+ x \| g\)"),
        ("Reaction ~ Days + (Days | Subject) + (Days | Subject)", {}, r"repeat \['Intercept', 'Days'\]"),
        ("Reaction ~ Days + (nope | Subject)", {}, r"no column\(s\) \['nope'\]"),
    ],
)
def test_bar_forms_not_supported_are_refused_with_the_rule(formula, kwargs, match):
    with pytest.raises(ar.ModelError, match=match):
        ar.fit_mixed(SLEEP, formula, **kwargs)


def test_more_random_effects_than_rows_is_refused():
    # lme4: "number of observations (=36) <= number of random effects (=36)"
    small = SLEEP[SLEEP.Days < 2]
    with pytest.raises(ar.ModelError, match=r"36 rows are no more than the 36 random effects"):
        ar.fit_mixed(small, "Reaction ~ Days + (Days | Subject)")


# --------------------------------------------------------------------------- recovery

TRUE_SLOPE_SD = 0.25


def simulate_slopes(seed: int, n_managers: int = 150) -> pd.DataFrame:
    """Survey-like panel: engagement = 3 + 0.5 alignment + (0.3 + 0.25 alignment) per manager (corr 0.3) + noise 0.5."""
    rng = np.random.default_rng(seed)
    sd = np.array([0.3, TRUE_SLOPE_SD])
    cov = np.outer(sd, sd) * np.array([[1.0, 0.3], [0.3, 1.0]])
    b = rng.multivariate_normal(np.zeros(2), cov, n_managers)
    size = rng.integers(4, 16, n_managers)
    m = np.repeat(np.arange(n_managers), size)
    x = rng.normal(0.0, 1.0, len(m))
    y = 3.0 + b[m, 0] + (0.5 + b[m, 1]) * x + rng.normal(0.0, 0.5, len(m))
    return pd.DataFrame({"manager_id": m, "alignment": x, "engagement": y})


def _fit_seed(task) -> dict:
    """Random-slope and random-intercept-only fits of one seed's panel (``task.rep`` is the seed)."""
    data = simulate_slopes(task.rep)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        res = ar.fit_mixed(data, "engagement ~ alignment + (1 + alignment | manager_id)")
        naive = ar.fit_mixed(data, "engagement ~ alignment", groups="manager_id")
    g = res.glance().iloc[0]
    slope = res.tidy().set_index("term").loc["alignment"]
    naive_slope = naive.tidy().set_index("term").loc["alignment"]
    return {"sd": float(np.sqrt(g["var_manager_id_alignment"])), "cor": float(g["cor_manager_id_alignment"]),
            "covered": bool(slope["conf_low"] <= 0.5 <= slope["conf_high"]),
            "naive_covered": bool(naive_slope["conf_low"] <= 0.5 <= naive_slope["conf_high"])}


@pytest.mark.slow
def test_random_slope_sd_is_recovered_over_50_seeds():
    """50 seeds, 150 managers of 4-15 people each, true slope SD 0.25 (intercept SD 0.3, correlation 0.3).

    Criteria, fixed before running: the mean REML estimate of the slope SD is within 0.01 of 0.25 (|bias| < 4%;
    measured 0.2427, Monte Carlo SE 0.0033), its spread across seeds is below 0.05 (measured 0.023), the
    estimated correlation averages within 0.1 of 0.3 (measured 0.315), and the 95% Wald interval of the average
    slope (true 0.5), whose width depends on getting the slope variance right, covers in >= 90% of seeds (measured 94%), while the
    random-intercept-only model's interval covers in <= 85% (measured 80%): the issue's "SE too small", over seeds.
    """
    backend = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"
    tasks = [Task("slopes", seed, seed=0) for seed in range(50)]
    results = run_tasks(_fit_seed, tasks, backend=backend, progress=False)
    out = pd.DataFrame([results[t.key] for t in tasks])
    assert abs(out.sd.mean() - TRUE_SLOPE_SD) < 0.01
    assert out.sd.std() < 0.05
    assert abs(out.cor.mean() - 0.3) < 0.1
    assert out.covered.mean() >= 0.90
    assert out.naive_covered.mean() <= 0.85


@pytest.mark.parametrize("k", [1e-3, 1e5])
def test_the_units_of_the_slope_variable_do_not_matter(k):
    # ML: rescaling Days by k is the same model; logLik identical, SE and SD of the slope scale by 1/k,
    # and a badly scaled slope is neither left unconverged nor flagged singular
    base = ar.fit_mixed(SLEEP, "Reaction ~ Days + (Days | Subject)", reml=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ar.StatisticalWarning)
        res = ar.fit_mixed(SLEEP.assign(D=SLEEP.Days * k), "Reaction ~ D + (D | Subject)", reml=False)
    g, g0 = res.glance().iloc[0], base.glance().iloc[0]
    assert_allclose(g["log_likelihood"], g0["log_likelihood"], rtol=1e-12)
    assert_allclose(res.tidy().std_error.iloc[1] * k, base.tidy().std_error.iloc[1], rtol=1e-8)
    assert_allclose(g["var_Subject_D"] * k**2, g0["var_Subject_Days"], rtol=1e-7)
    assert_allclose(res.extras["theta"] * [1, k, k], base.extras["theta"], rtol=1e-7)
    assert not g["boundary"] and g["converged"]
