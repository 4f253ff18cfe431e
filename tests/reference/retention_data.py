"""Write the fixed inputs of the retention reference chain (retention_data.py -> retention.R -> retention_*.csv).

Two data sets:

* ``retention_input_intervals.csv`` / ``retention_input_person.csv``: the
  analysis tables of ``ar.simulate_study(n_employees=1500, seed=11)`` after
  ``ar.clean_study`` (daily tenure, left truncation, time-varying covariates),
  restricted to the columns the reference models use.
* ``retention_input_monthly.csv``: start/stop rows in whole months from
  ``alignment_research._cox.simulate_counting_process(800, seed=3, year=12)``,
  so that many events share a time (Efron ties matter).

Run from the repository root: ``.venv/bin/python tests/reference/retention_data.py``
(then ``Rscript tests/reference/retention.R``).
"""

from pathlib import Path

import alignment_research as ar
from alignment_research._cox import simulate_counting_process

HERE = Path(__file__).parent

INTERVAL_COLUMNS = ["employee_id", "spell", "manager_id", "department", "start", "stop", "event", "event_type",
                    "alignment_cascade", "engagement", "manager_program", "manager_rating", "job_level"]
PERSON_COLUMNS = ["employee_id", "spell", "manager_id", "department", "entry", "exit", "event", "event_type",
                  "manager_ever_program", "job_level"]


def main() -> None:
    analysis = ar.clean_study(ar.simulate_study(n_employees=1500, seed=11)).analysis
    intervals = analysis.intervals[INTERVAL_COLUMNS].dropna().reset_index(drop=True)
    person = analysis.person[PERSON_COLUMNS].dropna().reset_index(drop=True)
    intervals.to_csv(HERE / "retention_input_intervals.csv", index=False, float_format="%.8g")
    person.to_csv(HERE / "retention_input_person.csv", index=False, float_format="%.8g")
    monthly, _ = simulate_counting_process(800, seed=3, year=12)
    monthly.to_csv(HERE / "retention_input_monthly.csv", index=False, float_format="%.8g")
    print(f"intervals {len(intervals)} rows, person {len(person)} rows, monthly {len(monthly)} rows")


if __name__ == "__main__":
    main()
