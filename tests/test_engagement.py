"""Engagement models against R (lme4, MASS, sandwich) and analytic checks.

Reference chain: ``tests/reference/engagement_data.py`` writes
``engagement_data.csv``; ``tests/reference/engagement.R`` fits it and writes
``engagement_r_results.csv`` (R calls and versions in its header). Each assert
names the R expression that produced the number.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from numpy.testing import assert_allclose

import alignment_research as ar
from alignment_research._estimators import LogisticFit
from alignment_research._lmm import fit_random_intercept

REF = Path(__file__).parent / "reference"
DATA = pd.read_csv(REF / "engagement_data.csv")
R = pd.read_csv(REF / "engagement_r_results.csv", comment="#")

# Our (patsy) term labels -> R's coefficient names.
R_NAMES = {
    "Intercept": "(Intercept)",
    "C(job_level)[T.2]": "job_level2",
    "C(job_level)[T.3]": "job_level3",
    "C(wave)[T.2]": "wave2",
    "C(wave)[T.3]": "wave3",
}


def r_values(model, quantity, terms=None):
    """Stored R values of one model and quantity, as a Series by R term name (or in the order of ``terms``)."""
    x = R[(R.model == model) & (R.quantity == quantity)]
    s = pd.Series(x.value.to_numpy(float), index=x.term.fillna("").to_numpy())
    if terms is None:
        return s
    return s.loc[[R_NAMES.get(t, t) for t in terms]].to_numpy()


class CheckAgainstR:
    """res1 = ours, res2 = the R model name; rtol per class (statsmodels' Check* pattern)."""

    rtol = 1e-6

    def test_estimates(self):
        t = self.res1.tidy()
        assert_allclose(t.estimate, r_values(self.res2, "estimate", t.term), rtol=self.rtol)

    def test_std_errors(self):
        t = self.res1.tidy()
        assert_allclose(t.std_error, r_values(self.res2, "std_error", t.term), rtol=self.rtol)


FORMULA = "engagement ~ alignment_cascade + manager_program + C(job_level)"


class TestLmerREML(CheckAgainstR):
    # fixef(lmer(engagement ~ alignment_cascade + manager_program + job_level + (1 | manager_id), REML = TRUE, control = tight))
    # sqrt(diag(vcov(.))), as.data.frame(VarCorr(.))$vcov, logLik(.), ranef(.)
    res2 = "lmer_reml"
    rtol = 1e-6

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_mixed(DATA, FORMULA, groups="manager_id", reml=True)

    def test_variance_components(self):
        g = self.res1.glance().iloc[0]
        vc = r_values(self.res2, "variance")
        assert_allclose(g["var_manager_id"], vc["manager_id"], rtol=1e-6)  # VarCorr(fit) manager_id
        assert_allclose(g["sigma2"], vc["Residual"], rtol=1e-6)  # sigma(fit)^2
        assert_allclose(g["icc"], vc["manager_id"] / (vc["manager_id"] + vc["Residual"]), rtol=1e-6)

    def test_log_likelihood(self):
        # logLik(fit): the REML criterion is lme4's, constant included
        assert_allclose(self.res1.glance()["log_likelihood"].iloc[0], r_values(self.res2, "log_likelihood").iloc[0],
                        rtol=1e-10)

    def test_random_effects(self):
        # ranef(fit)$manager_id
        ours = self.res1.random_effects.set_index("group")["estimate"]
        ref = r_values(self.res2, "ranef")
        assert_allclose(ours.loc[ref.index], ref, atol=1e-7)

    def test_lme4_default_control_is_within_1e6(self):
        # lmer(..., REML = TRUE) with lme4's default optimiser stopping rule
        t = self.res1.tidy()
        assert_allclose(t.estimate, r_values(self.res2 + "_default_control", "estimate", t.term), rtol=1e-6)
        assert_allclose(t.std_error, r_values(self.res2 + "_default_control", "std_error", t.term), rtol=1e-6)

    def test_glance_flags(self):
        g = self.res1.glance().iloc[0]
        assert g["engine"] == "numpy" and g["method"] == "REML" and not g["boundary"]
        assert g["n"] == 1457 and g["n_groups"] == 120  # nobs(fit); ngrps(fit)


class TestLmerML(TestLmerREML):
    # fixef / vcov / VarCorr / logLik of lmer(..., REML = FALSE, control = tight)
    res2 = "lmer_ml"

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_mixed(DATA, FORMULA, groups="manager_id", reml=False)

    def test_glance_flags(self):
        assert self.res1.glance()["method"].iloc[0] == "ML"


class TestLmerTwoComponents(CheckAgainstR):
    # lmer(engagement ~ alignment_cascade + manager_program + (1 | department) + (1 | manager_id), REML = TRUE)
    # by the exact nested engine (managers are nested in departments); lme4's tight optimum is itself only
    # that close to the optimum (the criterion is flat there), hence 1e-6.
    res2 = "lmer_vc"
    rtol = 1e-6

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_mixed(DATA, "engagement ~ alignment_cascade + manager_program", groups="manager_id",
                                vc="department")

    def test_variance_components(self):
        g = self.res1.glance().iloc[0]
        vc = r_values(self.res2, "variance")
        assert_allclose(g["var_manager_id"], vc["manager_id"], rtol=1e-6)  # VarCorr(fit) manager_id
        assert_allclose(g["var_department"], vc["department"], rtol=1e-5)  # VarCorr(fit) department (8 levels)
        assert_allclose(g["sigma2"], vc["Residual"], rtol=1e-6)  # sigma(fit)^2
        assert_allclose(g["log_likelihood"], r_values(self.res2, "log_likelihood")[""], rtol=1e-12)  # logLik(fit)
        assert g["engine"] == "numpy" and g["converged"]

    def test_statsmodels_engine_reaches_the_same_fit_less_closely(self):
        # statsmodels MixedLM fits the same model; its optimiser stops earlier than lme4's, hence 1e-3
        res = ar.fit_mixed(DATA, "engagement ~ alignment_cascade + manager_program", groups="manager_id",
                           vc="department", engine="statsmodels")
        g, vc = res.glance().iloc[0], r_values(self.res2, "variance")
        assert g["engine"] == "statsmodels"
        assert_allclose(res.tidy().estimate, r_values(self.res2, "estimate", res.tidy().term), rtol=1e-3)
        assert_allclose([g["var_manager_id"], g["var_department"], g["sigma2"]],
                        [vc["manager_id"], vc["department"], vc["Residual"]], rtol=1e-3)

    def test_dict_of_variance_formulas_gives_the_same_fit(self):
        # the same model spelt with statsmodels' vc_formula: department groups, managers as a variance component
        res = ar.fit_mixed(DATA, "engagement ~ alignment_cascade + manager_program", groups="department",
                           vc={"manager_id": "0 + C(manager_id)"})
        same = ar.fit_mixed(DATA, "engagement ~ alignment_cascade + manager_program", groups="manager_id",
                            vc="department", engine="statsmodels")
        assert_allclose(res.tidy().estimate, same.tidy().estimate, rtol=1e-8)
        assert_allclose(res.glance()["var_manager_id"], same.glance()["var_manager_id"], rtol=1e-8)


class TestLmerNested(CheckAgainstR):
    # lmer(engagement ~ alignment_cascade + manager_program + (1 | manager_id) + (1 | manager_id:employee_id),
    # REML = TRUE, control = tight): employees' repeated waves nested in managers, as notebook 03 fits them.
    res2 = "lmer_nested"
    reml = True
    rtol = 1e-7

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_mixed(DATA, "engagement ~ alignment_cascade + manager_program", groups="employee_id",
                                vc="manager_id", reml=cls.reml)

    def test_variances_and_likelihood(self):
        g = self.res1.glance().iloc[0]
        vc = r_values(self.res2, "variance")
        assert_allclose([g["var_manager_id"], g["var_employee_id"], g["sigma2"]],  # as.data.frame(VarCorr(fit))
                        [vc["manager_id"], vc["manager_id:employee_id"], vc["Residual"]], rtol=1e-6)
        assert_allclose(g["log_likelihood"], r_values(self.res2, "log_likelihood")[""], rtol=1e-12)  # logLik(fit)
        assert g["engine"] == "numpy" and g["converged"] and not g["boundary"]
        assert g["n"] == r_values(self.res2, "nobs")[""]

    def test_manager_blups(self):
        ours = self.res1.random_effects.set_index("group")["estimate"]
        theirs = r_values(self.res2, "ranef")  # ranef(fit)$manager_id
        assert len(ours) == len(theirs) == DATA.manager_id.nunique()
        assert_allclose(ours.loc[theirs.index], theirs, atol=1e-7)

    def test_fitted_values_add_both_levels(self):
        # fitted = X beta + u[manager] + v[manager:employee]; the residuals of each cell then sum to
        # (sigma^2 / var_employee) v, the BLUP's defining equation for a cell (checked by its mean: the cells' v
        # average to about zero per manager, and the residuals have mean zero overall)
        resid = self.res1.extras["residuals"]["residual"].to_numpy()
        assert abs(resid.mean()) < 1e-2
        fit = self.res1.model
        ratio = fit.variance_inner / fit.sigma2
        cell_sums = np.bincount(fit.cell_codes, weights=resid)
        assert_allclose(cell_sums * ratio, fit.ranef_cell, atol=1e-10)


class TestLmerNestedML(TestLmerNested):
    # the same with REML = FALSE
    res2 = "lmer_nested_ml"
    reml = False


class TestPastes:
    """lme4's own nested example: ``lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), Pastes)``.

    Pastes is balanced (10 batches x 3 casks x 2 samples), so REML equals the
    ANOVA (expected mean squares) estimates when they are positive: an
    analytic check beside the R values.
    """

    P = pd.read_csv(REF / "engagement_pastes.csv")

    @classmethod
    def setup_class(cls):
        # the cask labels a-c repeat in every batch: each (batch, cask) pair is a cell
        cls.res = ar.fit_mixed(cls.P, "strength ~ 1", groups="cask", vc="batch")
        cls.g = cls.res.glance().iloc[0]

    def test_against_lmer(self):
        vc = r_values("pastes", "variance")
        assert_allclose(self.res.tidy().estimate, r_values("pastes", "estimate", ["Intercept"]), rtol=1e-12)
        assert_allclose(self.res.tidy().std_error, r_values("pastes", "std_error", ["Intercept"]), rtol=1e-7)
        assert_allclose([self.g["var_batch"], self.g["var_cask"], self.g["sigma2"]],
                        [vc["batch"], vc["batch:cask"], vc["Residual"]], rtol=1e-6)
        assert_allclose(self.g["log_likelihood"], r_values("pastes", "log_likelihood")[""], rtol=1e-12)
        blups = self.res.random_effects.set_index("group")["estimate"]
        theirs = r_values("pastes", "ranef")  # ranef(fit)$batch
        assert_allclose(blups.loc[theirs.index], theirs, atol=1e-7)
        cells = self.res.model
        ours = pd.Series(cells.ranef_cell, index=[f"{cells.outer_labels[o]}:{i}"
                                                  for o, i in zip(cells.cell_outer, cells.cell_inner)])
        theirs = r_values("pastes", "ranef_cell")  # ranef(fit)$`batch:cask`
        assert_allclose(ours.loc[theirs.index], theirs, atol=1e-7)

    def test_equals_the_anova_estimates_of_a_balanced_design(self):
        P = self.P
        grand = P.strength.mean()
        cask_mean = P.groupby(["batch", "cask"]).strength.transform("mean")
        batch_mean = P.groupby("batch").strength.transform("mean")
        ms_error = ((P.strength - cask_mean) ** 2).sum() / (60 - 30)
        ms_cask = ((cask_mean - batch_mean) ** 2).sum() / (30 - 10)
        ms_batch = ((batch_mean - grand) ** 2).sum() / (10 - 1)
        assert_allclose(self.g["sigma2"], ms_error, rtol=1e-9)
        assert_allclose(self.g["var_cask"], (ms_cask - ms_error) / 2, rtol=1e-9)
        assert_allclose(self.g["var_batch"], (ms_batch - ms_cask) / 6, rtol=1e-9)
        # the intercept's variance: the batch mean square over all 60 rows
        assert_allclose(self.res.tidy().std_error.iloc[0] ** 2, ms_batch / 60, rtol=1e-9)


class TestPolr(CheckAgainstR):
    # polr(factor(rating, ordered = TRUE) ~ alignment_cascade + manager_program + engagement, Hess = TRUE)
    # coef(fit), fit$zeta, sqrt(diag(vcov(fit)))
    res2 = "polr"
    rtol = 1e-5

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_ordinal(DATA, "rating ~ alignment_cascade + manager_program + engagement")

    def test_cutpoint_labels_and_odds_ratios(self):
        t = self.res1.tidy()
        assert list(t.term[3:]) == ["1|2", "2|3", "3|4", "4|5"]
        assert_allclose(t.exp_estimate[:3], np.exp(r_values("polr", "estimate", t.term[:3])), rtol=1e-5)  # exp(coef(fit))
        assert t.exp_estimate[3:].isna().all()

    def test_log_likelihood(self):
        assert_allclose(self.res1.glance()["log_likelihood"].iloc[0], r_values("polr", "log_likelihood").iloc[0],
                        rtol=1e-8)  # logLik(fit)

    def test_brant_does_not_reject_proportional_odds_data(self):
        # the reference data were generated with one latent logistic scale: proportional odds hold
        po = self.res1.extras["proportional_odds"]
        assert list(po.term) == ["alignment_cascade", "manager_program", "engagement", "omnibus"]
        assert po.df.tolist() == [3, 3, 3, 9]
        assert po.p_value.iloc[-1] > 0.05


class TestOLSCluster(CheckAgainstR):
    # vcovCL(lm(engagement ~ alignment_cascade + manager_program + job_level), cluster = ~manager_id, type = "HC1")
    res2 = "ols_cluster"
    rtol = 1e-8

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_ols(DATA, FORMULA, cluster="manager_id")

    def test_naive_standard_errors(self):
        naive = self.res1.extras["naive_std_error"]
        assert_allclose(naive.std_error_naive, r_values("ols_cluster", "std_error_naive", naive.term), rtol=1e-8)  # vcov(fit)
        # clustering by manager roughly doubles the SE of the manager-level programme effect here
        ratio = naive.set_index("term").loc["manager_program", "ratio"]
        assert 1.5 < ratio < 2.5, ratio

    def test_glance(self):
        g = self.res1.glance().iloc[0]
        assert_allclose(g["r_squared"], r_values("ols_cluster", "r_squared").iloc[0], rtol=1e-10)  # summary(fit)$r.squared
        assert g["cov_type"] == "cluster: manager_id" and g["n_groups"] == 120


class TestLogitCluster(CheckAgainstR):
    # vcovCL(glm(left_next_cycle ~ engagement + manager_program + alignment_cascade, binomial), cluster = ~manager_id, type = "HC1")
    res2 = "logit_cluster"
    rtol = 1e-7

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_logit(DATA, "left_next_cycle ~ engagement + manager_program + alignment_cascade",
                                cluster="manager_id")

    def test_odds_ratios_and_loglik(self):
        t = self.res1.tidy()
        assert_allclose(t.exp_estimate, np.exp(t.estimate))
        assert_allclose(self.res1.glance()["log_likelihood"].iloc[0], r_values("logit_cluster", "log_likelihood").iloc[0],
                        rtol=1e-10)  # logLik(fit)
        assert self.res1.glance()["events"].iloc[0] == int(DATA.left_next_cycle.sum())


class TestWithin(CheckAgainstR):
    # coef(lm(engagement ~ alignment_cascade + wave + factor(employee_id)));
    # vcovCL(lm(demeaned y ~ 0 + demeaned X), cluster = employee_id, type = "HC1")
    res2 = "within"
    rtol = 1e-8

    @classmethod
    def setup_class(cls):
        cls.res1 = ar.fit_within(DATA, "engagement ~ alignment_cascade + C(wave)")

    def test_constant_within_person_is_an_error(self):
        with pytest.raises(ar.ModelError, match="never change within"):
            ar.fit_within(DATA, "engagement ~ alignment_cascade + manager_program")


# --------------------------------------------------------------------------- boundary


def _null_team_data(seed=0):
    """Teams with NO manager variance: statsmodels MixedLM then lands on the boundary."""
    rng = np.random.default_rng(seed)
    G, m = 60, 5
    team = np.repeat(np.arange(G), m)
    program = np.repeat(rng.binomial(1, 0.5, G), m)
    x = rng.normal(size=G * m)
    y = 1 + 0.3 * program + 0.5 * x + rng.normal(size=G * m)
    return pd.DataFrame({"engagement": y, "alignment": x, "manager_program": program, "manager_id": team})


def test_statsmodels_boundary_is_detected_and_flagged():
    data = _null_team_data()
    with pytest.warns(ar.StatisticalWarning, match="at or near zero in statsmodels MixedLM"):
        res = ar.fit_mixed(data, "engagement ~ alignment + manager_program", groups="manager_id", engine="statsmodels")
    g = res.glance().iloc[0]
    assert g["boundary"]
    assert g["var_manager_id"] < 1e-6  # statsmodels returns ~6e-9 here and claims convergence


def test_exact_engine_boundary_is_a_singular_fit_equal_to_ols():
    data = _null_team_data()
    with pytest.warns(ar.StatisticalWarning, match="singular fit"):
        res = ar.fit_mixed(data, "engagement ~ alignment + manager_program", groups="manager_id")
    assert res.glance()["boundary"].iloc[0] and res.glance()["var_manager_id"].iloc[0] == 0.0
    ols = ar.fit_ols(data, "engagement ~ alignment + manager_program")
    # at sigma_b = 0 the REML fit is OLS (lmer reports the same "boundary (singular) fit")
    assert_allclose(res.tidy().estimate, ols.tidy().estimate, rtol=1e-10)
    assert_allclose(res.tidy().std_error, ols.tidy().std_error, rtol=1e-10)


def test_no_boundary_warning_when_groups_vary():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ar.StatisticalWarning)
        res = ar.fit_mixed(DATA, FORMULA, groups="manager_id")
    assert not res.glance()["boundary"].iloc[0]


