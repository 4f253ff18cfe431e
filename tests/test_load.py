"""Loading a study folder: CSV (BOM or not), Parquet, Excel, SQLite, vendor column maps, clear errors."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar

STUDY_YAML = "window: {start: 2021-01-01, end: 2024-12-31}\n"
VENDOR_MAP = "column_maps:\n  employees: {Emp ID: employee_id, Start Date: hire_date, Dept: department}\n"
EMPLOYEES_CSV = "employee_id,hire_date,department\nE1,2021-01-04,Sales\nE2,2020-01-01,Ré & D\n"


def folder(tmp_path, yaml=STUDY_YAML):
    path = tmp_path / "study"
    path.mkdir()
    (path / "study.yaml").write_text(yaml, encoding="utf-8")
    return path


#: How load_study hands out text: Arrow-backed strings, missing = NaN.
TEXT = pd.StringDtype("pyarrow", na_value=np.nan)


def expected_employees(hire=("2021-01-04", "2020-01-01")):
    frame = pd.DataFrame(
        {"employee_id": ["E1", "E2"], "hire_date": list(hire), "department": ["Sales", "Ré & D"]}, dtype=TEXT
    )
    frame.index = pd.RangeIndex(2, 4, name="row")
    return frame


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_with_and_without_bom(tmp_path, bom):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_bytes(bom + EMPLOYEES_CSV.encode("utf-8"))
    study = ar.load_study(study_dir)
    pd.testing.assert_frame_equal(study.tables["employees"], expected_employees())
    assert study.sources == {"employees": "employees.csv"}
    assert study.path == study_dir


def test_values_stay_raw_text_and_na_markers_become_missing(tmp_path):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_text("employee_id,hire_date,job_level\n007,01/02/2021, 3 \nE2,NA,\n")
    table = ar.load_study(study_dir).tables["employees"]
    assert table.loc[2].tolist() == ["007", "01/02/2021", " 3 "]  # no guessing of types, no stripping
    assert table.loc[3, "hire_date"] != table.loc[3, "hire_date"] and pd.isna(table.loc[3, "job_level"])


def test_undecodable_csv_names_the_file_and_row(tmp_path):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_bytes(EMPLOYEES_CSV.encode("latin-1"))
    with pytest.raises(ar.DataContractError, match=r"employees\.csv is not UTF-8 text .*line 3") as info:
        ar.load_study(study_dir)
    problem = info.value.problems.iloc[0]
    assert (problem["file"], problem["row"], problem["rule"]) == ("employees.csv", 3, "not_utf8")


def test_parquet_keeps_dates_and_turns_numbers_into_text(tmp_path):
    study_dir = folder(tmp_path)
    pd.DataFrame(
        {"employee_id": ["E1", "E2"], "hire_date": pd.to_datetime(["2021-01-04", "2020-01-01"]), "job_level": [1.0, None]}
    ).to_parquet(study_dir / "employees.parquet")
    table = ar.load_study(study_dir).tables["employees"]
    assert table.index.tolist() == [2, 3]
    assert str(table["hire_date"].dtype) == "datetime64[ns]"
    assert table.loc[2, "job_level"] == "1" and pd.isna(table.loc[3, "job_level"])
    clean = ar.clean_study(ar.load_study(study_dir))
    assert clean.tables["employees"]["job_level"].tolist() == [1, pd.NA]


def test_xlsx_with_vendor_headers_and_excel_dates(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + VENDOR_MAP)
    pd.DataFrame(
        {"Emp ID": ["E1", "E2"], "Start Date": [pd.Timestamp("2021-01-04"), 44197], "Dept": ["Sales", "Ré & D"]}
    ).to_excel(study_dir / "employees.xlsx", index=False)
    study = ar.load_study(study_dir)
    assert study.sources == {"employees": "employees.xlsx"}
    table = study.tables["employees"]
    assert list(table.columns) == ["employee_id", "hire_date", "department"]
    assert table.loc[2, "hire_date"] == pd.Timestamp("2021-01-04") and table.loc[3, "hire_date"] == "44197"
    clean = ar.clean_study(study)
    assert clean.tables["employees"]["hire_date"].tolist() == [pd.Timestamp("2021-01-04"), pd.Timestamp("2021-01-01")]
    assert clean.report.query("rule == 'excel_serial_date'")[["file", "row"]].values.tolist() == [["employees.xlsx", 3]]


def test_vendor_export_loads_unchanged_through_column_maps(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + VENDOR_MAP)
    (study_dir / "employees.csv").write_text(
        "Emp ID,Start Date,Dept,Cost Centre\nE1,2021-01-04,Sales,C1\nE2,2020-01-01,Ré & D,C2\n", encoding="utf-8"
    )
    study = ar.load_study(study_dir)
    expected = expected_employees().assign(**{"Cost Centre": pd.array(["C1", "C2"], dtype=TEXT)})
    pd.testing.assert_frame_equal(study.tables["employees"], expected)
    clean = ar.clean_study(study)
    flagged = clean.report.query("rule == 'unknown_column'")
    assert flagged[["column", "action"]].values.tolist() == [["Cost Centre", "flagged"]]
    assert "Cost Centre" in clean.tables["employees"]  # kept


def test_sqlite_database_through_sqlalchemy_url(tmp_path):
    study_dir = folder(
        tmp_path,
        STUDY_YAML + "database: {url: 'sqlite:///hris.db', tables: {employees: hr_people, reviews: perf}}\n"
        + "column_maps: {employees: {emp: employee_id}}\n",
    )
    with sqlite3.connect(study_dir / "hris.db") as con:
        pd.DataFrame({"emp": ["E1", "E2"], "hire_date": ["2021-01-04", "2020-01-01"], "department": ["Sales", "Ré & D"]}).to_sql(
            "hr_people", con, index=False
        )
        pd.DataFrame({"employee_id": ["E1"], "cycle": [2021], "rating": [4]}).to_sql("perf", con, index=False)
    study = ar.load_study(study_dir)
    assert study.sources == {"employees": "db:hr_people", "reviews": "db:perf"}
    pd.testing.assert_frame_equal(study.tables["employees"], expected_employees())
    assert study.tables["reviews"].loc[2].tolist() == ["E1", "2021", "4"]


def test_sqlite_missing_table_is_a_clear_error(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "database: {url: 'sqlite:///hris.db', tables: {employees: staff}}\n")
    with sqlite3.connect(study_dir / "hris.db") as con:
        con.execute("create table other (x int)")
    with pytest.raises(ar.DataContractError, match=r"names 'staff', which is not in the database"):
        ar.load_study(study_dir)


def test_missing_employees_table_names_folder_and_expected_files(tmp_path):
    study_dir = folder(tmp_path)
    with pytest.raises(ar.DataContractError, match=r"no employees table: expected one of employees\.csv, employees\.parquet, employees\.xlsx"):
        ar.load_study(study_dir)


def test_files_key_names_the_file(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "files: {employees: export_2024.csv}\n")
    (study_dir / "export_2024.csv").write_text(EMPLOYEES_CSV, encoding="utf-8")
    assert ar.load_study(study_dir).sources == {"employees": "export_2024.csv"}
    (study_dir / "export_2024.csv").unlink()
    with pytest.raises(ar.DataContractError, match="export_2024.csv"):
        ar.load_study(study_dir)


def test_two_files_for_one_table_is_ambiguous(tmp_path):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_text(EMPLOYEES_CSV, encoding="utf-8")
    pd.read_csv(study_dir / "employees.csv").to_parquet(study_dir / "employees.parquet")
    with pytest.raises(ar.ConfigError, match="keep one"):
        ar.load_study(study_dir)


def test_misspelt_study_yaml_key_is_a_config_error(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "colum_maps: {}\n")
    (study_dir / "employees.csv").write_text(EMPLOYEES_CSV, encoding="utf-8")
    with pytest.raises(ar.ConfigError, match="colum_maps.*unknown key"):
        ar.load_study(study_dir)


def test_duplicate_columns_after_mapping_are_a_clear_error(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "column_maps: {employees: {emp: employee_id}}\n")
    (study_dir / "employees.csv").write_text("emp,employee_id,hire_date\nE1,E1,2021-01-01\n", encoding="utf-8")
    with pytest.raises(ar.DataContractError, match="occur more than once") as info:
        ar.load_study(study_dir)
    assert info.value.problems["rule"].tolist() == ["duplicate_column"]


def test_malformed_csv_is_a_clear_error(tmp_path):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_text('employee_id,hire_date\n"E1,2021-01-01\nE2,2021-01-01,x,y\n', encoding="utf-8")
    with pytest.raises(ar.DataContractError, match="employees.csv"):
        ar.load_study(study_dir)


def test_blank_line_keeps_row_numbers_aligned(tmp_path):
    study_dir = folder(tmp_path)
    (study_dir / "employees.csv").write_text("employee_id,hire_date\nE1,2021-01-01\n\nE3,2021-01-03\n", encoding="utf-8")
    table = ar.load_study(study_dir).tables["employees"]
    assert table.loc[4, "employee_id"] == "E3"  # line 4 of the file is row 4
    clean = ar.clean_study(ar.load_study(study_dir))
    assert clean.quarantine["employees"].index.tolist() == [3]


def test_na_markers_padded_with_any_python_white_space_and_in_any_case_become_missing(tmp_path):
    study_dir = folder(tmp_path)
    cells = ["\u3000n/a\x1c", " Null ", "#n/a", "n/a2", "NAN", "E6 "]
    (study_dir / "employees.csv").write_text("employee_id,hire_date\n" + "".join(f"{c},2021-01-04\n" for c in cells))
    ids = ar.load_study(study_dir).tables["employees"]["employee_id"]
    assert ids.isna().tolist() == [True, True, True, False, True, False]
    assert ids[[5, 7]].tolist() == ["n/a2", "E6 "]
