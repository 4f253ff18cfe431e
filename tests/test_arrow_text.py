"""The Arrow text load hands out as the column, and cleaning shares between steps, never changes an answer."""

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


def test_as_objects_gives_python_text_and_holds_the_arrow_text_it_came_from():
    table = pd.DataFrame({"id": pd.array(["a", None, "b", "a"], dtype=arrow_text.TEXT_DTYPE), "n": [1, 2, 3, 4]},
                         index=np.arange(2, 6))
    with arrow_text.shared_text():
        objects = arrow_text.as_objects(table)
        assert objects["id"].dtype == object and objects["n"].dtype == np.int64
        assert [type(v) for v in objects["id"]] == [str, float, str, str] and np.isnan(objects.loc[3, "id"])
        kind, arrow = arrow_text.text_kind(objects["id"])
        assert (kind, arrow.to_pylist()) == ("string", ["a", None, "b", "a"])
        assert arrow_text.text_kind(objects["id"])[1] is arrow  # held, not converted again
        codes, n_codes = arrow_text.value_codes(objects["id"])
        assert (codes.tolist(), n_codes) == ([1, 0, 2, 1], 3)
    assert table["id"].dtype == arrow_text.TEXT_DTYPE  # the input is not modified
    assert arrow_text.as_objects(objects) is objects  # nothing to convert


def test_an_edit_after_loading_changes_the_arrow_text_itself(tmp_path):
    path = tmp_path / "study"
    path.mkdir()
    (path / "study.yaml").write_text("window: {start: 2021-01-01, end: 2024-12-31}\n", encoding="utf-8")
    (path / "employees.csv").write_text("employee_id,hire_date,department\nE1,2021-01-04,Sales\nE2,2021-02-01,NA\n",
                                        encoding="utf-8")
    employees = ar.load_study(path).tables["employees"]
    assert all(arrow_text.is_text_column(employees[c]) for c in employees)
    assert employees["department"].tolist()[0] == "Sales" and np.isnan(employees["department"].tolist()[1])
    employees.loc[2, "department"] = " Legal"
    assert pa.chunked_array(employees["department"].array.__arrow_array__()).to_pylist() == [" Legal", None]


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
    # the same tables as Python text (object columns): cleaning converts every column to Arrow itself
    copied = Study(tables={t: f.astype(object) for t, f in loaded.tables.items()}, config=loaded.config,
                   path=loaded.path, sources=loaded.sources)
    assert all(v is np.nan or isinstance(v, str) for f in copied.tables.values() for v in f.to_numpy().ravel())
    problems, clean = ar.validate_and_clean(loaded)
    problems_copy, clean_copy = ar.validate_and_clean(copied)
    assert len(clean.report) > 50  # the simulated study is messy: plenty to compare
    pd.testing.assert_frame_equal(problems, problems_copy, check_exact=True)
    pd.testing.assert_frame_equal(clean.report, clean_copy.report, check_exact=True)
    pd.testing.assert_frame_equal(clean.counts, clean_copy.counts, check_exact=True)
    for table in clean.tables:
        pd.testing.assert_frame_equal(clean.tables[table], clean_copy.tables[table], check_exact=True)
        pd.testing.assert_frame_equal(clean.quarantine[table], clean_copy.quarantine[table], check_exact=True)


def test_first_positions_is_the_first_matching_row_inside_and_outside_shared_text(rng):
    ids = pd.Series([f"G{i}" for i in rng.integers(0, 200, 500)], dtype=object)
    ids[rng.random(500) < 0.05] = np.nan
    parents = pd.Series([f"G{i}" for i in rng.integers(0, 260, 800)], dtype=object)
    parents[rng.random(800) < 0.1] = None
    first = {}
    for position, value in enumerate(ids):
        if isinstance(value, str):
            first.setdefault(value, position)
    expected = [first.get(v, -1) if isinstance(v, str) else -1 for v in parents]
    assert 0 < sum(e >= 0 for e in expected) < len(expected)  # matches, misses and missing values
    assert arrow_text.first_positions(parents, ids).tolist() == expected
    loaded = pd.DataFrame({"parent": pd.array(parents.where(parents.notna(), None).tolist(),
                                              dtype=arrow_text.TEXT_DTYPE)})
    with arrow_text.shared_text():
        objects = arrow_text.as_objects(loaded)  # hashed once: the ids are looked up among its distinct texts
        kept = arrow_text.keep_rows(objects, np.arange(800) % 4 != 0)
        assert arrow_text.first_positions(objects["parent"], ids).tolist() == expected
        assert arrow_text.first_positions(kept["parent"], ids).tolist() == [e for i, e in enumerate(expected) if i % 4]
        again = arrow_text.first_positions(objects["parent"], ids)
        assert again is arrow_text.first_positions(objects["parent"], ids)  # kept for the pair: ids hashed once


