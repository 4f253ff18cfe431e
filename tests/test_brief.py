"""The leadership brief: one number per question, findings in absolute terms, words that follow the data (issue 14).

Checked on the sample study and on two simulated studies with different truths: no programme effect, and
strong selection of managers into the programme. Nothing here hard-codes a sample number: the sample data
change when the simulator does, so every check compares the toolkit's outputs with each other or with R.
"""

import re
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.config import Analysis, EngagementAnalysis
from alignment_research.errors import ConfigError
from alignment_research.report import _shown_levels
from alignment_research.spells import DAYS_PER_MONTH

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "tests" / "reference"
NOTEBOOKS = ROOT / "notebooks"
BIAS = "the bias the careful comparison removes"
LEVEL_WORDS = {"least", "moderately", "most", "less", "more"}
RAW_NAMES = ("n_people", "suppressed", "manager_program", "alignment_cascade", "exp_estimate", "conf_low")


# ---------------------------------------------------------------- studies


def _primary(clean):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        return ar.primary_analysis(clean, warn=False)


@pytest.fixture(scope="module")
def studies():
    """The sample study and two small simulated studies with different truths, each cleaned and fitted once."""
    truths = {
        "no programme effect": ar.Truth(hr_manager_program=0.0, engagement_manager_program=0.0),
        "strong selection": ar.Truth(program_selection=2.5),
    }
    out = {"sample": ar.open_clean(ROOT / "data" / "sample")}
    for name, truth in truths.items():
        out[name] = ar.clean_study(ar.simulate_study(n_employees=1000, seed=7, truth=truth))
    return {name: (clean, _primary(clean)) for name, clean in out.items()}


STUDIES = ["sample", "no programme effect", "strong selection"]


# ---------------------------------------------------------------- study.yaml analysis:


def test_analysis_defaults_are_the_brief_models_with_the_manager_rating():
    cfg = Analysis()
    assert "manager_rating" in cfg.retention.formula.split(" + ")
    assert cfg.retention.cluster == "manager_id" and cfg.engagement.groups == "manager_id"
    assert (cfg.programme.program, cfg.programme.design, cfg.programme.ratio, cfg.programme.caliper) == (
        "leadership_development", "matched", 3, 0.2)
    assert (cfg.months, cfg.horizon_months) == (12, 36)


def test_analysis_block_is_read_and_misspelt_keys_are_rejected(tiny_study):
    base = tiny_study.config.to_yaml_dict()
    cfg = ar.config_from_dict({**base, "analysis": {"programme": {"ratio": 2}, "months": 6}})
    assert cfg.analysis.programme.ratio == 2 and cfg.analysis.months == 6
    assert cfg.analysis.retention == Analysis().retention
    with pytest.raises(ConfigError, match="ratoi"):
        ar.config_from_dict({**base, "analysis": {"programme": {"ratoi": 2}}})
    with pytest.raises(ConfigError, match="right-hand side"):
        ar.config_from_dict({**base, "analysis": {"retention": {"formula": "event ~ alignment_cascade"}}})
    with pytest.raises(ConfigError, match="design"):
        ar.config_from_dict({**base, "analysis": {"programme": {"design": "weighted"}}})
    with pytest.raises(ConfigError, match="horizon_months"):
        ar.config_from_dict({**base, "analysis": {"months": 24, "horizon_months": 12}})


def test_primary_analysis_fits_what_the_config_says(studies):
    clean, primary = studies["sample"]
    assert primary.retention_data.formula == ar.prepare_leadership_model(
        clean.analysis.intervals, clean.config.analysis.retention.formula).formula
    assert primary.retention.glance()["formula"].iloc[0].endswith(primary.retention_data.formula)
    assert primary.retention.glance()["cov_type"].iloc[0] == "cluster: manager_id"
    assert primary.programme.glance()[["ratio", "caliper"]].iloc[0].tolist() == [3, 0.2]
    assert primary.programme_engagement.outcome == "engagement"


# ---------------------------------------------------------------- restricted mean of adjusted curves (R)


VET_NEW = pd.DataFrame({"trt": [1, 2, 1.0], "karno": [60, 60, 90.0], "age": [60, 60, 45.0]})
HEART_NEW = pd.DataFrame({"age": [-10, 5, 0.0], "surgery": [0, 1, 0.0], "transplant": [0, 1, 1.0]})


