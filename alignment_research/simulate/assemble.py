"""Assembly: turn the engine's integer tables into the canonical tables (typed, sorted, with ids).

Employees are numbered in order of first hire (a rehire keeps the number of
the first spell) and get zero-padded ids ``E000001``; goals are numbered in
order of cycle and goal number (``G0000001``). Rows are ordered by integer
keys (employee number, date, ...) before the id strings are built;
zero-padded ids sort the same way. The row index is set later (`finish_tables`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .days import cycle_years, to_dates
from .truth import Truth

__all__ = ["assemble_tables", "finish_tables"]


def _ids(prefix: str, keys: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded id strings: ``_ids("E", [1, 2], 6)`` -> ``E000001, E000002``."""
    return np.array([f"{prefix}{k:0{width}d}" for k in np.asarray(keys, dtype=np.int64).tolist()], dtype=object)


def _str_col(values) -> pd.Series:
    """An object column of strings with NaN (not None) for missing."""
    s = pd.Series(np.asarray(values, dtype=object), dtype=object)
    return s.where(s.notna(), np.nan)


def finish_tables(table: pd.DataFrame) -> pd.DataFrame:
    """Index a final table by source row number (the header is row 1).

    Parameters
    ----------
    table : pandas.DataFrame
        One of the simulated study's tables, in its final row order.

    Returns
    -------
    pandas.DataFrame
        The same rows and columns, indexed ``row`` = 2, 3, ... as a reader of
        the CSV file would count them.

    Examples
    --------
    >>> import pandas as pd
    >>> from alignment_research.simulate.assemble import finish_tables
    >>> finish_tables(pd.DataFrame({"x": [7, 8]}, index=[5, 1])).index.tolist()
    [2, 3]
    """
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(2, len(table) + 2, name="row")
    return table


def assemble_tables(sim: dict, truth: Truth):
    """Turn the engine's integer tables into the canonical tables, ``true_alignment`` and ``true_intervals``.

    Employees are numbered in order of first hire and get their ids here;
    day numbers become dates, cycle numbers cycle names.

    Parameters
    ----------
    sim : dict
        The engine's internal tables, as `run_engine` returns them.
    truth : Truth
        The true parameters of the run (its window gives the cycle names).

    Returns
    -------
    tables : dict of str to pandas.DataFrame
        ``employees, goals, reviews, surveys, programs, feedback`` and, with
        job history, ``job_history``, in the columns of the data contract (the row index is set later, by
        `finish_tables`).
    true_alignment : pandas.DataFrame
        ``employee_id, cycle, alignment_cascade, alignment_org``: the
        realised alignment of each person and cycle.
    true_intervals : pandas.DataFrame
        The exact hazard intervals of each spell in the window, led by
        ``employee_id`` and ``spell``.

    Examples
    --------
    >>> import numpy as np
    >>> import alignment_research as ar
    >>> from alignment_research.simulate.assemble import assemble_tables
    >>> from alignment_research.simulate.engine import run_engine
    >>> truth = ar.default_truth()
    >>> tables, true_alignment, true_intervals = assemble_tables(run_engine(50, truth, np.random.default_rng(0)), truth)
    >>> sorted(tables)
    ['employees', 'feedback', 'goals', 'job_history', 'programs', 'reviews', 'surveys']
    """
    cycle_names = np.array([str(y) for y in cycle_years(truth)], dtype=object)
    ids = _EmployeeIds(sim["spells"])
    employees, spell_number = _employees_table(sim["spells"], ids)
    tables = {
        "employees": employees,
        "goals": _goals_table(sim["goals"], ids, cycle_names),
        "reviews": _reviews_table(sim["reviews"], ids, cycle_names),
        "surveys": _surveys_table(sim["surveys"], ids),
        "programs": _programs_table(sim["programs"], ids),
        "feedback": _feedback_table(sim["feedback"], ids),
    }
    if sim.get("job_history") is not None:
        tables["job_history"] = _job_history_table(sim["job_history"], ids)
    true_alignment = _true_alignment_table(sim["true_alignment"], ids, cycle_names)
    return tables, true_alignment, _true_intervals_table(sim["true_intervals"], ids, spell_number)


