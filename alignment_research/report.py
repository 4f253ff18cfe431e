"""Plain-language wording for leaders, generated from tidy results (never claiming more than the interval)."""

from __future__ import annotations

import html as _html
import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._estimators import holm_adjust
from ._formula import categorical_terms as _categorical_terms, check_columns, formula_variables
from .errors import ModelError, PrivacyError
from .privacy import pool_small_levels, suppress_small_groups
from .results import conf_label

__all__ = [
    "Section",
    "Sentence",
    "EffectSummary",
    "summarise_effect",
    "describe_effect",
    "describe_e_value",
    "paragraph",
    "term_label",
    "with_labels",
    "TERM_LABELS",
    "add_levels",
    "plot_retention",
    "describe_retention",
    "describe_study",
    "describe_caveats",
    "describe_who_it_works_for",
    "prepare_leadership_model",
    "format_estimate",
    "retention_caption",
    "compare_naive_adjusted",
    "describe_naive_adjusted",
    "describe_unadjusted",
    "plain_table",
    "compare_with_primary",
    "describe_sensitivity",
]

#: Readable names of the analysis-table columns (noun phrases, lower case).
TERM_LABELS = {
    "alignment_cascade": "cascade alignment (share of goals linked to the manager's goals, 0–1)",
    "alignment_top": "alignment to organisation goals (0–1)",
    "alignment_reach": "alignment to organisation goals (0–1)",
    "alignment": "perceived alignment (survey score)",
    "engagement": "engagement (survey score)",
    "leadership": "perceived leadership (survey score)",
    "manager_program": "a manager who has started leadership development",
    "manager_rating": "the manager's review rating",
    "rating": "the employee's review rating",
    "attainment": "target attainment",
    "target_attainment": "target attainment",
    "feedback_rate": "feedback frequency",
    "job_level": "job level",
    "department": "department",
    "location": "location",
    "gender": "gender",
    "age": "age",
    "tenure_years": "tenure (years)",
}
#: How a covariate is named in "the model takes into account ..." sentences.
_ADJUST_LABELS = {
    "manager_program": "whether the manager had started leadership development",
    "manager_rating": "the manager's review rating",
    "alignment_cascade": "cascade alignment",
    "wave": "the survey wave",
}
#: The data contract's indicator of the employee's own programme ``<name>``: ``program_<name>``.
_PROGRAM_PREFIX = "program_"
#: Terms that are 0/1 indicators (worded "with ... vs without").
_BINARY_PREFIXES = ("manager_program", _PROGRAM_PREFIX)

_FACTOR = re.compile(
    r"^C\((?P<var>[^,\)]+)(?:,\s*Treatment\((?:reference=)?(?:'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|(?P<ref>[^'\"\)]+))\))?\)"
    r"\[T\.(?P<level>.+)\]$"
)
_PLAIN_FACTOR = re.compile(r"^(?P<var>[A-Za-z_][A-Za-z0-9_]*)\[T\.(?P<level>.+)\]$")


class Sentence(str):
    """A sentence for readers: a ``str`` that notebooks show as a paragraph, without quotes.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.report.Sentence("Engagement rose.")
    Engagement rose.
    """

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return f'<p class="ar-finding">{_html.escape(str(self))}</p>'


@dataclass(frozen=True)
class Section:
    """A titled section of a report that appears only when it has something to say.

    ``str()`` is the body; a notebook shows the title as a heading above it, and
    nothing at all when the body is empty (e.g. a study without the data the
    section needs).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.report.Section("Careers", ar.report.Sentence("Mentored people were promoted sooner."))
    ## Careers
    <BLANKLINE>
    Mentored people were promoted sooner.
    >>> str(ar.report.Section("Careers", ar.report.Sentence("")))
    ''
    """

    title: str
    body: Sentence

    def __str__(self) -> str:
        return str(self.body)

    def __repr__(self) -> str:
        return f"## {self.title}\n\n{self.body}" if str(self.body) else ""

    def _repr_html_(self) -> str:
        if not str(self.body):
            return ""
        return f"<h2>{_html.escape(self.title)}</h2>{self.body._repr_html_()}"


@dataclass(frozen=True)
class EffectSummary:
    """One effect as a table and a sentence (CausalPy's ``EffectSummary`` pattern).

    Attributes
    ----------
    table : pandas.DataFrame
        One row: ``term, label, scale, estimate, conf_low, conf_high,
        excludes_null, direction`` (on the ratio scale when ``scale`` is
        ``"ratio"``).
    text : Sentence
        The plain-language sentence.
    """

    table: pd.DataFrame
    text: Sentence

    def __str__(self) -> str:
        return str(self.text)

    def _repr_html_(self) -> str:
        return self.text._repr_html_()


def _parse_factor(term: str):
    m = _FACTOR.match(term) or _PLAIN_FACTOR.match(term)
    if not m:
        return None
    found = m.groupdict()
    ref = next((found[k] for k in ("sq", "dq", "ref") if found.get(k) is not None), None)
    return m.group("var").strip(), m.group("level").strip(), (ref.strip() if ref else None)


def _infer_reference(term: str, terms) -> str | None:
    """Guess the reference level of an integer-coded factor from its sibling terms (2, 3, ... -> 1)."""
    parsed = _parse_factor(term)
    if parsed is None or terms is None:
        return None
    var = parsed[0]
    levels = [p[1] for p in map(_parse_factor, terms) if p is not None and p[0] == var]
    try:
        numbers = sorted(int(float(x)) for x in levels)
    except ValueError:
        return None
    if numbers and numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] >= 1:
        return str(numbers[0] - 1)
    return None


def _label(name: str) -> str:
    if name in TERM_LABELS:
        return TERM_LABELS[name]
    if name.startswith(_PROGRAM_PREFIX):
        return f"the {name[len(_PROGRAM_PREFIX):].replace('_', ' ')} programme"
    return name.replace("_", " ")


def term_label(term: str, *, reference=None, terms=None) -> str:
    """Return a readable label for a model term (``C(job_level)[T.2]`` -> ``"Job level 2 vs 1"``).

    Parameters
    ----------
    term : str
        A term as the formula engine names it.
    reference : str, optional
        The reference level of a categorical term, when the term does not
        name it (``C(x, Treatment('b'))`` does).
    terms : list of str, optional
        All terms of the model; for an integer-coded factor (levels 2, 3, ...)
        the reference is then taken to be the level below the lowest shown.

    Returns
    -------
    str
        The label, capitalised.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.term_label("C(job_level)[T.2]", terms=["C(job_level)[T.2]", "C(job_level)[T.3]"])
    'Job level 2 vs 1'
    >>> ar.term_label("department[T.Sales]", reference="Finance")
    'Department Sales vs Finance'
    """
    parsed = _parse_factor(term)
    if parsed is not None:
        var, level, ref = parsed
        ref = ref or reference or _infer_reference(term, terms)
        text = f"{_label(var)} {level} vs {ref if ref is not None else 'the reference level'}"
    else:
        text = _label(term)
    return text[:1].upper() + text[1:]


