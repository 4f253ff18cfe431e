"""The essay's claims, each tested on the study's own data, in one table with a defensible verdict."""

from __future__ import annotations

import html
import re
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as st

from ._docs import fill_doc
from ._estimators import holm_adjust
from .cache import stored_result
from .development import estimate_development_effect
from .engagement import fit_mediation, fit_mixed, fit_ols, fit_within
from .errors import DataContractError, ModelError, StatisticalWarning
from .report import Section, Sentence, format_estimate
from .measures import trailing_event_rate
from .results import tidy_table
from .retention import fit_cox
from .study import CleanStudy

__all__ = [
    "claims_scorecard",
    "claim_verdicts",
    "difficulty_curve",
    "checkin_regularity",
    "leader_feedback_panel",
    "plot_scorecard",
    "describe_practices",
    "PRACTICES_TITLE",
    "SCORECARD_COLUMNS",
    "VERDICTS",
    "SUPPORTED",
    "CONTRADICTED",
    "INCONCLUSIVE",
    "NOT_TESTABLE",
    "VERDICT_COLOURS",
    "MIN_VARIATION",
    "FEW_CLUSTERS",
]

#: Verdict: the family-adjusted interval excludes the null in the claimed direction.
SUPPORTED = "supported"
#: Verdict: the family-adjusted interval excludes the null in the opposite direction.
CONTRADICTED = "contradicted"
#: Verdict: the family-adjusted interval contains the null (``mde`` says what the study could detect).
INCONCLUSIVE = "inconclusive"
#: Verdict: the table or column the claim needs is absent, or its exposure barely varies (``needs`` says which).
NOT_TESTABLE = "not testable"
#: The four verdicts, in the order a reader meets them.
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
#: Colour of each verdict in :func:`plot_scorecard` (colour-blind safe: blue, vermilion, grey, light grey).
VERDICT_COLOURS = {SUPPORTED: "#0072B2", CONTRADICTED: "#D55E00", INCONCLUSIVE: "#7f7f7f", NOT_TESTABLE: "#c7c7c7"}
#: An exposure is testable only with at least this many rows on each side (0/1) or this many distinct people.
MIN_VARIATION = 10
#: Fewer clusters than this (managers, goal owners) is named as a threat to the verdict.
FEW_CLUSTERS = 30

#: The columns of :func:`claims_scorecard`, in order.
SCORECARD_COLUMNS = [
    "claim", "exposure", "outcome", "design", "estimate", "conf_low", "conf_high", "scale", "p_value", "p_holm",
    "adj_conf_low", "adj_conf_high", "verdict", "mde", "needs", "threats", "detail", "direction", "std_error",
    "ratio", "n", "claim_no",
]

_KINDS_360 = ("360_review", "360")
_KIND_RECOGNITION = "recognition"
_KIND_CHECK_IN = "check_in"
_OWN_PROGRAMS = ("coaching", "mentoring", "training")
#: Claims on survey answers cluster their errors by the manager in force and by the respondent (:func:`_survey_row`).
_SURVEY_CLUSTERS = ("manager_id", "employee_id")
_SURVEY_DESIGN = "mixed model, manager random intercept, errors clustered by manager and respondent"


