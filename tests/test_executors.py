"""The executor: the same results sequentially, on a loky process pool and on a Dask cluster; lost workers; bad input."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research.executors import Task, TaskExecutor, make_tasks, run_bootstrap, run_tasks
from alignment_research.simstudy import simulation_study


def _draw(task):
    """A small replicate: a regression slope on data drawn from the task's own generator."""
    rng = task.rng()
    x = rng.normal(size=40)
    y = 0.3 * x + rng.normal(size=40)
    return float(np.polyfit(x, y, 1)[0])


def _dies_once(task):
    """Kill the worker process the first time replicate 3 runs (a marker file remembers the attempt)."""
    marker = Path(task.payload) / f"{task.scenario}-{task.rep}.died"
    if task.rep == 3 and not marker.exists():
        marker.touch()
        os._exit(1)
    return _draw(task)


def _sim(truth, n_employees, seed, messy):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n_employees)
    return x, truth.engagement_alignment * x + rng.normal(size=n_employees)


def _slope(data):
    x, y = data
    b = float(np.polyfit(x, y, 1)[0])
    se = float(np.std(y - b * x, ddof=2) / (np.std(x) * np.sqrt(len(x))))
    return [{"estimand": "engagement_alignment", "estimate": b, "std_error": se, "conf_low": b - 1.96 * se,
             "conf_high": b + 1.96 * se, "p_value": float(2 * (1 - __import__("scipy").stats.norm.cdf(abs(b / se))))}]


SCENARIOS = {"null": {"truth": {"engagement_alignment": 0.0}, "n_employees": 30}, "effect": {"n_employees": 30}}


def _study(**kwargs):
    return simulation_study(SCENARIOS, reps=12, estimators={"slope": _slope}, seed=11, simulate=_sim,
                            progress=False, **kwargs)


@pytest.fixture(scope="module")
def sequential():
    return _study()


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c:
        with distributed.Client(c) as client:
            yield client


def test_each_task_has_its_own_seed_from_seed_scenario_and_rep():
    a, b, c, d = Task("x", 0, 1), Task("x", 1, 1), Task("y", 0, 1), Task("x", 0, 2)
    draws = [t.rng().integers(0, 2**31) for t in (a, b, c, d)]
    assert len(set(draws)) == 4
    assert Task("x", 0, 1).rng().integers(0, 2**31) == draws[0]
    assert a.int_seed() == Task("x", 0, 1, payload="ignored").int_seed()


def test_process_pool_gives_the_sequential_results(sequential):
    pooled = _study(backend="processes", n_workers=2)
    pd.testing.assert_frame_equal(pooled.replicates, sequential.replicates, check_exact=True)
    pd.testing.assert_frame_equal(pooled.table, sequential.table, check_exact=True)
    assert sequential.table["n_reps"].tolist() == [12, 12]


def test_dask_cluster_gives_the_sequential_results(sequential, cluster):
    remote = _study(backend="dask", scheduler=cluster)
    pd.testing.assert_frame_equal(remote.replicates, sequential.replicates, check_exact=True)
    pd.testing.assert_frame_equal(remote.table, sequential.table, check_exact=True)


def test_results_stream_back_once_each():
    tasks = make_tasks(["a", "b"], reps=5, seed=3)
    seen = [key for key, _ in TaskExecutor("processes", n_workers=2, progress=False).map(_draw, tasks)]
    assert sorted(seen) == sorted(t.key for t in tasks)
    assert run_tasks(_draw, tasks, progress=False) == run_tasks(_draw, tasks, backend="processes", n_workers=2,
                                                                progress=False)


def test_a_dead_process_worker_is_replaced_and_its_task_counted_once(tmp_path):
    tasks = make_tasks({"s": str(tmp_path)}, reps=8, seed=5)
    got = run_tasks(_dies_once, tasks, backend="processes", n_workers=2, progress=False)
    assert (tmp_path / "s-3.died").exists()  # the worker really died once
    assert list(got) == [("s", r) for r in range(8)]
    assert got == run_tasks(_draw, tasks, progress=False)


def test_a_dead_dask_worker_is_replaced_and_its_task_counted_once(tmp_path, cluster):
    tasks = make_tasks({"s": str(tmp_path)}, reps=8, seed=5)
    got = run_tasks(_dies_once, tasks, backend="dask", scheduler=cluster, progress=False)
    assert (tmp_path / "s-3.died").exists()
    assert got == run_tasks(_draw, tasks, progress=False)


