"""Exits: three competing cause-specific hazards on tenure days, and the exact intervals the voluntary one used.

Causes: 0 voluntary, 1 involuntary, 2 other (``-1``: no exit in the window).

* Voluntary: ``h(t) = h0(t) * exp(eta)`` with the Weibull baseline
  ``H0(t) = (t / voluntary_scale_days) ** voluntary_shape`` on tenure days
  ``t`` and ``eta = hr_alignment * alignment_cascade + hr_engagement *
  (engagement - 3) + hr_manager_program * manager_program +
  hr_manager_rating * (manager_rating - 3) + hr_job_level[job_level] +
  manager_change_exit_hr * recent_manager_change`` (the last term with job
  history only: 1 for ``manager_change_exit_months`` after each change of
  the manager in force); with ``practices`` plus ``hr_checkin_rate *
  check-ins per month + hr_recognitions * recognitions`` in their look-backs
  before the segment's start (see `practices`). The manager's programme and rating are those of
  the manager in force on the day; the job level is the level at hire.
  Engagement is the latest score observed in the spell; before the first
  response the person's expected engagement is used; an unknown manager
  rating counts as 3; a missing alignment as 0. Every covariate is the
  value the analysis intervals hold under the timing conventions
  (``SimulatedStudy.true_intervals`` lists them).
* Involuntary: constant daily rate (from the yearly ``involuntary_rate``)
  times ``exp(hr_involuntary_rating * (own latest rating - 3))``.
* Other: constant daily rate (from ``other_rate``).

Before the window start the covariates are fixed at the person's expected
values (alignment = link probability, expected engagement, no programme,
no ratings); the CEO never leaves. Each cause gets one unit exponential
draw ``E``; the exit time of a cause is where its cumulative hazard reaches
``E``, found by inverting the cumulative hazard over the covariate *path*:
the segments between change points (window start, 1 January of each year,
each survey response, each manager's programme start, each manager change
and the end of its raised hazard, window end). The first
cause wins; a continuous exit time ``x`` is recorded on day ``ceil(x)``
(at least the day after entry).

Glossary (the maths keeps short names): ``E`` unit exponential draws (cause
x spell); ``H`` / ``dH`` cumulative hazard / its increase over a segment;
``eta`` voluntary log relative hazard; ``scale``, ``shape`` the Weibull
parameters; ``a``, ``b`` segment start and end days; ``live`` the spells
still employed at the window start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .days import NO_DAY
from .practices import window_days

__all__ = ["draw_exits"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .people import Batch, ManagerContext, PersonDraws
    from .surveys import Responses

_EXIT_TYPES = np.array(["voluntary", "involuntary", "other", "censored"], dtype=object)


@dataclass
class _Exits:
    """Exit of each spell of a batch, and the covariate path the voluntary hazard used."""

    term_day: np.ndarray  # termination day, ``NO_DAY`` if none in the window
    cause: np.ndarray  # 0 voluntary, 1 involuntary, 2 other, -1 none
    intervals: dict  # one array per column, see `_hazard_intervals`


@dataclass
class _CovariatePath:
    """The in-window covariate path of the live spells: one row per spell, one column per segment."""

    live: np.ndarray  # batch rows of the spells still employed at the window start
    a: np.ndarray  # segment start day
    b: np.ndarray  # segment end day
    alignment: np.ndarray  # cascade alignment of the segment's cycle (NaN if none)
    engagement_observed: np.ndarray  # latest engagement score observed by the segment start (NaN if none)
    manager_program: np.ndarray  # 1.0 once the manager has started leadership development
    manager_rating: np.ndarray  # manager's latest known rating (NaN if none)
    manager: np.ndarray  # the manager in force (spell, -1 for none)
    recent_change: np.ndarray | None  # 1.0 within manager_change_exit_months of a manager change (history only)
    own_rating: np.ndarray  # own latest known rating (NaN if none)
    eta: np.ndarray  # voluntary log relative hazard
    checkin_rate: np.ndarray | None = None  # practices: check-ins per month in the look-back before the start
    recognitions: np.ndarray | None = None  # practices: recognitions in the look-back before the start


def draw_exits(engine: Engine, batch: Batch, person: PersonDraws, alignment: np.ndarray,
               manager: ManagerContext, own_latest_rating: np.ndarray, responses: Responses) -> _Exits:
    """Draw each spell's exit: first before the window (expected covariates), then along its covariate path.

    Parameters
    ----------
    engine : Engine
        The engine (its generator and calendar).
    batch : Batch
        The new spells.
    person : PersonDraws
        What each person brings (`draw_person`).
    alignment : numpy.ndarray
        Cascade alignment, spells x cycles (NaN without goals).
    manager : ManagerContext
        What each spell's manager brings (`manager_context`).
    own_latest_rating : numpy.ndarray
        The spell's own latest known rating, spells x window years.
    responses : Responses
        The spell's survey responses (`draw_responses`).

    Returns
    -------
    _Exits
        ``term_day`` (`NO_DAY` if none in the window), ``cause`` (0
        voluntary, 1 involuntary, 2 other, -1 none) and ``intervals``, the
        exact hazard intervals.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.exits import draw_exits
    >>> from alignment_research.simulate.goals import draw_goals
    >>> from alignment_research.simulate.people import draw_person, manager_context
    >>> from alignment_research.simulate.performance import draw_performance, latest_known_rating
    >>> from alignment_research.simulate.surveys import draw_responses
    >>> person, performance = draw_person(engine, ceo), draw_performance(engine, ceo)
    >>> goals, manager = draw_goals(engine, ceo, person, performance), manager_context(engine, ceo)
    >>> own = latest_known_rating(np.where(performance.rateable, performance.rating, np.nan), engine.n_years)
    >>> responses = draw_responses(engine, ceo, person, goals, manager)
    >>> exits = draw_exits(engine, ceo, person, goals.alignment_cascade, manager, own, responses)
    >>> exits.term_day.shape, int(exits.cause[0]) in (-1, 0, 1, 2)
    ((1,), True)
    """
    truth = engine.truth
    E = engine.rng.exponential(size=(3, batch.size))
    expected_engagement = (truth.engagement_intercept + manager.engagement_effect[:, 0] + person.engagement_effect
                           + truth.engagement_alignment * person.link_probability)
    if engine.practices:  # the expected check-in rate and share of goals set jointly
        expected_engagement = expected_engagement + (
            truth.engagement_checkin_rate * truth.feedback_rates.get("check_in", 0.0) * person.feedback_multiplier / 12
            + truth.engagement_set_jointly * truth.goal_set_with_shares.get("jointly", 0.0)
            / sum(truth.goal_set_with_shares.values()))
    term_day, cause, H_before = _exits_before_window(engine, batch, person, expected_engagement, E)
    live = np.flatnonzero(term_day == NO_DAY)
    path = _covariate_path(engine, batch, live, alignment, manager, own_latest_rating, responses, expected_engagement)
    exit_day, exit_cause = _first_exit_on_path(engine, batch, path, E - H_before)
    term_day[live] = exit_day
    cause[live] = exit_cause
    return _Exits(term_day=term_day, cause=cause, intervals=_hazard_intervals(engine, batch, path, term_day, cause))


def _exits_before_window(engine: Engine, batch: Batch, person: PersonDraws, expected_engagement: np.ndarray,
                         E: np.ndarray):
    """Exits between the hire and the window start, at the expected covariates.

    Returns the termination day and cause of every spell (``NO_DAY`` and -1
    for those who reach the window) and each cause's cumulative hazard
    until the window start.
    """
    truth, n, hire = engine.truth, batch.size, batch.hire_day
    scale, shape = truth.voluntary_scale_days, truth.voluntary_shape
    eta = (truth.hr_alignment * person.link_probability + truth.hr_engagement * (expected_engagement - 3)
           + engine.job_level_log_hr[batch.job_level])
    if engine.practices:  # expected check-ins per month and recognitions in their look-back
        eta = eta + person.feedback_multiplier / 12 * (
            truth.hr_checkin_rate * truth.feedback_rates.get("check_in", 0.0)
            + truth.hr_recognitions * truth.feedback_rates.get("recognition", 0.0) * truth.recognition_window_months)
    days = np.where(hire < engine.window_start_day, engine.window_start_day - hire, 0).astype(float)
    H = np.stack([np.exp(eta) * (days / scale) ** shape, engine.involuntary_daily_rate * days,
                  engine.other_daily_rate * days])
    at = np.stack([
        scale * (E[0] / np.exp(eta)) ** (1 / shape),
        E[1] / engine.involuntary_daily_rate if engine.involuntary_daily_rate > 0 else np.full(n, np.inf),
        E[2] / engine.other_daily_rate if engine.other_daily_rate > 0 else np.full(n, np.inf),
    ])
    at = np.where(E <= H, at, np.inf)
    if batch.is_ceo:
        at[:] = np.inf
    first_cause = np.argmin(at, axis=0)
    first_at = at.min(axis=0)
    left = np.isfinite(first_at)
    term_day = np.full(n, NO_DAY, np.int64)
    cause = np.full(n, -1)
    term_day[left] = hire[left] + np.maximum(np.ceil(first_at[left]), 1).astype(np.int64)
    cause[left] = first_cause[left]
    return term_day, cause, H


def _covariate_path(engine: Engine, batch: Batch, live: np.ndarray, alignment: np.ndarray,
                    manager: ManagerContext, own_latest_rating: np.ndarray, responses: Responses,
                    expected_engagement: np.ndarray) -> _CovariatePath:
    """Cut each live spell's window time at the covariate change points; the covariates on each segment."""
    truth, w1, n_waves = engine.truth, engine.window_end_day, len(engine.wave_open_day)
    entry = np.maximum(batch.hire_day, engine.window_start_day)
    response_day = np.full((batch.size, n_waves), NO_DAY, np.int64)
    response_day[responses.spell_row, responses.wave] = responses.day
    engagement_score = np.full((batch.size, n_waves), np.nan)
    engagement_score[responses.spell_row, responses.wave] = responses.scale_score["engagement"]
    program_start, mpath = manager.program_start_day, manager.path
    history = mpath.day.shape[1] > 1
    year_starts = engine.year_start_day[1:-1]
    change_points = [entry[live, None], np.broadcast_to(year_starts, (len(live), len(year_starts))),
                     np.minimum(response_day[live], w1), np.minimum(program_start[live], w1),
                     np.full((len(live), 1), w1)]
    if history:  # the manager changes, and the ends of the raised exit hazard after each
        change_day = mpath.day[live][:, 1:]
        raised_until = np.where(change_day == NO_DAY, NO_DAY, change_day + engine.manager_change_exit_days)
        change_points += [np.minimum(change_day, w1), np.minimum(raised_until, w1)]
    cuts = np.sort(np.clip(np.concatenate(change_points, axis=1), entry[live, None], w1), axis=1)
    a, b = cuts[:, :-1], cuts[:, 1:]
    year = np.clip(engine.year_index(a), 0, engine.n_years - 1)
    rows = np.arange(len(live))[:, None]
    known = response_day[live][:, None, :] <= a[:, :, None]
    last_wave = (np.where(known, np.arange(n_waves)[None, None, :], -1).max(axis=2) if n_waves
                 else np.full(a.shape, -1))
    observed = np.where(last_wave >= 0, engagement_score[live][rows, np.maximum(last_wave, 0)], np.nan)
    k = mpath.index(live[:, None], a)  # the manager in force on each segment
    path = _CovariatePath(
        live=live, a=a, b=b, alignment=alignment[live][rows, year + 1], engagement_observed=observed,
        manager_program=(a >= program_start[live[:, None], k]).astype(float),
        manager_rating=manager.latest_rating[live[:, None], k, year], manager=mpath.manager[live[:, None], k],
        own_rating=own_latest_rating[live][rows, year], recent_change=None, eta=None,
    )
    if history:
        path.recent_change = ((change_day[:, None, :] <= a[:, :, None])
                              & (a[:, :, None] < raised_until[:, None, :])).any(axis=2).astype(float)
    engagement_used = np.where(np.isnan(observed), expected_engagement[live][:, None], observed)
    path.eta = (truth.hr_alignment * np.nan_to_num(path.alignment) + truth.hr_engagement * (engagement_used - 3)
                + truth.hr_manager_program * path.manager_program
                + truth.hr_manager_rating * np.nan_to_num(path.manager_rating - 3)
                + engine.job_level_log_hr[batch.job_level[live]][:, None])
    if history:
        path.eta = path.eta + truth.manager_change_exit_hr * path.recent_change
    if engine.practices:  # counted at each segment's start, as the scorecard counts at each interval's start
        events = batch.events
        path.checkin_rate = events.rate("check_in", live[:, None], a, truth.checkin_window_months)
        path.recognitions = events.count("recognition", live[:, None], a, window_days(truth.recognition_window_months))
        path.eta = path.eta + truth.hr_checkin_rate * path.checkin_rate + truth.hr_recognitions * path.recognitions
    return path


