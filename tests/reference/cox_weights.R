# Reference values of weighted Cox models (coxph(weights = )), for tests/test_cox_weights.py
# (base R + survival only; the data sets are survival's own, written out as CSV beside this script
# with the case weights the tests use).
# Run from the repository root:  Rscript tests/reference/cox_weights.R
# Inputs written: tests/reference/cox_weights_veteran.csv (veteran + weights w_int, w_frac),
#                 tests/reference/cox_weights_heart.csv (heart + weights w)
# Output: tests/reference/cox_weights_reference.csv, long form: case, term, quantity, value with
#   quantity coef, se (the fit's reported standard error: model-based for whole-number weights,
#   robust otherwise, as coxph's default), naive_se (model-based), loglik (fitted), loglik0 (null),
#   concordance (fit$concordance["concordance"]), n, nevent;
# and tests/reference/cox_weights_survfit.csv: survfit of the weighted heart fit (case, profile, time,
#   surv, std_err, cumhaz), conf.type = "log", censor = FALSE.
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
ctl <- coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-13)

vet <- survival::veteran[, c("time", "status", "trt", "karno", "age")]
i <- seq_len(nrow(vet))
vet$w_int <- 1 + (i %% 3)                  # 1, 2, 3: frequency weights
vet$w_frac <- 0.4 + ((i * 7) %% 11) / 8    # 0.4 .. 1.65, not whole numbers
vet$month <- vet$time %/% 30 + 1           # heavy ties
heart <- survival::heart[, c("start", "stop", "event", "age", "surgery", "transplant", "id")]
heart$transplant <- as.numeric(as.character(heart$transplant))
heart$w <- 0.25 + ((heart$id * 5) %% 7) / 4  # one weight per patient, 0.25 .. 1.75
write.csv(vet, file.path(here, "cox_weights_veteran.csv"), row.names = FALSE)
write.csv(heart, file.path(here, "cox_weights_heart.csv"), row.names = FALSE)

rows <- list()
add <- function(case, fit) {
  b <- coef(fit)
  naive <- if (is.null(fit$naive.var)) fit$var else fit$naive.var
  rows[[length(rows) + 1]] <<- rbind(
    data.frame(case = case, term = names(b), quantity = "coef", value = unname(b)),
    data.frame(case = case, term = names(b), quantity = "se", value = sqrt(diag(fit$var))),
    data.frame(case = case, term = names(b), quantity = "naive_se", value = sqrt(diag(naive))),
    data.frame(case = case, term = "", quantity = c("loglik", "loglik0", "concordance", "n", "nevent", "iter"),
               value = c(fit$loglik[2], fit$loglik[1], unname(fit$concordance["concordance"]), fit$n,
                         fit$nevent, fit$iter)))
}
f <- Surv(time, status) ~ trt + karno + age
add("vet_int_efron", coxph(f, data = vet, weights = w_int, ties = "efron", control = ctl))
add("vet_int_breslow", coxph(f, data = vet, weights = w_int, ties = "breslow", control = ctl))
add("vet_frac_efron", coxph(f, data = vet, weights = w_frac, ties = "efron", control = ctl))
add("vet_frac_breslow", coxph(f, data = vet, weights = w_frac, ties = "breslow", control = ctl))
add("vet_month_efron", coxph(Surv(month, status) ~ trt + karno + age, data = vet, weights = w_frac,
                             ties = "efron", control = ctl))
add("vet_month_int_efron", coxph(Surv(month, status) ~ trt + karno + age, data = vet, weights = w_int,
                                 ties = "efron", control = ctl))
g <- Surv(start, stop, event) ~ age + surgery + transplant + cluster(id)
f_heart <- coxph(g, data = heart, weights = w, ties = "efron", control = ctl)
add("heart_efron", f_heart)
add("heart_breslow", coxph(g, data = heart, weights = w, ties = "breslow", control = ctl))
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "cox_weights_reference.csv"), row.names = FALSE)

heart_new <- data.frame(age = c(-10, 5, 0), surgery = c(0, 1, 0), transplant = c(0, 1, 1))
sf <- survfit(f_heart, newdata = heart_new, conf.type = "log", censor = FALSE)
sv <- list()
for (k in seq_len(nrow(heart_new))) {
  sv[[k]] <- data.frame(case = "heart_efron", profile = k - 1, time = sf$time, surv = sf$surv[, k],
                        std_err = sf$std.err[, k], cumhaz = sf$cumhaz[, k])
}
# at the unweighted covariate means (cox_survival's default profile; R's own default puts 0/1 columns at 0)
sf0 <- survfit(f_heart, newdata = as.data.frame(t(colMeans(heart[, c("age", "surgery", "transplant")]))),
               conf.type = "log", censor = FALSE)
sv[[length(sv) + 1]] <- data.frame(case = "heart_efron_mean", profile = 0, time = sf0$time, surv = sf0$surv,
                                   std_err = sf0$std.err, cumhaz = sf0$cumhaz)
write.csv(do.call(rbind, sv), file.path(here, "cox_weights_survfit.csv"), row.names = FALSE)

writeLines(c(paste0("# ", R.version.string), paste0("# survival ", packageVersion("survival")),
             "# made by: Rscript tests/reference/cox_weights.R (from the repository root)",
             "# data: survival::veteran and survival::heart with the weights the script adds",
             "# control: coxph.control(eps = 1e-12, iter.max = 100, toler.chol = 1e-13)"),
           file.path(here, "cox_weights_provenance.txt"))
