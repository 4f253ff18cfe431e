"""Wording for leaders: sentences follow the interval, labels are readable."""

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alignment_research as ar


def _ratio_result(term, hr, lo, hi, name="cox", outcome="voluntary exit", measure="hazard ratio", **attrs):
    table = pd.DataFrame(
        {
            "term": [term],
            "estimate": [math.log(hr)],
            "std_error": [0.1],
            "statistic": [0.0],
            "p_value": [0.5],
            "conf_low": [math.log(lo)],
            "conf_high": [math.log(hi)],
            "exp_estimate": [hr],
            "exp_conf_low": [lo],
            "exp_conf_high": [hi],
        }
    )
    return ar.ModelResult(name, table, pd.DataFrame({"n": [100], "formula": ["x"]}), outcome=outcome, scale="ratio",
                          measure=measure, **attrs)


def _diff_result(term, est, lo, hi, formula="engagement ~ alignment_cascade"):
    table = pd.DataFrame({"term": [term], "estimate": [est], "conf_low": [lo], "conf_high": [hi]})
    return ar.ModelResult("ols", table, pd.DataFrame({"n": [100], "formula": [formula]}))


def test_a_protective_hazard_ratio_is_worded_as_lower_by_a_percentage():
    text = ar.describe_effect(_ratio_result("alignment_cascade", 0.70, 0.61, 0.82), "alignment_cascade")
    assert text == (
        "The hazard of voluntary exit was lower by 30% (95% CI 18–39%) per one-point higher cascade alignment "
        "(share of goals linked to the manager's goals, 0–1) (hazard ratio 0.70)."
    )


def test_a_harmful_hazard_ratio_is_worded_as_higher():
    text = ar.describe_effect(_ratio_result("program_coaching", 1.5, 1.2, 1.9), "program_coaching")
    assert "higher by 50% (95% CI 20–90%)" in text
    assert "with the coaching programme than without" in text


def test_an_interval_that_includes_one_gives_no_clear_evidence():
    text = ar.describe_effect(_ratio_result("manager_program", 0.95, 0.80, 1.12), "manager_program")
    assert text.startswith("There is no clear evidence")
    assert "hazard ratio is 0.95 (95% CI 0.80–1.12)" in text
    assert "lower by" not in text and "higher by" not in text


def test_an_interval_touching_the_null_is_not_an_effect():
    s = ar.summarise_effect(_ratio_result("manager_program", 0.9, 0.8, 1.0), "manager_program")
    assert not s.table["excludes_null"].iloc[0]
    assert s.text.startswith("There is no clear evidence")


def test_differences_are_worded_in_units_with_the_outcome_from_the_formula():
    text = ar.describe_effect(_diff_result("alignment_cascade", 0.25, 0.10, 0.40), "alignment_cascade")
    assert text.startswith("Engagement was higher by 0.25 points (95% CI 0.10–0.40) per one-point higher cascade")
    text = ar.describe_effect(_diff_result("alignment_cascade", -0.25, -0.40, -0.10), "alignment_cascade")
    assert "lower by 0.25 points (95% CI 0.10–0.40)" in text
    text = ar.describe_effect(_diff_result("alignment_cascade", 0.03, -0.05, 0.11), "alignment_cascade")
    assert text == (
        "There is no clear evidence that cascade alignment is associated with engagement: "
        "the estimate is 0.03 points (95% CI −0.05 to 0.11), an interval that includes no difference."
    )


def test_per_rescales_the_effect():
    res = _ratio_result("alignment_cascade", 0.5, 0.4, 0.625)
    s = ar.summarise_effect(res, "alignment_cascade", per=0.1)
    assert s.table["estimate"].iloc[0] == pytest.approx(0.5**0.1)
    assert "per 0.1-point higher" in s.text


def test_categorical_terms_name_their_reference():
    table = pd.DataFrame(
        {
            "term": ["C(job_level)[T.2]", "C(job_level)[T.3]"],
            "estimate": [0.4, 0.1],
            "conf_low": [0.2, -0.1],
            "conf_high": [0.6, 0.3],
        }
    )
    res = ar.ModelResult("ols", table, pd.DataFrame({"formula": ["engagement ~ C(job_level)"]}))
    assert "for job level 2 (vs 1)" in ar.describe_effect(res, "C(job_level)[T.2]")
    assert ar.describe_effect(res, "C(job_level)[T.3]").startswith("There is no clear evidence that job level 3 (vs 1)")


