"""Study planning: power and minimum detectable effects for engagement and retention analyses."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.optimize as so
import scipy.stats as st

from .errors import ConfigError, ModelError

__all__ = ["power_engagement", "power_cox", "design_effect", "simulate_power", "plot_power", "GRID_KEYS"]


def design_effect(team_size: float, icc: float) -> float:
    """Return the design effect ``1 + (m - 1) ICC`` of clustering people in teams of size ``m``.

    Parameters
    ----------
    team_size : float
        Average number of respondents per team (manager).
    icc : float
        Intraclass correlation of the outcome within teams (``fit_mixed(...).glance()["icc"]``).

    Returns
    -------
    float
        The factor by which clustering inflates the variance of a mean difference.

    Examples
    --------
    >>> import alignment_research as ar
    >>> round(ar.design_effect(8, 0.1), 3)
    1.7
    """
    if team_size < 1 or not 0 <= icc <= 1:
        raise ModelError(f"team_size must be >= 1 and icc in [0, 1]; got {team_size} and {icc}.")
    return float(1 + (team_size - 1) * icc)


def _check_two_of_three(**given):
    missing = [k for k, v in given.items() if v is None]
    if len(missing) != 1:
        raise ModelError(
            f"Give exactly two of {list(given)} and leave the third as None to compute it; "
            f"{'none' if not missing else missing} were left out."
        )
    return missing[0]


def _power_t(delta_std: float, n_teams: float, team_size: float, icc: float, treated_share: float, alpha: float):
    deff = design_effect(team_size, icc)
    n = n_teams * team_size
    se = np.sqrt(deff / (n * treated_share * (1 - treated_share)))  # in outcome SDs
    df = max(n_teams - 2, 1)
    ncp = abs(delta_std) / se
    crit = st.t.ppf(1 - alpha / 2, df)
    pw = st.nct.sf(crit, df, ncp) + st.nct.cdf(-crit, df, ncp)
    if not np.isfinite(pw):  # scipy's noncentral t fails far in the tail, where the normal is exact enough
        pw = st.norm.sf(crit - ncp) + st.norm.cdf(-crit - ncp)
    return float(min(pw, 1.0)), se


def power_engagement(
    *,
    n_teams: int | None = None,
    team_size: float = 8,
    icc: float = 0.1,
    effect: float | None = None,
    sd: float = 1.0,
    treated_share: float = 0.5,
    alpha: float = 0.05,
    power: float | None = None,
) -> pd.DataFrame:
    """Compute power, the number of teams, or the minimum detectable difference in engagement.

    The comparison is between teams whose manager went through leadership
    development and teams whose manager did not (exposure at team level), so
    the variance of the difference is inflated by the design effect
    ``1 + (m - 1) ICC``. Give two of ``n_teams``, ``effect`` and ``power``;
    the third is computed.

    Parameters
    ----------
    n_teams : int, optional
        Number of teams (managers) in the study.
    team_size : float, default 8
        Respondents per team.
    icc : float, default 0.1
        Intraclass correlation of engagement within teams.
    effect : float, optional
        Difference in mean engagement to detect, in scale points.
    sd : float, default 1.0
        Total standard deviation of engagement (within + between teams).
    treated_share : float, default 0.5
        Share of teams exposed.
    alpha : float, default 0.05
        Two-sided significance level.
    power : float, optional
        Desired power (e.g. 0.8).

    Returns
    -------
    DataFrame
        One row: ``n_teams, team_size, n_employees, icc, design_effect,
        effective_n, effect, std_effect, sd, treated_share, alpha, power``.

    Raises
    ------
    ModelError
        Not exactly two of the three quantities given, or values out of range.

    See Also
    --------
    power_cox, design_effect

    Notes
    -----
    Power of a two-sided t test with ``n_teams - 2`` degrees of freedom
    (the analysis of team means, which a random-intercept model reproduces
    for equal team sizes), using the noncentral t distribution with
    noncentrality ``effect / (sd * sqrt(DE / (N p (1-p))))``, where ``N`` is
    the number of employees and ``DE`` the design effect (Donner & Klar 2000).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.power_engagement(n_teams=100, team_size=8, icc=0.1, effect=0.25, sd=1.0)["power"].round(2).item()
    0.77
    """
    target = _check_two_of_three(n_teams=n_teams, effect=effect, power=power)
    if not 0 < treated_share < 1 or sd <= 0 or not 0 < alpha < 1:
        raise ModelError("treated_share and alpha must lie in (0, 1) and sd must be positive.")
    if power is not None and not alpha < power < 1:
        raise ModelError(f"power must lie in (alpha, 1); got {power}.")
    if target == "power":
        pw, _ = _power_t(effect / sd, n_teams, team_size, icc, treated_share, alpha)
    elif target == "effect":
        if n_teams < 3:
            raise ModelError("n_teams must be at least 3.")
        f = lambda d: _power_t(d, n_teams, team_size, icc, treated_share, alpha)[0] - power  # noqa: E731
        effect = so.brentq(f, 1e-9, 5.0, xtol=1e-12) * sd
        pw = power
    else:
        f = lambda k: _power_t(effect / sd, k, team_size, icc, treated_share, alpha)[0] - power  # noqa: E731
        hi = 4.0
        while f(hi) < 0:
            hi *= 2
            if hi > 1e8:
                raise ModelError("The effect is too small to detect with any feasible number of teams.")
        n_teams = int(np.ceil(so.brentq(f, 3.0, hi) if f(3.0) < 0 else 3))
        pw, _ = _power_t(effect / sd, n_teams, team_size, icc, treated_share, alpha)
    deff = design_effect(team_size, icc)
    n = n_teams * team_size
    return pd.DataFrame(
        [
            {
                "n_teams": n_teams,
                "team_size": team_size,
                "n_employees": n,
                "icc": icc,
                "design_effect": deff,
                "effective_n": n / deff,
                "effect": float(effect),
                "std_effect": float(effect) / sd,
                "sd": sd,
                "treated_share": treated_share,
                "alpha": alpha,
                "power": float(pw),
            }
        ]
    )


def power_cox(
    *,
    n: int | None = None,
    hazard_ratio: float | None = None,
    power: float | None = None,
    event_rate: float = 0.2,
    exposed_share: float | None = 0.5,
    sd: float | None = None,
    design_effect: float = 1.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Compute power, sample size or the minimum detectable hazard ratio of a Cox model (Schoenfeld).

    Give two of ``n``, ``hazard_ratio`` and ``power``; the third is computed.
    For a binary exposure (e.g. the manager's programme) give ``exposed_share``;
    for a continuous covariate (e.g. cascade alignment, hazard ratio per unit)
    give its standard deviation ``sd`` instead.

    Parameters
    ----------
    n : int, optional
        Number of employees followed.
    hazard_ratio : float, optional
        Hazard ratio to detect (per unit of the covariate when ``sd`` is given).
    power : float, optional
        Desired power.
    event_rate : float, default 0.2
        Share of employees expected to leave voluntarily during follow-up.
    exposed_share : float, default 0.5
        Share exposed (binary covariate); ignored when ``sd`` is given.
    sd : float, optional
        Standard deviation of a continuous covariate.
    design_effect : float, default 1.0
        Variance inflation from clustering (e.g. ``1 + (m - 1) ICC`` on the hazard scale).
    alpha : float, default 0.05
        Two-sided significance level.

    Returns
    -------
    DataFrame
        One row: ``n, events, hazard_ratio, power, event_rate, exposed_share,
        sd, design_effect, alpha``.

    Raises
    ------
    ModelError
        Not exactly two of the three quantities given, or values out of range.

    See Also
    --------
    power_engagement

    Notes
    -----
    Schoenfeld (1983): the number of events needed is
    ``D = DE (z_{1-alpha/2} + z_{power})^2 / (V log(HR)^2)`` with
    ``V = p (1 - p)`` for a binary covariate or ``V = sd^2`` for a continuous
    one (Hsieh & Lavori 2000); ``n = D / event_rate``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.power_cox(hazard_ratio=0.7, power=0.8, event_rate=0.25)["n"].item()
    988
    """
    target = _check_two_of_three(n=n, hazard_ratio=hazard_ratio, power=power)
    if not 0 < event_rate <= 1 or not 0 < alpha < 1 or design_effect < 1:
        raise ModelError("event_rate and alpha must lie in (0, 1] and design_effect must be >= 1.")
    if sd is not None:
        if sd <= 0:
            raise ModelError(f"sd must be positive; got {sd}.")
        V = sd**2
        exposed_share = None
    else:
        if exposed_share is None or not 0 < exposed_share < 1:
            raise ModelError("Give exposed_share in (0, 1) for a binary covariate, or sd for a continuous one.")
        V = exposed_share * (1 - exposed_share)
    if hazard_ratio is not None and (hazard_ratio <= 0 or hazard_ratio == 1):
        raise ModelError(f"hazard_ratio must be positive and not 1; got {hazard_ratio}.")
    z = st.norm.ppf(1 - alpha / 2)
    if target == "power":
        events = n * event_rate
        ncp = np.sqrt(events * V / design_effect) * abs(np.log(hazard_ratio))
        pw = float(st.norm.cdf(ncp - z) + st.norm.cdf(-ncp - z))
    elif target == "n":
        events = design_effect * (z + st.norm.ppf(power)) ** 2 / (V * np.log(hazard_ratio) ** 2)
        n = int(np.ceil(events / event_rate))
        events = n * event_rate
        pw = power
    else:
        events = n * event_rate
        log_hr = (z + st.norm.ppf(power)) * np.sqrt(design_effect / (events * V))
        hazard_ratio = float(np.exp(-log_hr))  # protective direction; 1 / HR is equally detectable
        pw = power
    return pd.DataFrame(
        [
            {
                "n": n,
                "events": float(events),
                "hazard_ratio": float(hazard_ratio),
                "power": float(pw),
                "event_rate": event_rate,
                "exposed_share": exposed_share,
                "sd": sd,
                "design_effect": design_effect,
                "alpha": alpha,
            }
        ]
    )


