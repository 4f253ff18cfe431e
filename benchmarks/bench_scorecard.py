"""Benchmark: the claims scorecard on the bundled sample and on a simulated study (default 20,000 employees).

Usage: ``python benchmarks/bench_scorecard.py [N_EMPLOYEES] [REPEATS] [--quick]`` (default 20000 and 3;
``--quick``: 5000).

Both studies are cleaned and their analysis tables built once, outside the
timing. Then :func:`claims_scorecard` (nine claims, about thirty fits: mixed
models, Cox models, OLS, three matched development trials and a 500-draw
cluster-bootstrap mediation) is timed ``REPEATS`` times on each, median
reported. The reference measured in the same run is one cluster-robust
``fit_cox`` of the intervals table (``alignment_cascade``), so the ratio says
how many Cox fits the whole scorecard costs. Peak memory: ``tracemalloc``
during one scorecard of the sample, and the process' peak RSS at the end.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import alignment_research as ar

from _common import fmt_runs, log, repeat, rss_peak_mib, section, size_arguments, traced_peak_mib

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _reference(clean) -> float:
    iv = clean.analysis.intervals.dropna(subset=["alignment_cascade", "manager_id"])
    t0 = time.perf_counter()
    ar.fit_cox(iv, "alignment_cascade", start="start", stop="stop", event="event", cluster="manager_id")
    return time.perf_counter() - t0


def _measure(label: str, clean, repeats: int) -> tuple[list, list[float], list[float]]:
    tables = clean.analysis
    n_rows = f"{len(tables.intervals):,} intervals, {len(tables.survey_panel):,} responses"
    refs, times = [], []
    for _ in range(repeats):  # reference and scorecard interleaved, so both see the same load
        log(f"bench_scorecard: {label}")
        refs.append(_reference(clean))
        times.append(repeat(lambda: ar.claims_scorecard(clean), 1)[0][0])
    t, r = statistics.median(times), statistics.median(refs)
    timings: dict[str, float] = {}
    ar.claims_scorecard(clean, timings=timings)  # one more run for the share of each claim
    total = sum(timings.values())
    shares = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:4])
    return [label, n_rows, f"{t:.2f}", fmt_runs(times), f"{r:.2f}", f"{t / r:.0f}", shares], times, refs


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv, quick=5_000, full=20_000)
    log("bench_scorecard: clean the sample")
    sample = ar.clean_study(ar.load_study(SAMPLE))
    _ = sample.analysis.intervals
    rows = [_measure(f"sample ({len(sample.tables['employees']):,} employees)", sample, repeats)[0]]
    peak_sample = traced_peak_mib(lambda: ar.claims_scorecard(sample))
    del sample
    log(f"bench_scorecard: simulate and clean {n_employees:,}")
    big = ar.clean_study(ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    _ = big.analysis.intervals
    rows.append(_measure(f"simulated ({n_employees:,} employees, seed 1)", big, repeats)[0])
    section(
        "Claims scorecard",
        "`claims_scorecard` (all nine claims, defaults: 500 bootstrap draws for the mediation) on studies cleaned "
        f"once outside the timing; median of {repeats} runs. Reference in the same run, interleaved: one "
        "cluster-robust `fit_cox(intervals, \"alignment_cascade\", cluster=\"manager_id\")`.",
        ["study", "size", "median (s)", "runs (s)", "reference Cox (s)", "x Cox", "largest claims (share of time)"],
        rows,
        memory=[f"tracemalloc peak of one scorecard on the sample {peak_sample:,.0f} MiB",
                f"process peak RSS {rss_peak_mib():,.0f} MiB (the simulated study and its tables included)"],
        notes=["Claim 4 (the employee's own coaching, mentoring and training: three sets of emulated trials, each "
               "with a propensity fit on every person-trial) takes most of the time; the other eight claims take "
               "a few seconds on the sample."],
    )


if __name__ == "__main__":
    main()