def _first_exit_on_path(engine: Engine, batch: Batch, path: _CovariatePath, E_left: np.ndarray):
    """Invert each cause's cumulative hazard along the path; the first cause in the window wins.

    ``E_left`` is what remains of each cause's exponential draw at the window
    start. Returns the termination day (``NO_DAY`` if none) and cause (-1)
    of each live spell.
    """
    truth, live, a, b = engine.truth, path.live, path.a, path.b
    scale, shape = truth.voluntary_scale_days, truth.voluntary_shape
    tenure_a, tenure_b = (a - batch.hire_day[live][:, None]) / scale, (b - batch.hire_day[live][:, None]) / scale
    own_rating_centred = np.nan_to_num(path.own_rating - 3)
    dH = np.stack([
        np.exp(path.eta) * (tenure_b ** shape - tenure_a ** shape),
        engine.involuntary_daily_rate * np.exp(truth.hr_involuntary_rating * own_rating_centred) * (b - a),
        np.broadcast_to(engine.other_daily_rate * (b - a), a.shape),
    ])
    if batch.is_ceo:
        dH[:] = 0.0
    H = np.cumsum(dH, axis=2)
    E_live = E_left[:, live]
    reached = H >= E_live[:, :, None]
    exits = reached.any(axis=2) & (dH.sum(axis=2) > 0)
    segment = np.argmax(reached, axis=2)
    rows = np.arange(len(live))
    x = np.full((3, len(live)), np.inf)
    for q in range(3):
        k = segment[q]
        remaining = E_live[q] - (H[q, rows, k] - dH[q, rows, k])
        a_k = a[rows, k].astype(float)
        if q == 0:
            hire = batch.hire_day[live]
            H0_at_exit = ((a_k - hire) / scale) ** shape + remaining / np.exp(path.eta[rows, k])
            x_q = hire + scale * H0_at_exit ** (1 / shape)
        else:
            rate = dH[q, rows, k] / np.maximum(b[rows, k] - a[rows, k], 1e-300)
            x_q = a_k + remaining / np.where(rate > 0, rate, np.inf)
        x[q] = np.where(exits[q], np.maximum(x_q, a_k), np.inf)
    first_cause = np.argmin(x, axis=0)
    first_x = x.min(axis=0)
    in_window = np.isfinite(first_x) & (first_x <= engine.window_end_day)
    entry = np.maximum(batch.hire_day, engine.window_start_day)[live]
    day = np.where(in_window, np.maximum(np.ceil(np.where(in_window, first_x, 0)).astype(np.int64), entry + 1), 0)
    return np.where(in_window, day, NO_DAY), np.where(in_window, first_cause, -1)


