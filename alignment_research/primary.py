"""The study's primary analysis, fitted once: the numbers the brief and the analyst notebooks share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._docs import fill_doc
from .cache import stored_result
from .config import Analysis
from .engagement import fit_mixed
from .errors import ConfigError
from .postestimation import fit_group_effects
from .privacy import PooledLevels
from .programs import ProgramEffectResult, estimate_program_effects
from .report import (
    Sentence,
    compare_naive_adjusted,
    compare_with_primary,
    describe_who_it_works_for,
    format_estimate,
    paragraph,
    prepare_leadership_model,
    summarise_effect,
    term_label,
    with_labels,
)
from .results import ModelResult
from .retention import cox_restricted_mean, cox_survival, fit_cox, survival_at
from .spells import DAYS_PER_MONTH

__all__ = [
    "PrimaryAnalysis",
    "primary_analysis",
    "primary_group_effects",
    "who_it_works_for",
    "typical_profiles",
    "Findings",
    "key_findings",
    "programme_estimates",
    "describe_programme",
    "describe_programme_sensitivity",
]

#: The model term the brief's absolute findings compare (all goals linked vs none).
_ALIGNMENT = "alignment_cascade"
#: The manager's programme indicator of the ``intervals`` and ``survey_panel`` tables.
_PROGRAMME_TERM = "manager_program"
#: Words of the two alignment profiles.
_ALL_LINKED, _NONE_LINKED = "all goals linked", "no goal linked"


@dataclass(frozen=True, repr=False)
class PrimaryAnalysis:
    """The primary analysis of a study (``analysis:`` in study.yaml), fitted once.

    The brief and the analyst notebooks show these objects, so the same
    numbers appear everywhere; every other model is a sensitivity analysis.

    Attributes
    ----------
    settings : Analysis
        The ``analysis:`` block the models were fitted with.
    retention : CoxResult
        The primary retention model (Cox, on ``intervals``, small levels pooled).
    engagement : ModelResult
        The primary engagement model (linear mixed model, on ``survey_panel``).
    programme : ProgramEffectResult
        The programme's effect on exits with the primary design: *the*
        programme number (its ``adjusted`` row).
    programme_engagement : ProgramEffectResult or None
        The programme's effect on engagement with the same design, when
        ``settings.programme.outcomes`` lists engagement.
    retention_data, engagement_data : PooledLevels
        The prepared data and formulas (what :func:`prepare_leadership_model` pooled).
    min_group_size : int
        The study's minimum reporting group size.
    """

    settings: Analysis
    retention: ModelResult
    engagement: ModelResult
    programme: ProgramEffectResult
    programme_engagement: ProgramEffectResult | None
    retention_data: PooledLevels
    engagement_data: PooledLevels
    min_group_size: int

    def covariate_table(self, outcome: str = "retention") -> pd.DataFrame:
        """The model's ``tidy()`` for leaders: labelled terms, without the intercept and the programme term.

        The programme's coefficient in these models is a sensitivity analysis
        (its primary number is the design's, :func:`describe_programme`), so a
        chart of the other covariates leaves it out.

        Parameters
        ----------
        outcome : {"retention", "engagement"}, default "retention"
            Which primary model.

        Returns
        -------
        pandas.DataFrame
            :func:`with_labels` of the model's ``tidy()`` (``term`` holds the labels).
        """
        if outcome not in ("retention", "engagement"):
            raise ConfigError(f"The value for `outcome` must be 'retention' or 'engagement', but {outcome!r} was passed.")
        result, prepared = ((self.retention, self.retention_data) if outcome == "retention"
                            else (self.engagement, self.engagement_data))
        table = result.tidy()
        table = table.loc[~table["term"].isin(["Intercept", _PROGRAMME_TERM])]
        return with_labels(table, data=prepared.data)

    def __repr__(self) -> str:
        return (f"PrimaryAnalysis(retention: {self.retention_data.formula}; engagement: "
                f"{self.engagement_data.formula}; programme: {self.settings.programme.program}, "
                f"{self.settings.programme.design} design)")


@stored_result("primary_analysis")  # fitted once per cached study: the notebooks of a run share it
def primary_analysis(clean, *, analysis: Analysis | None = None, warn: bool = True) -> PrimaryAnalysis:
    """Fit a study's primary analysis once: retention, engagement and the programme design.

    Parameters
    ----------
    clean : CleanStudy
        A cleaned study (``ar.clean_study`` or ``ar.open_clean``).
    analysis : Analysis, optional
        The primary analysis; by default the study's ``config.analysis``
        (study.yaml ``analysis:``, or its documented defaults).
    warn : bool, default True
        Let the programme design raise its balance and overlap warnings (they
        are in the results' ``caveats`` either way).

    Returns
    -------
    PrimaryAnalysis
        The fitted models and their prepared data.

    Raises
    ------
    ConfigError
        The study has no ``intervals`` or ``survey_panel`` rows to fit.

    Notes
    -----
    Categorical terms are pooled for leadership first (levels with fewer than
    ``min_group_size`` people are pooled; the largest level is the
    reference), as :func:`prepare_leadership_model` does. The retention model
    is ``fit_cox(intervals, formula, start="start", stop="stop",
    event="event", cluster=...)``; the engagement model ``fit_mixed(panel,
    formula, groups=...)``; the programme ``estimate_program_effects(clean,
    program, outcomes=..., design=..., ratio=..., caliper=...)`` (one
    design, each outcome as ``estimate_program_effect`` gives it).

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> primary = ar.primary_analysis(clean, warn=False)
    >>> primary.programme.tidy()["method"].tolist()
    ['adjusted', 'naive']
    """
    settings = analysis if analysis is not None else clean.config.analysis
    size = clean.config.min_group_size
    tables = clean.analysis
    for name in ("intervals", "survey_panel"):
        if getattr(tables, name) is None or not len(getattr(tables, name)):
            raise ConfigError(f"The primary analysis needs the `{name}` analysis table, but it has no rows; "
                              "check that the study has the tables it is built from.")
    ret, eng, prog = settings.retention, settings.engagement, settings.programme
    retention_data = prepare_leadership_model(tables.intervals, ret.formula, min_group_size=size)
    engagement_data = prepare_leadership_model(tables.survey_panel, eng.formula, min_group_size=size)
    retention = fit_cox(retention_data.data, retention_data.formula, start="start", stop="stop", event="event",
                        cluster=ret.cluster)
    engagement = fit_mixed(engagement_data.data, engagement_data.formula, groups=eng.groups)
    design = dict(design=prog.design, ratio=prog.ratio, caliper=prog.caliper, warn=warn)
    outcomes = ["retention", *(["engagement"] if "engagement" in prog.outcomes else [])]
    effects = estimate_program_effects(clean, prog.program, outcomes=outcomes, **design)  # one design for both
    programme, programme_engagement = effects["retention"], effects.get("engagement")
    return PrimaryAnalysis(settings, retention, engagement, programme, programme_engagement, retention_data,
                           engagement_data, size)


#: The groupings the brief's "who it works for" paragraph compares.
WHO_BY = ("gender", "location", "job_level", "department")


#: Parameter text shared by :func:`primary_group_effects` and :func:`who_it_works_for` (see ``_docs.fill_doc``).
_WHO_OPTIONS = ("term : tuple of str, default (\"alignment_cascade\", \"manager_program\")\n"
                "        The effects compared between groups.\n"
                "    by : tuple of str, default WHO_BY\n        The grouping columns.\n"
                "    cluster : str, default \"manager_id\"\n        Cluster of the robust variances.\n"
                "    analysis : Analysis, optional\n"
                "        The primary analysis; by default the study's ``config.analysis``.")


@stored_result("primary_group_effects")  # 8 group fits per outcome; the brief and notebooks 03 and 04 share them
@fill_doc(who_options=_WHO_OPTIONS)
def primary_group_effects(clean, outcome: str = "retention", *, term=(_ALIGNMENT, _PROGRAMME_TERM), by=WHO_BY,
                          cluster: str = "manager_id", analysis: Analysis | None = None):
    """Who the primary effects work for: group slopes of one primary model, fitted once per study.

    :func:`~alignment_research.postestimation.fit_group_effects` on the data
    and formula of :func:`primary_analysis`'s retention model (Cox, on
    ``intervals``) or engagement model (the fixed part, OLS on
    ``survey_panel``), after the same pooling of small categories: each
    ``term`` by each ``by`` column (joined from the ``person`` table when the
    data lack it), clustered by ``cluster``, groups smaller than the study's
    ``min_group_size`` pooled or suppressed. The brief's paragraph
    (:func:`who_it_works_for`) and the tables of notebooks 03 and 04 show
    this one result, so they give the same numbers.

    Parameters
    ----------
    clean : CleanStudy
        A cleaned study (``ar.clean_study`` or ``ar.open_clean``).
    outcome : {"retention", "engagement"}, default "retention"
        The primary model whose effects are compared between groups.
    {who_options}

    Returns
    -------
    GroupEffectsResult
        As :func:`~alignment_research.postestimation.fit_group_effects` gives it.

    Raises
    ------
    ConfigError
        ``outcome`` is neither ``"retention"`` nor ``"engagement"``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> who = ar.primary_group_effects(clean, "retention", by=("gender",))
    >>> who.glance()["by"].unique().tolist()
    ['gender']
    """
    if outcome not in ("retention", "engagement"):
        raise ConfigError(f"The value for `outcome` must be 'retention' or 'engagement', but {outcome!r} was passed.")
    primary = primary_analysis(clean, analysis=analysis, warn=False)
    prepared = primary.retention_data if outcome == "retention" else primary.engagement_data
    survival = dict(model="cox", start="start", stop="stop") if outcome == "retention" else {}
    return fit_group_effects(prepared.data, prepared.formula, term=list(term), by=list(by),
                             baseline=clean.analysis.person, cluster=cluster, min_group_size=primary.min_group_size,
                             **survival)


@fill_doc(who_options=_WHO_OPTIONS)
def who_it_works_for(clean, *, term=(_ALIGNMENT, _PROGRAMME_TERM), by=WHO_BY, cluster: str = "manager_id",
                     analysis: Analysis | None = None) -> Sentence:
    """Say who the primary effects work for: the brief's paragraph, from group slopes of the primary models.

    :func:`~alignment_research.report.describe_who_it_works_for` over the
    retention and the engagement :func:`primary_group_effects` (stored once
    per cached study, so notebooks 03 and 04 show the same fits).

    Parameters
    ----------
    clean : CleanStudy
        A cleaned study (``ar.clean_study`` or ``ar.open_clean``).
    {who_options}

    Returns
    -------
    Sentence
        The paragraph; empty when no difference between groups is supported.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> isinstance(ar.who_it_works_for(clean), str)
    True
    """
    groups = dict(term=term, by=by, cluster=cluster, analysis=analysis)
    return describe_who_it_works_for(primary_group_effects(clean, "retention", **groups),
                                     primary_group_effects(clean, "engagement", **groups))


# ---------------------------------------------------------------- absolute terms: typical profiles


def _used_rows(data: pd.DataFrame, columns) -> pd.DataFrame:
    present = [c for c in columns if c in data.columns]
    return data.dropna(subset=present)


def _noun(column: str) -> str:
    """A model column as a lower-case noun phrase, without its scale ("engagement", "job level")."""
    text = term_label(column).split(" (")[0]
    return text[:1].lower() + text[1:]


def typical_profiles(primary: PrimaryAnalysis, term: str = _ALIGNMENT, values=(0.0, 1.0),
                     labels=(_NONE_LINKED, _ALL_LINKED)) -> pd.DataFrame:
    """Covariate profiles for adjusted survival curves: ``term`` varied, the rest at typical values.

    Typical values: a 0/1 term at its most common value, another numeric
    term at its mean over the model's rows (R's default profile), and every
    category at its reference level, which :func:`prepare_leadership_model`
    makes the largest.

    Parameters
    ----------
    primary : PrimaryAnalysis
        The fitted primary analysis.
    term : str, default "alignment_cascade"
        The term that differs between the profiles.
    values : sequence of float, default (0.0, 1.0)
        Its value in each profile.
    labels : sequence of str
        The profiles' names (the index).

    Returns
    -------
    pandas.DataFrame
        One row per profile, a column per model term (for :func:`cox_survival`);
        ``attrs["typical"]`` holds the words naming the typical values.

    Examples
    --------
    >>> import alignment_research as ar
    >>> primary = ar.primary_analysis(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)), warn=False)
    >>> ar.typical_profiles(primary).index.tolist()
    ['no goal linked', 'all goals linked']
    """
    columns = list(primary.retention.model.columns)
    if term not in columns:
        raise ConfigError(f"The retention model has no term {term!r}; its terms are {columns}.")
    data = primary.retention_data.data
    rows = _used_rows(data, [c for c in columns if c in data.columns])
    profile, words = {}, []
    for col in columns:
        if col == term:
            continue
        if col not in data.columns:  # a category's indicator: the reference level
            profile[col] = 0.0
            continue
        x = pd.to_numeric(rows[col], errors="coerce")
        if set(x.dropna().unique()) <= {0, 1}:
            common = float(x.mode().iloc[0])
            profile[col] = common
            words.append(("with " if common else "without ") + _noun(col))
        else:
            profile[col] = float(x.mean())
            words.append(f"{_noun(col)} at its average ({x.mean():.1f})")
    for col, ref in primary.retention_data.references.items():
        if ref is not None:
            words.append(f"{_noun(col)} {ref} (the largest group)")
    frame = pd.DataFrame([{**profile, term: float(v)} for v in values], index=list(labels))[columns]
    frame.attrs["typical"] = ", ".join(words)
    return frame


# ---------------------------------------------------------------- key findings


@dataclass(frozen=True, repr=False)
class Findings:
    """Key findings for leaders: a table of numbers and one sentence per finding.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per finding: ``finding, estimate, conf_low, conf_high, unit``.
    sentences : tuple of Sentence
        The findings, in reading order.
    caveats : tuple of Sentence
        What a reader must know to read them (e.g. a thin early risk set).
    """

    table: pd.DataFrame
    sentences: tuple
    caveats: tuple = ()

    def __repr__(self) -> str:
        return "\n".join([f"- {s}" for s in self.sentences] + [str(c) for c in self.caveats])

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{s._repr_html_()}</li>" for s in self.sentences)
        return f'<ul class="ar-findings">{items}</ul>' + "".join(c._repr_html_() for c in self.caveats)


#: Fewer rows than this at the model's first exit make the early adjusted curve rest on few people.
_THIN_RISK_SET = 50


def _early_risk_caveat(primary: PrimaryAnalysis) -> Sentence | None:
    """A caveat when the retention model's first exit comes with few people followed (complete cases only)."""
    first = cox_survival(primary.retention, None).iloc[0]
    if int(first["at_risk"]) >= _THIN_RISK_SET:
        return None
    dropped = primary.retention.glance()["n"].iloc[0] < len(primary.retention_data.data)
    why = (" (it follows a person only while every covariate is known, e.g. from their first engagement survey)"
           if dropped else "")
    return Sentence(
        f"The retention model's first exit comes at {first['time_months']:.1f} months of tenure, when it follows "
        f"fewer than {_THIN_RISK_SET} people{why}, so the numbers still here after "
        f"{primary.settings.months} months rest on few people early in tenure and are less certain than the "
        "rest; the retention curves by alignment further down do not have this limitation.")


