"""Slow recovery test: with job history, the models find the simulator's careers and manager-change effects.

On 50 simulated studies (``messy=False``, history on, the default truth):

* the cause-specific Cox model of promotion on the ``careers`` rows covers the true log hazard
  ratio of the employee's own mentoring (``Truth.promotion_mentoring``) in at least 90% of seeds;
* the Cox model of voluntary exit on ``intervals`` covers the true log hazard ratio of the months
  after a manager change (``Truth.manager_change_exit_hr``, over ``manager_change_exit_months``)
  in at least 90% of seeds;
* ignoring the history (every spell keeps its manager at hire, as the contract had it) attaches
  the manager's programme to the wrong teams: its estimated effect on exits is pulled towards
  zero, while the history-aware estimate is not.
"""

import os
import warnings

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.errors import StatisticalWarning
from alignment_research.executors import Task, run_tasks

pytestmark = pytest.mark.slow

#: The seeds run through the toolkit's runner: in-process under pytest-xdist (its workers use every core), else on a process pool.
BACKEND = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"

N_EMPLOYEES = 800
SEEDS = range(50)
PROMOTION = "program_mentoring + program_coaching + rating + manager_program"
EXIT = "recent_manager_change + alignment_cascade + engagement + manager_program + manager_rating + C(job_level)"
STATIC_EXIT = "alignment_cascade + engagement + manager_program + manager_rating + C(job_level)"


def _row(result, term: str, truth: float, prefix: str) -> dict:
    row = result.tidy().set_index("term").loc[term]
    return {f"{prefix}_estimate": row["estimate"],
            f"{prefix}_covered": bool(row["conf_low"] <= truth <= row["conf_high"])}


def _one(task) -> dict:
    """Promotion, manager change and the static-manager comparison on one study (``task.rep`` is the seed)."""
    seed = task.rep
    from test_recovery_programs import _as_clean  # deferred: the recovery test's study builders

    sim = ar.simulate_study(n_employees=N_EMPLOYEES, seed=seed, messy=False)
    truth = sim.truth
    # the clean tables of a messy=False study without running the cleaning (0.45 s a seed); the first seed checks
    # that they give the tables clean_study gives (all 50 seeds did when this was written)
    tables = _as_clean(sim)
    # n_boot=0: no bootstrap of the scales' reliability, which no model here reads (the other tables are the same)
    at = ar.build_analysis_tables(tables, sim.config, n_boot=0)
    static = ar.build_analysis_tables({k: v for k, v in tables.items() if k != "job_history"}, sim.config, n_boot=0)
    if seed == SEEDS[0]:
        cleaned = ar.build_analysis_tables(ar.clean_study(sim), n_boot=0)
        for name in ("intervals", "careers"):
            pd.testing.assert_frame_equal(getattr(at, name), getattr(cleaned, name), check_dtype=False)
    out = {"seed": seed}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        promotion = ar.fit_cox(at.careers, PROMOTION, start="start", stop="stop", event="event",
                               cluster="employee_id")
        exits = ar.fit_cox(at.intervals, EXIT, start="start", stop="stop", event="event", cluster="manager_id")
        ignored = ar.fit_cox(static.intervals, STATIC_EXIT, start="start", stop="stop", event="event",
                             cluster="manager_id")
    out |= _row(promotion, "program_mentoring", truth.promotion_mentoring, "mentoring")
    out |= _row(exits, "recent_manager_change", truth.manager_change_exit_hr, "change")
    out |= _row(exits, "manager_program", truth.hr_manager_program, "program_history")
    out |= _row(ignored, "manager_program", truth.hr_manager_program, "program_static")
    out["promotions"] = int(at.careers["event"].sum())
    return out


@pytest.fixture(scope="module")
def runs():
    tasks = [Task("history", seed, seed=0) for seed in SEEDS]
    results = run_tasks(_one, tasks, backend=BACKEND, progress=False)
    return pd.DataFrame([results[task.key] for task in tasks])


@pytest.mark.parametrize("prefix", ["mentoring", "change"])
def test_careers_and_manager_change_intervals_cover_the_truth(runs, prefix):
    coverage = runs[f"{prefix}_covered"].mean()
    assert coverage >= 0.90, f"{prefix}: 95% CI covered the truth in {coverage:.0%} of {len(runs)} seeds"


def test_history_aware_programme_effect_is_unbiased_and_the_static_one_is_not(runs):
    truth = ar.default_truth().hr_manager_program
    history, static = runs["program_history_estimate"], runs["program_static_estimate"]
    se = history.std() / np.sqrt(len(runs))
    assert abs(history.mean() - truth) < 3.5 * se + 0.05, f"history-aware mean {history.mean():.3f}, truth {truth}"
    # the static manager mixes exposed and unexposed teams: the estimate is attenuated towards 0
    assert abs(static.mean()) < abs(history.mean()) - 0.03, (static.mean(), history.mean())
    assert (static - history).mean() * np.sign(-truth) < 0 or abs(static.mean() - truth) > abs(history.mean() - truth)
