"""Messy data: inject realistic problems into the tables and log each one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .truth import Truth

_TERMINATION_TEXT = {
    "voluntary": ["Resignation", "quit", "Voluntary ", "Resigned", "VOLUNTARY"],
    "involuntary": ["Dismissal", "Terminated", "Layoff", " involuntary"],
    "other": ["Retirement", "End of contract", "Other"],
}


def _inject(tables: dict[str, pd.DataFrame], truth: Truth, rng: np.random.Generator, n: int):
    """Inject a few dozen realistic problems; return the tables and the log of what was injected.

    Every problem touches its own row (no row carries two problems), so each
    logged row shows exactly one rule. ``k = max(1, round(n / 1000))`` sets the
    number of exact duplicates per table; the other problems occur once or a
    few times (about 30 rows for 2,000 employees).
    """
    k = max(1, round(n / 1000))
    marks: list[tuple[str, float, str, str, str]] = []  # (table, position key, column, rule, note)
    out, extra, used = {}, {}, {}
    for name, t in tables.items():
        t = t.reset_index(drop=True).copy()
        t["_pos"] = np.arange(len(t), dtype=float)
        out[name], extra[name], used[name] = t, [], set()
    emp = out["employees"]
    managers = set(emp["manager_id"].dropna())
    leaf = (~emp["employee_id"].isin(managers) & emp["manager_id"].notna()).to_numpy()
    terminated = emp["termination_date"].notna().to_numpy()
    end = pd.Timestamp(truth.window_end)

    def choose(name, mask=None, size=1) -> np.ndarray:
        t = out[name]
        mask = np.ones(len(t), bool) if mask is None else np.asarray(mask, bool)
        cand = np.flatnonzero(mask)
        if used[name]:
            cand = cand[~np.isin(cand, np.fromiter(used[name], np.int64))]
        if len(cand) == 0:
            return cand
        chosen = np.sort(rng.choice(cand, size=min(size, len(cand)), replace=False))
        used[name].update(int(c) for c in chosen)
        return chosen

    def add_copy(name, i, rule, column="", changes=None, note=""):
        t = out[name]
        row = t.iloc[[i]].copy()
        row["_pos"] = t.at[i, "_pos"] + 0.5 + 1e-6 * len(marks)
        for c, v in (changes or {}).items():
            row[c] = v
        extra[name].append(row)
        marks.append((name, float(row["_pos"].iloc[0]), column, rule, note))

    def mark(name, i, column, rule, note=""):
        marks.append((name, float(out[name].at[i, "_pos"]), column, rule, note))

    # exact duplicate rows (an export that repeats a line)
    for i in choose("employees", leaf, k):
        add_copy("employees", i, "duplicate_row")
    for name in ("goals", "surveys", "feedback"):
        for i in choose(name, None, k):
            add_copy(name, i, "duplicate_row")
    # conflicting duplicates: the same key with different values (both rows are logged)
    for i in choose("employees", leaf):
        other = [d for d in truth.departments if d != emp.at[i, "department"]][0]
        mark("employees", i, "department", "conflicting_duplicate")
        add_copy("employees", i, "conflicting_duplicate", "department", {"department": other})
    rv = out["reviews"]
    for i in choose("reviews"):
        r = rv.at[i, "rating"]
        mark("reviews", i, "rating", "conflicting_duplicate")
        add_copy("reviews", i, "conflicting_duplicate", "rating", {"rating": pd.array([1 if r != 1 else 2], dtype="Int64")})
    # a termination before the hire
    for i in choose("employees", leaf & terminated):
        emp.at[i, "termination_date"] = emp.at[i, "hire_date"] - pd.Timedelta(days=30)
        mark("employees", i, "termination_date", "termination_before_hire")
    # implausible dates
    for i in choose("employees", leaf):
        emp.at[i, "hire_date"] = pd.Timestamp("1901-01-01")
        mark("employees", i, "hire_date", "implausible_date")
    fb = out["feedback"]
    for i in choose("feedback"):
        fb.at[i, "date"] = pd.Timestamp("2099-06-01")
        mark("feedback", i, "date", "implausible_date")
    # missing required fields
    for i in choose("employees", leaf):
        emp.at[i, "hire_date"] = pd.NaT
        mark("employees", i, "hire_date", "missing_required")
    gl = out["goals"]
    for i in choose("goals"):
        gl.at[i, "owner_id"] = np.nan
        mark("goals", i, "owner_id", "missing_required")
    # a manager_id that is nobody's employee_id
    width = len(str(emp["employee_id"].iloc[0])) if len(emp) else 7
    for i in choose("employees", leaf):
        emp.at[i, "manager_id"] = "E" + "9" * width
        mark("employees", i, "manager_id", "unknown_manager")
    # out-of-range survey answers (0 or 9 on a 1-5 scale)
    sv = out["surveys"]
    item_cols = [c for c in sv.columns if c not in ("employee_id", "survey_date", "_spell", "_pos")]
    for i in choose("surveys", None, 3 * k):
        answered = [c for c in item_cols if not np.isnan(sv.at[i, c])]
        c = answered[int(rng.integers(len(answered)))]
        sv.at[i, c] = float(rng.choice([0.0, 9.0]))
        mark("surveys", i, c, "out_of_range_answer")
    # a survey answered a week after the respondent's termination (of a spell no other problem touches)
    touched = set(emp.loc[sorted(used["employees"]), "_spell"])
    term_of = emp.drop_duplicates("_spell").set_index("_spell")["termination_date"]
    late = sv["_spell"].map(term_of)
    ok = (late.notna() & (late + pd.Timedelta(days=7) <= end) & ~sv["_spell"].isin(touched)).to_numpy()
    for i in choose("surveys", ok):
        add_copy("surveys", i, "survey_after_termination", "survey_date", {"survey_date": late.iloc[i] + pd.Timedelta(days=7)})
    # termination types typed by hand
    typed = emp["termination_type"].notna().to_numpy()
    for i in choose("employees", typed, max(2, round(0.03 * typed.sum()))):
        variants = _TERMINATION_TEXT[emp.at[i, "termination_type"]]
        emp.at[i, "termination_type"] = variants[int(rng.integers(len(variants)))]
        mark("employees", i, "termination_type", "noncanonical_category")
    # Excel serial dates (in the CSV only: the in-memory table keeps the date)
    for i in choose("employees", None, k + 1):
        mark("employees", i, "hire_date", "excel_serial_date", "written as an Excel serial day number in employees.csv only")

    injected_rows = []
    final = {}
    for name, t in out.items():
        t = pd.concat([t, *extra[name]], ignore_index=True) if extra[name] else t
        t = t.sort_values("_pos", kind="stable").reset_index(drop=True)
        row_of = pd.Series(np.arange(2, len(t) + 2), index=t["_pos"].to_numpy())
        for tn, pos, col, rule, note in marks:
            if tn == name:
                injected_rows.append((name, int(row_of[pos]), col, rule, note))
        final[name] = t.drop(columns=["_pos"])
    injected = pd.DataFrame(injected_rows, columns=["table", "row", "column", "rule", "note"])
    injected = injected.sort_values(["table", "row", "column"], kind="stable").reset_index(drop=True)
    return final, injected