def with_labels(table: pd.DataFrame, *, references=None, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return a tidy table whose ``term`` column holds readable labels (for plots and leaders).

    Parameters
    ----------
    table : pandas.DataFrame
        A ``tidy()`` table with a ``term`` column.
    references : dict of str to str, optional
        Reference level per categorical variable, when not inferable.
    data : pandas.DataFrame, optional
        The data the model was fitted on: the reference level of each
        categorical variable is then its first sorted level (as the formula
        engine chose it).

    Returns
    -------
    pandas.DataFrame
        A copy with ``term`` replaced by labels (short forms, without the
        scale in parentheses) and the original kept in ``term_code``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> ar.with_labels(pd.DataFrame({"term": ["manager_program"]})).term.tolist()
    ['A manager who has started leadership development']
    """
    references = dict(references or {})
    out = table.copy()
    terms = out["term"].astype(str).tolist()
    if data is not None:
        for t in terms:
            parsed = _parse_factor(t)
            if parsed and parsed[2] is None and parsed[0] not in references and parsed[0] in data.columns:
                levels = sorted(map(str, pd.unique(data[parsed[0]].dropna())))
                if levels:
                    references[parsed[0]] = levels[0]
    labels = []
    for t in terms:
        parsed = _parse_factor(t)
        ref = references.get(parsed[0]) if parsed else None
        label = term_label(t, reference=ref, terms=terms)
        # drop a trailing scale ("(0-1)") from covariate labels; a level's own parentheses stay
        labels.append(label if parsed else re.sub(r" \([^()]*\)$", "", label))
    out.insert(0, "term_code", out["term"])
    out["term"] = labels
    return out


def _fmt(x: float) -> str:
    """Two significant decimals for effects, a true minus sign."""
    text = f"{x:.2f}" if abs(x) < 100 else f"{x:.0f}"
    return text.replace("-", "−")


def _fmt_pct(x: float) -> str:
    x = abs(x)
    return f"{x:.0f}%" if x >= 9.95 else f"{x:.1f}%"


def _interval(lo: str, hi: str) -> str:
    """``a–b``, or ``a to b`` when a bound is negative (so the dash is not read as a minus)."""
    return f"{lo} to {hi}" if (lo.startswith("−") or hi.startswith("−")) else f"{lo}–{hi}"


def _glance_formula(result) -> str | None:
    """The ``formula`` of ``glance()``, or None."""
    try:
        return str(result.glance()["formula"].iloc[0])
    except (KeyError, AttributeError, IndexError, TypeError):
        return None


def _is_ratio(result) -> bool:
    """Whether the result's estimates are log ratios (``result.is_ratio``: ``scale == "ratio"``)."""
    return bool(getattr(result, "is_ratio", getattr(result, "scale", None) == "ratio"))


def _measure(result) -> str:
    """What one estimate is called (``result.measure_name``: its ``measure``, else ``"ratio"``/``"difference"``)."""
    return getattr(result, "measure_name", None) or ("ratio" if _is_ratio(result) else "difference")


def _ci_label(result) -> str:
    """The interval label of the result's ``alpha`` ("95% CI")."""
    return conf_label(getattr(result, "alpha", 0.05))


def _outcome_phrase(result) -> str:
    """What an effect changes, as a noun phrase: ``"the hazard of voluntary exit"``, ``"engagement"``.

    The words come from ``result.outcome`` (for a result built without one:
    the left-hand side of ``glance()["formula"]``; else "the outcome"), as
    their label. A hazard ratio, and the odds ratio of a survival model (one
    with a ``time_unit``: discrete time), compare the hazard (odds) of the
    event, so the phrase names it: "the hazard of voluntary exit", "the odds
    of voluntary exit". Other models are worded with the outcome itself.
    """
    outcome = getattr(result, "outcome", None)
    if not outcome:
        formula = _glance_formula(result)
        outcome = formula.split("~")[0].strip() if formula and "~" in formula else None
    if not outcome:
        return "the outcome"
    words = _label(outcome).split(" (")[0]
    measure = _measure(result)
    survival = measure.endswith("hazard ratio") or getattr(result, "time_unit", None)
    if _is_ratio(result) and survival and measure.endswith(" ratio"):
        return f"the {measure[: -len(' ratio')]} of {words}"
    return words


def _effect_row(result, term: str) -> tuple[pd.Series, list[str]]:
    """The ``tidy()`` row of ``term`` (or of the method ``term``) and all terms of the model."""
    table = result.tidy()
    if term not in set(table["term"]) and "method" in table.columns and term in set(table["method"]):
        # results with one row per method (naive, adjusted): select the method's row
        table = table.loc[table["method"] == term].assign(term=term)
    if term not in set(table["term"]):
        raise ModelError(f"{term!r} is not a term of this model; its terms are {table['term'].tolist()}.")
    return table.loc[table["term"] == term].iloc[0], table["term"].astype(str).tolist()


def _effect_values(row: pd.Series, *, ratio: bool, per: float) -> tuple[float, float, float, float]:
    """Estimate, lower and upper limit on the reading scale (a ratio, or ``per`` units' difference), and no effect."""
    if ratio:
        if pd.notna(row.get("exp_conf_low")) and per == 1:
            est, lo, hi = (float(row[c]) for c in ("exp_estimate", "exp_conf_low", "exp_conf_high"))
        else:
            est, lo, hi = (math.exp(per * float(row[c])) for c in ("estimate", "conf_low", "conf_high"))
        null = 1.0
    else:
        est, lo, hi = (per * float(row[c]) for c in ("estimate", "conf_low", "conf_high"))
        null = 0.0
    return est, min(lo, hi), max(lo, hi), null


@dataclass(frozen=True)
class _Comparison:
    """Who is compared with whom: ``kind`` ("factor", "binary", "per"), the ``subject`` and the ``phrase``."""

    kind: str
    subject: str
    phrase: str


def _comparison(term: str, terms: list[str], *, per: float, comparison: str | None) -> _Comparison:
    """Name the compared groups: a factor level vs its reference, with vs without, or per unit higher."""
    parsed = _parse_factor(term)
    if parsed is not None:
        var, lvl, ref = parsed
        ref = ref or _infer_reference(term, terms)
        subject = f"{_label(var).split(' (')[0]} {lvl}" + (f" (vs {ref})" if ref else " (vs the reference level)")
        return _Comparison("factor", subject, comparison or f"for {subject}")
    subject = _label(term)
    if term.startswith(_BINARY_PREFIXES):
        return _Comparison("binary", subject, comparison or f"with {subject} than without")
    per_text = f"{per:g}-point" if per != 1 else "one-point"
    short = subject.split(" (")[0]
    scale = subject[len(short):].strip()
    return _Comparison("per", subject, comparison or f"per {per_text} higher {short}" + (f" {scale}" if scale else ""))


def _clear_effect_text(values, direction: str, *, outcome: str, who: _Comparison, ratio: bool, measure: str,
                       unit: str, ci: str) -> str:
    """The sentence of an interval that excludes no effect: direction and size."""
    est, lo, hi, _ = values
    # "The odds ... were", "The hazard ... was".
    verb = "were" if outcome.lower().split(" of ")[0].strip().endswith("odds") else "was"
    start = f"{outcome[:1].upper() + outcome[1:]} {verb} {direction} by"
    if ratio:
        pct = (est - 1) * 100
        lo_pct, hi_pct = ((1 - hi) * 100, (1 - lo) * 100) if direction == "lower" else ((lo - 1) * 100, (hi - 1) * 100)
        return (f"{start} {_fmt_pct(pct)} ({ci} {_fmt_pct(lo_pct).rstrip('%')}–{_fmt_pct(hi_pct)}) {who.phrase} "
                f"({measure} {_fmt(est)}).")
    near, far = (abs(hi), abs(lo)) if direction == "lower" else (lo, hi)
    return f"{start} {_fmt(abs(est))} {unit} ({ci} {_interval(_fmt(near), _fmt(far))}) {who.phrase}."


def _unclear_effect_text(values, *, outcome: str, who: _Comparison, comparison: str | None, ratio: bool,
                         measure: str, unit: str, ci: str) -> str:
    """The sentence of an interval that includes no effect: no clear evidence, and the interval."""
    est, lo, hi, _ = values
    if comparison is not None:
        lead = f"of a difference in {outcome} {comparison}"
    elif who.kind == "factor":
        lead = f"that {who.subject} differs in {outcome}"
    elif who.kind == "binary":
        lead = f"that having {who.subject} is associated with {outcome}"
    else:
        lead = f"that {who.subject.split(' (')[0]} is associated with {outcome}"
    interval = f"({ci} {_interval(_fmt(lo), _fmt(hi))})"
    estimate = f"the {measure} is {_fmt(est)} {interval}" if ratio else f"the estimate is {_fmt(est)} {unit} {interval}"
    return f"There is no clear evidence {lead}: {estimate}, an interval that includes no difference."


def summarise_effect(
    result,
    term: str,
    *,
    outcome: str | None = None,
    ratio: bool | None = None,
    per: float = 1.0,
    unit: str = "points",
    comparison: str | None = None,
) -> EffectSummary:
    """Summarise one term of a fitted model as a table row and a sentence.

    See :func:`describe_effect` for the parameters and the wording rules.

    Parameters
    ----------
    result : ModelResult
        A fitted model (anything with ``tidy()``). Its ``outcome``,
        ``scale``, ``measure`` and ``alpha`` give the outcome, whether the
        estimate is a ratio, the name of the ratio and the interval level.
    term : str
        The term to describe, as in ``tidy()["term"]`` (or, for results with
        one row per ``method`` such as the programme effect, a method:
        ``"adjusted"``).
    outcome : str, optional
        What the model explains, as a noun phrase.
    ratio : bool, optional
        Describe a ratio (hazard/odds ratio) as a percentage change; by
        default when ``result.scale`` is ``"ratio"``.
    per : float, default 1.0
        Describe the change for ``per`` units of a continuous term.
    unit : str, default "points"
        Unit of a difference on the outcome scale.
    comparison : str, optional
        Replaces the generated comparison phrase.

    Returns
    -------
    EffectSummary
        ``table`` (one row) and ``text``.

    Raises
    ------
    ModelError
        When ``term`` is not a term of the model.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> res = ar.ModelResult("ols", ar.results.tidy_table(["x"], [0.3], [0.1]), pd.DataFrame({"n": [100]}),
    ...                      outcome="engagement")
    >>> ar.summarise_effect(res, "x").table.direction.iloc[0]
    'higher'
    """
    row, terms = _effect_row(result, term)
    ratio = _is_ratio(result) if ratio is None else ratio
    outcome = outcome or _outcome_phrase(result)
    values = _effect_values(row, ratio=ratio, per=per)
    est, lo, hi, null = values
    direction = "lower" if hi < null else "higher" if lo > null else "unclear"
    who = _comparison(term, terms, per=per, comparison=comparison)
    words = dict(outcome=outcome, who=who, ratio=ratio, measure=_measure(result), unit=unit, ci=_ci_label(result))
    if direction != "unclear":
        text = _clear_effect_text(values, direction, **words)
    else:
        text = _unclear_effect_text(values, comparison=comparison, **words)
    summary = pd.DataFrame({"term": [term], "label": [term_label(term, terms=terms)],
                            "scale": ["ratio" if ratio else "difference"], "estimate": [est], "conf_low": [lo],
                            "conf_high": [hi], "excludes_null": [direction != "unclear"], "direction": [direction]})
    return EffectSummary(summary, Sentence(text))


def describe_effect(result, term: str, *, outcome: str | None = None, ratio: bool | None = None, **kwargs) -> Sentence:
    """Describe one effect in a sentence whose wording depends on its confidence interval.

    When the interval excludes no effect (a ratio of 1, a difference of 0) the
    sentence states the direction and size: "... was lower by 30% (95% CI
    18–40%) ...". When it includes no effect, the sentence says there is no
    clear evidence and quotes the interval. It never claims an effect the
    interval does not support, and it describes associations (the data are
    observational; the caveats belong beside it). The interval is labelled
    with the result's level (``result.conf_label``, from its ``alpha``).

    Parameters
    ----------
    result : ModelResult
        A fitted model (anything with ``tidy()``). The sentence reads what
        the result says it is: ``outcome``, ``scale``, ``measure`` (the name
        of the ratio) and ``alpha``.
    term : str
        The term, as in ``tidy()["term"]``.
    outcome : str, optional
        The outcome as a noun phrase; by default ``result.outcome`` as a
        label, preceded by "the hazard of" for a hazard ratio and "the odds
        of" for the odds ratio of a survival model ("the hazard of voluntary
        exit"). A result without ``outcome`` is worded with the left-hand
        side of ``glance()["formula"]``, else "the outcome".
    ratio : bool, optional
        Word the effect as a percentage change of a ratio; by default when
        ``result.scale`` is ``"ratio"``.
    **kwargs
        ``per``, ``unit``, ``comparison``: see :func:`summarise_effect`.

    Returns
    -------
    Sentence
        A ``str`` that notebooks display as a paragraph.

    See Also
    --------
    summarise_effect : the same, with a one-row table.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> tidy = pd.DataFrame({"term": ["manager_program"], "estimate": [-0.36], "conf_low": [-0.5],
    ...                      "conf_high": [-0.2], "exp_estimate": [0.70], "exp_conf_low": [0.61],
    ...                      "exp_conf_high": [0.82]})
    >>> cox = ar.ModelResult("cox", tidy, pd.DataFrame(), outcome="voluntary exit", scale="ratio",
    ...                      measure="hazard ratio")
    >>> ar.describe_effect(cox, "manager_program")
    The hazard of voluntary exit was lower by 30% (95% CI 18–39%) with a manager who has started leadership development than without (hazard ratio 0.70).
    """
    return summarise_effect(result, term, outcome=outcome, ratio=ratio, **kwargs).text


def describe_e_value(
    e_value,
    *,
    e_value_ci: float | None = None,
    treatment: str = "the programme",
    outcome: str = "the outcome",
) -> Sentence:
    """Explain an E-value (VanderWeele & Ding, 2017) in one or two sentences.

    Parameters
    ----------
    e_value : float, dict, Series or one-row DataFrame
        The E-value of the point estimate, or a record holding ``e_value``
        (or ``point``/``estimate``) and ``e_value_ci`` (or ``ci``/``conf``).
    e_value_ci : float, optional
        The E-value of the confidence limit closest to no effect (1 when the
        interval already includes no effect).
    treatment : str, default "the programme"
        The exposure, as a noun phrase.
    outcome : str, default "the outcome"
        The outcome, as a noun phrase.

    Returns
    -------
    Sentence
        The explanation.

    Notes
    -----
    The E-value is the minimum strength of association, on the risk-ratio
    scale, that an unmeasured confounder would need with both the exposure
    and the outcome, beyond the measured covariates, to explain away the
    estimate. Matches ``EValue::evalues.RR`` in R.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.describe_e_value(2.1, e_value_ci=1.4, treatment="leadership development")
    A hidden factor (one the data do not record) would need to be tied to both leadership development and the outcome by a risk ratio of at least 2.1 each, beyond everything measured, to explain the estimate away; to move the confidence interval to include no effect, a risk ratio of at least 1.4 each would do.
    """
    if isinstance(e_value, pd.DataFrame):
        e_value = e_value.iloc[0]
    if isinstance(e_value, (dict, pd.Series)):
        rec = dict(e_value)
        point = next((rec[k] for k in ("e_value", "point", "estimate", "e_value_point") if k in rec), None)
        if e_value_ci is None:
            e_value_ci = next((rec[k] for k in ("e_value_ci", "ci", "conf", "e_value_conf", "e_value_limit") if k in rec), None)
        e_value = point
    if e_value is None or pd.isna(e_value):
        raise ModelError("describe_e_value needs the E-value of the point estimate (`e_value`).")
    e_value = float(e_value)
    text = (
        f"A hidden factor (one the data do not record) would need to be tied to both {treatment} and {outcome} "
        f"by a risk ratio of at least {e_value:.1f} each, beyond everything measured, to explain the estimate away"
    )
    if e_value_ci is not None and pd.notna(e_value_ci):
        if float(e_value_ci) <= 1.0:
            text += "; the confidence interval already includes no effect, so no hidden factor is needed to make it compatible with none."
        else:
            text += (
                f"; to move the confidence interval to include no effect, a risk ratio of at least "
                f"{float(e_value_ci):.1f} each would do."
            )
    else:
        text += "."
    return Sentence(text)


def paragraph(*sentences) -> Sentence:
    """Join sentences into one paragraph for a notebook cell.

    Parameters
    ----------
    *sentences : str or EffectSummary
        The sentences, in reading order (``None`` entries are skipped).

    Returns
    -------
    Sentence
        The sentences separated by spaces.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.paragraph("One.", None, "Two.")
    One. Two.
    """
    return Sentence(" ".join(str(s).strip() for s in sentences if s is not None and str(s).strip()))


def _group_name(by: str, group) -> str:
    """A group as a reader names it: ``"Sales"``, ``"job level 3"`` (a bare number gets its column's name)."""
    text = str(group)
    return f"{_label(by).split(' (')[0]} {text}" if re.fullmatch(r"-?\d+(\.\d+)?", text) else text


def _listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


#: Groups named with their numbers in a "who it works for" sentence (the largest effects); the rest are counted.
_WHO_NAMED = 3


def _who_sentences(result, row, *, alpha: float, min_group_size: int, unit: str, family: int = 1) -> list[str]:
    """The sentences of one term by one grouping column, or none when the heterogeneity is not supported."""
    p = float(row["p_value"])
    if not p < alpha:  # NaN (one group) or not significant: nothing to say
        return []
    table = result.tidy()
    rows = table[(table["term"] == row["term"]) & (table["by"] == row["by"]) & table["estimate"].notna()]
    note = rows["note"].fillna("").astype(str)
    n = pd.to_numeric(rows["n"], errors="coerce")
    rows = rows[~note.str.startswith("suppressed") & ~(n < min_group_size)]  # hidden sizes (NaN) are large enough
    excludes = (rows["conf_low_adjusted"] > 0) | (rows["conf_high_adjusted"] < 0)
    if not excludes.any():
        return []
    ratio = _is_ratio(result)
    measure = _measure(result)
    ci = _ci_label(result)

    def quoted(r) -> str:
        if ratio:
            est, lo, hi = (math.exp(float(r[c])) for c in ("estimate", "conf_low_adjusted", "conf_high_adjusted"))
            return f"{_group_name(row['by'], r['group'])} ({measure} {_fmt(est)}, {ci} {_interval(_fmt(lo), _fmt(hi))})"
        est, lo, hi = (float(r[c]) for c in ("estimate", "conf_low_adjusted", "conf_high_adjusted"))
        return f"{_group_name(row['by'], r['group'])} ({_fmt(est)} {unit}, {ci} {_interval(_fmt(lo), _fmt(hi))})"

    clear = rows[excludes.to_numpy()]
    clear = clear.iloc[clear["estimate"].abs().to_numpy().argsort(kind="stable")[::-1]]
    others = [_group_name(row["by"], g) for g in rows.loc[~excludes.to_numpy(), "group"]]
    by_words = _label(row["by"]).split(" (")[0]
    subject = _label(row["term"]).split(" (")[0]
    link = f"having {subject}" if row["term"].startswith(_BINARY_PREFIXES) else subject
    tested = f", adjusted for the {family} such tests made" if family > 1 else ""
    first = (f"How strongly {link} goes with {_outcome_phrase(result)} differs by {by_words} "
             f"(test that it is the same in every {by_words}: {_p_text(p)}{tested}).")
    named = [quoted(r) for _, r in clear.head(_WHO_NAMED).iterrows()]
    if len(clear) > _WHO_NAMED:
        named.append(f"{len(clear) - _WHO_NAMED} other {'group' if len(clear) == _WHO_NAMED + 1 else 'groups'}")
    second = (f"It is clear in {_listed(named)}, with intervals that allow "
              f"for comparing {int(row['n_groups'])} groups at once")
    second += f"; in {_listed(others)} the interval includes no effect." if others else "."
    return [first, second]


def describe_who_it_works_for(*results, alpha: float | None = None, min_group_size: int | None = None,
                              unit: str = "points") -> Sentence:
    """Say who an effect works for, only where the data support a difference between groups.

    For every term and grouping column of each result, a paragraph is
    written only when both hold: the heterogeneity test (the effect is the
    same in every group) is rejected at ``alpha`` after Holm's adjustment
    across every test passed in (all groupings, terms and results: a leader
    reads one paragraph), and at least one group's
    simultaneous interval (widened for the number of groups compared)
    excludes no effect. Then two sentences: the test, and the groups whose
    interval excludes no effect, with their estimates and intervals (the
    three largest; further ones are counted), and the groups whose interval
    includes no effect. Only groups of at least ``min_group_size`` people,
    which carry an estimate, are named. Otherwise
    the text is empty, and a notebook cell shows nothing.

    Parameters
    ----------
    *results : GroupEffectsResult
        Results of :func:`fit_group_effects` (e.g. one for retention, one
        for engagement).
    alpha : float, optional
        Significance level of the heterogeneity test; by default each
        result's own ``alpha`` (the study's).
    min_group_size : int, optional
        Smallest group that may be named; by default each result's own.
    unit : str, default "points"
        Unit of a difference (OLS) estimate.

    Returns
    -------
    Sentence
        The paragraph, or an empty one when no heterogeneity is supported.

    See Also
    --------
    fit_group_effects

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> tidy = pd.DataFrame({"term": ["x", "x"], "estimate": [0.5, 0.0], "by": ["gender"] * 2,
    ...                      "group": ["female", "male"], "n": [40, 40], "conf_low_adjusted": [0.2, -0.3],
    ...                      "conf_high_adjusted": [0.8, 0.3], "note": ["", ""]})
    >>> test = pd.DataFrame({"term": ["x"], "by": ["gender"], "n_groups": [2], "p_value": [0.01]})
    >>> res = ar.ModelResult("group_effects", tidy, test, outcome="engagement")
    >>> ar.describe_who_it_works_for(res)
    How strongly x goes with engagement differs by gender (test that it is the same in every gender: p = 0.010). It is clear in female (0.50 points, 95% CI 0.20–0.80), with intervals that allow for comparing 2 groups at once; in male the interval includes no effect.
    """
    sentences = []
    tests = [(result, row) for result in results for _, row in result.glance().iterrows()]
    # every heterogeneity test asked about counts: a leader reads one paragraph, so its claims are
    # Holm-adjusted across the whole family (several groupings and terms would otherwise find a difference
    # somewhere by chance)
    raw = np.array([float(row["p_value"]) for _, row in tests], float)
    adjusted = np.full(len(raw), np.nan)
    ok = np.isfinite(raw)
    adjusted[ok] = holm_adjust(raw[ok])
    for (result, row), p in zip(tests, adjusted):
        level = float(getattr(result, "alpha", 0.05)) if alpha is None else float(alpha)
        size = int(getattr(result, "min_group_size", 5) if min_group_size is None else min_group_size)
        row = row.copy()
        row["p_value"] = p
        sentences += _who_sentences(result, row, alpha=level, min_group_size=size, unit=unit,
                                    family=int(ok.sum()))
    return paragraph(*sentences)


_LEVEL_NAMES = ("Low", "Medium", "High")


def add_levels(data: pd.DataFrame, column: str, *, name: str | None = None, labels=_LEVEL_NAMES,
               what: str = "alignment") -> pd.DataFrame:
    """Add a column that splits a continuous measure into equal-sized levels (thirds by default).

    Parameters
    ----------
    data : pandas.DataFrame
        E.g. the ``person`` table.
    column : str
        The measure, e.g. ``"alignment_cascade_entry"``.
    name : str, optional
        The new column; ``"<what>_level"`` by default.
    labels : sequence of str, default ("Low", "Medium", "High")
        One label per level, lowest first; the number of labels sets the
        number of levels (quantile groups).
    what : str, default "alignment"
        Word used in the level labels ("Low alignment (0.00–0.31)").

    Returns
    -------
    pandas.DataFrame
        A copy with the new column: an ordered categorical whose labels give
        the range of ``column`` in each level; missing where ``column`` is.
        Cuts are quantiles of the values, so tied values share a level; when
        the measure has too few distinct values for every level, fewer levels
        are made (two: the first and last label).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> d = pd.DataFrame({"a": [0.1, 0.2, 0.5, 0.6, 0.9, 1.0]})
    >>> ar.add_levels(d, "a")["alignment_level"].astype(str).tolist()[:2]
    ['Low alignment (0.10–0.20)', 'Low alignment (0.10–0.20)']
    >>> ar.add_levels(pd.DataFrame({"a": [0, 0, 0, 0, 0.5, 1.0]}), "a")["alignment_level"].cat.categories.tolist()
    ['Low alignment (0.00–0.00)', 'High alignment (0.50–1.00)']
    """
    name = name or f"{what}_level"
    values = pd.to_numeric(data[column], errors="coerce").astype(float)
    # quantile cuts on the values (ties stay together); fewer levels when the measure has few distinct values
    codes = pd.qcut(values, len(labels), labels=False, duplicates="drop")
    n_levels = int(codes.max()) + 1 if codes.notna().any() else 0
    if n_levels == len(labels):
        used = list(labels)
    elif n_levels == 2:
        used = [labels[0], labels[-1]]
    else:
        used = list(labels[:n_levels])
    out = data.copy()
    names = []
    for k, lab in enumerate(used):
        sel = values[codes == k]
        names.append(f"{lab} {what} ({sel.min():.2f}–{sel.max():.2f})")
    out[name] = pd.Categorical.from_codes(codes.fillna(-1).astype(int), categories=names, ordered=True)
    return out


def plot_retention(data, *, min_group_size: int = 5, at_risk: bool = True, ax=None, **kwargs):
    """Draw retention curves for leadership, gated on distinct people.

    A rehired employee has one spell per employment but is one person, so
    every gate here counts people (``fit_km``'s ``people`` and
    ``people_at_risk`` extras, counted by :func:`group_sizes`), never spells,
    and decides through :func:`suppress_small_groups`:

    * a group with fewer than ``min_group_size`` people is not drawn (with
      complementary suppression, since the groups make up a whole whose size
      is shown elsewhere), and a note under the plot says groups were left out;
    * each drawn curve stops before fewer than ``min_group_size`` people remain at
      risk (the tail would show each exit of a handful of people);
    * the numbers at risk written under the x axis count people, and a number
      below ``min_group_size`` is shown as "–" (suppressed, never rounded; no
      complementary suppression, since no total over time points is shown).

    Parameters
    ----------
    data : KMResult
        A :func:`fit_km` result (its ``curves``, ``at_risk`` and ``people`` extras are used).
    min_group_size : int, default 5
        The study's minimum group size, in people.
    at_risk : bool, default True
        Write the (suppressed) numbers of people at risk under the x axis.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :func:`plot_survival`.

    Returns
    -------
    matplotlib.axes.Axes
        One step line per shown group, in the groups' own order.

    Raises
    ------
    PrivacyError
        When the result has no count of distinct people (``fit_km`` ran on data
        without its ``person`` column).

    Examples
    --------
    >>> import alignment_research as ar
    >>> person = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.person
    >>> km = ar.fit_km(ar.add_levels(person, "alignment_cascade_entry"), group="alignment_level")
    >>> ax = ar.plot_retention(km)
    """
    from .plots import axes_for  # deferred: matplotlib loads with the first plot

    from .retention import plot_survival  # deferred: retention loads lifelines and matplotlib

    ax = axes_for(ax)
    groups = _km_shown_groups(data, min_group_size, "draw retention curves for leadership")
    shown, order = _shown_curves(data.extras["curves"], groups, min_group_size)
    risk = _shown_at_risk(data.extras["at_risk"], groups, min_group_size) if at_risk and "at_risk" in data.extras else None
    keep = ["group", "time", "time_months", "estimate", "conf_low", "conf_high"]
    ax = plot_survival(shown[keep], at_risk=risk, ax=ax, **kwargs)
    if len(groups) < len(data.extras["people"]):
        ax.text(0.0, -0.2 if risk is None else -0.33 - 0.07 * len(order), f"Groups of fewer than {min_group_size} people "
                "are not shown.", transform=ax.transAxes, ha="left", va="center", fontsize="x-small")
    return ax


def _shown_curves(curves: pd.DataFrame, groups: set, min_group_size: int) -> tuple[pd.DataFrame, list]:
    """The curve points that may be drawn, and the groups in drawing order (Low, Medium, High).

    A shown group's curve stops before its first time with fewer than
    ``min_group_size`` people at risk.
    """
    curves = curves.loc[curves["group"].astype(str).isin(groups)].copy()
    curves["time_key"] = curves["time"].astype(str)
    gated = suppress_small_groups(curves.astype({"group": str}), count="people_at_risk", min_group_size=min_group_size,
                                  group_cols=["group", "time_key"], value_cols=["estimate", "conf_low", "conf_high"],
                                  total=False)
    gated["group"] = curves["group"].to_numpy()
    shown = gated.loc[~gated["suppressed"]]
    # keep each curve up to its first suppressed time only (with delayed entry people at risk can rise again)
    first_cut = gated.loc[gated["suppressed"]].groupby("group", sort=False)["time"].min()
    shown = shown.loc[shown["time"] < shown["group"].map(first_cut).astype(float).fillna(float("inf"))]
    order = sorted(pd.unique(curves["group"]), key=_level_rank)
    return pd.concat([shown.loc[shown["group"] == g] for g in order] or [shown]), order


def _shown_at_risk(at_risk: pd.DataFrame, groups: set, min_group_size: int) -> pd.DataFrame:
    """``group, time_months, at_risk``: people at risk as text, "–" below ``min_group_size``."""
    table = at_risk.loc[at_risk["group"].astype(str).isin(groups)].copy()
    table["time_key"] = table["time_months"].astype(str)
    sup = suppress_small_groups(table.astype({"group": str}), count="people_at_risk", min_group_size=min_group_size,
                                group_cols=["group", "time_key"], value_cols=["at_risk"], total=False)
    sup["group"] = table["group"].to_numpy()
    sup["at_risk"] = [("–" if s else f"{int(v)}") for s, v in zip(sup["suppressed"], sup["people_at_risk"])]
    return sup[["group", "time_months", "at_risk"]]


def _km_shown_groups(km, min_group_size: int, what: str) -> set:
    """Labels (as text) of the Kaplan–Meier groups that may be shown: at least ``min_group_size`` distinct people.

    Decided by :func:`suppress_small_groups` on ``fit_km``'s people counts,
    with complementary suppression (the groups make up the whole study).
    """
    extras = getattr(km, "extras", None) or {}
    people = extras.get("people")
    if people is None or pd.to_numeric(people["n_people"], errors="coerce").isna().any():
        raise PrivacyError(
            f"Cannot {what}: the Kaplan–Meier result does not count distinct people per group (a rehired "
            "employee has several spells but is one person). Fit it with `ar.fit_km(..., person=...)` naming the "
            "column that identifies a person (default 'employee_id')."
        )
    sizes = people.astype({"group": str})
    gated = suppress_small_groups(sizes, count="n_people", min_group_size=min_group_size, group_cols=["group"],
                                  value_cols=["n_spells"])
    return set(sizes["group"].loc[~gated["suppressed"].to_numpy()])


def _level_rank(label) -> tuple:
    text = str(label)
    for i, word in enumerate(_LEVEL_NAMES):
        if text.startswith(word):
            return (i, text)
    return (len(_LEVEL_NAMES), text)


def describe_retention(km, *, months: int = 12, min_group_size: int = 5) -> Sentence:
    """Describe retention at one tenure for each group of a Kaplan–Meier result.

    Parameters
    ----------
    km : KMResult
        A :func:`fit_km` result whose ``tidy()`` has ``retention_<months>_months``.
    months : int, default 12
        The tenure (months) to report.
    min_group_size : int, default 5
        Groups with fewer distinct people, or fewer distinct people at risk at
        that tenure, are not described (people, not spells: see :func:`plot_retention`).

    Returns
    -------
    Sentence
        E.g. "After 12 months of tenure, an estimated 91% (95% CI 88–94%) of
        employees with high alignment were still employed, against 85% (95% CI
        80–89%) with low alignment." plus whether the curves differ clearly
        (log-rank test).

    Raises
    ------
    PrivacyError
        When the result has no count of distinct people (``fit_km`` ran on data
        without its ``person`` column).

    Examples
    --------
    >>> import alignment_research as ar
    >>> person = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.person
    >>> km = ar.fit_km(ar.add_levels(person, "alignment_cascade_entry"), group="alignment_level")
    >>> ar.describe_retention(km).startswith("After 12 months of tenure")
    True
    """
    groups = _km_shown_groups(km, min_group_size, "describe retention for leadership")
    term = f"retention_{months}_months"
    table = km.tidy()
    rows = table.loc[(table["term"] == term) & table["group"].astype(str).isin(groups)].copy()
    people = km.extras["people_at_risk"]
    people = people.loc[people["term"] == term].assign(group=lambda d: d["group"].astype(str))
    rows["people_at_risk"] = rows["group"].astype(str).map(people.set_index("group")["people_at_risk"])
    rows["people_at_risk"] = pd.to_numeric(rows["people_at_risk"], errors="coerce")
    gated = suppress_small_groups(rows[["group", "people_at_risk"]].astype({"group": str}), count="people_at_risk",
                                  min_group_size=min_group_size, group_cols=["group"], value_cols=[], total=False)
    rows = rows.loc[~gated["suppressed"].to_numpy()]
    rows = rows.iloc[sorted(range(len(rows)), key=lambda i: _level_rank(rows["group"].iloc[i]))[::-1]]
    if rows.empty:
        return Sentence(f"Too few people were followed for {months} months to describe retention at that tenure.")
    parts, km_ci = [], _ci_label(km)
    for i, r in enumerate(rows.itertuples()):
        group = re.sub(r" \([^()]*\)$", "", str(r.group))
        group = group[:1].lower() + group[1:]
        share = format_estimate(r.estimate, r.conf_low, r.conf_high, percent=True, ci=km_ci)
        if i == 0:
            parts.append(f"an estimated {share} of employees with {group} were still employed")
        else:
            parts.append(f"{share} with {group}")
    text = f"After {months} months of tenure, " + parts[0]
    if len(parts) > 1:
        text += ", against " + (", and ".join(parts[1:]) if len(parts) > 2 else parts[1])
    text += "."
    glance = km.glance()
    if "logrank_p_value" in glance and pd.notna(glance["logrank_p_value"].iloc[0]):
        p = float(glance["logrank_p_value"].iloc[0])
        text += (
            " The curves differ more than chance alone would readily explain (log-rank test)."
            if p < 0.05
            else " The curves do not differ clearly (log-rank test), so these differences may be due to chance."
        )
    return Sentence(text)


def describe_study(clean) -> Sentence:
    """Describe what a study covers: spells, window, exits, survey responses, cleaning.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study.

    Returns
    -------
    Sentence
        One or two sentences with counts of the whole study (never of a subgroup).

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.describe_study(clean).startswith("The study follows")
    True
    """
    cfg = clean.config
    person = clean.analysis.person
    exits = int((person["event"] == 1).sum())
    text = (
        f"The study follows {len(person):,} employment spells from {cfg.window.start:%-d %B %Y} to "
        f"{cfg.window.end:%-d %B %Y}; {exits:,} ended in a voluntary exit within that time."
    )
    panel = getattr(clean.analysis, "survey_panel", None)
    if panel is not None and len(panel):
        text += f" {len(panel):,} engagement-survey responses are analysed."
    counts = clean.counts
    quarantined = int(counts["rows_quarantined"].sum()) if "rows_quarantined" in counts else 0
    total = int(counts["rows_in"].sum()) if "rows_in" in counts else 0
    if total:
        text += (
            f" Of {total:,} rows in the source files, {quarantined:,} ({quarantined / total:.1%}) could not be used "
            "and were set aside with their reasons (see the data-quality report)."
        )
    return Sentence(text)


def _formula_terms(result) -> list[str]:
    """The variables on the right-hand side of the result's formula (none when it has no formula)."""
    formula = _glance_formula(result)
    if formula is None:
        return []
    rhs = formula.split("~")[-1]
    try:
        return formula_variables(rhs)
    except Exception:  # noqa: BLE001 - a formula we cannot parse just gives no list
        return []


def prepare_leadership_model(
    data: pd.DataFrame, formula: str, *, min_group_size: int = 5, person: str | None = "employee_id"
):
    """Pool the small levels of a model's categorical terms before a model is fitted for leadership.

    Every categorical variable of the formula (wrapped in ``C()``, or a text
    column) goes through :func:`pool_small_levels`: levels with fewer than
    ``min_group_size`` distinct people are pooled into one level (``"Other
    departments (each < 5 people)"``; counted with the reference when even
    the pool is too small), the largest level becomes the reference, and the
    formula is rebuilt with ``C(<column>, Treatment(reference=...))`` terms.

    Parameters
    ----------
    data : pandas.DataFrame
        The model's data (``intervals``, ``survey_panel``, ...).
    formula : str
        The model formula, with or without a left-hand side.
    min_group_size : int, default 5
        The study's minimum group size.
    person : str or None, default "employee_id"
        Column identifying a person.

    Returns
    -------
    PooledLevels
        ``data`` and ``formula`` to fit, ``references``, ``pooled`` (what was
        moved; names small levels, so not for leadership) and ``caveats``
        (the sentences to pass on through :func:`describe_caveats`).

    Raises
    ------
    PrivacyError
        ``person`` is not a column of ``data``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> model = ar.prepare_leadership_model(clean.analysis.survey_panel,
    ...                                     "engagement ~ alignment_cascade + C(job_level)")
    >>> model.formula
    'engagement ~ alignment_cascade + C(job_level, Treatment(reference=1))'
    """
    variables = formula_variables(formula)
    check_columns(data, variables)
    lhs = formula_variables(formula.split("~")[0]) if "~" in formula else []
    text = [v for v in variables if v not in lhs and not pd.api.types.is_bool_dtype(data[v])
            and (pd.api.types.is_object_dtype(data[v]) or pd.api.types.is_string_dtype(data[v])
                 or isinstance(data[v].dtype, pd.CategoricalDtype))]
    columns = [v for v in variables if v in _categorical_terms(formula) or v in text]
    pooled = pool_small_levels(data, columns, min_group_size=min_group_size, person=person)
    return replace(pooled, formula=pooled.apply(formula))


def _pooling_sentences(pooling) -> list[str]:
    """Caveat sentences of one or more :class:`PooledLevels` (a dict names the model of each)."""
    if pooling is None:
        return []
    if not isinstance(pooling, dict):
        pooling = {"": pooling}
    texts = {name: p.caveats for name, p in pooling.items() if p is not None and p.caveats}
    if not texts:
        return []
    if len(set(texts.values())) == 1:
        text = next(iter(texts.values()))
        named = [n for n in texts if n]
        if len(named) > 1:
            return [f"In {'both' if len(named) == 2 else 'all'} models: {text}"]
        return [f"In the {named[0]} model: {text}" if named else text]
    return [f"In the {name} model: {text}" if name else text for name, text in texts.items()]


def _programme_sentences(programme, min_group_size: int) -> list[str]:
    """What the programme comparison is, and its balance and overlap, in words."""
    sentences = []
    g = programme.glance().iloc[0]
    sentences.append(
        "The programme effect compares the teams of managers who started the programme with the teams of "
        "similar managers who had not (yet), matched on what was known on the day of enrolment."
    )
    smd = g.get("max_abs_smd_after")
    if smd is not None and pd.notna(smd) and float(smd) > 0.1:
        sentences.append(
            f"After matching, the compared managers still differed on some measured characteristics "
            f"(largest standardised difference {float(smd):.2f}, above the usual 0.1), so read that estimate "
            "with caution."
        )
    unmatched, enrolled = g.get("n_unmatched"), g.get("n_enrolled")
    if unmatched is not None and pd.notna(unmatched) and int(unmatched) > 0:
        share = "some of "
        if enrolled is not None and pd.notna(enrolled):
            # the share names the size of two groups of managers (matched, unmatched): both must be shown
            groups = pd.DataFrame({"group": ["matched", "unmatched"],
                                   "n": [int(enrolled) - int(unmatched), int(unmatched)]})
            if not suppress_small_groups(groups, min_group_size=min_group_size, group_cols=["group"])["suppressed"].any():
                share = f"{int(unmatched) / int(enrolled):.0%} of "
        sentences.append(
            f"{share[:1].upper() + share[1:]}the managers who took the programme had no comparable manager and "
            "were left out; the estimate describes those who could be matched."
        )
    return sentences


def describe_caveats(*, retention=None, engagement=None, programme=None, pooling=None,
                     min_group_size: int = 5) -> Sentence:
    """Describe what the models adjusted for and the diagnostics a reader should know.

    Parameters
    ----------
    retention : ModelResult, optional
        The retention (Cox) model; its formula gives the adjustment list.
    engagement : ModelResult, optional
        The engagement model.
    programme : ProgramEffectResult, optional
        The programme effect; its balance and overlap diagnostics are described.
    pooling : PooledLevels or dict of str to PooledLevels, optional
        What :func:`prepare_leadership_model` pooled for each model (a dict
        names the model: ``{"retention": ..., "engagement": ...}``); every
        pooled, merged or dropped level and each reference is stated.
    min_group_size : int, default 5
        The study's minimum group size (small counts are not quoted).

    Returns
    -------
    Sentence
        A paragraph.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> cox = ar.ModelResult("cox", pd.DataFrame({"term": ["x"]}), pd.DataFrame({"formula": ["alignment_cascade + job_level"]}))
    >>> ar.describe_caveats(retention=cox)
    The retention model takes into account cascade alignment and job level.
    """
    sentences = []
    for what, result in (("retention", retention), ("engagement", engagement)):
        if result is None:
            continue
        names = [_ADJUST_LABELS.get(v, _label(v).split(" (")[0]) for v in _formula_terms(result)]
        if names:
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            sentences.append(f"The {what} model takes into account {listed}.")
    sentences += _pooling_sentences(pooling)
    if programme is not None:
        sentences += _programme_sentences(programme, min_group_size)
    # the statistical caveats each fit recorded (separation, few clusters, ...): shown even where warnings
    # are silenced; the programme's balance and overlap caveats are already described in words above
    for what, result in (("retention", retention), ("engagement", engagement), ("programme", programme)):
        for text in getattr(result, "caveats", ()) or ():
            if what == "programme" and text.startswith(("Balance fails", "Poor overlap")):
                continue
            sentences.append(f"Caveat ({what} model): {text}")
    return Sentence(" ".join(sentences))


# ---------------------------------------------------------------- words that follow the data (issue 14)


def format_estimate(estimate: float, conf_low: float, conf_high: float, *, percent: bool = False, unit: str = "",
                    digits: int | None = None, ci: str = "95% CI") -> str:
    """Format an estimate with its interval, the one way every sentence for leaders does.

    Parameters
    ----------
    estimate, conf_low, conf_high : float
        The estimate and its interval (shares 0–1 when ``percent``).
    percent : bool, default False
        Show shares as whole percentages: ``85% (95% CI 80–90%)``.
    unit : str, default ""
        Unit written after the estimate (``"months"``, ``"points"``).
    digits : int, optional
        Decimals; default 0 for percentages, 2 otherwise.
    ci : str, default "95% CI"
        The interval's label (a result's ``conf_label``).

    Returns
    -------
    str
        ``"<estimate>[%| unit] (<ci> <low>–<high>[%])"``; a true minus sign,
        and "to" instead of the dash when a limit is negative.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.format_estimate(0.853, 0.80, 0.90, percent=True)
    '85% (95% CI 80–90%)'
    >>> ar.format_estimate(2.14, -0.4, 4.7, unit="months", digits=1)
    '2.1 months (95% CI −0.4 to 4.7)'
    """
    scale = 100.0 if percent else 1.0
    digits = (0 if percent else 2) if digits is None else digits

    def num(x: float) -> str:
        text = f"{x * scale:.{digits}f}"
        return "0" if float(text) == 0 and digits == 0 else text.replace("-", "−")

    suffix = "%" if percent else ""
    lead = f"{num(estimate)}{suffix}" + (f" {unit}" if unit and not percent else "")
    return f"{lead} ({ci} {_interval(num(min(conf_low, conf_high)), num(max(conf_low, conf_high)))}{suffix})"


#: How a caption names the levels of ``add_levels`` (by the first word of the label), for 3 and for 2 levels.
_LEVEL_WORDS = {3: {"Low": "least", "Medium": "moderately", "High": "most"}, 2: {"Low": "less", "High": "more"}}


def _shown_levels(km, min_group_size: int) -> list[str]:
    """The groups :func:`plot_retention` draws (at least one curve point), in drawing order."""
    groups = _km_shown_groups(km, min_group_size, "caption retention curves for leadership")
    shown, order = _shown_curves(km.extras["curves"], groups, min_group_size)
    drawn = set(shown["group"].astype(str))
    return [str(g) for g in order if str(g) in drawn]


def _at_risk_rises(km, levels: list[str], min_group_size: int) -> bool:
    """Whether the shown number at risk of a drawn group goes up from one printed tenure to the next."""
    if "at_risk" not in km.extras:
        return False
    table = _shown_at_risk(km.extras["at_risk"], set(levels), min_group_size)
    for _, rows in table.groupby(table["group"].astype(str), sort=False):
        counts = pd.to_numeric(rows.sort_values("time_months")["at_risk"], errors="coerce").dropna().to_numpy()
        if len(counts) > 1 and (counts[1:] > counts[:-1]).any():
            return True
    return False


def retention_caption(km, *, min_group_size: int = 5, what: str = "linked to their manager's goals",
                      when: str = "when they entered the study") -> Sentence:
    """Caption the retention curves :func:`plot_retention` draws, naming exactly the levels it draws.

    The caption counts the curves that are drawn (groups smaller than
    ``min_group_size`` people, and curves with no point to show, are left out
    as in the plot) and names as many levels: three levels read "least,
    moderately and most linked", two "less and more linked". When the number
    of people still followed rises from one printed tenure to the next (people
    hired before the study window enter it at the tenure they had then), the
    caption says so.

    Parameters
    ----------
    km : KMResult
        A :func:`fit_km` result by the levels of :func:`add_levels`.
    min_group_size : int, default 5
        The study's minimum group size, in people.
    what : str, default "linked to their manager's goals"
        What the levels measure, completing "whose goals were least ... ".
    when : str, default "when they entered the study"
        When the level was measured.

    Returns
    -------
    Sentence
        The caption.

    Examples
    --------
    >>> import alignment_research as ar
    >>> person = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.person
    >>> km = ar.fit_km(ar.add_levels(person, "alignment_cascade_entry"), group="alignment_level")
    >>> ar.retention_caption(km).startswith("Share of employees still employed")
    True
    """
    levels = _shown_levels(km, min_group_size)
    words_of = _LEVEL_WORDS.get(len(levels), {})
    words = [words_of.get(str(g).split(" ")[0]) for g in levels]
    if len(levels) == 1:
        text = f"Share of employees still employed by tenure, for the one group large enough to show ({levels[0]})."
    elif len(levels) == 0:
        text = "No group is large enough to show retention curves."
    else:
        if not all(words):
            words = [re.sub(r" \([^()]*\)$", "", g) for g in levels]
        named = ", ".join(words[:-1]) + " and " + words[-1]
        text = (f"Share of employees still employed by tenure, in {len(levels)} curves: employees whose goals were "
                f"{named} {what} {when}.")
    if levels:
        text += " Curves stop where fewer people than the minimum reporting size remain."
        text += " The numbers under the chart (number at risk) count the people still followed at each tenure."
        if _at_risk_rises(km, levels, min_group_size):
            text += (" They rise at some tenures because people hired before the study window join the count at "
                     "the tenure they had when the window opened.")
    return Sentence(text)


def compare_naive_adjusted(programme) -> pd.DataFrame:
    """Whether a programme's naive and adjusted estimates differ beyond their uncertainty.

    The rule: the two differ when the naive point estimate lies outside the
    adjusted estimate's confidence interval *and* the adjusted point estimate
    lies outside the naive one's. Each estimate is then incompatible with the
    other at the interval's level, so the gap is more than sampling noise and
    can be called the bias the adjusted design removes. (The two are estimated
    on overlapping people, so a test of their difference would need their
    covariance; the rule needs none.)

    Parameters
    ----------
    programme : ProgramEffectResult
        A result of :func:`estimate_program_effect` (``tidy()`` rows ``adjusted`` and ``naive``).

    Returns
    -------
    pandas.DataFrame
        One row: ``naive, naive_low, naive_high, adjusted, adjusted_low,
        adjusted_high`` (ratios for retention, differences for engagement),
        ``scale`` and ``differs`` (bool).

    Raises
    ------
    ModelError
        The result has no ``naive`` and ``adjusted`` rows.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> tidy = pd.DataFrame({"method": ["adjusted", "naive"], "term": ["x", "x"], "estimate": [0.2, 0.5],
    ...                      "conf_low": [0.1, 0.4], "conf_high": [0.3, 0.6]})
    >>> res = ar.ModelResult("programme", tidy, pd.DataFrame(), outcome="engagement")
    >>> bool(ar.compare_naive_adjusted(res)["differs"].iloc[0])
    True
    """
    table = programme.tidy()
    if "method" not in table or not {"naive", "adjusted"} <= set(table["method"]):
        raise ModelError("compare_naive_adjusted needs a programme effect with 'naive' and 'adjusted' rows "
                         "(ar.estimate_program_effect).")
    ratio = _is_ratio(programme) or "exp_estimate" in table
    cols = ("exp_estimate", "exp_conf_low", "exp_conf_high") if ratio and "exp_estimate" in table else (
        "estimate", "conf_low", "conf_high")
    values = {m: table.loc[table["method"] == m, list(cols)].iloc[0].astype(float).to_numpy() for m in ("naive", "adjusted")}
    naive, adjusted = values["naive"], values["adjusted"]
    differs = bool(not (adjusted[1] <= naive[0] <= adjusted[2]) and not (naive[1] <= adjusted[0] <= naive[2]))
    return pd.DataFrame({"naive": [naive[0]], "naive_low": [naive[1]], "naive_high": [naive[2]],
                         "adjusted": [adjusted[0]], "adjusted_low": [adjusted[1]], "adjusted_high": [adjusted[2]],
                         "scale": ["ratio" if ratio else "difference"], "differs": [differs]})


def describe_naive_adjusted(programme, *, measure: str | None = None) -> Sentence:
    """Say whether the careful programme comparison removes a bias, only when the data show one.

    Applies the rule of :func:`compare_naive_adjusted`: "the gap is the bias
    the careful comparison removes" only when naive and adjusted estimates
    each lie outside the other's interval; otherwise the sentence says the
    two agree within their uncertainty.

    Parameters
    ----------
    programme : ProgramEffectResult
        A result of :func:`estimate_program_effect`.
    measure : str, optional
        The estimate's name; "exit rate ratio" for retention, "difference" otherwise.

    Returns
    -------
    Sentence
        Two sentences.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> tidy = pd.DataFrame({"method": ["adjusted", "naive"], "term": ["x", "x"], "estimate": [0.2, 0.21],
    ...                      "conf_low": [0.1, 0.11], "conf_high": [0.3, 0.31]})
    >>> res = ar.ModelResult("programme", tidy, pd.DataFrame(), outcome="engagement")
    >>> "agree within their uncertainty" in ar.describe_naive_adjusted(res)
    True
    """
    row = compare_naive_adjusted(programme).iloc[0]
    ratio = row["scale"] == "ratio"
    measure = measure or ("exit rate ratio" if ratio else "difference")
    ci = _ci_label(programme)
    naive = format_estimate(row["naive"], row["naive_low"], row["naive_high"], ci=ci)
    adjusted = format_estimate(row["adjusted"], row["adjusted_low"], row["adjusted_high"], ci=ci)
    text = (f"The naive comparison (teams of every manager who ever took the programme against all other teams) "
            f"gives {'an' if measure[:1] in 'aeiou' else 'a'} {measure} of {naive}; the careful comparison (matched teams, from the manager's start date) "
            f"gives {adjusted}.")
    if row["differs"]:
        text += (" Each lies outside the other's interval, so the gap between the two is the bias the careful "
                 "comparison removes.")
    else:
        text += (" The two agree within their uncertainty (each lies inside the other's interval), so these data "
                 "show no bias that the careful comparison removes; it is still the estimate to quote.")
    return Sentence(text)


#: What the HR data do not hold, so no model here can adjust for it.
_UNMEASURED = ("pay and pay changes", "workload", "commute", "personal circumstances", "the outside job market")


def describe_unadjusted(*results) -> Sentence:
    """Say what the models could not adjust for, reading what they did adjust for from their formulas.

    The manager is named according to the fitted terms: "manager qualities
    other than their review rating" only when every model given has
    ``manager_rating``; otherwise the sentence says which model leaves the
    rating out.

    Parameters
    ----------
    *results : ModelResult
        Fitted models with a ``formula`` in ``glance()``, in the order named
        (keyword-free; pass ``(name, result)`` pairs to name them).

    Returns
    -------
    Sentence
        One sentence.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> cox = ar.ModelResult("cox", pd.DataFrame({"term": ["x"]}), pd.DataFrame({"formula": ["alignment_cascade"]}))
    >>> ar.describe_unadjusted(("retention", cox))
    Not adjusted for what the HR data do not hold: pay and pay changes, workload, commute, personal circumstances, the outside job market, and the manager's qualities, including their review rating (the retention model leaves it out).
    """
    named = [r if isinstance(r, tuple) else ("", r) for r in results]
    without = [name for name, r in named if "manager_rating" not in _formula_terms(r)]
    listed = ", ".join(_UNMEASURED)
    if not without:
        manager = "and manager qualities other than their review rating"
    else:
        which = [w for w in without if w]
        where = (f" (the {' and '.join(which)} model{'s' if len(which) > 1 else ''} "
                 f"leave{'' if len(which) > 1 else 's'} it out)") if which else ""
        manager = f"and the manager's qualities, including their review rating{where}"
    return Sentence(f"Not adjusted for what the HR data do not hold: {listed}, {manager}.")


#: Column headers for leaders (analysis-table and summary column names -> plain words).
_PLAIN_COLUMNS = {
    "n_people": "People", "n": "Observations", "mean": "Average", "median": "Median", "sd": "Spread (SD)",
    "q25": "Lower quarter", "q75": "Upper quarter", "department": "Department", "job_level": "Job level",
    "location": "Location", "gender": "Gender", "estimate": "Estimate", "conf_low": "Lower limit",
    "conf_high": "Upper limit", "measure": "Measure", "std_error": "Standard error",
    "rel_wave": "Survey waves since the manager's start", "n_items": "Items",
}
#: Bookkeeping columns of the privacy gate, never shown to leaders.
_GATE_COLUMNS = ("suppressed", "suppression", "measure")


def plain_table(table: pd.DataFrame, *, index: str | None = None, digits: int = 2) -> pd.DataFrame:
    """Make a summary table readable for leaders: plain headers, no gate bookkeeping, "–" for suppressed cells.

    Parameters
    ----------
    table : pandas.DataFrame
        A summary table that went through :func:`suppress_small_groups`
        (e.g. :func:`alignment_by_group`).
    index : str or list of str, optional
        Column(s) to use as the row labels (a bookkeeping column named here,
        such as ``measure``, is kept as a label).
    digits : int, default 2
        Decimals of non-integer numbers.

    Returns
    -------
    pandas.DataFrame
        Text cells: the ``suppressed``/``suppression``/``measure`` columns are
        dropped, known columns renamed (``n_people`` -> "People", ``mean`` ->
        "Average", ...), other names written with spaces and a capital, and
        suppressed (missing) cells shown as "–".

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> t = pd.DataFrame({"department": ["A", "B"], "n_people": [12, None], "mean": [0.612, None],
    ...                   "suppressed": [False, True]})
    >>> ar.plain_table(t, index="department").to_dict("index")
    {'A': {'People': '12', 'Average': '0.61'}, 'B': {'People': '–', 'Average': '–'}}
    """
    keys = [] if index is None else [index] if isinstance(index, str) else list(index)
    out = table.drop(columns=[c for c in _GATE_COLUMNS if c in table.columns and c not in keys])
    if keys:
        out = out.set_index(keys if len(keys) > 1 else keys[0])
        out.index.names = [_PLAIN_COLUMNS.get(k, k.replace("_", " ").capitalize()) for k in keys]

    def column(col: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_bool_dtype(col) else None
        if numbers is None or numbers.notna().sum() < col.notna().sum():
            return col.astype(object).map(lambda x: "–" if pd.isna(x) else str(x))
        whole = bool((numbers.dropna() % 1 == 0).all())
        return numbers.map(lambda x: "–" if pd.isna(x) else f"{x:.0f}" if whole else f"{x:.{digits}f}")

    out = out.apply(column)
    return out.rename(columns=lambda c: _PLAIN_COLUMNS.get(c, str(c).replace("_", " ").capitalize()))


# ---------------------------------------------------------------- sensitivity analyses beside the primary model

#: How each kind of fitted model is named in a sentence.
_MODEL_WORDS = {
    "mixed": "a linear mixed model",
    "ols": "ordinary least squares",
    "within": "a within-person model (each person compared with themselves)",
    "logit": "a logistic regression",
    "cox": "a Cox model",
    "cause_specific_cox": "a cause-specific Cox model (one model per kind of exit)",
    "discrete_time": "a discrete-time model (the chance of leaving in each period of tenure)",
    "ordinal": "a proportional-odds model",
}


def _who(column: str) -> str:
    """``manager_id`` -> ``manager``: the unit an id column counts."""
    return column[:-3].replace("_", " ") if column.endswith("_id") else column.replace("_", " ")


def _errors_words(cov_type) -> str | None:
    """The ``cov_type`` of a glance row in words (``"cluster: manager_id"`` -> "errors clustered by manager")."""
    if not isinstance(cov_type, str) or not cov_type:
        return None
    kind, _, columns = cov_type.partition(":")
    units = [_who(c.strip()) for c in columns.split("+") if c.strip()]
    if kind.strip() == "cluster" and units:
        return "standard errors clustered by " + _listed(units)
    if kind.strip().startswith("random intercept") and units:
        return "a random intercept for each " + _listed(units)
    return None


def _model_row(result, term: str, outcome: str | None) -> pd.Series:
    """The tidy row of ``term`` (for a model with one row per cause, the cause the primary outcome names)."""
    table = result.tidy()
    if "method" in table.columns and (table["method"] == "adjusted").any():
        table = table.loc[table["method"] == "adjusted"]
    if "cause" in table.columns:
        causes = table["cause"].dropna().unique().tolist()
        named = [c for c in causes if outcome and str(c) in outcome]
        if len(named) != 1:
            raise ModelError(f"Cannot tell which cause of the {result.name} model matches the primary outcome "
                             f"{outcome!r} (causes: {causes}).")
        table = table.loc[table["cause"] == named[0]]
    rows = table.loc[table["term"] == term]
    if rows.empty:
        raise ModelError(f"The {result.name} model has no term {term!r} (terms: {table['term'].tolist()}).")
    return rows.iloc[0]


def _numbers(result, row: pd.Series) -> tuple[float, float, float]:
    cols = (["exp_estimate", "exp_conf_low", "exp_conf_high"] if result.scale == "ratio" and "exp_estimate" in row
            else ["estimate", "conf_low", "conf_high"])
    return tuple(float(row[c]) for c in cols)


def _n_of(result) -> tuple[float, float]:
    """Rows and people a model used (``n`` and ``n_subjects`` or the employee groups; NaN when unknown)."""
    g = result.glance()
    first = g.iloc[0] if len(g) else pd.Series(dtype=object)
    n = first.get("n", np.nan)
    people = first.get("n_subjects", np.nan)
    return (float(n) if pd.notna(n) else np.nan, float(people) if pd.notna(people) else np.nan)


def _reason(primary, other, term: str, values, ref, *, data, name: str) -> str:
    """Why ``other`` differs from ``primary``, read from the two fitted models (and the data when given)."""
    parts = []
    design = primary.glance().iloc[0].get("design") if len(primary.glance()) else None
    if isinstance(design, str):
        g = primary.glance().iloc[0]
        covariates = [_ADJUST_LABELS.get(v, _label(v).split(" (")[0]) for v in _formula_terms(other) if v != term]
        n = _n_of(other)[0]
        parts.append(f"it is {_MODEL_WORDS.get(other.name, other.name.replace('_', ' '))}"
                     + (f" on {n:,.0f} rows" if pd.notna(n) else "")
                     + (f", adjusting for {_listed(covariates)} inside the model" if covariates else "")
                     + f", while the primary {design} design compares the teams of {int(g['n_treated']):,} enrolling "
                       f"managers with those of {int(g['n_controls']):,} comparable managers from each enrolment date")
        return _agreement(parts, values, ref)
    if other.name != primary.name:
        parts.append(f"it is {_MODEL_WORDS.get(other.name, other.name.replace('_', ' '))} rather than "
                     f"{_MODEL_WORDS.get(primary.name, primary.name.replace('_', ' '))}")
    if (other.measure or "") != (primary.measure or "") and other.measure and primary.measure:
        parts.append(f"it estimates {'an' if other.measure[:1] in 'aeiou' else 'a'} {other.measure}, not "
                     f"{'an' if primary.measure[:1] in 'aeiou' else 'a'} {primary.measure}")
    errors = [_errors_words(r.glance().iloc[0].get("cov_type")) for r in (primary, other)]
    if errors[1] and errors[1] != errors[0]:
        parts.append(f"it has {errors[1]}" + (f" (the primary model: {errors[0]})" if errors[0] else ""))
    mine, theirs = _formula_terms(primary), _formula_terms(other)
    added = [v for v in theirs if v not in mine and v != term]
    dropped = [v for v in mine if v not in theirs and v != term]
    if added:
        parts.append("it also adjusts for " + _listed([_ADJUST_LABELS.get(v, _label(v).split(" (")[0]) for v in added]))
    if dropped:
        parts.append("it leaves out " + _listed([_ADJUST_LABELS.get(v, _label(v).split(" (")[0]) for v in dropped]))
    kinds = [set(_categorical_terms(_glance_formula(r))) if _glance_formula(r) else set() for r in (primary, other)]
    as_number = [v for v in theirs if v in mine and v in kinds[0] and v not in kinds[1]]
    as_categories = [v for v in theirs if v in mine and v in kinds[1] and v not in kinds[0]]
    if as_number:
        parts.append("it takes " + _listed([_label(v).split(" (")[0] for v in as_number])
                     + " as a number, where the primary model compares categories")
    if as_categories:
        parts.append("it compares categories of " + _listed([_label(v).split(" (")[0] for v in as_categories])
                     + ", where the primary model takes a number")
    n_primary, n_other = _n_of(primary)[0], _n_of(other)[0]
    if pd.notna(n_primary) and pd.notna(n_other) and n_primary != n_other:
        text = f"it uses {n_other:,.0f} rows against the primary model's {n_primary:,.0f}"
        if data is not None and n_other < n_primary and added:
            missing = [v for v in added if v in data.columns and data[v].isna().any()]
            if missing:
                gone = int(data[missing].isna().any(axis=1).sum())
                text += (f" ({gone:,} rows have no value of " + _listed([_ADJUST_LABELS.get(v, _label(v).split(' (')[0])
                                                                         for v in missing]) + ")")
        parts.append(text)
    if not parts:
        parts.append("it is fitted the same way as the primary model")
    return _agreement(parts, values, ref)


def _agreement(parts: list[str], values, ref) -> str:
    """The reasons, then whether the two estimates agree within their uncertainty."""
    inside = ref[1] <= values[0] <= ref[2] and values[1] <= ref[0] <= values[2]
    agree = ("the two agree within their uncertainty (each lies inside the other's interval)" if inside else
             "the two differ beyond their uncertainty (one lies outside the other's interval)")
    text = "; ".join(parts)
    return f"It differs from the primary analysis in that {text}; {agree}."


def compare_with_primary(primary, term: str, *, data: pd.DataFrame | None = None, **sensitivity) -> pd.DataFrame:
    """Set sensitivity analyses beside the primary model's estimate of one term, each with why it differs.

    The reasons are read from the fitted models: the kind of model, the
    measure, how errors are computed, the covariates added or left out, and
    the rows used (and, with ``data``, how many rows an added covariate
    leaves out); then whether the two estimates agree within their
    uncertainty (each inside the other's interval).

    Parameters
    ----------
    primary : ModelResult
        The primary model (e.g. ``primary_analysis(clean).engagement``).
    term : str
        The term compared (``"alignment_cascade"``).
    data : pandas.DataFrame, optional
        The data the models were fitted on, to count the rows an added covariate leaves out.
    **sensitivity : ModelResult
        The sensitivity analyses, by name (the name, with ``_`` as spaces,
        labels the row). For a model with one row per kind of exit, the
        kind the primary model's outcome names is used.

    Returns
    -------
    pandas.DataFrame
        ``analysis, role, estimate, conf_low, conf_high, n, reason``: the
        primary row first (``role`` "primary", no reason), then one row per
        sensitivity analysis (``role`` "sensitivity analysis"). Ratios are
        on the ratio scale.

    Raises
    ------
    ModelError
        A model lacks the term.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> from alignment_research.results import tidy_table
    >>> tidy = lambda b: tidy_table(["x"], [b], [0.05])
    >>> main = ar.ModelResult("mixed", tidy(0.30), pd.DataFrame({"n": [500], "formula": ["y ~ x + z"]}))
    >>> other = ar.ModelResult("ols", tidy(0.32), pd.DataFrame({"n": [500], "formula": ["y ~ x"]}))
    >>> table = ar.compare_with_primary(main, "x", least_squares=other)
    >>> table["role"].tolist()
    ['primary', 'sensitivity analysis']
    >>> print(table["reason"].iloc[1])
    It differs from the primary analysis in that it is ordinary least squares rather than a linear mixed model; it leaves out z; the two agree within their uncertainty (each lies inside the other's interval).
    """
    outcome = primary.outcome
    ref = _numbers(primary, _model_row(primary, term, outcome))
    rows = [{"analysis": "primary analysis", "role": "primary", "estimate": ref[0], "conf_low": ref[1],
             "conf_high": ref[2], "n": _n_of(primary)[0], "reason": ""}]
    for name, other in sensitivity.items():
        values = _numbers(other, _model_row(other, term, outcome))
        rows.append({"analysis": name.replace("_", " "), "role": "sensitivity analysis", "estimate": values[0],
                     "conf_low": values[1], "conf_high": values[2], "n": _n_of(other)[0],
                     "reason": _reason(primary, other, term, values, ref, data=data, name=name)})
    return pd.DataFrame(rows)


def describe_sensitivity(primary, term: str, *, data: pd.DataFrame | None = None, **sensitivity) -> Sentence:
    """Word the primary estimate of a term, then each sensitivity analysis beside it with why it differs.

    Parameters
    ----------
    primary : ModelResult
        The primary model.
    term : str
        The term compared.
    data : pandas.DataFrame, optional
        The models' data (see :func:`compare_with_primary`).
    **sensitivity : ModelResult
        The sensitivity analyses, by name.

    Returns
    -------
    Sentence
        "Primary estimate of ...", then one "Sensitivity analysis, <name>: ..." per model.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> from alignment_research.results import tidy_table
    >>> tidy = lambda b: tidy_table(["x"], [b], [0.05])
    >>> main = ar.ModelResult("mixed", tidy(0.30), pd.DataFrame({"n": [500], "formula": ["y ~ x + z"]}))
    >>> other = ar.ModelResult("ols", tidy(0.62), pd.DataFrame({"n": [500], "formula": ["y ~ x + z"]}))
    >>> print(ar.describe_sensitivity(main, "x", least_squares=other))
    Primary estimate of the effect of x: 0.30 (95% CI 0.20–0.40). Sensitivity analysis, least squares: 0.62 (95% CI 0.52–0.72). It differs from the primary analysis in that it is ordinary least squares rather than a linear mixed model; the two differ beyond their uncertainty (one lies outside the other's interval).
    """
    table = compare_with_primary(primary, term, data=data, **sensitivity)
    ci = _ci_label(primary)
    measure = f" ({primary.measure})" if primary.scale == "ratio" and primary.measure else ""
    first = table.iloc[0]
    parts = [f"Primary estimate of the effect of {_label(term).split(' (')[0]}{measure}: "
             f"{format_estimate(first['estimate'], first['conf_low'], first['conf_high'], ci=ci)}."]
    for _, r in table.iloc[1:].iterrows():
        parts.append(f"Sensitivity analysis, {r['analysis']}: "
                     f"{format_estimate(r['estimate'], r['conf_low'], r['conf_high'], ci=ci)}. {r['reason']}")
    return paragraph(*parts)
