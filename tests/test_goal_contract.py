"""The data contract for the essay's claims (issue 15): study.yaml ``feedback_kinds`` and ``set_with_map``, and the
optional goals columns ``difficulty``, ``target``/``baseline`` (stretch derived), ``set_with`` and ``revised_date``.

The studies are built by hand in ``tmp_path`` (each row's comment says what cleaning must do with it), one hostile
study is made with tests/hostile.py's style of corruption, and the last tests hold the promise that a study without
the goal columns gives exactly what the code gave before they existed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import alignment_research as ar
from alignment_research.cli import app
from alignment_research.schema import GOAL_SUMMARY_COLUMNS, OPTIONAL_GOAL_COLUMNS

REFERENCE = Path(__file__).parent / "reference"
SAMPLE = Path(__file__).parents[1] / "data" / "sample"
README = Path(__file__).parents[1] / "README.md"

EMPLOYEES = """employee_id,hire_date,manager_id
M1,2018-01-01,
E1,2020-01-01,M1
E2,2020-01-01,M1
"""

#: goals as a goal tool exports them: its own headers for the new columns, its own words. Spreadsheet row numbers
#: (the header is row 1) and what cleaning must do with each row:
GOALS = [
    "goal_id,owner_id,cycle,Difficulty Rating,Target Value,Baseline Value,Set By,Revised On",
    "G1,E1,2021,3,110,100,jointly,2021-06-01",        # row 2: kept as is; stretch 0.1; revised mid-cycle
    "G2,E1,2021,7,50,0,Together,2020-12-01",          # row 3: difficulty 7 out of range; baseline 0 (no stretch);
                                                      #        Together -> jointly (set_with_map); revised before 2021
    "G3,E1,2022,hard,abc,100,boss,2023-02-01",        # row 4: 'hard', 'abc' not numbers; 'boss' unknown;
                                                      #        revised after 2022 ended
    "G4,E2,2021,2.5,90,-100,Employee,",               # row 5: stretch (90 + 100) / 100 = 1.9; Employee -> employee
    "G5,E2,2022,,inf,5,MANAGER,2022-03-03",           # row 6: 'inf' is no target; MANAGER -> manager; revised
    "G6,E2,2022, 4 ,120,100,manager,2022-13-45",      # row 7: ' 4 ' trimmed; 2022-13-45 is no date; stretch 0.2
]

#: feedback with vendor kinds (rows as above)
FEEDBACK = """employee_id,date,kind
E1,2021-02-01,check_in
E1,2021-02-02,360
E1,2021-02-03,Coaching Session
E1,2021-02-04,pep talk
E2,2021-02-05,Recognition
E2,2021-02-06,Kudos
"""
# row 2 canonical; row 3 '360' -> 360_review (default); row 4 -> check_in (study.yaml); row 5 'pep talk' neither
# canonical nor mapped: kept as other and reported; row 6 -> recognition; row 7 'Kudos' -> recognition (default)

CONFIG = {
    "window": {"start": "2021-01-01", "end": "2022-12-31"},
    "cycles": [{"name": "2021", "start": "2021-01-01", "end": "2021-12-31"},
               {"name": "2022", "start": "2022-01-01", "end": "2022-12-31"}],
    "set_with_map": {"Together": "jointly"},
    "feedback_kinds": {"Coaching Session": "check_in"},
    "column_maps": {"goals": {"Difficulty Rating": "difficulty", "Target Value": "target", "Baseline Value": "baseline",
                              "Set By": "set_with", "Revised On": "revised_date"}},
}


def _write_study(folder: Path, *, goals=GOALS, config=CONFIG, kind: str = "csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (folder / "employees.csv").write_text(EMPLOYEES, encoding="utf-8")
    (folder / "feedback.csv").write_text(FEEDBACK, encoding="utf-8")
    text = "\n".join(line.split("#")[0].rstrip() for line in goals if not line.lstrip().startswith("#")) + "\n"
    if kind == "csv":
        (folder / "goals.csv").write_text(text, encoding="utf-8")
    else:
        rows = [r.split(",") for r in text.splitlines()]
        frame = pd.DataFrame(rows[1:], columns=rows[0]).replace("", None)
        frame.to_excel(folder / "goals.xlsx", index=False)
    return folder


@pytest.fixture(scope="module")
def hand_study(tmp_path_factory) -> Path:
    return _write_study(tmp_path_factory.mktemp("goals") / "study")


@pytest.fixture(scope="module")
def hand_clean(hand_study):
    return ar.validate_and_clean(ar.load_study(hand_study), progress=False)


# --------------------------------------------------------------------------- study.yaml: the two maps


def test_feedback_kinds_add_to_the_defaults_and_accept_360():
    config = ar.config_from_dict({**CONFIG, "feedback_kinds": {"Coaching-Session": "Check_In", 1: "other"}})
    assert config.feedback_kinds["coaching_session"] == "check_in"  # keys as cleaning compares them, targets lower
    assert config.feedback_kinds["1"] == "other"
    assert config.feedback_kinds["360"] == "360_review" and config.feedback_kinds["kudos"] == "recognition"
    assert ar.config_from_dict({"window": CONFIG["window"]}).feedback_kinds["360"] == "360_review"


def test_set_with_map_adds_to_the_defaults():
    config = ar.config_from_dict({**CONFIG, "set_with_map": {"Co-Created": "Jointly"}})
    assert config.set_with_map["co_created"] == "jointly" and config.set_with_map["joint"] == "jointly"


@pytest.mark.parametrize("key, value", [("feedback_kinds", {"coaching": "coaching"}),
                                        ("set_with_map", {"boss": "leader"})])
def test_a_map_onto_a_word_that_is_not_canonical_is_a_config_error(key, value):
    with pytest.raises(ar.ConfigError, match=rf"`{key}\.{list(value)[0]}`"):
        ar.config_from_dict({**CONFIG, key: value})


def test_the_maps_round_trip_through_study_yaml():
    config = ar.config_from_dict(CONFIG)
    again = ar.config_from_dict(yaml.safe_load(yaml.safe_dump(config.to_yaml_dict())))
    assert again.feedback_kinds == config.feedback_kinds and again.set_with_map == config.set_with_map


# --------------------------------------------------------------------------- the rules, with file, row, column, value

#: What the report must say about the hand-built goals and feedback: file, row, column, rule, value, action.
EXPECTED_ISSUES = [
    ("goals.csv", 3, "set_with", "noncanonical_category", "Together", "fixed"),
    ("goals.csv", 4, "set_with", "unknown_category", "boss", "set_missing"),
    ("goals.csv", 5, "set_with", "noncanonical_category", "Employee", "fixed"),
    ("goals.csv", 6, "set_with", "noncanonical_category", "MANAGER", "fixed"),
    ("goals.csv", 7, "difficulty", "untrimmed_text", " 4 ", "fixed"),
    ("goals.csv", 3, "difficulty", "out_of_range_difficulty", "7", "set_missing"),
    ("goals.csv", 4, "difficulty", "not_a_number", "hard", "set_missing"),
    ("goals.csv", 4, "target", "not_a_number", "abc", "set_missing"),
    ("goals.csv", 6, "target", "not_a_number", "inf", "set_missing"),
    ("goals.csv", 7, "revised_date", "unparseable_date", "2022-13-45", "set_missing"),
    ("goals.csv", 3, "revised_date", "revised_before_cycle", "2020-12-01", "set_missing"),
    ("goals.csv", 4, "revised_date", "revised_after_cycle", "2023-02-01", "set_missing"),
    ("goals.csv", 3, "baseline", "zero_baseline", "0", "flagged"),
    ("feedback.csv", 3, "kind", "noncanonical_category", "360", "fixed"),
    ("feedback.csv", 4, "kind", "noncanonical_category", "Coaching Session", "fixed"),
    ("feedback.csv", 5, "kind", "unmapped_feedback_kind", "pep talk", "flagged"),
    ("feedback.csv", 6, "kind", "noncanonical_category", "Recognition", "fixed"),
    ("feedback.csv", 7, "kind", "noncanonical_category", "Kudos", "fixed"),
]


def _row_issues(report: pd.DataFrame, tables=("goals", "feedback")) -> list[tuple]:
    rows = report[report["table"].isin(tables) & report["row"].notna()]
    return sorted(tuple(r) for r in rows[["file", "row", "column", "rule", "value", "action"]].itertuples(index=False))


def test_every_goal_and_feedback_rule_fires_with_file_row_column_and_value(hand_clean):
    problems, clean = hand_clean
    assert _row_issues(clean.report) == sorted(EXPECTED_ISSUES)
    # validate lists the same problems, none fatal, each with a hint naming the fix
    listed = problems[problems["row"].notna() & problems["table"].isin(["goals", "feedback"])]
    assert sorted(tuple(r) for r in listed[["file", "row", "column", "rule", "value"]].itertuples(index=False)) == \
        sorted(e[:5] for e in EXPECTED_ISSUES)
    assert not problems["fatal"].any()
    hints = ar.explain_problems(problems).set_index("rule")["hint"]
    assert hints["unmapped_feedback_kind"] == ("map the vendor's words in study.yaml `feedback_kinds: "
                                               "{'pep talk': <check_in|360_review|recognition|other>}` "
                                               "(added to the defaults)")
    assert hints["unknown_category"] == ("map the vendor's words in study.yaml `set_with_map: "
                                         "{'boss': <employee|manager|jointly>}` (added to the defaults)")


def test_the_optional_columns_are_part_of_the_contract_not_unknown(hand_clean):
    _, clean = hand_clean
    flagged = clean.report[clean.report["rule"] == "unknown_column"]
    assert flagged.empty, flagged
    # absent canonical goal columns are still added as before; the optional ones are never 'absent'
    absent = clean.report[(clean.report["table"] == "goals") & (clean.report["rule"] == "absent_column")]
    assert sorted(absent["column"]) == ["attainment", "parent_goal_id", "weight"]


def test_clean_goals_hold_the_typed_values_and_the_derived_stretch(hand_clean):
    _, clean = hand_clean
    goals = clean.tables["goals"].set_index("goal_id")
    assert goals.index.tolist() == ["G1", "G2", "G3", "G4", "G5", "G6"]  # every row kept
    assert str(goals["difficulty"].dtype) == "float64" and str(goals["revised_date"].dtype) == "datetime64[ns]"
    np.testing.assert_array_equal(goals["difficulty"], [3.0, np.nan, np.nan, 2.5, np.nan, 4.0])
    np.testing.assert_array_equal(goals["target"], [110.0, 50.0, np.nan, 90.0, np.nan, 120.0])
    np.testing.assert_array_equal(goals["baseline"], [100.0, 0.0, 100.0, -100.0, 5.0, 100.0])
    np.testing.assert_allclose(goals["stretch"], [0.1, np.nan, np.nan, 1.9, np.nan, 0.2])
    assert goals["set_with"].tolist()[:2] + goals["set_with"].tolist()[3:] == \
        ["jointly", "jointly", "employee", "manager", "manager"]
    assert pd.isna(goals.loc["G3", "set_with"])
    assert goals["revised_date"].dt.strftime("%Y-%m-%d").fillna("").tolist() == \
        ["2021-06-01", "", "", "", "2022-03-03", ""]


def test_clean_feedback_holds_only_canonical_kinds(hand_clean):
    _, clean = hand_clean
    kinds = clean.tables["feedback"]["kind"].tolist()
    assert kinds == ["check_in", "360_review", "check_in", "other", "recognition", "recognition"]
    assert set(kinds) <= set(ar.config.FEEDBACK_KINDS)


def test_rows_are_conserved(hand_clean):
    _, clean = hand_clean
    counts = clean.counts.set_index("table")
    assert (counts["rows_in"] == counts["rows_out"] + counts["rows_quarantined"]).all()
    assert counts.loc["goals", "rows_quarantined"] == 0 and counts.loc["feedback", "rows_quarantined"] == 0


def test_the_clean_goals_pass_their_schema(hand_clean):
    _, clean = hand_clean
    schema = ar.table_schema("goals", clean.config)
    schema.validate(clean.tables["goals"], lazy=True)
    broken = clean.tables["goals"].assign(difficulty=[9.0, 1, 1, 1, 1, 1], set_with="boss")
    with pytest.raises(Exception) as info:
        schema.validate(broken, lazy=True)
    assert {"out_of_range_difficulty", "unknown_category"} <= set(info.value.failure_cases["check"].astype(str))


def test_goal_columns_read_from_excel_with_vendor_names(tmp_path, hand_clean):
    _, csv_clean = hand_clean
    clean = ar.clean_study(ar.load_study(_write_study(tmp_path / "xlsx", kind="xlsx")), progress=False)
    got = clean.tables["goals"].drop(columns=["parent_goal_id", "weight", "attainment"])
    want = csv_clean.tables["goals"].drop(columns=["parent_goal_id", "weight", "attainment"])
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


# --------------------------------------------------------------------------- structure: half a pair, and steps


def test_a_target_without_a_baseline_is_flagged_and_gives_no_stretch(tmp_path):
    rows = [line.split("#")[0].rstrip().split(",") for line in GOALS if not line.lstrip().startswith("#")]
    goals = [",".join(r[:5] + r[6:]) for r in rows]  # drop the Baseline Value column
    assert goals[0].endswith("Target Value,Set By,Revised On")
    maps = {k: v for k, v in CONFIG["column_maps"]["goals"].items() if v != "baseline"}
    study = ar.load_study(_write_study(tmp_path / "half", goals=goals,
                                       config={**CONFIG, "column_maps": {"goals": maps}}))
    problems, clean = ar.validate_and_clean(study, progress=False)
    row = problems[problems["rule"] == "stretch_needs_target_and_baseline"]
    assert row[["file", "column", "value", "action"]].values.tolist() == [
        ["goals.csv", "target", "goals has target but no baseline: no stretch is derived", "flagged"]]
    assert "stretch" not in clean.tables["goals"]
    assert "goal_stretch" not in clean.analysis.cycles and "goal_difficulty" in clean.analysis.cycles


def test_check_revision_dates_without_cycles_uses_the_plausible_range():
    goals = pd.DataFrame({"cycle": "X", "revised_date": pd.to_datetime(["1940-01-01", "2021-05-05", "2040-01-01"])},
                         index=[2, 3, 4])
    res = ar.clean.check_revision_dates(goals, cycles=[], earliest=pd.Timestamp("1950-01-01"),
                                        latest=pd.Timestamp("2029-12-31"))
    assert res.issues[["row", "rule", "value"]].values.tolist() == [
        [2, "revised_before_cycle", "1940-01-01"], [4, "revised_after_cycle", "2040-01-01"]]
    assert res.data["revised_date"].notna().tolist() == [False, True, False]


def test_derive_stretch_replaces_a_stretch_column_of_the_source():
    goals = pd.DataFrame({"target": [120.0], "baseline": [80.0], "stretch": ["lots"]})
    assert ar.clean.derive_stretch(goals).data["stretch"].tolist() == [0.5]


# --------------------------------------------------------------------------- the cycles table's goal summaries


def test_cycles_summarise_the_goal_columns_per_employee_and_cycle(hand_clean):
    _, clean = hand_clean
    cycles = clean.analysis.cycles.set_index(["employee_id", "cycle"])
    summary = cycles[list(GOAL_SUMMARY_COLUMNS)]
    nan = np.nan
    expected = pd.DataFrame(
        # difficulty, stretch, jointly, by employee, by manager, revised, share revised
        [[3.0, 0.1, 1.0, 0.0, 0.0, 1, 0.5],       # E1 2021: G1 and G2 (G2 has no difficulty and no stretch)
         [nan, nan, nan, nan, nan, 0, 0.0],       # E1 2022: G3 has none of them
         [2.5, 1.9, 0.0, 1.0, 0.0, 0, 0.0],       # E2 2021: G4
         [4.0, 0.2, 0.0, 0.0, 1.0, 1, 0.5],       # E2 2022: G5 (revised) and G6
         [nan, nan, nan, nan, nan, 0, nan],       # M1 2021: no goals
         [nan, nan, nan, nan, nan, 0, nan]],      # M1 2022
        index=pd.MultiIndex.from_tuples([("E1", "2021"), ("E1", "2022"), ("E2", "2021"), ("E2", "2022"),
                                         ("M1", "2021"), ("M1", "2022")], names=["employee_id", "cycle"]),
        columns=list(GOAL_SUMMARY_COLUMNS))
    expected["goals_revised"] = expected["goals_revised"].astype("Int64")
    got = summary.sort_index()
    got.index = got.index.set_levels([lvl.astype(object) for lvl in got.index.levels])
    pd.testing.assert_frame_equal(got, expected, check_index_type=False)


def test_every_added_column_is_in_the_data_dictionary(hand_clean):
    d = ar.data_dictionary()
    goals = d[d["table"] == "goals"].set_index("column")
    for column, *_ in OPTIONAL_GOAL_COLUMNS:
        assert column in goals.index and not goals.loc[column, "required"], column
    assert "set_with_map" in goals.loc["set_with", "description"]
    assert "(target - baseline) / |baseline|" in goals.loc["stretch", "description"]
    assert "feedback_kinds" in d[(d["table"] == "feedback") & (d["column"] == "kind")]["description"].item()
    _, clean = hand_clean
    documented = set(d.loc[d["table"] == "cycles", "column"])
    assert set(GOAL_SUMMARY_COLUMNS) <= documented
    assert set(clean.analysis.cycles.columns) <= documented
    assert set(clean.tables["goals"].columns) <= set(goals.index)


def test_the_readme_lists_the_new_columns_and_keys():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| file |"):]
    table = table[:table.index("\n\n")]
    for name in ["difficulty", "target", "baseline", "set_with", "revised_date", "stretch"]:
        assert f"`{name}`" in table or f"{name}" in table, name
    for key in ["feedback_kinds", "set_with_map"]:
        assert f"`{key}`" in text, key


# --------------------------------------------------------------------------- the scorecard reads the clean columns


def test_the_scorecard_reads_vendor_words_through_the_contract(tiny_study, tmp_path):
    """Goals written with vendor words and names reach claims 5-7 as the clean canonical columns."""
    from alignment_research.scorecard import _claim_cadence, _claim_set_with, _Context

    folder = tmp_path / "study"
    ar.write_simulated_study(tiny_study, folder)
    # the simulator's own set_with and revised_date (practices on) give way to the vendor's columns
    goals = pd.read_csv(folder / "goals.csv", dtype=str).drop(columns=["set_with", "revised_date"], errors="ignore")
    rng = np.random.default_rng(3)
    joint = rng.random(len(goals)) < 0.5
    goals["Who Set It"] = np.where(joint, "Together", "Boss")
    goals["Changed"] = np.where(rng.random(len(goals)) < 0.3, goals["cycle"] + "-06-15", "")
    att = pd.to_numeric(goals["attainment"], errors="coerce")
    goals["attainment"] = (att + 0.3 * joint).round(4).astype(str).replace("nan", "")
    goals.to_csv(folder / "goals.csv", index=False)
    config = yaml.safe_load((folder / "study.yaml").read_text())
    config["column_maps"] = {"goals": {"Who Set It": "set_with", "Changed": "revised_date"}}
    config["set_with_map"] = {"Together": "jointly", "Boss": "manager"}
    (folder / "study.yaml").write_text(yaml.safe_dump(config))
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    assert set(clean.tables["goals"]["set_with"].dropna()) == {"jointly", "manager"}
    ctx = _Context(clean, feedback_months=3, recognition_months=6, kinds=None, n_boot=20, seed=0)
    joint_row = pd.DataFrame(_claim_set_with(ctx)).set_index("outcome").loc["goal attainment"]
    assert joint_row["estimate"] == pytest.approx(0.3, abs=0.05)
    revised = pd.DataFrame(_claim_cadence(ctx)).set_index("exposure").loc["goal revised mid-cycle"]
    assert revised["needs"] == "" and abs(revised["estimate"]) < 0.1


# --------------------------------------------------------------------------- hostile values


def test_hostile_goal_values_are_each_named_and_nothing_is_lost(tmp_path):
    import hostile as H

    folder = tmp_path / "study"
    ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), folder)
    done = H.hostile_goal_columns(folder, picks=list(range(0, 2000, 97)))
    assert len(done.cells) == 21 and {c[2] for c in done.cells} == {
        "out_of_range_difficulty", "not_a_number", "zero_baseline", "unknown_category", "unparseable_date",
        "revised_before_cycle", "revised_after_cycle"}
    problems = ar.validate_study(ar.load_study(folder))
    assert not problems["fatal"].any()
    goals = problems[(problems["table"] == "goals") & (problems["file"] == "goals.csv")]
    named = set(zip(goals["row"], goals["column"], goals["rule"], goals["value"]))
    missing = [c for c in done.cells if c not in named]
    assert not missing, missing
    clean = ar.clean_study(ar.load_study(folder), progress=False)
    counts = clean.counts.set_index("table")
    assert counts.loc["goals", "rows_in"] == counts.loc["goals", "rows_out"] + counts.loc["goals", "rows_quarantined"]
    hostile_rows = [c[0] for c in done.cells]
    assert set(hostile_rows) <= set(clean.tables["goals"].index)  # a hostile optional cell never costs the goal
    g = clean.tables["goals"]
    assert g["difficulty"].dropna().between(1, 5).all() and np.isfinite(g["stretch"].dropna()).all()
    assert set(g["set_with"].dropna()) == {"jointly", "manager", "employee"}
    result = CliRunner().invoke(app, ["validate", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "revised_before_cycle" in result.output


# --------------------------------------------------------------------------- without the columns: as before


def _fingerprints():
    spec = importlib.util.spec_from_file_location("goal_columns_fingerprint", REFERENCE / "goal_columns_fingerprint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_study_without_the_goal_columns_gives_the_same_tables_as_before():
    """Clean tables, report, quarantine, counts and the five analysis tables of data/sample, bit for bit.

    The reference was made by the code before the goal columns and ``feedback_kinds`` existed
    (tests/reference/goal_columns_fingerprint_provenance.txt), on data/sample without any goal column.
    """
    fp = _fingerprints()
    study = fp.without_goal_columns(ar.load_study(SAMPLE))
    clean = ar.clean_study(study, progress=False)
    assert not set(GOAL_SUMMARY_COLUMNS) & set(clean.analysis.cycles.columns)
    now = fp.fingerprints(fp.parts_of(clean))
    before = pd.read_csv(REFERENCE / "goal_columns_fingerprint.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(now.astype(str), before)


def test_adding_the_goal_columns_changes_nothing_else(tiny_study):
    """The same study with and without the columns: every other column of every table is identical."""
    # without: the tiny study minus the goal columns the simulator writes with its practices on (the default)
    base = dataclasses.replace(tiny_study, tables={**tiny_study.tables, "goals": tiny_study.tables["goals"].drop(
        columns=list(_fingerprints().GOAL_COLUMNS), errors="ignore")})
    base_clean = ar.clean_study(base, progress=False)
    goals = base.tables["goals"].copy()
    digit = pd.to_numeric(goals["goal_id"].astype(str).str[-1], errors="coerce").fillna(0).astype(int)
    goals["difficulty"] = (digit % 5 + 1).astype(str)  # from the goal id, so the export's duplicate rows stay exact
    goals["set_with"] = np.where(digit % 2, "jointly", "Manager")
    with_columns = dataclasses.replace(base, tables={**base.tables, "goals": goals})
    clean = ar.clean_study(with_columns, progress=False)
    for name, table in base_clean.tables.items():
        pd.testing.assert_frame_equal(clean.tables[name][table.columns], table, obj=name)
    cycles = clean.analysis.cycles
    pd.testing.assert_frame_equal(cycles[base_clean.analysis.cycles.columns], base_clean.analysis.cycles)
    added = [c for c in cycles.columns if c not in base_clean.analysis.cycles]
    assert added == ["goal_difficulty", "share_set_jointly", "share_set_by_employee", "share_set_by_manager"]
    extra = clean.report[clean.report["table"] == "goals"].merge(
        base_clean.report[base_clean.report["table"] == "goals"], how="left", indicator=True)
    assert set(extra.loc[extra["_merge"] == "left_only", "column"]) == {"set_with"}  # 'Manager' -> manager
