"""Analysis tables: exact rows on hand-built studies, properties on random ones, agreement with the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import alignment_research as ar

NA = pd.NA


def _dates(*values):
    return pd.to_datetime(list(values))


CONFIG = ar.config_from_dict({
    "window": {"start": "2022-01-01", "end": "2023-12-31"},
    "cycles": [{"name": "FY2021", "start": "2021-01-01", "end": "2021-12-31"},
               {"name": "FY2022", "start": "2022-01-01", "end": "2022-12-31"},
               {"name": "FY2023", "start": "2023-01-01", "end": "2023-12-31"}],
    "scales": {"engagement": {"items": ["engagement_1", "engagement_2"], "reverse": ["engagement_2"]}},
})


def tiny_tables(*, raw_reverse: bool) -> dict[str, pd.DataFrame]:
    """Three people around one manager; every timing rule has a case.

    - M1 (no manager, hired 2015, before the window) starts leadership development on 2022-07-01,
      in the middle of E1's and E2's spells.
    - E1 (hired 2020-03-01, before the window: entry 671) resigns 2022-09-30; answers a survey on
      2022-04-01 (engagement_1 = 4, engagement_2 = 4 raw, reverse-coded to 2: score 3.0) and
      another on 2022-10-15, after the resignation (must not be used).
    - E2 (hired 2022-05-01, inside the window) resigns on 2023-12-31, the window's last day (an event),
      starts coaching 2023-03-01 and gets one check-in on 2022-05-10.
    - E3 left in 2021, before the window: no person row.
    """
    employees = pd.DataFrame({
        "employee_id": ["M1", "E1", "E2", "E3"],
        "hire_date": _dates("2015-01-01", "2020-03-01", "2022-05-01", "2019-01-01"),
        "termination_date": _dates(None, "2022-09-30", "2023-12-31", "2021-06-30"),
        "termination_type": [NA, "voluntary", "voluntary", "voluntary"],
        "department": ["Ops", "Ops", "Sales", "Ops"],
        "job_level": pd.array([4, 1, 2, 1], dtype="Int64"),
        "manager_id": [NA, "M1", "M1", "M1"],
        "location": ["X", "X", "Y", "X"],
        "gender": ["f", "m", "f", "m"],
        "birth_year": pd.array([1970, 1990, 1995, 1991], dtype="Int64"),
    }, index=range(2, 6))
    goals = pd.DataFrame({
        "goal_id": ["G1", "G2", "G3", "G4", "G5", "G6"],
        "owner_id": ["M1", "E1", "E1", "E2", "M1", "E2"],
        "cycle": ["FY2022"] * 4 + ["FY2023"] * 2,
        "parent_goal_id": [NA, "G1", NA, "G1", NA, "G5"],
        "weight": [np.nan, 3.0, 1.0, np.nan, np.nan, np.nan],
        "attainment": [1.0, 0.8, 1.2, 1.0, 0.9, 1.1],
    }, index=range(2, 8))
    reviews = pd.DataFrame({
        "employee_id": ["M1", "M1", "E1", "E2"], "cycle": ["FY2021", "FY2022", "FY2021", "FY2022"],
        "rating": pd.array([4, 3, 2, 5], dtype="Int64"), "target_attainment": [1.0, 0.9, 0.7, 1.1],
    }, index=range(2, 6))
    surveys = pd.DataFrame({
        "employee_id": ["E1", "E1"], "survey_date": _dates("2022-04-01", "2022-10-15"),
        "engagement_1": [4.0, 1.0], "engagement_2": [4.0, 5.0] if raw_reverse else [2.0, 1.0],
    }, index=range(2, 4))
    programs = pd.DataFrame({
        "employee_id": ["M1", "E2"], "program": ["leadership_development", "coaching"],
        "start_date": _dates("2022-07-01", "2023-03-01"), "end_date": _dates("2022-12-31", None),
        "status": ["completed", "in_progress"],
    }, index=range(2, 4))
    feedback = pd.DataFrame({"employee_id": ["E2"], "date": _dates("2022-05-10"), "kind": ["check_in"],
                             "giver_id": ["M1"]}, index=[2])
    return dict(employees=employees, goals=goals, reviews=reviews, surveys=surveys, programs=programs,
                feedback=feedback)


@pytest.fixture(scope="module")
def tiny_analysis():
    """The tiny study, raw -> ar.clean_study -> analysis tables."""
    clean = ar.clean_study(ar.Study(tiny_tables(raw_reverse=True), CONFIG))
    return clean.analysis


def expected_person() -> pd.DataFrame:
    # entry/exit in days since hire: E1 2020-03-01 -> 2022-01-01 = 671, -> 2022-09-30 = 943;
    # E2 2022-05-01 -> 2023-12-31 = 609; M1 2015-01-01 -> 2022-01-01 = 2557, -> 2023-12-31 = 3286.
    return pd.DataFrame({
        "employee_id": pd.array(["E1", "E2", "M1"], dtype="string"),
        "spell": np.array([1, 1, 1], dtype="int64"),
        "entry": np.array([671, 0, 2557], dtype="int64"),
        "exit": np.array([943, 609, 3286], dtype="int64"),
        "event": np.array([1, 1, 0], dtype="int64"),
        "event_type": pd.array(["voluntary", "voluntary", "censored"], dtype="string"),
        "hire_date": _dates("2020-03-01", "2022-05-01", "2015-01-01"),
        "termination_date": _dates("2022-09-30", "2023-12-31", None),
        "department": pd.array(["Ops", "Sales", "Ops"], dtype="string"),
        "job_level": pd.array([1, 2, 4], dtype="Int64"),
        "gender": pd.array(["m", "f", "f"], dtype="string"),
        "location": pd.array(["X", "Y", "X"], dtype="string"),
        "age_at_hire": pd.array([30, 27, 45], dtype="Int64"),
        "manager_id": pd.array(["M1", "M1", NA], dtype="string"),
        "manager_ever_program": np.array([1, 1, 0], dtype="int64"),
        "manager_program_entry": np.array([0, 0, 0], dtype="int64"),
        "ever_program_coaching": np.array([0, 1, 0], dtype="int64"),
        "ever_program_mentoring": np.array([0, 0, 0], dtype="int64"),
        "ever_program_training": np.array([0, 0, 0], dtype="int64"),
        "ever_program_leadership_development": np.array([0, 0, 1], dtype="int64"),
        "alignment_cascade_first": [0.75, 1.0, np.nan],  # E1: weights 3 (linked) and 1 (not): 3/4
        "alignment_org_first": [0.75, 1.0, 1.0],  # M1's own goals are organisation goals
        "alignment_cascade_entry": [0.75, 1.0, np.nan],  # M1 has no manager
    })


def expected_intervals() -> pd.DataFrame:
    # Split points (tenure days): E1: survey 2022-04-01 = 761 (also the 2022Q1 feedback rate),
    # manager's programme 2022-07-01 = 852. E2: 2022-07-01 = 61 (manager programme, Q2 rate),
    # 2022-10-01 = 153, 2023-01-01 = 245 (FY2023 goals, FY2022 ratings), coaching 2023-03-01 = 304,
    # 2023-04-01 = 335, 2023-07-01 = 426, 2023-10-01 = 518. M1: quarter ends + 1 day and FY2023.
    cols = ["employee_id", "start", "stop", "event", "event_type", "alignment_cascade", "alignment_org",
            "engagement", "manager_program", "manager_rating", "rating", "program_coaching",
            "program_leadership_development", "feedback_rate"]
    nan = np.nan
    rows = [
        ("E1", 671, 761, 0, "censored", 0.75, 0.75, nan, 0, 4.0, 2.0, 0, 0, nan),
        ("E1", 761, 852, 0, "censored", 0.75, 0.75, 3.0, 0, 4.0, 2.0, 0, 0, 0.0),
        ("E1", 852, 943, 1, "voluntary", 0.75, 0.75, 3.0, 1, 4.0, 2.0, 0, 0, 0.0),
        ("E2", 0, 61, 0, "censored", 1.0, 1.0, nan, 0, 4.0, nan, 0, 0, nan),
        ("E2", 61, 153, 0, "censored", 1.0, 1.0, nan, 1, 4.0, nan, 0, 0, 90 / 61),  # 1 check-in in 61 days
        ("E2", 153, 245, 0, "censored", 1.0, 1.0, nan, 1, 4.0, nan, 0, 0, 0.0),
        ("E2", 245, 304, 0, "censored", 1.0, 1.0, nan, 1, 3.0, 5.0, 0, 0, 0.0),
        ("E2", 304, 335, 0, "censored", 1.0, 1.0, nan, 1, 3.0, 5.0, 1, 0, 0.0),
        ("E2", 335, 426, 0, "censored", 1.0, 1.0, nan, 1, 3.0, 5.0, 1, 0, 0.0),
        ("E2", 426, 518, 0, "censored", 1.0, 1.0, nan, 1, 3.0, 5.0, 1, 0, 0.0),
        ("E2", 518, 609, 1, "voluntary", 1.0, 1.0, nan, 1, 3.0, 5.0, 1, 0, 0.0),
        ("M1", 2557, 2647, 0, "censored", nan, 1.0, nan, 0, nan, 4.0, 0, 0, nan),
        ("M1", 2647, 2738, 0, "censored", nan, 1.0, nan, 0, nan, 4.0, 0, 0, 0.0),
        ("M1", 2738, 2830, 0, "censored", nan, 1.0, nan, 0, nan, 4.0, 0, 1, 0.0),
        ("M1", 2830, 2922, 0, "censored", nan, 1.0, nan, 0, nan, 4.0, 0, 1, 0.0),
        ("M1", 2922, 3012, 0, "censored", nan, 1.0, nan, 0, nan, 3.0, 0, 1, 0.0),
        ("M1", 3012, 3103, 0, "censored", nan, 1.0, nan, 0, nan, 3.0, 0, 1, 0.0),
        ("M1", 3103, 3195, 0, "censored", nan, 1.0, nan, 0, nan, 3.0, 0, 1, 0.0),
        ("M1", 3195, 3286, 0, "censored", nan, 1.0, nan, 0, nan, 3.0, 0, 1, 0.0),
    ]
    t = pd.DataFrame(rows, columns=cols)
    who = {"E1": ("M1", "Ops", 1, "m"), "E2": ("M1", "Sales", 2, "f"), "M1": (NA, "Ops", 4, "f")}
    out = pd.DataFrame({
        "employee_id": pd.array(t["employee_id"], dtype="string"),
        "spell": np.ones(len(t), dtype="int64"),
        "manager_id": pd.array([who[e][0] for e in t["employee_id"]], dtype="string"),
        "start": t["start"].astype("int64"), "stop": t["stop"].astype("int64"), "event": t["event"].astype("int64"),
        "event_type": pd.array(t["event_type"], dtype="string"),
        "alignment_cascade": t["alignment_cascade"], "alignment_org": t["alignment_org"],
        "engagement": t["engagement"],
        "manager_program": t["manager_program"].astype("int64"), "manager_rating": t["manager_rating"],
        "rating": t["rating"],
        "program_coaching": t["program_coaching"].astype("int64"),
        "program_mentoring": np.zeros(len(t), dtype="int64"),
        "program_training": np.zeros(len(t), dtype="int64"),
        "program_leadership_development": t["program_leadership_development"].astype("int64"),
        "feedback_rate": t["feedback_rate"],
        "department": pd.array([who[e][1] for e in t["employee_id"]], dtype="string"),
        "job_level": pd.array([who[e][2] for e in t["employee_id"]], dtype="Int64"),
        "gender": pd.array([who[e][3] for e in t["employee_id"]], dtype="string"),
    })
    return out


def test_person_rows_of_hand_built_study(tiny_analysis):
    assert_frame_equal(tiny_analysis.person, expected_person())


def test_interval_rows_of_hand_built_study(tiny_analysis):
    assert_frame_equal(tiny_analysis.intervals, expected_intervals())


def test_builders_on_clean_tables_ignore_a_survey_after_resignation():
    """The guard holds even when a survey after the spell's end reaches the builders."""
    tables = tiny_tables(raw_reverse=False)  # already reverse-coded, as clean tables are
    assert (tables["surveys"]["survey_date"] > pd.Timestamp("2022-09-30")).sum() == 1
    assert_frame_equal(ar.interval_table(tables, CONFIG), expected_intervals())
    assert_frame_equal(ar.person_table(tables, CONFIG), expected_person())
    panel = ar.survey_panel_table(tables, CONFIG)
    assert panel["survey_date"].tolist() == [pd.Timestamp("2022-04-01")]


