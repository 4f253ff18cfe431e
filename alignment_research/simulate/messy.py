"""Messy data: inject realistic problems into the tables and log each one.

Every problem touches its own row (no row carries two problems), so each
logged row shows exactly one rule; ``rule`` is the cleaning rule id that
should catch it. Rows keep a position key ``_pos`` while problems are
injected: an added row (a duplicate) sits just after the row it copies, and
the log is translated to source row numbers (header = row 1) at the end.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .truth import Truth

__all__ = ["inject_problems"]

_TERMINATION_TEXT = {
    "voluntary": ["Resignation", "quit", "Voluntary ", "Resigned", "VOLUNTARY"],
    "involuntary": ["Dismissal", "Terminated", "Layoff", " involuntary"],
    "other": ["Retirement", "End of contract", "Other"],
}


def inject_problems(tables: dict[str, pd.DataFrame], truth: Truth, rng: np.random.Generator, n: int):
    """Inject a few dozen realistic problems; return the tables and the log of what was injected.

    ``k = max(1, round(n / 1000))`` sets the number of exact duplicates per
    table; the other problems occur once or a few times (about 30 rows for
    2,000 employees). The problems are drawn in a fixed order (the order of
    the calls below).

    Parameters
    ----------
    tables : dict of str to pandas.DataFrame
        The canonical tables (`assemble_tables`); not changed. With a
        ``job_history`` table, one problem of each history rule is added
        last (after every other draw).
    truth : Truth
        The true parameters.
    rng : numpy.random.Generator
        The run's generator.
    n : int
        Number of employees asked for.

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        The tables with the problems.
    injected : pandas.DataFrame
        One row per injected problem.

    Examples
    --------
    >>> import numpy as np
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.assemble import assemble_tables
    >>> from alignment_research.simulate.engine import run_engine
    >>> from alignment_research.simulate.messy import inject_problems
    >>> truth, rng = ar.default_truth(), np.random.default_rng(0)
    >>> tables, _, _ = assemble_tables(run_engine(300, truth, rng), truth)
    >>> messy, injected = inject_problems(tables, truth, rng, 300)
    >>> len(injected) > 0
    True
    """
    k = max(1, round(n / 1000))
    injector = _Injector(tables, rng)
    employees = injector.tables["employees"]
    managers = set(employees["manager_id"].dropna())
    leaf = (~employees["employee_id"].isin(managers) & employees["manager_id"].notna()).to_numpy()
    terminated = employees["termination_date"].notna().to_numpy()
    _inject_duplicates(injector, truth, leaf, k)
    _inject_wrong_values(injector, leaf, terminated)
    _inject_survey_problems(injector, truth, k)
    _inject_hand_typed(injector, k)
    if "job_history" in injector.tables:
        _inject_history_problems(injector, truth)
    return injector.finish()


class _Injector:
    """The tables being made messy, the rows already used, and the log of problems."""

    def __init__(self, tables: dict[str, pd.DataFrame], rng: np.random.Generator):
        self.rng = rng
        self.marks: list[tuple[str, float, str, str, str]] = []  # (table, position key, column, rule, note)
        self.tables, self.extra, self.used = {}, {}, {}
        for name, t in tables.items():
            t = t.reset_index(drop=True).copy()
            t["_pos"] = np.arange(len(t), dtype=float)
            self.tables[name], self.extra[name], self.used[name] = t, [], set()

    def choose(self, name: str, mask=None, size: int = 1) -> np.ndarray:
        """Up to ``size`` random unused rows of a table (within ``mask``), sorted; they become used."""
        t = self.tables[name]
        mask = np.ones(len(t), bool) if mask is None else np.asarray(mask, bool)
        candidates = np.flatnonzero(mask)
        if self.used[name]:
            candidates = candidates[~np.isin(candidates, np.fromiter(self.used[name], np.int64))]
        if len(candidates) == 0:
            return candidates
        chosen = np.sort(self.rng.choice(candidates, size=min(size, len(candidates)), replace=False))
        self.used[name].update(int(c) for c in chosen)
        return chosen

    def add_copy(self, name: str, i: int, rule: str, column: str = "", changes=None, note: str = "") -> None:
        """Add a copy of row ``i`` (with ``changes``) just after it, and log the copy."""
        t = self.tables[name]
        row = t.iloc[[i]].copy()
        row["_pos"] = t.at[i, "_pos"] + 0.5 + 1e-6 * len(self.marks)
        for c, v in (changes or {}).items():
            row[c] = v
        self.extra[name].append(row)
        self.marks.append((name, float(row["_pos"].iloc[0]), column, rule, note))

    def mark(self, name: str, i: int, column: str, rule: str, note: str = "") -> None:
        """Log a problem in row ``i``."""
        self.marks.append((name, float(self.tables[name].at[i, "_pos"]), column, rule, note))

    def finish(self):
        """The tables with the added rows in place (``_pos`` dropped), and the log by source row number."""
        injected_rows = []
        final = {}
        for name, t in self.tables.items():
            t = pd.concat([t, *self.extra[name]], ignore_index=True) if self.extra[name] else t
            t = t.sort_values("_pos", kind="stable").reset_index(drop=True)
            row_of = pd.Series(np.arange(2, len(t) + 2), index=t["_pos"].to_numpy())
            for table, pos, column, rule, note in self.marks:
                if table == name:
                    injected_rows.append((name, int(row_of[pos]), column, rule, note))
            final[name] = t.drop(columns=["_pos"])
        injected = pd.DataFrame(injected_rows, columns=["table", "row", "column", "rule", "note"])
        injected = injected.sort_values(["table", "row", "column"], kind="stable").reset_index(drop=True)
        return final, injected


def _inject_duplicates(injector: _Injector, truth: Truth, leaf: np.ndarray, k: int) -> None:
    """Exact duplicate rows (an export that repeats a line) and conflicting duplicates (same key, other value)."""
    employees, reviews = injector.tables["employees"], injector.tables["reviews"]
    for i in injector.choose("employees", leaf, k):
        injector.add_copy("employees", i, "duplicate_row")
    for name in ("goals", "surveys", "feedback"):
        for i in injector.choose(name, None, k):
            injector.add_copy(name, i, "duplicate_row")
    # conflicting duplicates: both rows are logged
    for i in injector.choose("employees", leaf):
        other = [d for d in truth.departments if d != employees.at[i, "department"]][0]
        injector.mark("employees", i, "department", "conflicting_duplicate")
        injector.add_copy("employees", i, "conflicting_duplicate", "department", {"department": other})
    for i in injector.choose("reviews"):
        rating = reviews.at[i, "rating"]
        injector.mark("reviews", i, "rating", "conflicting_duplicate")
        injector.add_copy("reviews", i, "conflicting_duplicate", "rating",
                          {"rating": pd.array([1 if rating != 1 else 2], dtype="Int64")})


def _inject_wrong_values(injector: _Injector, leaf: np.ndarray, terminated: np.ndarray) -> None:
    """A termination before the hire, implausible dates, missing required fields, an unknown manager."""
    employees, goals, feedback = injector.tables["employees"], injector.tables["goals"], injector.tables["feedback"]
    for i in injector.choose("employees", leaf & terminated):
        employees.at[i, "termination_date"] = employees.at[i, "hire_date"] - pd.Timedelta(days=30)
        injector.mark("employees", i, "termination_date", "termination_before_hire")
    for i in injector.choose("employees", leaf):
        employees.at[i, "hire_date"] = pd.Timestamp("1901-01-01")
        injector.mark("employees", i, "hire_date", "implausible_date")
    for i in injector.choose("feedback"):
        feedback.at[i, "date"] = pd.Timestamp("2099-06-01")
        injector.mark("feedback", i, "date", "implausible_date")
    for i in injector.choose("employees", leaf):
        employees.at[i, "hire_date"] = pd.NaT
        injector.mark("employees", i, "hire_date", "missing_required")
    for i in injector.choose("goals"):
        goals.at[i, "owner_id"] = np.nan
        injector.mark("goals", i, "owner_id", "missing_required")
    # a manager_id that is nobody's employee_id
    width = len(str(employees["employee_id"].iloc[0])) if len(employees) else 7
    for i in injector.choose("employees", leaf):
        employees.at[i, "manager_id"] = "E" + "9" * width
        injector.mark("employees", i, "manager_id", "unknown_manager")


def _inject_survey_problems(injector: _Injector, truth: Truth, k: int) -> None:
    """Out-of-range answers (0 or 9 on a 1-5 scale) and a survey answered a week after the termination."""
    employees, surveys, rng = injector.tables["employees"], injector.tables["surveys"], injector.rng
    item_columns = [c for c in surveys.columns if c not in ("employee_id", "survey_date", "_spell", "_pos")]
    for i in injector.choose("surveys", None, 3 * k):
        answered = [c for c in item_columns if not np.isnan(surveys.at[i, c])]
        column = answered[int(rng.integers(len(answered)))]
        surveys.at[i, column] = float(rng.choice([0.0, 9.0]))
        injector.mark("surveys", i, column, "out_of_range_answer")
    # of a spell no other problem touches
    touched = set(employees.loc[sorted(injector.used["employees"]), "_spell"])
    term_of = employees.drop_duplicates("_spell").set_index("_spell")["termination_date"]
    late = surveys["_spell"].map(term_of)
    end = pd.Timestamp(truth.window_end)
    ok = (late.notna() & (late + pd.Timedelta(days=7) <= end) & ~surveys["_spell"].isin(touched)).to_numpy()
    for i in injector.choose("surveys", ok):
        injector.add_copy("surveys", i, "survey_after_termination", "survey_date",
                          {"survey_date": late.iloc[i] + pd.Timedelta(days=7)})


def _inject_hand_typed(injector: _Injector, k: int) -> None:
    """Termination types typed by hand, and Excel serial dates (in the CSV only: the table keeps the date)."""
    employees = injector.tables["employees"]
    typed = employees["termination_type"].notna().to_numpy()
    for i in injector.choose("employees", typed, max(2, round(0.03 * typed.sum()))):
        variants = _TERMINATION_TEXT[employees.at[i, "termination_type"]]
        employees.at[i, "termination_type"] = variants[int(injector.rng.integers(len(variants)))]
        injector.mark("employees", i, "termination_type", "noncanonical_category")
    for i in injector.choose("employees", None, k + 1):
        injector.mark("employees", i, "hire_date", "excel_serial_date",
                      "written as an Excel serial day number in employees.csv only")


def _inject_history_problems(injector: _Injector, truth: Truth) -> None:
    """One job-history row per history rule, in spells no employees problem touches."""
    employees, history = injector.tables["employees"], injector.tables["job_history"]
    touched = set(employees.loc[sorted(injector.used["employees"]), "_spell"])
    spell_rows = employees.drop_duplicates("_spell").set_index("_spell")
    hire, term = history["_spell"].map(spell_rows["hire_date"]), history["_spell"].map(spell_rows["termination_date"])
    free = ~history["_spell"].isin(touched).to_numpy()
    change = free & (history["reason"] != "hire").to_numpy()
    for i in injector.choose("job_history", change):
        history.at[i, "effective_date"] = hire.iloc[i] - pd.Timedelta(days=30)
        injector.mark("job_history", i, "effective_date", "history_before_hire")
    for i in injector.choose("job_history", change & term.notna().to_numpy()):
        injector.add_copy("job_history", i, "history_after_termination", "effective_date",
                          {"effective_date": term.iloc[i] + pd.Timedelta(days=20)})
    for i in injector.choose("job_history", change):
        other = [d for d in truth.departments if d != history.at[i, "department"]][0]
        injector.mark("job_history", i, "department", "history_same_day_conflict")
        injector.add_copy("job_history", i, "history_same_day_conflict", "department", {"department": other})
    width = len(str(employees["employee_id"].iloc[0])) - 1 if len(employees) else 6
    for i in injector.choose("job_history", change):
        history.at[i, "manager_id"] = "E" + "8" * width
        injector.mark("job_history", i, "manager_id", "history_unknown_manager")
    # a manager whose own employees row carries a problem may be quarantined, and then reads as unknown
    # (history_unknown_manager) rather than not employed: such managers are never chosen
    problem_ids = set(employees.loc[sorted(injector.used["employees"]), "employee_id"].astype(str))
    gone = employees.dropna(subset=["termination_date"]).sort_values("termination_date")
    gone = gone[~gone["employee_id"].astype(str).isin(problem_ids)]
    for i in injector.choose("job_history", change & (history["effective_date"] > gone["termination_date"].min()
                                                      + pd.Timedelta(days=1)).to_numpy()):
        left = gone[(gone["termination_date"] < history.at[i, "effective_date"])
                    & ~gone["employee_id"].isin(employees.loc[employees["termination_date"].isna()
                                                              | (employees["termination_date"]
                                                                 >= history.at[i, "effective_date"]), "employee_id"])]
        if len(left):
            history.at[i, "manager_id"] = left["employee_id"].iloc[0]
            injector.mark("job_history", i, "manager_id", "history_manager_not_employed")
    for i in injector.choose("job_history", free & (history["reason"] == "promotion").to_numpy()):
        history.at[i, "reason"] = np.nan
        injector.mark("job_history", i, "reason", "history_level_change_without_reason")
    for i in injector.choose("job_history", free & (history["reason"] == "hire").to_numpy()):
        other = [d for d in truth.departments if d != history.at[i, "department"]][0]
        history.at[i, "department"] = other
        injector.mark("job_history", i, "department", "history_disagrees_at_hire")
