"""Hostile input: broken studies derived from a clean one, through the real command line.

Corruption operations (tests/hostile.py) are composed by hypothesis and applied
to a copy of a small simulated study; ``validate`` and ``clean`` run on every
example and ``run`` on a few. Whatever the input, the toolkit must

- exit 0 or 1, with no Python traceback in its output and no exception leaking
  out of the command;
- conserve rows: for every table, rows in the file(s) = rows in the clean table
  + rows in quarantine (counted here from the files, not taken from the
  toolkit's own counts), and the counts it reports must be those numbers;
- tell the user: a corruption that breaks the contract either stops
  ``validate`` with a message, or appears as a problem line naming the file,
  the column and (for cell-level damage) one of the damaged rows; a table read
  from outside the study folder is refused;
- show leadership no employee id (raw or pseudonymised) and no group below
  ``min_group_size``, in any report ``run`` writes.

Each operation also runs alone (parametrised), so every class of damage is
exercised deterministically. ``run`` executes only the leadership brief
(``06``) by default, to keep the file within a few minutes; set
``HOSTILE_ALL_NOTEBOOKS=1`` to render every notebook.
"""

from __future__ import annotations

import os
import re
import shutil
import traceback
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import alignment_research as ar
from alignment_research import run as run_module
from alignment_research.cli import app

import hostile as H

runner = CliRunner()

TRACEBACK = "Traceback (most recent call last)"
#: Notebooks ``run`` executes in these tests (the leadership brief); all with HOSTILE_ALL_NOTEBOOKS=1.
RUN_NOTEBOOKS = None if os.environ.get("HOSTILE_ALL_NOTEBOOKS") else ["06_leadership_brief"]


# --------------------------------------------------------------------------- the clean study, once
@pytest.fixture(scope="session")
def base_study(tmp_path_factory) -> Path:
    """``simulate_study(n_employees=300, seed=0)`` written as ``alignment-research simulate`` writes it."""
    folder = tmp_path_factory.mktemp("hostile_base") / "study"
    ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)
    (folder / "truth.yaml").unlink()  # not part of a study folder a researcher would have
    if not any((folder / f"job_history{suffix}").exists() for suffix in H.SUFFIXES):
        H.write_job_history(folder)  # every op can reach the optional table too
    return folder


