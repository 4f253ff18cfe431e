"""Clean a study in small named steps: every change reported, unusable rows quarantined, none lost."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from ._arrow_text import (
    arrow_text,
    as_objects,
    distinct_texts,
    duplicated_key,
    first_positions,
    has_codes,
    is_held,
    keep_rows,
    remember,
    shared_text,
    text_kind,
    value_codes,
)
from .config import FEEDBACK_KINDS, HISTORY_REASONS, SET_WITH, TABLES, StudyConfig
from .contract import UNREADABLE_TOLERANCE, structure_problems, unreadable_columns, validation_problems
from .errors import PROBLEM_COLUMNS, ConfigError, DataContractError
from .privacy import pseudonymise_tables
from .schema import (
    COLUMNS,
    COVARIATE_TABLES,
    KEYS,
    OPTIONAL_GOAL_COLUMNS,
    RANGES,
    REQUIRED_COLUMNS,
    RULES,
    date_bounds,
    range_for,
    table_schema,
)
from .spells import assign_spell, numbered_spells
from .study import ACTIONS, ISSUE_COLUMNS, CleanStudy, Study

__all__ = [
    "StepResult",
    "Cleaning",
    "clean_study",
    "validate_study",
    "validate_and_clean",
    "clean_table",
    "write_clean_study",
    "cleaning_summary",
    "quarantine_summary",
    "plot_cleaning_summary",
    "EXCEL_EPOCH",
    "UNREADABLE_TOLERANCE",
    # steps (each: table in, StepResult out)
    "add_missing_columns",
    "as_text",
    "strip_text",
    "normalise_category",
    "parse_dates",
    "parse_numbers",
    "clean_survey_answers",
    "reverse_code",
    "require_fields",
    "quarantine_implausible_dates",
    "quarantine_termination_before_hire",
    "quarantine_overlapping_spells",
    "quarantine_end_before_start",
    "drop_exact_duplicates",
    "quarantine_conflicting_duplicates",
    "quarantine_unknown_references",
    "flag_unknown_references",
    "quarantine_unknown_cycles",
    "quarantine_surveys_outside_spell",
    "quarantine_future_hires",
    "flag_hires_after_window",
    "cut_self_managed",
    "cut_manager_cycles",
    "cut_goal_cycles",
    "validate_against_schema",
    "parse_booleans",
    "assign_history_spells",
    "quarantine_same_day_conflicts",
    "flag_history_managers",
    "flag_level_changes_without_reason",
    "flag_history_disagreeing_at_hire",
    "complete_history",
    "check_revision_dates",
    "derive_stretch",
    "CLEAN_HISTORY_COLUMNS",
    "BOOLEAN_TEXTS",
]

#: Day 0 of Excel's (1900) serial date system, as used by every modern Excel: 44197 -> 2021-01-01.
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
#: White space removed by ``strip_text`` (what ``str.strip()`` removes in practice, incl. no-break space).
_WHITESPACE = " \t\n\r\x0b\x0c\xa0\u2000\u2001\u2002\u2003\u2009\u200a\u202f\u3000"
#: Largest Excel serial number (9999-12-31).
_EXCEL_MAX = 2958465


# --------------------------------------------------------------------------- building blocks
def _text(value):
    """A cell as report text: None for missing, ISO dates, whole floats without '.0'."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _make_empty_issues() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in ISSUE_COLUMNS})
    frame["row"] = frame["row"].astype("Int64")
    return frame


_EMPTY_ISSUES = _make_empty_issues()


def _empty_issues() -> pd.DataFrame:
    return _EMPTY_ISSUES.copy()


def _issues(file, table, rows, column, rule, values, action) -> pd.DataFrame:
    """Build issue rows (ISSUE_COLUMNS). ``column`` and ``values`` may be scalars or sequences."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, not {action!r}")
    rows = list(rows)
    if not rows:
        return _empty_issues()
    n = len(rows)
    seq = (list, tuple, pd.Series, pd.Index, np.ndarray)
    values = list(values) if isinstance(values, seq) else [values] * n
    columns = list(column) if isinstance(column, seq) else [column] * n
    return pd.DataFrame(
        {
            "file": [file] * n,
            "table": [table] * n,
            "row": pd.array([None if r is None else int(r) for r in rows], dtype="Int64"),
            "column": columns,
            "rule": [rule] * n,
            "value": [_text(v) for v in values],
            "action": [action] * n,
        }
    )


def _concat_issues(frames) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_issues()
    out = pd.concat(frames, ignore_index=True)
    out["row"] = out["row"].astype("Int64")
    return out[ISSUE_COLUMNS]


#: Empty quarantines by the columns and dtypes of their table: most steps find nothing, and building an empty frame
#: with ``reason`` and ``rule`` each time was a fifth of cleaning a small study.
_EMPTY_QUARANTINES: dict[tuple, pd.DataFrame] = {}


def _empty_quarantine(data: pd.DataFrame) -> pd.DataFrame:
    """No rows of ``data``, with its columns and dtypes plus ``reason`` and ``rule`` (a new frame each call)."""
    key = (tuple(data.columns), tuple(data.dtypes), type(data.index), data.index.dtype)
    empty = _EMPTY_QUARANTINES.get(key)
    if empty is None:
        if len(_EMPTY_QUARANTINES) > 512:
            _EMPTY_QUARANTINES.clear()
        empty = _EMPTY_QUARANTINES[key] = data.iloc[0:0].assign(reason=pd.Series(dtype=object),
                                                                rule=pd.Series(dtype=object))
    return empty.copy(deep=False)  # no rows to share: a column added to the copy does not reach the cached frame


def _split(data: pd.DataFrame, mask: pd.Series, rule: str, reason=None):
    """Rows where ``mask`` is true go to quarantine with ``rule`` and ``reason``."""
    mask = mask.reindex(data.index, fill_value=False).astype(bool)
    kept = keep_rows(data, ~mask.to_numpy())
    removed = data[mask]
    if reason is None:
        reason = RULES[rule]
    elif isinstance(reason, pd.Series):
        reason = reason.reindex(removed.index)
    quarantine = removed.assign(reason=reason, rule=rule) if len(removed) else _empty_quarantine(data)
    return kept, quarantine


@dataclass(frozen=True)
class _Removal:
    """Rows a step removes, found without taking the rows kept: ``bad`` (a boolean array over the rows of
    the table the step read), their ``issues`` and their ``quarantine`` (the removed rows, ``reason``, ``rule``)."""

    bad: np.ndarray
    issues: pd.DataFrame
    quarantine: pd.DataFrame


def _removed(data: pd.DataFrame, bad: np.ndarray, rule: str, reason=None) -> pd.DataFrame:
    """The quarantine of the rows of ``data`` where ``bad`` is true, with ``rule`` and ``reason``."""
    removed = data[bad]
    if reason is None:
        reason = RULES[rule]
    elif isinstance(reason, pd.Series):
        reason = reason.reindex(removed.index)
    return removed.assign(reason=reason, rule=rule) if len(removed) else _empty_quarantine(data)


def _in_play(bad, live) -> np.ndarray:
    """``bad`` (a boolean Series or array) as an array, true only on the rows still in play (``live``; None: all)."""
    bad = np.asarray(bad, dtype=bool)
    return bad if live is None else bad & live


def _result(data: pd.DataFrame, removal: _Removal | None) -> StepResult:
    """A removal as a step's result: the rows kept taken, the issues and quarantine as found."""
    if removal is None:
        return _nothing(data)
    return StepResult(keep_rows(data, ~removal.bad), removal.issues, removal.quarantine)


def _with(data: pd.DataFrame, columns: dict) -> pd.DataFrame:
    """A new table with some columns replaced (the input is never modified)."""
    out = data.copy(deep=False)
    for name, values in columns.items():
        out[name] = values
    return out


@dataclass(frozen=True)
class StepResult:
    """What a cleaning step returns.

    Attributes
    ----------
    data : DataFrame
        Rows kept, same index (source row numbers) as the input.
    issues : DataFrame
        One row per issue found: ``file, table, row, column, rule, value, action``.
    quarantine : DataFrame
        Rows removed, with their columns plus ``reason`` (text) and ``rule`` (id).
    """

    data: pd.DataFrame
    issues: pd.DataFrame
    quarantine: pd.DataFrame


def _nothing(data: pd.DataFrame) -> StepResult:
    return StepResult(data, _empty_issues(), _empty_quarantine(data))


