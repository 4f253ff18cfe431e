"""Benchmark the Fine–Gray fit (ar.fit_finegray) against R's cmprsk::crr.

Usage::

    .venv/bin/python benchmarks/bench_finegray.py [N ...] [--repeats 3] [--r-limit 5000] [--no-r] [--quick]

For each N (spells; default 10000, 100000 and 1000000; ``--quick``: 5000) the
script simulates time to promotion with voluntary and involuntary exits as
competing events under the Fine–Gray model (``alignment_research._finegray.simulate``:
two covariates, whole-day tenure, so tied times), then times, each the median
of ``--repeats`` runs in this process:

* ours: ``ar.fit_finegray(spells, "mentoring + rating", duration="exit", cause="promotion")``
  (design matrix, Newton fit, crr's sandwich variance);
* R: ``crr(exit, status, cbind(mentoring, rating))`` on the same rows, timed
  inside R with ``system.time`` (reading the data is not timed). crr's
  variance loops over pairs of subjects (quadratic in N), so R runs only up
  to ``--r-limit`` spells; larger sizes say so in a note. Skipped when
  ``Rscript`` or cmprsk is missing.

Reported: medians, the ratio R / ours, the largest relative difference of the
estimates and of the standard errors, and peak memory (``tracemalloc`` during
one fit of ours).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import alignment_research as ar
from alignment_research._finegray import simulate

from _common import fmt_runs, log, median, repeat, section, traced_peak_mib

FORMULA = "mentoring + rating"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(cmprsk))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
reps <- as.integer(args[2])
status <- ifelse(d$event_type == "promotion", 1, ifelse(d$event_type == "censored", 0, 2))
times <- numeric(reps)
for (i in seq_len(reps)) times[i] <- system.time(fit <- crr(d$exit, status, cbind(d$mentoring, d$rating)))[["elapsed"]]
writeLines(c(paste(times, collapse = ","), paste(fit$coef, collapse = ","), paste(sqrt(diag(fit$var)), collapse = ",")),
           args[3])
"""


def fit_ours(spells):
    return ar.fit_finegray(spells, FORMULA, duration="exit", cause="promotion")


def run_r(spells, repeats: int):
    """(times, coef, se) of crr on ``spells``, or None when R or cmprsk is missing."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = Path(tmp, "d.csv"), Path(tmp, "out.txt"), Path(tmp, "fg.R")
        spells.to_csv(data, index=False)
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(data), str(repeats), str(out)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            log(f"R failed: {done.stderr.strip()[:300]}")
            return None
        lines = out.read_text().splitlines()
    return [np.array(line.split(","), float) for line in lines]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-limit", type=int, default=5000)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([5000] if args.quick else [10_000, 100_000, 1_000_000])
    fit_ours(simulate(500, seed=0))  # imports and first-call costs are not what is measured
    rows, memory, notes = [], [], []
    for n in sizes:
        spells = simulate(n, seed=1)
        log(f"fit_finegray on {n:,} spells")
        times, res = repeat(lambda: fit_ours(spells), args.repeats)
        peak = traced_peak_mib(lambda: fit_ours(spells))
        memory.append(f"ours {peak:.0f} MiB at {n:,}")
        r_cell, ratio, d_coef, d_se = "-", "-", "-", "-"
        if not args.no_r and n <= args.r_limit:
            log(f"crr on {n:,} spells")
            r = run_r(spells, args.repeats)
            if r is not None:
                r_times, coef, se = r
                r_cell = f"{median(r_times):.3g} ({fmt_runs(r_times)})"
                ratio = f"{median(r_times) / median(times):.3g}"
                t = res.tidy()
                d_coef = f"{np.max(np.abs(t['estimate'].to_numpy() / coef - 1)):.1e}"
                d_se = f"{np.max(np.abs(t['std_error'].to_numpy() / se - 1)):.1e}"
        elif not args.no_r:
            notes.append(f"R's crr was not run at {n:,} spells (above --r-limit {args.r_limit:,}: its variance is "
                         "quadratic in the number of subjects).")
        rows.append([f"{n:,}", f"{median(times):.3g} ({fmt_runs(times)})", r_cell, ratio, d_coef, d_se])
    section("Fine–Gray regression (fit_finegray vs cmprsk::crr)",
            "Seconds per fit of a two-covariate Fine–Gray model of promotion (exits competing), median of the "
            "runs listed; the estimate and standard-error columns give the largest relative difference from "
            "crr (crr stops at its default gtol = 1e-6, ours converges further).",
            ["spells", "ours s", "crr s", "crr / ours", "estimate diff", "SE diff"], rows, memory=memory,
            notes=notes)


if __name__ == "__main__":
    sys.exit(main())
