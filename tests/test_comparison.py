"""Tests of comparison.py: likelihood-ratio tests, AIC and BIC against R's anova() on R's own data.

Reference chain: tests/reference/comparison.R (R 4.2.2; survival 3.5-3, MASS 7.3-58, lme4 1.1-31; see
comparison_reference_provenance.txt) exports veteran, birthwt, housing and sleepstudy beside itself and
writes comparison_reference.csv: per model logLik, df, AIC, BIC; per comparison the chi-square test.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import alignment_research as ar
from alignment_research.comparison import COMPARISON_COLUMNS
from alignment_research.errors import ModelError, StatisticalWarning

REF = Path(__file__).parent / "reference"
REFERENCE = pd.read_csv(REF / "comparison_reference.csv")


def r_values(model, quantity):
    """R's values of one comparison, one per model in order (term 1, 2, ...)."""
    rows = REFERENCE[(REFERENCE["model"] == model) & (REFERENCE["quantity"] == quantity)]
    rows = rows[rows["term"] > 0].sort_values("term")
    return rows["value"].to_numpy(float)


def check_against_r(table, model, *, rtol=1e-8, p_rtol=1e-5):
    assert list(table.columns) == COMPARISON_COLUMNS
    assert_allclose(table["log_likelihood"], r_values(model, "log_likelihood"), rtol=rtol)
    assert table["df"].tolist() == r_values(model, "df").astype(int).tolist()  # attr(logLik(fit), "df")
    assert_allclose(table["aic"], r_values(model, "aic"), rtol=rtol)  # AIC(fit)
    assert_allclose(table["bic"], r_values(model, "bic"), rtol=rtol)  # BIC(fit)
    assert_allclose(table["deviance"], -2 * r_values(model, "log_likelihood"), rtol=rtol)
    # anova(): the first row has no test, then the chi-square test of each model against the one before
    stat, df, p = r_values(model, "lr_statistic"), r_values(model, "lr_df"), r_values(model, "p_value")
    assert np.isnan(table["lr_statistic"].iloc[0]) and np.isnan(stat[0]) and pd.isna(table["lr_df"].iloc[0])
    assert_allclose(table["lr_statistic"].iloc[1:], stat[1:], rtol=1e-6)
    assert table["lr_df"].iloc[1:].astype(int).tolist() == df[1:].astype(int).tolist()
    assert_allclose(table["p_value"].iloc[1:], p[1:], rtol=p_rtol)


@pytest.fixture(scope="module")
def veteran():
    return pd.read_csv(REF / "survival_veteran.csv")


@pytest.fixture(scope="module")
def cox_fits(veteran):
    small = ar.fit_cox(veteran, "karno", duration="time", event="status")
    large = ar.fit_cox(veteran, "karno + C(celltype) + age", duration="time", event="status")
    return small, large


@pytest.fixture(scope="module")
def birthwt():
    return pd.read_csv(REF / "comparison_birthwt.csv")


@pytest.fixture(scope="module")
def housing():
    """MASS::housing expanded by its Freq weights (polr's weights = Freq is the same likelihood)."""
    h = pd.read_csv(REF / "comparison_housing.csv")
    h = h.loc[h.index.repeat(h["Freq"])].reset_index(drop=True)
    h["Sat"] = pd.Categorical(h["Sat"], categories=["Low", "Medium", "High"], ordered=True)
    return h


@pytest.fixture(scope="module")
def sleepstudy():
    return pd.read_csv(REF / "comparison_sleepstudy.csv")


# --------------------------------------------------------------------------- against R
def test_cox_matches_anova_coxph(cox_fits):
    """anova(coxph(Surv(time, status) ~ karno), coxph(... ~ karno + celltype + age)) on veteran."""
    table = ar.compare_models(*cox_fits)
    check_against_r(table, "cox")
    assert table["n"].tolist() == [137, 137]


def test_cox_against_null_model(cox_fits):
    """One fit alone is tested against its null model: 2 (loglik[2] - loglik[1]) of coxph."""
    table = ar.compare_models(cox_fits[0])
    null = REFERENCE[(REFERENCE["model"] == "cox") & (REFERENCE["term"] == 0)].set_index("quantity")["value"]
    assert table["model"].iloc[0] == "null (no covariates)" and table["df"].tolist() == [0, 1]
    assert_allclose(table["log_likelihood"].iloc[0], null["log_likelihood"], rtol=1e-10)
    assert_allclose(table["lr_statistic"].iloc[1], null["lr_statistic"], rtol=1e-8)


def test_logit_matches_anova_glm(birthwt):
    """anova(glm(low ~ 1), glm(low ~ age + lwt), glm(... + race + smoke + ht), test = "LRT") on birthwt."""
    fits = [ar.fit_logit(birthwt, f) for f in
            ("low ~ 1", "low ~ age + lwt", "low ~ age + lwt + C(race) + smoke + ht")]
    check_against_r(ar.compare_models(*fits), "logit")
    # the null model from a fit's own glance(): the same first row as fitting low ~ 1
    alone = ar.compare_models(fits[2])
    assert_allclose(alone["log_likelihood"].iloc[0], r_values("logit", "log_likelihood")[0], rtol=1e-10)
    assert alone["df"].tolist() == [1, 7]


