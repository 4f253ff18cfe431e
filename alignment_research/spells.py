"""Employment spells, review cycles and the observation window as plain frames, for measures and tables."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["DAY", "DAYS_PER_MONTH", "cycle_dates", "numbered_spells", "window_bounds", "assign_spell", "spell_of",
           "locate_pairs", "index_of", "stable_argsort"]

#: One day, to turn date differences into whole days (``(end - start) / DAY``).
DAY = np.timedelta64(1, "D")

#: Days in an average month (a Julian year over 12), to state tenure in months.
DAYS_PER_MONTH = 365.25 / 12


def cycle_dates(cycles) -> pd.DataFrame | None:
    """Return the review cycles as a frame: ``name, start, end, order``.

    Parameters
    ----------
    cycles : sequence or None
        ``Cycle`` objects (``study.config.cycles``), dicts with ``name, start,
        end``, or plain names (no dates: ``start`` and ``end`` missing).

    Returns
    -------
    DataFrame or None
        One row per cycle; ``order`` is its position in ``cycles``. None when
        ``cycles`` is None.

    Examples
    --------
    >>> cycle_dates([{"name": "2024", "start": "2024-01-01", "end": "2024-12-31"}])["order"].tolist()
    [0]
    """
    if cycles is None:
        return None
    rows = []
    for i, c in enumerate(cycles):
        if hasattr(c, "name") and hasattr(c, "start"):
            rows.append((str(c.name), pd.Timestamp(c.start), pd.Timestamp(c.end), i))
        elif isinstance(c, Mapping):
            rows.append((str(c["name"]), pd.Timestamp(c["start"]), pd.Timestamp(c["end"]), i))
        else:
            rows.append((str(c), pd.NaT, pd.NaT, i))
    return pd.DataFrame(rows, columns=["name", "start", "end", "order"])


def numbered_spells(employees: pd.DataFrame) -> pd.DataFrame:
    """Number each employee's employment spells: 1, 2, ... by hire date.

    Parameters
    ----------
    employees : DataFrame
        The cleaned ``employees`` table (one row per spell).

    Returns
    -------
    DataFrame
        The rows with ``employee_id`` and ``hire_date``, sorted by employee and
        hire date, with a ``spell`` column. Ties keep the input order.

    Examples
    --------
    >>> import pandas as pd
    >>> e = pd.DataFrame({"employee_id": ["E1", "E1"],
    ...                   "hire_date": pd.to_datetime(["2024-05-01", "2020-01-01"])})
    >>> numbered_spells(e)["spell"].tolist()
    [1, 2]
    """
    emp = employees.dropna(subset=["employee_id", "hire_date"])
    emp = emp.assign(_row=np.arange(len(emp))).sort_values(["employee_id", "hire_date", "_row"], kind="stable")
    emp = emp.assign(spell=emp.groupby("employee_id", sort=False).cumcount().astype("int64") + 1)
    return emp.drop(columns="_row")


def window_bounds(window) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last day of an observation window.

    Parameters
    ----------
    window : Window or tuple
        ``study.config.window`` or a ``(start, end)`` pair of dates.

    Returns
    -------
    tuple of Timestamp
        ``(start, end)``.

    Examples
    --------
    >>> window_bounds(("2023-01-01", "2025-12-31"))[1].year
    2025
    """
    if hasattr(window, "start"):
        return pd.Timestamp(window.start), pd.Timestamp(window.end)
    start, end = window
    return pd.Timestamp(start), pd.Timestamp(end)


