"""Results stored beside the cached tables: computed once, read back bit for bit, recomputed when anything changes."""

import dataclasses
import mmap
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.cache import RESULTS_FOLDER, stored_result

CALLS = []


@stored_result("count_rows")
def count_rows(clean, table="employees", *, scale=1.0, extra=None):
    """Rows of a table, times ``scale``; every computation is logged in CALLS."""
    CALLS.append((table, scale))
    return len(clean.tables[table]) * scale


@stored_result("warns_once")
def warns_once(clean):
    """Warn while computing, as a model does when it states a caveat."""
    CALLS.append("warns")
    warnings.warn("a caveat about this study", ar.StatisticalWarning, stacklevel=2)
    return 1


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)
    return folder


@pytest.fixture()
def study(small_study, tmp_path):
    """A private copy: tests below change its files."""
    folder = tmp_path / "study"
    shutil.copytree(small_study, folder)
    return folder


@pytest.fixture(scope="module")
def cleaned_cache(small_study, tmp_path_factory):
    """The study cleaned and cached once for the file, with no stored result."""
    cache = tmp_path_factory.mktemp("cleaned") / "cache"
    ar.open_clean(small_study, cache_dir=cache)
    return cache


@pytest.fixture()
def cache(cleaned_cache, tmp_path):
    """A private copy of the cache, current for ``small_study`` and ``study`` (the same files): each test stores its
    own results in it without cleaning the study again (about a second each)."""
    return Path(shutil.copytree(cleaned_cache, tmp_path / "cache"))


def _stored(cache):
    return sorted(p.name.split("-")[0] for p in (cache / RESULTS_FOLDER).glob("*.pickle"))


def test_a_result_is_computed_once_and_read_by_the_next_reader(study, cache):
    CALLS.clear()
    first = ar.open_clean(study, cache_dir=cache)  # a notebook (kernel) reads the cache
    n = len(first.tables["employees"])
    assert count_rows(first) == n
    again = ar.open_clean(study, cache_dir=cache)  # another notebook (kernel) reads the cache
    assert again is not first
    assert count_rows(again) == n
    assert count_rows(again, "employees", scale=1.0) == n  # the same arguments, spelt out
    assert CALLS == [("employees", 1.0)]
    assert _stored(cache) == ["count_rows"]


def test_other_arguments_are_computed_and_stored_apart(study, cache):
    clean = ar.open_clean(study, cache_dir=cache)
    n = len(clean.tables["employees"])
    CALLS.clear()
    assert count_rows(clean, scale=2.0) == 2 * n
    assert count_rows(clean, scale=1.0) == n
    assert count_rows(clean, scale=2.0) == 2 * n
    assert CALLS == [("employees", 2.0), ("employees", 1.0)]
    assert _stored(cache) == ["count_rows", "count_rows"]


def test_an_argument_that_cannot_be_keyed_is_never_stored(study, cache):
    clean = ar.open_clean(study, cache_dir=cache)
    CALLS.clear()
    count_rows(clean, extra={"timings": 1})
    count_rows(clean, extra={"timings": 1})
    assert len(CALLS) == 2
    assert not (cache / RESULTS_FOLDER).exists() or _stored(cache) == []


def test_without_a_cache_the_function_just_runs(study):
    clean = ar.open_clean(study)
    CALLS.clear()
    count_rows(clean)
    count_rows(clean)
    assert len(CALLS) == 2


def test_a_changed_input_file_computes_again(study, cache):
    count_rows(ar.open_clean(study, cache_dir=cache))
    employees = pd.read_csv(study / "employees.csv")
    employees.iloc[:-1].to_csv(study / "employees.csv", index=False)  # one employee fewer
    CALLS.clear()
    clean = ar.open_clean(study, cache_dir=cache)  # cleans again; the stored results are removed
    assert _stored(cache) == []
    assert count_rows(clean) == len(clean.tables["employees"])
    assert CALLS == [("employees", 1.0)]


def test_a_changed_config_computes_again(study, cache):
    count_rows(ar.open_clean(study, cache_dir=cache))
    config = study / "study.yaml"
    config.write_text(config.read_text() + "\n# a comment changes the file's hash\n")
    CALLS.clear()
    count_rows(ar.open_clean(study, cache_dir=cache))
    assert CALLS == [("employees", 1.0)]


def test_warnings_are_raised_again_on_every_read(study, cache):
    CALLS.clear()
    with pytest.warns(ar.StatisticalWarning, match="a caveat about this study"):
        assert warns_once(ar.open_clean(study, cache_dir=cache)) == 1
    with pytest.warns(ar.StatisticalWarning, match="a caveat about this study"):
        assert warns_once(ar.open_clean(study, cache_dir=cache)) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the caller's filters decide: ignored here, so nothing is raised
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        assert warns_once(ar.open_clean(study, cache_dir=cache)) == 1
    assert CALLS == ["warns"]


def _assert_same_model(got, want):
    pd.testing.assert_frame_equal(got.tidy(), want.tidy(), check_exact=True)
    pd.testing.assert_frame_equal(got.glance(), want.glance(), check_exact=True)


