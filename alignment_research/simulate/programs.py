"""Programmes: leadership-development nominations of managers, employee programmes, and their enrolment rows.

*Leadership development.* On the first day of each quarter of the window, a
manager (in a manager position, in the data) with a known rating who has not
enrolled starts with probability ``expit(logit(program_uptake) +
program_selection * (latest known rating - 3))``, on a day drawn uniformly
over the next 31 days (dropped if after the exit or the window end):
selection on performance, which also drives their reports' engagement and
exits (confounding). It lasts ``program_days``.

*Employee programmes.* Each spell in the data enrols in coaching, mentoring
and training with the yearly probabilities ``employee_programs`` (no effect
on anything), once at most, on a day uniform over its time in the window;
planned lengths come from ``PROGRAM_DAYS``. With ``practices`` the starts are
drawn on each spell's potential path instead (see `practices`).

Every enrolment is withdrawn early with probability ``withdrawal_share``;
one that outlives its spell is ``withdrawn`` (or ``in_progress`` when the
person is still employed at the window end).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .days import NO_DAY, YEAR, expit, logit, to_day_number
from .truth import PROGRAM_DAYS

__all__ = ["draw_programs", "nominate_leadership_development"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine


def nominate_leadership_development(engine: Engine, candidates: np.ndarray) -> None:
    """Nominate candidate managers quarterly; record each leadership-development start in the engine's spell arrays.

    Parameters
    ----------
    engine : Engine
        The engine, its spells concatenated up to the candidates' depth.
    candidates : numpy.ndarray
        Spell numbers of the managers who may start.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> from alignment_research.simulate.days import NO_DAY
    >>> from alignment_research.simulate.programs import nominate_leadership_development
    >>> managers = np.flatnonzero(engine.tree_is_manager[engine.spells["slot"]])
    >>> nominate_leadership_development(engine, managers)
    >>> bool((engine.spells["leadership_start_day"][managers] >= engine.window_start_day).all())
    True
    """
    truth, rng, spells = engine.truth, engine.rng, engine.spells
    start_day = spells["leadership_start_day"]
    window_years = range(engine.first_window_year, truth.window_end.year + 1)
    quarters = [to_day_number(dt.date(y, m, 1)) for y in window_years for m in (1, 4, 7, 10)]
    base = logit(truth.program_uptake)
    for quarter in quarters:
        year = min(int(engine.year_index(np.array([quarter]))[0]), spells["latest_rating"].shape[1] - 1)
        rating = spells["latest_rating"][candidates, year]
        draw = rng.random(len(candidates))
        start = quarter + rng.integers(0, 31, len(candidates))
        eligible = ((spells["hire_day"][candidates] <= quarter) & (spells["term_day"][candidates] > quarter)
                    & (start_day[candidates] == NO_DAY) & ~np.isnan(rating))
        enrol = eligible & (draw < expit(base + truth.program_selection * np.nan_to_num(rating - 3)))
        enrol &= (start < spells["term_day"][candidates]) & (start <= engine.window_end_day)
        start_day[candidates[enrol]] = start[enrol]
        engine.leadership_starts.append((candidates[enrol], start[enrol]))


def draw_programs(engine: Engine, spells: np.ndarray, end_day: np.ndarray, entry_day: np.ndarray, truth,
                  rng: np.random.Generator, starts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Draw the enrolments of the spells in the data: leadership development (drawn by depth) and employee programmes.

    Parameters
    ----------
    engine : Engine
        The engine after its run (leadership-development starts recorded).
    spells : numpy.ndarray
        Spell numbers of the spells in the data.
    end_day : numpy.ndarray
        Each spell's first day not employed within the window (the window
        end + 1 if none).
    entry_day : numpy.ndarray
        Each spell's first day in the window.
    truth : Truth
        The true parameters.
    rng : numpy.random.Generator
        The run's generator.
    starts : pandas.DataFrame, optional
        ``spell, program, start``: employee-programme starts drawn on each
        spell's path before its exit (`practices`); given, only the lengths
        and outcomes are drawn here.

    Returns
    -------
    pandas.DataFrame
        One row per enrolment (spell and day numbers).

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.days import NO_DAY
    >>> end_day = np.where(engine.spells["term_day"] == NO_DAY, engine.window_end_day + 1, engine.spells["term_day"])
    >>> entry_day = np.maximum(engine.spells["hire_day"], engine.window_start_day)
    >>> from alignment_research.simulate.programs import draw_programs
    >>> programs = draw_programs(engine, np.flatnonzero(in_data), end_day, entry_day, engine.truth, engine.rng)
    >>> "spell" in programs.columns
    True
    """
    window_end = engine.window_end_day
    lead_start = engine.spells["leadership_start_day"]
    leaders = spells[lead_start[spells] != NO_DAY]
    rows = [_enrolments(leaders, "leadership_development", lead_start[leaders], truth.program_days,
                        truth.program_days + 1, end_day, window_end, truth, rng)]
    years_in_window = (end_day - entry_day) / YEAR
    for program, rate in truth.employee_programs.items():
        if starts is None:
            p = 1 - (1 - rate) ** np.maximum(years_in_window[spells], 0)
            who = spells[rng.random(len(spells)) < p]
            start = entry_day[who] + np.floor(rng.random(len(who)) * (end_day[who] - entry_day[who])).astype(np.int64)
        else:
            drawn = starts[starts["program"].to_numpy() == program]
            who, start = drawn["spell"].to_numpy(np.int64), drawn["start"].to_numpy(np.int64)
        low, high = PROGRAM_DAYS.get(program, (30, 181))
        rows.append(_enrolments(who, program, start, low, high, end_day, window_end, truth, rng))
    return pd.concat(rows, ignore_index=True)


def _enrolments(who, program, start, lo, hi, end_day, window_end, truth, rng) -> pd.DataFrame:
    """Programme rows: planned length ``lo..hi-1`` days; withdrawn early, completed, or in progress."""
    who = np.asarray(who, np.int64)
    start = np.asarray(start, np.int64)
    length = rng.integers(lo, max(hi, lo + 1), len(who))
    end = start + length
    withdraw = rng.random(len(who)) < truth.withdrawal_share
    early = start + np.maximum(1, np.floor(rng.random(len(who)) * length)).astype(np.int64)
    end = np.where(withdraw, early, end)
    left_first = end >= end_day[who]  # left (or window ended) before the programme ended
    employed_at_end = end_day[who] > window_end
    status = np.where(withdraw, "withdrawn", "completed").astype(object)
    status = np.where(left_first & employed_at_end, "in_progress", np.where(left_first, "withdrawn", status))
    end = np.where(left_first & employed_at_end, NO_DAY,
                   np.where(left_first, np.maximum(end_day[who], start + 1), end))
    return pd.DataFrame({"spell": who, "program": program, "start": start, "end": end, "status": status})
