"""Loading a real organisation's folder: paths stay in the study, nothing is lost, every problem at once."""

import importlib.util
import sqlite3

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import alignment_research as ar

STUDY_YAML = "window: {start: 2021-01-01, end: 2024-12-31}\n"
EMPLOYEES_CSV = "employee_id,hire_date,manager_id\nE1,2021-01-04,\nE2,2021-02-01,E1\nE3,2021-03-01,E1\n"


def folder(tmp_path, yaml=STUDY_YAML, employees=EMPLOYEES_CSV):
    path = tmp_path / "study"
    path.mkdir()
    (path / "study.yaml").write_text(yaml, encoding="utf-8")
    if employees is not None:
        (path / "employees.csv").write_text(employees, encoding="utf-8")
    return path


def outside_file(tmp_path, name="hr_export.csv", text=EMPLOYEES_CSV):
    """A file beside the study folder, not in it."""
    path = tmp_path / "elsewhere" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(study_dir):
    with pytest.raises(ar.DataContractError) as info:
        ar.load_study(study_dir)
    return info.value, info.value.problems


# --------------------------------------------------------------------------- 1. files stay in the study folder


@pytest.mark.parametrize("entry", ["absolute", "../elsewhere/hr_export.csv"])
def test_files_entry_outside_the_study_folder_is_refused(tmp_path, entry):
    target = outside_file(tmp_path)
    entry = str(target) if entry == "absolute" else entry
    study_dir = folder(tmp_path, STUDY_YAML + f"files: {{goals: '{entry}'}}\n")
    err, problems = problems_of(study_dir)
    assert problems[["file", "rule", "value"]].values.tolist() == [
        ["hr_export.csv", "outside_study_folder", str(target.resolve())]
    ]
    text = str(err)
    assert "study.yaml `files.goals`" in text and str(target.resolve()) in text
    assert "allow_outside_paths: true" in text


def test_a_link_pointing_out_of_the_study_folder_is_refused(tmp_path):
    target = outside_file(tmp_path, "goals_2024.csv", "goal_id,owner_id,cycle\nG1,E1,2021\n")
    study_dir = folder(tmp_path)
    (study_dir / "goals.csv").symlink_to(target)
    err, problems = problems_of(study_dir)
    assert problems[["rule", "value"]].values.tolist() == [["outside_study_folder", str(target.resolve())]]
    assert "goals.csv resolves to" in str(err)


def test_a_link_inside_the_study_folder_and_dotdot_that_stays_inside_are_fine(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "files: {goals: 'exports/../goals_2024.csv'}\n")
    (study_dir / "exports").mkdir()
    (study_dir / "goals_2024.csv").write_text("goal_id,owner_id,cycle\nG1,E1,2021\nG2,E2,2021\n", encoding="utf-8")
    study = ar.load_study(study_dir)
    assert len(study.tables["goals"]) == 2
    assert study.outside_sources == {}


def test_absolute_sqlite_url_outside_the_study_folder_is_refused(tmp_path):
    db = tmp_path / "elsewhere" / "hris.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as con:
        pd.DataFrame({"employee_id": ["E1"], "cycle": ["2021"]}).to_sql("perf", con, index=False)
    study_dir = folder(tmp_path, STUDY_YAML + f"database: {{url: 'sqlite:///{db}', tables: {{reviews: perf}}}}\n")
    err, problems = problems_of(study_dir)
    assert problems[["file", "rule", "value"]].values.tolist() == [["hris.db", "outside_study_folder", str(db)]]
    assert "study.yaml `database.url`" in str(err)


