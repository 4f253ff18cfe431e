"""Tests of the synthetic study generator: determinism, the data contract, the organisation, timing."""

import filecmp
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import alignment_research as ar
from hazard_terms import exit_linear_predictor
from alignment_research.schema import COLUMNS
from alignment_research.simulate import SCALE_ITEMS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
WINDOW_START = pd.Timestamp("2021-01-01")
WINDOW_END = pd.Timestamp("2024-12-31")


@pytest.fixture(scope="module")
def clean_sim():
    """A perfectly clean simulated study (messy=False)."""
    return ar.simulate_study(n_employees=600, seed=7, messy=False)


@pytest.fixture(scope="module")
def clean_sim_at_hire():
    """The same clean study without job history: one manager per spell, the manager at hire.

    The timing tests below rebuild covariates from the manager in the employees table; with history the
    manager in force changes within a spell, and tests/test_simulate_history.py checks that version.
    """
    return ar.simulate_study(n_employees=600, seed=7, messy=False, truth=ar.Truth(history=False))


@pytest.fixture(scope="module")
def big_sim():
    """A larger clean study for distributional checks."""
    return ar.simulate_study(n_employees=3000, seed=11, messy=False)


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tables(tiny_study):
    again = ar.simulate_study(n_employees=300, seed=0)
    for name, table in tiny_study.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[name])
    pd.testing.assert_frame_equal(tiny_study.injected, again.injected)
    pd.testing.assert_frame_equal(tiny_study.true_alignment, again.true_alignment)


def test_different_seed_gives_different_tables(tiny_study):
    other = ar.simulate_study(n_employees=300, seed=1)
    assert not tiny_study.tables["employees"].equals(other.tables["employees"])
    assert not tiny_study.tables["surveys"].equals(other.tables["surveys"])


def _make_sample_arguments() -> list[str]:
    """The arguments `make sample` gives ``alignment-research simulate``, read from the Makefile's recipe."""
    recipe = (SAMPLE.parents[1] / "Makefile").read_text()
    found = re.search(r"alignment-research simulate (.*) --out data/sample\n", recipe)
    assert found, "the Makefile's `sample` recipe no longer writes data/sample with `alignment-research simulate`"
    return found.group(1).split()


