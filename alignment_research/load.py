"""Read a study folder (CSV, Parquet, Excel or a SQL database) into raw canonical tables."""

from __future__ import annotations

import datetime as dt
import logging
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .config import REQUIRED_TABLES, TABLES, StudyConfig, load_config
from .errors import PROBLEM_COLUMNS, ConfigError, DataContractError
from .study import Study

__all__ = ["load_study", "read_table", "NA_VALUES", "FILE_SUFFIXES"]

log = logging.getLogger(__name__)

#: Cell texts read as missing (case-sensitive, after no stripping). Everything else stays text.
NA_VALUES = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "#N/A"]
#: File kinds a table may come in, in the order they are looked for.
FILE_SUFFIXES = (".csv", ".parquet", ".xlsx")


def _problem(file, rule, value=None, row=None, column=None) -> pd.DataFrame:
    return pd.DataFrame([[file, row, column, rule, value]], columns=PROBLEM_COLUMNS)


def _line_of_byte(raw: bytes, position: int) -> int:
    return raw.count(b"\n", 0, position) + 1


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=NA_VALUES,
            encoding="utf-8-sig",
            skip_blank_lines=False,
        )
    except UnicodeDecodeError as err:
        raw = path.read_bytes()
        line = _line_of_byte(raw, err.start)
        bad = raw[err.start : err.end]
        raise DataContractError(
            f"{path.name} is not UTF-8 text (undecodable byte at line {line}). "
            "Save it as 'CSV UTF-8' (Excel: File > Save As > CSV UTF-8) or convert it, "
            f"e.g. `iconv -f latin1 -t utf-8 {path.name}`.",
            _problem(path.name, "not_utf8", repr(bad), row=line),
        ) from None
    except pd.errors.EmptyDataError:
        raise DataContractError(
            f"{path.name} is empty: it needs at least a header row.", _problem(path.name, "empty_file")
        ) from None
    except pd.errors.ParserError as err:
        raise DataContractError(
            f"{path.name} is not a well-formed CSV file ({err}). Check quoting and the number of fields per line.",
            _problem(path.name, "malformed_csv", str(err)),
        ) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated classes
        raise DataContractError(
            f"{path.name} is not a readable Parquet file ({err.__class__.__name__}: {err}).",
            _problem(path.name, "unreadable_file", str(err)),
        ) from None


