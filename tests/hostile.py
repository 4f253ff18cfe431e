"""Corruption operations for the hostile-input suite (tests/test_hostile.py).

Each operation breaks a study folder in place, the way real HRIS exports break,
and returns what it did: the files and cells it touched and what a user must be
told about them (an :class:`Expect` per corruption). Parameters are drawn by
hypothesis from ``Op.params``; ``Op.example`` gives a fixed set for the
one-op-at-a-time tests.

Tables are read and written with the ``csv`` module and ``openpyxl`` directly
(never pandas), so a corruption is written exactly as intended (duplicate
headers survive, cells stay text) and the rows going in are counted
independently of the package under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from hypothesis import strategies as st

TABLES = ("employees", "goals", "reviews", "surveys", "programs", "feedback", "job_history")
SUFFIXES = (".csv", ".parquet", ".xlsx")

#: Required columns per table (design.md, "The study folder"), written out here on purpose:
#: the suite must not take the contract from the code it tests.
REQUIRED = {
    "employees": ["employee_id", "hire_date"],
    "goals": ["goal_id", "owner_id", "cycle"],
    "reviews": ["employee_id", "cycle"],
    "surveys": ["employee_id", "survey_date"],
    "programs": ["employee_id", "program", "start_date"],
    "feedback": ["employee_id", "date", "kind"],
    "job_history": ["employee_id", "effective_date"],
}
OPTIONAL = {
    "employees": ["termination_date", "termination_type", "department", "job_level", "manager_id", "location",
                  "gender", "birth_year"],
    "goals": ["parent_goal_id", "weight", "attainment"],
    "reviews": ["rating", "target_attainment"],
    "surveys": ["engagement_1", "alignment_3"],
    "programs": ["end_date", "status"],
    "feedback": ["giver_id"],
    "job_history": ["manager_id", "department", "job_level", "location", "reason"],
}
ID_COLUMNS = {
    "employees": ["employee_id", "manager_id"],
    "goals": ["goal_id", "owner_id", "parent_goal_id"],
    "reviews": ["employee_id"],
    "surveys": ["employee_id"],
    "programs": ["employee_id"],
    "feedback": ["employee_id", "giver_id"],
    "job_history": ["employee_id", "manager_id"],
}
PERSON_ID_COLUMNS = {"employee_id", "manager_id", "owner_id", "giver_id"}
DATE_COLUMNS = {
    "employees": ["hire_date", "termination_date"],
    "surveys": ["survey_date"],
    "programs": ["start_date", "end_date"],
    "feedback": ["date"],
    "job_history": ["effective_date"],
}
NUMERIC_COLUMNS = {
    "employees": ["job_level", "birth_year"],
    "goals": ["weight", "attainment"],
    "reviews": ["rating", "target_attainment"],
    "surveys": ["engagement_1", "alignment_2"],
    "job_history": ["job_level"],
}
#: Missing-value markers that are not pandas' defaults, with the white space exports add.
NA_MARKERS = (" NA", "N/A ", "-", "none", "nil", "?")
IMPOSSIBLE_DATES = ("2023-02-30", "2022-13-01", "2021-04-31", "0000-00-00", "2022-00-10", "31/31/2021")
NON_NUMBERS = ("four", "3 stars", "1,5", "n.a.", ">=4", "1e999", "4 (good)", "TRUE")  # "--" is a default missing marker
#: A hire date beyond the window end + 5 years (the contract's plausibility limit) and one after the window only.
FAR_FUTURE = "2031-03-15"
NEAR_FUTURE = "2027-06-01"


# --------------------------------------------------------------------------- what an op did
@dataclass(frozen=True)
class Expect:
    """A corruption the user must be told about.

    ``validate`` either stops (exit 1 with a message) or prints a problem line
    naming ``file`` and ``column`` and, when ``rows`` is given, one of those
    spreadsheet rows (header = row 1; all of them when ``every_row``), or, for
    column-level damage (``rows`` None), no data row. ``refuse``: ``validate``, ``clean`` and
    ``run`` must exit 1 (the study must not be used as it is).
    """

    file: str
    column: str | None = None
    rows: tuple[int, ...] | None = None
    refuse: bool = False
    why: str = ""
    every_row: bool = False  # each of ``rows`` must be named (damage to cells), not just one of them


@dataclass
class Applied:
    """What one op did: a short note, expectations, and settings the study now needs."""

    op: str
    note: str
    expects: list[Expect] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    table: str | None = None  # the table whose file the op changed
    cells: list[tuple[int, str, str, str]] = field(default_factory=list)  # (row, column, rule, value) when exact


# --------------------------------------------------------------------------- table files
@dataclass
class TableFile:
    """A table as text cells: header, data rows and, for xlsx, the size of each sheet."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    sheets: list[int] | None = None  # rows per sheet for .xlsx; None for .csv
    empty: bool = False  # 0-byte file (no header)

    def col(self, name: str) -> int | None:
        return self.header.index(name) if name in self.header else None

    def get(self, i: int, name: str) -> str:
        j = self.col(name)
        row = self.rows[i]
        return row[j] if j is not None and j < len(row) else ""

    def set(self, i: int, name: str, value: str) -> None:
        j = self.col(name)
        row = self.rows[i]
        while len(row) <= j:
            row.append("")
        row[j] = value