def test_an_unknown_term_is_a_model_error():
    with pytest.raises(ar.ModelError, match="'nope' is not a term"):
        ar.describe_effect(_diff_result("x", 1, 0.5, 1.5), "nope")


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-2, 2, allow_nan=False),
    st.floats(0.001, 1.5, allow_nan=False),
    st.floats(0.001, 1.5, allow_nan=False),
    st.booleans(),
)
def test_the_sentence_never_claims_more_than_the_interval(beta, down, up, ratio):
    lo, hi = beta - down, beta + up
    if ratio:
        res = _ratio_result("alignment_cascade", math.exp(beta), math.exp(lo), math.exp(hi))
    else:
        res = _diff_result("alignment_cascade", beta, lo, hi)
    text = ar.describe_effect(res, "alignment_cascade")
    if ratio:  # the interval the sentence reads is the stored ratio's: exp(1e-17) is 1.0, which includes no difference
        lo, hi = math.log(math.exp(lo)), math.log(math.exp(hi))
    if lo > 0:
        assert " was higher by " in text
    elif hi < 0:
        assert " was lower by " in text
    else:
        assert text.startswith("There is no clear evidence") and " by " not in text.split(":")[0]


def test_term_labels():
    terms = ["C(job_level)[T.2]", "C(job_level)[T.3]", "C(job_level)[T.4]"]
    assert ar.term_label("C(job_level)[T.2]", terms=terms) == "Job level 2 vs 1"
    assert ar.term_label("C(department, Treatment('Sales'))[T.Finance]") == "Department Finance vs Sales"
    assert ar.term_label("department[T.Ops]") == "Department Ops vs the reference level"
    assert ar.term_label("program_leadership_development") == "The leadership development programme"
    assert ar.term_label("some_new_column") == "Some new column"
    labelled = ar.with_labels(pd.DataFrame({"term": terms + ["alignment_cascade"], "estimate": [1, 2, 3, 4]}))
    assert labelled["term"].tolist() == ["Job level 2 vs 1", "Job level 3 vs 1", "Job level 4 vs 1", "Cascade alignment"]
    assert labelled["term_code"].tolist()[-1] == "alignment_cascade"


def test_e_value_wording():
    text = ar.describe_e_value({"e_value": 2.14, "e_value_ci": 1.38}, treatment="leadership development")
    assert "risk ratio of at least 2.1 each" in text and "at least 1.4 each would do" in text
    text = ar.describe_e_value(1.3, e_value_ci=1.0)
    assert "already includes no effect" in text
    with pytest.raises(ar.ModelError):
        ar.describe_e_value({"other": 1})


def test_sentences_render_as_escaped_paragraphs():
    s = ar.paragraph("A < B.", None, ar.report.Sentence("C."))
    assert s == "A < B. C." and isinstance(s, str)
    assert repr(s) == "A < B. C."
    assert s._repr_html_() == '<p class="ar-finding">A &lt; B. C.</p>'


def test_results_with_one_row_per_method_are_described_by_method():
    table = pd.DataFrame(
        {
            "term": ["leadership_development"] * 2,
            "estimate": [math.log(1.2), math.log(0.7)],
            "conf_low": [math.log(1.05), math.log(0.5)],
            "conf_high": [math.log(1.4), math.log(1.1)],
            "exp_estimate": [1.2, 0.7],
            "exp_conf_low": [1.05, 0.5],
            "exp_conf_high": [1.4, 1.1],
            "method": ["naive", "adjusted"],
        }
    )
    res = ar.ModelResult("leadership_development: retention", table, pd.DataFrame({"outcome": ["retention"]}),
                         outcome="voluntary exit", scale="ratio", measure="hazard ratio")
    assert ar.describe_effect(res, "naive", comparison="in programme teams").startswith(
        "The hazard of voluntary exit was higher by 20% (95% CI 5.0–40%) in programme teams"
    )
    assert ar.describe_effect(res, "adjusted", comparison="in programme teams") == (
        "There is no clear evidence of a difference in the hazard of voluntary exit in programme teams: "
        "the hazard ratio is 0.70 (95% CI 0.50–1.10), an interval that includes no difference."
    )


def test_with_labels_takes_reference_levels_from_the_data():
    data = pd.DataFrame({"department": ["Sales", "Eng", "Ops"]})
    tidy = pd.DataFrame({"term": ["C(department)[T.Ops]", "C(department)[T.Sales]"]})
    assert ar.with_labels(tidy, data=data)["term"].tolist() == ["Department Ops vs Eng", "Department Sales vs Eng"]


def test_odds_take_a_plural_verb():
    text = ar.describe_effect(_ratio_result("alignment_cascade", 0.70, 0.61, 0.82), "alignment_cascade",
                              outcome="the odds of leaving in the next cycle")
    assert text.startswith("The odds of leaving in the next cycle were lower by 30%")


# --- the report reads what a result is (outcome, scale, measure, alpha), never its name -----------------


