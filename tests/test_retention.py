"""Tests of retention.py: numbers against R's survival (stored reference), degenerate input, plots.

Reference chain: tests/reference/retention_data.py -> tests/reference/retention.R ->
tests/reference/retention_reference.csv (R 4.2.2, survival 3.5-3; see
retention_reference_provenance.txt). ``res1`` is ours, ``res2`` R's.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest
from numpy.testing import assert_allclose

import alignment_research as ar
from alignment_research import _cox, retention
from alignment_research._cox import simulate_counting_process
from alignment_research._formula import _fast_C, design_matrix, numeric_design, prepare_rows
from alignment_research.errors import ModelError, StatisticalWarning

REF = Path(__file__).parent / "reference"
FORMULA = "alignment_cascade + engagement + manager_program + manager_rating"
TIMES = [30, 182.625, 365.25, 730.5, 1461]


def _ref():
    ref = pd.read_csv(REF / "retention_reference.csv", keep_default_na=False)
    ref["value"] = pd.to_numeric(ref["value"], errors="coerce")
    return ref


REFERENCE = _ref()


class R:
    """Values of one R model from the stored reference, by quantity (and term)."""

    def __init__(self, model):
        self.rows = REFERENCE[REFERENCE["model"] == model]

    def __call__(self, quantity, term=None):
        rows = self.rows[self.rows["quantity"] == quantity]
        if term is not None:
            rows = rows[rows["term"] == term]
        return rows["value"].to_numpy()

    def by_term(self, quantity):
        rows = self.rows[self.rows["quantity"] == quantity]
        return rows.set_index("term")["value"]


@pytest.fixture(scope="module")
def intervals():
    return pd.read_csv(REF / "retention_input_intervals.csv")


@pytest.fixture(scope="module")
def person():
    return pd.read_csv(REF / "retention_input_person.csv")


@pytest.fixture(scope="module")
def monthly():
    return pd.read_csv(REF / "retention_input_monthly.csv")


# --------------------------------------------------------------------------- Cox vs R
class CheckCox:
    rtol = 1e-8

    def test_coefficients(self):
        # coef(fit)
        assert_allclose(self.res1.tidy()["estimate"], self.res2("coef"), rtol=self.rtol)

    def test_standard_errors(self):
        # sqrt(diag(fit$var))  (robust when cluster() is in the formula)
        assert_allclose(self.res1.tidy()["std_error"], self.res2("se"), rtol=self.rtol)

    def test_model_based_standard_errors(self):
        # sqrt(diag(fit$naive.var)) with cluster(), else sqrt(diag(fit$var))
        naive = self.res2("naive_se") if len(self.res2("naive_se")) else self.res2("se")
        assert_allclose(np.sqrt(np.diag(self.res1.model.naive_var)), naive, rtol=self.rtol)

    def test_loglik(self):
        # fit$loglik
        g = self.res1.glance().iloc[0]
        assert_allclose(g["log_likelihood"], self.res2("loglik")[0], rtol=1e-12)
        assert_allclose(g["log_likelihood_null"], self.res2("loglik_null")[0], rtol=1e-12)

    def test_concordance(self):
        # fit$concordance[c("concordant", "discordant", "tied.x", "concordance")]
        c = self.res1.extras["concordance"]
        assert c["concordant"] == self.res2("concordant")[0]
        assert c["discordant"] == self.res2("discordant")[0]
        assert c["tied_x"] == self.res2("tied_x")[0]
        assert_allclose(self.res1.glance()["concordance"].iloc[0], self.res2("concordance")[0], rtol=1e-12)

    def test_counts(self):
        # fit$n, fit$nevent
        g = self.res1.glance().iloc[0]
        assert g["n"] == self.res2("n")[0]
        assert g["events"] == self.res2("nevent")[0]

    def test_intervals_and_ratios(self):
        t = self.res1.tidy()
        assert list(t.columns) == ar.results.TIDY_COLUMNS + ["exp_estimate", "exp_conf_low", "exp_conf_high"]
        assert_allclose(t["conf_low"], t["estimate"] - 1.959963984540054 * t["std_error"], rtol=1e-12)
        assert_allclose(t["exp_estimate"], np.exp(t["estimate"]), rtol=1e-12)


class TestCoxIntervals(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        # coxph(Surv(start, stop, event) ~ ... + factor(job_level) + cluster(manager_id), ties = "efron")
        cls.res1 = ar.fit_cox(data, FORMULA + " + C(job_level)", start="start", stop="stop", cluster="manager_id")
        cls.res2 = R("cox_intervals")

    def test_glance(self):
        g = self.res1.glance().iloc[0]
        assert g["cov_type"] == "cluster: manager_id"
        assert g["n_subjects"] < g["n"]
        assert_allclose(g["aic"], -2 * self.res2("loglik")[0] + 2 * 8, rtol=1e-12)  # AIC(fit)

    def test_terms_are_treatment_coded(self):
        assert self.res1.tidy()["term"].tolist()[4:] == [f"C(job_level)[T.{k}]" for k in range(2, 6)]


class TestCoxStrata(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        # coxph(Surv(start, stop, event) ~ ... + strata(department) + cluster(manager_id))
        cls.res1 = ar.fit_cox(data, FORMULA, start="start", stop="stop", cluster="manager_id", strata="department")
        cls.res2 = R("cox_intervals_strata")


class TestCoxBreslow(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        # coxph(Surv(start, stop, event) ~ ..., ties = "breslow")
        cls.res1 = ar.fit_cox(data, FORMULA, start="start", stop="stop", ties="breslow")
        cls.res2 = R("cox_intervals_breslow")

    def test_model_based(self):
        assert self.res1.glance()["cov_type"].iloc[0] == "model-based"


class TestCoxPerson(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_person.csv")
        # coxph(Surv(entry, exit, event) ~ manager_ever_program + factor(job_level) + cluster(manager_id))
        cls.res1 = ar.fit_cox(data, "manager_ever_program + C(job_level)", duration="exit", entry="entry",
                              cluster="manager_id")
        cls.res2 = R("cox_person")


class TestCoxPersonRightCensored(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_person.csv")
        # coxph(Surv(exit, event) ~ manager_ever_program + factor(job_level))  (no delayed entry)
        cls.res1 = ar.fit_cox(data, "manager_ever_program + C(job_level)", duration="exit")
        cls.res2 = R("cox_person_right")


class TestCoxMonthlyTies(CheckCox):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_monthly.csv")
        # coxph(Surv(start, stop, event) ~ ... + job_level + cluster(manager_id)) on whole months (many ties)
        cls.res1 = ar.fit_cox(data, FORMULA + " + job_level", start="start", stop="stop", cluster="manager_id")
        cls.res2 = R("cox_monthly")

    def test_r_default_control_within_1e6(self):
        # R's default coxph.control(eps = 1e-9) stops earlier than we do; still equal to 1e-6
        r = R("cox_monthly_default")
        assert_allclose(self.res1.tidy()["estimate"], r("coef"), rtol=1e-6)
        assert_allclose(self.res1.tidy()["std_error"], r("se"), rtol=1e-6)


# --------------------------------------------------------------------------- cox.zph
class CheckZph:
    def test_statistics(self):
        # cox.zph(fit)$table[, "chisq"]   (terms = TRUE, transform = "km")
        assert_allclose(self.res1.tidy()["statistic"], self.res2("zph_chisq"), rtol=1e-8)
        # cox.zph(fit)$table[, "df"], [, "p"]
        assert_allclose(self.res1.tidy()["df"], self.res2("zph_df"))
        assert_allclose(self.res1.tidy()["p_value"], self.res2("zph_p"), rtol=1e-7)

    def test_scaled_residuals(self):
        # cox.zph(fit)$y[1:5, 1] and cox.zph(fit)$x[1:5]
        resid = self.res1.extras["residuals"]
        first = resid[resid["term"] == self.res1.tidy()["term"].iloc[0]]
        assert_allclose(first["residual"].to_numpy()[:5], self.res2("zph_resid_first"), rtol=1e-8)
        assert_allclose(first["transformed_time"].to_numpy()[:5], self.res2("zph_x_first"), rtol=1e-8, atol=1e-14)

    def test_verdict_and_global(self):
        t = self.res1.tidy()
        assert t["term"].iloc[-1] == "GLOBAL"
        assert set(t["verdict"]) <= {"no evidence against proportional hazards",
                                     "effect changes over time (proportional hazards doubtful)"}
        assert (t["verdict"].str.startswith("effect") == (t["p_value"] < 0.05)).all()
        assert self.res1.glance()["statistic"].iloc[0] == t["statistic"].iloc[-1]


class TestZphIntervals(CheckZph):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        fit = ar.fit_cox(data, FORMULA + " + C(job_level)", start="start", stop="stop", cluster="manager_id")
        cls.res1 = ar.ph_test(fit)
        cls.res2 = R("cox_intervals")

    def test_multi_column_term_is_one_test(self):
        # factor(job_level) is one term with 4 df, as cox.zph(terms = TRUE)
        t = self.res1.tidy().set_index("term")
        assert t.loc["C(job_level)", "df"] == 4


class TestZphStrata(CheckZph):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        fit = ar.fit_cox(data, FORMULA, start="start", stop="stop", cluster="manager_id", strata="department")
        cls.res1 = ar.ph_test(fit)
        cls.res2 = R("cox_intervals_strata")


class TestZphBreslow(CheckZph):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_intervals.csv")
        cls.fit = ar.fit_cox(data, FORMULA, start="start", stop="stop", ties="breslow")
        cls.res1 = ar.ph_test(cls.fit)
        cls.res2 = R("cox_intervals_breslow")

    def test_identity_transform(self):
        # cox.zph(fit, transform = "identity")$table[, "chisq"]
        res = ar.ph_test(self.fit, transform="identity")
        assert_allclose(res.tidy()["statistic"], R("zph_identity_breslow")("zph_chisq"), rtol=1e-8)


class TestZphMonthlyTies(CheckZph):
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_monthly.csv")
        fit = ar.fit_cox(data, FORMULA + " + job_level", start="start", stop="stop", cluster="manager_id")
        cls.res1 = ar.ph_test(fit)
        cls.res2 = R("cox_monthly")


# --------------------------------------------------------------------------- Kaplan-Meier
def _at(curve, column, t):
    idx = np.searchsorted(curve["time"].to_numpy(), t, side="right") - 1
    return 1.0 if idx < 0 else curve[column].iloc[idx]


class TestKaplanMeier:
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_person.csv")
        cls.res1 = ar.survival_table(data, group="department")
        cls.res1_all = ar.survival_table(data)
        cls.km = ar.fit_km(data, group="department")
        cls.res2 = R("km_department")
        cls.res2_all = R("km_all")

    @pytest.mark.parametrize("quantity,column", [("surv", "estimate"), ("lower", "conf_low"), ("upper", "conf_high")])
    def test_curve_at_times(self, quantity, column):
        # summary(survfit(Surv(entry, exit, event) ~ department), times = TIMES)$surv / $lower / $upper
        for res1, res2 in ((self.res1, self.res2), (self.res1_all, self.res2_all)):
            expected = res2.by_term(quantity)
            ours = [_at(res1[res1["group"] == k.split("@")[0]], column, float(k.split("@")[1])) for k in expected.index]
            assert_allclose(ours, expected.to_numpy(), rtol=1e-10)

    def test_median_and_interval(self):
        # quantile(survfit(...), probs = 0.5)$quantile / $lower / $upper  (days; ours in months)
        t = self.km.tidy()
        med = t[t["term"] == "median_tenure_months"].set_index("group")
        for quantity, column in (("median", "estimate"), ("median_lower", "conf_low"), ("median_upper", "conf_high")):
            expected = self.res2.by_term(quantity)
            assert_allclose(med.loc[expected.index, column] * ar.retention.DAYS_PER_MONTH, expected.to_numpy(), rtol=1e-12)

    def test_retention_rows(self):
        # summary(survfit(Surv(entry, exit, event) ~ 1), times = 365.25)$surv
        km = ar.fit_km(pd.read_csv(REF / "retention_input_person.csv"))
        t = km.tidy().set_index("term")
        assert_allclose(t.loc["retention_12_months", "estimate"], self.res2_all.by_term("surv")["all@365.25"],
                        rtol=1e-12)
        assert list(km.tidy().columns) == ["group", "term", "estimate", "conf_low", "conf_high", "at_risk"]
        assert km.glance()["conf_type"].iloc[0].startswith("log")

    def test_at_risk_counts_left_truncation(self, person):
        # numbers at risk at t count entry < t <= exit (delayed entry)
        t = ar.fit_km(person).tidy().set_index("term")
        expected = int(((person["entry"] < 182.625) & (person["exit"] >= 182.625)).sum())
        assert t.loc["retention_6_months", "at_risk"] == expected


class TestLogrank:
    def test_right_censored_matches_survdiff(self, person):
        # survdiff(Surv(exit, event) ~ department): $exp and $chisq
        res1 = ar.logrank_test(person, entry=None, group="department")
        res2 = R("logrank_right")
        assert_allclose(res1["expected"], res2("expected"), rtol=1e-10)
        assert_allclose(res1["observed"], res2("observed"))
        assert_allclose(res1["statistic"].iloc[0], res2("chisq")[0], rtol=1e-10)

    def test_delayed_entry(self, person):
        # hypergeometric log-rank from risk sets entry < t <= exit, computed in R (retention.R, step 7)
        res1 = ar.logrank_test(person, group="department")
        res2 = R("logrank_entry")
        assert_allclose(res1["expected"], res2("expected"), rtol=1e-10)
        assert_allclose(res1["statistic"].iloc[0], res2("chisq")[0], rtol=1e-10)
        g = ar.fit_km(person, group="department").glance().iloc[0]
        assert_allclose(g["logrank_statistic"], res2("chisq")[0], rtol=1e-10)
        assert g["logrank_df"] == 5


class TestAalenJohansen:
    @classmethod
    def setup_class(cls):
        data = pd.read_csv(REF / "retention_input_person.csv")
        cls.res1 = ar.cif_table(data, times=TIMES)
        cls.res2 = R("aj")

    @pytest.mark.parametrize("quantity,column", [("pstate", "estimate"), ("std.err", "std_error"),
                                                 ("lower", "conf_low"), ("upper", "conf_high")])
    def test_against_survfit_multistate(self, quantity, column):
        # summary(survfit(Surv(entry, exit, factor(event_type)) ~ 1, id = id), times = TIMES)$pstate etc.
        expected = self.res2.by_term(quantity)
        ours = [self.res1[(self.res1["cause"] == k.split("@")[0])
                          & np.isclose(self.res1["time"], float(k.split("@")[1]))][column].iloc[0]
                for k in expected.index]
        assert_allclose(ours, expected.to_numpy(), rtol=1e-10)

    def test_fit_cif_shape(self, person):
        res = ar.fit_cif(person)
        assert list(res.tidy().columns) == ["group", "cause", "term", "estimate", "std_error", "conf_low", "conf_high"]
        assert set(res.tidy()["cause"]) == {"involuntary", "other", "voluntary"}
        g = res.glance().iloc[0]
        assert g["events_voluntary"] == int(person["event"].sum())
        # the incidences plus the KM of any exit add up to one
        t = res.extras["curves"]
        last = t.groupby("cause")["estimate"].last().sum()
        any_exit = person.assign(any=(person["event_type"] != "censored").astype(int))
        km = ar.survival_table(any_exit, event="any")
        assert_allclose(last, 1 - km["estimate"].iloc[-1], rtol=1e-10)


# --------------------------------------------------------------------------- engine checks
def _brute_concordance(start, stop, event, eta, strata):
    conc = disc = tx = 0
    for i in np.flatnonzero(event):
        t = stop[i]
        at = (start < t) & (stop >= t) & (strata == strata[i]) & ~((stop == t) & event.astype(bool))
        conc += int((eta[at] < eta[i]).sum())
        disc += int((eta[at] > eta[i]).sum())
        tx += int((eta[at] == eta[i]).sum())
    return conc, disc, tx


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("per_bucket", [None, 0, 1, 3, 7, 64, 1000])
def test_concordance_matches_brute_force(rng, per_bucket, tied):
    # per_bucket: rows per bucket of the grid count (1: all grid; 1000: all direct comparisons), 0: bitwise count
    n = 400
    start = rng.integers(0, 20, n).astype(float)
    stop = start + rng.integers(1, 15, n)
    event = (rng.random(n) < 0.5).astype(int)
    # many ties in the predictor, or none
    eta = rng.integers(0, 6, n).astype(float) if tied else rng.normal(size=n)
    strata = rng.integers(0, 2, n)
    cd = _cox.prepare(np.column_stack([eta]), start, stop, event, strata=strata)
    got = _cox.concordance(cd, eta[cd.rows], per_bucket=per_bucket)
    assert (got["concordant"], got["discordant"], got["tied_x"]) == _brute_concordance(start, stop, event, eta, strata)


def test_concordance_count_method_follows_the_shape():
    # the bucket grid for the toolkit's daily data (few thousand event days); the bitwise count when almost every
    # row has its own event time and the grid would be rows x times
    assert _cox._bucket_size(2_300_000, 4_000, 430_000) == 292
    assert _cox._bucket_size(2_000_000, 1_000_000, 1_000_000) == 0


@pytest.mark.parametrize("formula, fast", [
    ("alignment_cascade + engagement + job_level + z1", True),
    ("z2 + manager_program - 1", True),
    ("engagement + alignment_cascade + engagement", True),
    ("C(job_level) + z1", True),
    ("z1 + C( department ) + C(job_level)", True),
    ("department + z1", True),
    ("dept_cat + z1", True),
    ("C(job_level) - 1", False),
    ("C(job_level, Treatment(3)) + z1", True),
    ("C(department, Treatment(reference='Sales')) + C(job_level, Treatment(-1)) + z1", True),
    ("C(department) + C(department):z1 + engagement", True),  # a slope per department: coded in full, as patsy
    ("C(department) + z1:C(department) + C(department):z2", True),
    ("dept_cat:z2 + z1", True),
    ("z1 + C(department):z1", False),  # z1 alone first: patsy codes the slopes against a reference
    ("C(department):C(job_level)", False),
    ("C(department):z1:z2", False),
    ("C(department, Sum) + z1", False),
    ("C(job_level, levels=[1, 2, 3, 4, 5]) + z1", False),
    ("C(z1)", False),
    ("z1:z2", False),
    ("np.log(job_level)", False),
    ("flag + z1", False),
])
@pytest.mark.parametrize("intercept", [False, True])
def test_numeric_design_is_the_design_matrix(formula, fast, intercept):
    intervals, _ = simulate_counting_process(300, seed=3, n_extra=2)
    intervals.loc[intervals.index[::7], "engagement"] = np.nan  # incomplete rows are left out
    intervals.loc[intervals.index[3::11], "department"] = None
    intervals["dept_cat"] = pd.Categorical(intervals["department"], categories=["Technology", "Sales", "Operations",
                                                                                  "Finance"])
    intervals["flag"] = intervals["z2"] > 0
    intervals["z2"] -= 0.5  # negative values: 0 * z2 is -0.0 in patsy's slope columns
    intervals.index = intervals.index * 3 + 5
    got = numeric_design(intervals, formula, intercept=intercept)
    assert (got is not None) == fast
    if fast:  # the same as patsy's design, which design_matrix builds when the fast path declines
        sub, kept = prepare_rows(intervals, formula)
        X = patsy.dmatrix(formula, sub, eval_env=patsy.EvalEnvironment([{"C": _fast_C}, {"np": np}]),
                          return_type="dataframe")
        info = X.design_info
        X = X[[c for t in patsy.ModelDesc.from_formula(formula).rhs_termlist if t in info.term_slices
               for c in info.column_names[info.term_slices[t]]]]
        X = (X if intercept or "Intercept" not in X else X.drop(columns="Intercept")).set_axis(kept)
        pd.testing.assert_frame_equal(got[0], X, check_exact=True)
        assert (np.signbit(got[0].to_numpy()) == np.signbit(X.to_numpy())).all()  # patsy's -0.0 products too
        if any("[" in c for c in X.columns):  # with a categorical, patsy's column-major layout (means, every digit)
            assert got[0].to_numpy().flags.f_contiguous and X.to_numpy().flags.f_contiguous
        assert got[1].equals(kept)
        pd.testing.assert_frame_equal(design_matrix(intervals, formula, intercept=intercept)[0], X, check_exact=True)


def test_numeric_design_leaves_a_constant_column_to_the_design_matrix_error():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": [1, 1, 1]})
    assert numeric_design(frame, "x + k", intercept=False) is None
    with pytest.raises(ModelError, match="do not vary"):
        design_matrix(frame, "x + k", intercept=False)


def test_score_residuals_sum_to_score(rng):
    intervals, _ = simulate_counting_process(300, seed=1, year=12)
    X = intervals[["alignment_cascade", "engagement"]].to_numpy()
    cd = _cox.prepare(X, intervals["start"], intervals["stop"], intervals["event"])
    ev = _cox.evaluate(cd, np.array([0.3, -0.2]))
    assert_allclose(_cox.score_residuals(cd, ev).sum(axis=0), ev.grad, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- other models
@pytest.fixture(scope="module")
def sim():
    return simulate_counting_process(3000, seed=7)


def test_cause_specific(sim):
    intervals, _ = sim
    res = ar.fit_cause_specific(intervals, "alignment_cascade + engagement", start="start", stop="stop",
                                cluster="manager_id")
    t = res.tidy()
    assert t["cause"].unique().tolist() == ["involuntary", "voluntary"]
    vol = t[t["cause"] == "voluntary"].reset_index(drop=True)
    direct = ar.fit_cox(intervals, "alignment_cascade + engagement", start="start", stop="stop",
                        cluster="manager_id").tidy()
    assert_allclose(vol["estimate"], direct["estimate"], rtol=1e-12)
    assert len(res.glance()) == 2


def test_person_periods_keeps_events(sim):
    intervals, _ = sim
    pp = ar.person_periods(intervals, period_days=91.3125)
    assert pp["event"].sum() == intervals["event"].sum()
    assert not pp.duplicated(["employee_id", "spell", "period"]).any()
    # a spell's periods are consecutive
    span = pp.groupby("employee_id")["period"].agg(["min", "max", "size"])
    assert (span["max"] - span["min"] + 1 == span["size"]).all()


def test_discrete_time_agrees_in_direction_with_cox(sim):
    intervals, _ = sim
    formula = "alignment_cascade + engagement + manager_program"
    dt = ar.fit_discrete_time(intervals, formula, cluster="manager_id").tidy().set_index("term")
    cox = ar.fit_cox(intervals, formula, start="start", stop="stop", cluster="manager_id").tidy().set_index("term")
    assert (np.sign(dt["estimate"]) == np.sign(cox["estimate"])).all()
    assert_allclose(dt["estimate"], cox["estimate"], atol=0.15)
    assert list(dt.reset_index().columns) == ar.results.TIDY_COLUMNS + ["exp_estimate", "exp_conf_low", "exp_conf_high"]


def test_immortal_time_bias_shows_bias(sim):
    intervals, _ = sim
    table = ar.immortal_time_bias(intervals, covariates="alignment_cascade + engagement")
    ever, tv = table["estimate"]
    # "ever exposed" credits pre-exposure survival to the exposed: more protective than the truth
    assert ever < tv - 0.1
    assert abs(tv - (-0.3)) < 2.5 * table["std_error"].iloc[1]  # the generator's log hazard ratio
    assert (table["n"] == len(intervals)).all()


def test_fit_cox_on_analysis_tables(tiny_clean):
    analysis = tiny_clean.analysis
    res = ar.fit_cox(analysis.intervals, "alignment_cascade + manager_program", start="start", stop="stop",
                     cluster="manager_id")
    g = res.glance().iloc[0]
    assert g["n_subjects"] <= analysis.person.shape[0]
    assert np.isfinite(res.tidy()["std_error"]).all()


def test_ph_test_of_cause_specific_tests_each_cause(sim):
    intervals, _ = sim
    res = ar.fit_cause_specific(intervals, "alignment_cascade + engagement", start="start", stop="stop",
                                cluster="manager_id")
    assert isinstance(res, ar.retention.CauseSpecificResult)
    assert list(res.by_cause) == ["involuntary", "voluntary"]
    ph = ar.ph_test(res)
    t = ph.tidy()
    assert t.columns[0] == "cause"
    assert t["cause"].tolist() == ["involuntary"] * 3 + ["voluntary"] * 3
    assert t["term"].tolist() == ["alignment_cascade", "engagement", "GLOBAL"] * 2
    # each cause's rows are the test of that cause's own Cox fit
    direct = ar.ph_test(ar.fit_cox(intervals, "alignment_cascade + engagement", start="start", stop="stop",
                                   cluster="manager_id")).tidy()
    vol = t[t["cause"] == "voluntary"].drop(columns="cause").reset_index(drop=True)
    pd.testing.assert_frame_equal(vol, direct)
    g = ph.glance()
    assert g["cause"].tolist() == ["involuntary", "voluntary"]
    assert_allclose(g["statistic"], t.loc[t["term"] == "GLOBAL", "statistic"])
    resid = ph.extras["residuals"]
    n_inv = int(res.glance().set_index("cause").loc["involuntary", "events"])
    assert (resid["cause"] == "involuntary").sum() == 2 * n_inv  # one residual per event and term
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    ph.plot(term="engagement", cause="involuntary", ax=ax)
    assert len(ax.collections[0].get_offsets()) == n_inv
    with pytest.raises(ModelError, match="No residuals for cause"):
        ph.plot(cause="retired")
    plt.close("all")


def test_results_say_what_they_are(sim):
    intervals, person = sim
    cox = ar.fit_cox(intervals, "engagement", start="start", stop="stop", alpha=0.1)
    assert (cox.alpha, cox.outcome, cox.scale, cox.measure, cox.time_unit) == (
        0.1, "voluntary exit", "ratio", "hazard ratio", "days")
    assert cox.conf_label == "90% CI"
    assert_allclose(cox.tidy()["conf_high"], cox.tidy()["estimate"] + 1.6448536269514722 * cox.tidy()["std_error"])
    other = ar.fit_cox(intervals.assign(any_exit=intervals["event"]), "engagement", start="start", stop="stop",
                       event="any_exit")
    assert other.outcome == "any exit"
    cs = ar.fit_cause_specific(intervals, "engagement", start="start", stop="stop")
    assert (cs.scale, cs.measure) == ("ratio", "cause-specific hazard ratio")
    assert [r.outcome for r in cs.by_cause.values()] == ["involuntary exit", "voluntary exit"]
    assert {r.measure for r in cs.by_cause.values()} == {"cause-specific hazard ratio"}
    ph = ar.ph_test(cox, alpha=0.01)
    assert (ph.alpha, ph.outcome, ph.time_unit) == (0.01, "voluntary exit", "days")
    dt = ar.fit_discrete_time(intervals, "engagement", alpha=0.2)
    assert (dt.alpha, dt.outcome, dt.scale, dt.measure, dt.time_unit) == (
        0.2, "voluntary exit", "ratio", "odds ratio", "days")
    km = ar.fit_km(person, alpha=0.1)
    assert (km.alpha, km.outcome, km.scale, km.measure, km.time_unit) == (
        0.1, "voluntary exit", "difference", "survival probability", "days")
    cif = ar.fit_cif(person)
    assert (cif.measure, cif.time_unit, cif.outcome) == (
        "cumulative incidence", "days", "exit, by type (involuntary, voluntary)")
    with pytest.raises(ModelError, match="do not pass `event`"):
        ar.fit_cause_specific(intervals, "engagement", start="start", stop="stop", event="event")


def test_discrete_time_matches_statsmodels_glm(sim):
    # the one logistic estimator and CR1 give statsmodels GLM(Binomial)'s numbers (the engine before issue 11)
    import statsmodels.api as sm

    intervals, _ = sim
    res = ar.fit_discrete_time(intervals, "alignment_cascade + engagement", cluster="manager_id")
    pp = ar.person_periods(intervals)
    X = design_matrix(pp, "alignment_cascade + engagement + bs(period, df=4)", intercept=True)[0]
    glm = sm.GLM(pp["event"].to_numpy(float), X, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(pp["manager_id"])[0]})
    t = res.tidy().set_index("term")
    assert_allclose(t["estimate"], glm.params[t.index], rtol=1e-8)
    assert_allclose(t["std_error"], glm.bse[t.index], rtol=1e-6)
    assert_allclose(res.glance()["log_likelihood"].iloc[0], glm.llf, rtol=1e-10)
    assert_allclose(res.glance()["aic"].iloc[0], glm.aic, rtol=1e-10)


# --------------------------------------------------------------------------- restricted mean survival
class TestRestrictedMeanVsR:
    """``summary(survfit(...), rmean = horizon)$table`` (tests/reference/rmst.R -> rmst_reference.csv)."""

    ref = pd.read_csv(REF / "rmst_reference.csv")

    def _check(self, case, ours):
        r = self.ref[self.ref["case"] == case]
        rows = ours[ours["term"] == "rmst"]
        assert rows["group"].tolist() == r["group"].tolist()
        assert_allclose(rows["estimate"], r["rmean"], rtol=1e-10)
        assert_allclose(rows["std_error"], r["se"], rtol=1e-10)

    def test_right_censored(self, person):
        self._check("right_censored", ar.restricted_mean_survival(person, entry=None, horizon=730.5))

    def test_delayed_entry(self, person):
        self._check("delayed_entry", ar.restricted_mean_survival(person, horizon=1461))

    def test_delayed_entry_by_group(self, person):
        self._check("delayed_entry_by_department",
                    ar.restricted_mean_survival(person, group="department", horizon=730.5))

    def test_only_late_entrants_count_the_time_before_the_first_entry(self, person):
        # lifelines integrates from the earliest entry; R (and we) from tenure 0, where the curve is 1
        self._check("late_entrants", ar.restricted_mean_survival(person[person["entry"] > 100], horizon=730.5))


def test_restricted_mean_recovers_the_exponential():
    # S(t) = exp(-lam t): RMST(h) = (1 - exp(-lam h)) / lam; delayed entry (memoryless) and random censoring
    rng = np.random.default_rng(11)
    n, lam, h = 40_000, 1 / 900, 730.5
    entry = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 400, n))
    time = entry + rng.exponential(1 / lam, n)  # tenure given survival to entry
    censor = entry + rng.uniform(200, 3000, n)
    data = pd.DataFrame({"entry": entry, "exit": np.minimum(time, censor), "event": (time <= censor).astype(int),
                         "arm": np.where(rng.random(n) < 0.5, "a", "b")})
    truth = (1 - np.exp(-lam * h)) / lam
    res = ar.restricted_mean_survival(data, horizon=h)
    est, se = res["estimate"].iloc[0], res["std_error"].iloc[0]
    assert abs(est - truth) < 3 * se
    # without censoring or entry the standard error is the SD of min(T, h) over sqrt(n)
    second = 2 * (1 - np.exp(-lam * h) * (1 + lam * h)) / lam**2
    plain = ar.restricted_mean_survival(data.assign(exit=time - entry, event=1), entry=None, horizon=h)
    assert_allclose(plain["std_error"].iloc[0], np.sqrt((second - truth**2) / n), rtol=0.03)
    assert abs(plain["estimate"].iloc[0] - truth) < 3 * plain["std_error"].iloc[0]
    # two groups from one distribution: the difference is about zero, with its interval
    by_arm = ar.restricted_mean_survival(data, group="arm", horizon=h, alpha=0.1).set_index("group")
    diff = by_arm.loc["b - a"]
    assert diff["term"] == "difference"
    assert_allclose(diff["estimate"], by_arm.loc["b", "estimate"] - by_arm.loc["a", "estimate"], rtol=1e-12)
    assert_allclose(diff["std_error"], np.hypot(by_arm.loc["a", "std_error"], by_arm.loc["b", "std_error"]))
    assert_allclose(diff["conf_low"], diff["estimate"] - 1.6448536269514722 * diff["std_error"])
    assert diff["conf_low"] < 0 < diff["conf_high"]
    assert np.isnan(by_arm.loc["a", "p_value"]) and 0 < diff["p_value"] <= 1
    assert diff["n"] == n


def test_restricted_mean_refuses_bad_input():
    data = pd.DataFrame({"entry": [0, 0, 5, 0], "exit": [10, 20, 30, 40], "event": [1, 0, 1, 1]})
    with pytest.raises(ModelError, match="beyond the last tenure"):
        ar.restricted_mean_survival(data, horizon=41)
    with pytest.raises(ModelError, match="positive number"):
        ar.restricted_mean_survival(data, horizon=0)
    with pytest.raises(ModelError, match="must be 0 or 1"):
        ar.restricted_mean_survival(data.assign(event=[1, 2, 0, 1]), horizon=30)
    with pytest.raises(ModelError, match="do not end after they start"):
        ar.restricted_mean_survival(data.assign(entry=[0, 0, 30, 0]), horizon=30)
    with pytest.raises(ModelError, match="no column"):
        ar.restricted_mean_survival(data, group="team", horizon=30)
    # the curve 1, 3/4 after 10, 3/4 * 1/2 after 30: area to 35 = 10 + 20 * 0.75 + 5 * 0.375
    assert_allclose(ar.restricted_mean_survival(data, horizon=35)["estimate"], [26.875])


# --------------------------------------------------------------------------- degenerate input
def test_no_events_is_an_error(sim):
    intervals, person = sim
    with pytest.raises(ModelError, match="No events"):
        ar.fit_cox(intervals.assign(event=0), "engagement", start="start", stop="stop")
    with pytest.raises(ModelError, match="No events"):
        ar.fit_km(person.assign(event=0))
    with pytest.raises(ModelError, match="No events"):
        ar.fit_discrete_time(intervals.assign(event=0), "engagement")


def test_one_group_warns_and_logrank_refuses(sim):
    _, person = sim
    one = person.assign(team="A")
    with pytest.warns(StatisticalWarning, match="Only one group"):
        res = ar.fit_km(one, group="team")
    assert res.glance()["n_groups"].iloc[0] == 1
    with pytest.raises(ModelError, match="two or more groups"):
        ar.logrank_test(one, group="team")


def test_constant_covariate_is_an_error(sim):
    intervals, _ = sim
    with pytest.raises(ModelError, match="do not vary"):
        ar.fit_cox(intervals.assign(flat=1.0), "engagement + flat", start="start", stop="stop")


def test_collinear_covariates_are_an_error(sim):
    intervals, _ = sim
    with pytest.raises(ModelError, match="collinear"):
        ar.fit_cox(intervals.assign(twice=2 * intervals["engagement"]), "engagement + twice", start="start",
                   stop="stop")


def test_perfect_separation_is_an_error(rng):
    # one period per person and a covariate equal to the outcome: separation
    n = 200
    event = rng.integers(0, 2, n)
    data = pd.DataFrame({"employee_id": [f"E{i}" for i in range(n)], "spell": 1, "start": 0.0,
                         "stop": rng.integers(1, 80, n).astype(float), "event": event,
                         "leak": event.astype(float), "x": rng.normal(size=n)})
    with pytest.raises(ModelError, match="[Pp]erfect separation"):
        ar.fit_discrete_time(data, "x + leak", time_formula=None)


def test_bad_survival_columns(sim):
    intervals, person = sim
    with pytest.raises(ModelError, match="do not end after they start"):
        ar.fit_cox(intervals.assign(stop=intervals["start"]), "engagement", start="start", stop="stop")
    with pytest.raises(ModelError, match="not both"):
        ar.fit_cox(intervals, "engagement", start="start", stop="stop", duration="stop")
    with pytest.raises(ModelError, match="no column"):
        ar.fit_cox(intervals, "engagement", start="begin", stop="stop")
    with pytest.raises(ModelError, match="must be 0 or 1"):
        ar.fit_cox(intervals.assign(event=intervals["event"] * 2), "engagement", start="start", stop="stop")
    with pytest.raises(ModelError, match="ties"):
        ar.fit_cox(intervals, "engagement", start="start", stop="stop", ties="exact")


def test_diverging_estimate_warns(sim):
    intervals, _ = sim
    # a covariate equal to 1 only on censored rows: its hazard ratio goes to zero
    rng = np.random.default_rng(0)
    flag = ((intervals["event"] == 0) & (rng.random(len(intervals)) < 0.3)).astype(float)
    with pytest.warns(StatisticalWarning, match="did not converge"):
        ar.fit_cox(intervals.assign(flag=flag), "engagement + flag", start="start", stop="stop")


# --------------------------------------------------------------------------- plots
def test_km_plot_draws_curves_and_numbers_at_risk(sim):
    _, person = sim
    res = ar.fit_km(person, group="department")
    ax = res.plot()
    assert len(ax.lines) == 4
    xy = ax.lines[0].get_xydata()
    curve = res.extras["curves"]
    first = curve[curve["group"] == curve["group"].iloc[0]]
    assert_allclose(xy[0], [0.0, 1.0])
    assert_allclose(xy[1:, 1], first["estimate"].to_numpy())
    texts = [t.get_text() for t in ax.texts]
    assert "Number at risk" in texts
    n0 = res.extras["at_risk"]
    assert str(n0["at_risk"].iloc[0]) in texts
    assert ax.get_xlabel() == "Tenure (months)"


def test_cif_and_schoenfeld_and_forest_plots(sim):
    intervals, person = sim
    ax = ar.fit_cif(person).plot()
    assert len(ax.lines) == 2
    fit = ar.fit_cox(intervals, "alignment_cascade + engagement", start="start", stop="stop")
    ph = ar.ph_test(fit)
    import matplotlib.pyplot as plt

    _, ax2 = plt.subplots()
    ph.plot(term="engagement", ax=ax2)
    assert len(ax2.collections[0].get_offsets()) == fit.glance()["events"].iloc[0]
    _, ax3 = plt.subplots()
    fit.plot(ax=ax3)
    assert [t.get_text() for t in ax3.get_yticklabels()] == ["alignment_cascade", "engagement"]


# --------------------------------------------------------------------------- survival details against R (issue 16)
# tests/reference/survival_details.R -> survival_details_reference.csv (R 4.2.2, survival 3.5-3), on R's own
# data sets survival::veteran (days) and survival::mgus2 (months), stored beside the script.
DETAILS = pd.read_csv(REF / "survival_details_reference.csv", dtype={"group": str})


def _details(case, group=None):
    rows = DETAILS[DETAILS["case"] == case]
    if group is not None:
        rows = rows[rows["group"] == group]
    return rows.set_index("term")["value"].astype(float)


@pytest.fixture(scope="module")
def veteran():
    return pd.read_csv(REF / "survival_veteran.csv")


@pytest.fixture(scope="module")
def mgus2():
    """survival::mgus2 as competing risks: progression (pcm) before death, as in R's compete vignette."""
    m = pd.read_csv(REF / "survival_mgus2.csv")
    m["etime"] = np.where(m["pstat"] == 0, m["futime"], m["ptime"])
    m["code"] = np.where(m["pstat"] == 0, 2 * m["death"], 1)
    m["event"] = m["code"].map({0: "censor", 1: "pcm", 2: "death"})
    return m