#: The keys of a power grid (``power simulate --grid``): each a list of values; every combination is a design.
GRID_KEYS = {"n_teams": None, "team_size": [8], "icc": [0.1], "effect": None, "attrition": [0.0],
             "sd": [1.0], "treated_share": [0.5], "alpha": [0.05]}


def _read_grid(grid, source: str) -> dict[str, list]:
    if isinstance(grid, (str, bytes)) or hasattr(grid, "read_text"):
        import yaml  # deferred: only a grid file needs YAML

        path = grid
        source = str(path)
        try:
            with open(path, encoding="utf-8") as f:
                grid = yaml.safe_load(f)
        except OSError as e:
            raise ConfigError(f"{source}: cannot read the power grid ({e.strerror or e}).") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{source}: not valid YAML ({' '.join(str(e).split())}).") from None
    if not isinstance(grid, dict):
        raise ConfigError(f"{source}: a power grid is a mapping of {sorted(GRID_KEYS)} to lists of values.")
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; a power grid takes {sorted(GRID_KEYS)}.")
    out = {}
    for key, default in GRID_KEYS.items():
        values = grid.get(key, default)
        if values is None:
            raise ConfigError(f"{source}: key {key!r} is required (a list of values).")
        values = values if isinstance(values, list) else [values]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ConfigError(f"{source}: key {key!r} must be a non-empty list of numbers; got {values!r}.")
        out[key] = [float(v) for v in values]
    checks = {"n_teams": lambda v: v >= 4 and v == int(v), "team_size": lambda v: v >= 1 and v == int(v),
              "icc": lambda v: 0 <= v < 1, "attrition": lambda v: 0 <= v < 1, "sd": lambda v: v > 0,
              "treated_share": lambda v: 0 < v < 1, "alpha": lambda v: 0 < v < 1, "effect": lambda v: True}
    rules = {"n_teams": "an integer >= 4", "team_size": "an integer >= 1", "icc": "in [0, 1)",
             "attrition": "in [0, 1)", "sd": "positive", "treated_share": "in (0, 1)", "alpha": "in (0, 1)"}
    for key, ok in checks.items():
        bad = [v for v in out[key] if not ok(v)]
        if bad:
            raise ConfigError(f"{source}: {key} must be {rules[key]}; got {bad[0]:g}.")
    return out


