"""Write the toolkit-like data set that ``glmm.R`` fits (R reference values for test_glmm.py).

Run from the repository root: ``python tests/reference/glmm_data.py``, then
``Rscript tests/reference/glmm.R``. One row per employee: a binary exit within
the year and a count of recognitions, for about 2,000 employees in 100 teams,
with a random intercept per manager. A fixed seed keeps the file stable.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20261202


def make_glmm_reference_data(seed: int = SEED) -> pd.DataFrame:
    """Return the reference data: 100 managers with 5 to 35 employees each."""
    rng = np.random.default_rng(seed)
    n_mgr = 100
    team_size = rng.integers(5, 36, n_mgr)
    mgr_program = rng.binomial(1, 0.4, n_mgr)
    mgr_exit = rng.normal(0.0, 0.6, n_mgr)  # sd of the manager intercept, log odds
    mgr_count = rng.normal(0.0, 0.4, n_mgr)  # sd of the manager intercept, log rate
    mgr = np.repeat(np.arange(n_mgr), team_size)
    n = len(mgr)
    align = rng.beta(3, 2, n)
    engagement = rng.normal(3.5, 0.6, n)
    job_level = rng.integers(1, 4, n)
    eta = -1.2 - 0.8 * align - 0.35 * mgr_program[mgr] - 0.3 * (engagement - 3.5) + 0.2 * (job_level == 3) \
        + mgr_exit[mgr]
    left = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    rate = np.exp(0.3 + 0.6 * align + 0.25 * mgr_program[mgr] + mgr_count[mgr])
    return pd.DataFrame({
        "employee_id": [f"E{i:05d}" for i in range(n)],
        "manager_id": [f"M{m:03d}" for m in mgr],
        "alignment_cascade": align.round(6),
        "manager_program": mgr_program[mgr],
        "engagement": engagement.round(6),
        "job_level": job_level,
        "left_within_year": left,
        "recognitions": rng.poisson(rate),
    })


if __name__ == "__main__":
    data = make_glmm_reference_data()
    data.to_csv(HERE / "glmm_data.csv", index=False)
    print(f"wrote {len(data)} rows to {HERE / 'glmm_data.csv'}")