class _EmployeeIds:
    """Employee numbers (1.. in order of first hire; 0 = nobody) of spells, and their ``E...`` ids."""

    def __init__(self, spells: pd.DataFrame):
        person = spells["person"].to_numpy()
        first_hire = pd.Series(spells["hire"].to_numpy()).groupby(person).min().sort_values(kind="stable")
        number_of_person = pd.Series(np.arange(1, len(first_hire) + 1), index=first_hire.index)
        width = max(6, len(str(len(first_hire))))
        spell_keys = spells["spell"].to_numpy()
        self.number_of_spell = np.zeros(int(spell_keys.max()) + 2 if len(spell_keys) else 1, np.int64)
        self.number_of_spell[spell_keys] = number_of_person.reindex(person).to_numpy()
        self.id_of_number = _ids("E", np.arange(len(first_hire) + 1), width)
        self.id_of_number[0] = np.nan

    def number(self, spell_keys) -> np.ndarray:
        """Employee number of each spell (0 for -1, "no spell")."""
        keys = np.asarray(spell_keys, np.int64)
        return np.where(keys < 0, 0, self.number_of_spell[np.maximum(keys, 0)])

    def id(self, numbers) -> np.ndarray:
        """Employee id of each employee number (NaN for 0)."""
        return self.id_of_number[np.asarray(numbers, np.int64)]


def _employees_table(spells: pd.DataFrame, ids: _EmployeeIds):
    """Employees, one row per spell sorted by employee and hire; and each spell's number (1 = first employment)."""
    hire = spells["hire"].to_numpy()
    number = ids.number(spells["spell"].to_numpy())
    order = np.lexsort((hire, number))
    by_employee = spells.iloc[order].reset_index(drop=True)
    number = number[order]
    employees = pd.DataFrame({
        "employee_id": ids.id(number),
        "hire_date": to_dates(by_employee["hire"]),
        "termination_date": to_dates(by_employee["term"]),
        "termination_type": _str_col(by_employee["term_type"]),
        "department": _str_col(by_employee["department"]),
        "job_level": pd.array(by_employee["job_level"].to_numpy(), dtype="Int64"),
        "manager_id": ids.id(ids.number(by_employee["manager"])),
        "location": _str_col(by_employee["location"]),
        "gender": _str_col(by_employee["gender"]),
        "birth_year": pd.array(by_employee["birth_year"].to_numpy(), dtype="Int64"),
        "_spell": by_employee["spell"].to_numpy(),
    })
    # spell number of each spell (1 = first employment, 2 = rehire)
    first_of = np.r_[True, number[1:] != number[:-1]] if len(number) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(first_of, np.arange(len(number)), 0)) if len(number) else number
    spell_number = np.zeros(len(ids.number_of_spell), np.int64)
    spell_number[by_employee["spell"].to_numpy()] = np.arange(len(number)) - run_start + 1
    return employees, spell_number


def _goals_table(goals: pd.DataFrame, ids: _EmployeeIds, cycle_names: np.ndarray) -> pd.DataFrame:
    """Goals sorted by cycle and goal number, numbered ``G...`` in that order; parents by id."""
    order = np.lexsort((goals["goal"].to_numpy(), goals["cycle"].to_numpy()))
    goals = goals.iloc[order].reset_index(drop=True)
    goal_number = np.zeros(int(goals["goal"].max()) + 1 if len(goals) else 1, np.int64)
    goal_number[goals["goal"].to_numpy()] = np.arange(1, len(goals) + 1)
    width = max(7, len(str(len(goals))))
    parent = goals["parent"].to_numpy()
    goal_ids = _ids("G", np.arange(len(goals) + 1), width)
    goal_ids[0] = np.nan
    table = {
        "goal_id": goal_ids[1:],
        "owner_id": ids.id(ids.number(goals["owner"])),
        "cycle": cycle_names[goals["cycle"].to_numpy()],
        "parent_goal_id": goal_ids[np.where(parent < 0, 0, goal_number[np.maximum(parent, 0)])],
        "weight": goals["weight"].to_numpy(float),
        "attainment": goals["attainment"].to_numpy(float),
    }
    if "difficulty" in goals:  # the practices' optional columns (see `practices`)
        table["difficulty"] = pd.array(goals["difficulty"].to_numpy(), dtype="Int64")
        table["set_with"] = goals["set_with"].to_numpy(object)
        table["revised_date"] = to_dates(goals["revised"].to_numpy())
    table["_spell"] = goals["owner"].to_numpy()
    return pd.DataFrame(table)


def _reviews_table(reviews: pd.DataFrame, ids: _EmployeeIds, cycle_names: np.ndarray) -> pd.DataFrame:
    """Reviews sorted by employee and cycle."""
    number = ids.number(reviews["spell"])
    order = np.lexsort((reviews["cycle"].to_numpy(), number))
    return pd.DataFrame({
        "employee_id": ids.id(number[order]),
        "cycle": cycle_names[reviews["cycle"].to_numpy()[order]],
        "rating": pd.array(reviews["rating"].to_numpy()[order], dtype="Int64"),
        "target_attainment": reviews["target_attainment"].to_numpy(float)[order],
        "_spell": reviews["spell"].to_numpy()[order],
    })


