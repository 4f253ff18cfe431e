"""Benchmark: build every analysis table of a simulated study (default 100,000 employees; ``--quick``: 10,000).

Usage: ``python benchmarks/bench_tables.py [N_EMPLOYEES] [REPEATS] [--quick]``

The study is simulated (``messy=False``) and cleaned once, outside the timing.
Then :func:`build_analysis_tables` is timed ``REPEATS`` times (median reported,
with the median seconds of each step, so the dominating step is visible). The
reference, timed in the same run, is the floor any builder of a start/stop table
pays: one ``sort_values`` of the finished ``intervals`` table by
``employee_id, spell, start``. Peak memory is measured in a separate run with
``tracemalloc`` (Python and NumPy allocations) and as the process' peak RSS.
"""

from __future__ import annotations

import statistics

import alignment_research as ar

from _common import fmt_runs, log, rss_peak_mib, section, size_arguments, timed, traced_peak_mib


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv)
    log(f"bench_tables: simulate and clean {n_employees:,}")
    t_sim, sim = timed(lambda: ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    t_clean, clean = timed(lambda: ar.clean_study(sim))
    del sim
    rows = {k: len(v) for k, v in clean.tables.items()}

    totals, refs, steps = [], [], {}
    for _ in range(repeats):
        log("bench_tables: build_analysis_tables")
        timings: dict[str, float] = {}
        t, tables = timed(lambda: ar.build_analysis_tables(clean, timings=timings))
        t_ref, _ = timed(lambda: tables.intervals.sort_values(["employee_id", "spell", "start"], kind="stable"))
        totals.append(t)
        refs.append(t_ref)
        for k, v in timings.items():
            steps.setdefault(k, []).append(v)
    shapes = ", ".join(f"{name} {len(getattr(tables, name)):,} x {getattr(tables, name).shape[1]}"
                       for name in ("person", "intervals", "survey_panel", "cycles"))
    total, ref = statistics.median(totals), statistics.median(refs)
    del tables
    table = [["reference: `intervals.sort_values(employee_id, spell, start)`", f"{ref:.2f}", fmt_runs(refs), "1.0",
              ""],
             ["**`build_analysis_tables`** (total)", f"{total:.2f}", fmt_runs(totals), f"{total / ref:.1f}", "100%"]]
    for name, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(values)
        table.append([f"step `{name}`", f"{med:.2f}", fmt_runs(values), f"{med / ref:.1f}", f"{100 * med / total:.1f}%"])
    peak = traced_peak_mib(lambda: ar.build_analysis_tables(clean))
    section(
        f"Analysis tables ({n_employees:,} employees)",
        f"`build_analysis_tables` on a simulated (`messy=False`) study cleaned once outside the timing "
        f"(simulated in {t_sim:.1f} s, cleaned in {t_clean:.1f} s; "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"), median of {repeats} runs with the median of each step. Output: {shapes}. Reference in the same run: "
        "one stable sort of the finished intervals table, the floor any builder of a start/stop table pays.",
        ["what", "median (s)", "runs (s)", "x reference", "share of total"],
        table,
        memory=[f"tracemalloc peak of one `build_analysis_tables` {peak:,.0f} MiB",
                f"process peak RSS {rss_peak_mib():,.0f} MiB"],
    )


if __name__ == "__main__":
    main()
