"""Spell helpers: index_of gives what Index.get_indexer gives."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alignment_research.spells import index_of, locate_pairs, stable_argsort


def test_index_of_matches_get_indexer_on_text_with_gaps_and_absent_values():
    uniques = np.array(["E2", "E10", "E1", "5"], dtype=object)
    values = pd.array(["E1", None, "E10", "E3", "E2", "E1", "5"], dtype="string")
    got = index_of(values, uniques)
    assert got.tolist() == [2, -1, 1, -1, 0, 2, 3]
    assert got.tolist() == pd.Index(uniques).get_indexer(np.asarray(values, dtype=object)).tolist()
    assert got.dtype == np.int64


def test_index_of_with_nothing_to_find_in_or_to_look_up():
    assert index_of(np.array(["a", "b"], dtype=object), np.array([], dtype=object)).tolist() == [-1, -1]
    assert index_of(np.array([], dtype=object), np.array(["a"], dtype=object)).tolist() == []


def test_locate_pairs_reads_string_columns_as_they_are():
    left_a = pd.Series(["E1", "E2", None], dtype="string")
    got = locate_pairs(left_a, pd.Series(["2024", "2024", "2024"]), pd.Series(["E2", "E1"], dtype="string"),
                       ["2024", "2024"])
    assert got.tolist() == [1, 0, -1]


def test_index_of_with_many_repeats_missing_values_and_numbers():
    uniques = np.array(["a", "b", "1"], dtype=object)
    values = np.array(["b", "a", None, "b", 1, "1", np.nan, "c", "a"] * 3, dtype=object)
    want = pd.Index(uniques).get_indexer(values)
    want[pd.isna(values)] = -1
    assert index_of(values, uniques).tolist() == want.tolist() == [1, 0, -1, 1, -1, 2, -1, -1, 0] * 3


def test_stable_argsort_keeps_equal_keys_in_order():
    rng = np.random.default_rng(3)
    for keys in (rng.integers(-5, 5, 1000), rng.integers(0, 3, 7).astype(np.uint8),
                 rng.integers(-2**62, 2**62, 500),  # too wide for key * n + position: the stable sort itself
                 np.array([7]), np.array([], dtype=np.int64)):
        assert stable_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()
    assert stable_argsort(np.array([3, 1, 3, 1, 2])).tolist() == [1, 3, 4, 0, 2]


def test_assign_spell_matches_the_as_of_merge_with_rehires_ties_and_unknown_ids():
    # one spell for most employees (found without a search), two or three for some (a sorted search), a rehire
    # hired on the day the first spell ended, dates before hire, after termination, missing, and unknown ids
    from alignment_research.spells import _assign_spell_asof, assign_spell

    rng = np.random.default_rng(7)
    ids = [f"E{i}" for i in range(40)]
    rows = []
    for i, e in enumerate(ids):
        hire = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 400)))
        for _ in range(1 + (i % 7 == 0) + (i % 13 == 0)):
            term = hire + pd.Timedelta(days=int(rng.integers(30, 300))) if rng.random() < 0.7 else pd.NaT
            rows.append((e, hire, term))
            if pd.isna(term):
                break
            hire = term + pd.Timedelta(days=int(rng.integers(0, 3)))
    spells = pd.DataFrame(rows, columns=["employee_id", "hire_date", "termination_date"])
    n = 2000
    data = pd.DataFrame({
        "employee_id": rng.choice(ids + ["X1", None], n),
        "d": pd.Timestamp("2019-10-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
    })
    data.loc[rng.random(n) < 0.05, "d"] = pd.NaT
    got = assign_spell(data, spells, "d")["_sid"].to_numpy()
    want = _assign_spell_asof(data, spells, "d")["_sid"].to_numpy()
    assert (spells.groupby("employee_id").size() > 1).sum() >= 5  # rehires present
    assert got.tolist() == want.tolist()
    assert (got >= 0).sum() > 500 and (got == -1).sum() > 200
    # dates at times of day (keys from ranks, not day numbers): still the as-of match
    timed = data.assign(d=data["d"] + pd.Timedelta(hours=7))
    assert (assign_spell(timed, spells, "d")["_sid"].to_numpy().tolist()
            == _assign_spell_asof(timed, spells, "d")["_sid"].to_numpy().tolist())


def test_spell_of_gives_assign_spells_positions_from_two_arrays():
    from alignment_research.spells import assign_spell, spell_of

    spells = pd.DataFrame({"employee_id": ["E1", "E1", "E2"],
                           "hire_date": pd.to_datetime(["2023-01-01", "2024-01-01", "2023-05-01"]),
                           "termination_date": pd.to_datetime(["2023-06-30", None, None])})
    ids = np.array(["E1", "E1", "E2", "E2", None, "E3", "E1"], dtype=object)
    dates = pd.to_datetime(["2023-03-01", "2023-09-01", "2023-04-30", "2023-05-01", "2024-01-01", "2024-01-01",
                            None])
    got = spell_of(ids, dates, spells)
    assert got.tolist() == [0, -1, -1, 2, -1, -1, -1]
    frame = pd.DataFrame({"employee_id": ids, "d": dates})
    assert assign_spell(frame, spells, "d")["_sid"].tolist() == got.tolist()
    # a spell without an id: the as-of merge (which pairs the missing ids), as assign_spell gives it
    gappy = pd.concat([spells, pd.DataFrame({"employee_id": [None], "hire_date": pd.to_datetime(["2020-01-01"])})],
                      ignore_index=True)
    assert spell_of(ids, dates, gappy).tolist() == assign_spell(frame, gappy, "d")["_sid"].tolist()
    assert spell_of(ids, dates, gappy).tolist()[:4] == [0, -1, -1, 2]
