"""The data contract as pandera schemas, the rule catalogue and the data dictionary."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pandera.pandas as pa

from ._arrow_text import duplicated_key
from .config import FEEDBACK_KINDS, HISTORY_REASONS, SET_WITH, TABLES, StudyConfig, config_from_dict

__all__ = [
    "RULES",
    "HINTS",
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "HISTORY_RULES",
    "COVARIATE_DTYPES",
    "COVARIATE_TABLES",
    "DERIVED_COLUMNS",
    "OPTIONAL_GOAL_COLUMNS",
    "GOAL_SUMMARY_COLUMNS",
    "ITEM_PATTERN",
    "YEARS_AFTER_WINDOW",
    "table_schema",
    "data_dictionary",
    "register_dictionary",
]

#: A survey item column: ``<scale>_<n>``.
ITEM_PATTERN = re.compile(r"^(?P<scale>[a-z][a-z0-9_]*?)_(?P<n>\d+)$")

#: Dates later than ``window.end`` plus this many years are implausible.
YEARS_AFTER_WINDOW = 5

#: Every rule the toolkit checks: rule id -> the text shown to users.
#: The same ids name the pandera checks, the cleaning report's ``rule`` and the
#: quarantine's ``rule``; the text is the quarantine's ``reason``.
RULES: dict[str, str] = {
    # reading (load_study raises DataContractError with these)
    "missing_file": "a file named in study.yaml (or the database file) does not exist",
    "not_utf8": "the CSV file is not UTF-8 text; save it as 'CSV UTF-8'",
    "empty_file": "the file is empty; it needs at least a header row",
    "malformed_csv": "the CSV file is malformed (quoting or number of fields)",
    "unreadable_file": "the Parquet or Excel file cannot be read",
    "unreadable_database": "the database cannot be read",
    "outside_study_folder": "the file is outside the study folder; copy it in or set study.yaml `allow_outside_paths: true`",
    "unknown_mapped_column": "study.yaml `column_maps` names a column the file does not have",
    "unknown_sheet": "study.yaml `sheets` names a sheet the workbook does not have",
    "ambiguous_sheets": "several sheets of the workbook hold data; name the one to read in study.yaml `sheets`",
    "sheet_not_applicable": "study.yaml `sheets` names a sheet for a table not read from an .xlsx workbook",
    # structure (validate_study; fatal ones listed in contract.FATAL_RULES)
    "missing_table": "the study has no employees table; add employees.csv (or .parquet/.xlsx) or name it in study.yaml `files`",
    "empty_table": "the employees table has no rows",
    "missing_column": "a required column is missing; map the vendor's name onto it with study.yaml `column_maps`",
    "duplicate_column": "two columns have the same name after applying `column_maps`",
    "unreadable_column": "too many values of a required column are unreadable or missing; check study.yaml `date_formats` and `column_maps`",
    "missing_covariate": "study.yaml `covariates` names a column that neither employees nor job_history has",
    "unknown_column": "column is not part of the data contract; kept unchanged",
    "stretch_needs_target_and_baseline": "goals has a target column without a baseline column (or a baseline without "
                                         "a target): stretch is derived only from both; the column is kept",
    # fixed in place
    "untrimmed_text": "leading or trailing white space removed (a blank cell becomes missing)",
    "noncanonical_category": "category written differently from its canonical value; normalised",
    "excel_serial_date": "Excel serial day number converted to a date",
    "ambiguous_date": "date fits more than one of study.yaml `date_formats` with different results; the first format's reading is kept",
    "reverse_coded": "reverse-coded item recoded as min + max - x (once per column)",
    "unmapped_feedback_kind": "feedback kind is neither canonical (check_in, 360_review, recognition, other) nor mapped "
                              "by study.yaml `feedback_kinds`: kept as other",
    # set to missing
    "absent_column": "optional column (or declared survey item) absent from the source; added with every value missing",
    "unknown_category": "value is not one of the allowed categories; set to missing",
    "unparseable_date": "date not readable in any of study.yaml `date_formats` nor as an Excel serial number; set to missing",
    "not_a_number": "value is not a number; set to missing",
    "not_a_boolean": "value of a boolean covariate is not yes/no, true/false, y/n or 1/0; set to missing",
    "out_of_range_job_level": "job_level is not a whole number in 1..5; set to missing",
    "implausible_birth_year": "birth_year is not a plausible year of birth; set to missing",
    "out_of_range_rating": "rating is not a whole number in 1..5; set to missing",
    "out_of_range_attainment": "attainment is not in 0..10 (1.0 = target met); set to missing",
    "out_of_range_weight": "goal weight is negative; set to missing",
    "out_of_range_answer": "survey answer outside the scale's min..max or not a whole number; set to missing",
    "out_of_range_difficulty": "goal difficulty is not in 1..5 (as rated); set to missing, the goal kept",
    "revised_before_cycle": "revised_date is before the start of the goal's cycle (a goal cannot be revised before "
                            "it is set); set to missing, the goal kept",
    "revised_after_cycle": "revised_date is after the end of the goal's cycle, so not a mid-cycle revision; set to "
                           "missing, the goal kept",
    "self_managed": "manager_id is the employee's own id; the link is cut (set to missing)",
    "manager_cycle": "manager links form a loop (A manages B manages A); one link of the loop is cut, every spell on it reported",
    "goal_cycle": "parent_goal_id links form a loop (or a goal is its own parent); one link of the loop is cut, every goal on it reported",
    # quarantined
    "missing_required": "a required field is missing or unreadable",
    "implausible_date": "date outside the plausible range [earliest_plausible_date, window end + 5 years]",
    "termination_before_hire": "termination_date is before hire_date",
    "end_before_start": "end_date is before start_date",
    "duplicate_row": "exact duplicate of an earlier row (after normalising text and dates)",
    "conflicting_duplicate": "several rows share the same key but differ; none can be trusted",
    "overlapping_spells": "an employment spell starts before the same employee's previous spell ended; neither can be trusted",
    "unknown_employee": "employee_id is not in the employees table",
    "quarantined_employee": "every employment spell of this employee_id is in quarantine (see quarantine/employees.csv)",
    "unknown_cycle": "cycle is not one of the cycles declared in study.yaml",
    "hire_in_future": "hire_date is after today's date: the spell has not started (a planned hire or a typo)",
    "survey_before_hire": "survey response dated before the respondent was hired",
    "survey_after_termination": "survey response dated after the respondent's termination_date (of that spell)",
    "history_before_hire": "job_history row dated before the employee's hire (in no employment spell): quarantined",
    "history_after_termination": "job_history row dated after the termination_date of the employee's spell: quarantined",
    "history_same_day_conflict": "several job_history rows of one employee on the same effective_date disagree; none can be trusted: quarantined",
    # flagged (kept)
    "unknown_manager": "manager_id is not an employee_id in the clean employees table",
    "unknown_owner": "goal owner_id is not an employee_id in the clean employees table",
    "unknown_giver": "feedback giver_id is not an employee_id in the clean employees table",
    "unknown_parent_goal": "parent_goal_id is not a goal_id in the clean goals table",
    "hire_after_window": "hire_date is after the observation window's end: kept, but the spell has no time at risk in the window",
    "history_unknown_manager": "job_history manager_id is not an employee_id in the clean employees table: kept (flagged)",
    "history_manager_not_employed": "job_history manager_id names an employee with no employment spell on the row's effective_date: kept (flagged)",
    "history_level_change_without_reason": "job_level changes from the spell's previous job_history row but the row has no reason: kept (flagged)",
    "history_disagrees_at_hire": "the job_history row on the hire date differs from the employees table in this column: kept (flagged); employees holds the values at hire",
    "zero_baseline": "goal baseline is 0, so its stretch, (target - baseline) / |baseline|, is undefined: stretch "
                     "missing, target and baseline kept (flagged)",
    # schema safety net (column-level dtype failure = a bug in cleaning)
    "wrong_type": "column does not have the contract's type after cleaning",
}

#: How to fix the common cause of each rule: rule id -> the hint ``validate`` prints
#: (``validate.explain_problems`` sharpens some from the values, e.g. month/day/year dates).
HINTS: dict[str, str] = {
    "missing_file": "check the file name in study.yaml `files` (relative to the study folder)",
    "not_utf8": "re-save the file as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8)",
    "empty_file": "export the table again; a file needs at least its header row",
    "malformed_csv": "a quote is not closed or a row has extra fields; open the file at that line and fix it",
    "unreadable_file": "export the table again (.csv, .parquet or .xlsx)",
    "missing_table": "add employees.csv (or .parquet/.xlsx) to the study folder or name its file in study.yaml `files`",
    "empty_table": "the employees export has a header but no rows; export it again",
    "missing_column": "map the vendor's column name onto it in study.yaml `column_maps`",
    "duplicate_column": "two columns end up with this name; drop one from the export or fix `column_maps`",
    "unreadable_column": "most values cannot be read: check study.yaml `date_formats` (for dates) and `column_maps` (is it the right column?)",
    "unknown_column": "not used by the analysis; if it is a contract column under another name, map it in `column_maps`",
    "unparseable_date": "add the format the export uses to study.yaml `date_formats` (strptime codes, e.g. '%d.%m.%Y'); impossible dates must be fixed in the source",
    "ambiguous_date": "list only the date format the export really uses in study.yaml `date_formats`: with both day-first and month-first formats, 02/01/2021 is read with the first one listed",
    "not_a_number": "text in a numeric column ('n/a', '-', a unit, a decimal comma): blank it in the export or declare the marker in study.yaml `na_values`",
    "unknown_category": "add the vendor's word to study.yaml `termination_map` (termination_type), `reason_map` (job_history reason) or `set_with_map` (goals set_with), or use the allowed values",
    "unmapped_feedback_kind": "add the vendor's word to study.yaml `feedback_kinds` (e.g. `{coaching_session: check_in}`); until then it counts as other",
    "out_of_range_difficulty": "difficulty is the goal's rated difficulty on 1..5; recode other scales (1..10, percentages) onto 1..5 before exporting",
    "zero_baseline": "a baseline of 0 (often a new metric) gives no relative stretch; fill the baseline, or rate the goal in `difficulty` instead",
    "revised_before_cycle": "check revised_date against the goal's cycle: a typo in the year, or the revision of an earlier cycle's goal",
    "revised_after_cycle": "a revision after the cycle ended (e.g. at the year-end review) is not mid-cycle; check the date if it should be",
    "stretch_needs_target_and_baseline": "export both target and baseline (map the vendor's names with `column_maps`), or neither",
    "out_of_range_job_level": "job_level must be 1..5; recode the HRIS grades onto 1..5 before exporting",
    "implausible_birth_year": "a placeholder year (e.g. 1900) or an age instead of a year; blank or fix it",
    "out_of_range_rating": "ratings must be whole numbers 1..5; recode other rating scales before exporting",
    "out_of_range_attainment": "attainment is a share (1.0 = target met); a percentage (100) must be divided by 100",
    "out_of_range_weight": "goal weights must be zero or positive",
    "out_of_range_answer": "answers outside the scale: check study.yaml `scales` min/max, or a 'no answer' code (9, 99) that should be blank",
    "missing_required": "fill the field in the source; if the whole column is empty, check `column_maps`",
    "implausible_date": "usually a placeholder date (1900-01-01, 9999-12-31) or a typo in the year; blank or fix it, or set `earliest_plausible_date`",
    "termination_before_hire": "the dates are swapped, or a rehire was recorded on the old spell's row",
    "end_before_start": "the programme dates are swapped; fix them in the source",
    "duplicate_row": "the export repeats rows (often a join); the first copy is kept",
    "conflicting_duplicate": "the same key has different values in several rows; keep one row per key in the source",
    "overlapping_spells": "give the earlier spell its termination_date (a rehire starts after the previous spell ended)",
    "unknown_employee": "rows for people missing from employees: export every employee of the period, leavers too",
    "quarantined_employee": "fix the employee's spells (see quarantine/employees.csv) and these rows come back",
    "unknown_cycle": "declare the cycle in study.yaml `cycles` (name, start, end)",
    "survey_before_hire": "check the survey_date and the respondent's hire_date",
    "survey_after_termination": "check the survey_date and the respondent's termination_date",
    "hire_in_future": "a planned hire (pre-boarding) or a typo in the year; export only people who have started",
    "hire_after_window": "kept but outside the analysis; extend study.yaml `window.end` if the spell should count",
    "self_managed": "fix manager_id in the HRIS; the link was cut, so the employee has no manager in the analysis",
    "manager_cycle": "fix manager_id in the HRIS; the link marked set_missing was cut to break the loop",
    "goal_cycle": "fix parent_goal_id in the goal tool; the link marked set_missing was cut to break the loop",
    "unknown_manager": "the manager is not in the employees export (often a top executive or someone outside the exported population); export them too if this is common",
    "unknown_owner": "the goal owner is not in the employees export; export every employee of the period, leavers too",
    "unknown_giver": "the feedback giver is not in the employees export (often someone outside the population); harmless unless common",
    "unknown_parent_goal": "the parent goal is not in the goals export (often an organisation goal); export every goal of the cycle",
    "missing_covariate": "check the name in study.yaml `covariates` against the file's header, or map the vendor's name onto it in `column_maps`",
    "not_a_boolean": "write the covariate as yes/no, true/false, y/n or 1/0 (or declare the marker in `na_values`), or declare it `category`",
    "history_before_hire": "a row from before the hire (an earlier employment, or a wrong date); check effective_date and hire_date",
    "history_after_termination": "a row after the employee left (a late data correction, or a missing rehire in employees); check effective_date and termination_date",
    "history_same_day_conflict": "keep one row per employee and effective_date in the export (the last change of the day)",
    "history_unknown_manager": "the manager is not in the employees export; export them too if this is common",
    "history_manager_not_employed": "the manager had left (or not yet joined) on that date: the HRIS still points at them; check the manager_id",
    "history_level_change_without_reason": "add the reason (promotion, demotion, ...) in the export, or map the vendor's reason text in study.yaml `reason_map`",
    "history_disagrees_at_hire": "employees should hold the values at hire; check which of the two tables is right",
}

#: The ``job_history`` rules, in the order cleaning applies them; the first three quarantine the row,
#: the others only flag it (see :data:`RULES`).
HISTORY_RULES = (
    "history_before_hire",
    "history_after_termination",
    "history_same_day_conflict",
    "history_unknown_manager",
    "history_manager_not_employed",
    "history_level_change_without_reason",
    "history_disagrees_at_hire",
)

_STR, _DATE, _INT, _FLOAT = "str", "datetime64[ns]", "Int64", "float64"

#: Canonical columns per table: (column, dtype, required, description).
COLUMNS: dict[str, list[tuple[str, str, bool, str]]] = {
    "employees": [
        ("employee_id", _STR, True, "Employee identifier (text, as in the HRIS); repeats for a rehire."),
        ("hire_date", _DATE, True, "First day of the employment spell."),
        ("termination_date", _DATE, False, "Last day of the spell; missing while employed."),
        ("termination_type", _STR, False, "voluntary, involuntary or other (mapped by study.yaml `termination_map`)."),
        ("department", _STR, False, "Department name."),
        ("job_level", _INT, False, "Job level, 1 (entry) to 5 (executive)."),
        ("manager_id", _STR, False, "employee_id of the manager on this spell."),
        ("location", _STR, False, "Work location."),
        ("gender", _STR, False, "Gender as recorded."),
        ("birth_year", _INT, False, "Year of birth."),
    ],
    "goals": [
        ("goal_id", _STR, True, "Goal identifier (string, e.g. 'G000123')."),
        ("owner_id", _STR, True, "employee_id of the goal's owner."),
        ("cycle", _STR, True, "Review cycle name (one of study.yaml `cycles`)."),
        ("parent_goal_id", _STR, False, "The leader's goal this goal serves; missing for a top-level goal."),
        ("weight", _FLOAT, False, "Relative weight of the goal; missing means equal weights."),
        ("attainment", _FLOAT, False, "Attainment at cycle end; 1.0 means the target was met."),
    ],
    "reviews": [
        ("employee_id", _STR, True, "Reviewed employee."),
        ("cycle", _STR, True, "Review cycle name (one of study.yaml `cycles`)."),
        ("rating", _INT, False, "Performance rating, 1 (lowest) to 5 (highest)."),
        ("target_attainment", _FLOAT, False, "Share of targets attained; 1.0 means met."),
    ],
    "surveys": [
        ("employee_id", _STR, True, "Respondent."),
        ("survey_date", _DATE, True, "Date of the response."),
    ],
    "programs": [
        ("employee_id", _STR, True, "Enrolled employee."),
        ("program", _STR, True, "Programme, snake_case (leadership_development, coaching, mentoring, training, ...)."),
        ("start_date", _DATE, True, "First day of the programme (exposure counts from here)."),
        ("end_date", _DATE, False, "Last day; missing while in progress."),
        ("status", _STR, False, "completed, in_progress or withdrawn."),
    ],
    "feedback": [
        ("employee_id", _STR, True, "Employee who received the feedback."),
        ("date", _DATE, True, "Date of the feedback event."),
        ("kind", _STR, True, "Kind of event: check_in, 360_review, recognition or other (mapped by study.yaml "
                             "`feedback_kinds`; a kind neither canonical nor mapped is kept as other)."),
        ("giver_id", _STR, False, "employee_id of the giver."),
    ],
    "job_history": [
        ("employee_id", _STR, True, "Employee whose job changed."),
        ("effective_date", _DATE, True, "First day the row holds; it holds until the next row of the spell or "
                                        "the spell's end."),
        ("manager_id", _STR, False, "employee_id of the manager from this date."),
        ("department", _STR, False, "Department from this date."),
        ("job_level", _INT, False, "Job level from this date, 1 (entry) to 5 (executive)."),
        ("location", _STR, False, "Work location from this date."),
        ("reason", _STR, False, "hire, promotion, demotion, transfer, manager_change, reorganisation or other "
                                "(mapped by study.yaml `reason_map`)."),
    ],
}

#: Optional goals columns, used when present and never added when absent (a study without them cleans exactly as
#: before): (column, dtype, description). ``stretch`` is derived from ``target`` and ``baseline`` (DERIVED_COLUMNS).
OPTIONAL_GOAL_COLUMNS: list[tuple[str, str, str]] = [
    ("difficulty", _FLOAT, "Rated difficulty of the goal, 1 (easy) to 5 (very hard), as rated; optional, used when "
                           "present (values outside 1..5 set missing)."),
    ("target", _FLOAT, "Target value of the goal's metric (with baseline gives stretch); optional, used when present."),
    ("baseline", _FLOAT, "Value of the goal's metric when the goal was set (with target gives stretch); optional, "
                         "used when present."),
    ("set_with", _STR, "Who set the goal: employee, manager or jointly (mapped by study.yaml `set_with_map`); "
                       "optional, used when present."),
    ("revised_date", _DATE, "Date the goal was revised during its cycle; missing when never revised. Optional, used "
                            "when present; dates outside the goal's cycle are set missing, so every date is a "
                            "mid-cycle revision."),
]

#: Per employee-cycle summaries of the optional goal columns in the analysis ``cycles`` table, each present only
#: when the clean goals column it reads is: summary column -> clean goals column (``stretch`` is derived by cleaning
#: when goals has both ``target`` and ``baseline``).
GOAL_SUMMARY_COLUMNS: dict[str, str] = {
    "goal_difficulty": "difficulty",
    "goal_stretch": "stretch",
    "share_set_jointly": "set_with",
    "share_set_by_employee": "set_with",
    "share_set_by_manager": "set_with",
    "goals_revised": "revised_date",
    "share_revised": "revised_date",
}

#: Tables a study.yaml ``covariates`` column may come from.
COVARIATE_TABLES = ("employees", "job_history")
#: Columns cleaning derives, listed in the data dictionary after a table's own: table -> (column, dtype, text).
DERIVED_COLUMNS = {
    "job_history": [("spell", "int64", "Employment spell of the row (numbered as in the analysis tables); each spell "
                                        "has a row on its hire date, taken from employees when the export has none.")],
    "goals": [("stretch", "float64", "(target - baseline) / |baseline|: how far the target reaches beyond the "
                                     "baseline (0.1 = 10% above). Derived when goals has both target and baseline; "
                                     "missing where either is missing or the baseline is 0.")],
}
#: dtype of a covariate in the clean tables, by its study.yaml type.
COVARIATE_DTYPES = {"numeric": "float64", "category": "str", "boolean": "boolean"}

#: Required columns per table (the rest are optional).
REQUIRED_COLUMNS: dict[str, list[str]] = {t: [c for c, _, req, _ in cols if req] for t, cols in COLUMNS.items()}

#: Allowed values of closed categories.
CATEGORIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("employees", "termination_type"): ("voluntary", "involuntary", "other"),
    ("programs", "status"): ("completed", "in_progress", "withdrawn"),
    ("feedback", "kind"): FEEDBACK_KINDS,
    ("goals", "set_with"): SET_WITH,
    ("job_history", "reason"): HISTORY_REASONS,
}

#: Value ranges of numeric columns: (table, column) -> (low, high, whole numbers only, rule).
RANGES: dict[tuple[str, str], tuple[float, float, bool, str]] = {
    ("employees", "job_level"): (1, 5, True, "out_of_range_job_level"),
    ("job_history", "job_level"): (1, 5, True, "out_of_range_job_level"),
    ("employees", "birth_year"): (1900, np.inf, True, "implausible_birth_year"),  # upper bound set from the window
    ("goals", "weight"): (0, np.inf, False, "out_of_range_weight"),
    ("goals", "attainment"): (0, 10, False, "out_of_range_attainment"),
    ("goals", "difficulty"): (1, 5, False, "out_of_range_difficulty"),
    ("reviews", "rating"): (1, 5, True, "out_of_range_rating"),
    ("reviews", "target_attainment"): (0, 10, False, "out_of_range_attainment"),
}

#: Conflict keys: rows sharing these values must be identical.
KEYS: dict[str, list[str]] = {
    "employees": ["employee_id", "hire_date"],
    "goals": ["goal_id"],
    "reviews": ["employee_id", "cycle"],
    "surveys": ["employee_id", "survey_date"],
    "programs": ["employee_id", "program", "start_date"],
    "feedback": [],
    "job_history": [],  # same-day rows are judged per spell by cleaning (history_same_day_conflict)
}

_DEFAULT_CONFIG = None


def _default_config() -> StudyConfig:
    global _DEFAULT_CONFIG
    if _DEFAULT_CONFIG is None:
        _DEFAULT_CONFIG = config_from_dict({"window": {"start": "2000-01-01", "end": "2099-12-31"}})
    return _DEFAULT_CONFIG


def date_bounds(config: StudyConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the plausible date range ``[earliest_plausible_date, window.end + 5 years]``."""
    end = config.window.end
    latest = dt.date(end.year + YEARS_AFTER_WINDOW, end.month, min(end.day, 28) if end.month == 2 else end.day)
    return pd.Timestamp(config.earliest_plausible_date), pd.Timestamp(latest)


