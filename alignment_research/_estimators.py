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
- :func:`greedy_caliper_match` — greedy nearest-neighbour matching on a
  score within each risk set, all risk sets at once (no loop over people).
- :func:`wild_cluster_bootstrap` — the wild cluster restricted (WCR) bootstrap
  of one coefficient of a (weighted) least-squares fit: p-value and the
  confidence interval by test inversion, for few (treated) clusters.
- :func:`holm_adjust` — Holm's step-down adjusted p-values, for every family
  the toolkit adjusts (heterogeneity tests, the brief's paragraph, the claims
  scorecard).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np
import pandas as pd
from scipy import sparse

from .errors import ModelError

__all__ = [
    "LogisticFit", "fit_logistic", "demean", "cluster_robust_cov", "cluster_codes", "SEPARATION_RULE",
    "WildBootstrap", "wild_cluster_bootstrap", "WILD_WEIGHTS", "greedy_caliper_match", "holm_adjust",
]

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


#: Rows per block of a Newton step: a block's products stay in cache (twice as fast on 500,000 rows as whole arrays).
_BLOCK_ROWS = 16_384


def _newton_terms(X: np.ndarray, y: np.ndarray, w: np.ndarray | None, beta: np.ndarray) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Fisher information ``X' W p (1 - p) X`` and score ``X' W (y - p)`` at ``beta``, summed block by block.

    ``w=None`` means unit weights.
    """
    k = X.shape[1]
    info, gradient = np.zeros((k, k)), np.zeros(k)
    for s in range(0, len(y), _BLOCK_ROWS):
        x = X[s:s + _BLOCK_ROWS]
        p = _expit(x @ beta)
        if w is None:  # unit weights: multiplying by 1 changes no bit, so it is left out
            info += x.T @ (x * (p * (1 - p))[:, None])
            gradient += x.T @ (y[s:s + _BLOCK_ROWS] - p)
        else:
            ws = w[s:s + _BLOCK_ROWS]
            info += x.T @ (x * (ws * p * (1 - p))[:, None])
            gradient += x.T @ (ws * (y[s:s + _BLOCK_ROWS] - p))
    return info, gradient


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
    w = None if weights is None else np.asarray(weights, float)  # None: unit weights
    beta = np.zeros(X.shape[1])
    converged, iterations = False, 0
    for iterations in range(1, max_iter + 1):
        info, gradient = _newton_terms(X, y, w, beta)
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
    info, _ = _newton_terms(X, y, w, beta)
    cov = np.linalg.pinv(info)
    separated = (
        not converged
        or not np.all(np.isfinite(beta))
        or bool(np.any((p < _EXTREME_PROBABILITY) | (p > 1 - _EXTREME_PROBABILITY)))
    )
    return LogisticFit(
        params=beta, cov=cov, fitted=p,
        log_likelihood=_log_likelihood(eta, y, np.ones(len(y)) if w is None else w),
        iterations=iterations, converged=converged, separated=separated,
    )


def demean(values, codes, *, weights=None, tol: float = 1e-10, max_iter: int = 10_000) -> np.ndarray:
    """Subtract fixed effects: the residual of ``values`` on the dummies of every set of ``codes``.

    Parameters
    ----------
    values : array-like, shape (n,) or (n, k)
        Columns to demean.
    codes : array of int, or list of them
        One integer code per row for each set of fixed effects (``0..L-1``).
    weights : array-like, shape (n,), optional
        Positive case weights: each group's *weighted* mean is removed, the
        residual of weighted least squares on the dummies (the FWL step of a
        WLS fit). ``None`` is the unweighted transformation.
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
    result = np.array(values, dtype=float, copy=True)  # returned in the memory layout of ``values``
    flat = result.ndim == 1
    # the sweeps work on rows: in row-major order (the sparse product would copy column-major columns each time)
    out = np.ascontiguousarray(result[:, None] if flat else result)
    w = None if weights is None else np.asarray(weights, dtype=float)
    counts = [np.bincount(c) if w is None else np.bincount(c, weights=w) for c in codes]
    # each set's group sums of every column at once: its indicator matrix (groups x rows) times the columns,
    # which adds each group's rows in row order, as np.bincount does column by column (same bits). With
    # weights the matrix holds each row's weight, so it adds w * x: the same products as weighting the
    # columns first, without an n x k copy of them per sweep.
    entries = np.ones(len(out)) if w is None else w
    indicators = [sparse.csr_matrix((entries, (c, np.arange(len(c)))), shape=(len(n), len(c)))
                  for c, n in zip(codes, counts)]
    for _ in range(max_iter):
        change = 0.0
        for c, n, indicator in zip(codes, counts, indicators):
            means = indicator @ out
            means /= n[:, None]
            out -= means.take(c, axis=0)  # a row gather: several times faster than indexing ``means[c]``
            change = max(change, float(np.max(np.abs(means))) if means.size else 0.0)
        if len(codes) == 1 or change < tol:
            if out is not result and not flat:
                result[...] = out
                out = result
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
    """Codes ``0..G-1`` of the cells where every one of ``codes`` is constant (their intersection).

    The cells are numbered in the lexicographic order of their code tuples, as
    ``np.unique(np.column_stack(codes), axis=0, return_inverse=True)`` numbers
    them (the numbering orders the cluster sums, so it must not change). The
    tuples are read as one mixed-radix integer, which orders the same way and
    is ranked without sorting rows.
    """
    sizes = [int(c.max()) + 1 if len(c) else 1 for c in codes]
    if min((int(c.min()) for c in codes if len(c)), default=0) < 0 or np.prod(sizes, dtype=float) >= 2.0**62:
        return np.unique(np.column_stack(codes), axis=0, return_inverse=True)[1].reshape(-1)
    key = np.zeros(len(codes[0]), np.int64)
    for c, size in zip(codes, sizes):
        key = key * size + np.asarray(c, np.int64)
    span = int(np.prod(sizes, dtype=float))
    if span <= 8 * len(key) + (1 << 20):  # few enough possible cells: rank them by counting, in linear time
        present = np.bincount(key, minlength=span) > 0
        return (np.cumsum(present) - 1)[key]
    return np.unique(key, return_inverse=True)[1]


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