def study_yaml(study: Path) -> dict:
    return yaml.safe_load((study / "study.yaml").read_text(encoding="utf-8"))


def write_study_yaml(study: Path, config: dict) -> None:
    (study / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def table_path(study: Path, table: str) -> Path | None:
    """The file a table is read from: study.yaml ``files`` (may point anywhere), else ``<table>.<suffix>``."""
    files = (study_yaml(study) or {}).get("files") or {}
    if table in files:
        p = Path(files[table])
        return p if p.is_absolute() else study / p
    for suffix in SUFFIXES:
        if (study / f"{table}{suffix}").exists():
            return study / f"{table}{suffix}"
    return None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d")
    return str(value)


def read_file(path: Path) -> TableFile:
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True)
        header, rows, sizes = [], [], []
        for ws in wb.worksheets:
            values = [[_cell(v) for v in r] for r in ws.iter_rows(values_only=True)]
            if not values:
                sizes.append(0)
                continue
            header = header or values[0]
            rows.extend(values[1:])
            sizes.append(len(values) - 1)
        wb.close()
        return TableFile(path, header, rows, sheets=sizes)
    text = path.read_text(encoding="utf-8-sig")
    if not text:
        return TableFile(path, [], [], empty=True)
    records = list(csv.reader(text.splitlines()))
    return TableFile(path, records[0] if records else [], records[1:])


def write_file(tf: TableFile) -> None:
    if tf.empty:
        tf.path.write_text("", encoding="utf-8")
        return
    if tf.path.suffix == ".xlsx":
        from openpyxl import Workbook

        wb = Workbook()
        wb.remove(wb.active)
        sizes = tf.sheets or [len(tf.rows)]
        sizes = sizes[:-1] + [len(tf.rows) - sum(sizes[:-1])]  # ops may add or drop rows: the last sheet absorbs it
        start = 0
        for k, size in enumerate(sizes):
            ws = wb.create_sheet(f"Sheet{k + 1}")
            ws.append(tf.header)
            for row in tf.rows[start:start + size]:
                ws.append(row)
            start += size
        wb.save(tf.path)
        return
    with tf.path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(tf.header)
        w.writerows(tf.rows)


def open_table(study: Path, table: str, *, need_rows: bool = True) -> TableFile | None:
    """The table's file as cells, or None when it is absent, empty, header-only (``need_rows``)
    or not a CSV/xlsx: the op then skips."""
    path = table_path(study, table)
    if path is None or not path.exists() or path.suffix not in (".csv", ".xlsx"):
        return None
    tf = read_file(path)
    if tf.empty or not tf.header or (need_rows and not tf.rows):
        return None
    return tf


def count_rows_in(path: Path) -> int:
    """Data rows in a table file, as a person would count them: every record after the header, every sheet."""
    if path.suffix == ".xlsx":
        return len(read_file(path).rows)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    tf = read_file(path)
    return len(tf.rows)


def person_ids(study: Path) -> set[str]:
    """Every person id in the study's files (employee, manager, owner, giver), stripped; markers excluded."""
    ids: set[str] = set()
    for table in TABLES:
        tf = open_table(study, table)
        if tf is None:
            continue
        for j, name in enumerate(tf.header):
            if name.strip() in PERSON_ID_COLUMNS:
                ids |= {r[j].strip() for r in tf.rows if j < len(r) and r[j].strip()}
    # the markers an op injects are missing values, not people (searching reports for "none" finds English)
    return ids - {m.strip() for m in NA_MARKERS}


# --------------------------------------------------------------------------- helpers for ops
def _rows_of(tf: TableFile, picks: list[int]) -> list[int]:
    """Map drawn integers onto distinct row positions of the table."""
    n = len(tf.rows)
    out: list[int] = []
    for p in picks:
        i = p % n
        while i in out and len(out) < n:
            i = (i + 1) % n
        if i not in out:
            out.append(i)
    return out


def _row_no(i: int) -> int:
    """Spreadsheet row number of data row i (the header is row 1)."""
    return i + 2


def _skip(op: str, why: str) -> Applied:
    return Applied(op, f"skipped: {why}")


def _picks(min_size=1, max_size=6):
    return st.lists(st.integers(0, 10_000), min_size=min_size, max_size=max_size)


