"""The performance dashboard: one panel per department and manager team, funnel plots against the organisation."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html as _html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from . import __version__
from .errors import ConfigError
from .history import HISTORY_COLUMNS, history_spans, manager_spans
from .privacy import group_sizes, size_gate, suppress_small_groups
from .retention import survival_at, survival_table
from .spells import numbered_spells

__all__ = ["Dashboard", "funnel_limits", "dashboard_data", "render_dashboard", "write_dashboard", "MEASURES"]

#: The four measures of every panel: key -> (title, axis label, how the group value is read).
MEASURES = {
    "alignment": ("Goal alignment", "Cascade alignment (share of goals linked to the manager's, 0–1)"),
    "engagement": ("Engagement", "Engagement (mean score, 1–5 scale)"),
    "feedback": ("Feedback cadence", "Feedback events per person per quarter"),
    "retention": ("12-month retention", "Still employed 12 months after hire (%)"),
}

#: The control limits of the funnel plots: (name suffix, coverage).
LIMITS = (("95", 0.95), ("998", 0.998))

#: The department named in the label of a team whose own department has no panel.
OTHER_DEPARTMENTS = "Other departments"

#: Days in the "12 months" of 12-month retention.
RETENTION_DAYS = 365

#: Study tables each measure needs (beyond ``employees``).
_NEEDS = {"alignment": "goals", "engagement": "surveys", "feedback": "feedback", "retention": None}


@dataclass(frozen=True)
class Dashboard:
    """The numbers behind ``dashboard.html``: groups shown, their series and their funnel-plot positions.

    No attribute holds an employee or manager id: groups are named by their
    department and a team number.

    Attributes
    ----------
    groups : pandas.DataFrame
        One row per panel: ``kind`` ("department" or "team"), ``label``,
        ``department``, ``n`` (distinct people).
    left_out : dict
        Number of groups of each kind left out because they have fewer than
        ``min_group_size`` people (or to protect such a group, see
        :func:`~alignment_research.privacy.size_gate`).
    series : pandas.DataFrame
        One row per group, measure and period (cycle, survey wave, quarter):
        ``kind, label, measure, period, value, conf_low, conf_high, n_people``;
        periods with fewer than ``min_group_size`` people are left out.
    summary : pandas.DataFrame
        One row per group and measure, the organisation first (``kind`` "organisation"):
        ``kind, label, measure, value, conf_low, conf_high, precision`` (people,
        effective people or person-quarters) and the funnel limits
        ``lower_95, upper_95, lower_998, upper_998`` around the organisation's value,
        with ``signal`` ("above", "below" or "") when outside the 99.8% limits.
    missing : dict
        Measure -> sentence saying which study table it lacks.
    min_group_size : int
        The study's minimum reporting group size.
    study : str
        The study's name.
    window : tuple of datetime.date
        The observation window.
    team_rule : str
        How people were placed in teams, in words for the page ("their latest
        manager" with a job history, "their manager when they joined" without).
    """

    groups: pd.DataFrame
    left_out: dict
    series: pd.DataFrame
    summary: pd.DataFrame
    missing: dict
    min_group_size: int
    study: str
    window: tuple = field(default=(None, None))
    team_rule: str = "their manager when they joined (or when the window opened)"


def funnel_limits(target: float, precision, *, kind: str = "mean", spread: float | None = None,
                  levels=(0.95, 0.998)) -> pd.DataFrame:
    """Compute funnel-plot control limits around the organisation's value.

    A group's value is compared with the organisation's ``target`` at the
    group's own precision: for a mean of ``n`` people the limits are
    ``target ± z · spread / √n``; for a proportion of ``n`` people
    ``target ± z · √(target (1 − target) / n)``; for a rate over an exposure of
    ``T`` (person-quarters) ``target ± z · √(φ · target / T)`` (normal
    approximation to the Poisson, or to the quasi-Poisson with dispersion
    ``φ = spread`` when people differ in their own rates). ``z`` is the two-sided normal quantile of each level
    (1.96 for 95%, 3.09 for 99.8%). A group outside the 99.8% limits differs by
    more than chance would plausibly make it (Spiegelhalter, *Funnel plots for
    comparing institutional performance*, Stat Med 2005).

    Parameters
    ----------
    target : float
        The organisation's value (mean, proportion or rate).
    precision : float or array-like
        People (``"mean"``, ``"proportion"``) or exposure (``"rate"``) of each group.
    kind : {"mean", "proportion", "rate"}, default "mean"
        The kind of measure.
    spread : float, optional
        For ``"mean"`` (required) the organisation's standard deviation between
        people; for ``"rate"`` the dispersion ``φ`` (1, the Poisson, by default).
    levels : sequence of float, default (0.95, 0.998)
        Coverage of each pair of limits.

    Returns
    -------
    pandas.DataFrame
        ``precision`` and, per level, ``lower_<l>`` and ``upper_<l>`` with ``<l>``
        the level's percentage without the point ("95", "998"); proportions
        stay within 0–1 and rates above 0.

    Raises
    ------
    ConfigError
        For an unknown ``kind``, or a ``"mean"`` without ``spread``.

    Examples
    --------
    >>> from alignment_research.dashboard import funnel_limits
    >>> funnel_limits(0.8, [100], kind="proportion").round(4).iloc[0].tolist()
    [100.0, 0.7216, 0.8784, 0.6764, 0.9236]
    """
    precision = np.asarray(precision, dtype=float).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "mean":
            if spread is None:
                raise ConfigError("funnel_limits(kind='mean') needs `spread`, the organisation's standard deviation.")
            se = spread / np.sqrt(precision)
        elif kind == "proportion":
            se = np.sqrt(target * (1.0 - target) / precision)
        elif kind == "rate":
            se = np.sqrt((1.0 if spread is None else spread) * target / precision)
        else:
            raise ConfigError(f"funnel_limits: kind must be 'mean', 'proportion' or 'rate', not {kind!r}.")
    out = pd.DataFrame({"precision": precision})
    for level in levels:
        z = stats.norm.ppf(0.5 + level / 2.0)
        name = f"{level * 100:g}".replace(".", "")
        lo, hi = target - z * se, target + z * se
        if kind == "proportion":
            lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
        elif kind == "rate":
            lo = np.clip(lo, 0.0, None)
        out[f"lower_{name}"] = lo
        out[f"upper_{name}"] = hi
    return out


# --------------------------------------------------------------------------- groups


def _team_numbers(teams: pd.DataFrame) -> pd.Series:
    """Number teams within each department, largest first (ties broken by a hash of the id, not the id's order)."""
    salt = teams["manager_id"].astype(str).map(lambda v: hashlib.sha256(f"team:{v}".encode()).hexdigest())
    order = teams.assign(_salt=salt.to_numpy()).sort_values(["department", "n", "_salt"], ascending=[True, False, True])
    numbers = order.groupby("department", sort=False).cumcount() + 1
    return numbers.reindex(teams.index)


def _latest_managers(person: pd.DataFrame, tables: dict) -> pd.DataFrame:
    """``person`` with ``manager_id`` the latest manager in force in each spell (the job history's, else at hire).

    The latest is the manager whose span started on or before the spell's last
    day observed (``exit``: its end, or the window's end), so a person who
    changed manager belongs to the new manager's team, and to one team only.
    """
    history = tables.get("job_history")
    if history is None or not len(history) or "manager_id" not in history.columns or "manager_id" not in person.columns:
        return person
    employees = tables["employees"]
    for column in ("termination_date", *HISTORY_COLUMNS):
        if column not in employees.columns:
            employees = employees.assign(**{column: pd.NA})
    spells = numbered_spells(employees).reset_index(drop=True)
    spans = manager_spans(history_spans(history, spells), spells)
    keys = pd.DataFrame({"employee_id": spells["employee_id"].astype("string").to_numpy(),
                         "spell": spells["spell"].to_numpy(np.int64), "sid": np.arange(len(spells))})
    last = pd.DataFrame({"employee_id": person["employee_id"].astype("string").to_numpy(),
                         "spell": person["spell"].to_numpy(np.int64),
                         "last_day": person["exit"].to_numpy(np.int64)}).merge(keys, on=["employee_id", "spell"])
    in_force = spans.merge(last[["sid", "last_day"]], on="sid")
    in_force = in_force.loc[in_force["t"] <= in_force["last_day"]].sort_values(["sid", "t"], kind="stable") \
        .drop_duplicates("sid", keep="last")
    latest = last.merge(in_force[["sid", "manager_id"]], on="sid").set_index(["employee_id", "spell"])["manager_id"]
    index = pd.MultiIndex.from_arrays([person["employee_id"].astype("string"), person["spell"].astype(np.int64)])
    found = latest.reindex(index).to_numpy(dtype=object)
    manager = np.where(pd.isna(found), person["manager_id"].to_numpy(dtype=object), found)
    return person.assign(manager_id=pd.array(manager, dtype="string"))


def _modal_department(person: pd.DataFrame) -> pd.Series:
    """Each manager's most common department among the reports' spells (on a tie the first name in sorted order,
    as ``Series.mode`` gives); managers whose reports have none are left out."""
    known = person.loc[person["manager_id"].notna() & person["department"].notna(), ["manager_id", "department"]]
    counts = known.groupby(["manager_id", "department"]).size().rename("n").reset_index()
    top = counts.sort_values(["manager_id", "n", "department"], ascending=[True, False, True], kind="stable")
    return top.drop_duplicates("manager_id").set_index("manager_id")["department"]


def _groups(person: pd.DataFrame, employees: pd.DataFrame, min_group_size: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Panels shown and each spell's panels: (groups, membership keyed by employee_id and spell, left out)."""
    left_out = {"department": 0, "team": 0}
    rows, members = [], []
    if "department" in person.columns and person["department"].notna().any():
        gate = size_gate(person, "department", min_group_size=min_group_size)
        shown = gate.loc[~gate["suppressed"]]
        left_out["department"] = int(gate["suppressed"].sum())
        for dept, n in zip(shown["department"], shown["n"]):
            rows.append({"kind": "department", "label": str(dept), "department": str(dept), "n": int(n)})
        labels = pd.DataFrame({"department": shown["department"].to_numpy(),
                               "label": shown["department"].astype(str).to_numpy()})
        members.append(person[["employee_id", "spell", "department"]].merge(labels, on="department")
                       [["employee_id", "spell", "label"]])
    if "manager_id" in person.columns and person["manager_id"].notna().any():
        sizes = group_sizes(person, "manager_id")
        dept_of = pd.Series(dtype=object)
        if "department" in employees.columns:  # the team's department is its manager's (latest record)
            dept_of = employees.dropna(subset=["department"]).drop_duplicates("employee_id", keep="last") \
                .set_index("employee_id")["department"]
        dept = sizes["manager_id"].map(dept_of)
        if "department" in person.columns:
            dept = dept.fillna(sizes["manager_id"].map(_modal_department(person))).fillna(OTHER_DEPARTMENTS)
        shown_depts = {r["department"] for r in rows}
        # a team of a department that is not shown is not named after it: the name alone may point at few people
        sizes["department"] = [d if d in shown_depts else OTHER_DEPARTMENTS for d in dept.astype(object)]
        # teams are siblings within their department: a hidden team cannot be recovered from the department's size
        gate = suppress_small_groups(sizes[["department", "manager_id", "n"]], count="n", min_group_size=min_group_size,
                                     group_cols=["department", "manager_id"], value_cols=[])
        left_out["team"] = int(gate["suppressed"].sum())
        shown = gate.loc[~gate["suppressed"]].copy()
        shown["n"] = shown["n"].astype(int)
        shown["number"] = _team_numbers(shown)
        shown["label"] = [f"{d} · team {k:02d}" for d, k in zip(shown["department"], shown["number"])]
        rows.extend({"kind": "team", "label": label, "department": d, "n": int(n)}
                    for label, d, n in zip(shown["label"], shown["department"], shown["n"]))
        members.append(person[["employee_id", "spell", "manager_id"]].merge(shown[["manager_id", "label"]], on="manager_id")
                       [["employee_id", "spell", "label"]])
    groups = pd.DataFrame(rows, columns=["kind", "label", "department", "n"])
    membership = (pd.concat(members, ignore_index=True) if members
                  else pd.DataFrame(columns=["employee_id", "spell", "label"]))
    membership = membership.merge(groups[["label", "kind"]], on="label", how="left")
    return groups, membership, left_out


# --------------------------------------------------------------------------- measures


def _has(table: pd.DataFrame | None, columns) -> bool:
    return table is not None and len(table) > 0 and all(c in table.columns for c in columns)


def _mean_rows(values: pd.DataFrame, keys: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """Mean of person-level values per key, with a t interval and the number of people."""
    grouped = values.groupby(keys, sort=True, observed=True)["value"]
    out = grouped.agg(value="mean", sd="std", n_people="size").reset_index()
    t = stats.t.ppf(1 - alpha / 2, np.maximum(out["n_people"] - 1, 1))
    half = t * out["sd"] / np.sqrt(out["n_people"])
    out["conf_low"], out["conf_high"] = out["value"] - half, out["value"] + half
    return out


def _scored(table: pd.DataFrame, column: str, period: str | None, membership: pd.DataFrame) -> pd.DataFrame:
    """Rows of a measure joined to the panels they belong to (the organisation is label "Organisation")."""
    keep = ["employee_id", "spell", column] + ([period] if period else [])
    rows = table[keep].dropna(subset=[column]).rename(columns={column: "value"})
    org = rows.assign(kind="organisation", label="Organisation")
    joined = rows.merge(membership, on=["employee_id", "spell"], how="inner")
    return pd.concat([org, joined], ignore_index=True)


def _mean_measure(table, column, period, membership, min_group_size):
    rows = _scored(table, column, period, membership)
    # one value per person and period (people, not rows), then per person overall
    per_period = rows.groupby(["kind", "label", period, "employee_id"], observed=True)["value"].mean().reset_index()
    series = _mean_rows(per_period, ["kind", "label", period])
    series = series.loc[series["n_people"] >= min_group_size].rename(columns={period: "period"})
    per_person = rows.groupby(["kind", "label", "employee_id"], observed=True)["value"].mean().reset_index()
    summary = _mean_rows(per_person, ["kind", "label"]).rename(columns={"n_people": "precision"})
    return series, summary


def _feedback_measure(rates, membership, min_group_size, alpha: float = 0.05):
    rows = _scored(rates.assign(_e=rates["n_events"]), "_e", "quarter", membership) \
        .merge(rates[["employee_id", "spell", "quarter", "exposure_days"]], on=["employee_id", "spell", "quarter"])
    z = stats.norm.ppf(1 - alpha / 2)
    # people differ in how often they get feedback: the quasi-Poisson dispersion between people of the organisation
    # (Pearson's chi-square over people / (people - 1), at least 1) widens every interval and limit of this measure
    org = rows.loc[rows["kind"] == "organisation"].groupby("employee_id")[["value", "exposure_days"]].sum()
    dispersion = _dispersion(org["value"].to_numpy(float), org["exposure_days"].to_numpy(float) / 90.0)

    def rate(keys):
        g = rows.groupby(keys, sort=True, observed=True)
        out = g.agg(events=("value", "sum"), exposure=("exposure_days", "sum"),
                    n_people=("employee_id", "nunique")).reset_index()
        quarters = out["exposure"] / 90.0
        out["value"] = out["events"] / quarters
        half = z * np.sqrt(dispersion * out["events"]) / quarters
        out["conf_low"], out["conf_high"] = np.clip(out["value"] - half, 0, None), out["value"] + half
        out["precision"] = quarters
        return out

    series = rate(["kind", "label", "quarter"])
    series = series.loc[series["n_people"] >= min_group_size].rename(columns={"quarter": "period"})
    return series, rate(["kind", "label"]).assign(sd=dispersion)


def _dispersion(events: np.ndarray, exposure: np.ndarray) -> float:
    """Quasi-Poisson dispersion of per-person counts around the common rate (Pearson chi-square / df), at least 1."""
    keep = exposure > 0
    events, exposure = events[keep], exposure[keep]
    if len(events) < 2 or events.sum() == 0:
        return 1.0
    expected = events.sum() / exposure.sum() * exposure
    return max(1.0, float(np.sum((events - expected) ** 2 / expected) / (len(events) - 1)))


def _retention_measure(person, membership, min_group_size: int = 1, alpha: float = 0.05):
    rows = pd.concat([person.assign(kind="organisation", label="Organisation"),
                      person.merge(membership, on=["employee_id", "spell"], how="inner")], ignore_index=True)
    curves = survival_table(rows, group="label", alpha=alpha)
    at = survival_at(curves, RETENTION_DAYS).rename(columns={"group": "label", "estimate": "value"})
    # Greenwood variance of S from the standard error of log S; effective number of people S(1 - S) / Var(S)
    # each group's standard error at its last time up to 12 months (0 for a group with none): one pass, not a
    # search of every curve per group (thousands of teams in a large study)
    last = curves.loc[curves["time"] <= RETENTION_DAYS].drop_duplicates("group", keep="last")
    se_log = at["label"].map(pd.Series(last["std_error"].to_numpy(float), index=last["group"].to_numpy()))
    se_log = np.where(at["label"].isin(last["group"]), se_log.to_numpy(float), 0.0)
    var = (at["value"].to_numpy() * se_log) ** 2
    # people whose 12-month outcome was seen: at risk before 12 months, and still there at 12 months or left (the
    # study's event) before; a figure resting on fewer than min_group_size of them is not shown (a Kaplan-Meier
    # curve whose risk set dwindles to one or two people can drop to 0% on a single exit)
    seen = rows.loc[(rows["entry"] < RETENTION_DAYS)
                    & ((rows["exit"] >= RETENTION_DAYS) | (rows["event"].astype(float) == 1))]
    people = seen.groupby("label")["employee_id"].nunique().reindex(at["label"]).fillna(0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(var > 0, at["value"] * (1 - at["value"]) / var, people)
    at["precision"] = n_eff
    at["kind"] = at["label"].map(rows.drop_duplicates("label").set_index("label")["kind"])
    at = at.loc[people >= max(min_group_size, 1)]
    return at[["kind", "label", "value", "conf_low", "conf_high", "precision"]]


def dashboard_data(clean, *, alpha: float = 0.05) -> Dashboard:
    """Compute every number of the performance dashboard from a cleaned study.

    Panels are the departments and the manager teams (the people whose
    latest manager in force, from the job history when the study has one,
    else at hire, is the same person; each person in one team) with at
    least ``min_group_size`` distinct people; others are left out and counted.
    Teams are named by department and a number ("Sales · team 03"), never by a
    manager's id or name. Each panel has four measures, each also compared with
    the organisation in a funnel plot (:func:`funnel_limits`):

    * goal alignment: the mean over people of their cascade alignment (mean
      over review cycles), by cycle;
    * engagement: the mean over people of their engagement score, by survey wave;
    * feedback cadence: feedback events per person per quarter (events over
      90-day periods employed), by quarter;
    * 12-month retention: the Kaplan–Meier probability of no exit of the
      study's event types within 365 days of hire (late entry for people
      hired before the window), with the Greenwood effective number of people
      ``S (1 − S) / Var(S)`` as its funnel precision; shown only when at least
      ``min_group_size`` people's 12-month outcome was seen (at risk before
      12 months and still there at 12 months, or left before).

    Every plotted point (a cycle, a wave, a quarter) covers at least
    ``min_group_size`` people; others are left out.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study (its ``analysis`` tables are used).
    alpha : float, default 0.05
        Confidence intervals are ``1 - alpha``.

    Returns
    -------
    Dashboard
        Groups, series, summary with funnel limits, and what is missing.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.dashboard import dashboard_data
    >>> dash = dashboard_data(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)))
    >>> dash.summary.loc[0, ["kind", "label"]].tolist()
    ['organisation', 'Organisation']
    >>> bool((dash.groups["n"] >= dash.min_group_size).all())
    True
    """
    config = clean.config
    k = config.min_group_size
    analysis = clean.analysis
    person = _latest_managers(analysis.person, clean.tables)
    groups, membership, left_out = _groups(person, clean.tables["employees"], k)
    membership = membership.drop(columns="kind").merge(groups[["label", "kind"]], on="label")
    series, summary, missing = [], [], {}

    def add(measure, s, m):
        if s is not None:
            series.append(s.assign(measure=measure))
        summary.append(m.assign(measure=measure))

    cycles, panel, rates = analysis.cycles, analysis.survey_panel, analysis.feedback_rates
    if _has(cycles, ["alignment_cascade", "cycle"]) and cycles["alignment_cascade"].notna().any():
        add("alignment", *_mean_measure(cycles, "alignment_cascade", "cycle", membership, k))
    else:
        missing["alignment"] = "The study has no goals table (or no goal linked to a manager's), so goal alignment is not shown."
    if _has(panel, ["engagement", "survey_date"]) and panel["engagement"].notna().any():
        waves = panel.assign(wave_label=panel["survey_date"].dt.to_period("M").astype(str))
        add("engagement", *_mean_measure(waves, "engagement", "wave_label", membership, k))
    else:
        missing["engagement"] = "The study has no surveys with an engagement scale, so engagement is not shown."
    if _has(rates, ["n_events", "exposure_days", "quarter"]):
        add("feedback", *_feedback_measure(rates, membership, k))
    else:
        missing["feedback"] = "The study has no feedback table, so feedback cadence is not shown."
    retention = _retention_measure(person, membership, k, alpha)
    if len(retention):
        add("retention", None, retention)
    else:
        missing["retention"] = (f"Fewer than {k} people were followed for 12 months after hire, so 12-month retention "
                                "is not shown.")

    columns = ["kind", "label", "measure", "period", "value", "conf_low", "conf_high", "n_people"]
    series = pd.concat(series, ignore_index=True)[columns] if series else pd.DataFrame(columns=columns)
    summary = pd.concat(summary, ignore_index=True)
    summary = _with_limits(summary, analysis, person)
    history = clean.tables.get("job_history")
    team_rule = ("their latest manager (from the job history; each person counts in one team)"
                 if history is not None and len(history) and "manager_id" in history.columns
                 else "their manager when they joined (or when the window opened)")
    return Dashboard(groups=groups, left_out=left_out, series=series, summary=summary, missing=missing,
                     team_rule=team_rule,
                     min_group_size=k, study=config.name, window=(config.window.start, config.window.end))


def _with_limits(summary: pd.DataFrame, analysis, person) -> pd.DataFrame:
    """Add the funnel limits around the organisation's value, and which groups fall outside 99.8%."""
    kinds = {"alignment": "mean", "engagement": "mean", "feedback": "rate", "retention": "proportion"}
    parts = []
    for measure, part in summary.groupby("measure", sort=False):
        part = part.reset_index(drop=True)
        org = part.loc[part["kind"] == "organisation"].iloc[0]
        spread = float(org["sd"]) if "sd" in part.columns and pd.notna(org.get("sd")) else None
        limits = funnel_limits(float(org["value"]), part["precision"], kind=kinds[measure], spread=spread)
        parts.append(pd.concat([part, limits.drop(columns="precision")], axis=1))
    out = pd.concat(parts, ignore_index=True)
    out["signal"] = np.where(out["kind"] == "organisation", "",
                             np.where(out["value"] > out["upper_998"], "above",
                                      np.where(out["value"] < out["lower_998"], "below", "")))
    order = {"organisation": 0, "department": 1, "team": 2}
    out = out.sort_values(["kind", "measure"], key=lambda s: s.map(order) if s.name == "kind" else
                          s.map({m: i for i, m in enumerate(MEASURES)}), kind="stable").reset_index(drop=True)
    return out[["kind", "label", "measure", "value", "conf_low", "conf_high", "precision",
                "lower_95", "upper_95", "lower_998", "upper_998", "signal"]]


# --------------------------------------------------------------------------- drawing

_GROUP_COLOUR, _ORG_COLOUR, _LIMIT_COLOUR = "#0072B2", "#555555", "#D55E00"


def _png(fig: Figure) -> str:
    """The figure as a PNG data URI (nothing is loaded from elsewhere)."""
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt(measure: str, value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.0%}" if measure == "retention" else f"{value:.2f}"


def _svg_uri(body: str, width: int, height: int) -> str:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="DejaVu Sans, Arial, sans-serif" font-size="10">{body}</svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _tick(measure: str, value: float) -> str:
    return f"{value:.0f}%" if measure == "retention" else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _line_chart(measure: str, group: "_Series", org: "_Series") -> str:
    """A small line chart (SVG): the group with its 95% band, the organisation dashed, by period."""
    width, height, left, right, top, bottom = 270, 150, 42, 10, 22, 30
    title = MEASURES[measure][0] + {"alignment": " by review cycle", "engagement": " by survey wave",
                                    "feedback": " per quarter"}[measure]
    esc = _html.escape
    parts = [f'<text x="{width / 2}" y="13" text-anchor="middle" font-weight="bold" font-size="11">{esc(title)}</text>']
    periods = org.period
    if not periods:
        return _svg_uri("".join(parts), width, height)
    values = np.concatenate([org.value, group.conf_low, group.conf_high, group.value])
    values = values[~np.isnan(values)]
    if measure == "alignment":
        lo, hi = 0.0, 1.0
    else:
        lo, hi = (float(values.min()), float(values.max())) if len(values) else (np.nan, np.nan)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo) if measure != "alignment" else 0.0
    lo, hi = lo - pad, hi + pad
    x_of = {p: left + (width - left - right) * (i / max(len(periods) - 1, 1)) for i, p in enumerate(periods)}

    def y(v):
        return top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))

    parts.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
                 'fill="none" stroke="#ccc"/>')
    for v in (lo + pad, (lo + hi) / 2, hi - pad):
        parts.append(f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end" fill="#555">{_tick(measure, v)}</text>')
    parts.append(f'<text x="{left}" y="{height - 14}" fill="#555">{esc(str(periods[0]))}</text>')
    parts.append(f'<text x="{width - right}" y="{height - 14}" text-anchor="end" fill="#555">{esc(str(periods[-1]))}</text>')
    shown = [i for i, p in enumerate(group.period) if p in x_of]
    if shown:
        xs = [x_of[group.period[i]] for i in shown]
        high, low, value = group.conf_high[shown], group.conf_low[shown], group.value[shown]
        band = [f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, high)] + \
               [f"{x:.1f},{y(v):.1f}" for x, v in zip(reversed(xs), low[::-1])]
        parts.append(f'<polygon points="{" ".join(band)}" fill="{_GROUP_COLOUR}" fill-opacity="0.18"/>')
    org_points = " ".join(f"{x_of[p]:.1f},{y(v):.1f}" for p, v in zip(org.period, org.value))
    parts.append(f'<polyline points="{org_points}" fill="none" stroke="{_ORG_COLOUR}" stroke-dasharray="4 3"/>')
    if shown:
        pts = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, value))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{_GROUP_COLOUR}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="2.2" fill="{_GROUP_COLOUR}"/>'
                     for x, v in zip(xs, value))
    parts.append(f'<text x="{width / 2}" y="{height - 2}" text-anchor="middle" fill="#555">'
                 f'{esc(MEASURES[measure][1].split(" (")[0])}</text>')
    return _svg_uri("".join(parts), width, height)