@pytest.mark.parametrize("case", ["veteran", "veteran_short", "heart_robust"])
def test_cox_restricted_mean_matches_r_rmean(case):
    """R: summary(survfit(coxph(...), newdata = nd), rmean = horizon)$table[, "rmean"] (cox_rmean.R)."""
    ref = pd.read_csv(REF / "cox_rmean_reference.csv").query("case == @case")
    if case.startswith("veteran"):
        data = pd.read_csv(REF / "cox_survfit_veteran.csv")
        fit = ar.fit_cox(data, "trt + karno + age", duration="time", event="status")
        new = VET_NEW
    else:
        data = pd.read_csv(REF / "cox_survfit_heart.csv")
        fit = ar.fit_cox(data, "age + surgery + transplant", start="start", stop="stop", event="event", cluster="id")
        new = HEART_NEW
    got = ar.cox_restricted_mean(fit, new, horizon=float(ref["horizon"].iloc[0]))
    rmst = got.loc[got["term"] == "rmst"]
    np.testing.assert_allclose(rmst["estimate"], ref["rmean"], rtol=1e-9)
    diff = got.loc[got["term"] == "difference"]
    np.testing.assert_allclose(diff["estimate"], ref["rmean"].iloc[1:] - ref["rmean"].iloc[0], rtol=1e-9)


def test_cox_restricted_mean_before_the_first_event_is_the_horizon():
    """Analytic: the curve is 1 before the first event, so its area is the horizon, with no uncertainty."""
    data = pd.read_csv(REF / "cox_survfit_veteran.csv")
    fit = ar.fit_cox(data, "karno", duration="time", event="status")
    first = data.loc[data["status"] == 1, "time"].min()
    got = ar.cox_restricted_mean(fit, pd.DataFrame({"karno": [40.0, 80.0]}), horizon=first - 0.5)
    np.testing.assert_allclose(got["estimate"], [first - 0.5, first - 0.5, 0.0])
    np.testing.assert_allclose(got["std_error"], 0.0, atol=1e-12)


def test_cox_restricted_mean_standard_errors_match_a_bootstrap():
    """The delta-method SEs (one profile and the difference) against 200 bootstrap refits over people."""
    from alignment_research._cox import simulate_counting_process

    _, person = simulate_counting_process(1500, seed=3)
    new = pd.DataFrame({"alignment_cascade": [0.0, 1.0]})
    fit = ar.fit_cox(person, "alignment_cascade", duration="exit", entry="entry")
    got = ar.cox_restricted_mean(fit, new, horizon=730.5)
    rng = np.random.default_rng(11)
    boot = []
    for _ in range(200):
        sample = person.iloc[rng.integers(0, len(person), len(person))]
        refit = ar.fit_cox(sample, "alignment_cascade", duration="exit", entry="entry")
        boot.append(ar.cox_restricted_mean(refit, new, horizon=730.5)["estimate"].to_numpy())
    np.testing.assert_allclose(got["std_error"], np.std(boot, axis=0, ddof=1), rtol=0.15)


# ---------------------------------------------------------------- one number per question


def _programme_text(primary) -> str:
    row = primary.programme.tidy().query("method == 'adjusted'").iloc[0]
    return ar.format_estimate(row["exp_estimate"], row["exp_conf_low"], row["exp_conf_high"])