@functools.lru_cache(maxsize=None)
def _accepts(func, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _conserved(before: pd.Index, after: pd.Index, removed: pd.Index) -> bool:
    """Whether the rows kept plus the rows removed are exactly the rows before, each once."""
    if len(before) != len(after) + len(removed):
        return False
    if not len(removed) and (after is before or after.equals(before)):
        return True
    values = before.to_numpy()
    if values.dtype.kind in "iu" and (len(values) < 2 or bool((values[1:] > values[:-1]).all())):
        # row numbers in increasing order (as loaded): locate each row by bisection
        combined = np.concatenate([after.to_numpy(), removed.to_numpy()])
        if combined.dtype.kind not in "iu":
            return False
        if len(values) and int(values[-1]) - int(values[0]) < 4 * len(values):
            # row numbers close together (as loaded, less what was removed): count each one, no bisection
            low, high = int(values[0]), int(values[-1])
            if int(combined.min()) < low or int(combined.max()) > high:
                return False
            counts = np.bincount((combined - low).astype(np.int64), minlength=high - low + 1)
            # as many rows as before, and each row before seen once: nothing else was seen
            return bool((counts[(values - low).astype(np.int64)] == 1).all())
        where = np.searchsorted(values, combined)
        if len(where) and (where.max() >= len(values) or not (values[where] == combined).all()):
            return False
        seen = np.zeros(len(values), dtype=bool)
        seen[where] = True
        return bool(seen.all())
    combined = after.append(removed)
    return bool(combined.is_unique and combined.isin(before).all())


class Cleaning:
    """Thread a table through cleaning steps, accumulating issues and quarantine.

    ``pipe`` has the signature of :meth:`pandas.DataFrame.pipe`; the step gets
    the current table first (or as the keyword named in a ``(func, "kw")``
    tuple), plus ``file=`` and ``table=`` when it accepts them. After every
    step, rows in must equal rows out plus rows quarantined, with the same
    row numbers; a violation is a bug and raises ``AssertionError``.

    Parameters
    ----------
    data : DataFrame
        The raw table (index = source row numbers).
    file : str, default ""
        File name for the report.
    table : str, default ""
        Canonical table name for the report.

    Attributes
    ----------
    data : DataFrame
        The rows kept so far.
    issues : DataFrame
        Every issue so far (``ISSUE_COLUMNS``).
    quarantine : DataFrame
        Every row removed so far, with ``reason`` and ``rule``.
    history : DataFrame
        One row per step: ``step, rows_in, rows_out, rows_quarantined, issues``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"employee_id": ["E1", " E2", None]}, index=pd.RangeIndex(2, 5, name="row"))
    >>> done = (ar.clean.Cleaning(raw, file="employees.csv", table="employees")
    ...         .pipe(ar.clean.strip_text)
    ...         .pipe(ar.clean.require_fields, columns=["employee_id"]))
    >>> done.data["employee_id"].tolist(), done.quarantine.index.tolist()
    (['E1', 'E2'], [4])
    """

    def __init__(self, data: pd.DataFrame, *, file: str = "", table: str = "", _parts=((), (), ()), _unique=False,
                 _live=None):
        # ``_unique``: ``pipe`` already knows (rows conserved from a unique index), so the index is not hashed again
        if not _unique and not data.index.is_unique:
            raise DataContractError(
                f"{file or table}: row numbers (the index) must be unique; load tables with ar.load_study.",
            )
        # ``_live``: the rows of ``_frame`` still in play (a boolean array), None for all of them. Steps that only
        # remove rows (and steps that read each row alone) work on ``_frame`` itself, so the rows kept are taken
        # once, when ``data`` is first read, not once per quarantining step.
        self._frame = data
        self._live = _live
        self.file = file
        self.table = table
        self._issues, self._quarantine, self._history = _parts

    @property
    def data(self) -> pd.DataFrame:
        """The rows kept so far (taken from the table here, once, after steps that only removed rows)."""
        if self._live is not None:
            self._frame, self._live = keep_rows(self._frame, self._live), None
        return self._frame

    def _pipe_in_place(self, func, args, kwargs) -> "Cleaning | None":
        """A step of :data:`_REMOVES` or :data:`_ROW_BY_ROW`, run on the table without taking the rows kept."""
        finder = _REMOVES.get(func)
        if finder is None and func not in _ROW_BY_ROW:
            return None
        frame, live = self._frame, self._live
        rows_in = len(frame) if live is None else int(np.count_nonzero(live))
        if finder is not None:
            found = finder(frame, live, *args, **kwargs)
            if found is None:
                found = _Removal(np.zeros(len(frame), dtype=bool), _empty_issues(), _empty_quarantine(frame))
            issues, quarantine = found.issues, found.quarantine
            if len(quarantine):
                live = ~found.bad if live is None else live & ~found.bad
        else:
            result = func(frame, *args, **kwargs)
            if not isinstance(result, StepResult):
                raise TypeError(f"cleaning step {func.__name__!r} must return a StepResult")
            if len(result.quarantine) or not result.data.index.equals(frame.index):
                raise AssertionError(f"bug in cleaning step {func.__name__} on {self.table}: it reads each row alone "
                                     "and must keep every row")
            issues, quarantine, frame = result.issues, result.quarantine, result.data
            if live is not None and len(issues):  # the issues of the rows still in play only
                gone = frame.index[~live]
                issues = issues[~issues["row"].isin(gone).to_numpy(dtype=bool, na_value=False)].reset_index(drop=True)
        rows_out = rows_in - len(quarantine)
        history = (func.__name__, rows_in, rows_out, len(quarantine), len(issues))
        return Cleaning(
            frame,
            file=self.file,
            table=self.table,
            _unique=True,
            _live=live,
            _parts=(
                self._issues + (issues,),
                self._quarantine + ((quarantine,) if len(quarantine) else ()),
                self._history + (history,),
            ),
        )

    def pipe(self, func, *args, **kwargs) -> "Cleaning":
        """Apply one step and return the accumulated state (a new ``Cleaning``)."""
        func, target = func if isinstance(func, tuple) else (func, None)
        for name in ("file", "table"):
            if name not in kwargs and _accepts(func, name):
                kwargs[name] = getattr(self, name)
        if target is None:
            done = self._pipe_in_place(func, args, kwargs)
            if done is not None:
                return done
            call_args = (self.data, *args)
        else:
            kwargs[target] = self.data
            call_args = args
        result = func(*call_args, **kwargs)
        if not isinstance(result, StepResult):
            raise TypeError(f"cleaning step {getattr(func, '__name__', func)!r} must return a StepResult")
        before, after, removed = self.data.index, result.data.index, result.quarantine.index
        if not _conserved(before, after, removed):
            raise AssertionError(
                f"bug in cleaning step {func.__name__} on {self.table}: {len(before)} rows in, "
                f"{len(after)} out + {len(removed)} quarantined (rows must be conserved)"
            )
        history = (func.__name__, len(before), len(after), len(removed), len(result.issues))
        return Cleaning(
            result.data,
            file=self.file,
            table=self.table,
            _unique=True,
            _parts=(
                self._issues + (result.issues,),
                self._quarantine + ((result.quarantine,) if len(result.quarantine) else ()),
                self._history + (history,),
            ),
        )

    @property
    def issues(self) -> pd.DataFrame:
        return _concat_issues(self._issues)

    @property
    def quarantine(self) -> pd.DataFrame:
        if not self._quarantine:
            return _empty_quarantine(self.data)
        return pd.concat(self._quarantine).sort_index()

    @property
    def history(self) -> pd.DataFrame:
        return pd.DataFrame(
            list(self._history), columns=["step", "rows_in", "rows_out", "rows_quarantined", "issues"]
        )


# --------------------------------------------------------------------------- steps: fix in place
def add_missing_columns(data: pd.DataFrame, *, columns, file: str = "", table: str = "") -> StepResult:
    """Add absent optional columns, every value missing, so clean tables always have every column.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : dict of str to str
        Column name -> dtype (``"str"``, ``"datetime64[ns]"``, ``"Int64"``,
        ``"float64"``) of every optional column and declared survey item.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``absent_column`` issue (``set_missing``, row missing) per added column.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> res = ar.clean.add_missing_columns(pd.DataFrame({"a": [1]}), columns={"b": "float64"})
    >>> res.data.columns.tolist(), res.issues["rule"].tolist()
    (['a', 'b'], ['absent_column'])
    """
    absent = [c for c in columns if c not in data]
    if not absent:
        return _nothing(data)
    added = {}
    for c in absent:
        dtype = columns[c]
        added[c] = pd.Series(np.nan, index=data.index, dtype=object if dtype == "str" else dtype)
    issues = _issues(file, table, [None] * len(absent), absent, "absent_column", None, "set_missing")
    return StepResult(_with(data, added), issues, _empty_quarantine(data))


def as_text(data: pd.DataFrame, *, columns, file: str = "", table: str = "") -> StepResult:
    """Hold text columns (ids, names, categories) as text: numbers become their digits.

    A type change only (``123`` -> ``"123"``), so nothing is reported.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str
        Columns to hold as text; absent ones are skipped.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        No issues, no quarantine.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> ar.clean.as_text(pd.DataFrame({"employee_id": [123, None]}), columns=["employee_id"]).data["employee_id"].tolist()
    ['123', nan]
    """
    changes = {}
    for c in columns:
        if c not in data:
            continue
        s = data[c]
        if s.dtype == object and text_kind(s)[0] in ("string", "empty"):
            continue
        changes[c] = s.map(_text).astype(object).where(s.notna(), np.nan)
    return _nothing(_with(data, changes)) if changes else _nothing(data)


def strip_text(data: pd.DataFrame, *, columns=None, file: str = "", table: str = "") -> StepResult:
    """Remove leading and trailing white space; a blank cell becomes missing.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str, optional
        Columns to strip (text cells only); all columns by default.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``untrimmed_text`` issue (action ``fixed``, value = the raw text)
        per changed cell; nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> ar.clean.strip_text(pd.DataFrame({"x": [" a", "b"]})).data["x"].tolist()
    ['a', 'b']
    """
    changes, found, arrow_of = {}, [], {}
    for c in data.columns if columns is None else columns:
        if c not in data or data[c].dtype != object:
            continue
        s = data[c]
        kind, arr = text_kind(s)
        if kind == "string" and arr is not None:
            # fast path: find the cells that need work in Arrow (C speed), strip only those
            distinct = distinct_texts(s, arrow=True) if has_codes(s) else None
            if distinct is not None:  # hashed since load: each distinct text looked at once
                codes, texts = distinct
                trimmed = pc.utf8_trim(texts, characters=_WHITESPACE)
                work = pc.or_(pc.not_equal(texts, trimmed), pc.equal(texts, ""))
                if not pc.any(work).as_py():
                    continue
                is_str = np.append(False, work.to_numpy(zero_copy_only=False))[codes]  # code 0: missing
                if not is_str.any():
                    continue
                work = pa_arrow.array(is_str)
            else:
                trimmed = pc.utf8_trim(arr, characters=_WHITESPACE)
                work = pc.fill_null(pc.or_(pc.not_equal(arr, trimmed), pc.equal(arr, "")), False)
                if not pc.any(work).as_py():
                    continue
                is_str = work.to_numpy(zero_copy_only=False)
            # each such cell changes (Python strips what Arrow strips, and more; a blank becomes missing)
            values = s.to_numpy()
            new = [v.strip() or np.nan for v in values[is_str]]
            stripped_values = values.copy()
            stripped_values[is_str] = new
            stripped = pd.Series(stripped_values, index=s.index, name=s.name, dtype=object)
            fixed = pa_arrow.array(new, type=pa_arrow.string(), from_pandas=True)
            arrow_of[c] = pc.replace_with_mask(arr, work, fixed)
            changes[c] = stripped
            found.append(_issues(file, table, s.index[is_str], c, "untrimmed_text", values[is_str], "fixed"))
            continue
        if kind == "empty":
            continue
        is_str = s.map(lambda v: isinstance(v, str)).astype(bool)
        if not is_str.any():
            continue
        stripped = s.copy()
        stripped[is_str] = s[is_str].str.strip()
        stripped = stripped.where(stripped != "", np.nan)
        changed = s.notna() & (stripped.isna() | (stripped != s))
        if changed.any():
            changes[c] = stripped
            found.append(_issues(file, table, s.index[changed], c, "untrimmed_text", s[changed], "fixed"))
    if not changes:
        return _nothing(data)
    out = _with(data, changes)
    for c, arrow in arrow_of.items():  # the stripped column's Arrow text, for the steps after this one
        remember(out[c], arrow)
    return StepResult(out, _concat_issues(found), _empty_quarantine(data))


def _category_key(value: str, snake: bool) -> str:
    key = " ".join(str(value).lower().split())
    if snake:
        key = "_".join(key.replace("-", " ").split())
    return key


def normalise_category(
    data: pd.DataFrame,
    *,
    column: str,
    mapping: dict | None = None,
    allowed=None,
    snake: bool = False,
    unknown_as: str | None = None,
    unknown_rule: str = "unknown_category",
    file: str = "",
    table: str = "",
) -> StepResult:
    """Normalise a category: lower case, single spaces (or snake_case), then map.

    Parameters
    ----------
    data : DataFrame
        The table.
    column : str
        The category column (skipped when absent).
    mapping : dict of str to str, optional
        Lower-case text -> canonical value (e.g. study.yaml ``termination_map``:
        ``"resignation" -> "voluntary"``). Values missing from the mapping are
        unknown. The allowed values themselves always map to themselves.
    allowed : sequence of str, optional
        The canonical values; anything else is unknown.
    snake : bool, default False
        Join words with ``_`` (``"Leadership Development"`` ->
        ``"leadership_development"``).
    unknown_as : str, optional
        Keep unknown values as this canonical value (feedback kinds: ``other``)
        instead of setting them missing.
    unknown_rule : str, default "unknown_category"
        Rule id reported for an unknown value kept as ``unknown_as``
        (``unmapped_feedback_kind``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        ``noncanonical_category`` (``fixed``) for each cell whose text changed,
        ``unknown_category`` (``set_missing``) for each unknown value, or with
        ``unknown_as`` ``unknown_rule`` (``flagged``, the value kept as
        ``unknown_as``); the raw text is the value. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"termination_type": ["Resignation", "quit", "Voluntary", "sacked"]})
    >>> res = ar.clean.normalise_category(raw, column="termination_type",
    ...                             mapping={"resignation": "voluntary", "quit": "voluntary"},
    ...                             allowed=["voluntary", "involuntary", "other"])
    >>> res.data["termination_type"].tolist()
    ['voluntary', 'voluntary', 'voluntary', nan]
    """
    if column not in data:
        return _nothing(data)
    s = data[column]
    table_map = {}
    if allowed is not None:
        table_map.update({a: a for a in allowed})
    if mapping is not None:
        table_map.update({_category_key(k, snake): v for k, v in mapping.items()})
    # one hash pass (none for a loaded column, hashed already): each distinct value is looked up once, then
    # spread back to the rows by its code
    held = distinct_texts(s) if has_codes(s) else None
    if held is not None:
        codes, distinct = held[0] - 1, held[1]  # -1 for missing, as factorize gives
    else:
        codes, distinct = pd.factorize(s.to_numpy(dtype=object), use_na_sentinel=True)
    lookup = []
    for raw in distinct:
        key = _category_key(raw, snake)
        value = table_map.get(key, np.nan) if mapping is not None or allowed is not None else key
        if allowed is not None and value not in allowed:
            value = np.nan
        lookup.append(value)
    looked_up = np.array([*lookup, np.nan], dtype=object)  # code -1 (missing) -> the last cell
    unknown_value = np.append(pd.isna(looked_up[:-1]), False)
    changed_value = np.array([not pd.isna(v) and bool(v != raw) for v, raw in zip(lookup, distinct)] + [False])
    if unknown_as is not None:
        looked_up = np.where(unknown_value, unknown_as, looked_up)
    new = pd.Series(looked_up[codes], index=s.index, name=s.name, dtype=object)
    if held is not None and all(isinstance(v, str) or v is np.nan for v in looked_up):
        # the new column's Arrow text, from its few distinct values (the schema's category check reads it)
        rows = pa_arrow.array(codes % len(looked_up))  # code -1 (missing) -> the last cell, as above
        arrow = pa_arrow.array(looked_up, type=pa_arrow.string(), from_pandas=True).take(rows)
    else:
        arrow = None
    unknown = pd.Series(unknown_value[codes], index=s.index)
    changed = pd.Series(changed_value[codes], index=s.index)
    rule, action = (unknown_rule, "flagged") if unknown_as is not None else ("unknown_category", "set_missing")
    issues = _concat_issues(
        [
            _issues(file, table, s.index[changed], column, "noncanonical_category", s[changed], "fixed"),
            _issues(file, table, s.index[unknown], column, rule, s[unknown], action),
        ]
    )
    issues = issues.sort_values("row", kind="stable", ignore_index=True)
    out = _with(data, {column: new})
    if arrow is not None:
        remember(out[column], arrow)
    return StepResult(out, issues, _empty_quarantine(data))


def parse_dates(
    data: pd.DataFrame, *, columns, formats=("%Y-%m-%d",), file: str = "", table: str = ""
) -> StepResult:
    """Parse date columns in the declared formats, and Excel serial day numbers.

    Each format is tried in order (``strptime`` codes) and the first that fits
    a value is used; a value none fits that is a whole number up to 2958465 is
    read as an Excel serial date (``44197`` -> 2021-01-01, day 0 =
    1899-12-30). Values that are already dates (typed files) are kept; times
    of day are dropped. A value that a later format reads as a *different*
    date (``02/01/2021`` with both ``%d/%m/%Y`` and ``%m/%d/%Y``) keeps the
    first reading and is flagged ``ambiguous_date``.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str
        Date columns (absent ones skipped).
    formats : sequence of str, default ("%Y-%m-%d",)
        The study.yaml ``date_formats``.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        Columns as ``datetime64[ns]``; ``excel_serial_date`` (``fixed``) per
        serial number converted, ``ambiguous_date`` (``flagged``) per value
        two formats read differently and ``unparseable_date``
        (``set_missing``) per unreadable value, with the raw text as value.
        Nothing quarantined.

    Raises
    ------
    ConfigError
        A format is not a valid ``strptime`` format.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"hire_date": ["2021-01-04", "44197", "04/01/2021"]})
    >>> ar.clean.parse_dates(raw, columns=["hire_date"]).data["hire_date"].dt.strftime("%Y-%m-%d").tolist()
    ['2021-01-04', '2021-01-01', nan]
    >>> res = ar.clean.parse_dates(pd.DataFrame({"date": ["02/01/2021", "13/01/2021"]}), columns=["date"],
    ...                      formats=["%d/%m/%Y", "%m/%d/%Y"])
    >>> res.data["date"].dt.strftime("%Y-%m-%d").tolist(), res.issues[["row", "rule"]].values.tolist()
    (['2021-01-02', '2021-01-13'], [[0, 'ambiguous_date']])
    """
    changes, found = {}, []
    for c in columns:
        if c not in data:
            continue
        s = data[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            changes[c] = s.dt.tz_localize(None).dt.normalize() if s.dt.tz is not None else s.dt.normalize()
            changes[c] = changes[c].astype("datetime64[ns]")
            continue
        distinct = distinct_texts(s) if text_kind(s)[0] == "string" else None
        if distinct is not None:  # every distinct text read once, the answers spread to the rows
            changes[c] = _parse_distinct_dates(s, *distinct, formats, found, file=file, table=table)
            continue
        result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
        missing = _null_mask(s)
        present = pd.Series(True if missing is None else ~missing, index=s.index)
        if text_kind(s)[0] == "string":
            is_date = pd.Series(False, index=s.index)
        else:
            is_date = s.map(lambda v: isinstance(v, (dt.date, pd.Timestamp))).astype(bool)
            if is_date.any():
                result[is_date] = pd.to_datetime(s[is_date].map(pd.Timestamp)).dt.normalize()
        text = s[present & ~is_date].astype(str)
        first, ambiguous = _read_formats(text, formats)
        read = first.notna()
        result[first.index[read]] = first[read]
        found.append(_issues(file, table, text.index[ambiguous], c, "ambiguous_date", text[ambiguous], "flagged"))
        remaining = text[~read]
        serials = _excel_serials(remaining)
        if serials is not None:
            result[serials.index] = serials
            found.append(_issues(file, table, serials.index, c, "excel_serial_date", remaining[serials.index], "fixed"))
            remaining = remaining.drop(serials.index)
        found.append(_issues(file, table, remaining.index, c, "unparseable_date", remaining, "set_missing"))
        changes[c] = result
    issues = _concat_issues(found)
    if len(issues):
        issues = issues.sort_values(["row"], kind="stable", ignore_index=True)
    return StepResult(_with(data, changes), issues, _empty_quarantine(data))


def _excel_serials(text: pd.Series) -> pd.Series | None:
    """The cells of ``text`` that are Excel serial day numbers in range, as dates (indexed as those cells).

    None when no cell looks like a serial number. The one rule for both ways :func:`parse_dates` reads a
    column (cell by cell, or each distinct text once).
    """
    looks = text.str.fullmatch(r"\d{1,7}(\.\d+)?")
    if not looks.any():
        return None
    days = pd.to_numeric(text[looks], errors="coerce")
    days = days[(days >= 1) & (days <= _EXCEL_MAX)]
    return EXCEL_EPOCH + pd.to_timedelta(np.floor(days), unit="D")


def _parse_distinct_dates(s: pd.Series, codes: np.ndarray, texts: np.ndarray, formats, found: list, *, file,
                          table) -> pd.Series:
    """:func:`parse_dates` of a text column given as distinct texts and a code per row (see ``distinct_texts``).

    Each distinct text is read as :func:`parse_dates` reads a cell (formats, then an Excel serial);
    the issues, appended to ``found``, are those of the rows.
    """
    used = np.bincount(codes, minlength=len(texts) + 1)[1:] > 0
    distinct = pd.Series(texts[used], dtype=object)
    first, ambiguous = _read_formats(distinct, formats)
    day = first.to_numpy()
    serial = np.zeros(len(distinct), dtype=bool)
    serials = _excel_serials(distinct[first.isna().to_numpy()])
    if serials is not None:
        day[serials.index] = serials.to_numpy()
        serial[serials.index] = True
    # code -> position among the distinct texts used (code 0, missing: an extra last slot)
    position = np.full(len(texts) + 1, len(distinct), dtype=np.int64)
    position[1:][used] = np.arange(len(distinct))
    rows = position[codes]
    day = np.append(day, np.datetime64("NaT", "ns"))
    value = np.append(distinct.to_numpy(), np.nan)
    read = np.append(first.notna().to_numpy(), False)
    ambiguous = np.append(ambiguous.to_numpy(), False)
    serial = np.append(serial, False)
    unread = np.append(~read[:-1] & ~serial[:-1], False)
    for mask, rule, action in ((ambiguous, "ambiguous_date", "flagged"), (serial, "excel_serial_date", "fixed"),
                               (unread, "unparseable_date", "set_missing")):
        if mask.any():
            at = np.flatnonzero(mask[rows])
            found.append(_issues(file, table, s.index[at], s.name, rule, value[rows[at]], action))
    return pd.Series(day[rows], index=s.index, dtype="datetime64[ns]")


def _read_formats(text: pd.Series, formats) -> tuple[pd.Series, pd.Series]:
    """Read text dates with each format: (first reading, day only; true where another format reads a different day).

    Each distinct text is parsed once (a date column repeats few values), then spread back to the rows.
    """
    first = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    ambiguous = pd.Series(False, index=text.index)
    if text.empty:
        return first, ambiguous
    codes, uniques = pd.factorize(text.to_numpy(dtype=object))
    distinct = pd.Series(uniques, dtype=object)
    read = pd.Series(pd.NaT, index=distinct.index, dtype="datetime64[ns]")
    twice = pd.Series(False, index=distinct.index)
    for fmt in formats:
        try:
            parsed = pd.to_datetime(distinct, format=fmt, errors="coerce")
        except ValueError as err:  # a bad directive, e.g. '%Q'
            raise ConfigError(f"study.yaml `date_formats`: {fmt!r} is not a strptime format ({err}).") from None
        if parsed.dt.tz is not None:
            parsed = parsed.dt.tz_localize(None)
        parsed = parsed.dt.normalize().astype("datetime64[ns]")
        ok = parsed.notna()
        twice |= ok & read.notna() & (parsed != read)
        new = ok & read.isna()
        read[new] = parsed[new]
    first[:] = read.to_numpy()[codes]
    ambiguous[:] = twice.to_numpy()[codes]
    return first, ambiguous


def _to_float(s: pd.Series) -> pd.Series:
    """Numbers as float64; text that is not a number becomes NaN."""
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64")
    arr = arrow_text(s)
    if arr is not None:
        try:  # fast path (C speed); any non-number makes Arrow refuse, and pandas decides cell by cell
            values = pc.cast(arr, pa_arrow.float64()).to_numpy(zero_copy_only=False)
            return pd.Series(values, index=s.index, dtype="float64")
        except (pa_arrow.ArrowInvalid, pa_arrow.ArrowNotImplementedError, pa_arrow.ArrowTypeError):
            pass
    return pd.to_numeric(s, errors="coerce").astype("float64")


def parse_numbers(
    data: pd.DataFrame,
    *,
    columns,
    low: float = -np.inf,
    high: float = np.inf,
    whole: bool = False,
    rule: str = "not_a_number",
    file: str = "",
    table: str = "",
) -> StepResult:
    """Read numeric columns; values outside ``[low, high]`` (or not whole) become missing.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str
        Numeric columns (absent ones skipped).
    low, high : float
        Allowed range, inclusive.
    whole : bool, default False
        Only whole numbers are allowed; the column becomes ``Int64``
        (otherwise ``float64``).
    rule : str
        Rule id for out-of-range values (e.g. ``out_of_range_rating``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        ``not_a_number`` per non-numeric text and ``rule`` per out-of-range
        value, both ``set_missing`` with the raw value. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"rating": ["3", "7", "good", "2.5"]})
    >>> res = ar.clean.parse_numbers(raw, columns=["rating"], low=1, high=5, whole=True, rule="out_of_range_rating")
    >>> res.data["rating"].tolist(), res.issues["rule"].tolist()
    ([3, <NA>, <NA>, <NA>], ['out_of_range_rating', 'not_a_number', 'out_of_range_rating'])
    """
    return _parse_numbers(data, columns=columns, low=low, high=high, whole=whole, rule=rule, file=file, table=table)


def _parse_numbers(data, *, columns, low, high, whole, rule, file, table, whole_as="Int64") -> StepResult:
    """:func:`parse_numbers`; ``whole_as="float64"`` keeps whole numbers as floats (no Int64 round trip)."""
    changes, found = {}, []
    for c in columns:
        if c not in data:
            continue
        s = data[c]
        num = _to_float(s)
        missing = _null_mask(s)
        text = num.isna() if missing is None else num.isna() & ~missing
        bad = num.notna() & ((num < low) | (num > high))
        if whole:
            bad |= num.notna() & (np.floor(num) != num)
        num = num.where(~bad)
        found.append(_issues(file, table, s.index[text], c, "not_a_number", s[text], "set_missing"))
        found.append(_issues(file, table, s.index[bad], c, rule, s[bad], "set_missing"))
        changes[c] = num.astype(whole_as) if whole else num
    issues = _concat_issues(found)
    if len(issues):
        issues = issues.sort_values(["row"], kind="stable", ignore_index=True)
    return StepResult(_with(data, changes), issues, _empty_quarantine(data))


def clean_survey_answers(data: pd.DataFrame, *, scales: dict, file: str = "", table: str = "") -> StepResult:
    """Read survey answers; answers outside a scale's range or not whole become missing.

    Parameters
    ----------
    data : DataFrame
        The surveys table.
    scales : dict of str to Scale
        The study.yaml ``scales`` (items, min, max).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        Item columns as ``float64``; ``out_of_range_answer`` and
        ``not_a_number`` issues (``set_missing``), ordered by item then row.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> cfg = ar.config_from_dict({"window": {"start": "2021-01-01", "end": "2024-12-31"},
    ...     "scales": {"engagement": {"items": ["engagement_1", "engagement_2"]}}})
    >>> raw = pd.DataFrame({"engagement_1": ["4", "9"], "engagement_2": ["2", "3.5"]})
    >>> ar.clean.clean_survey_answers(raw, scales=cfg.scales).issues[["row", "column", "value"]].values.tolist()
    [[1, 'engagement_1', '9'], [1, 'engagement_2', '3.5']]
    """
    changes, found = {}, []
    for scale in scales.values():
        res = _parse_numbers(
            data, columns=scale.items, low=scale.min, high=scale.max, whole=True,
            rule="out_of_range_answer", file=file, table=table, whole_as="float64",
        )
        for item in scale.items:
            if item in data:
                changes[item] = res.data[item].astype("float64")
        if len(res.issues):
            order = {c: i for i, c in enumerate(scale.items)}
            found.append(
                res.issues.assign(_o=res.issues["column"].map(order))
                .sort_values(["_o", "row"], kind="stable")
                .drop(columns="_o")
            )
    return StepResult(_with(data, changes), _concat_issues(found), _empty_quarantine(data))


def reverse_code(data: pd.DataFrame, *, scales: dict, file: str = "", table: str = "") -> StepResult:
    """Reverse-code the items each scale declares: ``x -> min + max - x``.

    The change applies to a whole column, so it is reported once per column
    (``row`` missing, ``value`` = the formula), not once per answer.

    Parameters
    ----------
    data : DataFrame
        The surveys table, answers already numeric.
    scales : dict of str to Scale
        The study.yaml ``scales`` (``reverse``, ``min``, ``max``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``reverse_coded`` issue (``fixed``) per reversed item column.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> cfg = ar.config_from_dict({"window": {"start": "2021-01-01", "end": "2024-12-31"},
    ...     "scales": {"engagement": {"items": ["engagement_1", "engagement_2"], "reverse": ["engagement_2"]}}})
    >>> raw = pd.DataFrame({"engagement_1": [4.0], "engagement_2": [1.0]})
    >>> ar.clean.reverse_code(raw, scales=cfg.scales).data["engagement_2"].tolist()
    [5.0]
    """
    changes, found = {}, []
    for scale in scales.values():
        total = scale.min + scale.max
        for item in scale.reverse:
            if item in data:
                changes[item] = total - pd.to_numeric(data[item]).astype("float64")
                found.append(_issues(file, table, [None], item, "reverse_coded", f"x -> {total} - x", "fixed"))
    return StepResult(_with(data, changes), _concat_issues(found), _empty_quarantine(data))


# --------------------------------------------------------------------------- steps: quarantine
def _cell_issues(file, table, data, bad: pd.DataFrame, rule, action) -> pd.DataFrame:
    """One issue per true cell of ``bad`` (rows x columns), row-major order."""
    if bad.empty or not bad.to_numpy().any():
        return _empty_issues()
    stacked = bad.stack()
    stacked = stacked[stacked]
    rows = stacked.index.get_level_values(0)
    cols = stacked.index.get_level_values(1)
    values = [data.at[r, c] for r, c in zip(rows, cols)]
    return _issues(file, table, rows, list(cols), rule, values, action)


def require_fields(data: pd.DataFrame, *, columns, file: str = "", table: str = "") -> StepResult:
    """Quarantine rows missing a required field.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str
        Required columns (absent ones are a structural problem, skipped here).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``missing_required`` issue (``quarantined``) per missing cell.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"employee_id": ["E1", None]}, index=[2, 3])
    >>> ar.clean.require_fields(raw, columns=["employee_id"]).quarantine.index.tolist()
    [3]
    """
    return _result(data, _missing_required(data, None, columns=columns, file=file, table=table))


def _missing_required(data: pd.DataFrame, live, *, columns, file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`require_fields` removes, among the rows in play (``live``, a boolean array; None: all)."""
    present = [c for c in columns if c in data]
    if data.columns.is_unique:
        # a column of text only has nothing missing, told in one cheap pass (isna is slow on text)
        masks = {c: _null_mask(data[c]) for c in present}
        if all(m is None for m in masks.values()):
            return None
        none = np.zeros(len(data), dtype=bool)
        missing = pd.DataFrame({c: none if m is None else m for c, m in masks.items()}, index=data.index,
                               columns=present)
    else:
        missing = data[present].isna()
    bad = _in_play(missing.any(axis=1), live)
    if not bad.any():
        return None
    # one text per pattern of missing fields (vectorised: a bit mask per row)
    pattern = missing[bad].to_numpy() @ (1 << np.arange(len(present)))
    texts = {
        p: "missing required field(s): " + ", ".join(c for i, c in enumerate(present) if p >> i & 1)
        for p in np.unique(pattern)
    }
    reason = pd.Series([texts[p] for p in pattern], index=missing.index[bad])
    quarantine = _removed(data, bad, "missing_required", reason)
    return _Removal(bad, _cell_issues(file, table, data, missing[bad], "missing_required", "quarantined"), quarantine)


def quarantine_implausible_dates(
    data: pd.DataFrame, *, columns, earliest, latest, file: str = "", table: str = ""
) -> StepResult:
    """Quarantine rows with a date outside ``[earliest, latest]``.

    Parameters
    ----------
    data : DataFrame
        The table, dates parsed.
    columns : list of str
        Date columns (absent ones skipped).
    earliest, latest : Timestamp
        The plausible range (study.yaml ``earliest_plausible_date``; window end
        plus 5 years).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``implausible_date`` issue (``quarantined``) per offending cell.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"hire_date": pd.to_datetime(["1901-01-01", "2020-01-01"])}, index=[2, 3])
    >>> res = ar.clean.quarantine_implausible_dates(spells, columns=["hire_date"], earliest="1950-01-01", latest="2029-12-31")
    >>> res.quarantine.index.tolist()
    [2]
    """
    return _result(data, _implausible_dates(data, None, columns=columns, earliest=earliest, latest=latest, file=file,
                                            table=table))


def _implausible_dates(data: pd.DataFrame, live, *, columns, earliest, latest, file: str = "",
                       table: str = "") -> _Removal | None:
    """The rows :func:`quarantine_implausible_dates` removes, among the rows in play (``live``; None: all)."""
    present = [c for c in columns if c in data]
    dates = data[present]
    bad_cells = dates.notna() & ((dates < pd.Timestamp(earliest)) | (dates > pd.Timestamp(latest)))
    bad = _in_play(bad_cells.any(axis=1), live)
    if not bad.any():
        return None
    quarantine = _removed(data, bad, "implausible_date")
    return _Removal(bad, _cell_issues(file, table, data, bad_cells[bad], "implausible_date", "quarantined"), quarantine)


def _quarantine_order(data, *, first, second, rule, file, table) -> StepResult:
    if first not in data or second not in data:
        return _nothing(data)
    bad = (data[second] < data[first]).fillna(False).astype(bool)
    if not bad.any():
        return _nothing(data)
    kept, quarantine = _split(data, bad, rule)
    return StepResult(kept, _issues(file, table, data.index[bad], second, rule, data.loc[bad, second], "quarantined"), quarantine)


def quarantine_termination_before_hire(employees: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Quarantine employment spells that end before they start.

    Parameters
    ----------
    employees : DataFrame
        The employees table, dates parsed.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``termination_before_hire`` issue (``quarantined``, value = the
        termination date) per spell.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"hire_date": pd.to_datetime(["2020-05-01"]),
    ...                        "termination_date": pd.to_datetime(["2019-05-01"])}, index=[2])
    >>> ar.clean.quarantine_termination_before_hire(spells).issues["rule"].tolist()
    ['termination_before_hire']
    """
    return _quarantine_order(
        employees, first="hire_date", second="termination_date", rule="termination_before_hire", file=file, table=table
    )


def quarantine_overlapping_spells(employees: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Quarantine employment spells of one employee that overlap in time.

    An employee may have several spells (rehires), each starting after the
    previous one ended. A spell that starts on or before the end of the same
    employee's previous spell (or while it is still open) would put the
    person at risk twice; both spells are quarantined.

    Parameters
    ----------
    employees : DataFrame
        The employees table, dates parsed, exact and conflicting duplicates removed.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``overlapping_spells`` issue (``quarantined``, column ``hire_date``,
        value = the hire date) per spell involved.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E1", "E2"],
    ...                        "hire_date": pd.to_datetime(["2018-01-01", "2020-01-01", "2018-01-01"]),
    ...                        "termination_date": pd.to_datetime([None, None, None])}, index=[2, 3, 4])
    >>> ar.clean.quarantine_overlapping_spells(spells).quarantine.index.tolist()
    [2, 3]
    """
    if not {"employee_id", "hire_date", "termination_date"} <= set(employees.columns):
        return _nothing(employees)
    spells = employees[["employee_id", "hire_date", "termination_date"]].dropna(subset=["employee_id", "hire_date"])
    repeated = spells["employee_id"].duplicated(keep=False)
    if not repeated.any():
        return _nothing(employees)
    spells = spells[repeated].sort_values(["employee_id", "hire_date"], kind="stable")
    same = spells["employee_id"].eq(spells["employee_id"].shift())
    previous_end = spells["termination_date"].shift()
    later = same & (previous_end.isna() | (spells["hire_date"] <= previous_end))
    earlier = later.shift(-1, fill_value=False).astype(bool)
    bad = (later | earlier).reindex(employees.index, fill_value=False)
    if not bad.any():
        return _nothing(employees)
    kept, quarantine = _split(employees, bad, "overlapping_spells")
    rows = employees.index[bad]
    issues = _issues(file, table, rows, "hire_date", "overlapping_spells", employees.loc[rows, "hire_date"], "quarantined")
    return StepResult(kept, issues, quarantine)


def quarantine_end_before_start(
    data: pd.DataFrame, *, start: str = "start_date", end: str = "end_date", file: str = "", table: str = ""
) -> StepResult:
    """Quarantine rows whose ``end`` date is before their ``start`` date (programmes).

    Parameters
    ----------
    data : DataFrame
        The table, dates parsed.
    start, end : str
        Column names.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``end_before_start`` issue (``quarantined``, value = the end date) per row.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> programs = pd.DataFrame({"start_date": pd.to_datetime(["2022-03-01"]),
    ...                          "end_date": pd.to_datetime(["2022-02-01"])}, index=[2])
    >>> ar.clean.quarantine_end_before_start(programs).quarantine["rule"].tolist()
    ['end_before_start']
    """
    return _quarantine_order(data, first=start, second=end, rule="end_before_start", file=file, table=table)


_NS_PER_DAY = 86_400 * 10**9


def _day_codes(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Codes of ``datetime64[ns]`` values without hashing: days from the earliest plus 1, 0 for NaT; and their
    number. None unless every value is a whole day (a parsed date)."""
    missing = np.isnat(values)
    ns = values.view(np.int64)
    present = ns[~missing] if missing.any() else ns
    if not len(present):
        return np.zeros(len(values), dtype=np.int64), 1
    low, high = int(present.min()), int(present.max())
    if (high - low) // _NS_PER_DAY > 4 * len(values) + 1024 or ((present - low) % _NS_PER_DAY).any():
        return None
    codes = (ns - low) // _NS_PER_DAY + 1
    codes[missing] = 0
    return codes, (high - low) // _NS_PER_DAY + 2


