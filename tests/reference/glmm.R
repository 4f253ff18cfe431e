# Reference values for tests/test_glmm.py (lme4::glmer, Laplace, nAGQ = 1).
#
# Chain: tests/reference/glmm_data.py writes glmm_data.csv (a toolkit-like data
# set); this script exports lme4's cbpp expanded to one row per animal
# (glmm_cbpp.csv), fits the models below and writes glmm_reference.csv in long
# form (model, term, quantity, value), and glmm_reference_provenance.txt.
# Run from the repository root:
#   python tests/reference/glmm_data.py && Rscript tests/reference/glmm.R
# Each model is fitted twice: with glmer's defaults ("<name>"), which is what a
# user gets, and with tight optimiser tolerances ("<name>_tight"), which is the
# optimum itself (glmer's default Nelder-Mead stops within about 1e-5 of it).
suppressPackageStartupMessages(library(lme4))

here <- "tests/reference"

# cbpp as binary rows: incidence events out of size animals per herd and period
data(cbpp, package = "lme4")
rows <- rep(seq_len(nrow(cbpp)), cbpp$size)
cbpp_bin <- data.frame(herd = cbpp$herd[rows], period = cbpp$period[rows])
cbpp_bin$y <- unlist(lapply(seq_len(nrow(cbpp)), function(i)
  c(rep(1L, cbpp$incidence[i]), rep(0L, cbpp$size[i] - cbpp$incidence[i]))))
write.csv(cbpp_bin, file.path(here, "glmm_cbpp.csv"), row.names = FALSE)

sim <- read.csv(file.path(here, "glmm_data.csv"), stringsAsFactors = FALSE)
sim$job_level <- factor(sim$job_level)

tight <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                      optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-14, xtol_rel = 1e-13, ftol_rel = 1e-15,
                                     maxeval = 1e5))

out <- list()
add <- function(model, term, quantity, value) {
  out[[length(out) + 1]] <<- data.frame(model = model, term = term, quantity = quantity,
                                        value = sprintf("%.15g", value))
}
calls <- character()
put <- function(name, fit, call) {
  calls <<- c(calls, paste0("# ", name, ": ", call))
  b <- fixef(fit)
  se <- sqrt(diag(as.matrix(vcov(fit))))
  hess <- !is.null(fit@optinfo$derivs$Hessian)
  se_rx <- sqrt(diag(as.matrix(vcov(fit, use.hessian = FALSE))))
  for (i in seq_along(b)) {
    add(name, names(b)[i], "estimate", b[i])
    add(name, names(b)[i], "std_error", se[i])
    add(name, names(b)[i], "std_error_rx", se_rx[i])
  }
  vc <- as.data.frame(VarCorr(fit))
  add(name, vc$grp[1], "variance", vc$vcov[1])
  add(name, vc$grp[1], "theta", getME(fit, "theta")[[1]])
  add(name, "", "log_likelihood", as.numeric(logLik(fit)))
  add(name, "", "deviance", deviance(fit))
  add(name, "", "aic", AIC(fit))
  add(name, "", "bic", BIC(fit))
  add(name, "", "nobs", nobs(fit))
  add(name, "", "hessian_used", as.numeric(hess))
  re <- ranef(fit)[[1]]
  for (i in seq_len(nrow(re))) add(name, rownames(re)[i], "ranef", re[i, 1])
}

fits <- list(
  cbpp = list("glmer(y ~ period + (1 | herd), family = binomial, data = cbpp_bin)",
              function(ctl) glmer(y ~ period + (1 | herd), family = binomial, data = cbpp_bin, control = ctl)),
  cbpp_cbind = list("glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), family = binomial, data = cbpp)",
                    function(ctl) glmer(cbind(incidence, size - incidence) ~ period + (1 | herd),
                                        family = binomial, data = cbpp, control = ctl)),
  sim_logit = list(paste("glmer(left_within_year ~ alignment_cascade + manager_program + engagement + job_level",
                         "+ (1 | manager_id), family = binomial, data = sim)"),
                   function(ctl) glmer(left_within_year ~ alignment_cascade + manager_program + engagement +
                                         job_level + (1 | manager_id), family = binomial, data = sim, control = ctl)),
  sim_poisson = list("glmer(recognitions ~ alignment_cascade + manager_program + (1 | manager_id), family = poisson, data = sim)",
                     function(ctl) glmer(recognitions ~ alignment_cascade + manager_program + (1 | manager_id),
                                         family = poisson, data = sim, control = ctl))
)
for (name in names(fits)) {
  put(name, fits[[name]][[2]](glmerControl()), fits[[name]][[1]])
  put(paste0(name, "_tight"), fits[[name]][[2]](tight),
      paste(fits[[name]][[1]], "with control = tight (nloptwrap, xtol_rel = 1e-13, ftol_rel = 1e-15, tolPwrss = 1e-12)"))
}

res <- do.call(rbind, out)
write.csv(res, file.path(here, "glmm_reference.csv"), row.names = FALSE)
writeLines(c(
  paste0("# ", R.version.string, "; lme4 ", packageVersion("lme4"), "; Matrix ", packageVersion("Matrix"),
         "; nloptr ", packageVersion("nloptr")),
  "# Command (repository root): python tests/reference/glmm_data.py && Rscript tests/reference/glmm.R",
  "# std_error: sqrt(diag(vcov(fit))) (lme4 default: the finite-difference Hessian of the deviance over",
  "#   (theta, beta) when computed, use.hessian = TRUE); std_error_rx: vcov(fit, use.hessian = FALSE)",
  calls), file.path(here, "glmm_reference_provenance.txt"))
cat("wrote", nrow(res), "values\n")