def test_survey_panel_of_hand_built_study(tiny_analysis):
    panel = tiny_analysis.survey_panel
    expected = pd.DataFrame({
        "employee_id": pd.array(["E1"], dtype="string"), "spell": np.array([1], dtype="int64"),
        "manager_id": pd.array(["M1"], dtype="string"), "department": pd.array(["Ops"], dtype="string"),
        "job_level": pd.array([1], dtype="Int64"), "gender": pd.array(["m"], dtype="string"),
        "survey_date": _dates("2022-04-01"), "wave": np.array([1], dtype="int64"),
        "tenure_days": np.array([761], dtype="int64"),
        "engagement": [3.0],  # (4 + (6 - 4)) / 2: the raw 4 on the reverse-coded item counts as 2
        "alignment_cascade": [0.75], "alignment_org": [0.75], "manager_program": np.array([0], dtype="int64"),
        "manager_rating": [4.0], "rating": [2.0],
        "program_coaching": np.array([0], dtype="int64"), "program_mentoring": np.array([0], dtype="int64"),
        "program_training": np.array([0], dtype="int64"),
        "program_leadership_development": np.array([0], dtype="int64"),
        "feedback_rate": [0.0],  # 2022Q1 (no feedback in 90 days) is known from 2022-04-01, the survey date
    })
    assert_frame_equal(panel, expected)


