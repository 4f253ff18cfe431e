"""Clean once, read many times: a cleaned study cached as Parquet with a manifest of its inputs."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import hmac
import importlib
import inspect
import io
import json
import os
import pickle
import shutil
import sys
import types
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import load_config
from .errors import AlignmentResearchError
from .load import load_study
from .study import CleanStudy

__all__ = ["open_clean", "open_validated", "write_clean_cache", "read_clean_cache", "study_fingerprint", "cache_is_current",
           "cache_lock", "stored_result", "has_stored_results", "MANIFEST_NAME", "RESULTS_FOLDER", "LOCK_NAME"]

#: File in a cache folder that records what the cached tables were made from.
MANIFEST_NAME = "manifest.json"

#: Bump when the cache layout changes; older caches are then rebuilt.
_LAYOUT = 3


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def study_fingerprint(study_dir: str | Path) -> dict:
    """Describe a study folder's inputs so a cache can tell whether it is current.

    Parameters
    ----------
    study_dir : str or Path
        The study folder (with ``study.yaml``).

    Returns
    -------
    dict
        ``layout`` (cache format), ``version`` (toolkit version),
        ``config_sha256`` (of ``study.yaml``) and ``files`` (file name to the
        SHA-256 of its bytes, for every file in the folder but ``study.yaml``
        and every file ``study.yaml`` names) and ``pseudonyms`` (a keyed check
        of the pseudonymisation key, so a cache is never reused under another
        key; ``None`` when pseudonymisation is off). Studies read from a SQL database cannot be fingerprinted from files,
        so their ``files`` entry is ``None`` and they are never reused.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.cache.study_fingerprint("data/sample")["files"]["employees.csv"]  # doctest: +SKIP
    '3f1c...'
    """
    folder = Path(study_dir)
    config_path = folder / "study.yaml"
    config = load_config(config_path)
    files = None
    if config.database is None:
        paths = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "study.yaml"}
        # files named in study.yaml may live elsewhere when the study allows it: hash them too
        paths |= {name: folder / name for name in config.files.values() if (folder / name).is_file()}
        files = {name: _sha256(path) for name, path in sorted(paths.items())}
    pseudonyms = None
    if config.pseudonymise:  # tables cached under one key must not be reused under another
        key = os.environ.get(config.pseudonym_key_env, "").encode()
        pseudonyms = hmac.new(key, b"alignment-research cache", hashlib.sha256).hexdigest()
    return {"layout": _LAYOUT, "version": __version__, "config_sha256": _sha256(config_path), "files": files,
            "pseudonyms": pseudonyms}


#: The frame of a cache holding the study's validation problems (:func:`open_validated`).
_PROBLEMS = "problems"


def _frames(clean) -> dict[str, pd.DataFrame]:
    frames = {f"tables/{name}": frame for name, frame in clean.tables.items()}
    frames |= {f"quarantine/{name}": frame for name, frame in clean.quarantine.items()}
    frames |= {"report": clean.report, "counts": clean.counts}
    analysis = clean.analysis
    frames |= {f"analysis/{f.name}": getattr(analysis, f.name) for f in dataclasses.fields(analysis)}
    return frames


def _write_frame(frame: pd.DataFrame, path: Path) -> list[str]:
    """Write one frame; mixed-type text columns are stored as text and named in the return."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        frame.to_parquet(path, index=True)
        return []
    except (TypeError, ValueError, ImportError) as error:  # pyarrow refuses mixed object columns
        mixed = [
            c for c in frame.columns
            if frame[c].dtype == object and pd.api.types.infer_dtype(frame[c], skipna=True) not in ("string", "empty")
        ]
        if not mixed:
            raise AlignmentResearchError(f"cannot cache {path.name}: {error}") from error
        as_text = {c: frame[c].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
                   for c in mixed}
        frame.assign(**as_text).to_parquet(path, index=True)
        return [str(c) for c in mixed]