def test_engine_agrees_with_statsmodels_on_a_fresh_dataset(rng):
    G = 200
    g = rng.integers(0, G, 2000)
    x = rng.normal(size=2000)
    y = 0.5 * x + rng.normal(0, 0.5, G)[g] + rng.normal(size=2000)
    fit = fit_random_intercept(np.column_stack([np.ones(2000), x]), y, g, reml=True)
    import statsmodels.api as sm

    sm_fit = sm.MixedLM(y, np.column_stack([np.ones(2000), x]), groups=g).fit(reml=True)
    assert_allclose(fit.beta, sm_fit.fe_params, rtol=1e-4)
    assert_allclose(fit.sigma2_b, float(np.asarray(sm_fit.cov_re).ravel()[0]), rtol=1e-3)
    assert fit.log_likelihood >= sm_fit.llf - 1e-6  # ours is at the optimum, statsmodels at most as high


# --------------------------------------------------------------------------- ordinal: proportional-odds check


def test_brant_rejects_non_proportional_odds(rng):
    n = 3000
    x = rng.normal(size=n)
    # the slope differs across cuts: P(Y > k) has slope 0.2, 1.0, 2.0
    lat = [rng.logistic(size=n) + b * x for b in (0.2, 1.0, 2.0)]
    y = 1 + (lat[0] > -1).astype(int) + (lat[1] > 0.5).astype(int) * (lat[0] > -1) + (lat[2] > 2).astype(int) * (
        lat[1] > 0.5
    ) * (lat[0] > -1)
    data = pd.DataFrame({"rating": y, "x": x})
    with pytest.warns(ar.StatisticalWarning, match="Brant test rejects"):
        res = ar.fit_ordinal(data, "rating ~ x")
    assert res.glance()["brant_p_value"].iloc[0] < 1e-6
    cum = res.extras["cumulative_logits"]
    assert cum.estimate.iloc[-1] > cum.estimate.iloc[0] + 0.5


