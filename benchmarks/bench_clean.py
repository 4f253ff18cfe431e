"""Benchmark: load + validate + clean of a simulated study (default 100,000 employees).

Usage: ``python benchmarks/bench_clean.py [N_EMPLOYEES] [REPEATS] [STUDY_FOLDER]``

The study is simulated (messy, with injected problems) by the command line in
a separate process and written to a temporary folder as CSV (or, with
``STUDY_FOLDER``, that folder is read as it is), then ``load_study`` and
``validate_and_clean`` (validation and cleaning in one pass, as the
``validate``, ``clean`` and ``run`` commands do) are timed ``REPEATS`` times.
The reference, timed in the same run, is the floor any loader pays:
``pandas.read_csv`` of every table file as text. Medians are printed with the
ratio to the reference. Peak memory is the benchmark process' peak resident
set size after the first pass, i.e. of one load + validate + clean (the
simulation ran in its own process).

Progress goes to stderr; stdout is a markdown section (``make bench`` collects
it into ``benchmarks/results.md``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import alignment_research as ar

#: The issue-12 target: load + validate + clean within this many times the read_csv reference.
TARGET_RATIO = 3.0


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _validate_and_clean(study):
    if hasattr(ar, "validate_and_clean"):
        return ar.validate_and_clean(study)
    return ar.validate_study(study), ar.clean_study(study)  # releases without the one-pass function


def _measure(folder: Path, n_employees: int, repeats: int, t_sim: float | None) -> None:
    files = sorted(folder.glob("*.csv"))
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    names = ["read_csv (reference)", "load", "validate + clean", "load + validate + clean"]
    times = {name: [] for name in names}
    rss_first = None
    for i in range(repeats):
        t_ref, _ = _timed(lambda: [pd.read_csv(p, dtype=str, keep_default_na=False) for p in files])
        t_load, study = _timed(lambda: ar.load_study(folder))
        t_clean, (problems, clean) = _timed(lambda: _validate_and_clean(study))
        for name, t in zip(names, (t_ref, t_load, t_clean, t_load + t_clean)):
            times[name].append(t)
        if rss_first is None:  # peak RSS is monotonic: read it after one pass
            rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"pass {i + 1}: read_csv {t_ref:.1f} s, load {t_load:.1f} s, validate + clean {t_clean:.1f} s",
              file=sys.stderr)
        counts = clean.counts
        n_problems, n_fatal, n_report = len(problems), int(problems["fatal"].sum()), len(clean.report)
        del study, problems, clean
    ref = statistics.median(times["read_csv (reference)"])
    total = statistics.median(times["load + validate + clean"])
    made = f"simulated in {t_sim:.0f} s, " if t_sim is not None else ""
    print("## Load + validate + clean\n")
    print(f"{n_employees:,} employees ({made}{len(files)} CSV files, {size_mb:.0f} MB); "
          f"median of {repeats} runs, on {os.cpu_count()} cores; version {ar.__version__}.\n")
    print("| step | median (s) | x read_csv |")
    print("|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.2f} | {med / ref:.1f} |")
    verdict = "meets" if total <= TARGET_RATIO * ref else "misses"
    print(f"\nload + validate + clean takes {total / ref:.1f}x the read_csv reference ({verdict} the "
          f"{TARGET_RATIO:g}x target). Peak memory (RSS) of one load + validate + clean: {rss_first:,.0f} MiB.")
    print(f"{n_problems:,} problems ({n_fatal} fatal); {n_report:,} report rows.\n")
    print("| table | rows in | rows out | rows quarantined |")
    print("|---|---:|---:|---:|")
    for row in counts.itertuples(index=False):
        print(f"| {row.table} | {row.rows_in:,} | {row.rows_out:,} | {row.rows_quarantined:,} |")


def main(n_employees: int = 100_000, repeats: int = 3, folder: str | None = None) -> None:
    if folder is not None:
        _measure(Path(folder), n_employees, repeats, None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study"
        command = [sys.executable, "-m", "alignment_research.cli", "simulate", "--employees", str(n_employees),
                   "--seed", "1", "--out", str(study)]
        t_sim, _ = _timed(lambda: subprocess.run(command, check=True, capture_output=True))
        _measure(study, n_employees, repeats, t_sim)


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--quick" in args:  # `make bench QUICK=1`: a smoke test at 10,000 employees, one pass
        main(10_000, 1)
    else:
        main(*(int(a) for a in args[:2]), *args[2:3])