def test_cycle_rows_of_hand_built_study(tiny_analysis):
    cycles = tiny_analysis.cycles
    got = cycles[["employee_id", "cycle", "n_goals", "alignment_cascade", "rating", "attainment",
                  "manager_program", "left_next_cycle"]]
    expected = pd.DataFrame({
        "employee_id": pd.array(["E1", "E1", "E2", "E2", "M1", "M1", "M1"], dtype="string"),
        "cycle": pd.array(["FY2021", "FY2022", "FY2022", "FY2023", "FY2021", "FY2022", "FY2023"], dtype="string"),
        "n_goals": np.array([0, 2, 1, 1, 0, 1, 1], dtype="int64"),
        "alignment_cascade": [np.nan, 0.75, 1.0, 1.0, np.nan, np.nan, np.nan],
        "rating": [2.0, np.nan, 5.0, np.nan, 4.0, 3.0, np.nan],
        "attainment": [0.7, np.nan, 1.1, np.nan, 1.0, 0.9, np.nan],
        # M1 started leadership development on 2022-07-01: by FY2023's start, not FY2022's
        "manager_program": np.array([0, 0, 0, 1, 0, 0, 0], dtype="int64"),
        # E1 resigned during FY2022; left before FY2023 (NA); E2 resigned on the last day of FY2023;
        # M1 stayed through FY2022 and FY2023 (both fully observed); no cycle follows FY2023.
        "left_next_cycle": pd.array([1, NA, 1, NA, 0, 0, NA], dtype="Int64"),
    })
    assert_frame_equal(got, expected)


