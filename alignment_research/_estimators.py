"""Shared estimation engines: one logistic regression, one fixed-effects demeaner, one CR1 variance.

Every model that needs one of these calls it from here, so a rule (when a
logistic fit counts as separated, how clusters are corrected) is written once.

- :func:`fit_logistic` — Newton-Raphson for a (weighted) logistic regression,
  with the toolkit's one separation rule (:data:`SEPARATION_RULE`).
- :func:`demean` — sweep out one or several sets of fixed effects by
  alternating projections (exact in one pass for a single set).
- :func:`cluster_robust_cov` — the CR1 sandwich ``G/(G-1) (N-1)/(N-K)``, as
  statsmodels' ``cov_type="cluster"``, Stata's ``vce(cluster)`` and R's
  ``sandwich::vcovCL(type = "HC1")``; multiway by inclusion-exclusion over the
  intersections of the cluster dimensions, as ``vcovCL(cluster = ~ a + b)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .errors import ModelError

__all__ = ["LogisticFit", "fit_logistic", "demean", "cluster_robust_cov", "cluster_codes", "SEPARATION_RULE"]

#: A fitted probability this close to 0 or 1 means the fit has run off to separation.
_EXTREME_PROBABILITY = 1e-10

#: The toolkit's one rule for (quasi-)complete separation of a logistic fit, in words.
SEPARATION_RULE = (
    "Newton-Raphson did not converge, an estimate is not finite, or a fitted probability is within "
    f"{_EXTREME_PROBABILITY:g} of 0 or 1"
)


@dataclass(frozen=True)
class LogisticFit:
    """The state of a fitted logistic regression.

    Attributes
    ----------
    params : ndarray
        Coefficients (log odds ratios), one per column of the design.
    cov : ndarray
        Model-based covariance: the inverse of the Fisher information.
    fitted : ndarray
        Fitted probabilities, one per row.
    log_likelihood : float
        The (weighted) log-likelihood at ``params``.
    iterations : int
        Newton steps taken.
    converged : bool
        Whether the largest step fell below the tolerance.
    separated : bool
        Whether :data:`SEPARATION_RULE` holds: the estimates are not to be read.
    """

    params: np.ndarray
    cov: np.ndarray
    fitted: np.ndarray
    log_likelihood: float
    iterations: int
    converged: bool
    separated: bool

    @property
    def std_errors(self) -> np.ndarray:
        """Model-based standard errors."""
        return np.sqrt(np.diag(self.cov))

    def scores(self, X, y, weights=None) -> np.ndarray:
        """Per-row score contributions ``x_i w_i (y_i - p_i)`` (the meat of a sandwich)."""
        X = np.asarray(X, float)
        r = np.asarray(y, float) - self.fitted
        if weights is not None:
            r = r * np.asarray(weights, float)
        return X * r[:, None]


def _expit(eta: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-eta))


def _log_likelihood(eta: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    # log p = -log(1 + e^-eta), log(1 - p) = -log(1 + e^eta), written to avoid overflow
    return float(np.sum(w * (y * -np.logaddexp(0.0, -eta) + (1 - y) * -np.logaddexp(0.0, eta))))


def fit_logistic(X, y, *, weights=None, tol: float = 1e-12, max_iter: int = 100) -> LogisticFit:
    """Fit a logistic regression by Newton-Raphson (IRLS).

    Parameters
    ----------
    X : array-like, shape (n, k)
        The design matrix, intercept included when wanted.
    y : array-like, shape (n,)
        The 0/1 outcome.
    weights : array-like, optional
        Case weights (frequency or inverse-probability weights).
    tol : float, default 1e-12
        Convergence when the largest Newton step is below ``tol``.
    max_iter : int, default 100
        Newton steps at most.

    Returns
    -------
    LogisticFit
        Coefficients, model-based covariance, fitted probabilities, and the
        ``separated`` flag of :data:`SEPARATION_RULE`. Under separation the
        numbers are whatever the last step reached: callers warn and do not
        report them as estimates.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(6), [0, 1, 0, 1, 0, 1]])
    >>> fit = fit_logistic(X, np.array([0, 1, 1, 1, 0, 0]))
    >>> round(float(fit.params[1]), 4), fit.separated
    (1.3863, False)
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, float)
    beta = np.zeros(X.shape[1])
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):
        p = _expit(X @ beta)
        info = X.T @ (X * (w * p * (1 - p))[:, None])
        gradient = X.T @ (w * (y - p))
        try:
            step = np.linalg.solve(info, gradient)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(info, gradient, rcond=None)[0]
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            break
        if np.max(np.abs(step)) < tol:
            converged = True
            break
    eta = X @ beta
    p = _expit(eta)
    info = X.T @ (X * (w * p * (1 - p))[:, None])
    cov = np.linalg.pinv(info)
    separated = (
        not converged
        or not np.all(np.isfinite(beta))
        or bool(np.any((p < _EXTREME_PROBABILITY) | (p > 1 - _EXTREME_PROBABILITY)))
    )
    return LogisticFit(
        params=beta, cov=cov, fitted=p, log_likelihood=_log_likelihood(eta, y, w),
        iterations=iterations, converged=converged, separated=separated,
    )


