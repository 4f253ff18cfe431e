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