def test_outside_paths_allowed_are_read_and_recorded(tmp_path):
    target = outside_file(tmp_path, "goals_2024.csv", "goal_id,owner_id,cycle\nG1,E1,2021\n")
    db = tmp_path / "elsewhere" / "hris.db"
    with sqlite3.connect(db) as con:
        pd.DataFrame({"employee_id": ["E1", "E2"], "cycle": ["2021", "2021"]}).to_sql("perf", con, index=False)
    study_dir = folder(
        tmp_path,
        STUDY_YAML + f"allow_outside_paths: true\nfiles: {{goals: '{target}'}}\n"
        f"database: {{url: 'sqlite:///{db}', tables: {{reviews: perf}}}}\n",
    )
    study = ar.load_study(study_dir)
    assert {t: len(f) for t, f in study.tables.items()} == {"employees": 3, "goals": 1, "reviews": 2}
    assert study.sources["goals"] == "goals_2024.csv"
    assert study.outside_sources == {"goals": str(target.resolve()), "reviews": f"{db} (table perf)"}


def test_database_server_is_recorded_with_its_password_masked(tmp_path):
    cfg = ar.config_from_dict(
        {"window": {"start": "2021-01-01", "end": "2024-12-31"},
         "database": {"url": "mysql+pymysql://analyst:s3cret@db.example.org/hris", "tables": {"employees": "staff"}}}
    )
    assert ar.load.outside_sources(cfg, tmp_path) == {"employees": "mysql+pymysql://analyst:***@db.example.org/hris (table staff)"}


def test_index_page_names_sources_read_from_outside(tmp_path):
    from alignment_research.run import _write_index

    target = outside_file(tmp_path)
    study_dir = folder(tmp_path, STUDY_YAML + f"allow_outside_paths: true\nfiles: {{employees: '{target}'}}\n", None)
    cleaned = ar.clean_study(ar.load_study(study_dir))
    reports = pd.DataFrame(columns=["title", "skipped", "html", "no_input"])
    out = tmp_path / "out"
    out.mkdir()
    page = _write_index(out, study_dir, cleaned, reports, "0").read_text()
    assert "<h2>Sources read from outside the study folder</h2>" in page
    assert f"<li>employees: <code>{target.resolve()}</code></li>" in page
    (study_dir / "employees.csv").write_text(EMPLOYEES_CSV, encoding="utf-8")
    (study_dir / "study.yaml").write_text(STUDY_YAML, encoding="utf-8")
    page = _write_index(out, study_dir, ar.clean_study(ar.load_study(study_dir)), reports, "0").read_text()
    assert "outside the study folder" not in page


# --------------------------------------------------------------------------- 2. Excel: which sheet


def two_sheet_workbook(path, second_name="Staff (2)"):
    """An export whose rows continue on a second sheet."""
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"employee_id": ["E1", "E2"], "hire_date": ["2021-01-04", "2021-02-01"]}).to_excel(
            xl, sheet_name="Staff", index=False
        )
        pd.DataFrame({"employee_id": ["E3", "E4", "E5"], "hire_date": ["2021-03-01"] * 3}).to_excel(
            xl, sheet_name=second_name, index=False
        )


def test_workbook_with_data_on_two_sheets_and_none_named_stops(tmp_path):
    study_dir = folder(tmp_path, employees=None)
    two_sheet_workbook(study_dir / "employees.xlsx")
    err, problems = problems_of(study_dir)
    assert problems[["file", "rule", "value"]].values.tolist() == [
        ["employees.xlsx", "ambiguous_sheets", "Staff, Staff (2)"]
    ]
    assert "'Staff' (2 rows below its first), 'Staff (2)' (3 rows below its first)" in str(err) and "sheets:" in str(err)


def test_sheet_named_in_study_yaml_is_read(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "sheets: {employees: Staff (2)}\n", employees=None)
    two_sheet_workbook(study_dir / "employees.xlsx")
    table = ar.load_study(study_dir).tables["employees"]
    assert table["employee_id"].tolist() == ["E3", "E4", "E5"] and table.index.tolist() == [2, 3, 4]


def test_unknown_sheet_name_lists_the_sheets(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "sheets: {employees: staff}\n", employees=None)
    two_sheet_workbook(study_dir / "employees.xlsx")
    err, problems = problems_of(study_dir)
    assert problems[["rule", "value"]].values.tolist() == [["unknown_sheet", "staff"]]
    assert "its sheets are ['Staff', 'Staff (2)']" in str(err)


