"""Surveys: who answers which wave and when, the latent scale scores and the item answers.

A wave opens on day 1 of each ``survey_months`` month inside the window.
Employees hired at least ``survey_min_tenure_days`` before it opens are
invited and answer with their response probability, on a day drawn
uniformly over the ``survey_field_days`` after the opening (a potential
path: answers after the exit are dropped later).

Latent scores on a response day ``s`` (Likert points):

* engagement = ``engagement_intercept + engagement_alignment *
  alignment_cascade(cycle of s) + engagement_manager_program *
  manager_program(s) + engagement_manager_rating * (manager_rating(s) - 3)
  + u_manager + u_person + e`` (``manager_rating - 3`` counts 0 while
  unknown; ``e ~ N(0, engagement_residual_sd)``);
* alignment (perceived) = ``perceived_alignment_intercept +
  perceived_alignment_cascade * alignment_cascade + u + e``;
* leadership = ``leadership_intercept + leadership_manager_program *
  manager_program + u_manager(leadership) + u + e``;
* feedback = ``feedback_intercept + feedback_rate_effect * (log feedback
  multiplier - its mean) + u + e``;

plus, with ``practices``, the effects of check-ins, goals set jointly, the
manager's first 360 review and perceived alignment (see `practices`);
with ``u ~ N(0, scale_person_sd)`` and ``e ~ N(0, scale_residual_sd)`` for
the last three. ``manager_program``, ``manager_rating`` and ``u_manager`` are
those of the manager in force on the response day (with job history, see
`history`; else the manager at entry). Items add a fixed offset (zero mean per scale, ``_ITEM_OFFSETS``)
and ``N(0, item_sd)``, are clipped to 1..5 and rounded stochastically (up
with probability equal to the fractional part), so the expected scale score
equals the latent score. At most one item per scale is skipped
(``item_missing``). Reverse-coded items are stored as ``6 - answer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .days import NO_DAY
from .practices import jointly_share
from .truth import SCALE_ITEMS

__all__ = ["Responses", "draw_responses", "mean_log_feedback_multiplier", "response_tables", "stored_responses"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .goals import Goals
    from .people import Batch, ManagerContext, PersonDraws

#: Fixed item offsets (Likert points) per scale; each scale's offsets average zero.
_ITEM_OFFSETS = {
    "engagement": [0.1, -0.05, 0.0, -0.1, 0.05],
    "alignment": [0.05, -0.1, 0.1, -0.05],
    "leadership": [-0.05, 0.1, 0.0, -0.05],
    "feedback": [0.05, 0.0, -0.05],
}


@dataclass
class Responses:
    """Potential survey responses of a batch (one row per response)."""

    spell_row: np.ndarray  # batch row of the respondent
    wave: np.ndarray  # index into the engine's wave opening days
    day: np.ndarray  # response day
    items: dict  # item column -> answers (as stored: reverse-coded items reversed, NaN if skipped)
    scale_score: dict  # scale -> mean of the answered items (before reverse coding)
    stats: dict  # scale -> (latent score, item rounding variances, item clipped flags), for `derived`


def mean_log_feedback_multiplier(shape: float) -> float:
    """Compute E[log X] for X ~ Gamma(shape, scale 1 / shape): the centre of the feedback scale's rate effect.

    Parameters
    ----------
    shape : float
        The Gamma shape of the feedback-rate multiplier (its mean is 1).

    Returns
    -------
    float
        ``digamma(shape) - log(shape)``.

    Examples
    --------
    >>> from alignment_research.simulate.surveys import mean_log_feedback_multiplier
    >>> round(mean_log_feedback_multiplier(1.0), 4)
    -0.5772
    """
    from scipy.special import digamma  # deferred: heavy (scipy); `ar.Truth` and `load_truth` must not pay for it

    return float(digamma(shape) - np.log(shape))


def draw_responses(engine: Engine, batch: Batch, person: PersonDraws, goals: Goals,
                   manager: ManagerContext) -> Responses:
    """Draw who answers which wave, on which day, and their item answers.

    Parameters
    ----------
    engine : Engine
        The engine (its generator and survey waves).
    batch : Batch
        The new spells.
    person : PersonDraws
        What each person brings (`draw_person`).
    goals : Goals
        The batch's goals and alignment (`draw_goals`).
    manager : ManagerContext
        What each spell's manager brings (`manager_context`).

    Returns
    -------
    Responses
        One entry per response: batch row, wave, day, item answers, and the
        statistics `compute_derived` reads.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.goals import draw_goals
    >>> from alignment_research.simulate.people import draw_person, manager_context
    >>> from alignment_research.simulate.performance import draw_performance
    >>> from alignment_research.simulate.surveys import draw_responses
    >>> person = draw_person(engine, ceo)
    >>> goals = draw_goals(engine, ceo, person, draw_performance(engine, ceo))
    >>> responses = draw_responses(engine, ceo, person, goals, manager_context(engine, ceo))
    >>> bool((responses.spell_row == 0).all())
    True
    """
    truth, rng, waves = engine.truth, engine.rng, engine.wave_open_day
    invited = batch.hire_day[:, None] <= waves[None, :] - truth.survey_min_tenure_days
    answers = invited & (rng.random((batch.size, len(waves))) < person.response_probability[:, None])
    row, wave = np.nonzero(answers)
    day = waves[wave] + rng.integers(0, truth.survey_field_days, len(row))
    latent = _latent_scores(engine, person, goals, manager, row, day)
    if engine.practices:
        _add_practices(engine, batch, goals, manager, row, day, latent)
    items, scale_score, stats = {}, {}, {}
    for scale, (n_items, reverse) in SCALE_ITEMS.items():
        answered, rounding_var, clipped = _answer_items(engine, latent[scale], scale, n_items)
        scale_score[scale] = np.nanmean(answered, axis=1) if len(row) else np.zeros(0)
        for q, column in enumerate(engine.item_columns[scale]):
            items[column] = (5 + 1 - answered[:, q]) if column in reverse else answered[:, q]
        stats[scale] = (latent[scale], rounding_var, clipped)
    return Responses(spell_row=row, wave=wave, day=day, items=items, scale_score=scale_score, stats=stats)


def _latent_scores(engine: Engine, person: PersonDraws, goals: Goals, manager: ManagerContext,
                   row: np.ndarray, day: np.ndarray) -> dict:
    """Latent score of each scale for each response (the formulas in the module docstring)."""
    truth, rng = engine.truth, engine.rng
    year = engine.year_index(day)
    alignment = np.nan_to_num(goals.alignment_cascade[row, year + 1])  # cycle index = window year index + 1
    k = manager.path.index(row, day)  # the manager in force on the response day
    manager_program = (day >= manager.program_start_day[row, k]).astype(float)
    manager_rating_centred = np.nan_to_num(manager.latest_rating[row, k, year] - 3)
    person_scale = person.scale_effects

    def residual(sd):
        return rng.normal(0, sd, len(row))

    engagement = (truth.engagement_intercept + truth.engagement_alignment * alignment
                  + truth.engagement_manager_program * manager_program
                  + truth.engagement_manager_rating * manager_rating_centred + manager.engagement_effect[row, k]
                  + person.engagement_effect[row] + residual(truth.engagement_residual_sd))
    perceived = (truth.perceived_alignment_intercept + truth.perceived_alignment_cascade * alignment
                 + person_scale[row, 0] + residual(truth.scale_residual_sd))
    leadership = (truth.leadership_intercept + truth.leadership_manager_program * manager_program
                  + manager.leadership_effect[row, k] + person_scale[row, 1] + residual(truth.scale_residual_sd))
    feedback = (truth.feedback_intercept
                + truth.feedback_rate_effect * (np.log(person.feedback_multiplier[row]) - engine.mean_log_feedback)
                + person_scale[row, 2] + residual(truth.scale_residual_sd))
    return {"engagement": engagement, "alignment": perceived, "leadership": leadership, "feedback": feedback}


def _add_practices(engine: Engine, batch: Batch, goals: Goals, manager: ManagerContext, row: np.ndarray,
                   day: np.ndarray, latent: dict) -> None:
    """Add the practices' effects to the latent scores (see `practices`): check-ins, set_with, 360, mediation."""
    truth = engine.truth
    year = engine.year_index(day)
    k = manager.path.index(row, day)
    in_force = manager.path.manager[row, k]
    first_360 = np.full(len(row), NO_DAY, np.int64)
    if "first_360_day" in engine.spells:
        first_360 = np.where(in_force >= 0, engine.spells["first_360_day"][np.maximum(in_force, 0)], NO_DAY)
    after_360 = (day >= first_360).astype(float)
    manager_program = (day >= manager.program_start_day[row, k]).astype(float)
    latent["alignment"] = latent["alignment"] + truth.perceived_alignment_manager_program * manager_program
    checkins = batch.events.rate("check_in", row, day, truth.checkin_window_months)
    jointly = jointly_share(goals, goals.first_goal_id.shape)[row, year + 1]
    latent["engagement"] = (latent["engagement"] + truth.engagement_checkin_rate * checkins
                            + truth.engagement_set_jointly * jointly + truth.engagement_manager_360 * after_360
                            + truth.engagement_perceived_alignment
                            * (latent["alignment"] - truth.perceived_alignment_intercept))
    latent["leadership"] = latent["leadership"] + truth.leadership_manager_360 * after_360


