"""Tests of the simulator's job history (issue 13): well-formed rows, the manager in force downstream, effects, the off switch."""

import hashlib
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import alignment_research as ar
from hazard_terms import exit_linear_predictor
from alignment_research.config import DEFAULT_REASON_MAP
from alignment_research.executors import Task, run_tasks
from alignment_research.simulate.history import REASONS

WINDOW_START = pd.Timestamp("2021-01-01")
WINDOW_END = pd.Timestamp("2024-12-31")
COLUMNS = ["employee_id", "effective_date", "manager_id", "department", "job_level", "location", "reason"]


@pytest.fixture(scope="module")
def sim():
    """A clean study with history (the default)."""
    return ar.simulate_study(n_employees=2500, seed=5, messy=False)


@pytest.fixture(scope="module")
def big():
    """A larger clean study for the effects, with the practices off (see the promotion test: its calibration)."""
    return ar.simulate_study(n_employees=8000, seed=21, messy=False, truth=ar.Truth(practices=False))


def _with_spells(sim):
    """Employees with a spell number, and history rows joined to their spell (the last hired on or before the row)."""
    emp = sim.tables["employees"].assign(spell=lambda e: e.groupby("employee_id").cumcount() + 1)
    jh = sim.tables["job_history"].reset_index(drop=True).reset_index()
    hit = pd.merge_asof(jh.sort_values("effective_date"), emp.sort_values("hire_date")
                        [["employee_id", "spell", "hire_date", "termination_date"]],
                        left_on="effective_date", right_on="hire_date", by="employee_id", direction="backward")
    return emp, hit.set_index("index").sort_index()


def _in_force(table, emp, jh, date_col):
    """The history row in force for each row of ``table`` (``employee_id``, ``spell``, date column)."""
    rows = jh.dropna(subset=["spell"]).astype({"spell": int})
    left = table.reset_index(drop=True).reset_index().sort_values(date_col)
    hit = pd.merge_asof(left, rows.sort_values("effective_date").drop(columns=["hire_date", "termination_date"]),
                        left_on=date_col, right_on="effective_date", by=["employee_id", "spell"],
                        direction="backward", suffixes=("", "_jh"))
    return hit.set_index("index").sort_index()


# ----------------------------------------------------------------------------- well formed


def test_history_rows_are_well_formed(sim):
    emp, jh = _with_spells(sim)
    assert list(sim.tables["job_history"].columns) == COLUMNS
    assert set(jh["reason"]) <= set(REASONS)
    assert {"hire", "manager_change", "reorganisation", "transfer", "promotion"} <= set(jh["reason"])
    # one hire row per spell, on the hire date, equal to the employees row (the values at hire)
    hire = jh[jh["reason"] == "hire"]
    assert len(hire) == len(emp) and not hire.duplicated(["employee_id", "spell"]).any()
    at_hire = emp.merge(hire, on=["employee_id", "spell"], suffixes=("", "_jh"))
    assert (at_hire["effective_date"] == at_hire["hire_date"]).all()
    for col in ("manager_id", "department", "job_level", "location"):
        assert at_hire[col].equals(at_hire[f"{col}_jh"]) or (at_hire[col].fillna("-") == at_hire[f"{col}_jh"].fillna("-")).all(), col
    # every change lies inside its spell and in the window; never two rows on one day
    change = jh[jh["reason"] != "hire"]
    assert change["spell"].notna().all()
    assert (change["effective_date"] > change["hire_date"]).all()
    assert (change["effective_date"] >= WINDOW_START).all() and (change["effective_date"] <= WINDOW_END).all()
    assert (change["termination_date"].isna() | (change["effective_date"] < change["termination_date"])).all()
    assert not jh.duplicated(["employee_id", "effective_date"]).any()
    # the level moves only on promotion rows, one level up, never above 5
    step = jh.groupby(["employee_id", "spell"])["job_level"].diff()
    assert set(step[jh["reason"] == "promotion"]) == {1}
    assert (step[(jh["reason"] != "promotion") & step.notna()] == 0).all()
    assert jh["job_level"].between(1, 5).all()
    # location changes only on transfers (lateral moves); department only on transfers and reorganisations
    loc_changed = jh.groupby(["employee_id", "spell"])["location"].shift() != jh["location"]
    assert set(jh.loc[loc_changed & (jh["reason"] != "hire"), "reason"]) <= {"transfer"}
    dep_changed = jh.groupby(["employee_id", "spell"])["department"].shift() != jh["department"]
    # a promotion on the day of a transfer or reorganisation is one row named promotion (the merge rule of
    # `simulate.history`; 2 such rows at seed 5 with the practices on): it carries that move's new manager
    manager_changed = jh.groupby(["employee_id", "spell"])["manager_id"].shift() != jh["manager_id"]
    merged = (jh["reason"] == "promotion") & manager_changed
    assert set(jh.loc[dep_changed & (jh["reason"] != "hire") & ~merged, "reason"]) <= {"transfer", "reorganisation"}


