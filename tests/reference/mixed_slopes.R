# Reference values for tests/test_mixed_slopes.py: random slopes in lme4::lmer.
#
# Chain: this script exports lme4's `sleepstudy` to mixed_slopes_sleepstudy.csv;
# tests/reference/mixed_slopes_data.py writes the toolkit's simulated survey
# panel to mixed_slopes_panel.csv. The script fits both and writes
# mixed_slopes_reference.csv in tidy long form (model, term, quantity, value)
# and mixed_slopes_reference_provenance.txt (R and package versions, calls).
# Run from the repository root:
#   python tests/reference/mixed_slopes_data.py && Rscript tests/reference/mixed_slopes.R
suppressPackageStartupMessages(library(lme4))

here <- "tests/reference"
write.csv(sleepstudy, file.path(here, "mixed_slopes_sleepstudy.csv"), row.names = FALSE)
sleep <- read.csv(file.path(here, "mixed_slopes_sleepstudy.csv"))
panel <- read.csv(file.path(here, "mixed_slopes_panel.csv"), stringsAsFactors = FALSE)

out <- list()
add <- function(model, term, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(model = model, term = term, quantity = quantity,
                                        value = sprintf("%.15g", value))
}
calls <- character()

# Tight optimiser tolerances so the reference is the optimum, not lme4's stopping point.
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14, ftol_rel = 1e-15,
                                    maxeval = 1e5))

put <- function(name, fit) {
  b <- fixef(fit); se <- sqrt(diag(as.matrix(vcov(fit))))
  for (i in seq_along(b)) { add(name, names(b)[i], "estimate", b[i]); add(name, names(b)[i], "std_error", se[i]) }
  # VarCorr: variances "<group>:<effect>" (grp "Residual"), correlations "<group>:<effect1>:<effect2>"
  vc <- as.data.frame(VarCorr(fit))
  vc$grp <- sub("\\.[0-9]+$", "", vc$grp)  # (1 + x || g) names its blocks g, g.1, ...
  for (i in seq_len(nrow(vc))) {
    if (vc$grp[i] == "Residual") add(name, "Residual", "variance", vc$vcov[i])
    else if (is.na(vc$var2[i])) add(name, paste(vc$grp[i], vc$var1[i], sep = ":"), "variance", vc$vcov[i])
    else add(name, paste(vc$grp[i], vc$var1[i], vc$var2[i], sep = ":"), "correlation", vc$sdcor[i])
  }
  th <- getME(fit, "theta")
  for (i in seq_along(th)) add(name, names(th)[i], "theta", th[i])
  add(name, "", "log_likelihood", as.numeric(logLik(fit)))
  add(name, "", "nobs", nobs(fit))
  add(name, "", "singular", as.numeric(isSingular(fit)))
  # Nakagawa et al. (2017) ICC: mean over rows of z_i' Sigma z_i over that plus sigma^2
  ZL <- getME(fit, "Z") %*% getME(fit, "Lambda")
  v_re <- mean(rowSums(as.matrix(ZL)^2)) * sigma(fit)^2
  add(name, "", "icc", v_re / (v_re + sigma(fit)^2))
  re <- ranef(fit)[[1]]
  for (j in seq_len(ncol(re))) for (i in seq_len(nrow(re)))
    add(name, paste(rownames(re)[i], colnames(re)[j], sep = ":"), "ranef", re[i, j])
}

fit_put <- function(name, formula, data, reml, control = tight) {
  fit <- lmer(formula, data = data, REML = reml, control = control)
  calls <<- c(calls, sprintf("%s: lmer(%s, data = %s, REML = %s%s)", name, paste(trimws(deparse(formula, width.cutoff = 500L)), collapse = " "),
                             deparse(substitute(data)), reml, if (identical(control, tight)) ", control = tight" else ""))
  put(name, fit)
  invisible(fit)
}

for (reml in c(TRUE, FALSE)) {
  m <- if (reml) "reml" else "ml"
  fit_put(paste0("sleep_corr_", m), Reaction ~ Days + (Days | Subject), sleep, reml)
  fit_put(paste0("sleep_uncorr_", m), Reaction ~ Days + (Days || Subject), sleep, reml)
  fit_put(paste0("sleep_intercept_", m), Reaction ~ Days + (1 | Subject), sleep, reml)
  fit_put(paste0("sleep_slope_only_", m), Reaction ~ Days + (0 + Days | Subject), sleep, reml)
  fit_put(paste0("panel_corr_", m), engagement ~ alignment_cascade + (1 + alignment_cascade | manager_id), panel, reml)
}
# lme4's default stopping rule, to show how far it is from the optimum.
fit_put("sleep_corr_reml_default_control", Reaction ~ Days + (Days | Subject), sleep, TRUE, lmerControl())
fit_put("panel_uncorr_reml", engagement ~ alignment_cascade + (1 + alignment_cascade || manager_id), panel, TRUE)
# Three effects per manager: a boundary (singular) fit.
fit_put("panel_three_reml",
        engagement ~ alignment_cascade + manager_program + (1 + alignment_cascade + manager_program | manager_id),
        panel, TRUE)

res <- do.call(rbind, out)
write.csv(res, file.path(here, "mixed_slopes_reference.csv"), row.names = FALSE, quote = TRUE)
writeLines(c(
  "# Provenance of mixed_slopes_reference.csv (written by tests/reference/mixed_slopes.R)",
  paste("#", R.version.string),
  paste("# lme4", packageVersion("lme4"), "Matrix", packageVersion("Matrix")),
  "# command: python tests/reference/mixed_slopes_data.py && Rscript tests/reference/mixed_slopes.R",
  "# inputs: mixed_slopes_sleepstudy.csv (lme4::sleepstudy, exported by the script), mixed_slopes_panel.csv",
  "#   (tests/reference/mixed_slopes_data.py: ar.simulate_study(n_employees=600, seed=1) -> clean_study -> survey_panel)",
  "# tight = lmerControl(optimizer = 'nloptwrap', optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14, ftol_rel = 1e-15, maxeval = 1e5))",
  "# per model: fixef, sqrt(diag(vcov)), as.data.frame(VarCorr) (variance / correlation), getME(fit, 'theta'), logLik,",
  "#   nobs, isSingular, Nakagawa ICC = mean(rowSums((Z Lambda)^2)) sigma^2 / (that + sigma^2), ranef",
  "# calls:",
  paste("#  ", calls)
), file.path(here, "mixed_slopes_reference_provenance.txt"))
