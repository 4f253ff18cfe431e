"""Explain the problems of a study: a hint for each, a summary by rule, and the text ``validate`` prints."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .config import TABLES
from .contract import FATAL_RULES, STOP, VALIDATION_COLUMNS, structure_problems
from .errors import DataContractError
from .schema import HINTS, ITEM_PATTERN, RULES

__all__ = [
    "structure_problems",
    "problems_from_error",
    "explain_problems",
    "summarise_problems",
    "format_problems",
    "VALIDATION_COLUMNS",
    "PROBLEM_FILE_COLUMNS",
    "FATAL_RULES",
    "STOP",
]

#: Columns of the problems file ``alignment-research validate --output`` writes.
PROBLEM_FILE_COLUMNS = ["file", "table", "row", "column", "rule", "value", "action", "hint"]


def problems_from_error(error: DataContractError) -> pd.DataFrame:
    """Turn the problems of a :class:`DataContractError` (e.g. from ``load_study``) into validation rows.

    ``load_study`` raises one error listing every file-level problem (an
    unreadable file, a file outside the folder, ...); this lists them in the
    shape :func:`validate_study` returns, all fatal.

    Parameters
    ----------
    error : DataContractError
        The error; its ``problems`` has ``file, row, column, rule, value``.

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, action, fatal``: action
        ``stop``, fatal true; ``table`` is the canonical table when the file
        is named after it, else missing.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> error = ar.DataContractError("x", pd.DataFrame([["goals.csv", 4, None, "malformed_csv", "..."]],
    ...                              columns=["file", "row", "column", "rule", "value"]))
    >>> ar.validate.problems_from_error(error)[["table", "row", "rule", "action"]].values.tolist()
    [['goals', 4, 'malformed_csv', 'stop']]
    """
    problems = error.problems
    files = problems["file"].map(lambda f: None if f is None or f is pd.NA else str(f))
    stems = files.map(lambda f: Path(f).stem if f else None)
    frame = pd.DataFrame(
        {
            "file": files,
            "table": stems.where(stems.isin(TABLES), None),
            "row": pd.to_numeric(problems["row"], errors="coerce").astype("Int64"),
            "column": problems["column"].astype(object),
            "rule": problems["rule"].astype(object),
            "value": problems["value"].map(lambda v: None if v is None or v is pd.NA else str(v)),
            "action": STOP,
            "fatal": True,
        }
    )
    return frame[VALIDATION_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- hints
#: Rules whose cause, in a date column, is usually the date format.
_DATE_RULES = ("unparseable_date", "missing_required", "unreadable_column")
_DAY_MONTH = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T](\d{1,2}:\d{2}(?::\d{2})?))?$")
_YEAR_FIRST = re.compile(r"^\d{4}([/.])\d{1,2}\1\d{1,2}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}")
_MONTH_NAME = re.compile(r"[A-Za-z]{3}")
#: Answers that are usually a 'no answer' code rather than an answer.
_NO_ANSWER_CODES = (9, 99, 999, -1, -9, -99, 98, 97)


def _date_hint(values: pd.Series) -> str | None:
    """A hint from the unreadable values of one date column, or None when no common cause fits."""
    text = pd.Series(pd.unique(values.dropna().astype(str).str.strip()), dtype=object)
    if text.empty:
        return None
    add = "to study.yaml `date_formats`"
    parts = text.str.extract(_DAY_MONTH)
    fits = parts[0].notna()
    if fits.mean() >= 0.5:
        parts = parts[fits]
        first, second = parts[0].astype(int), parts[2].astype(int)
        sep = parts[1].mode().iloc[0]
        year = "%Y" if (parts[3].str.len() == 4).mean() >= 0.5 else "%y"
        time = ""
        if parts[4].notna().mean() >= 0.5:
            time = " %H:%M:%S" if parts[4].dropna().str.count(":").max() == 2 else " %H:%M"
        month_first, day_first = f"%m{sep}%d{sep}{year}{time}", f"%d{sep}%m{sep}{year}{time}"
        real = (first.between(1, 31)) & (second.between(1, 31)) & ((first <= 12) | (second <= 12))
        if not real.any():
            return f"the dates do not exist (e.g. {text[fits].iloc[0]!r}): fix them in the source"
        mdy = real & (first <= 12) & (second > 12)
        dmy = real & (first > 12) & (second <= 12)
        if mdy.any() and dmy.any():
            return (f"the column mixes month/day/year ({text[fits][mdy].iloc[0]!r}) and day/month/year "
                    f"({text[fits][dmy].iloc[0]!r}) dates: no one format reads both; fix the export")
        if mdy.any():
            return (f"dates look like month/day/year: add '{month_first}' {add} "
                    "(and remove any day-first format, which would read 01/02 as 1 February)")
        if dmy.any():
            return (f"dates look like day/month/year: add '{day_first}' {add} "
                    "(and remove any month-first format, which would read 01/02 as 2 January)")
        return f"dates are day and month in some order: add the format the export uses, '{day_first}' or '{month_first}', {add}"
    if text.str.match(_ISO_TIME).mean() >= 0.5:
        return f"dates carry a time of day: add '%Y-%m-%d %H:%M:%S' (or '%Y-%m-%dT%H:%M:%S') {add}"
    year_first = text.str.extract(_YEAR_FIRST)[0]
    if year_first.notna().mean() >= 0.5:
        sep = year_first.mode().iloc[0]
        return f"dates look like year{sep}month{sep}day: add '%Y{sep}%m{sep}%d' {add}"
    if text.str.match(_ISO).mean() >= 0.5:
        return f"the dates are written year-month-day but do not exist (e.g. {text[text.str.match(_ISO)].iloc[0]!r}): fix them in the source"
    if text.str.contains(_MONTH_NAME).mean() >= 0.5:
        return f"dates spell the month: add a format such as '%d %b %Y' (4 Jan 2021), '%b %d, %Y' (Jan 4, 2021) or '%d-%b-%y' (04-Jan-21) {add}"
    return None


def _answer_hint(column, values: pd.Series) -> str | None:
    """A hint from the out-of-range answers of one survey item, or None."""
    answers = pd.to_numeric(values, errors="coerce").dropna()
    if answers.empty:
        return None
    counts = answers.value_counts()
    match = ITEM_PATTERN.match(str(column))
    scale = match["scale"] if match else "<scale>"
    if counts.index[0] in _NO_ANSWER_CODES and counts.iloc[0] >= 0.5 * len(answers):
        return f"{counts.index[0]:g} looks like a 'no answer' code: declare it in study.yaml `na_values` (or blank it in the export)"
    if (np.floor(answers) == answers).all():
        return (f"answers run from {answers.min():g} to {answers.max():g}: if the questionnaire's scale is wider than "
                f"study.yaml says, set `scales.{scale}.min` / `max`; else fix the answers in the source")
    return f"answers are not whole numbers (e.g. {answers[np.floor(answers) != answers].iloc[0]:g}): the export may hold averages; export the raw answers"


def _column_hint(table, column, value) -> str | None:
    """For a missing column, the present column that looks like it, as a `column_maps` entry."""
    present = str(value or "").removeprefix("columns present: ").split(", ")
    keys = {"".join(ch for ch in p.lower() if ch.isalnum()): p for p in present if p}
    wanted = "".join(ch for ch in str(column).lower() if ch.isalnum())
    close = difflib.get_close_matches(wanted, list(keys), n=1, cutoff=0.6)
    if not close:
        return None
    return f"the file has {keys[close[0]]!r}: if that is {column}, map it in study.yaml `column_maps: {{{table}: {{{keys[close[0]]!r}: {column}}}}}`"


def explain_problems(problems: pd.DataFrame) -> pd.DataFrame:
    """Add a hint to each problem: how to fix its most common cause.

    Each rule has a standard hint (:data:`HINTS`). Some are sharpened from the
    values of the same file and column: a category word no map knows names
    the study.yaml map to add it to (``set_with_map``, ``feedback_kinds``,
    ...); unreadable dates whose first field
    is at most 12 and second above 12 give "dates look like month/day/year:
    add '%m/%d/%Y' to date_formats" (also on the ``missing_required`` and
    ``unreadable_column`` rows they cause); out-of-range answers that are
    mostly 9 or 99 point to a 'no answer' code; a missing column names the
    present column that looks like it.

    Parameters
    ----------
    problems : DataFrame
        From :func:`validate_study` (or :func:`problems_from_error`).

    Returns
    -------
    DataFrame
        The problems with a ``hint`` column added (text).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> problems = pd.DataFrame({"file": "e.csv", "table": "employees", "row": [2, 3], "column": "hire_date",
    ...                          "rule": "unparseable_date", "value": ["02/13/2021", "01/31/2021"],
    ...                          "action": "set_missing", "fatal": False})
    >>> ar.explain_problems(problems)["hint"].iloc[0][:57]
    "dates look like month/day/year: add '%m/%d/%Y' to study.y"
    """
    rule = problems["rule"].astype(object)
    hints = rule.map(HINTS).fillna(rule.map(RULES)).fillna("").astype(object)
    place = problems["file"].astype(str) + "\x00" + problems["column"].astype(str)
    dates = problems[rule == "unparseable_date"]
    for key, values in dates["value"].groupby(place[dates.index], sort=False):
        hint = _date_hint(values)
        if hint is not None:
            hints[(place == key) & rule.isin(_DATE_RULES)] = hint
    answers = problems[rule == "out_of_range_answer"]
    for key, part in answers.groupby(place[answers.index], sort=False):
        hint = _answer_hint(part["column"].iloc[0], part["value"])
        if hint is not None:
            hints[(place == key) & (rule == "out_of_range_answer")] = hint
    for i in problems.index[rule == "missing_column"]:
        hint = _column_hint(problems.at[i, "table"], problems.at[i, "column"], problems.at[i, "value"])
        if hint is not None:
            hints[i] = hint
    words = problems[rule.isin(["unknown_category", "unmapped_feedback_kind"])]
    for (table, column), part in words.groupby([words["table"].astype(str), words["column"].astype(str)], sort=False):
        hint = _map_hint(table, column, part["value"])
        if hint is not None:
            hints[part.index] = hint
    return problems.assign(hint=hints)


#: The study.yaml map that takes a category column's vendor words, and the canonical words it maps onto.
#: (Only maps whose entries are added to the defaults; ``termination_map`` replaces its default and keeps its hint.)
_CATEGORY_MAPS = {
    ("job_history", "reason"): ("reason_map", "hire|promotion|demotion|transfer|manager_change|reorganisation|other"),
    ("goals", "set_with"): ("set_with_map", "employee|manager|jointly"),
    ("feedback", "kind"): ("feedback_kinds", "check_in|360_review|recognition|other"),
}


def _map_hint(table: str, column: str, values: pd.Series) -> str | None:
    """For vendor words of a mapped category, the study.yaml map entry that would take them, or None."""
    if (table, column) not in _CATEGORY_MAPS:
        return None
    key, allowed = _CATEGORY_MAPS[(table, column)]
    words = pd.Series(values.dropna().astype(str).str.strip().unique()[:3])
    if words.empty:
        return None
    entries = ", ".join(f"{w!r}: <{allowed}>" for w in words)
    return f"map the vendor's words in study.yaml `{key}: {{{entries}}}` (added to the defaults)"


# --------------------------------------------------------------------------- summary and text
def summarise_problems(problems: pd.DataFrame) -> pd.DataFrame:
    """Count problems by rule, with one example and a hint each.

    Parameters
    ----------
    problems : DataFrame
        From :func:`validate_study`, with or without ``hint``
        (:func:`explain_problems` is applied when it is absent).

    Returns
    -------
    DataFrame
        ``rule, fatal, count, places, file, row, column, value, hint``: one
        row per rule, fatal rules first, then the most frequent; ``places``
        counts the files and columns it occurs in; the example is the first
        problem that carries the rule's most common hint.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> problems = pd.DataFrame({"file": "e.csv", "table": "employees", "row": [2, 3, 4],
    ...                          "column": ["manager_id", "manager_id", "hire_date"],
    ...                          "rule": ["unknown_manager", "unknown_manager", "unparseable_date"],
    ...                          "value": ["E9", "E8", "x"], "action": ["flagged", "flagged", "set_missing"],
    ...                          "fatal": False})
    >>> ar.summarise_problems(problems)[["rule", "count", "row", "value"]].values.tolist()
    [['unknown_manager', 2, 2, 'E9'], ['unparseable_date', 1, 4, 'x']]
    """
    columns = ["rule", "fatal", "count", "places", "file", "row", "column", "value", "hint"]
    if problems.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    explained = problems if "hint" in problems else explain_problems(problems)
    rows = []
    for rule, part in explained.groupby("rule", sort=False):
        hint = part["hint"].value_counts().index[0]
        example = part[part["hint"] == hint].iloc[0]
        places = len(part[["file", "column"]].astype(str).drop_duplicates())
        rows.append([rule, bool(part["fatal"].any()), len(part), places, example["file"], example["row"],
                     example["column"], example["value"], hint])
    out = pd.DataFrame(rows, columns=columns)
    out["row"] = out["row"].astype("Int64")
    out = out.sort_values(["fatal", "count", "rule"], ascending=[False, False, True], kind="stable")
    return out.reset_index(drop=True)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _shown(value, width: int = 80) -> str:
    text = str(value)
    return repr(text if len(text) <= width else text[: width - 3] + "...")


def _where(file, row, column) -> str:
    where = str(file) if not _missing(file) else "(study)"
    if not _missing(row):
        where += f", row {int(row)}"
    if not _missing(column):
        where += f", column {column}"
    return where


def _line(p) -> str:
    level = "FATAL" if p.fatal else "warn"
    value = "" if _missing(p.value) else f" (value: {_shown(p.value)})"
    return f"{level} {_where(p.file, p.row, p.column)}: {p.rule}{value}"


#: Row numbers listed after the examples of a group, so small damage is located without ``--all``.
_MORE_ROWS = 20


def format_problems(problems: pd.DataFrame, *, examples: int | None = 5) -> str:
    """Write problems as the text ``alignment-research validate`` prints.

    First a verdict and a summary by rule (count, an example, a hint), then
    the problems themselves, grouped by rule, file and column: at most
    ``examples`` of each group in full, then the row numbers of up to 20 more
    (so a handful of damaged rows is located without ``--all``), then the
    totals.

    Parameters
    ----------
    problems : DataFrame
        From :func:`validate_study` (with or without ``hint``).
    examples : int or None, default 5
        Problems shown per rule, file and column; None shows every one.

    Returns
    -------
    str
        The text; each problem line reads ``warn|FATAL <file>, row <n>,
        column <c>: <rule> (value: '<v>')``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> problems = pd.DataFrame({"file": "e.csv", "table": "employees", "row": [2, 3], "column": "manager_id",
    ...                          "rule": "unknown_manager", "value": ["E9", "E8"], "action": "flagged", "fatal": False})
    >>> print(ar.validate.format_problems(problems, examples=1).splitlines()[-3])
    warn e.csv, row 2, column manager_id: unknown_manager (value: 'E9')
    """
    n, n_fatal = len(problems), int(problems["fatal"].sum()) if len(problems) else 0
    if not n:
        return "no problems found."
    explained = problems if "hint" in problems else explain_problems(problems)
    summary = summarise_problems(explained)
    verdict = ("not usable as it is: fix the fatal problem(s) and run again" if n_fatal else
               "usable: warnings only (cleaning fixes, sets to missing, flags or quarantines these rows)")
    lines = [f"{n} problem(s) of {len(summary)} kind(s), {n_fatal} fatal: {verdict}.", "", "Summary by rule:"]
    width = max(len(r) for r in summary["rule"])
    for s in summary.itertuples(index=False):
        level = "FATAL" if s.fatal else "warn"
        value = "" if _missing(s.value) else f": {_shown(s.value)}"
        places = f" in {s.places} places" if s.places > 1 else ""
        lines.append(f"  {level:5} {s.rule:<{width}} {s.count:>7}{places}; e.g. {_where(s.file, s.row, s.column)}{value}")
        lines.append(f"  {'':5} {'':<{width}} {'':>7}  hint: {s.hint}")
    scope = ("every problem" if examples is None else
             f"at most {examples} per rule, file and column; --all shows every one, --output FILE writes them all with hints")
    lines += ["", f"Problems ({scope}):"]
    order = {rule: i for i, rule in enumerate(summary["rule"])}
    rule_hint = dict(zip(summary["rule"], summary["hint"]))
    explained = explained.assign(_order=explained["rule"].map(order))
    explained = explained.sort_values("_order", kind="stable")
    groups = explained.groupby(["_order", explained["file"].astype(str), explained["column"].astype(str)], sort=False)
    for _, part in groups:
        first = part.iloc[0]
        shown = part if examples is None else part.head(examples)
        hint = part["hint"].value_counts().index[0]
        if hint != rule_hint[first["rule"]]:
            lines.append(f"  ({first['rule']} in {_where(first['file'], None, first['column'])}: {hint})")
        lines += [_line(p) for p in shown.itertuples(index=False)]
        rest = part.iloc[len(shown):]
        if len(rest):
            rows = [f"row {int(r)}" for r in rest["row"].dropna().head(_MORE_ROWS)]
            more = len(rest["row"].dropna()) - len(rows)
            where = f": {', '.join(rows)}" + (f" and {more} other rows" if more > 0 else "") if rows else ""
            lines.append(f"  ... and {len(rest)} more {first['rule']} in the same file and column{where}")
    lines.append(f"{n} problem(s), {n_fatal} fatal.")
    return "\n".join(lines)