def test_the_stored_primary_analysis_is_the_fitted_one_bit_for_bit(small_study, cache):
    clean = ar.cache.read_clean_cache(cache, small_study)  # as every notebook of a run reads it
    uncached = dataclasses.replace(clean)  # the same tables, not tied to the cache
    uncached.__dict__["analysis"] = clean.analysis
    fitted = ar.primary_analysis(uncached, warn=False)
    first = ar.primary_analysis(clean, warn=False)  # computes and stores
    stored = ar.primary_analysis(ar.cache.read_clean_cache(cache, small_study), warn=False)  # reads
    assert _stored(cache) == ["primary_analysis"]
    for got in (first, stored):
        for name in ("retention", "engagement"):
            _assert_same_model(getattr(got, name), getattr(fitted, name))
        pd.testing.assert_frame_equal(got.programme.tidy(), fitted.programme.tidy(), check_exact=True)
        pd.testing.assert_frame_equal(got.programme_engagement.tidy(), fitted.programme_engagement.tidy(),
                                      check_exact=True)
        pd.testing.assert_frame_equal(got.retention_data.data, fitted.retention_data.data, check_exact=True)
        assert str(ar.key_findings(got)) == str(ar.key_findings(fitted))
        # the design information (patsy's, pickled by its attributes) still predicts on new rows
        data = fitted.engagement_data.data
        pd.testing.assert_frame_equal(ar.predicted_values(got.engagement, data, x="alignment_cascade"),
                                      ar.predicted_values(fitted.engagement, data, x="alignment_cascade"),
                                      check_exact=True)


def test_the_stored_scorecard_is_the_computed_one_bit_for_bit(small_study, cache):
    fresh = ar.claims_scorecard(ar.open_clean(small_study), n_boot=20)  # no cache: computed here
    first = ar.claims_scorecard(ar.cache.read_clean_cache(cache, small_study), n_boot=20)
    stored = ar.claims_scorecard(ar.cache.read_clean_cache(cache, small_study), n_boot=20)
    # claim 4's programme effects (coaching, mentoring, training) are stored results of their own, read by
    # notebooks 07 and 08 too
    assert _stored(cache) == ["claims_scorecard"] + ["development_effect"] * 3
    pd.testing.assert_frame_equal(first, fresh, check_exact=True)
    pd.testing.assert_frame_equal(stored, fresh, check_exact=True)
    timings = {}
    ar.claims_scorecard(ar.cache.read_clean_cache(cache, small_study), n_boot=20, timings=timings)
    assert timings  # asked for its timings, it runs (and fills them) rather than reading a stored table


def test_the_stored_development_effect_is_the_estimated_one_bit_for_bit(small_study, cache):
    ask = dict(outcome="retention", warn=False)
    fresh = ar.estimate_development_effect(ar.open_clean(small_study), "mentoring", **ask)  # no cache: computed
    first = ar.estimate_development_effect(ar.cache.read_clean_cache(cache, small_study), "mentoring", **ask)
    # the brief's careers section spells the defaults out (alpha=0.05): the same key, read, not computed again
    stored = ar.estimate_development_effect(ar.cache.read_clean_cache(cache, small_study), "mentoring", alpha=0.05,
                                            **ask)
    assert _stored(cache) == ["development_effect"]
    for got in (first, stored):
        pd.testing.assert_frame_equal(got.tidy(), fresh.tidy(), check_exact=True)
        pd.testing.assert_frame_equal(got.glance(), fresh.glance(), check_exact=True)
        for name in ("trials", "balance", "outcome_data", "e_value"):
            pd.testing.assert_frame_equal(got.extras[name], fresh.extras[name], check_exact=True)
        assert got.caveats == fresh.caveats
    ar.estimate_development_effect(ar.cache.read_clean_cache(cache, small_study), "coaching", **ask)
    assert _stored(cache) == ["development_effect"] * 2  # another programme: another result


def test_a_study_whose_tables_changed_after_reading_is_not_the_cached_one(study, cache):
    clean = ar.open_clean(study, cache_dir=cache)
    count_rows(clean)
    CALLS.clear()
    clean.tables["employees"] = clean.tables["employees"].iloc[:10]  # a notebook narrows the study
    assert count_rows(clean) == 10
    assert count_rows(clean) == 10
    assert CALLS == [("employees", 1.0), ("employees", 1.0)]  # computed each time, never read nor stored
    assert _stored(cache) == ["count_rows"]


def test_a_read_only_cache_computes_without_storing(study, monkeypatch, cache):
    clean = ar.open_clean(study, cache_dir=cache)
    monkeypatch.setattr(ar.cache.os, "access", lambda path, mode: False)  # as a folder the user cannot write
    CALLS.clear()
    assert count_rows(clean, scale=3.0) == 3 * len(clean.tables["employees"])
    assert CALLS == [("employees", 3.0)]
    assert not (cache / RESULTS_FOLDER).exists()


