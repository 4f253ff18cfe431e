"""Benchmark: logistic mixed model (random intercept), our Laplace engine vs lme4::glmer (same data, same run).

Usage: ``python benchmarks/bench_glmm.py [N_EMPLOYEES] [REPEATS] [--quick]`` (default 100000 and 3;
``--quick``: 10000).

Data are generated directly with numpy: one row per employee, one manager per
10 employees (10,000 managers for 100,000 employees), a binary exit within the
year from ``logit P = -1.5 - 0.8 alignment_cascade - 0.3 manager_program +
0.1 job_level + b_manager`` with ``sd(b) = 0.5``, model
``left_within_year ~ alignment_cascade + manager_program + C(job_level) + (1 | manager_id)``
by the Laplace approximation. We time ``ar.fit_glmm`` end to end (formula,
checks, fit, standard errors, tidy tables); for R only the ``glmer()`` call
(defaults) on a data frame already in memory, once (it is slow). Reported:
medians, the ratio, peak memory (Python: tracemalloc peak during one fit; R:
``gc()`` max used), and the largest relative difference from glmer in fixed
effects, standard errors and the variance, and the log-likelihood difference
(positive: ours is higher, glmer's default optimiser stopped short). When
``Rscript`` (with lme4) is not installed, the R row is skipped with a note.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import alignment_research as ar

from _common import fmt_runs, log, rss_peak_mib, section, size_arguments

FORMULA = "left_within_year ~ alignment_cascade + manager_program + C(job_level)"
R_FORMULA = "left_within_year ~ alignment_cascade + manager_program + job_level + (1 | manager_id)"


def make_data(n_employees: int, team_size: int = 10, seed: int = 1) -> pd.DataFrame:
    """One row per employee, generated from the random-intercept logit model (numpy only)."""
    rng = np.random.default_rng(seed)
    n_mgr = max(2, n_employees // team_size)
    mgr = rng.integers(0, n_mgr, n_employees)
    program = rng.binomial(1, 0.4, n_mgr)
    level = rng.integers(1, 6, n_employees)
    align = rng.beta(3, 2, n_employees)
    eta = -1.5 - 0.8 * align - 0.3 * program[mgr] + 0.1 * level + rng.normal(0, 0.5, n_mgr)[mgr]
    return pd.DataFrame(
        {
            "manager_id": np.char.add("M", mgr.astype(str)),
            "job_level": level,
            "alignment_cascade": align.round(6),
            "manager_program": program[mgr],
            "left_within_year": rng.binomial(1, 1 / (1 + np.exp(-eta))),
        }
    )


R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); d$job_level <- factor(d$job_level); d$manager_id <- factor(d$manager_id)
reps <- as.integer(args[3]); times <- numeric(reps); mem <- numeric(reps); warns <- character()
keep <- function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") }
for (i in seq_len(reps)) {
  invisible(gc(reset = TRUE))
  t0 <- proc.time()[["elapsed"]]
  fit <- withCallingHandlers(glmer(FORMULA, data = d, family = binomial), warning = keep)
  times[i] <- proc.time()[["elapsed"]] - t0
  g <- gc(); mem[i] <- sum(g[, ncol(g)])  # "max used" (Mb) since the reset
}
b <- fixef(fit); se <- sqrt(diag(as.matrix(vcov(fit)))); vc <- as.data.frame(VarCorr(fit))
out <- rbind(data.frame(term = names(b), estimate = b, std_error = se),
             data.frame(term = paste0("var_", vc$grp), estimate = vc$vcov, std_error = NA),
             data.frame(term = "log_likelihood", estimate = as.numeric(logLik(fit)), std_error = NA))
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("R_TIMES %s\nR_MEM_MB %s\nR_VERSION %s lme4 %s\nR_WARNINGS %s\n", paste(times, collapse = ","),
            max(mem), R.version.string, packageVersion("lme4"),
            gsub("\\s+", " ", paste(c(unique(warns), "-")[1], collapse = ""))))
""".replace("FORMULA", R_FORMULA)