# --------------------------------------------------------------------------- the operations
def drop_column(study: Path, *, table: str, column: str) -> Applied:
    """Remove one column (required or optional) from a table."""
    tf = open_table(study, table, need_rows=False)
    if tf is None or tf.col(column) is None:
        return _skip("drop_column", f"{table}.{column} not there")
    j = tf.col(column)
    tf.header.pop(j)
    for r in tf.rows:
        if j < len(r):
            r.pop(j)
    write_file(tf)
    required = column in REQUIRED[table]
    expects = [Expect(tf.path.name, column, None, why="required column missing")] if required else []
    return Applied("drop_column", f"{tf.path.name}: dropped {column}", expects)


def duplicate_header(study: Path, *, table: str, column: str, same_values: bool) -> Applied:
    """Append a second column with the same header as an existing one (same or other values)."""
    tf = open_table(study, table, need_rows=False)
    if tf is None or tf.col(column) is None:
        return _skip("duplicate_header", f"{table}.{column} not there")
    j = tf.col(column)
    n = len(tf.rows)
    for k, r in enumerate(tf.rows):
        src = tf.rows[k if same_values else (k + 1) % n]
        r.append(src[j] if j < len(src) else "")
    tf.header.append(column)
    write_file(tf)
    return Applied("duplicate_header", f"{tf.path.name}: header {column!r} twice",
                   [Expect(tf.path.name, column, None, why="duplicate column header")])


def mix_date_formats(study: Path, *, table: str, column: str, picks: list[int]) -> Applied:
    """Rewrite some ISO dates day-first (dd/mm/yyyy), as a second export tool would."""
    tf = open_table(study, table)
    if tf is None or tf.col(column) is None:
        return _skip("mix_date_formats", f"{table}.{column} not there")
    changed = []
    for i in _rows_of(tf, picks):
        v = tf.get(i, column).strip()
        try:
            d = dt.date.fromisoformat(v)
        except ValueError:
            continue
        tf.set(i, column, d.strftime("%d/%m/%Y"))
        changed.append(_row_no(i))
    if not changed:
        return _skip("mix_date_formats", f"no ISO dates in picked rows of {table}.{column}")
    write_file(tf)
    return Applied("mix_date_formats", f"{tf.path.name}: {len(changed)} {column} day-first",
                   [Expect(tf.path.name, column, tuple(changed), why="day-first date not in date_formats", every_row=True)])


def inject_na_markers(study: Path, *, table: str, column: str, picks: list[int], markers: list[str]) -> Applied:
    """Replace id or date cells by missing-value markers study.yaml does not declare."""
    tf = open_table(study, table)
    if tf is None or tf.col(column) is None:
        return _skip("inject_na_markers", f"{table}.{column} not there")
    rows = _rows_of(tf, picks)
    for k, i in enumerate(rows):
        tf.set(i, column, markers[k % len(markers)])
    write_file(tf)
    # a marker in a required column leaves the row without a usable value: it must be reported
    expects = [Expect(tf.path.name, column, tuple(_row_no(i) for i in rows), why="missing-value marker in a required field", every_row=True)] \
        if column in REQUIRED[table] else []
    return Applied("inject_na_markers", f"{tf.path.name}: {column} markers {sorted(set(markers))} in {len(rows)} rows",
                   expects)


def _spells_overlap(tf: TableFile, a: int, b: int) -> bool:
    """Whether the employment spells of rows a and b overlap in time (a manager loop needs both employed)."""
    try:
        hires = [dt.date.fromisoformat(tf.get(i, "hire_date").strip()) for i in (a, b)]
        ends = [dt.date.fromisoformat(tf.get(i, "termination_date").strip()) if tf.get(i, "termination_date").strip()
                else dt.date.max for i in (a, b)]
    except ValueError:
        return False
    return hires[0] <= ends[1] and hires[1] <= ends[0]


def _reference_cycle(study: Path, picks: list[int], *, op: str, table: str, key: str, ref: str,
                     pair: str, own: str, same_cycle: bool = False, pair_ok=None) -> Applied:
    """Rows A and B reference each other through ``ref``; row C references itself.

    ``pair_ok(tf, a, b)``, when given, must hold for A and B: B is the next row after the drawn one that
    passes (spells that never overlap in time do not manage each other, so they form no loop).
    """
    tf = open_table(study, table)
    if tf is None or tf.col(ref) is None or tf.col(key) is None or len(tf.rows) < 3:
        return _skip(op, f"no {table} with {ref}")
    a, b, c = _rows_of(tf, picks + [1, 2, 3])[:3]
    if pair_ok is not None and not pair_ok(tf, a, b):
        fits = [i for i in list(range(b, len(tf.rows))) + list(range(b)) if i not in (a, c) and pair_ok(tf, a, i)]
        if not fits:
            return _skip(op, f"no {table} row pairs with row {_row_no(a)}")
        b = fits[0]
    ka, kb, kc = (tf.get(i, key).strip() for i in (a, b, c))
    if not ka or not kb or not kc or len({ka, kb, kc}) < 3:
        return _skip(op, f"picked rows lack distinct {key}s")
    if same_cycle and tf.col("cycle") is not None:
        tf.set(b, "cycle", tf.get(a, "cycle"))
    tf.set(a, ref, kb)
    tf.set(b, ref, ka)
    tf.set(c, ref, kc)
    write_file(tf)
    name = tf.path.name
    return Applied(op, f"{name}: {ka}<->{kb} {pair}, {kc} {own}", [
        Expect(name, ref, (_row_no(a), _row_no(b)), why=OP_WHY[op][0]),
        Expect(name, ref, (_row_no(c),), why=OP_WHY[op][1]),
    ])