def test_progress_is_a_line_every_ten_percent_when_not_a_terminal(capsys):
    run_tasks(_draw, make_tasks(["a"], reps=20, seed=0))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith("alignment-research simulation: 2/20 tasks (10%, ")
    assert lines[-1].startswith("alignment-research simulation: 20/20 tasks (100%, ")


@pytest.mark.parametrize("reps", [0, -3, 2.5, True])
def test_non_positive_reps_is_refused(reps):
    with pytest.raises(ar.ConfigError, match="reps must be a positive integer"):
        make_tasks(["a"], reps=reps, seed=0)
    with pytest.raises(ar.ConfigError, match="reps must be a positive integer"):
        simulation_study(SCENARIOS, reps=reps, estimators={"slope": _slope}, seed=0, simulate=_sim)


def test_unknown_backend_and_bad_workers_are_refused():
    with pytest.raises(ar.ConfigError, match=r"Unknown backend 'threads'; use one of \['sequential', 'processes', 'dask'\]"):
        TaskExecutor("threads")
    with pytest.raises(ar.ConfigError, match="n_workers must be a positive integer; got 0"):
        TaskExecutor("processes", n_workers=0)
    with pytest.raises(ar.ConfigError, match="only used with backend='dask'"):
        TaskExecutor("processes", scheduler="tcp://localhost:8786")


def test_unreachable_scheduler_fails_within_the_timeout():
    with pytest.raises(ar.ConfigError, match=r"Cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s"):
        run_tasks(_draw, make_tasks(["a"], reps=2, seed=0), backend="dask", scheduler="tcp://127.0.0.1:9",
                  timeout=2, progress=False)


def test_unknown_scenario_keys_are_refused():
    with pytest.raises(ar.ConfigError, match=r"Scenario 'a': unknown key\(s\) \['n_employes'\]"):
        simulation_study({"a": {"n_employes": 30}}, reps=2, estimators={"slope": _slope}, seed=0, simulate=_sim)
    with pytest.raises(ar.ConfigError, match=r"Scenario 'a': \['hr_alignmnet'\] are not parameters of Truth"):
        simulation_study({"a": {"truth": {"hr_alignmnet": 0.1}}}, reps=2, estimators={"slope": _slope}, seed=0, simulate=_sim)
    with pytest.raises(ar.ConfigError, match="n_employees must be an integer >= 10; got 5"):
        simulation_study({"a": {"n_employees": 5}}, reps=2, estimators={"slope": _slope}, seed=0, simulate=_sim)


_BOOT_X = np.arange(40, dtype=float) ** 1.5


def _boot_mean(idx):
    return float(_BOOT_X[idx].mean())


def test_run_bootstrap_keeps_resample_order_and_equals_a_plain_loop():
    rng = np.random.default_rng(4)
    resamples = [rng.integers(0, len(_BOOT_X), len(_BOOT_X)) for _ in range(25)]
    loop = [_boot_mean(idx) for idx in resamples]
    assert run_bootstrap(_boot_mean, resamples) == loop
    assert run_bootstrap(_boot_mean, resamples, backend="processes", n_workers=2) == loop
    assert run_bootstrap(_boot_mean, []) == []


def test_the_engagement_bootstraps_compute_their_draws_at_once(monkeypatch, tiny_clean):
    """Driver analysis correlates its resamples from their row counts, and mediation of a continuous outcome
    computes all its draws from per-cluster cross-products: neither needs the runner (counted here)."""
    import alignment_research.engagement as engagement

    calls = []
    real = engagement.run_bootstrap

    def counting(statistic, resamples, **kwargs):
        calls.append(len(resamples))
        return real(statistic, resamples, **kwargs)

    monkeypatch.setattr(engagement, "run_bootstrap", counting)
    panel = tiny_clean.analysis.survey_panel  # simulate_study(n_employees=300, seed=0), cleaned once per process
    ar.driver_analysis(panel, n_boot=7)
    ar.fit_mediation(panel, treatment="manager_program", mediator="alignment", outcome="engagement", n_boot=5)
    assert calls == []