@pytest.mark.parametrize("name", STUDIES)
def test_programme_number_is_identical_everywhere(studies, name):
    _, primary = studies[name]
    adjusted = primary.programme.tidy().query("method == 'adjusted'").iloc[0]
    findings = ar.key_findings(primary)
    row = findings.table.set_index("finding").loc["exit rate ratio, programme (matched design)"]
    table = ar.programme_estimates(primary)
    assert table["role"].tolist()[0] == "primary" and (table["role"].iloc[1:] == "sensitivity analysis").all()
    for got in (row, table.iloc[0]):
        np.testing.assert_allclose(got[["estimate", "conf_low", "conf_high"]].astype(float),
                                   adjusted[["exp_estimate", "exp_conf_low", "exp_conf_high"]].astype(float), rtol=0)
    programme = ar.describe_programme(primary)
    assert programme in findings.sentences
    assert f"exit rate ratio {adjusted['exp_estimate']:.2f}" in programme or _programme_text(primary) in programme
    assert f"exit rate ratio {_programme_text(primary)}" in ar.describe_programme_sensitivity(primary)
    assert f"gives {_programme_text(primary)}." in ar.describe_naive_adjusted(primary.programme)
    # the Cox coefficient is only ever shown labelled as a sensitivity analysis
    cox = primary.retention.tidy().set_index("term").loc["manager_program"]
    cox_text = ar.format_estimate(cox["exp_estimate"], cox["exp_conf_low"], cox["exp_conf_high"])
    sens = ar.describe_programme_sensitivity(primary)
    assert f"Sensitivity analysis, retention model coefficient of the manager's programme: {cox_text}." in sens
    assert cox_text not in str(findings)


def _notebook_text(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / name, 4)
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


#: Words a leader cannot be expected to know: each may appear in the brief only when its glossary explains it.
TECHNICAL_WORDS = ("hazard", "confounder", "confounding", "covariate", "log-rank", "standardised difference", "e-value",
                   "propensity", "censor", "coefficient", "p-value", "heterogeneity", "holm", "regression", "matched",
                   "risk ratio", "cox", "schoenfeld", "kaplan", "intraclass", "mixed model", "random intercept",
                   "interaction", "caliper", "dominance", "bootstrap", "quantile", "odds")


def _glossary_and_shown_text(name: str) -> tuple[str, str]:
    """The notebook's "Words used below" list, and every other word it shows (markdown and outputs)."""
    nb = nbformat.read(NOTEBOOKS / name, 4)
    glossary = next(c.source for c in nb.cells if c.cell_type == "markdown" and "Words used below" in c.source)
    shown = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source != glossary]
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            shown.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return glossary.split("Words used below", 1)[1].lower(), "\n".join(shown).lower()


def test_every_technical_word_of_the_brief_is_explained_in_its_glossary():
    glossary, shown = _glossary_and_shown_text("06_leadership_brief.ipynb")
    used = [w for w in TECHNICAL_WORDS if re.search(rf"\b{re.escape(w)}", shown)]
    assert "hazard" in used and "matched" in used, "the scan reads the brief's outputs"
    unexplained = [w for w in used if w not in glossary]
    assert not unexplained, f"technical words the brief uses without explaining them: {unexplained}"


def test_the_e_value_sentence_needs_no_word_from_statistics():
    text = ar.describe_e_value(2.14, e_value_ci=1.38, treatment="the programme", outcome="voluntary exit").lower()
    assert not any(w in text for w in ("confounder", "confounding", "covariate"))
    assert "hidden factor" in text and "risk ratio of at least 2.1 each" in text


def test_analyst_notebooks_set_each_sensitivity_analysis_beside_the_primary_estimate():
    """03, 04 and 05 state a primary estimate, then label every other model a sensitivity analysis and give the
    reason it differs, generated from the fits (the sentences of describe_sensitivity / describe_programme_sensitivity)."""
    sensitivity = re.compile(r"Sensitivity analysis, ([^:]+): [-\d.]+ \(\d+% CI [^)]+\)\. (It \w+)")
    for name in ("03_engagement.ipynb", "04_retention.ipynb", "05_leadership_program.ipynb"):
        text = _notebook_text(name)
        assert "Primary estimate of" in text, name
        found = sensitivity.findall(text)
        assert len(found) == text.count("Sensitivity analysis, ") and found, name
        assert all(reason.split()[1] in {"differs", "uses", "compares"} for _, reason in found), found
        assert any("agree within their uncertainty" in s or "differ beyond their uncertainty" in s
                   for s in text.split("Sensitivity analysis, ")[1:]), name
    engagement = _notebook_text("03_engagement.ipynb")
    assert "Primary estimate of the effect of cascade alignment" in engagement
    assert "also adjusts for the manager's review rating" in engagement  # read from the formulas, not written


