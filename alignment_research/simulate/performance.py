"""Performance: latent performance per cycle, the ratings cut from it, and the latest known rating.

Latent performance is a stationary AR(1) over the review cycles
(``performance_autocorrelation``), drawn for every cycle as a *potential*
path; the rating (1..5) cuts it at the normal quantiles of the cumulative
``rating_shares``. A spell is rated in a cycle when hired at least
``review_min_tenure_days`` before the cycle's end and still employed on that
day (the engine truncates the potential path at the exit).

The rating of cycle ``c`` (calendar year ``first window year - 1 + c``) is
*known* from 1 January of the next year: ``latest_known_rating`` gives, for
each window year, the latest rating known on its 1 January.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

__all__ = ["Performance", "draw_performance", "latest_known_rating", "rating_cuts", "review_table"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .people import Batch


@dataclass
class Performance:
    """Potential performance of each new spell in every cycle (spells x cycles)."""

    latent: np.ndarray  # AR(1) latent performance, standard normal margins
    rating: np.ndarray  # rating 1..5 cut from it (float)
    rateable: np.ndarray  # tenure rule met at the cycle's end (employment is checked later)


def rating_cuts(rating_shares) -> np.ndarray:
    """Compute the latent thresholds between ratings 1..5: normal quantiles of the cumulative shares.

    Parameters
    ----------
    rating_shares : sequence of float
        Share of each rating (need not sum to 1).

    Returns
    -------
    numpy.ndarray
        The four thresholds, increasing.

    Examples
    --------
    >>> from alignment_research.simulate.performance import rating_cuts
    >>> rating_cuts([1, 1, 1, 1]).round(3).tolist()
    [-0.674, 0.0, 0.674]
    """
    from scipy.stats import norm  # deferred: scipy.stats would double the import time of `simulate`; only a run needs it

    shares = np.asarray(rating_shares, float)
    return norm.ppf(np.cumsum(shares / np.sum(rating_shares))[:-1])


def draw_performance(engine: Engine, batch: Batch) -> Performance:
    """Draw the latent performance path and the potential ratings of the batch.

    Parameters
    ----------
    engine : Engine
        The engine (its generator, calendar and rating cuts).
    batch : Batch
        The new spells.

    Returns
    -------
    Performance
        ``latent`` and ``rating`` (spells x cycles) and ``rateable`` (long
        enough in post by the cycle's end).

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.performance import draw_performance
    >>> performance = draw_performance(engine, ceo)
    >>> performance.rating.shape == (1, engine.n_cycles)
    True
    """
    truth, rng, n = engine.truth, engine.rng, batch.size
    rho = truth.performance_autocorrelation
    latent = np.empty((n, engine.n_cycles))
    latent[:, 0] = rng.normal(size=n)
    for c in range(1, engine.n_cycles):
        latent[:, c] = rho * latent[:, c - 1] + np.sqrt(1 - rho**2) * rng.normal(size=n)
    rating = 1 + np.searchsorted(engine.rating_cuts, latent).astype(float)
    rateable = batch.hire_day[:, None] <= engine.cycle_end_day[None, :] - truth.review_min_tenure_days
    return Performance(latent=latent, rating=rating, rateable=rateable)


def latest_known_rating(rating: np.ndarray, n_years: int) -> np.ndarray:
    """Carry the latest known rating into each window year (cycle c is known from the next year's 1 January).

    Parameters
    ----------
    rating : numpy.ndarray
        Ratings, spells x cycles (NaN where not rated).
    n_years : int
        Number of window years.

    Returns
    -------
    numpy.ndarray
        Spells x window years, NaN until a first rating is known.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.performance import latest_known_rating
    >>> latest_known_rating(np.array([[3.0, np.nan, 4.0]]), 3).tolist()
    [[3.0, 3.0, 4.0]]
    """
    out = np.full((rating.shape[0], n_years), np.nan)
    current = np.full(rating.shape[0], np.nan)
    for year in range(n_years):
        cycle = year  # cycle index c (year y0 - 1 + c) is known in window year index y >= c
        if cycle < rating.shape[1]:
            current = np.where(np.isnan(rating[:, cycle]), current, rating[:, cycle])
        out[:, year] = current
    return out


def review_table(engine: Engine, in_data_spells: np.ndarray) -> pd.DataFrame:
    """List one review per spell in the data and cycle it was rated in.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    in_data_spells : numpy.ndarray
        Spell numbers of the spells in the data.

    Returns
    -------
    pandas.DataFrame
        ``spell, cycle, rating, target_attainment`` (spell and cycle numbers).

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.performance import review_table
    >>> review_table(engine, np.flatnonzero(in_data)).columns.tolist()
    ['spell', 'cycle', 'rating', 'target_attainment']
    """
    rating = engine.spells["rating"]
    row, cycle = np.nonzero(~np.isnan(rating[in_data_spells]))
    spell = in_data_spells[row]
    return pd.DataFrame({"spell": spell, "cycle": cycle, "rating": rating[spell, cycle].astype(int),
                         "target_attainment": engine.spells["target_attainment"][spell, cycle]})
