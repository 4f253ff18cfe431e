"""The engine: employment spells position by position, depth by depth, with their goals, ratings, surveys and exits."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .days import _NO_DAY, _YEAR, _cycle_years, _day, _expit, _logit
from .derived import _derived
from .organisation import _build_tree
from .programs import _enrolments
from .truth import _PROGRAM_DAYS, SCALE_ITEMS, Truth

#
# Positions (slots) form a fixed tree.  Each slot is filled by a sequence of employment spells:
# when an incumbent leaves, a successor is hired 1..vacancy_days_max days later.  The tree is
# simulated depth by depth (a spell's covariates only depend on its manager, one level up) and,
# within a depth, in rounds of successors.  Every quantity of a spell is drawn as a potential
# path (goals, ratings, survey responses) before its exit; the exit is then drawn by inverting the
# cumulative hazard over the covariate change points, and the paths are truncated at the exit.

_ITEM_OFFSETS = {
    "engagement": [0.1, -0.05, 0.0, -0.1, 0.05],
    "alignment": [0.05, -0.1, 0.1, -0.05],
    "leadership": [-0.05, 0.1, 0.0, -0.05],
    "feedback": [0.05, 0.0, -0.05],
}
_CHUNK = 20_000  # spells simulated together



class _Engine:
    """State of one simulation run (internal)."""

    def __init__(self, truth: Truth, rng: np.random.Generator):
        self.t = truth
        self.rng = rng
        self.W0, self.W1 = _day(truth.window_start), _day(truth.window_end)
        self.years = _cycle_years(truth)
        self.C = len(self.years)
        self.cs = np.array([_day(dt.date(y, 1, 1)) for y in self.years])
        self.ce = np.array([_day(dt.date(y, 12, 31)) for y in self.years])
        self.y0 = self.years[1]  # first window year; calendar years y0.. index the "latest known" tables
        self.jan1 = np.array([_day(dt.date(y, 1, 1)) for y in range(self.y0, truth.window_end.year + 2)])
        self.waves = np.array(
            [_day(dt.date(y, m, 1)) for y in range(self.y0, truth.window_end.year + 1) for m in truth.survey_months]
        )
        self.waves = self.waves[(self.waves >= self.W0) & (self.waves <= self.W1)]
        self.H0 = self.W0 - int(round(truth.history_years * _YEAR))
        cut = np.cumsum(np.asarray(truth.rating_shares, float) / np.sum(truth.rating_shares))[:-1]
        from scipy.stats import norm

        self.rating_cuts = norm.ppf(cut)
        self.jl = np.zeros(8)
        for lvl, v in truth.hr_job_level.items():
            self.jl[int(lvl)] = v
        self.rate_inv = -np.log1p(-truth.involuntary_rate) / _YEAR
        self.rate_oth = -np.log1p(-truth.other_rate) / _YEAR
        self.items = {s: [f"{s}_{j}" for j in range(1, k + 1)] for s, (k, _) in SCALE_ITEMS.items()}
        self.S: dict[str, list] = {}  # spell arrays, appended per batch
        self.G: dict[str, list] = {}  # goal arrays
        self.R: dict[str, list] = {}  # survey responses
        self.I: list[pd.DataFrame] = []  # true intervals
        self.n_spells = 0
        self.n_goals = 0
        self.P_set: list[tuple[np.ndarray, np.ndarray]] = []  # leadership-development starts, by spell

    # ------------------------------------------------------------------ helpers
    def year_index(self, days):
        """Index into ``jan1`` of the calendar year holding each day (0 = first window year)."""
        return np.searchsorted(self.jan1, days, side="right") - 1

    @staticmethod
    def _append(store, **arrays):
        for k, v in arrays.items():
            store.setdefault(k, []).append(np.asarray(v))

    def finalise_arrays(self):
        self.sp = {k: np.concatenate(v) for k, v in self.S.items()}
        for who, start in self.P_set:
            self.sp["P"][who] = start
        self.gl = {k: np.concatenate(v) for k, v in self.G.items()} if self.G else {}
        # keep one copy: later batches append to the concatenated arrays
        self.S = {k: [v] for k, v in self.sp.items()}
        self.G = {k: [v] for k, v in self.gl.items()}
        self.R = {k: [np.concatenate(v)] for k, v in self.R.items()}

    # ------------------------------------------------------------------ incumbents
    def index_depth(self, spells: np.ndarray):
        """Sorted (slot, hire) index of the given spells, for incumbent look-ups."""
        slot = self.sp["slot"][spells]
        hire = self.sp["hire"][spells]
        order = np.lexsort((hire, slot))
        self.ix_spell = spells[order]
        self.ix_slot = slot[order]
        self.ix_key = slot[order].astype(np.int64) * (1 << 32) + (hire[order] - self.H0 + (1 << 20))

    def incumbent(self, slot, day, *, need=None):
        """The spell of ``slot`` employed on ``day``; else the next one hired; else the previous one."""
        key = slot.astype(np.int64) * (1 << 32) + (day - self.H0 + (1 << 20))
        j = np.searchsorted(self.ix_key, key, side="right") - 1
        n = len(self.ix_key)
        jj = np.clip(j, 0, n - 1)
        same = (j >= 0) & (self.ix_slot[jj] == slot)
        cur = np.where(same, self.ix_spell[jj], -1)
        covers = same & (self.sp["term"][np.maximum(cur, 0)] > day)
        if need is not None:
            covers &= need(np.maximum(cur, 0))
        jn = np.clip(j + 1, 0, n - 1)
        nxt_ok = (j + 1 < n) & (self.ix_slot[jn] == slot) & (self.sp["hire"][self.ix_spell[jn]] <= self.W1)
        nxt = np.where(nxt_ok, self.ix_spell[jn], -1)
        if need is not None:
            nxt = np.where((nxt >= 0) & need(np.maximum(nxt, 0)), nxt, -1)
        prev = cur
        if need is not None:
            prev = np.where((prev >= 0) & need(np.maximum(prev, 0)), prev, -1)
        return np.where(covers, cur, np.where(nxt >= 0, nxt, prev))

    # ------------------------------------------------------------------ one batch of new spells
    def simulate_batch(self, slot: np.ndarray, hire: np.ndarray, depth: int) -> np.ndarray:
        t, rng = self.t, self.rng
        B = len(slot)
        idx = self.n_spells + np.arange(B)
        self.n_spells += B
        C, W0, W1 = self.C, self.W0, self.W1
        level = self.tree_level[slot]
        ceo = depth == 0

        # -- manager on the spell: the parent position's incumbent at max(hire, window start)
        if ceo:
            manager = np.full(B, -1)
        else:
            manager = self.incumbent(self.tree_parent[slot], np.maximum(hire, W0))
            manager = np.where((manager >= 0) & (self.sp["term"][np.maximum(manager, 0)] > W0), manager, -1)
        has_m = manager >= 0
        m0 = np.maximum(manager, 0)

        # -- person draws
        hire_year = (hire.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        age = np.clip(np.round(rng.normal(26 + 3.5 * (level - 1), 6, B)), 19, 64).astype(int)
        gnames = np.array(list(t.genders), dtype=object)
        gp = np.array(list(t.genders.values()), float)
        gender = gnames[rng.choice(len(gnames), B, p=gp / gp.sum())]
        u_eng = rng.normal(0, t.engagement_person_sd, B)
        u_scale = rng.normal(0, t.scale_person_sd, (B, 3))
        um_eng = rng.normal(0, t.engagement_manager_sd, B)
        um_lead = rng.normal(0, t.engagement_manager_sd, B)
        conc = t.alignment_concentration
        p_team = rng.beta(t.alignment_mean * conc, (1 - t.alignment_mean) * conc, B)
        fb_mult = rng.gamma(t.feedback_rate_shape, 1 / t.feedback_rate_shape, B)
        resp_p = _expit(_logit(min(t.survey_response, 1 - 1e-9)) + rng.normal(0, t.survey_response_person_sd, B))
        pm = np.where(has_m, self.sp["p_team"][m0] if len(self.sp) else t.alignment_mean, t.alignment_mean)
        shift = np.where(self.tree_is_manager[slot], t.alignment_manager_shift, 0.0)
        pi = _expit(_logit(pm) + shift + rng.normal(0, t.alignment_person_sd, B))

        # -- performance and ratings per cycle (potential: employed at the cycle's end)
        rho = t.performance_autocorrelation
        perf = np.empty((B, C))
        perf[:, 0] = rng.normal(size=B)
        for c in range(1, C):
            perf[:, c] = rho * perf[:, c - 1] + np.sqrt(1 - rho**2) * rng.normal(size=B)
        rating = 1 + np.searchsorted(self.rating_cuts, perf).astype(float)
        rated_pot = hire[:, None] <= self.ce[None, :] - t.review_min_tenure_days

        # -- goals per cycle (potential: every cycle from the hire on)
        pot = hire[:, None] <= self.ce[None, :]
        pi_i, pc = np.nonzero(pot)
        npairs = len(pi_i)
        lo, hi = (4, 6) if ceo else (t.goals_min, t.goals_max)
        k = rng.integers(lo, max(lo, hi) + 1, npairs)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(np.int64)
        gpair = np.repeat(np.arange(npairs), k)
        G = int(k.sum())
        gown = pi_i[gpair]
        gcyc = pc[gpair]
        gof = np.full((B, C), -1, np.int64)
        gcn = np.zeros((B, C), np.int64)
        gof[pi_i, pc] = self.n_goals + starts
        gcn[pi_i, pc] = k
        parent = np.full(G, -1, np.int64)
        if not ceo and G:
            linked = rng.random(G) < pi[gown]
            m_pair = manager[pi_i]
            m_ok = (m_pair >= 0) & (self.sp["gcn"][np.maximum(m_pair, 0), pc] > 0)
            acting = np.where(m_ok, m_pair, -1)
            miss = np.flatnonzero(~m_ok)
            if len(miss):
                cyc_m = pc[miss]

                def need(s, cyc_m=cyc_m):
                    return (self.sp["gcn"][s, cyc_m] > 0) & (self.sp["term"][s] > W0)

                dref = np.maximum(self.cs[cyc_m], hire[pi_i[miss]])
                acting[miss] = self.incumbent(self.tree_parent[slot[pi_i[miss]]], dref, need=need)
            ag = acting[gpair]
            ok = linked & (ag >= 0)
            a_ok = ag[ok]
            parent[ok] = self.sp["gof"][a_ok, gcyc[ok]] + np.floor(
                rng.random(ok.sum()) * self.sp["gcn"][a_ok, gcyc[ok]]
            ).astype(np.int64)
            unl = ~linked & (rng.random(G) < t.unrelated_parent_share)
            mg = manager[gown]
            for c in range(C):
                sel = np.flatnonzero(unl & (gcyc == c))
                pool = self.pool[c]
                if not len(sel) or not len(pool):
                    continue
                pick = pool[rng.integers(0, len(pool), len(sel))]
                bad = self.gl["owner"][pick] == mg[sel]
                pick[bad] = pool[rng.integers(0, len(pool), bad.sum())]
                bad = self.gl["owner"][pick] == mg[sel]
                parent[sel] = np.where(bad, -1, pick)
        # weights: Dirichlet shares rounded to 0.01 summing to 1.00; some employee-cycles all missing
        graw = rng.gamma(2.0, 1.0, G)
        w = np.round(graw / np.add.reduceat(graw, starts)[gpair], 2) if G else graw
        last = starts + k - 1
        if G:
            w[last] = np.round(1.0 - (np.add.reduceat(w, starts) - w[last]), 2)
        miss_w = (rng.random(npairs) < t.weight_missing_share) | (w[last] <= 0 if G else False)
        w = np.where(miss_w[gpair], np.nan, w)
        we = np.where(np.isnan(w), 1.0, w)
        par_att = np.where(parent >= 0, self.gl["attainment"][np.maximum(parent, 0)] if self.gl else 1.0, 1.0)
        att = np.round(np.clip(1 + 0.12 * perf[gown, gcyc] + 0.3 * (par_att - 1) + rng.normal(0, 0.1, G), 0, 1.6), 2)
        gpo = self.gl["owner"][np.maximum(parent, 0)] if self.gl else np.zeros(G, np.int64)
        casc = (parent >= 0) & (gpo == manager[gown]) & (manager[gown] >= 0)
        if ceo:
            reach = np.ones(G, bool)
        else:
            reach = (parent >= 0) & (self.gl["reach"][np.maximum(parent, 0)] if self.gl else False)
        tot = np.add.reduceat(we, starts) if G else np.zeros(0)
        A = np.full((B, C), np.nan)
        O = np.full((B, C), np.nan)
        TA = np.full((B, C), np.nan)
        if G:
            A[pi_i, pc] = np.add.reduceat(we * casc, starts) / tot
            O[pi_i, pc] = np.add.reduceat(we * reach, starts) / tot
            TA[pi_i, pc] = np.round(np.add.reduceat(we * att, starts) / tot, 3)
        A[~has_m] = np.nan
        self.n_goals += G

        # -- manager quantities the employee's covariates use
        P_m = np.where(has_m, self.sp["P"][m0], _NO_DAY) if not ceo else np.full(B, _NO_DAY)
        nY = len(self.jan1) - 1
        mlat = self.sp["mlatest"][m0] if not ceo else np.full((B, nY), np.nan)
        mlat = np.where(has_m[:, None], mlat, np.nan)
        um = np.where(has_m, self.sp["um_eng"][m0], 0.0) if not ceo else np.zeros(B)
        uml = np.where(has_m, self.sp["um_lead"][m0], 0.0) if not ceo else np.zeros(B)
        own_lat = self.latest(np.where(rated_pot, rating, np.nan))

        # -- survey responses (potential)
        nW = len(self.waves)
        elig = hire[:, None] <= self.waves[None, :] - t.survey_min_tenure_days
        resp = elig & (rng.random((B, nW)) < resp_p[:, None])
        ri, rw = np.nonzero(resp)
        rdate = self.waves[rw] + rng.integers(0, t.survey_field_days, len(ri))
        Yr = self.year_index(rdate)
        A_r = np.nan_to_num(A[ri, Yr + 1])
        mp_r = (rdate >= P_m[ri]).astype(float)
        mrc_r = np.nan_to_num(mlat[ri, Yr] - 3)
        def eps(sd):
            return rng.normal(0, sd, len(ri))

        lat = {
            "engagement": t.engagement_intercept + t.engagement_alignment * A_r + t.engagement_manager_program * mp_r
            + t.engagement_manager_rating * mrc_r + um[ri] + u_eng[ri] + eps(t.engagement_residual_sd),
            "alignment": t.perceived_alignment_intercept + t.perceived_alignment_cascade * A_r + u_scale[ri, 0]
            + eps(t.scale_residual_sd),
            "leadership": t.leadership_intercept + t.leadership_manager_program * mp_r + uml[ri] + u_scale[ri, 1]
            + eps(t.scale_residual_sd),
            "feedback": t.feedback_intercept + t.feedback_rate_effect * (np.log(fb_mult[ri]) - self.elog_fb)
            + u_scale[ri, 2] + eps(t.scale_residual_sd),
        }
        items, scores, stats = {}, {}, {}
        for s, (nk, reverse) in SCALE_ITEMS.items():
            x = lat[s][:, None] + np.asarray(_ITEM_OFFSETS[s])[None, :] + rng.normal(0, t.item_sd, (len(ri), nk))
            clipped = (x < 1) | (x > 5)
            x = np.clip(x, 1, 5)
            fl = np.floor(x)
            frac = x - fl
            y = np.minimum(fl + (rng.random(x.shape) < frac), 5)
            skip = rng.random(len(ri)) < t.item_missing
            j = rng.integers(0, nk, len(ri))
            y[np.flatnonzero(skip), j[skip]] = np.nan
            scores[s] = np.nanmean(y, axis=1) if len(ri) else np.zeros(0)
            for q, col in enumerate(self.items[s]):
                items[col] = (5 + 1 - y[:, q]) if col in reverse else y[:, q]
            stats[s] = (lat[s], frac * (1 - frac), clipped)

        # -- exits: competing voluntary, involuntary and other hazards
        lam, kap = t.voluntary_scale_days, t.voluntary_shape
        E = rng.exponential(size=(3, B))
        ebar = t.engagement_intercept + um + u_eng + t.engagement_alignment * pi
        eta_pre = t.hr_alignment * pi + t.hr_engagement * (ebar - 3) + self.jl[level]
        dpre = np.where(hire < W0, W0 - hire, 0).astype(float)
        Hpre = np.stack([np.exp(eta_pre) * (dpre / lam) ** kap, self.rate_inv * dpre, self.rate_oth * dpre])
        tpre = np.stack([
            lam * (E[0] / np.exp(eta_pre)) ** (1 / kap),
            E[1] / self.rate_inv if self.rate_inv > 0 else np.full(B, np.inf),
            E[2] / self.rate_oth if self.rate_oth > 0 else np.full(B, np.inf),
        ])
        tpre = np.where(E <= Hpre, tpre, np.inf)
        if ceo:
            tpre[:] = np.inf
        pre_cause = np.argmin(tpre, axis=0)
        pre_t = tpre.min(axis=0)
        pre_exit = np.isfinite(pre_t)
        term = np.full(B, _NO_DAY, np.int64)
        cause = np.full(B, -1)
        term[pre_exit] = hire[pre_exit] + np.maximum(np.ceil(pre_t[pre_exit]), 1).astype(np.int64)
        cause[pre_exit] = pre_cause[pre_exit]
        Erem = E - Hpre

        live = np.flatnonzero(~pre_exit)
        s0 = np.maximum(hire, W0)
        Rk = np.full((B, nW), _NO_DAY, np.int64)
        Rk[ri, rw] = rdate
        Sk = np.full((B, nW), np.nan)
        Sk[ri, rw] = scores["engagement"]
        L = live
        cols = [s0[L, None], np.broadcast_to(self.jan1[1:-1], (len(L), len(self.jan1) - 2)), np.minimum(Rk[L], W1),
                np.minimum(P_m[L], W1)[:, None], np.full((len(L), 1), W1)]
        bp = np.sort(np.clip(np.concatenate(cols, axis=1), s0[L, None], W1), axis=1)
        a, b = bp[:, :-1], bp[:, 1:]
        Ya = np.clip(self.year_index(a), 0, nY - 1)
        hL = hire[L][:, None]
        A_a = A[L][np.arange(len(L))[:, None], Ya + 1]
        known = Rk[L][:, None, :] <= a[:, :, None]
        lastw = np.where(known, np.arange(nW)[None, None, :], -1).max(axis=2) if nW else np.full(a.shape, -1)
        eng_obs = np.where(lastw >= 0, Sk[L][np.arange(len(L))[:, None], np.maximum(lastw, 0)], np.nan)
        eng_used = np.where(np.isnan(eng_obs), ebar[L][:, None], eng_obs)
        mp_a = (a >= P_m[L][:, None]).astype(float)
        mr_a = mlat[L][np.arange(len(L))[:, None], Ya]
        own_a = own_lat[L][np.arange(len(L))[:, None], Ya]
        eta_v = (t.hr_alignment * np.nan_to_num(A_a) + t.hr_engagement * (eng_used - 3) + t.hr_manager_program * mp_a
                 + t.hr_manager_rating * np.nan_to_num(mr_a - 3) + self.jl[level[L]][:, None])
        dH = np.stack([
            np.exp(eta_v) * (((b - hL) / lam) ** kap - ((a - hL) / lam) ** kap),
            self.rate_inv * np.exp(t.hr_involuntary_rating * np.nan_to_num(own_a - 3)) * (b - a),
            np.broadcast_to(self.rate_oth * (b - a), a.shape),
        ])
        if ceo:
            dH[:] = 0.0
        cum = np.cumsum(dH, axis=2)
        hit = cum >= Erem[:, L][:, :, None]
        anyhit = hit.any(axis=2) & (dH.sum(axis=2) > 0)
        kk = np.argmax(hit, axis=2)
        rows = np.arange(len(L))
        x = np.full((3, len(L)), np.inf)
        for q in range(3):
            kq = kk[q]
            before = cum[q, rows, kq] - dH[q, rows, kq]
            rem = Erem[q, L] - before
            ak = a[rows, kq].astype(float)
            if q == 0:
                base = ((ak - hire[L]) / lam) ** kap + rem / np.exp(eta_v[rows, kq])
                xq = hire[L] + lam * base ** (1 / kap)
            else:
                rate = dH[q, rows, kq] / np.maximum(b[rows, kq] - a[rows, kq], 1e-300)
                xq = ak + rem / np.where(rate > 0, rate, np.inf)
            x[q] = np.where(anyhit[q], np.maximum(xq, ak), np.inf)
        win_cause = np.argmin(x, axis=0)
        xw = x.min(axis=0)
        ev = np.isfinite(xw) & (xw <= W1)
        Tw = np.where(ev, np.maximum(np.ceil(np.where(ev, xw, 0)).astype(np.int64), s0[L] + 1), 0)
        term[L] = np.where(ev, Tw, _NO_DAY)
        cause[L] = np.where(ev, win_cause, -1)

        # -- the exact intervals the voluntary hazard used (spells in the data)
        end = np.where(term[L] == _NO_DAY, W1, term[L])
        stop = np.minimum(b, end[:, None])
        keep = a < stop
        last_k = keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1)  # zero-length segments leave gaps
        seg_last = np.zeros_like(keep)
        seg_last[np.arange(len(L)), last_k] = True
        seg_last &= keep
        types = np.array(["voluntary", "involuntary", "other", "censored"], dtype=object)
        ctype = types[np.where(cause[L] >= 0, cause[L], 3)]
        rr, kk2 = np.nonzero(keep)
        lastflag = seg_last[rr, kk2]
        self.I.append(pd.DataFrame({
            "spell": idx[L][rr],
            "manager": manager[L][rr],
            "start": (a[rr, kk2] - hire[L][rr]).astype(np.int64),
            "stop": (stop[rr, kk2] - hire[L][rr]).astype(np.int64),
            "event": (lastflag & (ctype[rr] == "voluntary")).astype(np.int64),
            "event_type": np.where(lastflag, ctype[rr], "censored"),
            "alignment_cascade": A_a[rr, kk2],
            "engagement": eng_obs[rr, kk2],
            "manager_program": mp_a[rr, kk2].astype(np.int64),
            "manager_rating": mr_a[rr, kk2],
            "job_level": level[L][rr].astype(np.int64),
            "log_hazard": eta_v[rr, kk2],
        }))

        # -- truncate the potential paths at the exit
        tcmp = np.where(term == _NO_DAY, np.iinfo(np.int64).max, term)
        rated = rated_pot & (tcmp[:, None] > self.ce[None, :])
        gvalid_pair = tcmp[pi_i] > self.cs[pc]
        gcn[pi_i[~gvalid_pair], pc[~gvalid_pair]] = 0
        A[(gcn == 0)] = np.nan
        O[(gcn == 0)] = np.nan
        rkeep = rdate < tcmp[ri]

        self._append(self.S, idx=idx, slot=slot, hire=hire, term=term, cause=cause, manager=manager, level=level,
                     depth=np.full(B, depth), gender=gender, birth_year=hire_year - age, p_team=p_team, um_eng=um_eng,
                     um_lead=um_lead, fb_mult=fb_mult, P=np.full(B, _NO_DAY, np.int64),
                     mlatest=self.latest(np.where(rated, rating, np.nan)), rating=np.where(rated, rating, np.nan),
                     TA=np.where(rated, TA, np.nan), gof=gof, gcn=gcn, A=A, O=O)
        self._append(self.G, owner=idx[gown], cycle=gcyc, parent=parent, weight=w, attainment=att, reach=reach,
                     valid=gvalid_pair[gpair])
        resp_cols = {"spell": idx[ri][rkeep], "date": rdate[rkeep]}
        resp_cols.update({c: v[rkeep] for c, v in items.items()})
        for s, (lv, rv, cl) in stats.items():
            resp_cols[f"_lat_{s}"] = lv[rkeep]
            resp_cols[f"_rnd_{s}"] = rv[rkeep].sum(axis=1) if len(rv) else np.zeros(0)
            resp_cols[f"_clip_{s}"] = cl[rkeep].sum(axis=1) if len(cl) else np.zeros(0)
        self._append(self.R, **resp_cols)
        return term

    def latest(self, rating: np.ndarray) -> np.ndarray:
        """Latest known rating in each window year (cycle c is known from the next year's 1 January)."""
        nY = len(self.jan1) - 1
        out = np.full((rating.shape[0], nY), np.nan)
        cur = np.full(rating.shape[0], np.nan)
        for y in range(nY):
            c = y  # cycle index c (year y0 - 1 + c) is known in window year index y >= c
            if c < rating.shape[1]:
                cur = np.where(np.isnan(rating[:, c]), cur, rating[:, c])
            out[:, y] = cur
        return out

    # ------------------------------------------------------------------ depth by depth
    def finish_depth(self, depth: int):
        """Make a depth's spells available to the next depth (look-ups, goal pools, programme starts)."""
        self.finalise_arrays()
        sp = self.sp
        at = np.flatnonzero(sp["depth"] == depth)
        in_data = sp["term"][at] > self.W0
        # leadership development: quarterly nominations, odds rising with the latest known rating
        if depth >= 1:
            cand = at[self.tree_is_manager[sp["slot"][at]] & in_data]
            P = sp["P"]
            W_years = range(self.y0, self.t.window_end.year + 1)
            quarters = [_day(dt.date(y, m, 1)) for y in W_years for m in (1, 4, 7, 10)]
            base = _logit(self.t.program_uptake)
            for q in quarters:
                yq = min(int(self.year_index(np.array([q]))[0]), sp["mlatest"].shape[1] - 1)
                r = sp["mlatest"][cand, yq]
                draw = self.rng.random(len(cand))
                start = q + self.rng.integers(0, 31, len(cand))
                elig = (sp["hire"][cand] <= q) & (sp["term"][cand] > q) & (P[cand] == _NO_DAY) & ~np.isnan(r)
                enrol = elig & (draw < _expit(base + self.t.program_selection * np.nan_to_num(r - 3)))
                enrol &= (start < sp["term"][cand]) & (start <= self.W1)
                P[cand[enrol]] = start[enrol]
                self.P_set.append((cand[enrol], start[enrol]))
        # pools of goals another team may serve ("unrelated" parents): managers' goals in the data
        mgr_ok = self.tree_is_manager[sp["slot"]] & (sp["term"] > self.W0) & (sp["depth"] == depth)
        gl = self.gl
        ok = mgr_ok[gl["owner"]] & gl["valid"]
        self.pool = [np.flatnonzero(ok & (gl["cycle"] == c)) for c in range(self.C)]
        self.index_depth(at)

    def run(self, tree: pd.DataFrame):
        from scipy.special import digamma

        t, rng = self.t, self.rng
        self.tree_parent = tree["parent"].to_numpy()
        self.tree_level = tree["job_level"].to_numpy()
        self.tree_is_manager = tree["is_manager"].to_numpy()
        self.elog_fb = float(digamma(t.feedback_rate_shape) - np.log(t.feedback_rate_shape))
        self.sp, self.gl = {}, {}
        depth = tree["depth"].to_numpy()
        for d in range(depth.max() + 1):
            slot = np.flatnonzero(depth == d)
            hire = self.H0 + (0 if d == 0 else rng.integers(0, 365, len(slot)))
            hire = np.broadcast_to(hire, slot.shape).astype(np.int64)
            while len(slot):
                # spells of one depth are independent given the depth above: chunks bound the memory
                term = np.concatenate([
                    self.simulate_batch(slot[i : i + _CHUNK], hire[i : i + _CHUNK], d) for i in range(0, len(slot), _CHUNK)
                ])
                left = term != _NO_DAY
                nxt = term[left] + rng.integers(1, t.vacancy_days_max + 1, left.sum())
                ok = nxt <= self.W1 - 1
                slot, hire = slot[left][ok], nxt[ok]
            self.finish_depth(d)


def _run_engine(n: int, truth: Truth, rng: np.random.Generator) -> dict:
    """Simulate the organisation until exactly ``n`` spells fall in the window; return internal tables."""
    ratio = 1.7  # spells in the data per position, refined after each attempt
    for _attempt in range(8):
        n_slots = max(int(np.ceil(n / ratio * 1.03)), 8)
        tree = _build_tree(n_slots, truth, rng)
        eng = _Engine(truth, rng)
        eng.run(tree)
        sp = eng.sp
        in_data = sp["term"] > eng.W0
        count = int(in_data.sum())
        leaf = ~eng.tree_is_manager[sp["slot"]]
        removable = np.flatnonzero(in_data & leaf & (sp["hire"] > eng.W0))
        excess = count - n
        if 0 <= excess <= 0.3 * len(removable):
            break
        ratio = count / len(tree)
    else:  # pragma: no cover - calibration always converges within a few attempts
        raise RuntimeError("could not calibrate the organisation size")
    drop = rng.choice(removable, size=excess, replace=False) if excess else np.zeros(0, int)
    in_data[drop] = False
    return _tables_from_engine(eng, tree, in_data, truth, rng)


def _tables_from_engine(eng: _Engine, tree: pd.DataFrame, in_data: np.ndarray, truth: Truth, rng) -> dict:
    sp, gl, W0, W1 = eng.sp, eng.gl, eng.W0, eng.W1
    spells = np.flatnonzero(in_data)
    leaf = ~eng.tree_is_manager[sp["slot"]]
    term = sp["term"]
    tend = np.where(term == _NO_DAY, W1 + 1, term)  # first day not employed (within the window)
    s0 = np.maximum(sp["hire"], W0)
    types = np.array(["voluntary", "involuntary", "other"], dtype=object)

    # -- rehires: a few in-window hires of individual contributors are earlier voluntary leavers
    person = np.arange(len(term))
    year = (np.where(term == _NO_DAY, 0, term).astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
    hire_year = sp["hire"].astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    leavers = in_data & leaf & (sp["cause"] == 0) & (term != _NO_DAY)
    joiners = np.flatnonzero(in_data & leaf & (sp["hire"] > W0))
    n_re = int(round(truth.rehire_share * len(joiners)))
    gender = sp["gender"].copy()
    birth_year = sp["birth_year"].copy()
    used = np.zeros(len(term), bool)
    for b in np.sort(rng.choice(joiners, size=min(n_re, len(joiners)), replace=False)) if n_re else []:
        ok = leavers & ~used & (year < hire_year[b]) & (term + 180 <= sp["hire"][b])
        ok[b] = False
        cand = np.flatnonzero(ok)
        if not len(cand) or used[b]:
            continue
        a = int(rng.choice(cand))
        used[a] = used[b] = True
        person[b] = person[a]
        gender[b], birth_year[b] = gender[a], birth_year[a]

    dept = tree["department"].to_numpy(object)[sp["slot"]]
    loc = tree["location"].to_numpy(object)[sp["slot"]]
    cause = sp["cause"]
    spells_df = pd.DataFrame({
        "spell": spells, "slot": sp["slot"][spells], "person": person[spells], "hire": sp["hire"][spells],
        "term": term[spells], "term_type": np.where(cause[spells] >= 0, types[np.maximum(cause[spells], 0)], None),
        "department": dept[spells], "job_level": sp["level"][spells], "manager": sp["manager"][spells],
        "location": loc[spells], "gender": gender[spells], "birth_year": birth_year[spells],
    })

    # -- goals, reviews, realised alignment
    gk = np.flatnonzero(gl["valid"] & in_data[gl["owner"]])
    goals = pd.DataFrame({"goal": gk, "owner": gl["owner"][gk], "cycle": gl["cycle"][gk], "parent": gl["parent"][gk],
                          "weight": gl["weight"][gk], "attainment": gl["attainment"][gk]})
    si, ci = np.nonzero(~np.isnan(sp["rating"][spells]))
    reviews = pd.DataFrame({"spell": spells[si], "cycle": ci, "rating": sp["rating"][spells[si], ci].astype(int),
                            "target_attainment": sp["TA"][spells[si], ci]})
    si, ci = np.nonzero(sp["gcn"][spells] > 0)
    true_alignment = pd.DataFrame({"spell": spells[si], "cycle": ci, "alignment_cascade": sp["A"][spells[si], ci],
                                   "alignment_org": sp["O"][spells[si], ci]})

    # -- survey responses
    R = {k: np.concatenate(v) for k, v in eng.R.items()}
    eng.R = {}
    rk = in_data[R["spell"]]
    surveys = pd.DataFrame({k: v[rk] for k, v in R.items() if not k.startswith("_")})
    stats = {k: v[rk] for k, v in R.items() if k.startswith("_")}

    # -- programmes: leadership development (drawn by depth) and employee programmes
    rows = []
    P = sp["P"]
    lead = spells[P[spells] != _NO_DAY]
    rows.append(_enrolments(lead, "leadership_development", P[lead], truth.program_days, truth.program_days + 1,
                            tend, W1, truth, rng))
    span = (tend - s0) / _YEAR
    for prog, rate in truth.employee_programs.items():
        p = 1 - (1 - rate) ** np.maximum(span[spells], 0)
        who = spells[rng.random(len(spells)) < p]
        start = s0[who] + np.floor(rng.random(len(who)) * (tend[who] - s0[who])).astype(np.int64)
        lo, hi = _PROGRAM_DAYS.get(prog, (30, 181))
        rows.append(_enrolments(who, prog, start, lo, hi, tend, W1, truth, rng))
    programs = pd.concat(rows, ignore_index=True)

    # -- feedback events at person-specific Poisson rates; givers usually the manager
    fb = []
    mgr = sp["manager"]
    order = np.argsort(mgr[spells], kind="stable")
    team_members = spells[order]
    team_mgr = mgr[team_members]
    for kind, rate in truth.feedback_rates.items():
        lam = rate * sp["fb_mult"][spells] * np.maximum(tend[spells] - s0[spells], 0) / _YEAR
        cnt = rng.poisson(lam)
        who = np.repeat(spells, cnt)
        date = s0[who] + np.floor(rng.random(len(who)) * (tend[who] - s0[who])).astype(np.int64)
        m = mgr[who]
        by_manager = rng.random(len(who)) < truth.feedback_manager_share.get(kind, 0.5)
        # the manager on the spell if employed then, else whoever holds the manager's position
        m_emp = (m >= 0) & (sp["hire"][np.maximum(m, 0)] <= date) & (tend[np.maximum(m, 0)] > date)
        eng.index_depth(np.flatnonzero(in_data))
        fill = eng.incumbent(eng.tree_parent[sp["slot"][who]], date)
        fill = np.where((fill >= 0) & in_data[np.maximum(fill, 0)] & (sp["hire"][np.maximum(fill, 0)] <= date)
                        & (tend[np.maximum(fill, 0)] > date), fill, -1)
        boss = np.where(m_emp, m, fill)
        # a peer: someone else with the same manager, employed on the date
        lo = np.searchsorted(team_mgr, m, side="left")
        hi = np.searchsorted(team_mgr, m, side="right")
        size = hi - lo
        pick = lo + np.floor(rng.random(len(who)) * np.maximum(size, 1)).astype(np.int64)
        peer = team_members[np.clip(pick, 0, len(team_members) - 1)] if len(team_members) else np.full(len(who), -1)
        peer_ok = (m >= 0) & (size > 1) & (peer != who) & (sp["hire"][peer] <= date) & (tend[peer] > date)
        giver = np.where(by_manager | ~peer_ok, boss, peer)
        # one event per employee, day and giver (a second one would be an exact duplicate row)
        key = ((who.astype(np.int64) << 14) + (date - eng.H0)) * (len(term) + 2) + (giver + 1)
        first = np.sort(np.unique(key, return_index=True)[1])
        fb.append(pd.DataFrame({"spell": who[first], "date": date[first], "kind": kind, "giver": giver[first]}))
    feedback = pd.concat(fb, ignore_index=True)

    ti = pd.concat(eng.I, ignore_index=True)
    eng.I = []
    ti = ti[in_data[ti["spell"].to_numpy()]]

    derived = _derived(eng, truth, spells, term, cause, tend, s0, stats, surveys, tree)
    return {"spells": spells_df, "goals": goals, "reviews": reviews, "surveys": surveys, "programs": programs,
            "feedback": feedback, "true_alignment": true_alignment, "true_intervals": ti, "derived": derived}