def test_brant_binary_logits_equal_statsmodels_logit():
    import statsmodels.api as sm

    res = ar.fit_ordinal(DATA, "rating ~ alignment_cascade + manager_program + engagement")
    cum = res.extras["cumulative_logits"]
    X = sm.add_constant(DATA[["alignment_cascade", "manager_program", "engagement"]])
    ref = sm.Logit((DATA.rating > 2).astype(float), X).fit(disp=0)
    ours = cum[cum.cut == "> 2"]
    assert_allclose(ours.estimate, ref.params.iloc[1:], rtol=1e-7)
    assert_allclose(ours.std_error, ref.bse.iloc[1:], rtol=1e-5)


# --------------------------------------------------------------------------- mediation


def test_mediation_linear_equals_product_of_coefficients():
    res = ar.fit_mediation(DATA, treatment="manager_program", mediator="alignment_cascade", outcome="engagement",
                           n_boot=200, seed=3)
    t = res.tidy().set_index("term")
    med = ar.fit_ols(DATA, "alignment_cascade ~ manager_program").tidy().set_index("term")
    out = ar.fit_ols(DATA, "engagement ~ manager_program + alignment_cascade").tidy().set_index("term")
    a, b, c = med.estimate["manager_program"], out.estimate["alignment_cascade"], out.estimate["manager_program"]
    assert_allclose(t.estimate["indirect"], a * b, rtol=1e-10)
    assert_allclose(t.estimate["direct"], c, rtol=1e-10)
    assert_allclose(t.estimate["total"], a * b + c, rtol=1e-10)
    assert_allclose(t.estimate["share_mediated"], a * b / (a * b + c), rtol=1e-10)
    # bootstrap SE of a*b close to the Sobel (delta-method) SE
    sobel = np.sqrt(a**2 * out.std_error["alignment_cascade"] ** 2 + b**2 * med.std_error["manager_program"] ** 2)
    assert_allclose(t.std_error["indirect"], sobel, rtol=0.25)
    assert t.conf_low["indirect"] < a * b < t.conf_high["indirect"]