def _answer_items(engine: Engine, latent: np.ndarray, scale: str, n_items: int):
    """Items of one scale: offset + noise, clipped to 1..5, rounded stochastically, at most one skipped.

    Returns the answers (responses x items, NaN where skipped, not yet
    reverse-coded), the rounding variance ``f * (1 - f)`` of each item and
    whether each item was clipped.
    """
    truth, rng, n = engine.truth, engine.rng, len(latent)
    x = latent[:, None] + np.asarray(_ITEM_OFFSETS[scale])[None, :] + rng.normal(0, truth.item_sd, (n, n_items))
    clipped = (x < 1) | (x > 5)
    x = np.clip(x, 1, 5)
    whole = np.floor(x)
    fraction = x - whole
    answered = np.minimum(whole + (rng.random(x.shape) < fraction), 5)
    skip = rng.random(n) < truth.item_missing
    skipped_item = rng.integers(0, n_items, n)
    answered[np.flatnonzero(skip), skipped_item[skip]] = np.nan
    return answered, fraction * (1 - fraction), clipped


def response_tables(engine: Engine, in_data: np.ndarray):
    """Collect all stored responses of spells in the data: the survey rows and the per-response statistics.

    The engine's response parts are emptied.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    in_data : numpy.ndarray
        Boolean by spell: the spell is in the data.

    Returns
    -------
    surveys : dict of str to numpy.ndarray
        ``spell, date`` and the item columns.
    stats : dict of str to numpy.ndarray
        The underscore statistics (``_lat_<scale>``, ...) for `compute_derived`.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.surveys import response_tables
    >>> surveys, stats = response_tables(engine, in_data)
    >>> list(surveys)[:2]
    ['spell', 'date']
    """
    responses = {k: np.concatenate(v) for k, v in engine.response_parts.items()}
    engine.response_parts = {}
    keep = in_data[responses["spell"]]
    surveys = {k: v[keep] for k, v in responses.items() if not k.startswith("_")}
    stats = {k: v[keep] for k, v in responses.items() if k.startswith("_")}
    return surveys, stats