# =========================================================================== verdict rules
def claim_verdicts(rows: pd.DataFrame, *, alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """Apply the scorecard's verdict rules to estimated claims.

    The family is the testable rows (those with a finite ``estimate`` and a
    positive ``std_error``); ``m`` is their number. For each of them:

    - ``p_holm``: Holm's step-down adjustment of ``p_value`` across the family;
    - ``adj_conf_low, adj_conf_high``: ``estimate -/+ z(1 - alpha / (2 m)) * std_error``,
      Bonferroni-width simultaneous intervals: all ``m`` of them cover their
      true values together with probability at least ``1 - alpha``, whatever
      the dependence between the estimates. Holm has no interval of its own
      that keeps the family-wise level, so the intervals are Bonferroni's; a
      row whose Bonferroni interval excludes the null is also rejected by Holm;
    - ``verdict``: ``supported`` when the adjusted interval lies wholly on the
      claimed side of the null (``direction`` +1: above, -1: below);
      ``contradicted`` when it lies wholly on the other side; ``inconclusive``
      otherwise;
    - ``mde`` (inconclusive rows): ``(z(1 - alpha / (2 m)) + z(power)) * std_error``,
      the smallest true effect in the claimed direction this study would
      detect with probability ``power`` at the family's level.

    Rows that are not testable keep ``verdict = "not testable"`` and their ``needs``.
    Ratio rows (``ratio`` True: ``estimate`` is a log hazard ratio) are
    returned on the ratio scale (estimate, intervals and ``mde``
    exponentiated; the null is 1).

    Parameters
    ----------
    rows : DataFrame
        One row per claim x outcome: ``estimate`` (log scale for ratios),
        ``std_error``, ``direction`` (+1 or -1), ``ratio`` (bool), optionally
        ``p_value`` (else the Wald p-value) and ``needs``.
    alpha : float, default 0.05
        Family-wise error rate; unadjusted intervals are at level ``1 - alpha``.
    power : float, default 0.8
        Power at which ``mde`` is stated.

    Returns
    -------
    DataFrame
        ``rows`` with ``estimate, conf_low, conf_high`` on the readable scale and
        ``p_value, p_holm, adj_conf_low, adj_conf_high, verdict, mde`` added;
        ``std_error`` stays on the model scale.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"estimate": [0.5, -0.5, 0.05], "std_error": [0.1, 0.1, 0.1],
    ...                      "direction": [1, 1, 1], "ratio": [False, False, False]})
    >>> claim_verdicts(rows)["verdict"].tolist()
    ['supported', 'contradicted', 'inconclusive']
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ModelError(f"alpha and power must lie between 0 and 1, not alpha={alpha!r}, power={power!r}")
    out = rows.copy().reset_index(drop=True)
    for column, default in (("needs", ""), ("ratio", False), ("p_value", np.nan)):
        if column not in out:
            out[column] = default
    est = pd.to_numeric(out["estimate"], errors="coerce").to_numpy(float)
    se = pd.to_numeric(out["std_error"], errors="coerce").to_numpy(float)
    direction = np.sign(pd.to_numeric(out["direction"], errors="coerce").to_numpy(float))
    if np.any((direction == 0) | np.isnan(direction)):
        raise ModelError("every claim needs a direction of +1 (the claim says higher) or -1 (lower)")
    testable = np.isfinite(est) & np.isfinite(se) & (se > 0)
    m = int(testable.sum())
    z = st.norm.ppf(1 - alpha / 2)
    z_adj = st.norm.ppf(1 - alpha / (2 * max(m, 1)))
    p = pd.to_numeric(out["p_value"], errors="coerce").to_numpy(float)
    p = np.where(np.isnan(p), 2 * st.norm.sf(np.abs(est / np.where(se > 0, se, np.nan))), p)
    p_holm = np.full(len(out), np.nan)
    p_holm[testable] = holm_adjust(p[testable])
    lo, hi = est - z * se, est + z * se
    adj_lo, adj_hi = est - z_adj * se, est + z_adj * se
    verdict = np.full(len(out), NOT_TESTABLE, dtype=object)
    claimed = np.where(direction > 0, adj_lo > 0, adj_hi < 0)
    opposite = np.where(direction > 0, adj_hi < 0, adj_lo > 0)
    verdict[testable] = INCONCLUSIVE
    verdict[testable & claimed] = SUPPORTED
    verdict[testable & opposite] = CONTRADICTED
    mde = np.where(verdict == INCONCLUSIVE, direction * (z_adj + st.norm.ppf(power)) * se, np.nan)
    ratio = out["ratio"].fillna(False).astype(bool).to_numpy()
    readable = {"estimate": est, "conf_low": lo, "conf_high": hi, "adj_conf_low": adj_lo, "adj_conf_high": adj_hi,
                "mde": mde}
    for column, values in readable.items():
        with np.errstate(over="ignore"):
            out[column] = np.where(ratio, np.exp(values), values)
        out.loc[~testable, column] = np.nan
    out["p_value"] = np.where(testable, p, np.nan)
    out["p_holm"] = p_holm
    out["verdict"] = verdict
    out.loc[testable, "needs"] = ""
    return out


# =========================================================================== claim estimators (building blocks)
@fill_doc
def difficulty_curve(data: pd.DataFrame, *, outcome: str = "attainment", exposure: str = "difficulty",
                     cluster: str | None = "owner_id", alpha: float = 0.05) -> pd.DataFrame:
    """Test a monotone relation first, then an inverted U, and give the turning point with an interval.

    Two OLS fits with cluster-robust errors: ``outcome ~ x`` (the monotone
    test: its slope) and ``outcome ~ x + x^2`` (an inverted U has a negative
    square term). The turning point ``-b1 / (2 b2)`` gets a delta-method
    standard error and interval from the quadratic fit's covariance.

    Parameters
    ----------
    data : DataFrame
        One row per goal (or employee x cycle) with ``outcome``, ``exposure``
        and ``cluster``.
    outcome : str, default "attainment"
        The outcome column.
    exposure : str, default "difficulty"
        Goal difficulty (1-5 as rated) or stretch.
    {cluster}
    {alpha}

    Returns
    -------
    DataFrame
        Three rows, ``term`` = ``linear`` (slope of the linear fit),
        ``quadratic`` (square term of the quadratic fit) and ``turning_point``
        (in units of ``exposure``), with ``estimate, std_error, statistic,
        p_value, conf_low, conf_high``; then ``n``, ``x_min``, ``x_max`` and
        ``inside`` (the turning point lies within the observed range).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> x = np.repeat([1.0, 2, 3, 4, 5], 20)
    >>> y = 1 + 0.6 * x - 0.1 * x ** 2 + np.tile(np.linspace(-0.01, 0.01, 20), 5)
    >>> t = difficulty_curve(pd.DataFrame({"x": x, "y": y, "g": np.arange(100) % 25}),
    ...                      outcome="y", exposure="x", cluster="g")
    >>> round(float(t.set_index("term").loc["turning_point", "estimate"]), 3)
    3.0
    """
    cols = [outcome, exposure] + ([cluster] if cluster else [])
    used = data[cols].dropna().copy()
    used[exposure] = used[exposure].astype(float)
    used[outcome] = used[outcome].astype(float)
    x = used[exposure]
    used["_x2"] = x ** 2
    linear = fit_ols(used, f"{outcome} ~ {exposure}", cluster=cluster, alpha=alpha).tidy()
    quad_fit = fit_ols(used, f"{outcome} ~ {exposure} + _x2", cluster=cluster, alpha=alpha)
    quad = quad_fit.tidy()
    b = np.asarray(quad_fit.params, float)
    cov = np.asarray(quad_fit.cov_params, float)
    b1, b2 = b[1], b[2]
    turn = -b1 / (2 * b2)
    grad = np.array([0.0, -1 / (2 * b2), b1 / (2 * b2 ** 2)])
    se_turn = float(np.sqrt(max(float(grad @ cov @ grad), 0.0)))
    lin = linear.set_index("term").loc[exposure]
    sq = quad.set_index("term").loc["_x2"]
    table = tidy_table(["linear", "quadratic", "turning_point"], [lin["estimate"], sq["estimate"], turn],
                       [lin["std_error"], sq["std_error"], se_turn], alpha=alpha,
                       p_value=[lin["p_value"], sq["p_value"], np.nan])
    table["n"] = len(used)
    table["x_min"], table["x_max"] = float(x.min()), float(x.max())
    table["inside"] = bool(x.min() < turn < x.max())
    return table


def checkin_regularity(feedback: pd.DataFrame, cycles, *, kind: str = _KIND_CHECK_IN) -> pd.DataFrame:
    """Measure how regular each employee's check-ins are in each review cycle.

    Parameters
    ----------
    feedback : DataFrame
        Clean feedback: ``employee_id, date, kind``.
    cycles : list of Cycle or DataFrame
        The study's review cycles (``config.cycles``), or a frame with
        ``name, start, end``.
    kind : str, default "check_in"
        The feedback kind that counts as a check-in.

    Returns
    -------
    DataFrame
        One row per employee and cycle with at least three check-ins:
        ``employee_id, cycle, n_checkins, mean_gap_days`` (mean days between
        consecutive check-ins) and ``gap_cv`` (their standard deviation over
        their mean: 0 is perfectly regular).

    Examples
    --------
    >>> import pandas as pd
    >>> fb = pd.DataFrame({"employee_id": ["a"] * 4, "kind": "check_in",
    ...                    "date": pd.to_datetime(["2022-01-01", "2022-01-31", "2022-03-02", "2022-04-01"])})
    >>> cyc = pd.DataFrame({"name": ["2022"], "start": ["2022-01-01"], "end": ["2022-12-31"]})
    >>> checkin_regularity(fb, cyc)[["n_checkins", "mean_gap_days", "gap_cv"]].values.tolist()
    [[4.0, 30.0, 0.0]]
    """
    frame = _cycle_frame(cycles)
    checks = feedback.loc[feedback["kind"].astype("string") == kind, ["employee_id", "date"]].dropna()
    checks = checks.assign(cycle=_cycle_of(checks["date"], frame)).dropna(subset=["cycle"])
    checks = checks.sort_values(["employee_id", "cycle", "date"], kind="stable")
    same = checks.duplicated(["employee_id", "cycle"])
    gaps = checks["date"].diff().dt.days.where(same)
    grouped = checks.assign(gap=gaps).groupby(["employee_id", "cycle"], sort=True, observed=True)
    out = grouped.agg(n_checkins=("date", "size"), mean_gap_days=("gap", "mean"), sd_gap=("gap", "std"))
    out = out[out["n_checkins"] >= 3].reset_index()
    out["gap_cv"] = out["sd_gap"] / out["mean_gap_days"]
    out["n_checkins"] = out["n_checkins"].astype(float)
    return out[["employee_id", "cycle", "n_checkins", "mean_gap_days", "gap_cv"]]


def _cycle_frame(cycles) -> pd.DataFrame:
    if isinstance(cycles, pd.DataFrame):
        frame = cycles[["name", "start", "end"]].copy()
    else:
        frame = pd.DataFrame([{"name": c.name, "start": c.start, "end": c.end} for c in cycles],
                             columns=["name", "start", "end"])
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    frame["name"] = frame["name"].astype(str)
    return frame.sort_values("start", kind="stable").reset_index(drop=True)


def _cycle_of(dates: pd.Series, frame: pd.DataFrame) -> pd.Series:
    """The name of the cycle each date falls in (missing outside every cycle)."""
    d = pd.to_datetime(dates).to_numpy("datetime64[ns]")
    pos = np.searchsorted(frame["start"].to_numpy("datetime64[ns]"), d, side="right") - 1
    safe = np.clip(pos, 0, max(len(frame) - 1, 0))
    inside = (pos >= 0) & (len(frame) > 0)
    if len(frame):
        inside &= d <= frame["end"].to_numpy("datetime64[ns]")[safe]
    names = frame["name"].to_numpy(object)[safe] if len(frame) else np.full(len(d), None, dtype=object)
    return pd.Series(np.where(inside, names, None), index=dates.index, dtype="string")


# =========================================================================== the scorecard
@dataclass
class _Context:
    """What every claim estimator reads: the study, its analysis tables and the options."""

    clean: CleanStudy
    feedback_months: float
    recognition_months: float
    kinds: tuple | None
    n_boot: int
    seed: int
    cache: dict = field(default_factory=dict)

    def table(self, name: str) -> pd.DataFrame | None:
        """A clean table, or None when the study lacks it (or it is empty)."""
        t = self.clean.tables.get(name)
        return t if t is not None and len(t) else None

    def has(self, name: str, *columns: str) -> bool:
        t = self.table(name)
        return t is not None and all(c in t.columns and t[c].notna().any() for c in columns)

    @property
    def survey_panel(self) -> pd.DataFrame | None:
        if "survey_panel" not in self.cache:
            self.cache["survey_panel"] = self.clean.analysis.survey_panel if self.table("surveys") is not None else None
        return self.cache["survey_panel"]

    @property
    def intervals(self) -> pd.DataFrame:
        if "intervals" not in self.cache:
            iv = self.clean.analysis.intervals
            person = self.clean.analysis.person[["employee_id", "spell", "hire_date"]]
            iv = iv.merge(person, on=["employee_id", "spell"], how="left", validate="many_to_one")
            iv["date"] = iv["hire_date"] + pd.to_timedelta(iv["start"], unit="D")
            self.cache["intervals"] = iv
        return self.cache["intervals"]

    @property
    def cycles(self) -> pd.DataFrame | None:
        if "cycles" not in self.cache:
            self.cache["cycles"] = self.clean.analysis.cycles if self.table("goals") is not None or \
                self.table("reviews") is not None else None
        return self.cache["cycles"]

    @property
    def window_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.clean.config.window.start)


@dataclass(frozen=True)
class _Claim:
    """What a row says before it is estimated."""

    claim: str
    exposure: str
    outcome: str
    design: str
    direction: int
    scale: str = "difference"

    def row(self, **values) -> dict:
        base = {"claim": self.claim, "exposure": self.exposure, "outcome": self.outcome, "design": self.design,
                "direction": self.direction, "scale": self.scale, "estimate": np.nan, "std_error": np.nan,
                "p_value": np.nan, "ratio": False, "n": np.nan, "needs": "", "threats": "", "detail": ""}
        base.update(values)
        return base

    def untestable(self, needs: str, threats: str = "") -> dict:
        return self.row(needs=needs, threats=threats)

    def from_result(self, result, term: str, *, threats=(), detail: str = "", clusters: str = "managers") -> dict:
        """The row of ``term`` in a fitted result, with the design's threats and the data's."""
        tidy = result.tidy().set_index("term")
        if term not in tidy.index:
            return self.untestable(f"variation in {self.exposure} (term {term} not estimated)")
        r = tidy.loc[term]
        stats = result.glance().iloc[0]
        n = stats.get("n", np.nan)
        n_groups = stats.get("n_clusters", stats.get("n_groups", np.nan))
        extra = list(threats)
        if pd.notna(n_groups) and n_groups < FEW_CLUSTERS:
            extra.append(f"few {clusters} (n = {int(n_groups)})")
        extra += list(result.caveats[:1])
        return self.row(estimate=float(r["estimate"]), std_error=float(r["std_error"]),
                        p_value=float(r["p_value"]), ratio=result.scale == "ratio", n=n,
                        threats="; ".join(extra), detail=detail)


def _varies(values: pd.Series, people: pd.Series | None = None) -> bool:
    """At least MIN_VARIATION rows on each side of a 0/1 exposure, or MIN_VARIATION distinct values/people."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.nunique() < 2:
        return False
    if set(v.unique()) <= {0, 1}:
        return min((v == 1).sum(), (v == 0).sum()) >= MIN_VARIATION
    n = people.loc[v.index].nunique() if people is not None else len(v)
    return n >= MIN_VARIATION and v.std() > 0


def _adjusters(data: pd.DataFrame) -> list[str]:
    """Baseline adjustment used by every observational claim: job level when the study has it."""
    if "job_level" in data and data["job_level"].dropna().nunique() > 1:
        return ["C(job_level)"]
    return []


def _fit_safely(claim: _Claim, fit, *args, **kwargs):
    """Fit, or say what the claim needs when the data cannot carry the model (never fails the scorecard)."""
    try:
        return fit(*args, **kwargs), None
    except (ModelError, DataContractError, np.linalg.LinAlgError) as err:  # a singular design: too little variation
        return None, claim.untestable(f"{claim.exposure} with enough variation ({str(err).splitlines()[0][:120]})")


def _survey_row(ctx, claim, data, outcome, exposure, *, threats=(), detail="", extra_terms=()):
    """A claim on survey answers: a manager random intercept, with errors clustered by manager and respondent.

    A person answers several waves and their exposure (a check-in rate, an own
    programme, perceived alignment) persists, so their answers are correlated
    beyond what the manager's intercept models. The estimate stays the mixed
    model's (efficient when teams differ); its standard error is the sandwich
    clustered two ways, by the manager in force and by the person (Cameron,
    Gelbach and Miller 2011), which holds also for people who changed manager.
    """
    if data is None or outcome not in data or exposure not in data:
        return claim.untestable(f"surveys.{outcome}_<n> and {exposure}")
    adjust = _adjusters(data)
    cols = [outcome, exposure, "manager_id", "employee_id", *extra_terms, *(["job_level"] if adjust else [])]
    used = data.dropna(subset=cols)
    if not _varies(used[exposure], used["employee_id"]):
        return claim.untestable(f"variation in {exposure}")
    rhs = " + ".join([exposure, *extra_terms, *adjust])
    res, failed = _fit_safely(claim, fit_mixed, used, f"{outcome} ~ {rhs}", groups="manager_id",
                              cluster=list(_SURVEY_CLUSTERS), alpha=0.05)
    if failed:
        return failed
    row = claim.from_result(res, exposure, threats=threats, detail=detail)
    if np.isfinite(row["std_error"]):
        return row
    # the two-way variance is a sum and difference of one-way ones, and can (rarely, with few people per manager)
    # be negative: the manager's clusters alone then, said in the row
    res, failed = _fit_safely(claim, fit_mixed, used, f"{outcome} ~ {rhs}", groups="manager_id",
                              cluster="manager_id", alpha=0.05)
    detail = "; ".join(filter(None, [detail, "errors clustered by manager only (the two-way variance was not "
                                             "positive)"]))
    return failed or claim.from_result(res, exposure, threats=threats, detail=detail)


def _cox_row(ctx, claim, data, exposure, *, threats=(), detail="", extra_terms=()):
    adjust = _adjusters(data)
    cols = [exposure, "manager_id", *extra_terms, *(["job_level"] if adjust else [])]
    used = data.dropna(subset=cols)
    if not _varies(used[exposure], used["employee_id"]):
        return claim.untestable(f"variation in {exposure}")
    rhs = " + ".join([exposure, *extra_terms, *adjust])
    res, failed = _fit_safely(claim, fit_cox, used, rhs, start="start", stop="stop", event="event",
                              cluster="manager_id")
    return failed or claim.from_result(res, exposure, threats=threats, detail=detail)


def _ols_row(claim, data, outcome, exposure, *, cluster, threats=(), detail="", clusters="managers",
             extra_terms=()):
    cols = [outcome, exposure, cluster, *extra_terms]
    used = data.dropna(subset=cols)
    people = used["employee_id"] if "employee_id" in used else used.get("owner_id")
    if not _varies(used[exposure], people):
        return claim.untestable(f"variation in {exposure}")
    rhs = " + ".join([exposure, *extra_terms])
    res, failed = _fit_safely(claim, fit_ols, used, f"{outcome} ~ {rhs}", cluster=cluster)
    return failed or claim.from_result(res, exposure, threats=threats, detail=detail, clusters=clusters)


def _feedback_kinds(ctx: _Context, *, wanted) -> pd.DataFrame | None:
    fb = ctx.table("feedback")
    if fb is None or "kind" not in fb:
        return None
    kind = fb["kind"].astype("string")
    rows = fb[kind.isin(list(wanted)).fillna(False).to_numpy()]
    return rows if len(rows) else None


# --------------------------------------------------------------------------- claim 1: continuous feedback
def _claim_feedback(ctx: _Context) -> list[dict]:
    months = ctx.feedback_months
    engage = _Claim("Continuous feedback raises engagement", f"feedback per month (last {months:g} months)",
                    "engagement", f"{_SURVEY_DESIGN}; lagged time-varying rate", +1,
                    "points (1-5) per feedback a month")
    retain = _Claim("Continuous feedback keeps people", f"feedback per month (last {months:g} months)",
                    "voluntary exit", "Cox, time-varying lagged rate, clustered by manager", -1,
                    "hazard ratio per feedback a month")
    kinds = _continuous_kinds(ctx)
    events = _feedback_kinds(ctx, wanted=kinds)
    if events is None:
        need = "feedback.kind (check_in or other feedback received)"
        return [engage.untestable(need), retain.untestable(need)]
    threats = ("selection into feedback: people who ask for feedback differ",
               "reverse causation: disengaged people may get fewer check-ins")
    full_from = ctx.window_start + pd.DateOffset(days=int(round(months * 365.25 / 12)))
    detail = f"kinds: {', '.join(kinds)}; measured from {full_from.date()} (a full look-back inside the window)"
    rows = []
    panel = ctx.survey_panel
    if panel is None:
        rows.append(engage.untestable("surveys.engagement_<n>"))
    else:
        panel = panel[panel["survey_date"] >= full_from].copy()
        panel["feedback_per_month"] = trailing_event_rate(events, panel, months=months, at_date="survey_date")
        rows.append(_survey_row(ctx, engage, panel, "engagement", "feedback_per_month", threats=threats,
                                detail=detail))
    iv, others, _ = _feedback_intervals(ctx, "feedback_per_month")
    rows.append(_cox_row(ctx, retain, iv, "feedback_per_month", threats=threats, extra_terms=others,
                         detail=detail + "; rate at the start of each interval" + _adjusted_for(others)))
    return rows


def _continuous_kinds(ctx: _Context) -> tuple:
    """The feedback kinds claim 1 counts: ``kinds`` if given, else every kind but 360 reviews and recognition."""
    fb = ctx.table("feedback")
    if ctx.kinds is not None or fb is None or "kind" not in fb:
        return ctx.kinds or ()
    present = fb["kind"].dropna().astype(str).unique()
    return tuple(sorted(k for k in present if k not in (*_KINDS_360, _KIND_RECOGNITION)))


def _feedback_intervals(ctx: _Context, exposure: str) -> tuple[pd.DataFrame, tuple, pd.Timestamp]:
    """Intervals with the feedback rate (claim 1) and the recognition count (claim 3) at each start.

    Both are measured when the study has their events, and each retention
    row adjusts for the other: both follow how much feedback a person
    attracts, so a row leaving the other out would carry part of its effect.
    Intervals start once every look-back measured is full inside the window.
    Returns the intervals, the other exposure (empty when absent) and the
    first date kept.
    """
    checkins = _feedback_kinds(ctx, wanted=_continuous_kinds(ctx))
    recognitions = _feedback_kinds(ctx, wanted=(_KIND_RECOGNITION,))
    months = {"feedback_per_month": ctx.feedback_months, "recognitions": ctx.recognition_months}
    measured = {"feedback_per_month": checkins, "recognitions": recognitions}
    look_back = max(months[name] for name, events in measured.items() if events is not None or name == exposure)
    full_from = ctx.window_start + pd.DateOffset(days=int(round(look_back * 365.25 / 12)))
    iv = ctx.intervals
    iv = iv[iv["date"] >= full_from].copy()
    if checkins is not None:
        iv["feedback_per_month"] = trailing_event_rate(checkins, iv, months=ctx.feedback_months)
    if recognitions is not None:
        iv["recognitions"] = trailing_event_rate(recognitions, iv, months=ctx.recognition_months) \
            * ctx.recognition_months
    others = tuple(name for name in measured if name != exposure and name in iv)
    return iv, others, full_from


def _adjusted_for(others: tuple) -> str:
    words = {"feedback_per_month": "the feedback rate", "recognitions": "the recognition count"}
    return "; adjusted for " + " and ".join(words[o] for o in others) if others else ""


# --------------------------------------------------------------------------- claim 2: 360 for leaders
def leader_feedback_panel(clean: CleanStudy, *, kinds=_KINDS_360, survey_panel=None) -> pd.DataFrame | None:
    """Survey responses timed against the respondent's manager's first 360 review, for an event study.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study (needs ``surveys`` and ``feedback`` with 360 reviews
        received by managers).
    kinds : sequence of str, default ("360_review", "360")
        Feedback kinds that count as a 360 review.
    survey_panel : DataFrame, optional
        The responses to time (a subset, or outcomes of your own); the
        study's ``survey_panel`` by default.

    Returns
    -------
    DataFrame or None
        The survey panel (responses with a manager) plus ``first_360`` (the
        manager's first 360 review seen in the data), ``after_360`` (1 from
        that date), ``lead_360`` (1 in the year before it), ``treated`` (1 when
        the manager had a 360 and a survey of the team after it),
        ``rel_wave`` (survey wave minus the first wave with a team response
        after the review, which may straddle the review date; 0 for
        never-reviewed managers, whose teams are the comparison)
        and ``matched_set`` (1: one stack), ready for :func:`event_study`.
        Responses of managers reviewed only after their team's last survey are
        left out (neither treated nor a clean comparison). None when the
        study lacks the surveys or the 360 reviews.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> panel = ar.leader_feedback_panel(clean)
    >>> es = ar.event_study(panel, outcome="engagement", window=2)
    >>> es["rel_wave"].tolist()
    [-2, -1, 0, 1, 2]
    """
    surveys, feedback = clean.tables.get("surveys"), clean.tables.get("feedback")
    if surveys is None or not len(surveys) or feedback is None or "kind" not in feedback:
        return None
    events = feedback[feedback["kind"].astype("string").isin(list(kinds)).fillna(False).to_numpy()]
    if not len(events):
        return None
    first = events.groupby(events["employee_id"].astype(str))["date"].min()
    panel = clean.analysis.survey_panel if survey_panel is None else survey_panel
    panel = panel.dropna(subset=["manager_id"]).copy()
    panel["first_360"] = pd.to_datetime(panel["manager_id"].astype(str).map(first))
    panel["after_360"] = (panel["survey_date"] >= panel["first_360"]).astype(int)
    panel["lead_360"] = ((panel["survey_date"] < panel["first_360"])
                         & (panel["survey_date"] >= panel["first_360"] - pd.Timedelta(days=365))).astype(int)
    first_wave = panel["wave"].where(panel["after_360"] == 1).groupby(panel["manager_id"]).transform("min")
    reviewed = panel["first_360"].notna()
    panel = panel[~reviewed | first_wave.notna()].copy()
    first_wave = first_wave.loc[panel.index]
    panel["treated"] = panel["first_360"].notna().astype(int)
    panel["rel_wave"] = (panel["wave"] - first_wave).fillna(0).astype(int)
    panel["matched_set"] = 1
    return panel


def _leader_panel(ctx: _Context) -> tuple[pd.DataFrame | None, int]:
    """The leader panel and the number of managers seen both before and after their first 360."""
    if ctx.survey_panel is None:
        return None, 0
    panel = leader_feedback_panel(ctx.clean, survey_panel=ctx.survey_panel)
    if panel is None:
        return None, 0
    switches = panel.groupby("manager_id", observed=True)["after_360"].agg(["min", "max"])
    n_switch = int(((switches["min"] == 0) & (switches["max"] == 1)).sum())
    return panel, n_switch


def _claim_360(ctx: _Context) -> list[dict]:
    rows = []
    panel, n_switch = _leader_panel(ctx)
    for outcome, words in (("engagement", "team engagement"), ("leadership", "perceived leadership")):
        claim = _Claim("360 feedback for leaders lifts their teams", "manager's first 360 review", words,
                       "within manager before/after, wave fixed effects, clustered by manager and respondent", +1,
                       "points (1-5)")
        if panel is None:
            rows.append(claim.untestable("feedback.kind (360_review received by managers) and surveys"))
            continue
        if outcome not in panel:
            rows.append(claim.untestable(f"surveys.{outcome}_<n>"))
            continue
        if n_switch < 2:
            rows.append(claim.untestable("feedback.kind (360_review) for managers surveyed before and after"))
            continue
        used = panel.dropna(subset=[outcome])
        threats = ["staggered timing: two-way fixed effects mix early and late adopters",
                   "team composition changes around the review",
                   "the first 360 seen may not be the manager's first (none before the window is known)"]
        res, failed = _fit_safely(claim, fit_within, used, f"{outcome} ~ after_360 + C(wave)", unit="manager_id",
                                  cluster=list(_SURVEY_CLUSTERS))
        if failed:
            rows.append(failed)
            continue
        detail = f"managers switching from before to after: {n_switch}"
        lead, _ = _fit_safely(claim, fit_within, used, f"{outcome} ~ lead_360 + after_360 + C(wave)",
                              unit="manager_id", cluster=list(_SURVEY_CLUSTERS))
        if lead is not None and "lead_360" in set(lead.tidy()["term"]):
            pre = lead.tidy().set_index("term").loc["lead_360"]
            detail += f"; pre-trend (year before) {pre['estimate']:.3f} (p = {pre['p_value']:.2g})"
            if pre["p_value"] < 0.05:
                threats.insert(0, "pre-trend: teams already differed in the year before the review")
        row = claim.from_result(res, "after_360", threats=threats, detail=detail, clusters="managers with 360")
        if n_switch < FEW_CLUSTERS:
            row["threats"] += f"; few managers with 360 (n = {n_switch})"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- claim 3: recognition
def _claim_recognition(ctx: _Context) -> list[dict]:
    months = ctx.recognition_months
    claim = _Claim("Recognition keeps people", f"recognitions in the last {months:g} months", "voluntary exit",
                   "Cox, time-varying count in a trailing window, clustered by manager", -1,
                   "hazard ratio per recognition")
    events = _feedback_kinds(ctx, wanted=(_KIND_RECOGNITION,))
    if events is None:
        return [claim.untestable("feedback.kind (recognition)")]
    iv, others, full_from = _feedback_intervals(ctx, "recognitions")
    threats = ("recognition goes to strong performers (confounding by performance)",)
    return [_cox_row(ctx, claim, iv, "recognitions", threats=threats, extra_terms=others,
                     detail=f"count at the start of each interval, measured from {full_from.date()}"
                     + _adjusted_for(others))]


# --------------------------------------------------------------------------- claim 4: own development
def _claim_development(ctx: _Context) -> list[dict]:
    programs = ctx.table("programs")
    present = set(programs["program"].dropna().astype(str)) if programs is not None else set()
    rows = []
    for program in _OWN_PROGRAMS:
        column = f"program_{program}"
        retain = _Claim(f"{program.capitalize()} keeps people", f"own {program}", "voluntary exit",
                        "matched new starters vs not-yet (sequential trials), Cox", -1, "hazard ratio")
        engage = _Claim(f"{program.capitalize()} raises engagement", f"own {program}", "engagement",
                        f"{_SURVEY_DESIGN}; time-varying exposure (not matched)", +1, "points (1-5)")
        rate = _Claim(f"{program.capitalize()} improves performance", f"own {program}", "rating",
                      f"{_SURVEY_DESIGN}; time-varying exposure (not matched)", +1, "rating points")
        if program not in present:
            rows += [c.untestable(f"programs.program ({program})") for c in (retain, engage, rate)]
            continue
        try:
            res = estimate_development_effect(ctx.clean, program, outcome="retention", warn=False)
            adjusted = res.tidy()
            adjusted = adjusted[adjusted["method"] == "adjusted"]
            stats = res.glance().iloc[0]
            r = adjusted.iloc[0]
            threats = ["selection into programmes on unobserved traits (matched on observed ones only)"]
            if stats.get("n_treated", 0) < FEW_CLUSTERS:
                threats.append(f"few starters (n = {int(stats.get('n_treated', 0))})")
            rows.append(retain.row(estimate=float(r["estimate"]), std_error=float(r["std_error"]),
                                   p_value=float(r["p_value"]), ratio=True, n=stats.get("n", np.nan),
                                   threats="; ".join(threats + list(res.caveats[:1])),
                                   detail=f"E-value {float(stats.get('e_value', np.nan)):.2f}"))
        except (ModelError, DataContractError) as err:
            rows.append(retain.untestable(f"programs.start_date for enough {program} starters ({str(err)[:80]})"))
        threats = ("selection into programmes: who enrols differs",)
        panel = ctx.survey_panel
        rows.append(_survey_row(ctx, engage, panel, "engagement", column, threats=threats))
        rows.append(_survey_row(ctx, rate, panel, "rating", column,
                                threats=threats + ("the rating known on the survey date may predate the programme",)))
    return rows


# --------------------------------------------------------------------------- claim 5: goal difficulty
def _goal_difficulty(goals: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """Rated difficulty (clean: 1-5), or the stretch cleaning derives from target and baseline."""
    if "difficulty" in goals and goals["difficulty"].notna().any():
        return goals["difficulty"].astype("float64"), "difficulty (1-5)"
    if "stretch" in goals and goals["stretch"].notna().any():
        return goals["stretch"].astype("float64"), "stretch ((target - baseline) / |baseline|)"
    return None, ""


def _claim_difficulty(ctx: _Context) -> list[dict]:
    goals = ctx.table("goals")
    difficulty, words = _goal_difficulty(goals) if goals is not None else (None, "")
    label = words or "goal difficulty"
    att = _Claim("Realistic yet challenging targets (inverted U)", label, "goal attainment",
                 "OLS, linear then quadratic, clustered by owner", -1, "square term (attainment)")
    rat = _Claim("Realistic yet challenging targets (inverted U)", label, "rating",
                 "OLS on the cycle's mean difficulty, linear then quadratic, clustered by manager", -1,
                 "square term (rating points)")
    if difficulty is None:
        need = "goals.difficulty (or goals.target with goals.baseline)"
        return [att.untestable(need), rat.untestable(need)]
    rows = []
    frame = goals.assign(_difficulty=difficulty)
    rows.append(_curve_row(att, frame, "attainment", cluster="owner_id", clusters="goal owners"))
    cycles = ctx.cycles
    mean = "goal_difficulty" if words.startswith("difficulty") else "goal_stretch"  # the cycle's mean (tables.py)
    if cycles is None or "rating" not in cycles:
        rows.append(rat.untestable("reviews.rating"))
    else:
        rows.append(_curve_row(rat, cycles.assign(_difficulty=cycles[mean]), "rating", cluster="manager_id",
                               clusters="managers"))
    return rows


def _curve_row(claim: _Claim, data: pd.DataFrame, outcome: str, *, cluster: str, clusters: str) -> dict:
    if outcome not in data:
        return claim.untestable(f"goals.{outcome}")
    used = data.dropna(subset=[outcome, "_difficulty", cluster])
    if used["_difficulty"].nunique() < 3 or len(used) < 3 * MIN_VARIATION:
        return claim.untestable("goals.difficulty with at least three distinct values")
    try:
        curve = difficulty_curve(used, outcome=outcome, exposure="_difficulty", cluster=cluster).set_index("term")
    except (ModelError, DataContractError) as err:
        return claim.untestable(f"goals.difficulty with enough variation ({str(err)[:80]})")
    lin, sq, tp = curve.loc["linear"], curve.loc["quadratic"], curve.loc["turning_point"]
    detail = (f"linear slope {lin['estimate']:.3g} (p = {lin['p_value']:.3g}); turning point {tp['estimate']:.2f} "
              f"({tp['conf_low']:.2f} to {tp['conf_high']:.2f})")
    threats = ["hard goals may be given to strong performers"]
    if not bool(curve["inside"].iloc[0]):
        threats.append("turning point outside the observed range: a monotone relation, not an inverted U")
    n_clusters = used[cluster].nunique()
    if n_clusters < FEW_CLUSTERS:
        threats.append(f"few {clusters} (n = {n_clusters})")
    return claim.row(estimate=float(sq["estimate"]), std_error=float(sq["std_error"]), p_value=float(sq["p_value"]),
                     n=len(used), threats="; ".join(threats), detail=detail)


# --------------------------------------------------------------------------- claim 6: collaborative goal-setting
def _claim_set_with(ctx: _Context) -> list[dict]:
    att = _Claim("Goals set together are met more often", "goal set jointly", "goal attainment",
                 "OLS, clustered by owner", +1, "attainment (1.0 = target)")
    eng = _Claim("Goals set together build buy-in", "share of goals set jointly", "engagement",
                 _SURVEY_DESIGN, +1, "points (1-5) from none to all")
    if not ctx.has("goals", "set_with"):
        return [att.untestable("goals.set_with"), eng.untestable("goals.set_with")]
    goals = ctx.table("goals")
    joint = goals["set_with"].eq("jointly")  # clean: employee, manager or jointly (study.yaml set_with_map)
    goals = goals.assign(jointly=joint.astype(float).where(goals["set_with"].notna()))
    threats = ("who sets goals jointly is not random (managers and roles differ)",)
    rows = [_ols_row(att, goals, "attainment", "jointly", cluster="owner_id", threats=threats,
                     clusters="goal owners") if "attainment" in goals else att.untestable("goals.attainment")]
    panel = ctx.survey_panel
    if panel is None or not ctx.clean.config.cycles:
        rows.append(eng.untestable("surveys.engagement_<n> and study.yaml cycles"))
        return rows
    share = goals.groupby([goals["owner_id"].astype(str), goals["cycle"].astype(str)])["jointly"].mean()
    share.index.names = ["employee_id", "cycle"]
    frame = _cycle_frame(ctx.clean.config.cycles)
    panel = panel.assign(employee_id=panel["employee_id"].astype(str),
                         cycle=_cycle_of(panel["survey_date"], frame).astype(object))
    panel = panel.merge(share.rename("share_jointly").reset_index(), on=["employee_id", "cycle"], how="left")
    rows.append(_survey_row(ctx, eng, panel, "engagement", "share_jointly", threats=threats))
    return rows


# --------------------------------------------------------------------------- claim 7: review cadence
def _claim_cadence(ctx: _Context) -> list[dict]:
    gap = _Claim("Regular check-ins lift attainment", "mean weeks between check-ins", "attainment",
                 "OLS on employee x cycle, both regularity measures, clustered by manager", -1,
                 "attainment per week of gap")
    cv = _Claim("Regular check-ins lift attainment", "irregularity of check-ins (CV of gaps)", "attainment",
                "OLS on employee x cycle, both regularity measures, clustered by manager", -1,
                "attainment per unit of CV")
    rev = _Claim("Mid-cycle goal revisions lift attainment", "goal revised mid-cycle", "goal attainment",
                 "OLS, clustered by owner", +1, "attainment (1.0 = target)")
    rows = []
    cycles = ctx.cycles
    checks = _feedback_kinds(ctx, wanted=(_KIND_CHECK_IN,))
    if checks is None or cycles is None or "attainment" not in cycles or not ctx.clean.config.cycles:
        need = "feedback.kind (check_in) and reviews.target_attainment or goals.attainment"
        rows += [gap.untestable(need), cv.untestable(need)]
    else:
        regular = checkin_regularity(checks, ctx.clean.config.cycles)
        merged = cycles.assign(employee_id=cycles["employee_id"].astype(str), cycle=cycles["cycle"].astype(str))
        regular = regular.assign(employee_id=regular["employee_id"].astype(str),
                                 mean_gap_weeks=regular["mean_gap_days"] / 7)
        merged = merged.merge(regular, on=["employee_id", "cycle"], how="inner")
        threats = ("regular check-ins may mark engaged managers and teams",
                   "people who leave mid-cycle have fewer check-ins")
        rows.append(_ols_row(gap, merged, "attainment", "mean_gap_weeks", cluster="manager_id", threats=threats,
                             extra_terms=("gap_cv",)))
        rows.append(_ols_row(cv, merged, "attainment", "gap_cv", cluster="manager_id", threats=threats,
                             extra_terms=("mean_gap_weeks",)))
    goals = ctx.table("goals")
    if not ctx.has("goals", "revised_date") or "attainment" not in goals:
        rows.append(rev.untestable("goals.revised_date"))
        return rows
    # cleaning sets a revised_date outside the goal's own cycle missing: every clean one is mid-cycle
    goals = goals.assign(revised=goals["revised_date"].notna().astype(float))
    rows.append(_ols_row(rev, goals, "attainment", "revised", cluster="owner_id", clusters="goal owners",
                         threats=("goals are revised when plans fail or targets were wrong",)))
    return rows


# --------------------------------------------------------------------------- claim 8: communication
def _claim_communication(ctx: _Context) -> list[dict]:
    reach = _Claim("Cascaded goals reach employees' sense of alignment", "cascade alignment", "perceived alignment",
                   _SURVEY_DESIGN, +1, "points (1-5) from 0 to 1 cascade")
    eng = [_Claim("Alignment raises engagement", x, "engagement",
                  f"{_SURVEY_DESIGN}; both alignment measures", +1, "points (1-5)")
           for x in ("cascade alignment", "perceived alignment")]
    ret = [_Claim("Alignment keeps people", x, "voluntary exit",
                  "Cox with both alignment measures, time-varying, clustered by manager", -1, "hazard ratio")
           for x in ("cascade alignment", "perceived alignment")]
    med = _Claim("Leader development works through perceived alignment", "manager programme (indirect via alignment)",
                 "engagement", "mediation (OLS paths, cluster bootstrap)", +1, "points (1-5)")
    panel = ctx.survey_panel
    surveyed = panel is not None and "alignment" in panel and "engagement" in panel
    need_survey = "surveys.alignment_<n> and surveys.engagement_<n>"
    if not surveyed:
        rows = [c.untestable(need_survey) for c in (reach, *eng)]
    elif not ctx.has("goals", "parent_goal_id"):
        rows = [c.untestable("goals.parent_goal_id") for c in (reach, eng[0])]
    else:
        common = ("perceived alignment is self-reported on the same survey (common-method bias)",)
        rows = [_survey_row(ctx, reach, panel, "alignment", "alignment_cascade",
                            threats=("cascade and perception may both follow team culture",)),
                _survey_row(ctx, eng[0], panel, "engagement", "alignment_cascade", threats=common,
                            extra_terms=("alignment",))]
    if surveyed:
        rows.append(_survey_row(ctx, eng[1], panel, "engagement", "alignment",
                                threats=("same survey, same day: common-method bias",),
                                extra_terms=("alignment_cascade",) if "alignment_cascade" in panel else ()))
    iv = ctx.intervals
    cox_terms = [t for t in ("alignment_cascade", "alignment") if t in iv and iv[t].notna().any()]
    for claim, term in zip(ret, ("alignment_cascade", "alignment")):
        if term not in cox_terms:
            rows.append(claim.untestable("goals.parent_goal_id" if term == "alignment_cascade" else
                                         "surveys.alignment_<n>"))
            continue
        others = tuple(t for t in cox_terms if t != term)
        rows.append(_cox_row(ctx, claim, iv, term, extra_terms=others,
                             threats=("alignment is known only at survey and cycle dates (carried forward)",)))
    rows.append(_mediation_row(ctx, med, panel) if surveyed else med.untestable(need_survey))
    return rows


def _mediation_row(ctx: _Context, claim: _Claim, panel: pd.DataFrame) -> dict:
    cols = ["manager_program", "alignment", "engagement", "manager_id"]
    if "manager_program" not in panel:
        return claim.untestable("programs.program (leadership_development)")
    used = panel.dropna(subset=cols)
    if not _varies(used["manager_program"], used["employee_id"]):
        return claim.untestable("programs.program (leadership_development) for managers")
    res, failed = _fit_safely(claim, fit_mediation, used, treatment="manager_program", mediator="alignment",
                              outcome="engagement", cluster="manager_id", n_boot=ctx.n_boot, seed=ctx.seed)
    if failed:
        return failed
    share = res.tidy().set_index("term")
    detail = ""
    if "share_mediated" in share.index:
        detail = f"share mediated {share.loc['share_mediated', 'estimate']:.2f}"
    return claim.from_result(res, "indirect", detail=detail,
                             threats=("mediator and outcome measured together (sequential ignorability)",))


# --------------------------------------------------------------------------- claim 9: alignment -> performance
def _claim_performance(ctx: _Context) -> list[dict]:
    out = []
    cycles = ctx.cycles
    for outcome, words, scale, source in (
            ("attainment", "target attainment", "attainment (1.0 = target) from 0 to 1", "target_attainment"),
            ("rating", "review rating", "rating points from 0 to 1", "rating")):
        claim = _Claim("Aligned goals lift performance", "cascade alignment", words,
                       "OLS on employee x cycle, clustered by manager", +1, scale)
        if cycles is None or outcome not in cycles or not ctx.has("goals", "parent_goal_id"):
            out.append(claim.untestable(f"goals.parent_goal_id and reviews.{source}"))
            continue
        out.append(_ols_row(claim, cycles, outcome, "alignment_cascade", cluster="manager_id",
                            threats=("targets of aligned goals may be set differently",)))
    return out


#: The claim estimators, in the essay's order.
_CLAIMS = (_claim_feedback, _claim_360, _claim_recognition, _claim_development, _claim_difficulty, _claim_set_with,
           _claim_cadence, _claim_communication, _claim_performance)


@stored_result("claims_scorecard")  # computed once per cached study: the brief and the levers notebook share it
def claims_scorecard(clean: CleanStudy, *, alpha: float = 0.05, power: float = 0.8, feedback_months: float = 3,
                     recognition_months: float = 6, kinds=None, n_boot: int = 500, seed: int = 0,
                     timings: dict | None = None) -> pd.DataFrame:
    """Test each of the essay's claims on the study and give every one a verdict, in one table.

    Nine claims, one row per claim x outcome: (1) continuous feedback ->
    engagement and retention; (2) 360 feedback for leaders -> their team's
    engagement and perceived leadership; (3) recognition -> retention;
    (4) the employee's own coaching, mentoring and training -> retention,
    engagement and rating; (5) goal difficulty (inverted U) -> attainment and
    rating; (6) goals set jointly -> attainment and engagement; (7) regular
    check-ins and mid-cycle goal revisions -> attainment; (8) cascade and
    perceived alignment -> each other, engagement and retention, and the
    mediation manager programme -> perceived alignment -> engagement;
    (9) cascade alignment -> attainment and rating.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study. Only ``employees`` is required: a claim whose
        table or column is missing is listed as not testable, never an error.
    alpha : float, default 0.05
        Family-wise error rate of the verdicts (and level of the unadjusted intervals).
    power : float, default 0.8
        Power at which the minimum detectable effect ``mde`` is stated.
    feedback_months : float, default 3
        Look-back of the feedback rate (claim 1): feedback in the months before
        each survey date or interval start, never after.
    recognition_months : float, default 6
        Window of the recognition count (claim 3).
    kinds : sequence of str, optional
        Feedback kinds that count as continuous feedback (claim 1); by default
        every kind in the data except 360 reviews and recognition.
    n_boot : int, default 500
        Cluster-bootstrap draws of the mediation (claim 8).
    seed : int, default 0
        Seed of the bootstrap.
    timings : dict, optional
        When given, filled with the seconds each claim took, keyed
        ``"1 feedback"``, ``"2 360"``, ... (for benchmarks).

    Returns
    -------
    DataFrame
        One row per claim x outcome, columns ``SCORECARD_COLUMNS``: ``claim,
        exposure, outcome, design``; ``estimate, conf_low, conf_high`` on the
        readable scale named in ``scale`` (hazard ratio, points on the 1-5
        scale, ...); ``p_value`` and ``p_holm`` (Holm across the testable
        rows); ``adj_conf_low, adj_conf_high`` (simultaneous, Bonferroni
        width); ``verdict``; ``mde`` (inconclusive rows, same scale);
        ``needs`` (``table.column``, not-testable rows); ``threats``;
        ``detail`` (turning point, kinds counted, ...); ``direction`` (+1: the
        claim says the estimate is above the null); ``std_error`` (model
        scale, log for ratios); ``ratio``; ``n``; ``claim_no`` (1-9, the
        essay's order).

    Raises
    ------
    ModelError
        When ``feedback_months`` or ``recognition_months`` is not positive.
        A claim the data cannot carry never raises: its row is not testable.

    Notes
    -----
    The verdict rules are those of :func:`claim_verdicts`: nothing is
    supported unless its family-adjusted interval excludes the null in the
    claimed direction. Bonferroni-width intervals are used because they are
    simultaneous for any dependence between the rows (several share a
    model or a sample) and agree with Holm: a supported row is significant
    after Holm's adjustment too. Every design is observational; the
    within-manager before/after of claim 2 (with a one-year pre-trend check
    in ``detail``) and the emulated, matched trials of claim 4's retention
    rows come closest to a causal contrast. Time-varying exposures (feedback
    and recognition counts) are measured at the start of each interval or on
    the survey date from events strictly before it: lagged, no look-ahead.
    ``threats`` names the main reasons a verdict could be wrong.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> card = ar.claims_scorecard(clean, n_boot=50)
    >>> sorted(set(card["verdict"]) - set(ar.scorecard.VERDICTS))
    []
    """
    for name, months in (("feedback_months", feedback_months), ("recognition_months", recognition_months)):
        if not months > 0:
            raise ModelError(f"{name} must be a positive number of months, not {months!r}")
    if isinstance(kinds, str):
        kinds = [kinds]
    ctx = _Context(clean, feedback_months=feedback_months, recognition_months=recognition_months,
                   kinds=tuple(kinds) if kinds is not None else None, n_boot=n_boot, seed=seed)
    with warnings.catch_warnings():
        # every fit's StatisticalWarning is also in its caveats, and the first one reaches the row's threats
        warnings.simplefilter("ignore", StatisticalWarning)
        rows = []
        for number, estimate_claims in enumerate(_CLAIMS, start=1):
            started = time.perf_counter()
            rows += [{**row, "claim_no": number} for row in estimate_claims(ctx)]
            if timings is not None:
                timings[f"{number} {estimate_claims.__name__.removeprefix('_claim_')}"] = time.perf_counter() - started
    card = claim_verdicts(pd.DataFrame(rows), alpha=alpha, power=power)
    return card[SCORECARD_COLUMNS]


# =========================================================================== plot
def plot_scorecard(data: pd.DataFrame, *, ax=None, **kwargs):
    """Draw the scorecard as a forest plot of evidence in the claimed direction, coloured by verdict.

    Rows are on different scales (hazard ratios, points), so each is drawn as
    its signed z: ``direction * estimate / std_error`` on the model scale,
    with the family-adjusted interval (half-width ``z(1 - alpha / (2 m))``).
    Right of 0 is evidence for the claim; an interval wholly right of 0 is
    supported, wholly left contradicted. Not-testable rows are listed at 0
    without an interval.

    Parameters
    ----------
    data : DataFrame
        The output of :func:`claims_scorecard`.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure otherwise.
    **kwargs
        Passed to ``Axes.errorbar`` for the intervals.

    Returns
    -------
    matplotlib.axes.Axes
        One error bar per testable row (in ``ax.containers``), one grey marker
        per not-testable row, a vertical line at 0.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"claim": ["a", "b"], "outcome": ["x", "y"], "estimate": [0.5, 0.1],
    ...                      "std_error": [0.1, 0.1], "direction": [1, 1], "ratio": [False, False]})
    >>> ax = plot_scorecard(claim_verdicts(rows))
    >>> len(ax.containers)
    2
    """
    from .plots import axes_for  # deferred: matplotlib is heavy and only needed to draw

    ax = axes_for(ax, figsize=(8, 0.35 * len(data) + 1.5))
    table = _plot_table(data)
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("capsize", 2)
    for verdict in VERDICTS:
        part = table[table["verdict"] == verdict]
        if not len(part):
            continue
        if verdict == NOT_TESTABLE:
            ax.plot(part["z"], part["y"], marker="x", linestyle="none", color=VERDICT_COLOURS[verdict],
                    label=verdict)
            continue
        ax.errorbar(part["z"], part["y"], xerr=part["half"], color=VERDICT_COLOURS[verdict], label=verdict,
                    **kwargs)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(table["y"], table["label"])
    ax.invert_yaxis()
    ax.set_xlabel("Evidence in the claimed direction (z, family-adjusted interval)")
    ax.legend(loc="lower right", fontsize="small")
    return ax


def _plot_table(data: pd.DataFrame) -> pd.DataFrame:
    """What :func:`plot_scorecard` draws: per row the signed z, the adjusted half-width and the label."""
    ratio = data["ratio"].fillna(False).astype(bool).to_numpy()
    est = _model_scale(data["estimate"], ratio)
    se = data["std_error"].to_numpy(float)
    direction = np.sign(data["direction"].to_numpy(float))
    testable = data["verdict"].to_numpy() != NOT_TESTABLE
    lo = _model_scale(data["adj_conf_low"], ratio)
    half = np.where(testable, (est - lo) / se, np.nan)
    z = np.where(testable, direction * est / se, 0.0)
    cause = data["exposure"] if "exposure" in data else data["claim"]
    label = cause.astype(str) + " -> " + data["outcome"].astype(str)
    return pd.DataFrame({"y": np.arange(len(data)), "z": z, "half": half, "verdict": data["verdict"].to_numpy(),
                         "label": label.to_numpy()})


def _model_scale(values: pd.Series, ratio: np.ndarray) -> np.ndarray:
    """Back to the model's scale: the log of ratio rows, differences as they are."""
    out = values.to_numpy(float).copy()
    out[ratio] = np.log(out[ratio])
    return out


# =========================================================================== the brief: the scorecard in plain words
#: Title of the brief's section written by :func:`describe_practices`.
PRACTICES_TITLE = "What the evidence says about each practice"

#: The verdicts as a leader reads them.
_VERDICT_WORDS = {SUPPORTED: "the evidence supports it", CONTRADICTED: "the evidence points the other way",
                  INCONCLUSIVE: "the evidence cannot tell yet", NOT_TESTABLE: "not testable with this study's data"}

#: What a claim needs (``needs`` names ``table.column``), in words; longest first when replaced.
_NEEDS_WORDS = {
    "feedback.kind": "feedback records with their kind",
    "surveys.engagement_<n>": "engagement survey scores",
    "surveys.leadership_<n>": "survey scores of perceived leadership",
    "surveys.alignment_<n>": "survey scores of perceived alignment",
    "surveys.rating_<n>": "review ratings",
    "programs.program": "programme records",
    "programs.start_date": "programme start dates",
    "goals.difficulty": "a difficulty rating of each goal",
    "goals.target": "each goal's target",
    "goals.baseline": "its baseline",
    "goals.set_with": "who set each goal (the employee, the manager or both)",
    "goals.revised_date": "the date a goal was revised",
    "goals.parent_goal_id": "links from goals to the manager's goals",
    "goals.attainment": "goal attainment",
    "reviews.target_attainment": "target attainment in reviews",
    "reviews.rating": "review ratings",
    "study.yaml cycles": "the review cycles in the study settings",
    "surveys": "team surveys",
}

#: The study's own measures as words, where a ``needs`` or ``threats`` text quotes a column.
_COLUMN_WORDS = {"feedback_per_month": "feedback per month", "alignment_cascade": "cascade alignment",
                 "_difficulty": "goal difficulty", "mean_gap_weeks": "weeks between check-ins",
                 "gap_cv": "irregularity of check-ins", "share_jointly": "share of goals set jointly"}

_COUNT = re.compile(r"\(n = (\d+)\)")


class _Lines(Sentence):
    """Sentences shown one per line: a list in a notebook, one line each as text."""

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in str(self).splitlines() if line.strip())
        return f'<ul class="ar-findings">{items}</ul>' if items else ""


def _needs_in_words(needs: str) -> str:
    text = str(needs)
    for key in sorted(_NEEDS_WORDS, key=len, reverse=True):
        text = text.replace(key, _NEEDS_WORDS[key])
    for key, words in _COLUMN_WORDS.items():
        text = text.replace(key, words)
    text = re.sub(r"\s*\(([^()]{50,})\)", "", text)  # a model's own message: too technical for the brief
    text = re.sub(r"\bprogram_(\w+)", r"\1", text)
    return re.sub(r"(?<=\w)_(?=\w)", " ", text).replace("<n>", "").strip()


def _readable(row: pd.Series) -> dict:
    """How a row's numbers read: the measure's name, unit words, percent, and what 'no effect' is."""
    scale = str(row["scale"])
    if bool(row["ratio"]):
        per = scale.split("hazard ratio", 1)[1].strip() if "hazard ratio" in scale else ""
        return dict(lead="exit rate ratio", unit="", per=per, percent=False, digits=2)
    if scale.startswith("points (1-5)"):
        return dict(lead="", unit="points on the 1–5 scale", per=scale[len("points (1-5)"):].strip(),
                    percent=False, digits=2)
    if scale.startswith("rating points"):
        return dict(lead="", unit="rating points", per=scale[len("rating points"):].strip(), percent=False, digits=2)
    if scale.startswith("attainment"):
        rest = scale[len("attainment"):].replace("(1.0 = target)", "").strip()
        rest = rest.replace("unit of CV", "unit of irregularity (CV)")
        return dict(lead="", unit="", per=rest, percent=True, digits=1)
    if scale.startswith("square term"):
        return dict(lead="curvature", unit="", per="(below 0: an inverted U)", percent=False, digits=3)
    return dict(lead="", unit="", per="", percent=False, digits=2)


def _estimate_words(row: pd.Series, how: dict) -> str:
    scale = 100.0 if how["percent"] else 1.0  # attainment: percentage points of target
    unit = "percentage points of target attainment" if how["percent"] else how["unit"]
    text = format_estimate(row["estimate"] * scale, row["adj_conf_low"] * scale, row["adj_conf_high"] * scale,
                           unit=unit, digits=how["digits"], ci="95% CI, all claims together")
    return " ".join(part for part in (how["lead"], text, how["per"]) if part)


def _mde_words(row: pd.Series, how: dict) -> str:
    mde = float(row["mde"])
    if not np.isfinite(mde):
        return ""
    scale = 100.0 if how["percent"] else 1.0
    number = f"{mde * scale:.{how['digits']}f}".replace("-", "−")
    if bool(row["ratio"]):
        return f"this study could detect an exit rate ratio of {number} or further from 1"
    unit = "percentage points of target attainment" if how["percent"] else how["unit"]
    words = " ".join(part for part in (number, unit, how["per"]) if part)
    return f"this study could detect an effect of {words} in the claimed direction"


def _main_threat(threats: str) -> str:
    """The first threat that is a reason, not a count of people."""
    for part in str(threats).split("; "):
        if part and not _COUNT.search(part) and not part.startswith("few "):
            for key, words in _COLUMN_WORDS.items():
                part = part.replace(key, words)
            return part
    return ""


def _exposed_people(clean: CleanStudy, row: pd.Series) -> float:
    """People in the exposed group of a 0/1 exposure (NaN for exposures measured on everyone)."""
    counts = [int(k) for k in _COUNT.findall(str(row["threats"]))]
    found = re.search(r"managers switching from before to after: (\d+)", str(row["detail"]))
    if found:
        counts.append(int(found.group(1)))
    programs = clean.tables.get("programs")
    if programs is not None and not {"program", "employee_id"} <= set(programs.columns):
        programs = None
    exposure = str(row["exposure"])
    if exposure.startswith("own ") and programs is not None:
        taken = programs["program"].astype("string") == exposure[4:]
        counts.append(int(programs.loc[taken.fillna(False).to_numpy(bool), "employee_id"].nunique()))
    if exposure.startswith("manager programme") and programs is not None:
        taken = programs["program"].astype("string").str.contains("leader", na=False)
        counts.append(int(programs.loc[taken.to_numpy(bool), "employee_id"].nunique()))
    goals = clean.tables.get("goals")
    if goals is not None and "owner_id" in goals:
        if "jointly" in exposure and "set_with" in goals:
            joint = goals["set_with"].astype("string").str.strip().str.lower().eq("jointly").fillna(False)
            counts.append(int(goals.loc[joint.to_numpy(bool), "owner_id"].nunique()))
        if exposure == "goal revised mid-cycle" and "revised_date" in goals:
            counts.append(int(goals.loc[goals["revised_date"].notna(), "owner_id"].nunique()))
    return float(min(counts)) if counts else np.nan


def _practice_line(row: pd.Series, exposed: float, min_group_size: int) -> str:
    head = f"{row['claim']} [{row['exposure']} → {row['outcome']}]: {_VERDICT_WORDS[row['verdict']]}"
    if row["verdict"] == NOT_TESTABLE:
        needs = _needs_in_words(row["needs"])
        return f"{head}; it needs {needs}." if needs else f"{head}."
    if np.isfinite(exposed) and exposed < min_group_size:
        return f"{head}. Too few people in this comparison to show its numbers (fewer than {min_group_size})."
    how = _readable(row)
    text = f"{head}. Estimate: {_estimate_words(row, how)}"
    if row["verdict"] in (SUPPORTED, CONTRADICTED):
        threat = _main_threat(row["threats"])
        return f"{text}. Main threat: {threat}." if threat else f"{text}."
    mde = _mde_words(row, how)
    return f"{text}; {mde}." if mde else f"{text}."


def describe_practices(clean: CleanStudy, *, card: pd.DataFrame | None = None, min_group_size: int | None = None,
                       **options) -> Section:
    """Say in plain words, for the brief, what the study's evidence says about each practice of the essay.

    One line per claim and outcome of :func:`claims_scorecard`: the practice
    (the claim, its exposure and outcome), the verdict in words, and

    - supported or contradicted: the estimate with its family-adjusted
      interval in readable units (:func:`~alignment_research.report.format_estimate`)
      and the main threat to the verdict;
    - inconclusive: the estimate with its interval and the smallest effect
      this study could detect (80% power at the family's level);
    - not testable: which data would make it testable.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study.
    card : DataFrame, optional
        Its :func:`claims_scorecard`, when already computed (computed here otherwise).
    min_group_size : int, optional
        The study's minimum reporting size (``config.min_group_size`` by default).
        A 0/1 practice (a programme, a 360 review, goals set jointly or
        revised) taken by fewer people than this keeps its verdict but shows
        no numbers; no count of people is ever written.
    **options
        Passed to :func:`claims_scorecard` when ``card`` is not given.

    Returns
    -------
    Section
        Titled ``PRACTICES_TITLE``; its body lists one line per row of the
        scorecard, in the essay's order.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> section = ar.describe_practices(clean, n_boot=50)
    >>> section.title
    'What the evidence says about each practice'
    >>> len(str(section).splitlines()) == len(ar.claims_scorecard(clean, n_boot=50))
    True
    """
    if card is None:
        card = claims_scorecard(clean, **options)
    k = clean.config.min_group_size if min_group_size is None else int(min_group_size)
    lines = [_practice_line(row, _exposed_people(clean, row), k) for _, row in card.iterrows()]
    return Section(PRACTICES_TITLE, _Lines("\n".join(lines)))