def _employed(rows, emp):
    """Per history row: its manager has a spell covering the row's date (the window start for earlier hires)."""
    boss = emp[["employee_id", "hire_date", "termination_date"]].rename(columns={"employee_id": "manager_id"})
    day = rows["effective_date"].clip(lower=WINDOW_START)
    pairs = rows[["manager_id"]].assign(day=day).reset_index().merge(boss, on="manager_id")
    employed = (pairs["hire_date"] <= pairs["day"]) & (pairs["termination_date"].isna() | (pairs["termination_date"] > pairs["day"]))
    assert pairs["index"].nunique() == len(rows)  # every manager id is an employee
    return employed.groupby(pairs["index"]).any()


def test_managers_are_employed_on_the_effective_date(sim):
    emp, jh = _with_spells(sim)
    rows = jh[jh["manager_id"].notna()]
    employed = _employed(rows, emp)
    assert employed[rows["reason"] != "hire"].all()
    # hire rows: the manager at max(hire, window start); hired into a vacancy, the successor (as without history)
    assert employed[rows["reason"] == "hire"].mean() > 0.99
    # a manager change names a different manager than the row before
    previous = jh.groupby(["employee_id", "spell"])["manager_id"].shift()
    mc = jh["reason"] == "manager_change"
    assert (jh.loc[mc, "manager_id"] != previous[mc]).all()


# ----------------------------------------------------------------------------- downstream follows the manager in force


def _cascade_in_force(sim):
    """Cascade alignment by hand with the manager in force when the cycle's goals are set (cycle start or hire)."""
    emp, jh = _with_spells(sim)
    goals = sim.tables["goals"].reset_index(drop=True)
    cycle_start = pd.to_datetime(goals["cycle"].astype(int).astype(str) + "-01-01")
    cycle_end = cycle_start + pd.offsets.YearEnd(0)
    left = goals.assign(owner=goals["owner_id"], cycle_end=cycle_end, cycle_start=cycle_start).reset_index()
    spell = pd.merge_asof(left.sort_values("cycle_end"), emp.sort_values("hire_date")[["employee_id", "spell", "hire_date"]],
                          left_on="cycle_end", right_on="hire_date", left_by="owner_id", right_by="employee_id",
                          direction="backward").set_index("index").sort_index()
    spell["day"] = np.maximum(spell["cycle_start"], spell["hire_date"])
    boss = _in_force(spell[["employee_id", "spell", "day"]], emp, jh, "day")["manager_id"]
    owner_of = goals.set_index("goal_id")["owner_id"]
    g = goals.assign(w=goals["weight"].fillna(1.0),
                     linked=(goals["parent_goal_id"].map(owner_of).to_numpy() == boss.to_numpy()).astype(float))
    g["wl"] = g["w"] * g["linked"]
    out = g.groupby(["owner_id", "cycle"])[["wl", "w"]].sum()
    return (out["wl"] / out["w"]).rename("hand").reset_index().rename(columns={"owner_id": "employee_id"})


