# Reference restricted means of adjusted Cox survival curves, for tests/test_brief.py (cox_restricted_mean).
# base R + survival only; inputs are the CSVs cox_survfit.R writes (survival::veteran and survival::heart).
# Run from the repository root:  Rscript tests/reference/cox_rmean.R
# Output: tests/reference/cox_rmean_reference.csv with columns case, profile, horizon, rmean: the "rmean"
# of summary(survfit(coxph(..., ties = "efron"), newdata = ...), rmean = horizon)$table (the area under
# each adjusted curve from 0 to the horizon). R's se(rmean) there treats the curve as a Kaplan-Meier curve
# (it ignores the coefficients' uncertainty), so it is not used as a reference.
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
vet <- read.csv(file.path(here, "cox_survfit_veteran.csv"))
heart <- read.csv(file.path(here, "cox_survfit_heart.csv"))
vet_new <- data.frame(trt = c(1, 2, 1), karno = c(60, 60, 90), age = c(60, 60, 45))
heart_new <- data.frame(age = c(-10, 5, 0), surgery = c(0, 1, 0), transplant = c(0, 1, 1))
rows <- list()
add <- function(case, fit, newdata, horizon) {
  tab <- summary(survfit(fit, newdata = newdata), rmean = horizon)$table
  rows[[length(rows) + 1]] <<- data.frame(case = case, profile = seq_len(nrow(newdata)) - 1, horizon = horizon,
                                          rmean = unname(tab[, "rmean"]))
}
f_vet <- coxph(Surv(time, status) ~ trt + karno + age, data = vet, ties = "efron")
add("veteran", f_vet, vet_new, 365)
add("veteran_short", f_vet, vet_new, 45.5)
f_rob <- coxph(Surv(start, stop, event) ~ age + surgery + transplant + cluster(id), data = heart, ties = "efron")
add("heart_robust", f_rob, heart_new, 1000)
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "cox_rmean_reference.csv"), row.names = FALSE)
writeLines(c(paste0("# ", R.version$language, " ", R.version$major, ".", R.version$minor),
             paste0("# survival ", as.character(packageVersion("survival"))),
             "# made by: Rscript tests/reference/cox_rmean.R (from the repository root)",
             "# inputs: tests/reference/cox_survfit_veteran.csv, cox_survfit_heart.csv (written by cox_survfit.R)"),
           file.path(here, "cox_rmean_reference_provenance.txt"))