def test_write_analysis_tables(tiny_analysis, tmp_path):
    written = tiny_analysis.write(tmp_path)
    names = {p.name for p in written}
    assert {"person.parquet", "intervals.parquet", "survey_panel.parquet", "cycles.parquet"} <= names
    back = pd.read_parquet(tmp_path / "intervals.parquet")
    assert_frame_equal(back, tiny_analysis.intervals)


def test_the_analysis_property_uses_build_analysis_tables():
    clean = ar.clean_study(ar.Study(tiny_tables(raw_reverse=True), CONFIG))
    assert isinstance(clean.analysis, ar.tables.AnalysisTables)
    assert clean.analysis is clean.analysis


# --------------------------------------------------------------------------- properties on random studies

WINDOW = (pd.Timestamp("2022-01-01"), pd.Timestamp("2023-12-31"))
PROGRAM_NAMES = list(ar.tables.PROGRAMS)


@st.composite
def random_studies(draw):
    """A random small clean study: 1-4 people, some rehired, managers among them, dated data anywhere."""
    day = st.integers(-800, 900)  # days from 2022-01-01: before, inside and after the window
    base = pd.Timestamp("2022-01-01")
    people = [f"E{i}" for i in range(1, draw(st.integers(1, 4)) + 1)]
    rows = []
    for emp in people:
        manager = draw(st.one_of(st.none(), st.sampled_from(["E1", "E2", "E3", "E4"])))
        manager = None if manager == emp else manager
        hire = draw(day)
        for spell in range(draw(st.integers(1, 2))):  # a rehire starts after the previous spell ended
            term = draw(st.one_of(st.none(), st.integers(hire, hire + 900))) if spell == 0 else None
            ttype = draw(st.sampled_from(["voluntary", "involuntary", "other"])) if term is not None else None
            rows.append((emp, base + pd.Timedelta(days=hire),
                         pd.NaT if term is None else base + pd.Timedelta(days=term), ttype, manager))
            if term is None:
                break
            hire = term + draw(st.integers(1, 400))
    employees = pd.DataFrame(rows, columns=["employee_id", "hire_date", "termination_date", "termination_type",
                                            "manager_id"])
    n = len(employees)
    employees["department"] = "D"
    employees["job_level"] = pd.array([1] * n, dtype="Int64")
    employees["gender"] = "x"
    employees["location"] = "L"
    employees["birth_year"] = pd.array([1990] * n, dtype="Int64")
    who = st.sampled_from(people + ["E4"])

    def dated(k_max):
        k = draw(st.integers(0, k_max))
        return [(draw(who), base + pd.Timedelta(days=draw(day))) for _ in range(k)]

    surveys = pd.DataFrame(dated(6), columns=["employee_id", "survey_date"])
    surveys["survey_date"] = pd.to_datetime(surveys["survey_date"]).astype("datetime64[ns]")
    surveys["engagement_1"] = draw(st.lists(st.sampled_from([1.0, 2.0, 5.0, np.nan]), min_size=len(surveys),
                                            max_size=len(surveys))) if len(surveys) else []
    surveys["engagement_2"] = 3.0
    progs = dated(4)
    programs = pd.DataFrame({"employee_id": [p[0] for p in progs],
                             "start_date": pd.to_datetime([p[1] for p in progs]).astype("datetime64[ns]"),
                             "program": [draw(st.sampled_from(PROGRAM_NAMES)) for _ in progs]})
    fbs = dated(8)
    feedback = pd.DataFrame({"employee_id": [f[0] for f in fbs],
                             "date": pd.to_datetime([f[1] for f in fbs]).astype("datetime64[ns]"),
                             "kind": [draw(st.sampled_from(["check_in", "recognition"])) for _ in fbs]})
    everyone = sorted(set(people) | {"E4"})  # E4 may be a manager who is not an employee
    reviews = pd.DataFrame([(p, c, draw(st.integers(1, 5)), 1.0) for p in everyone
                            for c in ("FY2021", "FY2022", "FY2023") if draw(st.booleans())],
                           columns=["employee_id", "cycle", "rating", "target_attainment"])
    goals = []
    for p in everyone:
        for c in ("FY2021", "FY2022", "FY2023"):
            for j in range(draw(st.integers(0, 2))):
                goals.append((f"G{p}{c}{j}", p, c, draw(st.one_of(st.none(), st.sampled_from(
                    [f"G{q}{c}0" for q in ("E1", "E2", "E3", "E4")]))), np.nan, 1.0))
    goals = pd.DataFrame(goals, columns=["goal_id", "owner_id", "cycle", "parent_goal_id", "weight", "attainment"])
    return dict(employees=employees, surveys=surveys, programs=programs, feedback=feedback, reviews=reviews,
                goals=goals)


