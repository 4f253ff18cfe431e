"""The engine: employment spells position by position, depth by depth, and the internal tables they make.

Positions (slots) form a fixed tree (see `organisation`). Each position is
filled by a sequence of employment spells: when a holder leaves, a
successor is hired 1..``vacancy_days_max`` days later. The tree is
simulated depth by depth (a spell's covariates depend only on its manager,
one level up, simulated before) and, within a depth, in rounds of
successors, in batches of at most ``_CHUNK`` spells. One batch
(`Engine.simulate_batch`) goes through these stages, drawing from one
generator in this order:

1. the manager on each spell at entry (`Engine._new_batch`, no draws) and,
   with job history, the managers in force after it
   (`history.draw_manager_paths`, from the history generator);
2. what each person brings (`people.draw_person`) and, with practices,
   their potential feedback events and employee-programme starts
   (`practices`, from the practices generator);
3. latent performance and potential ratings (`performance.draw_performance`);
4. goals, parents, weights, attainment, alignment (`goals.draw_goals`);
5. survey responses and item answers (`surveys.draw_responses`);
6. the exit (`exits.draw_exits`), which also records the exact hazard intervals;
7. truncation of the potential paths at the exit, then storage (`Engine._store`).

After a depth, its managers' leadership-development starts are drawn
(`programs.nominate_leadership_development`). Finally `_tables_from_engine`
keeps the spells in the data and draws rehires, programme enrolments,
feedback events and (history generator) promotions and lateral moves.
Reorganisations are drawn before the first depth (history generator).
The history generator is spawned from the run's, so ``history: false``
leaves every other draw as it was; the practices generator (goal difficulty,
set_with and revisions, feedback events and programme starts drawn in the
batch) is spawned after it, so ``practices: false`` does the same.

Glossary of the engine's state (all days are integer day numbers, see `days`):

* ``spells``: dict of arrays, one entry per spell simulated so far
  (``slot, hire_day, term_day, exit_cause, manager, job_level, depth, ...``;
  spells x cycles: ``rating, target_attainment, first_goal_id, goal_count,
  alignment_cascade, alignment_org``; spells x window years: ``latest_rating``);
* ``goals``: dict of arrays, one entry per goal (``owner, cycle, parent,
  weight, attainment, reaches_org, owner_in_cycle``);
* ``*_parts``: lists of per-batch arrays not yet concatenated;
* ``holders``: who holds which position when (`organisation.PositionHolders`),
  over the depth just finished (the managers of the next depth);
* ``cycle_*_day``: first and last day of each review cycle (calendar year,
  from the year before the window); ``year_start_day``: 1 January of each
  window year and of the year after; ``wave_open_day``: survey wave openings.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .days import NO_DAY, YEAR, cycle_years, frame_from_parts, to_day_number
from .derived import compute_derived
from .exits import draw_exits
from .feedback import draw_feedback
from .goals import draw_goals, goal_tables
from .history import draw_job_history, draw_manager_paths, draw_reorganisations, entry_parent, manager_timeline
from .organisation import PositionHolders, build_tree
from .people import Batch, ManagerPath, draw_person, draw_rehires, manager_context
from .performance import draw_performance, latest_known_rating, rating_cuts, review_table
from .practices import apply_revisions, draw_batch_events, draw_program_starts
from .programs import draw_programs, nominate_leadership_development
from .surveys import draw_responses, mean_log_feedback_multiplier, response_tables, stored_responses
from .truth import SCALE_ITEMS, Truth, default_truth

__all__ = ["Engine", "run_engine", "example_engine", "first_batch"]

_CHUNK = 20_000  # spells simulated together


class Engine:
    """State of one simulation run: its calendar, the spells, goals and responses so far (see the module docstring)."""

    def __init__(self, truth: Truth, rng: np.random.Generator):
        self.truth = truth
        self.rng = rng
        self.window_start_day, self.window_end_day = to_day_number(truth.window_start), to_day_number(truth.window_end)
        self.cycle_years = cycle_years(truth)
        self.n_cycles = len(self.cycle_years)
        self.cycle_start_day = np.array([to_day_number(dt.date(y, 1, 1)) for y in self.cycle_years])
        self.cycle_end_day = np.array([to_day_number(dt.date(y, 12, 31)) for y in self.cycle_years])
        self.first_window_year = self.cycle_years[1]  # window years index the "latest known" tables
        self.year_start_day = np.array(
            [to_day_number(dt.date(y, 1, 1)) for y in range(self.first_window_year, truth.window_end.year + 2)])
        self.n_years = len(self.year_start_day) - 1
        window_years = range(self.first_window_year, truth.window_end.year + 1)
        waves = np.array([to_day_number(dt.date(y, m, 1)) for y in window_years for m in truth.survey_months])
        self.wave_open_day = waves[(waves >= self.window_start_day) & (waves <= self.window_end_day)]
        self.history_start_day = self.window_start_day - int(round(truth.history_years * YEAR))
        self.rating_cuts = rating_cuts(truth.rating_shares)
        self.job_level_log_hr = np.zeros(8)  # voluntary log-hazard ratio by job level
        for level, value in truth.hr_job_level.items():
            self.job_level_log_hr[int(level)] = value
        self.involuntary_daily_rate = -np.log1p(-truth.involuntary_rate) / YEAR
        self.other_daily_rate = -np.log1p(-truth.other_rate) / YEAR
        self.item_columns = {s: [f"{s}_{j}" for j in range(1, k + 1)] for s, (k, _) in SCALE_ITEMS.items()}
        self.mean_log_feedback = mean_log_feedback_multiplier(truth.feedback_rate_shape)
        self.spells: dict[str, np.ndarray] = {}
        self.goals: dict[str, np.ndarray] = {}
        self.spell_parts: dict[str, list] = {}
        self.goal_parts: dict[str, list] = {}
        self.response_parts: dict[str, list] = {}
        self.interval_parts: list[dict] = []  # exact hazard intervals of each batch (`frame_from_parts`)
        self.leadership_starts: list[tuple[np.ndarray, np.ndarray]] = []  # (spells, start days), by depth
        self.n_spells = 0
        self.n_goals = 0
        # set by run (the tree's arrays by slot) and by finish_depth (look-ups over the depth just finished)
        self.tree_parent = self.tree_level = self.tree_is_manager = np.zeros(0, np.int64)
        self.holders: PositionHolders | None = None
        self.unrelated_goal_pool: list[np.ndarray] = []  # per cycle: goal ids another team's goals may link to
        # job history (see `history`): its own generator, spawned from the run's, so other draws stay the same
        self.history = bool(truth.history)
        self.history_rng = rng.spawn(1)[0] if self.history else None
        # the practices (see `practices`): their own generator, spawned after the history one
        self.practices = bool(truth.practices)
        self.practices_rng = rng.spawn(1)[0] if self.practices else None
        self.event_parts: list[dict] = []  # feedback events before each spell's exit (`frame_from_parts`)
        self.program_start_parts: list[dict] = []  # employee-programme starts before each spell's exit
        self.manager_change_exit_days = int(round(truth.manager_change_exit_months * 30.4375))
        self.history_parts: list[dict] = []  # manager changes of each batch (entry rows included; `frame_from_parts`)
        self.reorg_day = self.reorg_parent = np.zeros(0, np.int64)
        self.manager_slots_at_depth: list[np.ndarray] = []

    def year_index(self, days):
        """Index into ``year_start_day`` of the calendar year holding each day (0 = first window year)."""
        return np.searchsorted(self.year_start_day, days, side="right") - 1

    # ------------------------------------------------------------------ depth by depth
    def run(self, tree: pd.DataFrame) -> None:
        """Fill every position of ``tree`` with spells, depth by depth, from the history start to the window end."""
        self.tree_parent = tree["parent"].to_numpy()
        self.tree_level = tree["job_level"].to_numpy()
        self.tree_is_manager = tree["is_manager"].to_numpy()
        depth = tree["depth"].to_numpy()
        if self.history:
            self.manager_slots_at_depth = [np.flatnonzero(self.tree_is_manager & (depth == d))
                                           for d in range(depth.max() + 1)]
            draw_reorganisations(self, tree)
        for d in range(depth.max() + 1):
            slot = np.flatnonzero(depth == d)
            hire_day = self.history_start_day + (0 if d == 0 else self.rng.integers(0, 365, len(slot)))
            hire_day = np.broadcast_to(hire_day, slot.shape).astype(np.int64)
            while len(slot):
                # spells of one depth are independent given the depth above: chunks bound the memory
                term_day = np.concatenate([self.simulate_batch(slot[i : i + _CHUNK], hire_day[i : i + _CHUNK], d)
                                           for i in range(0, len(slot), _CHUNK)])
                left = term_day != NO_DAY
                successor_hire = term_day[left] + self.rng.integers(1, self.truth.vacancy_days_max + 1, left.sum())
                ok = successor_hire <= self.window_end_day - 1
                slot, hire_day = slot[left][ok], successor_hire[ok]
            self.finish_depth(d)

    def finish_depth(self, depth: int) -> None:
        """Make a depth's spells available to the next depth (look-ups, goal pools, programme starts)."""
        self._concatenate_parts()
        spells = self.spells
        at_depth = np.flatnonzero(spells["depth"] == depth)
        in_data = spells["term_day"][at_depth] > self.window_start_day
        if depth >= 1:
            nominate_leadership_development(self, at_depth[self.tree_is_manager[spells["slot"][at_depth]] & in_data])
        # pools of goals another team may serve ("unrelated" parents): managers' goals in the data
        managers_in_data = (self.tree_is_manager[spells["slot"]] & (spells["term_day"] > self.window_start_day)
                            & (spells["depth"] == depth))
        ok = managers_in_data[self.goals["owner"]] & self.goals["owner_in_cycle"]
        self.unrelated_goal_pool = [np.flatnonzero(ok & (self.goals["cycle"] == c)) for c in range(self.n_cycles)]
        self.holders = PositionHolders(at_depth, spells, self.history_start_day, self.window_end_day)

    def _concatenate_parts(self) -> None:
        self.spells = {k: np.concatenate(v) for k, v in self.spell_parts.items()}
        for who, start in self.leadership_starts:
            self.spells["leadership_start_day"][who] = start
        self.goals = {k: np.concatenate(v) for k, v in self.goal_parts.items()} if self.goal_parts else {}
        # keep one copy: later batches append to the concatenated arrays
        self.spell_parts = {k: [v] for k, v in self.spells.items()}
        self.goal_parts = {k: [v] for k, v in self.goals.items()}
        self.response_parts = {k: [np.concatenate(v)] for k, v in self.response_parts.items()}

    # ------------------------------------------------------------------ one batch of new spells
    def simulate_batch(self, slot: np.ndarray, hire_day: np.ndarray, depth: int) -> np.ndarray:
        """Simulate new spells of one depth through every stage; store them; return their termination days."""
        batch = self._new_batch(slot, hire_day, depth)
        person = draw_person(self, batch)
        if self.practices:
            batch.events = draw_batch_events(self, batch, person)
            program_starts = draw_program_starts(self, batch)
        performance = draw_performance(self, batch)
        goals = draw_goals(self, batch, person, performance)
        manager = manager_context(self, batch)
        own_latest = latest_known_rating(np.where(performance.rateable, performance.rating, np.nan), self.n_years)
        responses = draw_responses(self, batch, person, goals, manager)
        exits = draw_exits(self, batch, person, goals.alignment_cascade, manager, own_latest, responses)
        self.interval_parts.append(exits.intervals)
        if self.practices:
            apply_revisions(self, goals, exits.term_day)
            self._store_practices(batch, goals, program_starts, exits.term_day)
        self._store(batch, person, performance, goals, responses, exits)
        return exits.term_day

    def _store_practices(self, batch, goals, program_starts, term_day) -> None:
        """Keep the events and programme starts before the exit; the goals' practices; each spell's first 360."""
        events = batch.events.table(batch.spell_id)
        first = batch.spell_id[0] if batch.size else 0
        before_exit = events["day"] < term_day[events["spell"] - first]
        self.event_parts.append({column: values[before_exit] for column, values in events.items()})
        before_exit = program_starts["start"] < term_day[program_starts["spell"] - first]
        self.program_start_parts.append({column: values[before_exit] for column, values in program_starts.items()})
        first_360 = np.where(batch.events.first_360 < term_day, batch.events.first_360, NO_DAY)
        _append(self.spell_parts, first_360_day=first_360)
        _append(self.goal_parts, difficulty=goals.difficulty, set_with=goals.set_with, revision_day=goals.revision_day,
                base_attainment=goals.base_attainment)

    def _new_batch(self, slot: np.ndarray, hire_day: np.ndarray, depth: int) -> Batch:
        """Number the new spells; the manager is the parent position's holder at max(hire, window start)."""
        n = len(slot)
        spell_id = self.n_spells + np.arange(n)
        self.n_spells += n
        entry = np.maximum(hire_day, self.window_start_day)
        if depth == 0:
            manager = np.full(n, -1)
        else:
            parent = entry_parent(self, slot, entry) if self.history else self.tree_parent[slot]
            manager = self.holders.holder_on(parent, entry)
            in_data = self.spells["term_day"][np.maximum(manager, 0)] > self.window_start_day
            manager = np.where((manager >= 0) & in_data, manager, -1)
        batch = Batch(slot=slot, hire_day=hire_day, depth=depth, spell_id=spell_id, job_level=self.tree_level[slot],
                      manager=manager)
        if self.history:
            batch.path = (draw_manager_paths(self, batch) if depth >= 1
                          else ManagerPath.static(entry, manager, np.full(n, -1)))
            path = batch.path
            valid = path.day != NO_DAY
            row, k = np.nonzero(valid)
            self.history_parts.append({
                "spell": spell_id[row], "day": path.day[row, k], "manager": path.manager[row, k],
                "parent": path.parent[row, k], "reason": path.reason[row, k]})
        return batch

    def _store(self, batch, person, performance, goals, responses, exits) -> None:
        """Truncate the potential paths at the exit and append the batch to the engine's arrays.

        ``NO_DAY`` is the largest int64, so a spell without exit compares as never ended.
        """
        term_day = exits.term_day
        rated = performance.rateable & (term_day[:, None] > self.cycle_end_day[None, :])
        pair_kept = term_day[goals.pair_spell] > self.cycle_start_day[goals.pair_cycle]  # employed when the cycle began
        goals.goal_count[goals.pair_spell[~pair_kept], goals.pair_cycle[~pair_kept]] = 0
        goals.alignment_cascade[goals.goal_count == 0] = np.nan
        goals.alignment_org[goals.goal_count == 0] = np.nan
        rating = np.where(rated, performance.rating, np.nan)
        cycle_day = np.maximum(self.cycle_start_day[None, :], batch.hire_day[:, None])
        cycle_manager = batch.manager_path.manager_on(np.arange(batch.size)[:, None], cycle_day)
        _append(self.spell_parts, cycle_manager=cycle_manager, slot=batch.slot, hire_day=batch.hire_day, term_day=term_day,
                exit_cause=exits.cause, manager=batch.manager, job_level=batch.job_level,
                depth=np.full(batch.size, batch.depth), gender=person.gender, birth_year=person.birth_year,
                team_link_propensity=person.team_link_propensity,
                effect_on_reports_engagement=person.effect_on_reports_engagement,
                effect_on_reports_leadership=person.effect_on_reports_leadership,
                feedback_multiplier=person.feedback_multiplier,
                leadership_start_day=np.full(batch.size, NO_DAY, np.int64),
                latest_rating=latest_known_rating(rating, self.n_years), rating=rating,
                target_attainment=np.where(rated, goals.target_attainment, np.nan),
                first_goal_id=goals.first_goal_id, goal_count=goals.goal_count,
                alignment_cascade=goals.alignment_cascade, alignment_org=goals.alignment_org)
        _append(self.goal_parts, owner=batch.spell_id[goals.owner], cycle=goals.cycle, parent=goals.parent,
                weight=goals.weight, attainment=goals.attainment, reaches_org=goals.reaches_org,
                owner_in_cycle=pair_kept[goals.goal_pair])
        _append(self.response_parts, **stored_responses(batch, responses, term_day))


