"""validate_study and the `validate` / `clean` commands: exit codes and what they print."""

import pandas as pd
import pytest
from typer.testing import CliRunner

import alignment_research as ar
from alignment_research.cli import app

STUDY_YAML = (
    "window: {start: 2021-01-01, end: 2024-12-31}\n"
    "cycles: [{name: '2021', start: 2021-01-01, end: 2021-12-31}]\n"
)
GOOD = "employee_id,hire_date,manager_id\nE1,2020-01-01,\nE2,2021-03-01,E1\n"
BROKEN = "employee_id,hire_date,manager_id\nE1,2020-01-01,\nE2,2021-03-01,E1\nE3,,E1\nE4,2021-02-30,E77\n"

runner = CliRunner()


def study_dir(tmp_path, employees=GOOD, reviews=None):
    path = tmp_path / "study"
    path.mkdir()
    (path / "study.yaml").write_text(STUDY_YAML)
    (path / "employees.csv").write_text(employees)
    if reviews is not None:
        (path / "reviews.csv").write_text(reviews)
    return path


def test_clean_study_has_no_problems(tmp_path):
    problems = ar.validate_study(ar.load_study(study_dir(tmp_path)))
    assert list(problems.columns) == ["file", "table", "row", "column", "rule", "value", "fatal"]
    assert problems.empty


def test_row_problems_are_listed_but_not_fatal(tmp_path):
    problems = ar.validate_study(ar.load_study(study_dir(tmp_path, BROKEN)))
    assert problems[["file", "row", "column", "rule", "value", "fatal"]].values.tolist() == [
        ["employees.csv", 5, "hire_date", "unparseable_date", "2021-02-30", False],
        ["employees.csv", 4, "hire_date", "missing_required", None, False],
        ["employees.csv", 5, "hire_date", "missing_required", None, False],
    ]


def test_missing_required_column_is_fatal(tmp_path):
    path = study_dir(tmp_path, reviews="employee_id,rating\nE1,3\n")
    problems = ar.validate_study(ar.load_study(path))
    fatal = problems[problems["fatal"]]
    assert fatal[["file", "column", "rule"]].values.tolist() == [["reviews.csv", "cycle", "missing_column"]]


def test_empty_employees_table_is_fatal(tmp_path):
    path = study_dir(tmp_path, employees="employee_id,hire_date\n")
    problems = ar.validate_study(ar.load_study(path))
    assert problems[["file", "rule", "fatal"]].values.tolist() == [["employees.csv", "empty_table", True]]
    with pytest.raises(ar.DataContractError, match="empty_table"):
        ar.clean_study(ar.load_study(path))


def test_unknown_columns_are_warnings(tmp_path):
    path = study_dir(tmp_path, employees="employee_id,hire_date,shoe_size\nE1,2020-01-01,42\n")
    problems = ar.validate_study(ar.load_study(path))
    assert problems[["column", "rule", "fatal"]].values.tolist() == [["shoe_size", "unknown_column", False]]


def test_cli_validate_exit_0_when_clean(tmp_path):
    result = runner.invoke(app, ["validate", str(study_dir(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "no problems found" in " ".join(result.output.split())


def test_cli_validate_prints_problems_and_exits_0_when_none_fatal(tmp_path):
    result = runner.invoke(app, ["validate", str(study_dir(tmp_path, BROKEN))])
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())  # rich wraps long lines
    assert "warn employees.csv, row 5, column hire_date: unparseable_date (value: '2021-02-30')" in printed
    assert "3 problem(s), 0 fatal." in printed


def test_cli_validate_exits_1_on_fatal(tmp_path):
    path = study_dir(tmp_path, reviews="employee_id,rating\nE1,3\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "FATAL reviews.csv, row <NA>, column cycle: missing_column" in " ".join(result.output.split())


def test_cli_validate_unreadable_file_exits_1_without_traceback(tmp_path):
    path = study_dir(tmp_path)
    (path / "employees.csv").write_bytes("employee_id,hire_date\nE\xe91,2020-01-01\n".encode("latin-1"))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_cli_clean_writes_tables_report_and_quarantine(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["clean", str(study_dir(tmp_path, BROKEN)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "employees.parquet").exists()
    report = pd.read_csv(out / "cleaning_report.csv")
    absent = report["rule"] == "absent_column"
    assert report.loc[~absent, "rule"].tolist() == ["unparseable_date", "missing_required", "missing_required"]
    assert report.loc[absent, "column"].tolist() == [
        "termination_date", "termination_type", "department", "job_level", "location", "gender", "birth_year"
    ]
    quarantine = pd.read_csv(out / "quarantine" / "employees.csv", index_col="row")
    assert quarantine.index.tolist() == [4, 5]
    assert quarantine["reason"].tolist() == ["missing required field(s): hire_date"] * 2
    assert pd.read_parquet(out / "employees.parquet")["employee_id"].tolist() == ["E1", "E2"]
    written = {p.name for p in (out / "analysis").glob("*.parquet")}
    assert {"cycles.parquet", "intervals.parquet", "person.parquet", "survey_panel.parquet"} <= written
