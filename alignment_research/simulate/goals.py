"""Goals: each spell's goals per cycle, their links to the manager's goals, weights, attainment and alignment.

Each cycle the CEO owns 4-6 organisation goals (no parent). Everyone else
owns ``goals_min..goals_max`` goals in every cycle from the hire on (a
potential path, truncated at the exit). Each goal is *linked* with the
person's link probability (see `people`) to a random goal of the manager in
force when the cycle's goals are set (its first day, or the hire if later;
with job history this follows the manager changes, see `history`); if that
manager has no goals in the cycle (left, or not yet hired), linked goals
serve whoever holds the manager's position (the *acting* manager), which the
cascade measure does not count. An
unlinked goal gets, with probability ``unrelated_parent_share``, a random
goal of another manager in the data as parent (never the own manager's),
else no parent.

Weights are Dirichlet(2, ..., 2) shares rounded to 0.01 and summing to 1.00;
``weight_missing_share`` of employee-cycles have all weights missing (equal
weights). Attainment is ``1 + 0.12 * performance + 0.3 * (parent attainment
- 1) + N(0, 0.1)``, clipped to 0..1.6 and rounded to 0.01. With
``practices``, each goal also has a difficulty, a ``set_with`` and perhaps a
revision, whose effects (and that of being cascaded) add to its attainment;
children follow their parent's attainment without them (see `practices`).

Alignment of a spell in a cycle, weighted by the goal weights:
``alignment_cascade`` is the share of goals whose parent is a goal of the
manager in force in that cycle (NaN without a manager at entry); ``alignment_org`` the share
that reach an organisation goal through their chain of parents.
``true_alignment`` holds the realised shares exactly as the data define them.

Glossary: a *pair* is one (spell, cycle) with goals; goal ids are
engine-wide numbers; ``first_goal_id[spell, cycle]`` and
``goal_count[spell, cycle]`` locate a pair's goals (consecutive ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .practices import SET_WITH_WORDS, draw_goal_practices, practice_attainment

__all__ = ["Goals", "draw_goals", "goal_tables"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .people import Batch, PersonDraws
    from .performance import Performance


@dataclass
class Goals:
    """The goals of a batch of new spells (potential: every cycle from the hire on)."""

    pair_spell: np.ndarray  # batch row of each (spell, cycle) pair
    pair_cycle: np.ndarray  # cycle index of each pair
    pair_first_goal: np.ndarray  # position of each pair's first goal in the goal arrays below
    goals_per_pair: np.ndarray
    goal_pair: np.ndarray  # pair of each goal
    owner: np.ndarray  # batch row of each goal's owner
    cycle: np.ndarray
    first_goal_id: np.ndarray  # (spells, cycles): engine-wide id of the first goal, -1 if none
    goal_count: np.ndarray  # (spells, cycles): number of goals (0 if none)
    parent: np.ndarray  # parent goal id, -1 for none
    # filled by _draw_weights and _attain_and_align:
    weight: np.ndarray = None  # NaN where the pair's weights are missing
    attainment: np.ndarray = None
    reaches_org: np.ndarray = None  # the chain of parents reaches an organisation goal
    alignment_cascade: np.ndarray = None  # (spells, cycles)
    alignment_org: np.ndarray = None  # (spells, cycles)
    target_attainment: np.ndarray = None  # (spells, cycles): weighted attainment, rounded to 0.001
    # with practices (see `practices`): drawn by draw_goal_practices, base_attainment by _attain_and_align
    difficulty: np.ndarray = None  # 1..5
    set_with: np.ndarray = None  # code into practices.SET_WITH_WORDS
    revision_day: np.ndarray = None  # NO_DAY: not revised
    base_attainment: np.ndarray = None  # attainment without the practices' effects (what child goals follow)

    @property
    def n_goals(self) -> int:
        return len(self.goal_pair)


def draw_goals(engine: Engine, batch: Batch, person: PersonDraws, performance: Performance) -> Goals:
    """Draw the batch's goals in every potential cycle, their parents, weights, attainment and alignment.

    Parameters
    ----------
    engine : Engine
        The engine (its generator, calendar and the goals of the depth above).
    batch : Batch
        The new spells.
    person : PersonDraws
        What each person brings (`draw_person`).
    performance : Performance
        The batch's latent performance (`draw_performance`).

    Returns
    -------
    Goals
        The goals of the batch; the engine's goal count moves on by their number.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.goals import draw_goals
    >>> from alignment_research.simulate.people import draw_person
    >>> from alignment_research.simulate.performance import draw_performance
    >>> goals = draw_goals(engine, ceo, draw_person(engine, ceo), draw_performance(engine, ceo))
    >>> goals.goal_count.shape == (1, engine.n_cycles)
    True
    """
    goals = _goal_slots(engine, batch)
    if engine.practices:
        draw_goal_practices(engine, batch, goals)
    if not batch.is_ceo and goals.n_goals:
        _link_parents(engine, batch, person, goals)
    _draw_weights(engine, goals)
    _attain_and_align(engine, batch, performance, goals)
    engine.n_goals += goals.n_goals
    return goals


def _goal_slots(engine: Engine, batch: Batch) -> Goals:
    """Number the goals: how many each spell owns in each cycle from the hire on, with engine-wide ids."""
    shape = (batch.size, engine.n_cycles)
    potential = batch.hire_day[:, None] <= engine.cycle_end_day[None, :]
    pair_spell, pair_cycle = np.nonzero(potential)
    n_pairs = len(pair_spell)
    low, high = (4, 6) if batch.is_ceo else (engine.truth.goals_min, engine.truth.goals_max)
    per_pair = engine.rng.integers(low, max(low, high) + 1, n_pairs)
    pair_first_goal = np.concatenate([[0], np.cumsum(per_pair)[:-1]]).astype(np.int64)
    goal_pair = np.repeat(np.arange(n_pairs), per_pair)
    first_goal_id = np.full(shape, -1, np.int64)
    goal_count = np.zeros(shape, np.int64)
    first_goal_id[pair_spell, pair_cycle] = engine.n_goals + pair_first_goal
    goal_count[pair_spell, pair_cycle] = per_pair
    return Goals(
        pair_spell=pair_spell, pair_cycle=pair_cycle, pair_first_goal=pair_first_goal, goals_per_pair=per_pair,
        goal_pair=goal_pair, owner=pair_spell[goal_pair], cycle=pair_cycle[goal_pair],
        first_goal_id=first_goal_id, goal_count=goal_count, parent=np.full(int(per_pair.sum()), -1, np.int64),
    )


def _cycle_day(engine: Engine, batch: Batch, goals: Goals) -> np.ndarray:
    """Per pair: the day the cycle's goals are set, its first day (or the hire, if later)."""
    return np.maximum(engine.cycle_start_day[goals.pair_cycle], batch.hire_day[goals.pair_spell])


