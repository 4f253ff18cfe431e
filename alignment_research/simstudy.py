"""Simulation studies: bias, coverage and power of estimators over many simulated studies with a known truth."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from .errors import AlignmentResearchError, ConfigError, ModelError
from .executors import TaskExecutor, make_tasks
from .simulate import Truth, default_truth

__all__ = ["simulation_study", "summarise_replicates", "SimulationStudyResult", "REPLICATE_COLUMNS", "SUMMARY_COLUMNS"]

#: What each estimator returns per replicate (``truth`` optional: read from the scenario's Truth by ``estimand``).
ESTIMATE_COLUMNS = ["estimand", "estimate", "std_error", "conf_low", "conf_high", "p_value"]

#: One row per scenario, replicate, estimator and estimand.
REPLICATE_COLUMNS = ["scenario", "rep", "estimator", "estimand", "truth", "estimate", "std_error",
                     "conf_low", "conf_high", "p_value", "error"]

#: The summary: one row per scenario, estimator and estimand; each ``*_mcse`` is the Monte-Carlo error of the column before it.
SUMMARY_COLUMNS = ["scenario", "estimator", "estimand", "n_reps", "n_failed", "truth",
                   "mean_estimate", "mean_estimate_mcse", "bias", "bias_mcse", "empirical_se", "empirical_se_mcse",
                   "mean_model_se", "mean_model_se_mcse", "coverage", "coverage_mcse", "power", "power_mcse"]

_SCENARIO_KEYS = {"truth", "n_employees", "messy"}


def _simulate_clean(truth: Truth, n_employees: int, seed: int, messy: bool):
    """The default data of a replicate: a simulated study, cleaned (``clean_study``)."""
    from .clean import clean_study  # deferred: clean loads pandera and pyarrow; only replicates need it
    from .simulate import simulate_study  # deferred: as above, in the worker

    return clean_study(simulate_study(n_employees=n_employees, seed=seed, truth=truth, messy=messy))


def _resolve_scenarios(scenarios: Mapping[str, Any]) -> dict[str, dict]:
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise ConfigError("scenarios must be a non-empty dict: name -> {'truth': ..., 'n_employees': ...}.")
    fields = set(Truth.model_fields)
    out = {}
    for name, spec in scenarios.items():
        if not isinstance(spec, Mapping):
            raise ConfigError(f"Scenario {name!r}: give a dict with 'truth' and 'n_employees'; got {type(spec).__name__}.")
        unknown = sorted(set(spec) - _SCENARIO_KEYS)
        if unknown:
            raise ConfigError(f"Scenario {name!r}: unknown key(s) {unknown}; use {sorted(_SCENARIO_KEYS)}.")
        truth = spec.get("truth")
        if truth is None:
            truth = default_truth()
        elif isinstance(truth, Mapping):
            bad = sorted(set(truth) - fields)
            if bad:
                raise ConfigError(f"Scenario {name!r}: {bad} are not parameters of Truth (see ar.Truth).")
            try:
                truth = Truth.model_validate({**default_truth().model_dump(), **dict(truth)})
            except ValueError as e:
                raise ConfigError(f"Scenario {name!r}: invalid truth: {' '.join(str(e).split())}") from None
        elif not isinstance(truth, Truth):
            raise ConfigError(f"Scenario {name!r}: 'truth' must be a Truth or a dict of overrides; got {type(truth).__name__}.")
        n = spec.get("n_employees", 400)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 10:
            raise ConfigError(f"Scenario {name!r}: n_employees must be an integer >= 10; got {n!r}.")
        out[str(name)] = {"truth": truth, "n_employees": int(n), "messy": bool(spec.get("messy", False))}
    return out


def _estimator_rows(name: str, value, truth: Truth) -> list[dict]:
    if isinstance(value, pd.DataFrame):
        records = value.to_dict("records")
    elif isinstance(value, Mapping):
        records = [dict(value)]
    else:
        records = [dict(r) for r in value]
    rows = []
    for r in records:
        missing = [c for c in ESTIMATE_COLUMNS if c not in r]
        if missing:
            raise ModelError(f"Estimator {name!r} returned a row without {missing}; each row needs {ESTIMATE_COLUMNS}.")
        estimand = str(r["estimand"])
        true = r.get("truth", getattr(truth, estimand, None))
        if true is None or isinstance(true, (dict, list, str)):
            raise ModelError(f"Estimator {name!r}: estimand {estimand!r} is not a number in Truth; "
                             f"name a Truth field or return a 'truth' column.")
        rows.append({"estimator": name, "estimand": estimand, "truth": float(true),
                     **{c: float(r[c]) if r[c] is not None else math.nan for c in ESTIMATE_COLUMNS[1:]}, "error": ""})
    return rows


def _replicate(task) -> list[dict]:
    """One replicate: simulate the scenario with the task's seed, run every estimator (runs in a worker)."""
    spec, estimators, simulate = task.payload
    data = simulate(spec["truth"], spec["n_employees"], task.int_seed(), spec["messy"])
    rows = []
    for name, estimator in estimators.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # caveats of one replicate are what the study measures
                value = estimator(data)
        except AlignmentResearchError as e:  # a fit that fails in one replicate is counted, not fatal
            rows.append({"estimator": name, "estimand": "", "truth": math.nan,
                         **dict.fromkeys(ESTIMATE_COLUMNS[1:], math.nan), "error": " ".join(str(e).split())[:200]})
            continue
        rows.extend(_estimator_rows(name, value, spec["truth"]))  # a malformed row is a bug in the estimator: raised
    return [{"scenario": task.scenario, "rep": task.rep, **r} for r in rows]


