"""Read a study folder (CSV, Parquet, Excel or a SQL database) into raw canonical tables."""

from __future__ import annotations

import datetime as dt
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._arrow_text import TEXT_DTYPE, as_text_column
from .config import FILE_SUFFIXES, NA_VALUES, REQUIRED_TABLES, TABLES, StudyConfig, load_config, mask_password
from .errors import PROBLEM_COLUMNS, ConfigError, DataContractError
from .study import Study

__all__ = ["load_study", "read_table", "outside_sources"]

log = logging.getLogger(__name__)

#: Python module of a database driver -> the package that provides it.
_DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "pymysql",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
}
#: Database kinds SQLAlchemy itself knows.
_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "mssql", "oracle")
_OUTSIDE_FIX = (
    "Copy the file into the study folder, or set `allow_outside_paths: true` in study.yaml to read it where it is."
)


def _problem(file, rule, value=None, row=None, column=None) -> pd.DataFrame:
    return pd.DataFrame([[file, row, column, rule, value]], columns=PROBLEM_COLUMNS)


def _problems(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=PROBLEM_COLUMNS)


def _line_of_byte(raw: bytes, position: int) -> int:
    return raw.count(b"\n", 0, position) + 1


def _header_names(values) -> list[str]:
    """Header cells as stripped column names; an empty cell is named as pandas does (``Unnamed: <i>``)."""
    names = []
    for i, value in enumerate(values):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
        names.append(text or f"Unnamed: {i}")
    return names


def _split_header(grid: pd.DataFrame) -> pd.DataFrame:
    """A sheet read without a header: first row = column names (duplicates kept), the rest = rows."""
    if grid.empty:
        return pd.DataFrame()
    body = grid.iloc[1:].reset_index(drop=True)
    body.columns = _header_names(grid.iloc[0].tolist())
    return body


def _read_csv_arrow(path: Path, markers: set[str]) -> pd.DataFrame | None:
    """A CSV read with Arrow (C++, several threads), markers already blanked; None when Arrow refuses it.

    Every column is Arrow-backed text (:data:`TEXT_DTYPE`) over the Arrow text read: no Python
    text is made here. Gives what the pandas reader gives: every cell as text, quoting alike,
    blank lines kept as rows. Arrow refuses what pandas would stop on or read loosely (a file
    that is empty, not UTF-8, with a row of another length, an unclosed quote); the pandas
    reader then reads it, and says what is wrong in its own words.
    """
    import pyarrow as pa  # deferred: pyarrow is slow to import; only reading a file needs it
    import pyarrow.csv as pa_csv  # deferred: pyarrow is slow to import; only reading a file needs it

    try:
        grid = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, encoding="utf8"),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(_ARROW_MAX_COLUMNS)},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError):
        return None
    if grid.num_rows == 0 or not all(pa.types.is_string(t) for t in grid.schema.types):
        return None
    header = [grid.column(i)[0].as_py() for i in range(grid.num_columns)]
    body = grid.slice(1)
    columns = {}
    for i in range(body.num_columns):
        # one array per column, ``large_string`` as pandas holds it (no 2 GiB limit)
        text = body.column(i).cast(pa.large_string()).combine_chunks()
        columns[i] = as_text_column(_without_markers(text, markers))
    frame = pd.DataFrame(columns)
    frame.columns = _header_names(header)
    return frame


def _without_markers(text, markers: set[str]):
    """Arrow text with every marker cell (see :func:`_marker_cells`) null; the text itself is not copied."""
    import pyarrow as pa  # deferred: pyarrow is slow to import; only reading a file needs it

    blank = _marker_cells_arrow(text, markers)
    if not blank.any():
        return text
    # the read text has no nulls: its validity is "not a marker", over the same offsets and characters
    valid = np.concatenate([np.ones(text.offset, dtype=bool), ~blank]) if text.offset else ~blank
    bitmap = pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(text.type, len(text), [bitmap, *text.buffers()[1:]], int(blank.sum()), text.offset)