_KEY_MAX = 2**62


def _repeated(key: np.ndarray, bound: int, limit: int) -> np.ndarray:
    """Whether each key (``0 <= key < bound``) occurs more than once.

    Counted when ``bound <= limit``; else sorted with each row's position in the low bits of its key (a plain
    sort of integers, much cheaper than hashing them or sorting their positions), falling back to a hash pass
    for keys too large for that.
    """
    n = len(key)
    if bound <= limit:
        return np.bincount(key)[key] > 1
    shift = max(n - 1, 1).bit_length()
    if (bound - 1).bit_length() + shift > 62:
        codes, uniques = pd.factorize(key)
        return np.bincount(codes, minlength=len(uniques))[codes] > 1
    packed = np.sort((key << shift) | np.arange(n, dtype=np.int64))
    ordered = packed >> shift
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(n, dtype=bool)
    repeated[1:] = same
    repeated[:-1] |= same
    out = np.empty(n, dtype=bool)
    out[packed & ((1 << shift) - 1)] = repeated
    return out


def _duplicate_groups(data: pd.DataFrame, live=None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows equal to another row (missing equals missing), in order, and a group id each.

    Only the rows in play count (``live``, a boolean array; None: every row).

    Equality as ``groupby(dropna=False)`` sees it, column by column, each next column only over
    the rows still equal to another row: first the text column hashed already with the most distinct
    values (free, e.g. an id, after which few rows are left), then the dates (counted in days, no hash:
    an id and a date leave few rows, where an id and another id may leave most), then the other text
    columns hashed already, then cheap (numeric) columns, then the other text columns.
    """
    kinds = []
    for i in range(data.shape[1]):
        whole = data.iloc[:, i]
        if whole.dtype == object and has_codes(whole):
            kinds.append((2, -value_codes(whole)[1], True, i))
        elif whole.dtype == np.dtype("datetime64[ns]"):
            kinds.append((1, 0, False, i))
        else:
            kinds.append((3, 0, whole.dtype == object, i))
    kinds.sort()
    held = [k for k in kinds if k[0] == 2]
    if held:  # the held text with the most distinct values first
        kinds.remove(held[0])
        kinds.insert(0, (0, *held[0][1:]))
    rows = np.arange(len(data)) if live is None else np.flatnonzero(live)
    key = np.zeros(len(rows), dtype=np.int64)
    # keys below ``bound``: counted when that needs at most ``limit`` counters, else sorted (see _repeated)
    bound, limit = 1, 4 * len(data) + 1024
    for rank, _, text, i in kinds:
        whole = data.iloc[:, i]
        days = _day_codes(whole.to_numpy()[rows]) if rank == 1 else None
        if days is not None:
            codes, n_codes = days
        elif text and is_held(whole) and (has_codes(whole) or 2 * len(rows) >= len(data)):
            # most rows still in play: the whole column is hashed, once for every step (the key's duplicates)
            codes, n_codes = value_codes(whole)
            codes = codes if len(rows) == len(data) else codes[rows]
        else:
            codes, n_codes = value_codes(whole if len(rows) == len(data) else data.iloc[rows, i])
        if bound > _KEY_MAX // n_codes:  # the next key could overflow: renumber the keys (a hash pass)
            key, uniques = pd.factorize(key)
            bound = len(uniques)
        key, bound = key * n_codes + codes, bound * n_codes
        keep = _repeated(key, bound, limit)
        rows, key = rows[keep], key[keep]
        if not len(rows):
            break
    return rows, key.astype(np.int64)


def drop_exact_duplicates(data: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Set aside rows identical to an earlier row (after normalising text and dates).

    The first copy stays; later copies go to quarantine with action
    ``dropped_duplicate``, so they are still counted.

    Parameters
    ----------
    data : DataFrame
        The table.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``duplicate_row`` issue per copy, value ``"duplicate of row N"``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"employee_id": ["E1", "E1"]}, index=[2, 3])
    >>> ar.clean.drop_exact_duplicates(raw).issues["value"].tolist()
    ['duplicate of row 2']
    """
    return _result(data, _exact_duplicates(data, None, file=file, table=table))


def _exact_duplicates(data: pd.DataFrame, live, *, file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`drop_exact_duplicates` removes, among the rows in play (``live``; None: all)."""
    if data.empty or data.shape[1] == 0:
        return None
    rows, group = _duplicate_groups(data, live)
    if not len(rows):
        return None
    later = pd.Series(group).duplicated(keep="first").to_numpy()
    first_of_group = pd.Series(data.index[rows[~later]], index=group[~later])
    first_rows = first_of_group.reindex(group[later]).to_numpy()
    dup = np.zeros(len(data), dtype=bool)
    dup[rows[later]] = True
    values = [f"duplicate of row {r}" for r in first_rows]
    reason = pd.Series([f"{RULES['duplicate_row']}: duplicate of row {r}" for r in first_rows], index=data.index[dup])
    quarantine = _removed(data, dup, "duplicate_row", reason)
    return _Removal(dup, _issues(file, table, data.index[dup], None, "duplicate_row", values, "dropped_duplicate"),
                    quarantine)


def quarantine_conflicting_duplicates(data: pd.DataFrame, *, key, file: str = "", table: str = "") -> StepResult:
    """Quarantine every row of a key that occurs more than once with different values.

    Run after :func:`drop_exact_duplicates`, so the rows left sharing a key
    disagree somewhere, and none of them can be trusted.

    Parameters
    ----------
    data : DataFrame
        The table.
    key : list of str
        Columns that identify a row (e.g. ``["employee_id", "cycle"]``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``conflicting_duplicate`` issue (``quarantined``) per row; column
        = the key columns joined with ``+``, value = their values joined with ``|``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"goal_id": ["G1", "G1", "G2"], "weight": [1.0, 2.0, 1.0]}, index=[2, 3, 4])
    >>> ar.clean.quarantine_conflicting_duplicates(raw, key=["goal_id"]).quarantine.index.tolist()
    [2, 3]
    """
    return _result(data, _conflicting_duplicates(data, None, key=key, file=file, table=table))


def _conflicting_duplicates(data: pd.DataFrame, live, *, key, file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`quarantine_conflicting_duplicates` removes, among the rows in play (``live``; None: all)."""
    key = [c for c in key if c in data]
    if not key:
        return None
    if data.columns.is_unique:
        # key columns of text only are complete, told in one cheap pass (isna is slow on text)
        masks = [m for m in (_null_mask(data[c]) for c in key) if m is not None]
        complete = pd.Series(~np.logical_or.reduce(masks) if masks else True, index=data.index)
    else:
        complete = data[key].notna().all(axis=1)
    bad = np.zeros(len(data), dtype=bool)
    rows = None if live is None else np.flatnonzero(live)
    bad[slice(None) if rows is None else rows] = duplicated_key(data, key, rows)
    bad &= complete.to_numpy()
    if not bad.any():
        return None
    values = data.loc[bad, key].apply(lambda r: "|".join(_text(v) for v in r), axis=1)
    quarantine = _removed(data, bad, "conflicting_duplicate")
    issues = _issues(file, table, data.index[bad], "+".join(key), "conflicting_duplicate", values, "quarantined")
    return _Removal(bad, issues, quarantine)


def _unknown(data, column, known):
    if column not in data:
        return None
    s = data[column]
    # a column's Arrow text may be held already (the clean employees' ids, the goal ids of this table)
    found = _isin_text(s, known if isinstance(known, (pd.Series, pd.Index)) else pd.Index(known))
    if found is None:
        known = pd.Index(known)
        return s.notna() & ~s.isin(known.dropna()).to_numpy()
    present, inside = found
    return pd.Series(present & ~inside, index=s.index, name=s.name)


def _text_arrow(values: pd.Series | pd.Index):
    """Text values as an Arrow string array (missing -> null), or None unless every value is text or missing."""
    return arrow_text(values)


def _isin_text(s: pd.Series, known: pd.Index) -> tuple[np.ndarray, np.ndarray] | None:
    """``(s.notna(), s.isin(known))`` in Arrow (C speed) when both hold only text; None otherwise.

    Both come from one conversion of ``s``: presence is Arrow's validity, so the column is not
    scanned a second time; missing ``known`` values never match (presence is checked apart).
    """
    positions = first_positions(s, known)  # shared with the steps that ask the same (goal loops)
    if positions is None:
        return None
    present = _text_arrow(s).is_valid().to_numpy(zero_copy_only=False)
    return present, positions >= 0


def quarantine_unknown_references(
    data: pd.DataFrame,
    *,
    column: str,
    known,
    rule: str = "unknown_employee",
    set_aside=None,
    file: str = "",
    table: str = "",
) -> StepResult:
    """Quarantine rows whose ``column`` refers to an id that does not exist.

    Used for ``employee_id`` in reviews, surveys, programs and feedback: a row
    that cannot be linked to an employment spell cannot be analysed.

    Parameters
    ----------
    data : DataFrame
        The table.
    column : str
        The referring column.
    known : sequence
        The ids that exist (e.g. the clean employees' ``employee_id``).
    rule : str, default "unknown_employee"
        Rule id.
    set_aside : sequence, optional
        Ids that were in the raw table but whose rows were all quarantined;
        rows referring to them get rule ``quarantined_employee`` instead, so
        the report says where to look.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One issue (``quarantined``, value = the id) per row.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> reviews = pd.DataFrame({"employee_id": ["E1", "E9"]}, index=[2, 3])
    >>> ar.clean.quarantine_unknown_references(reviews, column="employee_id", known=["E1"]).issues["row"].tolist()
    [3]
    """
    return _result(data, _unknown_references(data, None, column=column, known=known, rule=rule, set_aside=set_aside,
                                             file=file, table=table))


def _unknown_references(data: pd.DataFrame, live, *, column: str, known, rule: str = "unknown_employee",
                        set_aside=None, file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`quarantine_unknown_references` removes, among the rows in play (``live``; None: all)."""
    bad = _unknown(data, column, known)
    if bad is None:
        return None
    bad = _in_play(bad, live)
    if not bad.any():
        return None
    rules = pd.Series(rule, index=data.index[bad], dtype=object)
    if set_aside is not None:
        rules[data.loc[bad, column].isin(pd.Index(set_aside).dropna()).to_numpy()] = "quarantined_employee"
    quarantine = data[bad].assign(reason=rules.map(RULES), rule=rules)
    issues = _issues(file, table, data.index[bad], column, "x", data.loc[bad, column], "quarantined")
    issues["rule"] = rules.to_numpy()
    return _Removal(bad, issues, quarantine)


def flag_unknown_references(
    data: pd.DataFrame, *, column: str, known, rule: str, file: str = "", table: str = ""
) -> StepResult:
    """Flag (keep) rows whose ``column`` refers to an id that does not exist.

    Used for ``manager_id``, goal ``owner_id``, ``giver_id`` and
    ``parent_goal_id``: such references are often real people or goals outside
    the export (a top executive, an organisation goal), so the rows are kept.

    Parameters
    ----------
    data : DataFrame
        The table.
    column : str
        The referring column.
    known : sequence
        The ids that exist.
    rule : str
        Rule id (``unknown_manager``, ``unknown_owner``, ``unknown_giver``,
        ``unknown_parent_goal``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``rule`` issue (``flagged``, value = the id) per row; data unchanged.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E2"], "manager_id": ["E2", "E9"]}, index=[2, 3])
    >>> res = ar.clean.flag_unknown_references(spells, column="manager_id", known=spells["employee_id"],
    ...                                  rule="unknown_manager")
    >>> res.issues[["row", "value", "action"]].values.tolist()
    [[3, 'E9', 'flagged']]
    """
    bad = _unknown(data, column, known)
    if bad is None or not bad.any():
        return _nothing(data)
    return StepResult(data, _issues(file, table, data.index[bad], column, rule, data.loc[bad, column], "flagged"), _empty_quarantine(data))


def quarantine_unknown_cycles(data: pd.DataFrame, *, cycles, file: str = "", table: str = "") -> StepResult:
    """Quarantine goals or reviews whose ``cycle`` is not declared in study.yaml.

    Parameters
    ----------
    data : DataFrame
        Goals or reviews.
    cycles : sequence of str
        Declared cycle names; when empty, every cycle is accepted.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``unknown_cycle`` issue (``quarantined``) per row.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> reviews = pd.DataFrame({"cycle": ["2021", "2019"]}, index=[2, 3])
    >>> ar.clean.quarantine_unknown_cycles(reviews, cycles=["2021"]).quarantine.index.tolist()
    [3]
    """
    return _result(data, _unknown_cycles(data, None, cycles=cycles, file=file, table=table))


def _unknown_cycles(data: pd.DataFrame, live, *, cycles, file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`quarantine_unknown_cycles` removes, among the rows in play (``live``; None: all)."""
    if not len(cycles) or "cycle" not in data:
        return None
    return _unknown_references(data, live, column="cycle", known=list(cycles), rule="unknown_cycle", file=file,
                               table=table)


def quarantine_surveys_outside_spell(
    surveys: pd.DataFrame, *, employees: pd.DataFrame, date: str = "survey_date", file: str = "", table: str = ""
) -> StepResult:
    """Quarantine survey responses dated outside the respondent's employment.

    A response belongs to the respondent's latest spell hired on or before its
    date. If that spell ended before the response (``survey_date >
    termination_date``), or no spell had started, the response is quarantined
    so it can never be used. A response on the termination date is kept.

    Parameters
    ----------
    surveys : DataFrame
        Surveys with ``employee_id`` and parsed ``survey_date``; every
        employee_id must be in ``employees`` (run
        :func:`quarantine_unknown_references` first).
    employees : DataFrame
        Clean employees (``employee_id, hire_date, termination_date``).
    date : str, default "survey_date"
        The date column.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        ``survey_after_termination`` or ``survey_before_hire`` issues
        (``quarantined``, value = the survey date).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2020-01-01"]),
    ...                        "termination_date": pd.to_datetime(["2021-06-30"])})
    >>> surveys = pd.DataFrame({"employee_id": ["E1", "E1"],
    ...                         "survey_date": pd.to_datetime(["2021-01-15", "2021-07-15"])}, index=[2, 3])
    >>> ar.clean.quarantine_surveys_outside_spell(surveys, employees=spells).quarantine["rule"].tolist()
    ['survey_after_termination']
    """
    return _result(surveys, _surveys_outside_spell(surveys, None, employees=employees, date=date, file=file,
                                                   table=table))


def _surveys_outside_spell(surveys: pd.DataFrame, live, *, employees: pd.DataFrame, date: str = "survey_date",
                           file: str = "", table: str = "") -> _Removal | None:
    """The rows :func:`quarantine_surveys_outside_spell` removes, among the rows in play (``live``; None: all)."""
    if date not in surveys or "employee_id" not in surveys:
        return None
    left = pd.DataFrame({"row": surveys.index, "employee_id": surveys["employee_id"].to_numpy(), "when": surveys[date].to_numpy()})
    left = left.dropna().sort_values("when", kind="stable")
    term = employees["termination_date"] if "termination_date" in employees else pd.Series(pd.NaT, index=employees.index)
    right = pd.DataFrame(
        {"employee_id": employees["employee_id"].to_numpy(), "hire": employees["hire_date"].to_numpy(), "term": term.to_numpy()}
    ).dropna(subset=["employee_id", "hire"]).sort_values("hire", kind="stable")
    left["employee_id"] = left["employee_id"].astype(object)
    right["employee_id"] = right["employee_id"].astype(object)
    matched = pd.merge_asof(left, right, left_on="when", right_on="hire", by="employee_id", direction="backward")
    matched = matched.set_index("row").reindex(surveys.index)
    before = matched["when"].notna() & matched["hire"].isna()
    after = matched["term"].notna() & (matched["when"] > matched["term"])
    bad = _in_play(before | after, live)
    if not bad.any():
        return None
    rule = pd.Series(np.where(before, "survey_before_hire", "survey_after_termination"), index=surveys.index)
    removed = surveys[bad]
    quarantine = removed.assign(reason=rule[bad].map(RULES), rule=rule[bad])
    issues = _concat_issues(
        [
            _issues(file, table, [r], date, rule[r], surveys.at[r, date], "quarantined")
            for r in surveys.index[bad]
        ]
    )
    return _Removal(bad, issues, quarantine)


def _today(today=None) -> pd.Timestamp:
    return pd.Timestamp(dt.date.today() if today is None else today).normalize()


def quarantine_future_hires(employees: pd.DataFrame, *, today=None, file: str = "", table: str = "") -> StepResult:
    """Quarantine employment spells hired after today's date.

    A spell that has not started yet (a planned hire in pre-boarding, or a
    mistyped year) has no time at risk and cannot have reviews, surveys or
    programmes; rows of other tables that refer only to such spells are then
    quarantined as ``quarantined_employee``.

    Parameters
    ----------
    employees : DataFrame
        The employees table, dates parsed.
    today : date-like, optional
        The date to compare with; the computer's date by default (tests and
        reproductions pass a fixed one).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``hire_in_future`` issue (``quarantined``, column ``hire_date``,
        value = the hire date) per spell.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"hire_date": pd.to_datetime(["2020-05-01", "2031-01-01"])}, index=[2, 3])
    >>> ar.clean.quarantine_future_hires(spells, today="2026-01-01").quarantine["rule"].tolist()
    ['hire_in_future']
    """
    if "hire_date" not in employees:
        return _nothing(employees)
    bad = (employees["hire_date"] > _today(today)).fillna(False).astype(bool)
    if not bad.any():
        return _nothing(employees)
    kept, quarantine = _split(employees, bad, "hire_in_future")
    rows = employees.index[bad]
    issues = _issues(file, table, rows, "hire_date", "hire_in_future", employees.loc[rows, "hire_date"], "quarantined")
    return StepResult(kept, issues, quarantine)


def flag_hires_after_window(employees: pd.DataFrame, *, window_end, file: str = "", table: str = "") -> StepResult:
    """Flag (keep) employment spells hired after the observation window ends.

    Such a spell is real (the export was taken after the window closed) but
    has no time at risk in the window, so the analysis tables leave it out.
    It is kept in the clean table; the flag says why it is missing from
    ``person`` and ``intervals``. Extend ``window.end`` if it should count.

    Parameters
    ----------
    employees : DataFrame
        The employees table, dates parsed.
    window_end : date-like
        study.yaml ``window.end``.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``hire_after_window`` issue (``flagged``, column ``hire_date``,
        value = the hire date) per spell; data unchanged.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"hire_date": pd.to_datetime(["2020-05-01", "2025-03-01"])}, index=[2, 3])
    >>> ar.clean.flag_hires_after_window(spells, window_end="2024-12-31").issues[["row", "rule"]].values.tolist()
    [[3, 'hire_after_window']]
    """
    if "hire_date" not in employees:
        return _nothing(employees)
    bad = (employees["hire_date"] > pd.Timestamp(window_end)).fillna(False).astype(bool)
    if not bad.any():
        return _nothing(employees)
    rows = employees.index[bad]
    issues = _issues(file, table, rows, "hire_date", "hire_after_window", employees.loc[rows, "hire_date"], "flagged")
    return StepResult(employees, issues, _empty_quarantine(employees))


def cut_self_managed(employees: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Cut the manager link of spells whose ``manager_id`` is the employee's own id.

    Parameters
    ----------
    employees : DataFrame
        The employees table.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        ``manager_id`` set to missing on those rows; one ``self_managed``
        issue (``set_missing``, value = the id) each. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E2"], "manager_id": ["E1", "E1"]}, index=[2, 3])
    >>> ar.clean.cut_self_managed(spells).data["manager_id"].tolist()
    [nan, 'E1']
    """
    if not {"employee_id", "manager_id"} <= set(employees.columns):
        return _nothing(employees)
    manager = employees["manager_id"]
    present = (manager.notna() & employees["employee_id"].notna()).to_numpy()
    same = np.zeros(len(employees), bool)
    same[present] = manager.to_numpy(dtype=object)[present] == employees["employee_id"].to_numpy(dtype=object)[present]
    bad = pd.Series(same, index=employees.index)
    if not bad.any():
        return _nothing(employees)
    rows = employees.index[bad]
    issues = _issues(file, table, rows, "manager_id", "self_managed", manager[bad], "set_missing")
    return StepResult(_with(employees, {"manager_id": manager.where(~bad, np.nan)}), issues, _empty_quarantine(employees))


#: Rounds of peeling in :func:`_nodes_on_cycles` before the components are found (a long chain peels slowly).
_PEEL_ROUNDS = 64


def _nodes_on_cycles(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes on a directed cycle (a self-loop included) and their strongly connected component.

    Links that cannot be on a cycle are peeled off first, a few rounds at a time in numpy: a link
    from a node nothing links to, or to a node that links nowhere (a hierarchy peels off level by
    level). Only when links are left are the components found (scipy); a graph without a cycle,
    the usual case, never needs them. Peeling changes no component with a cycle.
    """
    for _ in range(_PEEL_ROUNDS):
        if n == 0 or len(src) == 0:
            return np.zeros(n, bool), np.arange(n)
        keep = (np.bincount(dst, minlength=n)[src] > 0) & (np.bincount(src, minlength=n)[dst] > 0)
        if keep.all():
            break
        src, dst = src[keep], dst[keep]
    if n == 0 or len(src) == 0:
        return np.zeros(n, bool), np.arange(n)
    from scipy.sparse import coo_matrix  # deferred: scipy.sparse is slow to import; only cutting manager loops needs it
    from scipy.sparse.csgraph import connected_components  # deferred: as above: only cutting manager loops needs it

    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="strong")
    on_cycle = np.bincount(labels)[labels] > 1
    on_cycle[src[src == dst]] = True
    return on_cycle, labels


def _cut_cycles(n: int, src: np.ndarray, dst: np.ndarray, order_of) -> tuple[np.ndarray, np.ndarray]:
    """Break every cycle of a graph of ``n`` nodes by removing all out-links of one node per cycle.

    Strongly connected components are found in C (scipy), not by walking
    chains in Python. In each component on a cycle, the node that comes first
    in ``order_of(nodes)`` (ranks of the given nodes) loses its links; this
    repeats until no cycle is left (once for a graph where each node has one
    link, such as goal parents). Returns ``(on_cycle, cut)``: the nodes on a
    cycle of the original graph, and the nodes whose links were cut.
    """
    on_cycle, labels = _nodes_on_cycles(n, src, dst)
    cut = np.zeros(n, bool)
    if not on_cycle.any():
        return on_cycle, cut
    rank = np.zeros(n, dtype=np.int64)
    nodes = np.flatnonzero(on_cycle)
    rank[nodes] = order_of(nodes)
    on = on_cycle
    while on.any():
        nodes = np.flatnonzero(on)
        nodes = nodes[np.lexsort((rank[nodes], labels[nodes]))]
        component = labels[nodes]
        cut[nodes[np.r_[True, component[1:] != component[:-1]]]] = True
        live = ~cut[src]
        on, labels = _nodes_on_cycles(n, src[live], dst[live])
    return on_cycle, cut


def _order(keys: pd.DataFrame, ascending: list[bool]):
    """``order_of`` for :func:`_cut_cycles`: rank nodes (positions) by ``keys`` (missing last), then position."""

    def order_of(nodes: np.ndarray) -> np.ndarray:
        part = keys.iloc[nodes].assign(_pos=nodes)
        ordered = part.sort_values([*keys.columns, "_pos"], ascending=[*ascending, True], kind="stable",
                                   na_position="last")["_pos"]
        rank = pd.Series(np.arange(len(nodes)), index=ordered.to_numpy())
        return rank.reindex(nodes).to_numpy()

    return order_of


def _cycle_issues(data, column, on_cycle, cut, rule, file, table) -> pd.DataFrame:
    rows = data.index
    value = data[column]
    issues = _concat_issues(
        [
            _issues(file, table, rows[cut], column, rule, value[cut], "set_missing"),
            _issues(file, table, rows[on_cycle & ~cut], column, rule, value[on_cycle & ~cut], "flagged"),
        ]
    )
    return issues.sort_values("row", kind="stable", ignore_index=True)


def cut_manager_cycles(employees: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Break manager cycles (A manages B, B manages A; or longer loops) by cutting one link each.

    A link runs from a spell to the spells of its ``manager_id`` that overlap
    it in time, so a manager and a report who swap roles across rehires are
    not a cycle. In each cycle the ``manager_id`` of one spell is set to
    missing, deterministically: the spell of the highest ``job_level`` (the
    likely top of the chain), then the smallest ``employee_id``, then the
    lowest row number. Run :func:`cut_self_managed` first.

    Parameters
    ----------
    employees : DataFrame
        The employees table, dates parsed, overlapping spells removed.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``manager_cycle`` issue per spell on a cycle (column
        ``manager_id``, value = the manager): ``set_missing`` for the link cut,
        ``flagged`` for the others. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E2", "E3"], "manager_id": ["E2", "E1", "E1"],
    ...                        "hire_date": pd.to_datetime(["2020-01-01"] * 3)}, index=[2, 3, 4])
    >>> res = ar.clean.cut_manager_cycles(spells)
    >>> res.data["manager_id"].tolist(), res.issues[["row", "action"]].values.tolist()
    ([nan, 'E1', 'E1'], [[2, 'set_missing'], [3, 'flagged']])
    """
    if not {"employee_id", "manager_id", "hire_date"} <= set(employees.columns):
        return _nothing(employees)
    n = len(employees)
    never = pd.Timestamp.max
    term = employees["termination_date"] if "termination_date" in employees else pd.Series(pd.NaT, index=employees.index)
    spells = pd.DataFrame(
        {
            "pos": np.arange(n),
            "employee_id": employees["employee_id"].to_numpy(dtype=object),
            "manager_id": employees["manager_id"].to_numpy(dtype=object),
            "hire": employees["hire_date"].to_numpy("datetime64[ns]"),
            "end": term.to_numpy("datetime64[ns]"),
        }
    )
    spells["end"] = spells["end"].fillna(never)
    reports = spells.dropna(subset=["manager_id", "hire"])[["pos", "manager_id", "hire", "end"]]
    managers = spells.dropna(subset=["employee_id", "hire"])[["pos", "employee_id", "hire", "end"]]
    links = reports.merge(managers, left_on="manager_id", right_on="employee_id", suffixes=("", "_m"))
    links = links[(links["hire"] <= links["end_m"]) & (links["hire_m"] <= links["end"])]
    if links.empty:
        return _nothing(employees)
    level = employees["job_level"] if "job_level" in employees else pd.Series(np.nan, index=employees.index)
    keys = pd.DataFrame({"level": pd.to_numeric(level, errors="coerce").to_numpy(dtype="float64"),
                         "employee_id": employees["employee_id"].astype(str).to_numpy()})
    on_cycle, cut = _cut_cycles(n, links["pos"].to_numpy(), links["pos_m"].to_numpy(), _order(keys, [False, True]))
    if not on_cycle.any():
        return _nothing(employees)
    issues = _cycle_issues(employees, "manager_id", on_cycle, cut, "manager_cycle", file, table)
    manager = employees["manager_id"].where(~cut, np.nan)
    return StepResult(_with(employees, {"manager_id": manager}), issues, _empty_quarantine(employees))


def _first_positions(values: pd.Series, ids: pd.Series) -> np.ndarray:
    """For each value, the position of the first row of ``ids`` equal to it; -1 when none (or missing)."""
    found = first_positions(values, ids)  # hashed in Arrow, once per table for the goal ids (unknown parents)
    if found is not None:
        return found
    n = len(ids)
    # one hash pass over ids and values; the rest is integer arithmetic
    codes, _ = pd.factorize(np.concatenate([ids.to_numpy(dtype=object), values.to_numpy(dtype=object)]))
    id_code, value_code = codes[:n], codes[n:]
    first_position = np.full(max(int(codes.max(initial=-1)) + 1, 1), -1)
    named = np.flatnonzero(id_code >= 0)[::-1]  # reversed: the first row of a repeated id wins
    first_position[id_code[named]] = named
    return np.where(value_code >= 0, first_position[np.maximum(value_code, 0)], -1)


def cut_goal_cycles(goals: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Break goal-parent cycles (a goal that is its own parent, or parent chains that loop).

    In each loop the ``parent_goal_id`` of one goal, the one with the
    smallest ``goal_id`` (then the lowest row number), is set to missing: it
    becomes a top-level goal and the chain ends there.

    Parameters
    ----------
    goals : DataFrame
        The goals table, conflicting duplicate goal_ids removed.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``goal_cycle`` issue per goal on a loop (column ``parent_goal_id``,
        value = the parent): ``set_missing`` for the link cut, ``flagged`` for
        the others. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> goals = pd.DataFrame({"goal_id": ["G1", "G2", "G3"], "parent_goal_id": ["G2", "G1", "G3"]}, index=[2, 3, 4])
    >>> res = ar.clean.cut_goal_cycles(goals)
    >>> res.data["parent_goal_id"].tolist(), res.issues["action"].tolist()
    ([nan, 'G1', nan], ['set_missing', 'flagged', 'set_missing'])
    """
    if not {"goal_id", "parent_goal_id"} <= set(goals.columns):
        return _nothing(goals)
    ids = goals["goal_id"]
    parent = goals["parent_goal_id"]
    n = len(goals)
    target = _first_positions(parent, ids)
    src = np.flatnonzero(target >= 0)
    if not len(src):
        return _nothing(goals)

    def order_of(nodes: np.ndarray) -> np.ndarray:  # ids as text only for the few nodes on a loop
        keys = pd.DataFrame({"goal_id": ids.iloc[nodes].astype(str).to_numpy()})
        return _order(keys, [True])(np.arange(len(nodes)))

    on_cycle, cut = _cut_cycles(n, src, target[src], order_of)
    if not on_cycle.any():
        return _nothing(goals)
    issues = _cycle_issues(goals, "parent_goal_id", on_cycle, cut, "goal_cycle", file, table)
    return StepResult(_with(goals, {"parent_goal_id": parent.where(~cut, np.nan)}), issues, _empty_quarantine(goals))


# --------------------------------------------------------------------------- steps: covariates and job history
#: Texts a boolean covariate may hold (compared in lower case after stripping), and what they mean.
BOOLEAN_TEXTS = {
    "true": True, "false": False, "yes": True, "no": False, "y": True, "n": False, "t": True, "f": False,
    "1": True, "0": False, "1.0": True, "0.0": False,
}


def parse_booleans(data: pd.DataFrame, *, columns, file: str = "", table: str = "") -> StepResult:
    """Read boolean covariates: yes/no, true/false, y/n, t/f, 1/0 in any case; anything else becomes missing.

    Parameters
    ----------
    data : DataFrame
        The table.
    columns : list of str
        The boolean columns (absent ones skipped).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        Columns as pandas ``boolean``; one ``not_a_boolean`` issue
        (``set_missing``, value = the raw text) per unreadable value. Nothing
        quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> raw = pd.DataFrame({"remote": ["Yes", "no", "1", "maybe", None]})
    >>> res = ar.clean.parse_booleans(raw, columns=["remote"])
    >>> res.data["remote"].tolist(), res.issues["value"].tolist()
    ([True, False, True, <NA>, <NA>], ['maybe'])
    """
    changes, found = {}, []
    for c in columns:
        if c not in data:
            continue
        s = data[c]
        if pd.api.types.is_bool_dtype(s.dtype):
            changes[c] = s.astype("boolean")
            continue
        key = s.map(lambda v: _text(v).strip().lower() if _text(v) is not None else None)
        value = key.map(BOOLEAN_TEXTS)
        bad = s.notna() & value.isna()
        changes[c] = pd.array(value.where(value.notna(), None).tolist(), dtype="boolean")
        found.append(_issues(file, table, s.index[bad], c, "not_a_boolean", s[bad], "set_missing"))
    if not changes:
        return _nothing(data)
    return StepResult(_with(data, changes), _concat_issues(found), _empty_quarantine(data))


#: ``[employees, its numbered spells or None until first needed]`` inside :func:`_spells_of`, else None.
_SPELLS: contextvars.ContextVar = contextvars.ContextVar("alignment_research_clean_spells", default=None)


def _numbered(employees: pd.DataFrame) -> pd.DataFrame:
    """The clean employment spells, numbered as the analysis tables number them, by position.

    Inside :func:`_spells_of` (the same ``employees`` object) they are numbered once and shared;
    callers only read them.
    """
    held = _SPELLS.get()
    if held is not None and held[0] is employees and held[1] is not None:
        return held[1]
    spells = numbered_spells(employees).reset_index(drop=True)
    if "termination_date" not in spells:
        spells["termination_date"] = pd.NaT
    if held is not None and held[0] is employees:
        held[1] = spells
    return spells


@contextlib.contextmanager
def _spells_of(employees: pd.DataFrame | None):
    """Number the spells of ``employees`` once for the block (job_history's steps each need them).

    ``employees`` must not change inside the block; with None nothing is held.
    """
    if employees is None:
        yield
        return
    token = _SPELLS.set([employees, None])  # numbered on first use
    try:
        yield
    finally:
        _SPELLS.reset(token)


def assign_history_spells(history: pd.DataFrame, *, employees: pd.DataFrame, file: str = "",
                          table: str = "") -> StepResult:
    """Give each job_history row its employment spell; quarantine rows that fall in none.

    A row belongs to the employee's latest spell hired on or before its
    ``effective_date``. A row dated before the employee's first hire is
    quarantined as ``history_before_hire``; one dated after the termination of
    the spell it would belong to (including between two spells) as
    ``history_after_termination``. A row on the termination date is kept.

    Parameters
    ----------
    history : DataFrame
        job_history with ``employee_id`` and parsed ``effective_date``; every
        employee_id is in ``employees`` (run :func:`quarantine_unknown_references` first).
    employees : DataFrame
        Clean employees (``employee_id, hire_date, termination_date``).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        The rows kept, with ``spell`` (int64, 1 for the first hire, as in the
        analysis tables); one issue per quarantined row (column
        ``effective_date``, value = the date).

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2021-03-01"]),
    ...                        "termination_date": pd.to_datetime(["2022-06-30"])})
    >>> rows = pd.DataFrame({"employee_id": ["E1", "E1", "E1"],
    ...                      "effective_date": pd.to_datetime(["2021-01-01", "2021-09-01", "2022-07-01"])},
    ...                     index=[2, 3, 4])
    >>> res = ar.clean.assign_history_spells(rows, employees=spells)
    >>> res.data["spell"].tolist(), res.issues[["row", "rule"]].values.tolist()
    ([1], [[2, 'history_before_hire'], [4, 'history_after_termination']])
    """
    if "effective_date" not in history or "employee_id" not in history:
        return _nothing(history)
    spells = _numbered(employees)
    sid = assign_spell(history[["employee_id", "effective_date"]], spells, "effective_date")["_sid"].to_numpy()
    first_hire = spells.groupby("employee_id")["hire_date"].min()
    first = history["employee_id"].map(first_hire)
    before = (sid < 0) & (first.isna() | (history["effective_date"] < first)).to_numpy()
    after = (sid < 0) & ~before
    bad = pd.Series(sid < 0, index=history.index)
    data = _with(history, {"spell": spells["spell"].to_numpy()[np.maximum(sid, 0)].astype("int64")})
    if not bad.any():
        return StepResult(data, _empty_issues(), _empty_quarantine(history))
    rule = pd.Series(np.where(before, "history_before_hire", "history_after_termination"), index=history.index)[bad]
    kept = keep_rows(data, ~bad.to_numpy())
    quarantine = data[bad].assign(reason=rule.map(RULES), rule=rule)
    issues = _issues(file, table, history.index[bad], "effective_date", "x", history.loc[bad, "effective_date"],
                     "quarantined")
    issues["rule"] = rule.to_numpy()
    return StepResult(kept, issues, quarantine)


def quarantine_same_day_conflicts(history: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Quarantine every job_history row of an employee and day that has another, different row.

    Run after :func:`drop_exact_duplicates`, so rows left sharing an employee,
    spell and ``effective_date`` disagree somewhere (two managers on one day):
    which holds cannot be told, so none is used.

    Parameters
    ----------
    history : DataFrame
        job_history with ``spell`` (:func:`assign_history_spells`).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``history_same_day_conflict`` issue (``quarantined``) per row;
        column ``employee_id+effective_date``, value the two joined with ``|``.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> rows = pd.DataFrame({"employee_id": ["E1", "E1", "E1"], "spell": [1, 1, 1],
    ...                      "effective_date": pd.to_datetime(["2022-01-01", "2022-01-01", "2022-05-01"]),
    ...                      "manager_id": ["E7", "E8", "E8"]}, index=[2, 3, 4])
    >>> ar.clean.quarantine_same_day_conflicts(rows).quarantine.index.tolist()
    [2, 3]
    """
    key = [c for c in ("employee_id", "spell", "effective_date") if c in history]
    if len(key) < 3:
        return _nothing(history)
    bad = history.duplicated(subset=key, keep=False)
    if not bad.any():
        return _nothing(history)
    values = [f"{_text(e)}|{_text(d)}" for e, d in zip(history.loc[bad, "employee_id"], history.loc[bad, "effective_date"])]
    kept, quarantine = _split(history, bad, "history_same_day_conflict")
    issues = _issues(file, table, history.index[bad], "employee_id+effective_date", "history_same_day_conflict",
                     values, "quarantined")
    return StepResult(kept, issues, quarantine)


def flag_history_managers(history: pd.DataFrame, *, employees: pd.DataFrame, window_start=None, file: str = "",
                          table: str = "") -> StepResult:
    """Flag (keep) job_history rows whose manager is unknown or not employed on the row's date.

    ``history_unknown_manager``: the ``manager_id`` is no employee_id of the
    clean employees table (often someone outside the export).
    ``history_manager_not_employed``: the manager is known but none of their
    spells covers the row's ``effective_date`` (they had left, or not yet
    joined), or the window's start for a row dated before it: only the time
    the study observes matters (HRIS exports often carry the manager in force
    at the window's start on an old hire row). Both keep the row: the link is
    still the HRIS's word.

    Parameters
    ----------
    history : DataFrame
        job_history with parsed ``effective_date``.
    employees : DataFrame
        Clean employees.
    window_start : date-like, optional
        study.yaml ``window.start``; rows dated before it are checked on it.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One issue (``flagged``, column ``manager_id``, value = the id) per
        row; data unchanged.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "M1"], "hire_date": pd.to_datetime(["2021-01-01", "2021-01-01"]),
    ...                        "termination_date": pd.to_datetime([None, "2021-12-31"])})
    >>> rows = pd.DataFrame({"employee_id": ["E1", "E1", "E1"], "manager_id": ["M1", "M1", "M9"],
    ...                      "effective_date": pd.to_datetime(["2021-01-01", "2022-03-01", "2022-06-01"])},
    ...                     index=[2, 3, 4])
    >>> ar.clean.flag_history_managers(rows, employees=spells).issues[["row", "rule"]].values.tolist()
    [[3, 'history_manager_not_employed'], [4, 'history_unknown_manager']]
    """
    if not {"manager_id", "effective_date"} <= set(history.columns):
        return _nothing(history)
    manager = history["manager_id"]
    unknown = _unknown(history, "manager_id", employees["employee_id"])
    known = manager.notna() & ~unknown
    when = history.loc[known, "effective_date"]
    if window_start is not None:
        when = when.where(when.isna() | (when >= pd.Timestamp(window_start)), pd.Timestamp(window_start))
    probe = pd.DataFrame({"employee_id": manager[known].to_numpy(dtype=object),
                          "effective_date": when.to_numpy("datetime64[ns]")})
    sid = assign_spell(probe, _numbered(employees), "effective_date")["_sid"].to_numpy()
    away = pd.Series(False, index=history.index)
    away[known[known].index] = (sid < 0) & ~np.isnat(probe["effective_date"].to_numpy("datetime64[ns]"))
    if not (unknown.any() or away.any()):
        return _nothing(history)
    issues = _concat_issues([
        _issues(file, table, history.index[unknown], "manager_id", "history_unknown_manager", manager[unknown], "flagged"),
        _issues(file, table, history.index[away], "manager_id", "history_manager_not_employed", manager[away], "flagged"),
    ]).sort_values("row", kind="stable", ignore_index=True)
    return StepResult(history, issues, _empty_quarantine(history))


def _in_spell_order(history: pd.DataFrame) -> pd.DataFrame:
    return history.sort_values(["employee_id", "spell", "effective_date"], kind="stable")


def flag_level_changes_without_reason(history: pd.DataFrame, *, employees: pd.DataFrame | None = None,
                                      file: str = "", table: str = "") -> StepResult:
    """Flag (keep) job_history rows whose ``job_level`` differs from the spell's previous row and give no reason.

    A level change is a promotion or a demotion (or a regrading); without a
    ``reason`` a promotion analysis cannot tell which. The row is kept. With
    ``employees``, the first row of a spell whose history starts after the
    hire is compared with the level at hire (the employees table's).

    Parameters
    ----------
    history : DataFrame
        job_history with ``spell``, parsed ``effective_date``, ``job_level``, ``reason``.
    employees : DataFrame, optional
        Clean employees (the level at hire).
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``history_level_change_without_reason`` issue (``flagged``,
        column ``job_level``, value ``"<previous> -> <new>"``) per row.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> rows = pd.DataFrame({"employee_id": ["E1"] * 3, "spell": [1, 1, 1],
    ...                      "effective_date": pd.to_datetime(["2021-01-01", "2022-01-01", "2023-01-01"]),
    ...                      "job_level": pd.array([1, 2, 3], dtype="Int64"),
    ...                      "reason": ["hire", "promotion", None]}, index=[2, 3, 4])
    >>> ar.clean.flag_level_changes_without_reason(rows).issues[["row", "value"]].values.tolist()
    [[4, '2 -> 3']]
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2020-06-01"]),
    ...                        "job_level": pd.array([2], dtype="Int64")})
    >>> res = ar.clean.flag_level_changes_without_reason(rows.assign(reason=[None, "promotion", None]),
    ...                                              employees=spells)
    >>> res.issues[["row", "value"]].values.tolist()
    [[2, '2 -> 1'], [4, '2 -> 3']]
    """
    if not {"employee_id", "spell", "effective_date", "job_level", "reason"} <= set(history.columns):
        return _nothing(history)
    ordered = _in_spell_order(history)
    same = (ordered["employee_id"].eq(ordered["employee_id"].shift())
            & ordered["spell"].eq(ordered["spell"].shift())).to_numpy()
    level = ordered["job_level"].astype("float64")
    previous = level.shift().where(same)
    if employees is not None and "job_level" in employees:
        spells = _numbered(employees)
        pos = pd.MultiIndex.from_frame(spells[["employee_id", "spell"]]).get_indexer(
            pd.MultiIndex.from_frame(ordered[["employee_id", "spell"]].astype({"spell": "int64"})))
        hire = spells["hire_date"].to_numpy("datetime64[ns]")[np.maximum(pos, 0)]
        at_hire = pd.Series(spells["job_level"].astype("float64").to_numpy()[np.maximum(pos, 0)], index=ordered.index)
        later = ~same & (pos >= 0) & (ordered["effective_date"].to_numpy("datetime64[ns]") > hire)
        previous = previous.where(~later, at_hire)
    changed = (level.notna() & previous.notna() & (level != previous)).to_numpy() & ordered["reason"].isna().to_numpy()
    if not changed.any():
        return _nothing(history)
    rows = ordered.index[changed]
    values = [f"{_text(p)} -> {_text(n)}" for p, n in zip(previous[changed], level[changed])]
    issues = _issues(file, table, rows, "job_level", "history_level_change_without_reason", values, "flagged")
    return StepResult(history, issues.sort_values("row", kind="stable", ignore_index=True), _empty_quarantine(history))


def _as_texts(values: pd.Series) -> np.ndarray:
    """``[_text(v) for v in values]`` as an object array, ``_text`` applied once per distinct value.

    Text columns (every value a ``str``) are their own texts; a column of another dtype
    (numbers, booleans) is factorised first, which cannot merge values ``_text`` tells
    apart; an object column of mixed values is read cell by cell.
    """
    if values.dtype == object:
        if pd.api.types.infer_dtype(values, skipna=False) == "string":
            return values.to_numpy()
        return np.array([_text(v) for v in values], dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    texts = np.array([_text(v) for v in uniques] + [None], dtype=object)  # code -1 (missing) -> None
    return texts[codes]


def _texts_differ(a: pd.Series, b: pd.Series) -> np.ndarray:
    """``_text(x) != _text(y)`` for each pair of cells of two aligned columns, vectorised."""
    return np.asarray(_as_texts(a) != _as_texts(b), dtype=bool)


#: Columns of a job_history row on the hire date compared with the employees table.
_AT_HIRE = ("manager_id", "department", "job_level", "location")


def flag_history_disagreeing_at_hire(history: pd.DataFrame, *, employees: pd.DataFrame, columns=_AT_HIRE,
                                     file: str = "", table: str = "") -> StepResult:
    """Flag (keep) job_history rows on a hire date whose values differ from the employees table.

    The static columns of ``employees`` are the values at hire; a history
    row effective on the hire date should say the same. Each differing
    column (both values present) is one finding; the row is kept.

    Parameters
    ----------
    history : DataFrame
        job_history with ``spell`` and parsed ``effective_date``.
    employees : DataFrame
        Clean employees.
    columns : sequence of str
        Columns compared (absent ones skipped); manager, department, level and
        location by default, plus the covariates both tables hold.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``history_disagrees_at_hire`` issue (``flagged``, the column,
        value ``"<history> (employees: <value>)"``) per differing cell.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2021-01-04"]),
    ...                        "department": ["Sales"]})
    >>> rows = pd.DataFrame({"employee_id": ["E1"], "spell": [1], "effective_date": pd.to_datetime(["2021-01-04"]),
    ...                      "department": ["Finance"]}, index=[2])
    >>> ar.clean.flag_history_disagreeing_at_hire(rows, employees=spells).issues["value"].tolist()
    ['Finance (employees: Sales)']
    """
    compared = [c for c in columns if c in history and c in employees]
    if not compared or not {"employee_id", "spell", "effective_date"} <= set(history.columns):
        return _nothing(history)
    spells = _numbered(employees)
    pos = pd.MultiIndex.from_frame(spells[["employee_id", "spell"]]).get_indexer(
        pd.MultiIndex.from_frame(history[["employee_id", "spell"]].astype({"spell": "int64"})))
    found = pos >= 0
    at_hire = found & (history["effective_date"].to_numpy("datetime64[ns]")
                       == spells["hire_date"].to_numpy("datetime64[ns]")[np.maximum(pos, 0)])
    parts = []
    for c in compared:
        mine = history[c]
        theirs = spells[c].iloc[np.maximum(pos, 0)].set_axis(history.index)
        both = at_hire & mine.notna().to_numpy() & theirs.notna().to_numpy()
        differ = np.zeros(len(history), bool)
        differ[both] = _texts_differ(mine[both], theirs[both])
        if differ.any():
            values = [f"{_text(a)} (employees: {_text(b)})" for a, b in zip(mine[differ], theirs[differ])]
            parts.append(_issues(file, table, history.index[differ], c, "history_disagrees_at_hire", values, "flagged"))
    issues = _concat_issues(parts)
    if not len(issues):
        return _nothing(history)
    return StepResult(history, issues.sort_values("row", kind="stable", ignore_index=True), _empty_quarantine(history))


#: Columns of the clean job_history table, in order (covariates and other columns follow).
CLEAN_HISTORY_COLUMNS = ["employee_id", "spell", "effective_date", "manager_id", "department", "job_level", "location", "reason"]


def complete_history(history: pd.DataFrame, employees: pd.DataFrame, *, covariates=()) -> tuple[pd.DataFrame, int]:
    """Give every employment spell a job_history row on its hire date, and sort the table.

    A spell whose history starts after the hire (or that has no history) gets
    a row made from its ``employees`` row (the values at hire), reason
    ``hire``. The added rows have negative row numbers (-1, -2, ...: no
    source row); ``CleanStudy.counts`` reports them as ``rows_added``. With
    this, each row holds from its date until the next row or the spell's end,
    from the first day of every spell.

    Parameters
    ----------
    history : DataFrame
        Clean job_history with ``spell``.
    employees : DataFrame
        Clean employees.
    covariates : sequence of str
        Covariate columns; taken from employees where it has them.

    Returns
    -------
    history : DataFrame
        ``employee_id, spell, effective_date, manager_id, department,
        job_level, location, reason``, the covariates, then any other
        column, sorted by employee, spell and date.
    added : int
        The number of rows made from employees.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E2"], "hire_date": pd.to_datetime(["2021-01-04", "2022-02-01"]),
    ...                        "termination_date": pd.NaT, "manager_id": ["M1", "M2"]})
    >>> rows = pd.DataFrame({"employee_id": ["E1"], "spell": [1], "effective_date": pd.to_datetime(["2021-06-01"]),
    ...                      "manager_id": ["M3"]}, index=[2])
    >>> done, added = ar.clean.complete_history(rows, spells)
    >>> added, done.index.tolist(), done["manager_id"].tolist()
    (2, [-1, 2, -2], ['M1', 'M3', 'M2'])
    """
    spells = _numbered(employees)
    key = pd.MultiIndex.from_frame(pd.DataFrame({
        "employee_id": history["employee_id"].to_numpy(dtype=object),
        "spell": history["spell"].to_numpy(dtype="int64"),
        "date": history["effective_date"].to_numpy("datetime64[ns]")}))
    wanted = pd.MultiIndex.from_frame(pd.DataFrame({
        "employee_id": spells["employee_id"].to_numpy(dtype=object),
        "spell": spells["spell"].to_numpy(dtype="int64"),
        "date": spells["hire_date"].to_numpy("datetime64[ns]")}))
    missing = spells[~wanted.isin(key)]
    columns = CLEAN_HISTORY_COLUMNS + [c for c in covariates if c in history] + [
        c for c in history.columns if c not in CLEAN_HISTORY_COLUMNS and c not in covariates]
    made = {}
    for c in columns:
        if c == "effective_date":
            made[c] = missing["hire_date"].to_numpy("datetime64[ns]")
        elif c == "reason":
            made[c] = np.full(len(missing), "hire", dtype=object)
        elif c in missing and c in history:
            made[c] = missing[c].astype(history[c].dtype).to_numpy() if c != "spell" else missing[c].to_numpy("int64")
        elif c in history:
            made[c] = pd.Series(pd.NA if history[c].dtype != object else np.nan, index=range(len(missing)),
                                dtype=history[c].dtype).array
    added = pd.DataFrame(made, index=pd.Index(-np.arange(1, len(missing) + 1), dtype=history.index.dtype))
    frame = history[[c for c in columns if c in history]]
    if len(added):
        frame = pd.concat([frame, added[frame.columns].astype(frame.dtypes.to_dict())])
    frame = frame.sort_values(["employee_id", "spell", "effective_date"], kind="stable")
    frame.index.name = history.index.name
    return frame, len(added)


def check_revision_dates(goals: pd.DataFrame, *, cycles=(), earliest=None, latest=None, file: str = "",
                         table: str = "") -> StepResult:
    """Set missing a goal's ``revised_date`` that falls outside the goal's own cycle.

    A goal is set at its cycle's start and rated at its end, so a revision
    dated before the start cannot be one (``revised_before_cycle``) and one
    dated after the end is not mid-cycle (``revised_after_cycle``). Both are
    set missing and the goal kept, so every clean ``revised_date`` is a
    mid-cycle revision. Without declared cycles the plausible date range
    stands in for the cycle.

    Parameters
    ----------
    goals : DataFrame
        Goals with ``cycle`` and parsed ``revised_date`` (skipped without it).
    cycles : sequence of Cycle
        study.yaml ``cycles`` (``name``, ``start``, ``end``).
    earliest, latest : Timestamp, optional
        The plausible date range, used when no cycles are declared.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        One ``revised_before_cycle`` or ``revised_after_cycle`` issue
        (``set_missing``, the date as value) per such goal; nothing
        quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> cycles = ar.config_from_dict({"window": {"start": "2021-01-01", "end": "2021-12-31"},
    ...     "cycles": [{"name": "2021", "start": "2021-01-01", "end": "2021-12-31"}]}).cycles
    >>> goals = pd.DataFrame({"cycle": "2021", "revised_date": pd.to_datetime(["2021-06-01", "2020-12-01"])})
    >>> res = ar.clean.check_revision_dates(goals, cycles=cycles)
    >>> res.data["revised_date"].isna().tolist(), res.issues["rule"].tolist()
    ([False, True], ['revised_before_cycle'])
    """
    if "revised_date" not in goals or not goals["revised_date"].notna().any():
        return _nothing(goals)
    revised = goals["revised_date"].notna().to_numpy()
    # only the goals revised can be revised outside their cycle: their cycles are looked up, not every goal's
    day = goals["revised_date"][revised].dt.normalize()
    if len(cycles):
        names = goals["cycle"][revised].astype(object)
        start = pd.to_datetime(names.map({c.name: pd.Timestamp(c.start) for c in cycles}))
        end = pd.to_datetime(names.map({c.name: pd.Timestamp(c.end) for c in cycles}))
    else:
        start = pd.Series(pd.Timestamp(earliest) if earliest is not None else pd.NaT, index=day.index)
        end = pd.Series(pd.Timestamp(latest) if latest is not None else pd.NaT, index=day.index)
    before, after = np.zeros(len(goals), dtype=bool), np.zeros(len(goals), dtype=bool)
    before[revised] = (day < start).fillna(False).astype(bool).to_numpy()
    after[revised] = (day > end).fillna(False).astype(bool).to_numpy()
    if not (before.any() or after.any()):
        return _nothing(goals)
    raw = goals["revised_date"]
    issues = _concat_issues([
        _issues(file, table, goals.index[before], "revised_date", "revised_before_cycle", raw[before], "set_missing"),
        _issues(file, table, goals.index[after], "revised_date", "revised_after_cycle", raw[after], "set_missing"),
    ]).sort_values("row", kind="stable", ignore_index=True)
    return StepResult(_with(goals, {"revised_date": raw.mask(before | after)}), issues, _empty_quarantine(goals))


def derive_stretch(goals: pd.DataFrame, *, file: str = "", table: str = "") -> StepResult:
    """Add ``stretch = (target - baseline) / |baseline|`` when goals has both target and baseline.

    Stretch says how far a target reaches beyond where the metric stood when
    the goal was set (0.1: 10% above the baseline; negative for a target
    below it). It is missing where target or baseline is, and where the
    baseline is 0 (no relative distance), which is reported. Without both
    columns nothing changes.

    Parameters
    ----------
    goals : DataFrame
        Goals with numeric ``target`` and ``baseline``.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        The goals with ``stretch`` (float64) last; one ``zero_baseline``
        issue (``flagged``, column ``baseline``, value 0) per goal with a
        target and a baseline of 0. Nothing quarantined.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> goals = pd.DataFrame({"target": [110.0, 50.0, 5.0], "baseline": [100.0, -100.0, 0.0]})
    >>> res = ar.clean.derive_stretch(goals)
    >>> res.data["stretch"].round(2).tolist(), res.issues["rule"].tolist()
    ([0.1, 1.5, nan], ['zero_baseline'])
    """
    if "target" not in goals or "baseline" not in goals:
        return _nothing(goals)
    target, baseline = goals["target"].astype("float64"), goals["baseline"].astype("float64")
    zero = target.notna() & baseline.eq(0)
    stretch = (target - baseline) / baseline.abs().where(~baseline.eq(0))
    data = _with(goals.drop(columns="stretch", errors="ignore"), {"stretch": stretch.astype("float64")})
    issues = _issues(file, table, goals.index[zero], "baseline", "zero_baseline", baseline[zero], "flagged")
    return StepResult(data, issues, _empty_quarantine(goals))


_CHECK_RULES = {"not_nullable": "missing_required"}


def _null_mask(s: pd.Series) -> np.ndarray | None:
    """Where ``s`` is missing, or None when nothing is: a column of text only is told in one cheap pass."""
    kind, arrow = text_kind(s)
    if kind == "string" and arrow is not None:  # text or missing: Arrow knows which
        return arrow.is_null().to_numpy(zero_copy_only=False) if arrow.null_count else None
    mask = s.isna().to_numpy()
    return mask if mask.any() else None


def _plain_check(check) -> bool:
    """Whether a pandera check is one this module writes: a Python function of the whole column or table."""
    return (
        isinstance(getattr(check, "_check_fn", None), types.FunctionType)
        and not check.element_wise
        and check.groupby is None
        and not getattr(check, "statistics", None)
        and not getattr(check, "_check_kwargs", None)
    )


def _all_true(result) -> bool:
    if isinstance(result, (bool, np.bool_)):
        return bool(result)
    if isinstance(result, pd.Series) and result.dtype == bool:
        return bool(result.to_numpy().all())
    return False  # anything else (nullable booleans, a frame): pandera decides


def _passes_schema(data: pd.DataFrame, schema: pa.DataFrameSchema) -> bool:
    """True only when ``data`` certainly passes ``schema``; False means "ask pandera".

    The schemas of :func:`table_schema` hold typed columns (required or not, nullable or
    not) with checks written as functions of the column, and checks of the whole table.
    pandera runs each of them after finding the missing values of every column up to three
    times; here each column's missing values are found once (a column of text only in one
    cheap pass) and every check function runs on what pandera would give it (the column
    without its missing values). Every check must hold on every row; anything else, and any
    schema feature besides these, is left to pandera, which then reports the failures.
    """
    from pandera.engines.pandas_engine import Engine  # deferred: loaded with pandera, needed only here

    plain = (
        not schema.coerce and schema.strict is False and not schema.ordered and schema.unique is None
        and schema.index is None and not schema.add_missing_columns and not schema.drop_invalid_rows
        and not getattr(schema, "parsers", None) and data.columns.is_unique
    )
    if not plain:
        return False
    for name, column in schema.columns.items():
        if column.regex or column.coerce or column.unique or getattr(column, "parsers", None):
            return False
        if name not in data.columns:
            if column.required:
                return False
            continue
        s = data[name]
        if column.dtype is not None and column.dtype.check(Engine.dtype(s.dtype), s) is not True:
            return False
        if not column.checks and column.nullable:
            continue
        missing = _null_mask(s)
        if missing is not None and not column.nullable:
            return False
        for check in column.checks:
            if not _plain_check(check) or not check.ignore_na:
                return False
            try:
                if not _all_true(check._check_fn(s if missing is None else s[~missing])):
                    return False
            except Exception:  # pandera reports a check that raises
                return False
    for check in schema.checks:
        if not _plain_check(check):
            return False
        try:
            if not _all_true(check._check_fn(data)):
                return False
        except Exception:
            return False
    return True


def validate_against_schema(
    data: pd.DataFrame, *, schema: pa.DataFrameSchema, key=(), file: str = "", table: str = ""
) -> StepResult:
    """Validate the cleaned table with its pandera schema (lazily) and quarantine what still fails.

    The schema verifies what the steps repaired. Each failure case becomes an
    issue (``column -> column``, ``check -> rule``, ``failure_case -> value``,
    ``index -> row``) and its row is quarantined with that rule. A column-level
    failure (a wrong type) is a bug in cleaning and raises.

    Parameters
    ----------
    data : DataFrame
        The cleaned table.
    schema : pandera.pandas.DataFrameSchema
        From :func:`table_schema`.
    key : sequence of str
        Conflict-key columns, used to name the column of a duplicate-key failure.
    file, table : str
        Names used in the report.

    Returns
    -------
    StepResult
        The rows that pass; one ``quarantined`` issue per failing cell.

    Raises
    ------
    DataContractError
        A column has the wrong type after cleaning.

    Examples
    --------
    >>> import pandas as pd, alignment_research as ar
    >>> reviews = pd.DataFrame({"employee_id": ["E1", "E2"], "cycle": ["2021", "2021"],
    ...                         "rating": pd.array([3, 9], dtype="Int64")}, index=[2, 3])
    >>> res = ar.clean.validate_against_schema(reviews, schema=ar.table_schema("reviews"))
    >>> res.issues[["row", "rule"]].values.tolist()
    [[3, 'out_of_range_rating']]
    """
    if _passes_schema(data, schema):
        return _nothing(data)
    try:
        schema.validate(data, lazy=True)
        return _nothing(data)
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.copy()
    cases["rule"] = cases["check"].map(lambda c: _CHECK_RULES.get(str(c), str(c)))
    column_level = cases["index"].isna()
    if column_level.any():
        problems = pd.DataFrame(
            {
                "file": file,
                "row": None,
                "column": cases.loc[column_level, "column"].to_numpy(),
                "rule": ["wrong_type" if str(c).startswith("dtype") else str(c) for c in cases.loc[column_level, "check"]],
                "value": cases.loc[column_level, "failure_case"].astype(str).to_numpy(),
            }
        )[PROBLEM_COLUMNS]
        raise DataContractError(f"{file or table}: the table does not meet its schema after cleaning.", problems)
    frame_level = cases["schema_context"] == "DataFrameSchema"
    where = {"termination_before_hire": "termination_date", "end_before_start": "end_date"}
    cases.loc[frame_level, "column"] = cases.loc[frame_level, "rule"].map(where).fillna("+".join(key))
    cases = cases.drop_duplicates(subset=["index", "rule", "column"])
    cases["index"] = cases["index"].astype("int64")
    values = [
        data.at[i, c] if c in data else v
        for i, c, v, ctx in zip(cases["index"], cases["column"], cases["failure_case"], cases["schema_context"])
    ]
    cases = cases.assign(value=values).sort_values(["index"], kind="stable")
    issues = _issues(file, table, cases["index"], list(cases["column"]), "x", list(cases["value"]), "quarantined")
    issues["rule"] = cases["rule"].to_numpy()
    first_rule = cases.drop_duplicates("index").set_index("index")["rule"]
    bad = pd.Series(data.index.isin(first_rule.index), index=data.index)
    kept = keep_rows(data, ~bad.to_numpy())
    removed = data[bad]
    rules = first_rule.reindex(removed.index)
    quarantine = removed.assign(reason=rules.map(RULES), rule=rules)
    return StepResult(kept, issues, quarantine)


#: Steps that only remove rows, and how each finds them among the rows still in play without taking the rows
#: kept (``finder(table, live, **kwargs) -> _Removal | None``): a :class:`Cleaning` runs these on its table as it
#: is and takes the rows kept once, when a later step needs them.
_REMOVES = {
    require_fields: _missing_required,
    quarantine_implausible_dates: _implausible_dates,
    quarantine_unknown_cycles: _unknown_cycles,
    quarantine_unknown_references: _unknown_references,
    drop_exact_duplicates: _exact_duplicates,
    quarantine_conflicting_duplicates: _conflicting_duplicates,
    quarantine_surveys_outside_spell: _surveys_outside_spell,
}
#: Steps that read each row alone and remove none: run on a table that still holds rows an earlier step removed,
#: they find for every other row what they would find without them (their issues of removed rows are dropped).
_ROW_BY_ROW = frozenset({check_revision_dates, derive_stretch, reverse_code, add_missing_columns})


# --------------------------------------------------------------------------- per table
def _columns_of(table, dtype):
    return [c for c, d, _, _ in COLUMNS[table] if d == dtype]


def clean_table(
    data: pd.DataFrame,
    table: str,
    config: StudyConfig,
    *,
    file: str | None = None,
    employees: pd.DataFrame | None = None,
    set_aside=None,
) -> Cleaning:
    """Run the cleaning steps of one canonical table.

    Parameters
    ----------
    data : DataFrame
        The raw table (index = source row numbers). Text columns may be
        Arrow-backed strings, as :func:`load_study` hands them out, or
        ``object``; the clean table holds text as ``object`` either way.
    table : str
        Its canonical name.
    config : StudyConfig
        The study configuration.
    file : str, optional
        File name for the report (the table name by default).
    employees : DataFrame, optional
        The *clean* employees table, needed for every table but employees
        (references to unknown employees; surveys outside a spell).
    set_aside : sequence, optional
        The employee_ids of the raw employees table that are not in the clean one
        (all their spells quarantined); rows referring to them are quarantined
        as ``quarantined_employee`` rather than ``unknown_employee``.

    Returns
    -------
    Cleaning
        ``.data`` (clean rows), ``.issues``, ``.quarantine``, ``.history``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> study = ar.simulate_study(n_employees=300, seed=0)  # doctest: +SKIP
    >>> done = ar.clean.clean_table(study.tables["employees"], "employees", study.config)  # doctest: +SKIP
    """
    with shared_text():  # each text column converted to Arrow about once, for every step that reads it there
        # Python text from the Arrow text load read (held for the steps, never converted back)
        data = as_objects(data)
        return _table_steps(data, table, config, file=file or table, employees=employees, set_aside=set_aside)


def _table_steps(data, table, config, *, file, employees, set_aside) -> Cleaning:
    """The steps of :func:`clean_table`."""
    earliest, latest = date_bounds(config)
    covariates = config.covariates if table in COVARIATE_TABLES else {}
    # the optional goal columns are cleaned when present and never added when absent
    optional_goals = {col: d for col, d, _ in OPTIONAL_GOAL_COLUMNS} if table == "goals" else {}
    text = _columns_of(table, "str") + [name for name, kind in covariates.items() if kind == "category"] + [
        col for col, d in optional_goals.items() if d == "str"]
    dates = _columns_of(table, "datetime64[ns]")
    c = Cleaning(data, file=file, table=table)
    c = c.pipe(as_text, columns=text).pipe(strip_text, columns=[col for col, *_ in COLUMNS[table]] + (
        [i for s in config.scales.values() for i in s.items] if table == "surveys" else []
    ) + list(covariates) + list(optional_goals))
    if table == "employees":
        c = c.pipe(
            normalise_category, column="termination_type", mapping=config.termination_map,
            allowed=("voluntary", "involuntary", "other"),
        )
    elif table == "programs":
        c = c.pipe(normalise_category, column="program", snake=True)
        c = c.pipe(normalise_category, column="status", snake=True, allowed=("completed", "in_progress", "withdrawn"))
    elif table == "feedback":
        c = c.pipe(normalise_category, column="kind", mapping=config.feedback_kinds, allowed=FEEDBACK_KINDS, snake=True,
                   unknown_as="other", unknown_rule="unmapped_feedback_kind")
    elif table == "goals":
        c = c.pipe(normalise_category, column="set_with", mapping=config.set_with_map, allowed=SET_WITH, snake=True)
    elif table == "job_history":
        c = c.pipe(normalise_category, column="reason", mapping=config.reason_map, allowed=HISTORY_REASONS, snake=True)
    c = c.pipe(parse_dates, columns=dates + [col for col, d in optional_goals.items() if d == "datetime64[ns]"],
               formats=config.date_formats)
    for (t, col) in RANGES:
        if t == table:
            low, high, whole, rule = range_for(t, col, config)
            c = c.pipe(parse_numbers, columns=[col], low=low, high=high, whole=whole, rule=rule)
    if table == "goals":  # finite numbers: an "inf" in a target is no number
        c = c.pipe(parse_numbers, columns=["target", "baseline"], low=-np.finfo("float64").max,
                   high=np.finfo("float64").max)
    if any(kind == "numeric" for kind in covariates.values()):
        c = c.pipe(parse_numbers, columns=[name for name, kind in covariates.items() if kind == "numeric"])
    if any(kind == "boolean" for kind in covariates.values()):
        c = c.pipe(parse_booleans, columns=[name for name, kind in covariates.items() if kind == "boolean"])
    if table == "surveys":
        c = c.pipe(clean_survey_answers, scales=config.scales)
    c = c.pipe(require_fields, columns=REQUIRED_COLUMNS[table])
    c = c.pipe(quarantine_implausible_dates, columns=dates, earliest=earliest, latest=latest)
    if table == "employees":
        c = c.pipe(quarantine_termination_before_hire)
        c = c.pipe(quarantine_future_hires)
    if table == "programs":
        c = c.pipe(quarantine_end_before_start)
    if table in ("goals", "reviews"):
        c = c.pipe(quarantine_unknown_cycles, cycles=[cy.name for cy in config.cycles])
    if table == "goals":
        c = c.pipe(check_revision_dates, cycles=config.cycles, earliest=earliest, latest=latest)
        c = c.pipe(derive_stretch)
    c = c.pipe(drop_exact_duplicates)
    if KEYS[table]:
        c = c.pipe(quarantine_conflicting_duplicates, key=KEYS[table])
    if table == "employees":
        c = c.pipe(quarantine_overlapping_spells)
    if table in ("reviews", "surveys", "programs", "feedback", "job_history"):
        known = employees["employee_id"] if employees is not None else pd.Series(dtype=object)
        c = c.pipe(
            quarantine_unknown_references, column="employee_id", known=known, rule="unknown_employee", set_aside=set_aside
        )
    if table == "surveys" and employees is not None:
        c = c.pipe(quarantine_surveys_outside_spell, employees=employees)
    if table == "job_history" and employees is not None:
        c = c.pipe(assign_history_spells, employees=employees).pipe(quarantine_same_day_conflicts)
    if table == "surveys":
        c = c.pipe(reverse_code, scales=config.scales)
    optional = {col: d for col, d, req, _ in COLUMNS[table] if not req}
    if table == "surveys":
        optional.update({i: "float64" for s in config.scales.values() for i in s.items})
    c = c.pipe(add_missing_columns, columns=optional)
    c = c.pipe(validate_against_schema, schema=table_schema(table, config), key=KEYS[table])
    # references are flagged last, against what survived
    if table == "employees":
        c = c.pipe(flag_hires_after_window, window_end=config.window.end)
        c = c.pipe(flag_unknown_references, column="manager_id", known=c.data["employee_id"], rule="unknown_manager")
        c = c.pipe(cut_self_managed).pipe(cut_manager_cycles)
    elif table == "goals":
        known = employees["employee_id"] if employees is not None else pd.Series(dtype=object)
        c = c.pipe(flag_unknown_references, column="owner_id", known=known, rule="unknown_owner")
        c = c.pipe(flag_unknown_references, column="parent_goal_id", known=c.data["goal_id"], rule="unknown_parent_goal")
        c = c.pipe(cut_goal_cycles)
    elif table == "feedback":
        known = employees["employee_id"] if employees is not None else pd.Series(dtype=object)
        c = c.pipe(flag_unknown_references, column="giver_id", known=known, rule="unknown_giver")
    elif table == "job_history" and employees is not None:
        c = c.pipe(cut_self_managed).pipe(flag_history_managers, employees=employees, window_start=config.window.start)
        c = c.pipe(flag_level_changes_without_reason, employees=employees)
        c = c.pipe(flag_history_disagreeing_at_hire, employees=employees, columns=_AT_HIRE + tuple(covariates))
    return c


def _progress(progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from rich.progress import Progress  # deferred: rich is only needed when a progress bar is shown

    return Progress(transient=True)


def _as_read(raw: pd.DataFrame) -> pd.DataFrame:
    """Quarantined rows as read; a source column named ``reason`` or ``rule`` (job_history has a ``reason``)
    is kept as ``<name>_in_source``, as the quarantine's own ``reason`` and ``rule`` say why the row is there."""
    clash = {c: f"{c}_in_source" for c in ("reason", "rule") if c in raw.columns}
    return raw.rename(columns=clash) if clash else raw


