"""job_history and study.yaml covariates in the data contract: loading, cleaning, the seven history rules.

Every study here is built by hand in ``tmp_path`` (the rows and what must happen to each are written out
below), except the covariate test, which adds a ``pay_band`` column to the tiny simulated study. The last
test holds the promise of issue 13: a study without job_history gives exactly what it gave before.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import alignment_research as ar
from alignment_research.study import Study

REFERENCE = Path(__file__).parent / "reference"
SAMPLE = Path(__file__).parents[1] / "data" / "sample"

EMPLOYEES = """employee_id,hire_date,termination_date,termination_type,department,job_level,manager_id,location,pay_band
M1,2018-01-01,,,Exec,5,,HQ,B5
M2,2018-01-01,2022-06-30,voluntary,Exec,5,,HQ,B5
E1,2020-01-01,,,Sales,1,M1,HQ,B1
E2,2021-03-01,2023-03-31,voluntary,Sales,2,M1,Remote,B2
E3,2019-05-01,,,Finance,2,M2,HQ,B2
"""

#: job_history as a vendor exports it: its own column names, reasons in its own words. The comment of
#: each row says what cleaning must do with it (spreadsheet row numbers: the header is row 1).
HISTORY = [
    "Person ID,Eff Date,Supervisor,department,job_level,location,Action Reason",
    "E1,2020-01-01,M1,Sales,1,HQ,Hire",                 # row 2: kept (reason fixed to hire)
    "E1,2021-06-01,M2,Sales,2,HQ,Promotion",            # row 3: kept
    "E1,2022-01-01,M2,Sales,3,HQ,",                     # row 4: level 2 -> 3 without a reason (flagged)
    "E1,2023-01-01,M2,Marketing,3,HQ,Org Change",       # row 5: M2 left 2022-06-30 (flagged); reason_map
    "E2,2021-03-01,M9,Finance,2,Remote,hire",           # row 6: unknown manager; disagrees with employees at hire
    "E2,2020-01-01,M1,Sales,2,Remote,hire",             # row 7: before hire (quarantined)
    "E2,2023-06-01,M1,Sales,2,Remote,transfer",         # row 8: after termination (quarantined)
    "E3,2022-02-01,M1,Finance,2,HQ,manager change",     # row 9: same day as row 10, other manager (quarantined)
    "E3,2022-02-01,M2,Finance,2,HQ,manager change",     # row 10: (quarantined)
    "E3,2023-02-01,M1,Finance,2,HQ,Manager Change",     # row 11: kept
    "E1,2024-01-01,M1,Sales,3,HQ,sideways",             # row 12: reason unknown to reason_map (set missing)
]

CONFIG = {
    "window": {"start": "2021-01-01", "end": "2024-12-31"},
    "covariates": {"pay_band": "category"},
    "column_maps": {"job_history": {"Person ID": "employee_id", "Eff Date": "effective_date",
                                    "Supervisor": "manager_id", "Action Reason": "reason"}},
    "reason_map": {"Org Change": "reorganisation"},
}


def _write_study(folder: Path, *, history_kind: str = "csv", config: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(config or CONFIG), encoding="utf-8")
    (folder / "employees.csv").write_text(EMPLOYEES, encoding="utf-8")
    text = "\n".join(line.split("#")[0].rstrip() for line in HISTORY) + "\n"
    if history_kind == "csv":
        (folder / "job_history.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # Excel's BOM
    else:
        rows = [r.split(",") for r in text.splitlines()]
        frame = pd.DataFrame(rows[1:], columns=rows[0]).replace("", None)
        if history_kind == "parquet":
            frame.to_parquet(folder / "job_history.parquet", index=False)
        else:
            frame.to_excel(folder / "job_history.xlsx", index=False)
    return folder


@pytest.fixture(scope="module")
def hand_study(tmp_path_factory) -> Path:
    return _write_study(tmp_path_factory.mktemp("history") / "study")


@pytest.fixture(scope="module")
def hand_clean(hand_study):
    problems, clean = ar.validate_and_clean(ar.load_study(hand_study), progress=False)
    return problems, clean


#: What the report must say about the hand-built history: file, row, column, rule, value, action.
EXPECTED_HISTORY_ISSUES = [
    ("job_history.csv", 7, "effective_date", "history_before_hire", "2020-01-01", "quarantined"),
    ("job_history.csv", 8, "effective_date", "history_after_termination", "2023-06-01", "quarantined"),
    ("job_history.csv", 9, "employee_id+effective_date", "history_same_day_conflict", "E3|2022-02-01", "quarantined"),
    ("job_history.csv", 10, "employee_id+effective_date", "history_same_day_conflict", "E3|2022-02-01", "quarantined"),
    ("job_history.csv", 5, "manager_id", "history_manager_not_employed", "M2", "flagged"),
    ("job_history.csv", 6, "manager_id", "history_unknown_manager", "M9", "flagged"),
    ("job_history.csv", 4, "job_level", "history_level_change_without_reason", "2 -> 3", "flagged"),
    ("job_history.csv", 6, "manager_id", "history_disagrees_at_hire", "M9 (employees: M1)", "flagged"),
    ("job_history.csv", 6, "department", "history_disagrees_at_hire", "Finance (employees: Sales)", "flagged"),
]


def test_every_history_rule_fires_with_file_row_column_and_value(hand_clean):
    problems, clean = hand_clean
    assert clean is not None and not problems["fatal"].any()
    got = clean.report[clean.report["rule"].isin(ar.schema.HISTORY_RULES)].reset_index(drop=True)
    expected = pd.DataFrame(EXPECTED_HISTORY_ISSUES, columns=["file", "row", "column", "rule", "value", "action"])
    expected.insert(1, "table", "job_history")
    expected["row"] = expected["row"].astype("Int64")
    pd.testing.assert_frame_equal(got, expected)
    assert set(got["rule"]) == set(ar.schema.HISTORY_RULES)  # each of the seven, no more
    # what `alignment-research validate` prints names all five
    text = ar.validate.format_problems(problems, examples=None)
    for file, row, column, rule, value, _ in EXPECTED_HISTORY_ISSUES:
        assert f"warn {file}, row {row}, column {column}: {rule} (value: {value!r})" in text


def test_quarantined_rows_carry_their_rule_and_reason(hand_clean):
    _, clean = hand_clean
    q = clean.quarantine["job_history"]
    assert q["rule"].to_dict() == {7: "history_before_hire", 8: "history_after_termination",
                                   9: "history_same_day_conflict", 10: "history_same_day_conflict"}
    assert (q["reason"] == q["rule"].map(ar.schema.RULES)).all()
    assert q.loc[7, "reason_in_source"] == "hire" and q.loc[9, "manager_id"] == "M1"  # the row as read


def test_rows_are_conserved_and_hire_rows_are_counted_as_added(hand_clean):
    _, clean = hand_clean
    counts = clean.counts.set_index("table")
    assert counts.loc["job_history"].tolist() == [11, 7, 4, 3]  # rows_in, rows_out, rows_quarantined, rows_added
    assert (counts["rows_in"] == counts["rows_out"] + counts["rows_quarantined"]).all()
    history = clean.tables["job_history"]
    assert len(history) == counts.loc["job_history", "rows_out"] + counts.loc["job_history", "rows_added"]
    # made from employees: E3 (its history starts after the hire), M1 and M2 (no history): negative row numbers
    made = history[history.index < 0]
    assert made.index.tolist() == [-1, -2, -3]
    assert made[["employee_id", "effective_date", "manager_id", "department", "reason"]].astype(str).values.tolist() == [
        ["E3", "2019-05-01", "M2", "Finance", "hire"],
        ["M1", "2018-01-01", "nan", "Exec", "hire"],
        ["M2", "2018-01-01", "nan", "Exec", "hire"],
    ]


def test_clean_history_has_the_agreed_columns_sorted_by_spell_and_date(hand_clean):
    _, clean = hand_clean
    history = clean.tables["job_history"]
    assert history.columns.tolist() == ["employee_id", "spell", "effective_date", "manager_id", "department",
                                        "job_level", "location", "reason"]
    assert str(history["spell"].dtype) == "int64" and str(history["job_level"].dtype) == "Int64"
    assert history[["employee_id", "effective_date"]].astype(str).values.tolist() == [
        ["E1", "2020-01-01"], ["E1", "2021-06-01"], ["E1", "2022-01-01"], ["E1", "2023-01-01"], ["E1", "2024-01-01"],
        ["E2", "2021-03-01"], ["E3", "2019-05-01"], ["E3", "2023-02-01"], ["M1", "2018-01-01"], ["M2", "2018-01-01"],
    ]


def test_reason_map_normalises_vendor_words(hand_clean):
    _, clean = hand_clean
    history = clean.tables["job_history"]
    reasons = history.loc[[2, 3, 4, 5, 11, 12], "reason"].tolist()
    assert [r for i, r in enumerate(reasons) if i != 2][:3] == ["hire", "promotion", "reorganisation"]
    assert pd.isna(reasons[2])  # row 4 had no reason
    assert reasons[4] == "manager_change"  # "Manager Change": spaces read as _, no map entry needed
    assert pd.isna(reasons[5])
    report = clean.report
    unknown = report[(report["table"] == "job_history") & (report["rule"] == "unknown_category")]
    assert unknown[["row", "column", "value", "action"]].values.tolist() == [[12, "reason", "sideways", "set_missing"]]


@pytest.mark.parametrize("kind", ["parquet", "xlsx"])
def test_job_history_reads_from_parquet_and_excel_with_vendor_names(tmp_path, kind, hand_clean):
    _, from_csv = hand_clean
    clean = ar.clean_study(ar.load_study(_write_study(tmp_path / "study", history_kind=kind)), progress=False)
    pd.testing.assert_frame_equal(clean.tables["job_history"], from_csv.tables["job_history"])
    assert clean.report.loc[clean.report["rule"].isin(ar.schema.HISTORY_RULES), "row"].tolist() == [
        r[1] for r in EXPECTED_HISTORY_ISSUES]


def test_job_history_reads_from_a_database(tmp_path, hand_clean):
    import sqlalchemy as sa

    _, from_csv = hand_clean
    folder = _write_study(tmp_path / "study")
    frame = pd.read_csv(folder / "job_history.csv", dtype=str, encoding="utf-8-sig")
    (folder / "job_history.csv").unlink()
    engine = sa.create_engine(f"sqlite:///{folder / 'hris.db'}")
    frame.to_sql("job_changes", engine, index=False)
    engine.dispose()
    config = {**CONFIG, "database": {"url": "sqlite:///hris.db", "tables": {"job_history": "job_changes"}}}
    (folder / "study.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    pd.testing.assert_frame_equal(clean.tables["job_history"], from_csv.tables["job_history"])


def test_history_ids_are_pseudonymised_like_every_other_id(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", "history-key")
    folder = _write_study(tmp_path / "study", config={**CONFIG, "pseudonymise": True})
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    history, employees = clean.tables["job_history"], clean.tables["employees"]
    ids = {"M1", "M2", "M9", "E1", "E2", "E3"}
    assert not (set(history["employee_id"]) | set(history["manager_id"].dropna())) & ids
    assert set(history["employee_id"]) <= set(employees["employee_id"])
    # a manager link still joins: E1's manager at hire is M1, in both tables
    e1 = employees.loc[employees["manager_id"].notna() & (employees["department"] == "Sales")
                       & (employees["job_level"] == 1)].iloc[0]
    first = history[history["employee_id"] == e1["employee_id"]].iloc[0]
    assert first["manager_id"] == e1["manager_id"]
    assert history["manager_id"].dropna().isin(employees["employee_id"]).sum() == len(history["manager_id"].dropna()) - 1


# --------------------------------------------------------------------------- covariates


def _with_pay_band(study: Study) -> Study:
    """The tiny study with a ``pay_band`` (category) and a ``remote`` (boolean) column and both declared."""
    employees = study.tables["employees"].copy()
    rng = np.random.default_rng(13)
    employees["pay_band"] = rng.choice(["B1", "B2", "B3"], size=len(employees))
    employees["remote"] = rng.choice(["yes", "no"], size=len(employees))
    config = ar.config_from_dict({**study.config.to_yaml_dict(),
                                  "covariates": {"pay_band": "category", "remote": "boolean"}})
    return Study(tables={**study.tables, "employees": employees}, config=config, path=study.path,
                 sources=study.sources)


def test_a_pay_band_covariate_reaches_every_analysis_table(tiny_study):
    study = _with_pay_band(tiny_study)
    clean = ar.clean_study(study, progress=False)
    assert not clean.report["column"].isin(["pay_band", "remote"]).any()  # declared: not an unknown column
    employees = clean.tables["employees"]
    assert str(employees["remote"].dtype) == "boolean"
    spells = ar.spells.numbered_spells(employees).set_index(["employee_id", "spell"])
    for name in ("person", "intervals", "survey_panel", "cycles"):
        table = getattr(clean.analysis, name)
        assert len(table) > 100, name
        assert str(table["pay_band"].dtype) == "string" and str(table["remote"].dtype) == "Int64", name
        key = pd.MultiIndex.from_frame(table[["employee_id", "spell"]].astype({"employee_id": object}))
        expected = spells["pay_band"].reindex(key).to_numpy(dtype=object)
        assert (table["pay_band"].to_numpy(dtype=object) == expected).all(), name
        remote = spells["remote"].reindex(key).astype("Int64").to_numpy(dtype=object)
        assert (table["remote"].to_numpy(dtype=object) == remote).all(), name
    # and a model takes it without editing code
    fit = ar.fit_cox(clean.analysis.person, "C(pay_band) + remote", duration="exit", entry="entry", event="event")
    assert {"C(pay_band)[T.B2]", "C(pay_band)[T.B3]", "remote"} <= set(fit.tidy()["term"])


def test_covariate_values_that_do_not_parse_are_reported_and_set_missing(hand_study, tmp_path):
    folder = _write_study(tmp_path / "study", config={
        **CONFIG, "covariates": {"pay_band": "category", "remote": "boolean", "fte": "numeric"}})
    lines = (folder / "employees.csv").read_text().splitlines()
    lines[0] += ",remote,fte"
    extra = [",yes,1", ",No,0.5", ",maybe,1", ",1,lots", ",0,"]
    lines[1:] = [line + more for line, more in zip(lines[1:], extra)]
    (folder / "employees.csv").write_text("\n".join(lines) + "\n")
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    employees = clean.tables["employees"]
    assert employees["remote"].tolist() == [True, False, pd.NA, True, False]
    assert employees["fte"].tolist()[:2] == [1.0, 0.5] and np.isnan(employees["fte"].iloc[3])
    report = clean.report[clean.report["column"].isin(["remote", "fte"])]
    assert report[["row", "column", "rule", "value", "action"]].values.tolist() == [
        [5, "fte", "not_a_number", "lots", "set_missing"],
        [4, "remote", "not_a_boolean", "maybe", "set_missing"],
    ]
    assert ar.data_dictionary(clean.config).query("table == 'employees' and column == 'remote'")["dtype"].item() == \
        "boolean"


def test_a_covariate_no_table_has_stops_with_its_name(tmp_path):
    folder = _write_study(tmp_path / "study", config={**CONFIG, "covariates": {"pay_grade": "category"}})
    problems = ar.validate_study(ar.load_study(folder))
    fatal = problems[problems["fatal"]]
    assert fatal[["file", "column", "rule"]].values.tolist() == [["employees.csv", "pay_grade", "missing_covariate"]]
    assert "pay_grade" in fatal["value"].item() and "job_history.csv" in fatal["value"].item()
    with pytest.raises(ar.DataContractError, match="missing_covariate") as info:
        ar.clean_study(ar.load_study(folder), progress=False)
    assert info.value.problems["column"].tolist() == ["pay_grade"]


@pytest.mark.parametrize("covariates, message", [
    ({"department": "category"}, "'department' is a column of the data contract"),
    ({"pay_band": "text"}, "Input should be 'numeric', 'category' or 'boolean'"),
    ({"pay band": "category"}, "not a column name a formula can use"),
])
def test_bad_covariate_declarations_are_config_errors(covariates, message):
    with pytest.raises(ar.ConfigError, match=message):
        ar.config_from_dict({**CONFIG, "covariates": covariates})


def test_reason_map_values_must_be_canonical():
    with pytest.raises(ar.ConfigError, match=r"reason_map.fired"):
        ar.config_from_dict({**CONFIG, "reason_map": {"fired": "dismissal"}})
    config = ar.config_from_dict({**CONFIG, "reason_map": {"Lateral-Move": "transfer"}})
    assert config.reason_map["lateral_move"] == "transfer" and config.reason_map["reorg"] == "reorganisation"


def test_the_data_dictionary_describes_job_history_and_covariates():
    d = ar.data_dictionary(ar.config_from_dict(CONFIG))
    history = d[d["table"] == "job_history"]
    assert history["column"].tolist() == ["employee_id", "effective_date", "manager_id", "department", "job_level",
                                          "location", "reason", "pay_band", "spell"]
    assert history["required"].tolist() == [True, True] + [False] * 7
    assert (history["description"].str.len() > 15).all()
    assert "reason_map" in history.set_index("column").loc["reason", "description"]
    for table in ("person", "intervals", "survey_panel", "cycles"):
        assert "<covariate>" in set(d.loc[d["table"] == table, "column"]), table


# --------------------------------------------------------------------------- without job_history: as before


#: The optional goal columns of issue 15 (as tests/reference/goal_columns_fingerprint.py drops them).
GOAL_COLUMNS = ("difficulty", "target", "baseline", "set_with", "revised_date")


def _fingerprints():
    spec = importlib.util.spec_from_file_location("no_history_fingerprint", REFERENCE / "no_history_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_study_without_history_gives_the_same_tables_as_before():
    """Clean tables, report, quarantine, counts and the four analysis tables of data/sample, bit for bit.

    The reference was made by the code before job_history existed (tests/reference/
    no_history_fingerprint_provenance.txt), from frames compared there with ``assert_frame_equal``, on the
    sample without its job_history.csv (the sample has one since it was regenerated with job history) and without
    the optional goal columns (the sample has difficulty, set_with and revised_date since the simulator's practices
    are on by default; the code before job_history knew none of them, and their own promise is
    tests/test_goal_contract.py's).
    """
    fp = _fingerprints()
    study = ar.load_study(SAMPLE)
    assert "job_history" in study.tables  # the sample has a history; the promise is about studies without one
    tables = {t: f for t, f in study.tables.items() if t != "job_history"}
    tables["goals"] = tables["goals"].drop(columns=list(GOAL_COLUMNS), errors="ignore")
    study = Study(tables=tables, config=study.config, path=study.path, sources=study.sources)
    now = fp.fingerprints(fp.parts_of(ar.clean_study(study, progress=False)))
    before = pd.read_csv(REFERENCE / "no_history_fingerprint.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(now.astype(str), before)


def test_hostile_history_conflicts_name_their_rules(tmp_path):
    """The hostile suite's history op, alone on a simulated study: each row it adds gets its own rule."""
    import hostile as H

    folder = tmp_path / "study"
    ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)
    H.write_job_history(folder)
    done = H.history_conflicts(folder, picks=[3, 30])
    before, after, same = (e.rows for e in done.expects)
    report = ar.clean_study(ar.load_study(folder), progress=False).report
    got = report[(report["table"] == "job_history") & report["row"].isin([*before, *after, *same])]
    assert sorted(zip(got["row"], got["rule"])) == sorted(
        [(before[0], "history_before_hire"), (after[0], "history_after_termination")]
        + [(r, "history_same_day_conflict") for r in same])


