# Reference values of adjusted survival curves of a Cox model, for tests/test_adjusted_survival.py
# (base R + survival only; data sets are survival's own, written out as CSV beside this script).
# Run from the repository root:  Rscript tests/reference/cox_survfit.R
# Output: tests/reference/cox_survfit_veteran.csv, cox_survfit_heart.csv (inputs) and
# tests/reference/cox_survfit_reference.csv with columns case, profile, time, n_risk, n_event,
# surv, std_err, lower, upper, cumhaz, from survfit(coxph(..., ties = "efron"), newdata = ...,
# conf.type = "log", se.fit = TRUE, censor = FALSE); std_err is survfit's own $std.err
# (the standard error of the cumulative hazard, i.e. of -log S). Case "veteran_times" is
# summary(fit, times = ...) at chosen times (between and after event times).
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
vet <- survival::veteran[, c("time", "status", "trt", "karno", "age", "celltype")]
vet$celltype <- as.character(vet$celltype)
heart <- survival::heart[, c("start", "stop", "event", "age", "surgery", "transplant", "id")]
heart$transplant <- as.numeric(as.character(heart$transplant))
write.csv(vet, file.path(here, "cox_survfit_veteran.csv"), row.names = FALSE)
write.csv(heart, file.path(here, "cox_survfit_heart.csv"), row.names = FALSE)

vet_new <- data.frame(trt = c(1, 2, 1), karno = c(60, 60, 90), age = c(60, 60, 45))
heart_new <- data.frame(age = c(-10, 5, 0), surgery = c(0, 1, 0), transplant = c(0, 1, 1))

rows <- list()
add <- function(case, sf, k) {
  for (i in seq_len(k)) {
    col <- function(x) if (is.matrix(x)) x[, i] else x
    rows[[length(rows) + 1]] <<- data.frame(case = case, profile = i - 1, time = sf$time,
      n_risk = sf$n.risk, n_event = sf$n.event, surv = col(sf$surv), std_err = col(sf$std.err),
      lower = col(sf$lower), upper = col(sf$upper), cumhaz = col(sf$cumhaz))
  }
}
f_vet <- coxph(Surv(time, status) ~ trt + karno + age, data = vet, ties = "efron")
add("veteran", survfit(f_vet, newdata = vet_new, conf.type = "log", censor = FALSE), nrow(vet_new))
f_heart <- coxph(Surv(start, stop, event) ~ age + surgery + transplant, data = heart, ties = "efron")
add("heart", survfit(f_heart, newdata = heart_new, conf.type = "log", censor = FALSE), nrow(heart_new))
f_rob <- coxph(Surv(start, stop, event) ~ age + surgery + transplant + cluster(id), data = heart, ties = "efron")
add("heart_robust", survfit(f_rob, newdata = heart_new, conf.type = "log", censor = FALSE), nrow(heart_new))
f_null <- coxph(Surv(time, status) ~ 1, data = vet, ties = "efron")
add("veteran_null", survfit(f_null, conf.type = "log", censor = FALSE), 1)
# at chosen times (summary's std.err is of S; keep survfit's scale: std.err / surv)
s <- summary(survfit(f_vet, newdata = vet_new, conf.type = "log"), times = c(0.5, 30, 100.5, 365, 999), extend = TRUE)
for (i in seq_len(nrow(vet_new))) {
  rows[[length(rows) + 1]] <- data.frame(case = "veteran_times", profile = i - 1, time = s$time,
    n_risk = s$n.risk, n_event = s$n.event, surv = s$surv[, i], std_err = s$std.err[, i] / s$surv[, i],
    lower = s$lower[, i], upper = s$upper[, i], cumhaz = s$cumhaz[, i])
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "cox_survfit_reference.csv"), row.names = FALSE)
writeLines(c(paste("# R", R.version$major, ".", R.version$minor, sep = ""),
             paste("# survival", packageVersion("survival")),
             "# made by tests/reference/cox_survfit.R from survival::veteran and survival::heart"),
           file.path(here, "cox_survfit_reference_provenance.txt"))