def demean(values, codes, *, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Subtract fixed effects: the residual of ``values`` on the dummies of every set of ``codes``.

    Parameters
    ----------
    values : array-like, shape (n,) or (n, k)
        Columns to demean.
    codes : array of int, or list of them
        One integer code per row for each set of fixed effects (``0..L-1``).
    tol, max_iter : float, int
        Alternating projections stop when no group mean exceeds ``tol``.

    Returns
    -------
    ndarray
        Same shape as ``values``. With one set of codes this is the exact
        within transformation (each group's mean removed, one pass); with
        several it is the Frisch-Waugh-Lovell residual, by Gauss-Seidel sweeps.

    Raises
    ------
    ModelError
        When several sets of fixed effects do not converge.

    Examples
    --------
    >>> import numpy as np
    >>> demean(np.array([1.0, 3.0, 10.0, 14.0]), np.array([0, 0, 1, 1])).tolist()
    [-1.0, 1.0, -2.0, 2.0]
    """
    if isinstance(codes, np.ndarray) and codes.ndim == 1:
        codes = [codes]
    codes = [np.asarray(c, dtype=np.int64) for c in codes]
    out = np.array(values, dtype=float, copy=True)
    flat = out.ndim == 1
    if flat:
        out = out[:, None]
    counts = [np.bincount(c) for c in codes]
    for _ in range(max_iter):
        change = 0.0
        for c, n in zip(codes, counts):
            for j in range(out.shape[1]):
                means = np.bincount(c, weights=out[:, j], minlength=len(n)) / n
                out[:, j] -= means[c]
                change = max(change, float(np.max(np.abs(means))))
        if len(codes) == 1 or change < tol:
            return out[:, 0] if flat else out
    raise ModelError("The fixed effects did not converge; check that every team is surveyed in several waves.")


def cluster_codes(labels) -> np.ndarray:
    """Integer codes ``0..G-1`` for cluster labels (missing labels form no cluster of their own).

    Examples
    --------
    >>> cluster_codes(["b", "a", "b"]).tolist()
    [0, 1, 0]
    """
    return pd.factorize(pd.Series(labels).astype(str), sort=False)[0]


def cluster_robust_cov(
    scores, bread, clusters, *, n_params: int | None = None, multi0: bool = False, fix: bool = False
) -> np.ndarray:
    """CR1 cluster-robust covariance, one-way or multiway (Cameron, Gelbach and Miller).

    One way: ``bread · meat · bread · G/(G-1) · (N-1)/(N-K)``. Several ways:
    inclusion-exclusion over every intersection ``S`` of the cluster
    dimensions, ``bread · Σ_S (-1)^(|S|+1) G_S/(G_S-1) meat_S · bread · (N-1)/(N-K)``,
    each piece with its own ``G_S/(G_S-1)`` — what R's
    ``sandwich::vcovCL(fit, cluster = ~ a + b, type = "HC1")`` computes with its
    defaults (``cadjust = TRUE``, ``multi0 = FALSE``, ``fix = FALSE``).

    Parameters
    ----------
    scores : array-like, shape (n, k)
        Per-row score contributions (for OLS ``x_i e_i``; for a logit
        ``x_i (y_i - p_i)``).
    bread : array-like, shape (k, k)
        The inverse Hessian: ``(X'X)^-1`` for OLS, the inverse information for a GLM.
    clusters : array of int, or list of them
        Cluster code per row, ``0..G-1``; a list gives one code array per
        dimension (multiway clustering).
    n_params : int, optional
        ``K`` of the small-sample factor: the number of estimated parameters,
        absorbed fixed effects included. Defaults to the columns of ``scores``.
    multi0 : bool, default False
        Multiway only: the intersection of all dimensions enters as the
        heteroskedasticity-robust HC0 piece (no ``G/(G-1)``, no ``(N-1)/(N-K)``),
        as sandwich's ``multi0 = TRUE``.
    fix : bool, default False
        Set negative eigenvalues of the result to zero (sandwich's ``fix =
        TRUE``); a multiway variance is not always positive semi-definite.

    Returns
    -------
    ndarray, shape (k, k)

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[1.0], [-1.0], [2.0], [-2.0]])
    >>> cluster_robust_cov(s, np.eye(1), np.array([0, 0, 1, 1])).tolist()
    [[0.0]]
    >>> cluster_robust_cov(s, np.eye(1), [np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])]).round(3).tolist()
    [[22.667]]
    """
    scores = np.asarray(scores, float)
    bread = np.asarray(bread, float)
    n, k = scores.shape
    big_k = k if n_params is None else int(n_params)
    if isinstance(clusters, (list, tuple)) and len(clusters) > 1:
        return _multiway_cov(scores, bread, [np.asarray(c, dtype=np.int64) for c in clusters],
                             n=n, big_k=big_k, multi0=multi0, fix=fix)
    if isinstance(clusters, (list, tuple)):
        clusters = clusters[0]
    clusters = np.asarray(clusters, dtype=np.int64)
    g = int(clusters.max()) + 1
    summed = np.column_stack([np.bincount(clusters, weights=scores[:, j], minlength=g) for j in range(k)])
    meat = summed.T @ summed
    factor = (g / (g - 1)) * ((n - 1) / (n - big_k))
    return bread @ meat @ bread * factor


def _intersection_codes(codes: list[np.ndarray]) -> np.ndarray:
    """Codes ``0..G-1`` of the cells where every one of ``codes`` is constant (their intersection)."""
    return np.unique(np.column_stack(codes), axis=0, return_inverse=True)[1].reshape(-1)


def _multiway_cov(scores, bread, codes, *, n, big_k, multi0, fix) -> np.ndarray:
    """Inclusion-exclusion over the intersections of ``codes`` (sandwich's ``meatCL``, ``type = "HC1"``)."""
    k = scores.shape[1]
    subsets = [s for size in range(1, len(codes) + 1) for s in combinations(range(len(codes)), size)]
    meat = np.zeros((k, k))
    for subset in subsets:
        sign = 1.0 if len(subset) % 2 else -1.0
        if multi0 and len(subset) == len(codes):
            # the HC0 piece: row-level scores, and the final (N-1)/(N-K) undone
            meat += sign * ((n - big_k) / (n - 1)) * (scores.T @ scores)
            continue
        cell = codes[subset[0]] if len(subset) == 1 else _intersection_codes([codes[i] for i in subset])
        g = int(cell.max()) + 1
        summed = np.column_stack([np.bincount(cell, weights=scores[:, j], minlength=g) for j in range(k)])
        meat += sign * (g / (g - 1)) * (summed.T @ summed)
    cov = bread @ meat @ bread * ((n - 1) / (n - big_k))
    if fix:
        values, vectors = np.linalg.eigh(cov)
        if np.any(values < 0):
            cov = (vectors * np.maximum(values, 0.0)) @ vectors.T
    return cov
