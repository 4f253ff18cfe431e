# Reference values of the per-group effects and heterogeneity tests of tests/test_heterogeneity.py
# (base R + survival + sandwich; no car: the Wald tests are coded by hand below).
# Data: R's own ChickWeight (datasets) and cgd (survival), exported beside this script.
# Run from the repository root:  Rscript tests/reference/heterogeneity.R
# Output: tests/reference/heterogeneity_reference.csv, long form: model, term, quantity, value.
suppressPackageStartupMessages({library(survival); library(sandwich)})
here <- "tests/reference"

# ---- engagement-like: OLS with one slope of Time per Diet, clustered by chick
chick <- data.frame(weight = ChickWeight$weight, Time = ChickWeight$Time,
                    Chick = as.character(ChickWeight$Chick), Diet = as.character(ChickWeight$Diet))
write.csv(chick, file.path(here, "heterogeneity_chickweight.csv"), row.names = FALSE)
chick$Diet <- factor(chick$Diet)

# Wald test that the slopes (coefficients `idx`) are all equal: contrasts of each against the first.
wald <- function(b, V, idx) {
  L <- matrix(0, length(idx) - 1, length(b))
  L[, idx[1]] <- -1
  L[cbind(seq_len(length(idx) - 1), idx[-1])] <- 1
  d <- L %*% b
  c(W = drop(t(d) %*% solve(L %*% V %*% t(L)) %*% d), q = nrow(L))
}
rows <- list()
add <- function(model, term, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, term = term, quantity = quantity, value = unname(value))
}
per_group <- function(model, b, se, idx, groups, q_one, q_adj) {
  p <- 2 * pnorm(-abs(b[idx] / se[idx]))
  for (i in seq_along(idx)) {
    g <- groups[i]
    add(model, g, "estimate", b[idx[i]])
    add(model, g, "std_error", se[idx[i]])
    add(model, g, "conf_low_adjusted", b[idx[i]] - q_adj * se[idx[i]])
    add(model, g, "conf_high_adjusted", b[idx[i]] + q_adj * se[idx[i]])
  }
  p
}

fit <- lm(weight ~ Diet + Diet:Time, data = chick)
b <- coef(fit)
idx <- grep(":Time$", names(b))
groups <- levels(chick$Diet)
k <- length(idx)
# clustered: sandwich::vcovCL(type = "HC1"), normal reference for each slope, F(q, G - 1) for the joint test
Vcl <- vcovCL(fit, cluster = ~Chick, type = "HC1")
secl <- sqrt(diag(Vcl))
p <- per_group("ols_cluster", b, secl, idx, groups, qnorm(0.975), qnorm(1 - 0.05 / (2 * k)))
ph <- p.adjust(p, "holm")
for (i in seq_along(idx)) add("ols_cluster", groups[i], "p_adjusted", ph[i])
w <- wald(b, Vcl, idx)
G <- length(unique(chick$Chick))
add("ols_cluster", "heterogeneity", "wald", w["W"])
add("ols_cluster", "heterogeneity", "statistic", w["W"] / w["q"])  # F on (q, G - 1)
add("ols_cluster", "heterogeneity", "df", w["q"])
add("ols_cluster", "heterogeneity", "df_denom", G - 1)
add("ols_cluster", "heterogeneity", "p_value", pf(w["W"] / w["q"], w["q"], G - 1, lower.tail = FALSE))
# model-based: t on the residual df, F test equal to anova of the nested models
V <- vcov(fit)
se <- sqrt(diag(V))
for (i in seq_along(idx)) {
  add("ols", groups[i], "estimate", b[idx[i]])
  add("ols", groups[i], "std_error", se[idx[i]])
  add("ols", groups[i], "conf_low_adjusted", b[idx[i]] - qt(1 - 0.05 / (2 * k), df.residual(fit)) * se[idx[i]])
  add("ols", groups[i], "conf_high_adjusted", b[idx[i]] + qt(1 - 0.05 / (2 * k), df.residual(fit)) * se[idx[i]])
}
nested <- anova(lm(weight ~ Diet + Time, data = chick), fit)
w <- wald(b, V, idx)
add("ols", "heterogeneity", "statistic", w["W"] / w["q"])
add("ols", "heterogeneity", "anova_F", nested$F[2])
add("ols", "heterogeneity", "df", w["q"])
add("ols", "heterogeneity", "df_denom", df.residual(fit))
add("ols", "heterogeneity", "p_value", pf(w["W"] / w["q"], w["q"], df.residual(fit), lower.tail = FALSE))

# ---- retention-like: Cox on start/stop rows, one treatment effect per hospital category, clustered by patient
cgd2 <- data.frame(id = cgd$id, tstart = cgd$tstart, tstop = cgd$tstop, status = cgd$status,
                   treated = as.integer(cgd$treat == "rIFN-g"), age = cgd$age, hos_cat = as.character(cgd$hos.cat))
write.csv(cgd2, file.path(here, "heterogeneity_cgd.csv"), row.names = FALSE)
cgd2$hos_cat <- factor(cgd2$hos_cat, levels = sort(unique(cgd2$hos_cat)))
cfit <- coxph(Surv(tstart, tstop, status) ~ hos_cat + hos_cat:treated + age + cluster(id), data = cgd2, ties = "efron")
b <- coef(cfit)
idx <- grep(":treated$", names(b))
groups <- levels(cgd2$hos_cat)
k <- length(idx)
se <- sqrt(diag(cfit$var))  # robust (cluster(id))
p <- per_group("cox_cluster", b, se, idx, groups, qnorm(0.975), qnorm(1 - 0.05 / (2 * k)))
ph <- p.adjust(p, "holm")
for (i in seq_along(idx)) add("cox_cluster", groups[i], "p_adjusted", ph[i])
w <- wald(b, cfit$var, idx)
add("cox_cluster", "heterogeneity", "statistic", w["W"])
add("cox_cluster", "heterogeneity", "df", w["q"])
add("cox_cluster", "heterogeneity", "p_value", pchisq(w["W"], w["q"], lower.tail = FALSE))
# the same hypothesis as the interaction terms of treated * hos_cat (another parametrisation)
ifit <- coxph(Surv(tstart, tstop, status) ~ treated * hos_cat + age + cluster(id), data = cgd2, ties = "efron")
bi <- coef(ifit)
ii <- grep("^treated:", names(bi))
wi <- drop(t(bi[ii]) %*% solve(ifit$var[ii, ii]) %*% bi[ii])
add("cox_cluster", "heterogeneity", "interaction_wald", wi)

out <- do.call(rbind, rows)
write.csv(out, file.path(here, "heterogeneity_reference.csv"), row.names = FALSE)
writeLines(c(paste("# R ", R.version$major, ".", R.version$minor, sep = ""),
             paste("# survival", packageVersion("survival")),
             paste("# sandwich", packageVersion("sandwich")),
             "# command: Rscript tests/reference/heterogeneity.R (from the repository root)",
             "# data: datasets::ChickWeight, survival::cgd (treated = treat == 'rIFN-g'), exported as heterogeneity_*.csv"),
           file.path(here, "heterogeneity_reference_provenance.txt"))
