"""Write the toolkit survey panel that ``mixed_slopes.R`` fits (R reference values for test_mixed_slopes.py).

Run from the repository root: ``python tests/reference/mixed_slopes_data.py``, then
``Rscript tests/reference/mixed_slopes.R``. The panel is the analysis table
``survey_panel`` of a study made by the toolkit's own simulator
(``ar.simulate_study(n_employees=600, seed=1)``), cleaned by ``ar.clean_study``,
with the columns the random-slope models use and complete rows only. It is
synthetic: no real person is in it.
"""

import warnings
from pathlib import Path

import alignment_research as ar

HERE = Path(__file__).resolve().parent
COLUMNS = ["employee_id", "manager_id", "wave", "engagement", "alignment_cascade", "manager_program"]


def make_panel():
    """Return the complete rows of the simulated survey panel (about 2,150 responses, 62 managers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        panel = ar.clean_study(ar.simulate_study(n_employees=600, seed=1)).analysis.survey_panel
    return panel[COLUMNS].dropna().reset_index(drop=True)


if __name__ == "__main__":
    make_panel().to_csv(HERE / "mixed_slopes_panel.csv", index=False, float_format="%.10g")