# --------------------------------------------------------------------------------------------
# Wild cluster restricted bootstrap
# --------------------------------------------------------------------------------------------

#: Cluster-level weight distributions of the wild bootstrap, each value equally likely: Rademacher
#: (``±1``) and Webb's six points (``±sqrt(1/2), ±1, ±sqrt(3/2)``; Webb 2014), both mean 0, variance 1.
WILD_WEIGHTS = {
    "rademacher": np.array([-1.0, 1.0]),
    "webb": np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)]),
}
_WILD_NAMES = {"rademacher": "Rademacher", "webb": "Webb"}
#: Relative tolerance under which a bootstrap |t| counts as equal to the observed one (the draws
#: ``w = 1`` and ``w = -1`` reproduce the observed |t| exactly, up to rounding).
_TIE = 1e-10
#: Draws evaluated at once (bounds the memory of the draws x clusters products).
_BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class WildBootstrap:
    """The wild cluster restricted bootstrap test of one coefficient, and its inverted interval.

    Attributes
    ----------
    estimate, std_error, statistic : float
        The coefficient, its CR1 standard error and the CR1 t statistic of ``null``.
    null : float
        The value tested for ``p_value``.
    p_value : float
        Symmetric bootstrap p-value: the share of draws with ``|t*| >= |t|``.
    conf_low, conf_high : float
        Every value the bootstrap test does not reject at ``alpha`` (``p > alpha``),
        found by bisection on each side; infinite when even far values are not rejected
        (too few distinct draws).
    n_boot : int
        Draws used (``len(weights) ** n_clusters`` when enumerated).
    weight_type : str
        ``"webb"`` or ``"rademacher"``.
    enumerated : bool
        Every weight pattern was used once (exact, no simulation error).
    n_clusters : int
    alpha : float
    """

    estimate: float
    std_error: float
    statistic: float
    null: float
    p_value: float
    conf_low: float
    conf_high: float
    n_boot: int
    weight_type: str
    enumerated: bool
    n_clusters: int
    alpha: float

    @property
    def method(self) -> str:
        """The inference in words, e.g. ``"wild cluster bootstrap (Webb, 9,999 draws, restricted null)"``."""
        draws = (f"all {self.n_boot:,} weight patterns of {self.n_clusters} clusters enumerated" if self.enumerated
                 else f"{self.n_boot:,} draws")
        return f"wild cluster bootstrap ({_WILD_NAMES[self.weight_type]}, {draws}, restricted null)"


def _cluster_sums(values: np.ndarray, clusters: np.ndarray, g: int) -> np.ndarray:
    """Column sums of ``values`` within each cluster: shape ``(g,)`` or ``(g, k)``."""
    if values.ndim == 1:
        return np.bincount(clusters, weights=values, minlength=g)
    return np.column_stack([np.bincount(clusters, weights=values[:, j], minlength=g) for j in range(values.shape[1])])