def _retention_finding(primary: PrimaryAnalysis, profiles: pd.DataFrame) -> tuple[Sentence, list[dict]]:
    months = primary.settings.months
    curves = cox_survival(primary.retention, profiles, times=[months * DAYS_PER_MONTH])
    at = survival_at(curves, months * DAYS_PER_MONTH, per=100).set_index("profile")
    ci = primary.retention.conf_label
    counts = {k: format_estimate(r.still_here, r.still_here_low, r.still_here_high, digits=0, ci=ci)
              for k, r in at.iterrows()}
    text = (f"Of 100 employees whose goals were all linked to their manager's goals, about {counts[_ALL_LINKED]} "
            f"are still here after {months} months, against {counts[_NONE_LINKED]} where none were "
            f"(other characteristics at typical values: {profiles.attrs['typical']}).")
    rows = [{"finding": f"still here after {months} months per 100, {k}", "estimate": r.still_here,
             "conf_low": r.still_here_low, "conf_high": r.still_here_high, "unit": "people of 100"}
            for k, r in at.iterrows()]
    return Sentence(text), rows


def _rmst_finding(primary: PrimaryAnalysis, profiles: pd.DataFrame) -> tuple[Sentence, list[dict]]:
    horizon = primary.settings.horizon_months
    rmst = cox_restricted_mean(primary.retention, profiles, horizon=horizon * DAYS_PER_MONTH)
    diff = rmst.loc[rmst["term"] == "difference"].iloc[0]
    est, lo, hi = diff["estimate_months"], diff["conf_low_months"], diff["conf_high_months"]
    years = f"{horizon / 12:g} years" if horizon % 12 == 0 else f"{horizon} months"
    value = format_estimate(abs(est), *(sorted((abs(lo), abs(hi))) if lo * hi > 0 else (lo, hi)), unit="months",
                            digits=1, ci=primary.retention.conf_label)
    if lo > 0 or hi < 0:
        text = (f"Over their first {years}, employees whose goals were all linked to their manager's stay on average "
                f"{value} {'longer' if est > 0 else 'shorter'} than those whose goals were not linked at all.")
    else:
        text = (f"Over their first {years}, there is no clear difference in how long employees stay between "
                f"all goals linked and none: {format_estimate(est, lo, hi, unit='months', digits=1)}.")
    row = {"finding": f"months stayed over {years}, all goals linked minus none", "estimate": est, "conf_low": lo,
           "conf_high": hi, "unit": "months"}
    return Sentence(text), [row]