@pytest.mark.parametrize("transform", ["rank", "km", "identity", "log"])
def test_ph_test_transforms_match_cox_zph_on_veteran(veteran, transform):
    # cox.zph(coxph(Surv(time, status) ~ trt + karno + diagtime + age + prior, veteran), transform)$table[, "chisq"]
    fit = ar.fit_cox(veteran, "trt + karno + diagtime + age + prior", duration="time", event="status")
    res1 = ar.ph_test(fit, transform=transform).tidy().set_index("term")["statistic"]
    res2 = _details(f"zph_{transform}")
    assert_allclose(res1[res2.index].to_numpy(), res2.to_numpy(), rtol=1e-9)


def test_ph_test_rank_counts_censored_times(veteran):
    # R: trt 0.2419; ranking only the event times gave 0.2186-like values (issue 16)
    fit = ar.fit_cox(veteran, "trt + karno + diagtime + age + prior", duration="time", event="status")
    trt = ar.ph_test(fit, transform="rank").tidy().set_index("term").loc["trt", "statistic"]
    assert trt == pytest.approx(0.24194877731380871, rel=1e-9)


@pytest.mark.parametrize("label", ["event", "code"])
def test_fit_cif_reads_r_censoring_labels_and_says_so(mgus2, label):
    # summary(survfit(Surv(etime, factor(event, 0:2, c("censor", "pcm", "death"))) ~ 1, mgus2), times)$pstate
    with pytest.warns(StatisticalWarning, match="read as censoring"):
        res = ar.fit_cif(mgus2, duration="etime", entry=None, event_type=label, months=(60, 120, 240),
                         time_unit="months")
    assert len(res.caveats) == 1 and "read as censoring" in res.caveats[0]
    assert res.time_unit == "months"
    t = res.tidy()
    for cause, code in (("pcm", "1"), ("death", "2")):
        rows = t[t["cause"] == (cause if label == "event" else code)].set_index("term")
        assert_allclose(rows["estimate"].to_numpy(), _details("cif_mgus2", cause)[rows.index].to_numpy(), rtol=1e-9)
        assert_allclose(rows["std_error"].to_numpy(), _details("cif_mgus2_se", cause)[rows.index].to_numpy(),
                        rtol=1e-9)
    pcm = t[t["cause"] == ("pcm" if label == "event" else "1")].set_index("term")
    assert pcm.loc["incidence_240_months", "estimate"] == pytest.approx(0.0998137, abs=1e-7)