def test_ordinal_matches_anova_polr(housing):
    """anova(polr(Sat ~ Infl, weights = Freq), polr(Sat ~ Infl + Type + Cont, weights = Freq)) on housing."""
    small = ar.fit_ordinal(housing, "Sat ~ C(Infl)")
    large = ar.fit_ordinal(housing, "Sat ~ C(Infl) + C(Type) + C(Cont)")
    # the statistic agrees to 1e-6; its p-value (3.7e-13, far in the tail) magnifies that to 1e-4
    check_against_r(ar.compare_models(small, large), "ordinal", rtol=1e-7, p_rtol=1e-3)


def test_mixed_ml_matches_anova_lmer(sleepstudy):
    """anova(lmer(Reaction ~ 1 + (1 | Subject)), lmer(Reaction ~ Days + (1 | Subject)), REML = FALSE)."""
    fits = [ar.fit_mixed(sleepstudy, f, groups="Subject", reml=False) for f in ("Reaction ~ 1", "Reaction ~ Days")]
    check_against_r(ar.compare_models(*fits), "mixed", rtol=1e-7)


def test_ols_and_mixed_match_r(sleepstudy):
    """lm(Reaction ~ 1) vs lm(Reaction ~ Days) (lmtest::lrtest arithmetic); lm vs lmer as anova(lmer, lm)."""
    ols0, ols1 = ar.fit_ols(sleepstudy, "Reaction ~ 1"), ar.fit_ols(sleepstudy, "Reaction ~ Days")
    check_against_r(ar.compare_models(ols0, ols1), "ols")
    mixed = ar.fit_mixed(sleepstudy, "Reaction ~ Days", groups="Subject", reml=False)
    with pytest.warns(StatisticalWarning, match="boundary"):
        table = ar.compare_models(ols1, mixed)
    check_against_r(table, "ols_vs_mixed", rtol=1e-7)
    assert any("boundary" in c for c in table.attrs["caveats"])


def test_glance_bic_and_n_params_follow_r(cox_fits, birthwt, housing, sleepstudy):
    """glance() bic as BIC(fit) and n_params as attr(logLik(fit), "df"); existing aic values unchanged."""
    g = cox_fits[1].glance().iloc[0]
    assert g["n_params"] == 5
    assert_allclose(g["bic"], r_values("cox", "bic")[1], rtol=1e-10)  # BIC(coxph): log(events)
    assert_allclose(g["aic"], r_values("cox", "aic")[1], rtol=1e-10)
    g = ar.fit_logit(birthwt, "low ~ age + lwt").glance().iloc[0]
    assert g["n_params"] == 3
    assert_allclose([g["aic"], g["bic"]], [r_values("logit", "aic")[1], r_values("logit", "bic")[1]], rtol=1e-10)
    g = ar.fit_ordinal(housing, "Sat ~ C(Infl)").glance().iloc[0]
    assert g["n_params"] == 4
    assert_allclose([g["aic"], g["bic"]], [r_values("ordinal", "aic")[0], r_values("ordinal", "bic")[0]], rtol=1e-7)
    g = ar.fit_ols(sleepstudy, "Reaction ~ Days").glance().iloc[0]
    assert g["n_params"] == 3  # R counts sigma
    assert_allclose(g["bic"], r_values("ols", "bic")[1], rtol=1e-10)
    assert_allclose(g["aic"], r_values("ols", "aic")[1] - 2, rtol=1e-10)  # statsmodels' aic, as before


# --------------------------------------------------------------------------- refusals and caveats
def test_refuses_models_on_different_rows(birthwt):
    gappy = birthwt.assign(lwt=birthwt["lwt"].where(birthwt.index % 10 != 0))
    with pytest.raises(ModelError, match=r"different numbers of rows \(189 .*170"):
        ar.compare_models(ar.fit_logit(gappy, "low ~ age"), ar.fit_logit(gappy, "low ~ age + lwt"))