def _naive_value(tables, config, spell, day: pd.Timestamp, name: str):
    """Covariate value on ``day`` computed row by row from the clean tables (the test's own reference)."""
    hire, end, emp, manager = spell["hire_date"], spell["_end"], spell["employee_id"], spell["manager_id"]
    cycles = {c.name: (pd.Timestamp(c.start), pd.Timestamp(c.end)) for c in config.cycles}
    if name.startswith("program_"):
        p = tables["programs"]
        hit = p[(p["employee_id"] == emp) & (p["program"] == name[8:]) & (p["start_date"] >= hire)
                & (p["start_date"] <= end) & (p["start_date"] <= day)]
        return int(len(hit) > 0)
    if name == "manager_program":
        p = tables["programs"]
        hit = p[(p["employee_id"] == manager) & (p["program"] == "leadership_development") & (p["start_date"] <= day)]
        return int(pd.notna(manager) and len(hit) > 0)
    if name in ("rating", "manager_rating"):
        who = emp if name == "rating" else manager
        if pd.isna(who):
            return np.nan
        r = tables["reviews"]
        r = r[r["employee_id"] == who].assign(known=lambda d: d["cycle"].map(lambda c: cycles[c][1] + pd.Timedelta(days=1)))
        r = r[r["known"] <= day]
        if name == "rating":
            r = r[r["known"] > hire]
        return float(r.sort_values("known")["rating"].iloc[-1]) if len(r) else np.nan
    if name == "engagement":
        s = tables["surveys"]
        s = s[(s["employee_id"] == emp) & (s["survey_date"] >= hire) & (s["survey_date"] <= end)
              & (s["survey_date"] <= day)]
        s = s.assign(score=s[["engagement_1", "engagement_2"]].mean(axis=1)).dropna(subset=["score"])
        return float(s.sort_values("survey_date", kind="stable")["score"].iloc[-1]) if len(s) else np.nan
    if name in ("alignment_cascade", "alignment_org"):
        current = [c for c, (cs, ce) in cycles.items() if ce >= hire and max(cs, hire) <= day]
        if not current:
            return np.nan
        goals = tables["goals"]
        g = goals[(goals["owner_id"] == emp) & (goals["cycle"] == current[-1])]
        if not len(g):
            return np.nan
        if name == "alignment_cascade":
            if pd.isna(manager):
                return np.nan
            mine = set(goals.loc[(goals["owner_id"] == manager) & (goals["cycle"] == current[-1]), "goal_id"])
            return float(g["parent_goal_id"].isin(mine).mean())
        return np.nan  # organisation reach is checked on the simulator
    if name == "feedback_rate":
        q = day.to_period("Q") - 1  # the last quarter that ended before `day`
        if q.start_time < pd.Timestamp("2022-01-01") or q.end_time.normalize() < hire:
            return np.nan
        lo, hi = max(q.start_time, hire), min(q.end_time.normalize(), end)
        f = tables["feedback"]
        n = ((f["employee_id"] == emp) & (f["date"] >= lo) & (f["date"] <= hi)).sum()
        return n / ((hi - lo).days + 1) * 90
    raise KeyError(name)