def test_every_interval_label_follows_alpha():
    """A 50% interval is labelled "50% CI", in clear and in unclear sentences, for ratios and differences."""
    table = ar.results.tidy_table(["alignment_cascade"], [math.log(0.70)], [0.1], alpha=0.5, ratio=True)
    res = ar.ModelResult("cox", table, pd.DataFrame(), alpha=0.5, outcome="voluntary exit", scale="ratio",
                         measure="hazard ratio")
    text = ar.describe_effect(res, "alignment_cascade", comparison="per point")
    # exp(log(0.7) -/+ qnorm(0.75) * 0.1) = 0.6544, 0.7488: lower by 25.1% to 34.6%
    assert text == "The hazard of voluntary exit was lower by 30% (50% CI 25–35%) per point (hazard ratio 0.70)."
    diff = ar.ModelResult("ols", ar.results.tidy_table(["x"], [0.03], [0.05], alpha=0.1), pd.DataFrame(), alpha=0.1,
                          outcome="engagement")
    assert "the estimate is 0.03 points (90% CI −0.05 to 0.11)" in ar.describe_effect(diff, "x")


def test_a_cox_fit_at_alpha_one_half_is_described_with_a_50_percent_interval(tiny_clean):
    res = ar.fit_cox(tiny_clean.analysis.intervals, "alignment_cascade + engagement", start="start", stop="stop",
                     event="event", alpha=0.5)
    assert res.alpha == 0.5
    text = ar.describe_effect(res, "engagement")
    assert "50% CI" in text and "95% CI" not in text


def test_describe_retention_labels_the_interval_with_the_results_alpha(tiny_clean):
    km = ar.fit_km(ar.add_levels(tiny_clean.analysis.person, "alignment_cascade_entry"), group="alignment_level")
    assert "(95% CI " in ar.describe_retention(km, min_group_size=1)
    text = ar.describe_retention(replace(km, alpha=0.1), min_group_size=1)
    assert "(90% CI " in text and "95% CI" not in text


@pytest.mark.parametrize(
    "attrs, formula, start",
    [
        # what each fit sets (issue 11) and the words the report made of its name before: unchanged
        (dict(outcome="voluntary exit", measure="hazard ratio", time_unit="days"), "x", "The hazard of voluntary exit was lower by 30%"),
        (dict(outcome="voluntary exit", measure="odds ratio", time_unit="days"), "x", "The odds of voluntary exit were lower by 30%"),
        (dict(outcome="left_next_cycle", measure="odds ratio"), "left_next_cycle ~ x", "Left next cycle was lower by 30%"),
        (dict(outcome="rating", measure="odds ratio"), "rating ~ x", "The employee's review rating was lower by 30%"),
        (dict(outcome="voluntary exit", measure="cause-specific hazard ratio", time_unit="days"), "x",
         "The cause-specific hazard of voluntary exit was lower by 30%"),
        # a ratio with no name is a "ratio"; no outcome and no formula left side: "the outcome"
        (dict(), "x", "The outcome was lower by 30%"),
    ],
)
def test_the_outcome_and_the_ratio_are_read_from_the_result(attrs, formula, start):
    table = ar.results.tidy_table(["x"], [math.log(0.7)], [0.1], ratio=True)
    res = ar.ModelResult("any name", table, pd.DataFrame({"formula": [formula]}), scale="ratio", **attrs)
    text = ar.describe_effect(res, "x", comparison="per point")
    assert text.startswith(start), text
    assert text.endswith(f"({attrs.get('measure', 'ratio')} 0.70).")


def test_the_result_name_is_not_read():
    """A hand-built "cox" without attributes is a difference of "the outcome" (scale decides, not the name)."""
    table = ar.results.tidy_table(["x"], [math.log(0.7)], [0.1], ratio=True)
    text = ar.describe_effect(ar.ModelResult("cox", table, pd.DataFrame()), "x", comparison="per point")
    assert text == "The outcome was lower by 0.36 points (95% CI 0.16–0.55) per point."
    logit = ar.ModelResult("logit", table, pd.DataFrame({"formula": ["left_next_cycle ~ x"]}), scale="ratio")
    assert ar.describe_effect(logit, "x").endswith("(ratio 0.70).")


def test_the_outcome_attribute_comes_before_the_formula():
    res = ar.ModelResult("ols", ar.results.tidy_table(["x"], [0.3], [0.1]), pd.DataFrame({"formula": ["y ~ x"]}),
                         outcome="engagement")
    assert ar.describe_effect(res, "x").startswith("Engagement was higher by 0.30 points (95% CI 0.10–0.50)")
    no_lhs = ar.ModelResult("ols", ar.results.tidy_table(["x"], [0.3], [0.1]), pd.DataFrame({"formula": ["x"]}))
    assert ar.describe_effect(no_lhs, "x").startswith("The outcome was higher by 0.30 points")