def _pair_manager(engine: Engine, batch: Batch, goals: Goals) -> np.ndarray:
    """Per pair (spell, cycle): the manager in force when the cycle's goals are set (see `_cycle_day`)."""
    return batch.manager_path.manager_on(goals.pair_spell, _cycle_day(engine, batch, goals))


def _acting_manager(engine: Engine, batch: Batch, goals: Goals) -> np.ndarray:
    """Per pair: the manager in force if they have goals that cycle, else the holder of their position who has."""
    spells, cycle_start = engine.spells, engine.cycle_start_day
    manager = _pair_manager(engine, batch, goals)
    has_goals = (manager >= 0) & (spells["goal_count"][np.maximum(manager, 0), goals.pair_cycle] > 0)
    acting = np.where(has_goals, manager, -1)
    missing = np.flatnonzero(~has_goals)
    if len(missing):
        cycle = goals.pair_cycle[missing]

        def has_goals_then(spell, cycle=cycle):
            return (spells["goal_count"][spell, cycle] > 0) & (spells["term_day"][spell] > engine.window_start_day)

        on_day = np.maximum(cycle_start[cycle], batch.hire_day[goals.pair_spell[missing]])
        path = batch.manager_path
        if path.day.shape[1] > 1:  # the parent position in force then
            row = goals.pair_spell[missing]
            position = path.parent[row, path.index(row, on_day)]
        else:
            position = engine.tree_parent[batch.slot[goals.pair_spell[missing]]]
        acting[missing] = engine.holders.holder_on(position, on_day, need=has_goals_then)
    return acting


def _link_parents(engine: Engine, batch: Batch, person: PersonDraws, goals: Goals) -> None:
    """Draw each goal's parent: a goal of the acting manager (linked) or of another team (unrelated)."""
    rng, spells, n = engine.rng, engine.spells, goals.n_goals
    linked = rng.random(n) < person.link_probability[goals.owner]
    acting = _acting_manager(engine, batch, goals)[goals.goal_pair]
    ok = linked & (acting >= 0)
    acting_ok, cycle_ok = acting[ok], goals.cycle[ok]
    goals.parent[ok] = spells["first_goal_id"][acting_ok, cycle_ok] + np.floor(
        rng.random(ok.sum()) * spells["goal_count"][acting_ok, cycle_ok]
    ).astype(np.int64)
    unrelated = ~linked & (rng.random(n) < engine.truth.unrelated_parent_share)
    own_manager = _pair_manager(engine, batch, goals)[goals.goal_pair]
    owner_of_goal = engine.goals["owner"]
    for c in range(engine.n_cycles):
        chosen = np.flatnonzero(unrelated & (goals.cycle == c))
        pool = engine.unrelated_goal_pool[c]
        if not len(chosen) or not len(pool):
            continue
        pick = pool[rng.integers(0, len(pool), len(chosen))]
        own = owner_of_goal[pick] == own_manager[chosen]
        pick[own] = pool[rng.integers(0, len(pool), own.sum())]  # one redraw, then no parent
        own = owner_of_goal[pick] == own_manager[chosen]
        goals.parent[chosen] = np.where(own, -1, pick)


