"""Feedback events: person-specific Poisson counts, uniform dates, given by the manager or a peer.

For each kind, a spell in the data gets ``Poisson(rate * feedback multiplier *
years in the window)`` events on days uniform over its time in the window.
With probability ``feedback_manager_share[kind]`` the giver is the manager on
the spell if employed that day, else whoever holds the manager's position
then; otherwise a random peer (same manager, employed that day), falling
back to the manager when there is none. Repeats of one employee, day and
giver are dropped (they would be exact duplicate rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .days import YEAR
from .organisation import PositionHolders

__all__ = ["draw_feedback"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine


def draw_feedback(engine: Engine, in_data: np.ndarray, end_day: np.ndarray, entry_day: np.ndarray, truth,
                  rng: np.random.Generator, manager_on=None, events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Draw the feedback events of the spells in the data.

    Each spell gets Poisson counts per kind (``truth.feedback_rates`` times
    the person's multiplier and years employed in the window) on uniform days;
    the giver is the manager on that day or a peer of the same team.
    ``manager_on(spells, days)``, given with job history, names the manager
    in force (else the manager at entry holds throughout); peers are always
    drawn from the team at entry.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    in_data : numpy.ndarray
        Boolean by spell: the spell is in the data.
    end_day : numpy.ndarray
        Each spell's first day not employed (the window end + 1 if still employed).
    entry_day : numpy.ndarray
        Each spell's first day in the window.
    truth : Truth
        The true parameters.
    rng : numpy.random.Generator
        The run's generator.
    manager_on : callable, optional
        ``manager_on(spells, days) -> managers``: the manager in force
        (`history.ManagerTimeline.on`).
    events : pandas.DataFrame, optional
        ``spell, day, kind``: the events drawn on each spell's path before its
        surveys and exit (`practices`); given, only their givers are drawn here.

    Returns
    -------
    pandas.DataFrame
        ``spell, date, kind, giver`` (spell and day numbers).

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.days import NO_DAY
    >>> end_day = np.where(engine.spells["term_day"] == NO_DAY, engine.window_end_day + 1, engine.spells["term_day"])
    >>> entry_day = np.maximum(engine.spells["hire_day"], engine.window_start_day)
    >>> from alignment_research.simulate.feedback import draw_feedback
    >>> draw_feedback(engine, in_data, end_day, entry_day, engine.truth, engine.rng).columns.tolist()
    ['spell', 'date', 'kind', 'giver']
    """
    spells = engine.spells
    in_data_spells = np.flatnonzero(in_data)
    manager_of = spells["manager"]
    order = np.argsort(manager_of[in_data_spells], kind="stable")
    team_members = in_data_spells[order]  # spells sorted by their manager
    team_manager = manager_of[team_members]
    holders = PositionHolders(in_data_spells, spells, engine.history_start_day, engine.window_end_day)
    out = []
    for kind, rate in truth.feedback_rates.items():
        if events is None:
            expected = (rate * spells["feedback_multiplier"][in_data_spells]
                        * np.maximum(end_day[in_data_spells] - entry_day[in_data_spells], 0) / YEAR)
            who = np.repeat(in_data_spells, rng.poisson(expected))
            day = entry_day[who] + np.floor(rng.random(len(who)) * (end_day[who] - entry_day[who])).astype(np.int64)
        else:
            drawn = events[events["kind"].to_numpy() == kind]
            who, day = drawn["spell"].to_numpy(np.int64), drawn["day"].to_numpy(np.int64)
        manager = manager_of[who] if manager_on is None else manager_on(who, day)  # the manager in force
        by_manager = rng.random(len(who)) < truth.feedback_manager_share.get(kind, 0.5)
        position = engine.tree_parent[spells["slot"][who]]
        if manager_on is not None:  # the position of the manager in force
            position = np.where(manager >= 0, spells["slot"][np.maximum(manager, 0)], position)
        boss = _boss_on(engine, holders, position, manager, day, in_data, end_day)
        # a peer: someone else with the same manager, employed on the day
        team = manager_of[who]  # peers: the team at entry
        low = np.searchsorted(team_manager, team, side="left")
        size = np.searchsorted(team_manager, team, side="right") - low
        pick = low + np.floor(rng.random(len(who)) * np.maximum(size, 1)).astype(np.int64)
        peer = (team_members[np.clip(pick, 0, len(team_members) - 1)] if len(team_members)
                else np.full(len(who), -1))
        peer_ok = ((team >= 0) & (size > 1) & (peer != who) & (spells["hire_day"][peer] <= day)
                   & (end_day[peer] > day))
        giver = np.where(by_manager | ~peer_ok, boss, peer)
        # one event per employee, day and giver (a second one would be an exact duplicate row)
        key = ((who.astype(np.int64) << 14) + (day - engine.history_start_day)) * (len(end_day) + 2) + (giver + 1)
        first = np.sort(np.unique(key, return_index=True)[1])
        out.append(pd.DataFrame({"spell": who[first], "date": day[first], "kind": kind, "giver": giver[first]}))
    return pd.concat(out, ignore_index=True)


def _boss_on(engine: Engine, holders: PositionHolders, position, manager, day, in_data, end_day) -> np.ndarray:
    """The manager on the spell if employed on the day, else the holder of the manager's position then (or -1)."""
    hire_day = engine.spells["hire_day"]
    row = np.maximum(manager, 0)
    employed = (manager >= 0) & (hire_day[row] <= day) & (end_day[row] > day)
    holder = holders.holder_on(position, day)
    h = np.maximum(holder, 0)
    holder = np.where((holder >= 0) & in_data[h] & (hire_day[h] <= day) & (end_day[h] > day), holder, -1)
    return np.where(employed, manager, holder)
