# Reference values for tests/test_comparison.py: likelihood-ratio tests between nested models,
# AIC and BIC, as R's anova(). Data are R's own data sets, exported beside this script.
# Run from the repository root:  Rscript tests/reference/comparison.R
# Output: comparison_reference.csv (long form: model, term, quantity, value) and the data CSVs
# comparison_birthwt.csv, comparison_housing.csv, comparison_sleepstudy.csv
# (veteran is read from survival_veteran.csv, written by survival_details.R).
suppressPackageStartupMessages({
  library(survival)
  library(MASS)
  library(lme4)
})
here <- "tests/reference"
rows <- list()
add <- function(model, term, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, term = term, quantity = quantity,
                                          value = sprintf("%.15g", as.numeric(value)))
}
calls <- character()
# anova-style rows: one per model (term = model position) with logLik, df, AIC, BIC, and the
# chi-square test of each model against the one before it.
add_models <- function(name, fits, tab) {
  for (i in seq_along(fits)) {
    ll <- logLik(fits[[i]])
    add(name, i, "log_likelihood", as.numeric(ll))
    add(name, i, "df", attr(ll, "df"))
    add(name, i, "aic", AIC(fits[[i]]))
    add(name, i, "bic", BIC(fits[[i]]))
    add(name, i, "nobs", nobs(fits[[i]]))
  }
  for (i in seq_len(nrow(tab))) {
    add(name, i, "lr_statistic", tab$stat[i])
    add(name, i, "lr_df", tab$df[i])
    add(name, i, "p_value", tab$p[i])
  }
}

# Cox: veteran, partial likelihood
veteran <- read.csv(file.path(here, "survival_veteran.csv"))
tight <- coxph.control(eps = 1e-12, iter.max = 50, toler.chol = 1e-15)
c0 <- coxph(Surv(time, status) ~ karno, data = veteran, control = tight)
c1 <- coxph(Surv(time, status) ~ karno + celltype + age, data = veteran, control = tight)
a <- anova(c0, c1)
calls <- c(calls, "cox: anova(coxph(Surv(time, status) ~ karno, veteran), coxph(Surv(time, status) ~ karno + celltype + age, veteran))")
add_models("cox", list(c0, c1), data.frame(stat = a$Chisq, df = a$Df, p = a[["Pr(>|Chi|)"]]))
add("cox", 0, "log_likelihood", c0$loglik[1])  # the null model
add("cox", 0, "lr_statistic", 2 * (c0$loglik[2] - c0$loglik[1]))

# Logistic regression: MASS::birthwt
bw <- birthwt
bw$race <- factor(bw$race)
write.csv(birthwt, file.path(here, "comparison_birthwt.csv"), row.names = FALSE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
g00 <- glm(low ~ 1, binomial, bw, control = ctl)
g0 <- glm(low ~ age + lwt, binomial, bw, control = ctl)
g1 <- glm(low ~ age + lwt + race + smoke + ht, binomial, bw, control = ctl)
a <- anova(g00, g0, g1, test = "LRT")
calls <- c(calls, "logit: anova(glm(low ~ 1), glm(low ~ age + lwt), glm(low ~ age + lwt + factor(race) + smoke + ht), binomial, birthwt, test = 'LRT')")
add_models("logit", list(g00, g0, g1), data.frame(stat = a$Deviance, df = a$Df, p = a[["Pr(>Chi)"]]))

# Proportional odds: MASS::housing with Freq weights
write.csv(housing, file.path(here, "comparison_housing.csv"), row.names = FALSE)
p0 <- polr(Sat ~ Infl, weights = Freq, data = housing, control = list(reltol = 1e-14, maxit = 1000))
p1 <- polr(Sat ~ Infl + Type + Cont, weights = Freq, data = housing, control = list(reltol = 1e-14, maxit = 1000))
a <- anova(p0, p1)
calls <- c(calls, "ordinal: anova(polr(Sat ~ Infl, weights = Freq, housing), polr(Sat ~ Infl + Type + Cont, weights = Freq, housing))")
add_models("ordinal", list(p0, p1), data.frame(stat = a[["LR stat."]], df = a[["   Df"]], p = a[["Pr(Chi)"]]))

# Linear mixed models by ML, and a linear model: lme4::sleepstudy
write.csv(sleepstudy, file.path(here, "comparison_sleepstudy.csv"), row.names = FALSE)
tl <- lmerControl(optimizer = "nloptwrap",
                  optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, xtol_rel = 1e-14, ftol_rel = 1e-15, maxeval = 1e5))
m0 <- lmer(Reaction ~ 1 + (1 | Subject), sleepstudy, REML = FALSE, control = tl)
m1 <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE, control = tl)
a <- anova(m0, m1)
calls <- c(calls, "mixed: anova(lmer(Reaction ~ 1 + (1 | Subject), REML = FALSE), lmer(Reaction ~ Days + (1 | Subject), REML = FALSE), sleepstudy)")
add_models("mixed", list(m0, m1), data.frame(stat = a$Chisq, df = a$Df, p = a[["Pr(>Chisq)"]]))
l1 <- lm(Reaction ~ Days, sleepstudy)
a <- anova(m1, l1)  # lme4 puts the lm first (fewer parameters)
calls <- c(calls, "ols_vs_mixed: anova(lmer(Reaction ~ Days + (1 | Subject), REML = FALSE), lm(Reaction ~ Days)) (rows: lm, lmer)")
add_models("ols_vs_mixed", list(l1, m1), data.frame(stat = a$Chisq, df = a$Df, p = a[["Pr(>Chisq)"]]))
l0 <- lm(Reaction ~ 1, sleepstudy)
st <- 2 * (as.numeric(logLik(l1)) - as.numeric(logLik(l0)))
calls <- c(calls, "ols: logLik(lm(Reaction ~ 1)), logLik(lm(Reaction ~ Days)) (lmtest::lrtest arithmetic)")
add_models("ols", list(l0, l1), data.frame(stat = c(NA, st), df = c(NA, 1), p = c(NA, pchisq(st, 1, lower.tail = FALSE))))

res <- do.call(rbind, rows)
f <- file.path(here, "comparison_reference.csv")
write.csv(res, f, row.names = FALSE)
prov <- c(
  "# Provenance of comparison_reference.csv (written by tests/reference/comparison.R)",
  paste0("# ", R.version.string),
  paste0("# survival ", packageVersion("survival"), "; MASS ", packageVersion("MASS"), "; lme4 ",
         packageVersion("lme4"), "; Matrix ", packageVersion("Matrix")),
  "# command: Rscript tests/reference/comparison.R (from the repository root)",
  "# tight coxph.control(eps = 1e-12, iter.max = 50, toler.chol = 1e-15); glm.control(epsilon = 1e-14);",
  "# polr control reltol = 1e-14; lmerControl nloptwrap with 1e-14 tolerances",
  paste0("# ", calls)
)
writeLines(prov, file.path(here, "comparison_reference_provenance.txt"))
cat("wrote", nrow(res), "values to", f, "\n")
