"""Checks every model shares: clusters, finite values, separation, variance components (private).

Each ``fit_*`` function calls these instead of carrying its own copy, so the
rules (and their wording) are the same everywhere:

* :func:`check_finite` refuses infinite values (a ``ModelError`` naming the
  column and the count);
* :func:`check_clusters` refuses cluster-robust errors with one cluster and
  warns below :data:`FEW_CLUSTERS`;
* :func:`check_estimates` flags separation and absurd estimates (a level with
  no events, a log ratio beyond :data:`MAX_LOG_RATIO`, a standard error far
  above the others);
* :func:`check_variance_components` refuses random effects that the data
  cannot identify and warns when they are barely identified.

Every warning goes through :func:`warn_caveat`, which raises a
``StatisticalWarning`` at the user's call and returns the same sentence for
the result's ``caveats``, so it survives where warnings are silenced.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pandas as pd

from .errors import ModelError, StatisticalWarning

__all__: list[str] = []

#: Below this many clusters, cluster-robust standard errors are flagged as unreliable.
FEW_CLUSTERS = 30
#: A log hazard/odds ratio beyond this (per level, or per SD of a continuous covariate) is absurd.
MAX_LOG_RATIO = 10.0
#: A (standardised) standard error above this multiple of the median one signals separation.
MAX_SE_RATIO = 100.0
#: Below this many groups with more than one row, a random-intercept variance is barely identified.
FEW_GROUPS = 5

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """Stack level of the first frame outside the package (where the user called us)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level - 1


def warn_caveat(text: str) -> str:
    """Raise ``text`` as a StatisticalWarning at the user's call; return it for ``caveats``."""
    warnings.warn(text, StatisticalWarning, stacklevel=_user_stacklevel())
    return text


# --------------------------------------------------------------------------- values
def check_finite(data: pd.DataFrame, columns, *, what: str = "The data") -> None:
    """Raise ModelError when a numeric column used by a model holds inf or -inf."""
    for column in dict.fromkeys(c for c in columns if c is not None and c in data.columns):
        values = data[column]
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            continue
        arr = values.to_numpy(dtype=float, na_value=np.nan)
        infinite = np.isinf(arr)
        if infinite.any():
            first = data.index[np.flatnonzero(infinite)[:1]].tolist()[0]  # a plain Python label
            raise ModelError(
                f"{what}: column `{column}` has {int(infinite.sum())} infinite value(s) (inf or -inf; first in row "
                f"{first!r}); a model cannot use them. Clean or cap them first, e.g. "
                f"data[{column!r}].replace([np.inf, -np.inf], np.nan) to leave those rows out, or .clip(upper=...)."
            )


# --------------------------------------------------------------------------- clusters
def check_clusters(labels, column: str) -> list[str]:
    """Refuse cluster-robust errors with fewer than 2 clusters; warn (and return a caveat) below 30.

    Parameters
    ----------
    labels : array-like
        The cluster label of every row used by the model.
    column : str
        The cluster column (named in the message).

    Returns
    -------
    list of str
        The caveat (empty when there are enough clusters).
    """
    n_clusters = int(pd.Series(np.asarray(labels)).nunique())
    if n_clusters < 2:
        raise ModelError(
            f"Cluster-robust standard errors need at least 2 clusters, but the cluster column `{column}` has "
            f"{n_clusters} distinct value(s) in the rows used; with one cluster the robust variance is zero. "
            "Drop `cluster=` (model-based errors) or cluster on a column with many values (e.g. manager_id)."
        )
    if n_clusters < FEW_CLUSTERS:
        return [warn_caveat(
            f"Only {n_clusters} clusters in `{column}`: cluster-robust standard errors are unreliable (usually too "
            f"small) with fewer than about {FEW_CLUSTERS} clusters; read the intervals as a lower bound on the "
            "uncertainty."
        )]
    return []


# --------------------------------------------------------------------------- separation
def _is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def _empty_level(x: np.ndarray, y: np.ndarray, kind: str) -> str | None:
    """Why a 0/1 column separates the outcome, or None. ``kind``: events, binary or ordinal."""
    reasons = []
    for value, rows in ((1, x == 1), (0, x == 0)):
        n = int(rows.sum())
        if n == 0:
            continue
        yy = y[rows]
        where = "its rows" if value == 1 else "the other rows"
        if kind == "events" and yy.sum() == 0:
            reasons.append(f"no events among {where} ({n} row(s))")
        elif kind == "binary" and (yy.sum() == 0 or yy.sum() == n):
            reasons.append(f"{'no' if yy.sum() == 0 else 'only'} events among {where} ({n} row(s))")
        elif kind == "ordinal" and (yy.max() == 0 or yy.min() == y.max()):
            reasons.append(f"all of {where} ({n}) in the {'lowest' if yy.max() == 0 else 'highest'} category")
    return "; ".join(reasons) or None