def example_engine(n_positions: int = 30, seed: int = 0) -> tuple[Engine, pd.DataFrame]:
    """Run a small engine on the default truth: the starting point of the simulator's examples.

    Parameters
    ----------
    n_positions : int, default 30
        Positions in the organisation tree.
    seed : int, default 0
        Seed of the random generator.

    Returns
    -------
    (Engine, DataFrame)
        The engine after its run, and the position tree it ran on.

    Examples
    --------
    >>> engine, tree = example_engine()
    >>> len(tree), engine.n_spells > 0
    (30, True)
    """
    engine = Engine(default_truth(), np.random.default_rng(seed))
    tree = build_tree(n_positions, engine.truth, engine.rng)
    engine.run(tree)
    return engine, tree


def first_batch(engine: Engine, tree: pd.DataFrame) -> Batch:
    """Return a batch of one new spell: the top position's holder, hired on the window's first day.

    Parameters
    ----------
    engine : Engine
        An engine (e.g. from :func:`example_engine`).
    tree : DataFrame
        Its position tree.

    Returns
    -------
    Batch
        One spell at depth 0 with no manager.

    Examples
    --------
    >>> engine, tree = example_engine()
    >>> first_batch(engine, tree).slot.tolist()
    [0]
    """
    return Batch(slot=np.array([0]), hire_day=np.array([engine.window_start_day]), depth=0,
                 spell_id=np.array([engine.n_spells]), job_level=tree["job_level"].to_numpy()[:1],
                 manager=np.array([-1]))