def _programme_numbers(programme) -> pd.Series:
    return summarise_effect(programme, "adjusted").table.iloc[0]


def describe_programme(primary: PrimaryAnalysis) -> Sentence:
    """State the programme's effect on exits: the one primary number (the design's adjusted hazard ratio).

    Parameters
    ----------
    primary : PrimaryAnalysis
        The fitted primary analysis.

    Returns
    -------
    Sentence
        "In the teams of managers who started leadership development,
        voluntary exits were 32% less frequent (95% CI 11–48%) than in
        matched teams (exit rate ratio 0.68)." or, when the interval includes
        1, that there is no clear evidence, with the ratio and its interval.

    Examples
    --------
    >>> import alignment_research as ar
    >>> primary = ar.primary_analysis(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)), warn=False)
    >>> ar.describe_programme(primary).startswith(("In the teams", "There is no clear"))
    True
    """
    row = _programme_numbers(primary.programme)
    ci = primary.programme.conf_label
    ratio = format_estimate(row["estimate"], row["conf_low"], row["conf_high"], ci=ci)
    who = "the teams of managers who started leadership development"
    if row["direction"] == "unclear":
        return Sentence(f"There is no clear evidence that leadership development changed how often team members "
                        f"left: comparing {who} with matched teams, the exit rate ratio is {ratio}.")
    change = format_estimate(abs(1 - row["estimate"]), *sorted((abs(1 - row["conf_low"]), abs(1 - row["conf_high"]))),
                             percent=True, ci=ci)
    word = "less" if row["direction"] == "lower" else "more"
    return Sentence(f"In {who}, voluntary exits were {change} {word} frequent than in matched teams "
                    f"(exit rate ratio {row['estimate']:.2f}).")


