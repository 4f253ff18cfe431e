"""Recovery of every claim's true effect by the scorecard, and its family-wise error under an all-null truth (slow).

Each of 50 seeds simulates a study of ``N`` employees (``messy=False``: the
design is tested, not the cleaning), cleans it and runs
``ar.claims_scorecard`` (``n_boot=BOOT``) in two scenarios:

* effect: the simulator's defaults (``ar.Truth(practices=True)``, the
  default since the sample is drawn with the practices; job history on). Each non-zero effect is the estimand of one
  scorecard row, on the scale the row reports (``ESTIMANDS``): per check-in a
  month over the 3 months before the survey day or interval start (claim 1,
  engagement points and log hazard ratio), a manager's first 360 review (claim
  2, leadership points), per recognition in the 6 months before the interval
  start (claim 3, log hazard ratio), the square term of attainment ~ d + d^2
  (claim 5), a goal set jointly (claim 6), a goal revised mid-cycle (claim 7),
  cascade alignment from 0 to 1 (claims 8 and 9). The retention rows of claims
  1 and 3 adjust for each other (both follow the person's feedback
  multiplier). The 95% interval (``conf_low, conf_high``; log scale for
  hazard ratios) must cover the truth in at least 90% of the seeds where the
  row is testable (and it must be testable in at least 45).
* null: every effect the family tests set to 0 (``NULL``), as are the
  effects on exits and engagement that could confound them. The share of seeds
  with any ``supported`` verdict must be at most ``0.05 + 2 * sqrt(0.05 * 0.95
  / 50)`` = 0.112: the nominal family-wise rate (Bonferroni-width adjusted
  intervals) plus two Monte Carlo standard errors (0.031 with n = 50 seeds).

Measured (n = 600, 50 seeds; 8 min wall on 2 cores, `pytest tests/test_recovery_claims.py -m claims --runxfail`),
after the survey claims took errors
clustered by manager and respondent (a person's repeated answers had made the manager-intercept intervals too
narrow: claim 1 engagement covered 0.80, claim 8 perceived -> engagement 0.82, and 7 of 50 null seeds (0.14) had a
supported row): coverage (mean estimate / truth) claim 1 engagement 0.90 (0.0988 / 0.1), claim 1 exit 0.90
(-0.183 / -0.15), claim 2 leadership 0.96 (0.200 / 0.2), claim 3 exit 0.98 (-0.103 / -0.1), claim 5 square term
0.90 (-0.0202 / -0.02), claim 6 0.96 (0.0405 / 0.04), claim 7 0.96 (-0.0497 / -0.05), claim 8 reach 0.94
(0.794 / 0.8), claim 8 cascade -> engagement 0.94 (0.484 / 0.5), claim 9 attainment 0.98 (0.0507 / 0.05); declared
zeros 0.94-0.98 except claim 2's team engagement, 0.88 (see UNDER_COVERED). Under the null 3 of 50 seeds (0.06) had
a supported row.
"""

import math
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.executors import Task, run_tasks

pytestmark = [pytest.mark.slow, pytest.mark.claims]

N = 600
BOOT = 50
SEEDS = range(50)
#: The seeds run through the toolkit's runner: in-process under pytest-xdist (its workers use every core), else on a process pool.
BACKEND = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"

#: Scorecard row (claim number, exposure, outcome) -> the Truth field that is its estimand, and whether it is a ratio.
ESTIMANDS = {
    (1, "feedback per month (last 3 months)", "engagement"): "engagement_checkin_rate",
    (1, "feedback per month (last 3 months)", "voluntary exit"): "hr_checkin_rate",
    (2, "manager's first 360 review", "perceived leadership"): "leadership_manager_360",
    (3, "recognitions in the last 6 months", "voluntary exit"): "hr_recognitions",
    (5, "difficulty (1-5)", "goal attainment"): "attainment_difficulty_curvature",
    (6, "goal set jointly", "goal attainment"): "attainment_set_jointly",
    (7, "goal revised mid-cycle", "goal attainment"): "attainment_revised",
    (8, "cascade alignment", "perceived alignment"): "perceived_alignment_cascade",
    (8, "cascade alignment", "engagement"): "engagement_alignment",
    (9, "cascade alignment", "target attainment"): "attainment_alignment",
}
#: Rows whose true effect is zero by design in the defaults (declared zeros of `ar.Truth`).
ZEROS = {
    (2, "manager's first 360 review", "team engagement"): "engagement_manager_360",
    (5, "difficulty (1-5)", "rating"): "rating_difficulty",
    (6, "share of goals set jointly", "engagement"): "engagement_set_jointly",
    (7, "mean weeks between check-ins", "attainment"): "attainment_checkin_gap",
    (7, "irregularity of check-ins (CV of gaps)", "attainment"): "attainment_checkin_gap",
    (8, "perceived alignment", "engagement"): "engagement_perceived_alignment",
    (8, "manager programme (indirect via alignment)", "engagement"): "engagement_perceived_alignment",
    (9, "cascade alignment", "review rating"): "rating_alignment",
}
#: The all-null truth: no effect of any exposure the family tests, nor of the exits' and engagement's other causes.
NULL = dict(
    engagement_alignment=0.0, engagement_manager_program=0.0, engagement_manager_rating=0.0,
    perceived_alignment_cascade=0.0, leadership_manager_program=0.0, hr_alignment=0.0, hr_engagement=0.0,
    hr_manager_program=0.0, hr_manager_rating=0.0, manager_change_exit_hr=0.0,
    attainment_difficulty_curvature=0.0, attainment_set_jointly=0.0, attainment_revised=0.0,
    attainment_alignment=0.0, engagement_checkin_rate=0.0, hr_checkin_rate=0.0, hr_recognitions=0.0,
    leadership_manager_360=0.0,
)
FWER_BOUND = 0.05 + 2 * math.sqrt(0.05 * 0.95 / len(SEEDS))


