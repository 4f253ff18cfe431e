"""Benchmark the time-varying Cox fit with clustered errors against R's coxph on the same rows.

Usage::

    .venv/bin/python benchmarks/bench_cox.py [N ...] [--repeats 3] [--r-repeats 3] [--no-r]

For each N (simulated employees; default 100000 and 1000000) the script
generates left-truncated start/stop rows with daily tenure and 10 covariates
(``alignment_research._cox.simulate_counting_process`` with 5 noise
covariates, about 2.3 rows per employee), then

* times ``ar.fit_cox(intervals, FORMULA, start="start", stop="stop",
  cluster="manager_id")`` (design matrix, Efron Newton fit, robust variance,
  concordance: everything R's ``coxph`` also does), median of ``--repeats``;
* writes the same rows as raw binary columns and times
  ``coxph(Surv(start, stop, event) ~ ... + cluster(mgr))`` inside R with
  ``system.time`` (reading the data is not timed), median of ``--r-repeats``;
* reports both medians, the ratio R / ours, the largest relative difference
  of the estimates and of the robust standard errors, and peak memory
  (ours: ``tracemalloc`` peak during one fit; R: ``gc()`` "max used" growth
  during one fit).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

import alignment_research as ar
from alignment_research._cox import simulate_counting_process

COVARIATES = ["alignment_cascade", "engagement", "manager_program", "manager_rating", "job_level",
              "z1", "z2", "z3", "z4", "z5"]
FORMULA = " + ".join(COVARIATES)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; n <- as.integer(args[2]); reps <- as.integer(args[3])
rd <- function(name, what = "double") {
  con <- file(file.path(dir, paste0(name, ".bin")), "rb"); on.exit(close(con))
  readBin(con, what, n = n, size = if (what == "integer") 4 else 8)
}
covs <- strsplit(args[4], ",")[[1]]
d <- data.frame(start = rd("start"), stop = rd("stop"), event = rd("event"), mgr = rd("mgr", "integer"))
for (v in covs) d[[v]] <- rd(v)
f <- as.formula(paste("Surv(start, stop, event) ~", paste(covs, collapse = " + "), "+ cluster(mgr)"))
times <- numeric(reps)
for (i in seq_len(reps)) {
  if (i == 1) g0 <- gc(reset = TRUE)
  times[i] <- system.time(fit <- coxph(f, data = d))[["elapsed"]]
  if (i == 1) { g1 <- gc(); peak_mb <- sum(g1[, 6]) - sum(g0[, 2]) }
}
out <- data.frame(term = names(coef(fit)), coef = unname(coef(fit)), se = sqrt(diag(fit$var)))
write.csv(out, file.path(dir, "r_fit.csv"), row.names = FALSE)
writeLines(c(paste(times, collapse = ","), peak_mb, R.version.string,
             as.character(packageVersion("survival"))), file.path(dir, "r_times.txt"))
"""


def fit_ours(intervals: pd.DataFrame):
    return ar.fit_cox(intervals, FORMULA, start="start", stop="stop", cluster="manager_id")


def peak_memory_mb(intervals: pd.DataFrame) -> float:
    tracemalloc.start()
    fit_ours(intervals)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def run_r(intervals: pd.DataFrame, repeats: int, folder: Path):
    for col in ["start", "stop", "event", *COVARIATES]:
        intervals[col].to_numpy(np.float64).tofile(folder / f"{col}.bin")
    pd.factorize(intervals["manager_id"])[0].astype(np.int32).tofile(folder / "mgr.bin")
    script = folder / "bench.R"
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), str(folder), str(len(intervals)), str(repeats), ",".join(COVARIATES)],
                   check=True)
    lines = (folder / "r_times.txt").read_text().splitlines()
    times = [float(t) for t in lines[0].split(",")]
    return times, float(lines[1]), pd.read_csv(folder / "r_fit.csv"), lines[2], lines[3]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="time only our fit")
    args = parser.parse_args(argv)
    for n in args.sizes:
        t0 = time.perf_counter()
        intervals, _ = simulate_counting_process(n, seed=20261129, n_extra=5)
        gen = time.perf_counter() - t0
        print(f"\n== {n:,} employees: {len(intervals):,} start/stop rows, {int(intervals['event'].sum()):,} events, "
              f"{intervals.loc[intervals['event'] == 1, 'stop'].nunique():,} distinct event days, "
              f"{intervals['manager_id'].nunique():,} managers (generated in {gen:.1f} s)")
        ours = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = fit_ours(intervals)
            ours.append(time.perf_counter() - t0)
        mem = peak_memory_mb(intervals)
        med = statistics.median(ours)
        print(f"ours   : median {med:7.2f} s  (runs {', '.join(f'{t:.2f}' for t in ours)}), peak {mem:,.0f} MB")
        if args.no_r:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r_times, r_mem, r_fit, r_version, surv_version = run_r(intervals, args.r_repeats, Path(tmp))
        r_med = statistics.median(r_times)
        tidy = res.tidy()
        d_coef = np.max(np.abs(tidy["estimate"].to_numpy() - r_fit["coef"].to_numpy()) / np.abs(r_fit["coef"]))
        d_se = np.max(np.abs(tidy["std_error"].to_numpy() - r_fit["se"].to_numpy()) / r_fit["se"].to_numpy())
        print(f"R      : median {r_med:7.2f} s  (runs {', '.join(f'{t:.2f}' for t in r_times)}), "
              f"peak {r_mem:,.0f} MB  [{r_version}, survival {surv_version}]")
        print(f"ratio R/ours {r_med / med:.2f}x; max relative difference: estimates {d_coef:.1e}, "
              f"robust SE {d_se:.1e}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