def range_for(table: str, column: str, config: StudyConfig) -> tuple[float, float, bool, str]:
    """Return ``(low, high, whole, rule)`` for a numeric column (birth year bounded by the window)."""
    low, high, whole, rule = RANGES[(table, column)]
    if (table, column) == ("employees", "birth_year"):
        high = config.window.end.year - 14
    return low, high, whole, rule


def _check(fn, rule: str, **kwargs) -> pa.Check:
    return pa.Check(fn, name=rule, description=RULES[rule], **kwargs)


def _in_range(low, high, whole):
    def check(s: pd.Series) -> pd.Series:
        x = s.astype("float64")
        ok = (x >= low) & (x <= high)
        if whole:
            ok &= np.floor(x) == x
        return ok

    return check


def _row_check(rule: str, first: str, second: str) -> pa.Check:
    """Rows pass unless ``second < first`` (both present)."""

    def check(df: pd.DataFrame) -> pd.Series:
        if first not in df or second not in df:
            return pd.Series(True, index=df.index)
        return ~(df[second] < df[first]).fillna(False).astype(bool)

    return pa.Check(check, name=rule, description=RULES[rule])


def _column(table: str, column: str, dtype: str, required: bool, description: str, config: StudyConfig) -> pa.Column:
    checks = []
    if (table, column) in CATEGORIES:
        allowed = CATEGORIES[(table, column)]
        checks.append(_check(lambda s, a=allowed: s.isin(a), "unknown_category"))
    if (table, column) in RANGES:
        low, high, whole, rule = range_for(table, column, config)
        checks.append(_check(_in_range(low, high, whole), rule))
    if table in ("goals", "reviews") and column == "cycle" and config.cycles:
        names = [c.name for c in config.cycles]
        checks.append(_check(lambda s, a=names: s.isin(a), "unknown_cycle"))
    if dtype == _DATE:
        earliest, latest = date_bounds(config)
        checks.append(_check(lambda s, lo=earliest, hi=latest: (s >= lo) & (s <= hi), "implausible_date"))
    # text columns are checked as ``object``: pandera's ``str`` dtype tests every cell in Python
    # (seconds per million rows); the cleaning steps already hold them as text (``as_text``).
    return pa.Column(
        object if dtype == _STR else dtype, checks=checks, nullable=not required, required=required, description=description, title=column
    )