def _engagement_findings(primary: PrimaryAnalysis) -> tuple[list[Sentence], list[dict]]:
    sentences, rows = [], []
    scale = "points on the 1–5 scale"
    eff = summarise_effect(primary.engagement, _ALIGNMENT).table.iloc[0]
    value = format_estimate(abs(eff["estimate"]), *sorted((abs(eff["conf_low"]), abs(eff["conf_high"]))),
                            unit=scale, ci=primary.engagement.conf_label)
    if eff["direction"] == "unclear":
        sentences.append(Sentence("There is no clear difference in engagement between employees whose goals were all "
                                  "linked to their manager's and those with none linked: "
                                  f"{format_estimate(eff['estimate'], eff['conf_low'], eff['conf_high'], unit=scale)}."))
    else:
        sentences.append(Sentence(f"Engagement was {value} {eff['direction']} for employees whose goals were all "
                                  "linked to their manager's, compared with none."))
    rows.append({"finding": "engagement, all goals linked minus none", "estimate": eff["estimate"],
                 "conf_low": eff["conf_low"], "conf_high": eff["conf_high"], "unit": scale})
    if primary.programme_engagement is not None:
        eff = _programme_numbers(primary.programme_engagement)
        ci = primary.programme_engagement.conf_label
        if eff["direction"] == "unclear":
            sentences.append(Sentence("There is no clear evidence that team engagement changed after the manager "
                                      "started leadership development, compared with matched teams: "
                                      f"{format_estimate(eff['estimate'], eff['conf_low'], eff['conf_high'], unit=scale, ci=ci)}."))
        else:
            value = format_estimate(abs(eff["estimate"]), *sorted((abs(eff["conf_low"]), abs(eff["conf_high"]))),
                                    unit=scale, ci=ci)
            verb = "rose" if eff["direction"] == "higher" else "fell"
            sentences.append(Sentence(f"After their manager started leadership development, team members' engagement "
                                      f"{verb} by {value} more than in matched teams."))
        rows.append({"finding": "team engagement, programme (matched design)", "estimate": eff["estimate"],
                     "conf_low": eff["conf_low"], "conf_high": eff["conf_high"], "unit": scale})
    return sentences, rows


