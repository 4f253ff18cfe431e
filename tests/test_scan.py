"""Pseudonymised studies analyse like plain ones; rendered and exported files are scanned for the study's own ids."""

from __future__ import annotations

import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.privacy import pseudonymise_ids

KEY = "test-key-0123456789abcdef"

# --------------------------------------------------------------------------- pseudonymisation


def _pseudonymised(study):
    config = study.config.model_copy(update={"pseudonymise": True})
    return ar.Study(tables=study.tables, config=config, path=study.path, sources=study.sources)


def test_pseudonymised_analysis_tables_equal_the_plain_ones_up_to_the_ids(tiny_study, tiny_clean, monkeypatch):
    # the class of bug: any step that treats pseudonymised ids differently (dtype, joins, rehires)
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    plain = tiny_clean.analysis
    hidden = ar.clean_study(_pseudonymised(tiny_study)).analysis
    assert plain.person["spell"].max() >= 2  # the study holds a rehire (several spells of one id)
    for name in ["person", "intervals", "survey_panel", "cycles"]:
        expected, got = getattr(plain, name), getattr(hidden, name)
        ids = [c for c in expected.columns if c in {"employee_id", "manager_id"}]
        expected = pseudonymise_ids(expected, ids)
        order = list(expected.columns[:6])
        pd.testing.assert_frame_equal(
            got.sort_values(order, kind="stable").reset_index(drop=True),
            expected.sort_values(order, kind="stable").reset_index(drop=True),
            obj=name,
        )


@pytest.mark.parametrize("dtype", [object, "string"])
def test_pseudonymise_ids_keeps_the_columns_kind_of_text(dtype, monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", KEY)
    df = pd.DataFrame({"employee_id": pd.Series(["E1", None, "E1"], dtype=dtype)})
    out = pseudonymise_ids(df, ["employee_id"])
    assert out["employee_id"].dtype == df["employee_id"].dtype
    assert out["employee_id"].isna().tolist() == [False, True, False]
    assert out["employee_id"][0] == out["employee_id"][2] != "E1"
