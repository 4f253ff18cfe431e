"""Benchmark: build every analysis table of a simulated study (default 100,000 employees; ``--quick``: 10,000).

Usage: ``python benchmarks/bench_tables.py [N_EMPLOYEES] [REPEATS] [--quick] [--study DIR]``

The study is simulated (``messy=False``), written as CSV files to a temporary
folder (:func:`write_simulated_study`) and cleaned once, outside the timing.
``--study DIR`` reuses instead a work folder kept by ``bench_scale.py --keep DIR``
(run at least to its ``clean`` stage): the CSV files in ``DIR/study`` and the
cleaned study ``DIR/clean.pkl`` (loaded from those files, as ``load_study`` +
``validate_and_clean`` made it); simulating and cleaning, about two minutes at
100,000 employees, are then skipped. ``N_EMPLOYEES`` must match the folder's.
Then :func:`build_analysis_tables` is timed ``REPEATS`` times (median reported,
with the median seconds of each step, so the dominating step is visible), as it
runs by default (``threads``: two on a machine with two cores or more, so steps
that run beside one another overlap and their seconds add up to more than the
total), and as many times with ``threads=1`` (one step after another).
The package's modules are imported before the first timing. Wall and process CPU
seconds are reported (CPU is steadier on a shared machine). Two references are
timed in the same run, ``REPEATS`` times each, interleaved with the builds: the issue-12 reference, a bare ``pandas.read_csv`` of the
study's CSV files (target: the tables within 2x of it), and the floor any
builder of a start/stop table pays, one ``sort_values`` of the finished
``intervals`` table by ``employee_id, spell, start``. Peak memory is measured in
a separate run with ``tracemalloc`` (Python and NumPy allocations) and as the
process' peak RSS.
"""

from __future__ import annotations

import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import alignment_research as ar
from alignment_research.executors import available_cores

from _common import fmt_runs, folder_options, log, rss_peak_mib, section, size_arguments, timed, traced_peak_mib


#: The issue-12 target: the analysis tables within this many times the read_csv reference.
TARGET_RATIO = 2.0


def read_study_csv(folder: Path) -> list[pd.DataFrame]:
    """The reference: a bare ``pandas.read_csv`` of every CSV file of a study folder."""
    return [pd.read_csv(path) for path in sorted(folder.glob("*.csv"))]


