"""Measures: cascade, perceived and attainment alignment; survey scales and their reliability; feedback rates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .errors import DataContractError
from .privacy import group_sizes, pool_small_levels, size_gate, suppress_small_groups
from .history import managers_in_cycles
from .spells import (DAY, DAYS_PER_MONTH, cycle_dates, index_of, numbered_spells, spell_of, stable_argsort,
                     window_bounds)

__all__ = [
    "MeasureResult",
    "GoalCodes",
    "code_goals",
    "ALIGNMENT_PROBLEM_COLUMNS",
    "cascade_alignment",
    "team_alignment",
    "attainment_alignment",
    "score_scales",
    "scale_reliability",
    "item_statistics",
    "trailing_event_rate",
    "feedback_rate",
    "feedback_rate_rows",
    "alignment_by_group",
    "plot_alignment_distribution",
    "plot_alignment_overview",
]

#: Columns of the broken-chain report of :func:`cascade_alignment`.
ALIGNMENT_PROBLEM_COLUMNS = ["goal_id", "cycle", "rule", "value"]

@dataclass(frozen=True)
class MeasureResult:
    """A measure table together with the problems met while computing it.

    Unpacks like a tuple: ``table, problems = cascade_alignment(...)``.

    Attributes
    ----------
    table : DataFrame
        The measure, one row per unit.
    problems : DataFrame
        One row per problem: ``goal_id, cycle, rule, value``.
    """

    table: pd.DataFrame
    problems: pd.DataFrame

    def __iter__(self):
        return iter((self.table, self.problems))


@dataclass(frozen=True)
class GoalCodes:
    """The goals' owners and cycles as integer codes of their text, for the goal measures to share.

    Made once by :func:`code_goals` and passed to :func:`cascade_alignment`,
    :func:`attainment_alignment` (``codes=``) and the cycles table, so that the
    1.4 million owner and cycle values of a 100,000-employee study are hashed
    once rather than once per measure.

    Attributes
    ----------
    owner : ndarray of int64
        Per goal row, the code of its ``owner_id`` as text; -1 when missing.
    owner_text : ndarray of object
        The distinct owner texts, by code (in order of first appearance).
    cycle : ndarray of int64
        Per goal row, the code of its ``cycle`` as text; -1 when missing.
    cycle_text : ndarray of object
        The distinct cycle texts, by code (in order of first appearance).
    """

    owner: np.ndarray
    owner_text: np.ndarray
    cycle: np.ndarray
    cycle_text: np.ndarray


def _text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values.astype("string")`` (-1 for missing values) and the distinct texts, hashing each value once.

    Values whose text is equal (``1`` and ``"1"``) share a code, as they do after ``astype("string")``;
    each distinct value is converted once, not each row.
    """
    raw, uniques = pd.factorize(values.to_numpy(dtype=object))
    text = np.asarray(pd.array(np.asarray(uniques, dtype=object), dtype="string"), dtype=object)
    merged, distinct = pd.factorize(text)
    return np.append(merged, -1).astype(np.int64)[raw], np.asarray(distinct, dtype=object)  # raw -1 takes the -1


def code_goals(goals: pd.DataFrame) -> GoalCodes:
    """Code the goals' owners and cycles by their text, once for every goal measure.

    Parameters
    ----------
    goals : DataFrame
        Clean goals with ``owner_id`` and ``cycle``.

    Returns
    -------
    GoalCodes
        Per goal row the code of its owner and of its cycle (-1 when missing),
        and the distinct texts of each.

    Examples
    --------
    >>> import pandas as pd
    >>> codes = code_goals(pd.DataFrame({"owner_id": ["E2", "E1", None, "E2"], "cycle": ["2024"] * 4}))
    >>> codes.owner.tolist(), codes.owner_text.tolist()
    ([0, 1, -1, 0], ['E2', 'E1'])
    """
    owner, owner_text = _text_codes(goals["owner_id"])
    cycle, cycle_text = _text_codes(goals["cycle"])
    return GoalCodes(owner=owner, owner_text=owner_text, cycle=cycle, cycle_text=cycle_text)


# --------------------------------------------------------------------------- helpers


def _owner_manager(keys: pd.DataFrame, employees: pd.DataFrame, cycle_frame: pd.DataFrame | None) -> pd.Series:
    """Manager of ``keys.employee_id`` in ``keys.cycle`` (the spell begun most recently by the cycle's end).

    Ids are compared as text (``astype("string")`` on both sides), each table's ids hashed once: the spells in
    hire-date order (missing dates last, ties in table order), then every lookup made on integer codes. A key
    whose cycle has an end date takes the latest spell hired on or before that end, as an as-of merge by
    employee would; other keys, and keys without such a spell, take the employee's first spell; with one spell
    per employee (or no cycle dates), the latest spell.
    """
    present = employees["employee_id"].notna().to_numpy()
    hire = employees["hire_date"].to_numpy("datetime64[ns]")[present]
    order = np.argsort(hire, kind="stable")  # as sort_values: missing dates last, ties in table order
    hire = hire[order]
    manager = employees["manager_id"].to_numpy(dtype=object)[present][order]
    code, ids = pd.factorize(_id_array(employees["employee_id"][present])[order])
    key_code = index_of(_id_array(keys["employee_id"]), np.asarray(ids, dtype=object))
    found = key_code >= 0
    n_ids = len(ids)
    if n_ids == len(code) or cycle_frame is None or cycle_frame["end"].isna().all():
        pick = np.empty(n_ids, dtype=np.int64)
        pick[code] = np.arange(len(code))  # the last spell of each employee in hire order (the latest)
    else:
        pick = np.full(n_ids, -1, dtype=np.int64)
        pick[code[::-1]] = np.arange(len(code))[::-1]  # the first spell of each employee in hire order
    out = np.full(len(keys), np.nan, dtype=object)
    out[found] = manager[pick[key_code[found]]]
    if n_ids != len(code) and cycle_frame is not None and not cycle_frame["end"].isna().all():
        ends = keys["cycle"].map(cycle_frame.set_index("name")["end"]).to_numpy("datetime64[ns]")
        dated = ~np.isnat(hire)
        asked = np.flatnonzero(found & ~np.isnat(ends))
        if dated.any() and len(asked):
            # one int64 key per (employee, date): the employee's code, then the rank of the date among all dates
            times = np.unique(np.concatenate([hire[dated], ends[asked]]))
            span = np.int64(len(times) + 1)
            rows = np.flatnonzero(dated)
            by_employee = np.argsort(code[rows], kind="stable")  # employee, then hire date, then table order
            rows = rows[by_employee]
            sp_key = code[rows].astype(np.int64) * span + np.searchsorted(times, hire[rows])
            q_key = key_code[asked] * span + np.searchsorted(times, ends[asked])
            i = np.searchsorted(sp_key, q_key, side="right") - 1  # the last spell hired on or before the end
            hit = (i >= 0) & (code[rows[np.maximum(i, 0)]] == key_code[asked])
            out[asked[hit]] = manager[rows[i[hit]]]
    return pd.Series(out, index=keys.index, dtype=employees["manager_id"].dtype)


def _id_array(ids: pd.Series) -> np.ndarray:
    """Ids as an object array of str (missing stays missing), whatever dtype they came in."""
    return ids.astype("string").to_numpy(dtype=object)


def _text_values(values: pd.Series) -> np.ndarray:
    """``values.astype("string")`` as an object array, skipping the conversion when the values are text already.

    Missing values stay as they are (None or NaN) when skipped; callers test them with ``pd.isna``.
    """
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.to_numpy(dtype=object)
    return values.astype("string").to_numpy(dtype=object)


def _as_objects(values) -> np.ndarray:
    """A column's values as an object array, without a copy or a missing-value scan for a "string" column."""
    return np.asarray(values.array if isinstance(values, (pd.Series, pd.Index)) else values, dtype=object)