def test_cascade_alignment_is_defined_before_its_first_use_in_the_brief():
    nb = nbformat.read(NOTEBOOKS / "06_leadership_brief.ipynb", 4)
    shown = []
    for cell in nb.cells:
        shown.append(cell.source if cell.cell_type == "markdown" else "")
        for out in cell.get("outputs", []):
            shown.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    text = "\n".join(shown).lower()
    first = text.index("cascade alignment")
    assert text[first:first + len("cascade alignment*: the share")] == "cascade alignment*: the share"


def test_executed_notebooks_quote_one_programme_number():
    """The committed brief and analyst notebooks state the same primary programme number."""
    pattern = re.compile(r"Primary estimate of the programme's effect on exits: exit rate ratio ([^.]+\.\d+\)?)")
    brief = _notebook_text("06_leadership_brief.ipynb")
    found = {nb: pattern.findall(_notebook_text(nb)) for nb in ("04_retention.ipynb", "05_leadership_program.ipynb")}
    quoted = {q for qs in found.values() for q in qs}
    assert all(found.values()) and len(quoted) == 1, found
    number = next(iter(quoted))
    ratio = number.split(" (")[0]
    # "35% fewer exits (exit rate ratio 0.65, ...)" when the interval excludes 1, "the exit rate ratio is 0.87 (...)"
    assert re.search(rf"\(exit rate ratio {re.escape(ratio)}[,)]|the exit rate ratio is {re.escape(number)}", brief)
    assert f"gives {number}" in brief
    # the brief no longer writes the bias claim by hand
    nb = nbformat.read(NOTEBOOKS / "06_leadership_brief.ipynb", 4)
    assert not any(BIAS in c.source for c in nb.cells if c.cell_type == "markdown")


# ---------------------------------------------------------------- key findings in absolute terms


@pytest.mark.parametrize("name", STUDIES)
def test_key_findings_are_absolute_consistent_and_plain(studies, name):
    _, primary = studies[name]
    findings = ar.key_findings(primary)
    assert 3 <= len(findings.sentences) <= 5
    text = str(findings)
    assert text.startswith("- Of 100 employees whose goals were all linked")
    assert "hazard" not in text.lower() and not any(raw in text for raw in RAW_NAMES)
    # every number comes with its interval, written by the one formatter
    assert all("95% CI" in s for s in findings.sentences)
    # the 12-month counts are the adjusted curves of the primary model read at 12 months
    profiles = ar.typical_profiles(primary)
    at = ar.survival_at(ar.cox_survival(primary.retention, profiles), 12 * DAYS_PER_MONTH, per=100).set_index("profile")
    for label in profiles.index:
        r = at.loc[label]
        assert ar.format_estimate(r.still_here, r.still_here_low, r.still_here_high, digits=0) in findings.sentences[0]
    # the months-longer finding is the restricted-mean difference of the same two curves
    rmst = ar.cox_restricted_mean(primary.retention, profiles, horizon=36 * DAYS_PER_MONTH).iloc[-1]
    row = findings.table.set_index("finding").iloc[2]
    np.testing.assert_allclose(row[["estimate", "conf_low", "conf_high"]].astype(float),
                               rmst[["estimate_months", "conf_low_months", "conf_high_months"]].astype(float))
    # the typical values are named, not hidden
    assert "(the largest group)" in findings.sentences[0] and "at its average" in findings.sentences[0]


def test_format_estimate_is_the_one_formatter(studies):
    _, primary = studies["sample"]
    km = ar.fit_km(ar.add_levels(studies["sample"][0].analysis.person, "alignment_cascade_entry"), group="alignment_level")
    text = ar.describe_retention(km) + " " + str(ar.key_findings(primary))
    shares = re.findall(r"\d+% \(95% CI [^)]*\)", text)
    assert shares and all(re.fullmatch(r"\d+% \(95% CI \d+–\d+%\)", s) for s in shares), shares
    assert ar.format_estimate(-0.5, -1.0, 0.25, unit="months", digits=1) == "−0.5 months (95% CI −1.0 to 0.2)"


# ---------------------------------------------------------------- words that follow the data


def _drawn_levels(ax) -> list[str]:
    return [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]