@stored_result("text_frame")
def text_frame(clean):
    """A result holding repeated text as a model's data does: ids over many rows, each kind of missing value."""
    CALLS.append("text")
    n = 6000
    ids = [f"E{i % 300:04d}" for i in range(n)]
    with_none = pd.Series([None if i % 7 == 0 else s for i, s in enumerate(ids)], dtype=object)
    with_nan = pd.Series([float("nan") if i % 5 == 0 else s for i, s in enumerate(ids)], dtype=object)
    mixed = pd.Series([None if i == 1 else float("nan") if i == 2 else s for i, s in enumerate(ids)], dtype=object)
    return pd.DataFrame({
        "employee_id": ids, "manager_id": with_none, "department": with_nan, "mixed": mixed,
        "label": pd.array([None if i % 11 == 0 else s for i, s in enumerate(ids)], dtype="string"),
        "unique": [f"row {i}" for i in range(n)], "x": range(n),
        "pair": [(i % 3, "a") for i in range(n)], "cells": [[i % 2] for i in range(n)],  # sequences, one unhashable
    })


def _missing_kinds(column: pd.Series) -> list:
    return [type(v).__name__ for v in column.to_numpy(object) if not isinstance(v, str)]


def test_a_stored_result_keeps_its_text_and_each_missing_kind_and_shares_repeated_text(study, cache):
    CALLS.clear()
    computed = text_frame(ar.open_clean(study, cache_dir=cache))
    read = text_frame(ar.open_clean(study, cache_dir=cache))
    assert CALLS == ["text"]  # the second value was read from the cache
    pd.testing.assert_frame_equal(read, computed, check_exact=True)
    for column in computed.columns:
        assert _missing_kinds(read[column]) == _missing_kinds(computed[column]), column
    assert _missing_kinds(read["manager_id"]).count("NoneType") == 858
    assert _missing_kinds(read["mixed"]) == ["NoneType", "float"]
    # repeated text comes back as one object per distinct text (300 ids), not one per row (6,000)
    assert len({id(v) for v in read["employee_id"]}) == 300
    assert len({id(v) for v in read["label"].dropna()}) == 300
    assert len({id(v) for v in read["department"]}) == 241  # 240 ids (every fifth row is missing) and the NaN
    # columns of distinct text, or of None beside NaN, are stored cell by cell as before
    assert len({id(v) for v in read["unique"]}) == 6000
    assert len({id(v) for v in read["mixed"] if isinstance(v, str)}) == 5998
    assert read["pair"].iloc[4] == (1, "a") and read["cells"].iloc[3] == [1]  # cells holding sequences, as they were


@stored_result("big_arrays")
def big_arrays(clean):
    """A result with large arrays (kept apart from the pickle) and a small one (kept inside)."""
    CALLS.append("big")
    x = np.arange(200_000, dtype=float) / 7.0
    return {"x": x, "frame": pd.DataFrame({"a": x * 2.0, "b": np.arange(200_000)}), "small": np.arange(10.0)}


def _memory(array):
    """What an array's memory belongs to (past the arrays it is a view of)."""
    while isinstance(array, np.ndarray):
        array = array.base
    return array


def test_a_stored_results_large_arrays_are_mapped_copy_on_write(study, cache):
    CALLS.clear()
    computed = big_arrays(ar.open_clean(study, cache_dir=cache))
    read = big_arrays(ar.open_clean(study, cache_dir=cache))
    assert CALLS == ["big"]
    np.testing.assert_array_equal(read["x"], np.arange(200_000, dtype=float) / 7.0)
    pd.testing.assert_frame_equal(read["frame"], computed["frame"], check_exact=True)
    assert isinstance(_memory(read["x"]), memoryview) and isinstance(_memory(read["x"]).obj, mmap.mmap)  # the file
    assert read["x"].flags.writeable
    assert not isinstance(getattr(_memory(read["small"]), "obj", None), mmap.mmap)  # small arrays: in the pickle
    (stored,) = (cache / RESULTS_FOLDER).glob("big_arrays-*.pickle")
    assert stored.stat().st_size > 200_000 * 8 * 3  # the three large arrays, written whole
    read["x"][:] = -1.0  # an edit in place reaches neither the file nor the next reader
    again = big_arrays(ar.open_clean(study, cache_dir=cache))
    assert again["x"][1] == 1.0 / 7.0 and CALLS == ["big"]
    assert computed["x"][1] == 1.0 / 7.0  # the first caller's value is read from the file too


def test_storing_a_result_removes_the_results_of_other_code(study, cache):
    CALLS.clear()
    clean = ar.open_clean(study, cache_dir=cache)
    count_rows(clean)
    folder = cache / RESULTS_FOLDER
    stale = [folder / "count_rows-000000000000-0123456789abcdef01234567.pickle", folder / "old-name.pickle"]
    for path in stale:
        path.write_bytes(b"made by other code")
    stale[0].with_suffix(".lock").touch()
    count_rows(clean, "goals")  # a new result of this code
    assert not any(p.exists() for p in stale) and not stale[0].with_suffix(".lock").exists()
    assert _stored(cache) == ["count_rows", "count_rows"]
    count_rows(clean)  # still read, not computed
    assert CALLS == [("employees", 1.0), ("goals", 1.0)]