def test_a_ratio_scale_is_worded_as_a_ratio_even_without_exp_columns():
    table = ar.results.tidy_table(["x"], [math.log(2.0)], [0.1])
    res = ar.ModelResult("m", table, pd.DataFrame(), scale="ratio", measure="odds ratio", outcome="leaving")
    s = ar.summarise_effect(res, "x", comparison="per point")
    assert s.table["scale"].iloc[0] == "ratio" and s.table["estimate"].iloc[0] == pytest.approx(2.0)
    assert s.text.startswith("Leaving was higher by 100% (95% CI")


# ---------------------------------------------------------------- sensitivity analyses beside the primary model


def _fit(name, estimate, *, formula, n, cov_type=None, measure=None, scale="difference", cause=None):
    from alignment_research.results import tidy_table

    table = tidy_table(["x", "z"], [estimate, 0.1], [0.05, 0.05])
    if scale == "ratio":
        table = table.assign(exp_estimate=np.exp(table["estimate"]), exp_conf_low=np.exp(table["conf_low"]),
                             exp_conf_high=np.exp(table["conf_high"]))
    if cause is not None:
        table = pd.concat([table.assign(cause="other", estimate=9.0), table.assign(cause=cause)], ignore_index=True)
    stats = pd.DataFrame({"n": [n], "formula": [formula], "cov_type": [cov_type]})
    return ar.ModelResult(name, table, stats, outcome="voluntary exit" if scale == "ratio" else "engagement",
                          measure=measure, scale=scale)


def test_sensitivity_reasons_are_read_from_the_two_fits():
    primary = _fit("mixed", 0.30, formula="engagement ~ x + C(job_level) + department", n=1000,
                   cov_type="random intercept: manager_id")
    rating = _fit("mixed", 0.32, formula="engagement ~ x + job_level + manager_rating", n=900,
                  cov_type="random intercept: manager_id")
    ols = _fit("ols", 0.60, formula="engagement ~ x + C(job_level) + department", n=1000, cov_type="cluster: manager_id")
    data = pd.DataFrame({"manager_rating": [1.0] * 900 + [np.nan] * 100})
    table = ar.compare_with_primary(primary, "x", data=data, rating_adjusted=rating, least_squares=ols)
    assert table["role"].tolist() == ["primary", "sensitivity analysis", "sensitivity analysis"]
    assert table["estimate"].tolist() == pytest.approx([0.30, 0.32, 0.60])
    assert table["analysis"].tolist() == ["primary analysis", "rating adjusted", "least squares"]
    first, second = table["reason"].iloc[1:]
    assert "also adjusts for the manager's review rating" in first and "leaves out department" in first
    assert "takes job level as a number, where the primary model compares categories" in first
    assert "900 rows against the primary model's 1,000 (100 rows have no value of the manager's review rating)" in first
    assert first.endswith("the two agree within their uncertainty (each lies inside the other's interval).")
    assert "ordinary least squares rather than a linear mixed model" in second
    assert "standard errors clustered by manager (the primary model: a random intercept for each manager)" in second
    assert "adjusts" not in second and "rows" not in second
    assert second.endswith("the two differ beyond their uncertainty (one lies outside the other's interval).")


def test_sensitivity_of_a_ratio_reads_the_cause_the_primary_outcome_names():
    primary = _fit("cox", np.log(0.5), formula="x + z", n=500, measure="hazard ratio", scale="ratio")
    by_cause = _fit("cause_specific_cox", np.log(0.55), formula="x + z", n=500, measure="cause-specific hazard ratio",
                    scale="ratio", cause="voluntary")
    table = ar.compare_with_primary(primary, "x", each_kind_of_exit=by_cause)
    assert table["estimate"].tolist() == pytest.approx([0.5, 0.55])
    text = ar.describe_sensitivity(primary, "x", each_kind_of_exit=by_cause)
    assert text.startswith("Primary estimate of the effect of x (hazard ratio): 0.50")
    assert "Sensitivity analysis, each kind of exit: 0.55" in text
    assert "it estimates a cause-specific hazard ratio, not a hazard ratio" in text
    with pytest.raises(ar.ModelError, match="no term 'w'"):
        ar.compare_with_primary(primary, "w", each_kind_of_exit=by_cause)


def test_plain_table_keeps_a_named_bookkeeping_column_as_a_label():
    t = pd.DataFrame({"measure": ["cascade", "cascade"], "department": ["A", "B"], "n_people": [12, None],
                      "mean": [0.612, None], "suppressed": [False, True]})
    shown = ar.plain_table(t, index=["measure", "department"])
    assert list(shown.index.names) == ["Measure", "Department"] and list(shown.columns) == ["People", "Average"]
    assert shown.loc[("cascade", "B")].tolist() == ["–", "–"]