def _truth(scenario: str) -> ar.Truth:
    return ar.Truth(practices=True) if scenario == "effect" else ar.Truth(practices=True, **NULL)


def _one(task) -> list[dict]:
    """The scorecard of one simulated study (``task.payload`` is the scenario, ``task.rep`` the seed)."""
    scenario, seed = task.payload, task.rep
    sim = ar.simulate_study(n_employees=N, seed=9000 + seed, messy=False, truth=_truth(scenario))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = ar.claims_scorecard(ar.clean_study(sim), n_boot=BOOT, seed=seed)
    out = []
    for row in card.itertuples():
        ratio = bool(row.ratio)
        low, high, est = row.conf_low, row.conf_high, row.estimate
        if ratio:
            low, high, est = np.log(low), np.log(high), np.log(est)
        out.append(dict(scenario=scenario, seed=seed, claim_no=row.claim_no, exposure=row.exposure,
                        outcome=row.outcome, verdict=row.verdict, estimate=est, conf_low=low, conf_high=high))
    return out


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    tasks = [Task(scenario, seed, seed=0, payload=scenario) for scenario in ("effect", "null") for seed in SEEDS]
    results = run_tasks(_one, tasks, backend=BACKEND, progress=False)
    out = pd.DataFrame([row for task in tasks for row in results[task.key]])
    path = os.environ.get("RECOVERY_CLAIMS_DUMP")  # for writing up the measured figures
    if path:
        out.to_csv(path, index=False)
    return out


def _coverage(runs: pd.DataFrame, key: tuple, truth: float) -> tuple[float, int, float]:
    claim_no, exposure, outcome = key
    rows = runs[(runs["scenario"] == "effect") & (runs["claim_no"] == claim_no) & (runs["exposure"] == exposure)
                & (runs["outcome"] == outcome) & runs["estimate"].notna()]
    covered = (rows["conf_low"] <= truth) & (truth <= rows["conf_high"])
    return float(covered.mean()) if len(rows) else float("nan"), len(rows), float(rows["estimate"].mean())


#: Measured on these 50 seeds (n = 600, 2026-12-02, survey claims with errors clustered by manager and respondent):
#: the row below under-covers. Its within-manager design (wave fixed effects) already clusters by manager and
#: respondent; its standard error (mean 0.041) is below the estimate's SD over seeds (0.045) and the mean is 0.011
#: (truth 0): a staggered two-way fixed-effects design. Strict: fixing the design turns it into a pass.
UNDER_COVERED = {
    (2, "manager's first 360 review", "team engagement"): "mean 0.0112 (truth 0), coverage 0.88 (44 of 50; two-way "
                                                          "clustering left the SE at 0.041 against an SD of 0.045)",
}


def _cases(keys):
    return [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=UNDER_COVERED[k])) if k in UNDER_COVERED
            else k for k in keys]


@pytest.mark.parametrize("key", _cases(ESTIMANDS), ids=lambda k: f"{k[0]}-{k[2]}")
def test_each_nonzero_effect_is_covered(runs, key):
    """Each non-zero default effect is inside the row's 95% interval in at least 90% of the seeds."""
    truth = getattr(ar.Truth(), ESTIMANDS[key])
    assert truth != 0
    coverage, n, mean = _coverage(runs, key, truth)
    assert n >= 45, f"{key}: testable in only {n} seeds"
    assert coverage >= 0.90, f"{key}: truth {truth}, mean estimate {mean:.4f}, coverage {coverage:.2f} over {n}"


@pytest.mark.parametrize("key", _cases(ZEROS), ids=lambda k: f"{k[0]}-{k[1][:12]}-{k[2]}")
def test_declared_zero_effects_are_covered(runs, key):
    """The rows whose true effect is zero by design cover 0 in at least 90% of the seeds too."""
    assert getattr(ar.Truth(), ZEROS[key]) == 0
    coverage, n, mean = _coverage(runs, key, 0.0)
    assert n >= 45, f"{key}: testable in only {n} seeds"
    assert coverage >= 0.90, f"{key}: mean estimate {mean:.4f}, coverage {coverage:.2f} over {n}"


def test_family_wise_error_under_the_null(runs):
    """Under the all-null truth, at most 5% + 2 Monte Carlo SE (0.112 for 50 seeds) have any 'supported' verdict."""
    null = runs[runs["scenario"] == "null"]
    assert null["seed"].nunique() == len(SEEDS)
    any_supported = null.groupby("seed")["verdict"].apply(lambda v: (v == "supported").any())
    share = float(any_supported.mean())
    assert share <= FWER_BOUND, f"{share:.3f} of seeds have a supported verdict (bound {FWER_BOUND:.3f})"