def time_ours(data: pd.DataFrame, repeats: int):
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = ar.fit_glmm(data, FORMULA, groups="manager_id")
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        ar.fit_glmm(data, FORMULA, groups="manager_id")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return res, times, peak


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv)
    data = make_data(n_employees)
    n_mgr = data["manager_id"].nunique()
    log(f"bench_glmm: ours, {len(data):,} rows")
    res, times, peak = time_ours(data, repeats)
    g = res.glance().iloc[0]
    t = res.tidy()
    ours = np.median(times)
    rel = lambda a, b: np.max(np.abs(np.asarray(a, float) / np.asarray(b, float) - 1))  # noqa: E731
    rows = [["**ours** `ar.fit_glmm` (end to end)", f"{ours:.3f}", fmt_runs(times), "1.0",
             f"{peak:.0f} (tracemalloc)", "-"]]
    notes = []
    if shutil.which("Rscript") is None:
        notes.append("**R row skipped: `Rscript` is not installed on this machine** (needs `apt-get install "
                     "r-base-core r-cran-lme4`).")
    else:
        log("bench_glmm: lme4::glmer (one run)")
        with tempfile.TemporaryDirectory() as tmp:
            csv, out, script = Path(tmp) / "d.csv", Path(tmp) / "r.csv", Path(tmp) / "bench.R"
            data.to_csv(csv, index=False)
            script.write_text(R_SCRIPT)
            proc = subprocess.run(["Rscript", str(script), str(csv), str(out), "1"], capture_output=True,
                                  text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if proc.returncode != 0:
                notes.append("**R row skipped: Rscript failed** (is lme4 installed?):\n\n```\n"
                             + proc.stderr.strip()[-1500:] + "\n```")
            else:
                info = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
                ref = pd.read_csv(out).set_index("term")
        if proc.returncode == 0:
            r_times = [float(x) for x in info["R_TIMES"].split(",")]
            names = {"Intercept": "(Intercept)", **{f"C(job_level)[T.{k}]": f"job_level{k}" for k in range(2, 6)}}
            r_terms = [names.get(x, x) for x in t.term]
            d_est = rel(t.estimate, ref.loc[r_terms, "estimate"])
            d_se = rel(t.std_error, ref.loc[r_terms, "std_error"])
            d_vc = rel([g["var_manager_id"]], ref.loc[["var_manager_id"], "estimate"])
            d_ll = g["log_likelihood"] - ref.loc["log_likelihood", "estimate"]
            theirs = np.median(r_times)
            rows.append([f"`lme4::glmer` (fit only, defaults) [{info['R_VERSION']}]", f"{theirs:.3f}",
                         fmt_runs(r_times), f"{theirs / ours:.1f}", f"{float(info['R_MEM_MB']):.0f} (R gc max used)",
                         f"fixed effects {d_est:.1e}, std errors {d_se:.1e}, variance {d_vc:.1e}; "
                         f"logLik ours - glmer {d_ll:+.1e}"])
            if info.get("R_WARNINGS", "-").strip() != "-":
                notes.append(f"**glmer warned**: {info['R_WARNINGS'].strip()} (its standard errors then come from "
                             "a finite-difference Hessian that may be unusable).")
    section(
        f"Logistic mixed model ({n_employees:,} employees)",
        f"Laplace fit of `{R_FORMULA}` (binomial) on {len(data):,} rows ({n_mgr:,} managers), median of "
        f"{repeats} runs for ours, one run of glmer. Ours is timed end to end (formula, checks, fit, standard "
        f"errors, tidy tables); for R only the `glmer()` call on a data frame already in memory. 'x ours' > 1 "
        f"means that row is slower than ours; 'max rel. diff' compares with ours. glmer's default optimiser stops "
        f"within about 1e-3 of the optimum (tests/test_glmm.py checks ours against glmer with tight tolerances "
        f"to 1e-4). numpy {np.__version__}.",
        ["implementation", "median (s)", "runs (s)", "x ours", "peak (MiB)", "max rel. diff vs ours"],
        rows,
        memory=["per fit in the table", f"whole benchmark process peak RSS {rss_peak_mib():,.0f} MiB"],
        notes=notes,
    )


if __name__ == "__main__":
    main()