def _retention_chart(group: dict | None, org: dict) -> str:
    """A small interval chart (SVG): the group's and the organisation's 12-month retention with 95% CIs."""
    width, height, left, right = 270, 150, 82, 14
    parts = ['<text x="135" y="13" text-anchor="middle" font-weight="bold" font-size="11">12-month retention</text>']

    def x(v):
        return left + (width - left - right) * float(v)

    parts.append(f'<line x1="{left}" y1="110" x2="{width - right}" y2="110" stroke="#ccc"/>')
    for v in (0, 0.5, 1):
        parts.append(f'<text x="{x(v):.1f}" y="124" text-anchor="middle" fill="#555">{v:.0%}</text>')
    for row, name, yy, colour in ((group, "This group", 50, _GROUP_COLOUR), (org, "Organisation", 85, _ORG_COLOUR)):
        parts.append(f'<text x="{left - 6}" y="{yy + 3}" text-anchor="end">{name}</text>')
        if row is None or pd.isna(row["value"]):
            parts.append(f'<text x="{left + 4}" y="{yy + 3}" fill="#777">too few followed</text>')
            continue
        parts.append(f'<line x1="{x(row["conf_low"]):.1f}" y1="{yy}" x2="{x(row["conf_high"]):.1f}" y2="{yy}" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(row["value"]):.1f}" cy="{yy}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{x(row["value"]):.1f}" y="{yy - 8}" text-anchor="middle">{row["value"]:.0%}</text>')
    parts.append('<text x="135" y="146" text-anchor="middle" fill="#555">Still employed 12 months after hire</text>')
    return _svg_uri("".join(parts), width, height)