def table_schema(table: str, config: StudyConfig | None = None) -> pa.DataFrameSchema:
    """Return the pandera schema of a clean canonical table.

    The schema is the *clean* data contract: types, required fields, allowed
    categories and ranges, and the cross-column rules. Each check's ``name`` is
    a rule id from :data:`RULES` and its ``description`` the user text.
    Extra columns are allowed (they are reported as ``unknown_column``).

    Parameters
    ----------
    table : str
        One of ``employees, goals, reviews, surveys, programs, feedback, job_history``.
    config : StudyConfig, optional
        Supplies cycle names, scale items and ranges, the date window and the
        ``covariates`` (columns of employees and job_history).
        Without it only the fixed columns are checked.

    Returns
    -------
    pandera.pandas.DataFrameSchema
        The schema; ``schema.columns[c].description`` documents column ``c``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> schema = ar.table_schema("reviews")
    >>> schema.columns["rating"].checks[0].name
    'out_of_range_rating'
    """
    if table not in COLUMNS:
        raise ValueError(f"table must be one of {list(TABLES)}, but {table!r} was passed.")
    cfg = config if config is not None else _default_config()
    columns = {c: _column(table, c, d, r, text, cfg) for c, d, r, text in COLUMNS[table]}
    if table == "goals":
        columns.update({c: _column(table, c, d, False, text, cfg) for c, d, text in OPTIONAL_GOAL_COLUMNS})
    if table in COVARIATE_TABLES:
        for name, kind in cfg.covariates.items():
            columns[name] = pa.Column(
                object if kind == "category" else COVARIATE_DTYPES[kind], nullable=True, required=False, title=name,
                description=f"Covariate ({kind}) declared in study.yaml `covariates`: "
                + ("the value at hire." if table == "employees" else "the value from effective_date."),
            )
    checks = []
    if table == "employees":
        checks.append(_row_check("termination_before_hire", "hire_date", "termination_date"))
    if table == "programs":
        checks.append(_row_check("end_before_start", "start_date", "end_date"))
    if table == "surveys" and config is not None:
        for scale_name, scale in config.scales.items():
            for item in scale.items:
                rev = " Reverse-coded (stored as min + max - answer)." if item in scale.reverse else ""
                columns[item] = pa.Column(
                    _FLOAT,
                    checks=[_check(_in_range(scale.min, scale.max, True), "out_of_range_answer")],
                    nullable=True,
                    required=False,
                    description=f"Item of the {scale_name} scale, answers {scale.min}..{scale.max}.{rev}",
                    title=item,
                )
    key = KEYS[table]
    if key:
        checks.append(
            pa.Check(
                lambda df, k=key: pd.Series(~duplicated_key(df, [c for c in k if c in df]), index=df.index),
                name="conflicting_duplicate",
                description=RULES["conflicting_duplicate"],
            )
        )
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name=table, description=f"Clean {table} table.")