def assign_spell(data: pd.DataFrame, spells: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Attach each dated row to the employment spell it falls in.

    A row falls in the employee's latest spell hired on or before its date,
    when that spell has not ended before the date.

    Parameters
    ----------
    data : DataFrame
        Rows with ``employee_id`` and the date column.
    spells : DataFrame
        ``employee_id, hire_date`` and optionally ``termination_date``, one row per spell.
    date_col : str
        The column of ``data`` holding each row's date.

    Returns
    -------
    DataFrame
        ``data`` with ``_sid``: the row position in ``spells`` of the spell,
        -1 when the row falls in none (or has no date).

    Examples
    --------
    >>> import pandas as pd
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2024-01-01"]),
    ...                        "termination_date": pd.to_datetime(["2024-06-30"])})
    >>> rows = pd.DataFrame({"employee_id": ["E1", "E1"], "d": pd.to_datetime(["2024-03-01", "2024-09-01"])})
    >>> assign_spell(rows, spells, "d")["_sid"].tolist()
    [0, -1]
    """
    return data.assign(_sid=spell_of(data["employee_id"], data[date_col], spells))


def spell_of(ids, dates, spells: pd.DataFrame) -> np.ndarray:
    """Find the employment spell each dated event falls in, as a position among the spells.

    What :func:`assign_spell` adds as ``_sid``, for events given as two arrays
    (no frame is made or copied: the feedback events of a large study are millions).

    Parameters
    ----------
    ids : Series or array-like
        The employee id of each event.
    dates : Series or array-like of datetime64
        The date of each event.
    spells : DataFrame
        ``employee_id, hire_date`` and optionally ``termination_date``, one row per spell.

    Returns
    -------
    ndarray of int64
        Per event, the row position in ``spells`` of the employee's latest spell
        hired on or before the date and not ended before it; -1 when none (or no date).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> spells = pd.DataFrame({"employee_id": ["E1", "E1"], "hire_date": pd.to_datetime(["2023-01-01", "2024-01-01"]),
    ...                        "termination_date": pd.to_datetime(["2023-06-30", None])})
    >>> spell_of(np.array(["E1", "E1", "E2"], dtype=object), pd.to_datetime(["2023-03-01", "2023-09-01", "2024-02-01"]),
    ...          spells).tolist()
    [0, -1, -1]
    """
    ids = ids if isinstance(ids, pd.Series) else pd.Series(np.asarray(ids), copy=False)
    dates = (dates.to_numpy("datetime64[ns]") if isinstance(dates, (pd.Series, pd.Index))
             else np.asarray(dates, dtype="datetime64[ns]"))
    sp_ids = spells["employee_id"].astype("string")
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    term = (spells["termination_date"].to_numpy("datetime64[ns]") if "termination_date" in spells
            else np.full(len(spells), np.datetime64("NaT"), "datetime64[ns]"))
    if sp_ids.isna().any() or np.isnat(hire).any():
        events = pd.DataFrame({"employee_id": ids.to_numpy(), "_date": dates})
        return _assign_spell_asof(events, spells, "_date")["_sid"].to_numpy()
    # The latest spell of the same employee hired on or before the date (the same match as an as-of merge by
    # employee), from each row's employee as a code among the spells' ids.
    sp_code, uniq = pd.factorize(sp_ids.to_numpy(dtype=object))
    ids = ids.to_numpy(dtype=object) if _all_text(ids) else ids.astype("string").to_numpy(dtype=object)
    row_code = index_of(ids, uniq)
    sid = np.full(len(ids), -1, dtype=np.int64)
    rows = np.flatnonzero((row_code >= 0) & ~np.isnat(dates))
    if not len(spells) or not len(rows):
        return sid
    # An employee with one spell (most of them): that spell, when hired on or before the date; no search
    spells_of = np.bincount(sp_code, minlength=len(uniq))
    single = spells_of[sp_code] == 1
    only = np.full(len(uniq), -1, dtype=np.int64)
    only[sp_code[single]] = np.flatnonzero(single)
    hit = only[row_code[rows]]
    one = hit >= 0
    if not one.all():  # rows of rehired employees: a sorted search among the spells (_latest_spell)
        several = rows[~one]
        hit[~one] = _latest_spell(sp_code, hire, row_code[several], dates[several])
    ok = hit >= 0
    hit = np.maximum(hit, 0)
    q_dates = dates[rows]
    found = ok & (hire[hit] <= q_dates) & (np.isnat(term[hit]) | (q_dates <= term[hit]))
    sid[rows[found]] = hit[found]
    return sid


def _latest_spell(sp_code: np.ndarray, hire: np.ndarray, code: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Per query, the position of the latest spell of employee ``code`` hired on or before its date; -1 if none.

    The spells' and the queries' (employee code, date) as one int64 key each, found by a sorted search:
    the same match as an as-of merge by employee (ties in hire date: the last spell in table order).
    """
    sp_time, q_time, span = _date_keys(hire, dates)
    sp_key = sp_code.astype(np.int64) * span + sp_time
    order = stable_argsort(sp_key)
    sp_key = sp_key[order]
    i = np.searchsorted(sp_key, code.astype(np.int64) * span + q_time, side="right") - 1
    hit = order[np.maximum(i, 0)]
    return np.where((i >= 0) & (sp_code[hit] == code), hit, -1)