CHECKED = ["alignment_cascade", "engagement", "manager_program", "manager_rating", "rating", "feedback_rate",
           *[f"program_{p}" for p in PROGRAM_NAMES]]


@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(random_studies())
def test_intervals_properties_on_random_studies(tables):
    config = ar.config_from_dict({**CONFIG.to_yaml_dict(), "scales": {
        "engagement": {"items": ["engagement_1", "engagement_2"], "min_answered": 0.5}}})
    intervals = ar.interval_table(tables, config)
    person = ar.person_table(tables, config)
    emp = tables["employees"]

    # person-time inside the window, computed from the dates alone
    ends = emp["termination_date"].where(emp["termination_date"] <= WINDOW[1], WINDOW[1])
    starts = emp["hire_date"].where(emp["hire_date"] >= WINDOW[0], WINDOW[0])
    length = (ends - starts).dt.days
    assert int((intervals["stop"] - intervals["start"]).sum()) == int(length[length > 0].sum())
    assert int((person["exit"] - person["entry"]).sum()) == int(length[length > 0].sum())
    assert len(person) == int((length > 0).sum())

    assert (intervals["start"] < intervals["stop"]).all()
    spells = intervals.groupby(["employee_id", "spell"], sort=False)
    first = spells.head(1).reset_index(drop=True)
    last = spells.tail(1).reset_index(drop=True)
    keyed = person.set_index(["employee_id", "spell"])
    assert (first["start"].to_numpy() == keyed.loc[list(zip(first["employee_id"], first["spell"])), "entry"].to_numpy()).all()
    assert (last["stop"].to_numpy() == keyed.loc[list(zip(last["employee_id"], last["spell"])), "exit"].to_numpy()).all()
    # tiling: each start is the previous stop within a spell
    prev_stop = spells["stop"].shift(1)
    inner = prev_stop.notna()
    assert (intervals.loc[inner, "start"] == prev_stop[inner]).all()
    # events: at most one per spell, only on its last row, only for event types
    is_last = ~intervals.duplicated(["employee_id", "spell"], keep="last")
    assert (intervals.loc[~is_last, "event"] == 0).all()
    assert (intervals.loc[~is_last, "event_type"] == "censored").all()
    assert spells["event"].sum().max() <= 1 if len(intervals) else True
    assert (last["event"].to_numpy() == keyed.loc[list(zip(last["employee_id"], last["spell"])), "event"].to_numpy()).all()

    # no covariate before its known date: every value equals the row-by-row reference on the start day
    sp = emp.sort_values(["employee_id", "hire_date"], kind="stable").assign(
        spell=lambda d: d.groupby("employee_id").cumcount() + 1,
        _end=lambda d: d["termination_date"].where(d["termination_date"] <= WINDOW[1], WINDOW[1]))
    sp = sp.set_index(["employee_id", "spell"])
    checked_rows = intervals.iloc[np.unique(np.linspace(0, len(intervals) - 1, 6).astype(int))] if len(intervals) else intervals
    for row in checked_rows.itertuples(index=False):  # 6 rows spread over the table keep the test fast
        spell = sp.loc[(row.employee_id, row.spell)].to_dict()
        spell["employee_id"] = row.employee_id
        day = spell["hire_date"] + pd.Timedelta(days=row.start)
        for name in CHECKED:
            want = _naive_value(tables, config, spell, day, name)
            got = getattr(row, name)
            assert (np.isnan(want) and np.isnan(got)) or np.isclose(got, want, rtol=0, atol=1e-12), (
                name, row.employee_id, row.start, got, want)