def check_estimates(terms, estimates, std_errors, *, model: str, X=None, y=None, kind: str = "events",
                    converged: bool = True) -> list[str]:
    """Flag separation and absurd estimates of a ratio model; warn once and return the caveat.

    A term is flagged when its 0/1 column leaves a level without events (or,
    for a binary outcome, with only events; for an ordinal one, all in an end
    category), when its log ratio is not finite or beyond ``MAX_LOG_RATIO``
    (per level of a 0/1 covariate, per SD of a continuous one), or when its
    standard error (per SD) exceeds ``MAX_SE_RATIO`` times the median of the
    terms. Numbers are left as they are: the caveat says not to read them.

    Parameters
    ----------
    terms : sequence of str
        Term names, aligned with ``estimates`` and ``std_errors``.
    estimates, std_errors : array-like
        Log hazard or odds ratios and their standard errors.
    model : str
        How the model is named in the message (e.g. ``"Cox model 'x + C(g)'"``).
    X : DataFrame, optional
        The design columns of ``terms`` (for the per-level and per-SD checks).
    y : array-like, optional
        The outcome per row of ``X``: 0/1 events, or ordinal codes 0..J-1.
    kind : {"events", "binary", "ordinal"}
        ``events`` (Cox: a level without events), ``binary`` (logit) or ``ordinal``.
    converged : bool
        Whether the fit converged; if not, every term is named as unreliable.

    Returns
    -------
    list of str
        One caveat naming the terms, or an empty list.
    """
    terms = list(terms)
    est = np.asarray(estimates, float)
    se = np.asarray(std_errors, float)
    scale = np.ones(len(terms))
    binary = np.zeros(len(terms), dtype=bool)
    if X is not None:
        for i, term in enumerate(terms):
            if term in X.columns:
                x = X[term].to_numpy(float)
                binary[i] = _is_binary(x)
                if not binary[i]:
                    sd = float(np.std(x))
                    scale[i] = sd if sd > 0 else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        std_est, std_se = est * scale, se * scale
    finite_se = std_se[np.isfinite(std_se)]
    median_se = float(np.median(finite_se)) if len(finite_se) else np.nan
    flagged: dict[str, list[str]] = {}
    for i, term in enumerate(terms):
        why = []
        if X is not None and y is not None and binary[i] and term in X.columns:
            level = _empty_level(X[term].to_numpy(float), np.asarray(y, float), kind)
            if level:
                why.append(level)
        if not np.isfinite(est[i]) or not np.isfinite(se[i]):
            why.append(f"estimate {est[i]:.3g} with standard error {se[i]:.3g} is not finite")
        elif abs(std_est[i]) > MAX_LOG_RATIO:
            per = "" if binary[i] or X is None else " per SD"
            why.append(f"log ratio{per} {std_est[i]:.1f}, beyond ±{MAX_LOG_RATIO:g}: a ratio of about "
                       f"e^{std_est[i]:.0f}")
        elif len(finite_se) >= 3 and std_se[i] > MAX_SE_RATIO * median_se:
            why.append(f"its standard error is {std_se[i] / median_se:.0f} times the median of the terms")
        if why:
            flagged[term] = why
    if not flagged and converged:
        return []
    if not flagged:
        flagged = {t: ["the fit did not converge"] for t in terms}
    detail = "; ".join(f"`{t}` ({', '.join(w)})" for t, w in flagged.items())
    head = (f"The {model} did not converge to finite estimates" if not converged
            or any("beyond" in w or "not finite" in w for ws in flagged.values() for w in ws)
            else f"The {model} has unreliable estimates")
    return [warn_caveat(
        f"{head}: {detail}. This is (quasi-complete) separation or too few people in a category: the ratio runs "
        "off towards 0 or infinity and its interval means nothing. Treat these terms as not estimable: merge "
        "small categories, coarsen or drop the covariate."
    )]


# --------------------------------------------------------------------------- random effects
def check_variance_components(data: pd.DataFrame, groups: str, vc=None, vc_variables=()) -> list[str]:
    """Refuse random effects the data cannot identify; warn (and return caveats) when barely identified.

    Parameters
    ----------
    data : DataFrame
        The rows the mixed model uses.
    groups : str
        The random-intercept column.
    vc : str, optional
        A second grouping column, with ``groups`` nested within it.
    vc_variables : sequence of str
        Columns named by dict variance-component formulas.

    Returns
    -------
    list of str
        Caveats (empty when every variance is well identified).
    """
    caveats = []
    keys = [vc, groups] if isinstance(vc, str) else [groups]
    sizes = data.groupby(keys, sort=False, observed=True).size()
    repeated = int((sizes > 1).sum())
    if repeated == 0:
        raise ModelError(
            f"The random-intercept variance of `{groups}` is not identified: every one of its {len(sizes)} groups "
            "has one observation, so it cannot be told apart from the residual variance. Use fit_ols (one row per "
            "group), or a grouping with repeated rows."
        )
    if repeated < FEW_GROUPS:
        caveats.append(warn_caveat(
            f"The random-intercept variance of `{groups}` is barely identified: only {repeated} of its {len(sizes)} "
            f"groups have more than one observation (fewer than {FEW_GROUPS}); its variance and the ICC are very "
            "uncertain."
        ))
    outer = [vc] if isinstance(vc, str) else []
    for column in [*outer, *vc_variables]:
        if column == groups:
            continue
        levels = int(data[column].nunique())
        if levels < 2:
            raise ModelError(
                f"The variance component `{column}` is not identified: it has {levels} level(s) in the rows used, "
                "so its variance cannot be told apart from the residual variance. Drop `vc=` or use a column "
                "with several levels."
            )
        if isinstance(vc, str) and column == vc:
            per_level = data.groupby(vc, sort=False, observed=True)[groups].nunique()
            if int((per_level > 1).sum()) == 0:
                raise ModelError(
                    f"The variance components of `{vc}` and `{groups}` are not identified: every `{vc}` holds a "
                    f"single `{groups}`, so the two variances cannot be told apart. Drop `vc=`."
                )
        if levels < FEW_GROUPS:
            caveats.append(warn_caveat(
                f"The variance component `{column}` is barely identified: it has only {levels} levels (fewer than "
                f"{FEW_GROUPS}); its variance is very uncertain."
            ))
    return caveats