def _clean(study: Study, *, progress=None, structure: pd.DataFrame | None = None):
    """Clean every table; return (CleanStudy, structural problems). Never raises on row problems.

    ``structure`` is ``structure_problems(study)`` when the caller has it already.
    """
    if structure is None:
        structure = structure_problems(study)
    config = study.config
    tables, quarantines, issues, counts = {}, {}, [], []
    bar = _progress(progress)
    present = [t for t in TABLES if t in study.tables]
    task = None
    if bar is not None:
        bar.start()
        task = bar.add_task("cleaning", total=len(present))
    try:
        employees, set_aside = None, None
        for table in present:
            if bar is not None:
                bar.update(task, description=f"cleaning {table}")
            raw = study.tables[table]
            file = study.source(table)
            struct = structure[(structure["table"] == table) & ~structure["fatal"]]
            issues.append(
                _issues(file, table, [None] * len(struct), list(struct["column"]), "x", list(struct["value"]), "flagged").assign(
                    rule=list(struct["rule"])
                )
                if len(struct)
                else _empty_issues()
            )
            with _spells_of(employees if table == "job_history" else None):
                done = clean_table(raw, table, config, file=file, employees=employees, set_aside=set_aside)
                if table == "job_history" and employees is not None and "spell" in done.data:
                    completed = complete_history(done.data, employees, covariates=list(config.covariates))
            if table == "employees":
                employees = done.data
                raw_ids = as_text(as_objects(raw[["employee_id"]]), columns=["employee_id"]).data["employee_id"]
                if raw_ids.dtype == object:
                    raw_ids = raw_ids.str.strip()
                set_aside = pd.Index(raw_ids.dropna().unique()).difference(employees["employee_id"].dropna())
            tables[table] = done.data
            q = done.quarantine
            quarantines[table] = _as_read(as_objects(raw.loc[q.index])).assign(reason=q["reason"], rule=q["rule"])
            issues.append(done.issues)
            counts.append((table, len(raw), len(done.data), len(q), 0))
            if table == "job_history" and employees is not None and "spell" in done.data:
                tables[table], added = completed
                counts[-1] = (*counts[-1][:4], added)
            if bar is not None:
                bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    counts = pd.DataFrame(counts, columns=["table", "rows_in", "rows_out", "rows_quarantined", "rows_added"])
    if "job_history" not in study.tables:  # only job_history adds rows; other studies keep their four columns
        counts = counts.drop(columns="rows_added")
    if config.pseudonymise:
        # Clean tables carry keyed-hash ids; the report and quarantine keep the source ids,
        # because they exist to fix the source files (they are never shown to leadership).
        tables = pseudonymise_tables(tables, key_env=config.pseudonym_key_env)
    clean = CleanStudy(
        tables=tables,
        report=_concat_issues(issues),
        quarantine=quarantines,
        config=config,
        counts=counts,
        path=study.path,
    )
    return clean, structure


