"""The cleaned-study cache: exact round trip, reuse only when every input is unchanged."""

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.cache import MANIFEST_NAME


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)
    return folder


@pytest.fixture(scope="module")
def cached(small_study, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    fresh = ar.open_clean(small_study, cache_dir=cache)
    return fresh, cache


def _nan_for_none(frame):
    return frame.assign(**{c: frame[c].where(frame[c].notna(), np.nan) for c in frame.columns if frame[c].dtype == object})


def _all_frames(clean):
    frames = {f"tables/{k}": v for k, v in clean.tables.items()}
    frames |= {f"quarantine/{k}": v for k, v in clean.quarantine.items()}
    frames |= {"report": clean.report, "counts": clean.counts}
    frames |= {f"analysis/{f.name}": getattr(clean.analysis, f.name) for f in dataclasses.fields(clean.analysis)}
    return frames


def _missing_kinds(column: pd.Series) -> list[str]:
    return [type(v).__name__ for v in column.to_numpy(object) if not isinstance(v, str)]


def test_cache_reads_back_every_table_exactly(cached, small_study):
    fresh, cache = cached
    again = ar.cache.read_clean_cache(cache, small_study)
    want, got = _all_frames(fresh), _all_frames(again)
    assert sorted(want) == sorted(got)
    nones = 0
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
        for column in want[name].columns:  # missing text comes back as cleaning left it: None or NaN
            assert _missing_kinds(got[name][column]) == _missing_kinds(want[name][column]), (name, column)
            nones += _missing_kinds(want[name][column]).count("NoneType")
    assert nones > 0  # the report's column of a rule about a whole row (duplicate_row) is None
    assert again.config == fresh.config


def test_cached_text_is_one_object_per_distinct_text_with_the_dtypes_and_missing_kinds_of_pandas(cached, small_study):
    _, cache = cached
    got = _all_frames(ar.cache.read_clean_cache(cache, small_study))
    manifest = json.loads((cache / MANIFEST_NAME).read_text())
    texts = 0
    for name, rel in manifest["frames"].items():
        as_pandas = pd.read_parquet(cache / rel)  # a new object per row; missing text None in object columns
        pd.testing.assert_frame_equal(got[name], _nan_for_none(as_pandas), check_exact=True, obj=name)
        keep_none = manifest["none_columns"].get(name, [])  # columns whose missing cells were all None
        for column in as_pandas.columns:
            if as_pandas[column].dtype == object or isinstance(as_pandas[column].dtype, pd.StringDtype):
                assert got[name][column].dtype == as_pandas[column].dtype, (name, column)
                kinds = [kind if kind != "NoneType" or column in keep_none else "float"
                         for kind in _missing_kinds(as_pandas[column])]
                assert _missing_kinds(got[name][column]) == kinds, (name, column)  # object: NaN; string: NA
                present = got[name][column].dropna()
                assert len({id(v) for v in present}) == present.nunique(), (name, column)
                texts += 1
    assert texts > 20
    ids = got["analysis/intervals"]["employee_id"]
    assert isinstance(ids.dtype, pd.StringDtype) and len({id(v) for v in ids}) == ids.nunique() < len(ids) / 5


def test_manifest_records_inputs_config_and_version(cached, small_study):
    _, cache = cached
    manifest = json.loads((cache / MANIFEST_NAME).read_text())
    assert manifest["version"] == ar.__version__
    assert set(manifest["files"]) == {p.name for p in small_study.iterdir() if p.name != "study.yaml"}
    assert len(manifest["config_sha256"]) == 64
    assert manifest["pseudonyms"] is None


def test_unchanged_inputs_reuse_the_cache(cached, small_study):
    _, cache = cached
    said = []
    clean = ar.open_clean(small_study, cache_dir=cache, progress=said.append)
    assert said == ["reusing the cleaned tables (inputs unchanged)"]
    assert len(clean.analysis.person) > 0


def test_a_changed_input_file_cleans_again(small_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(small_study, study)
    cache = tmp_path / "cache"
    first = ar.open_clean(study, cache_dir=cache)
    employees = (study / "employees.csv").read_text().splitlines()
    (study / "employees.csv").write_text("\n".join(employees[:-1]) + "\n")  # one spell fewer
    said = []
    second = ar.open_clean(study, cache_dir=cache, progress=said.append)
    assert said == ["cleaning"]
    assert second.counts.set_index("table").loc["employees", "rows_in"] == \
        first.counts.set_index("table").loc["employees", "rows_in"] - 1
    # and the rewritten cache is current again
    said.clear()
    ar.open_clean(study, cache_dir=cache, progress=said.append)
    assert said == ["reusing the cleaned tables (inputs unchanged)"]


def test_a_changed_pseudonym_key_cleans_again(small_study, tmp_path, monkeypatch):
    study = tmp_path / "study"
    shutil.copytree(small_study, study)
    (study / "study.yaml").write_text((study / "study.yaml").read_text() + "\npseudonymise: true\n")
    cache = tmp_path / "cache"
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "first key")
    first = ar.open_clean(study, cache_dir=cache)
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "second key")
    said = []
    second = ar.open_clean(study, cache_dir=cache, progress=said.append)
    assert said == ["cleaning"]
    assert set(first.tables["employees"]["employee_id"]).isdisjoint(second.tables["employees"]["employee_id"])
    manifest = (cache / MANIFEST_NAME).read_text()
    assert "second key" not in manifest and "first key" not in manifest