def _missing_chart(measure: str) -> str:
    return _svg_uri(f'<text x="135" y="13" text-anchor="middle" font-weight="bold" font-size="11">{MEASURES[measure][0]}'
                    '</text><text x="135" y="80" text-anchor="middle" fill="#777">not in this study</text>', 270, 150)


@dataclass(frozen=True)
class _Series:
    """One line of a chart: its periods (as in the table) and values, as plain arrays."""

    period: list
    value: np.ndarray
    conf_low: np.ndarray
    conf_high: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame) -> "_Series":
        return cls(list(rows["period"]), *(rows[c].to_numpy(dtype=float) for c in ("value", "conf_low", "conf_high")))


class _ByLabel:
    """The dashboard's series and summary rows split by panel once, so each panel looks its rows up.

    Selecting each panel's rows with a comparison over the whole table is
    quadratic in the number of panels (thousands of teams in a large study);
    the groups keep the rows in the table's order, as the selection does. Each
    panel's series are plain arrays and its summary rows dicts by measure:
    a pandas selection per chart cost more than drawing it.
    """

    _NO_SERIES = _Series([], *(np.empty(0),) * 3)

    def __init__(self, dash: Dashboard):
        series, summary = dash.series, dash.summary
        # the columns converted once and each panel's rows taken by position (``indices``: the rows of each
        # group in table order, as iterating the groups gives them; a missing label is left out alike)
        period = series["period"].to_numpy(dtype=object)
        value, low, high = (series[c].to_numpy(dtype=float) for c in ("value", "conf_low", "conf_high"))
        self.series = {key: _Series(list(period[rows]), value[rows], low[rows], high[rows])
                       for key, rows in series.groupby(["measure", "label"], sort=False).indices.items()}
        self.org_series = {m: _Series.of(part.loc[part["kind"] == "organisation"])
                           for m, part in series.groupby("measure", sort=False)}
        # each panel's first row of each measure, as a dict (a panel shows one row per measure); the table is
        # converted once, not once per panel
        self.summary: dict[str, dict[str, dict]] = {}
        self.org_summary: dict[str, dict] = {}
        for row in summary.to_dict("records"):
            if not pd.isna(row["label"]):  # as grouping by label leaves a missing one out
                self.summary.setdefault(row["label"], {}).setdefault(row["measure"], row)
            if row["kind"] == "organisation":
                self.org_summary.setdefault(row["measure"], row)

    def series_of(self, measure: str, label: str) -> _Series:
        return self.series.get((measure, label), self._NO_SERIES)

    def organisation_series(self, measure: str) -> _Series:
        return self.org_series.get(measure, self._NO_SERIES)

    def summary_of(self, label: str) -> dict[str, dict]:
        return self.summary.get(label, {})