def clean_study(study: Study, *, progress: bool | None = None) -> CleanStudy:
    """Clean every table of a study; report every change; quarantine unusable rows.

    Tables are cleaned in order (employees first, as the others refer to it)
    by :func:`clean_table`: text stripped, categories normalised
    (``termination_map``), dates parsed (``date_formats`` and Excel serials),
    numbers range-checked, survey answers checked and reverse-coded, rows
    missing required fields, with implausible dates, termination before hire,
    exact or conflicting duplicates, unknown employees or cycles, hire dates
    after today, or surveys outside the respondent's employment quarantined;
    unknown managers, goal owners, givers and parent goals, hires after the
    window and ambiguous dates flagged; self-managed employees and manager
    or goal-parent loops cut. The pandera schema then verifies the result.
    For every table rows in = rows out + rows quarantined.

    Parameters
    ----------
    study : Study
        From :func:`load_study` or :func:`simulate_study`.
    progress : bool, optional
        Show a progress bar; by default only when stderr is a terminal (never
        in notebooks).

    Returns
    -------
    CleanStudy
        ``tables`` (clean, index = source rows), ``report`` (``file, table,
        row, column, rule, value, action``), ``quarantine`` (per table, the raw
        rows set aside plus ``reason`` and ``rule``), ``counts`` (``table,
        rows_in, rows_out, rows_quarantined``) and, on first access,
        ``analysis``.

    Raises
    ------
    DataContractError
        The study breaks the contract: the employees table or a required
        column is missing, or a required column is unreadable in more than
        20% of rows (see :func:`validate_study`).
    PrivacyError
        study.yaml sets ``pseudonymise: true`` but the key variable
        (``pseudonym_key_env``) is not set.

    Notes
    -----
    Decisions worth knowing:

    - Columns outside the contract are kept unchanged and reported once each
      (``unknown_column``, ``flagged``, row missing). Absent optional columns
      are added, all missing (``absent_column``), so clean tables always have
      every canonical column.
    - Reverse coding is reported once per item column (``reverse_coded``,
      row missing, value ``"x -> 6 - x"``), not once per answer.
    - Exact duplicates are judged after normalising text and dates; the
      first copy stays, later copies go to quarantine as ``dropped_duplicate``.
    - Rows of reviews, surveys, programs and feedback whose ``employee_id`` is
      not in the clean employees table are quarantined (they cannot be linked
      to a spell): ``unknown_employee``, or ``quarantined_employee`` when the
      employee's spells were all quarantined. Unknown managers, goal owners,
      givers and parent goals are only flagged (often real people or goals
      outside the export).
    - A hire date after today (``hire_in_future``) is quarantined: the spell
      has not started. A hire date after the window's end but not in the
      future (``hire_after_window``) is only flagged: the spell is real but
      has no time at risk, so the analysis tables leave it out.
    - A date that two ``date_formats`` read as different days keeps the first
      format's reading and is flagged ``ambiguous_date``.
    - Graph links that cannot be right are cut (set to missing, action
      ``set_missing``), never the row: a spell managed by its own employee
      (``self_managed``), and one link of every manager loop
      (``manager_cycle``: the spell of the highest ``job_level``, then the
      smallest ``employee_id``; spells linked only when they overlap in time)
      and of every goal-parent loop (``goal_cycle``: the smallest
      ``goal_id``). Every other row on a loop is reported as ``flagged``.
    - The quarantine holds each row as it was read (raw values), plus
      ``reason`` and ``rule``; a source column of that name (job_history's
      ``reason``) is kept as ``reason_in_source``.
    - job_history rows are given their employment spell; rows before the
      first hire or after the spell's termination, and rows of one employee
      and day that disagree, are quarantined (``history_before_hire``,
      ``history_after_termination``, ``history_same_day_conflict``); unknown
      managers, managers not employed on the date, level changes without a
      reason and rows on the hire date that differ from employees are
      flagged. Every spell then gets a row on its hire date, made from
      employees when the export has none (negative row numbers; counted in
      ``counts`` as ``rows_added``, a column present when the study has
      job_history), so rows in = rows out + rows quarantined still holds,
      and the clean table has rows out + rows added rows.
    - study.yaml ``covariates`` are read as their type in employees and
      job_history (``not_a_number``, ``not_a_boolean``: set to missing).
    - Feedback ``kind`` is mapped by study.yaml ``feedback_kinds`` onto
      ``check_in``, ``360_review``, ``recognition``, ``other``; a kind neither
      canonical nor mapped is kept as ``other`` and reported
      (``unmapped_feedback_kind``, ``flagged``), so no event is lost and the
      clean table holds canonical kinds only.
    - The optional goals columns are cleaned only when present and never
      added when absent, so a study without them cleans exactly as before:
      ``difficulty`` outside 1..5 (``out_of_range_difficulty``) and
      non-numbers in ``difficulty``, ``target``, ``baseline`` are set missing;
      ``set_with`` is mapped by ``set_with_map`` (unknown words set missing);
      a ``revised_date`` before the start or after the end of the goal's own
      cycle is set missing (``revised_before_cycle``,
      ``revised_after_cycle``); the goal is always kept. With both
      ``target`` and ``baseline``, ``stretch = (target - baseline) /
      |baseline|`` is added (missing for a baseline of 0, ``zero_baseline``);
      with only one of them the table is flagged
      (``stretch_needs_target_and_baseline``).
    - With ``pseudonymise: true`` the ids of the clean tables are replaced by a
      keyed hash (:func:`pseudonymise_tables`); the report and the quarantine
      keep the source ids, as they exist to fix the source files.

    See Also
    --------
    validate_study : The same checks, listed without stopping.
    write_clean_study : Write the result to a folder.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> clean.counts  # doctest: +SKIP
    """
    structure = structure_problems(study)
    fatal = structure[structure["fatal"]]
    if len(fatal):
        raise DataContractError(
            f"{study.path or 'the study'} breaks the data contract; fix these and try again.",
            fatal[PROBLEM_COLUMNS],
        )
    clean, _ = _clean(study, progress=progress, structure=structure)
    fatal = unreadable_columns(clean.report, clean.counts)
    if len(fatal):
        raise DataContractError(
            f"{study.path or 'the study'}: required columns are mostly unreadable; check study.yaml "
            "`date_formats` and `column_maps`.",
            fatal[PROBLEM_COLUMNS],
        )
    return clean