def write_clean_cache(clean, cache_dir: str | Path, fingerprint: dict, *, problems: pd.DataFrame | None = None) -> Path:
    """Write a cleaned study, its analysis tables and a manifest to ``cache_dir``.

    Parameters
    ----------
    clean : CleanStudy
        From :func:`clean_study`; its analysis tables are built if they were not.
    cache_dir : str or Path
        Folder to write (created; previous contents are replaced).
    fingerprint : dict
        From :func:`study_fingerprint`, stored as the manifest.
    problems : DataFrame, optional
        The study's validation problems (from
        :func:`~alignment_research.validate_and_clean`), stored beside the
        tables for :func:`open_validated`.

    Returns
    -------
    Path
        The manifest's path.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.load_study("data/sample"))  # doctest: +SKIP
    >>> ar.cache.write_clean_cache(clean, "reports/cache", ar.cache.study_fingerprint("data/sample"))  # doctest: +SKIP
    """
    folder = Path(cache_dir)
    manifest_path = folder / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)  # an interrupted write never looks current
    shutil.rmtree(folder / RESULTS_FOLDER, ignore_errors=True)  # results of the previous tables are stale
    text_columns = {}
    none_columns = {}
    names = {}
    frames = _frames(clean) | ({_PROBLEMS: problems} if problems is not None else {})
    for name, frame in frames.items():
        path = folder / f"{name}.parquet"
        mixed = _write_frame(frame, path)
        names[name] = path.relative_to(folder).as_posix()
        if mixed:
            text_columns[name] = mixed
        if none := _none_columns(frame):
            none_columns[name] = none
    manifest = dict(fingerprint, frames=names, text_columns=text_columns, none_columns=none_columns)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    _remember_folder(clean, folder)  # results computed from these tables are stored beside them
    return manifest_path


def _none_columns(frame: pd.DataFrame) -> list[str]:
    """The ``object`` columns whose missing cells are all None (Parquet keeps None and NaN alike as null)."""
    found = []
    for label in frame.columns:
        column = frame[label]
        if column.dtype == object:
            values = column.to_numpy()
            missing = values[pd.isna(values)]
            if len(missing) and all(value is None for value in missing):
                found.append(str(label))
    return found


def _read_frame(path: Path, none_columns=()) -> pd.DataFrame:
    """Read one cached frame; each distinct text of a column is one Python object, as in the study it came from.

    Parquet stores a text column as a dictionary of its distinct texts and a
    code per row, but pandas makes a new ``str`` for every row: 321,136 objects
    for the 6 departments of a 20,000-employee study's intervals. Every later
    hash of the column (a group-by, a merge, a factorize, storing a result)
    then compares texts instead of pointers, about four times slower. So the
    text columns are read as their dictionaries and each row takes its
    distinct text's object. Missing text comes back as cleaning leaves it:
    ``pd.NA`` in a ``string`` column, NaN in an ``object`` column (Parquet
    gives None), except None in the ``object`` columns named in
    ``none_columns``, whose missing cells were all None when written (the
    cleaning report's ``column`` of a rule about a whole row, say).
    """
    import pyarrow as pa  # deferred: pyarrow is slow to import; only reading a cache needs it
    import pyarrow.parquet as pq  # deferred: pyarrow is slow to import; only reading a cache needs it

    schema = pq.read_schema(path)
    is_text = {f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)}
    meta = schema.pandas_metadata or {"columns": [], "index_columns": []}  # written by pandas: always there
    # the data columns stored as text (an index stored as text is read as pandas reads it), and their pandas type
    text = {c["field_name"]: c for c in meta["columns"]
            if c.get("field_name") in is_text and c["field_name"] not in meta["index_columns"]}
    frame = pq.read_table(path, read_dictionary=list(text)).to_pandas()
    read_as_text = set()
    for column in text.values():
        label = frame.columns[frame.columns.get_loc(column["name"])]
        values = np.asarray(frame[label].array, dtype=object)  # from a Categorical: each row its text's object
        # as pandas reads them: `string` stays `string` (missing: NA); any other text is `object` (missing: NaN)
        frame[label] = pd.array(values, dtype="string") if column["numpy_type"] == "string" else values
        read_as_text.add(label)
    # other object columns (all missing, say): Parquet gives None where cleaning left NaN
    fixes = {}
    for label in frame.columns:
        if frame[label].dtype != object or not frame[label].isna().any():
            continue
        if str(label) in none_columns:  # missing as None, as written
            values = np.asarray(frame[label], dtype=object).copy()
            values[pd.isna(values)] = None
            fixes[label] = values
        elif label not in read_as_text:
            fixes[label] = frame[label].where(frame[label].notna(), np.nan)
    return frame.assign(**fixes) if fixes else frame


#: The frames last read from a cache, kept for the next notebook in the same kernel: (folder, manifest text, frames).
_LAST_READ: list = []

#: Frames larger than this (in memory, text as pointers) are not kept between reads: a large study is read again
#: instead. A 20,000-employee study's frames take 259 MiB, and their text 33 MiB more (one object per distinct text),
#: read from Parquet in 1.4-2.0 s CPU and copied in 0.31-0.43 s (4 Dec 2026, three reads, a slow day); the limit
#: keeps studies up to about 40,000 employees in each kernel.
_KEEP_BYTES = 512 * 2**20


