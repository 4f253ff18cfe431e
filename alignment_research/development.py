"""The employee's own development programmes (mentoring, coaching, training): emulated trials and their effects.

The leadership programme is evaluated through the teams of the managers who take
it (:mod:`alignment_research.programs`). An employee's own mentoring or coaching
is evaluated the same way, one level down: every date on which someone starts the
programme opens a trial in which they are matched, on what was known that day, to
colleagues who had not started it by then. Both are then followed forward, to a
promotion (exits compete) or to a voluntary exit. The naive comparison of people
who ever took the programme against the rest is reported beside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._estimators import greedy_caliper_match
from ._formula import formula_terms
from .cache import stored_result
from .errors import ModelError, StatisticalWarning
from .programs import ProgramEffectResult, balance_table, e_value, effective_sample_size, fit_propensity, match_trials
from .report import Section, Sentence, describe_effect, paragraph
from .retention import fit_cox
from .spells import DAY, locate_pairs
from .study import CleanStudy

__all__ = ["DEVELOPMENT_FORMULA", "MANAGER_CHANGE_FORMULA", "development_trials", "estimate_development_effect",
           "describe_careers"]

#: Enrolment model of the employee's own programme: what was known on the trial date.
DEVELOPMENT_FORMULA = "rating + job_level + tenure_years + engagement + manager_program + alignment_cascade"

#: Covariates that take their trial's mean when missing (someone not yet reviewed or surveyed).
_FILLED = ("rating", "engagement", "alignment_cascade", "job_level")

#: Trial rows kept at most: controls beyond it are sampled at random (risk-set sampling), treated rows never.
_MAX_TRIAL_ROWS = 2_000_000


def _enrolments(iv: pd.DataFrame, column: str, sid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per spell position: the tenure day the programme starts inside the window (-1 if not) and pre-window flags."""
    n = int(sid.max()) + 1 if len(sid) else 0
    x = iv[column].to_numpy(np.int64)
    first = np.r_[True, sid[1:] != sid[:-1]] if len(sid) else np.zeros(0, bool)
    starts = (x == 1) & ~first & np.r_[False, x[:-1] == 0]
    enrol = np.full(n, -1, np.int64)
    rows = np.flatnonzero(starts)
    keep = np.r_[True, sid[rows][1:] != sid[rows][:-1]] if len(rows) else np.zeros(0, bool)
    enrol[sid[rows[keep]]] = iv["start"].to_numpy(np.int64)[rows[keep]]
    before = np.zeros(n, bool)
    before[sid[first & (x == 1)]] = True
    return enrol, before