#: What the validation report must say about each row of a reference cycle.
OP_WHY = {
    "manager_cycle": ("manager cycle", "self-managed employee"),
    "goal_parent_cycle": ("goal parent cycle", "goal is its own parent"),
}


def manager_cycle(study: Path, *, picks: list[int]) -> Applied:
    """A manages B and B manages A; C manages themself."""
    return _reference_cycle(study, picks, op="manager_cycle", table="employees", key="employee_id",
                            ref="manager_id", pair="manage each other", own="manages self", pair_ok=_spells_overlap)


def goal_parent_cycle(study: Path, *, picks: list[int]) -> Applied:
    """Goal G1's parent is G2 and G2's is G1 (same cycle); G3 is its own parent."""
    return _reference_cycle(study, picks, op="goal_parent_cycle", table="goals", key="goal_id",
                            ref="parent_goal_id", pair="parents of each other", own="its own parent",
                            same_cycle=True)


def tiny_departments(study: Path, *, picks: list[int]) -> Applied:
    """Move 3 employees to a new department and 4 to another: groups below min_group_size (5)."""
    tf = open_table(study, "employees")
    if tf is None or tf.col("department") is None or len(tf.rows) < 7:
        return _skip("tiny_departments", "no department column")
    rows = _rows_of(tf, picks + list(range(7)))[:7]
    ids = [tf.get(i, "employee_id").strip() for i in rows]
    # every spell of a picked person moves, so the group really has 3 (4) distinct people
    for i, r in enumerate(tf.rows):
        eid = tf.get(i, "employee_id").strip()
        if eid in ids[:3]:
            tf.set(i, "department", "Skunkworks")
        elif eid in ids[3:]:
            tf.set(i, "department", "Treasury")
    write_file(tf)
    return Applied("tiny_departments", f"{tf.path.name}: departments of 3 and 4 people")


def rehires_pseudonymised(study: Path, *, picks: list[int], gap_days: int) -> Applied:
    """Give some leavers a second spell (same id, hired again later) and switch on ``pseudonymise: true``."""
    tf = open_table(study, "employees")
    if tf is None or tf.col("termination_date") is None or tf.col("hire_date") is None:
        return _skip("rehires_pseudonymised", "no termination_date")
    config = study_yaml(study)
    end = dt.date.fromisoformat(str(config["window"]["end"]))
    leavers = []
    for i in range(len(tf.rows)):
        try:
            t = dt.date.fromisoformat(tf.get(i, "termination_date").strip())
        except ValueError:
            continue
        if t + dt.timedelta(days=gap_days + 60) <= end:
            leavers.append((i, t))
    if not leavers:
        return _skip("rehires_pseudonymised", "no leavers early enough")
    chosen = sorted({p % len(leavers) for p in picks})
    ids = set()
    for k in chosen:
        i, t = leavers[k]
        row = list(tf.rows[i])
        tf.rows.append(row)
        n = len(tf.rows) - 1
        tf.set(n, "hire_date", (t + dt.timedelta(days=gap_days)).isoformat())
        tf.set(n, "termination_date", "")
        if tf.col("termination_type") is not None:
            tf.set(n, "termination_type", "")
        ids.add(tf.get(i, "employee_id"))
    write_file(tf)
    config["pseudonymise"] = True
    config.setdefault("pseudonym_key_env", "ALIGNMENT_RESEARCH_KEY")
    write_study_yaml(study, config)
    key_env = config.get("pseudonym_key_env") or "ALIGNMENT_RESEARCH_KEY"
    return Applied("rehires_pseudonymised", f"{tf.path.name}: {len(ids)} rehired after {gap_days} days; pseudonymise on",
                   env={key_env: "hostile-suite-key-0123456789"})


def split_xlsx(study: Path, *, table: str, first_share: float) -> Applied:
    """Convert a table's CSV into an .xlsx workbook with its rows split over two sheets."""
    tf = open_table(study, table)
    if tf is None or tf.path.suffix != ".csv" or len(tf.rows) < 2:
        return _skip("split_xlsx", f"{table} is not a CSV with rows")
    k = min(max(1, int(len(tf.rows) * first_share)), len(tf.rows) - 1)
    old = tf.path
    new = old.with_suffix(".xlsx")
    if new.exists() or new.parent != study:
        return _skip("split_xlsx", f"{new.name} exists or the file lies outside the folder")
    write_file(TableFile(new, tf.header, tf.rows, sheets=[k, len(tf.rows) - k]))
    old.unlink()
    config = study_yaml(study)
    files = config.get("files") or {}
    if table in files or any(f.startswith(table + ".") for f in files.values()):
        files[table] = new.name
        config["files"] = files
        write_study_yaml(study, config)
    return Applied("split_xlsx", f"{new.name}: {k} + {len(tf.rows) - k} rows on two sheets")


