"""Day numbers: the engine's integer calendar (days since 1970-01-01), and two link functions.

The engine works on integer day numbers, never on dates: ``to_day_number`` turns a
date into one, ``to_dates`` turns an array back into ``datetime64[ns]``.
``NO_DAY`` (the largest int64) stands for "no date" (no termination, no
programme start), so an open spell compares as ending after every day.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

__all__ = ["NO_DAY", "YEAR", "cycle_years", "expit", "logit", "to_dates", "to_day_number"]

if TYPE_CHECKING:  # annotations only
    from .truth import Truth

_DAY0 = np.datetime64("1970-01-01", "D")
NO_DAY = np.iinfo(np.int64).max  # "no date" sentinel in internal day arrays
YEAR = 365.25  # days per year, for rates per year and person-years


def to_day_number(d: dt.date) -> int:
    """Day number of a date."""
    return int((np.datetime64(d, "D") - _DAY0).astype(np.int64))


def to_dates(days) -> np.ndarray:
    """``datetime64[ns]`` of day numbers (``NaT`` for ``NO_DAY``)."""
    days = np.asarray(days, dtype=np.int64)
    out = (_DAY0 + np.where(days == NO_DAY, 0, days).astype("timedelta64[D]")).astype("datetime64[ns]")
    out[days == NO_DAY] = np.datetime64("NaT")
    return out


def cycle_years(truth: Truth) -> list[int]:
    """Calendar years of the review cycles: the year before the window, then every window year."""
    return list(range(truth.window_start.year - 1, truth.window_end.year + 1))


def expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    return np.log(p) - np.log1p(-p)
