"""Check a study against the data contract: every problem with file, row, column, rule, value."""

from __future__ import annotations

import pandas as pd

from .config import REQUIRED_TABLES, TABLES
from .schema import COLUMNS, ITEM_PATTERN, REQUIRED_COLUMNS
from .study import Study

__all__ = ["validate_study", "structure_problems", "VALIDATION_COLUMNS", "FATAL_RULES"]

#: Columns of the table :func:`validate_study` returns.
VALIDATION_COLUMNS = ["file", "table", "row", "column", "rule", "value", "fatal"]
#: Rules that break the contract: ``validate`` exits 1 and ``clean_study`` stops.
FATAL_RULES = ("missing_table", "empty_table", "missing_column", "duplicate_column", "unreadable_column")


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=VALIDATION_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    frame["fatal"] = frame["fatal"].astype(bool)
    return frame


def structure_problems(study: Study) -> pd.DataFrame:
    """List structural problems: missing tables and columns, unknown columns.

    Parameters
    ----------
    study : Study
        A loaded (raw) study.

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, fatal`` with rules
        ``missing_table``, ``empty_table`` (employees without rows),
        ``duplicate_column`` and ``missing_column`` (fatal), ``unknown_column``
        (a column outside the contract, kept); ``row`` is missing.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.structure_problems(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
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
        for column in columns:
            if column in canonical or (table == "surveys" and column in items):
                continue
            hint = " (a survey item of a scale not declared in study.yaml)" if table == "surveys" and ITEM_PATTERN.match(column) else ""
            rows.append([file, table, None, column, "unknown_column", f"{column}{hint}", False])
    return _frame(rows)


def validate_study(study: Study) -> pd.DataFrame:
    """List every problem of a study, marking those that break the contract as fatal.

    Structural problems come first (:func:`structure_problems`). If there is
    no fatal one, the study is cleaned in memory and every issue of the
    cleaning report becomes a (non-fatal) problem: such rows would be fixed,
    set to missing, flagged or quarantined. A required column missing or
    unreadable in more than 20% of its rows (and at least 5) is fatal
    (``unreadable_column``): a wrong ``date_formats`` or ``column_maps`` entry
    is the usual cause.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, fatal`` (bool); empty when the
        study is clean. ``alignment-research validate`` prints it and exits 1
        if any row is fatal.

    See Also
    --------
    clean_study : Performs the fixes and the quarantine these rows describe.

    Examples
    --------
    >>> import alignment_research as ar
    >>> problems = ar.validate_study(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> problems["fatal"].any()  # doctest: +SKIP
    False
    """
    from .clean import _clean

    structure = structure_problems(study)
    if structure["fatal"].any():
        return structure.reset_index(drop=True)
    clean, _ = _clean(study, progress=False, structure=structure)
    return _problems_of_clean(structure, clean)


def _problems_of_clean(structure: pd.DataFrame, clean) -> pd.DataFrame:
    """The :func:`validate_study` table from the structural problems and an in-memory cleaning.

    Lets a caller that needs both the problems and the clean study (``run``) clean only once.
    """
    from .clean import _fatal_rows

    report = clean.report
    structural_rules = set(structure["rule"])
    rows = report[~(report["row"].isna() & report["rule"].isin(structural_rules))]
    # a declared recoding and absent optional columns are allowed by the contract, not problems
    rows = rows[~rows["rule"].isin(["reverse_coded", "absent_column"])]
    issues = rows[["file", "table", "row", "column", "rule", "value"]].assign(fatal=False)
    fatal = _fatal_rows(report, clean.counts).assign(fatal=True)
    out = pd.concat([structure, fatal, issues], ignore_index=True)[VALIDATION_COLUMNS]
    out["row"] = out["row"].astype("Int64")
    out["fatal"] = out["fatal"].astype(bool)
    return out
