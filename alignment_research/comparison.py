"""Model comparison: likelihood-ratio tests between nested fits and information criteria, as R's ``anova()``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import warn_caveat
from ._formula import split_formula
from .errors import ModelError
from .results import ModelResult

__all__ = ["compare_models", "COMPARISON_COLUMNS"]

#: The columns of :func:`compare_models`, in this order.
COMPARISON_COLUMNS = ["model", "n", "df", "log_likelihood", "aic", "bic", "deviance", "lr_statistic", "lr_df",
                      "p_value"]

#: Model kinds an LR test is defined for (``ModelResult.name``), and which kinds may be compared together.
#: A kind not listed is its own family and is compared when its ``glance()`` has ``log_likelihood``
#: and ``n_params`` or ``aic``. ``glmm``: a binomial mixed model, comparable with a logit.
_FAMILY = {"cox": "cox", "logit": "logit", "ordinal": "ordinal", "ols": "gaussian", "mixed": "gaussian",
           "glmm": "logit"}

#: Kinds with random effects, and the kinds without them they may be compared with (a variance on its boundary).
_RANDOM = {"mixed": "ols", "glmm": "logit"}


def compare_models(*results: ModelResult, test: str = "lr", names=None) -> pd.DataFrame:
    """Compare nested fits by likelihood-ratio tests, with AIC and BIC, as R's ``anova(m0, m1, ...)``.

    Parameters
    ----------
    *results : ModelResult
        Two or more fits of the same kind on the same rows, each nested in
        the next (or the previous): results of ``fit_cox``, ``fit_logit``,
        ``fit_ordinal``, ``fit_ols``, ``fit_cox(..., frailty=...)`` (its
        integrated likelihood, the frailty variance one more parameter, as a
        test of the frailty against the plain Cox fit) or ``fit_mixed`` (maximum likelihood,
        ``reml=False``; a linear mixed model may be compared with a
        ``fit_ols`` of the same fixed effects). One fit alone is compared
        with its null model (no covariates) where the fit knows that
        model's log-likelihood (Cox, logit, ordinal).
    test : {"lr"}, default "lr"
        The test: a likelihood-ratio (chi-square) test of each model against
        the one before it.
    names : sequence of str, optional
        Labels of the models in the ``model`` column (default: each fit's formula).

    Returns
    -------
    DataFrame
        One row per model in the order given: ``model, n, df, log_likelihood,
        aic, bic, deviance, lr_statistic, lr_df, p_value``. ``df`` is the
        number of estimated parameters (R's ``attr(logLik(fit), "df")``),
        ``deviance`` is ``-2 log_likelihood``, ``aic = deviance + 2 df`` and
        ``bic = deviance + log(n_bic) df`` with ``n_bic`` the number of
        events for a Cox model (R's ``BIC(coxph)``) and the rows otherwise.
        The test columns compare a row with the row before it (the larger
        model is the alternative), so the first row has none.
        ``attrs["caveats"]`` holds the caveats of the comparison.

    Raises
    ------
    ModelError
        Fewer than two models (and no known null model), a model kind
        without a likelihood, different kinds, different outcomes, different
        numbers of rows or events (missing values dropped different rows:
        fit every model on the same complete rows), two models with the same
        number of parameters (not nested), or REML mixed with ML fits.

    Warns
    -----
    StatisticalWarning
        Clustered standard errors (the LR test assumes independent rows),
        a smaller model whose terms are not all in the larger one (nesting
        cannot be checked from the terms), a variance component tested on
        its boundary (the chi-square p-value is conservative), REML fits
        compared on their random effects, and REML fits that differ in their
        fixed effects (then ``lr_statistic``, ``lr_df`` and ``p_value`` stay
        empty: refit with ``reml=False``). Each also goes into ``attrs["caveats"]``.

    See Also
    --------
    fit_cox, fit_logit, fit_ordinal, fit_mixed

    Notes
    -----
    The statistic is ``2 (logLik(larger) - logLik(smaller))`` on the
    difference in ``df`` degrees of freedom. The numbers match
    ``anova(coxph0, coxph1)`` (partial likelihood), ``anova(glm0, glm1,
    test = "LRT")``, ``anova(polr0, polr1)``, ``anova(lmer0, lmer1)`` for
    ML fits and ``lmtest::lrtest(lm0, lm1)``; ``AIC()`` and ``BIC()`` as R
    (for ``fit_ols`` the table's ``aic`` counts the residual variance as R
    does, one more parameter than statsmodels' ``glance()["aic"]``). R's
    ``anova()`` refits REML mixed models by ML; a result here does not carry
    its data, so compare ML fits (``fit_mixed(..., reml=False)``).

    Examples
    --------
    >>> import alignment_research as ar
    >>> cycles = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis.cycles
    >>> small = ar.fit_logit(cycles, "left_next_cycle ~ manager_program")
    >>> large = ar.fit_logit(cycles, "left_next_cycle ~ manager_program + n_goals")
    >>> table = ar.compare_models(small, large)
    >>> table["df"].tolist(), bool(table["lr_df"].iloc[1] == 1)
    ([2, 3], True)
    """
    if test != "lr":
        raise ModelError(f"The value for `test` must be one of ['lr'], but {test!r} was passed.")
    if not results:
        raise ModelError("compare_models needs fitted models, e.g. compare_models(small, large).")
    for i, res in enumerate(results):
        if not isinstance(res, ModelResult):
            raise ModelError(f"Argument {i + 1} of compare_models is a {type(res).__name__}, not a fitted model.")
        if res.name not in _FAMILY and "log_likelihood" not in res.stats:
            raise ModelError(
                f"compare_models compares fits with a likelihood ({sorted(_FAMILY)}, or any fit whose glance() "
                f"has log_likelihood); argument {i + 1} is a {res.name!r} result without one."
            )
    rows = [_model_row(res) for res in results]
    labels = [r["label"] for r in rows]
    if len(rows) == 1:
        null = _null_row(results[0], rows[0])
        if null is None:
            raise ModelError(
                f"compare_models needs two models to compare; a {results[0].name!r} fit does not know its null "
                "model's likelihood, so fit the intercept-only model too (e.g. 'outcome ~ 1') and pass both."
            )
        rows.insert(0, null)
        labels.insert(0, "null (no covariates)")
    if names is not None:
        labels = [str(x) for x in names]
        if len(labels) != len(rows):
            raise ModelError(f"`names` has {len(labels)} labels for {len(rows)} models.")
    caveats = _check_comparable(rows)
    table = pd.DataFrame({
        "model": labels,
        "n": [r["n"] for r in rows],
        "df": [r["df"] for r in rows],
        "log_likelihood": [r["loglik"] for r in rows],
    })
    dev = -2 * table["log_likelihood"].to_numpy(float)
    df = table["df"].to_numpy(float)
    table["aic"] = dev + 2 * df
    table["bic"] = dev + np.log([r["n_bic"] for r in rows]) * df
    table["deviance"] = dev
    stat, lr_df, p = [np.nan], [np.nan], [np.nan]
    for prev, cur in zip(rows[:-1], rows[1:]):
        small, large = (prev, cur) if cur["df"] > prev["df"] else (cur, prev)
        s = 2 * (large["loglik"] - small["loglik"])
        d = large["df"] - small["df"]
        stat.append(s)
        lr_df.append(d)
        p.append(float(stats.chi2.sf(max(s, 0.0), d)))
    table["lr_statistic"] = stat
    if all(np.isnan(x) or float(x).is_integer() for x in lr_df):
        table["lr_df"] = pd.array([None if np.isnan(x) else int(x) for x in lr_df], dtype="Int64")
    else:  # effective degrees of freedom of a penalised fit
        table["lr_df"] = np.asarray(lr_df, float)
    table["p_value"] = p
    if REML_FIXED_EFFECTS in caveats:  # no valid test: the columns stay empty, the warning says why
        table.loc[1:, ["lr_statistic", "p_value"]] = np.nan
        table["lr_df"] = pd.array([None] * len(table), dtype="Int64")
    table.attrs["caveats"] = caveats
    return table


#: The warning for REML fits with different fixed effects; their LR test columns are left empty.
REML_FIXED_EFFECTS = (
    "REML likelihoods of models with different fixed effects are not comparable (R's anova() refits them by ML "
    "first), so no likelihood-ratio test is given. Refit the models with fit_mixed(..., reml=False) and compare those."
)


def _model_row(res: ModelResult) -> dict:
    """What the comparison reads from one fit: all from ``glance()``, so any fit with these stats works."""
    if len(res.stats) != 1:
        raise ModelError(f"The {res.name!r} result has {len(res.stats)} rows in glance() (one per cause or group); "
                         "compare_models compares single fits.")
    g = res.stats.iloc[0]
    if "log_likelihood" not in g or pd.isna(g["log_likelihood"]):
        raise ModelError(f"The {res.name!r} fit has no log-likelihood in glance(); it cannot be compared.")
    loglik = float(g["log_likelihood"])
    frailty = "log_likelihood_integrated" in g and pd.notna(g["log_likelihood_integrated"])
    if frailty:  # a frailty: its integrated likelihood, with the fixed effects and the variance as parameters
        loglik = float(g["log_likelihood_integrated"])
        k = len(res.table) + 1
    elif "n_params" in g and pd.notna(g["n_params"]):
        k = float(g["n_params"])
    elif "aic" in g and pd.notna(g["aic"]):  # AIC = -2 logLik + 2 k (mixed models, and models of other helpers)
        k = float(np.round((float(g["aic"]) + 2 * loglik) / 2, 6))
    else:
        raise ModelError(f"The {res.name!r} fit has neither n_params nor aic in glance(); it cannot be compared.")
    if float(k).is_integer():
        k = int(k)
    family = _FAMILY.get(res.name, res.name)
    formula = str(g.get("formula", "")) if "formula" in g else ""
    lhs = None
    if family != "cox" and "~" in formula:
        lhs = split_formula(formula)[0]
    events = int(g["events"]) if "events" in g and pd.notna(g["events"]) else None
    n = int(g["n"])
    method = str(g["method"]) if "method" in g and pd.notna(g["method"]) else "ML"
    terms = [t for t in res.table["term"].astype(str) if t != "Intercept"] if "term" in res.table else []
    return dict(
        label=formula or res.name, name=res.name, family=family, loglik=loglik, df=k, n=n, events=events,
        n_bic=events if family == "cox" else n, lhs=lhs, outcome=res.outcome, method=method, terms=terms,
        cov_type=str(g.get("cov_type", "")), result=res, frailty=frailty,
    )


def _null_row(res: ModelResult, row: dict) -> dict | None:
    """The null model of a single fit, from what its ``glance()`` knows (None when it does not)."""
    g = res.stats.iloc[0]
    if row["family"] == "cox" and "log_likelihood_null" in g and not row["frailty"]:
        loglik, k = float(g["log_likelihood_null"]), 0
    elif row["family"] in ("logit", "ordinal") and "pseudo_r_squared" in g:
        share = 1 - float(g["pseudo_r_squared"])  # McFadden: logLik / logLik(null)
        if share <= 0:
            return None
        loglik = row["loglik"] / share
        k = 1 if row["family"] == "logit" else int(g["n_levels"]) - 1
    else:
        return None
    return {**row, "label": "null (no covariates)", "loglik": loglik, "df": k, "terms": [], "cov_type": "",
            "method": "ML", "result": None}


def _check_comparable(rows: list[dict]) -> list[str]:
    """Refuse comparisons an LR test does not answer; return the caveats of the ones it answers with care."""
    caveats: list[str] = []
    first = rows[0]
    for r in rows[1:]:
        if r["family"] != first["family"]:
            raise ModelError(
                f"compare_models compares fits of one kind; got a {first['name']!r} and a {r['name']!r} fit. "
                "Likelihoods of different model families are not comparable."
            )
        if r["lhs"] != first["lhs"] or r["outcome"] != first["outcome"]:
            raise ModelError(
                f"The models explain different outcomes ({first['lhs'] or first['outcome']!r} and "
                f"{r['lhs'] or r['outcome']!r}); an LR test compares models of one outcome."
            )
        if r["n"] != first["n"] or r["events"] != first["events"]:
            key, what = ("n", "rows") if r["n"] != first["n"] else ("events", "events")
            raise ModelError(
                f"The models were fitted on different numbers of {what} ({first[key]} in {first['label']!r}, "
                f"{r[key]} in {r['label']!r}): rows with "
                "missing values in a model's columns were dropped. Fit every model on the same complete rows, "
                "e.g. data.dropna(subset=<all columns of the largest model>)."
            )
    for a, b in zip(rows[:-1], rows[1:]):
        if a["df"] == b["df"]:
            raise ModelError(
                f"{a['label']!r} and {b['label']!r} have the same number of parameters ({a['df']}), so neither "
                "is nested in the other; an LR test needs a smaller model nested in a larger one (compare "
                "non-nested models by aic or bic)."
            )
        small, large = (a, b) if a["df"] < b["df"] else (b, a)
        if small["result"] is not None and not set(small["terms"]) <= set(large["terms"]):
            extra = sorted(set(small["terms"]) - set(large["terms"]))
            caveats.append(warn_caveat(
                f"The terms {extra} of {small['label']!r} are not in {large['label']!r}: check that the smaller "
                "model is nested in the larger one (the LR test assumes it is)."
            ))
    methods = {r["method"] for r in rows}
    if "REML" in methods:
        if methods != {"REML"}:
            raise ModelError(
                "Some mixed models were fitted by REML and others by ML; their likelihoods are not comparable. "
                "Refit every model with fit_mixed(..., reml=False)."
            )
        if any(r["name"] != "mixed" for r in rows) or len({tuple(sorted(r["terms"])) for r in rows}) > 1:
            caveats.append(warn_caveat(REML_FIXED_EFFECTS))
            return caveats
        caveats.append(warn_caveat(
            "The models are REML fits with the same fixed effects: the LR test compares their random effects "
            "(a variance tested at zero lies on the boundary, so the chi-square p-value is conservative)."
        ))
    names = {r["name"] for r in rows}
    if any(k in names and v in names for k, v in _RANDOM.items()):
        caveats.append(warn_caveat(
            "A mixed model is compared with a model without its random effect: the variance tested lies on the "
            "boundary (zero), so the chi-square p-value is conservative (about twice the mixture p-value)."
        ))
    if any(r.get("frailty") for r in rows):
        caveats.append(warn_caveat(
            "A frailty model enters with its integrated likelihood (glance()['log_likelihood_integrated']) and "
            "one parameter for the frailty variance: against the same model without the frailty, the variance "
            "tested lies on the boundary (zero), so the chi-square p-value is conservative (about twice the "
            "mixture p-value)."
        ))
    clustered = sorted({r["cov_type"] for r in rows if r["cov_type"].startswith("cluster")})
    if clustered:
        caveats.append(warn_caveat(
            f"The models have clustered standard errors ({', '.join(clustered)}), but a likelihood-ratio test "
            "assumes independent rows: its p-value ignores the clustering. Prefer the robust Wald tests of "
            "tidy() for the terms, or fit_mixed / a frailty model to model the clusters."
        ))
    return caveats
