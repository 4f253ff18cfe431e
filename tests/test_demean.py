"""``demean`` sweeps every column at once: the same bits as one column at a time (the transformation it replaced)."""

import numpy as np
import pytest

from alignment_research._estimators import demean


def _column_by_column(values, codes, weights=None, tol=1e-10, max_iter=10_000):
    """The former implementation, kept as the reference: one np.bincount per column and set of codes."""
    codes = [np.asarray(c, dtype=np.int64) for c in codes]
    out = np.array(values, dtype=float, copy=True)
    w = None if weights is None else np.asarray(weights, dtype=float)
    counts = [np.bincount(c) if w is None else np.bincount(c, weights=w) for c in codes]
    for _ in range(max_iter):
        change = 0.0
        for c, n in zip(codes, counts):
            for j in range(out.shape[1]):
                column = out[:, j] if w is None else out[:, j] * w
                means = np.bincount(c, weights=column, minlength=len(n)) / n
                out[:, j] -= means[c]
                change = max(change, float(np.max(np.abs(means))))
        if len(codes) == 1 or change < tol:
            return out
    raise AssertionError("did not converge")


@pytest.mark.parametrize("n_sets", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_column_at_once_gives_the_same_bits(n_sets, weighted):
    rng = np.random.default_rng(n_sets + 10 * weighted)
    n = 3000
    values = rng.normal(size=(n, 7)) * [1, 10, 100, 0.01, 1, 5, 3] + rng.normal(size=7)
    codes = [rng.integers(0, size, n) for size in (40, 250, 9)[:n_sets]]
    weights = rng.uniform(0.2, 3.0, n) if weighted else None
    got = demean(values, codes, weights=weights)
    want = _column_by_column(values, codes, weights=weights)
    assert got.shape == values.shape
    assert np.array_equal(got, want)  # exactly: the same additions in the same order
    one = demean(values[:, 2], codes, weights=weights)  # a single column comes back flat
    assert one.shape == (n,)
    assert np.array_equal(one, _column_by_column(values[:, [2]], codes, weights=weights)[:, 0])


def test_one_set_removes_each_groups_mean():
    values = np.array([[1.0, 2.0], [3.0, 2.0], [10.0, -4.0], [14.0, 0.0]])
    got = demean(values, np.array([0, 0, 1, 1]))
    assert got.tolist() == [[-1.0, 0.0], [1.0, 0.0], [-2.0, -2.0], [2.0, 2.0]]


@pytest.mark.parametrize("weighted", [False, True])
def test_column_major_input_gives_the_same_bits_and_keeps_its_layout(weighted):
    # a frame's float block comes out column-major; the sweeps run row-major and the result keeps the input's layout
    rng = np.random.default_rng(7)
    n = 2000
    values = np.asfortranarray(rng.normal(size=(n, 4)) * [1, 10, 0.1, 3])
    codes = [rng.integers(0, 60, n), rng.integers(0, 7, n)]
    weights = rng.uniform(0.5, 2.0, n) if weighted else None
    got = demean(values, codes, weights=weights)
    assert got.flags.f_contiguous and not got.flags.c_contiguous
    assert np.array_equal(got, _column_by_column(np.ascontiguousarray(values), codes, weights=weights))
    assert np.array_equal(values, np.asfortranarray(values))  # the input is left as it was