def _draw_weights(engine: Engine, goals: Goals) -> None:
    """Dirichlet weights rounded to 0.01 summing to 1.00; some employee-cycles have all weights missing."""
    rng, n, first = engine.rng, goals.n_goals, goals.pair_first_goal
    raw = rng.gamma(2.0, 1.0, n)
    weight = np.round(raw / np.add.reduceat(raw, first)[goals.goal_pair], 2) if n else raw
    last = first + goals.goals_per_pair - 1
    if n:
        weight[last] = np.round(1.0 - (np.add.reduceat(weight, first) - weight[last]), 2)
    missing = ((rng.random(len(goals.pair_spell)) < engine.truth.weight_missing_share)
               | (weight[last] <= 0 if n else False))
    goals.weight = np.where(missing[goals.goal_pair], np.nan, weight)


def _attain_and_align(engine: Engine, batch: Batch, performance: Performance, goals: Goals) -> None:
    """Draw attainment; compute cascade and organisation alignment and target attainment per spell and cycle."""
    n, first, parent, earlier = goals.n_goals, goals.pair_first_goal, goals.parent, engine.goals
    weight = np.where(np.isnan(goals.weight), 1.0, goals.weight)  # missing weights count equally
    parent_row = np.maximum(parent, 0)
    followed = "base_attainment" if engine.practices else "attainment"  # practice effects do not pass down
    parent_attainment = np.where(parent >= 0, earlier[followed][parent_row] if earlier else 1.0, 1.0)
    raw = (1 + 0.12 * performance.latent[goals.owner, goals.cycle] + 0.3 * (parent_attainment - 1)
           + engine.rng.normal(0, 0.1, n))
    parent_owner = earlier["owner"][parent_row] if earlier else np.zeros(n, np.int64)
    owners_manager = _pair_manager(engine, batch, goals)[goals.goal_pair]
    cascades = (parent >= 0) & (parent_owner == owners_manager) & (owners_manager >= 0)
    goals.attainment = np.round(np.clip(raw, 0, 1.6), 2)
    if engine.practices:
        goals.base_attainment = goals.attainment
        goals.attainment = np.round(np.clip(raw + practice_attainment(engine, goals, cascades), 0, 1.6), 2)
    if batch.is_ceo:
        goals.reaches_org = np.ones(n, bool)
    else:
        goals.reaches_org = (parent >= 0) & (earlier["reaches_org"][parent_row] if earlier else False)
    total = np.add.reduceat(weight, first) if n else np.zeros(0)
    shape = goals.first_goal_id.shape
    goals.alignment_cascade = np.full(shape, np.nan)
    goals.alignment_org = np.full(shape, np.nan)
    goals.target_attainment = np.full(shape, np.nan)
    if n:
        at = goals.pair_spell, goals.pair_cycle
        goals.alignment_cascade[at] = np.add.reduceat(weight * cascades, first) / total
        goals.alignment_org[at] = np.add.reduceat(weight * goals.reaches_org, first) / total
        goals.target_attainment[at] = np.round(np.add.reduceat(weight * goals.attainment, first) / total, 3)
    goals.alignment_cascade[~batch.has_manager] = np.nan


def goal_tables(engine: Engine, in_data: np.ndarray):
    """Keep the goals of the spells in the data (owner employed when the cycle began), and their realised alignment.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    in_data : numpy.ndarray
        Boolean by spell: the spell is in the data.

    Returns
    -------
    goals : pandas.DataFrame
        ``goal, owner, cycle, parent, weight, attainment`` (goal, spell and
        cycle numbers) and, with practices, ``difficulty, set_with, revised``
        (1..5, words, revision day or `NO_DAY`).
    true_alignment : pandas.DataFrame
        ``spell, cycle, alignment_cascade, alignment_org``.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.goals import goal_tables
    >>> goals, true_alignment = goal_tables(engine, in_data)
    >>> goals.columns.tolist()
    ['goal', 'owner', 'cycle', 'parent', 'weight', 'attainment', 'difficulty', 'set_with', 'revised']
    """
    goals, spells = engine.goals, engine.spells
    kept = np.flatnonzero(goals["owner_in_cycle"] & in_data[goals["owner"]])
    goal_table = pd.DataFrame({"goal": kept, "owner": goals["owner"][kept], "cycle": goals["cycle"][kept],
                               "parent": goals["parent"][kept], "weight": goals["weight"][kept],
                               "attainment": goals["attainment"][kept]})
    if engine.practices:  # difficulty as rated, who set the goal, the day it was revised (NO_DAY: not revised)
        goal_table["difficulty"] = goals["difficulty"][kept]
        goal_table["set_with"] = SET_WITH_WORDS[goals["set_with"][kept]]
        goal_table["revised"] = goals["revision_day"][kept]
    in_data_spells = np.flatnonzero(in_data)
    row, cycle = np.nonzero(spells["goal_count"][in_data_spells] > 0)
    spell = in_data_spells[row]
    true_alignment = pd.DataFrame({"spell": spell, "cycle": cycle,
                                   "alignment_cascade": spells["alignment_cascade"][spell, cycle],
                                   "alignment_org": spells["alignment_org"][spell, cycle]})
    return goal_table, true_alignment
