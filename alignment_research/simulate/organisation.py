"""The organisation: a fixed tree of positions, who holds which position when, and the small departments.

Positions form a tree: the CEO, one head per department (``departments``
shares, fewer departments in a small organisation), layers of managers with
3-15 direct reports (``team_span_mean`` individual contributors per
first-line manager, ``manager_span_mean`` managers per higher manager) and
individual contributors. A position mostly (85%) shares its manager's
location (``locations``). Job levels: individual contributors 1-3,
first-line managers 3-4, higher managers 4-5, heads and CEO 5.

Each position is filled by a sequence of employment spells from
``history_years`` before the window; a leaver is replaced
1..``vacancy_days_max`` days later (see `engine`). Spells that end on or
before the window start are dropped (left truncation); ``n_employees``
spells remain (a few in-window hires of individual contributors are removed
at random to hit the number, and ``rehire_share`` of the in-window hires
reuse an earlier voluntary leaver's id). ``manager_id`` is the holder of
the parent position on ``max(hire_date, window start)``: the manager at
hire. Without job history (``Truth(history=False)``) it is the one manager
of the spell (when that manager leaves, the employee keeps the id); with
it, the manager in force follows successions, reorganisations and
transfers (see `history`), and ``job_history`` records every change.

*Small departments.* ``truth.small_departments`` (name -> people) moves
that many individual contributors (people who manage nobody; every spell of
each) into each named extra department after the simulation, before
problems are injected. They keep their managers, so the extra departments
cut across the tree. Department enters no true model, so the true effects
hold unchanged; an injected problem may still touch one of their rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .truth import Truth

__all__ = ["PositionHolders", "build_tree", "move_to_small_departments"]


def _group_sizes(n: int, mean: float, rng: np.random.Generator, lo: int = 3, hi: int = 15) -> np.ndarray:
    """Split ``n >= 9`` nodes into at least 3 groups of ``lo..hi`` nodes."""
    g = int(np.clip(round(n / mean), max(3, -(-n // hi)), max(3, n // lo)))
    base = np.full(g, n // g)
    base[: n % g] += 1
    # perturb: move units between random pairs while respecting bounds
    for _ in range(2 * g):
        a, b = rng.integers(0, g, size=2)
        k = int(rng.integers(0, 3))
        if a != b and base[a] - k >= lo and base[b] + k <= hi:
            base[a] -= k
            base[b] += k
    return base


def build_tree(n_slots: int, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
    """Build the positions (slots) of the organisation: parent, depth, department, level, location, manager or not.

    Parameters
    ----------
    n_slots : int
        Number of positions.
    truth : Truth
        The true parameters (departments, locations, team sizes).
    rng : numpy.random.Generator
        The run's generator.

    Returns
    -------
    pandas.DataFrame
        One row per position: ``slot, parent, department, kind, location,
        depth, is_manager, job_level`` (slot 0 is the CEO, parent -1).

    Examples
    --------
    >>> import numpy as np
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.organisation import build_tree
    >>> tree = build_tree(30, ar.default_truth(), np.random.default_rng(0))
    >>> len(tree), int(tree["parent"].iloc[0])
    (30, -1)
    """
    names = list(truth.departments)
    shares = np.array([truth.departments[d] for d in names], float)
    shares = shares / shares.sum()
    n_dept = len(names) if n_slots >= 25 * len(names) else max(1, min(len(names), n_slots // 25))
    names = names[:n_dept]
    shares = shares[:n_dept] / shares[:n_dept].sum()
    locations = list(truth.locations)
    location_p = np.array([truth.locations[x] for x in locations], float)
    location_p /= location_p.sum()

    ceo_department = names[0] if "Operations" not in names else "Operations"
    rows = [dict(slot=0, parent=-1, department=ceo_department, kind="ceo", location=locations[0])]
    body = max(n_slots - 1, n_dept)
    counts = np.maximum(1, np.floor(shares * body).astype(int))
    counts[0] += body - counts.sum()
    for d, name in enumerate(names):
        _add_department(rows, name, int(counts[d]), locations[0], truth, rng)
    tree = pd.DataFrame(rows)
    tree["parent"] = tree["parent"].astype(int)
    parent = tree["parent"].to_numpy()
    tree["depth"] = _depths(parent)
    tree["location"] = _locations(tree, locations, location_p, rng)
    has_child = np.zeros(len(tree), bool)
    has_child[parent[parent >= 0]] = True
    tree["is_manager"] = has_child
    tree["job_level"] = _job_levels(tree, rng)
    return tree


def _add_department(rows: list, name: str, size: int, head_location: str, truth: Truth,
                    rng: np.random.Generator) -> None:
    """Append a department of ``size`` positions: its head, layers of managers, individual contributors."""
    head = len(rows)
    rows.append(dict(slot=head, parent=0, department=name, kind="head", location=head_location))
    n_ic = size - 1
    if n_ic <= 0:
        return
    if n_ic <= 15:
        ic_parents = [head] * n_ic
    else:
        n_teams_guess = max(3, round(n_ic / (truth.team_span_mean + 1.2)))
        # managers above first line consume a few more slots; accept a small overshoot
        team_sizes = _group_sizes(n_ic - n_teams_guess, truth.team_span_mean, rng)
        first_line = _add_managers(rows, name, len(team_sizes))
        layer = first_line
        while len(layer) > 15:
            group_sizes = _group_sizes(len(layer), truth.manager_span_mean, rng)
            above = _add_managers(rows, name, len(group_sizes))
            pos = 0
            for manager, k in zip(above, group_sizes):
                for child in layer[pos : pos + k]:
                    rows[child]["parent"] = manager
                pos += k
            layer = above
        for child in layer:
            rows[child]["parent"] = head
        ic_parents = []
        for manager, k in zip(first_line, team_sizes):
            ic_parents += [manager] * int(k)
    for p in ic_parents:
        rows.append(dict(slot=len(rows), parent=p, department=name, kind="ic", location=None))


def _add_managers(rows: list, department: str, n: int) -> list[int]:
    """Append ``n`` manager positions (parents set later); return their slots."""
    slots = list(range(len(rows), len(rows) + n))
    for s in slots:
        rows.append(dict(slot=s, parent=-1, department=department, kind="manager", location=None))
    return slots


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of each position (CEO 0), from the parent array."""
    depth = np.zeros(len(parent), int)
    for _ in range(len(parent)):
        new = np.where(parent >= 0, depth[np.maximum(parent, 0)] + 1, 0)
        if np.array_equal(new, depth):
            break
        depth = new
    return depth