def _read_frames(folder: Path, manifest: dict, text: str) -> dict[str, pd.DataFrame]:
    """Read every frame of a cache; a second read of the same cache (same manifest) copies the first.

    ``run`` reuses each notebook kernel for several notebooks; the second one
    gets copies of the frames the first read, so nothing one notebook changes
    reaches another, without reading and decoding the Parquet files again.
    """
    key = (folder.resolve(), text)
    if _LAST_READ and _LAST_READ[0][:2] == key:
        return {name: frame.copy() for name, frame in _LAST_READ[0][2].items()}
    # the study's frames; the validation problems are read only by open_validated
    none = manifest.get("none_columns", {})
    frames = {name: _read_frame(folder / rel, none.get(name, ())) for name, rel in manifest["frames"].items()
              if name != _PROBLEMS}
    _LAST_READ.clear()
    if sum(int(f.memory_usage(index=True, deep=False).sum()) for f in frames.values()) <= _KEEP_BYTES:
        _LAST_READ.append((*key, {name: frame.copy() for name, frame in frames.items()}))
    return frames


def read_clean_cache(cache_dir: str | Path, study_dir: str | Path):
    """Read a cleaned study written by :func:`write_clean_cache`.

    Parameters
    ----------
    cache_dir : str or Path
        The cache folder.
    study_dir : str or Path
        The study folder, whose ``study.yaml`` gives the configuration.

    Returns
    -------
    CleanStudy
        With its analysis tables already in place.

    Raises
    ------
    AlignmentResearchError
        The folder holds no complete cache.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.cache.read_clean_cache("reports/cache", "data/sample")  # doctest: +SKIP
    """
    from .tables import AnalysisTables  # deferred: tables loads scipy and the measures; only reading a cache needs it

    folder = Path(cache_dir)
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise AlignmentResearchError(f"{folder}: no cleaned-study cache here (no {MANIFEST_NAME}).")
    text = manifest_path.read_text(encoding="utf-8")
    manifest = json.loads(text)
    frames = _read_frames(folder, manifest, text)

    def group(prefix: str) -> dict[str, pd.DataFrame]:
        return {name.split("/", 1)[1]: frame for name, frame in frames.items() if name.startswith(prefix + "/")}

    clean = CleanStudy(
        tables=group("tables"),
        report=frames["report"],
        quarantine=group("quarantine"),
        config=load_config(Path(study_dir) / "study.yaml"),
        counts=frames["counts"],
        path=Path(study_dir),
    )
    analysis = group("analysis")
    tables = AnalysisTables(**{f.name: analysis[f.name] for f in dataclasses.fields(AnalysisTables)})
    clean.__dict__["analysis"] = tables  # fills the cached property, as building it would
    _remember_folder(clean, folder)  # results computed from these tables are stored beside them
    return clean


def cache_is_current(cache_dir: str | Path, fingerprint: dict) -> bool:
    """Tell whether ``cache_dir`` holds a complete cache made from exactly these inputs.

    Parameters
    ----------
    cache_dir : str or Path
        The cache folder.
    fingerprint : dict
        From :func:`study_fingerprint`.

    Returns
    -------
    bool
        True when the manifest exists and records the same input hashes,
        ``study.yaml`` hash, pseudonym-key check, layout and toolkit version.
        Always False for studies read from a database.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.cache.cache_is_current("/nonexistent", ar.cache.study_fingerprint("data/sample"))  # doctest: +SKIP
    False
    """
    manifest_path = Path(cache_dir) / MANIFEST_NAME
    if fingerprint["files"] is None or not manifest_path.is_file():
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all(manifest.get(key) == value for key, value in fingerprint.items())


#: File in a cache folder locked while the cache is checked, and written when it is stale (:func:`cache_lock`).
LOCK_NAME = ".lock"