def _fresh(base: Path, root: Path) -> Path:
    """A private copy of the base study under ``root`` (which also receives files moved 'outside')."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return Path(shutil.copytree(base, root / "study"))


def _apply(study: Path, plan, monkeypatch) -> list[H.Applied]:
    applied = []
    for op, params in plan:
        done = op(study, **params)
        for key, value in done.env.items():
            monkeypatch.setenv(key, value)
        applied.append(done)
    return applied


# --------------------------------------------------------------------------- invoking the CLI
def _invoke(args: list[str]):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True, terminal_width=200)


def _story(applied: list[H.Applied]) -> str:
    return "; ".join(f"{a.op}: {a.note}" for a in applied)


def _text(result) -> str:
    return (result.stdout or "") + "\n" + (result.stderr or "")


def _leaked(result) -> str:
    """The traceback of an exception that left the command, for the failure message."""
    if result.exc_info is None or isinstance(result.exception, SystemExit):
        return ""
    return "".join(traceback.format_exception(*result.exc_info))[-3000:]


def check_no_crash(result, command: str, applied) -> None:
    """Exit 0 or 1; no exception out of the command; no traceback printed."""
    where = f"`{command}` on [{_story(applied)}]"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{where}: exception leaked out of the command: {result.exception!r}\n{_leaked(result)}"
    )
    assert result.exit_code in (0, 1), f"{where}: exit code {result.exit_code}\n{_text(result)[-2000:]}"
    assert TRACEBACK not in _text(result), f"{where}: a traceback reached the user:\n{_text(result)[-3000:]}"


# --------------------------------------------------------------------------- conservation
def _read_quarantine(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def check_conservation(study: Path, out: Path, applied) -> None:
    """For every table read: rows in (counted from the file) = rows out + rows quarantined, and counts say so."""
    counts_file = out / "cleaning_counts.csv"
    counts = pd.read_csv(counts_file) if counts_file.exists() else pd.DataFrame(columns=["table"])
    for table in H.TABLES:
        path = H.table_path(study, table)
        if path is None or not path.exists():
            continue
        n_in = H.count_rows_in(path)
        clean_file = out / f"{table}.parquet"
        clean = pd.read_parquet(clean_file) if clean_file.exists() else pd.DataFrame()
        added = int((clean.index < 0).sum()) if len(clean) else 0  # job_history's hire rows made from employees
        clean = clean[clean.index >= 0] if len(clean) else clean
        quarantine = _read_quarantine(out / "quarantine" / f"{table}.csv")
        where = f"clean on [{_story(applied)}]: {table} ({path.name})"
        assert n_in == len(clean) + len(quarantine), (
            f"{where}: {n_in} rows in the file, {len(clean)} clean + {len(quarantine)} quarantined = "
            f"{len(clean) + len(quarantine)}"
        )
        if len(clean) and len(quarantine) and "row" in quarantine.columns:
            both = set(map(str, clean.index)) & set(quarantine["row"].astype(str))
            assert not both, f"{where}: rows both kept and quarantined: {sorted(both)[:10]}"
        if n_in:
            shown = counts[counts["table"] == table]
            assert len(shown) == 1, f"{where}: {n_in} rows read but cleaning_counts.csv has no row for it"
            got = shown.iloc[0]
            assert (int(got["rows_in"]), int(got["rows_out"]), int(got["rows_quarantined"])) == (
                n_in, len(clean), len(quarantine)
            ), f"{where}: cleaning_counts.csv says {got.to_dict()}, the files say in={n_in} out={len(clean)} q={len(quarantine)}"
            if added or "rows_added" in got:
                assert int(got["rows_added"]) == added, f"{where}: {added} hire rows made, counts say {got.to_dict()}"


# --------------------------------------------------------------------------- telling the user
def _entries(text: str) -> list[str]:
    """Problem lines, with lines the console wrapped joined back (an entry starts with its level)."""
    return re.split(r"\n(?=warn |FATAL |error)", text)


def _mentions(text: str, e: H.Expect) -> bool:
    rows_named: set[int] = set()
    for line in (entry.replace("\n", " ") for entry in _entries(text)):
        if e.file not in line:
            continue
        if e.column is not None and not re.search(rf"column {re.escape(e.column)}(?![\w.])", line):
            continue
        if e.rows is None:
            if re.search(r"\brow (?!1\b)\d+", line):  # a column-level problem names no data row
                continue
            return True
        named = {r for r in e.rows if re.search(rf"\brow {r}\b", line)}
        if named:
            rows_named |= named
            if not e.every_row:
                return True
    return e.rows is not None and e.every_row and rows_named == set(e.rows)


def check_reported(result, command: str, applied, *, strict: bool) -> None:
    """Every expectation of the ops is met by this command's result.

    ``strict`` (one op alone): a stop (exit 1) must name the damaged file. In
    compositions another op may be the reason for the stop, so any message will do;
    expectations of an op whose table a later op touched again are not checked.
    """
    text = _text(result)
    for k, a in enumerate(applied):
        retouched = any(b.table == a.table for b in applied[k + 1:]) and a.table is not None
        for e in a.expects:
            where = f"`{command}` on [{_story(applied)}]: {e.why}"
            if e.refuse:
                assert result.exit_code == 1, f"{where}: {e.file} was read, not refused:\n{text[:400]}"
                if strict:
                    assert e.file in text, f"{where}: the refusal does not name {e.file}:\n{text[-1500:]}"
                continue
            if command != "validate" or (retouched and not strict):
                continue
            if result.exit_code == 1:
                assert text.strip(), f"{where}: exit 1 without a message"
                if strict:
                    assert e.file in text, f"{where}: stopped without naming {e.file}:\n{text[-1500:]}"
                continue
            assert _mentions(text, e), (
                f"{where}: validate exits 0 and no problem line names {e.file}, column {e.column}"
                + (f", {'every one' if e.every_row else 'one'} of rows {list(e.rows)[:8]}" if e.rows else ", no data row")
                + "\nlines naming the file and column:\n" + "\n".join([x for x in _entries(text) if e.file in x and (e.column or "") in x][:12])
            )


# --------------------------------------------------------------------------- one example, end to end
def validate_and_clean(study: Path, applied, *, strict: bool) -> None:
    result = _invoke(["validate", study])
    check_no_crash(result, "validate", applied)
    check_reported(result, "validate", applied, strict=strict)
    out = study.parent / "clean_out"
    result = _invoke(["clean", study, "--out", out])
    check_no_crash(result, "clean", applied)
    check_reported(result, "clean", applied, strict=strict)
    if result.exit_code == 0:
        check_conservation(study, out, applied)


# --------------------------------------------------------------------------- every op alone
#: Every op with its fixed example, plus variants worth pinning down (the other branch of a parameter).
ALONE = [(op.name, op.example) for op in H.OPS] + [
    ("path_outside", {"table": "employees", "how": "absolute"}),
    ("drop_column", {"table": "goals", "column": "parent_goal_id"}),
    ("duplicate_header", {"table": "goals", "column": "goal_id", "same_values": False}),
    ("header_only", {"table": "employees"}),
    ("vendor_history", {"bom": False}),
    ("impossible_dates", {"table": "job_history", "column": "effective_date", "picks": [2, 4, 8]}),
    ("inject_na_markers", {"table": "job_history", "column": "manager_id", "picks": [1, 5], "markers": ["N/A ", "?"]}),
    ("non_numeric", {"table": "job_history", "column": "job_level", "picks": [0, 3, 6]}),
    ("drop_column", {"table": "job_history", "column": "effective_date"}),
]


@pytest.mark.parametrize("name, params", ALONE, ids=["-".join([n, *(str(v) for v in p.values() if not isinstance(v, list))]) for n, p in ALONE])
def test_each_corruption_alone(name, params, base_study, tmp_path, monkeypatch):
    study = _fresh(base_study, tmp_path / "w")
    applied = _apply(study, [(H.OPS_BY_NAME[name], params)], monkeypatch)
    assert not applied[0].note.startswith("skipped"), applied[0].note  # the example must bite
    validate_and_clean(study, applied, strict=True)


# --------------------------------------------------------------------------- compositions
@st.composite
def plans(draw):
    ops = draw(st.lists(st.sampled_from(H.OPS), min_size=1, max_size=3), label="ops")
    return [(op, draw(op.params, label=op.name)) for op in ops]


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    # no shrinking: an example costs seconds (two CLI calls on a 300-person study), and a plan of
    # at most three named ops with their parameters is already readable
    phases=(Phase.explicit, Phase.generate),
)
@given(plan=plans())
def test_composed_corruptions(plan, base_study, tmp_path, monkeypatch):
    with monkeypatch.context() as mp:  # env set by one example must not reach the next
        study = _fresh(base_study, tmp_path / "w")
        applied = _apply(study, plan, mp)
        validate_and_clean(study, applied, strict=False)


# --------------------------------------------------------------------------- run: leadership outputs
def _pseudonyms(ids: set[str], env: dict) -> set[str]:
    if not env:
        return set()
    key_env = next(iter(env))
    frame = pd.DataFrame({"employee_id": sorted(ids)})
    return set(ar.pseudonymise_ids(frame, ["employee_id"], key_env=key_env)["employee_id"].astype(str))


def _scan_outputs(out: Path, *, min_group_size: int, ids: set[str]) -> pd.DataFrame:
    """Every report run wrote (HTML, and CSV/XLSX exports if any), scanned for ids and small groups."""
    found = []
    for path in sorted(out.rglob("*")):
        if path.suffix == ".html" and "failed" not in path.parts:
            found.append(ar.privacy.scan_report(path, min_group_size=min_group_size, ids=ids))
        elif path.suffix in (".csv", ".xlsx"):
            frames = ([pd.read_csv(path, dtype=str, keep_default_na=False)] if path.suffix == ".csv"
                      else list(pd.read_excel(path, sheet_name=None, dtype=str).values()))
            for frame in frames:
                page = frame.to_html(index=False)
                hits = ar.privacy.find_identifiers(page, ids=ids)
                small = ar.privacy.find_small_groups(page, min_group_size=min_group_size)
                found.append(pd.DataFrame(
                    [{"file": path.name, "kind": r.kind, "detail": r.match} for r in hits.itertuples()]
                    + [{"file": path.name, "kind": "small_group", "detail": f"{r.column}={r.value:g}"}
                       for r in small.itertuples()],
                    columns=["file", "kind", "detail"],
                ))
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["file", "kind", "detail"])


RUN_PLANS = {
    # legitimate studies: run must succeed, and show leadership nothing personal
    "tiny_departments": ([("tiny_departments", {"picks": [11, 22, 33, 44, 55, 66, 77]})], True),
    "rehires_pseudonymised": ([("rehires_pseudonymised", {"picks": [0, 7, 13, 21], "gap_days": 30})], True),
    # damaged but usable (or refused with a message): exit 0 or 1, never a leak
    "cycles+na_markers+split_xlsx": ([
        ("manager_cycle", {"picks": [10, 20, 30]}),
        ("goal_parent_cycle", {"picks": [100, 200, 300]}),
        ("inject_na_markers", {"table": "employees", "column": "manager_id", "picks": [1, 2, 3, 4],
                               "markers": list(H.NA_MARKERS)}),
        ("split_xlsx", {"table": "employees", "first_share": 0.5}),
    ], False),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUN_PLANS))
def test_run_shows_leadership_nothing_personal(name, base_study, tmp_path, monkeypatch):
    steps, must_succeed = RUN_PLANS[name]
    study = _fresh(base_study, tmp_path / "w")
    applied = _apply(study, [(H.OPS_BY_NAME[op], params) for op, params in steps], monkeypatch)
    assert not any(a.note.startswith("skipped") for a in applied), _story(applied)
    ids = H.person_ids(study)
    env = {k: v for a in applied for k, v in a.env.items()}
    ids |= _pseudonyms(ids, env)
    min_group_size = int(H.study_yaml(study).get("min_group_size", 5))
    if RUN_NOTEBOOKS is not None:
        select = run_module._select_notebooks
        monkeypatch.setattr(run_module, "_select_notebooks",
                            lambda notebooks: select(RUN_NOTEBOOKS if notebooks is None else notebooks))
    out = tmp_path / "reports"
    result = _invoke(["run", study, "--out", out])
    check_no_crash(result, "run", applied)
    text = _text(result)
    assert "privacy finding" not in text, (
        f"run on [{_story(applied)}]: a notebook showed leadership ids or small groups (caught by the scan):\n{text[-2000:]}"
    )
    if must_succeed:
        assert result.exit_code == 0, f"run on [{_story(applied)}] (a usable study) failed:\n{text[-2000:]}"
        assert any(out.glob("*.html")), f"run on [{_story(applied)}] wrote no report"
    found = _scan_outputs(out, min_group_size=min_group_size, ids=ids) if out.exists() else pd.DataFrame()
    assert found.empty, f"run on [{_story(applied)}]: leadership outputs show\n{found.head(20).to_string()}"
