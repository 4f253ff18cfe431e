"""Benchmark: the claims scorecard on the bundled sample and on a simulated study (default 20,000 employees).

Usage: ``python benchmarks/bench_scorecard.py [N_EMPLOYEES] [REPEATS] [--quick]`` (default 20000 and 3;
``--quick``: 5000).

Both studies are cleaned and their analysis tables built once, outside the
timing, and one scorecard of the sample warms the process (modules loaded on
first use). Each of the ``REPEATS`` runs is a fresh forked process (so its peak
resident set is its own) that first builds the study's analysis tables again
from the clean tables (the reference: ``build_analysis_tables`` and its
``intervals``, ``survey_panel`` and ``cycles``), then runs
:func:`claims_scorecard` (nine claims, about thirty fits: mixed models, Cox
models, OLS, three matched development trials and a 500-draw cluster-bootstrap
mediation) on the tables built before the fork, as the run stage has them.
Reported: the medians of the wall time, of the CPU time and of the process'
peak resident set (RSS), and the wall time over the reference's.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from pathlib import Path

import alignment_research as ar
from alignment_research.tables import build_analysis_tables

from _common import fmt_runs, log, rss_peak_mib, section, size_arguments

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _rss_now_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _one_run(clean, conn) -> None:
    """In a forked child: the reference, then one scorecard; send back the figures."""
    t0 = time.perf_counter()
    tables = build_analysis_tables(clean)
    _ = tables.intervals, tables.survey_panel, tables.cycles
    reference = time.perf_counter() - t0
    del tables
    start_rss = _rss_now_mib()
    timings: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    ar.claims_scorecard(clean, timings=timings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    conn.send(dict(reference=reference, wall=wall, cpu=cpu, peak=peak, start=start_rss, timings=timings))
    conn.close()


def _run_forked(clean) -> dict:
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_one_run, args=(clean, child))
    proc.start()
    child.close()
    out = parent.recv()
    proc.join()
    return out


def _measure(label: str, clean, repeats: int) -> list:
    tables = clean.analysis
    _ = tables.intervals, tables.survey_panel, tables.cycles  # built before the fork, as the run stage has them
    size = f"{len(tables.intervals):,} intervals, {len(tables.survey_panel):,} responses"
    runs = []
    for i in range(repeats):
        log(f"bench_scorecard: {label}, run {i + 1} of {repeats}")
        runs.append(_run_forked(clean))
    med = {k: statistics.median(r[k] for r in runs) for k in ("reference", "wall", "cpu", "peak", "start")}
    claims = {k: statistics.median(r["timings"][k] for r in runs) for k in runs[0]["timings"]}
    total = sum(claims.values())
    shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(claims.items(), key=lambda kv: -kv[1])[:3])
    return [label, size, f"{med['wall']:.2f}", fmt_runs([r["wall"] for r in runs]), f"{med['cpu']:.2f}",
            f"{med['reference']:.2f}", f"{med['wall'] / med['reference']:.1f}",
            f"{med['peak']:,.0f} (+{med['peak'] - med['start']:,.0f})", shares]


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv, quick=5_000, full=20_000)
    log("bench_scorecard: clean the sample")
    sample = ar.clean_study(ar.load_study(SAMPLE))
    ar.claims_scorecard(sample)  # warm: the modules each claim loads on first use are loaded before the forks
    rows = [_measure(f"sample ({len(sample.tables['employees']):,} employees)", sample, repeats)]
    del sample
    log(f"bench_scorecard: simulate and clean {n_employees:,}")
    big = ar.clean_study(ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    rows.append(_measure(f"simulated ({n_employees:,} employees, seed 1)", big, repeats))
    section(
        "Claims scorecard",
        "`claims_scorecard` (all nine claims, defaults: 500 bootstrap draws for the mediation) on studies cleaned "
        f"and tabled once outside the timing; median of {repeats} runs, each in a fresh forked process. Reference "
        "in the same process just before: building the study's analysis tables again (`build_analysis_tables` "
        "with its intervals, survey panel and cycles). Peak RSS: the run's process (its increase over the "
        "process at the scorecard's start in brackets; the study and its tables are in the base).",
        ["study", "size", "median wall (s)", "runs (s)", "median CPU (s)", "reference: tables (s)",
         "x tables", "peak RSS MiB (+ scorecard)", "largest claims (share of time)"],
        rows,
        memory=[f"benchmark parent process peak RSS {rss_peak_mib():,.0f} MiB",
                "per run: the peak RSS column"],
        notes=["Wall time includes waiting for the CPU on a loaded machine; CPU time is the process' own work "
               "(single-threaded BLAS). Claim 4 (the employee's own coaching, mentoring and training: three sets "
               "of emulated trials, each with a propensity fit on every person-trial) is the largest part."],
    )


if __name__ == "__main__":
    main()