def _panel_charts(dash: Dashboard, label: str, by_label: _ByLabel) -> list[tuple[str, str]]:
    """The four charts of a panel: (data URI, alt text)."""
    charts = []
    summary, org_summary = by_label.summary_of(label), by_label.org_summary
    for measure, (title, _) in MEASURES.items():
        if measure in dash.missing:
            charts.append((_missing_chart(measure), f"{title}: not in this study"))
        elif measure == "retention":
            charts.append((_retention_chart(summary.get(measure), org_summary[measure]),
                           f"{title} of {label} and of the organisation"))
        else:
            chart = _line_chart(measure, by_label.series_of(measure, label), by_label.organisation_series(measure))
            charts.append((chart, f"{title} of {label} against the organisation"))
    return charts


def _funnel_figure(dash: Dashboard, kind: str) -> str:
    fig = Figure(figsize=(13, 3.3))
    measures = [m for m in MEASURES if m not in dash.missing]
    axes = np.atleast_1d(fig.subplots(1, max(len(measures), 1)))
    kinds = {"alignment": "mean", "engagement": "mean", "feedback": "rate", "retention": "proportion"}
    for ax, measure in zip(axes, measures):
        part = dash.summary.loc[dash.summary["measure"] == measure]
        org = part.loc[part["kind"] == "organisation"].iloc[0]
        points = part.loc[part["kind"] == kind]
        scale = 100 if measure == "retention" else 1
        ax.set_title(MEASURES[measure][0], fontsize=10, fontweight="bold")
        ax.tick_params(labelsize=8)
        if len(points):
            hi = float(points["precision"].max()) * 1.1
            grid = np.linspace(max(float(points["precision"].min()) * 0.8, 1.0), hi, 200)
            spread = None
            half = (org["upper_95"] - org["value"]) / stats.norm.ppf(0.975)  # the organisation's spread, read back
            if kinds[measure] == "mean":
                spread = half * np.sqrt(org["precision"])
            elif kinds[measure] == "rate":
                spread = half ** 2 * org["precision"] / org["value"]
            limits = funnel_limits(float(org["value"]), grid, kind=kinds[measure], spread=spread)
            for name, style in (("95", ":"), ("998", "-")):
                ax.plot(grid, limits[f"lower_{name}"] * scale, style, color=_LIMIT_COLOUR, lw=1)
                ax.plot(grid, limits[f"upper_{name}"] * scale, style, color=_LIMIT_COLOUR, lw=1,
                        label=f"{'95%' if name == '95' else '99.8%'} limits")
            ax.axhline(org["value"] * scale, color=_ORG_COLOUR, lw=1, ls="--", label="Organisation")
            out = points["signal"] != ""
            ax.scatter(points["precision"], points["value"] * scale, s=14, color=_GROUP_COLOUR, zorder=3)
            ax.scatter(points.loc[out, "precision"], points.loc[out, "value"] * scale, s=30, facecolor="none",
                       edgecolor="black", zorder=4)
        ax.set_xlabel("Person-quarters of employment" if measure == "feedback" else
                      "Effective number of people" if measure == "retention" else "People", fontsize=8)
        ax.set_ylabel(MEASURES[measure][1].split(" (")[0] + (" (%)" if measure == "retention" else ""), fontsize=8)
    if len(measures):
        axes[0].legend(fontsize=7, loc="lower right", frameon=False)
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.17, top=0.88, wspace=0.35)
    return _png(fig)