def path_outside(study: Path, *, table: str, how: str) -> Applied:
    """Move a table's file out of the study folder and point study.yaml ``files`` at it (absolute or ``..``)."""
    path = table_path(study, table)
    if path is None or not path.exists() or path.parent.resolve() != study.resolve():
        return _skip("path_outside", f"{table} not a file in the folder")
    outside = study.parent / f"outside_{study.name}_{path.name}"
    shutil.move(path, outside)
    config = study_yaml(study)
    files = config.get("files") or {}
    files[table] = str(outside.resolve()) if how == "absolute" else f"../{outside.name}"
    config["files"] = files
    write_study_yaml(study, config)
    return Applied("path_outside", f"files.{table}: {files[table]}",
                   [Expect(outside.name, None, None, refuse=True, why="a file outside the study folder")])


def future_hire_dates(study: Path, *, picks: list[int], far: bool) -> Applied:
    """Hire dates in the future: beyond window end + 5 years (far) or just after the window (near)."""
    tf = open_table(study, "employees")
    if tf is None or tf.col("hire_date") is None:
        return _skip("future_hire_dates", "no hire_date")
    rows = _rows_of(tf, picks)
    for i in rows:
        tf.set(i, "hire_date", FAR_FUTURE if far else NEAR_FUTURE)
        if tf.col("termination_date") is not None:
            tf.set(i, "termination_date", "")
        if tf.col("termination_type") is not None:
            tf.set(i, "termination_type", "")
    write_file(tf)
    expects = [Expect(tf.path.name, "hire_date", tuple(_row_no(i) for i in rows), why="implausible future hire date", every_row=True)] \
        if far else []
    return Applied("future_hire_dates", f"{tf.path.name}: {len(rows)} hired {FAR_FUTURE if far else NEAR_FUTURE}",
                   expects)


def impossible_dates(study: Path, *, table: str, column: str, picks: list[int]) -> Applied:
    """Dates that do not exist (30 February, month 13, 0000-00-00, ...)."""
    tf = open_table(study, table)
    if tf is None or tf.col(column) is None:
        return _skip("impossible_dates", f"{table}.{column} not there")
    rows = _rows_of(tf, picks)
    for k, i in enumerate(rows):
        tf.set(i, column, IMPOSSIBLE_DATES[k % len(IMPOSSIBLE_DATES)])
    write_file(tf)
    return Applied("impossible_dates", f"{tf.path.name}: {len(rows)} impossible {column}",
                   [Expect(tf.path.name, column, tuple(_row_no(i) for i in rows), why="impossible date", every_row=True)])


def non_numeric(study: Path, *, table: str, column: str, picks: list[int]) -> Applied:
    """Text in a numeric column ("four", "3 stars", "1,5", "1e999", ...)."""
    tf = open_table(study, table)
    if tf is None or tf.col(column) is None:
        return _skip("non_numeric", f"{table}.{column} not there")
    rows = _rows_of(tf, picks)
    for k, i in enumerate(rows):
        tf.set(i, column, NON_NUMBERS[k % len(NON_NUMBERS)])
    write_file(tf)
    return Applied("non_numeric", f"{tf.path.name}: {len(rows)} non-numeric {column}",
                   [Expect(tf.path.name, column, tuple(_row_no(i) for i in rows), why="not a number", every_row=True)])


def empty_file(study: Path, *, table: str) -> Applied:
    """Truncate a table's file to 0 bytes."""
    path = table_path(study, table)
    if path is None or not path.exists():
        return _skip("empty_file", f"no {table} file")
    path.write_bytes(b"")
    return Applied("empty_file", f"{path.name}: 0 bytes", [Expect(path.name, None, None, why="empty file")])


def header_only(study: Path, *, table: str) -> Applied:
    """Keep only the header row of a table."""
    tf = open_table(study, table)
    if tf is None:
        return _skip("header_only", f"no readable {table} file")
    tf.rows = []
    tf.sheets = [0] if tf.sheets else None
    write_file(tf)
    expects = [Expect(tf.path.name, None, None, why="employees without rows")] if table == "employees" else []
    return Applied("header_only", f"{tf.path.name}: header only", expects)