def _purged_residuals(u: np.ndarray, clusters: np.ndarray, g: int, fixed, weights) -> np.ndarray | None:
    """``R[:, j] = M_D (u 1_j)``: bootstrap cluster j's residuals purged of the fixed effects ``D`` (``None``
    without fixed effects: the residuals are then used as they are)."""
    if fixed is None:
        return None
    spread = np.zeros((len(u), g))
    spread[np.arange(len(u)), clusters] = u
    if weights is None:
        return demean(spread, fixed)
    root = np.sqrt(np.asarray(weights, float))[:, None]  # rows scaled by sqrt(w): purge by weighted means unscaled
    return root * demean(spread / root, fixed, weights=weights)


def _bootstrap_scores(h: np.ndarray, u: np.ndarray, X: np.ndarray, leverage_rows: np.ndarray, clusters: np.ndarray,
                      g: int, purged, cells: np.ndarray, n_cells: int) -> np.ndarray:
    """``S[c, j] = sum over rows i of variance cell c of h_i e_i``, where ``e`` are the residuals of refitting
    bootstrap cluster ``j``'s ``u`` alone: ``M_D (u 1_j)`` (``purged``; ``u 1_j`` without fixed effects) minus its
    fit on ``X``. ``leverage_rows`` holds each cell's sums of ``h X`` times ``bread``. A draw ``w`` then has cell
    scores ``S w``."""
    if purged is None:
        direct = np.zeros((n_cells, g))
        np.add.at(direct, (cells, clusters), h * u)
    else:
        direct = _cluster_sums(h[:, None] * purged, cells, n_cells)
    return direct - leverage_rows @ _cluster_sums(X * u[:, None], clusters, g).T


def _variance_pieces(codes) -> list[tuple[np.ndarray, int, float]]:
    """The CR1 variance's pieces over cluster dimensions ``codes``: ``(cells, n_cells, ± G/(G-1))`` for every
    intersection of dimensions, signed by inclusion-exclusion (one piece, ``+ G/(G-1)``, for one dimension)."""
    codes = [np.asarray(c, dtype=np.int64) for c in codes]
    pieces = []
    for size in range(1, len(codes) + 1):
        for subset in combinations(range(len(codes)), size):
            cells = codes[subset[0]] if size == 1 else _intersection_codes([codes[i] for i in subset])
            n_cells = int(cells.max()) + 1
            if n_cells < 2:
                raise ModelError("Each cluster dimension of the wild bootstrap's variance needs at least two clusters.")
            pieces.append((cells, n_cells, (1.0 if size % 2 else -1.0) * n_cells / (n_cells - 1)))
    return pieces


def _wild_draws(g: int, n_boot: int, weight_type: str, rng) -> tuple[np.ndarray, bool]:
    """The draws x clusters matrix of weights: every pattern when there are at most ``n_boot``, else random."""
    values = WILD_WEIGHTS[weight_type]
    if len(values) ** g <= n_boot:
        return np.array(list(product(values, repeat=g))), True
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return rng.choice(values, size=(int(n_boot), g)), False


