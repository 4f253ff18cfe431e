"""What every fit returns: a short, readable ``print(result)``, a full ``summary()``, tidy intervals that follow alpha."""

import importlib
import pkgutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import alignment_research as ar
from alignment_research.results import ModelResult, conf_label, tidy_table

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _result_classes():
    for module in pkgutil.iter_modules(ar.__path__):
        importlib.import_module(f"alignment_research.{module.name}")
    return sorted(set(_all_subclasses(ModelResult)), key=lambda c: (c.__module__, c.__name__))


@pytest.fixture(scope="module")
def sample_fits():
    clean = ar.open_clean(SAMPLE)
    tables = clean.analysis
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)  # caveats are part of the repr; tested below
        return {
            "fit_mixed": ar.fit_mixed(tables.survey_panel, "engagement ~ alignment_cascade + manager_program + C(job_level)",
                                      groups="manager_id"),
            "fit_cox": ar.fit_cox(tables.intervals, "alignment_cascade + engagement + manager_program + job_level",
                                  start="start", stop="stop", event="event", cluster="manager_id"),
            "fit_km": ar.fit_km(ar.add_levels(tables.person, "alignment_cascade_entry"), group="alignment_level"),
            "fit_ordinal": ar.fit_ordinal(tables.cycles, "rating ~ alignment_cascade + manager_program + attainment"),
            "estimate_program_effect": ar.estimate_program_effect(clean, "leadership_development", warn=False),
        }


# --- print(result) -------------------------------------------------------------------------------------


def test_the_package_has_result_classes_to_check():
    names = {cls.__name__ for cls in _result_classes()}
    assert {"CoxResult", "KMResult", "MixedResult", "ProgramEffectResult"} <= names