def test_a_covariate_in_job_history_is_typed_and_checked_against_employees_at_hire(tmp_path):
    """pay_band in both tables (compared at hire); remote in job_history only: typed, and in force in the tables."""
    config = {**CONFIG, "covariates": {"pay_band": "category", "remote": "boolean"}}
    folder = _write_study(tmp_path / "study", config=config)
    lines = (folder / "job_history.csv").read_text(encoding="utf-8-sig").splitlines()
    extra = ["pay_band,remote", "B1,yes", "B2,no", "B2,no", "B2,Y", "B3,no"] + [",n"] * (len(lines) - 6)
    (folder / "job_history.csv").write_text("\n".join(f"{a},{b}" for a, b in zip(lines, extra)) + "\n")
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    history = clean.tables["job_history"]
    assert history.columns.tolist()[8:] == ["pay_band", "remote"]
    assert str(history["remote"].dtype) == "boolean"
    assert history.loc[[2, 3, 5], "remote"].tolist() == [True, False, True]
    report = clean.report
    at_hire = report[(report["rule"] == "history_disagrees_at_hire") & (report["column"] == "pay_band")]
    assert at_hire[["row", "value"]].values.tolist() == [[6, "B3 (employees: B2)"]]
    # made from employees: pay_band from employees, remote (not an employees column) missing
    made = history[history["employee_id"] == "E3"].iloc[0]
    assert made["pay_band"] == "B2" and pd.isna(made["remote"])
    # in the analysis tables each covariate holds its value in force: at entry, at each interval's start, ...
    person = clean.analysis.person.set_index("employee_id")
    assert str(person["remote"].dtype) == "Int64"
    assert person.loc["E1", "remote"] == 1 and pd.isna(person.loc["E3", "remote"])  # E1 at entry: row 2 ("yes")
    iv = clean.analysis.intervals
    e1 = iv[iv["employee_id"] == "E1"]
    hire = pd.Timestamp("2020-01-01")

    def on(date, column):
        t = (pd.Timestamp(date) - hire).days
        return e1.loc[(e1["start"] <= t) & (e1["stop"] > t), column].item()

    assert [on(d, "remote") for d in ("2021-05-31", "2021-06-01", "2022-12-31", "2023-01-01")] == [1, 0, 0, 1]
    assert [on(d, "pay_band") for d in ("2021-05-31", "2021-06-01")] == ["B1", "B2"]
    # E3's history starts from employees (no remote there), then row 11 says "n" from 2023-02-01
    e3 = iv[iv["employee_id"] == "E3"]
    t = (pd.Timestamp("2023-02-01") - pd.Timestamp("2019-05-01")).days
    assert e3.loc[e3["stop"] <= t, "remote"].isna().all() and (e3.loc[e3["start"] >= t, "remote"] == 0).all()


def test_a_manager_on_an_old_hire_row_is_checked_on_the_window_start():
    """An export's hire row dated before the window often names the manager in force when the window opens."""
    spells = pd.DataFrame({"employee_id": ["E1", "M1", "M2"],
                           "hire_date": pd.to_datetime(["2015-01-01", "2020-06-01", "2010-01-01"]),
                           "termination_date": pd.to_datetime([None, None, "2019-12-31"])})
    rows = pd.DataFrame({"employee_id": ["E1", "E1"], "manager_id": ["M1", "M2"],
                         "effective_date": pd.to_datetime(["2015-01-01", "2015-01-01"])}, index=[2, 3])
    before = ar.clean.flag_history_managers(rows, employees=spells).issues
    assert before["row"].tolist() == [2]  # on its own date, M1 had not joined yet (M2 was employed)
    after = ar.clean.flag_history_managers(rows, employees=spells, window_start="2021-01-01").issues
    assert after["row"].tolist() == [3]  # on the window's start M1 is employed and M2 has left
