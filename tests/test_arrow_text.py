"""The Arrow text of object columns, kept by load and shared by cleaning, never changes an answer."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import alignment_research as ar
from alignment_research import _arrow_text as arrow_text
from alignment_research.study import Study


def _random_table(rng, n=400):
    ids = np.array([f"E{i}" for i in rng.integers(0, 300, n)], dtype=object)
    ids[rng.random(n) < 0.1] = None
    ids[rng.random(n) < 0.1] = np.nan
    dates = pd.to_datetime("2021-01-01") + pd.to_timedelta(rng.integers(0, 5, n), unit="D")
    dates = dates.where(rng.random(n) > 0.1)
    return pd.DataFrame({"id": ids, "day": dates, "n": rng.integers(0, 3, n).astype(float)}, index=np.arange(2, n + 2))


@pytest.mark.parametrize("key", [["id"], ["id", "day"], ["day", "id", "n"], ["n"]])
def test_duplicated_key_is_pandas_duplicated_inside_and_outside_shared_text(rng, key):
    table = _random_table(rng)
    expected = table.duplicated(subset=key, keep=False).to_numpy()
    assert expected.any()
    assert (arrow_text.duplicated_key(table, key) == expected).all()
    with arrow_text.shared_text():
        kept = arrow_text.keep_rows(table, (table.index % 3 != 0))
        assert (arrow_text.duplicated_key(table, key) == expected).all()
        # the rows kept carry the codes along; asked again, the answer is still pandas'
        assert (arrow_text.duplicated_key(kept, key) == kept.duplicated(subset=key, keep=False).to_numpy()).all()


def test_value_codes_group_like_factorize_with_missing_as_zero(rng):
    column = _random_table(rng)["id"]
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    with arrow_text.shared_text():
        mine, n_codes = arrow_text.value_codes(column)
    assert n_codes == len(uniques) + 1
    assert ((mine == 0) == (codes == -1)).all()
    # the same partition: a code of one maps to exactly one code of the other
    assert pd.crosstab(mine, codes).astype(bool).sum(axis=1).eq(1).all()


def test_kept_text_is_refused_once_a_cell_changes_in_place():
    values = np.array(["a", "b", np.nan], dtype=object)
    arrow_text.keep(values, pa.array(["a", "b", None]))
    assert arrow_text.find(values.copy()) is None  # another array: nothing kept for it
    assert arrow_text.find(values).to_pylist() == ["a", "b", None]
    assert arrow_text.find(values) is None  # handed out once
    arrow_text.keep(values, pa.array(["a", "b", None]))
    values[2] = "c"
    assert arrow_text.find(values) is None


def test_cleaning_sees_a_cell_changed_in_place_after_loading(tmp_path):
    path = tmp_path / "study"
    path.mkdir()
    (path / "study.yaml").write_text("window: {start: 2021-01-01, end: 2024-12-31}\n", encoding="utf-8")
    (path / "employees.csv").write_text(
        "employee_id,hire_date,department\nE1,2021-01-04,Sales\nE2,2021-02-01,Legal\n", encoding="utf-8"
    )
    study = ar.load_study(path)
    employees = study.tables["employees"]
    employees.loc[3, "department"] = "  Legal  "  # in place: the Arrow text load kept no longer holds
    assert ar.clean_study(study).report.query("rule == 'untrimmed_text'")[["row", "column", "value"]].values.tolist() == [
        [3, "department", "  Legal  "]
    ]
    cleaned = ar.clean_study(study).tables["employees"]
    assert cleaned["department"].tolist() == ["Sales", "Legal"]


def test_a_loaded_study_cleans_as_its_copy_does(tmp_path, tiny_study):
    ar.write_simulated_study(tiny_study, tmp_path / "study")
    loaded = ar.load_study(tmp_path / "study")
    # copies hold new arrays: no Arrow text is kept for them, so cleaning converts every column itself
    copied = Study(tables={t: f.copy() for t, f in loaded.tables.items()}, config=loaded.config, path=loaded.path,
                   sources=loaded.sources)
    problems, clean = ar.validate_and_clean(loaded)
    problems_copy, clean_copy = ar.validate_and_clean(copied)
    assert len(clean.report) > 50  # the simulated study is messy: plenty to compare
    pd.testing.assert_frame_equal(problems, problems_copy, check_exact=True)
    pd.testing.assert_frame_equal(clean.report, clean_copy.report, check_exact=True)
    pd.testing.assert_frame_equal(clean.counts, clean_copy.counts, check_exact=True)
    for table in clean.tables:
        pd.testing.assert_frame_equal(clean.tables[table], clean_copy.tables[table], check_exact=True)
        pd.testing.assert_frame_equal(clean.quarantine[table], clean_copy.quarantine[table], check_exact=True)