def _surveys_table(responses: pd.DataFrame, ids: _EmployeeIds) -> pd.DataFrame:
    """Survey responses sorted by date and employee; one column per item."""
    items = [c for c in responses.columns if c not in ("spell", "date")]
    number = ids.number(responses["spell"])
    order = np.lexsort((number, responses["date"].to_numpy()))
    surveys = pd.DataFrame({"employee_id": ids.id(number[order]),
                            "survey_date": to_dates(responses["date"].to_numpy()[order])})
    for c in items:
        surveys[c] = responses[c].to_numpy(float)[order]
    surveys["_spell"] = responses["spell"].to_numpy()[order]
    return surveys


def _programs_table(programs: pd.DataFrame, ids: _EmployeeIds) -> pd.DataFrame:
    """Programme enrolments sorted by start date, employee and programme."""
    number = ids.number(programs["spell"])
    program_code = pd.factorize(programs["program"], sort=True)[0]
    order = np.lexsort((program_code, number, programs["start"].to_numpy()))
    return pd.DataFrame({
        "employee_id": ids.id(number[order]),
        "program": _str_col(programs["program"].to_numpy()[order]),
        "start_date": to_dates(programs["start"].to_numpy()[order]),
        "end_date": to_dates(programs["end"].to_numpy()[order]),
        "status": _str_col(programs["status"].to_numpy()[order]),
        "_spell": programs["spell"].to_numpy()[order],
    })


def _feedback_table(feedback: pd.DataFrame, ids: _EmployeeIds) -> pd.DataFrame:
    """Feedback events sorted by date, employee and kind; givers by id."""
    number = ids.number(feedback["spell"])
    kind_code = pd.factorize(feedback["kind"], sort=True)[0]
    order = np.lexsort((kind_code, number, feedback["date"].to_numpy()))
    return pd.DataFrame({
        "employee_id": ids.id(number[order]),
        "date": to_dates(feedback["date"].to_numpy()[order]),
        "kind": _str_col(feedback["kind"].to_numpy()[order]),
        "giver_id": ids.id(ids.number(feedback["giver"].to_numpy()[order])),
        "_spell": feedback["spell"].to_numpy()[order],
    })


def _job_history_table(history: pd.DataFrame, ids: _EmployeeIds) -> pd.DataFrame:
    """Job history sorted by employee and effective date (a rehire's rows follow their first spell's)."""
    number = ids.number(history["spell"])
    order = np.lexsort((history["day"].to_numpy(), number))
    history = history.iloc[order].reset_index(drop=True)
    return pd.DataFrame({
        "employee_id": ids.id(number[order]),
        "effective_date": to_dates(history["day"]),
        "manager_id": ids.id(ids.number(history["manager"])),
        "department": _str_col(history["department"]),
        "job_level": pd.array(history["job_level"].to_numpy(), dtype="Int64"),
        "location": _str_col(history["location"]),
        "reason": _str_col(history["reason"]),
        "_spell": history["spell"].to_numpy(),
    })


def _true_alignment_table(true_alignment: pd.DataFrame, ids: _EmployeeIds, cycle_names: np.ndarray) -> pd.DataFrame:
    """Realised alignment sorted by employee and cycle."""
    number = ids.number(true_alignment["spell"])
    order = np.lexsort((true_alignment["cycle"].to_numpy(), number))
    return pd.DataFrame({
        "employee_id": ids.id(number[order]),
        "cycle": cycle_names[true_alignment["cycle"].to_numpy()[order]],
        "alignment_cascade": true_alignment["alignment_cascade"].to_numpy(float)[order],
        "alignment_org": true_alignment["alignment_org"].to_numpy(float)[order],
    })


def _true_intervals_table(intervals: pd.DataFrame, ids: _EmployeeIds, spell_number: np.ndarray) -> pd.DataFrame:
    """Hazard intervals sorted by employee, spell number and start; ids for employee and manager."""
    intervals = intervals.reset_index(drop=True)
    number = ids.number(intervals["spell"])
    spell_no = spell_number[intervals["spell"].to_numpy()]
    order = np.lexsort((intervals["start"].to_numpy(), spell_no, number))
    intervals = intervals.iloc[order].reset_index(drop=True)
    intervals.insert(0, "employee_id", ids.id(number[order]))
    intervals["manager_id"] = ids.id(ids.number(intervals.pop("manager")))
    intervals["spell"] = spell_no[order]
    lead = ["employee_id", "spell", "manager_id", "start", "stop", "event", "event_type"]
    return intervals[lead + [c for c in intervals.columns if c not in lead]]
