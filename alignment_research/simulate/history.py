"""Job history: manager changes (successions, reorganisations, transfers), promotions and lateral moves.

With ``truth.history`` (the default) every spell has an effective-dated
history from its entry (``max(hire, window start)``; the export starts at
the window, so a spell hired earlier carries the values in force at the
window start on its ``hire`` row). The static columns of ``employees``
(``manager_id``, ``department``, ``job_level``, ``location``) are the values
on that row: the values at hire. History draws come from their own
generator (spawned from the study's), so the other draws are unchanged by
the rates; ``history: false`` reproduces the simulator without history bit
for bit.

*Manager in force.* A spell reports to a parent *position*; its manager on a
day is the latest holder of that position hired on or before the day (in a
vacancy, the one who left, until the successor is hired). The manager
changes

* when the parent position gets a successor (``manager_change``, on the
  successor's hire day);
* in a *reorganisation* (``reorganisation``): each team (manager position
  below the CEO) is reorganised in the window with probability
  ``1 - exp(-reorg_rate * window years)``, on a uniform day; all its
  positions move under another manager position of the same depth
  (uniform), whose department they take. Later holders of the moved
  positions report there too. A reorganisation onto a position that is
  vacant on the day is cancelled;
* in a *transfer* (``transfer``): a spell two or more levels below the CEO
  moves, at most once, after an exponential time with rate
  ``transfer_rate`` per year from its entry, to another team (a uniform
  manager position of the same depth as its own manager's), taking its
  department; cancelled when that position is vacant on the day.

*Manager changes raise the voluntary exit hazard* by
``exp(manager_change_exit_hr)`` for ``manager_change_exit_months`` months
(of 30.4375 days) after each change (see `exits`).

*Promotions* (``promotion``, one job level up, never above 5) arrive at the
piecewise-constant rate ``promotion_base_rate / 365.25 * exp(
promotion_rating * (own latest known rating - 3) + promotion_mentoring *
mentored + promotion_coaching * coached + promotion_manager_program *
manager_program)`` per day in the window, where *mentored* / *coached* are
1 from the start of the spell's own mentoring / coaching enrolment (see
`programs`; exposure from the start date, whatever the status), and
*manager_program* is 1 once the manager in force has started leadership
development. An unknown rating counts 3. Promotions change the job level in
the history only: the exit hazards use the level at hire (``hr_job_level``).

*Lateral moves* (``transfer``): at most once per spell, after an exponential
time with rate ``lateral_rate`` per year from entry, the location changes to
another (uniform) location; manager, department and level stay.

A promotion or lateral move that falls while the manager in force has left
and the successor is not yet hired (a vacancy) is dropped, so every change
row names a manager employed on its date (about 0.2% of them).

Rows on the same day are merged into one; its reason is the first of
promotion, transfer, reorganisation, manager_change.

Glossary: a *segment* is a stretch of days with one parent position; codes
``HIRE, PROMOTION, TRANSFER, MANAGER_CHANGE, REORGANISATION, LATERAL``
number the reasons internally (`REASONS` names them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .days import NO_DAY, YEAR, frame_from_parts
from .people import ManagerPath

__all__ = ["REASONS", "draw_job_history", "draw_manager_paths", "draw_reorganisations", "manager_timeline"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine
    from .people import Batch

#: Canonical ``reason`` values of ``job_history``.
REASONS = ("hire", "promotion", "demotion", "transfer", "manager_change", "reorganisation", "other")

HIRE, PROMOTION, TRANSFER, MANAGER_CHANGE, REORGANISATION, LATERAL = 0, 1, 2, 3, 4, 5
_REASON_NAME = np.array(["hire", "promotion", "transfer", "manager_change", "reorganisation", "transfer"], dtype=object)
_PRIORITY = np.array([5, 0, 1, 3, 2, 1])  # merged same-day rows keep the reason of lowest priority number


def draw_reorganisations(engine: Engine, tree: pd.DataFrame) -> None:
    """Draw each team's reorganisation (day and new parent position); store them by moved position in the engine.

    Parameters
    ----------
    engine : Engine
        The engine (its history generator and calendar); sets
        ``engine.reorg_day`` (``NO_DAY`` if none) and ``engine.reorg_parent``
        (-1) by position.
    tree : DataFrame
        The position tree.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> draw_reorganisations(engine, tree)
    >>> engine.reorg_day.shape == (len(tree),)
    True
    """
    hrng, truth = engine.history_rng, engine.truth
    parent, depth = tree["parent"].to_numpy(), tree["depth"].to_numpy()
    is_manager = tree["is_manager"].to_numpy()
    n = len(tree)
    engine.reorg_day = np.full(n, NO_DAY, np.int64)
    engine.reorg_parent = np.full(n, -1, np.int64)
    w0, w1 = engine.window_start_day, engine.window_end_day
    teams = np.flatnonzero(is_manager & (depth >= 1))
    p = 1 - np.exp(-truth.reorg_rate * (w1 - w0) / YEAR)
    hit = hrng.random(len(teams)) < p
    day = w0 + 1 + np.floor(hrng.random(len(teams)) * (w1 - w0)).astype(np.int64)
    new_parent = _other_position(engine.manager_slots_at_depth, depth[teams], teams, hrng.random(len(teams)))
    team_day = np.full(n, NO_DAY, np.int64)
    team_new = np.full(n, -1, np.int64)
    ok = hit & (new_parent >= 0)
    team_day[teams[ok]], team_new[teams[ok]] = day[ok], new_parent[ok]
    moved = np.flatnonzero(parent >= 0)
    engine.reorg_day[moved] = team_day[parent[moved]]
    engine.reorg_parent[moved] = team_new[parent[moved]]


def _other_position(slots_at_depth: list, depth: np.ndarray, current: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A uniform manager position of the given depth other than ``current`` (-1 when there is none)."""
    out = np.full(len(current), -1, np.int64)
    for d in np.unique(depth):
        candidates = slots_at_depth[d]
        at = np.flatnonzero(depth == d)
        if len(candidates) < 2:
            continue
        j = np.floor(u[at] * (len(candidates) - 1)).astype(np.int64)
        pos = np.searchsorted(candidates, current[at])
        own = (pos < len(candidates)) & (candidates[np.minimum(pos, len(candidates) - 1)] == current[at])
        j = np.where(own & (j >= pos), j + 1, j)
        out[at] = candidates[j]
    return out