def development_trials(clean: CleanStudy, program: str = "mentoring", *, seed: int = 0) -> pd.DataFrame:
    """Build the emulated trials of an employee's own programme: one per start date.

    At each date on which an employee starts ``program`` inside the observation
    window, the *treated* row is that employee and the *control* rows are the
    colleagues employed that day who had not started it (they may start later:
    the outcome analysis then censors them). Covariates are those of the
    ``intervals`` row in force that day, so nothing known later is used.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study (its ``analysis.intervals`` carry ``program_<name>``).
    program : str, default "mentoring"
        The programme, as named in the ``programs`` table.
    seed : int, default 0
        Seed of the risk-set sampling of controls, used only when the trials would
        exceed two million rows.

    Returns
    -------
    DataFrame
        One row per employee and trial: ``trial, index_date, employee_id, spell,
        treated, enrol_day`` (tenure day of the employee's own start inside the
        window, -1 if none), ``day`` (tenure day of the trial date), ``rating,
        job_level, tenure_years, engagement, manager_program, alignment_cascade,
        department`` (missing values take the trial's mean).

    Raises
    ------
    ModelError
        When the study has no such programme, or nobody starts it inside the window.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> trials = ar.development_trials(clean, "mentoring")
    >>> int(trials.groupby("trial")["treated"].sum().min())
    1
    """
    iv = clean.analysis.intervals
    column = f"program_{program}"
    if column not in iv:
        raise ModelError(f"The study has no programme {program!r}: the intervals table has no column {column!r}.")
    person = clean.analysis.person
    pos = locate_pairs(iv["employee_id"], iv["spell"], person["employee_id"], person["spell"])
    if (pos < 0).any():
        raise ModelError("Some intervals have no spell in the person table; rebuild the analysis tables.")
    enrol, before = _enrolments(iv, column, pos)
    hire = person["hire_date"].to_numpy("datetime64[ns]")
    treated_spells = np.flatnonzero(enrol >= 0)
    if not len(treated_spells):
        raise ModelError(f"Nobody starts {program!r} inside the observation window, so there is no trial to emulate.")
    dates = np.unique(hire[treated_spells] + enrol[treated_spells] * DAY)
    start = iv["start"].to_numpy(np.int64)
    stop = iv["stop"].to_numpy(np.int64)
    # the rows in force on a trial date: start < day <= stop, not yet started and not started before the window
    lo = np.searchsorted(dates, hire[pos] + start * DAY, side="right")
    hi = np.searchsorted(dates, hire[pos] + stop * DAY, side="right")
    eligible = (iv[column].to_numpy(np.int64) == 0) & ~before[pos]
    counts = np.where(eligible, hi - lo, 0)
    row, t, day, treated = _trial_rows(counts, lo, dates, hire, pos, enrol, seed=seed)
    has_treated = np.zeros(len(dates), bool)
    has_treated[t[treated]] = True
    keep = has_treated[t]
    row, t, day, treated = row[keep], t[keep], day[keep], treated[keep]
    # ordered by trial, then employee (integer codes sort as the ids do), as every consumer reads them
    order = _by_trial_then_id(t, pd.factorize(iv["employee_id"], sort=True)[0][row], len(dates))
    row, t, day, treated = row[order], t[order], day[order], treated[order]
    trial = np.r_[0, np.cumsum(t[1:] != t[:-1])] if len(t) else t  # t is sorted: the trial numbers 0, 1, ...
    sizes = np.bincount(trial)
    columns = {
        "trial": trial + 1,
        "index_date": dates[t],
        "employee_id": iv["employee_id"].array.take(row),
        "spell": iv["spell"].to_numpy()[row],
        "treated": treated.astype(int),
        "enrol_day": enrol[pos[row]],
        "day": day,
        "tenure_years": day / 365.25,
    }
    for name in ("rating", "job_level", "engagement", "manager_program", "alignment_cascade", "department"):
        if name == "department" and name in iv:
            columns[name] = iv[name].array.take(row)
        elif name in iv:  # numbers once per intervals row, then picked for the trial rows
            columns[name] = pd.to_numeric(iv[name], errors="coerce").to_numpy(float)[row]
        else:
            columns[name] = np.full(len(row), np.nan)
        if name in _FILLED:
            columns[name] = _fill_trial_mean(columns[name], trial, sizes)
    return pd.DataFrame(columns)  # built at once: one block per dtype, so later copies need no consolidation


def _by_trial_then_id(t: np.ndarray, ids: np.ndarray, n_dates: int) -> np.ndarray:
    """The order ``np.lexsort((ids, t))``: by trial date, then id, else as the rows come.

    The intervals are usually in id order, so the rows already are: a stable
    sort by trial date alone then gives the same order, and on 16-bit keys
    numpy sorts stably by radix, in linear time.
    """
    if len(ids) and (ids[1:] >= ids[:-1]).all():
        return np.argsort(t.astype(np.int16) if n_dates <= np.iinfo(np.int16).max else t, kind="stable")
    return np.lexsort((ids, t))


#: Candidate trial rows made at a time before sampling (a block's arrays stay a few MB at any study size).
_TRIAL_BLOCK = 1 << 18

_NS_PER_DAY = 86_400 * 10**9


