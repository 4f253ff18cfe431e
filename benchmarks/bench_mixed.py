"""Benchmark: random-intercept model, our exact engine vs lme4::lmer (same data, same run).

Usage: ``python benchmarks/bench_mixed.py [N_EMPLOYEES] [REPEATS] [--quick]`` (default 100000 and 3;
``--quick``: 10000).

Data are generated directly with numpy: N employees x 8 survey waves, one
manager per 8 employees (12,500 managers for 100,000 employees), model
``engagement ~ alignment_cascade + manager_program + C(job_level) + (1 | manager_id)``
fitted by REML. We time ``ar.fit_mixed`` end to end (formula, checks, fit, tidy
tables); for R we time only the ``lmer()`` call on a data frame already in memory.
Reported: medians, the ratio, the largest relative difference in fixed effects,
standard errors and variance components, and peak memory (Python: tracemalloc
peak during the fit; R: ``gc()`` max used during the fit). For context,
statsmodels ``MixedLM`` is timed on a smaller sample against our engine. When
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

FORMULA = "engagement ~ alignment_cascade + manager_program + C(job_level)"
R_FORMULA = "engagement ~ alignment_cascade + manager_program + job_level + (1 | manager_id)"


def make_data(n_employees: int, waves: int = 8, seed: int = 1) -> pd.DataFrame:
    """Survey panel generated from the random-intercept model (numpy only)."""
    rng = np.random.default_rng(seed)
    n_mgr = max(2, n_employees // 8)
    mgr = rng.integers(0, n_mgr, n_employees)
    program = rng.binomial(1, 0.4, n_mgr)
    level = rng.integers(1, 6, n_employees)
    person = rng.normal(0, 0.3, n_employees)
    mgr_eff = rng.normal(0, 0.2, n_mgr)
    e = np.repeat(np.arange(n_employees), waves)
    m = mgr[e]
    align = rng.beta(3, 2, len(e))
    eng = 2.75 + 0.5 * align + 0.2 * program[m] + 0.05 * level[e] + mgr_eff[m] + person[e] + rng.normal(0, 0.4, len(e))
    return pd.DataFrame(
        {
            "manager_id": np.char.add("M", m.astype(str)),
            "job_level": level[e],
            "alignment_cascade": align.round(6),
            "manager_program": program[m],
            "engagement": eng.round(6),
        }
    )


R_SCRIPT = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); d$job_level <- factor(d$job_level); d$manager_id <- factor(d$manager_id)
reps <- as.integer(args[3]); times <- numeric(reps); mem <- numeric(reps)
for (i in seq_len(reps)) {
  invisible(gc(reset = TRUE))
  t0 <- proc.time()[["elapsed"]]
  fit <- lmer(FORMULA, data = d, REML = TRUE)
  times[i] <- proc.time()[["elapsed"]] - t0
  g <- gc(); mem[i] <- sum(g[, ncol(g)])  # "max used" (Mb) since the reset
}
b <- fixef(fit); se <- sqrt(diag(as.matrix(vcov(fit)))); vc <- as.data.frame(VarCorr(fit))
out <- rbind(data.frame(term = names(b), estimate = b, std_error = se),
             data.frame(term = paste0("var_", vc$grp), estimate = vc$vcov, std_error = NA))
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("R_TIMES %s\nR_MEM_MB %s\nR_VERSION %s lme4 %s\n", paste(times, collapse = ","), max(mem),
            R.version.string, packageVersion("lme4")))
""".replace("FORMULA", R_FORMULA)


def time_ours(data: pd.DataFrame, repeats: int):
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = ar.fit_mixed(data, FORMULA, groups="manager_id")
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        ar.fit_mixed(data, FORMULA, groups="manager_id")
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return res, times, peak


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv)
    data = make_data(n_employees)
    n_mgr = data["manager_id"].nunique()
    log(f"bench_mixed: ours, {len(data):,} rows")
    res, times, peak = time_ours(data, repeats)
    g = res.glance().iloc[0]
    t = res.tidy()
    ours = np.median(times)
    rel = lambda a, b: np.max(np.abs(np.asarray(a, float) / np.asarray(b, float) - 1))  # noqa: E731
    rows = [["**ours** `ar.fit_mixed` (end to end)", f"{ours:.3f}", fmt_runs(times), "1.0", f"{peak:.0f} (tracemalloc)",
             "-"]]
    notes = []
    if shutil.which("Rscript") is None:
        notes.append("**R row skipped: `Rscript` is not installed on this machine** (needs `apt-get install "
                     "r-base-core r-cran-lme4`).")
    else:
        log("bench_mixed: lme4")
        with tempfile.TemporaryDirectory() as tmp:
            csv, out, script = Path(tmp) / "d.csv", Path(tmp) / "r.csv", Path(tmp) / "bench.R"
            data.to_csv(csv, index=False)
            script.write_text(R_SCRIPT)
            proc = subprocess.run(["Rscript", str(script), str(csv), str(out), str(repeats)], capture_output=True,
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
            d_vc = rel([g["var_manager_id"], g["sigma2"]], ref.loc[["var_manager_id", "var_Residual"], "estimate"])
            theirs = np.median(r_times)
            rows.append([f"`lme4::lmer` (fit only) [{info['R_VERSION']}]", f"{theirs:.3f}", fmt_runs(r_times),
                         f"{theirs / ours:.1f}", f"{float(info['R_MEM_MB']):.0f} (R gc max used)",
                         f"fixed effects {d_est:.1e}, std errors {d_se:.1e}, variance components {d_vc:.1e}"])

    # Context: statsmodels MixedLM (loops over groups in Python) on a smaller sample.
    log("bench_mixed: statsmodels context")
    small = make_data(max(200, n_employees // 10), seed=2)
    import statsmodels.api as sm
    from alignment_research._formula import design_matrix

    X, _ = design_matrix(small, FORMULA.split("~")[1])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm_fit = sm.MixedLM(small["engagement"].to_numpy(), X, groups=small["manager_id"].to_numpy()).fit(reml=True)
    t_sm = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours_small = ar.fit_mixed(small, FORMULA, groups="manager_id")
    t_small = time.perf_counter() - t0
    d_sm = rel(sm_fit.fe_params, ours_small.tidy().estimate)
    rows.append([f"context, {len(small):,} rows / {small['manager_id'].nunique():,} managers: ours (1 run)",
                 f"{t_small:.3f}", f"{t_small:.3g}", "1.0 (context reference)", "", "-"])
    rows.append([f"context, same rows: statsmodels `MixedLM` (1 run)", f"{t_sm:.2f}", f"{t_sm:.3g}",
                 f"{t_sm / t_small:.0f} (vs ours on the same rows)", "", f"fixed effects {d_sm:.1e}"])
    section(
        f"Random-intercept model ({n_employees:,} employees)",
        f"REML fit of `{R_FORMULA}` on {len(data):,} rows ({n_employees:,} employees x 8 waves, {n_mgr:,} managers), "
        f"median of {repeats} runs. Ours is timed end to end (formula, checks, fit, tidy tables); for R only the "
        f"`lmer()` call on a data frame already in memory. 'x ours' > 1 means that row is slower than ours; "
        f"'max rel. diff' compares with ours. numpy {np.__version__}.",
        ["implementation", "median (s)", "runs (s)", "x ours", "peak (MiB)", "max rel. diff vs ours"],
        rows,
        memory=["per fit in the table", f"whole benchmark process peak RSS {rss_peak_mib():,.0f} MiB"],
        notes=notes,
    )


if __name__ == "__main__":
    main()