#: Files with more columns than this are read by pandas (Arrow is told each column's type by name).
_ARROW_MAX_COLUMNS = 2000


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        grid = pd.read_csv(
            path, header=None, dtype=str, na_filter=False, encoding="utf-8-sig", skip_blank_lines=False
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
            f"{path.name} is not a well-formed CSV file ({str(err).strip()}). Check quoting, and that no line "
            "has more fields than the header (a trailing comma adds one).",
            _problem(path.name, "malformed_csv", str(err).strip()),
        ) from None
    return _split_header(grid)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq  # deferred: pyarrow is slow to import; only reading a file needs it

    try:
        names = pq.read_schema(path).names
        if len(set(names)) < len(names):
            # pandas cannot read such a file; the header check reports the duplicates
            return pd.DataFrame(columns=names)
        return pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several unrelated classes
        raise DataContractError(
            f"{path.name} is not a readable Parquet file ({err.__class__.__name__}: {err}).",
            _problem(path.name, "unreadable_file", str(err)),
        ) from None


def _read_xlsx(path: Path, sheet: str | None) -> pd.DataFrame:
    try:
        grids = pd.read_excel(path, sheet_name=None, header=None, dtype=object, na_filter=False, engine="openpyxl")
    except (zipfile.BadZipFile, ValueError, KeyError, OSError) as err:
        raise DataContractError(
            f"{path.name} is not a readable .xlsx workbook ({err.__class__.__name__}: {err}). "
            "Save it from Excel as 'Excel Workbook (.xlsx)'.",
            _problem(path.name, "unreadable_file", str(err)),
        ) from None
    return _split_header(grids[_choose_sheet(path.name, grids, sheet)])


def _rows_with_data(grid: pd.DataFrame) -> int:
    filled = grid.map(lambda v: not (v is None or v == "" or (isinstance(v, float) and np.isnan(v))))
    return int(filled.any(axis=1).sum())


def _choose_sheet(name: str, grids: dict[str, pd.DataFrame], sheet: str | None) -> str:
    """The sheet study.yaml names, or the only sheet with data; anything else is an error."""
    sheets = list(grids)
    if sheet is not None:
        if sheet not in grids:
            raise DataContractError(
                f"{name}: study.yaml `sheets` names the sheet {sheet!r}, which the workbook does not have; "
                f"its sheets are {sheets}.",
                _problem(name, "unknown_sheet", sheet),
            )
        return sheet
    filled = {s: _rows_with_data(grid) for s, grid in grids.items()}
    with_data = [s for s in sheets if filled[s]]
    if len(with_data) > 1:
        listing = ", ".join(f"{s!r} ({filled[s] - 1} rows below its first)" for s in with_data)
        raise DataContractError(
            f"{name}: {len(with_data)} sheets hold data ({listing}) and study.yaml does not say which one to read; "
            f"name it, e.g. `sheets: {{<table>: {with_data[0]}}}`, or move the data onto one sheet.",
            _problem(name, "ambiguous_sheets", ", ".join(with_data)),
        )
    return with_data[0] if with_data else sheets[0]


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


def _marker_set(na_values: Sequence[str] | None) -> set[str]:
    """Missing-value markers as compared: stripped, case-folded; a blank cell is always missing."""
    markers = NA_VALUES if na_values is None else na_values
    return {str(m).strip().casefold() for m in markers} | {""}


#: What ``str.strip()`` removes: every character for which ``str.isspace()`` is true.
_PY_WHITESPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _marker_cells_arrow(arr, markers: set[str]) -> np.ndarray | None:
    """Where an Arrow text column holds a marker (see :func:`_marker_cells`); None if not text."""
    import pyarrow as pa  # deferred: pyarrow is slow to import; only reading a file needs it
    import pyarrow.compute as pc  # deferred: pyarrow is slow to import; only reading a file needs it

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    stripped = pc.utf8_trim(arr, characters=_PY_WHITESPACE)
    length = pc.utf8_length(stripped)
    short = pc.fill_null(pc.less_equal(length, max(len(m) for m in markers)), False)
    candidates = pc.unique(pc.filter(stripped, short)).to_pylist()
    found = [text for text in candidates if text.casefold() in markers]
    if not found:
        return np.zeros(len(arr), dtype=bool)
    # a few texts (often only the blank): compared one by one, cheaper than hashing every cell
    hit = None
    for text in found:
        same = pc.equal(length, 0) if text == "" else pc.equal(stripped, text)
        hit = same if hit is None else pc.or_(hit, same)
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def _marker_cells(col: pd.Series, markers: set[str]) -> np.ndarray | None:
    """Where a text column holds a marker, found in Arrow (C speed); None when Arrow cannot hold the column.

    Same answer as ``col.str.strip().str.casefold().isin(markers)``: Arrow strips exactly what
    ``str.strip()`` strips, and since case folding never shortens a text, only the stripped
    texts no longer than the longest marker can be one; those few distinct texts are
    case-folded in Python.
    """
    import pyarrow as pa  # deferred: pyarrow is slow to import; only reading a file needs it

    try:
        arr = pa.array(col.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError):
        return None
    return _marker_cells_arrow(arr, markers)