def test_sample_study_is_reproduced_bit_for_bit(tmp_path):
    from typer.testing import CliRunner

    from alignment_research.cli import app

    if not (SAMPLE / "employees.csv").exists():
        pytest.fail("data/sample is missing: run `make sample`")
    arguments = _make_sample_arguments()
    assert arguments == ["--employees", "2000", "--seed", "20261129", "--omit", "goals.set_with"]
    result = CliRunner().invoke(app, ["simulate", *arguments, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in SAMPLE.iterdir() if p.is_file())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(SAMPLE, tmp_path, names, shallow=False)
    assert mismatch == [] and errors == []


# ----------------------------------------------------------------------------- contract


def test_tables_have_the_canonical_columns_and_types(tiny_study):
    sim = tiny_study
    assert set(sim.tables) == {"employees", "goals", "reviews", "surveys", "programs", "feedback", "job_history"}
    for name, table in sim.tables.items():
        assert table.index[0] == 2 and table.index.is_monotonic_increasing and table.index[-1] == len(table) + 1
        expected = [c for c, *_ in COLUMNS[name]]
        assert list(table.columns[: len(expected)]) == expected
        for column, dtype, _required, _ in COLUMNS[name]:
            col = table[column]
            if dtype == "datetime64[ns]":
                assert str(col.dtype) == "datetime64[ns]", (name, column)
            elif dtype == "Int64":
                assert str(col.dtype) == "Int64", (name, column)
            elif dtype == "float64":
                assert str(col.dtype) == "float64", (name, column)
            else:
                assert col.dropna().map(type).eq(str).all(), (name, column)
    items = [c for c in sim.tables["surveys"].columns if c not in ("employee_id", "survey_date")]
    assert items == [f"{s}_{j}" for s, (k, _) in SCALE_ITEMS.items() for j in range(1, k + 1)]
    assert len(sim.tables["employees"]) >= 300  # 300 spells plus the injected duplicate rows


def test_n_employees_is_the_number_of_spells(clean_sim):
    assert len(clean_sim.tables["employees"]) == 600
    assert not clean_sim.tables["employees"].duplicated(["employee_id", "hire_date"]).any()


def test_config_declares_window_cycles_and_scales(tiny_study):
    cfg = tiny_study.config
    assert (cfg.window.start.isoformat(), cfg.window.end.isoformat()) == ("2021-01-01", "2024-12-31")
    assert [c.name for c in cfg.cycles] == ["2020", "2021", "2022", "2023", "2024"]
    assert cfg.cycles[0].end.year == cfg.window.start.year - 1  # a rating is known at window start
    assert cfg.scales["engagement"].reverse == ["engagement_4"]
    assert cfg.event_types == ["voluntary"] and cfg.min_group_size == 5


def test_clean_study_has_no_problems(clean_sim):
    emp = clean_sim.tables["employees"]
    assert set(emp["termination_type"].dropna()) <= {"voluntary", "involuntary", "other"}
    assert (emp["termination_date"].dropna() > WINDOW_START).all()
    assert (emp["hire_date"] <= WINDOW_END).all()
    assert emp["manager_id"].dropna().isin(emp["employee_id"]).all()
    assert emp["manager_id"].isna().sum() == 1  # the CEO
    for name, table in clean_sim.tables.items():
        assert not table.duplicated().any(), name
    items = clean_sim.tables["surveys"].drop(columns=["employee_id", "survey_date"])
    assert items.stack().between(1, 5).all()
    goals = clean_sim.tables["goals"]
    assert goals["parent_goal_id"].dropna().isin(goals["goal_id"]).all()
    assert goals["owner_id"].isin(emp["employee_id"]).all()
    assert len(clean_sim.injected) == 0


def test_employment_is_left_truncated_with_hires_through_the_window(clean_sim):
    hires = clean_sim.tables["employees"]["hire_date"]
    assert (hires < WINDOW_START).mean() > 0.3
    assert hires.min() < WINDOW_START - pd.DateOffset(years=8)
    assert (hires > WINDOW_START).sum() > 100
    assert hires.min() >= WINDOW_START - pd.DateOffset(years=10, days=1)


def test_spans_of_control_are_3_to_15_at_window_start(big_sim):
    """Positions have 3-15 direct reports; on a given day a few are vacant (refilled within a month)."""
    emp = big_sim.tables["employees"]
    active = emp[(emp["hire_date"] <= WINDOW_START) & ~(emp["termination_date"] <= WINDOW_START)]
    spans = active.groupby("manager_id").size()
    assert spans.max() <= 15
    assert spans.min() >= 1
    assert (spans >= 3).mean() > 0.97
    assert 5 < spans.median() < 10
    assert len(spans) > 100


def test_rehires_reuse_the_id_with_a_later_spell(big_sim):
    emp = big_sim.tables["employees"]
    rehired = emp[emp["employee_id"].duplicated(keep=False)].sort_values(["employee_id", "hire_date"])
    assert len(rehired) >= 2
    first = rehired.groupby("employee_id").nth(0).set_index("employee_id")
    second = rehired.groupby("employee_id").nth(1).set_index("employee_id")
    assert (second["hire_date"] > first["termination_date"]).all()
    assert (first["termination_type"] == "voluntary").all()


def test_yearly_turnover_is_plausible(big_sim):
    emp = big_sim.tables["employees"]
    end = emp["termination_date"].fillna(WINDOW_END + pd.Timedelta(days=1))
    for year in range(2021, 2025):
        a, b = pd.Timestamp(f"{year}-01-01"), pd.Timestamp(f"{year + 1}-01-01")
        years_at_risk = ((end.clip(upper=b) - emp["hire_date"].clip(lower=a)).dt.days.clip(lower=0)).sum() / 365.25
        left = emp["termination_date"].between(a, b - pd.Timedelta(days=1))
        voluntary = (left & (emp["termination_type"] == "voluntary")).sum() / years_at_risk
        involuntary = (left & (emp["termination_type"] == "involuntary")).sum() / years_at_risk
        assert 0.09 < voluntary < 0.19, (year, voluntary)
        assert 0.015 < involuntary < 0.06, (year, involuntary)


def test_leadership_development_is_chosen_for_high_raters(big_sim):
    """Confounding by design: managers rated higher in 2020 enrol more often (logit slope > 0)."""
    import statsmodels.api as sm

    emp, reviews, programs = (big_sim.tables[t] for t in ("employees", "reviews", "programs"))
    managers = emp[emp["employee_id"].isin(emp["manager_id"]) & emp["manager_id"].notna()]
    managers = managers[~(managers["termination_date"] <= WINDOW_START)]
    rating = reviews[reviews["cycle"] == "2020"].set_index("employee_id")["rating"]
    lead = programs.loc[programs["program"] == "leadership_development", "employee_id"]
    data = pd.DataFrame({"rating": managers["employee_id"].map(rating).astype(float),
                         "enrolled": managers["employee_id"].isin(lead).astype(float)}).dropna()
    assert 0.2 < data["enrolled"].mean() < 0.8
    fit = sm.Logit(data["enrolled"], sm.add_constant(data["rating"])).fit(disp=0)
    assert fit.params["rating"] > 0.2
    assert fit.pvalues["rating"] < 0.01
    starts = programs.loc[programs["program"] == "leadership_development", "start_date"]
    assert starts.dt.year.nunique() == 4 and starts.between(WINDOW_START, WINDOW_END).all()


def test_programmes_are_consistent(big_sim):
    programs = big_sim.tables["programs"]
    assert set(programs["program"]) == {"leadership_development", "coaching", "mentoring", "training"}
    assert set(programs["status"]) == {"completed", "in_progress", "withdrawn"}
    done = programs["end_date"].notna()
    assert (programs.loc[done, "end_date"] > programs.loc[done, "start_date"]).all()
    assert (programs.loc[~done, "status"] == "in_progress").all()
    lead = programs[programs["program"] == "leadership_development"]
    emp = big_sim.tables["employees"]
    # managers only; a few new managers have no report in the data yet (their team keeps the predecessor's id)
    assert lead["employee_id"].isin(emp["manager_id"]).mean() > 0.95
    assert (emp.loc[emp["employee_id"].isin(lead["employee_id"]), "job_level"] >= 3).all()


def test_feedback_mostly_comes_from_the_manager(big_sim):
    """Check-ins come from the manager in force on the day (the job_history row in force), not the one at hire."""
    fb = big_sim.tables["feedback"].reset_index(drop=True).reset_index()
    history = big_sim.tables["job_history"][["employee_id", "effective_date", "manager_id"]]
    fb = pd.merge_asof(fb.sort_values("date"), history.sort_values("effective_date"), left_on="date",
                       right_on="effective_date", by="employee_id", direction="backward").set_index("index").sort_index()
    assert fb["effective_date"].notna().all()  # no feedback before the hire
    check_in = fb[fb["kind"] == "check_in"]
    assert (check_in["giver_id"] == check_in["manager_id"]).mean() > 0.7
    assert set(fb["kind"]) == {"check_in", "360_review", "recognition"}


# ----------------------------------------------------------------------------- timing conventions


def _scores(surveys: pd.DataFrame, scale: str) -> pd.Series:
    k, reverse = SCALE_ITEMS[scale]
    items = surveys[[f"{scale}_{j}" for j in range(1, k + 1)]].copy()
    for col in reverse:
        items[col] = 6 - items[col]
    return items.mean(axis=1)


def _cascade(goals: pd.DataFrame, employees: pd.DataFrame) -> pd.DataFrame:
    """Weighted share of goals whose parent is a goal of the owner's manager (by hand).

    The manager is the one on the spell begun most recently by the cycle's end (rehires).
    """
    cycle_end = pd.to_datetime(goals["cycle"].astype(int).astype(str) + "-12-31")
    spells = employees[["employee_id", "hire_date", "manager_id"]].sort_values("hire_date")
    left = goals.assign(cycle_end=cycle_end).reset_index(drop=True).reset_index().sort_values("cycle_end")
    hit = pd.merge_asof(left, spells.rename(columns={"employee_id": "owner_id"}), left_on="cycle_end",
                        right_on="hire_date", by="owner_id", direction="backward").set_index("index").sort_index()
    owner_of = goals.set_index("goal_id")["owner_id"]
    g = goals.reset_index(drop=True).assign(
        w=goals["weight"].fillna(1.0).to_numpy(),
        linked=(goals["parent_goal_id"].map(owner_of).to_numpy() == hit["manager_id"].to_numpy()).astype(float),
    )
    g["wl"] = g["w"] * g["linked"]
    out = g.groupby(["owner_id", "cycle"])[["wl", "w"]].sum()
    return (out["wl"] / out["w"]).rename("alignment_cascade").reset_index().rename(columns={"owner_id": "employee_id"})


def test_true_alignment_is_the_cascade_share_of_the_goals_table(clean_sim_at_hire):
    """Without job history (the manager at hire); tests/test_simulate_history.py checks the manager in force."""
    clean_sim = clean_sim_at_hire
    mine = _cascade(clean_sim.tables["goals"], clean_sim.tables["employees"])
    true = clean_sim.true_alignment.merge(mine, on=["employee_id", "cycle"], suffixes=("", "_hand"))
    assert len(true) == len(clean_sim.true_alignment)
    has_manager = true["alignment_cascade"].notna()
    ceo = clean_sim.tables["employees"].query("manager_id.isna()", engine="python")["employee_id"]
    assert len(ceo) == 1
    assert (~has_manager).sum() == true["employee_id"].isin(ceo).sum() == 5  # no manager, no cascade share
    np.testing.assert_allclose(true.loc[has_manager, "alignment_cascade"], true.loc[has_manager, "alignment_cascade_hand"], atol=1e-12)
    assert 0.4 < true["alignment_cascade"].mean() < 0.8
    assert true["alignment_org"].between(0, 1).all()


def test_hazard_covariates_follow_the_timing_conventions(clean_sim_at_hire):
    """Rebuild every interval's covariates from the six tables and compare with what the hazard used.

    Without job history (the manager at hire, one level per spell); tests/test_simulate_history.py checks the
    intervals with history (the manager in force, the manager-change term).
    """
    clean_sim = clean_sim_at_hire
    t = clean_sim.tables
    emp = t["employees"].assign(spell=lambda e: e.groupby("employee_id").cumcount() + 1)
    ti = clean_sim.true_intervals.merge(emp[["employee_id", "spell", "hire_date", "termination_date", "termination_type"]],
                                        on=["employee_id", "spell"])
    ti["date"] = ti["hire_date"] + pd.to_timedelta(ti["start"], unit="D")

    # person level: entry, exit, event
    first = ti.groupby(["employee_id", "spell"]).agg(entry=("start", "min"), exit=("stop", "max"), events=("event", "sum"),
                                                     hire=("hire_date", "first"), term=("termination_date", "first"),
                                                     type=("termination_type", "first"))
    entry = (WINDOW_START - first["hire"]).dt.days.clip(lower=0)
    exit_ = (first["term"].fillna(WINDOW_END) - first["hire"]).dt.days
    assert (first["entry"] == entry).all() and (first["exit"] == exit_).all()
    assert (first["events"] == (first["type"] == "voluntary").astype(int)).all()
    last = ti.groupby(["employee_id", "spell"]).tail(1)
    assert (last["event_type"] == last["termination_type"].fillna("censored")).all()
    assert (ti.drop(last.index)["event_type"] == "censored").all()
    assert (ti["stop"] > ti["start"]).all()
    assert (ti.groupby(["employee_id", "spell"])["start"].shift(-1).dropna() == ti.drop(last.index)["stop"]).all()
    assert len(first) == len(emp)

    # alignment of the current cycle, known from the cycle start (or the hire)
    align = _cascade(t["goals"], t["employees"])
    ti["cycle"] = ti["date"].dt.year.astype(str)
    got = ti.merge(align, on=["employee_id", "cycle"], how="left", suffixes=("", "_hand"))
    boss = got["manager_id"].notna()
    np.testing.assert_allclose(got.loc[boss, "alignment_cascade"], got.loc[boss, "alignment_cascade_hand"], atol=1e-12)
    assert got.loc[~boss, "alignment_cascade"].isna().all()  # the CEO

    # engagement: the latest observed score of this spell on or before the date
    sv = t["surveys"].assign(score=_scores(t["surveys"], "engagement"))
    sv = sv.merge(emp[["employee_id", "spell", "hire_date"]], on="employee_id")
    sv = sv[sv["survey_date"] >= sv["hire_date"]].drop_duplicates(["employee_id", "survey_date"], keep="last")
    left = ti.reset_index().sort_values("date")
    hit = pd.merge_asof(left, sv[["employee_id", "spell", "survey_date", "score"]].sort_values("survey_date"),
                        left_on="date", right_on="survey_date", by=["employee_id", "spell"], direction="backward")
    hit = hit.set_index("index").sort_index()
    np.testing.assert_allclose(hit["engagement"], hit["score"], atol=1e-12)  # NaN before the first response

    # manager_program from the manager's leadership-development start
    lead = t["programs"][t["programs"]["program"] == "leadership_development"].groupby("employee_id")["start_date"].min()
    expected = (ti["manager_id"].map(lead) <= ti["date"]).astype(int)
    assert (ti["manager_program"] == expected).all()
    assert ti["manager_program"].mean() > 0.05

    # manager_rating: the manager's latest rating known by the date (cycle end + 1 day)
    rv = t["reviews"].assign(known=lambda r: pd.to_datetime(r["cycle"].astype(int) + 1, format="%Y"))
    rv = rv.rename(columns={"employee_id": "manager_id"}).sort_values("known")
    left = ti.reset_index()[["index", "manager_id", "date"]].dropna().sort_values("date")
    hit = pd.merge_asof(left, rv[["manager_id", "known", "rating"]], left_on="date", right_on="known",
                        by="manager_id", direction="backward").set_index("index")
    np.testing.assert_allclose(ti.loc[hit.index, "manager_rating"], hit["rating"].astype(float))

    # the log-hazard is the stated linear predictor wherever every covariate is known
    tr = clean_sim.truth
    ok = ti[["alignment_cascade", "engagement", "manager_rating"]].notna().all(axis=1)
    lp = exit_linear_predictor(tr, ti, t["feedback"])
    np.testing.assert_allclose(ti.loc[ok, "log_hazard"], lp[ok], atol=1e-9)
    assert ok.mean() > 0.5


def test_survey_scales_track_their_causes(big_sim):
    sv = big_sim.tables["surveys"].copy()
    sv["cycle"] = sv["survey_date"].dt.year.astype(str)
    sv = sv.merge(big_sim.true_alignment, on=["employee_id", "cycle"])
    perceived = _scores(sv, "alignment")
    assert np.corrcoef(perceived, sv["alignment_cascade"].fillna(0))[0, 1] > 0.2
    engagement = _scores(sv, "engagement")
    assert 2.7 < engagement.mean() < 3.6
    assert engagement.std() > 0.3


def test_implied_alpha_matches_the_sample_alpha(big_sim):
    sv = big_sim.tables["surveys"]
    for scale, (k, reverse) in SCALE_ITEMS.items():
        items = sv[[f"{scale}_{j}" for j in range(1, k + 1)]].dropna().copy()
        for col in reverse:
            items[col] = 6 - items[col]
        cov = np.cov(items.to_numpy(), rowvar=False)
        alpha = k / (k - 1) * (1 - np.trace(cov) / cov.sum())
        assert abs(alpha - big_sim.derived["implied_alpha"][scale]) < 0.03, scale
        assert 0.6 < alpha < 0.9


# ----------------------------------------------------------------------------- messy data


def test_injected_problems_are_where_the_log_says(tiny_study):
    inj = tiny_study.injected
    t = tiny_study.tables
    assert list(inj.columns) == ["table", "row", "column", "rule", "note"]
    assert 15 <= len(inj) <= 60
    expected = {"duplicate_row", "conflicting_duplicate", "termination_before_hire", "implausible_date",
                "missing_required", "out_of_range_answer", "unknown_manager", "survey_after_termination",
                "noncanonical_category", "excel_serial_date",
                # one of each job_history rule (the tiny study simulates history by default)
                "history_before_hire", "history_after_termination", "history_same_day_conflict",
                "history_unknown_manager", "history_manager_not_employed", "history_level_change_without_reason",
                "history_disagrees_at_hire"}
    assert set(inj["rule"]) == expected
    assert set(inj.loc[inj["rule"].str.startswith("history_"), "table"]) == {"job_history"}
    emp = t["employees"]

    def in_a_spell(employee_id, day) -> bool:
        spells = emp[emp["employee_id"] == employee_id]
        return bool(((spells["hire_date"] <= day) & ~(spells["termination_date"] < day)).any())
    for r in inj.itertuples():
        table = t[r.table]
        assert r.row in table.index
        if r.rule == "duplicate_row":
            assert table.loc[r.row].equals(table.loc[r.row - 1])
        elif r.rule == "out_of_range_answer":
            assert table.at[r.row, r.column] in (0.0, 9.0)
        elif r.rule == "termination_before_hire":
            assert table.at[r.row, "termination_date"] < table.at[r.row, "hire_date"]
        elif r.rule == "missing_required":
            assert pd.isna(table.at[r.row, r.column])
        elif r.rule == "unknown_manager":
            assert table.at[r.row, "manager_id"] not in set(table["employee_id"])
        elif r.rule == "noncanonical_category":
            assert table.at[r.row, "termination_type"] not in ("voluntary", "involuntary", "other")
        elif r.rule == "survey_after_termination":
            emp = t["employees"]
            term = emp.loc[emp["employee_id"] == table.at[r.row, "employee_id"], "termination_date"].max()
            assert table.at[r.row, "survey_date"] > term
        elif r.rule in ("history_before_hire", "history_after_termination"):
            who, day = table.at[r.row, "employee_id"], table.at[r.row, "effective_date"]
            assert not in_a_spell(who, day)
            spells = emp[emp["employee_id"] == who]
            if r.rule == "history_before_hire":
                assert (spells["hire_date"] > day).any()
            else:
                assert (spells["termination_date"] < day).any()
        elif r.rule == "history_same_day_conflict":
            same_day = table[(table["employee_id"] == table.at[r.row, "employee_id"])
                             & (table["effective_date"] == table.at[r.row, "effective_date"])]
            assert len(same_day) >= 2 and same_day[r.column].nunique() >= 2
        elif r.rule == "history_unknown_manager":
            assert table.at[r.row, "manager_id"] not in set(emp["employee_id"])
        elif r.rule == "history_manager_not_employed":
            boss = table.at[r.row, "manager_id"]
            assert boss in set(emp["employee_id"]) and not in_a_spell(boss, table.at[r.row, "effective_date"])
        elif r.rule == "history_level_change_without_reason":
            assert pd.isna(table.at[r.row, "reason"])
            assert table.at[r.row - 1, "employee_id"] == table.at[r.row, "employee_id"]
            assert table.at[r.row - 1, "job_level"] != table.at[r.row, "job_level"]
        elif r.rule == "history_disagrees_at_hire":
            assert table.at[r.row, "reason"] == "hire"
            at_hire = emp[(emp["employee_id"] == table.at[r.row, "employee_id"])
                          & (emp["hire_date"] == table.at[r.row, "effective_date"])]
            assert len(at_hire) == 1 and at_hire[r.column].iloc[0] != table.at[r.row, r.column]


def test_written_files_load_and_serial_dates_are_only_in_the_file(tmp_path, tiny_study):
    folder = ar.write_simulated_study(tiny_study, tmp_path / "study")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{t}.csv" for t in tiny_study.tables] + ["study.yaml", "truth.yaml"])
    study = ar.load_study(folder)
    for name, table in tiny_study.tables.items():
        assert study.tables[name].shape == table.shape, name
    serial = tiny_study.injected.query("rule == 'excel_serial_date'")
    raw = pd.read_csv(folder / "employees.csv", dtype=str)
    for row in serial["row"]:
        assert raw.loc[row - 2, "hire_date"].isdigit()
    assert ar.load_config(folder).model_dump() == tiny_study.config.model_dump()


# ----------------------------------------------------------------------------- truth


def test_an_omitted_optional_column_leaves_every_other_byte_as_it_was(tmp_path, tiny_study):
    full = ar.write_simulated_study(tiny_study, tmp_path / "full")
    lean = ar.write_simulated_study(tiny_study, tmp_path / "lean", omit=["goals.set_with"])
    names = sorted(p.name for p in full.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(full, lean, names, shallow=False)
    assert sorted(mismatch) == ["goals.csv", "truth.yaml"] and errors == []
    goals_full, goals_lean = (pd.read_csv(f / "goals.csv", dtype=str) for f in (full, lean))
    pd.testing.assert_frame_equal(goals_lean, goals_full.drop(columns="set_with"))
    assert "set_with" in goals_full and "Left out of the files" in (lean / "truth.yaml").read_text()
    assert ar.load_truth(lean / "truth.yaml") == tiny_study.truth


@pytest.mark.parametrize("entry, words", [
    ("goals.colour", "'goals.colour' is not a column of the simulated study; optional columns written: "),
    ("teams.set_with", "'teams.set_with' is not a column"),
    ("goals.owner_id", "'goals.owner_id' is required by the data contract"),
])
def test_omit_refuses_a_column_that_is_not_an_optional_one(tmp_path, tiny_study, entry, words):
    with pytest.raises(ar.ConfigError, match=re.escape(words)):
        ar.write_simulated_study(tiny_study, tmp_path, omit=[entry])
    assert not (tmp_path / "goals.csv").exists()


def test_truth_yaml_round_trips(tmp_path, tiny_study):
    ar.write_simulated_study(tiny_study, tmp_path)
    assert ar.load_truth(tmp_path / "truth.yaml") == tiny_study.truth
    written = yaml.safe_load((tmp_path / "truth.yaml").read_text())
    assert set(written["derived"]["implied_alpha"]) == set(SCALE_ITEMS)


def test_misspelt_truth_key_names_it(tmp_path):
    path = tmp_path / "truth.yaml"
    path.write_text("hr_alignmnet: -1.0\n")
    with pytest.raises(ar.ConfigError, match="hr_alignmnet"):
        ar.load_truth(path)
    path.write_text("hr_alignment: strong\n")
    with pytest.raises(ar.ConfigError, match="hr_alignment"):
        ar.load_truth(path)


def test_truth_overrides_merge_onto_defaults(tmp_path):
    path = tmp_path / "truth.yaml"
    path.write_text("hr_manager_program: 0\nhr_job_level: {5: -1.0}\n")
    truth = ar.load_truth(path)
    assert truth.hr_manager_program == 0.0
    assert truth.hr_job_level[5] == -1.0 and truth.hr_job_level[2] == ar.default_truth().hr_job_level[2]
    assert truth.hr_alignment == ar.default_truth().hr_alignment


def test_cli_honours_a_truth_file_with_zero_effects(tmp_path):
    from typer.testing import CliRunner

    from alignment_research.cli import app

    (tmp_path / "zero.yaml").write_text("hr_manager_program: 0\nengagement_manager_program: 0\n")
    result = CliRunner().invoke(app, ["simulate", "--employees", "200", "--seed", "3", "--out", str(tmp_path / "s"),
                                      "--truth", str(tmp_path / "zero.yaml")])
    assert result.exit_code == 0, result.output
    written = yaml.safe_load((tmp_path / "s" / "truth.yaml").read_text())
    assert written["hr_manager_program"] == 0.0 and written["engagement_manager_program"] == 0.0
    assert written["hr_alignment"] == -0.8
    (tmp_path / "bad.yaml").write_text("hr_manger_program: 0\n")
    result = CliRunner().invoke(app, ["simulate", "--employees", "200", "--out", str(tmp_path / "t"),
                                      "--truth", str(tmp_path / "bad.yaml")])
    assert result.exit_code == 1 and "hr_manger_program" in result.output


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ar.ConfigError, match="n_employees"):
        ar.simulate_study(n_employees=3)
    with pytest.raises(ar.ConfigError, match="Truth"):
        ar.simulate_study(n_employees=50, truth={"hr_alignment": 0})


# ----------------------------------------------------------------------------- recovery (slow)


@pytest.mark.slow
def test_time_varying_cox_on_the_true_intervals_recovers_the_effects():
    """lifelines on the exact hazard intervals recovers every log-hazard ratio within 3 standard errors."""
    from lifelines import CoxTimeVaryingFitter

    sim = ar.simulate_study(n_employees=8000, seed=2, messy=False)
    ti = sim.true_intervals.dropna(subset=["alignment_cascade", "engagement", "manager_rating"]).copy()
    ti["id"] = ti["employee_id"] + "_" + ti["spell"].astype(str)
    ti["engagement_3"] = ti["engagement"] - 3
    ti["manager_rating_3"] = ti["manager_rating"] - 3
    levels = [f"job_level_{lvl}" for lvl in range(2, 6)]
    for lvl in range(2, 6):
        ti[f"job_level_{lvl}"] = (ti["job_level"] == lvl).astype(float)
    cols = ["id", "start", "stop", "event", "alignment_cascade", "engagement_3", "manager_program", "manager_rating_3"]
    fit = CoxTimeVaryingFitter().fit(ti[cols + levels], id_col="id", start_col="start", stop_col="stop", event_col="event")
    tr = sim.truth
    truth = {"alignment_cascade": tr.hr_alignment, "engagement_3": tr.hr_engagement,
             "manager_program": tr.hr_manager_program, "manager_rating_3": tr.hr_manager_rating}
    for term, value in truth.items():
        est, se = fit.params_[term], fit.standard_errors_[term]
        assert abs(est - value) < 3 * se + 0.05, (term, est, value)