def test_cascade_links_to_the_manager_in_force_and_the_successor_zeros_go(sim):
    true = sim.true_alignment.merge(_cascade_in_force(sim), on=["employee_id", "cycle"])
    assert len(true) == len(sim.true_alignment)
    ok = true["alignment_cascade"].notna()
    np.testing.assert_allclose(true.loc[ok, "alignment_cascade"], true.loc[ok, "hand"], atol=1e-12)
    # the share of employee-cycles whose manager (as the data name them) has no goals: ~8% without history
    off = ar.simulate_study(n_employees=2500, seed=5, messy=False, truth=ar.Truth(history=False))
    assert off.derived["share_manager_without_goals"] > 0.05
    assert sim.derived["share_manager_without_goals"] < 0.02


def test_hazard_intervals_follow_the_manager_in_force(sim):
    emp, jh = _with_spells(sim)
    ti = sim.true_intervals.merge(emp[["employee_id", "spell", "hire_date"]], on=["employee_id", "spell"])
    ti["date"] = ti["hire_date"] + pd.to_timedelta(ti["start"], unit="D")
    hit = _in_force(ti[["employee_id", "spell", "date"]], emp, jh, "date")
    assert (ti["manager_id"].fillna("-").to_numpy() == hit["manager_id"].fillna("-").to_numpy()).all()
    assert ti.groupby(["employee_id", "spell"])["manager_id"].nunique().max() >= 2
    # manager_program: from the leadership-development start of the manager in force
    t = sim.tables
    lead = t["programs"][t["programs"]["program"] == "leadership_development"].groupby("employee_id")["start_date"].min()
    assert (ti["manager_program"] == (ti["manager_id"].map(lead) <= ti["date"]).astype(int)).all()
    # recent_manager_change: within manager_change_exit_months of a change (not the hire row)
    months = sim.truth.manager_change_exit_months * 30.4375
    changes = jh[(jh["reason"] != "hire") & (jh["manager_id"].ne(jh.groupby(["employee_id", "spell"])["manager_id"].shift()))]
    last = pd.merge_asof(ti.reset_index().sort_values("date"),
                         changes[["employee_id", "effective_date"]].sort_values("effective_date"),
                         left_on="date", right_on="effective_date", by="employee_id",
                         direction="backward").set_index("index").sort_index()
    since = (last["date"] - last["effective_date"]).dt.days
    expected = ((since >= 0) & (since < round(months)) & (last["effective_date"] >= ti["hire_date"])).astype(int)
    assert (ti["recent_manager_change"] == expected).all()
    assert ti["recent_manager_change"].mean() > 0.02
    # the log hazard carries the manager-change term
    tr = sim.truth
    ok = ti[["alignment_cascade", "engagement", "manager_rating"]].notna().all(axis=1)
    lp = exit_linear_predictor(tr, ti, t["feedback"])  # with the manager-change term
    np.testing.assert_allclose(ti.loc[ok, "log_hazard"], lp[ok], atol=1e-9)


def test_feedback_from_the_manager_comes_from_the_manager_in_force(sim):
    emp, jh = _with_spells(sim)
    fb = sim.tables["feedback"]
    fb = pd.merge_asof(fb.reset_index(drop=True).reset_index().sort_values("date"),
                       emp.sort_values("hire_date")[["employee_id", "spell", "hire_date"]], left_on="date",
                       right_on="hire_date", by="employee_id", direction="backward").set_index("index").sort_index()
    boss = _in_force(fb[["employee_id", "spell", "date"]], emp, jh, "date")["manager_id"]
    entry_boss = fb[["employee_id", "spell"]].merge(emp[["employee_id", "spell", "manager_id"]], how="left")["manager_id"]
    check_in = (fb["kind"] == "check_in").to_numpy()
    by_current = (fb["giver_id"].to_numpy() == boss.to_numpy())[check_in].mean()
    moved = (boss.to_numpy() != entry_boss.to_numpy()) & check_in
    assert by_current > 0.8
    assert moved.sum() > 100 and (fb["giver_id"].to_numpy() == boss.to_numpy())[moved].mean() > 0.8


# ----------------------------------------------------------------------------- effects at large n