def _blank_markers(frame: pd.DataFrame, markers: set[str]) -> pd.DataFrame:
    """Set every text cell that is a missing-value marker (after stripping, any case) to NaN."""
    for name in frame.columns:
        col = frame[name]
        if col.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(col, skipna=True)
        if kind not in ("string", "mixed"):
            continue
        missing = _marker_cells(col, markers) if kind == "string" else None
        if missing is None:
            missing = col.str.strip().str.casefold().isin(markers).to_numpy()
        if missing.any():
            frame[name] = col.where(~missing, np.nan)
    return frame


def _as_text_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Hold every column of text (and missing values) as Arrow-backed text (:data:`TEXT_DTYPE`), as a CSV is read."""
    for i in range(frame.shape[1]):
        col = frame.iloc[:, i]
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            frame.isetitem(i, col.astype(TEXT_DTYPE))
    return frame


def _check_header(columns: list[str], column_map: dict[str, str], source: str) -> None:
    """Raise one DataContractError for every column_maps entry the file lacks and every name used twice."""
    rows, lines = [], []
    present = ", ".join(columns)
    absent = [c for c in column_map if c not in columns]
    for vendor in absent:
        rows.append([source, 1, vendor, "unknown_mapped_column", f"columns present: {present}"])
    if absent:
        lines.append(
            f"study.yaml `column_maps` names {absent}, which {source} does not have (its columns: {present}); "
            "correct the vendor column name or remove the entry"
        )
    renamed = [column_map.get(c, c) for c in columns]
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(renamed):
        positions.setdefault(name, []).append(i)
    twice = {name: where for name, where in positions.items() if len(where) > 1}
    details = []
    for name, where in twice.items():
        origin = ", ".join(columns[i] if columns[i] == name else f"{columns[i]} -> {name}" for i in where)
        rows.append([source, 1, name, "duplicate_column", origin])
        details.append(f"{name!r} from header columns {[i + 1 for i in where]} ({origin})")
    if twice:
        mapped = any(columns[i] != name for name, where in twice.items() for i in where)
        lines.append(
            f"column name(s) {list(twice)} occur more than once"
            f"{' after study.yaml `column_maps`' if mapped else ''}: {'; '.join(details)}; "
            "rename or drop all but one, or the values of one would be lost"
        )
    if rows:
        raise DataContractError(f"{source}: " + "; ".join(lines) + ".", _problems(rows))


def _finish(
    frame: pd.DataFrame, column_map: dict[str, str] | None, source: str, markers: set[str], *, typed: bool,
    blanked: bool = False,
) -> pd.DataFrame:
    """Check the header, apply the column map, blank missing-value markers, number rows as a spreadsheet does."""
    frame.columns = _header_names(frame.columns)
    column_map = {str(k).strip(): v for k, v in (column_map or {}).items()}
    _check_header(list(frame.columns), column_map, source)
    if column_map:  # names set in place: ``rename`` would copy every cell of the table
        frame.columns = [column_map.get(c, c) for c in frame.columns]
    if typed:
        frame = _as_raw(frame)
    if not blanked:
        frame = _as_text_columns(_blank_markers(frame, markers))
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="row")
    return frame


def read_table(
    path: str | Path,
    *,
    column_map: dict[str, str] | None = None,
    sheet: str | None = None,
    na_values: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read one table file as raw text, with source row numbers as index.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` (UTF-8, with or without BOM), ``.parquet`` or ``.xlsx`` file.
    column_map : dict of str to str, optional
        Vendor column name -> canonical name, applied after reading. Every
        vendor name must be a column of the file.
    sheet : str, optional
        The sheet of an ``.xlsx`` workbook to read. Without it, the only sheet
        that holds data is read; several such sheets are an error.
    na_values : sequence of str, optional
        Cell texts read as missing, compared case-insensitively after stripping
        spaces (default :data:`NA_VALUES`). A blank cell is always missing.

    Returns
    -------
    DataFrame
        Every column as text, Arrow-backed (``StringDtype("pyarrow",
        na_value=nan)``; missing = NaN), except dates in typed files, which
        stay ``datetime64``, and a typed file's columns mixing dates with
        text, which are ``object``. Texts are not stripped. The
        index, named ``row``, is the row number a person sees in a spreadsheet
        (header = row 1, so the first data row is 2).

    Raises
    ------
    DataContractError
        The file is missing, not UTF-8, malformed or unreadable; two columns
        have the same name (in the file or after mapping); a ``column_map``
        entry names a column the file lacks; ``sheet`` is not in the workbook,
        or several sheets hold data and none is named. Each problem names the
        file; all problems of the file are listed at once.
    ConfigError
        The file kind is not one of :data:`FILE_SUFFIXES`.

    Examples
    --------
    >>> import alignment_research as ar, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "employees.csv"
    >>> _ = path.write_text("emp,hire_date\\nE1,2021-01-04\\n N/A ,2021-01-05\\n")
    >>> table = ar.read_table(path, column_map={"emp": "employee_id"})
    >>> table.columns.tolist(), table.index.tolist(), table["employee_id"].isna().tolist()
    (['employee_id', 'hire_date'], [2, 3], [False, True])
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ConfigError(f"{path.name}: unsupported file kind {suffix!r}; use one of {list(FILE_SUFFIXES)}.")
    if not path.exists():
        raise DataContractError(f"{path}: file not found.", _problem(path.name, "missing_file"))
    if sheet is not None and suffix != ".xlsx":
        raise DataContractError(
            f"{path.name}: study.yaml `sheets` names the sheet {sheet!r}, but {path.name} is not an .xlsx "
            "workbook; remove the entry.",
            _problem(path.name, "sheet_not_applicable", sheet),
        )
    markers = _marker_set(na_values)
    frame = _read_csv_arrow(path, markers) if suffix == ".csv" else None
    if frame is not None:
        return _finish(frame, column_map, path.name, markers, typed=False, blanked=True)
    if suffix == ".csv":
        frame = _read_csv(path)
    elif suffix == ".parquet":
        frame = _read_parquet(path)
    else:
        frame = _read_xlsx(path, sheet)
    return _finish(frame, column_map, path.name, markers, typed=suffix != ".csv")


# --------------------------------------------------------------------------- where tables come from


@dataclass(frozen=True)
class _FileSource:
    """A table's file: the study.yaml key that names it (None when found by its name) and its path."""

    table: str
    path: Path
    key: str | None

    def describe(self) -> str:
        return f"study.yaml `{self.key}` ({self.path.name})" if self.key else f"{self.path.name}"


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` lies in ``folder`` once symbolic links and ``..`` are resolved."""
    return path.resolve().is_relative_to(folder.resolve())


def _file_sources(folder: Path, config: StudyConfig) -> dict[str, _FileSource]:
    """The file of each table not read from the database (named in ``files`` or found by name)."""
    from_db = set(config.database.tables) if config.database is not None else set()
    out = {}
    for table in TABLES:
        if table in from_db:
            continue
        if table in config.files:
            out[table] = _FileSource(table, folder / Path(config.files[table]).expanduser(), f"files.{table}")
            continue
        found = [folder / f"{table}{s}" for s in FILE_SUFFIXES if (folder / f"{table}{s}").exists()]
        if len(found) > 1:
            raise ConfigError(
                f"{folder}: the {table} table exists as {[p.name for p in found]}; keep one, or name it in "
                f"study.yaml `files: {{{table}: ...}}`."
            )
        if found:
            out[table] = _FileSource(table, found[0], None)
    return out


def _database_url(config: StudyConfig):
    """The parsed ``database.url``, its driver checked; a ConfigError names the package to install."""
    import sqlalchemy as sa  # deferred: sqlalchemy is heavy and only a database source needs it

    url = sa.engine.make_url(config.database.url)
    shown = url.render_as_string(hide_password=True)
    try:
        dialect = url.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise ConfigError(
            f"study.yaml `database.url` ({shown}) names the database kind {url.drivername!r}, which SQLAlchemy "
            f"does not know; use one of {list(_DIALECTS)}, e.g. postgresql://user@host/dbname."
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as err:
        module = (err.name or url.get_driver_name()).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise ConfigError(
            f"study.yaml `database.url` ({shown}) needs the database driver {module!r}, which is not installed; "
            f"install the package {package} (`pip install {package}`) or name an installed driver in the URL "
            f"({url.get_backend_name()}+<driver>://...)."
        ) from None
    return url


def _sqlite_file(folder: Path, url) -> Path | None:
    """The database file of a sqlite URL (relative to the study folder), or None (server, in memory)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    file = Path(url.database).expanduser()
    return file if file.is_absolute() else folder / file


def outside_sources(config: StudyConfig, folder: str | Path) -> dict[str, str]:
    """List the tables a study reads from outside its folder, and from where.

    A file outside the folder (an absolute path, ``..``, or a link that points
    out) can only be read with ``allow_outside_paths: true``; a database
    server is always outside. ``index.html`` lists these sources.

    Parameters
    ----------
    config : StudyConfig
        The study configuration.
    folder : str or Path
        The study folder.

    Returns
    -------
    dict of str to str
        Table -> the resolved file path, or the database URL with its password
        shown as ``***`` followed by ``(table <name>)``. Empty when everything
        is read from inside the folder.

    Examples
    --------
    >>> import alignment_research as ar, tempfile
    >>> cfg = ar.config_from_dict({"window": {"start": "2021-01-01", "end": "2024-12-31"},
    ...     "database": {"url": "postgresql://analyst:secret@db.example.org/hris", "tables": {"employees": "staff"}}})
    >>> ar.load.outside_sources(cfg, tempfile.mkdtemp())
    {'employees': 'postgresql://analyst:***@db.example.org/hris (table staff)'}
    """
    folder = Path(folder)
    out = {}
    if config.database is not None:
        import sqlalchemy as sa  # deferred: sqlalchemy is heavy and only a database source needs it

        url = sa.engine.make_url(config.database.url)
        file = _sqlite_file(folder, url)
        if file is None or not _inside(file, folder):
            where = str(file.resolve()) if file is not None else url.render_as_string(hide_password=True)
            out.update({t: f"{where} (table {name})" for t, name in config.database.tables.items()})
    for table, source in _file_sources(folder, config).items():
        if not _inside(source.path, folder):
            out[table] = str(source.path.resolve())
    return {t: out[t] for t in TABLES if t in out}


def _outside_error(what: str, path: Path, folder: Path) -> DataContractError:
    return DataContractError(
        f"{what} resolves to {path.resolve()}, outside the study folder {folder.resolve()}. {_OUTSIDE_FIX}",
        _problem(path.name, "outside_study_folder", str(path.resolve())),
    )


class _Problems:
    """Collects the DataContractErrors of a whole study, to raise them as one."""

    def __init__(self):
        self.errors: list[DataContractError] = []

    def add(self, err: DataContractError) -> None:
        self.errors.append(err)

    def raise_any(self, folder: Path) -> None:
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        problems = pd.concat([e.problems for e in self.errors], ignore_index=True)
        first_lines = "\n".join(f"- {str(e).splitlines()[0]}" for e in self.errors)
        raise DataContractError(
            f"{folder.name}: {len(self.errors)} problems with the study's files (all of them; fix each and load "
            f"again):\n{first_lines}\nIn detail:",
            problems,
        )


def _read_database(folder: Path, config: StudyConfig, problems: _Problems) -> dict[str, tuple[pd.DataFrame, str]]:
    """The tables named in ``database.tables`` as read (typed), with their ``db:<table>`` source names."""
    import sqlalchemy as sa  # deferred: sqlalchemy is heavy and only a database source needs it

    db = config.database
    url = _database_url(config)
    file = _sqlite_file(folder, url)
    if file is not None:
        if not config.allow_outside_paths and not _inside(file, folder):
            problems.add(_outside_error("study.yaml `database.url`", file, folder))
            return {}
        if not file.exists():
            problems.add(
                DataContractError(
                    f"study.yaml `database.url` points to {file.name}, which is not in {file.parent}.",
                    _problem(file.name, "missing_file"),
                )
            )
            return {}
        url = url.set(database=str(file))
    engine = sa.create_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            present = set(sa.inspect(conn).get_table_names())
            for table, db_table in db.tables.items():
                source = f"db:{db_table}"
                if db_table not in present:
                    problems.add(
                        DataContractError(
                            f"study.yaml `database.tables.{table}` names {db_table!r}, which is not in the database "
                            f"(tables there: {sorted(present)}).",
                            _problem(source, "missing_table", db_table),
                        )
                    )
                    continue
                out[table] = (pd.read_sql_table(db_table, conn), source)
    except sa.exc.SQLAlchemyError as err:
        problems.add(
            DataContractError(
                mask_password(
                    f"reading the database {url.render_as_string(hide_password=True)} failed: "
                    f"{err.__class__.__name__}: {err}"
                ).splitlines()[0],
                _problem("db", "unreadable_database", mask_password(str(err))),
            )
        )
    finally:
        engine.dispose()
    return out


def _read_file(folder: Path, source: _FileSource, config: StudyConfig) -> pd.DataFrame:
    """One table's file, after checking it is in the study folder and exists."""
    if not config.allow_outside_paths and not _inside(source.path, folder):
        raise _outside_error(source.describe(), source.path, folder)
    if not source.path.exists():
        raise DataContractError(
            f"study.yaml `{source.key}` names {config.files[source.table]!r}, which is not in {folder}.",
            _problem(config.files[source.table], "missing_file"),
        )
    log.debug("reading %s from %s", source.table, source.path)
    return read_table(
        source.path,
        column_map=config.column_maps.get(source.table),
        sheet=config.sheets.get(source.table),
        na_values=config.na_values,
    )


def load_study(path: str | Path) -> Study:
    """Read a study folder: ``study.yaml`` plus one file (or database table) per table.

    Each table is found by study.yaml ``files``, by ``database.tables`` or as
    ``<table>.csv``, ``<table>.parquet`` or ``<table>.xlsx`` in the folder.
    Only ``employees`` is required. Files must lie inside the study folder
    (links resolved) unless ``allow_outside_paths: true``. Vendor column names
    are renamed with ``column_maps``; columns outside the contract are kept
    (cleaning reports them as ``unknown_column``). Cells matching
    ``na_values`` become missing; every other value is kept as raw text so
    that cleaning sees, and reports, exactly what the file holds. Text is
    held as Arrow-backed pandas strings (``StringDtype("pyarrow",
    na_value=nan)``: missing is NaN, an empty text stays distinct from
    missing), the Arrow text the file was read into: nothing else is kept
    beside the tables, and cleaning reads that text directly.

    Parameters
    ----------
    path : str or Path
        The study folder (or its ``study.yaml``).

    Returns
    -------
    Study
        ``tables`` (raw, index = source row number, header = row 1; text
        columns Arrow-backed strings, dates from typed files ``datetime64``,
        columns mixing text with other values ``object``), ``config``,
        ``path``, ``sources`` (table -> file name or ``db:<table>``) and
        ``outside_sources`` (see :func:`outside_sources`).

    Raises
    ------
    ConfigError
        ``study.yaml`` is missing or invalid, a table is ambiguous, or the
        database driver is not installed.
    DataContractError
        One error listing every file problem of the study in ``problems``
        (``file, row, column, rule, value``), with rules ``missing_table``,
        ``missing_file``, ``outside_study_folder``, ``not_utf8``,
        ``empty_file``, ``malformed_csv``, ``unreadable_file``,
        ``unreadable_database``, ``duplicate_column``,
        ``unknown_mapped_column``, ``unknown_sheet``, ``ambiguous_sheets`` and
        ``sheet_not_applicable``.

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
    problems = _Problems()
    tables: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}
    markers = _marker_set(config.na_values)
    files = _file_sources(folder, config)
    from_db = _read_database(folder, config, problems) if config.database is not None else {}
    for table in TABLES:
        try:
            if table in from_db:
                frame, source = from_db[table]
                if table in config.sheets:
                    raise DataContractError(
                        f"study.yaml `sheets.{table}` names a sheet, but {table} is read from the database; "
                        "remove the entry.",
                        _problem(source, "sheet_not_applicable", config.sheets[table]),
                    )
                tables[table] = _finish(frame, config.column_maps.get(table), source, markers, typed=True)
                sources[table] = source
            elif table in files:
                tables[table] = _read_file(folder, files[table], config)
                sources[table] = files[table].path.name
            elif table in REQUIRED_TABLES and (config.database is None or table not in config.database.tables):
                expected = ", ".join(f"{table}{s}" for s in FILE_SUFFIXES)
                raise DataContractError(
                    f"{folder} has no {table} table: expected one of {expected}, "
                    f"or name the file in study.yaml `files: {{{table}: ...}}` (or `database.tables`).",
                    _problem(str(folder.name), "missing_table", table),
                )
        except DataContractError as err:
            problems.add(err)
    problems.raise_any(folder)
    return Study(
        tables=tables, config=config, path=folder, sources=sources, outside_sources=outside_sources(config, folder)
    )
