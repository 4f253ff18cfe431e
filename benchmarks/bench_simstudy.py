"""Benchmark: a 200-replicate simulation study on 2 local processes against the same study run sequentially.

Usage: ``python benchmarks/bench_simstudy.py [REPS] [REPEATS] [--quick]``

Each replicate simulates a survey panel of 80 teams (numpy, as the engagement
recovery test does) and fits the cluster-robust OLS and the within estimator
of the manager programme's effect. The study (``ar.simulation_study``) is run
``REPEATS`` times (default 3) sequentially and ``REPEATS`` times on 2 loky
processes, alternating, so that both see the same load on the shared machine.
The speed-up of each pair is time(sequential) / time(processes); reported are
its median and its range over the pairs. The process pool is started (and its
workers import the toolkit) in a warm-up run before the timing, as a long
study pays that once. After each pair a control (16 pure-Python loops, no data,
no library) is timed the same two ways: its ratio is the parallelism the machine
offers at that moment. The results of the two backends are checked identical.
BLAS runs single-threaded in the sequential run (``OPENBLAS_NUM_THREADS=1``
unless set), as it does in each of the 2 workers, so that the comparison is 1
core against 2.

Measured when written (2 December 2026, 2 cores shared with ~6 other jobs, load
average 6-10): speed-up median 1.13 (pairs 1.13, 1.06, 1.15), control 0.88
(0.89, 1.08, 0.56); an earlier 5-pair run gave 0.96 (0.82-1.15). The machine
offered no second core, so the 1.7x target was not shown here; the two backends
gave bit-identical tables every time.
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one BLAS thread in the sequential run too: 1 core against 2 processes

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import alignment_research as ar  # noqa: E402
from alignment_research.executors import make_tasks, run_tasks  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import fmt_runs, log, median, rss_peak_mib, section, timed  # noqa: E402


def simulate_panel(truth, n_employees, seed, messy):
    """A three-wave survey panel of ``n_employees // 8`` teams; the manager programme starts part-way."""
    rng = np.random.default_rng(seed)
    n_managers = n_employees // 8
    size = rng.integers(4, 13, n_managers)
    mgr = np.repeat(np.arange(n_managers), size)
    joins = rng.random(n_managers) < 0.4
    start = np.where(joins, rng.integers(2, 4, n_managers), 99)
    person = rng.normal(0, truth.engagement_person_sd, len(mgr))
    team = rng.normal(0, truth.engagement_manager_sd, n_managers)
    frames = []
    for wave in (1, 2, 3):
        align = np.clip(truth.alignment_mean + rng.normal(0, 0.2, len(mgr)), 0, 1)
        program = (wave >= start[mgr]).astype(float)
        y = (truth.engagement_intercept + truth.engagement_alignment * align
             + truth.engagement_manager_program * program + team[mgr] + person
             + rng.normal(0, truth.engagement_residual_sd, len(mgr)))
        frames.append(pd.DataFrame({"employee_id": np.arange(len(mgr)), "manager_id": mgr, "wave": wave,
                                    "alignment_cascade": align, "manager_program": program, "engagement": y}))
    return pd.concat(frames, ignore_index=True)


def _rows(result, estimand):
    t = result.tidy().set_index("term")
    return [{"estimand": f"engagement_{estimand}", "estimate": t.loc[term, "estimate"],
             "std_error": t.loc[term, "std_error"], "conf_low": t.loc[term, "conf_low"],
             "conf_high": t.loc[term, "conf_high"], "p_value": t.loc[term, "p_value"]}
            for term, estimand in (("alignment_cascade", "alignment"), ("manager_program", "manager_program"))]


def ols(panel):
    return _rows(ar.fit_ols(panel, "engagement ~ alignment_cascade + manager_program", cluster="manager_id"), None)


def within(panel):
    return _rows(ar.fit_within(panel, "engagement ~ alignment_cascade + manager_program + C(wave)",
                               cluster="manager_id"), None)


