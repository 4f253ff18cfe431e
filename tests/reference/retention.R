# Reference values for tests/test_retention.py (base R + survival only).
# Chain: tests/reference/retention_data.py -> this script -> tests/reference/retention_*.csv
# Run from the repository root:  Rscript tests/reference/retention.R
# Output: tidy long csv with columns model, term, quantity, value.
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
intervals <- read.csv(file.path(here, "retention_input_intervals.csv"), stringsAsFactors = FALSE)
person <- read.csv(file.path(here, "retention_input_person.csv"), stringsAsFactors = FALSE)
monthly <- read.csv(file.path(here, "retention_input_monthly.csv"), stringsAsFactors = FALSE)
tight <- coxph.control(eps = 1e-12, iter.max = 50, toler.chol = 1e-15)

rows <- list()
add <- function(model, term, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, term = term, quantity = quantity, value = as.numeric(value))
}
add_cox <- function(model, fit) {
  b <- coef(fit)
  add(model, names(b), "coef", b)
  add(model, names(b), "se", sqrt(diag(fit$var)))
  if (!is.null(fit$naive.var)) add(model, names(b), "naive_se", sqrt(diag(fit$naive.var)))
  add(model, "", "loglik", fit$loglik[2])
  add(model, "", "loglik_null", fit$loglik[1])
  add(model, "", "concordance", fit$concordance["concordance"])
  add(model, "", "concordant", fit$concordance["concordant"])
  add(model, "", "discordant", fit$concordance["discordant"])
  add(model, "", "tied_x", fit$concordance["tied.x"])
  add(model, "", "n", fit$n)
  add(model, "", "nevent", fit$nevent)
}
add_zph <- function(model, fit) {
  z <- cox.zph(fit)  # transform = "km", terms = TRUE (survival >= 3.0 score test)
  add(model, rownames(z$table), "zph_chisq", z$table[, "chisq"])
  add(model, rownames(z$table), "zph_df", z$table[, "df"])
  add(model, rownames(z$table), "zph_p", z$table[, "p"])
  # scaled Schoenfeld residuals of the first term, in event-time order
  add(model, colnames(z$y)[1], "zph_resid_first", z$y[1:5, 1])
  add(model, colnames(z$y)[1], "zph_x_first", z$x[1:5])
}

# 1. time-varying Cox, Efron, cluster-robust by manager
f1 <- coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating +
              factor(job_level) + cluster(manager_id), data = intervals, ties = "efron", control = tight)
add_cox("cox_intervals", f1)
add_zph("cox_intervals", f1)
# 2. stratified by department, Efron, cluster
f2 <- coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating +
              strata(department) + cluster(manager_id), data = intervals, control = tight)
add_cox("cox_intervals_strata", f2)
add_zph("cox_intervals_strata", f2)
# 3. Breslow ties, model-based errors
f3 <- coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating,
            data = intervals, ties = "breslow", control = tight)
add_cox("cox_intervals_breslow", f3)
add_zph("cox_intervals_breslow", f3)
z3 <- cox.zph(f3, transform = "identity")
add("zph_identity_breslow", rownames(z3$table), "zph_chisq", z3$table[, "chisq"])
# 4. person table with delayed entry ("ever" coding), cluster
f4 <- coxph(Surv(entry, exit, event) ~ manager_ever_program + factor(job_level) + cluster(manager_id),
            data = person, control = tight)
add_cox("cox_person", f4)
# 4b. person table without delayed entry (right-censored), model-based
f4b <- coxph(Surv(exit, event) ~ manager_ever_program + factor(job_level), data = person, control = tight)
add_cox("cox_person_right", f4b)
# 5. heavy ties (monthly times), Efron, cluster
f5 <- coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating +
              job_level + cluster(manager_id), data = monthly, control = tight)
add_cox("cox_monthly", f5)
add_zph("cox_monthly", f5)
# 5b. same with R's default control (what a user of R gets)
f5d <- coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating +
               job_level + cluster(manager_id), data = monthly)
add("cox_monthly_default", names(coef(f5d)), "coef", coef(f5d))
add("cox_monthly_default", names(coef(f5d)), "se", sqrt(diag(f5d$var)))