def _hazard_intervals(engine: Engine, batch: Batch, path: _CovariatePath, term_day: np.ndarray,
                      cause: np.ndarray) -> dict:
    """The exact ``(start, stop]`` tenure-day intervals the voluntary hazard used, from entry to exit.

    Segments cut at the exit; zero-length segments are left out, so
    intervals are contiguous but not merged. ``event_type`` is the exit type
    on the last interval and ``"censored"`` elsewhere. One array per column:
    the engine makes one table of every batch's (``frame_from_parts``); a
    table per batch took about 5% of a simulation.
    """
    live, a = path.live, path.a
    end = np.where(term_day[live] == NO_DAY, engine.window_end_day, term_day[live])
    stop = np.minimum(path.b, end[:, None])
    keep = a < stop
    last_kept = keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1)  # zero-length segments leave gaps
    is_last = np.zeros_like(keep)
    is_last[np.arange(len(live)), last_kept] = True
    is_last &= keep
    exit_type = _EXIT_TYPES[np.where(cause[live] >= 0, cause[live], 3)]
    row, k = np.nonzero(keep)
    last = is_last[row, k]
    hire = batch.hire_day[live][row]
    columns = {
        "spell": batch.spell_id[live][row],
        "manager": path.manager[row, k],
        "start": (a[row, k] - hire).astype(np.int64),
        "stop": (stop[row, k] - hire).astype(np.int64),
        "event": (last & (exit_type[row] == "voluntary")).astype(np.int64),
        "event_type": np.where(last, exit_type[row], "censored"),
        "alignment_cascade": path.alignment[row, k],
        "engagement": path.engagement_observed[row, k],
        "manager_program": path.manager_program[row, k].astype(np.int64),
        "manager_rating": path.manager_rating[row, k],
        "job_level": batch.job_level[live][row].astype(np.int64),
        "log_hazard": path.eta[row, k],
    }
    if engine.history:
        recent = path.recent_change[row, k] if path.recent_change is not None else np.zeros(len(row))
        columns["recent_manager_change"] = recent.astype(np.int64)
    if engine.practices:
        columns["checkins_per_month"] = path.checkin_rate[row, k]
        columns["recognitions"] = path.recognitions[row, k]
    return columns
