"""The data contract's structural checks and fatal rules, shared by validation and cleaning."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import REQUIRED_TABLES, TABLES
from .schema import COLUMNS, COVARIATE_TABLES, ITEM_PATTERN, OPTIONAL_GOAL_COLUMNS, REQUIRED_COLUMNS
from .study import CleanStudy, Study

__all__ = [
    "VALIDATION_COLUMNS",
    "FATAL_RULES",
    "STOP",
    "UNREADABLE_TOLERANCE",
    "structure_problems",
    "unreadable_columns",
    "validation_problems",
]

#: Columns of the table :func:`validate_study` returns.
VALIDATION_COLUMNS = ["file", "table", "row", "column", "rule", "value", "action", "fatal"]
#: Rules that break the contract: ``validate`` exits 1 and ``clean_study`` stops.
FATAL_RULES = ("missing_table", "empty_table", "missing_column", "duplicate_column", "unreadable_column",
               "missing_covariate")
#: The ``action`` of a fatal problem: cleaning cannot start until it is fixed.
STOP = "stop"
#: A required column whose values are missing or unreadable in more than this share of rows
#: (and at least 5 rows) breaks the contract: the study is probably mis-configured (date_formats,
#: column_maps), so validation reports it as fatal and cleaning stops.
UNREADABLE_TOLERANCE = 0.2


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=[c for c in VALIDATION_COLUMNS if c != "action"])
    frame["row"] = frame["row"].astype("Int64")
    frame["fatal"] = frame["fatal"].astype(bool)
    frame["action"] = np.where(frame["fatal"], STOP, "flagged")
    return frame[VALIDATION_COLUMNS]


def structure_problems(study: Study) -> pd.DataFrame:
    """List structural problems: missing tables and columns, unknown columns.

    Parameters
    ----------
    study : Study
        A loaded (raw) study.

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, action, fatal`` with rules
        ``missing_table``, ``empty_table`` (employees without rows),
        ``duplicate_column``, ``missing_column`` and ``missing_covariate`` (a
        study.yaml ``covariates`` name in neither employees nor job_history)
        (fatal, action ``stop``),
        ``unknown_column`` (a column outside the contract, kept: action
        ``flagged``), ``stretch_needs_target_and_baseline`` (goals has one
        of ``target`` and ``baseline`` without the other: flagged); ``row`` is
        missing.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.contract.structure_problems(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    """
    rows = []
    config = study.config
    for table in REQUIRED_TABLES:
        if table not in study.tables:
            rows.append([study.source(table), table, None, None, "missing_table", table, True])
        elif len(study.tables[table]) == 0:
            rows.append([study.source(table), table, None, None, "empty_table", table, True])
    items = {i for s in config.scales.values() for i in s.items}
    for table in TABLES:
        if table not in study.tables:
            continue
        frame = study.tables[table]
        file = study.source(table)
        columns = [str(c) for c in frame.columns]
        for dup in sorted({c for c in columns if columns.count(c) > 1}):
            rows.append([file, table, 1, dup, "duplicate_column", dup, True])
        for column in REQUIRED_COLUMNS[table]:
            if column not in frame.columns:
                rows.append([file, table, None, column, "missing_column", f"columns present: {', '.join(columns)}", True])
        canonical = {c for c, *_ in COLUMNS[table]}
        if table == "goals":
            canonical |= {c for c, *_ in OPTIONAL_GOAL_COLUMNS}
            rows += _stretch_without_pair(file, columns)
        if table in COVARIATE_TABLES:
            canonical |= set(config.covariates)
        for column in columns:
            if column in canonical or (table == "surveys" and column in items):
                continue
            hint = " (a survey item of a scale not declared in study.yaml)" if table == "surveys" and ITEM_PATTERN.match(column) else ""
            rows.append([file, table, None, column, "unknown_column", f"{column}{hint}", False])
    rows += _missing_covariates(study)
    return _frame(rows)


def _stretch_without_pair(file: str, columns: list[str]) -> list:
    """A ``stretch_needs_target_and_baseline`` row when goals has only one of target and baseline (kept, flagged)."""
    has = [c for c in ("target", "baseline") if c in columns]
    if len(has) != 1:
        return []
    other = "baseline" if has[0] == "target" else "target"
    return [[file, "goals", None, has[0], "stretch_needs_target_and_baseline",
             f"goals has {has[0]} but no {other}: no stretch is derived", False]]


def _missing_covariates(study: Study) -> list:
    """A fatal ``missing_covariate`` row per study.yaml covariate that no table holds (the employees file named)."""
    present = [t for t in COVARIATE_TABLES if t in study.tables]
    if "employees" not in present:
        return []
    held = {str(c) for t in present for c in study.tables[t].columns}
    where = " or ".join(f"{study.source(t)}" for t in present)
    return [
        [study.source("employees"), "employees", None, name, "missing_covariate",
         f"study.yaml `covariates` names {name} ({kind}); no such column in {where}", True]
        for name, kind in study.config.covariates.items()
        if name not in held
    ]


def unreadable_columns(report: pd.DataFrame, counts: pd.DataFrame) -> pd.DataFrame:
    """List the required columns missing or unreadable in too many rows: the ``unreadable_column`` rule.

    A required column breaks the contract when more than
    :data:`UNREADABLE_TOLERANCE` of its table's rows (and at least 5) are
    ``missing_required`` in the cleaning report.

    Parameters
    ----------
    report : DataFrame
        ``CleanStudy.report``.
    counts : DataFrame
        ``CleanStudy.counts`` (``rows_in`` per table).

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value``: one ``unreadable_column``
        row per such column (``row`` missing), with the share and an example
        of the unreadable values.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> len(unreadable_columns(clean.report, clean.counts))
    0
    """
    rows = []
    missing = report[report["rule"] == "missing_required"]
    for (table, file, column), part in missing.groupby(["table", "file", "column"], sort=False):
        n_in = int(counts.loc[counts["table"] == table, "rows_in"].iloc[0])
        n = len(part)
        if n >= 5 and n > UNREADABLE_TOLERANCE * n_in:
            unreadable = report[
                (report["table"] == table) & (report["column"] == column) & (report["rule"] == "unparseable_date")
            ]
            example = f"; e.g. {unreadable['value'].iloc[0]!r}" if len(unreadable) else ""
            rows.append(
                [file, table, None, column, "unreadable_column", f"{n} of {n_in} rows ({100 * n / n_in:.0f}%) missing or unreadable{example}"]
            )
    frame = pd.DataFrame(rows, columns=["file", "table", "row", "column", "rule", "value"])
    frame["row"] = frame["row"].astype("Int64")
    return frame


def validation_problems(structure: pd.DataFrame, clean: CleanStudy) -> pd.DataFrame:
    """Return the problems of a study from its structural problems and its cleaning.

    Parameters
    ----------
    structure : DataFrame
        From :func:`structure_problems`.
    clean : CleanStudy
        The study cleaned in memory (``report`` and ``counts`` are read).

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, action, fatal``: the
        structural problems, then the fatal ``unreadable_column`` rows
        (:func:`unreadable_columns`), then every issue of the cleaning report
        (not fatal) but the allowed ``reverse_coded`` and ``absent_column``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> study = ar.simulate_study(n_employees=300, seed=0)
    >>> problems = validation_problems(structure_problems(study), ar.clean_study(study))
    >>> bool(problems["fatal"].any())
    False
    """
    report = clean.report
    structural_rules = set(structure["rule"])
    rows = report[~(report["row"].isna() & report["rule"].isin(structural_rules))]
    # a declared recoding and absent optional columns are allowed by the contract, not problems
    rows = rows[~rows["rule"].isin(["reverse_coded", "absent_column"])]
    issues = rows[["file", "table", "row", "column", "rule", "value", "action"]].assign(fatal=False)
    fatal = unreadable_columns(report, clean.counts).assign(action=STOP, fatal=True)
    parts = [f for f in (structure, fatal, issues) if len(f)]
    if not parts:
        return _frame([])
    out = pd.concat(parts, ignore_index=True)[VALIDATION_COLUMNS]
    out["row"] = out["row"].astype("Int64")
    out["fatal"] = out["fatal"].astype(bool)
    return out