def _append(store: dict, **arrays) -> None:
    for k, v in arrays.items():
        store.setdefault(k, []).append(np.asarray(v))


def run_engine(n: int, truth: Truth, rng: np.random.Generator) -> dict:
    """Simulate the organisation until exactly ``n`` spells fall in the window; return its internal tables.

    The organisation's size is calibrated over a few attempts; surplus
    in-window hires of individual contributors are then dropped at random.

    Parameters
    ----------
    n : int
        Number of spells in the data (``n_employees`` of `simulate_study`).
    truth : Truth
        The true parameters.
    rng : numpy.random.Generator
        The run's only generator.

    Returns
    -------
    dict
        ``spells, goals, reviews, surveys, programs, feedback,
        true_alignment, true_intervals`` (DataFrames with spell and day
        numbers; `assemble_tables` makes them canonical) and ``derived``
        (see `compute_derived`).

    Examples
    --------
    >>> import numpy as np
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.engine import run_engine
    >>> tables = run_engine(50, ar.default_truth(), np.random.default_rng(0))
    >>> len(tables["spells"])
    50
    """
    ratio = 1.7  # spells in the data per position, refined after each attempt
    for _attempt in range(30):  # tiny studies may need many; the first success is kept as before
        n_slots = max(int(np.ceil(n / ratio * 1.03)), 8)
        tree = build_tree(n_slots, truth, rng)
        engine = Engine(truth, rng)
        engine.run(tree)
        spells = engine.spells
        in_data = spells["term_day"] > engine.window_start_day
        count = int(in_data.sum())
        leaf = ~engine.tree_is_manager[spells["slot"]]
        removable = np.flatnonzero(in_data & leaf & (spells["hire_day"] > engine.window_start_day))
        excess = count - n
        if 0 <= excess <= 0.3 * len(removable):
            break
        ratio = count / len(tree)
    else:  # pragma: no cover - calibration converges within a few attempts (tiny studies: a few more)
        raise RuntimeError("could not calibrate the organisation size")
    drop = rng.choice(removable, size=excess, replace=False) if excess else np.zeros(0, int)
    in_data[drop] = False
    return _tables_from_engine(engine, tree, in_data, truth, rng)


