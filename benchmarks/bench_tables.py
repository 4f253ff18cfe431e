"""Benchmark: build every analysis table of a simulated study (default 100,000 employees).

Usage: ``python benchmarks/bench_tables.py [N_EMPLOYEES] [REPEATS]``

The study is simulated (``messy=False``) and cleaned once, outside the timing.
Then :func:`build_analysis_tables` is timed ``REPEATS`` times (median printed,
with the median seconds of each step, so the dominating step is visible). The
reference, timed in the same run, is the floor any builder of a start/stop table
pays: one ``sort_values`` of the finished ``intervals`` table by
``employee_id, spell, start``. Peak memory is measured in a separate run with
``tracemalloc`` (Python and NumPy allocations) and as the process' peak RSS.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import tracemalloc

import alignment_research as ar


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(n_employees: int = 100_000, repeats: int = 3) -> None:
    t_sim, sim = _timed(lambda: ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    t_clean, clean = _timed(lambda: ar.clean_study(sim))
    del sim
    rows = {k: len(v) for k, v in clean.tables.items()}
    print(f"simulated {n_employees:,} employees in {t_sim:.1f} s, cleaned in {t_clean:.1f} s; "
          + ", ".join(f"{k} {v:,}" for k, v in rows.items()))

    totals, refs, steps = [], [], {}
    for _ in range(repeats):
        timings: dict[str, float] = {}
        t, tables = _timed(lambda: ar.build_analysis_tables(clean, timings=timings))
        t_ref, _ = _timed(lambda: tables.intervals.sort_values(["employee_id", "spell", "start"], kind="stable"))
        totals.append(t)
        refs.append(t_ref)
        for k, v in timings.items():
            steps.setdefault(k, []).append(v)
    print("analysis tables: " + ", ".join(
        f"{name} {len(getattr(tables, name)):,} x {getattr(tables, name).shape[1]}"
        for name in ("person", "intervals", "survey_panel", "cycles")))
    total, ref = statistics.median(totals), statistics.median(refs)
    print(f"\nmedian of {repeats} runs: build_analysis_tables {total:.2f} s; "
          f"reference (sort intervals) {ref:.2f} s; ratio x{total / ref:.1f}")
    print("median time per step (share of the total):")
    for name, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(values)
        print(f"  {name:22s} {med:7.2f} s  {100 * med / total:5.1f}%")
    del tables

    tracemalloc.start()
    ar.build_analysis_tables(clean)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\npeak traced memory of build_analysis_tables: {peak / 2**20:,.0f} MiB; process peak RSS {rss:,.0f} MiB")


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:]])
