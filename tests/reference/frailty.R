# Reference values for tests/test_frailty.py: shared gamma frailty (penalised partial likelihood)
# and strata by group, as survival::coxph.
# Run from the repository root:  Rscript tests/reference/frailty.R
# Output: frailty_reference.csv (long form: model, term, quantity, value), frailty_rats.csv (survival::rats).
# The start/stop data are retention_input_intervals.csv (written by retention_data.py).
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
rows <- list()
add <- function(model, term, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, term = term, quantity = quantity,
                                          value = sprintf("%.15g", as.numeric(value)))
}
calls <- character()
tight <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-15, outer.max = 200)
put <- function(model, fit) {
  b <- coef(fit)
  add(model, names(b), "coef", b)
  add(model, names(b), "se", sqrt(diag(fit$var))[seq_along(b)])
  add(model, "", "loglik_null", fit$loglik[1])
  add(model, "", "loglik", fit$loglik[2])  # partial likelihood (penalty not included)
  add(model, "", "n", fit$n)
  add(model, "", "nevent", fit$nevent)
  if (!is.null(fit$history)) {
    h <- fit$history[[1]]
    add(model, "", "theta", h$theta)
    add(model, "", "c_loglik", h$c.loglik)  # the integrated (marginal) likelihood at theta
    add(model, "", "penalty", fit$penalty[2])
    add(model, "", "df", sum(fit$df))
    if (!is.null(fit$frail)) add(model, seq_along(fit$frail), "frail", fit$frail)
  }
}

write.csv(rats, file.path(here, "frailty_rats.csv"), row.names = FALSE)
# R's documented example (?frailty): litter frailty on the rats data; default gamma, method "em"
fit <- coxph(Surv(time, status) ~ rx + frailty(litter), rats)
calls <- c(calls, "rats_default: coxph(Surv(time, status) ~ rx + frailty(litter), rats)")
put("rats_default", fit)
fit <- coxph(Surv(time, status) ~ rx + frailty(litter, eps = 1e-12), rats, control = tight)
calls <- c(calls, "rats_tight: coxph(Surv(time, status) ~ rx + frailty(litter, eps = 1e-12), rats, control = tight)")
put("rats_tight", fit)
for (th in c(0.5, 1, 2)) {
  fit <- coxph(Surv(time, status) ~ rx + frailty(litter, theta = th), rats, control = tight)
  calls <- c(calls, sprintf("rats_theta_%g: coxph(Surv(time, status) ~ rx + frailty(litter, theta = %g), rats, control = tight)", th, th))
  put(sprintf("rats_theta_%g", th), fit)
}
fit <- coxph(Surv(time, status) ~ rx + sex + frailty(litter, theta = 1), rats, control = tight)
calls <- c(calls, "rats_sex_theta_1: coxph(Surv(time, status) ~ rx + sex + frailty(litter, theta = 1), rats, control = tight)")
put("rats_sex_theta_1", fit)

# Start/stop data: strata and frailty by manager
iv <- read.csv(file.path(here, "retention_input_intervals.csv"), stringsAsFactors = FALSE)
fml <- "Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program"
fit <- coxph(as.formula(paste(fml, "+ strata(manager_id)")), iv, control = tight)
calls <- c(calls, paste0("intervals_strata: coxph(", fml, " + strata(manager_id), intervals, control = tight)"))
put("intervals_strata", fit)
fit <- coxph(as.formula(paste(fml, "+ frailty(manager_id, eps = 1e-12)")), iv, control = tight)
calls <- c(calls, paste0("intervals_frailty: coxph(", fml, " + frailty(manager_id, eps = 1e-12), intervals, control = tight)"))
put("intervals_frailty", fit)
fit <- coxph(as.formula(paste(fml, "+ frailty(manager_id, theta = 0.1)")), iv, control = tight)
calls <- c(calls, paste0("intervals_theta_0.1: coxph(", fml, " + frailty(manager_id, theta = 0.1), intervals, control = tight)"))
put("intervals_theta_0.1", fit)
fit <- coxph(as.formula(paste(fml, "+ cluster(manager_id)")), iv, control = tight)
calls <- c(calls, paste0("intervals_cluster: coxph(", fml, " + cluster(manager_id), intervals, control = tight)"))
put("intervals_cluster", fit)

res <- do.call(rbind, rows)
f <- file.path(here, "frailty_reference.csv")
write.csv(res, f, row.names = FALSE)
writeLines(c(
  "# Provenance of frailty_reference.csv (written by tests/reference/frailty.R)",
  paste0("# ", R.version.string),
  paste0("# survival ", packageVersion("survival")),
  "# command: Rscript tests/reference/frailty.R (from the repository root)",
  "# tight <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-15, outer.max = 200)",
  "# theta: fit$history[[1]]$theta; c_loglik: fit$history[[1]]$c.loglik (integrated likelihood); loglik: fit$loglik[2]",
  paste0("# ", calls)
), file.path(here, "frailty_reference_provenance.txt"))
cat("wrote", nrow(res), "values to", f, "\n")