def _trial_rows(counts, lo, dates, hire, pos, enrol, *, seed):
    """The (intervals row, trial, tenure day, treated) of every candidate row, controls sampled past the cap.

    Interval row ``i`` is a candidate in the ``counts[i]`` trials from ``lo[i]``
    on. Above ``_MAX_TRIAL_ROWS`` candidates each control is kept with
    probability ``_MAX_TRIAL_ROWS / candidates``, every starter always. The rows
    are made a block of interval rows at a time, the random draws taken in
    order from one generator: the same draws, so the same rows, as making all
    the candidates at once, without their arrays (about 100 MB each at 20,000
    employees) ever existing whole.
    """
    total = int(counts.sum())
    rng = np.random.default_rng(seed) if total > _MAX_TRIAL_ROWS else None
    hire_ns = hire.view(np.int64)
    # whole days (as cleaning leaves them): integer day numbers give the same days as the timedelta division
    whole = not np.isnat(hire).any() and not (hire_ns % _NS_PER_DAY).any()
    if whole:
        date_day, hire_day = dates.view(np.int64) // _NS_PER_DAY, hire_ns // _NS_PER_DAY
    ends = np.cumsum(counts)
    bounds = np.unique(np.r_[0, np.searchsorted(ends, np.arange(_TRIAL_BLOCK, total, _TRIAL_BLOCK)), len(counts)])
    parts = []
    for r0, r1 in zip(bounds[:-1], bounds[1:]):
        c = counts[r0:r1]
        row = np.repeat(np.arange(r0, r1), c)
        t = lo[row] + (np.arange(len(row)) - np.repeat(np.cumsum(c) - c, c))
        spell = pos[row]
        day = date_day[t] - hire_day[spell] if whole else ((dates[t] - hire[spell]) / DAY).astype(np.int64)
        treated = enrol[spell] == day
        if rng is not None:
            keep = np.flatnonzero(treated | (rng.random(len(row)) < _MAX_TRIAL_ROWS / total))
            row, t, day, treated = row[keep], t[keep], day[keep], treated[keep]
        parts.append((row, t, day, treated))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    return tuple(np.concatenate(p) for p in zip(*parts))


