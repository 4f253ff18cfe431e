"""Benchmark: build every analysis table of a simulated study (default 100,000 employees; ``--quick``: 10,000).

Usage: ``python benchmarks/bench_tables.py [N_EMPLOYEES] [REPEATS] [--quick]``

The study is simulated (``messy=False``), written as CSV files to a temporary
folder (:func:`write_simulated_study`) and cleaned once, outside the timing.
Then :func:`build_analysis_tables` is timed ``REPEATS`` times (median reported,
with the median seconds of each step, so the dominating step is visible).
Two references are timed in the same run, ``REPEATS`` times each, interleaved
with the builds: the issue-12 reference, a bare ``pandas.read_csv`` of the
study's CSV files (target: the tables within 2x of it), and the floor any
builder of a start/stop table pays, one ``sort_values`` of the finished
``intervals`` table by ``employee_id, spell, start``. Peak memory is measured in
a separate run with ``tracemalloc`` (Python and NumPy allocations) and as the
process' peak RSS.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

import pandas as pd

import alignment_research as ar

from _common import fmt_runs, log, rss_peak_mib, section, size_arguments, timed, traced_peak_mib


#: The issue-12 target: the analysis tables within this many times the read_csv reference.
TARGET_RATIO = 2.0


def read_study_csv(folder: Path) -> list[pd.DataFrame]:
    """The reference: a bare ``pandas.read_csv`` of every CSV file of a study folder."""
    return [pd.read_csv(path) for path in sorted(folder.glob("*.csv"))]


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv)
    load_start = os.getloadavg()
    log(f"bench_tables: simulate, write and clean {n_employees:,}")
    t_sim, sim = timed(lambda: ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    with tempfile.TemporaryDirectory() as tmp:
        folder = ar.write_simulated_study(sim, Path(tmp) / "study")
        size_mb = sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6
        t_clean, clean = timed(lambda: ar.clean_study(sim))
        del sim
        rows = {k: len(v) for k, v in clean.tables.items()}

        totals, reads, sorts, steps = [], [], [], {}
        for _ in range(repeats):
            log("bench_tables: read_csv reference")
            reads.append(timed(lambda: read_study_csv(folder))[0])
            log("bench_tables: build_analysis_tables")
            timings: dict[str, float] = {}
            t, tables = timed(lambda: ar.build_analysis_tables(clean, timings=timings))
            t_sort, _ = timed(lambda: tables.intervals.sort_values(["employee_id", "spell", "start"], kind="stable"))
            totals.append(t)
            sorts.append(t_sort)
            for k, v in timings.items():
                steps.setdefault(k, []).append(v)
    shapes = ", ".join(f"{name} {len(getattr(tables, name)):,} x {getattr(tables, name).shape[1]}"
                       for name in ("person", "intervals", "survey_panel", "cycles"))
    total, ref, t_sort = statistics.median(totals), statistics.median(reads), statistics.median(sorts)
    del tables
    table = [["reference: `pandas.read_csv` of the study's CSV files", f"{ref:.2f}", fmt_runs(reads), "1.0", ""],
             ["floor: `intervals.sort_values(employee_id, spell, start)`", f"{t_sort:.2f}", fmt_runs(sorts),
              f"{t_sort / ref:.2f}", ""],
             ["**`build_analysis_tables`** (total)", f"{total:.2f}", fmt_runs(totals), f"{total / ref:.1f}", "100%"]]
    for name, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(values)
        table.append([f"step `{name}`", f"{med:.2f}", fmt_runs(values), f"{med / ref:.2f}", f"{100 * med / total:.1f}%"])
    peak = traced_peak_mib(lambda: ar.build_analysis_tables(clean))
    verdict = "meets" if total <= TARGET_RATIO * ref else "misses"
    section(
        f"Analysis tables ({n_employees:,} employees)",
        f"`build_analysis_tables` on a simulated (`messy=False`) study cleaned once outside the timing "
        f"(simulated in {t_sim:.1f} s, cleaned in {t_clean:.1f} s; "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"), median of {repeats} runs with the median of each step. Output: {shapes}. Reference in the same run: "
        f"a bare `pandas.read_csv` of the study's {len(rows)} CSV files ({size_mb:,.0f} MB, as written by "
        "`write_simulated_study`), median of as many runs, interleaved with the builds. The sort of the finished "
        "intervals table is shown as the floor any builder of a start/stop table pays.",
        ["what", "median (s)", "runs (s)", "x read_csv", "share of total"],
        table,
        memory=[f"tracemalloc peak of one `build_analysis_tables` {peak:,.0f} MiB",
                f"process peak RSS {rss_peak_mib():,.0f} MiB"],
        notes=[f"`build_analysis_tables` takes {total / ref:.1f}x the read_csv reference ({verdict} the "
               f"{TARGET_RATIO:g}x target of issue 12).",
               f"Load average (1 min) {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on "
               f"{os.cpu_count()} cores (a shared machine: the ratio, measured interleaved, is steadier than the "
               "seconds)."],
    )


if __name__ == "__main__":
    main()