def _caption_levels(caption: str) -> tuple[int, list[str]]:
    m = re.search(r"in (\d+) curves: employees whose goals were (.+?) linked", caption)
    if m is None:
        return (1 if "the one group" in caption else 0), []
    words = [w for w in re.split(r",\s*|\s+and\s+", m.group(2)) if w]
    return int(m.group(1)), words


@pytest.mark.parametrize("name", STUDIES)
def test_caption_names_as_many_levels_as_curves_drawn(studies, name):
    clean, _ = studies[name]
    size = clean.config.min_group_size
    km = ar.fit_km(ar.add_levels(clean.analysis.person, "alignment_cascade_entry"), group="alignment_level")
    ax = ar.plot_retention(km, min_group_size=size)
    count, words = _caption_levels(ar.retention_caption(km, min_group_size=size))
    assert count == len(words) == len(_drawn_levels(ax)) and set(words) <= LEVEL_WORDS


def test_caption_follows_two_levels_and_a_suppressed_group(studies):
    person = studies["sample"][0].analysis.person
    two = ar.add_levels(person, "alignment_cascade_entry", labels=("Low", "High"))
    km = ar.fit_km(two, group="alignment_level")
    ax = ar.plot_retention(km)
    count, words = _caption_levels(ar.retention_caption(km))
    assert count == len(_drawn_levels(ax)) == 2 and words == ["less", "more"]
    # keep 3 people of the highest level: it is not drawn, and the caption does not name it
    levels = ar.add_levels(person, "alignment_cascade_entry")
    top = levels["alignment_level"].cat.categories[-1]
    small = pd.concat([levels.loc[levels["alignment_level"] != top], levels.loc[levels["alignment_level"] == top].head(3)])
    km = ar.fit_km(small, group="alignment_level")
    ax = ar.plot_retention(km)
    caption = ar.retention_caption(km)
    assert len(_drawn_levels(ax)) == len(_shown_levels(km, 5)) < 3
    count, words = _caption_levels(caption)
    assert count == len(_drawn_levels(ax)) and "most" not in words


def test_rising_number_at_risk_is_explained_only_when_it_rises(studies):
    person = studies["sample"][0].analysis.person
    late = "join the count at the tenure they had when the window opened"
    km = ar.fit_km(ar.add_levels(person, "alignment_cascade_entry"), group="alignment_level")
    table = km.extras["at_risk"].sort_values(["group", "time_months"])
    rises = (table.groupby("group", observed=True)["people_at_risk"].diff() > 0).any()
    assert (late in ar.retention_caption(km)) == bool(rises)
    no_late = person.loc[person["entry"] == 0]
    km = ar.fit_km(ar.add_levels(no_late, "alignment_cascade_entry"), group="alignment_level")
    assert late not in ar.retention_caption(km)


def _rule(programme) -> bool:
    t = programme.tidy().set_index("method")
    n, a = t.loc["naive"], t.loc["adjusted"]
    outside = lambda x, r: not (r["exp_conf_low"] <= x <= r["exp_conf_high"])  # noqa: E731
    return outside(n["exp_estimate"], a) and outside(a["exp_estimate"], n)


@pytest.mark.parametrize("name", STUDIES)
def test_bias_sentence_only_when_naive_and_adjusted_differ_beyond_uncertainty(studies, name):
    _, primary = studies[name]
    warranted = _rule(primary.programme)
    assert bool(ar.compare_naive_adjusted(primary.programme)["differs"].iloc[0]) == warranted
    assert (BIAS in ar.describe_naive_adjusted(primary.programme)) == warranted
    assert ("agree within their uncertainty" in ar.describe_naive_adjusted(primary.programme)) != warranted


@pytest.mark.parametrize("naive, warranted", [((0.40, 0.30, 0.50), True), ((0.66, 0.55, 0.80), False),
                                              ((0.55, 0.45, 0.70), False)])
def test_bias_rule_on_constructed_estimates(naive, warranted):
    """Adjusted 0.68 (0.57–0.81): far naive -> bias; equal -> none; naive inside only one interval -> none."""
    est, lo, hi = zip((0.68, 0.57, 0.81), naive)
    tidy = pd.DataFrame({"method": ["adjusted", "naive"], "term": "manager_program", "estimate": np.log(est),
                         "conf_low": np.log(lo), "conf_high": np.log(hi), "exp_estimate": est,
                         "exp_conf_low": lo, "exp_conf_high": hi})
    res = ar.ModelResult("programme", tidy, pd.DataFrame(), outcome="voluntary exit", scale="ratio")
    assert (BIAS in ar.describe_naive_adjusted(res)) == warranted