def key_findings(primary: PrimaryAnalysis) -> Findings:
    """The brief's opening findings, in absolute terms, each with its interval.

    1. Of 100 employees with all goals linked to their manager's, how many
       are still here after ``months`` (``analysis.months``), against none
       linked: adjusted survival curves of the primary Cox model
       (:func:`cox_survival`, R's ``survfit(coxph, newdata)``) for two
       profiles that differ only in cascade alignment, the other
       characteristics at the typical values of :func:`typical_profiles`.
    2. How many months longer they stay over ``horizon_months``: the
       difference of the restricted means of the same two curves
       (:func:`cox_restricted_mean`, delta-method interval).
    3. The programme's effect on exits: the primary design's adjusted hazard
       ratio (:func:`describe_programme`).
    4. The engagement difference for all goals linked against none (primary
       engagement model), and 5. the programme's effect on team engagement
       with the primary design, when it was estimated.

    Parameters
    ----------
    primary : PrimaryAnalysis
        The fitted primary analysis.

    Returns
    -------
    Findings
        ``table`` (``finding, estimate, conf_low, conf_high, unit``) and
        ``sentences``; shown in a notebook as a bulleted list.

    Examples
    --------
    >>> import alignment_research as ar
    >>> primary = ar.primary_analysis(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)), warn=False)
    >>> ar.key_findings(primary).sentences[0].startswith("Of 100 employees")
    True
    """
    profiles = typical_profiles(primary)
    first, rows = _retention_finding(primary, profiles)
    second, more = _rmst_finding(primary, profiles)
    rows += more
    prog = _programme_numbers(primary.programme)
    rows.append({"finding": "exit rate ratio, programme (matched design)", "estimate": prog["estimate"],
                 "conf_low": prog["conf_low"], "conf_high": prog["conf_high"], "unit": "ratio"})
    engagement, more = _engagement_findings(primary)
    rows += more
    sentences = (first, second, describe_programme(primary), *engagement)
    caveat = _early_risk_caveat(primary)
    return Findings(pd.DataFrame(rows), tuple(sentences), () if caveat is None else (caveat,))