# -- data dictionary of the analysis tables ---------------------------------------------------------------
# Descriptions of every column of the analysis tables that tables.py builds, listed by ``data_dictionary``
# so the dictionary documents the fixed names other tools read. ``<name>`` stands for a programme and
# ``<scale>`` for a survey scale of the study; tests/test_tables.py checks nothing is undocumented.
_SHARED = {
    "employee_id": ("string", "Employee id (pseudonymised when the study says so)."),
    "spell": ("int64", "Employment spell number of the employee, 1 for the first hire, in hire-date order."),
    "manager_id": ("string", "The manager in force (from job_history when the study has it; else the spell's "
                             "manager at hire, for the whole spell)."),
    "department": ("string", "Department in force (job_history; else the spell's department at hire)."),
    "job_level": ("Int64", "Job level in force (1 = entry; job_history, else the level at hire)."),
    "location": ("string", "Location in force (job_history; else the location at hire)."),
    "manager_changes": ("int64", "Number of manager changes in the spell so far (job_history only)."),
    "recent_manager_change": ("int64", "1 for the 183 days (six months) after a manager change, else 0 "
                                       "(job_history only)."),
    "months_since_manager_change": ("float64", "Months since the latest manager change at the interval start; "
                                               "missing before the first (job_history only)."),
    "gender": ("string", "Gender as recorded."),
    "alignment_cascade": ("float64", "Weighted share of the employee's goals whose parent is a goal of their manager "
                                     "in the same cycle (current cycle; known from the cycle start or hire)."),
    "alignment_org": ("float64", "Weighted share of the employee's goals whose parent chain reaches an "
                                 "organisation-level goal (current cycle)."),
    "manager_program": ("int64", "1 while the manager in force has started leadership development, else 0."),
    "manager_rating": ("float64", "The manager's most recent review rating known on that day."),
    "rating": ("float64", "The employee's most recent review rating known on that day."),
    "program_<name>": ("int64", "1 from the day the employee started programme <name> (intention to treat)."),
    "feedback_rate": ("float64", "Feedback events per 90 days in the last complete calendar quarter (known the "
                                 "day after it ends)."),
    "<scale>": ("float64", "Latest known score of survey scale <scale> (mean of answered items, reverse-coded "
                           "items already reversed)."),
}
_SURVIVAL = {
    "event": ("int64", "1 for an exit whose type counts as the event (study.yaml event_types), else 0."),
    "event_type": ("string", "voluntary, involuntary, other, or censored (still employed at the window end)."),
}
_COVARIATE_TEXT = ("A column named in study.yaml `covariates` (numeric -> float64, category -> text, "
                   "boolean -> boolean), e.g. pay_band.")