def validate_study(study: Study) -> pd.DataFrame:
    """List every problem of a study in one pass, marking those that break the contract as fatal.

    Structural problems come first (:func:`structure_problems`). Every table
    without a fatal structural problem is then cleaned in memory, and every
    issue of the cleaning report becomes a (non-fatal) problem, with the
    action cleaning takes on it (``fixed``, ``set_missing``, ``flagged``,
    ``quarantined``, ``dropped_duplicate``). A required column missing or
    unreadable in more than 20% of its rows (and at least 5) is fatal
    (``unreadable_column``): a wrong ``date_formats`` or ``column_maps``
    entry is the usual cause. When the employees table itself is broken the
    other tables are not cleaned, as every row of them refers to it.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.

    Returns
    -------
    DataFrame
        ``file, table, row, column, rule, value, action, fatal`` (bool);
        empty when the study is clean. A fatal problem has action ``stop``.
        ``alignment-research validate`` summarises it and exits 1 if any row
        is fatal (0 otherwise: the study is usable).

    See Also
    --------
    clean_study : Performs the fixes and the quarantine these rows describe.
    explain_problems : Adds a hint on how to fix each problem.
    format_problems : The text ``alignment-research validate`` prints.

    Examples
    --------
    >>> import alignment_research as ar
    >>> problems = ar.validate_study(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> problems["fatal"].any()  # doctest: +SKIP
    False
    """
    problems, _ = validate_and_clean(study, progress=False)
    return problems