@pytest.mark.parametrize("cluster, covariates", [("manager_id", ()), (None, ("job_level",))])
def test_linear_mediation_draws_equal_refitting_every_resample(cluster, covariates):
    # the vectorised bootstrap (unit counts x per-unit cross-products) against refitting each resample's rows
    from alignment_research import engagement

    cols = ["manager_program", "alignment_cascade", "engagement", *covariates]
    sub, T, M, Y, C = engagement._mediation_arrays(DATA, cols, cluster)
    codes = None if cluster is None else pd.factorize(sub[cluster])[0]
    effects = dict(binary=False, t1=1.0, t0=0.0)
    draws, failed = engagement._bootstrap_mediation(T, M, Y, C, codes, n_boot=60, rng=np.random.default_rng(4),
                                                    **effects)
    rng = np.random.default_rng(4)
    members = None if codes is None else [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    refit = []
    for _ in range(60):
        if members is None:
            rows = rng.integers(0, len(T), len(T))
        else:
            rows = np.concatenate([members[g] for g in rng.integers(0, len(members), len(members))])
        refit.append(engagement._mediation_effects(T[rows], M[rows], Y[rows], C[rows], **effects))
    assert failed == 0 and len(draws) == 60
    assert_allclose(draws.to_numpy(), pd.DataFrame(refit)[list(draws.columns)].to_numpy(), rtol=1e-9, atol=1e-12)


def test_mediation_with_binary_outcome_recovers_the_true_indirect_effect():
    rng = np.random.default_rng(11)
    n = 40000
    T = rng.random(n)  # alignment in [0, 1]
    M = 3 + 0.8 * T + rng.normal(0, 0.5, n)  # engagement
    eta = lambda t, m: -0.5 - 0.3 * t - 0.9 * (m - 3)  # noqa: E731 - log-odds of leaving
    Y = rng.binomial(1, 1 / (1 + np.exp(-eta(T, M))))
    data = pd.DataFrame({"alignment": T, "engagement": M, "left": Y})
    res = ar.fit_mediation(data, treatment="alignment", mediator="engagement", outcome="left", n_boot=0)
    # truth: average over the residual distribution of P(t, M(1)) - P(t, M(0)), t in {0, 1}
    e = rng.normal(0, 0.5, 400000)
    p = lambda t, m: np.mean(1 / (1 + np.exp(-eta(t, m))))  # noqa: E731
    true_acme = np.mean([p(t, 3.8 + e) - p(t, 3 + e) for t in (0, 1)])
    est = res.tidy().set_index("term").estimate
    assert abs(est["indirect"] - true_acme) < 0.01, (est["indirect"], true_acme)
    assert res.glance()["outcome_model"].iloc[0] == "logit"


# --------------------------------------------------------------------------- drivers


def test_driver_weights_sum_to_r_squared_and_match_two_orthogonal_drivers(rng):
    n = 4000
    a, b = rng.normal(size=n), rng.normal(size=n)
    a = a - a.mean()
    b = b - b.mean() - (b @ a) / (a @ a) * a  # exactly orthogonal: each weight is its own r^2
    y = 0.6 * a + 0.3 * b + rng.normal(size=n)
    data = pd.DataFrame({"engagement": y, "a": a, "b": b})
    res = ar.driver_analysis(data, drivers=["a", "b"], n_boot=50, person=None)  # one row per person
    t = res.tidy()
    r2 = ar.fit_ols(data, "engagement ~ a + b").glance()["r_squared"].iloc[0]
    assert_allclose(t.estimate.sum(), r2, rtol=1e-10)
    assert_allclose(t.estimate, [np.corrcoef(y, a)[0, 1] ** 2, np.corrcoef(y, b)[0, 1] ** 2], rtol=1e-10)
    assert_allclose(t.share.sum(), 1.0)
    assert list(t["rank"]) == [1.0, 2.0]
    assert (t.conf_low < t.estimate).all() and (t.estimate < t.conf_high).all()


def test_driver_resamples_are_correlated_from_counts_as_from_their_rows():
    # the bootstrap's correlations come from each resample's row counts; they must be np.corrcoef of its rows,
    # and a resample in which a column is constant (the rare 1 below) is left out, as np.std says
    from alignment_research.engagement import _dominance, _resample_correlations

    rng = np.random.default_rng(4)
    n = 12
    x = np.column_stack([rng.normal(3.5, 0.6, n), rng.normal(size=n), np.r_[1.0, np.zeros(n - 1)] + 0.5])
    resamples = [rng.integers(0, n, n) for _ in range(300)]
    corr, varies = _resample_correlations(x, resamples)
    expected = np.array([bool(np.all(np.std(x[idx], axis=0) > 0)) for idx in resamples])
    assert (varies == expected).all() and 0 < (~varies).sum() < len(resamples)
    for r in np.flatnonzero(varies):
        assert_allclose(corr[r], np.corrcoef(x[resamples[r]], rowvar=False), rtol=1e-10, atol=1e-12)
    weights, r2, beta = _dominance(corr[varies])
    one = _dominance(np.corrcoef(x[resamples[np.flatnonzero(varies)[0]]], rowvar=False)[None])
    assert_allclose(weights[0], one[0][0], rtol=1e-9)
    assert_allclose(beta[0], one[2][0], rtol=1e-9)
    assert_allclose(weights.sum(axis=1), r2, rtol=1e-10)


def test_driver_groups_below_minimum_are_suppressed():
    data = DATA.copy()
    data.loc[:2, "department"] = "Tiny"  # three people
    res = ar.driver_analysis(data, drivers=["alignment_cascade", "manager_program"], by="department", n_boot=10)
    t = res.tidy()
    assert "Tiny" not in set(t.group)  # pooled, and the pool (under 5 people) suppressed
    tiny = t[t.group == "Other departments (each < 5 people)"]
    assert len(tiny) == 2 and tiny.suppressed.all() and tiny.estimate.isna().all() and tiny.n.isna().all()
    assert not t[t.group == "all"].suppressed.any()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ar.fit_ols(DATA, "engagement ~ not_a_column"), "not_a_column"),
        (lambda: ar.fit_ols(DATA, "alignment_cascade + manager_program"), "must name the outcome"),
        (lambda: ar.fit_logit(DATA, "engagement ~ manager_program"), "must be 0/1"),
        (lambda: ar.fit_mixed(DATA, FORMULA, groups="nope"), "nope"),
        (lambda: ar.fit_ordinal(DATA, "left_next_cycle ~ engagement"), "at least 3"),
        (lambda: ar.fit_mixed(DATA, FORMULA, groups="manager_id", engine="magic"), "engine"),
        (lambda: ar.fit_ols(DATA.assign(k=1.0), "engagement ~ k"), "do not vary"),
    ],
)
def test_bad_input_raises_model_error(call, match):
    with pytest.raises(ar.ModelError, match=match):
        call()