def cpu_timed(fn):
    """Wall seconds, process CPU seconds and the value of ``fn()``."""
    c0 = time.process_time()
    t, value = timed(fn)
    return t, time.process_time() - c0, value


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median wall and the median CPU seconds of ``(wall, cpu)`` runs."""
    return statistics.median(wall for wall, _ in runs), statistics.median(cpu for _, cpu in runs)


def main(argv=None) -> None:
    argv, given = folder_options(list(sys.argv[1:] if argv is None else argv), "--study")
    kept = given.get("study")
    n_employees, repeats = size_arguments(__doc__, argv)
    build = ar.build_analysis_tables  # imports the tables module and the measures outside the clocks
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        if kept is not None:
            log(f"bench_tables: the kept study in {kept}")
            folder = kept / "study"
            clean = pickle.loads((kept / "clean.pkl").read_bytes())
            made = f"the kept study of `bench_scale.py --keep` (cleaned from its CSV files by `load_study` + validate + clean)"
        else:
            log(f"bench_tables: simulate, write and clean {n_employees:,}")
            t_sim, sim = timed(lambda: ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
            folder = ar.write_simulated_study(sim, Path(tmp) / "study")
            t_clean, clean = timed(lambda: ar.clean_study(sim))
            del sim
            made = f"simulated in {t_sim:.1f} s, cleaned in {t_clean:.1f} s"
        size_mb = sum(p.stat().st_size for p in folder.glob("*.csv")) / 1e6
        rows = {k: len(v) for k, v in clean.tables.items()}
        if rows["employees"] != n_employees:
            raise SystemExit(f"bench_tables: the study has {rows['employees']:,} employees, not {n_employees:,}")

        runs: dict[str, list[tuple[float, float]]] = {"read": [], "build": [], "one thread": []}  # (wall, CPU)
        sorts, steps = [], {}
        for _ in range(repeats):
            log("bench_tables: read_csv reference")
            wall, cpu, frames = cpu_timed(lambda: read_study_csv(folder))
            del frames  # not held while the build runs
            runs["read"].append((wall, cpu))
            log("bench_tables: build_analysis_tables")
            timings: dict[str, float] = {}
            wall, cpu, tables = cpu_timed(lambda: build(clean, timings=timings))
            runs["build"].append((wall, cpu))
            sorts.append(timed(lambda: tables.intervals.sort_values(["employee_id", "spell", "start"],
                                                                    kind="stable"))[0])
            for k, v in timings.items():
                steps.setdefault(k, []).append(v)
            shapes = ", ".join(f"{name} {len(getattr(tables, name)):,} x {getattr(tables, name).shape[1]}"
                               for name in ("person", "intervals", "survey_panel", "cycles"))
            del tables  # not held while the next build runs
            log("bench_tables: build_analysis_tables(threads=1)")
            wall, cpu, tables = cpu_timed(lambda: build(clean, threads=1))
            runs["one thread"].append((wall, cpu))
            del tables
    reads, totals, singles = ([wall for wall, _ in runs[name]] for name in ("read", "build", "one thread"))
    ref, cpu_ref = medians(runs["read"])
    total, cpu_total = medians(runs["build"])
    single, cpu_single = medians(runs["one thread"])
    t_sort = statistics.median(sorts)
    table = [["reference: `pandas.read_csv` of the study's CSV files", f"{ref:.2f}", fmt_runs(reads), "1.0",
              f"{cpu_ref:.2f}", "1.0", ""],
             ["floor: `intervals.sort_values(employee_id, spell, start)`", f"{t_sort:.2f}", fmt_runs(sorts),
              f"{t_sort / ref:.2f}", "", "", ""],
             ["**`build_analysis_tables`** (total)", f"{total:.2f}", fmt_runs(totals), f"{total / ref:.2f}",
              f"{cpu_total:.2f}", f"{cpu_total / cpu_ref:.2f}", "100%"],
             ["`build_analysis_tables(threads=1)` (one step after another)", f"{single:.2f}", fmt_runs(singles),
              f"{single / ref:.2f}", f"{cpu_single:.2f}", f"{cpu_single / cpu_ref:.2f}", ""]]
    for name, values in sorted(steps.items(), key=lambda kv: -statistics.median(kv[1])):
        med = statistics.median(values)
        table.append([f"step `{name}`", f"{med:.2f}", fmt_runs(values), f"{med / ref:.2f}", "", "",
                      f"{100 * med / total:.1f}%"])
    peak = traced_peak_mib(lambda: build(clean))
    peak_single = traced_peak_mib(lambda: build(clean, threads=1))
    verdict = "meets" if total <= TARGET_RATIO * ref else "misses"
    section(
        f"Analysis tables ({n_employees:,} employees)",
        f"`build_analysis_tables` on a simulated (`messy=False`) study cleaned once outside the timing "
        f"({made}; "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"), median of {repeats} runs with the median of each step. Output: {shapes}. Reference in the same run: "
        f"a bare `pandas.read_csv` of the study's {len(rows)} CSV files ({size_mb:,.0f} MB, as written by "
        "`write_simulated_study`), median of as many runs, interleaved with the builds. The sort of the finished "
        "intervals table is shown as the floor any builder of a start/stop table pays.",
        ["what", "median (s)", "runs (s)", "x read_csv", "CPU median (s)", "CPU x read_csv", "share of total"],
        table,
        memory=[f"tracemalloc peak of one `build_analysis_tables` {peak:,.0f} MiB ({peak_single:,.0f} MiB with "
                "`threads=1`)",
                f"process peak RSS {rss_peak_mib():,.0f} MiB"],
        notes=[f"`build_analysis_tables` takes {total / ref:.2f}x the read_csv reference ({verdict} the "
               f"{TARGET_RATIO:g}x target of issue 12), {single / ref:.2f}x with one thread."
               + (" With two, the CPU seconds exceed the wall seconds: the second thread's steps (surveys, feedback, "
                  "the small tables) run while the first thread's do." if available_cores() > 1 else
                  " This process may use one core only, so the default build ran on one thread too."),
               f"Load average (1 min) {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end, on "
               f"{os.cpu_count()} cores (a shared machine: the ratio, measured interleaved, is steadier than the "
               "seconds)."],
    )


if __name__ == "__main__":
    main()