def spin(task):
    """Control: pure-Python arithmetic, no data and no library: what 2 processes can gain on this machine now."""
    total = 0
    for i in range(2_000_000):
        total += i * i
    return total


def control(backend: str):
    return run_tasks(spin, make_tasks(["spin"], 16, 0), backend=backend, n_workers=2 if backend == "processes" else None,
                     progress=False)


def study(reps: int, backend: str):
    return ar.simulation_study({"panel": {"n_employees": 640}}, reps=reps, estimators={"ols": ols, "within": within},
                               seed=17, backend=backend, n_workers=2 if backend == "processes" else None,
                               simulate=simulate_panel, progress=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reps", nargs="?", type=int, default=None)
    parser.add_argument("repeats", nargs="?", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="40 replicates")
    args = parser.parse_args(argv)
    reps = args.reps or (40 if args.quick else 200)
    log(f"bench_simstudy: warm-up of the process pool ({reps // 10 or 1} replicates)")
    study(max(reps // 10, 2), "processes")
    seq_times, par_times, ratios, control_ratios = [], [], [], []
    first = None
    for i in range(args.repeats):
        log(f"bench_simstudy: pair {i + 1}/{args.repeats}, sequential")
        t_seq, seq = timed(lambda: study(reps, "sequential"))
        log(f"bench_simstudy: pair {i + 1}/{args.repeats}, 2 processes ({t_seq:.1f} s sequential)")
        t_par, par = timed(lambda: study(reps, "processes"))
        pd.testing.assert_frame_equal(seq.table, par.table, check_exact=True)
        first = first or seq
        seq_times.append(t_seq)
        par_times.append(t_par)
        ratios.append(t_seq / t_par)
        c_seq, _ = timed(lambda: control("sequential"))
        c_par, _ = timed(lambda: control("processes"))
        control_ratios.append(c_seq / c_par)
        log(f"bench_simstudy: speed-up {t_seq / t_par:.2f}; control (pure-Python loop) {c_seq / c_par:.2f}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    section(
        f"Simulation study ({reps} replicates): 2 local processes against sequential",
        f"`simulation_study` of {reps} replicates (a 3-wave panel of 80 teams, 640 employees; cluster-robust OLS and "
        f"within estimator per replicate), run {args.repeats} times sequentially and {args.repeats} times on 2 loky "
        f"processes, alternating; the speed-up of each pair is time(sequential) / time(processes). The two backends "
        f"gave bit-identical tables in every pair. The pool was warmed up before the timing.",
        ["backend", "median (s)", "runs (s)", "speed-up (median)", "speed-up (each pair)"],
        [["sequential (reference)", f"{median(seq_times):.2f}", fmt_runs(seq_times), "1.00", ""],
         ["processes, n_workers=2", f"{median(par_times):.2f}", fmt_runs(par_times), f"{median(ratios):.2f}",
          f"{fmt_runs(ratios)} (range {min(ratios):.2f}-{max(ratios):.2f})"],
         ["control: 16 pure-Python loops, 2 processes / sequential", "", "", f"{median(control_ratios):.2f}",
          f"{fmt_runs(control_ratios)} (range {min(control_ratios):.2f}-{max(control_ratios):.2f})"]],
        memory=[f"process peak RSS {rss_peak_mib():,.0f} MiB (parent); each worker holds one replicate's panel"],
        notes=["The control row is what 2 processes can gain on this machine at the time (a loop with no data and no "
               "library, measured in each pair): when it is near 1, the machine has no second core to give, and no "
               "executor can reach the 1.7x target there.",
               f"Load average at the end: {load} (1, 5, 15 min) on {os.cpu_count()} cores shared with other jobs; "
               f"the target is 1.7x, and a busy machine lowers the ratio (a second process only helps if a core is free)."],
    )
    log(str(first))


if __name__ == "__main__":
    main()