# 6. Kaplan-Meier with delayed entry (conf.type = "log", R's default)
times <- c(30, 182.625, 365.25, 730.5, 1461)
km_add <- function(model, fit) {
  s <- summary(fit, times = times, extend = TRUE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("department=", "", as.character(s$strata))
  add(model, paste(grp, s$time, sep = "@"), "surv", s$surv)
  add(model, paste(grp, s$time, sep = "@"), "lower", s$lower)
  add(model, paste(grp, s$time, sep = "@"), "upper", s$upper)
  add(model, paste(grp, s$time, sep = "@"), "n.risk", s$n.risk)
  q <- quantile(fit, probs = 0.5)
  g <- if (is.null(names(fit$strata))) "all" else sub("department=", "", names(fit$strata))
  add(model, g, "median", q$quantile)
  add(model, g, "median_lower", q$lower)
  add(model, g, "median_upper", q$upper)
}
km_add("km_all", survfit(Surv(entry, exit, event) ~ 1, data = person))
km_add("km_department", survfit(Surv(entry, exit, event) ~ department, data = person))

# 7. log-rank: survdiff (right-censored only, so entry ignored) ...
sd <- survdiff(Surv(exit, event) ~ department, data = person)
add("logrank_right", sub("department=", "", names(sd$n)), "observed", sd$obs)
add("logrank_right", sub("department=", "", names(sd$n)), "expected", sd$exp)
add("logrank_right", "", "chisq", sd$chisq)
# ... and with delayed entry: hypergeometric log-rank from survfit's risk sets (entry < t <= exit)
kmg <- survfit(Surv(entry, exit, event) ~ department, data = person)
grp <- rep(sub("department=", "", names(kmg$strata)), kmg$strata)
lv <- sort(unique(grp))
tt <- sort(unique(person$exit[person$event == 1]))
nr <- sapply(lv, function(g) sapply(tt, function(t) sum(person$department == g & person$entry < t & person$exit >= t)))
dd <- sapply(lv, function(g) sapply(tt, function(t) sum(person$department == g & person$exit == t & person$event == 1)))
n <- rowSums(nr); d <- rowSums(dd)
E <- colSums(d * nr / n); O <- colSums(dd)
fac <- ifelse(n > 1, d * (n - d) / (n - 1), 0)
V <- diag(colSums(fac * nr / n)) - t(nr / n) %*% (fac * nr / n)
k <- length(lv) - 1
chisq <- drop(t(O - E)[1:k] %*% solve(V[1:k, 1:k], (O - E)[1:k]))
add("logrank_entry", lv, "observed", O)
add("logrank_entry", lv, "expected", E)
add("logrank_entry", "", "chisq", chisq)

# 8. Aalen-Johansen cumulative incidence with delayed entry (multi-state survfit)
person$state <- factor(person$event_type, levels = c("censored", "involuntary", "other", "voluntary"))
person$id <- paste(person$employee_id, person$spell)
aj <- survfit(Surv(entry, exit, state) ~ 1, data = person, id = id)
s <- summary(aj, times = times, extend = TRUE)
for (st in c("involuntary", "other", "voluntary")) {
  j <- match(st, s$states)
  add("aj", paste(st, s$time, sep = "@"), "pstate", s$pstate[, j])
  add("aj", paste(st, s$time, sep = "@"), "std.err", s$std.err[, j])
  add("aj", paste(st, s$time, sep = "@"), "lower", s$lower[, j])
  add("aj", paste(st, s$time, sep = "@"), "upper", s$upper[, j])
}

out <- do.call(rbind, rows)
write.csv(out, file.path(here, "retention_reference.csv"), row.names = FALSE)
writeLines(c(
  "# Provenance of retention_reference.csv (written by tests/reference/retention.R)",
  paste("#", R.version.string),
  paste("# survival", as.character(packageVersion("survival"))),
  "# inputs: retention_input_*.csv from tests/reference/retention_data.py",
  "# calls:",
  "#  cox_intervals: coxph(Surv(start, stop, event) ~ alignment_cascade + engagement + manager_program + manager_rating + factor(job_level) + cluster(manager_id), ties='efron', control=coxph.control(eps=1e-12, iter.max=50))",
  "#  cox_intervals_strata: ... + strata(department) + cluster(manager_id)",
  "#  cox_intervals_breslow: ties='breslow', no cluster",
  "#  cox_person: coxph(Surv(entry, exit, event) ~ manager_ever_program + factor(job_level) + cluster(manager_id), data=person)",
  "#  cox_person_right: coxph(Surv(exit, event) ~ manager_ever_program + factor(job_level), data=person)",
  "#  zph_identity_breslow: cox.zph(breslow fit, transform='identity')",
  "#  cox_monthly(_default): monthly ties data, tight / default coxph.control",
  "#  zph_*: cox.zph(fit) (transform='km', terms=TRUE)",
  "#  km_*: survfit(Surv(entry, exit, event) ~ 1 | department), summary(times=c(30,182.625,365.25,730.5,1461)), quantile(fit, 0.5)",
  "#  logrank_right: survdiff(Surv(exit, event) ~ department); logrank_entry: hypergeometric log-rank from risk sets entry < t <= exit",
  "#  aj: survfit(Surv(entry, exit, factor(event_type)) ~ 1, id=paste(employee_id, spell)); summary(times=...)"
), file.path(here, "retention_reference_provenance.txt"))
cat("wrote", nrow(out), "rows\n")