def test_manager_change_raises_the_exit_hazard(big):
    ti = big.true_intervals
    sums = ti.assign(days=ti["stop"] - ti["start"]).groupby("recent_manager_change")[["event", "days"]].sum()
    rate = sums["event"] / sums["days"]
    ratio = rate[1] / rate[0]
    assert 1.2 < ratio < 1.9, ratio  # truth exp(0.4) = 1.49; the other covariates are nearly balanced


def _promotion_rates(sim, program):
    """Promotions per person-year before and after the start of the spell's own ``program``."""
    emp, jh = _with_spells(sim)
    emp = emp.reset_index(drop=True)
    end = emp["termination_date"].fillna(WINDOW_END + pd.Timedelta(days=1))
    entry = emp["hire_date"].clip(lower=WINDOW_START)
    pr = sim.tables["programs"]
    pr = pr[pr["program"] == program].merge(emp[["employee_id", "spell", "hire_date", "termination_date"]], on="employee_id")
    pr = pr[(pr["start_date"] >= pr["hire_date"]) & (pr["termination_date"].isna() | (pr["start_date"] < pr["termination_date"]))]
    start = emp[["employee_id", "spell"]].merge(pr.groupby(["employee_id", "spell"])["start_date"].min().reset_index(),
                                                how="left")["start_date"]
    exposed_days = (end - start.fillna(end).clip(lower=entry)).dt.days.clip(lower=0)
    days = (end - entry).dt.days
    promo = jh[jh["reason"] == "promotion"].merge(emp[["employee_id", "spell"]].assign(start=start.to_numpy()),
                                                  on=["employee_id", "spell"])
    after = (promo["effective_date"] >= promo["start"]).sum()
    return after / exposed_days.sum(), (len(promo) - after) / (days - exposed_days).sum()


def test_mentoring_and_coaching_raise_promotion(big):
    """Exposed / unexposed promotion rates, against the same study without the programme effects.

    The same seed without the effects draws the same organisation and programmes, so the ratio of the two
    ratios removes what the crude ratio owes to everything else (the level cap, developed managers over time).

    The practices are off (``Truth(practices=False)``): the test is about the promotion hazard given the programme
    starts, and it was calibrated on the starts drawn without them. With them on (starts uniform on the potential
    path) the differenced estimate scattered far more at 8,000 employees: mentoring 0.596 / 0.420 / 0.453 (truth
    0.4) and coaching 0.640 / 0.248 / 0.346 (truth 0.3) at seeds 21 / 22 / 23, against 0.383 / 0.367 / 0.322 and
    0.298 / 0.236 / 0.409 with them off (/tmp script: _promotion_rates of this file on both truths). Open question,
    reported with issue 15: whether that is noise the null no longer cancels or a bias.
    """
    null = ar.simulate_study(n_employees=8000, seed=21, messy=False,
                             truth=big.truth.model_copy(update={"promotion_mentoring": 0.0, "promotion_coaching": 0.0}))
    pd.testing.assert_frame_equal(null.tables["programs"], big.tables["programs"])
    for program, beta in (("mentoring", big.truth.promotion_mentoring), ("coaching", big.truth.promotion_coaching)):
        exposed, unexposed = _promotion_rates(big, program)
        exposed0, unexposed0 = _promotion_rates(null, program)
        crude, effect = np.log(exposed / unexposed), np.log(exposed / unexposed) - np.log(exposed0 / unexposed0)
        assert abs(crude - beta) < 0.25 and abs(effect - beta) < 0.15, (program, crude, effect)
    rate = (big.tables["job_history"]["reason"] == "promotion").sum() / (big.true_intervals.eval("stop - start").sum() / 365.25)
    assert 0.05 < rate < 0.25  # per person-year: base 0.08 raised by ratings and programmes


def test_no_rates_leaves_successions_only():
    truth = ar.Truth(reorg_rate=0, transfer_rate=0, lateral_rate=0, promotion_base_rate=0)
    sim = ar.simulate_study(n_employees=800, seed=2, messy=False, truth=truth)
    assert set(sim.tables["job_history"]["reason"]) == {"hire", "manager_change"}


