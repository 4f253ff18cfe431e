"""validate_study and the `validate` / `clean` commands: exit codes and what they print."""

from pathlib import Path

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
    assert list(problems.columns) == ["file", "table", "row", "column", "rule", "value", "action", "fatal"]
    assert problems.empty


def test_row_problems_are_listed_but_not_fatal(tmp_path):
    problems = ar.validate_study(ar.load_study(study_dir(tmp_path, BROKEN)))
    assert problems[["file", "row", "column", "rule", "value", "action", "fatal"]].values.tolist() == [
        ["employees.csv", 5, "hire_date", "unparseable_date", "2021-02-30", "set_missing", False],
        ["employees.csv", 4, "hire_date", "missing_required", None, "quarantined", False],
        ["employees.csv", 5, "hire_date", "missing_required", None, "quarantined", False],
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
    assert problems[["column", "rule", "action", "fatal"]].values.tolist() == [["shoe_size", "unknown_column", "flagged", False]]


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
    assert "3 problem(s) of 2 kind(s), 0 fatal: usable" in printed


def test_cli_validate_exits_1_on_fatal(tmp_path):
    path = study_dir(tmp_path, reviews="employee_id,rating\nE1,3\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "FATAL reviews.csv, column cycle: missing_column" in " ".join(result.output.split())


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


# ----------------------------------------------------------------- one pass, summary, hints, examples
US_DATES = "employee_id,hire_date\n" + "".join(f"E{i},{i % 12 + 1:02d}/{i % 28 + 13:02d}/2021\n" for i in range(40))


def test_row_problems_of_usable_tables_are_listed_beside_a_fatal_table(tmp_path):
    path = study_dir(tmp_path, BROKEN, reviews="employee_id,rating\nE1,3\n")
    problems = ar.validate_study(ar.load_study(path))
    assert problems[["file", "rule", "action", "fatal"]].values.tolist() == [
        ["reviews.csv", "missing_column", "stop", True],
        ["employees.csv", "unparseable_date", "set_missing", False],
        ["employees.csv", "missing_required", "quarantined", False],
        ["employees.csv", "missing_required", "quarantined", False],
    ]


def test_month_day_year_dates_get_one_summary_line_and_a_hint(tmp_path):
    result = runner.invoke(app, ["validate", str(study_dir(tmp_path, US_DATES))])
    assert result.exit_code == 1  # 40 of 40 hire dates unreadable: the study cannot be used
    lines = result.output.splitlines()
    assert lines[0] == "81 problem(s) of 3 kind(s), 1 fatal: not usable as it is: fix the fatal problem(s) and run again."
    hint = "hint: dates look like month/day/year: add '%m/%d/%Y' to study.yaml `date_formats`"
    assert sum(hint in line for line in lines) == 3  # unreadable_column, missing_required, unparseable_date
    problem_lines = [line for line in lines if line.startswith(("warn ", "FATAL "))]
    assert len(problem_lines) == 1 + 5 + 5
    assert "  ... and 35 more unparseable_date in the same file and column: row 7, row 8, row 9, row 10, row 11, " \
        "row 12, row 13, row 14, row 15, row 16, row 17, row 18, row 19, row 20, row 21, row 22, row 23, row 24, row 25, " \
        "row 26 and 15 other rows" in lines
    assert lines[-1] == "81 problem(s), 1 fatal."


@pytest.mark.parametrize("options, shown", [(["--examples", "2"], 1 + 2 + 2), (["--all"], 81), (["--examples", "0"], 0)])
def test_examples_option_and_all(tmp_path, options, shown):
    result = runner.invoke(app, ["validate", str(study_dir(tmp_path, US_DATES)), *options])
    assert sum(line.startswith(("warn ", "FATAL ")) for line in result.output.splitlines()) == shown


def test_output_writes_every_problem_with_action_and_hint(tmp_path):
    target = tmp_path / "out" / "problems.csv"
    result = runner.invoke(app, ["validate", str(study_dir(tmp_path, US_DATES)), "--output", str(target)])
    assert result.exit_code == 1
    written = pd.read_csv(target, dtype=str)
    assert list(written.columns) == ["file", "table", "row", "column", "rule", "value", "action", "hint"]
    assert written["rule"].value_counts().to_dict() == {"missing_required": 40, "unparseable_date": 40, "unreadable_column": 1}
    assert written.loc[written["rule"] == "unreadable_column", "action"].tolist() == ["stop"]
    assert written["hint"].str.startswith("dates look like month/day/year").all()
    assert "wrote 81 problem(s) to" in " ".join(result.output.split())


def test_every_file_level_problem_of_load_study_is_shown(tmp_path, monkeypatch):
    import alignment_research.load as load

    problems = pd.DataFrame({"file": [f"f{i}.csv" for i in range(12)] + ["reviews.csv"], "row": [None] * 12 + [7],
                             "column": None, "rule": ["not_utf8"] * 12 + ["malformed_csv"], "value": None})

    def refuse(path):
        raise ar.DataContractError("study: 13 problems with the study's files", problems)

    monkeypatch.setattr(load, "load_study", refuse)
    result = runner.invoke(app, ["validate", str(tmp_path), "--examples", "20"])
    assert result.exit_code == 1
    printed = result.output
    assert printed.startswith("study: 13 problems with the study's files\n")
    assert all(f"FATAL f{i}.csv: not_utf8" in printed for i in range(12))
    assert "FATAL reviews.csv, row 7: malformed_csv" in printed
    assert "hint: re-save the file as 'CSV UTF-8'" in printed
    frame = ar.validate.problems_from_error(ar.DataContractError("x", problems))
    assert frame["table"].tolist() == [None] * 12 + ["reviews"]
    assert frame["fatal"].all() and (frame["action"] == "stop").all()


def problem_rows(rule, column, values, file="e.csv", table="employees"):
    n = len(values)
    return pd.DataFrame({"file": file, "table": table, "row": list(range(2, n + 2)), "column": column,
                         "rule": rule, "value": values, "action": "set_missing", "fatal": False})


@pytest.mark.parametrize(
    "values, hint",
    [
        (["02/13/2021", "01/31/2021"], "dates look like month/day/year: add '%m/%d/%Y'"),
        (["13.02.2021", "31.01.21", "28.01.21"], "dates look like day/month/year: add '%d.%m.%y'"),
        (["02/13/2021", "13/02/2021"], "the column mixes month/day/year ('02/13/2021') and day/month/year ('13/02/2021')"),
        (["01/02/2021", "03/04/2021"], "dates are day and month in some order: add the format the export uses, '%d/%m/%Y' or '%m/%d/%Y'"),
        (["2021-01-04 10:30:00", "2021-01-05 11:00:00"], "dates carry a time of day: add '%Y-%m-%d %H:%M:%S'"),
        (["2021/01/04", "2021/12/05"], "dates look like year/month/day: add '%Y/%m/%d'"),
        (["2023-02-30", "2022-13-01"], "the dates are written year-month-day but do not exist (e.g. '2023-02-30')"),
        (["31/31/2021"], "the dates do not exist (e.g. '31/31/2021')"),
        (["Jan 4, 2021", "4 Feb 2021"], "dates spell the month: add a format such as '%d %b %Y'"),
        (["??", "x"], "add the format the export uses to study.yaml `date_formats`"),
    ],
)
def test_date_hints_name_the_likely_format(values, hint):
    explained = ar.explain_problems(problem_rows("unparseable_date", "hire_date", values))
    assert explained["hint"].str.startswith(hint).all(), explained["hint"].iloc[0]


def test_answer_and_column_hints():
    codes = ar.explain_problems(problem_rows("out_of_range_answer", "engagement_2", ["99", "99", "7"], table="surveys"))
    assert codes["hint"].iloc[0].startswith("99 looks like a 'no answer' code: declare it in study.yaml `na_values`")
    wide = ar.explain_problems(problem_rows("out_of_range_answer", "engagement_2", ["6", "7"], table="surveys"))
    assert "answers run from 6 to 7" in wide["hint"].iloc[0] and "`scales.engagement.min` / `max`" in wide["hint"].iloc[0]
    missing = problem_rows("missing_column", "hire_date", ["columns present: Employee ID, Hire Date, Dept"])
    assert ar.explain_problems(missing)["hint"].iloc[0] == (
        "the file has 'Hire Date': if that is hire_date, map it in study.yaml "
        "`column_maps: {employees: {'Hire Date': hire_date}}`"
    )
    manager = ar.explain_problems(problem_rows("unknown_manager", "manager_id", ["E9"]))
    assert manager["hint"].iloc[0] == ar.schema.HINTS["unknown_manager"]


def test_summary_counts_each_rule_once_fatal_first():
    problems = pd.concat([
        problem_rows("unknown_manager", "manager_id", ["E9", "E8", "E7"]),
        problem_rows("unreadable_column", "hire_date", ["40 of 40 rows"]).assign(fatal=True, action="stop"),
        problem_rows("unparseable_date", "termination_date", ["x"], file="other.csv"),
        problem_rows("unparseable_date", "hire_date", ["y"]),
    ], ignore_index=True)
    summary = ar.summarise_problems(problems)
    assert summary[["rule", "fatal", "count", "places", "file", "row"]].values.tolist() == [
        ["unreadable_column", True, 1, 1, "e.csv", 2],
        ["unknown_manager", False, 3, 1, "e.csv", 2],
        ["unparseable_date", False, 2, 2, "other.csv", 2],
    ]
    assert ar.validate.format_problems(problems.iloc[0:0]) == "no problems found."


# The sample study's problems by table and rule (data/sample as regenerated with the practices on, `make sample`).
SAMPLE_PROBLEMS = {
    ("employees", "conflicting_duplicate"): 2, ("employees", "duplicate_row"): 2, ("employees", "excel_serial_date"): 3,
    ("employees", "implausible_date"): 1, ("employees", "missing_required"): 1,
    ("employees", "noncanonical_category"): 19, ("employees", "termination_before_hire"): 1,
    ("employees", "unknown_manager"): 1, ("employees", "untrimmed_text"): 6,
    ("feedback", "duplicate_row"): 2, ("feedback", "implausible_date"): 1, ("feedback", "quarantined_employee"): 35,
    ("feedback", "unknown_giver"): 2,
    ("goals", "duplicate_row"): 2, ("goals", "missing_required"): 1, ("goals", "unknown_owner"): 27,
    # one injected problem per history rule, and the history rows of employees rows with an injected problem
    # (a 1901 hire date: history_before_hire; manager E9999999: history_disagrees_at_hire). Two unknown managers:
    # the injected history_manager_not_employed row names a manager whose only employees row is itself
    # quarantined (injected termination_before_hire), so cleaning cannot know them.
    ("job_history", "history_after_termination"): 1, ("job_history", "history_before_hire"): 1,
    ("job_history", "history_disagrees_at_hire"): 2, ("job_history", "history_level_change_without_reason"): 1,
    ("job_history", "history_same_day_conflict"): 2, ("job_history", "history_unknown_manager"): 1,
    ("job_history", "quarantined_employee"): 6,
    # the simulator's hire row of a spell hired before the window carries the values in force at the window
    # start (the export starts there), so its manager may have joined after the hire date: the rule checks such
    # rows on the window's start (528 flags of noise before it did). The 4 left were hired into a vacancy and
    # name the successor; no change row is flagged.
    # 4 and 2 before the simulator stopped naming, as not employed, a manager whose own employees row it had
    # also made a problem of (cleaning then read that manager as unknown). 19 since the sample is drawn with the
    # practices (other draws): most are rows naming two successor managers (E001302, E001304) before their hire.
    ("job_history", "history_manager_not_employed"): 19,
    ("reviews", "conflicting_duplicate"): 2, ("reviews", "quarantined_employee"): 5,
    ("surveys", "duplicate_row"): 2, ("surveys", "out_of_range_answer"): 6, ("surveys", "quarantined_employee"): 8,
    ("surveys", "survey_after_termination"): 1, ("programs", "quarantined_employee"): 1,
}


def test_sample_study_validates_with_the_same_problems_as_before():
    """The sample's problems by rule; 174 before the sample gained job history, 131 outside job_history now."""
    study = ar.load_study(Path(__file__).parents[1] / "data" / "sample")
    problems = ar.validate_study(study)
    assert not problems["fatal"].any()
    assert problems.groupby(["table", "rule"]).size().to_dict() == SAMPLE_PROBLEMS
    assert len(problems) == 164
    assert not problems["rule"].isin(
        ["self_managed", "manager_cycle", "goal_cycle", "hire_in_future", "hire_after_window", "ambiguous_date"]
    ).any()
    history = study.tables["job_history"]
    away = history.loc[problems.loc[problems["rule"] == "history_manager_not_employed", "row"].astype(int)]
    # hire rows naming a manager not yet hired (4 before the sample was drawn with the practices), and the
    # simulator's injected problem: a change of manager, on a transfer row here, to someone who had left
    assert away["reason"].value_counts().to_dict() == {"hire": 18, "transfer": 1}


@pytest.mark.xfail(strict=True, reason="measured 16 on the sample drawn with the practices (0 before): hire rows of "
                   "spells hired before the window name, as in force at the window's start, a successor manager "
                   "(E001302, E001304) hired after it; a simulator defect, to mend in the simulator, not the rule")
def test_sample_history_names_no_manager_before_they_were_hired():
    """The simulator's hire rows before the window carry the manager in force at its start, who is employed then."""
    study = ar.load_study(Path(__file__).parents[1] / "data" / "sample")
    problems = ar.validate_study(study)
    history = study.tables["job_history"]
    away = history.loc[problems.loc[problems["rule"] == "history_manager_not_employed", "row"].astype(int)]
    assert (away["effective_date"] < study.config.window.start.isoformat()).sum() == 0


# ----------------------------------------------------------------- validate_and_clean: one cleaning for both
def test_validate_and_clean_gives_what_validate_study_and_clean_study_give(tmp_path):
    study = ar.load_study(study_dir(tmp_path, BROKEN, reviews="employee_id,cycle,rating\nE1,2021,4\nE9,2021,3\n"))
    problems, clean = ar.validate_and_clean(study)
    pd.testing.assert_frame_equal(problems, ar.validate_study(study))
    assert problems[["table", "row", "rule"]].values.tolist() == [
        ["employees", 5, "unparseable_date"], ["employees", 4, "missing_required"],
        ["employees", 5, "missing_required"], ["reviews", 3, "unknown_employee"],
    ]
    expected = ar.clean_study(study)
    assert clean.tables.keys() == expected.tables.keys()
    for table in expected.tables:
        pd.testing.assert_frame_equal(clean.tables[table], expected.tables[table])
        pd.testing.assert_frame_equal(clean.quarantine[table], expected.quarantine[table])
    pd.testing.assert_frame_equal(clean.report, expected.report)
    assert clean.counts.values.tolist() == [["employees", 4, 2, 2], ["reviews", 2, 1, 1]]


def test_validate_and_clean_returns_no_clean_study_when_a_problem_is_fatal(tmp_path):
    study = ar.load_study(study_dir(tmp_path, "employee_id,manager_id\nE1,\n"))  # no hire_date
    problems, clean = ar.validate_and_clean(study)
    assert clean is None
    assert problems.loc[problems["fatal"], ["column", "rule", "action"]].values.tolist() == [
        ["hire_date", "missing_column", "stop"]
    ]
    with pytest.raises(ar.DataContractError):
        ar.clean_study(study)


def test_validate_study_cleans_once(tmp_path, monkeypatch):
    import alignment_research.clean as clean_module

    calls = []
    original = clean_module._clean
    monkeypatch.setattr(clean_module, "_clean", lambda *a, **k: calls.append(1) or original(*a, **k))
    ar.validate_study(ar.load_study(study_dir(tmp_path, BROKEN)))
    assert len(calls) == 1
