"""Benchmark: load + validate + clean of a simulated study (default 100,000 employees).

Usage: ``python benchmarks/bench_clean.py [N_EMPLOYEES] [REPEATS]``

The study is simulated (messy, with injected problems) by the command line in
a separate process and written to a temporary folder as CSV, then
``load_study``, ``validate_study`` and ``clean_study`` are timed ``REPEATS``
times (median printed). The reference, timed in the same run, is the floor any
loader pays: ``pandas.read_csv`` of every table file as text. Peak memory is
the benchmark process' peak resident set size after the first pass, i.e. of one
load + validate + clean (the simulation ran in its own process).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import alignment_research as ar


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(n_employees: int = 100_000, repeats: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        command = [sys.executable, "-m", "alignment_research.cli", "simulate", "--employees", str(n_employees),
                   "--seed", "1", "--out", str(folder)]
        t_sim, _ = _timed(lambda: subprocess.run(command, check=True, capture_output=True))
        files = sorted(folder.glob("*.csv"))
        sizes = {p.stem: p.stat().st_size for p in files}
        print(f"simulated and wrote {n_employees:,} employees in {t_sim:.1f} s; CSV files {sum(sizes.values()) / 1e6:.0f} MB")

        times = {"read_csv (reference)": [], "load": [], "validate": [], "clean": [], "load+validate+clean": []}
        rss_first = None
        for _ in range(repeats):
            t_ref, _ = _timed(lambda: [pd.read_csv(p, dtype=str, keep_default_na=False) for p in files])
            t_load, study = _timed(lambda: ar.load_study(folder))
            t_validate, problems = _timed(lambda: ar.validate_study(study))
            t_clean, clean = _timed(lambda: ar.clean_study(study))
            times["read_csv (reference)"].append(t_ref)
            times["load"].append(t_load)
            times["validate"].append(t_validate)
            times["clean"].append(t_clean)
            times["load+validate+clean"].append(t_load + t_validate + t_clean)
            if rss_first is None:  # peak RSS is monotonic: read it after one pass
                rss_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
            rows = clean.counts.set_index("table")
            n_problems, n_fatal, n_report = len(problems), int(problems["fatal"].sum()), len(clean.report)
            del study, problems, clean
        print(rows.to_string())
        print(f"{n_problems:,} problems ({n_fatal} fatal); {n_report:,} report rows")
        ref = statistics.median(times["read_csv (reference)"])
        print(f"\nmedian of {repeats} runs:")
        for name, values in times.items():
            med = statistics.median(values)
            print(f"  {name:22s} {med:7.2f} s   x{med / ref:5.1f} the read_csv reference")
        print(f"\npeak memory (RSS) of one load + validate + clean: {rss_first:,.0f} MiB")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