# ----------------------------------------------------------------------------- off switch and determinism

# sha256 of the files written by `write_simulated_study` from the code before job history (commit 1bec06a);
# study.yaml's digest is of the file without the two config keys the data contract gained with job history
# (see _without_history_config_keys)
_BEFORE = {
    (600, 1, True): {
        "employees.csv": "a61512d2eeb8fff14e5f9ce8e4d86810840d935859dbc31401e836b2f5569366",
        "feedback.csv": "6f897df6db1aa49ef22f39620ece481a9f66a057851d5f3103ba574aa85120eb",
        "goals.csv": "716d232818c241bd814b89552c2e00899f492cc7d80604d13b0e16bbc65c9fe8",
        "programs.csv": "26ae215c94c1f8a0634342bd6812416e88659be21efadb612e191933161f7bcb",
        "reviews.csv": "958e6c801dc3b34ed9bea5230af40448f910645cc2783b8ef6642d7358880713",
        "surveys.csv": "964965df7457a45ff80bd2c86d7808c10f5a74bce90f66dc736e6aa00c2aa369",
        "study.yaml": "c5ababd4396146f7f9690e989e11be6d0ecb733a90109ac5de5109a0ceb6b3d4",
    },
    (1500, 7, False): {
        "employees.csv": "82e321593b4f9ab66760f99ef190da139ab716379c2c06d2d10d03deacb2a7a0",
        "feedback.csv": "afbd8a6be3b5c0ba7127609db3a192343dec746133f8b3c95c46762fff0c00e4",
        "goals.csv": "7a12c97f50ef378299e0ba1815513c020d345948d0b490afba05ee6067cf9f29",
        "programs.csv": "605f2d9b9dd0e708b3120c749532c89a5ef9e2b2a017309666ea4e579b5a045f",
        "reviews.csv": "9d8413b6278e7a7afa1a842ec7b81aba0065aab0ff0536a4b3997a964c95b75b",
        "surveys.csv": "77c17abe871c24471361ab2dd911c1b14f55149fd5e58fbe5a96c0f19352e14a",
        "study.yaml": "c5ababd4396146f7f9690e989e11be6d0ecb733a90109ac5de5109a0ceb6b3d4",
    },
}


def _without_history_config_keys(text: str) -> str:
    """study.yaml without ``reason_map`` and ``covariates``, after checking they hold only the defaults.

    The data contract for job_history added both keys to the study config, so every written study.yaml now
    lists them (the default reason map, no covariates); the simulator's output is otherwise unchanged. Only
    these two top-level blocks are cut from the text, so any other change to the file still changes the digest.
    """
    written = yaml.safe_load(text)
    assert written["reason_map"] == DEFAULT_REASON_MAP and written["covariates"] == {}
    assert "job_history" not in written["files"]
    # the primary analysis (issue 14) is a third new block: the documented defaults
    assert written["analysis"] == ar.config_from_dict({"window": written["window"]}).analysis.model_dump(mode="json")
    cut = re.sub(r"^reason_map:\n(?:  .*\n)*", "", text, count=1, flags=re.M)
    cut = re.sub(r"^covariates: \{\}\n", "", cut, count=1, flags=re.M)
    cut = re.sub(r"^analysis:\n(?:  .*\n)*", "", cut, count=1, flags=re.M)
    # the claims' contract (issue 15) added two more maps: their defaults
    defaults = ar.config_from_dict({"window": written["window"]})
    assert written["feedback_kinds"] == defaults.feedback_kinds and written["set_with_map"] == defaults.set_with_map
    cut = re.sub(r"^(feedback_kinds|set_with_map):\n(?:  .*\n)*", "", cut, count=2, flags=re.M)
    assert len(cut) < len(text) and "reason_map" not in cut and "covariates" not in cut and "analysis" not in cut
    assert "feedback_kinds" not in cut and "set_with_map" not in cut
    return cut