def write_job_history(study: Path) -> None:
    """Give a study a job_history.csv made from its employees.csv, as an HRIS would export it.

    Each spell gets its hire row (the values of employees, reason ``hire``); every third spell still
    employed a year after hire is promoted then (level + 1, ``Promotion``), and every fifth of those
    also gets a new manager (the manager of the next spell in the file, ``Manager Change``). Used
    when the simulator writes no job_history, so every op can also reach this table.
    """
    emp = read_file(study / "employees.csv")
    header = ["employee_id", "effective_date", "manager_id", "department", "job_level", "location", "reason"]
    rows = []
    for i in range(len(emp.rows)):
        hire = emp.get(i, "hire_date").strip()
        rows.append([emp.get(i, "employee_id"), hire, emp.get(i, "manager_id"), emp.get(i, "department"),
                     emp.get(i, "job_level"), emp.get(i, "location"), "hire"])
        try:
            later = dt.date.fromisoformat(hire) + dt.timedelta(days=365)
            level = int(emp.get(i, "job_level"))
        except ValueError:
            continue
        end = emp.get(i, "termination_date").strip()
        if i % 3 or level >= 5 or (end and dt.date.fromisoformat(end) <= later):
            continue
        manager = emp.get((i + 1) % len(emp.rows), "manager_id") if i % 5 == 0 else emp.get(i, "manager_id")
        rows.append([emp.get(i, "employee_id"), later.isoformat(), manager, emp.get(i, "department"), str(level + 1),
                     emp.get(i, "location"), "Manager Change" if i % 5 == 0 else "Promotion"])
    write_file(TableFile(study / "job_history.csv", header, rows))


#: The optional goals columns (issue 15) as a goal tool exports them: vendor headers (mapped in study.yaml
#: ``column_maps``) and, per column, the hostile cells written into picked rows, each with the rule it must get.
GOAL_VENDOR_HEADERS = {"difficulty": "Difficulty Rating", "target": "Target Value", "baseline": "Baseline Value",
                       "set_with": "Set By", "revised_date": "Revised On"}
HOSTILE_GOAL_CELLS = {
    "difficulty": [("0", "out_of_range_difficulty"), ("6", "out_of_range_difficulty"), ("four", "not_a_number"),
                   ("1e999", "not_a_number"), ("-3", "out_of_range_difficulty"),
                   ("4 (hard)", "not_a_number")],
    "target": [("n.a.", "not_a_number"), ("1,5", "not_a_number"), ("inf", "not_a_number")],
    "baseline": [("0", "zero_baseline"), (">=4", "not_a_number")],
    "set_with": [("boss", "unknown_category"), ("HR", "unknown_category"), ("1", "unknown_category")],
    "revised_date": [("2023-02-30", "unparseable_date"), ("1900-01-01", "revised_before_cycle"),
                     ("2099-01-01", "revised_after_cycle"), ("yesterday", "unparseable_date")],
}