def _locations(tree: pd.DataFrame, locations: list, location_p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Locations top-down: a position mostly (85%) shares its manager's location, else a random one."""
    parent, depth = tree["parent"].to_numpy(), tree["depth"].to_numpy()
    loc = tree["location"].to_numpy(object)
    team_loc = rng.choice(len(locations), size=len(tree), p=location_p)
    stay = rng.random(len(tree)) < 0.85
    for s in np.argsort(depth, kind="stable"):
        if loc[s] is None:
            loc[s] = loc[parent[s]] if stay[s] else locations[team_loc[s]]
    return loc


def _job_levels(tree: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Job levels: individual contributors 1-3, first-line managers 3-4, higher managers 4-5, heads and CEO 5."""
    parent, has_child = tree["parent"].to_numpy(), tree["is_manager"].to_numpy()
    u = rng.random(len(tree))
    first_line = np.zeros(len(tree), bool)
    ic = ~has_child
    first_line[parent[ic & (parent >= 0)]] = True
    level = np.where(u < 0.45, 1, np.where(u < 0.8, 2, 3))
    level = np.where(has_child & first_line, np.where(u < 0.6, 3, 4), level)
    level = np.where(has_child & ~first_line, np.where(u < 0.5, 4, 5), level)
    return np.where(tree["kind"].isin(["ceo", "head"]), 5, level)


class PositionHolders:
    """Who holds a position on a day: a sorted (position, hire day) index over some spells."""

    def __init__(self, indexed: np.ndarray, spells: dict, history_start_day: int, window_end_day: int):
        self.hire_day, self.term_day = spells["hire_day"], spells["term_day"]
        self.history_start_day, self.window_end_day = history_start_day, window_end_day
        slot, hire = spells["slot"][indexed], spells["hire_day"][indexed]
        order = np.lexsort((hire, slot))
        self.spell = indexed[order]
        self.slot = slot[order]
        self.key = self.day_key(slot[order], hire[order])

    def day_key(self, slot, day):
        """The sort key of (position, day): compare with ``key`` (the holders' hire days)."""
        return np.asarray(slot).astype(np.int64) * (1 << 32) + (day - self.history_start_day + (1 << 20))

    def holder_on(self, slot: np.ndarray, day: np.ndarray, *, need=None) -> np.ndarray:
        """The spell of ``slot`` employed on ``day``; else the next one hired; else the previous one.

        ``need(spells) -> bool array``, if given, must also hold for the
        chosen spell (else -1).
        """
        j = np.searchsorted(self.key, self.day_key(slot, day), side="right") - 1
        n = len(self.key)
        at = np.clip(j, 0, n - 1)
        same = (j >= 0) & (self.slot[at] == slot)
        current = np.where(same, self.spell[at], -1)
        covers = same & (self.term_day[np.maximum(current, 0)] > day)
        if need is not None:
            covers &= need(np.maximum(current, 0))
        after = np.clip(j + 1, 0, n - 1)
        next_ok = (j + 1 < n) & (self.slot[after] == slot) & (self.hire_day[self.spell[after]] <= self.window_end_day)
        following = np.where(next_ok, self.spell[after], -1)
        previous = current
        if need is not None:
            following = np.where((following >= 0) & need(np.maximum(following, 0)), following, -1)
            previous = np.where((previous >= 0) & need(np.maximum(previous, 0)), previous, -1)
        return np.where(covers, current, np.where(following >= 0, following, previous))


def move_to_small_departments(employees: pd.DataFrame, small: dict[str, int], seed: int) -> pd.DataFrame:
    """Move the given number of individual contributors (all their spells) into each small department.

    People who manage nobody are drawn without replacement with a generator of
    their own (seeded from ``seed``), so the rest of the simulation draws the
    same numbers as without small departments.

    Parameters
    ----------
    employees : pandas.DataFrame
        The canonical employees table.
    small : dict of str to int
        Department name -> number of people to move there.
    seed : int
        The run's seed.

    Returns
    -------
    pandas.DataFrame
        The employees table with the moved people's ``department`` changed.

    Raises
    ------
    ConfigError
        If the study has fewer individual contributors than asked for.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.organisation import move_to_small_departments
    >>> employees = ar.simulate_study(n_employees=300, seed=0, messy=False).tables["employees"]
    >>> moved = move_to_small_departments(employees, {"Legal": 3}, seed=0)
    >>> int(moved.loc[moved["department"] == "Legal", "employee_id"].nunique())
    3
    """
    managers = set(employees["manager_id"].dropna())
    candidates = np.array(sorted(set(employees["employee_id"].dropna()) - managers), dtype=object)
    wanted = sum(int(k) for k in small.values())
    if wanted > len(candidates):
        raise ConfigError(
            f"small_departments asks for {wanted} people, but the study has only {len(candidates)} individual "
            "contributors; lower the numbers or raise n_employees."
        )
    chosen = np.random.default_rng([int(seed), 0x5D]).choice(candidates, size=wanted, replace=False)
    out = employees.copy()
    start = 0
    for name, k in small.items():
        people = set(chosen[start: start + int(k)])
        out.loc[out["employee_id"].isin(people), "department"] = name
        start += int(k)
    return out