def test_result_plots_draw_their_tables():
    res = ar.fit_logit(DATA, "left_next_cycle ~ engagement + manager_program", cluster="manager_id")
    ax = res.plot()
    assert ax.get_xscale() == "log" and len(ax.get_yticklabels()) == 2  # odds ratios, intercept left out
    mixed = ar.fit_mixed(DATA, FORMULA, groups="manager_id")
    ax2 = ar.plot_residuals(mixed.extras["residuals"], ax=ax.figure.add_subplot(2, 1, 2))
    assert len(ax2.collections[0].get_offsets()) == 1457
    drivers = ar.driver_analysis(DATA, drivers=["alignment_cascade", "manager_program"], n_boot=10)
    ax3 = drivers.plot()
    assert len(ax3.patches) == 2


def test_runs_on_the_analysis_tables(tiny_clean):
    panel = tiny_clean.analysis.survey_panel
    cycles = tiny_clean.analysis.cycles
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        mixed = ar.fit_mixed(panel, "engagement ~ alignment_cascade + manager_program + C(job_level)", groups="manager_id")
        ordinal = ar.fit_ordinal(cycles, "rating ~ alignment_cascade + attainment")
    assert mixed.glance()["n"].iloc[0] == panel.dropna(subset=["engagement", "alignment_cascade", "manager_id",
                                                              "job_level"]).shape[0]
    assert ordinal.tidy().term.str.contains(r"\|").sum() == cycles.rating.nunique() - 1