def test_fit_cif_explicit_censored_value_is_silent(mgus2, recwarn):
    res = ar.fit_cif(mgus2, duration="etime", entry=None, event_type="code", months=(240,), time_unit="months",
                     censored=0)
    assert res.caveats == ()
    assert not [w for w in recwarn if issubclass(w.category, StatisticalWarning)]
    assert sorted(res.tidy()["cause"]) == ["1", "2"]
    assert_allclose(res.tidy()["estimate"], [0.099813715935469172, 0.72402797614254544], rtol=1e-9)


def test_cif_table_refuses_two_censoring_labels():
    data = pd.DataFrame({"exit": [1.0, 2.0, 3.0, 4.0], "kind": ["censor", "quit", "censored", "fired"]})
    with pytest.raises(ar.errors.ConfigError, match="several censoring labels"):
        ar.cif_table(data, entry=None, event_type="kind")
    out = ar.cif_table(data, entry=None, event_type="kind", censored="censored", times=[4.0])
    assert sorted(out["cause"]) == ["censor", "fired", "quit"]


def test_cif_table_without_censoring_label_says_every_type_is_an_exit():
    data = pd.DataFrame({"exit": [1.0, 2.0, 3.0, 4.0], "kind": ["stay", "quit", "stay", "fired"]})
    with pytest.warns(StatisticalWarning, match="every type"):
        out = ar.cif_table(data, entry=None, event_type="kind", times=[4.0])
    assert sorted(out["cause"]) == ["fired", "quit", "stay"]
    assert out["estimate"].sum() == pytest.approx(1.0)