def validate_and_clean(study: Study, *, progress: bool | None = None):
    """Validate and clean a study in one pass: the problems, and the clean study when it is usable.

    Gives what :func:`validate_study` and :func:`clean_study` give, cleaning
    the tables only once (each of them alone cleans once, so calling both
    cleans twice). ``alignment-research validate`` (through
    :func:`validate_study`), ``run`` and notebook 01 use it.

    Parameters
    ----------
    study : Study
        From :func:`load_study`.
    progress : bool, optional
        Show a progress bar while cleaning; by default only when stderr is a
        terminal (never in notebooks).

    Returns
    -------
    problems : DataFrame
        Exactly what :func:`validate_study` returns (``file, table, row,
        column, rule, value, action, fatal``).
    clean : CleanStudy or None
        Exactly what :func:`clean_study` returns, or None when a problem is
        fatal (where ``clean_study`` raises :class:`DataContractError`).

    Raises
    ------
    PrivacyError
        study.yaml sets ``pseudonymise: true`` but the key variable is not set
        (as both :func:`validate_study` and :func:`clean_study` do).

    See Also
    --------
    validate_study : The problems only.
    clean_study : The clean study only; raises on a fatal problem.

    Examples
    --------
    >>> import alignment_research as ar
    >>> problems, clean = ar.validate_and_clean(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> bool(problems["fatal"].any()), clean is not None  # doctest: +SKIP
    (False, True)
    """
    structure = structure_problems(study)
    broken = set(structure.loc[structure["fatal"], "table"])
    if "employees" in broken or "employees" not in study.tables:
        return structure.reset_index(drop=True), None
    if broken:
        # list the problems of the usable tables too; nothing is returned clean
        tables = {t: frame for t, frame in study.tables.items() if t not in broken}
        usable = Study(tables=tables, config=study.config, path=study.path, sources=study.sources)
        clean, _ = _clean(usable, progress=progress, structure=structure)
        return validation_problems(structure, clean), None
    clean, _ = _clean(study, progress=progress, structure=structure)
    problems = validation_problems(structure, clean)
    return problems, (None if problems["fatal"].any() else clean)


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    changes = {}
    for c in frame.columns:
        s = frame[c]
        if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
            changes[c] = s.map(_text).astype(object)
    return _with(frame, changes) if changes else frame