def test_the_only_sheet_with_data_is_read_wherever_it_is(tmp_path):
    study_dir = folder(tmp_path, employees=None)
    with pd.ExcelWriter(study_dir / "employees.xlsx") as xl:
        pd.DataFrame().to_excel(xl, sheet_name="Cover", index=False)
        pd.DataFrame({"employee_id": ["E1", "E2"], "hire_date": ["2021-01-04"] * 2}).to_excel(xl, sheet_name="Data", index=False)
    assert ar.load_study(study_dir).tables["employees"]["employee_id"].tolist() == ["E1", "E2"]


def test_sheet_named_for_a_csv_table_is_an_error(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "sheets: {employees: Staff}\n")
    _, problems = problems_of(study_dir)
    assert problems[["file", "rule", "value"]].values.tolist() == [["employees.csv", "sheet_not_applicable", "Staff"]]


# --------------------------------------------------------------------------- 3. duplicated column names


def test_csv_with_a_duplicated_header_is_fatal_and_names_the_column(tmp_path):
    study_dir = folder(
        tmp_path,
        employees="employee_id,hire_date,termination_date,hire_date\nE1,2021-01-04,2022-05-01,2021-01-04\n",
    )
    err, problems = problems_of(study_dir)
    assert problems[["file", "row", "column", "rule", "value"]].values.tolist() == [
        ["employees.csv", 1, "hire_date", "duplicate_column", "hire_date, hire_date"]
    ]
    assert "['hire_date'] occur more than once" in str(err) and "header columns [2, 4]" in str(err)


def test_two_vendor_columns_mapped_onto_one_name_are_fatal(tmp_path):
    study_dir = folder(
        tmp_path,
        STUDY_YAML + "column_maps: {employees: {Start: hire_date, Rehire: hire_date}}\n",
        "employee_id,Start,Rehire\nE1,2021-01-04,2022-01-01\n",
    )
    err, problems = problems_of(study_dir)
    assert problems[["column", "rule", "value"]].values.tolist() == [
        ["hire_date", "duplicate_column", "Start -> hire_date, Rehire -> hire_date"]
    ]
    assert "after study.yaml `column_maps`" in str(err)


def test_xlsx_and_parquet_with_a_duplicated_header_are_fatal(tmp_path):
    study_dir = folder(tmp_path, employees=None)
    frame = pd.DataFrame([["E1", "2021-01-04", "2022-01-01"]], columns=["employee_id", "hire_date", "hire_date"])
    frame.to_excel(study_dir / "employees.xlsx", index=False)
    pq.write_table(
        pa.table([pa.array(["G1"]), pa.array(["E1"]), pa.array(["E1"])], names=["goal_id", "owner_id", "owner_id"]),
        study_dir / "goals.parquet",
    )
    _, problems = problems_of(study_dir)
    assert problems[["file", "column", "rule"]].values.tolist() == [
        ["employees.xlsx", "hire_date", "duplicate_column"],
        ["goals.parquet", "owner_id", "duplicate_column"],
    ]


def test_a_row_longer_than_the_header_is_malformed_not_shifted(tmp_path):
    # pandas would silently make the first column the index: every employee id lost
    study_dir = folder(tmp_path, employees="employee_id,hire_date\nE1,2021-01-04,\nE2,2021-02-01,\n")
    _, problems = problems_of(study_dir)
    assert problems["rule"].tolist() == ["malformed_csv"]
    assert "Expected 2 fields in line 2, saw 3" in problems.loc[0, "value"]


# --------------------------------------------------------------------------- 4. missing-value markers

MARKERS = [" NA", "N/A ", "-", "none", "nil", "?", "null", "NULL", "#N/A", "NaN", "nan", "", "   ", "<NA>", " n/a"]