def _factorize_pairs(first: pd.Series, second: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the (first, second) pairs in order of appearance, and the row of each pair's first occurrence."""
    a, _ = pd.factorize(first)
    b, b_uniq = pd.factorize(second)
    codes, _ = pd.factorize(a.astype(np.int64) * (len(b_uniq) + 1) + b)
    first_row = np.full(codes.max() + 1 if len(codes) else 0, -1, dtype=np.int64)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    return codes, first_row


def _weights(weight: pd.Series, group: np.ndarray) -> np.ndarray:
    """Goal weights; a group with any missing or non-positive total weight gets equal weights."""
    w = pd.to_numeric(weight, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(w) | (w < 0)
    n_groups = int(group.max()) + 1 if len(group) else 0
    any_bad = np.bincount(group, weights=bad.astype(float), minlength=n_groups) > 0
    total = np.bincount(group, weights=np.where(bad, 0.0, w), minlength=n_groups)
    equal = any_bad | (total <= 0)
    return np.where(equal[group], 1.0, np.where(bad, 0.0, w))


# --------------------------------------------------------------------------- cascade alignment


def cascade_alignment(goals: pd.DataFrame, employees: pd.DataFrame, *, cycles=None, history=None,
                      in_force: pd.DataFrame | None = None, codes: GoalCodes | None = None) -> MeasureResult:
    """Measure structural (cascade) alignment per employee and review cycle.

    For each employee and cycle, ``alignment_cascade`` is the weighted share of
    the employee's goals whose ``parent_goal_id`` is a goal owned by the
    employee's manager in the same cycle, and ``alignment_org`` the weighted
    share whose parent chain ends in an organisation-level goal (a goal with
    no parent, owned by someone with no manager, i.e. the top of the tree).

    Parameters
    ----------
    goals : DataFrame
        Clean goals: ``goal_id, owner_id, cycle, parent_goal_id`` and optionally
        ``weight`` (missing weight means equal weights).
    employees : DataFrame
        Clean employees: ``employee_id, hire_date, manager_id``.
    cycles : list of Cycle or str, optional
        Cycles to measure (``config.cycles``), in time order; all cycles in
        ``goals`` by default. With dates, a rehired employee's manager is taken
        from the spell begun most recently by the cycle's end.
    history : DataFrame, optional
        Cleaned ``job_history`` (``employee_id, effective_date, manager_id``). With it
        and dated ``cycles``, a goal is linked when its parent is a goal of any
        manager in force during the cycle (a successor or a new team's manager
        included), and ``manager_id`` is the last of them. Without it, the manager
        of the spell holds throughout.
    in_force : DataFrame, optional
        ``history.managers_in_cycles(history, numbered_spells(employees),
        cycle_dates(cycles))`` when already computed (the analysis tables pass
        theirs), used instead of building it again from ``history``.
    codes : GoalCodes, optional
        ``code_goals(goals)`` when already made (the analysis tables share theirs
        between the goal measures); made here otherwise.

    Returns
    -------
    MeasureResult
        ``table``: one row per employee and cycle with goals, columns
        ``employee_id, cycle, manager_id, n_goals, alignment_cascade,
        alignment_org``; ``alignment_cascade`` is NaN for employees without a
        manager. ``problems``: ``goal_id, cycle, rule, value`` with rules
        ``duplicate_goal_id``, ``owner_not_found``, ``parent_not_found``,
        ``parent_in_other_cycle`` and ``parent_chain_cycle``.

    Notes
    -----
    The parent chains are resolved by pointer doubling (``log2(n_goals)``
    vectorised jumps), so a chain that loops is detected rather than followed
    for ever; the chains themselves take well under a second at 100,000 employees. A goal whose chain
    breaks (a missing parent, a loop) counts as not reaching the organisation.
    A goal that is itself an organisation-level goal counts as reaching it.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> table, problems = ar.cascade_alignment(clean.tables["goals"], clean.tables["employees"],
    ...                                        cycles=clean.config.cycles)
    >>> list(table.columns)
    ['employee_id', 'cycle', 'manager_id', 'n_goals', 'alignment_cascade', 'alignment_org']
    """
    for col in ("goal_id", "owner_id", "cycle"):
        if col not in goals.columns:
            raise DataContractError(f"goals has no column `{col}`; cascade alignment needs goal_id, owner_id, cycle, parent_goal_id.")
    cycle_frame = cycle_dates(cycles)
    # Strings are converted and hashed once per column (owners and cycles: by code_goals, shared with the other
    # goal measures); rows then work on integer codes, and the manager is looked up once per (owner, cycle)
    # pair rather than once per goal.
    codes = code_goals(goals) if codes is None else codes
    cyc_names = codes.cycle_text
    usable = ~pd.isna(goals["goal_id"].to_numpy()) & (codes.owner >= 0) & (codes.cycle >= 0)
    if cycle_frame is not None:  # a cycle outside the configured ones (or missing: the False at the end) is left out
        usable &= np.append(np.isin(cyc_names, cycle_frame["name"].to_numpy(dtype=object)), False)[codes.cycle]
    # the goals frame itself when every row is usable (read column by column, never copied)
    if usable.all():
        g, owner_code, cyc_code = goals, codes.owner, codes.cycle
    else:
        g = goals[[c for c in ("goal_id", "owner_id", "cycle", "parent_goal_id", "weight")
                   if c in goals.columns]][usable]
        owner_code, cyc_code = codes.owner[usable], codes.cycle[usable]
    problems = []

    # goal and parent ids hashed in one pass: duplicates, and each parent's row
    goal_all = _text_values(g["goal_id"])
    parent_all = (_text_values(g["parent_goal_id"]) if "parent_goal_id" in g.columns
                  else np.full(len(g), pd.NA, dtype=object))
    # the parents first among themselves (a parent repeats, as one Python object, across its children's rows;
    # a missing parent takes -1), then the goal ids and the distinct parents together: the codes one factorize
    # of goal ids then parents gives
    parent_code_of, parents = pd.factorize(parent_all)
    has_parent_all = parent_code_of >= 0
    id_codes, id_levels = pd.factorize(np.concatenate([goal_all, np.asarray(parents, dtype=object)]))
    id_codes = np.concatenate([id_codes[:len(goal_all)], id_codes[len(goal_all):][parent_code_of[has_parent_all]]])
    del parent_code_of, parents
    goal_code = id_codes[:len(goal_all)]
    # codes are numbered in order of first appearance, goal ids first: a row repeats an earlier id
    # unless its code is above every code before it
    seen = np.maximum.accumulate(np.r_[-1, goal_code[:-1]]) if len(goal_code) else goal_code
    dup = goal_code <= seen
    if dup.any():
        problems.append(pd.DataFrame({"goal_id": g["goal_id"].to_numpy()[dup], "cycle": cyc_names[cyc_code[dup]],
                                      "rule": "duplicate_goal_id", "value": g["goal_id"].to_numpy()[dup]}))
        g, owner_code, cyc_code = g[~dup], owner_code[~dup], cyc_code[~dup]
    n = len(g)
    cyc = cyc_names[cyc_code] if n else np.zeros(0, dtype=object)
    goal_ids = goal_all[~dup]
    parent_ids = parent_all[~dup]
    has_parent = has_parent_all[~dup]
    row_of = np.full(len(id_levels), -1, dtype=np.int64)
    row_of[goal_code[~dup]] = np.arange(n)
    parent_code = np.full(len(goal_all), -1, dtype=np.int64)
    parent_code[has_parent_all] = id_codes[len(goal_all):]
    parent_code = parent_code[~dup]
    parent_pos = np.where(has_parent, row_of[np.maximum(parent_code, 0)], -1) if n else np.zeros(0, np.int64)
    dangling = has_parent & (parent_pos < 0)

    owner_uniq = codes.owner_text  # the owners of every goal row (of rows left out too: their codes go unused)
    owner_text = pd.array(owner_uniq, dtype="string")
    # one group per (owner, cycle) pair: numbered in the order of their integer keys when the keys are few
    # enough for a table of them (what groups go by is never their number: the table is sorted below)
    pair_key = owner_code.astype(np.int64) * (len(cyc_names) + 1) + cyc_code
    n_keys = len(owner_uniq) * (len(cyc_names) + 1)
    if n_keys <= 4 * n + 1024:
        used = np.zeros(n_keys, dtype=bool)
        used[pair_key] = True
        group_codes = (np.cumsum(used) - 1)[pair_key]
    else:
        group_codes, _ = pd.factorize(pair_key)
    del pair_key
    m = int(group_codes.max()) + 1 if n else 0
    first = np.full(m, -1, dtype=np.int64)
    first[group_codes[::-1]] = np.arange(n)[::-1]
    pair_keys = pd.DataFrame({"employee_id": owner_text.take(owner_code[first]), "cycle": cyc[first]})
    if (history is None and in_force is None) or cycle_frame is None or cycle_frame["start"].isna().any() or not n:
        in_force = None
    elif in_force is None:
        in_force = managers_in_cycles(history, numbered_spells(employees), cycle_frame)
    owners = np.asarray(owner_uniq, dtype=object)
    n_own, n_cyc = np.int64(len(owner_uniq)), np.int64(len(cyc_names))
    pair_manager_code = None  # per (owner, cycle) pair: its manager's code among the owners (-1: not an owner)
    if in_force is None:
        pair_manager = _owner_manager(pair_keys, employees, cycle_frame).astype("string")
    else:
        # the managers in force as codes among the owners (employees and managers in one hash pass) and cycles
        # as codes among the goals' cycles: the rows are matched on integers from here on, not on texts
        both = index_of(np.concatenate([_as_objects(in_force["employee_id"]), _as_objects(in_force["manager_id"])]),
                        owners)
        e_code, m_code = both[:len(in_force)], both[len(in_force):]
        c_code = index_of(in_force["cycle"], np.asarray(cyc_names, dtype=object))
        # the last manager in force in the cycle (the last row of each employee and cycle, what drop_duplicates
        # keeps); the spell's manager (looked up row by row) only for the pairs without one
        rows = np.flatnonzero((e_code >= 0) & (c_code >= 0))
        row_key = e_code[rows] * n_cyc + c_code[rows]
        by_key = stable_argsort(row_key)
        row_key, rows = row_key[by_key], rows[by_key]
        last_of_key = np.r_[row_key[1:] != row_key[:-1], True] if len(rows) else np.zeros(0, bool)
        last_key, last_row = row_key[last_of_key], rows[last_of_key]
        pair_key = owner_code[first].astype(np.int64) * n_cyc + cyc_code[first]
        at = np.minimum(np.searchsorted(last_key, pair_key), max(len(last_key) - 1, 0))
        known_pair = last_key[at] == pair_key if len(last_key) else np.zeros(len(pair_key), bool)
        found = last_row[at]
        values = np.full(len(pair_keys), pd.NA, dtype=object)
        pair_manager_code = np.full(len(pair_keys), -1, dtype=np.int64)
        if not known_pair.all():
            values[~known_pair] = _owner_manager(pair_keys[~known_pair], employees, cycle_frame).astype(
                "string").to_numpy(dtype=object)
            pair_manager_code[~known_pair] = index_of(values[~known_pair], owners)  # missing: -1
        values[known_pair] = _as_objects(in_force["manager_id"])[found[known_pair]]
        pair_manager_code[known_pair] = m_code[found[known_pair]]
        pair_manager = pd.Series(pd.array(values, dtype="string"), index=pair_keys.index)
    pair_no_manager = pair_manager.isna().to_numpy()
    known = pd.Series(owner_text).isin(employees["employee_id"].dropna()).to_numpy()
    known_owner = known[owner_code] if n else np.zeros(0, bool)
    no_manager = pair_no_manager[group_codes] if n else np.zeros(0, bool)

    # parent is a goal of the owner's manager in the same cycle
    safe = np.where(parent_pos >= 0, parent_pos, 0)
    if pair_manager_code is None:
        pair_manager_code = index_of(pair_manager.fillna("").to_numpy(dtype=object), owners)
    manager_code = np.where(pair_no_manager, -2, pair_manager_code)[group_codes] if n else np.zeros(0, np.int64)
    to_manager = (parent_pos >= 0) & (owner_code[safe] == manager_code) & (cyc_code[safe] == cyc_code)
    if in_force is not None:
        # any manager in force during the cycle: (owner, manager, cycle) triples as one integer key each
        ok = (e_code >= 0) & (m_code >= 0) & (c_code >= 0)
        allowed = (e_code[ok] * n_own + m_code[ok]) * n_cyc + c_code[ok]
        goal_key = (owner_code.astype(np.int64) * n_own + owner_code[safe]) * n_cyc + cyc_code
        allowed = np.sort(allowed)  # membership by a sorted search (np.isin would sort the goals' keys too)
        at = np.minimum(np.searchsorted(allowed, goal_key), max(len(allowed) - 1, 0))
        member = allowed[at] == goal_key if len(allowed) else np.zeros(len(goal_key), bool)
        to_manager = to_manager | ((parent_pos >= 0) & (cyc_code[safe] == cyc_code) & member)
    other_cycle = (parent_pos >= 0) & (cyc_code[safe] != cyc_code)

    # resolve chains by pointer doubling; terminals point to themselves
    terminal = parent_pos < 0
    jump = np.where(terminal, np.arange(n), parent_pos)
    for _ in range(max(1, int(np.ceil(np.log2(n + 1))) + 1)):
        jump = jump[jump]
    end = jump
    loops = ~terminal[end] if n else np.zeros(0, bool)
    org_goal = terminal & ~has_parent & no_manager & known_owner
    reaches_org = np.where(loops, False, org_goal[end] if n else org_goal)

    for mask, rule, value in (
        (~known_owner, "owner_not_found", None),  # the owner's text (taken for the rows reported only)
        (dangling, "parent_not_found", parent_ids),
        (other_cycle, "parent_in_other_cycle", parent_ids),
        (loops, "parent_chain_cycle", parent_ids),
    ):
        if mask.any():
            value = owner_uniq[owner_code[mask]] if value is None else value[mask]
            problems.append(pd.DataFrame({"goal_id": goal_ids[mask], "cycle": cyc[mask], "rule": rule, "value": value}))

    w = _weights(g["weight"] if "weight" in g.columns else pd.Series(np.nan, index=g.index), group_codes)
    total = np.bincount(group_codes, weights=w, minlength=m)
    casc = np.bincount(group_codes, weights=w * to_manager, minlength=m) / total
    org = np.bincount(group_codes, weights=w * reaches_org, minlength=m) / total
    n_goals = np.bincount(group_codes, minlength=m)
    casc = np.where(pair_no_manager, np.nan, casc) if m else casc
    ordered = cycle_frame is not None and m > 0
    if ordered:
        # the order of _sort_by_cycle (employee_id, then cycle order) from integer keys: owners ranked once
        owner_rank = np.empty(len(owner_uniq), dtype=np.int64)
        owner_rank[np.argsort(np.asarray(owner_uniq, dtype=object), kind="stable")] = np.arange(len(owner_uniq))
        cycle_order = dict(zip(cycle_frame["name"], cycle_frame["order"]))
        rank_of_cycle = np.array([cycle_order.get(c, -1) for c in cyc_names], dtype=np.int64)
        # owners, then cycles: one integer key per (owner, cycle) pair (the order of the lexsort of the two)
        n_ranks = np.int64(max(int(rank_of_cycle.max()) + 2, 1)) if len(rank_of_cycle) else np.int64(1)
        order = stable_argsort(owner_rank[owner_code[first]] * n_ranks + (rank_of_cycle[cyc_code[first]] + 1))
    else:
        order = np.arange(m)
    # the columns made in table order (no take of the finished frame)
    first = first[order]
    table = pd.DataFrame({
        "employee_id": owner_text.take(owner_code[first]),
        "cycle": pd.array(np.asarray(cyc_names, dtype=object), dtype="string").take(cyc_code[first]),
        "manager_id": pd.array(pair_manager.to_numpy()[order], dtype="string"),
        "n_goals": n_goals[order].astype("int64"),
        "alignment_cascade": casc[order],
        "alignment_org": org[order],
    })
    if not ordered:
        table = _sort_by_cycle(table, cycle_frame)
    if problems:
        problems = pd.concat(problems, ignore_index=True).astype({"goal_id": "string", "cycle": "string", "rule": "string"})
        problems["value"] = problems["value"].astype("string")
    else:
        problems = pd.DataFrame({c: pd.Series(dtype="string") for c in ALIGNMENT_PROBLEM_COLUMNS})
    return MeasureResult(table, problems[ALIGNMENT_PROBLEM_COLUMNS].reset_index(drop=True))


def _sort_by_cycle(table: pd.DataFrame, cycle_frame: pd.DataFrame | None, id_col: str = "employee_id") -> pd.DataFrame:
    if cycle_frame is not None:
        order = table["cycle"].map(dict(zip(cycle_frame["name"], cycle_frame["order"])))
    else:
        order = table["cycle"]
    return (table.assign(_order=order.to_numpy())
            .sort_values([id_col, "_order"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))


# --------------------------------------------------------------------------- team / attainment


def team_alignment(alignment: pd.DataFrame, employees: pd.DataFrame | None = None, *, cycles=None) -> pd.DataFrame:
    """Summarise cascade alignment per manager and cycle.

    Parameters
    ----------
    alignment : DataFrame
        The table of :func:`cascade_alignment` (``employee_id, cycle,
        manager_id, alignment_cascade, alignment_org``).
    employees : DataFrame, optional
        Clean employees, used for ``manager_id`` only if ``alignment`` lacks it.
    cycles : list of Cycle or str, optional
        Cycle order for sorting (``config.cycles``).

    Returns
    -------
    DataFrame
        One row per manager and cycle: ``manager_id, cycle, n_reports,
        team_alignment_cascade, team_alignment_org`` (means over the reports
        with goals), and the manager's own ``manager_alignment_cascade`` (link
        of the manager's goals to their leader's) and ``manager_alignment_org``
        (NaN when the manager has no goals in that cycle).

    Examples
    --------
    >>> import alignment_research as ar
    >>> at = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis
    >>> ar.team_alignment(at.alignment).columns[:3].tolist()
    ['manager_id', 'cycle', 'n_reports']
    """
    table = alignment
    if "manager_id" not in table.columns:
        if employees is None:
            raise DataContractError("team_alignment needs `manager_id` in the alignment table or the employees table.")
        latest = employees.sort_values("hire_date", kind="stable").drop_duplicates("employee_id", keep="last")
        table = table.merge(latest[["employee_id", "manager_id"]], on="employee_id", how="left")
    reports = table.dropna(subset=["manager_id"])
    team = (reports.groupby(["manager_id", "cycle"], sort=False, observed=True)
            .agg(n_reports=("employee_id", "size"),
                 team_alignment_cascade=("alignment_cascade", "mean"),
                 team_alignment_org=("alignment_org", "mean"))
            .reset_index())
    own = table[["employee_id", "cycle", "alignment_cascade", "alignment_org"]].rename(
        columns={"employee_id": "manager_id", "alignment_cascade": "manager_alignment_cascade",
                 "alignment_org": "manager_alignment_org"})
    team = team.merge(own, on=["manager_id", "cycle"], how="left")
    team["n_reports"] = team["n_reports"].astype("int64")
    return _sort_by_cycle(team, cycle_dates(cycles), id_col="manager_id")


def attainment_alignment(goals: pd.DataFrame, reviews: pd.DataFrame, employees: pd.DataFrame, *,
                         cycles=None, min_cycles: int = 3, codes: GoalCodes | None = None) -> pd.DataFrame:
    """Measure how a team's target attainment tracks its leader's goal attainment across cycles.

    For each manager and cycle, the manager's goal attainment is the weighted
    mean ``attainment`` of the manager's goals (equal weights when a weight is
    missing) and the team's attainment is the mean ``target_attainment`` of the
    manager's reports' reviews. Across cycles, the team's attainment is
    regressed on the manager's (ordinary least squares).

    Parameters
    ----------
    goals : DataFrame
        Clean goals (``owner_id, cycle, attainment``, optional ``weight``).
    reviews : DataFrame
        Clean reviews (``employee_id, cycle, target_attainment``).
    employees : DataFrame
        Clean employees (``employee_id, hire_date, manager_id``).
    cycles : list of Cycle or str, optional
        Cycles to use (``config.cycles``).
    min_cycles : int, default 3
        Fewest cycles with both attainments for a slope and a correlation;
        below it they are NaN.
    codes : GoalCodes, optional
        ``code_goals(goals)`` when already made (the analysis tables share theirs
        between the goal measures); made here otherwise.

    Returns
    -------
    DataFrame
        One row per manager: ``manager_id, n_cycles, n_reports`` (mean reports
        per cycle), ``manager_attainment`` and ``team_attainment`` (means over
        cycles), ``slope``, ``correlation``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> t = clean.tables
    >>> ar.attainment_alignment(t["goals"], t["reviews"], t["employees"]).columns[0]
    'manager_id'
    """
    cycle_frame = cycle_dates(cycles)
    names = None if cycle_frame is None else set(cycle_frame["name"])
    # the goals as arrays of the usable rows (no copy of the goals frame); owners and cycles as codes of their
    # text (code_goals: each value hashed once, its text made per distinct value, as astype("string") makes it)
    coded = code_goals(goals) if codes is None else codes
    cyc_names, owner_names = coded.cycle_text, coded.owner_text
    usable = (coded.cycle >= 0) & (coded.owner >= 0)
    if names is not None:  # a missing cycle (code -1) takes the False at the end
        usable &= np.append(np.isin(cyc_names, np.array(sorted(names), dtype=object)), False)[coded.cycle]
    usable &= pd.to_numeric(goals["attainment"], errors="coerce").notna().to_numpy()
    cyc_code = coded.cycle[usable]
    owner_code = coded.owner[usable]
    pair, _ = pd.factorize(owner_code * (len(cyc_names) + 1) + cyc_code)  # (owner, cycle) in order of appearance
    m = int(pair.max()) + 1 if len(pair) else 0
    first = np.full(m, -1, dtype=np.int64)
    first[pair[::-1]] = np.arange(len(pair))[::-1]
    w = _weights(goals["weight"][usable] if "weight" in goals else pd.Series(np.full(len(pair), np.nan)), pair)
    att = goals["attainment"].to_numpy()[usable].astype(float)
    mgr = pd.DataFrame({"manager_id": owner_names[owner_code[first]],
                        "cycle": cyc_names[cyc_code[first]],
                        "manager_attainment": np.bincount(pair, w * att, m) / np.bincount(pair, w, m)})
    r = reviews.dropna(subset=["employee_id", "cycle", "target_attainment"]).copy()
    r["cycle"] = r["cycle"].astype("string")
    if names is not None:
        r = r[r["cycle"].isin(names)]
    r["manager_id"] = _owner_manager(r[["employee_id", "cycle"]].reset_index(drop=True), employees, cycle_frame).to_numpy()
    team = (r.dropna(subset=["manager_id"]).groupby(["manager_id", "cycle"], observed=True)
            .agg(team_attainment=("target_attainment", "mean"), n_reports=("employee_id", "size")).reset_index())
    # mgr.merge(team, on=["manager_id", "cycle"], how="inner"): the (manager, cycle) rows of mgr with a team, in
    # mgr's order, from the codes mgr's rows already have (the team's keys, unique, found once among them)
    n_cyc = len(cyc_names) + 1
    team_row = np.full(len(owner_names) * n_cyc, -1, dtype=np.int64)
    t_owner = index_of(team["manager_id"], owner_names)
    t_cycle = index_of(team["cycle"], cyc_names)
    listed = np.flatnonzero((t_owner >= 0) & (t_cycle >= 0))
    team_row[t_owner[listed] * n_cyc + t_cycle[listed]] = listed  # unique keys (a groupby's)
    matched = team_row[owner_code[first] * n_cyc + cyc_code[first]]
    kept = np.flatnonzero(matched >= 0)
    both = pd.DataFrame({"manager_id": mgr["manager_id"].to_numpy()[kept], "cycle": mgr["cycle"].to_numpy()[kept],
                         "manager_attainment": mgr["manager_attainment"].to_numpy()[kept],
                         "team_attainment": team["team_attainment"].to_numpy()[matched[kept]],
                         "n_reports": team["n_reports"].to_numpy()[matched[kept]]})
    x, y = both["manager_attainment"], both["team_attainment"]
    both = both.assign(x=x, y=y, xx=x * x, yy=y * y, xy=x * y)
    s = both.groupby("manager_id", sort=True).agg(
        n_cycles=("x", "size"), n_reports=("n_reports", "mean"), manager_attainment=("x", "mean"),
        team_attainment=("y", "mean"), xx=("xx", "mean"), yy=("yy", "mean"), xy=("xy", "mean"))
    vx = s["xx"] - s["manager_attainment"] ** 2
    vy = s["yy"] - s["team_attainment"] ** 2
    cov = s["xy"] - s["manager_attainment"] * s["team_attainment"]
    tol = 1e-12
    enough = s["n_cycles"] >= min_cycles
    s["slope"] = np.where(enough & (vx > tol), cov / vx.where(vx > tol), np.nan)
    s["correlation"] = np.where(enough & (vx > tol) & (vy > tol),
                                cov / np.sqrt(vx.where(vx > tol) * vy.where(vy > tol)), np.nan)
    s["n_cycles"] = s["n_cycles"].astype("int64")
    out = s.reset_index()[["manager_id", "n_cycles", "n_reports", "manager_attainment", "team_attainment",
                           "slope", "correlation"]]
    out["manager_id"] = out["manager_id"].astype("string")
    return out


# --------------------------------------------------------------------------- survey scales


def _scale_defs(scales) -> dict:
    if hasattr(scales, "scales"):
        scales = scales.scales
    return dict(scales)


def _item_columns(name: str, scale, columns: Iterable[str]) -> list[str]:
    columns = set(columns)
    out = []
    for item in scale.items:
        item = str(item)
        if item in columns:
            out.append(item)
        elif f"{name}_{item}" in columns:
            out.append(f"{name}_{item}")
        else:
            raise DataContractError(
                f"surveys has no column for item `{item}` of scale `{name}` (looked for `{item}` and `{name}_{item}`).")
    return out


def score_scales(surveys: pd.DataFrame, scales) -> pd.DataFrame:
    """Score each survey response on each scale: the mean of the answered items.

    Parameters
    ----------
    surveys : DataFrame
        Clean surveys: ``employee_id, survey_date`` and item columns
        ``<scale>_<n>``, already reverse-coded by cleaning.
    scales : dict of str to Scale, or StudyConfig
        Scale definitions (``config.scales``).

    Returns
    -------
    DataFrame
        Same index as ``surveys``: ``employee_id, survey_date`` (when present)
        and one column per scale. A score is NaN when the share of answered
        items is below the scale's ``min_answered``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> s = {"engagement": ar.config.Scale(items=["engagement_1", "engagement_2"])}
    >>> ar.score_scales(pd.DataFrame({"engagement_1": [4.0, None], "engagement_2": [2.0, None]}), s)
       engagement
    0         3.0
    1         NaN
    """
    defs = _scale_defs(scales)
    keep = [c for c in ("employee_id", "survey_date") if c in surveys.columns]
    out = surveys[keep].copy()
    for name, scale in defs.items():
        cols = _item_columns(name, scale, surveys.columns)
        x = surveys[cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
        answered = np.isfinite(x)
        k = answered.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(answered, x, 0.0).sum(axis=1) / k
        out[name] = np.where((k > 0) & (k / len(cols) >= scale.min_answered - 1e-12), mean, np.nan)
    return out


def _one_factor(corr: np.ndarray, *, max_iter: int = 500, tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """One-factor minimum-residual (iterated principal axis) loadings for a stack of correlation matrices."""
    corr = np.asarray(corr, float)
    single = corr.ndim == 2
    R = corr[None] if single else corr
    k = R.shape[-1]
    try:
        h2 = 1.0 - 1.0 / np.diagonal(np.linalg.inv(R), axis1=-2, axis2=-1)
    except np.linalg.LinAlgError:
        h2 = np.full(R.shape[:-1], 0.5)
    h2 = np.clip(h2, 0.005, 0.995)
    if not single:
        h2 = _power_steps(R, h2, max_iter=max_iter, tol=tol)
    idx = np.arange(k)
    for _ in range(max_iter):  # for a stack, from the power steps' communalities: confirms them in a step or two
        Rr = R.copy()
        Rr[:, idx, idx] = h2
        vals, vecs = np.linalg.eigh(Rr)
        lam = vecs[..., -1] * np.sqrt(np.clip(vals[..., -1], 0, None))[..., None]
        new = np.clip(lam**2, 0.0, 1.0)
        done = np.max(np.abs(new - h2)) < tol
        h2 = new
        if done:
            break
    lam = lam * np.where(lam.sum(axis=-1, keepdims=True) < 0, -1.0, 1.0)
    uniq = 1.0 - lam**2
    return (lam[0], uniq[0]) if single else (lam, uniq)


def _power_steps(R: np.ndarray, h2: np.ndarray, *, max_iter: int, tol: float) -> np.ndarray:
    """The communalities of :func:`_one_factor`'s iteration for a stack, each step's eigenvector by one power step.

    The leading eigenvector moves little from one step of the iteration to
    the next, so one multiplication from the last one tracks it: a step costs
    a matrix-vector product where an eigendecomposition of every matrix of a
    bootstrap stack cost ten times as much, and the steps converge as fast.
    Where they do not converge, the starting communalities are returned.
    """
    k = R.shape[-1]
    idx = np.arange(k)
    start, v = h2, np.full(R.shape[:-1], 1.0 / np.sqrt(k))
    for _ in range(max_iter):
        Rr = R.copy()
        Rr[:, idx, idx] = h2
        w = np.einsum("bij,bj->bi", Rr, v)
        v = w / np.linalg.norm(w, axis=-1, keepdims=True)
        value = np.einsum("bi,bij,bj->b", v, Rr, v)  # the Rayleigh quotient: the leading eigenvalue
        new = np.clip(v**2 * np.clip(value, 0, None)[:, None], 0.0, 1.0)
        done = np.max(np.abs(new - h2)) < tol
        h2 = new
        if done:
            return h2
    return start


def _omega(corr: np.ndarray) -> np.ndarray:
    """McDonald's omega total from one-factor loadings: ``1 - sum(u2) / sum(R)`` (as ``psych::omega``)."""
    corr = np.asarray(corr, float)
    _, uniq = _one_factor(corr)
    return 1.0 - uniq.sum(axis=-1) / corr.sum(axis=(-2, -1))


def _alpha_from_cov(cov: np.ndarray) -> np.ndarray:
    k = cov.shape[-1]
    return k / (k - 1) * (1.0 - np.trace(cov, axis1=-2, axis2=-1) / cov.sum(axis=(-2, -1)))


def _complete_items(surveys: pd.DataFrame, name: str, scale) -> tuple[list[str], np.ndarray]:
    cols = _item_columns(name, scale, surveys.columns)
    x = np.empty((len(surveys), len(cols)))  # column by column (no frame of the items is made)
    for j, col in enumerate(cols):
        x[:, j] = pd.to_numeric(surveys[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return cols, x[np.isfinite(x).all(axis=1)]


def _row_patterns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``x`` in lexicographic order (first column first) and how often each occurs.

    The result of ``np.unique(x, axis=0, return_counts=True)`` on finite data,
    from one sort of int64 row keys for whole-number responses (one ``lexsort`` otherwise) instead of
    a sort of structured rows.
    """
    if not len(x) or not x.shape[1]:
        return np.unique(x, axis=0, return_counts=True)
    lo, hi = x.min(), x.max()
    base = hi - lo + 1
    if np.isfinite(base) and base ** x.shape[1] < 2.0 ** 62 and not (x != np.floor(x)).any():
        # whole-number responses (Likert): each row as one integer in base (max - min + 1), first item
        # most significant, so one sort of int64 keys gives the lexicographic order of the rows
        weights = (int(base) ** np.arange(x.shape[1] - 1, -1, -1)).astype(np.int64)
        keys = (x - lo).astype(np.int64) @ weights
        order = np.argsort(keys)  # equal keys are equal rows: no need for a stable sort
        keys = keys[order]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        return x[order[starts]], np.diff(np.r_[starts, len(x)]).astype(np.int64)
    order = np.lexsort(x.T[::-1])
    s = x[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)]
    starts = np.flatnonzero(new)
    return s[starts], np.diff(np.r_[starts, len(s)]).astype(np.int64)


def _bootstrap_omega(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Omega in ``n_boot`` bootstrap resamples, via resampling counts (memory bounded by chunks)."""
    n, k = x.shape
    # Resampling rows is drawing multinomial counts over the distinct response patterns; Likert
    # data have few patterns (at most 5**k), so that is far cheaper than drawing n row indices.
    patterns, freq = _row_patterns(x)
    grouped = len(patterns) <= max(1000, n // 4)
    rows = patterns if grouped else x
    xc = rows - x.mean(axis=0)
    cross = (xc[:, :, None] * xc[:, None, :]).reshape(len(rows), k * k)
    chunk = max(1, min(n_boot, int(2e7 // max(len(rows), 1))))
    out = []
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        if grouped:
            counts = rng.multinomial(n, freq / n, size=b).astype(float)
        else:
            idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
            counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)
        s1 = counts @ xc / n
        s2 = (counts @ cross / n).reshape(b, k, k)
        cov = s2 - s1[:, :, None] * s1[:, None, :]
        sd = np.sqrt(np.clip(np.diagonal(cov, axis1=1, axis2=2), 1e-300, None))
        corr = cov / sd[:, :, None] / sd[:, None, :]
        out.append(_omega(corr))
        done += b
    return np.concatenate(out)


def scale_reliability(surveys: pd.DataFrame, scales, *, alpha: float = 0.05, n_boot: int = 1000,
                      seed: int = 0) -> pd.DataFrame:
    """Estimate each scale's internal consistency: Cronbach's alpha and McDonald's omega with intervals.

    Parameters
    ----------
    surveys : DataFrame
        Clean surveys with the item columns (already reverse-coded).
    scales : dict of str to Scale, or StudyConfig
        Scale definitions (``config.scales``).
    alpha : float, default 0.05
        Confidence intervals are at level ``1 - alpha``.
    n_boot : int, default 1000
        Bootstrap resamples for the omega interval; 0 skips it (NaN bounds).
    seed : int, default 0
        Seed of the bootstrap (``numpy.random.default_rng``), so results repeat.

    Returns
    -------
    DataFrame
        One row per scale: ``scale, n_items, n`` (complete responses),
        ``cronbach_alpha, alpha_conf_low, alpha_conf_high`` (Feldt),
        ``standardized_alpha``, ``mcdonald_omega, omega_conf_low,
        omega_conf_high`` (percentile bootstrap), ``mean_inter_item_r``.

    Notes
    -----
    Alpha uses the covariance matrix of complete responses and matches
    ``psych::alpha(x)$total$raw_alpha`` (and ``$feldt``) on complete data.
    Omega total is ``1 - sum(u2) / sum(R)`` from a one-factor
    minimum-residual fit of the correlation matrix ``R``, as
    ``psych::omega(x, nfactors = 1)$omega.tot``.

    References
    ----------
    Feldt, L. S., Woodruff, D. J. & Salih, F. A. (1987). Statistical inference for
    coefficient alpha. Applied Psychological Measurement, 11, 93-103.
    McDonald, R. P. (1999). Test theory: A unified treatment. Erlbaum.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> rel = ar.scale_reliability(clean.tables["surveys"], clean.config.scales, n_boot=100)
    >>> "cronbach_alpha" in rel.columns
    True
    """
    defs = _scale_defs(scales)
    rng = np.random.default_rng(seed)
    rows = []
    for name, scale in defs.items():
        cols, x = _complete_items(surveys, name, scale)
        n, k = x.shape
        row = dict(scale=name, n_items=k, n=n)
        if n < 3:
            rows.append(row)
            continue
        cov = np.cov(x, rowvar=False)
        a = float(_alpha_from_cov(cov))
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        f_hi = stats.f.ppf(1 - alpha / 2, n - 1, (n - 1) * (k - 1))
        f_lo = stats.f.ppf(alpha / 2, n - 1, (n - 1) * (k - 1))
        rbar = (corr.sum() - k) / (k * (k - 1))
        row.update(cronbach_alpha=a, alpha_conf_low=1 - (1 - a) * f_hi, alpha_conf_high=1 - (1 - a) * f_lo,
                   standardized_alpha=k * rbar / (1 + (k - 1) * rbar), mcdonald_omega=float(_omega(corr)),
                   mean_inter_item_r=rbar)
        if n_boot > 0:
            boot = _bootstrap_omega(x, n_boot, rng)
            boot = boot[np.isfinite(boot)]
            row.update(omega_conf_low=float(np.quantile(boot, alpha / 2)),
                       omega_conf_high=float(np.quantile(boot, 1 - alpha / 2)))
        rows.append(row)
    cols = ["scale", "n_items", "n", "cronbach_alpha", "alpha_conf_low", "alpha_conf_high", "standardized_alpha",
            "mcdonald_omega", "omega_conf_low", "omega_conf_high", "mean_inter_item_r"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    return out.astype({"n_items": "int64", "n": "int64"})


def item_statistics(surveys: pd.DataFrame, scales) -> pd.DataFrame:
    """Describe each item: mean, spread, item-rest correlation and alpha if dropped.

    Parameters
    ----------
    surveys : DataFrame
        Clean surveys with the item columns (already reverse-coded).
    scales : dict of str to Scale, or StudyConfig
        Scale definitions (``config.scales``).

    Returns
    -------
    DataFrame
        One row per scale and item: ``scale, item, n, mean, sd, item_rest_r``
        (correlation of the item with the sum of the scale's other items),
        ``alpha_if_dropped``. Complete responses only.

    Notes
    -----
    Matches ``psych::alpha(x)$item.stats$r.drop`` and
    ``psych::alpha(x)$alpha.drop$raw_alpha`` on complete data.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.item_statistics(clean.tables["surveys"], clean.config.scales).columns[:2].tolist()
    ['scale', 'item']
    """
    defs = _scale_defs(scales)
    rows = []
    for name, scale in defs.items():
        cols, x = _complete_items(surveys, name, scale)
        n, k = x.shape
        total = x.sum(axis=1)
        cov = np.cov(x, rowvar=False) if n > 1 else np.full((k, k), np.nan)
        for j, col in enumerate(cols):
            rest = total - x[:, j]
            r = np.corrcoef(x[:, j], rest)[0, 1] if n > 2 else np.nan
            keep = [i for i in range(k) if i != j]
            a = float(_alpha_from_cov(cov[np.ix_(keep, keep)])) if k > 2 else np.nan
            rows.append(dict(scale=name, item=col, n=n, mean=x[:, j].mean() if n else np.nan,
                             sd=x[:, j].std(ddof=1) if n > 1 else np.nan, item_rest_r=r, alpha_if_dropped=a))
    return pd.DataFrame(rows, columns=["scale", "item", "n", "mean", "sd", "item_rest_r", "alpha_if_dropped"])


# --------------------------------------------------------------------------- feedback


def feedback_rate(feedback: pd.DataFrame, employees: pd.DataFrame, *, window, kinds=None,
                  spells: pd.DataFrame | None = None) -> pd.DataFrame:
    """Count feedback per employee and calendar quarter, as events per 90 days employed.

    Parameters
    ----------
    feedback : DataFrame
        Clean feedback: ``employee_id, date, kind``.
    employees : DataFrame
        Clean employees (``employee_id, hire_date, termination_date``); each
        spell gets its own rates, and events outside a spell are ignored.
    window : Window or tuple of dates
        Observation window (``config.window``); quarters overlapping it are counted.
    kinds : list of str, optional
        Feedback kinds to report separately; the kinds present by default.
    spells : DataFrame, optional
        ``spells.numbered_spells(employees)`` when already computed (the
        analysis tables have it), so it is not built again; ``employees`` is
        then not read.

    Returns
    -------
    DataFrame
        One row per spell and quarter employed: ``employee_id, spell, quarter``
        (``"2022Q1"``), ``quarter_start, quarter_end, known_from`` (the day after
        the quarter ends: the rate is known from then), ``exposure_days``,
        ``n_events``, ``feedback_rate`` (events per 90 days employed), and per
        kind ``n_<kind>`` and ``feedback_rate_<kind>``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> t = clean.tables
    >>> rates = ar.feedback_rate(t["feedback"], t["employees"], window=clean.config.window)
    >>> rates.columns[:3].tolist()
    ['employee_id', 'spell', 'quarter']
    """
    if spells is None:
        spells = numbered_spells(employees)
    return feedback_rate_rows(feedback, spells, window=window, kinds=kinds)[0]


def feedback_rate_rows(feedback: pd.DataFrame, spells: pd.DataFrame, *, window,
                       kinds=None) -> tuple[pd.DataFrame, np.ndarray]:
    """Count feedback per spell and calendar quarter (:func:`feedback_rate`), with each row's spell.

    Parameters
    ----------
    feedback : DataFrame
        Clean feedback: ``employee_id, date, kind``.
    spells : DataFrame
        ``spells.numbered_spells(employees)``, one row per spell.
    window : Window or tuple of dates
        Observation window (``config.window``).
    kinds : list of str, optional
        Feedback kinds to report separately; the kinds present by default.

    Returns
    -------
    table : DataFrame
        What :func:`feedback_rate` returns.
    spell : ndarray of int64
        Per row of ``table``, the position of its spell in ``spells`` (the rows follow the spells'
        order), so that a caller holding ``spells`` needs no search for them.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.spells import numbered_spells
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> spells = numbered_spells(clean.tables["employees"])
    >>> rates, sid = feedback_rate_rows(clean.tables["feedback"], spells, window=clean.config.window)
    >>> bool((spells["employee_id"].to_numpy()[sid] == rates["employee_id"].to_numpy()).all())
    True
    """
    w_start, w_end = window_bounds(window)
    quarters = pd.period_range(w_start, w_end, freq="Q")
    q_start = quarters.start_time.normalize().to_numpy()
    q_end = quarters.end_time.normalize().to_numpy()
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    term = spells["termination_date"].to_numpy("datetime64[ns]") if "termination_date" in spells else np.full(len(spells), np.datetime64("NaT"))
    last = np.where(np.isnat(term), np.datetime64(w_end, "ns"), np.minimum(term, np.datetime64(w_end, "ns")))
    first_q = np.searchsorted(q_end, hire, side="left")
    last_q = np.searchsorted(q_start, last, side="right") - 1
    nq = np.clip(last_q - first_q + 1, 0, None)
    sid = np.repeat(np.arange(len(spells)), nq)
    qi = np.repeat(first_q, nq) + (np.arange(nq.sum()) - np.repeat(np.cumsum(nq) - nq, nq))
    lo = np.maximum(q_start[qi], hire[sid])
    hi = np.minimum(q_end[qi], last[sid])
    exposure = ((hi - lo) / DAY).astype("int64") + 1

    # events as arrays (no copies of the feedback frame); kinds hashed once. Each dated event's spell first (its
    # id hashed there, once): only an event in no spell can lack an id, so only those are tested for a missing id
    dated = feedback["date"].notna().to_numpy()
    ids = feedback["employee_id"].to_numpy()
    dates = feedback["date"].to_numpy("datetime64[ns]")
    if not dated.all():  # (a clean table's events all have a date: no copies then)
        ids, dates = ids[dated], dates[dated]
    sid_dated = spell_of(ids, dates, spells)
    has_id = np.ones(len(ids), dtype=bool)
    in_none = np.flatnonzero(sid_dated < 0)
    has_id[in_none] = pd.notna(ids[in_none])
    usable = dated.copy()
    usable[dated] = has_id  # the events with an employee and a date
    has_kind = "kind" in feedback.columns
    if has_kind:
        kind = feedback["kind"].to_numpy(dtype=object)
        kind_code, kind_levels = pd.factorize(kind if usable.all() else kind[usable], use_na_sentinel=False)
        kind_text = np.array([str(v) for v in kind_levels], dtype=object)
    if kinds is None:
        kinds = sorted(set(kind_text[~pd.isna(np.asarray(kind_levels, dtype=object))])) if has_kind else []
    ev_sid = sid_dated[has_id]
    at = ev_sid >= 0
    ev_date = dates[has_id][at]
    ev_q = np.searchsorted(q_end, ev_date, side="left")
    inside = (ev_q < len(quarters)) & (ev_date >= q_start[np.minimum(ev_q, len(quarters) - 1)])
    ev_q = ev_q[inside]
    # position of (sid, quarter) in the output: each spell's quarters are consecutive rows from row_start
    ev_s = ev_sid[at][inside]
    offset = ev_q - first_q[ev_s]
    ok = (offset >= 0) & (offset < nq[ev_s])
    pos = np.where(ok, (np.cumsum(nq) - nq)[ev_s] + offset, 0)
    # text columns taken from the spells' and quarters' labels converted once (not a conversion per row);
    # every column is this frame's own array, not copied into blocks
    ids = pd.array(spells["employee_id"].to_numpy(), dtype="string")
    labels = pd.array(np.asarray(quarters.astype(str), dtype=object), dtype="string")
    cols = {
        "employee_id": ids.take(sid),
        "spell": spells["spell"].to_numpy()[sid],
        "quarter": labels.take(qi),
        "quarter_start": q_start[qi],
        "quarter_end": q_end[qi],
        "known_from": q_end[qi] + DAY,
        "exposure_days": exposure,
    }
    n_rows = len(sid)
    # the counts and rates made as arrays and the frame made once from them (a column set on a made frame
    # is copied); rates as pandas divides two int64 Series (IEEE division, its warnings off)
    cols["n_events"] = np.bincount(pos[ok], minlength=n_rows).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["feedback_rate"] = cols["n_events"] / exposure * 90.0
    # each event's kind as its position in ``kinds`` (-1: not reported), from the kinds' texts: one count
    # of (row, kind) pairs for all kinds
    position = {}
    for i, kind in enumerate(kinds):
        position.setdefault(kind, i)
    kind_of_level = np.array([position.get(text, -1) for text in kind_text], dtype=np.int64) if has_kind else None
    ev_kind = kind_of_level[kind_code[at][inside]] if has_kind else np.full(len(pos), -1, dtype=np.int64)
    sel = ok & (ev_kind >= 0)
    n_kinds = len(kinds)
    by_kind = np.bincount(pos[sel] * n_kinds + ev_kind[sel], minlength=n_rows * n_kinds).reshape(n_rows, n_kinds)
    for i, kind in enumerate(kinds):
        cols[f"n_{kind}"] = by_kind[:, position[kind]].astype("int64")
    del by_kind
    with np.errstate(divide="ignore", invalid="ignore"):
        for kind in kinds:
            cols[f"feedback_rate_{kind}"] = cols[f"n_{kind}"] / exposure * 90.0
    return pd.DataFrame(cols, copy=False), sid  # every column is this frame's own array, not copied into blocks


def trailing_event_rate(events: pd.DataFrame, at: pd.DataFrame, *, months: float, id: str = "employee_id",
                        date: str = "date", at_date: str = "date") -> np.ndarray:
    """Count each person's events in the months before a date, as events per month (no look-ahead).

    For every row of ``at`` (a person and a date), the events of that person
    dated in ``[at_date - months, at_date)`` are counted: an event on the day
    itself is not yet known. One sorted search over all events, no loop per
    person.

    Parameters
    ----------
    events : DataFrame
        One row per event: ``id`` and ``date`` (e.g. the clean ``feedback``
        table, filtered to the kinds wanted).
    at : DataFrame
        The rows to measure at: ``id`` and ``at_date``.
    months : float
        Length of the look-back window in months (365.25 / 12 days each).
    id : str, default "employee_id"
        Person column in both tables.
    date : str, default "date"
        Event date column of ``events``.
    at_date : str, default "date"
        Date column of ``at``.

    Returns
    -------
    ndarray of float
        Events per month in the window, one per row of ``at`` (0 where a person
        has none; NaN where ``at`` has no person or date).

    Examples
    --------
    >>> import pandas as pd
    >>> ev = pd.DataFrame({"employee_id": ["a", "a", "a", "b"],
    ...                    "date": pd.to_datetime(["2022-01-10", "2022-02-10", "2022-03-01", "2022-02-01"])})
    >>> at = pd.DataFrame({"employee_id": ["a", "a", "b", "c"], "date": pd.to_datetime(["2022-03-01"] * 4)})
    >>> trailing_event_rate(ev, at, months=3).round(3).tolist()
    [0.669, 0.669, 0.334, 0.0]
    """
    if months <= 0:
        raise ValueError(f"months must be positive, not {months!r}")
    window = np.int64(round(months * DAYS_PER_MONTH))
    ev = events[[id, date]].dropna()
    ids = pd.concat([ev[id].astype("string"), at[id].astype("string")], ignore_index=True)
    codes, _ = pd.factorize(ids)
    ev_code = codes[: len(ev)].astype(np.int64)
    at_code = codes[len(ev):].astype(np.int64)
    day = np.timedelta64(1, "D")
    ev_day = ((ev[date].to_numpy("datetime64[ns]") - np.datetime64("1900-01-01")) // day).astype(np.int64)
    at_values = at[at_date].to_numpy("datetime64[ns]")
    ok = ~np.isnat(at_values) & (at_code >= 0)
    at_day = np.where(ok, (at_values - np.datetime64("1900-01-01")) // day, 0).astype(np.int64)
    span = np.int64(1) << 20  # days per person in the combined key: ~2,870 years, far beyond any study
    keys = np.sort(ev_code * span + ev_day)
    hi = np.searchsorted(keys, at_code * span + at_day, side="left")
    lo = np.searchsorted(keys, at_code * span + at_day - window, side="left")
    rate = (hi - lo) / (window / DAYS_PER_MONTH)
    return np.where(ok, rate, np.nan)


# --------------------------------------------------------------------------- reporting helpers


def alignment_by_group(measures: pd.DataFrame, *, by: str, min_group_size: int = 5) -> pd.DataFrame:
    """Summarise each alignment measure within groups, suppressing small groups.

    Parameters
    ----------
    measures : DataFrame
        Long table ``measure, value`` plus the grouping column (see
        :func:`alignment_research.alignment_measures`).
    by : str
        Grouping column, e.g. ``"department"`` or ``"job_level"``.
    min_group_size : int, default 5
        Groups with fewer distinct people (``person_id``) are pooled, per
        measure, into one group ``"Other <by>s (each < k people)"``
        (:func:`alignment_research.pool_small_levels`), which is suppressed
        when it is still too small.

    Returns
    -------
    DataFrame
        One row per measure and group: ``measure, <by>, n_people, n, mean,
        sd, q25, median, q75, suppressed, suppression``; cells of suppressed groups
        are missing (:func:`alignment_research.suppress_small_groups`, with
        complementary suppression among the groups of a measure).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> m = pd.DataFrame({"measure": "cascade", "value": [0.2, 0.4, 0.6], "person_id": ["a", "b", "c"],
    ...                   "department": ["x", "x", "x"]})
    >>> ar.alignment_by_group(m, by="department", min_group_size=2)["mean"].round(2).tolist()
    [0.4]
    """
    m = measures.dropna(subset=["value", by])
    # groups below the size (in people, per measure) are pooled into "Other <by>s (each < k people)"
    parts = [pool_small_levels(part, by, min_group_size=min_group_size, person="person_id", small_pool="keep")
             for _, part in m.groupby("measure", sort=False)]
    if any(len(p.pooled) for p in parts):
        parts = [p.data.assign(**{by: p.data[by].astype(str)}) for p in parts]
    else:
        parts = [p.data for p in parts]
    m = pd.concat(parts) if parts else m
    grouped = m.groupby(["measure", by], observed=True, sort=True)
    out = grouped["value"].agg(n="size", mean="mean", sd="std",
                               q25=lambda s: s.quantile(0.25), median="median",
                               q75=lambda s: s.quantile(0.75)).reset_index()
    people = group_sizes(m, ["measure", by], person="person_id")
    out.insert(2, "n_people", out[["measure", by]].merge(people, on=["measure", by], how="left")["n"].to_numpy())
    out = suppress_small_groups(out, count="n_people", min_group_size=min_group_size, group_cols=["measure", by],
                                value_cols=["n", "mean", "sd", "q25", "median", "q75"])
    return out


def plot_alignment_distribution(data: pd.DataFrame, *, by: str, measure: str, min_group_size: int = 5,
                                order=None, ax=None, **kwargs):
    """Draw the distribution of one alignment measure per group, small groups left out.

    Parameters
    ----------
    data : DataFrame
        Long table ``measure, value, <by>`` (and ``person_id``), as from
        :func:`alignment_research.alignment_measures`.
    by : str
        Grouping column (``"department"``, ``"job_level"``).
    measure : str
        Which measure to draw (a value of ``data["measure"]``).
    min_group_size : int, default 5
        Groups with fewer distinct people are not drawn.
    order : list, optional
        Groups in drawing order (from the bottom), so that panels sharing an
        axis line up; a group not in the data, or too small, keeps its row empty.
        The shown groups in sorted order by default.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.boxplot` (``color`` sets the box colour).

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on: one horizontal box per shown group, in sorted order
        from the bottom.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> m = pd.DataFrame({"measure": "cascade", "value": [0.2, 0.4, 0.6], "person_id": ["a", "b", "c"],
    ...                   "department": ["x"] * 3})
    >>> ax = ar.plot_alignment_distribution(m, by="department", measure="cascade", min_group_size=1)
    """
    from .plots import axes_for  # deferred: matplotlib loads with the first plot
    import seaborn as sns  # deferred: seaborn is only needed to draw the figures

    ax = axes_for(ax)
    d = data[(data["measure"] == measure)].dropna(subset=["value", by])
    sizes = size_gate(d, by, min_group_size=min_group_size, person="person_id", total=False)  # people, not rows
    shown = sorted(sizes.loc[~sizes["suppressed"], by], key=str)
    order = shown if order is None else list(order)
    drawn = [g for g in order if g in set(shown)]
    values = [d.loc[d[by] == g, "value"].to_numpy(float) for g in drawn]
    positions = [order.index(g) + 1 for g in drawn]
    colour = kwargs.pop("color", sns.color_palette()[0])
    kwargs.setdefault("widths", 0.6)
    kwargs.setdefault("patch_artist", True)
    kwargs.setdefault("flierprops", {"markersize": 2})
    kwargs.setdefault("medianprops", {"color": "black"})
    # matplotlib directly (not seaborn.boxplot, which passes the deprecated `vert` argument)
    boxes = ax.boxplot(values, positions=positions, orientation="horizontal", **kwargs) if drawn else {}
    for patch in boxes.get("boxes", []):
        patch.set_facecolor(colour)
    ax.set_yticks(range(1, len(order) + 1), [str(g) for g in order])
    ax.set_ylim(0.4, len(order) + 0.6)
    ax.set_xlabel(measure.replace("_", " "))
    ax.set_ylabel(by.replace("_", " "))
    return ax


#: Axis labels of the three alignment measures.
_MEASURE_LABELS = {
    "cascade": "Cascade alignment (share of goals linked)",
    "perceived": "Perceived alignment (scale score, 1-5)",
    "attainment": "Attainment alignment (correlation)",
}


def plot_alignment_overview(data: pd.DataFrame, *, by: str, min_group_size: int = 5, **kwargs):
    """Draw the three alignment measures side by side, one box per group (figure-level).

    Parameters
    ----------
    data : DataFrame
        Long table ``measure, value, person_id, <by>`` from
        :func:`alignment_research.alignment_measures`.
    by : str
        Grouping column (``"department"``, ``"job_level"``).
    min_group_size : int, default 5
        Groups with fewer distinct people are not drawn.
    **kwargs
        Passed to :func:`plot_alignment_distribution`; ``ax`` is refused.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per measure present (cascade, perceived, attainment),
        sharing one row per group shown in any panel.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> m = pd.DataFrame({"measure": "cascade", "value": [0.2, 0.4, 0.6], "person_id": ["a", "b", "c"],
    ...                   "department": ["x"] * 3})
    >>> fig = ar.plot_alignment_overview(m, by="department", min_group_size=1)
    """
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw the figures

    if "ax" in kwargs:
        raise TypeError("plot_alignment_overview is figure-level and does not accept ax=; "
                        "use plot_alignment_distribution for a single Axes.")
    measures = [m for m in _MEASURE_LABELS if m in set(data["measure"])]
    d = data.dropna(subset=["value", by])
    people = size_gate(d, ["measure", by], min_group_size=min_group_size, person="person_id", total=False)
    order = sorted(set(people.loc[~people["suppressed"], by]), key=str)
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.8), sharey=True, squeeze=False)
    for ax, measure in zip(axes[0], measures):
        plot_alignment_distribution(data, by=by, measure=measure, min_group_size=min_group_size, order=order,
                                    ax=ax, **kwargs)
        ax.set_xlabel(_MEASURE_LABELS[measure])
        if ax is not axes[0][0]:
            ax.set_ylabel("")
    fig.tight_layout()
    return fig
