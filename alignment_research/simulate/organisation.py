"""The organisation: a fixed tree of positions, and the small departments moved in afterwards."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .truth import Truth


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


def _build_tree(n_slots: int, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
    """Positions (slots) of the organisation: parent, depth, department, level, location, manager or not."""
    names = list(truth.departments)
    shares = np.array([truth.departments[d] for d in names], float)
    shares = shares / shares.sum()
    n_dept = len(names) if n_slots >= 25 * len(names) else max(1, min(len(names), n_slots // 25))
    names = names[:n_dept]
    shares = shares[:n_dept] / shares[:n_dept].sum()
    locations = list(truth.locations)
    loc_p = np.array([truth.locations[x] for x in locations], float)
    loc_p /= loc_p.sum()

    rows = [dict(slot=0, parent=-1, department=names[0] if "Operations" not in names else "Operations", kind="ceo", location=locations[0])]
    body = max(n_slots - 1, n_dept)
    counts = np.maximum(1, np.floor(shares * body).astype(int))
    counts[0] += body - counts.sum()
    for d, name in enumerate(names):
        size = int(counts[d])  # head + everyone below
        head = len(rows)
        rows.append(dict(slot=head, parent=0, department=name, kind="head", location=locations[0]))
        n_ic = size - 1
        if n_ic <= 0:
            continue
        # choose number of first-line managers so that ICs + managers fit the size
        if n_ic <= 15:
            layer_children = [("ic", n_ic)]
            ic_parents = [head]
        else:
            n_teams_guess = max(3, round(n_ic / (truth.team_span_mean + 1.2)))
            n_ics = n_ic - n_teams_guess
            # managers above first line consume a few more slots; accept a small overshoot
            sizes = _group_sizes(n_ics, truth.team_span_mean, rng)
            first_line = list(range(len(rows), len(rows) + len(sizes)))
            for s in first_line:
                rows.append(dict(slot=s, parent=-1, department=name, kind="manager", location=None))
            layer = first_line
            while len(layer) > 15:
                gs = _group_sizes(len(layer), truth.manager_span_mean, rng)
                ups = list(range(len(rows), len(rows) + len(gs)))
                for s in ups:
                    rows.append(dict(slot=s, parent=-1, department=name, kind="manager", location=None))
                pos = 0
                for u, k in zip(ups, gs):
                    for child in layer[pos : pos + k]:
                        rows[child]["parent"] = u
                    pos += k
                layer = ups
            for child in layer:
                rows[child]["parent"] = head
            ic_parents = []
            for s, k in zip(first_line, sizes):
                ic_parents += [s] * int(k)
            layer_children = [("ic", len(ic_parents))]
        for _, k in layer_children:
            parents = ic_parents if len(ic_parents) == k else [head] * k
            for p in parents:
                rows.append(dict(slot=len(rows), parent=p, department=name, kind="ic", location=None))
    tree = pd.DataFrame(rows)
    tree["parent"] = tree["parent"].astype(int)
    # depth and locations top-down (a team mostly shares its manager's location)
    parent = tree["parent"].to_numpy()
    depth = np.zeros(len(tree), int)
    for _ in range(len(tree)):
        new = np.where(parent >= 0, depth[np.maximum(parent, 0)] + 1, 0)
        if np.array_equal(new, depth):
            break
        depth = new
    tree["depth"] = depth
    loc = tree["location"].to_numpy(object)
    team_loc = rng.choice(len(locations), size=len(tree), p=loc_p)
    stay = rng.random(len(tree)) < 0.85
    for s in np.argsort(depth, kind="stable"):
        if loc[s] is None:
            loc[s] = loc[parent[s]] if stay[s] else locations[team_loc[s]]
    tree["location"] = loc
    has_child = np.zeros(len(tree), bool)
    has_child[parent[parent >= 0]] = True
    tree["is_manager"] = has_child
    # job levels: ICs 1-3, first-line managers 3-4, higher managers 4-5, heads and CEO 5
    u = rng.random(len(tree))
    first_line = np.zeros(len(tree), bool)
    ic = ~has_child
    first_line[parent[ic & (parent >= 0)]] = True
    level = np.where(u < 0.45, 1, np.where(u < 0.8, 2, 3))
    level = np.where(has_child & first_line, np.where(u < 0.6, 3, 4), level)
    level = np.where(has_child & ~first_line, np.where(u < 0.5, 4, 5), level)
    level = np.where(tree["kind"].isin(["ceo", "head"]), 5, level)
    tree["job_level"] = level
    return tree



def _move_to_small_departments(employees: pd.DataFrame, small: dict[str, int], seed: int) -> pd.DataFrame:
    """Move the given number of individual contributors (all their spells) into each small department.

    People who manage nobody are drawn without replacement with a generator of
    their own (seeded from ``seed``), so the rest of the simulation draws the
    same numbers as without small departments.
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


