"""A vectorised Laplace engine for the generalised linear model with one random intercept.

The model is ``g(E[y | b]) = X beta + b[group]`` with ``b = theta * u`` and
``u ~ N(0, 1)`` per group (lme4's spherical parameterisation: ``theta`` is the
standard deviation of the intercepts), for a binary outcome (logit link) or a
count (log link). The quantity minimised is lme4's Laplace deviance
(``glmer(..., nAGQ = 1)``)::

    D(theta, beta) = sum_i d_i(eta_i) + sum_j u_j^2 + sum_j log(1 + theta^2 S_j)

where ``d_i = -2 log f(y_i | eta_i)`` (the family's ``aic`` term, so
``logLik = -D / 2`` as in R), ``u_j`` is the conditional mode of group ``j``'s
effect given ``(theta, beta)``, ``eta_i = x_i'beta + theta u_j`` and ``S_j`` the
sum of the working weights ``w_i = dmu/deta`` of the group at the mode.

Every group's effect is one number, so finding the modes is a Newton iteration
on ``G`` independent scalar equations, done as array arithmetic over groups
(``np.bincount``): each iteration costs O(N). The gradient of ``D`` over
``(theta, beta)`` is analytic (implicit differentiation of the modes), the
optimum is found by L-BFGS-B and polished by Newton steps, and the Hessian is
the central difference of the analytic gradient. As in lme4, the covariance of
the fixed effects is the ``beta`` block of ``2 H^-1`` with ``H`` the Hessian of
``D`` over ``(theta, beta)`` (``vcov(fit)`` with ``use.hessian = TRUE``); on
the boundary (``theta`` below lme4's singular tolerance 1e-4, where lme4
computes no Hessian) or when the Hessian is not positive definite, it is the
inverse of ``X'WX - sum_j theta^2 s_j s_j' / (1 + theta^2 S_j)`` (lme4's
``RX``-based ``vcov(fit, use.hessian = FALSE)``), with ``s_j = sum_i w_i x_i``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.optimize as so
import scipy.sparse as sp
from scipy.special import gammaln

from ._estimators import fit_logistic

__all__: list[str] = []

#: lme4's tolerance for a singular fit (``getSingTol()``): theta below it is on the boundary.
SINGULAR_TOLERANCE = 1e-4
FAMILIES = ("binomial", "poisson")


@dataclass(frozen=True)
class GLMMFit:
    """State of a fitted random-intercept GLMM (plain arrays)."""

    beta: np.ndarray
    cov_beta: np.ndarray
    cov_beta_rx: np.ndarray
    theta: float
    log_likelihood: float
    laplace_deviance: float
    deviance: float
    family: str
    n: int
    n_groups: int
    ranef: np.ndarray
    group_labels: np.ndarray
    codes: np.ndarray
    fitted: np.ndarray
    converged: bool
    boundary: bool
    cov_source: str
    gradient: np.ndarray
    n_eval: int
    start: np.ndarray
    separated: bool

    @property
    def variance(self) -> float:
        """Variance of the random intercepts (``theta^2``)."""
        return float(self.theta**2)


class _Family:
    """Mean, unit contribution to ``-2 log f``, working weight and its derivative, for a canonical link."""

    def __init__(self, name: str):
        self.name = name

    def mean(self, eta):
        if self.name == "binomial":
            with np.errstate(over="ignore"):
                return 1.0 / (1.0 + np.exp(-eta))
        return np.exp(np.minimum(eta, 700.0))

    def unit(self, eta, y, mu):
        """``-2 log f(y | eta)``, R's ``family()$aic`` per row (binary: ``2 (log(1 + e^eta) - y eta)``)."""
        if self.name == "binomial":
            return 2.0 * (np.logaddexp(0.0, eta) - y * eta)
        return 2.0 * (mu - y * eta + gammaln(y + 1.0))

    def weights(self, mu):
        """``w = dmu/deta`` (the variance, for a canonical link) and ``dw/deta``."""
        if self.name == "binomial":
            w = mu * (1.0 - mu)
            return w, w * (1.0 - 2.0 * mu)
        return mu, mu

    def deviance(self, y, eta, mu) -> float:
        """The conditional deviance against the saturated model (R's ``deviance(glmer_fit)``)."""
        if self.name == "binomial":  # a 0/1 outcome: the saturated log-likelihood is 0
            return float(np.sum(self.unit(eta, y, mu)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ylog = np.where(y > 0, y * np.log(y / mu), 0.0)
        return float(2.0 * np.sum(ylog - (y - mu)))


class _Problem:
    """The data, the group sums, and the Laplace deviance with its gradient over ``z = (theta, beta)``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int, family: str):
        self.X, self.y, self.codes, self.G = X, y, codes, n_groups
        self.n, self.p = X.shape
        self.family = _Family(family)
        self.ind = sp.csr_matrix((np.ones(self.n), (codes, np.arange(self.n))), shape=(n_groups, self.n))
        self.u = np.zeros(n_groups)  # warm start of the modes
        self.n_eval = 0

    def _gsum(self, values):
        return np.bincount(self.codes, weights=values, minlength=self.G)

    def modes(self, beta, theta, *, tol: float = 1e-11, max_iter: int = 200):
        """Conditional modes ``u`` given ``(beta, theta)``: per-group Newton with step halving."""
        fam, y, codes = self.family, self.y, self.codes
        offset = self.X @ beta
        if theta == 0.0:
            u = np.zeros(self.G)
            eta = offset
            return u, eta, fam.mean(eta)
        u = self.u.copy()
        u_prev = u.copy()
        pd_prev = np.full(self.G, np.inf)
        for _ in range(max_iter):
            eta = offset + theta * u[codes]
            mu = fam.mean(eta)
            pdev = self._gsum(fam.unit(eta, y, mu)) + u * u
            worse = pdev > pd_prev + 1e-10 * (1.0 + np.abs(pd_prev))
            if worse.any():  # the step overshot in these groups: halve it there
                u[worse] = 0.5 * (u[worse] + u_prev[worse])
                continue
            w, _ = fam.weights(mu)
            grad = theta * self._gsum(mu - y) + u
            hess = theta * theta * self._gsum(w) + 1.0
            step = grad / hess
            if np.max(np.abs(step)) < tol:
                break
            u_prev, pd_prev = u.copy(), pdev
            u = u - step
        self.u = u
        return u, eta, mu

    def deviance(self, z) -> float:
        """The Laplace deviance at ``z = (theta, beta)``."""
        self.n_eval += 1
        theta, beta = float(z[0]), np.asarray(z[1:], float)
        u, eta, mu = self.modes(beta, theta)
        w, _ = self.family.weights(mu)
        S = self._gsum(w)
        return float(np.sum(self.family.unit(eta, self.y, mu)) + u @ u + np.sum(np.log1p(theta * theta * S)))

    def gradient(self, z) -> tuple[float, np.ndarray]:
        """The Laplace deviance and its analytic gradient over ``(theta, beta)``."""
        self.n_eval += 1
        theta, beta = float(z[0]), np.asarray(z[1:], float)
        X, y = self.X, self.y
        u, eta, mu = self.modes(beta, theta)
        w, dw = self.family.weights(mu)
        S, T, R = self._gsum(w), self._gsum(dw), self._gsum(mu - y)
        L = 1.0 + theta * theta * S
        value = float(np.sum(self.family.unit(eta, y, mu)) + u @ u + np.sum(np.log(L)))
        Sx = np.asarray(self.ind @ (X * w[:, None]))  # G x p
        Tx = np.asarray(self.ind @ (X * dw[:, None]))
        du_db = -theta * Sx / L[:, None]
        dS_db = Tx + (T * theta)[:, None] * du_db
        g_beta = 2.0 * (X.T @ (mu - y)) + ((theta * theta / L)[:, None] * dS_db).sum(axis=0)
        du_dt = -(theta * u * S + R) / L
        dS_dt = T * (u + theta * du_dt)
        g_theta = float(np.sum(2.0 * u * R + (2.0 * theta * S + theta * theta * dS_dt) / L))
        return value, np.r_[g_theta, g_beta]

    def hessian(self, z) -> np.ndarray:
        """Central differences of the analytic gradient (symmetrised)."""
        k = len(z)
        H = np.empty((k, k))
        for i in range(k):
            h = 1e-5 * max(1.0, abs(z[i]))
            up, down = z.copy(), z.copy()
            up[i] += h
            down[i] -= h
            H[:, i] = (self.gradient(up)[1] - self.gradient(down)[1]) / (2.0 * h)
        return 0.5 * (H + H.T)

    def rx_cov(self, beta, theta) -> np.ndarray:
        """lme4's ``RX``-based covariance: the Schur complement of the joint (u, beta) information."""
        u, eta, mu = self.modes(beta, theta)
        w, _ = self.family.weights(mu)
        S = self._gsum(w)
        Sx = np.asarray(self.ind @ (self.X * w[:, None]))
        info = self.X.T @ (self.X * w[:, None]) - (Sx * (theta * theta / (1.0 + theta * theta * S))[:, None]).T @ Sx
        return np.linalg.pinv(info)  # pinv: a separated fit leaves it (near) singular


def _glm_start(X, y, family: str) -> tuple[np.ndarray, bool]:
    """Fixed effects of the GLM without group effects (``theta = 0``), and whether it separated."""
    if family == "binomial":
        fit = fit_logistic(X, y)
        return fit.params, fit.separated
    beta = np.zeros(X.shape[1])
    beta[0] = np.log(max(float(np.mean(y)), 1e-8)) if np.allclose(X[:, 0], 1.0) else 0.0
    converged = False
    for _ in range(100):
        mu = np.exp(np.minimum(X @ beta, 700.0))
        step = np.linalg.solve(X.T @ (X * mu[:, None]), X.T @ (y - mu))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-12:
            converged = True
            break
    return beta, not converged or not np.all(np.isfinite(beta))


def fit_glmm_laplace(X: np.ndarray, y: np.ndarray, groups, *, family: str = "binomial",
                     max_newton: int = 20) -> GLMMFit:
    """Fit ``y ~ X + (1 | groups)`` for a binomial (logit) or Poisson (log) outcome by the Laplace approximation.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design (full column rank).
    y : ndarray, shape (n,)
        0/1 outcome (binomial) or non-negative counts (poisson).
    groups : array_like, shape (n,)
        Group labels.
    family : {"binomial", "poisson"}
        The outcome's family, with its canonical link.
    max_newton : int, default 20
        Newton polishing steps at most after L-BFGS-B.

    Returns
    -------
    GLMMFit
        Estimates, covariances, conditional modes (``ranef``, on the link
        scale: ``theta * u``), fit flags.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    codes, labels = pd.factorize(np.asarray(groups), sort=True)
    G = len(labels)
    prob = _Problem(X, y, codes, G, family)
    beta0, separated = _glm_start(X, y, family)
    # theta alone first, at the GLM's fixed effects (lme4 likewise starts from a cheaper fit)
    line = so.minimize_scalar(lambda t: prob.deviance(np.r_[t, beta0]), bounds=(0.0, 10.0), method="bounded",
                              options={"xatol": 1e-3})
    z = np.r_[max(float(line.x), 0.05), beta0]
    start = z.copy()
    res = so.minimize(prob.gradient, z, jac=True, method="L-BFGS-B",
                      bounds=[(0.0, None)] + [(None, None)] * X.shape[1],
                      options={"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 20})
    z = np.asarray(res.x, float)
    value, grad = prob.gradient(z)
    H = None
    if z[0] >= SINGULAR_TOLERANCE:
        for _ in range(max_newton):  # Newton polish, with step halving on the deviance
            H = prob.hessian(z)
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                H = None
                break
            for _ in range(30):
                trial = z - step
                trial[0] = max(trial[0], 0.0)
                t_value, t_grad = prob.gradient(trial)
                if t_value <= value + 1e-12 * abs(value):
                    break
                step = step / 2.0
            else:
                break
            moved = np.max(np.abs(z - trial)) / max(1.0, np.max(np.abs(z)))
            z, value, grad = trial, t_value, t_grad
            if moved > 1e-7:
                H = None  # the optimum moved: the Hessian is recomputed there
            if moved < 1e-10 or np.max(np.abs(grad)) < 1e-10 * max(1.0, abs(value)):
                break
    boundary = bool(z[0] < SINGULAR_TOLERANCE)
    if boundary:  # on the boundary the Laplace deviance is the GLM's: refit beta there exactly
        z = np.r_[0.0, _glm_start(X, y, family)[0]]
        value, grad = prob.gradient(z)
    theta, beta = float(z[0]), z[1:]
    cov_rx = prob.rx_cov(beta, theta)
    cov, source = cov_rx, "rx"
    if not boundary:
        H = prob.hessian(z) if H is None else H
        try:
            full = 2.0 * np.linalg.inv(H)
            block = full[1:, 1:]
            block = 0.5 * (block + block.T)
            if np.all(np.isfinite(block)) and np.linalg.eigvalsh(block).min() > 0:
                cov, source = block, "hessian"
        except np.linalg.LinAlgError:
            pass
    u, eta, mu = prob.modes(beta, theta)
    scale = max(1.0, abs(value))
    free = grad.copy()
    if boundary:
        free = free[1:]
    converged = bool(np.all(np.isfinite(z)) and np.max(np.abs(free)) < 1e-5 * scale)
    return GLMMFit(
        beta=beta, cov_beta=cov, cov_beta_rx=cov_rx, theta=theta, log_likelihood=-0.5 * value,
        laplace_deviance=value, deviance=prob.family.deviance(y, eta, mu), family=family, n=len(y), n_groups=G,
        ranef=theta * u, group_labels=np.asarray(labels), codes=codes, fitted=mu, converged=converged,
        boundary=boundary, cov_source=source, gradient=grad, n_eval=prob.n_eval, start=start,
        separated=separated,
    )