@pytest.mark.parametrize("marker", MARKERS)
def test_missing_value_markers_never_become_ids(tmp_path, marker):
    study_dir = folder(tmp_path, employees=f"employee_id,hire_date,manager_id\nE1,2021-01-04,{marker}\n{marker},2021-02-01,E1\n")
    table = ar.load_study(study_dir).tables["employees"]
    assert table["employee_id"].isna().tolist() == [False, True]
    assert table["manager_id"].isna().tolist() == [True, False]


def test_padded_na_is_missing_after_cleaning_and_not_an_employee(tmp_path):
    study_dir = folder(tmp_path, employees="employee_id,hire_date,manager_id\nE1,2021-01-04, NA\n NA,2021-02-01,E1\n")
    clean = ar.clean_study(ar.load_study(study_dir))
    employees = clean.tables["employees"]
    assert employees["employee_id"].tolist() == ["E1"] and employees["manager_id"].isna().all()
    assert clean.quarantine["employees"].index.tolist() == [3]
    assert clean.quarantine["employees"]["rule"].tolist() == ["missing_required"]


def test_markers_apply_to_xlsx_and_database_tables(tmp_path):
    study_dir = folder(
        tmp_path, STUDY_YAML + "database: {url: 'sqlite:///hris.db', tables: {reviews: perf}}\n", employees=None
    )
    pd.DataFrame({"employee_id": ["E1", " NA ", "#n/a"], "hire_date": ["2021-01-04"] * 3}).to_excel(
        study_dir / "employees.xlsx", index=False
    )
    with sqlite3.connect(study_dir / "hris.db") as con:
        pd.DataFrame({"employee_id": ["E1", "null "], "cycle": ["2021", "-"]}).to_sql("perf", con, index=False)
    study = ar.load_study(study_dir)
    assert study.tables["employees"]["employee_id"].isna().tolist() == [False, True, True]
    assert study.tables["reviews"].isna().values.tolist() == [[False, False], [True, True]]


def test_na_values_in_study_yaml_replace_the_default(tmp_path):
    study_dir = folder(
        tmp_path, STUDY_YAML + "na_values: ['n.v.', '-1']\n", "employee_id,hire_date,department\nE1,2021-01-04, N.V.\nE2,-1,-\n"
    )
    table = ar.load_study(study_dir).tables["employees"]
    assert table.isna().values.tolist() == [[False, False, True], [False, True, False]]
    assert table.loc[3, "department"] == "-"  # no longer a marker: the list replaces the default


# --------------------------------------------------------------------------- 5. settings that used to give a traceback


@pytest.mark.parametrize(
    "yaml, key",
    [
        ("window: {start: 2021-02-30, end: 2024-12-31}\n", "`window.start`"),
        (STUDY_YAML + "cycles: [{name: 2021, start: 2021-01-01, end: 2021-02-30}]\n", "`cycles.0.end`"),
    ],
)
def test_impossible_date_in_study_yaml_names_the_key(tmp_path, yaml, key):
    study_dir = folder(tmp_path, yaml)
    with pytest.raises(ar.ConfigError, match="day value is outside expected range") as info:
        ar.load_study(study_dir)
    assert key in str(info.value) and "2021-02-30" in str(info.value)


@pytest.mark.parametrize(
    "fmt, says",
    [("'%d/%m/%Q'", "uses %Q, which is not a strptime directive"), ("DD/MM/YYYY", "has no % directive"),
     ("'%d.%m.'", "has no year"), ("'%Y-%m-%d %'", "ends with a lone '%'")],
)
def test_bad_date_format_names_the_key(tmp_path, fmt, says):
    study_dir = folder(tmp_path, STUDY_YAML + f"date_formats: ['%Y-%m-%d', {fmt}]\n")
    with pytest.raises(ar.ConfigError, match="`date_formats`") as info:
        ar.load_study(study_dir)
    assert "entry 1 " in str(info.value) and says in str(info.value)