#: How a covariate reads in the analysis tables (``tables.attach_covariates``).
_COVARIATE = ("float64, string or Int64", "A study.yaml `covariates` column: numeric as float64, category as "
              "string, boolean as Int64 0/1; in person the value at entry, elsewhere the value in force on "
              "the row's day (from job_history where it carries the column, else the value at hire).")
ANALYSIS_DICTIONARY = {
    "person": {
        **{k: _SHARED[k] for k in ("employee_id", "spell")},
        "entry": ("int64", "Tenure in days at which observation starts: 0, or later for a hire before the window "
                           "(left truncation)."),
        "exit": ("int64", "Tenure in days at exit, or at the window end when still employed (censored)."),
        **_SURVIVAL,
        "hire_date": ("datetime64[ns]", "Hire date of the spell (tenure day 0)."),
        "termination_date": ("datetime64[ns]", "Termination date of the spell; missing while employed."),
        **{k: _SHARED[k] for k in ("department", "job_level", "gender")},
        "location": ("string", "Location of the spell."),
        "age_at_hire": ("Int64", "Hire year minus birth year."),
        "manager_id": _SHARED["manager_id"],
        "manager_ever_program": ("int64", "1 if the manager ever started leadership development in the data "
                                          "(for the immortal-time-bias demonstration only: uses the future)."),
        "manager_program_entry": ("int64", "1 if the manager had started leadership development by the spell's entry."),
        "ever_program_<name>": ("int64", "1 if the employee ever started programme <name> during the spell "
                                         "(uses the future: for comparisons that show bias only)."),
        "alignment_cascade_first": ("float64", "First known cascade alignment of the spell."),
        "alignment_org_first": ("float64", "First known organisation alignment of the spell."),
        "alignment_cascade_entry": ("float64", "Cascade alignment known at the spell's entry."),
        "<covariate>": _COVARIATE,
    },
    "intervals": {
        **{k: _SHARED[k] for k in ("employee_id", "spell", "manager_id")},
        "start": ("int64", "Tenure day the interval starts (exclusive: the interval is (start, stop])."),
        "stop": ("int64", "Tenure day the interval ends (inclusive)."),
        "event": ("int64", "1 on the last interval of a spell that ended in an event, else 0."),
        "event_type": ("string", "The spell's exit type on its last interval, censored elsewhere."),
        **{k: _SHARED[k] for k in ("alignment_cascade", "alignment_org", "<scale>", "manager_program",
                                    "manager_rating", "rating", "program_<name>", "feedback_rate", "department",
                                    "job_level", "gender", "location", "manager_changes", "recent_manager_change",
                                    "months_since_manager_change")},
        "<covariate>": _COVARIATE,
    },
    "survey_panel": {
        **{k: _SHARED[k] for k in ("employee_id", "spell", "manager_id", "department", "job_level", "gender")},
        "survey_date": ("datetime64[ns]", "Date of the response."),
        "wave": ("int64", "Survey wave (a new wave starts after 30 days without responses)."),
        "tenure_days": ("int64", "Tenure in days on the survey date."),
        "<scale>": ("float64", "Score of survey scale <scale> in this response."),
        **{k: _SHARED[k] for k in ("alignment_cascade", "alignment_org", "manager_program", "manager_rating",
                                    "rating", "program_<name>", "feedback_rate", "manager_changes",
                                    "recent_manager_change")},
        "<covariate>": _COVARIATE,
    },
    "cycles": {
        **{k: _SHARED[k] for k in ("employee_id", "spell", "manager_id", "department", "job_level")},
        "cycle": ("string", "Review cycle name (study.yaml cycles)."),
        "n_goals": ("int64", "Number of the employee's goals in the cycle."),
        "alignment_cascade": ("float64", "Cascade alignment of the cycle."),
        "alignment_org": ("float64", "Organisation alignment of the cycle."),
        "rating": ("float64", "Review rating of the cycle (known at the cycle end)."),
        "attainment": ("float64", "Target attainment of the cycle (1.0 = target met)."),
        "manager_program": ("int64", "1 if the manager had started leadership development by the cycle start."),
        "left_next_cycle": ("Int64", "1 if the employee left voluntarily during the following cycle, 0 if not; "
                                     "missing when that cycle is not fully observed."),
        "goal_difficulty": ("float64", "Mean rated difficulty (1-5) of the employee's goals in the cycle that have one "
                                       "(only when goals has difficulty)."),
        "goal_stretch": ("float64", "Mean stretch, (target - baseline) / |baseline|, of the employee's goals in the "
                                    "cycle that have one (only when goals has target and baseline)."),
        "share_set_jointly": ("float64", "Share of the employee's goals in the cycle with a known set_with that were "
                                         "set jointly with the manager (only when goals has set_with)."),
        "share_set_by_employee": ("float64", "Share of the employee's goals in the cycle with a known set_with that "
                                             "the employee set (only when goals has set_with)."),
        "share_set_by_manager": ("float64", "Share of the employee's goals in the cycle with a known set_with that "
                                            "the manager set (only when goals has set_with)."),
        "goals_revised": ("Int64", "Number of the employee's goals in the cycle revised mid-cycle (a revised_date "
                                   "inside the cycle); 0 with no goals (only when goals has revised_date)."),
        "share_revised": ("float64", "goals_revised over the employee's goals in the cycle; missing with no goals "
                                     "(only when goals has revised_date)."),
        "<covariate>": _COVARIATE,
    },
}
ANALYSIS_DICTIONARY["careers"] = {
    **{k: _SHARED[k] for k in ("employee_id", "spell")},
    "episode": ("int64", "1 until the spell's first promotion, then 2, ... (promotions before the window count)."),
    "manager_id": _SHARED["manager_id"],
    "start": ANALYSIS_DICTIONARY["intervals"]["start"],
    "stop": ANALYSIS_DICTIONARY["intervals"]["stop"],
    "event": ("int64", "1 when a promotion takes effect on the stop day, else 0."),
    "event_type": ("string", "promotion; on a spell's last row its exit type (voluntary, involuntary, other: "
                             "competing events) or censored; censored elsewhere."),
    **{k: v for k, v in ANALYSIS_DICTIONARY["intervals"].items()
       if k not in ("employee_id", "spell", "manager_id", "start", "stop", "event", "event_type")},
}


