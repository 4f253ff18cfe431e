"""A vectorised profiled (RE)ML engine for the linear model with one random intercept.

The model is ``y = X beta + b[g] + e`` with ``b ~ N(0, sigma_b^2)`` per group and
``e ~ N(0, sigma^2)``. With ``theta = sigma_b^2 / sigma^2`` every quantity the
likelihood needs reduces to per-group sums, so the log-likelihood profiled over
``beta`` and ``sigma^2`` is a cheap function of ``theta`` alone:

* the within-group cross-products ``W = sum_j (X_j - xbar_j)'(X_j - xbar_j)``
  (and the same for ``y``) are computed once;
* for group ``j`` with ``n_j`` rows and column sums ``s_j`` (of ``X``) and
  ``t_j`` (of ``y``), ``X'V^{-1}X = W + sum_j s_j s_j' / (n_j (1 + n_j theta))``
  and likewise ``X'V^{-1}y`` and ``y'V^{-1}y`` (``V`` scaled so ``sigma^2 = 1``);
* ``log|V| = sum_j log(1 + n_j theta)``;
* a group enters these sums only through its size, so the group-level
  cross-products are pooled by group size once, and each evaluation of the
  criterion costs ``O(K p^2)`` for ``K`` distinct group sizes, whatever ``N``.

The criterion is minimised over ``phi = sqrt(theta)`` (lme4's ``theta``) with a
bounded Brent search, then polished by a root search on its analytic
derivative, so the optimum is found to machine precision. A non-negative slope
at ``theta = 0`` is a boundary (singular) fit, as lme4 reports it. The ML and REML
criteria are exactly lme4's deviance and REML criterion, so log-likelihoods
agree with ``logLik(lmer(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.optimize as so
import scipy.sparse as sp

__all__: list[str] = []

_LOG2PI = np.log(2.0 * np.pi)


@dataclass(frozen=True)
class LMMFit:
    """State of a fitted random-intercept model (plain arrays)."""

    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    sigma2_b: float
    theta: float
    log_likelihood: float
    reml: bool
    n: int
    n_groups: int
    ranef: np.ndarray
    group_labels: np.ndarray
    converged: bool
    boundary: bool
    n_eval: int
    codes: np.ndarray


class _Sums:
    """Group sums and within-group cross-products, computed once.

    Every per-theta quantity depends on a group only through its size, so the
    group-level cross-products are further pooled by group size: an evaluation
    of the criterion then costs O(K p^2) for K distinct group sizes, whatever N.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int):
        n, p = X.shape
        ind = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))
        n_j = np.asarray(ind.sum(axis=1)).ravel()
        S = np.asarray(ind @ X)  # G x p column sums
        T = np.asarray(ind @ y).ravel()  # G sums of y
        Xc = X - (S / n_j[:, None])[codes]
        yc = y - (T / n_j)[codes]
        self.Wxx = Xc.T @ Xc
        self.Wxy = Xc.T @ yc
        self.Wyy = float(yc @ yc)
        self.n, self.p = n, p
        self.n_j, self.S, self.T = n_j, S, T
        # pool by group size k: counts, sum of s s', s t, t^2 over groups of that size
        self.k, size_of = np.unique(n_j, return_inverse=True)
        K = len(self.k)
        self.count = np.bincount(size_of, minlength=K).astype(float)
        self.SS = np.zeros((K, p, p))
        np.add.at(self.SS, size_of, S[:, :, None] * S[:, None, :])
        self.ST = np.zeros((K, p))
        np.add.at(self.ST, size_of, S * T[:, None])
        self.TT = np.bincount(size_of, weights=T * T, minlength=K)

    def solve(self, theta: float):
        """Return the GLS pieces at ``theta``: A, beta, r and the per-size factors ``1 + k theta``."""
        d = 1.0 + self.k * theta
        w = 1.0 / (self.k * d)
        A = self.Wxx + np.tensordot(w, self.SS, axes=1)
        b = self.Wxy + w @ self.ST
        yVy = self.Wyy + float(w @ self.TT)
        beta = np.linalg.solve(A, b)
        r = yVy - float(b @ beta)
        return A, beta, r, d

    def criterion(self, theta: float, reml: bool) -> float:
        """Twice the negative profiled log-likelihood (lme4's deviance or REML criterion)."""
        A, _, r, d = self.solve(theta)
        logdet_v = float(self.count @ np.log(d))
        if reml:
            dof = self.n - self.p
            logdet_a = float(np.linalg.slogdet(A)[1])
            return logdet_v + logdet_a + dof * (1.0 + _LOG2PI + np.log(r / dof))
        return logdet_v + self.n * (1.0 + _LOG2PI + np.log(r / self.n))

    def gradient(self, theta: float, reml: bool) -> float:
        """Derivative of :meth:`criterion` with respect to ``theta``."""
        A, beta, r, d = self.solve(theta)
        # sum over groups of (E_j / d_j)^2 with E_j = t_j - s_j' beta, pooled by size
        e2 = self.TT - 2.0 * (self.ST @ beta) + np.einsum("i,kij,j->k", beta, self.SS, beta)
        dr = -float(np.sum(e2 / d**2))
        g = float(np.sum(self.count * self.k / d))
        dof = self.n - self.p if reml else self.n
        g += dof * dr / r
        if reml:
            Ainv = np.linalg.inv(A)
            g -= float(np.sum(np.einsum("ij,kji->k", Ainv, self.SS) / d**2))
        return g