def _all_text(values: pd.Series) -> bool:
    """True when ``values`` holds Python strings and missing values only (converting to "string" changes nothing)."""
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")


def _date_keys(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Order-preserving int64 keys of two datetime64[ns] arrays (no NaT) in ``[0, span)``: day numbers when
    every value is a whole day, else ranks among the distinct values."""
    ai, bi = a.view("int64"), b.view("int64")
    day = 86_400 * 10**9
    lo = min(ai.min(), bi.min())
    if not (ai % day).any() and not (bi % day).any():
        span = int((max(ai.max(), bi.max()) - lo) // day) + 1
        return (ai - lo) // day, (bi - lo) // day, span
    times = np.unique(np.concatenate([ai, bi]))
    return np.searchsorted(times, ai), np.searchsorted(times, bi), len(times) + 1


def _assign_spell_asof(data: pd.DataFrame, spells: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """:func:`assign_spell` by an as-of merge, for spells with a missing id or hire date."""
    d = data.assign(_pos=np.arange(len(data)))
    d = d[d[date_col].notna()]
    sp = pd.DataFrame({"employee_id": spells["employee_id"].astype("string").to_numpy(),
                       "_hire": spells["hire_date"].to_numpy("datetime64[ns]"),
                       "_term": (spells["termination_date"].to_numpy("datetime64[ns]") if "termination_date" in spells
                                 else np.full(len(spells), np.datetime64("NaT"), "datetime64[ns]")),
                       "_sid": np.arange(len(spells))}).sort_values("_hire", kind="stable")
    left = pd.DataFrame({"employee_id": d["employee_id"].astype("string").to_numpy(),
                         "_date": d[date_col].to_numpy("datetime64[ns]"), "_pos": d["_pos"].to_numpy()})
    left = left.sort_values("_date", kind="stable")
    hit = pd.merge_asof(left, sp, left_on="_date", right_on="_hire", by="employee_id", direction="backward")
    valid = hit["_hire"].notna() & (hit["_term"].isna() | (hit["_date"] <= hit["_term"]))
    sid = np.full(len(data), -1, dtype=np.int64)
    sid[hit["_pos"].to_numpy()[valid.to_numpy()]] = hit["_sid"].to_numpy()[valid.to_numpy()].astype(np.int64)
    return data.assign(_sid=sid)


def _as_values(x) -> np.ndarray:
    """A column as a NumPy array (text and nullable columns as objects, missing values as ``pd.NA``).

    Read only: for a "string" column this is the column's own array of objects (``to_numpy`` would
    scan it for missing values and copy it, and change nothing).
    """
    if isinstance(x, (pd.Series, pd.Index)):
        x = x.array
    if isinstance(x, np.ndarray):
        return x
    if not isinstance(x, pd.api.extensions.ExtensionArray):
        return np.asarray(x, dtype=object)
    if isinstance(x.dtype, pd.StringDtype) and x.dtype.storage == "python":
        return np.asarray(x, dtype=object)
    return x.to_numpy(dtype=object)


def stable_argsort(keys) -> np.ndarray:
    """Return the positions that sort an integer array, equal keys in their order.

    What ``numpy.argsort(keys, kind="stable")`` returns. When every key and its
    position fit one int64 together (``key * n + position``), those distinct
    numbers are sorted with NumPy's default sort instead, which is vectorised and
    several times faster than the stable merge sort for millions of keys.

    Parameters
    ----------
    keys : array-like of int
        The keys to sort by.

    Returns
    -------
    ndarray of intp
        Positions in ``keys``, in key order; equal keys keep their order.

    Examples
    --------
    >>> stable_argsort(np.array([3, 1, 3, 1])).tolist()
    [1, 3, 0, 2]
    """
    keys = np.asarray(keys)
    n = len(keys)
    if n < 2 or keys.dtype.kind not in "iu":
        return np.argsort(keys, kind="stable")
    lo, hi = int(keys.min()), int(keys.max())
    if (hi - lo + 1) * n >= 2**62:  # key and position would not fit one int64
        return np.argsort(keys, kind="stable")
    return np.argsort((keys.astype(np.int64) - lo) * n + np.arange(n, dtype=np.int64))


def index_of(values, uniques) -> np.ndarray:
    """Find the position of each value among distinct values; -1 when absent or missing.

    What ``pandas.Index(uniques).get_indexer(values)`` returns, from one hash pass over
    both (a ``pandas.factorize`` of the two together), which takes less than half as long
    for millions of text values.

    Parameters
    ----------
    values : array-like
        The values to look up (e.g. the employee ids of a table's rows).
    uniques : array-like
        Distinct values without missing ones (e.g. the ids of ``pandas.factorize``).

    Returns
    -------
    ndarray of int64
        The position in ``uniques`` of each value, -1 when it is not there or missing.

    Examples
    --------
    >>> import numpy as np
    >>> index_of(np.array(["b", "x", None, "a"], dtype=object), np.array(["a", "b"], dtype=object)).tolist()
    [1, -1, -1, 0]
    """
    u, v = _as_values(uniques), _as_values(values)
    if not len(u):
        return np.full(len(v), -1, dtype=np.int64)
    # The values' own distinct values first, then those (fewer) among the uniques. Equal ids within one
    # column are often one Python object (a column read from a file shares them), which hashes and compares
    # at once; ids of another column are other objects, each compared character by character: so the many
    # values are hashed among themselves and only their distinct values against the other column.
    codes, distinct = pd.factorize(v)
    distinct = np.asarray(distinct)
    both, _ = pd.factorize(np.concatenate([u, distinct]) if u.dtype == distinct.dtype else
                           np.concatenate([u.astype(object), distinct.astype(object)]))
    found = both[len(u):].astype(np.int64)
    found[found >= len(u)] = -1  # a value first met among ``values``: not among the uniques
    return np.append(found, np.int64(-1))[codes]  # a missing value (code -1) takes the -1 at the end


def locate_pairs(left_a, left_b, right_a, right_b) -> np.ndarray:
    """Find the row of ``right`` holding each pair ``(left_a, left_b)``; -1 when none.

    What ``MultiIndex.get_indexer`` returns for complete pairs (the right pairs are
    unique), from one hash pass per column and a sorted search, without building
    the MultiIndexes. A pair with a missing value is not found.

    Parameters
    ----------
    left_a, left_b : array-like
        The pairs to look up (e.g. employee ids and cycles), one per row.
    right_a, right_b : array-like
        The pairs to find them in, unique.

    Returns
    -------
    ndarray of int64
        The position in ``right`` of each left pair, -1 when absent.

    Examples
    --------
    >>> locate_pairs(["E1", "E2"], ["2024", "2024"], ["E2", "E1"], ["2024", "2023"]).tolist()
    [-1, 0]
    """
    la, lb, ra, rb = (_as_values(v) for v in (left_a, left_b, right_a, right_b))
    n_right = len(ra)
    ca, _ = pd.factorize(np.concatenate([ra, la]) if ra.dtype == la.dtype else
                         np.concatenate([ra.astype(object), la.astype(object)]))
    cb, levels_b = pd.factorize(np.concatenate([rb, lb]) if rb.dtype == lb.dtype else
                                np.concatenate([rb.astype(object), lb.astype(object)]))
    key = np.where((ca < 0) | (cb < 0), -1, ca.astype(np.int64) * (len(levels_b) + 1) + cb)
    right_key, left_key = key[:n_right], key[n_right:]
    order = stable_argsort(right_key)
    right_key = right_key[order]
    if not n_right:
        return np.full(len(left_key), -1, dtype=np.int64)
    i = np.minimum(np.searchsorted(right_key, left_key), n_right - 1)
    found = (right_key[i] == left_key) & (left_key >= 0)
    return np.where(found, order[i], -1).astype(np.int64)
