"""Who it works for: per-group effects, simultaneous intervals, the heterogeneity test and the brief's paragraph.

R reference values come from ``tests/reference/heterogeneity.R`` (R's ChickWeight and survival's cgd, exported
beside it); the Wald tests there are coded by hand in base R with ``sandwich::vcovCL`` and ``coxph``'s robust
variance.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from numpy.testing import assert_allclose

import alignment_research as ar

HERE = Path(__file__).parent / "reference"
REF = pd.read_csv(HERE / "heterogeneity_reference.csv")
CHICK = pd.read_csv(HERE / "heterogeneity_chickweight.csv")
CGD = pd.read_csv(HERE / "heterogeneity_cgd.csv")


def _ref(model: str, quantity: str, term=None):
    rows = REF[(REF.model == model) & (REF.quantity == quantity)]
    if term is not None:
        return float(rows.loc[rows.term == term, "value"].iloc[0])
    return rows.set_index("term")["value"]


def _groups(result, term, by):
    t = result.tidy()
    return t[(t.term == term) & (t.by == by)].set_index("group")


# --------------------------------------------------------------------------- R reference


@pytest.fixture(scope="module")
def clustered():
    return ar.fit_group_effects(CHICK, "weight ~ Time", term="Time", by="Diet", cluster="Chick", person="Chick")


@pytest.fixture(scope="module")
def plain():
    return ar.fit_group_effects(CHICK, "weight ~ Time", term="Time", by="Diet", person="Chick")


@pytest.fixture(scope="module")
def cgd_fit():
    return ar.fit_group_effects(CGD, "treated + age", model="cox", start="tstart", stop="tstop", event="status",
                                term="treated", by="hos_cat", cluster="id", person="id")


class TestOLSAgainstR:
    """``lm(weight ~ Diet + Diet:Time, ChickWeight)``; clustered by chick with ``vcovCL(type = "HC1")``."""

    def test_per_group_slopes_and_clustered_errors(self, clustered):
        res1 = _groups(clustered, "Time", "Diet")
        res1.index = res1.index.astype(str)
        for q in ("estimate", "std_error", "conf_low_adjusted", "conf_high_adjusted", "p_adjusted"):
            res2 = _ref("ols_cluster", q)  # coef(fit)[idx], sqrt(diag(vcovCL(...))), b -/+ qnorm(1 - .05/8) se, p.adjust
            assert_allclose(res1.loc[res2.index, q], res2, rtol=1e-6, err_msg=q)

    def test_clustered_wald_test(self, clustered):
        g = clustered.glance().iloc[0]
        assert g["test"] == "F" and g["df"] == 3 and g["n_groups"] == 4 and g["df_denom"] == 49  # 50 chicks
        assert_allclose(3 * g["statistic"], _ref("ols_cluster", "wald", "heterogeneity"), rtol=1e-6)  # hand Wald
        assert_allclose(g["p_value"], _ref("ols_cluster", "p_value", "heterogeneity"), rtol=1e-6)  # pf(W/3, 3, G-1)

    def test_model_based_f_test_is_the_anova_of_nested_models(self, plain):
        g = plain.glance().iloc[0]
        assert g["test"] == "F" and g["df_denom"] == 570
        assert_allclose(g["statistic"], _ref("ols", "anova_F", "heterogeneity"), rtol=1e-8)  # anova(lm(y ~ g + x), fit)
        assert_allclose(g["p_value"], _ref("ols", "p_value", "heterogeneity"), rtol=1e-6)
        res1 = _groups(plain, "Time", "Diet")
        res1.index = res1.index.astype(str)
        for q in ("estimate", "std_error", "conf_low_adjusted", "conf_high_adjusted"):
            res2 = _ref("ols", q)  # b -/+ qt(1 - .05/8, df.residual(fit)) * se
            assert_allclose(res1.loc[res2.index, q], res2, rtol=1e-8, err_msg=q)


class TestCoxAgainstR:
    """``coxph(Surv(tstart, tstop, status) ~ hos_cat + hos_cat:treated + age + cluster(id), cgd)``."""

    def test_per_group_log_hazard_ratios_and_robust_errors(self, cgd_fit):
        fitted = cgd_fit
        res1 = _groups(fitted, "treated", "hos_cat")
        for q in ("estimate", "std_error", "conf_low_adjusted", "conf_high_adjusted", "p_adjusted"):
            res2 = _ref("cox_cluster", q)
            assert_allclose(res1.loc[res2.index, q], res2, rtol=1e-6, err_msg=q)
        assert_allclose(res1["exp_conf_low_adjusted"], np.exp(res1["conf_low_adjusted"]), rtol=1e-12)

    def test_wald_test_of_the_interaction_terms(self, cgd_fit):
        fitted = cgd_fit
        g = fitted.glance().iloc[0]
        assert g["test"] == "Wald chi2" and g["df"] == 3 and g["cov_type"] == "cluster: id"
        # the per-group contrasts and the treated:hos_cat interaction terms of treated * hos_cat: one hypothesis
        assert_allclose(g["statistic"], _ref("cox_cluster", "interaction_wald", "heterogeneity"), rtol=1e-6)
        assert_allclose(g["p_value"], _ref("cox_cluster", "p_value", "heterogeneity"), rtol=1e-6)
        assert fitted.is_ratio and fitted.measure == "hazard ratio"


# --------------------------------------------------------------------------- analytic checks


def _two_groups(rng, slopes=(0.0, 0.0), n=400, teams=40):
    group = np.repeat(["a", "b"], n // 2)
    x = rng.normal(size=n)
    team = rng.integers(0, teams, n)
    slope = np.where(group == "a", slopes[0], slopes[1])
    y = 1.0 + 0.3 * (group == "b") + slope * x + rng.normal(0, 1, n)
    return pd.DataFrame({"y": y, "x": x, "z": rng.normal(size=n), "g": group, "team": team,
                         "employee_id": np.arange(n)})


def test_the_wald_statistic_is_the_hand_computed_one(rng):
    data = _two_groups(rng, slopes=(0.2, 0.5))
    res = ar.fit_group_effects(data, "y ~ x + z", term="x", by="g", cluster="team")
    fit = res.extras["fits"][("x", "g")]
    names = list(fit.tidy()["term"])
    i, j = names.index("C(_group)[a]:x"), names.index("C(_group)[b]:x")
    V, b = fit.cov_params, fit.params
    by_hand = (b[j] - b[i]) ** 2 / (V[i, i] + V[j, j] - 2 * V[i, j])
    g = res.glance().iloc[0]
    assert_allclose(g["statistic"], by_hand, rtol=1e-10)  # one contrast: F = W
    assert_allclose(g["p_value"], st.f.sf(by_hand, 1, 39), rtol=1e-10)  # 40 teams


def test_the_f_test_equals_statsmodels_f_test_on_the_same_model(rng):
    data = _two_groups(rng, slopes=(0.2, 0.5)).assign(g=lambda d: np.where(d.index % 3 == 0, "c", d.g))
    res = ar.fit_group_effects(data, "y ~ x + z", term="x", by="g")
    fit = res.extras["fits"][("x", "g")]
    names = list(fit.tidy()["term"])
    L = np.zeros((2, len(names)))
    L[:, names.index("C(_group)[a]:x")] = -1
    L[0, names.index("C(_group)[b]:x")] = L[1, names.index("C(_group)[c]:x")] = 1
    sm = fit.model.f_test(L)  # statsmodels on the very fit
    g = res.glance().iloc[0]
    assert_allclose(g["statistic"], float(np.squeeze(sm.fvalue)), rtol=1e-10)
    assert_allclose(g["p_value"], float(sm.pvalue), rtol=1e-10)
    assert g["df_denom"] == sm.df_denom
    clustered = ar.fit_group_effects(data, "y ~ x + z", term="x", by="g", cluster="team")
    cfit = clustered.extras["fits"][("x", "g")]
    sm = cfit.model.f_test(L)  # statsmodels on the clustered fit: F on (q, G - 1)
    g = clustered.glance().iloc[0]
    assert_allclose(g["statistic"], float(np.squeeze(sm.fvalue)), rtol=1e-8)
    assert_allclose(g["p_value"], float(sm.pvalue), rtol=1e-8)
    assert g["df_denom"] == sm.df_denom == 39


def test_different_slopes_are_detected_and_equal_ones_are_not(rng):
    differ = ar.fit_group_effects(_two_groups(rng, slopes=(0.0, 0.6)), "y ~ x", term="x", by="g", cluster="team")
    assert differ.glance()["p_value"].iloc[0] < 1e-4
    same = ar.fit_group_effects(_two_groups(np.random.default_rng(1), slopes=(0.4, 0.4)), "y ~ x", term="x", by="g")
    assert same.glance()["p_value"].iloc[0] > 0.05


def test_p_values_under_equal_slopes_are_roughly_uniform():
    p = [ar.fit_group_effects(_two_groups(np.random.default_rng(seed), slopes=(0.3, 0.3), n=120), "y ~ x",
                              term="x", by="g").glance()["p_value"].iloc[0] for seed in range(60)]
    assert 0.0 <= np.mean(np.array(p) < 0.05) <= 0.15
    assert st.kstest(p, "uniform").pvalue > 0.01  # an F test under its null


def test_adjusted_intervals_have_bonferroni_width(rng):
    data = _two_groups(rng).assign(g=lambda d: np.where(d.index % 4 == 0, "c", d.g))
    res = ar.fit_group_effects(data, "y ~ x", term="x", by="g", cluster="team", alpha=0.1)
    t = _groups(res, "x", "g")
    k = len(t)
    assert_allclose((t.conf_high_adjusted - t.estimate) / t.std_error, st.norm.ppf(1 - 0.1 / (2 * k)), rtol=1e-10)
    assert_allclose((t.conf_high - t.estimate) / t.std_error, st.norm.ppf(0.95), rtol=1e-10)
    assert_allclose(t.p_adjusted, ar.adjust_pvalues(t.p_value.to_numpy()), rtol=1e-12)  # Holm


def test_a_term_that_only_involves_the_grouping_column_is_left_out(rng):
    data = _two_groups(rng)
    res = ar.fit_group_effects(data, "y ~ x + C(g) + z", term="x", by="g")
    assert res.glance()["formula"].iloc[0] == "y ~ C(_group) + C(_group):x + z"


# --------------------------------------------------------------------------- suppression


def _with_small_group(rng):
    data = _two_groups(rng, slopes=(0.2, 0.6))
    small = data.iloc[:12].assign(g="tiny", employee_id=lambda d: 10_000 + d.index % 3)  # 3 people, 12 rows
    return pd.concat([data, small], ignore_index=True)


def test_a_group_of_three_people_never_appears(rng):
    res = ar.fit_group_effects(_with_small_group(rng), "y ~ x", term="x", by="g", cluster="team")
    t = res.tidy()
    assert "tiny" not in set(t["group"])
    pooled = t.set_index("group").loc["Other gs (each < 5 people)"]
    assert pd.isna(pooled["n"]) and np.isnan(pooled["estimate"]) and pooled["note"].startswith("suppressed")
    assert pd.isna(t.set_index("group").loc["a", "n"])  # the next smallest: complementary
    assert res.glance()["n_groups"].iloc[0] == 2
    assert ar.privacy.find_small_groups(t.to_html()).empty


def test_effect_by_group_is_the_table_of_fit_group_effects(rng):
    data = _with_small_group(rng)
    table = ar.effect_by_group(data, "y ~ x", term="x", by="g", cluster="team")
    full = ar.fit_group_effects(data, "y ~ x", term="x", by="g", cluster="team").tidy()
    assert list(table.columns) == ["g", "n", "estimate", "conf_low", "conf_high", "p_value", "p_adjusted",
                                   "conf_low_adjusted", "conf_high_adjusted", "note"]
    assert_allclose(table["estimate"], full["estimate"], rtol=0, equal_nan=True)


def test_grouping_columns_come_from_the_baseline_table(rng):
    data = _two_groups(rng).assign(spell=1)
    person = data[["employee_id", "spell"]].assign(site=np.where(data.employee_id % 2 == 0, "Berlin", "Oslo"))
    res = ar.fit_group_effects(data.drop(columns="g"), "y ~ x", term="x", by="site", baseline=person)
    assert list(_groups(res, "x", "site").index) == ["Berlin", "Oslo"]
    with pytest.raises(ar.ModelError, match=r"no column\(s\) \['site'\]"):
        ar.fit_group_effects(data, "y ~ x", term="x", by="site")


def test_a_cox_group_whose_exits_all_share_one_value_of_the_term_is_listed_not_estimated():
    cgd = CGD.copy()
    cgd.loc[(cgd.hos_cat == "Europe:other") & (cgd.treated == 1), "status"] = 0  # exits only among the untreated
    res = ar.fit_group_effects(cgd, "treated + age", model="cox", start="tstart", stop="tstop", event="status",
                               term="treated", by="hos_cat", cluster="id", person="id")
    row = _groups(res, "treated", "hos_cat").loc["Europe:other"]
    assert np.isnan(row["estimate"]) and row["note"].startswith("not estimable")
    assert res.glance()["n_groups"].iloc[0] == 3 and not res.caveats


def test_pooling_reads_one_row_per_group_and_person(rng):
    """The pooled column and the gate are those of pooling every row (sizes count people, n_rows counts rows)."""
    from alignment_research.postestimation import _pooled_groups

    n = 400
    rows = pd.DataFrame({"employee_id": pd.array([f"e{i % 90}" for i in range(n)], dtype="string"),
                         "level": pd.array(rng.choice([1, 2, 3, 7, 9], n, p=[0.4, 0.3, 0.26, 0.02, 0.02]),
                                           dtype="Int64"),
                         "x": rng.normal(size=n)})
    rows.loc[rows.index[::37], "employee_id"] = pd.NA  # rows of nobody known: no person counted
    rows.loc[rows["level"] == 7, "employee_id"] = "e1"  # one person in a small level
    got, gate, group = _pooled_groups(rows, "level", min_group_size=5, person="employee_id")
    pooled = ar.pool_small_levels(rows, "level", min_group_size=5, small_pool="keep").data
    pooled = pooled.assign(level=pooled["level"].astype(str))
    pd.testing.assert_frame_equal(got, pooled, check_exact=True)
    pd.testing.assert_frame_equal(gate, ar.privacy.size_gate(pooled, "level", min_group_size=5), check_exact=True)
    assert (gate["level"].to_numpy()[group] == got["level"].to_numpy()).all()
    small = gate.set_index("level").loc["Other levels (each < 5 people)"]  # level 7: one person
    assert small["suppression"] == "small group" and pd.isna(small["n_rows"])
    assert gate["level"].tolist() == ["1", "2", "3", "9", "Other levels (each < 5 people)"]


def test_a_cox_group_fit_is_fit_cox_on_the_pooled_rows():
    """The Cox fits get the cluster and person columns as codes: the fit of the rows as they are, digit for digit."""
    cgd = CGD.assign(id=lambda d: "p" + d["id"].astype(str), employee_id=lambda d: d["id"])
    cgd.loc[cgd.index[::23], "id"] = None  # rows without a cluster are left out, as fit_cox leaves them out
    res = ar.fit_group_effects(cgd, "treated + age", model="cox", start="tstart", stop="tstop", event="status",
                               term="treated", by="hos_cat", cluster="id", person="employee_id")
    estimated = res.tidy().dropna(subset=["estimate"])["group"]
    rows = cgd[cgd["hos_cat"].isin(estimated)].assign(_group=lambda d: d["hos_cat"].astype(str))
    expected = ar.fit_cox(rows, "C(_group) + C(_group):treated + age", start="tstart", stop="tstop",
                          event="status", cluster="id")
    fit = res.extras["fits"][("treated", "hos_cat")]
    pd.testing.assert_frame_equal(fit.tidy(), expected.tidy(), check_exact=True)
    pd.testing.assert_frame_equal(fit.glance(), expected.glance(), check_exact=True)
    assert fit.glance()["n_subjects"].iloc[0] == rows.dropna(subset=["id"])["employee_id"].nunique()
    np.testing.assert_array_equal(fit.model.var, expected.model.var)


def test_unknown_model_and_term_are_named():
    with pytest.raises(ar.ModelError, match="`model` must be one of"):
        ar.fit_group_effects(CHICK, "weight ~ Time", term="Time", by="Diet", model="logit")
    with pytest.raises(ar.ModelError, match="must be one of the formula's terms"):
        ar.fit_group_effects(CHICK.assign(z=1.0), "weight ~ Time", term="z", by="Diet", person="Chick")


# --------------------------------------------------------------------------- the brief's paragraph


def _result(p_value, lows, highs, *, n=(40, 40), groups=("female", "male"), scale="difference"):
    tidy = pd.DataFrame({"term": "manager_program", "estimate": [(lo + hi) / 2 for lo, hi in zip(lows, highs)],
                         "by": "gender", "group": list(groups), "n": list(n), "conf_low_adjusted": list(lows),
                         "conf_high_adjusted": list(highs), "note": ""})
    test = pd.DataFrame({"term": ["manager_program"], "by": ["gender"], "n_groups": [len(groups)], "p_value": [p_value]})
    return ar.GroupEffectsResult("group_effects", tidy, test, outcome="engagement", scale=scale)


def test_the_paragraph_is_absent_without_a_significant_test():
    assert ar.describe_who_it_works_for(_result(0.2, [0.1, -0.2], [0.5, 0.2])) == ""
    assert ar.describe_who_it_works_for(_result(np.nan, [0.1], [0.5], n=[40], groups=["female"])) == ""


def test_the_paragraph_is_absent_when_no_interval_excludes_no_effect():
    assert ar.describe_who_it_works_for(_result(0.001, [-0.1, -0.5], [0.5, 0.1])) == ""


def test_the_paragraph_names_the_groups_with_their_intervals():
    text = ar.describe_who_it_works_for(_result(0.001, [0.1, -0.2], [0.5, 0.2]))
    assert text.startswith("How strongly having a manager who has started leadership development goes with engagement "
                           "differs by gender (test that it is the same in every gender: p = 0.001).")
    assert "It is clear in female (0.30 points, 95% CI 0.10–0.50)" in text
    assert "in male the interval includes no effect." in text
    assert text.count(".") - text.count("0.") == 2  # two sentences


def test_the_paragraph_never_names_a_small_group_and_follows_alpha():
    res = _result(0.03, [0.1, 0.2], [0.5, 0.6], n=[40, 3], groups=["female", "non-binary"])
    text = ar.describe_who_it_works_for(res)
    assert "female" in text and "non-binary" not in text
    assert ar.describe_who_it_works_for(res, alpha=0.01) == ""


def test_the_paragraph_words_hazard_ratios():
    text = ar.describe_who_it_works_for(_result(1e-4, [np.log(0.3), -0.1], [np.log(0.8), 0.2], scale="ratio"))
    assert "female (ratio 0.49, 95% CI 0.30–0.80)" in text


def test_the_paragraph_names_the_three_largest_effects_and_counts_the_rest():
    groups = ["a", "b", "c", "d", "e"]
    res = _result(0.001, [0.1, 0.2, 0.3, 0.4, -0.1], [0.3, 0.4, 0.5, 0.6, 0.1], n=[20] * 5, groups=groups)
    text = ar.describe_who_it_works_for(res)
    assert "It is clear in d (0.50 points, 95% CI 0.40–0.60), c (0.40 points" in text
    assert "b (0.30 points, 95% CI 0.20–0.40) and 1 other group, with" in text and "a (" not in text
    assert text.endswith("in e the interval includes no effect.")


# --------------------------------------------------------------------------- ground truth over seeds (slow)


def _clustered_study(rng, slopes, *, cox: bool, n=600, teams=60):
    """Employees in teams (a shared team effect), four groups crossing the teams, one true slope per group."""
    team = rng.integers(0, teams, n)
    group = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    slope = np.select([group == g for g in "abcd"], slopes)
    frame = pd.DataFrame({"g": group, "team": team, "employee_id": np.arange(n)})
    if cox:
        x = rng.integers(0, 2, n).astype(float)
        t = rng.exponential(1 / (0.1 * np.exp(rng.normal(0, 0.3, teams))[team] * np.exp(slope * x)))
        c = rng.uniform(0, 15, n)
        return frame.assign(x=x, start=0.0, stop=np.minimum(t, c), event=(t <= c).astype(int))
    x = rng.normal(size=n) + rng.normal(0, 0.5, teams)[team]
    return frame.assign(x=x, y=1 + slope * x + rng.normal(0, 0.5, teams)[team] + rng.normal(size=n))


@pytest.mark.slow
@pytest.mark.parametrize("cox", [False, True], ids=["ols", "cox"])
def test_simultaneous_intervals_cover_every_group_and_the_test_holds_its_level(cox):
    truth = np.array([-0.2, -0.4, -0.6, -0.8])
    covered, rejected = [], []
    for seed in range(50):
        kwargs = dict(model="cox", start="start", stop="stop") if cox else {}
        formula = "x" if cox else "y ~ x"
        rng = np.random.default_rng(seed)
        res = ar.fit_group_effects(_clustered_study(rng, truth, cox=cox), formula, term="x", by="g", cluster="team",
                                   **kwargs)
        t = _groups(res, "x", "g").loc[list("abcd")]
        covered.append(bool(((t.conf_low_adjusted <= truth) & (truth <= t.conf_high_adjusted)).all()))
        null = ar.fit_group_effects(_clustered_study(rng, np.full(4, -0.5), cox=cox), formula, term="x", by="g",
                                    cluster="team", **kwargs)
        rejected.append(null.glance()["p_value"].iloc[0] < 0.05)
    assert np.mean(covered) >= 0.90  # all four at once; nominal >= 95% (Bonferroni)
    assert np.mean(rejected) <= 0.15  # nominal 5%


def test_plot_draws_the_simultaneous_intervals_of_one_analysis(clustered):
    ax = clustered.plot(term="Time", by="Diet")
    t = _groups(clustered, "Time", "Diet")
    bars = ax.collections[0].get_segments()  # the errorbar's horizontal lines, top row first
    assert len(bars) == 4
    assert_allclose(sorted(b[0][0] for b in bars), sorted(t.conf_low_adjusted), rtol=1e-12)
    assert [x.get_text() for x in ax.get_yticklabels()] == [str(g) for g in t.index]
    assert "GroupEffectsResult" in repr(clustered)


def test_a_group_on_fewer_than_ten_clusters_is_listed_not_estimated(rng):
    data = _two_groups(rng, slopes=(0.2, 0.6))
    few = data.iloc[:30].assign(g="few", team=lambda d: 1000 + d.index % 4, employee_id=lambda d: 5000 + d.index)
    res = ar.fit_group_effects(pd.concat([data, few], ignore_index=True), "y ~ x", term="x", by="g", cluster="team")
    t = _groups(res, "x", "g")
    assert np.isnan(t.loc["few", "estimate"]) and t.loc["few", "note"].startswith("not estimated: only 4 team clusters")
    assert t.loc["few", "n"] == 30 and t.loc["a", "n_clusters"] == 40
    assert res.glance()["n_groups"].iloc[0] == 2
    unclustered = ar.fit_group_effects(pd.concat([data, few], ignore_index=True), "y ~ x", term="x", by="g")
    assert np.isfinite(_groups(unclustered, "x", "g").loc["few", "estimate"])  # the rule is about clustered errors


def test_the_brief_paragraph_adjusts_for_every_heterogeneity_test_it_was_given():
    tidy = pd.DataFrame({"term": ["x", "x"], "estimate": [0.5, 0.0], "by": ["gender"] * 2,
                         "group": ["female", "male"], "n": [40, 40], "conf_low_adjusted": [0.2, -0.3],
                         "conf_high_adjusted": [0.8, 0.3], "note": ["", ""]})

    def result(p):
        test = pd.DataFrame({"term": ["x"], "by": ["gender"], "n_groups": [2], "p_value": [p]})
        return ar.ModelResult("group_effects", tidy, test, outcome="engagement")

    assert "differs by gender" in str(ar.describe_who_it_works_for(result(0.03)))
    # two tests at p = 0.03: Holm gives 0.06 to each, so neither is supported
    assert str(ar.describe_who_it_works_for(result(0.03), result(0.03))) == ""
    both = str(ar.describe_who_it_works_for(result(0.01), result(0.02)))
    assert both.count("differs by gender") == 2 and "adjusted for the 2 such tests made" in both
    assert "p = 0.020" in both  # Holm: 2 x 0.01 and max(2 x 0.01, 1 x 0.02)


def test_who_it_works_for_is_the_brief_paragraph_of_the_primary_models_group_slopes():
    import dataclasses

    clean = ar.clean_study(ar.simulate_study(n_employees=500, seed=3))
    panel = clean.analysis.survey_panel
    person = clean.analysis.person.drop_duplicates("employee_id").set_index("employee_id")["gender"]
    women = panel["employee_id"].map(person).eq(person.dropna().iloc[0]).to_numpy()
    # the programme raises engagement by a full point for one gender only: a difference the brief must report
    raised = panel.assign(engagement=panel["engagement"] + 1.0 * women * panel["manager_program"])
    clean.__dict__["analysis"] = dataclasses.replace(clean.analysis, survey_panel=raised)
    primary = ar.primary_analysis(clean, warn=False)
    groups = dict(term=["alignment_cascade", "manager_program"], by=["gender", "location", "job_level", "department"],
                  baseline=clean.analysis.person, cluster="manager_id", min_group_size=clean.config.min_group_size)
    retention = ar.fit_group_effects(primary.retention_data.data, primary.retention_data.formula, model="cox",
                                     start="start", stop="stop", **groups)
    engagement = ar.fit_group_effects(primary.engagement_data.data, primary.engagement_data.formula, **groups)
    expected = ar.describe_who_it_works_for(retention, engagement)
    text = ar.who_it_works_for(clean)
    assert "differs by gender" in text
    assert text == expected
    # notebooks 03 and 04 show the same fits as the brief's paragraph
    for outcome, direct in (("retention", retention), ("engagement", engagement)):
        shown = ar.primary_group_effects(clean, outcome)
        pd.testing.assert_frame_equal(shown.tidy(), direct.tidy(), check_exact=True)
        pd.testing.assert_frame_equal(shown.glance(), direct.glance(), check_exact=True)
    with pytest.raises(ar.ConfigError, match="'retention' or 'engagement'"):
        ar.primary_group_effects(clean, "rating")