def _power_replicate(task) -> tuple[float, float]:
    """One simulated cluster trial: team-level exposure, random team effects, attrition; t test on team means."""
    d = task.payload
    rng = task.rng()
    n_teams, m = int(d["n_teams"]), int(d["team_size"])
    treated = np.zeros(n_teams)
    treated[: int(round(d["treated_share"] * n_teams))] = 1.0
    team = rng.normal(0.0, d["sd"] * np.sqrt(d["icc"]), n_teams)
    y = (d["effect"] * treated + team)[:, None] + rng.normal(0.0, d["sd"] * np.sqrt(1 - d["icc"]), (n_teams, m))
    stays = rng.random((n_teams, m)) >= d["attrition"]
    counts = stays.sum(axis=1)
    keep = counts > 0
    means = np.where(keep, (y * stays).sum(axis=1) / np.maximum(counts, 1), np.nan)[keep]
    arm = treated[keep]
    if arm.sum() < 1 or (1 - arm).sum() < 1 or len(means) < 3:
        return math.nan, math.nan
    test = st.ttest_ind(means[arm == 1], means[arm == 0], equal_var=True)
    return float(means[arm == 1].mean() - means[arm == 0].mean()), float(test.pvalue)


def simulate_power(grid, *, reps: int = 500, seed: int = 0, backend: str = "sequential",
                   n_workers: int | None = None, scheduler=None, progress: bool | None = None) -> pd.DataFrame:
    """Estimate the power of the engagement comparison by simulation over a grid of designs, beside the formula.

    Each design (a combination of the grid's values) is simulated ``reps``
    times: teams exposed at team level, team random effects with the given
    ICC, each respondent lost with probability ``attrition``, and a two-sided
    t test on the team means (the analysis ``power_engagement`` assumes).

    Parameters
    ----------
    grid : dict or path
        Lists of values for ``n_teams`` and ``effect`` (required) and
        ``team_size`` (8), ``icc`` (0.1), ``attrition`` (0), ``sd`` (1),
        ``treated_share`` (0.5), ``alpha`` (0.05); or a YAML file of them.
    reps : int, default 500
        Simulated trials per design.
    seed : int, default 0
        Seed; each trial's generator comes from (seed, design, trial).
    backend, n_workers, scheduler, progress
        Where the trials run (see `alignment_research.executors.TaskExecutor`).

    Returns
    -------
    DataFrame
        One row per design: the grid columns, ``respondents_per_team``
        (``team_size x (1 - attrition)``), ``analytic_power`` (from
        `power_engagement` with that many respondents), ``simulated_power``,
        its Monte-Carlo error ``simulated_power_mcse = sqrt(p(1-p)/reps)``
        and ``reps``.

    Raises
    ------
    ConfigError
        A grid key unknown, missing or out of range; ``reps`` not positive.

    Examples
    --------
    >>> import alignment_research as ar
    >>> table = ar.simulate_power({"n_teams": [40], "effect": [0.3]}, reps=20, seed=1, progress=False)
    >>> table[["n_teams", "reps"]].to_dict("records")
    [{'n_teams': 40, 'reps': 20}]
    """
    from itertools import product  # deferred: only the simulated grid needs it

    from .executors import TaskExecutor, make_tasks  # deferred: the executors load only for a simulated grid

    values = _read_grid(grid, "power grid")
    keys = list(GRID_KEYS)
    designs = [dict(zip(keys, combo)) for combo in product(*(values[k] for k in keys))]
    names = {f"design {i}": d for i, d in enumerate(designs)}
    tasks = make_tasks(names, reps, seed)
    executor = TaskExecutor(backend, n_workers=n_workers, scheduler=scheduler, progress=progress)
    results = dict(executor.map(_power_replicate, tasks, label="power simulation"))
    rows = []
    for name, d in names.items():
        p = np.array([results[(name, r)][1] for r in range(int(reps))], dtype=float)
        p = p[np.isfinite(p)]
        rejected = float((p < d["alpha"]).mean()) if len(p) else math.nan
        m_eff = d["team_size"] * (1 - d["attrition"])
        analytic = power_engagement(n_teams=int(d["n_teams"]), team_size=max(m_eff, 1.0), icc=d["icc"],
                                    effect=d["effect"], sd=d["sd"], treated_share=d["treated_share"],
                                    alpha=d["alpha"])["power"].item() if d["effect"] != 0 else d["alpha"]
        shown = {**d, "n_teams": int(d["n_teams"]), "team_size": int(d["team_size"])}
        rows.append({**shown, "respondents_per_team": m_eff, "analytic_power": analytic, "simulated_power": rejected,
                     "simulated_power_mcse": math.sqrt(rejected * (1 - rejected) / len(p)) if len(p) else math.nan,
                     "reps": len(p)})
    return pd.DataFrame(rows)


