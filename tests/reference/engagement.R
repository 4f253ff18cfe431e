# Reference values for tests/test_engagement.py (lme4, MASS, sandwich).
#
# Chain: tests/reference/engagement_data.py writes engagement_data.csv;
# this script fits the models below and writes engagement_r_results.csv in tidy
# long form (model, term, quantity, value) with a provenance header (R call and
# package versions). Run from the repository root:
#   python tests/reference/engagement_data.py && Rscript tests/reference/engagement.R
# The R package `mediation` is not available here; mediation is checked
# analytically in the tests instead.
suppressPackageStartupMessages({
  library(lme4)
  library(MASS)
  library(sandwich)
})

here <- "tests/reference"
d <- read.csv(file.path(here, "engagement_data.csv"), stringsAsFactors = FALSE)
d$job_level <- factor(d$job_level)
d$wave <- factor(d$wave)

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
fml <- engagement ~ alignment_cascade + manager_program + job_level + (1 | manager_id)
put_lmer <- function(name, fit) {
  b <- fixef(fit); se <- sqrt(diag(as.matrix(vcov(fit))))
  for (i in seq_along(b)) { add(name, names(b)[i], "estimate", b[i]); add(name, names(b)[i], "std_error", se[i]) }
  vc <- as.data.frame(VarCorr(fit))
  for (i in seq_len(nrow(vc))) add(name, vc$grp[i], "variance", vc$vcov[i])
  add(name, "", "log_likelihood", as.numeric(logLik(fit)))
  add(name, "", "nobs", nobs(fit))
}
for (reml in c(TRUE, FALSE)) {
  name <- if (reml) "lmer_reml" else "lmer_ml"
  fit <- lmer(fml, data = d, REML = reml, control = tight)
  calls <- c(calls, sprintf("%s: lmer(engagement ~ alignment_cascade + manager_program + job_level + (1 | manager_id), data, REML = %s, control = tight)", name, reml))
  put_lmer(name, fit)
  re <- ranef(fit)$manager_id
  for (i in seq_len(nrow(re))) add(name, rownames(re)[i], "ranef", re[i, 1])
  # lme4's default optimiser stopping point, to show how far it is from the optimum.
  fit0 <- lmer(fml, data = d, REML = reml)
  put_lmer(paste0(name, "_default_control"), fit0)
}

# Two variance components (department and manager; managers are nested in departments).
fit <- lmer(engagement ~ alignment_cascade + manager_program + (1 | department) + (1 | manager_id),
            data = d, REML = TRUE, control = tight)
calls <- c(calls, "lmer_vc: lmer(engagement ~ alignment_cascade + manager_program + (1 | department) + (1 | manager_id), data, REML = TRUE, control = tight)")
put_lmer("lmer_vc", fit)

# Proportional-odds logistic regression.
d$rating_f <- factor(d$rating, ordered = TRUE)
fit <- polr(rating_f ~ alignment_cascade + manager_program + engagement, data = d, Hess = TRUE, method = "logistic",
            control = list(reltol = 1e-14, maxit = 1000))
calls <- c(calls, "polr: MASS::polr(factor(rating, ordered = TRUE) ~ alignment_cascade + manager_program + engagement, data, Hess = TRUE, method = 'logistic', control = list(reltol = 1e-14))")
se <- sqrt(diag(vcov(fit)))
for (n in names(coef(fit))) { add("polr", n, "estimate", coef(fit)[n]); add("polr", n, "std_error", se[n]) }
for (n in names(fit$zeta)) { add("polr", n, "estimate", fit$zeta[n]); add("polr", n, "std_error", se[n]) }
add("polr", "", "log_likelihood", as.numeric(logLik(fit)))

# OLS with cluster-robust (CR1, "HC1" small-sample factor G/(G-1) * (N-1)/(N-K)) standard errors.
fit <- lm(engagement ~ alignment_cascade + manager_program + job_level, data = d)
V <- vcovCL(fit, cluster = ~manager_id, type = "HC1", cadjust = TRUE)
calls <- c(calls, "ols_cluster: vcovCL(lm(engagement ~ alignment_cascade + manager_program + job_level, data), cluster = ~manager_id, type = 'HC1', cadjust = TRUE)")
for (n in names(coef(fit))) { add("ols_cluster", n, "estimate", coef(fit)[n]); add("ols_cluster", n, "std_error", sqrt(V[n, n])) }
V0 <- vcov(fit)
for (n in names(coef(fit))) add("ols_cluster", n, "std_error_naive", sqrt(V0[n, n]))
add("ols_cluster", "", "r_squared", summary(fit)$r.squared)