@contextmanager
def cache_lock(cache_dir: str | Path | None):
    """Hold a cache folder's lock: one process at a time checks the cache and, when it is stale, rewrites it.

    Two notebooks (or two ``run`` commands) that open the same cold cache at
    once would otherwise both clean the study and write the same files over
    each other. Under this lock the second waits for the first, then finds
    the cache current and reads it. The folder is created when missing. A
    folder that cannot be written (a read-only cache) is not locked: nothing
    is written to it then. On systems without ``fcntl`` nothing is locked.

    Parameters
    ----------
    cache_dir : str, Path or None
        The cache folder; None (no cache) locks nothing.

    Yields
    ------
    None

    Examples
    --------
    >>> import alignment_research as ar
    >>> with ar.cache.cache_lock("reports/.cache"):  # doctest: +SKIP
    ...     current = ar.cache.cache_is_current("reports/.cache", ar.cache.study_fingerprint("data/sample"))
    """
    if cache_dir is None:
        yield
        return
    folder = Path(cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # a folder that cannot be made cannot be written either: writing it will say why
    if not os.access(folder, os.W_OK):
        yield
        return
    with _locked(folder / LOCK_NAME):
        yield


def open_clean(study_dir: str | Path, *, cache_dir: str | Path | None = None, progress=None):
    """Return a study cleaned, with its analysis tables, cleaning at most once.

    With ``cache_dir``, a cache whose manifest matches the study's inputs (every
    file's hash, ``study.yaml``'s hash and the toolkit version) is read instead
    of cleaning again; otherwise the study is loaded, cleaned and its analysis
    tables built, and the cache is (re)written. Without ``cache_dir`` the study
    is cleaned in memory. This is how the notebooks get their data: ``run``
    cleans once and passes the cache folder to every notebook.

    Parameters
    ----------
    study_dir : str or Path
        The study folder.
    cache_dir : str or Path, optional
        Cache folder (for example ``reports/.cache``); ``None`` cleans in memory.
    progress : callable, optional
        Called with one short line per stage (``"cleaning"``, ``"reusing
        cache"``), for command-line feedback.

    Returns
    -------
    CleanStudy
        Clean tables, report, quarantine, counts and ``analysis``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.open_clean("data/sample")  # doctest: +SKIP
    >>> clean.analysis.person.shape  # doctest: +SKIP
    (1996, 23)
    """
    def clean(study):
        from .clean import clean_study  # deferred: clean loads pandera, pyarrow and matplotlib; only a stale cache needs it

        return None, clean_study(study)

    return _read_or_clean(study_dir, cache_dir, clean, say=progress)[1]


def _read_or_clean(study_dir, cache_dir, clean, *, say=None) -> tuple:
    """``(problems, clean study, cache folder read)``: the study read from ``cache_dir`` when the cache is current
    (problems None), else ``clean(load_study(study_dir))``'s ``(problems, clean)``, cached with its analysis tables
    when it is usable (folder None). ``say`` gets a line per stage. Two processes opening one cold cache at once
    clean once: the second waits for the cache's lock, then reads what the first wrote."""
    say = say or (lambda line: None)
    if cache_dir is None:
        say("cleaning")
        return (*clean(load_study(study_dir)), None)
    cache = Path(cache_dir)
    with cache_lock(cache):
        fingerprint = study_fingerprint(study_dir)
        if cache_is_current(cache, fingerprint):
            say("reusing the cleaned tables (inputs unchanged)")
            return None, read_clean_cache(cache, study_dir), cache
        say("cleaning")
        problems, cleaned = clean(load_study(study_dir))
        if cleaned is not None:
            cleaned.analysis  # noqa: B018 - build the analysis tables now, so they are cached too
            if fingerprint["files"] is not None:  # a study read from a database has no file hashes to key a cache
                write_clean_cache(cleaned, cache, fingerprint, problems=problems)
    return problems, cleaned, None


def open_validated(study_dir: str | Path, *, cache_dir: str | Path | None = None):
    """Return a study's validation problems and the study cleaned, validating and cleaning at most once.

    What :func:`~alignment_research.validate_and_clean` returns, read from
    the cache when its inputs are unchanged: ``run`` validates and cleans the
    study once and stores the problems beside the cleaned tables, so the data
    quality notebook shows them without cleaning again. A cache made without
    its problems (by :func:`open_clean`) gets them from validating the study's
    files against the cached clean study (the cleaning is not repeated).

    Parameters
    ----------
    study_dir : str or Path
        The study folder.
    cache_dir : str or Path, optional
        Cache folder; ``None`` validates and cleans in memory.

    Returns
    -------
    problems : DataFrame
        ``file, table, row, column, rule, value, action, fatal``, one row per
        problem. Read from a cache, ``value`` holds the offending values as
        text (a cache stores a column of mixed values as text).
    clean : CleanStudy or None
        The clean study, or None when a problem is fatal (a study with a fatal
        problem is never cached).

    Examples
    --------
    >>> import alignment_research as ar
    >>> problems, clean = ar.open_validated("data/sample", cache_dir="reports/.cache")  # doctest: +SKIP
    >>> bool(problems["fatal"].any())  # doctest: +SKIP
    False
    """
    def validate_and_clean(study):
        from .clean import validate_and_clean  # deferred: clean loads pandera, pyarrow and matplotlib; a current cache needs none

        return validate_and_clean(study)

    problems, clean, cache = _read_or_clean(study_dir, cache_dir, validate_and_clean)
    if cache is None:
        return problems, clean
    manifest = json.loads((cache / MANIFEST_NAME).read_text(encoding="utf-8"))
    if _PROBLEMS in manifest["frames"]:
        none = manifest.get("none_columns", {}).get(_PROBLEMS, ())
        return _read_frame(cache / manifest["frames"][_PROBLEMS], none), clean  # Parquet keeps Int64 rows, bool fatal
    from .contract import structure_problems, validation_problems  # deferred: contract loads pandera; only a cache without problems needs it

    return validation_problems(structure_problems(load_study(study_dir)), clean), clean


# ---------------------------------------------------------------- results computed once per cache

#: Key in a cleaned study's ``__dict__`` naming the cache folder it was read from or written to.
_FOLDER_KEY = "_cache_folder"

#: Sub-folder of a cache holding stored results (see :func:`stored_result`); removed when the tables are rewritten.
RESULTS_FOLDER = "results"

#: Distributions whose versions decide the numbers of a stored result (read from their metadata, never imported).
_NUMERIC_PACKAGES = ("numpy", "pandas", "scipy", "statsmodels")


def _frames_in_use(clean) -> tuple:
    """Which frames a cleaned study holds now (identity and shape): a replaced or resized table changes it."""
    analysis = clean.__dict__.get("analysis")
    fields = [] if analysis is None else [(f.name, getattr(analysis, f.name)) for f in dataclasses.fields(analysis)]
    return tuple((name, id(frame), getattr(frame, "shape", None))
                 for name, frame in [*sorted(clean.tables.items()), *fields])


def _remember_folder(clean, folder: Path) -> None:
    clean.__dict__[_FOLDER_KEY] = (Path(folder), _frames_in_use(clean))


def _cache_folder(clean) -> Path | None:
    """The cache folder a cleaned study was read from or written to, while its tables are the ones cached."""
    remembered = getattr(clean, "__dict__", {}).get(_FOLDER_KEY)
    if remembered is None or remembered[1] != _frames_in_use(clean):
        return None  # a table replaced, added or resized since: results stored for the cache are not its results
    return remembered[0]


_CODE_DIGEST: list[str] = []


def _code_digest() -> str:
    """SHA-256 of this package's source files, Python's version and the numeric libraries' versions.

    A stored result is an object pickled by the code that made it: any change
    to that code (even without a new version number) or to the libraries
    that computed it must not reuse it. Computed once per process.
    """
    if not _CODE_DIGEST:
        from importlib import metadata  # deferred: only a stored result needs the libraries' versions

        digest = hashlib.sha256(sys.version.encode())
        for name in _NUMERIC_PACKAGES:
            try:
                digest.update(f"{name}={metadata.version(name)};".encode())
            except metadata.PackageNotFoundError:  # pragma: no cover - every one is a dependency
                digest.update(f"{name}=?;".encode())
        package = Path(__file__).resolve().parent
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
        _CODE_DIGEST.append(digest.hexdigest())
    return _CODE_DIGEST[0]


def _option_text(value):
    """A stable text for an option value, or None when the value cannot be keyed safely (then nothing is stored)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        parts = [_option_text(v) for v in value]
        return None if None in parts else f"{type(value).__name__}({', '.join(parts)})"
    dump = getattr(value, "model_dump_json", None)  # a pydantic setting such as config.Analysis
    if callable(dump):
        return f"{type(value).__name__}({dump()})"
    return None


def _warning_module(filename: str) -> tuple[str, dict | None]:
    """The module name and warning registry of the file a warning was attributed to (as ``warnings.warn`` finds them)."""
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            return name, vars(module).setdefault("__warningregistry__", {})
    return Path(filename).stem, None


def _replay(caught: list) -> None:
    """Issue recorded warnings again, under the caller's filters, as if raised where they first were."""
    for message, category, filename, lineno in caught:
        module, registry = _warning_module(filename)
        warnings.warn_explicit(message, category, filename, lineno, module=module, registry=registry)


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path`` (POSIX), so two kernels compute a result once; no lock elsewhere."""
    try:
        import fcntl  # deferred: POSIX only; Windows has no fcntl
    except ImportError:  # pragma: no cover - Windows: both may compute; the result is the same
        yield
        return
    with path.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _patsy_object(cls, state: dict):
    """Rebuild a patsy object from its attributes (patsy refuses to pickle; see :class:`_ResultPickler`)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


#: Object arrays smaller than this are pickled as they are (sharing their text saves nothing worth the hashing).
_SHARE_TEXT_MIN = 4096


def _text_array(parts: list, shape: tuple, order: str) -> np.ndarray:
    """Rebuild an object array from its rows' parts (see :func:`_shared_text`)."""
    out = np.empty(shape, dtype=object, order=order)
    rows = out.reshape(1, -1) if out.ndim == 1 else out
    for i, part in enumerate(parts):
        if isinstance(part, np.ndarray):  # a row stored as it was (an array: its cells are never read as sequences)
            rows[i] = part
        else:
            uniques, codes, missing = part
            table = np.empty(len(uniques) + 1, dtype=object)
            table[:-1] = uniques
            table[-1] = missing  # code -1
            rows[i] = table[codes]
    return out


def _object_addresses(values: np.ndarray) -> np.ndarray:
    """The address of the object in each cell of an object array (its ``id``), read without a call per cell.

    An object array's cells are pointers; numpy will not view them as
    integers, so they are read through the array interface as ``intp``
    (same memory, same strides), then copied.
    """
    interface = dict(values.__array_interface__, typestr=np.dtype(np.intp).str, descr=[("", np.dtype(np.intp).str)])
    return np.array(types.SimpleNamespace(__array_interface__=interface), copy=True)


def _text_codes(values: np.ndarray, n_rows: int):
    """(distinct texts, a code per value, missing value) of text values, or None when they are not repeated text."""
    missing_rows = pd.isna(values)  # the cells factorize counts as missing: None, NaN, pd.NA, NaT
    some_missing = bool(missing_rows.any())
    try:
        present_codes, uniques = pd.factorize(values[~missing_rows] if some_missing else values, use_na_sentinel=True)
    except TypeError:  # an unhashable cell (a list): not text
        return None
    if 2 * len(uniques) > n_rows or not all(type(u) is str for u in uniques):
        return None
    dtype = np.int32 if len(uniques) < 2**31 - 1 else np.int64
    if not some_missing:
        return list(uniques), present_codes.astype(dtype, copy=False), None
    gaps = values[missing_rows]
    if len(set(map(type, gaps))) > 1:  # None beside NaN: each must come back as it was
        return None
    codes = np.full(len(values), -1, dtype=dtype)
    codes[~missing_rows] = present_codes
    return list(uniques), codes, gaps[0]  # one kind of missing (pd.NA, None: one object; NaN: equal values)


def _row_part(row: np.ndarray):
    """One row of an object array: (distinct texts, codes, missing value) when it is repeated text, else the row.

    A table's text usually repeats a few objects (each id one ``str``, taken
    row after row), so the cells are first grouped by object, hashing
    addresses, and only one cell of each object is hashed as text (a
    two-million-row trial table has about 20,000 id objects). Text held in a
    new object per cell is hashed cell by cell.
    """
    object_codes, objects = pd.factorize(_object_addresses(row))
    if 2 * len(objects) > len(row):  # mostly distinct objects: hash the text of every cell
        part = _text_codes(row, len(row))
        return row if part is None else part
    one_cell = np.empty(len(objects), dtype=np.intp)
    one_cell[object_codes] = np.arange(len(row))  # any cell of an object holds that very object
    part = _text_codes(row[one_cell], len(row))
    if part is None:
        return row
    uniques, codes, missing = part
    return uniques, codes[object_codes], missing


def _shared_text(values: np.ndarray):
    """Arguments of :func:`_text_array` for an object array holding repeated text, or None to pickle it as it is.

    A result's tables repeat the same ids and labels over many rows (a
    20,000-employee development effect holds 2 million trial rows of about
    20,000 ids). Pickled cell by cell, each row gets its own ``str`` object
    back, which costs most of the time and memory of reading the result.
    Each row of the array (a table's column, in a pandas block) whose values
    are all text or one single kind of missing value (``None``, ``NaN`` or
    ``pd.NA``), with each text repeated twice on average, is stored as the
    distinct texts and an integer code per cell: it comes back with equal
    values, each distinct text one shared object (text is immutable), and
    its missing cells as the very kind they were. Other rows are stored as
    they are (the pickler must then pickle those row arrays as they are).
    """
    if values.size < _SHARE_TEXT_MIN or values.dtype != object or values.ndim > 2:
        return None
    order = "F" if values.flags.f_contiguous and not values.flags.c_contiguous else "C"
    rows = values.reshape(1, -1) if values.ndim == 1 else values
    parts = [_row_part(row) for row in rows]
    if all(isinstance(part, np.ndarray) for part in parts):
        return None
    return parts, values.shape, order


class _ResultPickler(pickle.Pickler):
    """Pickle a result, including the patsy design information a regression keeps to predict on new rows.

    patsy's classes refuse pickling (its issue 26: a formula's environment
    may hold anything). Ours hold plain attributes and an environment of
    functions and modules, so each is stored as its class and attributes and
    a module by its name; anything else that cannot be pickled makes the
    result not stored (it is then computed by every caller). An object array
    of repeated text is stored as its distinct texts and codes
    (:func:`_shared_text`).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._as_is: dict[int, np.ndarray] = {}  # rows of shared arrays to pickle as they are (kept alive here)

    def reducer_override(self, obj):
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        cls = type(obj)
        if cls is np.ndarray:
            if id(obj) in self._as_is:
                return NotImplemented
            shared = _shared_text(obj)
            if shared is None:
                return NotImplemented
            self._as_is.update((id(part), part) for part in shared[0] if isinstance(part, np.ndarray))
            return _text_array, shared
        if cls.__module__.startswith("patsy.") and hasattr(obj, "__dict__") and not isinstance(obj, type):
            return _patsy_object, (cls, dict(vars(obj)))
        return NotImplemented


#: First bytes of a stored result written with its arrays apart (:func:`_write_result`).
_RESULT_MAGIC = b"alignment-research result 1\n"
#: Arrays smaller than this stay inside the pickle; larger ones are written after it, to be mapped on reading.
_APART_BYTES = 1 << 16
#: Alignment of each array written after the pickle.
_ALIGN = 64


def _pickled(value) -> tuple[bytes, list] | None:
    """The pickle of ``value`` and its large arrays' buffers (pickle protocol 5, out of band); None if it cannot."""
    buffers: list = []

    def apart(buffer: pickle.PickleBuffer):
        if buffer.raw().nbytes < _APART_BYTES:
            return True  # in the pickle
        buffers.append(buffer)
        return None

    stream = io.BytesIO()
    try:
        _ResultPickler(stream, protocol=5, buffer_callback=apart).dump(value)
    except (pickle.PicklingError, TypeError, AttributeError, NotImplementedError, RecursionError, BufferError):
        return None
    return stream.getvalue(), buffers


def _write_result(path: Path, data: bytes, buffers: list) -> None:
    """Write a pickle and its arrays: magic, the count, (offset, size) of the pickle and of each array, the bytes."""
    sizes = [len(data), *(b.raw().nbytes for b in buffers)]
    offset = len(_RESULT_MAGIC) + 8 + 16 * len(sizes)
    places = []
    for size in sizes:
        offset += -offset % _ALIGN
        places.append((offset, size))
        offset += size
    with path.open("wb") as out:
        out.write(_RESULT_MAGIC)
        out.write(len(sizes).to_bytes(8, "little"))
        for start, size in places:
            out.write(start.to_bytes(8, "little") + size.to_bytes(8, "little"))
        for (start, _), chunk in zip(places, [data, *(b.raw() for b in buffers)]):
            out.write(b"\0" * (start - out.tell()))
            out.write(chunk)


def _read_result(path: Path):
    """Read a stored result; its large arrays are mapped from the file, each page read when first used.

    The mapping is private (copy on write): an array of the result can be
    changed in place without changing the file or another reader's copy. The
    file is never rewritten in place (a new result replaces it whole), so a
    mapping stays valid while its arrays live.
    """
    import mmap  # deferred: only reading a stored result maps a file

    with path.open("rb") as handle:
        if os.name != "posix":  # pragma: no cover - Windows cannot replace a mapped file: read it into memory
            view = memoryview(bytearray(path.read_bytes()))
        else:
            view = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY))
    at = len(_RESULT_MAGIC)
    count = int.from_bytes(view[at:at + 8], "little")
    places = [(int.from_bytes(view[at + 8 + 16 * i:at + 16 + 16 * i], "little"),
               int.from_bytes(view[at + 16 + 16 * i:at + 24 + 16 * i], "little")) for i in range(count)]
    (start, size), arrays = places[0], places[1:]
    return pickle.loads(view[start:start + size], buffers=[view[a:a + n] for a, n in arrays])