def _last_hired(engine: Engine, slot: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The latest holder of ``slot`` hired on or before ``day`` (-1 for none), among the depth above."""
    holders = engine.holders
    j = np.searchsorted(holders.key, holders.day_key(slot, day), side="right") - 1
    at = np.clip(j, 0, max(len(holders.key) - 1, 0))
    same = (j >= 0) & (holders.slot[at] == slot) if len(holders.key) else np.zeros(len(slot), bool)
    return np.where(same, holders.spell[at] if len(holders.key) else -1, -1)


def _successions(engine: Engine, slot: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Holders of ``slot`` hired in ``(start, end)``: (spells x successions) spell and hire day, -1 / NO_DAY pads."""
    holders = engine.holders
    ok = start < end
    lo = np.searchsorted(holders.key, holders.day_key(slot, np.where(ok, start, 0)), side="right")
    hi = np.searchsorted(holders.key, holders.day_key(slot, np.where(ok, end - 1, 0)), side="right")
    count = np.where(ok, hi - lo, 0)
    width = int(count.max()) if len(count) else 0
    j = lo[:, None] + np.arange(width)[None, :]
    valid = np.arange(width)[None, :] < count[:, None]
    spell = np.where(valid, holders.spell[np.minimum(j, len(holders.spell) - 1)] if width else -1, -1)
    day = np.where(valid, engine.spells["hire_day"][np.maximum(spell, 0)], NO_DAY)
    return spell, day


def entry_parent(engine: Engine, slot: np.ndarray, entry: np.ndarray) -> np.ndarray:
    """The parent position in force at entry (after a reorganisation on or before it)."""
    moved = engine.reorg_day[slot] <= entry
    return np.where(moved, engine.reorg_parent[slot], engine.tree_parent[slot])


def draw_manager_paths(engine: Engine, batch: Batch) -> ManagerPath:
    """Draw the transfers of a batch and find every manager in force over its window time.

    Parameters
    ----------
    engine : Engine
        The engine (history generator, reorganisations, holders of the depth above).
    batch : Batch
        The new spells (``manager`` is the manager at entry).

    Returns
    -------
    ManagerPath
        Entry, reorganisation, transfer and succession changes, sorted by day.

    Examples
    --------
    >>> from alignment_research.simulate.days import frame_from_parts
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine(n_positions=80)
    >>> changes = frame_from_parts(engine.history_parts, ["spell", "reason"])  # every batch's paths, a row per change
    >>> sorted(set(changes["reason"].tolist()))[0]  # 0: the entry
    0
    """
    truth, hrng, n = engine.truth, engine.history_rng, batch.size
    w0, w1 = engine.window_start_day, engine.window_end_day
    entry = np.maximum(batch.hire_day, w0)
    parent0 = entry_parent(engine, batch.slot, entry)
    reorg_day, parent1 = engine.reorg_day[batch.slot], engine.reorg_parent[batch.slot]
    wait = hrng.exponential(YEAR / truth.transfer_rate, n) if truth.transfer_rate > 0 else np.full(n, np.inf)
    u = hrng.random(n)
    transfer_day = entry + np.ceil(np.minimum(wait, 1e6)).astype(np.int64)
    transfer_day = np.maximum(transfer_day, entry + 1)
    parent_then = np.where(transfer_day >= reorg_day, np.where(parent1 >= 0, parent1, parent0), parent0)
    target = _other_position(engine.manager_slots_at_depth, np.full(n, batch.depth - 1), parent_then, u)
    transfer_manager = _last_hired(engine, target, transfer_day)
    term = engine.spells["term_day"]
    transfer_ok = ((transfer_day <= w1) & (target >= 0) & (transfer_manager >= 0)
                   & (term[np.maximum(transfer_manager, 0)] > transfer_day))
    transfer_day = np.where(transfer_ok, transfer_day, NO_DAY)
    reorg_manager = _last_hired(engine, np.maximum(parent1, 0), np.minimum(reorg_day, w1))
    reorg_ok = ((reorg_day > entry) & (reorg_day <= w1) & (reorg_day < transfer_day) & (parent1 >= 0)
                & (reorg_manager >= 0) & (term[np.maximum(reorg_manager, 0)] > np.minimum(reorg_day, w1)))
    reorg_day = np.where(reorg_ok, reorg_day, NO_DAY)
    end = np.minimum(np.minimum(reorg_day, transfer_day), w1 + 1)
    segments = [(parent0, entry, end)]
    segments.append((parent1, reorg_day, np.where(reorg_ok, np.minimum(transfer_day, w1 + 1), NO_DAY)))
    segments.append((target, transfer_day, np.where(transfer_ok, w1 + 1, NO_DAY)))
    day = [entry[:, None], reorg_day[:, None], transfer_day[:, None]]
    manager = [batch.manager[:, None], reorg_manager[:, None], transfer_manager[:, None]]
    parent = [parent0[:, None], parent1[:, None], target[:, None]]
    reason = [np.full((n, 1), HIRE), np.full((n, 1), REORGANISATION), np.full((n, 1), TRANSFER)]
    for slot, start, stop in segments:
        valid = (start != NO_DAY) & (slot >= 0)
        spell, hired = _successions(engine, np.maximum(slot, 0), np.where(valid, start, 0), np.where(valid, stop, 0))
        day.append(hired)
        manager.append(spell)
        parent.append(np.broadcast_to(slot[:, None], spell.shape))
        reason.append(np.full(spell.shape, MANAGER_CHANGE))
    return _sorted_path(np.concatenate(day, axis=1), np.concatenate(manager, axis=1),
                        np.concatenate(parent, axis=1), np.concatenate(reason, axis=1))


def _sorted_path(day, manager, parent, reason) -> ManagerPath:
    """Sort each row's changes by day, drop successions that do not change the manager, trim the padding."""
    rows = np.arange(len(day))[:, None]
    order = np.argsort(day, axis=1, kind="stable")
    day, manager, parent, reason = day[rows, order], manager[rows, order], parent[rows, order], reason[rows, order]
    same = np.zeros(day.shape, bool)
    same[:, 1:] = (manager[:, 1:] == manager[:, :-1]) & (reason[:, 1:] == MANAGER_CHANGE)
    day = np.where(same | (day == NO_DAY), NO_DAY, day)
    order = np.argsort(day, axis=1, kind="stable")
    day, manager, parent, reason = day[rows, order], manager[rows, order], parent[rows, order], reason[rows, order]
    width = max(int((day != NO_DAY).sum(axis=1).max()) if len(day) else 1, 1)
    pad = day[:, :width] == NO_DAY
    return ManagerPath(day=day[:, :width], manager=np.where(pad, -1, manager[:, :width]),
                       parent=np.where(pad, -1, parent[:, :width]), reason=reason[:, :width])


class ManagerTimeline:
    """The manager in force for any spell and day, over all spells (a sorted index of their changes)."""

    def __init__(self, spell: np.ndarray, day: np.ndarray, manager: np.ndarray, shift: int):
        self.shift = shift
        key = spell.astype(np.int64) * (1 << 32) + (day - shift)
        order = np.argsort(key, kind="stable")
        self.key, self.spell, self.day, self.manager = key[order], spell[order], day[order], manager[order]

    def on(self, spell: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The manager in force for ``spell`` on ``day`` (the entry manager before the entry)."""
        j = np.searchsorted(self.key, spell.astype(np.int64) * (1 << 32) + (day - self.shift), side="right") - 1
        first = np.searchsorted(self.key, spell.astype(np.int64) * (1 << 32), side="left")
        return self.manager[np.maximum(j, first)]


def manager_timeline(engine: Engine, in_data: np.ndarray, end_day: np.ndarray) -> tuple[pd.DataFrame, ManagerTimeline]:
    """The manager changes of the spells in the data before their exit, and a look-up of the manager in force.

    Parameters
    ----------
    engine : Engine
        The engine after its run (with history).
    in_data : numpy.ndarray
        Boolean by spell: the spell is in the data.
    end_day : numpy.ndarray
        First day not employed, by spell.

    Returns
    -------
    (DataFrame, ManagerTimeline)
        ``spell, day, manager, parent, reason`` (entry rows included), and
        the look-up.

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> from alignment_research.simulate.days import NO_DAY
    >>> engine, tree = example_engine()
    >>> term = engine.spells["term_day"]
    >>> end_day = np.where(term == NO_DAY, engine.window_end_day + 1, term)
    >>> changes, timeline = manager_timeline(engine, term > engine.window_start_day, end_day)
    >>> sorted(changes["reason"].unique().tolist())[0]
    0
    """
    changes = frame_from_parts(engine.history_parts, ["spell", "day", "manager", "parent", "reason"])
    spell = changes["spell"].to_numpy()
    keep = in_data[spell] & ((changes["reason"].to_numpy() == HIRE) | (changes["day"].to_numpy() < end_day[spell]))
    changes = changes[keep].reset_index(drop=True)
    timeline = ManagerTimeline(changes["spell"].to_numpy(), changes["day"].to_numpy(),
                               changes["manager"].to_numpy(), engine.history_start_day)
    return changes, timeline


def _padded(spell: np.ndarray, values: list, rows: np.ndarray, fill) -> list:
    """Per row of ``rows`` (sorted spells): the values of its changes as (rows x changes) arrays."""
    pos = np.searchsorted(rows, spell)
    start = np.searchsorted(spell, rows, side="left")
    rank = np.arange(len(spell)) - start[pos]
    width = int(rank.max()) + 1 if len(rank) else 1
    out = []
    for v, f in zip(values, fill):
        m = np.full((len(rows), width), f, dtype=np.asarray(v).dtype if f is not None else object)
        m[pos, rank] = v
        out.append(m)
    return out


def _manager_employed(engine: Engine, m_day: np.ndarray, m_manager: np.ndarray, row: np.ndarray,
                      day: np.ndarray) -> np.ndarray:
    """Whether the manager in force (``m_day``, ``m_manager`` by row) is employed on ``day`` (True without one)."""
    k = np.maximum((m_day[row] <= day[:, None]).sum(axis=1) - 1, 0)
    boss = m_manager[row, k]
    b = np.maximum(boss, 0)
    spells = engine.spells
    return (boss < 0) | ((spells["hire_day"][b] <= day) & (spells["term_day"][b] > day))


def draw_job_history(engine: Engine, tree: pd.DataFrame, spells_in_data: np.ndarray, changes: pd.DataFrame,
                     programs: pd.DataFrame, end_day: np.ndarray, entry_day: np.ndarray) -> pd.DataFrame:
    """Draw promotions and lateral moves; return the job history of the spells in the data.

    Parameters
    ----------
    engine : Engine
        The engine after its run (history generator, ratings, programme starts).
    tree : DataFrame
        The position tree (department and location of each position).
    spells_in_data : numpy.ndarray
        Sorted spell numbers in the data.
    changes : DataFrame
        The manager changes (`manager_timeline`).
    programs : DataFrame
        Programme enrolments (``spell, program, start``).
    end_day, entry_day : numpy.ndarray
        First day not employed, and ``max(hire, window start)``, by spell.

    Returns
    -------
    DataFrame
        ``spell, day, manager, department, job_level, location, reason``:
        a ``hire`` row per spell on its hire day, then one row per change day.

    Examples
    --------
    >>> import numpy as np
    >>> import alignment_research as ar
    >>> sim = ar.simulate_study(n_employees=300, seed=0, messy=False)
    >>> sim.tables["job_history"]["reason"].iloc[0]
    'hire'
    """
    truth, hrng, spells = engine.truth, engine.history_rng, engine.spells
    rows = spells_in_data
    n = len(rows)
    w1 = engine.window_end_day
    entry, end = entry_day[rows], np.minimum(end_day[rows], w1 + 1)
    department = tree["department"].to_numpy(object)
    location = tree["location"].to_numpy(object)
    level0 = spells["job_level"][rows].astype(np.int64)
    # --- manager changes (entry rows carry the values at hire) --------------------------------
    c_spell, c_day = changes["spell"].to_numpy(), changes["day"].to_numpy()
    c_manager, c_parent, c_reason = changes["manager"].to_numpy(), changes["parent"].to_numpy(), changes["reason"].to_numpy()
    moved = (c_reason == REORGANISATION) | (c_reason == TRANSFER)
    c_department = np.where(moved, department[np.maximum(c_parent, 0)], None)
    # --- promotions ----------------------------------------------------------------------------
    order = np.lexsort((c_day, c_spell))
    m_day, m_manager = _padded(c_spell[order], [c_day[order], c_manager[order]], rows, [NO_DAY, -1])
    starts = {}
    for program in ("mentoring", "coaching"):
        p = programs[programs["program"] == program]
        first = p.groupby("spell")["start"].min()
        s = np.full(len(rows), NO_DAY, np.int64)
        pos = np.searchsorted(rows, first.index.to_numpy())
        ok = (pos < n) & (rows[np.minimum(pos, n - 1)] == first.index.to_numpy())
        s[pos[ok]] = first.to_numpy()[ok]
        starts[program] = s
    has_manager = m_manager >= 0
    lead = np.where(has_manager, spells["leadership_start_day"][np.maximum(m_manager, 0)], NO_DAY)
    lead = np.where(m_day == NO_DAY, NO_DAY, lead)
    year_starts = np.broadcast_to(engine.year_start_day[1:-1], (n, len(engine.year_start_day) - 2))
    cuts = np.concatenate([entry[:, None], year_starts, np.minimum(starts["mentoring"], w1)[:, None],
                           np.minimum(starts["coaching"], w1)[:, None], np.minimum(m_day, w1),
                           np.minimum(lead, w1), end[:, None]], axis=1)
    cuts = np.sort(np.clip(cuts, entry[:, None], end[:, None]), axis=1)
    a, b = cuts[:, :-1], cuts[:, 1:]
    rix = np.arange(n)[:, None]
    year = np.clip(engine.year_index(a), 0, engine.n_years - 1)
    rating = spells["latest_rating"][rows][rix, year]
    k = np.maximum((m_day[:, None, :] <= a[:, :, None]).sum(axis=2) - 1, 0)
    log_rate = (np.log(max(truth.promotion_base_rate, 1e-300) / YEAR)
                + truth.promotion_rating * np.nan_to_num(rating - 3)
                + truth.promotion_mentoring * (a >= starts["mentoring"][:, None])
                + truth.promotion_coaching * (a >= starts["coaching"][:, None])
                + truth.promotion_manager_program * (a >= lead[rix, k]))
    expected = np.where(truth.promotion_base_rate > 0, np.exp(log_rate) * (b - a), 0.0)
    count = hrng.poisson(expected)
    seg_row, seg = np.nonzero(count)
    seg_row = np.repeat(seg_row, count[seg_row, seg])
    seg = np.repeat(seg, count[count > 0])
    p_day = a[seg_row, seg] + np.floor(hrng.random(len(seg)) * (b[seg_row, seg] - a[seg_row, seg])).astype(np.int64)
    p_order = np.lexsort((p_day, seg_row))
    p_row, p_day = seg_row[p_order], p_day[p_order]
    first_of_day = np.ones(len(p_row), bool)
    first_of_day[1:] = (p_row[1:] != p_row[:-1]) | (p_day[1:] != p_day[:-1])
    p_row, p_day = p_row[first_of_day & (p_day > entry[p_row])], p_day[first_of_day & (p_day > entry[p_row])]
    rank = np.arange(len(p_row)) - np.searchsorted(p_row, p_row, side="left") + 1
    p_keep = (level0[p_row] + rank <= 5) & _manager_employed(engine, m_day, m_manager, p_row, p_day)
    p_row, p_day = p_row[p_keep], p_day[p_keep]
    # --- lateral moves -------------------------------------------------------------------------
    wait = hrng.exponential(YEAR / truth.lateral_rate, n) if truth.lateral_rate > 0 else np.full(n, np.inf)
    l_day = entry + np.maximum(np.ceil(np.minimum(wait, 1e6)).astype(np.int64), 1)
    names = np.array(list(truth.locations), dtype=object)
    current = location[spells["slot"][rows]]
    pick = np.floor(hrng.random(n) * (len(names) - 1)).astype(np.int64)
    own = np.array([list(names).index(x) if x in set(names) else len(names) for x in current.tolist()])
    pick = np.where(pick >= own, pick + 1, pick)
    l_ok = (l_day < end) & (len(names) > 1) & _manager_employed(engine, m_day, m_manager, np.arange(n), l_day)
    l_row, l_day, l_location = np.flatnonzero(l_ok), l_day[l_ok], names[np.minimum(pick[l_ok], len(names) - 1)]
    # --- one frame of events, forward filled per spell -----------------------------------------
    pos = np.searchsorted(rows, c_spell)
    is_entry = c_reason == HIRE
    events = pd.DataFrame({
        "row": np.concatenate([pos, p_row, l_row]),
        "day": np.concatenate([np.where(is_entry, spells["hire_day"][c_spell], c_day), p_day, l_day]),
        "code": np.concatenate([c_reason, np.full(len(p_row), PROMOTION), np.full(len(l_row), LATERAL)]),
        "manager": np.concatenate([c_manager, np.full(len(p_row) + len(l_row), -2)]),
        "department": np.concatenate([np.where(is_entry, department[spells["slot"][c_spell]], c_department),
                                      np.full(len(p_row) + len(l_row), None)]),
        "location": np.concatenate([np.where(is_entry, location[spells["slot"][c_spell]], None),
                                    np.full(len(p_row), None), l_location]),
        "step": np.concatenate([np.zeros(len(c_spell), np.int64), np.ones(len(p_row), np.int64),
                                np.zeros(len(l_row), np.int64)]),
    })
    events["first"] = (events["code"] != HIRE).astype(np.int64)
    events = events.sort_values(["row", "first", "day", "code"], kind="stable").reset_index(drop=True)
    events["manager"] = events["manager"].where(events["manager"] != -2)
    filled = events.groupby("row")[["manager", "department", "location"]].ffill()
    events[["manager", "department", "location"]] = filled
    events["job_level"] = level0[events["row"].to_numpy()] + events.groupby("row")["step"].cumsum().to_numpy()
    events["priority"] = _PRIORITY[events["code"].to_numpy()]
    last = events.groupby(["row", "day"], sort=False).tail(1).set_index(["row", "day"])
    reason = events.groupby(["row", "day"], sort=False)["priority"].min()
    out = last.assign(priority=reason).reset_index()
    codes_by_priority = {5: HIRE, 0: PROMOTION, 1: TRANSFER, 3: MANAGER_CHANGE, 2: REORGANISATION}
    code = np.array([codes_by_priority[p] for p in out["priority"].tolist()], np.int64)
    return pd.DataFrame({
        "spell": rows[out["row"].to_numpy()], "day": out["day"].to_numpy(np.int64),
        "manager": out["manager"].to_numpy(np.int64), "department": out["department"].to_numpy(object),
        "job_level": out["job_level"].to_numpy(np.int64), "location": out["location"].to_numpy(object),
        "reason": _REASON_NAME[code],
    })