def _fill_trial_mean(values: np.ndarray, trial: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Missing values take their trial's mean, or the mean over all trials when the whole trial lacks one.

    ``sizes`` counts the rows of each trial (``np.bincount(trial)``). ``values``
    is filled in place (the caller's own array) and returned.
    """
    missing = np.isnan(values)
    rows = np.flatnonzero(missing)
    if not len(rows):
        return values
    present = np.where(missing, 0.0, values)
    counts = sizes - np.bincount(trial[rows], minlength=len(sizes))  # present values per trial (whole numbers)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.bincount(trial, weights=present) / counts
    fill = means[trial[rows]]
    lacking = np.isnan(fill)  # a trial without any value
    if lacking.any():
        fill[lacking] = np.nanmean(values) if len(rows) < len(values) else np.nan
    values[rows] = fill
    return values


def _varies(values: pd.Series) -> bool:
    """At least two distinct values besides missing ones (``nunique() > 1``, without hashing a numeric column)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        x = values.to_numpy(float)
        present = x[~np.isnan(x)]
        return bool(len(present)) and bool(present.min() < present.max())
    return values.nunique(dropna=True) > 1


def _usable(formula: str, trials: pd.DataFrame) -> str:
    """The terms of ``formula`` whose column varies in the trials (a study without surveys has no engagement)."""
    kept = [t for t in formula_terms(formula) if t not in trials or _varies(trials[t])]
    if not kept:
        raise ModelError(f"No term of the enrolment model {formula!r} varies across the trials.")
    return " + ".join(kept)


def _match(trials: pd.DataFrame, *, ratio: int, caliper: float) -> pd.DataFrame:
    """``match_trials(trials, ratio=, caliper=, unit="employee_id")``, all trials in one vectorised pass.

    The same greedy rule, order and ties (:func:`greedy_caliper_match`), so the
    same ``matched_set`` and ``weight``; no loop over starters.
    """
    if ratio < 1:
        raise ModelError(f"`ratio` must be a positive integer, got {ratio}.")
    plain = isinstance(trials.index, pd.RangeIndex) and trials.index.start == 0 and trials.index.step == 1
    out = trials.copy(deep=False) if plain else trials.reset_index(drop=True)  # new columns only, never edits
    logit = out["logit_propensity"].to_numpy(float)
    treated = out["treated"].to_numpy(int) == 1
    # ties among a trial's starters go by id: only the starters' ids are ranked (codes in id order), not the
    # millions of controls' (whose order is never read)
    starters = np.flatnonzero(treated)
    text = out["employee_id"].astype("string").array
    order_key = np.zeros(len(out), np.int64)
    order_key[starters] = pd.factorize(text.take(starters), sort=True)[0]
    width = caliper * float(np.nanstd(logit, ddof=1))
    owner, weight = greedy_caliper_match(pd.factorize(out["trial"], sort=True)[0], treated, logit, order_key,
                                         width=width, ratio=ratio)
    matched = owner >= 0
    labels = np.full(len(out), pd.NA, dtype=object)  # the text array is filled first, then checked once
    head = owner[matched]  # always a starter's row
    labels[matched] = (out["trial"].to_numpy()[head].astype(str).astype(object) + ":"
                       + np.asarray(text.take(head), dtype=object))
    out["matched_set"] = pd.arrays.StringArray(labels)
    out["weight"] = weight
    return out


def _followup(matched: pd.DataFrame, rows: pd.DataFrame, *, window_day: str = "day") -> pd.DataFrame:
    """The outcome rows of each matched employee after its trial date, controls censored at their own start."""
    m = matched.dropna(subset=["matched_set"])
    m = m[["matched_set", "trial", "employee_id", "spell", "treated", "enrol_day", "weight", window_day]]
    m = m.assign(employee_id=m["employee_id"].astype("string"),
                 censor=np.where((m["treated"] == 0) & (m["enrol_day"] > m[window_day]), m["enrol_day"],
                                 np.iinfo(np.int64).max))
    r = rows[["employee_id", "spell", "start", "stop", "event"]].assign(
        employee_id=rows["employee_id"].astype("string"), _row=np.arange(len(rows)))
    f = m.merge(r, on=["employee_id", "spell"], how="inner")
    f = f[(f["stop"] > f[window_day]) & (f["start"] < f["censor"])]
    cut = f["stop"] > f["censor"]
    f = f.assign(start=np.maximum(f["start"], f[window_day]), stop=np.minimum(f["stop"], f["censor"]),
                 event=np.where(cut, 0, f["event"]))
    return f.drop(columns=["censor"]).reset_index(drop=True)


@dataclass(frozen=True)
class _Matching:
    """The outcome-free half of a development effect: matched trials, balance, counts and the caveats raised."""

    matched: pd.DataFrame
    balance: pd.DataFrame
    propensity_model: pd.DataFrame
    n_trials: int
    n_enrolled: int
    caveats: tuple[str, ...]
    sources: tuple  # the analysis tables it was built from (compared by identity)


#: Key in a cleaned study's ``__dict__`` holding its most recent matchings (see :func:`_matched_trials`).
_MATCHINGS_KEY = "_development_matchings"

#: Matchings a cleaned study keeps: a programme's promotion and retention effects are asked for in turn
#: (the brief's careers section, then the scorecard), two programmes at a time.
_MATCHINGS_KEPT = 2


def _matched_trials(clean: CleanStudy, program: str, propensity_formula: str, *, ratio: int, caliper: float,
                    alpha: float) -> _Matching:
    """Emulate, model and match ``program``'s trials, or take the matching this study made for another outcome.

    None of it depends on the outcome, so the promotion and the retention effect
    of one programme share it. The study keeps its last ``_MATCHINGS_KEPT``
    matchings, each valid while the study's ``intervals`` and ``person`` tables
    are the same objects (a rebuilt table makes a new matching).
    """
    analysis = clean.analysis
    sources = (analysis.intervals, analysis.person)
    key = (program, propensity_formula, ratio, caliper, alpha)
    kept = clean.__dict__.setdefault(_MATCHINGS_KEY, {})
    found = kept.pop(key, None)
    if found is None or any(a is not b for a, b in zip(found.sources, sources)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StatisticalWarning)
            trials = development_trials(clean, program)
            # the trials are this matching's own: scored without a copy of their millions of rows
            propensity = fit_propensity(trials, _usable(propensity_formula, trials), alpha=alpha, copy=False)
            matched = _match(propensity.trials, ratio=ratio, caliper=caliper)
            covariates = [c for c in ("rating", "job_level", "tenure_years", "engagement", "manager_program",
                                      "alignment_cascade") if _varies(matched[c])]
            balance = balance_table(matched, "treated", covariates, weights="weight")  # before: every trial row
        found = _Matching(matched, balance, propensity.table, int(trials["trial"].nunique()),
                          int(trials["treated"].sum()),
                          tuple(str(w.message) for w in caught if issubclass(w.category, StatisticalWarning)), sources)
    kept[key] = found  # the most recent last
    while len(kept) > _MATCHINGS_KEPT:
        kept.pop(next(iter(kept)))
    return found


@stored_result("development_effect")  # once per cached study: notebooks 06, 07, 08 and the scorecard share it
def estimate_development_effect(
    clean: CleanStudy,
    program: str = "mentoring",
    *,
    outcome: str = "promotion",
    propensity_formula: str = DEVELOPMENT_FORMULA,
    ratio: int = 3,
    caliper: float = 0.2,
    alpha: float = 0.05,
    warn: bool = True,
) -> ProgramEffectResult:
    """Estimate the effect of an employee's own programme on their promotion or retention.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study. Promotion needs ``job_history`` (the ``careers`` table).
    program : str, default "mentoring"
        The programme (``mentoring``, ``coaching``, ``training`` or any in the data).
    outcome : {"promotion", "retention"}, default "promotion"
        The time to the next promotion (exits are competing events, censored:
        a cause-specific hazard) or to a voluntary exit.
    propensity_formula : str, default DEVELOPMENT_FORMULA
        Right-hand side of the enrolment model; terms that do not vary are dropped.
    ratio : int, default 3
        Controls per starter.
    caliper : float, default 0.2
        Caliper in standard deviations of the logit propensity.
    alpha : float, default 0.05
        Intervals at level ``1 - alpha``.
    warn : bool, default True
        Raise the caveats as ``StatisticalWarning`` (they are in ``caveats`` either way).

    Returns
    -------
    ProgramEffectResult
        ``tidy()``: ``adjusted`` then ``naive`` rows (column ``method``), term
        ``program_<program>``, log hazard ratios with ``exp_estimate`` (the hazard
        ratio of a promotion, or of a voluntary exit). ``glance()``: ``program,
        outcome, n_trials, n_enrolled, n_treated, n_unmatched, n_controls,
        n_control_rows, ess_controls, max_abs_smd_before, max_abs_smd_after,
        caliper, ratio, n, events, cov_type, e_value, e_value_ci, caveats``.
        ``extras``: ``trials``, ``balance``, ``propensity_model``,
        ``outcome_data``, ``e_value``.

    Raises
    ------
    ModelError
        Unknown outcome, no such programme, nobody starting it, or promotion asked
        of a study without job history.

    Notes
    -----
    The adjusted row is ``coxph(Surv(start, stop, event) ~ treated, cluster =
    employee_id)`` on the matched employees' rows after each trial date
    (tenure scale, left-truncated at the trial date), weighted by the matching
    weights (1 for a starter, 1 / controls for each of its controls, as for the
    manager programme); controls are censored at their own start.
    For promotion only the time below the top job level counts (nobody above
    can be promoted). The
    naive row compares everyone who ever started the programme in the spell
    with everyone else over the whole spell, which counts the time before the
    start as treated (immortal time) and mixes in who chooses to enrol.

    A study opened from a cache (:func:`~alignment_research.open_clean`)
    computes each effect once and stores it beside the cached tables
    (:func:`~alignment_research.cache.stored_result`): the brief, the careers
    and levers notebooks and the claims scorecard read the same result.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> res = ar.estimate_development_effect(clean, "mentoring", outcome="retention", warn=False)
    >>> res.tidy()["method"].tolist()
    ['adjusted', 'naive']
    """
    if outcome not in ("promotion", "retention"):
        raise ModelError(f"The value for `outcome` must be 'promotion' or 'retention', but {outcome!r} was passed.")
    analysis = clean.analysis
    rows = analysis.careers if outcome == "promotion" else analysis.intervals
    if outcome == "promotion" and rows.empty:
        raise ModelError("Promotion needs the study's job history (a `job_history` table); it has none, so the "
                         "careers table is empty.")
    if outcome == "promotion" and "job_level" in rows:  # nobody at the top level can be promoted
        level = pd.to_numeric(rows["job_level"], errors="coerce")
        rows = rows[(level < level.max()).fillna(True).to_numpy(bool)]
    matching = _matched_trials(clean, program, propensity_formula, ratio=ratio, caliper=caliper, alpha=alpha)
    # a frame of each result's own: a column added to one result's trials reaches no other result
    matched, balance = matching.matched.copy(deep=False), matching.balance.copy()
    caveats: list[str] = list(matching.caveats)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        follow = _followup(matched, rows)
        if follow["event"].sum() == 0:
            raise ModelError(f"No {outcome} among the matched employees after their trial dates; cannot estimate.")
        adjusted = fit_cox(follow, "treated", start="start", stop="stop", event="event", cluster="employee_id",
                           weights="weight", alpha=alpha)
        ever = _ever_started(rows, f"program_{program}")
        naive = fit_cox(ever, "ever", start="start", stop="stop", event="event", cluster="employee_id", alpha=alpha)
    caveats += [str(w.message) for w in caught if issubclass(w.category, StatisticalWarning)]
    term = f"program_{program}"
    table = pd.concat([adjusted.tidy().assign(method="adjusted"), naive.tidy().assign(method="naive")],
                      ignore_index=True).assign(term=term, outcome=outcome)
    row = table.iloc[0]
    rare = follow["event"].mean() < 0.15
    ev = e_value(row["exp_estimate"], row["exp_conf_low"], row["exp_conf_high"], measure="HR", rare=bool(rare))
    n_enrolled = matching.n_enrolled
    n_treated = int(((matched["treated"] == 1) & (matched["weight"] > 0)).sum())
    controls = matched[(matched["treated"] == 0) & (matched["weight"] > 0)]
    smd_after = float(balance["smd_after"].abs().max()) if len(balance) else np.nan
    if smd_after > 0.1:
        caveats.append(f"A covariate is still imbalanced after matching (largest |SMD| {smd_after:.2f} > 0.1).")
    if n_enrolled and (n_enrolled - n_treated) / n_enrolled > 0.1:
        caveats.append(f"{n_enrolled - n_treated} of {n_enrolled} starters found no control within the caliper "
                       "(poor overlap); the estimate is for the matched starters.")
    caveats = list(dict.fromkeys(caveats))
    if warn:
        for text in caveats:
            warnings.warn(text, StatisticalWarning, stacklevel=2)
    stats = pd.DataFrame([dict(
        program=program, outcome=outcome, n_trials=matching.n_trials, n_enrolled=n_enrolled,
        n_treated=n_treated, n_unmatched=n_enrolled - n_treated, n_controls=int(controls["employee_id"].nunique()),
        n_control_rows=len(controls), ess_controls=effective_sample_size(controls["weight"]),
        max_abs_smd_before=float(balance["smd_before"].abs().max()) if len(balance) else np.nan,
        max_abs_smd_after=smd_after, caliper=caliper, ratio=ratio, n=int(follow["employee_id"].nunique()),
        events=int(follow["event"].sum()), cov_type="cluster: employee_id",
        e_value=float(ev["e_value"].iloc[0]), e_value_ci=float(ev["e_value_ci"].iloc[0]),
        caveats=" ".join(caveats) if caveats else "none",
    )])
    words = "promotion" if outcome == "promotion" else "voluntary exit"
    return ProgramEffectResult(
        name=f"{program}: {outcome}", table=table, stats=stats, model=adjusted.model,
        extras=dict(trials=matched, balance=balance, propensity_model=matching.propensity_model.copy(),
                    outcome_data=follow, e_value=ev),
        caveats=caveats, alpha=alpha, outcome=words, scale="ratio", measure="hazard ratio", time_unit="days",
    )


def _ever_started(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """``rows`` with ``ever``: 1 on every row of a spell in which the programme was ever started (uses the future)."""
    ever = rows.groupby(["employee_id", "spell"], sort=False)[column].transform("max").to_numpy()
    return rows.assign(ever=ever.astype(int))


#: Fewest promotions (or exits) an effect needs before the brief states it.
MIN_EVENTS = 10

#: The model of exits around a change of manager, in notebook 07 and the brief alike.
MANAGER_CHANGE_FORMULA = ("recent_manager_change + alignment_cascade + engagement + manager_program + manager_rating"
                          " + C(job_level)")


def describe_careers(clean: CleanStudy, *, programs=("mentoring", "coaching"), min_group_size: int | None = None,
                     alpha: float = 0.05) -> Section:
    """Say in plain words what mentoring, coaching and a change of manager do to careers, for the brief.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study.
    programs : sequence of str, default ("mentoring", "coaching")
        The employee programmes to report.
    min_group_size : int, optional
        The study's minimum reporting size (``config.min_group_size`` by default).
    alpha : float, default 0.05
        Intervals at level ``1 - alpha``.

    Returns
    -------
    Section
        Titled "Careers: mentoring, coaching and a change of manager" (shown only
        when it has a body): one sentence per programme with enough people (the matched promotion
        effect, :func:`estimate_development_effect`) and one on the months after a
        change of manager; empty when the study has no job history. A programme is
        left out when fewer than ``min_group_size`` people started it in the window
        or fewer than ``MIN_EVENTS`` promotions followed; the change of manager
        when fewer than ``min_group_size`` people had one.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=400, seed=1))
    >>> text = ar.describe_careers(clean)
    >>> "promotion" in text
    True
    """
    title = "Careers: mentoring, coaching and a change of manager"
    analysis = clean.analysis
    if analysis.careers.empty:
        return Section(title, Sentence(""))
    k = clean.config.min_group_size if min_group_size is None else min_group_size
    sentences = []
    for program in programs:
        if f"program_{program}" not in analysis.intervals:
            continue
        try:
            result = estimate_development_effect(clean, program, outcome="promotion", alpha=alpha, warn=False)
        except ModelError:
            continue
        g = result.glance().iloc[0]
        if g["n_treated"] < k or g["events"] < MIN_EVENTS:
            continue
        sentences.append(describe_effect(
            result, "adjusted", comparison=f"for employees who started {program}, compared with matched colleagues "
                                           "who had not"))
    iv = analysis.intervals
    changed = iv.loc[iv["recent_manager_change"] == 1, "employee_id"].nunique() if "recent_manager_change" in iv else 0
    if changed >= k and iv["event"].sum() >= MIN_EVENTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)
            change = fit_cox(iv, MANAGER_CHANGE_FORMULA, start="start", stop="stop", event="event",
                             cluster="manager_id", alpha=alpha)
        sentences.append(describe_effect(change, "recent_manager_change",
                                         comparison="in the six months after a change of manager"))
    return Section(title, paragraph(*sentences) if sentences else Sentence(""))
