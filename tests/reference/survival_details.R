# Reference values of four survival details for tests/test_retention.py (base R + survival only;
# cmprsk is not installed, so cumulative incidence comes from survfit with a factor status).
# Input: R's own data sets survival::veteran (time in days) and survival::mgus2 (time in months),
# written beside this script as survival_veteran.csv and survival_mgus2.csv.
# Run from the repository root:  Rscript tests/reference/survival_details.R
# Output: tests/reference/survival_details_reference.csv with columns case, group, term, value
# (17 significant digits), and survival_details_provenance.txt.
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
vet <- survival::veteran
mg <- survival::mgus2
write.csv(vet, file.path(here, "survival_veteran.csv"), row.names = FALSE)
write.csv(mg, file.path(here, "survival_mgus2.csv"), row.names = FALSE)

rows <- list()
add <- function(case, group, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, group = group, term = term, value = value)
}

# 1. cox.zph with the rank transform (R ranks every row's time, censored ones included)
tight <- coxph.control(eps = 1e-12, iter.max = 50, toler.chol = 1e-15)  # as retention.R
fit <- coxph(Surv(time, status) ~ trt + karno + diagtime + age + prior, data = vet, control = tight)
for (tr in c("rank", "km", "identity", "log")) {
  zph <- cox.zph(fit, transform = tr)
  add(paste0("zph_", tr), "all", rownames(zph$table), zph$table[, "chisq"])
}

# 2. cumulative incidence on mgus2 (competing risks: progression to plasma cell malignancy, death)
mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
mg$ecode <- ifelse(mg$pstat == 0, 2 * mg$death, 1)
mg$event <- factor(mg$ecode, 0:2, labels = c("censor", "pcm", "death"))
cif <- survfit(Surv(etime, event) ~ 1, data = mg)
s <- summary(cif, times = c(60, 120, 240))
for (k in c("pcm", "death")) {
  add("cif_mgus2", k, paste0("incidence_", c(60, 120, 240), "_months"), s$pstate[, match(k, s$states)])
  add("cif_mgus2_se", k, paste0("incidence_", c(60, 120, 240), "_months"), s$std.err[, match(k, s$states)])
}

# 3./4. Kaplan-Meier median (quantile.survfit, conf.type "log") and retention, in days;
# the tests re-express veteran's time in weeks and years
km <- survfit(Surv(time, status) ~ trt, data = vet)
q <- quantile(km, probs = 0.5)
for (g in 1:2) {
  grp <- sub("^trt=", "", names(km$strata)[g])
  add("km_median_days", grp, c("estimate", "conf_low", "conf_high"), c(q$quantile[g], q$lower[g], q$upper[g]))
}
# trt x celltype: four upper limits are NA (the upper band never reaches 0.5), four exist
vet$arm <- paste(vet$trt, vet$celltype, sep = "_")
kma <- survfit(Surv(time, status) ~ arm, data = vet)
qa <- quantile(kma, probs = 0.5)
for (g in seq_along(kma$strata)) {
  grp <- sub("^arm=", "", names(kma$strata)[g])
  add("km_median_days", grp, c("estimate", "conf_low", "conf_high"), c(qa$quantile[g], qa$lower[g], qa$upper[g]))
}
km1 <- survfit(Surv(time, status) ~ 1, data = vet)
q1 <- quantile(km1, probs = 0.5)
add("km_median_days", "all", c("estimate", "conf_low", "conf_high"), c(q1$quantile, q1$lower, q1$upper))
s1 <- summary(km1, times = c(3, 6, 12) * 365.25 / 12)
add("km_retention", "all", paste0("retention_", c(3, 6, 12), "_months"), s1$surv)
add("km_retention_low", "all", paste0("retention_", c(3, 6, 12), "_months"), s1$lower)
add("km_retention_high", "all", paste0("retention_", c(3, 6, 12), "_months"), s1$upper)

out <- do.call(rbind, rows)
out$value <- trimws(formatC(out$value, digits = 17, format = "g"))
write.csv(out, file.path(here, "survival_details_reference.csv"), row.names = FALSE)
writeLines(c(paste("# R", R.version$major, ".", R.version$minor, sep = ""),
             paste("# survival", packageVersion("survival")),
             "# script tests/reference/survival_details.R; data survival::veteran, survival::mgus2"),
           file.path(here, "survival_details_provenance.txt"))
