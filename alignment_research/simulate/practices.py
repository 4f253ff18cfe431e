"""The essay's practices: goal difficulty, who sets goals, revisions, and feedback drawn before what it affects.

With ``Truth.practices`` on, every draw here comes from the practices
generator (spawned from the run's after the history one), so the other draws
stay as they were; each effect is zero-safe (a zero effect adds exactly 0).

*Goals.* Each goal gets a difficulty 1..5 (``goal_difficulty_shares``), a
``set_with`` (``goal_set_with_shares``: employee, manager, jointly) and, with
probability ``goal_revision_share``, a revision day uniform from the day after
its goals are set to the cycle's end. Goal attainment adds
``attainment_difficulty_curvature * (difficulty - difficulty_turning_point)^2``
(an inverted U for a negative curvature), ``attainment_set_jointly`` for a goal
set jointly and ``attainment_alignment`` for a goal linked to a goal of the
manager in force (so the target attainment of a cycle rises by
``attainment_alignment`` per 1.0 of cascade alignment, its weighted share).
These effects do not pass down to child goals: a child's attainment follows
its parent's *base* attainment (the formula of `goals`). A revision adds
``attainment_revised`` when it falls before the owner's exit (else it is not
recorded and has no effect), applied once the exit is known (`apply_revisions`).

*Feedback events.* Each spell's events of every kind are drawn on its
potential path (``Poisson(rate * feedback multiplier * years from entry to
the window end)`` on uniform days, one per day and kind) before its surveys and
exit; the data keep those before the exit (`feedback`). Latent engagement on
a response day adds ``engagement_checkin_rate`` times the check-ins per month
in the ``checkin_window_months`` before it (the day itself excluded, months of
365.25 / 12 days: the scorecard's trailing rate); the voluntary log hazard
adds ``hr_checkin_rate`` times that rate and ``hr_recognitions`` times the
recognitions in the ``recognition_window_months``, both measured at the start
of each segment of the covariate path (the analysis intervals' starts). A
manager's first 360 review in the data moves their reports' latent
engagement and leadership by ``engagement_manager_360`` and
``leadership_manager_360`` from that day on (the manager in force).

*Employee programmes.* Starts are drawn on the potential path too (one
enrolment at most per programme, with probability ``1 - (1 - rate)^years``
over the years from entry to the window end, on a uniform day), so whether a
person has started by a date does not depend on their later exit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import SET_WITH
from .days import NO_DAY, YEAR

__all__ = ["SET_WITH_WORDS", "BatchEvents", "apply_revisions", "draw_batch_events", "draw_goal_practices",
           "draw_program_starts", "window_days"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .goals import Goals
    from .people import Batch, PersonDraws

#: The words of ``set_with``, by code.
#: The canonical ``set_with`` words (``config.SET_WITH``) as an array, indexed by the simulator's codes.
SET_WITH_WORDS = np.array(SET_WITH, dtype=object)
_DAYS_PER_MONTH = 365.25 / 12
_SPAN = np.int64(1) << 24  # days per spell in the sorted event keys


def window_days(months: float) -> int:
    """Count the days in a look-back of ``months`` months, rounded as the toolkit's trailing rates round them.

    Parameters
    ----------
    months : float
        Length of the look-back in months of 365.25 / 12 days.

    Returns
    -------
    int
        ``round(months * 365.25 / 12)``.

    Examples
    --------
    >>> from alignment_research.simulate.practices import window_days
    >>> window_days(3), window_days(6)
    (91, 183)
    """
    return int(round(months * _DAYS_PER_MONTH))


@dataclass
class BatchEvents:
    """The potential feedback events of a batch: per kind, sorted keys ``row * span + day``."""

    keys: dict  # kind -> sorted int64 keys (batch row, day)
    origin: int  # day subtracted before keying (the history start)
    first_360: np.ndarray  # per batch row: the first 360 review day, ``NO_DAY`` if none

    def count(self, kind: str, row, day, days: int) -> np.ndarray:
        """Events of ``kind`` of batch rows ``row`` dated in ``[day - days, day)`` (broadcast shapes)."""
        keys = self.keys.get(kind)
        row, day = np.broadcast_arrays(np.asarray(row, np.int64), np.asarray(day, np.int64))
        if keys is None or not len(keys):
            return np.zeros(row.shape)
        day = np.clip(day - self.origin, 0, _SPAN - 1)
        hi = np.searchsorted(keys, row * _SPAN + day, side="left")
        lo = np.searchsorted(keys, row * _SPAN + np.maximum(day - days, 0), side="left")
        return (hi - lo).astype(float)

    def rate(self, kind: str, row, day, months: float) -> np.ndarray:
        """Events per month of ``kind`` in the ``months`` before ``day`` (the day excluded)."""
        days = window_days(months)
        return self.count(kind, row, day, days) / (days / _DAYS_PER_MONTH)

    def table(self, spell_id: np.ndarray) -> dict[str, np.ndarray]:
        """The events as columns ``spell, day, kind`` (engine-wide spell numbers), kinds one after another."""
        keys = list(self.keys.values())
        joined = np.concatenate(keys) if keys else np.empty(0, np.int64)
        kinds = [np.full(len(k), kind, dtype=object) for kind, k in self.keys.items()]
        return {"spell": spell_id[joined // _SPAN], "day": joined % _SPAN + self.origin,
                "kind": np.concatenate(kinds) if kinds else np.empty(0, object)}


def draw_batch_events(engine: Engine, batch: Batch, person: PersonDraws) -> BatchEvents:
    """Draw the batch's feedback events of every kind on the potential path (entry to the window end).

    Parameters
    ----------
    engine : Engine
        The engine (its practices generator and calendar).
    batch : Batch
        The new spells.
    person : PersonDraws
        What each person brings (the feedback multiplier).

    Returns
    -------
    BatchEvents
        Sorted event keys per kind, and each spell's first 360 review day.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> from alignment_research.simulate.people import draw_person
    >>> from alignment_research.simulate.practices import draw_batch_events
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> events = draw_batch_events(engine, ceo, draw_person(engine, ceo))
    >>> sorted(events.keys) == sorted(engine.truth.feedback_rates)
    True
    """
    truth, rng = engine.truth, engine.practices_rng
    entry = np.maximum(batch.hire_day, engine.window_start_day)
    end = engine.window_end_day + 1
    span = np.maximum(end - entry, 0)
    origin = int(engine.history_start_day)
    keys = {}
    for kind, rate in truth.feedback_rates.items():
        expected = rate * person.feedback_multiplier * span / YEAR
        row = np.repeat(np.arange(batch.size), rng.poisson(expected))
        day = entry[row] + np.floor(rng.random(len(row)) * span[row]).astype(np.int64)
        keys[kind] = np.unique(row.astype(np.int64) * _SPAN + (day - origin))  # one event per day and kind
    first_360 = np.full(batch.size, NO_DAY, np.int64)
    k360 = keys.get("360_review")
    if k360 is not None and len(k360):
        row, first = np.unique(k360 // _SPAN, return_index=True)  # keys are sorted: the first is the earliest
        first_360[row] = k360[first] % _SPAN + origin
    return BatchEvents(keys=keys, origin=origin, first_360=first_360)


def draw_program_starts(engine: Engine, batch: Batch) -> dict[str, np.ndarray]:
    """Draw each spell's employee-programme starts on the potential path (at most one per programme).

    Parameters
    ----------
    engine : Engine
        The engine (its practices generator and calendar).
    batch : Batch
        The new spells.

    Returns
    -------
    dict of numpy.ndarray
        Columns ``spell, program, start`` (engine-wide spell numbers, day
        numbers); the data keep the starts before the exit.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> from alignment_research.simulate.practices import draw_program_starts
    >>> engine, tree = example_engine()
    >>> list(draw_program_starts(engine, first_batch(engine, tree)))
    ['spell', 'program', 'start']
    """
    rng = engine.practices_rng
    entry = np.maximum(batch.hire_day, engine.window_start_day)
    span = np.maximum(engine.window_end_day + 1 - entry, 0)
    spells, programs, starts = [], [], []
    for program, rate in engine.truth.employee_programs.items():
        p = 1 - (1 - rate) ** (span / YEAR)
        who = np.flatnonzero(rng.random(batch.size) < p)
        starts.append(entry[who] + np.floor(rng.random(len(who)) * span[who]).astype(np.int64))
        spells.append(batch.spell_id[who])
        programs.append(np.full(len(who), program, dtype=object))
    return {"spell": np.concatenate(spells), "program": np.concatenate(programs), "start": np.concatenate(starts)}


def draw_goal_practices(engine: Engine, batch: Batch, goals: Goals) -> None:
    """Draw each goal's difficulty, who set it and its revision day (``NO_DAY``: not revised); fill ``goals``.

    Parameters
    ----------
    engine : Engine
        The engine (its practices generator and calendar).
    batch : Batch
        The new spells.
    goals : Goals
        The batch's goals (`goals._goal_slots`); ``difficulty``, ``set_with``
        (codes into `SET_WITH_WORDS`) and ``revision_day`` are set.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> from alignment_research.simulate.goals import _goal_slots
    >>> from alignment_research.simulate.practices import draw_goal_practices
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> goals = _goal_slots(engine, ceo)
    >>> draw_goal_practices(engine, ceo, goals)
    >>> bool(goals.difficulty.min() >= 1 and goals.difficulty.max() <= 5)
    True
    """
    truth, rng, n = engine.truth, engine.practices_rng, goals.n_goals
    shares = np.asarray(truth.goal_difficulty_shares, float)
    goals.difficulty = 1 + np.searchsorted(np.cumsum(shares / shares.sum()), rng.random(n), side="right")
    goals.difficulty = np.minimum(goals.difficulty, 5).astype(np.int64)
    weights = np.array([truth.goal_set_with_shares.get(w, 0.0) for w in SET_WITH_WORDS], float)
    goals.set_with = np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), rng.random(n), side="right"),
                                len(SET_WITH_WORDS) - 1).astype(np.int64)
    set_day = np.maximum(engine.cycle_start_day[goals.cycle], batch.hire_day[goals.owner])
    last_day = engine.cycle_end_day[goals.cycle]
    length = np.maximum(last_day - set_day, 1)
    revised = rng.random(n) < truth.goal_revision_share
    day = set_day + 1 + np.floor(rng.random(n) * length).astype(np.int64)
    goals.revision_day = np.where(revised & (day <= last_day), day, NO_DAY)


def practice_attainment(engine: Engine, goals: Goals, cascades: np.ndarray) -> np.ndarray:
    """The practices' additive effect on each goal's attainment (before revisions): difficulty, set_with, cascade."""
    truth = engine.truth
    return (truth.attainment_difficulty_curvature * (goals.difficulty - truth.difficulty_turning_point) ** 2
            + truth.attainment_set_jointly * (SET_WITH_WORDS[goals.set_with] == "jointly")
            + truth.attainment_alignment * cascades)


def apply_revisions(engine: Engine, goals: Goals, term_day: np.ndarray) -> None:
    """Keep the revisions before the owner's exit and add their effect to attainment (and target attainment).

    Parameters
    ----------
    engine : Engine
        The engine (the truth).
    goals : Goals
        The batch's goals, attainment drawn.
    term_day : numpy.ndarray
        Each batch spell's termination day (`NO_DAY` if none).

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> from alignment_research.simulate.goals import draw_goals
    >>> from alignment_research.simulate.people import draw_person
    >>> from alignment_research.simulate.performance import draw_performance
    >>> from alignment_research.simulate.practices import apply_revisions
    >>> from alignment_research.simulate.days import NO_DAY
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> goals = draw_goals(engine, ceo, draw_person(engine, ceo), draw_performance(engine, ceo))
    >>> apply_revisions(engine, goals, np.array([NO_DAY]))
    >>> bool(np.isfinite(goals.attainment).all())
    True
    """
    kept = goals.revision_day < term_day[goals.owner]
    goals.revision_day = np.where(kept, goals.revision_day, NO_DAY)
    effect = engine.truth.attainment_revised
    if not goals.n_goals or effect == 0 or not kept.any():
        return
    goals.attainment = np.where(kept, np.round(np.clip(goals.attainment + effect, 0, 1.6), 2), goals.attainment)
    weight = np.where(np.isnan(goals.weight), 1.0, goals.weight)
    first = goals.pair_first_goal
    at = goals.pair_spell, goals.pair_cycle
    goals.target_attainment[at] = np.round(np.add.reduceat(weight * goals.attainment, first)
                                           / np.add.reduceat(weight, first), 3)


def jointly_share(goals: Goals, shape) -> np.ndarray:
    """Per (batch row, cycle): the share of the spell's goals set jointly (0 without goals)."""
    out = np.zeros(shape)
    if goals.n_goals:
        first = goals.pair_first_goal
        joint = (SET_WITH_WORDS[goals.set_with] == "jointly").astype(float)
        out[goals.pair_spell, goals.pair_cycle] = np.add.reduceat(joint, first) / goals.goals_per_pair
    return out