def _weighted_cif(entry, exit, kind, causes, weights, times):
    """Aalen-Johansen cumulative incidence with case weights (complex weights allowed), by hand, at ``times``."""
    out, surv, cif = [], 1.0 + 0j, np.zeros(len(causes), dtype=complex)
    events = np.unique(exit[np.isin(kind, causes)])
    for t in events:
        at_risk = weights[(entry < t) & (exit >= t)].sum()
        d = np.array([weights[(exit == t) & (kind == c)].sum() for c in causes])
        cif, surv = cif + surv * d / at_risk, surv * (1 - d.sum() / at_risk)
        out.append(cif)
    done = np.searchsorted(events, times, side="right")  # event times <= t
    return np.vstack([np.zeros(len(causes)), *out])[done]


@pytest.mark.parametrize("seed", [3, 11])
def test_cif_standard_errors_are_the_case_weight_derivatives_of_the_estimate(seed):
    # the infinitesimal jackknife: each person's influence is the derivative of the estimate in their case weight,
    # taken here exactly by a complex step (w_i = 1 + ih, Im / h), with delayed entry, ties and three exit types
    rng = np.random.default_rng(seed)
    n = 60
    entry = rng.integers(0, 6, n) * (rng.random(n) < 0.5).astype(float)
    exit = entry + rng.integers(1, 15, n)
    kind = rng.choice(np.array(["censored", "voluntary", "involuntary", "other"], dtype=object), n)
    causes = ["involuntary", "other", "voluntary"]
    data = pd.DataFrame({"entry": entry, "exit": exit, "event_type": kind})
    times = np.sort(np.r_[np.unique(exit[np.isin(kind, causes)]), 0.5, 7.5, 30.0])  # every exit time, and between
    h = 1e-30
    influence = np.array([_weighted_cif(entry, exit, kind, causes, 1 + 1j * h * (np.arange(n) == i), times).imag / h
                          for i in range(n)])
    expected = np.sqrt((influence ** 2).sum(axis=0))
    ours = ar.cif_table(data, times=times).pivot(index="time", columns="cause", values="std_error")
    assert_allclose(ours.reindex(index=times, columns=causes).to_numpy(), expected, rtol=1e-12, atol=1e-15)


