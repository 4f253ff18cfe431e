"""Turn the engine's integer arrays into the six canonical tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .days import _cycle_years, _dates
from .truth import Truth


def _ids(prefix: str, keys: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{k:0{width}d}" for k in np.asarray(keys, dtype=np.int64).tolist()], dtype=object)


def _str_col(values) -> pd.Series:
    s = pd.Series(np.asarray(values, dtype=object), dtype=object)
    return s.where(s.notna(), np.nan)


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(2, len(table) + 2, name="row")
    return table



def _assemble(sim: dict, truth: Truth):
    """Turn the engine's integer arrays into the six canonical tables (typed, sorted, unnumbered).

    Rows are ordered by integer keys (employee number, date, ...) before the id
    strings are built; zero-padded ids sort the same way.
    """
    spells = sim["spells"]
    cyc_names = np.array([str(y) for y in _cycle_years(truth)], dtype=object)
    # employee numbers in order of first hire (a rehire keeps the number of the first spell)
    person = spells["person"].to_numpy()
    hire = spells["hire"].to_numpy()
    first_hire = pd.Series(hire).groupby(person).min().sort_values(kind="stable")
    number_of_person = pd.Series(np.arange(1, len(first_hire) + 1), index=first_hire.index)
    width = max(6, len(str(len(first_hire))))
    spell_keys = spells["spell"].to_numpy()
    lookup = np.zeros(int(spell_keys.max()) + 2 if len(spell_keys) else 1, np.int64)  # spell -> employee number
    lookup[spell_keys] = number_of_person.reindex(person).to_numpy()

    def num(spell_keys) -> np.ndarray:
        keys = np.asarray(spell_keys, np.int64)
        return np.where(keys < 0, 0, lookup[np.maximum(keys, 0)])

    id_of_number = _ids("E", np.arange(len(first_hire) + 1), width)
    id_of_number[0] = np.nan

    def sid(numbers) -> np.ndarray:
        return id_of_number[np.asarray(numbers, np.int64)]

    e_num = num(spell_keys)
    order = np.lexsort((hire, e_num))
    sp = spells.iloc[order].reset_index(drop=True)
    e_num = e_num[order]
    emp = pd.DataFrame({
        "employee_id": sid(e_num),
        "hire_date": _dates(sp["hire"]),
        "termination_date": _dates(sp["term"]),
        "termination_type": _str_col(sp["term_type"]),
        "department": _str_col(sp["department"]),
        "job_level": pd.array(sp["job_level"].to_numpy(), dtype="Int64"),
        "manager_id": sid(num(sp["manager"])),
        "location": _str_col(sp["location"]),
        "gender": _str_col(sp["gender"]),
        "birth_year": pd.array(sp["birth_year"].to_numpy(), dtype="Int64"),
        "_spell": sp["spell"].to_numpy(),
    })
    # spell number of each spell (1 = first employment, 2 = rehire)
    first_of = np.r_[True, e_num[1:] != e_num[:-1]] if len(e_num) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(first_of, np.arange(len(e_num)), 0)) if len(e_num) else e_num
    spell_no = np.zeros(len(lookup), np.int64)
    spell_no[sp["spell"].to_numpy()] = np.arange(len(e_num)) - run_start + 1

    goals = sim["goals"]
    gorder = np.lexsort((goals["goal"].to_numpy(), goals["cycle"].to_numpy()))
    goals = goals.iloc[gorder].reset_index(drop=True)
    gnum = np.zeros(int(goals["goal"].max()) + 1 if len(goals) else 1, np.int64)
    gnum[goals["goal"].to_numpy()] = np.arange(1, len(goals) + 1)
    gwidth = max(7, len(str(len(goals))))
    parent = goals["parent"].to_numpy()
    goal_ids = _ids("G", np.arange(len(goals) + 1), gwidth)
    goal_ids[0] = np.nan
    parent_id = goal_ids[np.where(parent < 0, 0, gnum[np.maximum(parent, 0)])]
    gl = pd.DataFrame({
        "goal_id": goal_ids[1:],
        "owner_id": sid(num(goals["owner"])),
        "cycle": cyc_names[goals["cycle"].to_numpy()],
        "parent_goal_id": parent_id,
        "weight": goals["weight"].to_numpy(float),
        "attainment": goals["attainment"].to_numpy(float),
        "_spell": goals["owner"].to_numpy(),
    })

    rv = sim["reviews"]
    rn = num(rv["spell"])
    o = np.lexsort((rv["cycle"].to_numpy(), rn))
    reviews = pd.DataFrame({
        "employee_id": sid(rn[o]),
        "cycle": cyc_names[rv["cycle"].to_numpy()[o]],
        "rating": pd.array(rv["rating"].to_numpy()[o], dtype="Int64"),
        "target_attainment": rv["target_attainment"].to_numpy(float)[o],
        "_spell": rv["spell"].to_numpy()[o],
    })

    sv = sim["surveys"]
    items = [c for c in sv.columns if c not in ("spell", "date")]
    sn = num(sv["spell"])
    o = np.lexsort((sn, sv["date"].to_numpy()))
    surveys = pd.DataFrame({"employee_id": sid(sn[o]), "survey_date": _dates(sv["date"].to_numpy()[o])})
    for c in items:
        surveys[c] = sv[c].to_numpy(float)[o]
    surveys["_spell"] = sv["spell"].to_numpy()[o]

    pg = sim["programs"]
    pn = num(pg["spell"])
    prog_code = pd.factorize(pg["program"], sort=True)[0]
    o = np.lexsort((prog_code, pn, pg["start"].to_numpy()))
    programs = pd.DataFrame({
        "employee_id": sid(pn[o]),
        "program": _str_col(pg["program"].to_numpy()[o]),
        "start_date": _dates(pg["start"].to_numpy()[o]),
        "end_date": _dates(pg["end"].to_numpy()[o]),
        "status": _str_col(pg["status"].to_numpy()[o]),
        "_spell": pg["spell"].to_numpy()[o],
    })

    fb = sim["feedback"]
    fn = num(fb["spell"])
    kind_code = pd.factorize(fb["kind"], sort=True)[0]
    o = np.lexsort((kind_code, fn, fb["date"].to_numpy()))
    feedback = pd.DataFrame({
        "employee_id": sid(fn[o]),
        "date": _dates(fb["date"].to_numpy()[o]),
        "kind": _str_col(fb["kind"].to_numpy()[o]),
        "giver_id": sid(num(fb["giver"].to_numpy()[o])),
        "_spell": fb["spell"].to_numpy()[o],
    })

    ta = sim["true_alignment"]
    tn = num(ta["spell"])
    o = np.lexsort((ta["cycle"].to_numpy(), tn))
    true_alignment = pd.DataFrame({
        "employee_id": sid(tn[o]),
        "cycle": cyc_names[ta["cycle"].to_numpy()[o]],
        "alignment_cascade": ta["alignment_cascade"].to_numpy(float)[o],
        "alignment_org": ta["alignment_org"].to_numpy(float)[o],
    })

    ti = sim["true_intervals"].reset_index(drop=True)
    inum = num(ti["spell"])
    ino = spell_no[ti["spell"].to_numpy()]
    o = np.lexsort((ti["start"].to_numpy(), ino, inum))
    ti = ti.iloc[o].reset_index(drop=True)
    ti.insert(0, "employee_id", sid(inum[o]))
    ti["manager_id"] = sid(num(ti.pop("manager")))
    ti["spell"] = ino[o]
    lead = ["employee_id", "spell", "manager_id", "start", "stop", "event", "event_type"]
    ti = ti[lead + [c for c in ti.columns if c not in lead]]

    tables = {"employees": emp, "goals": gl, "reviews": reviews, "surveys": surveys, "programs": programs, "feedback": feedback}
    return tables, true_alignment, ti