def _dictionary_frame(table: str, rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    missing = {"column", "dtype", "description"} - set(frame.columns)
    if missing:
        raise ValueError(f"register_dictionary rows need columns {sorted(missing)}.")
    if "required" not in frame:
        frame["required"] = False
    frame.insert(0, "table", table)
    return frame[["table", "column", "dtype", "required", "description"]]


#: Tables added to the data dictionary after the canonical ones: the analysis tables first, then
#: any registered with :func:`register_dictionary` (which may also replace an analysis table's rows).
_EXTRA_DICTIONARY: dict[str, pd.DataFrame] = {
    table: _dictionary_frame(table, [{"column": c, "dtype": d, "description": text} for c, (d, text) in columns.items()])
    for table, columns in ANALYSIS_DICTIONARY.items()
}


def register_dictionary(table: str, rows) -> None:
    """Add the columns of a derived (analysis) table to the data dictionary.

    Parameters
    ----------
    table : str
        Name of the table, e.g. ``"person"``.
    rows : DataFrame or list of dict
        One row per column with ``column``, ``dtype``, ``description`` and
        optionally ``required`` (default False).

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.register_dictionary("example", [{"column": "x", "dtype": "float64", "description": "An example."}])
    >>> "example" in set(ar.data_dictionary()["table"])
    True
    """
    _EXTRA_DICTIONARY[table] = _dictionary_frame(table, rows)


def data_dictionary(config: StudyConfig | None = None) -> pd.DataFrame:
    """Return the data dictionary, generated from the schemas.

    Parameters
    ----------
    config : StudyConfig, optional
        With a configuration, the survey item columns of its scales are listed;
        without, a single ``<scale>_<n>`` pattern row stands for them.

    Returns
    -------
    DataFrame
        One row per column: ``table, column, dtype, required, description``;
        canonical tables first (in processing order), then the analysis
        tables (``person``, ``intervals``, ``survey_panel``, ``cycles``, ``careers``), then
        any table registered with :func:`register_dictionary`.

    Examples
    --------
    >>> import alignment_research as ar
    >>> d = ar.data_dictionary()
    >>> d.loc[(d.table == "employees") & (d.column == "hire_date"), "required"].item()
    True
    """
    rows = []
    for table in TABLES:
        schema = table_schema(table, config)
        for name, col in schema.columns.items():
            dtype = _STR if str(col.dtype) == "object" else str(col.dtype)
            rows.append((table, name, dtype, bool(col.required and not col.nullable), col.description))
        if table == "surveys" and config is None:
            rows.append((table, "<scale>_<n>", _FLOAT, False, "Survey item n of a scale declared in study.yaml."))
        for name, dtype, text in DERIVED_COLUMNS.get(table, []):
            rows.append((table, name, dtype, False, text))
        if table in COVARIATE_TABLES and config is None:
            rows.append((table, "<covariate>", "float64, str or boolean", False, _COVARIATE_TEXT))
    frame = pd.DataFrame(rows, columns=["table", "column", "dtype", "required", "description"])
    extra = [f for f in _EXTRA_DICTIONARY.values()]
    if extra:
        frame = pd.concat([frame, *extra], ignore_index=True)
    return frame