def _tables_from_engine(engine: Engine, tree: pd.DataFrame, in_data: np.ndarray, truth: Truth, rng) -> dict:
    """Internal tables of the spells in the data (spell and day numbers; `assemble` makes them canonical)."""
    spells = engine.spells
    in_data_spells = np.flatnonzero(in_data)
    term_day = spells["term_day"]
    end_day = np.where(term_day == NO_DAY, engine.window_end_day + 1, term_day)  # first day not employed
    entry_day = np.maximum(spells["hire_day"], engine.window_start_day)
    spell_table = _spell_table(engine, tree, in_data, truth, rng)
    goals, true_alignment = goal_tables(engine, in_data)
    reviews = review_table(engine, in_data_spells)
    surveys, stats = response_tables(engine, in_data)
    events = starts = None
    if engine.practices:  # drawn on each spell's path before its surveys and exit (see `practices`)
        events = frame_from_parts(engine.event_parts, ["spell", "day", "kind"])
        events = events[in_data[events["spell"].to_numpy()]]
        starts = frame_from_parts(engine.program_start_parts, ["spell", "program", "start"])
        starts = starts[in_data[starts["spell"].to_numpy()]]
        engine.event_parts, engine.program_start_parts = [], []
    programs = draw_programs(engine, in_data_spells, end_day, entry_day, truth, rng, starts=starts)
    changes = timeline = None
    if engine.history:
        changes, timeline = manager_timeline(engine, in_data, end_day)
    feedback = draw_feedback(engine, in_data, end_day, entry_day, truth, rng,
                             manager_on=timeline.on if timeline is not None else None, events=events)
    intervals = frame_from_parts(engine.interval_parts, list(engine.interval_parts[0]))
    engine.interval_parts = []
    intervals = intervals[in_data[intervals["spell"].to_numpy()]]
    derived = compute_derived(engine, truth, in_data_spells, end_day, entry_day, stats, tree)
    job_history = None
    if engine.history:
        job_history = draw_job_history(engine, tree, in_data_spells, changes, programs, end_day, entry_day)
        person_years = float((np.minimum(end_day, engine.window_end_day + 1) - entry_day)[in_data_spells].sum()) / YEAR
        reasons = job_history["reason"].value_counts()
        derived["job_history_rows"] = {str(k): int(v) for k, v in reasons.items()}
        derived["promotions_per_person_year"] = round(float(reasons.get("promotion", 0)) / person_years, 4)
    return {"spells": spell_table, "job_history": job_history, "goals": goals, "reviews": reviews, "surveys": pd.DataFrame(surveys),
            "programs": programs, "feedback": feedback, "true_alignment": true_alignment,
            "true_intervals": intervals, "derived": derived}


def _spell_table(engine: Engine, tree: pd.DataFrame, in_data: np.ndarray, truth: Truth, rng) -> pd.DataFrame:
    """One row per spell in the data, with its person (rehires share one), position attributes and exit."""
    spells = engine.spells
    kept = np.flatnonzero(in_data)
    leaf = ~engine.tree_is_manager[spells["slot"]]
    person, gender, birth_year = draw_rehires(engine, in_data, leaf, truth, rng)
    department = tree["department"].to_numpy(object)[spells["slot"]]
    location = tree["location"].to_numpy(object)[spells["slot"]]
    cause = spells["exit_cause"][kept]
    types = np.array(["voluntary", "involuntary", "other"], dtype=object)
    return pd.DataFrame({
        "spell": kept, "slot": spells["slot"][kept], "person": person[kept], "hire": spells["hire_day"][kept],
        "term": spells["term_day"][kept], "term_type": np.where(cause >= 0, types[np.maximum(cause, 0)], None),
        "department": department[kept], "job_level": spells["job_level"][kept], "manager": spells["manager"][kept],
        "location": location[kept], "gender": gender[kept], "birth_year": birth_year[kept],
    })
