"""Quantities derived from a run: implied reliabilities, realised exit rates and alignment."""

from __future__ import annotations

import datetime as dt

import numpy as np

from .days import _NO_DAY, _YEAR, _day
from .truth import SCALE_ITEMS


def _implied_alpha(var_latent: float, item_var: np.ndarray) -> float:
    """Cronbach's alpha of k items = latent + independent noise (item noise plus rounding noise)."""
    k = len(item_var)
    total = k**2 * var_latent + item_var.sum()
    return float(k / (k - 1) * (1 - (k * var_latent + item_var.sum()) / total))


def _derived(eng, truth, spells, term, cause, tend, s0, stats, surveys, tree) -> dict:
    out: dict = {}
    alphas, clip_share = {}, {}
    for s, (k, _) in SCALE_ITEMS.items():
        lat = stats[f"_lat_{s}"]
        if len(lat) < 3:
            continue
        rnd = stats[f"_rnd_{s}"] / k
        item_var = np.full(k, truth.item_sd**2 + rnd.mean())
        alphas[s] = round(_implied_alpha(float(np.var(lat)), item_var), 4)
        clip_share[s] = round(float(stats[f"_clip_{s}"].sum() / (k * len(lat))), 5)
    out["implied_alpha"] = alphas
    out["clipped_item_share"] = clip_share
    # realised yearly exit rates (exits per person-year at risk)
    rates = {}
    for y in range(eng.y0, truth.window_end.year + 1):
        a, b = _day(dt.date(y, 1, 1)), _day(dt.date(y + 1, 1, 1))
        py = np.clip(np.minimum(tend[spells], b) - np.maximum(s0[spells], a), 0, None).sum() / _YEAR
        t = term[spells]
        inyear = (t != _NO_DAY) & (t >= a) & (t < b)
        rates[str(y)] = {
            "voluntary": round(float((inyear & (cause[spells] == 0)).sum() / py), 4),
            "involuntary": round(float((inyear & (cause[spells] == 1)).sum() / py), 4),
            "other": round(float((inyear & (cause[spells] == 2)).sum() / py), 4),
        }
    out["exit_rates_per_person_year"] = rates
    sp = eng.sp
    A = sp["A"][spells]
    m = sp["manager"][spells]
    has = (sp["gcn"][spells] > 0) & (m >= 0)[:, None]
    gone = has & (sp["gcn"][np.maximum(m, 0)] == 0)
    out["alignment_cascade_mean"] = {str(y): round(float(np.nanmean(np.where(has[:, c], A[:, c], np.nan))), 4)
                                     for c, y in enumerate(eng.years) if has[:, c].any()}
    out["share_manager_without_goals"] = round(float(gone.sum() / max(has.sum(), 1)), 4)
    out["engagement_latent_sd"] = round(float(np.std(stats["_lat_engagement"])), 4) if len(stats["_lat_engagement"]) else None
    out["n_positions"] = int(len(tree))
    out["n_spells_simulated"] = int(len(term))
    out["n_left_truncated"] = int((eng.sp["hire"][spells] < eng.W0).sum())
    return out


