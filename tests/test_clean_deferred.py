"""Cleaning takes the rows kept once: a step never sees (nor reports) a row an earlier step removed.

``Cleaning.pipe`` runs the steps that only remove rows, and those that read each row alone, on the table as it
is, with the rows still in play; these tests compare it with the steps applied one at a time, each on the
rows the previous one kept.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from alignment_research._arrow_text import duplicated_key, shared_text
from alignment_research.clean import (
    Cleaning,
    add_missing_columns,
    check_revision_dates,
    derive_stretch,
    drop_exact_duplicates,
    quarantine_conflicting_duplicates,
    quarantine_implausible_dates,
    quarantine_unknown_cycles,
    quarantine_unknown_references,
    require_fields,
)
from alignment_research.config import Cycle

CYCLES = [Cycle(name="2020", start=dt.date(2020, 1, 1), end=dt.date(2020, 12, 31))]


def _goals() -> pd.DataFrame:
    """Rows that interact across steps: what each step would find on a row an earlier step removed."""
    return pd.DataFrame(
        {
            "goal_id": ["G1", "G2", "G2", "G3", "G3", "G4", "G5", "G6", "G6", "G7"],
            "owner_id": ["E1", None, "E1", "E2", "E2", "E9", "E1", "E1", "E1", "E3"],
            "cycle": ["2020", "2020", "2020", "2020", "2020", "2020", "2019", "2020", "2020", "2020"],
            "revised_date": pd.to_datetime([None, "2019-06-01", None, None, None, "2021-03-01", None, None, None,
                                            "1800-01-01"]),
            "target": [1.0, 2.0, 2.0, 5.0, 5.0, 1.0, 1.0, 3.0, 4.0, 1.0],
            "baseline": [1.0, 0.0, 1.0, 2.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0],
        },
        index=pd.RangeIndex(2, 12, name="row"),
    )


def _steps():
    return [
        (require_fields, {"columns": ["goal_id", "owner_id"]}),
        (quarantine_implausible_dates, {"columns": ["revised_date"], "earliest": "1950-01-01",
                                        "latest": "2030-12-31"}),
        (quarantine_unknown_cycles, {"cycles": ["2020"]}),
        (check_revision_dates, {"cycles": CYCLES}),
        (derive_stretch, {}),
        (drop_exact_duplicates, {}),
        (quarantine_conflicting_duplicates, {"key": ["goal_id"]}),
        (quarantine_unknown_references, {"column": "owner_id", "known": pd.Series(["E1", "E2", "E3"]),
                                         "rule": "unknown_employee"}),
        (add_missing_columns, {"columns": {"set_with": "str"}}),
    ]


def _one_at_a_time(data: pd.DataFrame):
    """Each step on the rows the previous one kept (as each step's own ``StepResult``)."""
    issues, quarantines, history = [], [], []
    for func, kwargs in _steps():
        result = func(data, file="goals.csv", table="goals", **kwargs)
        issues.append(result.issues)
        if len(result.quarantine):
            quarantines.append(result.quarantine)
        history.append((func.__name__, len(data), len(result.data), len(result.quarantine), len(result.issues)))
        data = result.data
    return data, issues, quarantines, history


@pytest.mark.parametrize("shared", [False, True])
def test_pipe_equals_the_steps_one_at_a_time(shared):
    raw = _goals()
    with shared_text() if shared else _nothing_held():
        done = Cleaning(raw, file="goals.csv", table="goals")
        for func, kwargs in _steps():
            done = done.pipe(func, **kwargs)
        data, issues, quarantines, history = _one_at_a_time(raw)
        pd.testing.assert_frame_equal(done.data, data, check_exact=True)
    pd.testing.assert_frame_equal(done.issues, Cleaning(raw, _parts=(tuple(issues), (), ())).issues, check_exact=True)
    pd.testing.assert_frame_equal(done.quarantine, pd.concat(quarantines).sort_index(), check_exact=True)
    assert [tuple(r) for r in done.history.itertuples(index=False)] == history
    # what each step removed, and that a removed row is never reported again
    assert done.data.index.tolist() == [2, 4, 5]
    assert done.quarantine["rule"].to_dict() == {
        3: "missing_required",
        6: "duplicate_row",
        7: "unknown_employee",
        8: "unknown_cycle",
        9: "conflicting_duplicate",
        10: "conflicting_duplicate",
        11: "implausible_date",
    }
    # row 3 (gone first) revised before its cycle and has a zero baseline: neither is reported; and G2 does not
    # conflict, as its other row (3) is gone
    assert done.issues[["row", "rule"]].astype(object).values.tolist() == [
        [3, "missing_required"], [11, "implausible_date"], [8, "unknown_cycle"], [7, "revised_after_cycle"],
        [7, "zero_baseline"], [6, "duplicate_row"], [9, "conflicting_duplicate"], [10, "conflicting_duplicate"],
        [7, "unknown_employee"], [pd.NA, "absent_column"],
    ]
    assert done.history["rows_in"].tolist() == [10, 9, 8, 7, 7, 7, 6, 4, 3]


class _nothing_held:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_duplicates_count_only_the_rows_in_play():
    raw = pd.DataFrame({"goal_id": ["G1", "G1", "G2"], "weight": [1.0, 1.0, 2.0]}, index=[2, 3, 4])
    gone = Cleaning(raw, table="goals").pipe(quarantine_unknown_references, column="goal_id", known=["G2"])
    # row 2 is gone, so row 3 is no copy of it, and G1 no longer conflicts
    done = gone.pipe(drop_exact_duplicates).pipe(quarantine_conflicting_duplicates, key=["goal_id"])
    assert done.quarantine.index.tolist() == [2, 3]
    assert done.data.index.tolist() == [4]
    assert done.history["rows_quarantined"].tolist() == [2, 0, 0]
    assert duplicated_key(raw, ["goal_id"], rows=[1, 2]).tolist() == [False, False]
    assert duplicated_key(raw, ["goal_id"], rows=[0, 1]).tolist() == [True, True]


def test_a_step_that_needs_the_table_gets_only_the_rows_kept():
    raw = pd.DataFrame({"goal_id": ["G1", None, "G3"]}, index=[2, 3, 4])
    seen = []

    def look(data):  # a step Cleaning knows nothing of: it gets the table itself
        seen.append(data.index.tolist())
        return drop_exact_duplicates(data)

    done = Cleaning(raw, table="goals").pipe(require_fields, columns=["goal_id"]).pipe(look)
    assert seen == [[2, 4]]
    assert done.data.index.tolist() == [2, 4]
    assert done.quarantine.index.tolist() == [3]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_duplicates_match_pandas_when_keys_are_sorted_not_counted(seed):
    """Ids with many distinct values and dates make keys too many to count: they are sorted instead."""
    rng = np.random.default_rng(seed)
    n = 3000
    ids = np.array([f"E{i}" for i in range(400)], dtype=object)
    table = pd.DataFrame(
        {
            "employee_id": ids[rng.integers(0, 400, n)],
            "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
            "giver_id": ids[rng.integers(0, 400, n)],
            "kind": np.array(["a", "b", None], dtype=object)[rng.integers(0, 3, n)],
        },
        index=pd.RangeIndex(2, n + 2, name="row"),
    )
    table.loc[table.index[::7], "date"] = pd.NaT
    copies = table.iloc[rng.integers(0, n, 200)].set_axis(pd.RangeIndex(n + 2, n + 202, name="row"))
    table = pd.concat([table, copies])
    expected = table.duplicated(keep="first")
    assert 200 <= expected.sum() < 300  # the copies, and the few rows equal by chance
    for held in (False, True):
        with shared_text() if held else _nothing_held():
            done = drop_exact_duplicates(table)
        assert done.quarantine.index.tolist() == table.index[expected].tolist()
        first = table.reset_index().groupby(list(table.columns), dropna=False)["row"].transform("first")
        assert done.issues["value"].tolist() == [f"duplicate of row {r}" for r in first[expected.to_numpy()]]