# ---------------------------------------------------------------- the programme: primary and sensitivity


def programme_estimates(primary: PrimaryAnalysis, **sensitivity) -> pd.DataFrame:
    """The programme's effect on exits by every analysis that estimates it, the primary one first.

    Parameters
    ----------
    primary : PrimaryAnalysis
        The fitted primary analysis.
    **sensitivity : ModelResult
        Further retention models with a ``manager_program`` term (an analyst
        notebook's cause-specific or discrete-time model), by name; each
        becomes a sensitivity row with the reason
        :func:`compare_with_primary` reads from the two fits.

    Returns
    -------
    pandas.DataFrame
        ``analysis, role, estimate, conf_low, conf_high, n, events,
        reason``: exit rate ratios of the primary design (``role`` "primary"),
        of the ``manager_program`` coefficient of the primary retention model
        and of the naive comparison (both "sensitivity analysis"), each with
        the reason it differs from the primary one, generated from the data.

    Examples
    --------
    >>> import alignment_research as ar
    >>> primary = ar.primary_analysis(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)), warn=False)
    >>> ar.programme_estimates(primary)["role"].tolist()
    ['primary', 'sensitivity analysis', 'sensitivity analysis']
    """
    prog = primary.programme
    g = prog.glance().iloc[0]
    adjusted = _programme_numbers(prog)
    naive = compare_naive_adjusted(prog).iloc[0]
    cox = primary.retention.tidy().set_index("term")
    cg = primary.retention.glance().iloc[0]
    rows = [{"analysis": f"{primary.settings.programme.design} design (teams of enrolling managers against "
                         "comparable teams, from the enrolment date)", "role": "primary",
             "estimate": adjusted["estimate"], "conf_low": adjusted["conf_low"], "conf_high": adjusted["conf_high"],
             "n": g.get("n"), "events": g.get("events"), "reason": ""}]
    if _PROGRAMME_TERM in cox.index:
        r = cox.loc[_PROGRAMME_TERM]
        inside = r["exp_conf_low"] <= adjusted["estimate"] <= r["exp_conf_high"] and \
            adjusted["conf_low"] <= r["exp_estimate"] <= adjusted["conf_high"]
        reason = (f"It uses all {int(cg['n_subjects']):,} employees over the whole window ({int(cg['events']):,} "
                  f"exits) and adjusts for the other covariates inside one model, while the primary design follows "
                  f"only the teams of {int(g['n_treated']):,} enrolling managers and their {int(g['n_controls']):,} "
                  f"matched comparison managers from each enrolment date ({int(g['events']):,} exits); "
                  + ("the two agree within their uncertainty." if inside else
                     "the two differ beyond their uncertainty (each lies outside the other's interval)."))
        rows.append({"analysis": "retention model coefficient of the manager's programme",
                     "role": "sensitivity analysis", "estimate": r["exp_estimate"], "conf_low": r["exp_conf_low"],
                     "conf_high": r["exp_conf_high"], "n": cg.get("n_subjects"), "events": cg.get("events"),
                     "reason": reason})
    reason = ("It compares the teams of every manager who ever took the programme with all other teams, so it mixes "
              "the programme with who was chosen for it and counts time before the start as if after it; "
              + ("here it lies outside the primary interval and vice versa." if naive["differs"] else
                 "here the two agree within their uncertainty."))
    rows.append({"analysis": "naive comparison (ever against never)", "role": "sensitivity analysis",
                 "estimate": naive["naive"], "conf_low": naive["naive_low"], "conf_high": naive["naive_high"],
                 "n": np.nan, "events": np.nan, "reason": reason})
    if sensitivity:
        more = compare_with_primary(prog, _PROGRAMME_TERM, **sensitivity).iloc[1:]
        people = [_first(result, "n_subjects") for result in sensitivity.values()]
        events = [_events(result) for result in sensitivity.values()]
        rows += more.assign(n=people, events=events)[list(rows[0])].to_dict("records")
    return pd.DataFrame(rows)