def test_km_median_upper_limit_missing_where_r_gives_na(veteran):
    # quantile(survfit(Surv(time, status) ~ arm, veteran), 0.5): four upper limits NA, four exist
    data = veteran.assign(arm=veteran["trt"].astype(str) + "_" + veteran["celltype"])
    t = ar.fit_km(data, duration="time", entry=None, event="status", group="arm", person=None).tidy()
    med = t[t["term"] == "median_tenure_months"].set_index("group")
    n_missing = 0
    for group, row in med.iterrows():
        ref = _details("km_median_days", group)
        for column in ("estimate", "conf_low", "conf_high"):
            if np.isnan(ref[column]):
                assert np.isnan(row[column]), (group, column)
                n_missing += 1
            else:
                assert row[column] * retention.DAYS_PER_MONTH == pytest.approx(ref[column], rel=1e-9)
    assert n_missing == 4
    assert np.isnan(med.loc["1_adeno", "conf_high"])  # the toolkit gave the last time before


@pytest.mark.parametrize("unit,per_day", [("days", 1.0), ("weeks", 1 / 7), ("months", 12 / 365.25),
                                          ("years", 1 / 365.25)])
def test_km_summaries_follow_time_unit(veteran, unit, per_day):
    # survfit(Surv(time, status) ~ 1, veteran) in days; the same data in another unit give the same months
    data = veteran.assign(t=veteran["time"] * per_day)
    res = ar.fit_km(data, duration="t", entry=None, event="status", person=None, months=(3, 6, 12), time_unit=unit)
    assert res.time_unit == unit
    t = res.tidy().set_index("term")
    med = _details("km_median_days", "all") / retention.DAYS_PER_MONTH
    assert_allclose(t.loc["median_tenure_months", ["estimate", "conf_low", "conf_high"]].to_numpy(float),
                    med[["estimate", "conf_low", "conf_high"]].to_numpy(), rtol=1e-9)
    for case, column in (("km_retention", "estimate"), ("km_retention_low", "conf_low"),
                         ("km_retention_high", "conf_high")):
        ref = _details(case, "all")
        assert_allclose(t.loc[ref.index, column].to_numpy(float), ref.to_numpy(), rtol=1e-9)
    curves = res.extras["curves"]
    assert_allclose(curves["time_months"], curves["time"] / (retention.DAYS_PER_MONTH * per_day), rtol=1e-12)