def test_parse_dates_reads_distinct_texts_as_it_reads_cells(rng):
    texts = np.array(["2021-01-04", "02/01/2021", "13/01/2021", "44197", "44197.5", "0", "soon", "2021-02-30",
                      "3000000", " 2021-01-05"], dtype=object)
    cells = texts[rng.integers(0, len(texts), 300)]
    cells[rng.random(300) < 0.1] = np.nan
    table = pd.DataFrame({"date": cells}, index=np.arange(2, 302))
    formats = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"]
    plain = ar.clean.parse_dates(table, columns=["date"], formats=formats, file="f.csv", table="t")
    assert set(plain.issues["rule"]) == {"ambiguous_date", "excel_serial_date", "unparseable_date"}
    loaded = pd.DataFrame({"date": pd.array(cells.tolist(), dtype=arrow_text.TEXT_DTYPE)}, index=table.index)
    with arrow_text.shared_text():
        objects = arrow_text.as_objects(loaded)
        shared = ar.clean.parse_dates(objects, columns=["date"], formats=formats, file="f.csv", table="t")
    pd.testing.assert_frame_equal(shared.data, plain.data, check_exact=True)
    pd.testing.assert_frame_equal(shared.issues, plain.issues, check_exact=True)


def test_strip_text_of_a_loaded_column_strips_as_it_does_object_text(rng):
    texts = np.array(["a", " a", "a ", "", "   ", "\xa0b", "c\u3000", "d\te", "\u2028f", "g"], dtype=object)
    cells = texts[rng.integers(0, len(texts), 300)]
    cells[rng.random(300) < 0.1] = np.nan
    table = pd.DataFrame({"x": cells, "y": texts[rng.integers(0, 1, 300)]}, index=np.arange(2, 302))
    plain = ar.clean.strip_text(table, file="f.csv", table="t")
    assert len(plain.issues) > 50
    loaded = pd.DataFrame({c: pd.array(table[c].tolist(), dtype=arrow_text.TEXT_DTYPE) for c in table},
                          index=table.index)
    with arrow_text.shared_text():
        objects = arrow_text.as_objects(loaded)
        shared = ar.clean.strip_text(objects, file="f.csv", table="t")
        # the stripped column's Arrow text is what pandas would make of it
        assert arrow_text.text_kind(shared.data["x"])[1].to_pylist() == [
            None if v is np.nan else v for v in shared.data["x"]]
    pd.testing.assert_frame_equal(shared.data, plain.data, check_exact=True)
    pd.testing.assert_frame_equal(shared.issues, plain.issues, check_exact=True)


@pytest.mark.parametrize("unknown_as", [None, "other"])
def test_normalise_category_of_a_loaded_column_as_of_object_text(rng, unknown_as):
    texts = np.array(["Check-in", "check_in", "360 Review", "kudos", "recognition", "Recognition "], dtype=object)
    cells = texts[rng.integers(0, len(texts), 200)]
    cells[rng.random(200) < 0.1] = np.nan
    table = pd.DataFrame({"kind": cells}, index=np.arange(2, 202))
    kwargs = dict(column="kind", mapping={"kudos": "recognition"}, allowed=("check_in", "360_review", "recognition"),
                  snake=True, unknown_as=unknown_as, file="f.csv", table="t")
    plain = ar.clean.normalise_category(table, **kwargs)
    assert len(plain.issues) > 50
    loaded = pd.DataFrame({"kind": pd.array(cells.tolist(), dtype=arrow_text.TEXT_DTYPE)}, index=table.index)
    with arrow_text.shared_text():
        shared = ar.clean.normalise_category(arrow_text.as_objects(loaded), **kwargs)
        kind, arrow = arrow_text.text_kind(shared.data["kind"])  # the new column's Arrow text, made from its values
        assert arrow.to_pylist() == [v if isinstance(v, str) else None for v in shared.data["kind"]]
    pd.testing.assert_frame_equal(shared.data, plain.data, check_exact=True)
    pd.testing.assert_frame_equal(shared.issues, plain.issues, check_exact=True)


@pytest.mark.parametrize("layout", ["ids in order", "ids in order with missing", "repeats in order", "few texts",
                                    "out of order late", "out of order early", "short"])
def test_ordered_columns_are_coded_as_dictionary_encode_codes_them(layout):
    import pyarrow.compute as pc

    n = 20_000 if layout != "short" else 100
    ids = [f"G{i:07d}" for i in range(n)]
    if layout == "repeats in order":
        ids = [f"E{i // 3:06d}" for i in range(n)]
    elif layout == "few texts":
        ids = sorted(["2020", "2021", "2022"] * (n // 3))
    elif layout == "out of order late":
        ids[-5], ids[-4] = ids[-4], ids[-5]
    elif layout == "out of order early":
        ids[3], ids[2] = ids[2], ids[3]
    values = pa.array([None if layout.endswith("missing") and i % 11 == 0 else v for i, v in enumerate(ids)],
                      type=pa.large_string())
    ordered = arrow_text._ordered_codes(values)
    coded = layout in ("ids in order", "ids in order with missing", "repeats in order")
    assert (ordered is not None) == coded
    objects, codes, n_codes, dictionary = arrow_text._object_values(values)
    encoded = pc.dictionary_encode(values)
    assert np.array_equal(codes, pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False) + 1)
    assert dictionary.equals(encoded.dictionary) and n_codes == len(encoded.dictionary) + 1
    assert list(pd.isna(objects)) == [v is None for v in values.to_pylist()]
    assert [v for v in objects if isinstance(v, str)] == [v for v in values.to_pylist() if v is not None]
    if coded:
        assert n_codes - 1 == {"ids in order": n, "ids in order with missing": n - (n + 10) // 11,
                               "repeats in order": (n + 2) // 3}[layout]