@pytest.mark.parametrize("key", sorted(_BEFORE))
def test_history_off_reproduces_the_simulator_before_history_bit_for_bit(key):
    """Every data file is identical to the code before history; study.yaml too, but for the two new config keys."""
    n, seed, messy = key
    # practices off too: the goal columns and the feedback drawn before the surveys and exits came after history
    sim = ar.simulate_study(n_employees=n, seed=seed, messy=messy, truth=ar.Truth(history=False, practices=False))
    assert "job_history" not in sim.tables and "recent_manager_change" not in sim.true_intervals
    out = ar.write_simulated_study(sim, tempfile.mkdtemp())
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(out).iterdir()
               if p.name not in ("truth.yaml", "study.yaml")}
    study_yaml = _without_history_config_keys((Path(out) / "study.yaml").read_text(encoding="utf-8"))
    digests["study.yaml"] = hashlib.sha256(study_yaml.encode("utf-8")).hexdigest()
    assert digests == _BEFORE[key]


def test_history_is_deterministic_by_seed_and_written(tmp_path):
    a = ar.simulate_study(n_employees=400, seed=3)
    b = ar.simulate_study(n_employees=400, seed=3)
    c = ar.simulate_study(n_employees=400, seed=4)
    pd.testing.assert_frame_equal(a.tables["job_history"], b.tables["job_history"])
    pd.testing.assert_frame_equal(a.true_intervals, b.true_intervals)
    assert not a.tables["job_history"].equals(c.tables["job_history"])
    out = ar.write_simulated_study(a, tmp_path)
    written = pd.read_csv(out / "job_history.csv")
    assert list(written.columns) == COLUMNS and len(written) == len(a.tables["job_history"])
    truth = ar.load_truth(out / "truth.yaml")
    assert truth.history and truth.promotion_mentoring == a.truth.promotion_mentoring


def test_small_departments_move_the_history_too():
    sim = ar.simulate_study(n_employees=600, seed=1, messy=False, truth=ar.Truth(small_departments={"Legal": 3}))
    legal = sim.tables["employees"].loc[lambda e: e["department"] == "Legal", "employee_id"].unique()
    jh = sim.tables["job_history"]
    assert len(legal) == 3 and (jh.loc[jh["employee_id"].isin(legal), "department"] == "Legal").all()


# ----------------------------------------------------------------------------- recovery on the exact intervals

_COX_TERMS = {"alignment_cascade": "hr_alignment", "engagement": "hr_engagement",
              "manager_program": "hr_manager_program", "recent_manager_change": "manager_change_exit_hr"}


def _cox_on_true_intervals(task) -> dict:
    """Time-varying Cox on the simulator's own hazard intervals (manager in force) of one seed (``task.rep``)."""
    sim = ar.simulate_study(n_employees=1000, seed=task.rep, messy=False)
    ti = sim.true_intervals.dropna(subset=["alignment_cascade", "engagement", "manager_rating", "manager_id"])
    formula = " + ".join(["alignment_cascade", "engagement", "manager_program", "manager_rating", "C(job_level)",
                          "recent_manager_change"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small levels may diverge (warned); the terms checked do not
        tidy = ar.fit_cox(ti, formula, start="start", stop="stop", event="event", cluster="manager_id").tidy()
    tidy = tidy.set_index("term")
    return {term: bool(tidy.loc[term, "conf_low"] <= getattr(sim.truth, field) <= tidy.loc[term, "conf_high"])
            for term, field in _COX_TERMS.items()}


@pytest.mark.slow
def test_cox_on_the_exact_intervals_covers_the_truth_with_history():
    """Measured on seeds 0-39 (1,000 employees): coverage 0.95 / 0.925 / 0.95 / 0.975 (alignment, engagement,
    manager programme, manager change); estimates -0.79 / -0.45 / -0.32 / 0.41 against -0.8 / -0.4 / -0.3 / 0.4."""
    backend = "sequential" if "PYTEST_XDIST_WORKER" in os.environ else "processes"
    tasks = [Task("history", seed, seed=0) for seed in range(40)]
    results = run_tasks(_cox_on_true_intervals, tasks, backend=backend, progress=False)
    covered = pd.DataFrame([results[task.key] for task in tasks]).mean()
    assert (covered >= 0.9).all(), covered.to_dict()