def _first(result, column: str) -> float:
    """A fit statistic of the result's first glance row (NaN when it has none)."""
    g = result.glance()
    return float(g[column].iloc[0]) if column in g.columns and len(g) and pd.notna(g[column].iloc[0]) else np.nan


def _events(result) -> float:
    """Events a retention model counted (for a model with one row per kind of exit, the voluntary ones)."""
    g = result.glance()
    if "cause" in g.columns:
        g = g.loc[g["cause"].astype(str) == "voluntary"]
    return float(g["events"].iloc[0]) if "events" in g.columns and len(g) else np.nan


def describe_programme_sensitivity(primary: PrimaryAnalysis, **sensitivity) -> Sentence:
    """Word the programme's sensitivity analyses beside the primary number, each with why it differs.

    Parameters
    ----------
    primary : PrimaryAnalysis
        The fitted primary analysis.
    **sensitivity : ModelResult
        Further retention models, by name (see :func:`programme_estimates`).

    Returns
    -------
    Sentence
        The primary number, then one sentence per sensitivity analysis,
        labelled as such.

    Examples
    --------
    >>> import alignment_research as ar
    >>> primary = ar.primary_analysis(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)), warn=False)
    >>> "Sensitivity analysis" in ar.describe_programme_sensitivity(primary)
    True
    """
    table = programme_estimates(primary, **sensitivity)
    ci = primary.programme.conf_label
    parts = [f"Primary estimate of the programme's effect on exits: exit rate ratio "
             f"{format_estimate(*table.iloc[0][['estimate', 'conf_low', 'conf_high']], ci=ci)}."]
    for _, r in table.iloc[1:].iterrows():
        parts.append(f"Sensitivity analysis, {r['analysis']}: "
                     f"{format_estimate(r['estimate'], r['conf_low'], r['conf_high'], ci=ci)}. {r['reason']}")
    return paragraph(*parts)