def hostile_goal_columns(study: Path, *, picks: list[int]) -> Applied:
    """Give goals the optional columns under vendor names, good values everywhere but hostile ones in picked rows.

    Canonical optional columns already there (the simulator writes difficulty, set_with, revised_date) are dropped:
    the vendor's columns replace them.

    Good rows: difficulty 1-5, target 10% above a baseline of 100, set_with in the vendor's words (``Together``,
    mapped by ``set_with_map``; ``Manager``, ``employee``), every third goal revised 100 days into its cycle. Picked
    rows get the cells of :data:`HOSTILE_GOAL_CELLS`, one column per pick in turn; each must be named with its rule.
    """
    tf = open_table(study, "goals")
    if tf is None or tf.col("cycle") is None:
        return _skip("hostile_goal_columns", "goals.cycle not there")
    config = study_yaml(study)
    starts = {str(c["name"]): dt.date.fromisoformat(str(c["start"])) for c in config.get("cycles") or []}
    keep = [j for j, name in enumerate(tf.header) if name not in GOAL_VENDOR_HEADERS]  # the vendor's replace them
    tf.header = [tf.header[j] for j in keep] + [GOAL_VENDOR_HEADERS[c] for c in GOAL_VENDOR_HEADERS]
    tf.rows[:] = [[row[j] for j in keep] for row in tf.rows]
    words = ("Together", "Manager", "employee")
    for i, row in enumerate(tf.rows):
        start = starts.get(tf.get(i, "cycle").strip())
        revised = (start + dt.timedelta(days=100)).isoformat() if start and i % 3 == 0 else ""
        row.extend([str(1 + i % 5), str(100 + 10 * (1 + i % 3)), "100", words[i % 3], revised])
    rows = _rows_of(tf, picks)
    columns = list(HOSTILE_GOAL_CELLS)
    expects, cells = [], []
    for k, i in enumerate(rows):
        column = columns[k % len(columns)]
        value, rule = HOSTILE_GOAL_CELLS[column][(k // len(columns)) % len(HOSTILE_GOAL_CELLS[column])]
        tf.set(i, GOAL_VENDOR_HEADERS[column], value)
        cells.append((_row_no(i), column, rule, value))
        expects.append(Expect(tf.path.name, column, (_row_no(i),), why=rule, every_row=True))
    write_file(tf)
    maps = config.setdefault("column_maps", {}) or {}
    maps["goals"] = {**(maps.get("goals") or {}), **{v: k for k, v in GOAL_VENDOR_HEADERS.items()}}
    config["column_maps"] = maps
    config["set_with_map"] = {"Together": "jointly"}
    write_study_yaml(study, config)
    return Applied("hostile_goal_columns", f"{tf.path.name}: goal columns under vendor names, {len(rows)} hostile",
                   expects, table="goals", cells=cells)


def vendor_history(study: Path, *, bom: bool) -> Applied:
    """Rename job_history's columns as a vendor does (mapped in study.yaml `column_maps`), with Excel's BOM."""
    tf = open_table(study, "job_history")
    if tf is None or tf.path.suffix != ".csv" or tf.col("effective_date") is None:
        return _skip("vendor_history", "no job_history.csv with effective_date")
    names = {"employee_id": "Worker ID", "effective_date": "Effective Date", "manager_id": "Supervisor ID",
             "reason": "Action Reason"}
    config = study_yaml(study)
    maps = config.get("column_maps") or {}
    maps["job_history"] = {names[c]: c for c in tf.header if c in names}
    config["column_maps"] = maps
    tf.header = [names.get(c, c) for c in tf.header]
    write_file(tf)
    if bom:
        tf.path.write_bytes(b"\xef\xbb\xbf" + tf.path.read_bytes())
    write_study_yaml(study, config)
    return Applied("vendor_history", f"{tf.path.name}: vendor column names{' and a BOM' if bom else ''}")


def history_conflicts(study: Path, *, picks: list[int]) -> Applied:
    """Append job_history rows that break the history rules: before hire, after termination, two on one day."""
    tf = open_table(study, "job_history")
    emp = open_table(study, "employees")
    if tf is None or emp is None or tf.col("effective_date") is None or tf.col("employee_id") is None:
        return _skip("history_conflicts", "no job_history with employee_id and effective_date")
    leavers, stayers = [], []
    seen: dict[str, int] = {}
    for k in range(len(emp.rows)):
        seen[emp.get(k, "employee_id").strip()] = seen.get(emp.get(k, "employee_id").strip(), 0) + 1
    for i in _rows_of(emp, picks + list(range(40))):
        try:  # a plain spell: one of its person, ISO dates in order, hired after 1990
            hire = dt.date.fromisoformat(emp.get(i, "hire_date").strip())
            end = emp.get(i, "termination_date").strip()
            end_date = dt.date.fromisoformat(end) if end else None
        except ValueError:
            continue
        if seen.get(emp.get(i, "employee_id").strip()) != 1 or hire.year < 1990 or (end_date and end_date <= hire):
            continue
        (leavers if end_date else stayers).append((i, hire, end_date))
    if not leavers or not stayers:
        return _skip("history_conflicts", "no usable leaver and stayer")
    ids = {emp.get(i, "employee_id").strip() for i in range(len(emp.rows))}
    if any(emp.get(i, "employee_id").strip() == emp.get(j, "employee_id").strip()
           for i, *_ in leavers[:1] for j, *_ in stayers[:1]):
        return _skip("history_conflicts", "picked rows are one person")
    n_before = len(tf.rows)

    def add(emp_row: int, date: dt.date, manager: str) -> int:
        row = [""] * len(tf.header)
        tf.rows.append(row)
        k = len(tf.rows) - 1
        tf.set(k, "employee_id", emp.get(emp_row, "employee_id"))
        tf.set(k, "effective_date", date.isoformat())
        if tf.col("manager_id") is not None:
            tf.set(k, "manager_id", manager)
        return _row_no(k)

    i, hire, _ = stayers[0]
    before = add(i, hire - dt.timedelta(days=400), "")
    j, _, end = leavers[0]
    after = add(j, end + dt.timedelta(days=30), "")
    day = hire + dt.timedelta(days=100)
    others = sorted(ids - {emp.get(i, "employee_id").strip()})
    same = (add(i, day, others[0]), add(i, day, others[1]))
    write_file(tf)
    name = tf.path.name
    # another op may damage the employee's own row (then the history row is reported for that instead):
    # whatever the rule, each of these rows must be named
    return Applied("history_conflicts", f"{name}: {len(tf.rows) - n_before} rows breaking history rules", [
        Expect(name, None, (before,), why="history row before hire", every_row=True),
        Expect(name, None, (after,), why="history row after termination", every_row=True),
        Expect(name, None, same, why="two history rows on one day disagree", every_row=True),
    ])


# --------------------------------------------------------------------------- the catalogue
@dataclass(frozen=True)
class Op:
    """A named corruption: ``apply(study, **params)`` with params drawn from ``params``."""

    name: str
    apply: Callable[..., Applied]
    params: st.SearchStrategy
    example: dict
    table: str | None = None  # the table the op changes, when no ``table`` parameter names it

    def __call__(self, study: Path, **params) -> Applied:
        done = self.apply(study, **params)
        if not done.note.startswith("skipped"):
            done.table = params.get("table", self.table)
        return done

    def __repr__(self) -> str:  # a failing example prints as op names and parameters
        return self.name

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis' pretty printer (it would list every field)
        p.text(self.name)


def _pairs(mapping: dict) -> list[tuple[str, str]]:
    return [(t, c) for t, cols in mapping.items() for c in cols]


def _table_column(pairs):
    return st.sampled_from(pairs).map(lambda tc: {"table": tc[0], "column": tc[1]})


def _with(base: st.SearchStrategy, **more) -> st.SearchStrategy:
    return st.tuples(base, st.fixed_dictionaries(more)).map(lambda t: {**t[0], **t[1]})


_ALL_COLUMNS = _pairs(REQUIRED) + _pairs(OPTIONAL)
_ID_OR_DATE = _pairs(ID_COLUMNS) + _pairs(DATE_COLUMNS)
_SMALL_TABLES = ["employees", "reviews", "programs", "surveys"]

OPS: list[Op] = [
    Op("drop_column", drop_column, _table_column(_ALL_COLUMNS),
       {"table": "employees", "column": "hire_date"}),
    Op("duplicate_header", duplicate_header, _with(_table_column(_ALL_COLUMNS), same_values=st.booleans()),
       {"table": "employees", "column": "employee_id", "same_values": True}),
    Op("mix_date_formats", mix_date_formats, _with(_table_column(_pairs(DATE_COLUMNS)), picks=_picks(1, 12)),
       {"table": "employees", "column": "hire_date", "picks": [5, 17, 40, 77]}),
    Op("inject_na_markers", inject_na_markers,
       _with(_table_column(_ID_OR_DATE), picks=_picks(1, 6),
             markers=st.lists(st.sampled_from(NA_MARKERS), min_size=1, max_size=6)),
       {"table": "employees", "column": "employee_id", "picks": [3, 9, 27, 81, 150, 243], "markers": list(NA_MARKERS)}),
    Op("manager_cycle", manager_cycle, st.fixed_dictionaries({"picks": _picks(3, 3)}), {"picks": [10, 20, 30]}, "employees"),
    Op("goal_parent_cycle", goal_parent_cycle, st.fixed_dictionaries({"picks": _picks(3, 3)}), {"picks": [100, 200, 300]}, "goals"),
    Op("tiny_departments", tiny_departments, st.fixed_dictionaries({"picks": _picks(7, 7)}),
       {"picks": [11, 22, 33, 44, 55, 66, 77]}, "employees"),
    Op("rehires_pseudonymised", rehires_pseudonymised,
       st.fixed_dictionaries({"picks": _picks(1, 5), "gap_days": st.sampled_from([1, 30, 400])}),
       {"picks": [0, 7, 13], "gap_days": 30}, "employees"),
    Op("split_xlsx", split_xlsx,
       st.fixed_dictionaries({"table": st.sampled_from(_SMALL_TABLES), "first_share": st.sampled_from([0.1, 0.5, 0.9])}),
       {"table": "employees", "first_share": 0.5}),
    Op("path_outside", path_outside,
       st.fixed_dictionaries({"table": st.sampled_from(list(TABLES)), "how": st.sampled_from(["absolute", "dotdot"])}),
       {"table": "reviews", "how": "dotdot"}),
    Op("future_hire_dates", future_hire_dates, st.fixed_dictionaries({"picks": _picks(1, 6), "far": st.booleans()}),
       {"picks": [4, 8, 15, 16, 23, 42], "far": True}, "employees"),
    Op("impossible_dates", impossible_dates, _with(_table_column(_pairs(DATE_COLUMNS)), picks=_picks(1, 6)),
       {"table": "employees", "column": "hire_date", "picks": [1, 2, 3, 4, 5, 6]}),
    Op("non_numeric", non_numeric, _with(_table_column(_pairs(NUMERIC_COLUMNS)), picks=_picks(1, 8)),
       {"table": "reviews", "column": "rating", "picks": [0, 1, 2, 3, 4, 5, 6, 7]}),
    Op("empty_file", empty_file, st.fixed_dictionaries({"table": st.sampled_from(list(TABLES))}), {"table": "goals"}),
    Op("header_only", header_only, st.fixed_dictionaries({"table": st.sampled_from(list(TABLES))}), {"table": "surveys"}),
    Op("vendor_history", vendor_history, st.fixed_dictionaries({"bom": st.booleans()}), {"bom": True}, "job_history"),
    Op("history_conflicts", history_conflicts, st.fixed_dictionaries({"picks": _picks(1, 4)}), {"picks": [3, 30]},
       "job_history"),
]
OPS_BY_NAME = {op.name: op for op in OPS}