def write_clean_study(clean: CleanStudy, out_dir: str | Path) -> Path:
    """Write a cleaned study to a folder.

    Writes ``<table>.parquet`` (clean tables, index ``row`` kept),
    ``cleaning_report.csv``, ``cleaning_counts.csv``, ``quarantine/<table>.csv``
    (every table, even when empty) and ``analysis/*.parquet``.

    Parameters
    ----------
    clean : CleanStudy
        From :func:`clean_study`.
    out_dir : str or Path
        Folder to write to (created).

    Returns
    -------
    Path
        The folder.

    Examples
    --------
    >>> import alignment_research as ar, tempfile
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> ar.write_clean_study(clean, tempfile.mkdtemp())  # doctest: +SKIP
    """
    out = Path(out_dir)
    (out / "quarantine").mkdir(parents=True, exist_ok=True)
    for table, frame in clean.tables.items():
        _parquet_safe(frame).to_parquet(out / f"{table}.parquet", index=True)
    clean.report.to_csv(out / "cleaning_report.csv", index=False)
    clean.counts.to_csv(out / "cleaning_counts.csv", index=False)
    for table, frame in clean.quarantine.items():
        frame.to_csv(out / "quarantine" / f"{table}.csv", index=True)
    clean.analysis.write(out / "analysis")
    return out


# --------------------------------------------------------------------------- summary and figure
def cleaning_summary(report: pd.DataFrame) -> pd.DataFrame:
    """Count issues by table, rule and action.

    Parameters
    ----------
    report : DataFrame
        ``CleanStudy.report``.

    Returns
    -------
    DataFrame
        ``table, rule, action, issues`` (the count), tables in processing
        order, then rule.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.cleaning_summary(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).report)  # doctest: +SKIP
    """
    if report.empty:
        return pd.DataFrame({"table": [], "rule": [], "action": [], "issues": pd.Series(dtype="int64")})
    counts = report.groupby(["table", "rule", "action"], sort=False).size().rename("issues").reset_index()
    order = {t: i for i, t in enumerate(TABLES)}
    counts = counts.assign(_o=counts["table"].map(order)).sort_values(["_o", "rule", "action"], kind="stable")
    return counts.drop(columns="_o").reset_index(drop=True)


def quarantine_summary(clean: CleanStudy) -> pd.DataFrame:
    """Count quarantined rows by table and rule.

    Parameters
    ----------
    clean : CleanStudy
        From :func:`clean_study`.

    Returns
    -------
    DataFrame
        ``table, rule, rows, reason``: tables in processing order, then the
        most frequent rule first; ``reason`` is the rule's text.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.quarantine_summary(ar.clean_study(ar.simulate_study(n_employees=300, seed=0)))  # doctest: +SKIP
    """
    parts = [
        frame.groupby("rule", sort=False).size().rename("rows").reset_index().assign(table=table)
        for table, frame in clean.quarantine.items()
        if len(frame)
    ]
    if not parts:
        return pd.DataFrame({"table": [], "rule": [], "rows": pd.Series(dtype="int64"), "reason": []})
    out = pd.concat(parts, ignore_index=True)
    order = {t: i for i, t in enumerate(TABLES)}
    out = out.assign(_o=out["table"].map(order), _n=-out["rows"])
    out = out.sort_values(["_o", "_n", "rule"], kind="stable").drop(columns=["_o", "_n"])
    out["reason"] = out["rule"].map(RULES)
    return out[["table", "rule", "rows", "reason"]].reset_index(drop=True)


def plot_cleaning_summary(report: pd.DataFrame, *, ax=None, **kwargs):
    """Draw how many issues each rule found, per table, coloured by action.

    Parameters
    ----------
    report : DataFrame
        ``CleanStudy.report``.
    ax : matplotlib Axes, optional
        Axes to draw on; a new figure by default.
    **kwargs
        Passed to :func:`seaborn.barplot`.

    Returns
    -------
    matplotlib.axes.Axes
        One horizontal bar per table and rule (log scale).

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))  # doctest: +SKIP
    >>> ax = ar.plot_cleaning_summary(clean.report)  # doctest: +SKIP
    """
    import seaborn as sns  # deferred: seaborn and matplotlib are slow to import; only this figure needs them

    from .plots import axes_for  # deferred: plots loads seaborn and matplotlib; only this figure needs them

    ax = axes_for(ax)
    counts = cleaning_summary(report)
    if counts.empty:
        ax.text(0.5, 0.5, "No issues found", ha="center", va="center", transform=ax.transAxes)
        return ax
    words = {"fixed": "Fixed", "set_missing": "Value set to missing", "quarantined": "Row set aside",
             "dropped_duplicate": "Duplicate dropped", "flagged": "Flagged, kept"}
    counts = counts.assign(label=counts["table"] + ": " + counts["rule"],
                           action=counts["action"].map(lambda a: words.get(a, str(a).replace("_", " "))))
    kwargs.setdefault("hue_order", [words[a] for a in ACTIONS if words[a] in set(counts["action"])])
    kwargs.setdefault("dodge", False)
    sns.barplot(data=counts, x="issues", y="label", hue="action", orient="h", ax=ax, **kwargs)
    ax.set_xscale("log")
    ax.set_xlim(0.5, counts["issues"].max() * 3)  # a count of 1 stays visible; room for the labels
    for container in ax.containers:
        ax.bar_label(container, padding=2, fontsize="small")
    ax.set_xlabel("Issues (count, log scale)")
    ax.set_ylabel("")
    if ax.get_legend() is not None:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title="What was done", frameon=False)
    return ax