def test_cycle_engagement_averages_responses_within_each_cycle():
    from types import SimpleNamespace

    import datetime as dt

    config = SimpleNamespace(cycles=[SimpleNamespace(name="2021", start=dt.date(2021, 1, 1), end=dt.date(2021, 12, 31)),
                                     SimpleNamespace(name="2022", start=dt.date(2022, 1, 1), end=dt.date(2022, 12, 31))])
    cycles = pd.DataFrame({"employee_id": ["E1", "E1", "E2"], "cycle": ["2021", "2022", "2021"],
                           "left_next_cycle": [0, 1, 0]}, index=[10, 11, 12])
    panel = pd.DataFrame({"employee_id": ["E1", "E1", "E1", "E2"],
                          "survey_date": pd.to_datetime(["2021-03-01", "2021-12-31", "2022-01-01", "2023-02-01"]),
                          "engagement": [3.0, 4.0, 2.0, 5.0]})
    out = ar.cycle_engagement(cycles, panel, config)
    assert list(out.index) == [10, 11, 12]  # source rows kept
    assert_allclose(out.engagement, [3.5, 2.0, np.nan])  # E2's 2023 answer lies in no configured cycle
    assert out.n_responses.tolist() == [2, 1, 0]
    with pytest.raises(ar.ModelError, match="not in the study configuration"):
        ar.cycle_engagement(cycles.assign(cycle="1999"), panel, config)


# --------------------------------------------------------------------------- what each result says it is


@pytest.mark.parametrize(
    "fit, outcome, scale, measure",
    [
        (lambda a: ar.fit_ols(DATA, FORMULA, cluster="manager_id", alpha=a), "engagement", "difference", "difference"),
        (lambda a: ar.fit_mixed(DATA, FORMULA, groups="manager_id", alpha=a), "engagement", "difference", "difference"),
        (lambda a: ar.fit_within(DATA, "engagement ~ alignment_cascade + C(wave)", alpha=a), "engagement",
         "difference", "difference"),
        (lambda a: ar.fit_logit(DATA, "left_next_cycle ~ engagement", alpha=a), "left next cycle", "ratio",
         "odds ratio"),
        (lambda a: ar.fit_ordinal(DATA, "rating ~ engagement", alpha=a), "the employee's review rating", "ratio",
         "odds ratio"),
        (lambda a: ar.fit_mediation(DATA, treatment="manager_program", mediator="alignment_cascade",
                                    outcome="engagement", n_boot=20, alpha=a), "engagement", "difference", "difference"),
        (lambda a: ar.fit_mediation(DATA, treatment="alignment_cascade", mediator="engagement",
                                    outcome="left_next_cycle", n_boot=20, alpha=a), "left next cycle", "difference",
         "probability difference"),
        (lambda a: ar.driver_analysis(DATA, drivers=["alignment_cascade", "manager_program"], n_boot=10, alpha=a),
         "engagement", "difference", "R² contribution"),
    ],
    ids=["ols", "mixed", "within", "logit", "ordinal", "mediation", "mediation_binary", "drivers"],
)
def test_every_result_says_what_it_is(fit, outcome, scale, measure):
    # the outcome in the report's words for the formula's left side (report.TERM_LABELS, before " (")
    res = fit(0.1)
    assert (res.alpha, res.outcome, res.scale, res.measure) == (0.1, outcome, scale, measure)
    assert res.conf_label == "90% CI"