#: Characters of the code digest in a stored result's file name (see :func:`_remove_other_code`).
_CODE_CHARS = 12


def _remove_other_code(results: Path, code: str) -> None:
    """Delete the stored results of other code: no run of this code can read them, and each may take gigabytes.

    A file being read by another process stays readable until it is closed
    (a reader maps it whole at once).
    """
    for path in results.glob("*.pickle"):
        parts = path.stem.rsplit("-", 2)  # name, code, key
        if len(parts) != 3 or parts[1] != code[:_CODE_CHARS]:
            path.unlink(missing_ok=True)
            path.with_suffix(".lock").unlink(missing_ok=True)


def has_stored_results(cache_dir: str | Path) -> bool:
    """Whether this code has stored any result (:func:`stored_result`) in the cache folder ``cache_dir``.

    ``run`` orders a first run's notebooks (nothing stored yet: the
    notebooks compute the shared results) differently from a re-run's.

    Parameters
    ----------
    cache_dir : str or Path
        The cache folder (it may not exist).

    Returns
    -------
    bool
        True when ``results/`` holds a result of this package's code.

    Examples
    --------
    >>> from alignment_research.cache import has_stored_results
    >>> has_stored_results("/nonexistent/cache")
    False
    """
    results = Path(cache_dir) / RESULTS_FOLDER
    if not results.is_dir():
        return False
    code = _code_digest()[:_CODE_CHARS]
    return any(path.stem.rsplit("-", 2)[1:2] == [code] for path in results.glob("*.pickle"))