# Logistic regression with cluster-robust standard errors.
fit <- glm(left_next_cycle ~ engagement + manager_program + alignment_cascade, family = binomial, data = d,
           control = glm.control(epsilon = 1e-14, maxit = 100))
V <- vcovCL(fit, cluster = ~manager_id, type = "HC1", cadjust = TRUE)
calls <- c(calls, "logit_cluster: vcovCL(glm(left_next_cycle ~ engagement + manager_program + alignment_cascade, binomial, data), cluster = ~manager_id, type = 'HC1', cadjust = TRUE)")
for (n in names(coef(fit))) { add("logit_cluster", n, "estimate", coef(fit)[n]); add("logit_cluster", n, "std_error", sqrt(V[n, n])) }
add("logit_cluster", "", "log_likelihood", as.numeric(logLik(fit)))

# Within-person (employee fixed effects): coefficients from dummies; clustered SE
# (by employee) from the demeaned regression, CR1 with K = regressors (Stata xtreg, fe vce(cluster)).
fit <- lm(engagement ~ alignment_cascade + wave + factor(employee_id), data = d)
calls <- c(calls, "within: lm(engagement ~ alignment_cascade + wave + factor(employee_id), data); SE: vcovCL(lm(demeaned y ~ 0 + demeaned X), cluster = ~employee_id, type = 'HC1')")
X <- model.matrix(~ alignment_cascade + wave, d)[, -1]
dm <- function(v) v - ave(v, d$employee_id)
Xd <- apply(X, 2, dm); yd <- dm(d$engagement)
fitd <- lm(yd ~ 0 + Xd)
V <- vcovCL(fitd, cluster = d$employee_id, type = "HC1", cadjust = TRUE)
for (i in seq_len(ncol(X))) {
  n <- colnames(X)[i]
  add("within", n, "estimate", coef(fit)[n]); add("within", n, "std_error", sqrt(V[i, i]))
}

# Nested random intercepts: employees within managers (repeated waves), as fit_mixed(groups="employee_id",
# vc="manager_id") fits them; and lme4's own nested example, Pastes (casks within batches).
for (reml in c(TRUE, FALSE)) {
  name <- if (reml) "lmer_nested" else "lmer_nested_ml"
  fit <- lmer(engagement ~ alignment_cascade + manager_program + (1 | manager_id) + (1 | manager_id:employee_id),
              data = d, REML = reml, control = tight)
  calls <- c(calls, sprintf("%s: lmer(engagement ~ alignment_cascade + manager_program + (1 | manager_id) + (1 | manager_id:employee_id), data, REML = %s, control = tight)", name, reml))
  put_lmer(name, fit)
  re <- ranef(fit)$manager_id
  for (i in seq_len(nrow(re))) add(name, rownames(re)[i], "ranef", re[i, 1])
}
data(Pastes, package = "lme4")
write.csv(Pastes[, c("strength", "batch", "cask", "sample")], file.path(here, "engagement_pastes.csv"), row.names = FALSE)
fit <- lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), data = Pastes, REML = TRUE, control = tight)
calls <- c(calls, "pastes: lmer(strength ~ 1 + (1 | batch) + (1 | batch:cask), lme4::Pastes, REML = TRUE, control = tight)")
put_lmer("pastes", fit)
re <- ranef(fit)$batch
for (i in seq_len(nrow(re))) add("pastes", rownames(re)[i], "ranef", re[i, 1])
re <- ranef(fit)$`batch:cask`
for (i in seq_len(nrow(re))) add("pastes", rownames(re)[i], "ranef_cell", re[i, 1])

res <- do.call(rbind, out)
header <- c(
  "# Reference values written by tests/reference/engagement.R from tests/reference/engagement_data.csv",
  paste0("# ", R.version.string, "; lme4 ", packageVersion("lme4"), "; MASS ", packageVersion("MASS"),
         "; sandwich ", packageVersion("sandwich"), "; Matrix ", packageVersion("Matrix")),
  "# tight <- lmerControl(optimizer = 'nloptwrap', optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14, ftol_rel = 1e-15, maxeval = 1e5))",
  paste0("# ", calls),
  "# *_default_control: the same lmer call with lme4's default control"
)
f <- file.path(here, "engagement_r_results.csv")
writeLines(header, f)
suppressWarnings(write.table(res, f, sep = ",", row.names = FALSE, append = TRUE, quote = TRUE))
cat("wrote", nrow(res), "values to", f, "\n")
