"""Quantities derived from a run (informational, written to ``truth.yaml``): reliabilities, exit rates, alignment."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np

from .days import NO_DAY, YEAR, to_day_number
from .truth import SCALE_ITEMS

__all__ = ["compute_derived"]

if TYPE_CHECKING:  # annotations only
    import pandas as pd

    from .engine import Engine


def _implied_alpha(var_latent: float, item_var: np.ndarray) -> float:
    """Cronbach's alpha of k items = latent + independent noise (item noise plus rounding noise)."""
    k = len(item_var)
    total = k**2 * var_latent + item_var.sum()
    return float(k / (k - 1) * (1 - (k * var_latent + item_var.sum()) / total))


def compute_derived(engine: Engine, truth, in_data_spells: np.ndarray, end_day: np.ndarray, entry_day: np.ndarray,
                    stats: dict, tree: pd.DataFrame) -> dict:
    """Compute what a run implies: scale reliabilities, clipped item shares, yearly exit rates, alignment, counts.

    They are informational (written to ``truth.yaml`` under ``derived``), not
    parameters of the simulation.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    truth : Truth
        The true parameters of the run.
    in_data_spells : numpy.ndarray
        Spell numbers of the spells in the data.
    end_day : numpy.ndarray
        Each spell's first day not employed (the window end + 1 if still employed).
    entry_day : numpy.ndarray
        Each spell's first day in the window.
    stats : dict
        The per-response statistics of `response_tables`.
    tree : pandas.DataFrame
        The organisation's positions (`build_tree`).

    Returns
    -------
    dict
        Name -> value (rounded floats, integers, or dicts of them).

    Examples
    --------
    >>> import numpy as np
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.days import NO_DAY
    >>> end_day = np.where(engine.spells["term_day"] == NO_DAY, engine.window_end_day + 1, engine.spells["term_day"])
    >>> entry_day = np.maximum(engine.spells["hire_day"], engine.window_start_day)
    >>> from alignment_research.simulate.derived import compute_derived
    >>> from alignment_research.simulate.surveys import response_tables
    >>> _, stats = response_tables(engine, in_data)
    >>> derived = compute_derived(engine, engine.truth, np.flatnonzero(in_data), end_day, entry_day, stats, tree)
    >>> derived["n_positions"], derived["n_spells_simulated"] == engine.n_spells
    (30, True)
    """
    out = _scale_quality(truth, stats)
    out["exit_rates_per_person_year"] = _exit_rates(engine, truth, in_data_spells, end_day, entry_day)
    out.update(_alignment_summary(engine, in_data_spells))
    latent_engagement = stats["_lat_engagement"]
    out["engagement_latent_sd"] = round(float(np.std(latent_engagement)), 4) if len(latent_engagement) else None
    out["n_positions"] = int(len(tree))
    out["n_spells_simulated"] = int(len(engine.spells["term_day"]))
    out["n_left_truncated"] = int((engine.spells["hire_day"][in_data_spells] < engine.window_start_day).sum())
    return out


def _scale_quality(truth, stats: dict) -> dict:
    """Cronbach's alpha each scale's items imply, and the share of items clipped to 1..5."""
    alphas, clip_share = {}, {}
    for s, (k, _) in SCALE_ITEMS.items():
        lat = stats[f"_lat_{s}"]
        if len(lat) < 3:
            continue
        rnd = stats[f"_rnd_{s}"] / k
        item_var = np.full(k, truth.item_sd**2 + rnd.mean())
        alphas[s] = round(_implied_alpha(float(np.var(lat)), item_var), 4)
        clip_share[s] = round(float(stats[f"_clip_{s}"].sum() / (k * len(lat))), 5)
    return {"implied_alpha": alphas, "clipped_item_share": clip_share}


def _exit_rates(engine: Engine, truth, spells: np.ndarray, end_day: np.ndarray, entry_day: np.ndarray) -> dict:
    """Realised yearly exit rates by cause (exits per person-year at risk)."""
    term_day, cause = engine.spells["term_day"], engine.spells["exit_cause"]
    rates = {}
    for y in range(engine.first_window_year, truth.window_end.year + 1):
        first, after = to_day_number(dt.date(y, 1, 1)), to_day_number(dt.date(y + 1, 1, 1))
        at_risk = np.clip(np.minimum(end_day[spells], after) - np.maximum(entry_day[spells], first), 0, None)
        person_years = at_risk.sum() / YEAR
        term = term_day[spells]
        in_year = (term != NO_DAY) & (term >= first) & (term < after)
        rates[str(y)] = {
            "voluntary": round(float((in_year & (cause[spells] == 0)).sum() / person_years), 4),
            "involuntary": round(float((in_year & (cause[spells] == 1)).sum() / person_years), 4),
            "other": round(float((in_year & (cause[spells] == 2)).sum() / person_years), 4),
        }
    return rates


def _alignment_summary(engine: Engine, spells: np.ndarray) -> dict:
    """Mean cascade alignment per cycle, and the share of employee-cycles whose manager has no goals."""
    arrays = engine.spells
    alignment = arrays["alignment_cascade"][spells]
    manager = arrays["cycle_manager"][spells]  # the manager in force when each cycle's goals were set
    has = (arrays["goal_count"][spells] > 0) & (manager >= 0)
    cycle = np.arange(manager.shape[1])[None, :]
    gone = has & (arrays["goal_count"][np.maximum(manager, 0), cycle] == 0)
    return {
        "alignment_cascade_mean": {str(y): round(float(np.nanmean(np.where(has[:, c], alignment[:, c], np.nan))), 4)
                                   for c, y in enumerate(engine.cycle_years) if has[:, c].any()},
        "share_manager_without_goals": round(float(gone.sum() / max(has.sum(), 1)), 4),
    }