def fit_random_intercept(X: np.ndarray, y: np.ndarray, groups, *, reml: bool = True) -> LMMFit:
    """Fit ``y ~ X + (1 | groups)`` by profiled ML or REML.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design matrix (full column rank).
    y : ndarray, shape (n,)
        Response.
    groups : array_like, shape (n,)
        Group labels.
    reml : bool, default True
        Restricted maximum likelihood (lme4's default) or maximum likelihood.

    Returns
    -------
    LMMFit
        Estimates, covariance of the fixed effects, variance components,
        log-likelihood and predicted random effects (BLUPs).
    """
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float).ravel()
    codes, labels = pd.factorize(np.asarray(groups), sort=True)  # hashing: much faster than np.unique on strings
    if (codes < 0).any():
        raise ValueError("groups has missing values")
    labels = np.asarray(labels)
    sums = _Sums(X, y, codes, len(labels))
    f = lambda phi: sums.criterion(phi * phi, reml)  # noqa: E731 - lme4's theta = sigma_b / sigma
    # Bracket: expand the upper bound until the optimum is inside it.
    upper, n_eval = 4.0, 0
    while True:
        opt = so.minimize_scalar(f, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-10, "maxiter": 500})
        n_eval += int(opt.nfev)
        if opt.x < 0.9 * upper or upper > 1e6:
            break
        upper *= 10.0
    phi = float(opt.x)
    converged = bool(opt.success)
    boundary = False
    # Boundary at sigma_b = 0: the criterion's slope at theta = 0 is non-negative.
    if phi < 1e-4 and sums.gradient(0.0, reml) >= 0.0:
        phi, boundary = 0.0, True
    else:
        # Polish: root of the derivative in a bracket around the Brent optimum.
        lo, hi = max(phi * 0.9, 0.0), phi * 1.1 + 1e-12
        g = lambda ph: sums.gradient(ph * ph, reml)  # noqa: E731 - sign of d/dphi equals sign of d/dtheta
        glo, ghi = g(lo), g(hi)
        n_eval += 2
        if glo < 0.0 < ghi:
            phi = so.brentq(g, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
    theta = phi * phi
    A, beta, r, _ = sums.solve(theta)
    dof = sums.n - sums.p if reml else sums.n
    sigma2 = r / dof
    cov = sigma2 * np.linalg.inv(A)
    E = sums.T - sums.S @ beta
    ranef = theta * E / (1.0 + sums.n_j * theta)
    return LMMFit(
        beta=beta,
        cov_beta=cov,
        sigma2=float(sigma2),
        sigma2_b=float(theta * sigma2),
        theta=float(theta),
        log_likelihood=-0.5 * sums.criterion(theta, reml),
        reml=reml,
        n=sums.n,
        n_groups=len(labels),
        ranef=ranef,
        group_labels=labels,
        converged=converged,
        boundary=boundary,
        n_eval=n_eval,
        codes=codes,
    )
