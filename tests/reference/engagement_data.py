"""Write the fixed dataset that ``engagement.R`` fits (R reference values for test_engagement.py).

Run from the repository root: ``python tests/reference/engagement_data.py``, then
``Rscript tests/reference/engagement.R``. The data are a small survey panel
(employees nested in managers nested in departments, 3 waves) with an ordinal
rating and a binary exit, generated with a fixed seed so the file is stable.
"""

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 20261129


def make_engagement_reference_data(seed: int = SEED) -> pd.DataFrame:
    """Return the reference panel: 120 managers, about 600 employees, 3 waves."""
    rng = np.random.default_rng(seed)
    n_dept, n_mgr = 6, 120
    mgr_dept = rng.integers(0, n_dept, n_mgr)
    mgr_program = rng.binomial(1, 0.4, n_mgr)
    mgr_effect = rng.normal(0.0, 0.35, n_mgr)
    dept_effect = rng.normal(0.0, 0.2, n_dept)
    team_size = rng.integers(2, 9, n_mgr)
    mgr_of_emp = np.repeat(np.arange(n_mgr), team_size)
    n_emp = len(mgr_of_emp)
    emp_effect = rng.normal(0.0, 0.3, n_emp)
    job_level = rng.integers(1, 4, n_emp)
    rows = []
    for wave in (1, 2, 3):
        keep = rng.random(n_emp) < 0.85
        e = np.flatnonzero(keep)
        m = mgr_of_emp[e]
        align = np.clip(rng.beta(4, 3, len(e)) + 0.1 * mgr_program[m], 0, 1)
        eng = (
            3.2
            + 0.6 * align
            + 0.25 * mgr_program[m]
            - 0.1 * (job_level[e] == 2)
            + 0.05 * (job_level[e] == 3)
            + mgr_effect[m]
            + dept_effect[mgr_dept[m]]
            + emp_effect[e]
            + rng.normal(0.0, 0.5, len(e))
        )
        latent = 1.0 * align + 0.4 * mgr_program[m] + 0.5 * (eng - 3.5) + rng.logistic(size=len(e))
        rating = 1 + np.searchsorted(np.array([-1.5, -0.2, 1.2, 2.6]), latent)
        p_leave = 1 / (1 + np.exp(-(-1.0 - 0.9 * (eng - 3.5) - 0.3 * mgr_program[m] + 0.5 * mgr_effect[m])))
        rows.append(
            pd.DataFrame(
                {
                    "employee_id": [f"E{i:05d}" for i in e],
                    "manager_id": [f"M{j:04d}" for j in m],
                    "department": [f"D{d}" for d in mgr_dept[m]],
                    "job_level": job_level[e],
                    "wave": wave,
                    "alignment_cascade": np.round(align, 6),
                    "manager_program": mgr_program[m],
                    "engagement": np.round(eng, 6),
                    "rating": rating,
                    "left_next_cycle": rng.binomial(1, p_leave),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":
    data = make_engagement_reference_data()
    data.to_csv(HERE / "engagement_data.csv", index=False)
    print(f"wrote {len(data)} rows to {HERE / 'engagement_data.csv'}")