def plot_power(table: pd.DataFrame, *, ax=None):
    """Draw analytic power curves (lines) and simulated power (points, +/- 2 MC errors) against the effect.

    Parameters
    ----------
    table : DataFrame
        From `simulate_power`.
    ax : matplotlib Axes, optional
        Where to draw; a new figure when omitted.

    Returns
    -------
    matplotlib.axes.Axes
        One curve per design other than the effect (teams, team size, ICC, attrition).

    Examples
    --------
    >>> import alignment_research as ar
    >>> table = ar.simulate_power({"n_teams": [30], "effect": [0.2, 0.5]}, reps=10, progress=False)
    >>> ax = ar.plot_power(table)
    >>> len(ax.lines) >= 1
    True
    """
    import matplotlib.pyplot as plt  # deferred: plotting is optional and matplotlib is slow to import

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    by = [k for k in GRID_KEYS if k != "effect" and table[k].nunique() > 1]
    groups = table.groupby(by, sort=True) if by else [((), table)]
    for key, g in groups:
        g = g.sort_values("effect")
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{k} {v:g}" for k, v in zip(by, key)) or "design"
        line, = ax.plot(g["effect"], g["analytic_power"], label=f"{label} (analytic)")
        ax.errorbar(g["effect"], g["simulated_power"], yerr=2 * g["simulated_power_mcse"], fmt="o",
                    color=line.get_color(), capsize=3, label=f"{label} (simulated)")
    ax.axhline(0.8, color="0.5", linestyle=":", linewidth=1)
    ax.set_xlabel("effect (scale points)")
    ax.set_ylabel("power")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("power: analytic (lines) and simulated (points, ±2 MC errors)")
    ax.legend(fontsize="small")
    return ax