# --------------------------------------------------------------------------- the page

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 2px solid #eee; padding-bottom: .2rem; }
section.panel { border: 1px solid #e3e3e3; border-radius: 6px; padding: .4rem 1rem .8rem; margin: 1rem 0; }
section.panel h3 { margin: .4rem 0; }
table.numbers { border-collapse: collapse; font-size: .92rem; }
table.numbers td, table.numbers th { padding: .2rem .7rem; border-bottom: 1px solid #eee; text-align: right; }
table.numbers td:first-child, table.numbers th:first-child { text-align: left; }
img { max-width: 100%; height: auto; display: block; }
.charts { display: grid; grid-template-columns: repeat(4, 1fr); gap: .5rem; } .charts img { width: 100%; height: auto; }
.note { color: #555; font-size: .92rem; }
.above { color: #006d2c; font-weight: 600; } .below { color: #a50f15; font-weight: 600; }
details { margin: .5rem 0; } summary { cursor: pointer; font-weight: 600; padding: .3rem 0; }
footer.ar-footer { margin-top: 2.5rem; padding-top: .8rem; border-top: 1px solid #ddd; font-size: .8rem; color: #666; }
"""


def _numbers_table(dash: Dashboard, label: str, by_label: _ByLabel) -> str:
    rows, org = by_label.summary_of(label), by_label.org_summary
    out = ["<table class='numbers'><tr><th>Measure</th><th>This group (95% CI)</th><th>Organisation</th>"
           "<th>Compared with the organisation</th></tr>"]
    for measure, (title, _) in MEASURES.items():
        if measure in dash.missing:
            out.append(f"<tr><td>{title}</td><td colspan='3'>not in this study</td></tr>")
            continue
        if measure not in rows:
            out.append(f"<tr><td>{title}</td><td colspan='3'>too few people followed to say</td></tr>")
            continue
        r = rows[measure]
        verdict = {"above": "<span class='above'>above: more than chance</span>",
                   "below": "<span class='below'>below: more than chance</span>"}.get(
            r["signal"], "within the range chance allows")
        out.append(f"<tr><td>{title}</td><td>{_fmt(measure, r['value'])} ({_fmt(measure, r['conf_low'])} to "
                   f"{_fmt(measure, r['conf_high'])})</td><td>{_fmt(measure, org[measure]['value'])}</td>"
                   f"<td>{verdict}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def _panel(dash: Dashboard, g, by_label: _ByLabel) -> str:
    esc = _html.escape
    images = "".join(f"<img src='{uri}' alt='{esc(alt)}' width='270' height='150'>"
                     for uri, alt in _panel_charts(dash, g.label, by_label))
    return (f"<section class='panel'><h3>{esc(g.label)} ({g.n} people)</h3>\n"
            f"<div class='charts'>{images}</div>\n{_numbers_table(dash, g.label, by_label)}</section>")


def _panels(dash: Dashboard, kind: str, by_label: _ByLabel) -> str:
    """Department panels one after the other; team panels folded by department (a click opens them, no script)."""
    groups = dash.groups.loc[dash.groups["kind"] == kind].sort_values("label")
    if kind == "department":
        return "\n".join(_panel(dash, g, by_label) for g in groups.itertuples())
    flagged = set(dash.summary.loc[dash.summary["signal"] != "", "label"])
    parts = []
    for dept, teams in groups.groupby("department", sort=True):
        n_flagged = sum(label in flagged for label in teams["label"])
        note = f"; {n_flagged} outside the 99.8% limits on some measure" if n_flagged else ""
        panels = "\n".join(_panel(dash, g, by_label) for g in teams.itertuples())
        parts.append(f"<details><summary>{_html.escape(dept)}: {len(teams)} team panel{'s' if len(teams) > 1 else ''}"
                     f"{note}</summary>\n{panels}\n</details>")
    return "\n".join(parts)


def _left_out(dash: Dashboard, kind: str) -> str:
    n = dash.left_out.get(kind, 0)
    plural = {"department": "departments", "team": "teams"}[kind]
    if not n:
        return f"<p class='note'>Every {kind} has at least {dash.min_group_size} people and is shown.</p>"
    return (f"<p class='note'>{n} {plural if n > 1 else kind} with fewer than {dash.min_group_size} people "
            f"{'are' if n > 1 else 'is'} left out (a group that small could identify a person; when one small "
            f"{kind} is left out, the next smallest is too, so its size cannot be worked out).</p>")


def _signals(dash: Dashboard) -> str:
    hits = dash.summary.loc[dash.summary["signal"] != ""]
    if hits.empty:
        return "<p>No department or team is outside the 99.8% limits on any measure: the differences seen are within what chance allows.</p>"
    rows = "\n".join(
        f"<tr><td>{_html.escape(r.label)}</td><td>{MEASURES[r.measure][0]}</td><td>{_fmt(r.measure, r.value)}</td>"
        f"<td class='{r.signal}'>{r.signal}</td></tr>" for r in hits.itertuples())
    return ("<p>These groups are outside the 99.8% limits: a difference this large would rarely arise by chance "
            "alone, so it is worth a conversation.</p>\n<table class='numbers'><tr><th>Group</th><th>Measure</th>"
            f"<th>Value</th><th>Compared with the organisation</th></tr>\n{rows}</table>")


def render_dashboard(dash: Dashboard, *, footer: str | None = None) -> str:
    """Render the dashboard as one self-contained HTML page.

    Figures are embedded PNG images, styles are inline, and the page has no
    script: it opens offline and loads nothing from the network. No employee
    or manager id appears.

    Parameters
    ----------
    dash : Dashboard
        From :func:`dashboard_data`.
    footer : str, optional
        The footer line (study, window, generation date, toolkit version); one
        is made from ``dash`` when not given.

    Returns
    -------
    str
        The HTML page.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.dashboard import dashboard_data, render_dashboard
    >>> page = render_dashboard(dashboard_data(ar.clean_study(ar.simulate_study(n_employees=200, seed=1))))
    >>> "<script" in page, "http" in page
    (False, False)
    """
    esc = _html.escape
    start, end = dash.window
    if footer is None:
        footer = (f"{dash.study} · observation window {start:%Y-%m-%d} to {end:%Y-%m-%d} · generated "
                  f"{datetime.date.today():%Y-%m-%d} · alignment-research {__version__}")
    org = dash.summary.loc[dash.summary["kind"] == "organisation"]
    org_rows = "\n".join(
        f"<tr><td>{MEASURES[r.measure][0]}</td><td>{_fmt(r.measure, r.value)} ({_fmt(r.measure, r.conf_low)} to "
        f"{_fmt(r.measure, r.conf_high)})</td></tr>" for r in org.itertuples())
    missing = "".join(f"<li>{esc(text)}</li>" for text in dash.missing.values())
    by_label = _ByLabel(dash)  # the panels' rows split once, for the department and the team panels alike
    n_dept = int((dash.groups["kind"] == "department").sum())
    n_team = int((dash.groups["kind"] == "team").sum())
    funnel = ""
    if dash.groups["kind"].eq("department").any():
        funnel += f"<h3>Departments</h3>\n<img src='{_funnel_figure(dash, 'department')}' alt='Funnel plots of the departments'>\n"
    if dash.groups["kind"].eq("team").any():
        funnel += f"<h3>Manager teams</h3>\n<img src='{_funnel_figure(dash, 'team')}' alt='Funnel plots of the manager teams'>\n"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(dash.study)}: performance dashboard</title>
<style>{_STYLE}</style></head>
<body>
<h1>{esc(dash.study)}: performance dashboard</h1>
<p>Progress on four measures for the organisation, each department and each manager team: how well goals are linked
to the manager's goals (cascade alignment: the share of a person's goals that serve one of their manager's goals),
engagement in each survey wave, how often people get feedback, and how many are still employed 12 months after hire.
Only groups of at least {dash.min_group_size} people are shown, and no person is named.</p>
<h2>How to read this dashboard</h2>
<p>Small groups vary a lot by chance. The funnel plots put every group against the organisation's average: the
funnel narrows as groups get larger. A group inside the dotted lines (95%) is within what chance allows; a group
outside the solid lines (99.8%) differs by more than chance would plausibly make it, and is circled. Look at those
before chasing the others. In each panel the blue line is the group, with its 95% confidence band, and the dashed
grey line the organisation.</p>
<h2>Organisation</h2>
<table class='numbers'><tr><th>Measure</th><th>Organisation (95% CI)</th></tr>
{org_rows}
</table>
{f"<ul class='note'>{missing}</ul>" if missing else ""}
<h2>Funnel plots: what is more than noise</h2>
{funnel}{_signals(dash)}
<h2>Departments</h2>
<p class='note'>{n_dept} department panel(s). People are counted in the department they joined in (or were in when
the observation window opened).</p>
{_left_out(dash, "department")}
{_panels(dash, "department", by_label)}
<h2>Manager teams</h2>
<p class='note'>{n_team} team panel(s). A team is the people who share {_html.escape(dash.team_rule)}; teams are numbered within their department, largest first, and never named. Open a department to see its teams.</p>
{_left_out(dash, "team")}
{_panels(dash, "team", by_label)}
<h2>Notes</h2>
<ul class='note'>
<li>Goal alignment: each person's mean cascade alignment over review cycles; engagement: each person's mean score over
survey waves; feedback: feedback events per 90 days employed; 12-month retention: Kaplan–Meier estimate of no
exit counted by the study within 365 days of hire, allowing for people hired before the window.</li>
<li>Funnel limits: the organisation's value ± 1.96 (95%) or 3.09 (99.8%) standard errors at each group's size (for
retention, its effective size given who was followed; for feedback, its person-quarters of employment). Points in
a panel's lines cover at least {dash.min_group_size} people each; others are left out.</li>
<li>People differ in how often they get feedback by more than chance alone would make them, so the feedback
limits and intervals are widened by that spread between people (a quasi-Poisson dispersion estimated over the whole
organisation).</li>
</ul>
<footer class="ar-footer">{esc(footer)}</footer>
</body></html>
"""


def write_dashboard(clean, path, *, footer: str | None = None) -> Path:
    """Write ``dashboard.html`` for a cleaned study.

    Parameters
    ----------
    clean : CleanStudy
        The cleaned study.
    path : str or Path
        The HTML file to write (its folder is created).
    footer : str, optional
        The footer line; see :func:`render_dashboard`.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import alignment_research as ar
    >>> from alignment_research.dashboard import write_dashboard
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=200, seed=1))
    >>> write_dashboard(clean, "reports/dashboard.html")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dashboard(dashboard_data(clean), footer=footer), encoding="utf-8")
    return path