def stored_responses(batch: Batch, responses: Responses, term_day: np.ndarray) -> dict:
    """Keep the batch's responses before the exit, as stored: spell, day, items, then statistics for `compute_derived`.

    Parameters
    ----------
    batch : Batch
        The new spells.
    responses : Responses
        Their potential responses (`draw_responses`).
    term_day : numpy.ndarray
        Each spell's termination day (`NO_DAY` if none).

    Returns
    -------
    dict of str to numpy.ndarray
        ``spell, date``, the item columns, then ``_lat_<scale>``,
        ``_rnd_<scale>`` and ``_clip_<scale>`` per scale.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.days import NO_DAY
    >>> from alignment_research.simulate.goals import draw_goals
    >>> from alignment_research.simulate.people import draw_person, manager_context
    >>> from alignment_research.simulate.performance import draw_performance
    >>> from alignment_research.simulate.surveys import draw_responses, stored_responses
    >>> person = draw_person(engine, ceo)
    >>> goals = draw_goals(engine, ceo, person, draw_performance(engine, ceo))
    >>> responses = draw_responses(engine, ceo, person, goals, manager_context(engine, ceo))
    >>> stored = stored_responses(ceo, responses, np.array([NO_DAY]))
    >>> len(stored["spell"]) == len(responses.day)
    True
    """
    keep = responses.day < term_day[responses.spell_row]
    out = {"spell": batch.spell_id[responses.spell_row][keep], "date": responses.day[keep]}
    out.update({column: answers[keep] for column, answers in responses.items.items()})
    for scale, (latent, rounding_var, clipped) in responses.stats.items():
        out[f"_lat_{scale}"] = latent[keep]
        out[f"_rnd_{scale}"] = rounding_var[keep].sum(axis=1) if len(rounding_var) else np.zeros(0)
        out[f"_clip_{scale}"] = clipped[keep].sum(axis=1) if len(clipped) else np.zeros(0)
    return out
