"""Programme enrolments: leadership development and employee programmes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .days import _NO_DAY


def _enrolments(who, program, start, lo, hi, tend, W1, truth, rng) -> pd.DataFrame:
    """Programme rows: planned length ``lo..hi-1`` days; withdrawn early, completed, or in progress."""
    who = np.asarray(who, np.int64)
    start = np.asarray(start, np.int64)
    length = rng.integers(lo, max(hi, lo + 1), len(who))
    end = start + length
    withdraw = rng.random(len(who)) < truth.withdrawal_share
    early = start + np.maximum(1, np.floor(rng.random(len(who)) * length)).astype(np.int64)
    end = np.where(withdraw, early, end)
    left_first = end >= tend[who]  # left (or window ended) before the programme ended
    employed_at_end = tend[who] > W1
    status = np.where(withdraw, "withdrawn", "completed").astype(object)
    status = np.where(left_first & employed_at_end, "in_progress", np.where(left_first, "withdrawn", status))
    end = np.where(left_first & employed_at_end, _NO_DAY, np.where(left_first, np.maximum(tend[who], start + 1), end))
    return pd.DataFrame({"spell": who, "program": program, "start": start, "end": end, "status": status})