def test_each_fit_keeps_its_reference_distribution():
    z90 = st.norm.ppf(0.95)
    half = lambda t: ((t.conf_high - t.estimate) / t.std_error).to_numpy()  # noqa: E731
    plain = ar.fit_ols(DATA, FORMULA, alpha=0.1)
    df = plain.glance()["n"].iloc[0] - len(plain.tidy())
    assert_allclose(half(plain.tidy()), st.t.ppf(0.95, df), rtol=1e-10)  # t(N - K) without clusters, as lm()
    for res in (ar.fit_ols(DATA, FORMULA, cluster="manager_id", alpha=0.1),  # statsmodels: normal when clustered
                ar.fit_within(DATA, "engagement ~ alignment_cascade + C(wave)", alpha=0.1),
                ar.fit_logit(DATA, "left_next_cycle ~ engagement", cluster="manager_id", alpha=0.1),
                ar.fit_mixed(DATA, FORMULA, groups="manager_id", alpha=0.1)):
        t = res.tidy()
        assert_allclose(half(t), z90, rtol=1e-10)
        assert_allclose(t.p_value, 2 * st.norm.sf(np.abs(t.estimate / t.std_error)), rtol=1e-10)


def test_logit_runs_on_the_shared_engine_with_statsmodels_numbers():
    import statsmodels.api as sm

    res = ar.fit_logit(DATA, "left_next_cycle ~ engagement + manager_program", cluster="manager_id")
    assert isinstance(res.model, LogisticFit) and not res.model.separated
    X = sm.add_constant(DATA[["engagement", "manager_program"]].to_numpy(float))
    ref = sm.Logit(DATA.left_next_cycle.to_numpy(float), X).fit(
        disp=0, method="newton", tol=1e-12, cov_type="cluster", cov_kwds={"groups": DATA.manager_id.to_numpy()})
    g = res.glance().iloc[0]
    assert_allclose(res.tidy().std_error, ref.bse, rtol=1e-9)
    assert_allclose(g["aic"], ref.aic, rtol=1e-12)
    assert_allclose(g["pseudo_r_squared"], ref.prsquared, rtol=1e-7)  # statsmodels fits its null model numerically
    share = DATA.left_next_cycle.mean()
    null = len(DATA) * (share * np.log(share) + (1 - share) * np.log(1 - share))
    assert_allclose(g["pseudo_r_squared"], 1 - g["log_likelihood"] / null, rtol=1e-12)  # McFadden


def test_within_equals_statsmodels_ols_on_the_demeaned_data():
    import statsmodels.api as sm

    data = DATA.assign(wave_number=DATA.wave.astype(float))
    res = ar.fit_within(data, "engagement ~ alignment_cascade + wave_number", cluster="manager_id")
    cols = ["engagement", "alignment_cascade", "wave_number"]
    demeaned = data[cols] - data.groupby("employee_id")[cols].transform("mean")
    ref = sm.OLS(demeaned.engagement, demeaned[cols[1:]]).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(DATA.manager_id)[0]})
    assert_allclose(res.tidy().estimate, ref.params, rtol=1e-10)
    assert_allclose(res.tidy().std_error, ref.bse, rtol=1e-10)
    assert res.model is None and res.glance()["n_clusters"].iloc[0] == DATA.manager_id.nunique()


def test_mediation_outcome_model_that_separates_is_an_error():
    # the outcome is 1 exactly when the mediator is positive: the shared logistic engine calls it separated
    rng = np.random.default_rng(3)
    m = rng.normal(size=40)
    data = pd.DataFrame({"t": rng.integers(0, 2, 40).astype(float), "m": m, "y": (m > 0).astype(float)})
    with pytest.raises(ar.ModelError, match="separation"):
        ar.fit_mediation(data, treatment="t", mediator="m", outcome="y", n_boot=5)