def _mcse_sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def summarise_replicates(replicates: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Summarise replicate estimates: bias, empirical and model SE, coverage, power and their Monte-Carlo errors.

    Parameters
    ----------
    replicates : DataFrame
        The columns of ``REPLICATE_COLUMNS`` (``error`` may be absent).
    alpha : float, default 0.05
        A replicate rejects the null when ``p_value < alpha`` (when the
        p-value is missing: when the interval excludes 0).

    Returns
    -------
    DataFrame
        ``SUMMARY_COLUMNS``: per scenario, estimator and estimand, over the
        ``n_reps`` replicates with a finite estimate. With ``n`` replicates,
        estimates ``x`` and model SEs ``s``: bias ``mean(x) - truth`` (MC
        error ``sd(x)/sqrt(n)``), empirical SE ``sd(x)`` (MC error
        ``sd(x)/sqrt(2(n-1))``), mean model SE ``mean(s)`` (``sd(s)/sqrt(n)``),
        coverage and power ``p`` (``sqrt(p(1-p)/n)``).

    Notes
    -----
    The Monte-Carlo errors follow Morris, White & Crowther (2019), "Using
    simulation studies to evaluate statistical methods", Stat. Med. 38, table 6.

    Examples
    --------
    >>> reps = pd.DataFrame({"scenario": "s", "rep": [0, 1, 2, 3], "estimator": "ols", "estimand": "b",
    ...                      "truth": 1.0, "estimate": [0.8, 1.0, 1.2, 1.4], "std_error": 0.2,
    ...                      "conf_low": [0.4, 0.6, 0.8, 1.1], "conf_high": [1.2, 1.4, 1.6, 1.7],
    ...                      "p_value": [0.01, 0.001, 0.2, 0.0001]})
    >>> row = summarise_replicates(reps).iloc[0]
    >>> round(float(row["bias"]), 3), float(row["coverage"]), float(row["power"])
    (0.1, 0.75, 0.75)
    """
    if not 0 < alpha < 1:
        raise ModelError(f"alpha must lie in (0, 1); got {alpha}.")
    missing = [c for c in REPLICATE_COLUMNS if c not in replicates.columns and c != "error"]
    if missing:
        raise ModelError(f"The replicate table lacks {missing}.")
    data = replicates.sort_values(["scenario", "estimator", "estimand", "rep"], kind="stable")
    rows = []
    for (scenario, estimator, estimand), g in data.groupby(["scenario", "estimator", "estimand"], sort=True):
        if estimand == "":
            continue  # failed fits: counted below against the estimator's estimands
        ok = np.isfinite(g["estimate"].to_numpy(float))
        x = g["estimate"].to_numpy(float)[ok]
        s = g["std_error"].to_numpy(float)[ok]
        lo, hi = g["conf_low"].to_numpy(float)[ok], g["conf_high"].to_numpy(float)[ok]
        p = g["p_value"].to_numpy(float)[ok]
        truth = float(g["truth"].iloc[0])
        n = len(x)
        failed = int((~ok).sum()) + int(((data["scenario"] == scenario) & (data["estimator"] == estimator)
                                         & (data["estimand"] == "")).sum())
        covered = ((lo <= truth) & (truth <= hi)).astype(float)
        rejected = np.where(np.isfinite(p), p < alpha, (lo > 0) | (hi < 0)).astype(float)
        cov, pw = (covered.mean(), rejected.mean()) if n else (math.nan, math.nan)
        emp = float(np.std(x, ddof=1)) if n > 1 else math.nan
        finite_s = s[np.isfinite(s)]
        rows.append({
            "scenario": scenario, "estimator": estimator, "estimand": estimand, "n_reps": n, "n_failed": failed,
            "truth": truth,
            "mean_estimate": float(x.mean()) if n else math.nan, "mean_estimate_mcse": _mcse_sd(x),
            "bias": float(x.mean() - truth) if n else math.nan, "bias_mcse": _mcse_sd(x),
            "empirical_se": emp, "empirical_se_mcse": emp / math.sqrt(2 * (n - 1)) if n > 1 else math.nan,
            "mean_model_se": float(finite_s.mean()) if len(finite_s) else math.nan, "mean_model_se_mcse": _mcse_sd(finite_s),
            "coverage": float(cov), "coverage_mcse": math.sqrt(cov * (1 - cov) / n) if n else math.nan,
            "power": float(pw), "power_mcse": math.sqrt(pw * (1 - pw) / n) if n else math.nan,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


@dataclass(frozen=True)
class SimulationStudyResult:
    """What `simulation_study` returns: the summary table, every replicate, and how it was run.

    Parameters
    ----------
    table : DataFrame
        The summary (``SUMMARY_COLUMNS``): one row per scenario, estimator and estimand.
    replicates : DataFrame
        One row per scenario, replicate, estimator and estimand (``REPLICATE_COLUMNS``).
    reps : int
        Replicates per scenario.
    seed : int
        The study's seed.
    alpha : float
        Level of the tests (power) and of the intervals (coverage is against ``1 - alpha``).
    backend : str
        Where it ran (the results do not depend on it).

    Examples
    --------
    >>> reps = pd.DataFrame({"scenario": "s", "rep": [0, 1], "estimator": "ols", "estimand": "b", "truth": 0.0,
    ...                      "estimate": [0.1, -0.1], "std_error": 0.1, "conf_low": [-0.1, -0.3],
    ...                      "conf_high": [0.3, 0.1], "p_value": [0.3, 0.3]})
    >>> result = SimulationStudyResult(summarise_replicates(reps), reps, reps=2, seed=0)
    >>> result.table["coverage"].item()
    1.0
    """

    table: pd.DataFrame
    replicates: pd.DataFrame = field(repr=False)
    reps: int
    seed: int
    alpha: float = 0.05
    backend: str = "sequential"

    def __repr__(self) -> str:
        shown = self.table[["scenario", "estimator", "estimand", "n_reps", "truth", "bias", "coverage", "power"]]
        return (f"SimulationStudyResult: {self.reps} replicates per scenario, seed {self.seed}, alpha {self.alpha:g}\n"
                + shown.round(3).to_string(index=False))

    def _repr_html_(self) -> str:
        return f"<p>{self.reps} replicates per scenario, seed {self.seed}</p>" + self.table.round(4).to_html(index=False)

    def plot(self, *, ax=None, estimand: str | None = None):
        """Draw coverage and power per scenario, each with a band of +/- 2 Monte-Carlo errors.

        Parameters
        ----------
        ax : array of two matplotlib Axes, optional
            Where to draw coverage (first) and power (second); a new figure when omitted.
        estimand : str, optional
            Only this estimand (default: all, one line per estimator and estimand).

        Returns
        -------
        numpy.ndarray of Axes
            The coverage and power axes.

        Examples
        --------
        >>> axes = result.plot()  # doctest: +SKIP
        """
        import matplotlib.pyplot as plt  # deferred: plotting is optional and matplotlib is slow to import

        table = self.table if estimand is None else self.table[self.table["estimand"] == estimand]
        if table.empty:
            raise ModelError(f"No estimand {estimand!r} in this study; there are {sorted(self.table['estimand'].unique())}.")
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
        ax = np.asarray(ax).ravel()
        scenarios = list(dict.fromkeys(self.table["scenario"]))
        pos = {s: i for i, s in enumerate(scenarios)}
        for (est, estd), g in table.groupby(["estimator", "estimand"], sort=True):
            x = g["scenario"].map(pos).to_numpy()
            for a, col in zip(ax, ("coverage", "power")):
                y, e = g[col].to_numpy(float), g[f"{col}_mcse"].to_numpy(float)
                line, = a.plot(x, y, marker="o", label=f"{est}: {estd}")
                a.fill_between(x, y - 2 * e, y + 2 * e, color=line.get_color(), alpha=0.2)
        ax[0].axhline(1 - self.alpha, color="0.3", linestyle="--", linewidth=1)
        ax[1].axhline(self.alpha, color="0.3", linestyle=":", linewidth=1)
        for a, title in zip(ax, (f"coverage of the {100 * (1 - self.alpha):g}% interval", "power (rejection rate)")):
            a.set_xticks(range(len(scenarios)), scenarios)
            a.set_ylim(-0.02, 1.02)
            a.set_title(title)
            a.set_xlabel("scenario")
        ax[0].legend(fontsize="small")
        return ax


def simulation_study(scenarios: Mapping[str, Mapping], *, reps: int, estimators: Mapping[str, Callable],
                     seed: int, backend: str = "sequential", n_workers: int | None = None, scheduler=None,
                     alpha: float = 0.05, simulate: Callable | None = None,
                     progress: bool | None = None) -> SimulationStudyResult:
    """Run estimators on studies simulated from each scenario's truth; summarise bias, coverage and power.

    Each replicate ``rep`` of scenario ``name`` is simulated with a seed drawn
    from ``numpy.random.SeedSequence([seed, name, rep])``, so the result is
    identical on every backend and worker count.

    Parameters
    ----------
    scenarios : dict
        Scenario name -> ``{"truth": Truth or dict of Truth overrides,
        "n_employees": int, "messy": bool}`` (truth defaults to
        ``default_truth()``, ``n_employees`` to 400, ``messy`` to False).
    reps : int
        Replicates per scenario.
    estimators : dict
        Name -> function of the replicate's data (a `CleanStudy` by default)
        returning rows (DataFrame, dicts) with ``estimand, estimate, std_error,
        conf_low, conf_high, p_value``. The truth of a row is the `Truth`
        field named by ``estimand`` unless the row has a ``truth``. Functions
        must be defined at module level for the process and Dask backends.
    seed : int
        The study's seed (required: a study is reproducible or it is not reported).
    backend : {"sequential", "processes", "dask"}, default "sequential"
        See `TaskExecutor`.
    n_workers : int, optional
        Local processes (default: the machine's cores).
    scheduler : str or dask.distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) or client.
    alpha : float, default 0.05
        Level of the tests whose rejection rate is ``power``.
    simulate : callable, optional
        ``simulate(truth, n_employees, seed, messy)`` -> the data handed to the
        estimators; default: ``clean_study(simulate_study(...))``.
    progress : bool, optional
        Progress on stderr (a bar on a terminal, else a line every 10%).

    Returns
    -------
    SimulationStudyResult
        ``table`` (``SUMMARY_COLUMNS``), ``replicates`` and ``plot()``.

    Raises
    ------
    ConfigError
        An empty or malformed scenario (unknown key, unknown Truth field),
        non-positive ``reps``, unknown backend, unreachable scheduler.
    ModelError
        An estimator's row lacks a column, or names an estimand without a truth.

    Examples
    --------
    >>> import alignment_research as ar
    >>> def ols(clean):
    ...     fit = ar.fit_ols(clean.analysis.survey_panel, "engagement ~ alignment_cascade + manager_program",
    ...                      cluster="manager_id")
    ...     t = fit.tidy().set_index("term").loc[["manager_program"]]
    ...     return t.reset_index().assign(estimand="engagement_manager_program")
    >>> result = ar.simulation_study({"default": {"n_employees": 150}}, reps=2,
    ...                              estimators={"ols": ols}, seed=1, progress=False)  # doctest: +SKIP
    >>> result.table[["estimand", "n_reps", "coverage"]]  # doctest: +SKIP
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1); got {alpha}.")
    specs = _resolve_scenarios(scenarios)
    if not isinstance(estimators, Mapping) or not estimators or not all(callable(f) for f in estimators.values()):
        raise ConfigError("estimators must be a non-empty dict: name -> function(data) -> rows.")
    simulate = simulate or _simulate_clean
    payloads = {name: (spec, dict(estimators), simulate) for name, spec in specs.items()}
    tasks = make_tasks(payloads, reps, seed)
    executor = TaskExecutor(backend, n_workers=n_workers, scheduler=scheduler, progress=progress)
    by_key = dict(executor.map(_replicate, tasks, label="simulation study"))
    rows = [row for t in tasks for row in by_key[t.key]]  # task order: the summary does not depend on finishing order
    replicates = pd.DataFrame(rows, columns=REPLICATE_COLUMNS)
    table = summarise_replicates(replicates, alpha=alpha)
    order = {name: i for i, name in enumerate(specs)}  # scenarios in the order given
    table = table.sort_values("scenario", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return SimulationStudyResult(table=table, replicates=replicates,
                                 reps=int(reps), seed=int(seed), alpha=float(alpha), backend=backend)