def stored_result(name: str):
    """Decorate a function of a cleaned study so its result is computed once per cache and read afterwards.

    When the study came from :func:`open_clean` or :func:`read_clean_cache`
    with a cache folder, the decorated function's value is pickled into the
    cache's ``results/`` folder under a key made of the cache's manifest (the
    inputs' hashes, ``study.yaml``'s hash, the toolkit version), the
    package's source code and numeric libraries' versions, ``name`` and every
    other argument. The next call with the same key (the next notebook of a
    ``run``, in any kernel) unpickles it instead of computing it: the same
    object, bit for bit. Warnings raised while computing are stored too and
    raised again on every read, under the caller's filters. A changed input,
    configuration, argument or line of code gives a new key; rewriting the
    cache removes every stored result, and storing a result removes those
    of any other code. A study whose tables were replaced,
    added or resized after reading (``clean.tables["employees"] = ...``) is
    no longer the cached study: the function runs and nothing is stored (an
    edit in place that keeps every table's shape is not noticed: make a new
    study with ``dataclasses.replace`` instead). Without a cache, or with an argument
    that cannot be keyed (anything but numbers, text, None, lists of them and
    pydantic settings), the function just runs.

    Parameters
    ----------
    name : str
        The result's name in the cache (a file-name stem).

    Returns
    -------
    callable
        The decorator; the decorated function keeps its signature and docstring.

    Notes
    -----
    Two kernels asking for the same result at once compute it once: the
    second waits for the first (a file lock; on systems without ``fcntl``
    both compute). Arrays of 64 KiB or more are written after the pickle
    and mapped from the file when read (copy on write: each page is read when
    first used, and an edit in place stays the reader's own), and repeated
    text is written once per distinct value, so a large result costs a
    reader little more than what it uses. A stored result is read with :mod:`pickle`, which trusts
    its file: the cache folder holds person-level tables and is the user's
    own (see :func:`~alignment_research.run.default_cache_dir`).

    Examples
    --------
    >>> from alignment_research.cache import stored_result
    >>> @stored_result("row_count")
    ... def row_count(clean, table="employees"):
    ...     return len(clean.tables[table])
    """
    def decorate(func):
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(clean, *args, **kwargs):
            folder = _cache_folder(clean)
            manifest = folder / MANIFEST_NAME if folder is not None else None
            if manifest is None or not manifest.is_file():
                return func(clean, *args, **kwargs)
            bound = signature.bind(clean, *args, **kwargs)
            bound.apply_defaults()
            options = {k: _option_text(v) for k, v in list(bound.arguments.items())[1:]}
            if None in options.values():
                return func(clean, *args, **kwargs)
            code = _code_digest()
            digest = hashlib.sha256(manifest.read_bytes())
            digest.update(code.encode())
            digest.update(json.dumps([name, options], sort_keys=True).encode())
            results = folder / RESULTS_FOLDER
            path = results / f"{name}-{code[:_CODE_CHARS]}-{digest.hexdigest()[:24]}.pickle"
            if not os.access(folder, os.W_OK):  # a read-only cache: a stored result is read, none is written
                if not path.is_file():
                    return func(clean, *args, **kwargs)
                stored = _read_result(path)
                _replay(stored["warnings"])
                return stored["value"]
            results.mkdir(exist_ok=True)
            with _locked(path.with_suffix(".lock")):
                if path.is_file():
                    stored = _read_result(path)
                else:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        value = func(clean, *args, **kwargs)
                    stored = {"value": value,
                              "warnings": [(w.message, w.category, w.filename, w.lineno) for w in caught]}
                    pickled = _pickled(stored)
                    if pickled is not None:
                        partial = path.with_suffix(f".partial-{os.getpid()}")
                        _write_result(partial, *pickled)
                        os.replace(partial, path)
                        stored = _read_result(path)  # the first caller gets what later ones will
                        _remove_other_code(results, code)
            _replay(stored["warnings"])
            return stored["value"]

        return wrapper

    return decorate