def test_time_unit_must_be_known(veteran):
    with pytest.raises(ar.errors.ConfigError, match="time_unit"):
        ar.fit_km(veteran, duration="time", entry=None, event="status", person=None, time_unit="fortnights")
    with pytest.raises(ar.errors.ConfigError, match="time_unit"):
        ar.cif_table(pd.DataFrame({"exit": [1.0], "kind": ["quit"]}), entry=None, event_type="kind",
                     time_unit="hours")


def test_numeric_design_leaves_an_unused_category_to_the_design_matrix_error():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": pd.Categorical(["a", "b", "a", "b"], categories=["a", "b", "c"])})
    assert numeric_design(frame, "x + C(g)", intercept=False) is None  # the column of "c" is all zero
    with pytest.raises(ModelError, match="do not vary"):
        design_matrix(frame, "x + C(g)", intercept=False)


def test_large_data_blocks_give_the_same_numbers(monkeypatch):
    # the engine works on large data a block of rows (Gram, score residuals) or columns (risk sums) at a time;
    # forced to tiny blocks here, the risk sums and residuals are bit for bit those of one block
    intervals, _ = simulate_counting_process(2000, seed=4, n_extra=3)
    cols = ["alignment_cascade", "engagement", "manager_program", "job_level", "z1", "z2", "z3"]
    cd = _cox.prepare(intervals[cols].to_numpy(float), intervals["start"], intervals["stop"], intervals["event"])
    beta = np.linspace(-0.4, 0.4, len(cols))
    whole = _cox.evaluate(cd, beta)
    resid = _cox.score_residuals(cd, whole)
    monkeypatch.setattr(_cox, "_SUM_CELLS", 2 * len(cd.X))
    monkeypatch.setattr(_cox, "_BLOCK_ROWS", 997)
    blocks = _cox.evaluate(cd, beta)
    assert blocks.loglik == whole.loglik
    np.testing.assert_array_equal(blocks.grad, whole.grad)
    np.testing.assert_array_equal(blocks.xbar, whole.xbar)
    np.testing.assert_array_equal(_cox.score_residuals(cd, blocks), resid)
    np.testing.assert_allclose(blocks.info, whole.info, rtol=1e-13)  # the Gram's blocks add in another order