def test_refuses_different_outcomes_kinds_and_equal_df(birthwt, sleepstudy, cox_fits):
    with pytest.raises(ModelError, match="different outcomes"):
        ar.compare_models(ar.fit_logit(birthwt, "low ~ age"), ar.fit_logit(birthwt, "smoke ~ age + lwt"))
    with pytest.raises(ModelError, match="one kind"):
        ar.compare_models(ar.fit_ols(birthwt, "low ~ age"), ar.fit_logit(birthwt, "low ~ age + lwt"))
    with pytest.raises(ModelError, match="same number of parameters"):
        ar.compare_models(ar.fit_logit(birthwt, "low ~ age"), ar.fit_logit(birthwt, "low ~ lwt"))
    with pytest.raises(ModelError, match="without one"):
        ar.compare_models(ar.fit_km(sleepstudy.assign(t=sleepstudy["Days"] + 1, e=1), duration="t", entry=None,
                                    event="e"), cox_fits[0])
    with pytest.raises(ModelError, match="intercept-only"):
        ar.compare_models(ar.fit_ols(sleepstudy, "Reaction ~ Days"))
    with pytest.raises(ModelError, match="`test`"):
        ar.compare_models(*cox_fits, test="wald")
    with pytest.raises(ModelError, match="not a fitted model"):
        ar.compare_models(cox_fits[0], "karno")
    two_rows = ar.ModelResult("cause_specific", cox_fits[0].table,
                              pd.DataFrame({"n": [137, 137], "log_likelihood": [-1.0, -2.0], "aic": [4.0, 6.0]}))
    with pytest.raises(ModelError, match="2 rows in glance"):
        ar.compare_models(two_rows, cox_fits[0])


def test_reml_fits(sleepstudy):
    """REML fits with different fixed effects warn and get no test (R refits them by ML); REML with ML is refused."""
    reml0 = ar.fit_mixed(sleepstudy, "Reaction ~ 1", groups="Subject")
    reml1 = ar.fit_mixed(sleepstudy, "Reaction ~ Days", groups="Subject")
    with pytest.warns(StatisticalWarning, match="reml=False"):
        table = ar.compare_models(reml0, reml1)
    assert table["p_value"].isna().all() and table["lr_statistic"].isna().all() and table["lr_df"].isna().all()
    assert table["log_likelihood"].notna().all()  # the likelihoods and information criteria are still shown
    assert any("reml=False" in c for c in table.attrs["caveats"])
    ml1 = ar.fit_mixed(sleepstudy, "Reaction ~ Days", groups="Subject", reml=False)
    with pytest.raises(ModelError, match="REML and others by ML"):
        ar.compare_models(reml0, ml1)
    ols = ar.fit_ols(sleepstudy, "Reaction ~ Days")
    with pytest.raises(ModelError, match="REML"):
        ar.compare_models(ols, reml1)


def test_clustered_fits_warn_and_keep_a_caveat(birthwt):
    with pytest.warns(StatisticalWarning, match="Only 3 clusters"):
        small = ar.fit_logit(birthwt, "low ~ age", cluster="race")
        large = ar.fit_logit(birthwt, "low ~ age + lwt", cluster="race")
    with pytest.warns(StatisticalWarning, match="assumes independent rows"):
        table = ar.compare_models(small, large)
    assert any("cluster: race" in c for c in table.attrs["caveats"])
    # the statistic is the model-based LR statistic all the same
    plain = ar.compare_models(ar.fit_logit(birthwt, "low ~ age"), ar.fit_logit(birthwt, "low ~ age + lwt"))
    assert_allclose(table["lr_statistic"].iloc[1], plain["lr_statistic"].iloc[1], rtol=1e-12)
    assert plain.attrs["caveats"] == []


def test_not_nested_terms_warn_and_order_is_kept(birthwt):
    """The larger model is the alternative whichever comes first; terms not in the larger model warn."""
    small, large = ar.fit_logit(birthwt, "low ~ age"), ar.fit_logit(birthwt, "low ~ lwt + smoke")
    with pytest.warns(StatisticalWarning, match="nested"):
        table = ar.compare_models(large, small, names=["large", "small"])
    assert table["model"].tolist() == ["large", "small"] and table["df"].tolist() == [3, 2]
    expected = 2 * (table["log_likelihood"].iloc[0] - table["log_likelihood"].iloc[1])
    assert_allclose(table["lr_statistic"].iloc[1], expected, rtol=1e-12)
    assert table["lr_df"].iloc[1] == 1


def test_random_slope_against_random_intercept_matches_lme4_anova():
    """R: m0 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
          m1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE); anova(m0, m1)
    gives npar 4 and 6, AIC 1802.1 and 1763.9, logLik -897.04 and -875.97, Chisq 42.139 on 2 df, p 7.072e-10."""
    import warnings

    from scipy import stats

    data = pd.read_csv(Path(__file__).parent / "reference" / "mixed_slopes_sleepstudy.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = ar.fit_mixed(data, "Reaction ~ Days + (1 | Subject)", reml=False)
        m1 = ar.fit_mixed(data, "Reaction ~ Days + (Days | Subject)", reml=False)
    table = ar.compare_models(m0, m1)
    assert table["df"].tolist() == [4, 6]
    assert table["log_likelihood"].round(2).tolist() == [-897.04, -875.97]
    assert table["aic"].round(1).tolist() == [1802.1, 1763.9]
    assert table["lr_statistic"].iloc[1] == pytest.approx(42.139, abs=5e-4)
    assert table["p_value"].iloc[1] == pytest.approx(stats.chi2.sf(table["lr_statistic"].iloc[1], 2), rel=1e-12)
    assert table["p_value"].iloc[1] == pytest.approx(7.072e-10, rel=1e-3)