def wild_cluster_bootstrap(
    y, X, clusters, *, column: int, weights=None, fixed=None, n_params: int | None = None, null: float = 0.0,
    n_boot: int = 9999, weight_type: str = "webb", rng=0, alpha: float = 0.05, tol: float = 1e-9,
    variance_clusters=None,
) -> WildBootstrap:
    """Test one coefficient by the wild cluster restricted (WCR) bootstrap and invert the test.

    The model is fitted with the tested coefficient held at the null value;
    its residuals, multiplied by one random weight per cluster, make each
    bootstrap sample; every sample is refitted and its CR1 t statistic of the
    null computed. The p-value is the share of bootstrap ``|t*|`` at least the
    observed ``|t|``; the interval is every null value with ``p > alpha``. All
    draws are evaluated at once: ``beta* - b0`` and the bootstrap cluster
    scores are linear in the weights and in ``b0``, so each draw reduces to
    five numbers and a p-value at any ``b0`` costs one pass over them
    (Roodman, MacKinnon, Nielsen and Webb 2019).

    Parameters
    ----------
    y : array-like, shape (n,)
        The outcome, fixed effects already absorbed (as the fit absorbs them,
        Frisch-Waugh-Lovell; with ``weights``, by the weighted within
        transformation: ``demean(y, fixed, weights=weights)``).
    X : array-like, shape (n, k)
        The regressors, absorbed the same way (an intercept column when there are no fixed effects).
    clusters : array of int
        Cluster code per row, ``0..G-1``.
    column : int
        The column of ``X`` whose coefficient is tested.
    weights : array-like, shape (n,), optional
        Weighted least squares: rows are multiplied by ``sqrt(weights)``.
    fixed : array of int, or list of them, optional
        The codes of the absorbed fixed effects (as :func:`demean`). Needed
        when they are not nested within the clusters: each bootstrap sample's
        residuals are then also purged of the fixed effects, so every draw is
        the bootstrap of the regression *with* the dummies. Without them the
        residuals of a sample are taken in the absorbed space (exact when
        every fixed-effect group lies inside one cluster).
    n_params : int, optional
        ``K`` of the CR1 factor ``G/(G-1) (N-1)/(N-K)``, absorbed fixed effects
        included (as :func:`cluster_robust_cov`); the columns of ``X`` by default.
        The factor scales ``t`` and every ``t*`` alike, so the p-value and the
        interval do not depend on it.
    null : float, default 0.0
        The value of the coefficient tested for ``p_value``.
    n_boot : int, default 9999
        Bootstrap draws. When the weight distribution has at most ``n_boot``
        patterns over the clusters (Rademacher: ``2**G``, so ``G <= 13`` with
        9,999; Webb: ``6**G``) every pattern is used once instead: the
        p-value is then exact and a multiple of ``1 / 2**G``.
    weight_type : {"webb", "rademacher"}, default "webb"
        The cluster weights (:data:`WILD_WEIGHTS`). Webb's six points give
        many more distinct draws than Rademacher's two when clusters are few.
    rng : int or numpy.random.Generator, default 0
        Seed or generator of the draws; the result is deterministic given it.
    alpha : float, default 0.05
        The interval is at level ``1 - alpha``.
    tol : float, default 1e-9
        The interval's bounds are located to ``tol`` standard errors.
    variance_clusters : list of array of int, optional
        Cluster codes of each dimension of the t statistic's CR1 variance
        (multiway by inclusion-exclusion, as :func:`cluster_robust_cov` with
        a list); ``clusters`` alone by default. The weights are still drawn per
        ``clusters`` and every draw's t uses the same multiway variance
        (MacKinnon, Nielsen and Webb 2021). A draw whose multiway variance is
        not positive counts as reaching the observed ``|t|`` (conservative).

    Returns
    -------
    WildBootstrap
        Estimate, CR1 standard error and t, bootstrap p-value and interval, and what was drawn.

    Raises
    ------
    ModelError
        For an unknown ``weight_type``, fewer than two clusters (in any
        dimension), or a (multiway) variance of the coefficient that is not positive.

    Notes
    -----
    As ``boottest`` (Stata) and ``fwildclusterboot::boottest(impose_null =
    TRUE, bootstrap_type = "11", p_val_type = "two-tailed")`` in R. A
    bootstrap |t| within a relative ``1e-10`` of the observed one counts as
    reaching it (the draws ``w = 1`` and ``w = -1`` reproduce it exactly).

    References
    ----------
    Cameron, Gelbach and Miller (2008), Bootstrap-based improvements for inference with clustered errors.
    MacKinnon and Webb (2017), Wild bootstrap inference for wildly different cluster sizes.
    Roodman, MacKinnon, Nielsen and Webb (2019), Fast and wild: bootstrap inference in Stata using boottest.
    MacKinnon, Nielsen and Webb (2021), Wild bootstrap and asymptotic inference with multiway clustering.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(8), 5)
    >>> X = np.column_stack([np.ones(40), (g < 3).astype(float)])
    >>> y = 0.5 * X[:, 1] + rng.normal(size=8)[g] + rng.normal(size=40)
    >>> wb = wild_cluster_bootstrap(y, X, g, column=1, weight_type="rademacher")
    >>> wb.n_boot, wb.enumerated, round(wb.p_value * wb.n_boot)
    (256, True, 28)
    """
    if weight_type not in WILD_WEIGHTS:
        raise ModelError(f"The value for `weight_type` must be one of {sorted(WILD_WEIGHTS)}, but {weight_type!r} "
                         "was passed.")
    y = np.asarray(y, float)
    X = np.asarray(X, float)
    X = X[:, None] if X.ndim == 1 else X
    clusters = np.asarray(clusters, dtype=np.int64)
    if weights is not None:
        root = np.sqrt(np.asarray(weights, float))
        y, X = y * root, X * root[:, None]
    n, k = X.shape
    g = int(clusters.max()) + 1
    if g < 2:
        raise ModelError("The wild cluster bootstrap needs at least two clusters.")
    factor = (n - 1) / (n - (k if n_params is None else int(n_params)))
    pieces = _variance_pieces([clusters] if variance_clusters is None else variance_clusters)
    bread = np.linalg.inv(X.T @ X)
    h = X @ bread[:, column]  # the coefficient is h'y
    estimate = float(h @ y)
    resid = y - X @ (bread @ (X.T @ y))
    variance = factor * sum(weight * np.sum(_cluster_sums(h * resid, cells, size) ** 2)
                            for cells, size, weight in pieces)
    if not variance > 0:
        raise ModelError("The cluster-robust variance of the tested coefficient is not positive (a multiway "
                         "variance can be negative); the wild bootstrap needs a positive one.")
    std_error = float(np.sqrt(variance))

    # restricted residuals at null b0: u0 - b0 v (y and the tested column, each residualised on the others)
    yx = np.column_stack([y, X[:, column]])
    others = np.delete(X, column, axis=1)
    if others.shape[1]:
        yx = yx - others @ np.linalg.lstsq(others, yx, rcond=None)[0]
    u0, v = yx[:, 0], yx[:, 1]
    # a draw w gives beta* - b0 = w'(a - b0 c) and, in each variance piece, cell scores (M0 - b0 M1) w
    a, c = _cluster_sums(h * u0, clusters, g), _cluster_sums(h * v, clusters, g)
    purged0 = _purged_residuals(u0, clusters, g, fixed, weights)
    purged1 = _purged_residuals(v, clusters, g, fixed, weights)
    scores = []
    for cells, size, weight in pieces:
        leverage = _cluster_sums(h[:, None] * X, cells, size) @ bread
        scores.append((weight, _bootstrap_scores(h, u0, X, leverage, clusters, g, purged0, cells, size),
                       _bootstrap_scores(h, v, X, leverage, clusters, g, purged1, cells, size)))

    draws, enumerated = _wild_draws(g, n_boot, weight_type, rng)
    n0, n1 = draws @ a, draws @ c
    ss00, ss01, ss11 = (np.zeros(len(draws)) for _ in range(3))
    for weight, m0, m1 in scores:
        step = max(1, _BLOCK_CELLS // max(g, m0.shape[0]))
        for start in range(0, len(draws), step):
            block = draws[start:start + step]
            s0, s1 = block @ m0.T, block @ m1.T
            ss00[start:start + step] += weight * np.einsum("ij,ij->i", s0, s0)
            ss01[start:start + step] += weight * np.einsum("ij,ij->i", s0, s1)
            ss11[start:start + step] += weight * np.einsum("ij,ij->i", s1, s1)

    def p_value(b0: float) -> float:
        t = abs(estimate - b0) / std_error
        with np.errstate(divide="ignore", invalid="ignore"):
            # a multiway variance can be negative in a draw: its t* is then infinite (counted as reaching t)
            t_star = np.abs(n0 - b0 * n1) / np.sqrt(factor * np.maximum(ss00 - 2 * b0 * ss01 + b0 * b0 * ss11, 0.0))
        return float(np.mean(t_star >= t * (1 - _TIE)))

    def bound(sign: float) -> float:
        inside, width = estimate, 2.0 * std_error
        outside = estimate + sign * width
        for _ in range(60):
            if p_value(outside) <= alpha:
                break
            inside, width = outside, 2.0 * width
            outside = estimate + sign * width
        else:
            return sign * np.inf
        while abs(outside - inside) > tol * std_error:
            middle = 0.5 * (inside + outside)
            if middle in (inside, outside):  # far out, floating point cannot split the bracket any further
                break
            if p_value(middle) > alpha:
                inside = middle
            else:
                outside = middle
        return 0.5 * (inside + outside)

    return WildBootstrap(
        estimate=estimate, std_error=std_error, statistic=(estimate - null) / std_error, null=float(null),
        p_value=p_value(null), conf_low=bound(-1.0), conf_high=bound(1.0), n_boot=len(draws),
        weight_type=weight_type, enumerated=enumerated, n_clusters=g, alpha=alpha,
    )


def greedy_caliper_match(group, treated, score, order_key, *, width: float, ratio: int = 1):
    """Greedy nearest-neighbour matching on a score inside each group, without replacement in a group.

    In each group (a trial, a risk set) the treated rows are taken in
    descending ``score`` (ties by ``order_key``); each takes the ``ratio``
    still-available control rows of its group nearest in score within
    ``width`` (ties by row position), which are then no longer available in
    that group. The groups are independent, so the k-th treated row of every
    group is matched in the same vectorised step: there are as many steps as
    the largest number of treated rows in one group, never one per person.

    Parameters
    ----------
    group : array of int, shape (n,)
        Group of each row.
    treated : array of bool, shape (n,)
        True for a treated row, False for a candidate control.
    score : array of float, shape (n,)
        The distance score (e.g. logit propensity); NaN is never matched.
    order_key : array, shape (n,)
        Breaks ties in the order treated rows are taken (e.g. their ids).
    width : float
        Largest allowed ``|score difference|`` (the caliper).
    ratio : int, default 1
        Controls per treated row at most.

    Returns
    -------
    owner : ndarray of int, shape (n,)
        For a matched row, the position of its treated row (itself for a
        treated row); -1 for an unmatched row.
    weight : ndarray of float, shape (n,)
        1 for a matched treated row, ``1 / controls in its set`` for a
        matched control, 0 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> owner, weight = greedy_caliper_match(np.zeros(4, int), np.array([True, False, False, False]),
    ...                                      np.array([0.0, 0.1, 3.0, -0.2]), np.arange(4), width=0.2)
    >>> owner.tolist(), weight.tolist()
    ([0, 0, -1, -1], [1.0, 1.0, 0.0, 0.0])
    """
    group = np.asarray(group, np.int64)
    treated = np.asarray(treated, bool)
    score = np.asarray(score, float)
    n = len(group)
    owner = np.full(n, -1, np.int64)
    weight = np.zeros(n)
    # treated rows in the order each group takes them, with their rank inside the group
    t_rows = np.flatnonzero(treated)
    t_rows = t_rows[np.lexsort((np.asarray(order_key)[t_rows], -score[t_rows], group[t_rows]))]
    t_group = group[t_rows]
    first = np.r_[True, t_group[1:] != t_group[:-1]] if len(t_rows) else np.zeros(0, bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(t_rows)), 0)) if len(t_rows) else first
    rank = np.arange(len(t_rows)) - start
    # control rows by group, then position; each group's block of them
    pool = np.flatnonzero(~treated & ~np.isnan(score))
    pool = pool[np.argsort(group[pool], kind="stable")]
    available = np.ones(len(pool), bool)
    bounds = np.searchsorted(group[pool], np.arange(int(group.max()) + 2 if n else 1))
    for k in range(int(rank.max()) + 1 if len(rank) else 0):
        now = t_rows[rank == k]  # one treated row per group that still has one
        g = group[now]
        size = bounds[g + 1] - bounds[g]
        at = np.repeat(np.arange(len(now)), size)  # which treated row each candidate belongs to
        cand = np.arange(len(at)) - np.repeat(np.cumsum(size) - size, size) + np.repeat(bounds[g], size)
        distance = np.abs(score[pool[cand]] - score[now[at]])
        ok = available[cand] & (distance <= width)
        at, cand, distance = at[ok], cand[ok], distance[ok]
        pick = np.lexsort((cand, distance, at))
        at, cand = at[pick], cand[pick]
        begin = np.r_[True, at[1:] != at[:-1]] if len(at) else np.zeros(0, bool)
        first_of = np.maximum.accumulate(np.where(begin, np.arange(len(at)), 0)) if len(at) else begin
        chosen = (np.arange(len(at)) - first_of) < ratio
        at, cand = at[chosen], cand[chosen]
        n_chosen = np.bincount(at, minlength=len(now))
        available[cand] = False
        owner[pool[cand]] = now[at]
        weight[pool[cand]] = 1.0 / n_chosen[at]
        hit = now[n_chosen > 0]
        owner[hit] = hit
        weight[hit] = 1.0
    return owner, weight


def holm_adjust(p) -> np.ndarray:
    """Holm's step-down adjusted p-values, as R's ``p.adjust(p, "holm")``.

    The i-th smallest of ``m`` p-values becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``.
    statsmodels' ``multipletests(method="holm")`` gives the same values but runs
    a full garbage collection on every call, over a second in a process holding
    a study's tables.

    Parameters
    ----------
    p : array_like
        Finite p-values in [0, 1].

    Returns
    -------
    ndarray
        The adjusted p-values, in the order of ``p``.

    Examples
    --------
    >>> from alignment_research._estimators import holm_adjust
    >>> holm_adjust([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted
