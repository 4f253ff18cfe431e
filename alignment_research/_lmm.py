"""Vectorised profiled (RE)ML engines for linear mixed models with one grouping factor.

``fit_random_intercept`` fits one random intercept (below); ``fit_random_slopes``
fits q correlated or independent random effects per group (an intercept and
slopes, lme4's ``(1 + x | g)`` and ``(1 + x || g)``), profiled over lme4's
``theta`` from per-group cross-products (see the section "random slopes").

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

from ._docs import fill_doc

__all__: list[str] = []

_LOG2PI = np.log(2.0 * np.pi)


#: Parameter text shared by the engines' docstrings (see ``_docs.fill_doc``).
_FIT_DOCS = dict(
    x_y="X : ndarray, shape (n, p)\n        Fixed-effects design matrix (full column rank).\n"
        "    y : ndarray, shape (n,)\n        Response.",
    reml="reml : bool, default True\n        Restricted maximum likelihood (lme4's default) or maximum likelihood.",
)


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


@fill_doc(**_FIT_DOCS)
def fit_random_intercept(X: np.ndarray, y: np.ndarray, groups, *, reml: bool = True) -> LMMFit:
    """Fit ``y ~ X + (1 | groups)`` by profiled ML or REML.

    Parameters
    ----------
    {x_y}
    groups : array_like, shape (n,)
        Group labels.
    {reml}

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


def random_intercept_scores(fit: LMMFit, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bread and per-row scores of a random-intercept fit, for a cluster-robust (sandwich) covariance.

    The fixed effects are the GLS estimate ``(X'V^-1 X)^-1 X'V^-1 y`` at the
    fitted variances; with ``V`` scaled so ``sigma^2 = 1``, group ``j``'s block
    is ``I + theta 11'`` and its inverse ``I - c_j 11'`` with ``c_j = theta /
    (1 + n_j theta)``. ``X'V^-1 e`` is the sum over rows of ``(V^-1 X)_i e_i``
    (``e`` the marginal residual ``y - X beta``), so those are the scores, and
    ``(X'V^-1 X)^-1`` is the bread: ``cluster_robust_cov(scores, bread, codes)``
    is then the sandwich around the GLS estimate for any clustering of the rows,
    also one that crosses the random-intercept groups (as Stata's ``mixed ...,
    vce(cluster)`` for one way; ``sigma^2`` cancels).

    Parameters
    ----------
    fit : LMMFit
        The result of :func:`fit_random_intercept` on ``X`` and ``y``.
    X : ndarray, shape (n, p)
    y : ndarray, shape (n,)

    Returns
    -------
    bread : ndarray, shape (p, p)
    scores : ndarray, shape (n, p)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(20), 5)
    >>> X = np.column_stack([np.ones(100), rng.normal(size=100)])
    >>> y = X @ [1.0, 0.5] + rng.normal(size=20)[g] + rng.normal(size=100)
    >>> fit = fit_random_intercept(X, y, g)
    >>> bread, scores = random_intercept_scores(fit, X, y)
    >>> bool(np.allclose(bread @ scores.sum(axis=0), 0))  # the GLS normal equations hold at beta
    True
    """
    X = np.asarray(X, float)
    y = np.asarray(y, float)
    ratio = fit.sigma2_b / fit.sigma2 if fit.sigma2 > 0 else 0.0
    codes = np.asarray(fit.codes, dtype=np.int64)
    counts = np.bincount(codes, minlength=fit.n_groups)
    shrink = ratio / (1.0 + counts * ratio)
    sums = np.column_stack([np.bincount(codes, weights=X[:, j], minlength=fit.n_groups) for j in range(X.shape[1])])
    vx = X - shrink[codes, None] * sums[codes]
    bread = np.linalg.inv(X.T @ vx)
    return bread, vx * (y - X @ fit.beta)[:, None]


# --------------------------------------------------------------------------- random slopes
#
# The model with q random effects per group is ``y = X beta + Z b + e`` with
# ``b_j ~ N(0, sigma^2 Lambda Lambda')`` for group j and ``e ~ N(0, sigma^2)``.
# lme4's ``theta`` holds the free entries of the lower-triangular relative
# covariance factor ``Lambda`` (column by column, block by block). With
# ``M_j = I + Lambda' Z_j'Z_j Lambda`` (q x q) the pieces of the profiled
# criterion need only per-group cross-products, computed once:
#
#   X'V^-1 X = X'X - sum_j (Lambda' Z_j'X_j)' M_j^-1 (Lambda' Z_j'X_j), likewise for y,
#   log|V| = sum_j log|M_j|,
#
# so an evaluation costs O(G q^2 p + G q p^2), whatever N. The derivative
# with respect to ``D = Lambda Lambda'`` is
#
#   dF/dD = sum_j H_j - (dof / r^2) sum_j u_j u_j' - [REML] sum_j W_j A^-1 W_j'
#
# with H_j = Z_j'V_j^-1 Z_j, u_j = Z_j'V_j^-1 (y_j - X_j beta), W_j = Z_j'V_j^-1 X_j
# (all from the same solves), and dF/dLambda = 2 (dF/dD) Lambda.


@dataclass(frozen=True)
class SlopesFit:
    """State of a fitted model with several random effects per group (plain arrays).

    ``cov_re`` is the covariance matrix of the random effects (sigma^2 Lambda Lambda'),
    ``ranef`` the BLUPs (one row per group, one column per effect), ``theta``
    lme4's parameters, ``boundary`` lme4's ``isSingular`` rule (a diagonal
    entry of theta below 1e-4) applied to theta for the columns of Z scaled
    to unit root mean square, so that it does not depend on the slope's units.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    cov_re: np.ndarray
    theta: np.ndarray
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


def theta_pattern(blocks) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of ``Lambda`` for each entry of ``theta``, in lme4's order.

    ``blocks`` lists the sizes of the independent blocks of random effects:
    ``[2]`` for ``(1 + x | g)`` (a full 2 x 2 lower triangle), ``[1, 1]`` for
    ``(1 + x || g)`` (a diagonal). Within a block lme4 orders the lower
    triangle column by column.
    """
    rows, cols, offset = [], [], 0
    for size in blocks:
        for c in range(size):
            for r in range(c, size):
                rows.append(offset + r)
                cols.append(offset + c)
        offset += size
    return np.array(rows, dtype=int), np.array(cols, dtype=int)


def _cholesky(M: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of small SPD matrices (G x q x q), by loops over q, vectorised over G.

    For the small q of random effects this is several times faster than
    LAPACK called once per group.
    """
    q = M.shape[1]
    L = np.zeros_like(M)
    for j in range(q):
        L[:, j, j] = np.sqrt(M[:, j, j] - np.einsum("gk,gk->g", L[:, j, :j], L[:, j, :j]))
        for i in range(j + 1, q):
            L[:, i, j] = (M[:, i, j] - np.einsum("gk,gk->g", L[:, i, :j], L[:, j, :j])) / L[:, j, j]
    return L


def _forward(L: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``L^-1 R`` for stacks of lower-triangular ``L`` (G x q x q) and ``R`` (G x q x k)."""
    C = np.empty_like(R)
    for i in range(L.shape[1]):
        acc = R[:, i, :].copy()
        for j in range(i):
            acc -= L[:, i, j, None] * C[:, j, :]
        C[:, i, :] = acc / L[:, i, i, None]
    return C


def _backward(L: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``L'^-1 C`` for stacks of lower-triangular ``L`` (G x q x q) and ``C`` (G x q x k)."""
    q = L.shape[1]
    Y = np.empty_like(C)
    for i in reversed(range(q)):
        acc = C[:, i, :].copy()
        for j in range(i + 1, q):
            acc -= L[:, j, i, None] * Y[:, j, :]
        Y[:, i, :] = acc / L[:, i, i, None]
    return Y


def _small_matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A_g B_g`` for stacks (G x a x q) and (G x q x k) with small q: q broadcast multiply-adds."""
    out = A[:, :, 0, None] * B[:, None, 0, :]
    for j in range(1, A.shape[2]):
        out += A[:, :, j, None] * B[:, None, j, :]
    return out


class GroupProducts:
    """Per-group cross-products ``Z_j'[X_j, y_j, Z_j]`` and the global ``X'X``, ``X'y``, ``y'y``, computed once."""

    def __init__(self, X, y, Z, codes, n_groups, blocks):
        n, p = X.shape
        q = Z.shape[1]
        ind = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))
        # R0_j = Z_j' [X_j, y_j, Z_j]  (q x (p + 1 + q)), one column of Z at a time to bound memory
        XyZ = np.column_stack([X, y, Z])
        self.R0 = np.empty((n_groups, q, p + 1 + q))
        for k in range(q):
            self.R0[:, k, :] = np.asarray(ind @ (XyZ * Z[:, k, None]))
        self.ZX = self.R0[:, :, :p]
        self.Zy = self.R0[:, :, p]
        self.ZZ = self.R0[:, :, p + 1:]
        self.XX = X.T @ X
        self.Xy = X.T @ y
        self.yy = float(y @ y)
        self.n, self.p, self.q, self.G = n, p, q, n_groups
        self.rows, self.cols = theta_pattern(blocks)
        self.diag = self.rows == self.cols

    def factor(self, theta) -> np.ndarray:
        lam = np.zeros((self.q, self.q))
        lam[self.rows, self.cols] = theta
        return lam

    def solve(self, theta):
        """GLS pieces at ``theta``: A = X'V^-1X, beta, r^2, log|V|, and the factors the gradient and BLUPs reuse.

        With ``R_j = Lambda' R0_j = [Lambda'Z'X, Lambda'Z'y, Lambda'Z'Z]`` and
        ``M_j = I + Lambda'Z_j'Z_j Lambda = L_j L_j'``: ``C_j = L_j^-1 R_j`` and
        ``sum_j C_j'C_j`` is what V^-1 takes off ``X'X``, ``X'y`` and ``y'y``.
        """
        lam = self.factor(theta)
        G, q, p = self.G, self.q, self.p
        R = np.zeros_like(self.R0)
        for a in range(q):
            for b in range(a, q):  # Lambda is lower triangular: (Lambda')_{ab} = Lambda_{ba}, zero for b < a
                if lam[b, a] != 0.0:
                    R[:, a, :] += lam[b, a] * self.R0[:, b, :]
        M = (R[:, :, p + 1:].reshape(G * q, q) @ lam).reshape(G, q, q)
        M[:, np.arange(q), np.arange(q)] += 1.0
        L = _cholesky(M)
        C = _forward(L, R)
        Cx = C[:, :, :p + 1].reshape(G * q, p + 1)
        cross = Cx.T @ Cx
        A = self.XX - cross[:p, :p]
        b = self.Xy - cross[:p, p]
        yVy = self.yy - cross[p, p]
        beta = np.linalg.solve(A, b)
        r2 = yVy - float(b @ beta)
        logdet_v = 2.0 * float(np.log(L[:, np.arange(q), np.arange(q)]).sum())
        return A, beta, r2, logdet_v, lam, L, C

    def conditional_modes(self, theta):
        """BLUPs ``b_j = Lambda M_j^-1 Lambda' Z_j'(y_j - X_j beta)`` (G x q) at ``theta``."""
        A, beta, r2, _, lam, L, C = self.solve(theta)
        p = self.p
        MR = _backward(L, C[:, :, :p + 1])
        u = MR[:, :, p] - MR[:, :, :p] @ beta
        return u @ lam.T, A, beta, r2, lam

    def criterion(self, theta, reml: bool, with_gradient: bool = False):
        """lme4's deviance (ML) or REML criterion at ``theta``, and optionally its gradient."""
        A, beta, r2, logdet_v, lam, L, C = self.solve(theta)
        p, G, q = self.p, self.G, self.q
        dof = self.n - p if reml else self.n
        if r2 <= 0:
            return (np.inf, np.zeros(len(theta))) if with_gradient else np.inf
        value = logdet_v + dof * (1.0 + _LOG2PI + np.log(r2 / dof))
        if reml:
            value += float(np.linalg.slogdet(A)[1])
        if not with_gradient:
            return value
        # Z'V^-1 v = Z'v - (Z'Z Lambda) M^-1 Lambda'Z'v for v = X, y and Z
        MR = _backward(L, C)
        SL = (self.ZZ.reshape(G * q, q) @ lam).reshape(G, q, q)
        corr = _small_matmul(SL, MR)
        W = self.ZX - corr[:, :, :p]
        e = self.Zy - self.ZX @ beta - (corr[:, :, p] - corr[:, :, :p] @ beta)
        H_sum = self.ZZ.sum(axis=0) - corr[:, :, p + 1:].sum(axis=0)
        grad_d = H_sum - (dof / r2) * (e.T @ e)
        if reml:
            WA = (W.reshape(G * q, p) @ np.linalg.inv(A)).reshape(G, q, p)
            grad_d -= np.swapaxes(WA, 0, 1).reshape(q, G * p) @ np.swapaxes(W, 0, 1).reshape(q, G * p).T
        grad_d = 0.5 * (grad_d + grad_d.T)
        grad_lam = 2.0 * grad_d @ lam
        return value, grad_lam[self.rows, self.cols]


def fit_random_slopes(X, y, Z, groups, *, blocks, reml: bool = True, start=None) -> SlopesFit:
    """Fit ``y ~ X + (Z | groups)`` by profiled ML or REML, as ``lme4::lmer``.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design matrix (full column rank).
    y : ndarray, shape (n,)
        Response.
    Z : ndarray, shape (n, q)
        Random-effects design (e.g. a column of ones and the slope variable).
    groups : array_like, shape (n,)
        Group labels (one grouping factor).
    blocks : sequence of int
        Sizes of the independent blocks of columns of ``Z`` (sum ``q``): ``[q]``
        for correlated effects, ``[1] * q`` for lme4's ``||``.
    reml : bool, default True
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    start : array_like, optional
        Starting ``theta``; lme4's default (identity factor) otherwise.

    Returns
    -------
    SlopesFit
        Estimates, covariance of the fixed effects, covariance of the random
        effects, log-likelihood and BLUPs.
    """
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float).ravel()
    Z = np.ascontiguousarray(Z, dtype=float)
    codes, labels = pd.factorize(np.asarray(groups), sort=True)
    if (codes < 0).any():
        raise ValueError("groups has missing values")
    if sum(blocks) != Z.shape[1]:
        raise ValueError(f"blocks {list(blocks)} do not add up to the {Z.shape[1]} columns of Z")
    labels = np.asarray(labels)
    # Work with the columns of Z scaled to unit root mean square: Z Lambda = (Z / s)(diag(s) Lambda), and
    # diag(s) Lambda is lower triangular with the same blocks, so it is the same model with a better-conditioned
    # theta (a slope variable in days or in thousands no longer puts theta at 1e-4 or 1e4). theta is mapped back.
    scale = np.sqrt(np.mean(Z * Z, axis=0))
    scale[scale == 0] = 1.0
    prods = GroupProducts(X, y, Z / scale, codes, len(labels), blocks)
    if start is None:
        theta0 = np.where(prods.diag, 1.0, 0.0)
    else:
        theta0 = (scale[:, None] * prods.factor(np.asarray(start, float)))[prods.rows, prods.cols]
    n_eval = 0

    def fun(theta):
        nonlocal n_eval
        n_eval += 1
        return prods.criterion(theta, reml, with_gradient=True)

    # Unconstrained in theta: the criterion depends on Lambda Lambda' only, so a negative diagonal entry is the
    # same model as its column negated. (Bounding the diagonal at 0, lme4's way, traps a gradient method: at
    # Lambda_kk = 0 the slope along Lambda_kk of the last column is exactly zero, a saddle it cannot leave.)
    opt = so.minimize(fun, theta0, jac=True, method="L-BFGS-B",
                      options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000, "maxcor": 20})
    theta, value = np.asarray(opt.x, float), float(opt.fun)
    converged = bool(opt.success) or "ABNORMAL" in str(opt.message)  # L-BFGS-B stops "abnormally" at machine precision
    theta, value, n_newton = _polish(prods, theta, value, reml)
    n_eval += n_newton
    theta, value = _canonical(prods, theta, value, reml)
    ranef, A, beta, r2, lam = prods.conditional_modes(theta)
    _, grad = prods.criterion(theta, reml, with_gradient=True)
    free = ~(prods.diag & (theta == 0.0))  # at a diagonal held at 0 the criterion may rise either way
    converged = converged and bool(np.all(np.abs(grad[free]) < 2e-3))  # lme4's gradient tolerance (0.002)
    # lme4's isSingular(tol = 1e-4), on the scaled theta so that it does not depend on the slope's units
    boundary = bool(np.any(theta[prods.diag] < 1e-4))
    lam = lam / scale[:, None]  # back to the columns of Z as given
    theta = lam[prods.rows, prods.cols]
    ranef = ranef / scale
    dof = prods.n - prods.p if reml else prods.n
    sigma2 = r2 / dof
    cov = sigma2 * np.linalg.inv(A)
    return SlopesFit(
        beta=beta,
        cov_beta=cov,
        sigma2=float(sigma2),
        cov_re=sigma2 * (lam @ lam.T),
        theta=theta,
        log_likelihood=-0.5 * value,
        reml=reml,
        n=prods.n,
        n_groups=len(labels),
        ranef=ranef,
        group_labels=labels,
        converged=converged,
        boundary=boundary,
        n_eval=n_eval,
        codes=codes,
    )


def _canonical(prods, theta, value, reml):
    """lme4's form of ``theta``: a non-negative diagonal (negating a column), exact zeros at a boundary.

    A diagonal entry below 1e-7 (relative to the largest) is set to 0 when the
    criterion does not rise by more than rounding, as lme4 reports a singular fit.
    """
    lam = prods.factor(theta)
    lam = lam * np.where(np.diag(lam) < 0, -1.0, 1.0)[None, :]
    theta = lam[prods.rows, prods.cols]
    scale = max(1.0, float(np.max(np.abs(theta))))
    for i in np.flatnonzero(prods.diag & (np.abs(theta) < 1e-7 * scale)):
        trial = theta.copy()
        trial[i] = 0.0
        new = prods.criterion(trial, reml)
        if new <= value + 1e-12 * max(1.0, abs(value)):
            theta, value = trial, min(value, new)
    return theta, value


def _polish(prods, theta, value, reml, steps: int = 8):
    """Newton steps on ``theta`` (Hessian by central differences of the exact gradient).

    A step is kept only if the criterion does not rise beyond its rounding
    error (near the optimum it is flat to rounding, while the gradient still
    points the way); the loop stops when the Hessian is not positive definite
    or the step is below rounding.
    """
    n_eval = 0
    m = len(theta)
    for _ in range(steps):
        _, grad = prods.criterion(theta, reml, with_gradient=True)
        n_eval += 1
        H = np.empty((m, m))
        for i in range(m):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            H[:, i] = (prods.criterion(up, reml, with_gradient=True)[1]
                       - prods.criterion(down, reml, with_gradient=True)[1]) / (2 * h)
            n_eval += 2
        H = 0.5 * (H + H.T)
        if not np.all(np.isfinite(H)) or np.any(np.linalg.eigvalsh(H) <= 0):
            break
        step = -np.linalg.solve(H, grad)
        candidate = theta + step
        new, new_grad = prods.criterion(candidate, reml, with_gradient=True)
        n_eval += 1
        flatter = np.linalg.norm(new_grad) < np.linalg.norm(grad)
        if not (new <= value or (flatter and new <= value + 1e-10 * abs(value))):  # rise within rounding only
            break
        small = np.max(np.abs(step)) <= 1e-12 * max(1.0, np.max(np.abs(theta)))
        theta, value = candidate, new
        if small:
            break
    return theta, value, n_eval


# --------------------------------------------------------------------------- nested random intercepts
#
# ``y = X beta + u[o] + v[c] + e`` with ``u ~ N(0, sigma^2 b)`` per outer group ``o`` (e.g. a manager),
# ``v ~ N(0, sigma^2 a)`` per cell ``c`` (an inner group within one outer group: an employee under that
# manager) and ``e ~ N(0, sigma^2)``: lme4's ``(1 | outer) + (1 | outer:inner)``, or ``(1 | outer/inner)``.
# Scaled so that sigma^2 = 1, an outer group's covariance is ``V_o = I + a sum_c 1_c 1_c' + b 1 1'``.
# Two rank-one updates (Sherman-Morrison) invert it through sums alone. With a cell's size ``n_c``,
# ``D_c = 1 + a n_c``, the outer group's ``c_o = sum_c n_c / D_c`` and ``E_o = 1 + b c_o``:
#
#   X'V^-1 X = X'X - sum_c (a / D_c) s_c s_c' - sum_o (b / E_o) T_o T_o',   T_o = sum_c s_c / D_c
#   log|V|   = sum_c log D_c + sum_o log E_o
#
# (``s_c`` the cell's column sums of X; the same with y), so an evaluation costs O(C p^2) for C cells,
# whatever N. The BLUPs are ``u_o = (b / E_o) sum_c rho_c / D_c`` and ``v_c = (a / D_c)(rho_c - n_c u_o)``
# with ``rho_c`` the cell's sum of ``y - X beta``. The criterion (lme4's deviance or REML criterion,
# profiled over beta and sigma^2) is minimised over lme4's ``theta = (sqrt(a), sqrt(b))`` with its analytic
# gradient, then polished by Newton steps on that gradient.


@dataclass(frozen=True)
class NestedFit:
    """State of a fitted model with nested random intercepts (plain arrays).

    ``variance_outer`` and ``variance_inner`` are the variances of the outer
    groups' and the cells' intercepts; ``ranef_outer`` and ``ranef_cell`` their
    BLUPs, labelled by ``outer_labels`` and ``cell_outer``/``cell_inner``;
    ``outer_codes``/``cell_codes`` give each row's outer group and cell.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: float
    variance_outer: float
    variance_inner: float
    theta: np.ndarray
    log_likelihood: float
    reml: bool
    n: int
    ranef_outer: np.ndarray
    ranef_cell: np.ndarray
    outer_labels: np.ndarray
    cell_outer: np.ndarray
    cell_inner: np.ndarray
    outer_codes: np.ndarray
    cell_codes: np.ndarray
    converged: bool
    boundary: bool
    n_eval: int


class _NestedSums:
    """Cell sums of a nested design, computed once; the criterion and its gradient at ``(a, b)``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, cell_codes: np.ndarray, cell_outer: np.ndarray, n_outer: int):
        n, p = X.shape
        n_cells = len(cell_outer)
        cells = sp.csr_matrix((np.ones(n), (cell_codes, np.arange(n))), shape=(n_cells, n))
        self.n_c = np.asarray(cells.sum(axis=1)).ravel()
        self.SX = np.asarray(cells @ X)  # C x p
        self.Sy = np.asarray(cells @ y).ravel()
        # outer group of each cell, as a sparse O x C sum
        self.P = sp.csr_matrix((np.ones(n_cells), (cell_outer, np.arange(n_cells))), shape=(n_outer, n_cells))
        self.XtX, self.Xty, self.yty = X.T @ X, X.T @ y, float(y @ y)
        self.n, self.p = n, p

    def solve(self, a: float, b: float) -> dict:
        """The GLS pieces at ``(a, b)``: ``M = X'V^-1 X``, ``beta``, residual sum of squares ``r`` and their parts."""
        n_c, SX, Sy = self.n_c, self.SX, self.Sy
        D = 1.0 + a * n_c
        w, d = a / D, 1.0 / D
        T = np.asarray(self.P @ (SX * d[:, None]))
        t = self.P @ (Sy * d)
        c = self.P @ (n_c * d)
        E = 1.0 + b * c
        e = b / E
        M = self.XtX - (SX * w[:, None]).T @ SX - (T * e[:, None]).T @ T
        m = self.Xty - SX.T @ (w * Sy) - T.T @ (e * t)
        q = self.yty - float(w @ (Sy * Sy)) - float(e @ (t * t))
        beta = np.linalg.solve(M, m)
        r = q - float(m @ beta)
        return dict(D=D, w=w, d=d, T=T, t=t, c=c, E=E, e=e, M=M, beta=beta, r=r)

    def criterion(self, a: float, b: float, reml: bool) -> float:
        """Twice the negative profiled log-likelihood (lme4's deviance or REML criterion)."""
        s = self.solve(a, b)
        logdet_v = float(np.sum(np.log(s["D"])) + np.sum(np.log(s["E"])))
        if reml:
            dof = self.n - self.p
            return logdet_v + float(np.linalg.slogdet(s["M"])[1]) + dof * (1.0 + _LOG2PI + np.log(s["r"] / dof))
        return logdet_v + self.n * (1.0 + _LOG2PI + np.log(s["r"] / self.n))

    def gradient(self, a: float, b: float, reml: bool) -> np.ndarray:
        """Derivatives of :meth:`criterion` with respect to ``a`` and ``b``."""
        s = self.solve(a, b)
        n_c, SX, D, E, e, T, beta = self.n_c, self.SX, s["D"], s["E"], s["e"], s["T"], s["beta"]
        dw = 1.0 / D**2  # d(a / D_c) / da
        dd = -n_c / D**2  # d(1 / D_c) / da
        dc = self.P @ (n_c * dd)
        de_a, de_b = -b * b * dc / E**2, 1.0 / E**2
        dT = np.asarray(self.P @ (SX * dd[:, None]))
        rho_c = self.Sy - SX @ beta  # cells' residual sums
        rho_o = s["t"] - T @ beta  # outer groups' weighted residual sums
        drho_o = self.P @ (rho_c * dd)
        dr_a = -float(dw @ rho_c**2) - float(de_a @ rho_o**2) - 2.0 * float(e @ (rho_o * drho_o))
        dr_b = -float(de_b @ rho_o**2)
        g_a = float(np.sum(n_c / D)) + float(np.sum(b * dc / E))
        g_b = float(np.sum(s["c"] / E))
        dof = self.n - self.p if reml else self.n
        g_a += dof * dr_a / s["r"]
        g_b += dof * dr_b / s["r"]
        if reml:  # d log|M| = tr(M^-1 dM)
            Minv = np.linalg.inv(s["M"])
            quad_c = np.einsum("ij,jk,ik->i", SX, Minv, SX)
            quad_o = np.einsum("ij,jk,ik->i", T, Minv, T)
            cross_o = np.einsum("ij,jk,ik->i", dT, Minv, T)
            g_a -= float(dw @ quad_c) + float(de_a @ quad_o) + 2.0 * float(e @ cross_o)
            g_b -= float(de_b @ quad_o)
        return np.array([g_a, g_b])


@fill_doc(**_FIT_DOCS)
def fit_nested_intercepts(X: np.ndarray, y: np.ndarray, outer, inner, *, reml: bool = True) -> NestedFit:
    """Fit ``y ~ X + (1 | outer) + (1 | outer:inner)`` by profiled ML or REML.

    Parameters
    ----------
    {x_y}
    outer, inner : array_like, shape (n,)
        Labels of the outer groups (e.g. managers) and of the inner groups
        within them (e.g. employees); a cell is an (outer, inner) pair, so an
        inner label seen under two outer groups makes two cells, as lme4's
        ``outer:inner``.
    {reml}

    Returns
    -------
    NestedFit
        Estimates, covariance of the fixed effects, both variances,
        log-likelihood and the predicted random effects (BLUPs) of both levels.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> outer = np.repeat(np.arange(40), 12); inner = np.tile(np.repeat(np.arange(4), 3), 40)
    >>> u, v = rng.normal(0, 1.0, 40), rng.normal(0, 0.7, 160)
    >>> y = 2 + u[outer] + v[outer * 4 + inner] + rng.normal(0, 0.5, 480)
    >>> fit = fit_nested_intercepts(np.ones((480, 1)), y, outer, inner)
    >>> bool(0.3 < fit.variance_inner < 0.8 and fit.sigma2 < 0.4)
    True
    """
    X = np.ascontiguousarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float).ravel()
    outer_codes, outer_labels = pd.factorize(np.asarray(outer), sort=True)
    inner_codes, inner_labels = pd.factorize(np.asarray(inner), sort=True)
    if (outer_codes < 0).any() or (inner_codes < 0).any():
        raise ValueError("outer and inner have missing values")
    pair = outer_codes.astype(np.int64) * len(inner_labels) + inner_codes
    cell_codes, pairs = pd.factorize(pair, sort=True)
    cell_outer = (pairs // len(inner_labels)).astype(np.int64)
    sums = _NestedSums(X, y, cell_codes, cell_outer, len(outer_labels))

    def f(phi):
        return sums.criterion(phi[0] ** 2, phi[1] ** 2, reml)

    def g(phi):
        return sums.gradient(phi[0] ** 2, phi[1] ** 2, reml) * 2.0 * phi  # chain rule: d tau / d phi = 2 phi

    opt = so.minimize(f, np.ones(2), jac=g, method="L-BFGS-B", bounds=[(0.0, None)] * 2,
                      options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 2000})
    phi, n_eval, converged = np.array(opt.x, float), int(opt.nfev), bool(opt.success)
    # a variance at its bound: lme4's singular fit, when the criterion rises from zero in that direction
    at_zero = (phi < 1e-4) & (sums.gradient(*np.where(phi < 1e-4, 0.0, phi**2), reml) >= 0.0)
    phi[at_zero] = 0.0
    free = ~at_zero
    if free.any():  # Newton steps on the gradient in the free directions (finite-difference Hessian)
        for _ in range(6):
            tau = phi**2
            grad = sums.gradient(*tau, reml)[free]
            h = 1e-6 * np.maximum(tau[free], 1e-3)
            H = np.empty((free.sum(), free.sum()))
            for j, k in enumerate(np.flatnonzero(free)):
                up, down = tau.copy(), tau.copy()
                up[k] += h[j]
                down[k] -= min(h[j], tau[k])
                H[:, j] = (sums.gradient(*up, reml)[free] - sums.gradient(*down, reml)[free]) / (up[k] - down[k])
            n_eval += 1 + 2 * free.sum()
            try:
                step = np.linalg.solve(H, grad)
            except np.linalg.LinAlgError:
                break
            new = tau.copy()
            new[free] = np.maximum(tau[free] - step, 0.0)
            # the criterion is flat to its rounding error here; the gradient tells whether the step went closer
            if np.linalg.norm(sums.gradient(*new, reml)[free]) >= np.linalg.norm(grad):
                break
            phi = np.sqrt(new)
            if np.max(np.abs(step)) <= 1e-13 * max(1.0, float(np.max(tau[free]))):
                break
        # L-BFGS-B may stop on its line search this close to the optimum: converged when the criterion is flat
        # in each free direction (its derivative with respect to log tau below 1e-6)
        tau = phi**2
        converged = converged or bool(np.all(np.abs(sums.gradient(*tau, reml)[free] * tau[free]) < 1e-6))
    a, b = phi**2
    s = sums.solve(a, b)
    dof = sums.n - sums.p if reml else sums.n
    sigma2 = s["r"] / dof
    rho_c = sums.Sy - sums.SX @ s["beta"]
    u = s["e"] * (sums.P @ (rho_c * s["d"]))
    v = s["w"] * (rho_c - sums.n_c * u[cell_outer])
    return NestedFit(
        beta=s["beta"], cov_beta=sigma2 * np.linalg.inv(s["M"]), sigma2=float(sigma2),
        variance_outer=float(b * sigma2), variance_inner=float(a * sigma2), theta=phi,
        log_likelihood=-0.5 * sums.criterion(a, b, reml), reml=reml, n=sums.n, ranef_outer=u, ranef_cell=v,
        outer_labels=np.asarray(outer_labels), cell_outer=cell_outer,
        cell_inner=np.asarray(inner_labels)[pairs % len(inner_labels)], outer_codes=outer_codes,
        cell_codes=cell_codes, converged=converged, boundary=bool(at_zero.any()), n_eval=n_eval,
    )