def _read_xlsx(path: Path) -> pd.DataFrame:
    try:
        return pd.read_excel(path, dtype=object, keep_default_na=False, na_values=NA_VALUES, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as err:
        raise DataContractError(
            f"{path.name} is not a readable .xlsx workbook ({err.__class__.__name__}: {err}). "
            "Save it from Excel as 'Excel Workbook (.xlsx)'.",
            _problem(path.name, "unreadable_file", str(err)),
        ) from None


def _raw_value(value):
    """One cell as text, except dates, which stay dates (unambiguous in typed sources)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    if isinstance(value, str):
        return value
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return pd.Timestamp(value)
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return np.nan
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _as_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Make a typed table (Parquet, Excel, SQL) look like a CSV read as text.

    Dates keep their type (``datetime64``) so no date format is needed for them;
    every other value becomes its text, as cleaning expects raw values.
    """
    out = {}
    for name in frame.columns:
        col = frame[name]
        if pd.api.types.is_datetime64_any_dtype(col.dtype):
            out[name] = col.dt.tz_localize(None) if getattr(col.dt, "tz", None) is not None else col
        elif pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            out[name] = col.astype(object).where(col.notna(), np.nan)
        else:
            out[name] = col.map(_raw_value).astype(object)
    return pd.DataFrame(out, index=frame.index)


def read_table(path: str | Path, *, column_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Read one table file as raw text, with source row numbers as index.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` (UTF-8, with or without BOM), ``.parquet`` or ``.xlsx`` file.
    column_map : dict of str to str, optional
        Vendor column name -> canonical name, applied after reading.

    Returns
    -------
    DataFrame
        Every column as text (``object``; missing = NaN), except dates in
        typed files, which stay ``datetime64``. The index, named ``row``, is
        the row number a person sees in a spreadsheet (header = row 1, so the
        first data row is 2).

    Raises
    ------
    DataContractError
        The file is not UTF-8, is malformed or unreadable, or two columns have
        the same name after mapping; the problem names the file.

    Examples
    --------
    >>> import alignment_research as ar, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "employees.csv"
    >>> _ = path.write_text("emp,hire_date\\nE1,2021-01-04\\n")
    >>> table = ar.read_table(path, column_map={"emp": "employee_id"})
    >>> table.columns.tolist(), table.index.tolist()
    (['employee_id', 'hire_date'], [2])
    """
    path = Path(path)
    if not path.exists():
        raise DataContractError(f"{path}: file not found.", _problem(path.name, "missing_file"))
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
    elif suffix == ".parquet":
        frame = _as_raw(_read_parquet(path))
    elif suffix == ".xlsx":
        frame = _as_raw(_read_xlsx(path))
    else:
        raise ConfigError(f"{path.name}: unsupported file kind {suffix!r}; use one of {list(FILE_SUFFIXES)}.")
    return _finish(frame, column_map, path.name)


def _finish(frame: pd.DataFrame, column_map: dict[str, str] | None, source: str) -> pd.DataFrame:
    """Strip header names, apply the column map, number rows as a spreadsheet does."""
    frame.columns = [str(c).strip() for c in frame.columns]
    if column_map:
        frame = frame.rename(columns=column_map)
    duplicated = sorted(set(frame.columns[frame.columns.duplicated()]))
    if duplicated:
        problems = pd.DataFrame([[source, 1, c, "duplicate_column", c] for c in duplicated], columns=PROBLEM_COLUMNS)
        raise DataContractError(
            f"{source}: column name(s) {duplicated} occur more than once (after study.yaml `column_maps`). "
            "Rename or drop one of them.",
            problems,
        )
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="row")
    return frame


def _read_sql(folder: Path, config: StudyConfig) -> dict[str, tuple[pd.DataFrame, str]]:
    import sqlalchemy as sa

    db = config.database
    try:
        url = sa.engine.make_url(db.url)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"study.yaml `database.url` is not a SQLAlchemy URL: {err}.") from None
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        file = Path(url.database)
        if not file.is_absolute():
            file = folder / file
        if not file.exists():
            raise DataContractError(
                f"study.yaml `database.url` points to {file.name}, which is not in {folder}.",
                _problem(file.name, "missing_file"),
            )
        url = url.set(database=str(file))
    engine = sa.create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for table, db_table in db.tables.items():
                source = f"db:{db_table}"
                if db_table not in present:
                    raise DataContractError(
                        f"study.yaml `database.tables.{table}` names {db_table!r}, which is not in the database "
                        f"(tables there: {sorted(present)}).",
                        _problem(source, "missing_table", db_table),
                    )
                frame = pd.read_sql_table(db_table, conn)
                out[table] = (frame, source)
    except sa.exc.SQLAlchemyError as err:
        raise DataContractError(
            f"reading the database {url.render_as_string(hide_password=True)} failed: {err.__class__.__name__}: {err}",
            _problem("db", "unreadable_database", str(err)),
        ) from None
    finally:
        engine.dispose()
    return out


def _find_file(folder: Path, table: str, config: StudyConfig) -> Path | None:
    if table in config.files:
        path = folder / config.files[table]
        if not path.exists():
            raise DataContractError(
                f"study.yaml `files.{table}` names {config.files[table]!r}, which is not in {folder}.",
                _problem(config.files[table], "missing_file"),
            )
        return path
    found = [folder / f"{table}{s}" for s in FILE_SUFFIXES if (folder / f"{table}{s}").exists()]
    if len(found) > 1:
        raise ConfigError(
            f"{folder}: the {table} table exists as {[p.name for p in found]}; keep one, or name it in "
            f"study.yaml `files: {{{table}: ...}}`."
        )
    return found[0] if found else None


def load_study(path: str | Path) -> Study:
    """Read a study folder: ``study.yaml`` plus one file (or database table) per table.

    Each table is found by study.yaml ``files``, by ``database.tables`` or as
    ``<table>.csv``, ``<table>.parquet`` or ``<table>.xlsx`` in the folder.
    Only ``employees`` is required. Vendor column names are renamed with
    ``column_maps``; columns outside the contract are kept (cleaning reports
    them as ``unknown_column``). Values are kept as raw text so that cleaning
    sees, and reports, exactly what the file holds.

    Parameters
    ----------
    path : str or Path
        The study folder (or its ``study.yaml``).

    Returns
    -------
    Study
        ``tables`` (raw, index = source row number, header = row 1), ``config``,
        ``path`` and ``sources`` (table -> file name or ``db:<table>``).

    Raises
    ------
    ConfigError
        ``study.yaml`` is missing or invalid, or a table is ambiguous.
    DataContractError
        The employees table is missing, or a file is unreadable (the message
        names the file and, where known, the row).

    See Also
    --------
    validate_study : Check the data contract.
    clean_study : Clean the tables.

    Examples
    --------
    >>> import alignment_research as ar, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)  # doctest: +SKIP
    >>> study = ar.load_study(folder)  # doctest: +SKIP
    """
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such study folder.")
    config = load_config(folder)
    tables: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    from_db = _read_sql(folder, config) if config.database is not None else {}
    for table in TABLES:
        column_map = config.column_maps.get(table)
        if table in from_db:
            frame, source = from_db[table]
            tables[table], sources[table] = _finish(_as_raw(frame), column_map, source), source
            continue
        file = _find_file(folder, table, config)
        if file is None:
            if table in REQUIRED_TABLES:
                expected = ", ".join(f"{table}{s}" for s in FILE_SUFFIXES)
                raise DataContractError(
                    f"{folder} has no {table} table: expected one of {expected}, "
                    f"or name the file in study.yaml `files: {{{table}: ...}}` (or `database.tables`).",
                    _problem(str(folder.name), "missing_table", table),
                )
            continue
        log.debug("reading %s from %s", table, file)
        tables[table] = read_table(file, column_map=column_map)
        sources[table] = file.name
    return Study(tables=tables, config=config, path=folder, sources=sources)