@pytest.mark.parametrize(
    "url, package",
    [("postgresql://analyst:s3cret@db.example.org/hris", "psycopg"), ("mysql+pymysql://analyst@db/hris", "pymysql")],
)
def test_database_driver_not_installed_names_the_package(tmp_path, url, package):
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    study_dir = folder(tmp_path, STUDY_YAML + f"database: {{url: '{url}', tables: {{reviews: perf}}}}\n")
    with pytest.raises(ar.ConfigError, match=r"`database.url`") as info:
        ar.load_study(study_dir)
    text = str(info.value)
    assert f"pip install {package}" in text and "s3cret" not in text and len(text.splitlines()) == 1


def test_unknown_database_kind_and_bad_url_syntax_name_the_key(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "database: {url: 'postgress://db/hris', tables: {reviews: perf}}\n")
    with pytest.raises(ar.ConfigError, match=r"`database.url`.*'postgress'.*use one of \['sqlite', 'postgresql'"):
        ar.load_study(study_dir)
    (study_dir / "study.yaml").write_text(STUDY_YAML + "database: {url: 'hris.db', tables: {reviews: perf}}\n")
    with pytest.raises(ar.ConfigError, match=r"`database.url`: .*not a SQLAlchemy URL.*'hris.db' was given"):
        ar.load_study(study_dir)


# --------------------------------------------------------------------------- 6. column_maps naming absent columns


def test_column_map_naming_an_absent_column_is_an_error(tmp_path):
    study_dir = folder(tmp_path, STUDY_YAML + "column_maps: {employees: {Emp ID: employee_id, Mgr: manager_id}}\n")
    err, problems = problems_of(study_dir)
    assert problems[["file", "row", "column", "rule", "value"]].values.tolist() == [
        ["employees.csv", 1, "Emp ID", "unknown_mapped_column", "columns present: employee_id, hire_date, manager_id"],
        ["employees.csv", 1, "Mgr", "unknown_mapped_column", "columns present: employee_id, hire_date, manager_id"],
    ]
    assert "employees.csv" in str(err) and "['Emp ID', 'Mgr']" in str(err)


# --------------------------------------------------------------------------- 7. every file problem in one pass


def test_every_file_problem_is_reported_at_once(tmp_path):
    outside = outside_file(tmp_path, "surveys.csv", "employee_id,survey_date\nE1,2021-05-01\n")
    study_dir = folder(
        tmp_path,
        STUDY_YAML
        + f"files: {{reviews: reviews_2024.csv, surveys: '{outside}'}}\n"
        + "column_maps: {goals: {Owner: owner_id}}\n",
        employees=None,
    )
    (study_dir / "goals.csv").write_text("goal_id,owner_id,cycle\nG1,E1,2021\n", encoding="utf-8")
    (study_dir / "feedback.csv").write_text("employee_id,date,kind,date\nE1,2021-01-01,check_in,x\n")
    (study_dir / "programs.csv").write_bytes("employee_id,program,start_date\nE1,Führung,2021-01-01\n".encode("latin-1"))
    err, problems = problems_of(study_dir)
    assert problems[["file", "rule"]].values.tolist() == [
        ["study", "missing_table"],
        ["goals.csv", "unknown_mapped_column"],
        ["reviews_2024.csv", "missing_file"],
        ["surveys.csv", "outside_study_folder"],
        ["programs.csv", "not_utf8"],
        ["feedback.csv", "duplicate_column"],
    ]
    assert str(err).startswith("study: 6 problems with the study's files")
    assert set(problems["rule"]) <= set(ar.schema.RULES)


def test_the_loader_rules_are_in_the_catalogue():
    loader_rules = {"missing_table", "missing_file", "outside_study_folder", "not_utf8", "empty_file", "malformed_csv",
                    "unreadable_file", "unreadable_database", "duplicate_column", "unknown_mapped_column",
                    "unknown_sheet", "ambiguous_sheets", "sheet_not_applicable"}
    assert loader_rules - set(ar.schema.RULES) == set()