# --------------------------------------------------------------------------- the simulator


@pytest.fixture(scope="module")
def sim_analysis():
    sim = ar.simulate_study(n_employees=600, seed=3, messy=False)
    return sim, ar.build_analysis_tables(ar.clean_study(sim), n_boot=0)


def test_person_and_intervals_reproduce_the_simulated_risk_sets(sim_analysis):
    """Entry, exit and event of every spell equal the simulator's own hazard intervals."""
    sim, at = sim_analysis
    truth = sim.true_intervals.astype({"employee_id": "string"})
    spells = truth.groupby(["employee_id", "spell"]).agg(entry=("start", "min"), exit=("stop", "max"),
                                                         event=("event", "max")).reset_index()
    got = at.person[["employee_id", "spell", "entry", "exit", "event"]]
    assert_frame_equal(got, spells.astype({"event": "int64"}), check_dtype=False)
    assert int((at.intervals["stop"] - at.intervals["start"]).sum()) == int((truth["stop"] - truth["start"]).sum())


@pytest.mark.parametrize("column", ["alignment_cascade", "engagement", "manager_program", "manager_rating"])
def test_intervals_reproduce_the_simulated_covariate_path(sim_analysis, column):
    """On every interval the simulator's hazard used, our covariate equals the one it used (no look-ahead)."""
    sim, at = sim_analysis
    truth = sim.true_intervals.astype({"employee_id": "string"}).sort_values("start", kind="stable")
    ours = at.intervals.sort_values("start", kind="stable")
    both = pd.merge_asof(truth, ours, on="start", by=["employee_id", "spell"], suffixes=("_true", ""))
    assert (both["start"] < both["stop"]).all()  # each true interval starts inside one of our rows
    ours_v, true_v = both[column].astype(float), both[f"{column}_true"].astype(float)
    if column == "alignment_cascade":
        # the truth names the manager in force on the cycle's first day; the measure also credits goals that
        # serve a successor who took over during the cycle: those few rows read higher, never lower
        gap = ours_v.fillna(-1) - true_v.fillna(-1)
        successor = (gap > 1e-12).to_numpy()
        assert successor.mean() < 0.03 and not (gap < -1e-12).any()  # a cycle spans several interval rows
        ours_v, true_v = ours_v[~successor], true_v[~successor]
    np.testing.assert_allclose(ours_v, true_v, rtol=0, atol=1e-12)
    assert len(both) == len(truth)


