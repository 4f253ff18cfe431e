"""Ground truth: the engagement effects of alignment and of the manager's programme are recovered.

Each of 50 seeds simulates a survey panel from the engagement part of the
study simulator's truth model (``ar.Truth``: latent engagement =
intercept + ``engagement_alignment`` x cascade alignment +
``engagement_manager_program`` x manager programme + ``engagement_manager_rating``
x (manager rating - 3) + manager and person random intercepts + noise, read out
as the mean of five stochastically rounded 1-5 items). Managers with better
ratings are more likely to join the programme (the confounder), and the
programme starts part-way through the panel. The panel is generated directly
(numpy) so that 50 seeds fit in the time budget; the full study simulator is
exercised by the notebooks and by ``test_engagement.py``.
"""

import os
import warnings

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.executors import Task, run_tasks

#: The seeds run through the toolkit's runner: in-process under pytest-xdist (its workers use every core), else on a process pool.
BACKEND = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"
SEEDS = range(50)
TRUTH = ar.Truth()
TRUE = {"alignment_cascade": TRUTH.engagement_alignment, "manager_program": TRUTH.engagement_manager_program}
FORMULA = "engagement ~ alignment_cascade + manager_program + manager_rating"


def simulate_panel(seed: int, n_managers: int = 120, waves: int = 6) -> pd.DataFrame:
    """One simulated survey panel (employees nested in managers, repeated waves)."""
    rng = np.random.default_rng(seed)
    t = TRUTH
    rating = rng.integers(1, 6, n_managers).astype(float)
    joins = rng.random(n_managers) < 1 / (1 + np.exp(-(-0.6 + 0.8 * (rating - 3))))  # confounded selection
    start_wave = np.where(joins, rng.integers(2, waves + 1, n_managers), waves + 99)
    size = rng.integers(3, 14, n_managers)
    mgr = np.repeat(np.arange(n_managers), size)
    n_emp = len(mgr)
    team_align = rng.normal(0, 0.12, n_managers)  # teams differ in how well goals cascade
    person = rng.normal(0, t.engagement_person_sd, n_emp)
    mgr_re = rng.normal(0, t.engagement_manager_sd, n_managers)
    rows = []
    for w in range(1, waves + 1):
        responds = rng.random(n_emp) < 0.8
        e = np.flatnonzero(responds)
        m = mgr[e]
        align = np.clip(t.alignment_mean + team_align[m] + rng.normal(0, 0.2, len(e)), 0, 1)
        program = (w >= start_wave[m]).astype(float)
        latent = (
            t.engagement_intercept
            + t.engagement_alignment * align
            + t.engagement_manager_program * program
            + t.engagement_manager_rating * (rating[m] - 3)
            + mgr_re[m]
            + person[e]
            + rng.normal(0, t.engagement_residual_sd, len(e))
        )
        items = latent[:, None] + rng.normal(0, t.item_sd, (len(e), 5))
        items = np.clip(np.floor(items + rng.random(items.shape)), 1, 5)  # stochastic rounding to Likert points
        rows.append(
            pd.DataFrame(
                {
                    "employee_id": [f"E{i:06d}" for i in e],
                    "manager_id": [f"M{j:04d}" for j in m],
                    "wave": w,
                    "alignment_cascade": align,
                    "manager_program": program,
                    "manager_rating": rating[m],
                    "engagement": items.mean(axis=1),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _fit_seed(task) -> list[dict]:
    """The three models on the panel of one seed (``task.rep`` is the seed); runs in a worker process."""
    seed = task.rep
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        panel = simulate_panel(seed)
        ols = ar.fit_ols(panel, FORMULA, cluster="manager_id")
        within = ar.fit_within(panel, "engagement ~ alignment_cascade + manager_program + C(wave)",
                               cluster="manager_id")
        mixed = ar.fit_mixed(panel, FORMULA, groups="manager_id")
        for name, res in (("ols_cluster", ols), ("within", within), ("mixed", mixed)):
            t = res.tidy().set_index("term")
            for term, true in TRUE.items():
                out.append({"seed": seed, "model": name, "term": term, "estimate": t.loc[term, "estimate"],
                            "covered": float(t.loc[term, "conf_low"] <= true <= t.loc[term, "conf_high"])})
        naive = ols.extras["naive_std_error"].set_index("term")
        out.append({"seed": seed, "model": "ols_se_ratio", "term": "manager_program",
                    "estimate": naive.loc["manager_program", "ratio"], "covered": np.nan})
    return out


def _over_seeds(func, seeds, scenario: str) -> list:
    """``func`` for every seed through the toolkit's runner: one row list per seed, in seed order."""
    tasks = [Task(scenario, seed, seed=0) for seed in seeds]
    results = run_tasks(func, tasks, backend=BACKEND, progress=False)
    return [row for task in tasks for row in results[task.key]]


@pytest.fixture(scope="module")
def fits():
    return pd.DataFrame(_over_seeds(_fit_seed, SEEDS, "panel"))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["mixed", "within"])
@pytest.mark.parametrize("term", list(TRUE))
def test_true_effect_is_covered_in_at_least_90_percent_of_seeds(fits, model, term):
    """Measured on these 50 seeds: mixed 0.96 / 0.98, within 0.94 / 0.94 (alignment / programme)."""
    f = fits[(fits.model == model) & (fits.term == term)]
    assert len(f) == 50
    coverage = f.covered.mean()
    bias = f.estimate.mean() - TRUE[term]
    assert coverage >= 0.90, f"{model} {term}: coverage {coverage:.2f}"
    assert abs(bias) < 0.1 * TRUE[term], f"{model} {term}: bias {bias:.3f}"


@pytest.mark.slow
@pytest.mark.parametrize("term", list(TRUE))
def test_clustered_ols_is_close_to_nominal(fits, term):
    """CR1 with 120 clusters is slightly liberal for the employee-level alignment effect.

    Measured on these 50 seeds: 0.88 (alignment) and 0.98 (programme); on seeds
    50-199 alignment is covered in 0.93. We assert 0.85 here rather than pick seeds.
    """
    f = fits[(fits.model == "ols_cluster") & (fits.term == term)]
    assert f.covered.mean() >= 0.85, f.covered.mean()
    assert abs(f.estimate.mean() - TRUE[term]) < 0.1 * TRUE[term]


@pytest.mark.slow
def test_naive_ols_standard_error_is_too_small(fits):
    """The clustered SE of the manager programme is about 2.2x the naive one (median over seeds 2.21).

    The naive OLS standard error treats every response as independent; it is
    then less than half the cluster-robust one for a manager-level exposure.
    """
    ratio = fits[fits.model == "ols_se_ratio"].estimate
    assert ratio.median() > 1.8, ratio.median()
    assert (ratio > 1.1).mean() >= 0.95


def _full_study_seed(task) -> list[dict]:
    """simulate_study -> clean_study -> survey_panel -> fit_mixed for one seed (``task.rep``)."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        clean = ar.clean_study(ar.simulate_study(n_employees=400, seed=task.rep))
        # n_boot=0: the panel is the same; only the scales' reliability intervals (not used here) are bootstrapped
        panel = ar.build_analysis_tables(clean, n_boot=0).survey_panel
        t = ar.fit_mixed(panel, FORMULA, groups="employee_id", vc="manager_id").tidy().set_index("term")
        for term, true in TRUE.items():
            rows.append({"term": term, "covered": t.loc[term, "conf_low"] <= true <= t.loc[term, "conf_high"]})
    return rows


@pytest.mark.slow
def test_full_study_simulator_effects_are_recovered():
    """End to end: simulate_study -> clean_study -> survey_panel -> fit_mixed, 12 seeds of 400 employees.

    The model has random intercepts for employees nested in managers (the
    simulator's structure). Fewer seeds than above (each study takes seconds to
    simulate and clean), so the check is coarser: the truth is covered in at
    least 10 of 12 studies for each effect. Measured: alignment 11/12,
    programme 12/12 (a manager intercept alone gives 10/12 and 12/12).
    """
    rows = _over_seeds(_full_study_seed, range(12), "full study")
    hits = pd.DataFrame(rows).groupby("term")["covered"].sum()
    assert (hits >= 10).all(), hits.to_dict()