def test_unadjusted_caveat_is_read_from_the_fitted_terms(studies):
    clean, primary = studies["no programme effect"]
    text = ar.describe_unadjusted(("retention", primary.retention), ("engagement", primary.engagement))
    assert "other than their review rating" not in text and "the engagement model leaves it out" in text
    both = Analysis(engagement=EngagementAnalysis(
        formula="engagement ~ alignment_cascade + manager_program + manager_rating + C(job_level)"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        refit = ar.primary_analysis(clean, analysis=both, warn=False)
    text = ar.describe_unadjusted(("retention", refit.retention), ("engagement", refit.engagement))
    assert "manager qualities other than their review rating" in text and "leaves it out" not in text


def test_leader_tables_and_axes_use_plain_words(studies):
    clean, primary = studies["sample"]
    measures = ar.alignment_measures(clean.analysis)
    table = ar.alignment_by_group(measures, by="department", min_group_size=clean.config.min_group_size)
    shown = ar.plain_table(table.query("measure == 'cascade'")[["department", "n_people", "mean", "suppressed"]],
                           index="department")
    assert list(shown.columns) == ["People", "Average"] and shown.index.name == "Department"
    ax = ar.plot_forest(primary.retention.tidy(), ratio=True, xlabel="Exit rate ratio (95% CI, log scale)")
    assert ax.get_xlabel() == "Exit rate ratio (95% CI, log scale)"
    ax = primary.programme.plot(xlabel="Exit rate ratio (95% CI, log scale)")
    assert ax.get_xlabel() == "Exit rate ratio (95% CI, log scale)"


@pytest.mark.slow
def test_cox_restricted_mean_intervals_cover_the_truth_over_seeds():
    """Simulator ground truth: no covariate effect, a constant exit hazard of 1/4 per year and whole-day exits,
    so the true restricted mean up to an integer horizon is sum_{k<horizon} exp(-k / (4 * 365)) for every
    profile and the true difference is 0. The 95% intervals must cover in at least 90% of 50 seeds."""
    from alignment_research._cox import simulate_counting_process

    horizon = 730
    truth = float(np.exp(-0.25 / 365 * np.arange(horizon)).sum())
    new = pd.DataFrame({"alignment_cascade": [0.0, 1.0]})
    covered = []
    for seed in range(50):
        _, person = simulate_counting_process(1000, seed=seed, beta={})
        fit = ar.fit_cox(person, "alignment_cascade", duration="exit", entry="entry")
        got = ar.cox_restricted_mean(fit, new, horizon=horizon)
        target = np.array([truth, truth, 0.0])
        covered.append(((got["conf_low"] <= target) & (target <= got["conf_high"])).to_numpy())
    coverage = np.mean(covered, axis=0)
    assert (coverage >= 0.9).all(), coverage


@pytest.mark.parametrize("outcome", ["retention", "engagement"])
def test_brief_charts_leave_the_sensitivity_coefficient_out(studies, outcome):
    """The models' programme coefficient is a sensitivity analysis: the brief's covariate charts do not show it."""
    _, primary = studies["sample"]
    model = getattr(primary, outcome)
    table = primary.covariate_table(outcome)
    programme_label = ar.term_label("manager_program")
    assert len(table) == (model.tidy()["term"] != "Intercept").sum() - 1
    ax = ar.plot_forest(table, ratio=outcome == "retention")
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert shown and not any(programme_label.lower() in s.lower() or "manager_program" in s for s in shown)
    nb = nbformat.read(NOTEBOOKS / "06_leadership_brief.ipynb", 4)
    assert any(f'primary.covariate_table("{outcome}")' in c.source for c in nb.cells if c.cell_type == "code")


def test_programme_chart_names_its_rows_in_words(studies):
    _, primary = studies["sample"]
    ax = primary.programme.plot(labels={"naive": "Naive comparison", "adjusted": "Careful comparison"})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Naive comparison", "Careful comparison"]