def test_a_study_with_only_employees_still_gives_every_table():
    config = ar.config_from_dict({"window": {"start": "2022-01-01", "end": "2023-12-31"}})
    tables = {"employees": tiny_tables(raw_reverse=False)["employees"]}
    at = ar.build_analysis_tables(tables, config)
    # without cycles, surveys, programmes or feedback, nothing splits a spell: one interval each
    assert at.intervals[["employee_id", "start", "stop", "event"]].astype(str).values.tolist() == [
        ["E1", "671", "943", "1"], ["E2", "0", "609", "1"], ["M1", "2557", "3286", "0"]]
    assert at.intervals["program_coaching"].tolist() == [0, 0, 0] and at.intervals["rating"].isna().all()
    assert at.survey_panel.empty and at.cycles.empty


def test_every_analysis_column_is_in_the_data_dictionary(tiny_clean):
    """The analysis tables' names are fixed for other tools; each is documented."""
    import re

    dictionary = ar.data_dictionary()
    scales = list(tiny_clean.config.scales)
    for name in ["person", "intervals", "survey_panel", "cycles", "careers"]:
        table = getattr(tiny_clean.analysis, name)
        documented = dictionary.loc[dictionary["table"] == name]
        patterns = [re.escape(c).replace(re.escape("<name>"), r"[a-z_]+").replace(re.escape("<scale>"),
                    "|".join(scales)) for c in documented["column"]]
        undocumented = [c for c in table.columns if not any(re.fullmatch(p, c) for p in patterns)]
        assert not undocumented, f"{name}: {undocumented}"
        dtypes = dict(zip(documented["column"], documented["dtype"]))
        for column in ("employee_id", "manager_id"):
            if column in dtypes:
                assert str(table[column].dtype) == dtypes[column]


# --------------------------------------------------------------------------- two threads, one result


def test_a_second_thread_builds_the_same_tables(sim_analysis):
    """threads=2 (the surveys and feedback beside the goals, the small tables beside the intervals) gives every
    table exactly as one thread does, the job history's values in force included."""
    sim, _ = sim_analysis
    clean = ar.clean_study(sim)
    one = ar.build_analysis_tables(clean, n_boot=20, threads=1)
    two = ar.build_analysis_tables(clean, n_boot=20, threads=2)
    for name in ar.tables.AnalysisTables.__dataclass_fields__:
        assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True, obj=name)
    assert one.intervals["manager_changes"].max() > 0  # the study has manager changes (the history is used)
    with pytest.raises(ValueError, match="threads must be at least 1"):
        ar.build_analysis_tables(clean, threads=0)


def test_an_error_on_the_second_thread_reaches_the_caller(tiny_clean, monkeypatch):
    """A step run beside the others raises its own error in the caller, not a silent gap in the tables."""
    from alignment_research import tables

    def broken(*args, **kwargs):
        raise RuntimeError("reliability failed")

    monkeypatch.setattr(tables, "scale_reliability", broken)
    for threads in (1, 2):
        with pytest.raises(RuntimeError, match="reliability failed"):
            ar.build_analysis_tables(tiny_clean, threads=threads)


def test_changes_in_force_are_those_a_search_per_row_finds():
    """The last change at or before each query within its spell, from queries in key order (counted) and out of
    it (searched), against a row-by-row scan; spells without a change yet get len(keys)."""
    from alignment_research.tables import _BIG, _changes_in_force

    rng = np.random.default_rng(7)
    k_sid, k_t = rng.integers(0, 40, 300), rng.integers(0, 50, 300)
    keys = np.sort(k_sid * _BIG + k_t)
    q_sid, q_t = rng.integers(0, 45, 500), rng.integers(0, 60, 500)
    q = q_sid * _BIG + q_t
    want = np.array([max((j for j, k in enumerate(keys) if s * _BIG <= k <= x), default=len(keys))
                     for s, x in zip(q_sid, q)])
    np.testing.assert_array_equal(_changes_in_force(keys, q, q_sid * _BIG), want)  # out of order: a search
    order = np.argsort(q, kind="stable")
    np.testing.assert_array_equal(_changes_in_force(keys, q[order], (q_sid * _BIG)[order]), want[order])
    assert (want == len(keys)).any() and (want < len(keys)).any()
    np.testing.assert_array_equal(_changes_in_force(keys[:0], q, q_sid * _BIG), np.zeros(len(q), np.int64))