@pytest.mark.parametrize("cls", _result_classes(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_result_class_prints_the_base_summary(cls):
    # a subclass declared @dataclass without repr=False gets a generated repr dumping every table
    assert cls.__repr__ is ModelResult.__repr__, f"{cls.__name__} overrides __repr__: declare it repr=False"


@pytest.mark.parametrize("fit", ["fit_mixed", "fit_cox", "fit_km", "fit_ordinal", "estimate_program_effect"])
def test_print_result_is_short_and_says_what_it_is(sample_fits, fit):
    result = sample_fits[fit]
    text = repr(result)
    assert len(text) < 1500, text
    first = text.splitlines()[0]
    assert first.startswith(f"<{type(result).__name__}: {result.name}") and first.endswith(f"{result.conf_label}>")
    assert "object at 0x" not in text and "DataFrame(" not in text
    # at most 12 term rows, then a line saying where the rest are
    body = [line for line in text.splitlines()[2:] if not line.startswith(("Caveat:", "..."))]
    assert len(body) == min(len(result.tidy()), 12)
    if len(result.tidy()) > 12:
        assert f"... {len(result.tidy()) - 12} more terms: .tidy() has them all" in text
    assert [line for line in text.splitlines() if line.startswith("Caveat: ")] == [f"Caveat: {c}" for c in result.caveats]


def test_repr_shows_the_ratio_for_ratio_models():
    table = tidy_table(["x", "z"], [np.log(0.5), 0.0], [0.1, 0.2], ratio=True)
    res = ModelResult("cox", table, pd.DataFrame({"n": [1234]}), scale="ratio", outcome="voluntary exit",
                      caveats=["Few clusters."])
    assert repr(res) == (
        "<ModelResult: cox, outcome: voluntary exit, n = 1,234, ratio (exp shown), 95% CI>\n"
        "term  exp_estimate  exp_conf_low  exp_conf_high  p_value\n"
        "   x           0.5         0.411          0.608      0.0\n"
        "   z           1.0         0.676          1.480      1.0\n"
        "Caveat: Few clusters."
    )


# --- summary() -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", ["fit_mixed", "fit_cox", "fit_ordinal"])
def test_summary_has_the_header_and_one_line_per_term(sample_fits, fit):
    result = sample_fits[fit]
    lines = str(result.summary()).splitlines()
    assert lines[0].startswith("=" * 78)
    header = "\n".join(lines[1 : 1 + next(i for i, line in enumerate(lines[1:]) if line.startswith("="))])
    assert "Model:" in header and result.name in header and "Intervals:" in header and result.conf_label in header
    assert "n:" in header and f"{int(result.glance()['n'].iloc[0]):,}" in header
    head = next(line for line in lines if "std err" in line)
    assert head.split()[:4] == ["coef", "std", "err", "stat"] and f"[{result.alpha / 2:g}" in head
    start = lines.index(head) + 2  # after the dashed rule
    body = lines[start : start + len(result.tidy())]
    assert [line.split()[0] for line in body] == [t.split()[0] for t in result.tidy()["term"].astype(str)]
    assert lines[start + len(result.tidy())].startswith("=")
    first = result.tidy().iloc[0]
    assert body[0].split()[-2:] == [f"{first['conf_low']:.4f}", f"{first['conf_high']:.4f}"]


def test_summary_of_a_small_result_reads_exactly():
    res = ModelResult("ols", tidy_table(["x"], [0.3], [0.1], alpha=0.1), pd.DataFrame({"n": [100]}), alpha=0.1,
                      outcome="engagement")
    lines = str(res.summary()).splitlines()
    assert lines[1] == f"{'Model:':<16}{'ols':>21}    {'Outcome:':<16}{'engagement':>21}"
    # qnorm(0.95) = 1.644854: 0.3 -/+ 0.1645
    assert lines[-2].split() == ["x", "0.3000", "0.1000", "3.0000", "0.0027", "0.1355", "0.4645"]
    assert lines[5].split()[-2:] == ["[0.05", "0.95]"]


# --- tidy_table ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.5])
def test_tidy_intervals_follow_alpha_on_the_normal(alpha):
    est, se = np.array([0.5, -1.0]), np.array([0.2, 0.4])
    table = tidy_table(["a", "b"], est, se, alpha=alpha, ratio=True)
    q = stats.norm.ppf(1 - alpha / 2)
    np.testing.assert_allclose(table["conf_low"], est - q * se, rtol=1e-12)
    np.testing.assert_allclose(table["conf_high"], est + q * se, rtol=1e-12)
    np.testing.assert_allclose(table["p_value"], 2 * stats.norm.sf(np.abs(est / se)), rtol=1e-12)
    np.testing.assert_allclose(table["exp_conf_low"], np.exp(est - q * se), rtol=1e-12)
    assert table.columns.tolist() == ar.results.TIDY_COLUMNS + ar.results.RATIO_COLUMNS


def test_tidy_intervals_on_the_t_use_its_degrees_of_freedom():
    est, se = np.array([0.5, -1.0]), np.array([0.2, 0.4])
    table = tidy_table(["a", "b"], est, se, alpha=0.1, dist="t", df=7)
    q = stats.t.ppf(0.95, 7)  # 1.894579, wider than the normal's 1.644854
    np.testing.assert_allclose(table["conf_low"], est - q * se, rtol=1e-12)
    np.testing.assert_allclose(table["conf_high"], est + q * se, rtol=1e-12)
    np.testing.assert_allclose(table["p_value"], 2 * stats.t.sf(np.abs(est / se), 7), rtol=1e-12)
    # one df per term
    per_term = tidy_table(["a", "b"], est, se, dist="t", df=[3, 30])
    np.testing.assert_allclose(per_term["conf_high"], est + stats.t.ppf(0.975, [3, 30]) * se, rtol=1e-12)
    assert float(table["conf_low"].iloc[0]) == pytest.approx(0.5 - 1.894579 * 0.2, abs=1e-6)


def test_tidy_table_keeps_given_values_and_refuses_an_unknown_distribution():
    table = tidy_table(["a"], [0.5], [0.2], p_value=[0.01], conf_low=[0.1], conf_high=[0.9], std_estimate=[0.3])
    assert table[["p_value", "conf_low", "conf_high", "std_estimate"]].iloc[0].tolist() == [0.01, 0.1, 0.9, 0.3]
    with pytest.raises(ValueError, match="dist must be 'norm' or 't'"):
        tidy_table(["a"], [0.5], [0.2], dist="chi2")


# --- conf_label ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alpha, label", [(0.05, "95% CI"), (0.1, "90% CI"), (0.5, "50% CI"), (0.01, "99% CI"), (0.001, "99.9% CI"),
                     (0.025, "97.5% CI")]
)
def test_conf_label(alpha, label):
    assert conf_label(alpha) == label
    assert ModelResult("m", tidy_table(["x"], [0.0], [1.0], alpha=alpha), pd.DataFrame(), alpha=alpha).conf_label == label


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
def test_an_alpha_outside_zero_to_one_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        ModelResult("m", tidy_table(["x"], [0.0], [1.0]), pd.DataFrame(), alpha=alpha)
