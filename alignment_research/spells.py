"""Employment spells, review cycles and the observation window as plain frames, for measures and tables."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["DAY", "cycle_dates", "numbered_spells", "window_bounds", "assign_spell"]

#: One day, to turn date differences into whole days (``(end - start) / DAY``).
DAY = np.timedelta64(1, "D")


def cycle_dates(cycles) -> pd.DataFrame | None:
    """Return ``name, start, end, order`` for Cycle objects / dicts, None for plain names.

    Plain cycle names (no dates) give missing ``start`` and ``end``; ``order``
    is the position in ``cycles``.
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
    """Return the employees with a ``spell`` number (1, 2, ... by hire date per employee).

    Rows without ``employee_id`` or ``hire_date`` are left out; ties keep the
    input order.
    """
    emp = employees.dropna(subset=["employee_id", "hire_date"])
    emp = emp.assign(_row=np.arange(len(emp))).sort_values(["employee_id", "hire_date", "_row"], kind="stable")
    emp = emp.assign(spell=emp.groupby("employee_id", sort=False).cumcount().astype("int64") + 1)
    return emp.drop(columns="_row")


def window_bounds(window) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Return the first and last day of an observation window (a ``Window`` or a ``(start, end)`` pair)."""
    if hasattr(window, "start"):
        return pd.Timestamp(window.start), pd.Timestamp(window.end)
    start, end = window
    return pd.Timestamp(start), pd.Timestamp(end)


def assign_spell(data: pd.DataFrame, spells: pd.DataFrame, date_col: str) -> pd.DataFrame:
    """Add ``_sid`` (row position in ``spells``) of the spell each dated row falls in; -1 when none.

    A row falls in the employee's latest spell hired on or before its date,
    when that spell has not ended before the date.
    """
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
