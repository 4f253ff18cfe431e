"""Effective-dated job history as spans of time: who managed whom, where and at which level, and when.

A ``job_history`` row holds from its ``effective_date`` until the next row of the
same employment spell, or the end of the spell. These pure functions turn the
cleaned rows into spans on the tenure scale (days since hire) that the analysis
tables look values up in, and answer the questions the tables ask of them: which
managers were in force during a review cycle, where a manager changed, and where
a promotion took effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spells import DAY, assign_spell, stable_argsort

__all__ = [
    "HISTORY_COLUMNS",
    "RECENT_CHANGE_DAYS",
    "history_spans",
    "manager_spans",
    "managers_in_cycles",
]

#: The values a history row sets; each holds until the spell's next row.
HISTORY_COLUMNS = ("manager_id", "department", "job_level", "location")

#: How long after a manager change ``recent_manager_change`` is 1: six months, in days.
RECENT_CHANGE_DAYS = 183


def history_spans(history: pd.DataFrame, spells: pd.DataFrame, *, extra=()) -> pd.DataFrame:
    """Place each job-history row in its employment spell, as a span of tenure days.

    Parameters
    ----------
    history : DataFrame
        Cleaned ``job_history``: ``employee_id, effective_date`` and the columns of
        :data:`HISTORY_COLUMNS` (missing ones are taken from the spell), optionally
        ``reason`` and the columns named in ``extra``.
    spells : DataFrame
        One row per spell in spell-position order, with ``employee_id, hire_date,
        termination_date`` and the static values of :data:`HISTORY_COLUMNS` (the
        values at hire).
    extra : sequence of str
        Further columns of ``history`` to carry (e.g. the study's covariates).

    Returns
    -------
    DataFrame
        One row per spell and day on which a value takes effect, sorted by ``sid, t``:
        ``sid`` (the spell's position in ``spells``), ``t`` (tenure day, 0 for rows
        dated on or before hire), ``t_next`` (the next row's day in the spell, or the
        largest int64 for the last), the :data:`HISTORY_COLUMNS` and ``extra`` in
        force (a missing value carries the spell's previous value forward),
        ``reason``, ``manager_change`` (the manager differs from the previous row's)
        and ``promotion`` (``reason`` is promotion, or, where no reason is given, the
        job level rose). A spell whose history starts after hire gets a first row on
        day 0 holding its values at hire. Rows outside every spell are left out
        (cleaning reports them).

    Examples
    --------
    >>> import pandas as pd
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2024-01-01"]),
    ...                        "termination_date": [pd.NaT], "manager_id": ["M1"], "department": ["Sales"],
    ...                        "job_level": [1], "location": ["Berlin"]})
    >>> history = pd.DataFrame({"employee_id": ["E1"], "effective_date": pd.to_datetime(["2024-03-01"]),
    ...                         "manager_id": ["M2"], "reason": ["manager_change"]})
    >>> history_spans(history, spells)[["t", "manager_id", "manager_change"]].values.tolist()
    [[0, 'M1', False], [60, 'M2', True]]
    """
    carried = [*HISTORY_COLUMNS, *[c for c in extra if c not in HISTORY_COLUMNS]]
    h = history.dropna(subset=["employee_id", "effective_date"]).reset_index(drop=True)
    h = assign_spell(h, spells, "effective_date")
    h = h[h["_sid"].to_numpy() >= 0]
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    sid = h["_sid"].to_numpy(np.int64)
    t = np.maximum(0, ((h["effective_date"].to_numpy("datetime64[ns]") - hire[sid]) / DAY).astype(np.int64))
    # the values at hire open every spell that has history, unless a row already takes effect on day 0: one row
    # per spell on day 0 placed before the history's rows, then one stable sort by (spell, day), so that the
    # opening row comes first in its spell and the rows of one day stay in table order
    opened = _present(sid, len(spells))
    n_open = len(opened)
    all_sid = np.r_[opened.astype(np.int64), sid]
    all_t = np.r_[np.zeros(n_open, np.int64), t]
    order = np.r_[np.zeros(n_open, np.int64), np.arange(len(h)) + 1]
    by = stable_argsort(all_sid * (int(all_t.max()) + 1 if len(all_t) else 1) + all_t)
    all_sid, all_t, order = all_sid[by], all_t[by], order[by]
    # several rows on one day: the last one listed holds; a value it leaves empty is the previous one's (within
    # the spell: each spell's first row is its opening row, which a missing value never reaches past)
    new_spell = all_sid[1:] != all_sid[:-1]
    spell_first = np.r_[True, new_spell][:len(by)]
    keep = np.flatnonzero(np.r_[new_spell | (all_t[1:] != all_t[:-1]), True][:len(by)])
    position = np.arange(len(by))
    rows = pd.DataFrame({"sid": all_sid[keep], "t": all_t[keep], "_order": order[keep]})
    for col in carried:
        at_hire = spells[col].to_numpy(dtype=object)[opened] if col in spells else np.full(n_open, None, dtype=object)
        listed = h[col].to_numpy(dtype=object) if col in h else np.full(len(h), None, dtype=object)
        values = np.concatenate([at_hire, listed])[by]
        filled = np.maximum.accumulate(np.where(spell_first | pd.notna(values), position, 0))  # a forward fill
        rows[col] = values[filled[keep]]
    reason = (h["reason"].astype("string").to_numpy(dtype=object) if "reason" in h
              else np.full(len(h), None, dtype=object))
    rows["reason"] = np.concatenate([np.full(n_open, "hire", dtype=object), reason])[by][keep]
    rows["reason"] = rows["reason"].where(rows["_order"] > 0, "hire")
    first = np.r_[True, rows["sid"].to_numpy()[1:] != rows["sid"].to_numpy()[:-1]]
    manager = rows["manager_id"].astype("string")
    previous = manager.shift(1)
    changed = (manager.fillna("\0") != previous.fillna("\0")).to_numpy()
    rows["manager_change"] = changed & ~first
    level = pd.to_numeric(rows["job_level"], errors="coerce").to_numpy(float)
    rose = np.r_[False, level[1:] > level[:-1]] & ~first
    reason = rows["reason"].astype("string")
    rows["promotion"] = ((reason == "promotion").fillna(False).to_numpy()
                         | (reason.isna().to_numpy() & rose)) & ~first
    last = np.r_[rows["sid"].to_numpy()[1:] != rows["sid"].to_numpy()[:-1], True]
    t_next = np.r_[rows["t"].to_numpy()[1:], 0]
    rows["t_next"] = np.where(last, np.iinfo(np.int64).max, t_next).astype(np.int64)
    return rows[["sid", "t", "t_next", *carried, "reason", "manager_change", "promotion"]]


def manager_spans(spans: pd.DataFrame, spells: pd.DataFrame) -> pd.DataFrame:
    """The manager of every spell over its tenure: the history's spans, and the manager at hire for the rest.

    Parameters
    ----------
    spans : DataFrame
        :func:`history_spans` of the study.
    spells : DataFrame
        The spells by position, with the static ``manager_id`` (the manager at hire).

    Returns
    -------
    DataFrame
        ``sid, t, t_next, manager_id``: the spans of spells with history, then one
        span from day 0 with no end for each spell without.

    Examples
    --------
    >>> import pandas as pd
    >>> spells = pd.DataFrame({"manager_id": ["M1", "M2"]})
    >>> spans = pd.DataFrame({"sid": [0, 0], "t": [0, 60], "t_next": [60, 2**63 - 1], "manager_id": ["M1", "M3"]})
    >>> manager_spans(spans, spells)["manager_id"].tolist()
    ['M1', 'M3', 'M2']
    """
    has_spans = np.zeros(len(spells), dtype=bool)
    has_spans[spans["sid"].to_numpy(np.int64)] = True
    bare = np.flatnonzero(~has_spans)  # what np.setdiff1d(np.arange(len(spells)), sid) gives, without a sort
    return pd.DataFrame({
        "sid": np.r_[spans["sid"].to_numpy(np.int64), bare],
        "t": np.r_[spans["t"].to_numpy(np.int64), np.zeros(len(bare), np.int64)],
        "t_next": np.r_[spans["t_next"].to_numpy(np.int64), np.full(len(bare), np.iinfo(np.int64).max)],
        "manager_id": pd.array(np.r_[spans["manager_id"].to_numpy(dtype=object),
                                     spells["manager_id"].to_numpy(dtype=object)[bare]], dtype="string"),
    })


def managers_in_cycles(history: pd.DataFrame, spells: pd.DataFrame, cycle_frame: pd.DataFrame, *,
                       spans: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every manager in force at some time during each review cycle, per employee.

    Parameters
    ----------
    history : DataFrame
        Cleaned ``job_history`` (see :func:`history_spans`).
    spells : DataFrame
        One row per spell with ``employee_id, hire_date, termination_date`` and the
        static ``manager_id`` (the manager at hire).
    cycle_frame : DataFrame
        ``name, start, end`` of the cycles (``spells.cycle_dates``).
    spans : DataFrame, optional
        ``history_spans(history, spells)`` when already computed (the analysis
        tables have it), so it is not built again; ``history`` is then not read.

    Returns
    -------
    DataFrame
        ``employee_id, cycle, manager_id, since``: one row per employee, cycle and
        manager whose span overlaps the cycle within a spell, with ``since`` the
        first date in the cycle that manager was in force. Spells without history
        rows keep their manager at hire throughout.

    Examples
    --------
    >>> import pandas as pd
    >>> spells = pd.DataFrame({"employee_id": ["E1"], "hire_date": pd.to_datetime(["2020-01-01"]),
    ...                        "termination_date": [pd.NaT], "manager_id": ["M1"]})
    >>> history = pd.DataFrame({"employee_id": ["E1"], "effective_date": pd.to_datetime(["2024-07-01"]),
    ...                         "manager_id": ["M2"]})
    >>> cycles = pd.DataFrame({"name": ["2024"], "start": pd.to_datetime(["2024-01-01"]),
    ...                        "end": pd.to_datetime(["2024-12-31"])})
    >>> managers_in_cycles(history, spells, cycles)["manager_id"].tolist()
    ['M1', 'M2']
    """
    if spans is None:
        spans = history_spans(history, spells)
    spans = manager_spans(spans, spells)  # spells without history: the manager at hire
    hire = spells["hire_date"].to_numpy("datetime64[ns]")
    term = spells["termination_date"].to_numpy("datetime64[ns]")
    sid = spans["sid"].to_numpy(np.int64)
    t0 = spans["t"].to_numpy(np.int64)
    t1 = spans["t_next"].to_numpy(np.int64)
    manager = spans["manager_id"].to_numpy(dtype=object)
    start = hire[sid] + t0 * DAY
    # the span's last day: the day before the next row, or the spell's end (open spells run on)
    open_end = np.datetime64("2262-01-01", "ns")
    span_end = np.where(t1 == np.iinfo(np.int64).max, np.where(np.isnat(term[sid]), open_end, term[sid]),
                        hire[sid] + np.minimum(t1, 10**6) * DAY - DAY)
    c_start = cycle_frame["start"].to_numpy("datetime64[ns]")
    c_end = cycle_frame["end"].to_numpy("datetime64[ns]")
    n_s, n_c = len(sid), len(cycle_frame)
    si = np.repeat(np.arange(n_s), n_c)
    ci = np.tile(np.arange(n_c), n_s)
    hit = (start[si] <= c_end[ci]) & (span_end[si] >= c_start[ci]) & pd.notna(manager)[si]
    si, ci = si[hit], ci[hit]
    ids = spells["employee_id"].to_numpy(dtype=object)
    out = pd.DataFrame({
        "employee_id": pd.array(ids, dtype="string").take(sid[si]),
        "cycle": pd.array(cycle_frame["name"].to_numpy(dtype=object), dtype="string").take(ci),
        "manager_id": spans["manager_id"].array.take(si),  # "string" already (manager_spans): taken, not converted
        "since": np.maximum(start[si], c_start[ci]),
    })
    since = out["since"].to_numpy("datetime64[ns]")
    if pd.isna(ids).any() or np.isnat(since).any():  # missing values sort last: leave that to pandas
        return out.sort_values(["employee_id", "cycle", "since"], kind="stable").drop_duplicates(
            ["employee_id", "cycle", "manager_id"]).reset_index(drop=True)
    # the same order and the same first rows from integer keys: employees and cycles ranked by their text
    # once each (not a comparison of texts per row), managers by a code of their text
    employee = _text_ranks(ids)
    cycle = _text_ranks(cycle_frame["name"].to_numpy(dtype=object))
    row_employee, row_cycle = employee[sid[si]], cycle[ci]
    order = np.lexsort((since.view(np.int64), row_cycle, row_employee))
    manager_code, manager_text = pd.factorize(np.asarray(out["manager_id"].array, dtype=object))
    n_cycles = np.int64(cycle.max() + 1 if len(cycle) else 1)
    key = (row_employee * n_cycles + row_cycle) * np.int64(len(manager_text) + 1) + manager_code
    key = key[order]
    by_key = stable_argsort(key)  # what np.unique(key, return_index=True) finds: the first row of each key
    first = by_key[np.r_[True, key[by_key][1:] != key[by_key][:-1]]] if len(key) else by_key
    return out.iloc[order[np.sort(first)]].reset_index(drop=True)


def _present(positions: np.ndarray, n: int) -> np.ndarray:
    """The distinct values of ``positions`` (integers in ``[0, n)``), sorted: ``np.unique`` from a mask, not a sort."""
    seen = np.zeros(n, dtype=bool)
    seen[positions] = True
    return np.flatnonzero(seen)


def _text_ranks(values: np.ndarray) -> np.ndarray:
    """Per value, the rank of its text (as a "string" column holds it) among the distinct texts, sorted."""
    text = np.asarray(pd.array(values, dtype="string"), dtype=object)
    codes, uniques = pd.factorize(text)
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[np.argsort(np.asarray(uniques, dtype=object), kind="stable")] = np.arange(len(uniques))
    return rank[codes]