def test_brant_test_is_missing_when_a_cumulative_logit_separates():
    # the top category holds exactly the rows with x > 1: the binary logit of Y > 2 separates
    rng = np.random.default_rng(5)
    x = np.linspace(-2, 2, 80)
    rating = np.where(x > 1, 3, np.where(rng.random(80) < 1 / (1 + np.exp(-x)), 2, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ordinal fit's own separation caveat
        res = ar.fit_ordinal(pd.DataFrame({"rating": rating, "x": x}), "rating ~ x")
    po = res.extras["proportional_odds"]
    assert po.chi2.isna().all() and np.isnan(res.glance()["brant_df"].iloc[0])
    assert res.extras["cumulative_logits"].empty


# --------------------------------------------------------------------------- multiway clustering

PETERSEN = pd.read_csv(REF / "multiway_data.csv")  # sandwich's PetersenCL, written by tests/reference/multiway.R
MULTIWAY_R = pd.read_csv(REF / "multiway_reference.csv")


@pytest.mark.parametrize(
    "fit, model, formula, cluster",
    [
        (ar.fit_ols, "lm", "y ~ x", ["firm", "year"]),
        (ar.fit_logit, "logit", "yb ~ x", ["firm", "year"]),
        (ar.fit_ols, "lm", "y ~ x", ["firm", "year", "region"]),
        (ar.fit_logit, "logit", "yb ~ x", ["firm", "year", "region"]),
    ],
)
def test_multiway_cluster_matches_sandwich_vcovcl(fit, model, formula, cluster):
    """``vcovCL(fit, cluster = ~ firm + year [+ region], type = "HC1")`` on PetersenCL, to 1e-9."""
    with pytest.warns(ar.StatisticalWarning) as caught:
        res = fit(PETERSEN, formula, cluster=cluster)
    assert any("Only 10 clusters in `year`" in str(w.message) for w in caught)
    # one caveat per way with fewer than 30 clusters, none for the 500 firms
    assert sum("clusters in `" in str(w.message) for w in caught) == len(cluster) - 1
    assert sum("clusters in `" in c for c in res.caveats) == len(cluster) - 1
    ref = MULTIWAY_R[MULTIWAY_R["case"] == f"{model}: {' + '.join(cluster)}"]["value"].to_numpy(float)
    coef = MULTIWAY_R[MULTIWAY_R["case"] == f"{model}: coefficients"]["value"].to_numpy(float)
    assert_allclose(res.cov_params.ravel(), ref, rtol=1e-9, atol=0)
    assert_allclose(res.tidy()["estimate"], coef, rtol=1e-9)
    assert_allclose(res.tidy()["std_error"], np.sqrt(ref[[0, 3]]), rtol=1e-9)
    # normal reference, as one-way clustering
    row = res.tidy().iloc[1]
    assert row["p_value"] == pytest.approx(2 * st.norm.sf(abs(row["estimate"] / row["std_error"])), rel=1e-12)
    glance = res.glance().iloc[0]
    assert glance["cov_type"] == "cluster: " + " + ".join(cluster)
    assert (glance["n_groups_firm"], glance["n_groups_year"]) == (500, 10)
    assert glance["n_groups"] == (5 if "region" in cluster else 10)  # the smallest way
    assert glance.get("n_groups_region", 5) == 5


@pytest.mark.parametrize("fit, formula", [(ar.fit_ols, "y ~ x"), (ar.fit_logit, "yb ~ x")])
def test_one_cluster_column_in_a_list_is_bit_identical_to_the_string(fit, formula):
    as_string = fit(PETERSEN, formula, cluster="firm")
    as_list = fit(PETERSEN, formula, cluster=["firm"])
    assert np.array_equal(as_list.cov_params, as_string.cov_params)
    pd.testing.assert_frame_equal(as_list.tidy(), as_string.tidy())
    pd.testing.assert_frame_equal(as_list.glance(), as_string.glance())
    assert "n_groups_firm" not in as_list.glance().columns and as_list.glance()["n_groups"].iloc[0] == 500


_SMALL = pd.DataFrame({
    "y": [1.0, 0.0, 2.0, 1.0, 3.0, 1.0, 0.0, 2.0],
    "yb": [1, 0, 1, 0, 1, 1, 0, 0],
    "x": [0.1, 0.5, 0.9, 0.2, 0.4, 0.8, 0.3, 0.6],
    "manager_id": ["m1", "m1", "m2", "m2", "m3", "m3", "m4", "m4"],
    "cycle": ["2024", "2025", "2024", "2025", "2024", "2025", "2024", "2025"],
    "company": ["acme"] * 8,
})


@pytest.mark.parametrize("fit, formula", [(ar.fit_ols, "y ~ x"), (ar.fit_logit, "yb ~ x")])
@pytest.mark.parametrize(
    "cluster, match",
    [
        (["manager_id", "company"], r"at least 2 clusters, but the cluster column `company` has 1"),
        (["manager_id", "cyle"], r"no column\(s\) \['cyle'\]"),
        (["manager_id", "manager_id"], r"names \['manager_id'\] more than once"),
        ([], r"non-empty list of column names"),
        (["manager_id", 3], r"non-empty list of column names"),
    ],
)
def test_multiway_cluster_refuses_bad_columns(fit, formula, cluster, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        with pytest.raises(ar.ModelError, match=match):
            fit(_SMALL, formula, cluster=cluster)


def test_nested_variance_component_is_the_one_statsmodels_builds_from_its_formula():
    """The employee-within-manager component, built without a patsy design per team, is statsmodels' own.

    The reference: ``MixedLM.from_formula("_y ~ 1", frame, groups="manager_id", re_formula="1",
    vc_formula={"employee_id": "0 + C(_nested)"}).exog_vc``: names, column names, every matrix and its layout.
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    from alignment_research.engagement import _nested_components

    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({"manager_id": rng.choice([f"m{k}" for k in range(23)], n),
                          "employee_id": rng.choice([f"e{k}" for k in range(120)], n), "_y": rng.normal(size=n)})
    frame["_nested"] = frame["manager_id"] + "/" + frame["employee_id"]
    expected = MixedLM.from_formula("_y ~ 1", frame, groups="manager_id", re_formula="1",
                                    vc_formula={"employee_id": "0 + C(_nested)"}).exog_vc
    got = _nested_components(frame, "manager_id", "employee_id")
    assert got.names == expected.names and got.colnames == expected.colnames
    assert len(got.mats[0]) == len(expected.mats[0]) == 23
    for ours, theirs in zip(got.mats[0], expected.mats[0]):
        np.testing.assert_array_equal(ours, theirs)
        assert (ours.dtype, ours.flags["C_CONTIGUOUS"]) == (theirs.dtype, theirs.flags["C_CONTIGUOUS"])
