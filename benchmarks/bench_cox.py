"""Benchmark the time-varying Cox fit with clustered errors against R's coxph, lifelines and a numpy floor.

Usage::

    .venv/bin/python benchmarks/bench_cox.py [N ...] [--repeats 3] [--r-repeats 3] [--no-r]
        [--lifelines-limit 300] [--no-lifelines] [--quick]

For each N (simulated employees; default 100000 and 1000000; ``--quick``:
20000) the script generates left-truncated start/stop rows with daily tenure
and 10 covariates (``alignment_research._cox.simulate_counting_process`` with
5 noise covariates, about 2.3 rows per employee), then times, each the median
of ``--repeats`` runs in this process:

* ours: ``ar.fit_cox(intervals, FORMULA, start="start", stop="stop",
  cluster="manager_id")`` (design matrix, Efron Newton fit, robust variance,
  concordance: everything R's ``coxph`` also does);
* floor: what any implementation must at least do on the same rows, written
  plainly in numpy: one argsort of the stop times, then 4 Newton steps, each
  = risk-set cumulative sums + Efron tie correction + gradient/Hessian
  accumulation (no clustering, no concordance, no input checks). Its
  estimates after 4 steps are compared with ours as a check that it computes
  the same model;
* R: the same rows written as raw binary columns, ``coxph(Surv(start, stop,
  event) ~ ... + cluster(mgr))`` timed inside R with ``system.time`` (reading
  the data is not timed), median of ``--r-repeats``; skipped with a note when
  ``Rscript`` is not installed;
* lifelines: ``CoxTimeVaryingFitter`` (Efron, no clustering: it has none) on
  the same rows. It is slow on large inputs: a size is skipped (with a note)
  when the time measured at the previous size, scaled by the number of rows,
  predicts more than ``--lifelines-limit`` seconds per fit.

Reported: medians, the ratio of each to ours (and ours / floor; target <= 3),
the largest relative difference of the estimates (and of the robust standard
errors for R), and peak memory (Python: ``tracemalloc`` peak during one fit;
R: ``gc()`` "max used" growth during one fit).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import warnings
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import alignment_research as ar
from alignment_research._cox import simulate_counting_process

from _common import fmt_runs, log, median, rss_peak_mib, section, traced_peak_mib

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


def floor_fit(start: np.ndarray, stop: np.ndarray, event: np.ndarray, X: np.ndarray, steps: int = 4) -> np.ndarray:
    """The least work of a Cox fit: one sort of the stop times, then ``steps`` Efron Newton steps from zero.

    Risk set at an event time t: rows with start < t <= stop. With rows in
    stop order, "stop >= t" is a suffix of a cumulative sum; rows with
    start >= t are taken off with per-time sums (bincount, no sort).
    """
    order = np.argsort(stop, kind="stable")  # the one sort
    start, stop, event, X = start[order], stop[order], event[order].astype(bool), X[order]
    X = X - X.mean(axis=0)
    n, p = X.shape
    s = stop[event]  # sorted: distinct event times without another sort
    times = s[np.concatenate([[True], s[1:] != s[:-1]])]
    m = len(times)
    hi = np.searchsorted(times, stop, side="right")  # at risk for event-time index j < hi ...
    lo = np.searchsorted(times, start, side="right")  # ... and j >= lo
    first_hi = np.searchsorted(hi, np.arange(1, m + 1), side="left")  # first row (stop order) with hi > j
    deaths = np.flatnonzero(event)
    death_j = hi[deaths] - 1
    d = np.bincount(death_j, minlength=m)
    pair_j = np.repeat(np.arange(m), d)
    frac = (np.arange(len(pair_j)) - np.repeat(np.cumsum(d) - d, d)) / np.repeat(d, d)
    Xd = X[deaths]
    beta = np.zeros(p)
    for _ in range(steps):
        eta = X @ beta
        r = np.exp(eta)
        M = np.empty((n, p + 1))
        M[:, 0] = r
        np.multiply(X, r[:, None], out=M[:, 1:])
        C = np.cumsum(M, axis=0)
        at_or_after = C[-1] - np.concatenate([np.zeros((1, p + 1)), C])[first_hi]  # rows with hi > j
        late = np.column_stack([np.bincount(lo, weights=M[:, k], minlength=m + 1) for k in range(p + 1)])
        late = np.cumsum(late[::-1], axis=0)[::-1][1:]  # rows with lo > j (not yet at risk)
        S = at_or_after - late
        rd = r[deaths]
        Sd = np.column_stack([np.bincount(death_j, weights=rd, minlength=m)]
                             + [np.bincount(death_j, weights=rd * Xd[:, k], minlength=m) for k in range(p)])
        denom = S[pair_j, 0] - frac * Sd[pair_j, 0]  # Efron
        xbar = (S[pair_j, 1:] - frac[:, None] * Sd[pair_j, 1:]) / denom[:, None]
        grad = Xd.sum(axis=0) - xbar.sum(axis=0)
        c = np.concatenate([[0.0], np.cumsum(np.bincount(pair_j, weights=1 / denom, minlength=m))])
        w = r * (c[hi] - c[lo])
        e = np.bincount(pair_j, weights=frac / denom, minlength=m)
        info = (X * w[:, None]).T @ X - xbar.T @ xbar - (Xd * (rd * e[death_j])[:, None]).T @ Xd
        beta = beta + np.linalg.solve(info, grad)
    return beta


def floor_inputs(intervals: pd.DataFrame):
    return (intervals["start"].to_numpy(float), intervals["stop"].to_numpy(float), intervals["event"].to_numpy(),
            intervals[COVARIATES].to_numpy(float))


def fit_lifelines(intervals: pd.DataFrame):
    from lifelines import CoxTimeVaryingFitter

    frame = intervals[["employee_id", "start", "stop", "event", *COVARIATES]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxTimeVaryingFitter().fit(frame, id_col="employee_id", event_col="event", start_col="start",
                                          stop_col="stop")


def run_r(intervals: pd.DataFrame, repeats: int, folder: Path):
    for col in ["start", "stop", "event", *COVARIATES]:
        intervals[col].to_numpy(np.float64).tofile(folder / f"{col}.bin")
    pd.factorize(intervals["manager_id"])[0].astype(np.int32).tofile(folder / "mgr.bin")
    script = folder / "bench.R"
    script.write_text(R_SCRIPT)
    subprocess.run(["Rscript", str(script), str(folder), str(len(intervals)), str(repeats), ",".join(COVARIATES)],
                   check=True, stdout=sys.stderr)
    lines = (folder / "r_times.txt").read_text().splitlines()
    times = [float(t) for t in lines[0].split(",")]
    return times, float(lines[1]), pd.read_csv(folder / "r_fit.csv"), lines[2], lines[3]


def rel_diff(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip R's coxph")
    parser.add_argument("--no-lifelines", action="store_true", help="skip lifelines")
    parser.add_argument("--lifelines-limit", type=float, default=None,
                        help="skip lifelines at a size predicted to take longer than this (seconds per fit), and "
                             "stop repeating it after one run that takes longer (default 300; 60 with --quick)")
    parser.add_argument("--quick", action="store_true", help="one small size (20,000 employees)")
    args = parser.parse_args(argv)
    if args.lifelines_limit is None:
        args.lifelines_limit = 60.0 if args.quick else 300.0
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    have_r = shutil.which("Rscript") is not None
    rows, notes, memory = [], [], []
    if args.no_r:
        notes.append("R rows not run (`--no-r`).")
    elif not have_r:
        notes.append("**R rows skipped: `Rscript` is not installed on this machine** (R's `survival::coxph` needs "
                     "`apt-get install r-base-core r-cran-survival`). An earlier measurement on another machine "
                     "(not this run) gave coxph 173.6 s against ours 20.7 s at 1,000,000 employees.")
    lifelines_rate = None  # seconds per row measured at the previous size
    for n in sorted(sizes):
        gen, (intervals, _) = timed_call(lambda: simulate_counting_process(n, seed=20261129, n_extra=5))
        n_rows = len(intervals)
        label = f"{n:,} ({n_rows:,} rows)"
        notes.append(f"{n:,} employees: {n_rows:,} start/stop rows, {int(intervals['event'].sum()):,} events, "
                     f"{intervals.loc[intervals['event'] == 1, 'stop'].nunique():,} distinct event days, "
                     f"{intervals['manager_id'].nunique():,} managers (generated in {gen:.1f} s, not timed).")
        log(f"bench_cox: {label}: ours")
        ours = []
        for _ in range(args.repeats):
            t, res = timed_call(lambda: fit_ours(intervals))
            ours.append(t)
        med = median(ours)
        mem = traced_peak_mib(lambda: fit_ours(intervals))
        tidy = res.tidy().set_index("term").loc[COVARIATES]
        rows.append([label, "**ours** `ar.fit_cox(..., cluster=)`", f"{med:.2f}", fmt_runs(ours), "1.00", f"{mem:,.0f}",
                     "-"])

        log(f"bench_cox: {label}: floor")
        inputs = floor_inputs(intervals)
        floor_times = []
        for _ in range(args.repeats):
            t, beta_floor = timed_call(lambda: floor_fit(*inputs))
            floor_times.append(t)
        f_med = median(floor_times)
        f_mem = traced_peak_mib(lambda: floor_fit(*inputs))
        rows.append([label, "floor: 1 sort + 4 Efron Newton steps (numpy)", f"{f_med:.2f}", fmt_runs(floor_times),
                     f"{med / f_med:.2f} (ours / floor)", f"{f_mem:,.0f}",
                     f"{rel_diff(beta_floor, tidy['estimate']):.1e} (after 4 steps)"])
        del inputs

        if not args.no_r and have_r:
            log(f"bench_cox: {label}: R")
            with tempfile.TemporaryDirectory() as tmp:
                r_times, r_mem, r_fit, r_version, surv_version = run_r(intervals, args.r_repeats, Path(tmp))
            r_fit = r_fit.set_index("term").loc[COVARIATES]
            r_med = median(r_times)
            rows.append([label, f"R `coxph(... + cluster(mgr))` [{r_version}, survival {surv_version}]",
                         f"{r_med:.2f}", fmt_runs(r_times), f"{med / r_med:.2f}", f"{r_mem:,.0f} (R gc)",
                         f"{rel_diff(tidy['estimate'], r_fit['coef']):.1e}; robust SE "
                         f"{rel_diff(tidy['std_error'], r_fit['se']):.1e}"])

        if not args.no_lifelines:
            predicted = None if lifelines_rate is None else lifelines_rate * n_rows
            if predicted is not None and predicted > args.lifelines_limit:
                notes.append(f"lifelines not run at {n:,} employees: at the largest size it ran it took "
                             f"{lifelines_rate * 1e6:.0f} s per million rows, which predicts about {predicted / 60:.0f} "
                             f"min per fit here (limit `--lifelines-limit {args.lifelines_limit:.0f}` s).")
            else:
                import lifelines

                log(f"bench_cox: {label}: lifelines")
                ll_times = []
                for _ in range(args.repeats):
                    t, ll = timed_call(lambda: fit_lifelines(intervals))
                    ll_times.append(t)
                    if t > args.lifelines_limit:
                        break  # one run is enough to know it is slow
                ll_med = median(ll_times)
                if len(ll_times) < args.repeats:
                    notes.append(f"lifelines at {n:,} employees: one run only (it took longer than "
                                 f"`--lifelines-limit {args.lifelines_limit:.0f}` s).")
                ll_mem = traced_peak_mib(lambda: fit_lifelines(intervals)) if ll_med < 60 else float("nan")
                lifelines_rate = ll_med / n_rows
                rows.append([label, f"lifelines {lifelines.__version__} `CoxTimeVaryingFitter` (no clustering)",
                             f"{ll_med:.2f}", fmt_runs(ll_times), f"{med / ll_med:.2f}",
                             f"{ll_mem:,.0f}" if np.isfinite(ll_mem) else "not measured (slow)",
                             f"{rel_diff(tidy['estimate'], ll.params_.loc[COVARIATES]):.1e}"])
        del intervals, res
        sys.stdout.flush()
    memory.append("per fit in the table (MiB, Python: tracemalloc peak of one fit)")
    memory.append(f"whole benchmark process peak resident set {rss_peak_mib():,.0f} MiB")
    section(
        "Time-varying Cox with clustered errors",
        f"Efron Cox fit on left-truncated start/stop rows, 10 covariates, robust variance clustered by manager, "
        f"median of {args.repeats} runs in one process. `ours / this` > 1 means ours is slower than that row "
        f"(for the floor: ours / floor, target at most 3). The floor is the least an implementation must do "
        f"(one sort, 4 Newton steps of risk-set sums, Efron ties, gradient and Hessian) and has no clustering, "
        f"concordance, design matrix or checks; lifelines has no clustering either. 'max rel. diff' compares the "
        f"estimates with ours.",
        ["employees", "implementation", "median (s)", "runs (s)", "ours / this", "peak (MiB)",
         "max rel. diff vs ours"],
        rows, memory=memory, notes=notes,
    )


def timed_call(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


if __name__ == "__main__":
    main()