def test_reading_an_empty_folder_is_a_clear_error(tmp_path, small_study):
    with pytest.raises(ar.AlignmentResearchError, match="no cleaned-study cache"):
        ar.cache.read_clean_cache(tmp_path, small_study)


def _as_cached(problems: pd.DataFrame) -> pd.DataFrame:
    """Problems as a cache gives them back: a column of mixed values is stored as text (missing as it was)."""
    text = problems["value"].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
    return problems.assign(value=text if problems["value"].dtype == object else problems["value"])


def _assert_same_missing_kinds(got: pd.DataFrame, want: pd.DataFrame) -> None:
    for column in want.columns:
        assert _missing_kinds(got[column]) == _missing_kinds(want[column]), column


def _no_cleaning(*args, **kwargs):
    raise AssertionError("cleaned again")


def test_open_validated_reads_the_problems_run_stored_without_cleaning_again(small_study, tmp_path, monkeypatch):
    want_problems, want_clean = ar.validate_and_clean(ar.load_study(small_study))
    assert len(want_problems) > 0 and not want_problems["fatal"].any()
    cache = tmp_path / "cache"
    problems, clean = ar.open_validated(small_study, cache_dir=cache)  # validates, cleans and caches both
    pd.testing.assert_frame_equal(problems, want_problems)
    assert "problems" in json.loads((cache / MANIFEST_NAME).read_text())["frames"]
    monkeypatch.setattr(ar.clean, "validate_and_clean", _no_cleaning)
    monkeypatch.setattr(ar.clean, "_clean", _no_cleaning)
    problems, clean = ar.open_validated(small_study, cache_dir=cache)
    pd.testing.assert_frame_equal(problems, _as_cached(want_problems), check_exact=True)
    _assert_same_missing_kinds(problems, _as_cached(want_problems))
    pd.testing.assert_frame_equal(clean.counts, want_clean.counts)


def test_open_validated_on_a_cache_without_problems_validates_the_files_against_it(small_study, tmp_path, monkeypatch):
    want_problems, _ = ar.validate_and_clean(ar.load_study(small_study))
    cache = tmp_path / "cache"
    ar.open_clean(small_study, cache_dir=cache)  # a cache of the tables only
    assert "problems" not in json.loads((cache / MANIFEST_NAME).read_text())["frames"]
    monkeypatch.setattr(ar.clean, "_clean", _no_cleaning)
    problems, clean = ar.open_validated(small_study, cache_dir=cache)
    pd.testing.assert_frame_equal(problems, _as_cached(want_problems), check_exact=True)
    _assert_same_missing_kinds(problems, _as_cached(want_problems))
    assert clean is not None


def test_open_validated_without_a_cache_is_validate_and_clean(small_study):
    problems, clean = ar.open_validated(small_study)
    want_problems, want_clean = ar.validate_and_clean(ar.load_study(small_study))
    pd.testing.assert_frame_equal(problems, want_problems)
    pd.testing.assert_frame_equal(clean.counts, want_clean.counts)


def _open_when_both_are_ready(study, cache, barrier, said):
    barrier.wait()
    ar.open_clean(study, cache_dir=cache, progress=said.put)


def test_two_processes_opening_one_cold_cache_clean_once(small_study, tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the test's imports come along; the processes start together
    barrier, said = context.Barrier(2), context.Queue()
    cache = tmp_path / "cache"
    workers = [context.Process(target=_open_when_both_are_ready, args=(small_study, cache, barrier, said))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        if worker.is_alive():  # stuck: end it, and fail below
            worker.terminate()
    assert [worker.exitcode for worker in workers] == [0, 0]
    lines = sorted(said.get(timeout=5) for _ in workers)
    assert lines == ["cleaning", "reusing the cleaned tables (inputs unchanged)"]  # the second waited, then read
    assert ar.cache.cache_is_current(cache, ar.cache.study_fingerprint(small_study))
