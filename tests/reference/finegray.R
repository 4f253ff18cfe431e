# Reference values of the Fine-Gray subdistribution hazards model for tests/test_finegray.py.
# cmprsk::crr(ftime, fstatus, cov1, failcode =, cencode =) on three data sets:
#   mgus2  survival::mgus2 (already stored as survival_mgus2.csv): time to plasma cell malignancy (pcm) with
#          death as the competing event, etime/event as in survival_details.R; covariates age, sex, hgb
#          (13 rows lack hgb: crr's na.omit drops them). Times in months, many ties. Fitted for both causes.
#   crrex  the example of cmprsk's help page ?crr: set.seed(10), 200 exponential times, status 0/1/2 at random,
#          three uniform covariates (no ties). Written to finegray_crrex.csv.
#   tied   a bmtcrr-like simulation: 300 subjects, two causes and censoring on a coarse integer time grid, so
#          failures of both causes and censorings share times; a binary and a continuous covariate and a
#          three-level factor. Written to finegray_tied.csv.
# crr is run twice: with its defaults (gtol = 1e-6, maxiter = 10: what users get) and to a tight tolerance
# (gtol = 1e-9, maxiter = 100), which shows how far crr's default stopping rule is from the optimum.
# With late entry (data set "delayed", which crr cannot fit) the reference is survival::finegray + coxph:
#   coxph(Surv(fgstart, fgstop, fgstatus) ~ x1 + x2 + cluster(subject), weights = fgwt, ties = "breslow",
#         data = finegray(Surv(entry, time, state) ~ ., data, etype = <cause>, id = id))
# Run from the repository root:  Rscript tests/reference/finegray.R
# Output: tests/reference/finegray_reference.csv with columns data, cause, fit, term, value
# (17 significant digits), and finegray_reference_provenance.txt.
suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
})
here <- "tests/reference"

rows <- list()
add <- function(data, cause, fit, term, value) {
  rows[[length(rows) + 1]] <<- data.frame(data = data, cause = cause, fit = fit, term = term, value = value)
}
record <- function(data, cause, ftime, fstatus, cov, failcode, cencode) {
  for (tight in c(FALSE, TRUE)) {
    fit <- if (tight) {
      crr(ftime, fstatus, cov, failcode = failcode, cencode = cencode, gtol = 1e-9, maxiter = 100)
    } else {
      crr(ftime, fstatus, cov, failcode = failcode, cencode = cencode)
    }
    label <- if (tight) "tight" else "default"
    add(data, cause, label, paste0("coef:", names(fit$coef)), unname(fit$coef))
    add(data, cause, label, paste0("se:", names(fit$coef)), sqrt(diag(fit$var)))
    add(data, cause, label, "loglik", fit$loglik)
    add(data, cause, label, "loglik_null", fit$loglik.null)
    add(data, cause, label, "n", fit$n)
    add(data, cause, label, "converged", as.numeric(fit$converged))
    # one covariance entry, so the off-diagonal of the sandwich is checked too
    add(data, cause, label, "var12", fit$var[1, 2])
    # the baseline (covariates 0) cumulative subdistribution hazard: its first jump, its value at the end
    add(data, cause, label, "baseline_first", fit$bfitj[1])
    add(data, cause, label, "baseline_total", sum(fit$bfitj))
    add(data, cause, label, "n_times", length(fit$uftime))
  }
}

# 1. mgus2: progression (pcm) with death as a competing event
mg <- survival::mgus2
mg$etime <- ifelse(mg$pstat == 0, mg$futime, mg$ptime)
mg$ecode <- ifelse(mg$pstat == 0, 2 * mg$death, 1)
cov <- model.matrix(~ age + sex + hgb, model.frame(~ age + sex + hgb, mg, na.action = na.pass))[, -1]
record("mgus2", "pcm", mg$etime, mg$ecode, cov, failcode = 1, cencode = 0)
record("mgus2", "death", mg$etime, mg$ecode, cov, failcode = 2, cencode = 0)

# 2. the example of ?crr
set.seed(10)
ftime <- rexp(200)
fstatus <- sample(0:2, 200, replace = TRUE)
cov <- matrix(runif(600), nrow = 200)
colnames(cov) <- c("x1", "x2", "x3")
write.csv(data.frame(ftime = ftime, fstatus = fstatus, cov), file.path(here, "finegray_crrex.csv"),
          row.names = FALSE)
record("crrex", "1", ftime, fstatus, cov, failcode = 1, cencode = 0)

# 3. tied times: cause 1 (relapse) and cause 2 (death in remission), administrative and random censoring
set.seed(20240613)
n <- 300
treat <- rbinom(n, 1, 0.5)
age <- round(rnorm(n, 40, 12))
stage <- sample(c("early", "mid", "late"), n, replace = TRUE, prob = c(0.4, 0.35, 0.25))
lp1 <- 0.6 * treat - 0.02 * (age - 40) + ifelse(stage == "late", 0.5, 0)
lp2 <- -0.3 * treat + 0.03 * (age - 40)
t1 <- rexp(n, 0.08 * exp(lp1))
t2 <- rexp(n, 0.05 * exp(lp2))
cens <- pmin(runif(n, 2, 30), 24)
time <- pmin(t1, t2, cens)
status <- ifelse(time == cens, 0, ifelse(t1 < t2, 1, 2))
time <- ceiling(time)  # whole months: many ties within and across causes and censoring
tied <- data.frame(time = time, status = status, treat = treat, age = age, stage = stage)
write.csv(tied, file.path(here, "finegray_tied.csv"), row.names = FALSE)
cov <- model.matrix(~ treat + age + stage, data = tied)[, -1]  # reference level "early" (sorted first)
record("tied", "1", tied$time, tied$status, cov, failcode = 1, cencode = 0)
record("tied", "2", tied$time, tied$status, cov, failcode = 2, cencode = 0)

# 4. late entry (left truncation), which crr cannot fit: survival::finegray's weights (Geskus 2011) and a
#    weighted Cox model with Breslow ties and a robust variance by subject. Written to finegray_delayed.csv.
set.seed(31)
n <- 400
x1 <- rbinom(n, 1, 0.5)
x2 <- round(rnorm(n), 2)
entry <- ifelse(runif(n) < 0.5, 0, sample(1:10, n, replace = TRUE))
t1 <- rexp(n, 0.05 * exp(0.5 * x1 - 0.3 * x2))
t2 <- rexp(n, 0.04 * exp(0.2 * x2))
cens <- runif(n, 5, 40)
time <- pmin(t1, t2, cens)
status <- ifelse(time == cens, 0, ifelse(t1 < t2, 1, 2))
time <- ceiling(time)
dl <- data.frame(id = seq_len(n), entry = entry, time = time, status = status, x1 = x1, x2 = x2)[time > entry, ]
write.csv(dl, file.path(here, "finegray_delayed.csv"), row.names = FALSE)
dl$state <- factor(dl$status, 0:2, labels = c("censor", "one", "two"))
dl$subject <- dl$id  # finegray drops the id column; a copy names the subject in the expanded rows
for (k in c("one", "two")) {
  fgd <- finegray(Surv(entry, time, state) ~ x1 + x2 + subject, data = dl, etype = k, id = id)
  fit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ x1 + x2 + cluster(subject), weights = fgwt, data = fgd,
               ties = "breslow", control = coxph.control(eps = 1e-12, iter.max = 50, toler.chol = 1e-15))
  cause <- if (k == "one") "1" else "2"
  add("delayed", cause, "finegray", paste0("coef:", names(coef(fit))), unname(coef(fit)))
  add("delayed", cause, "finegray", paste0("se:", names(coef(fit))), sqrt(diag(fit$var)))
  add("delayed", cause, "finegray", paste0("naive_se:", names(coef(fit))), sqrt(diag(fit$naive.var)))
  add("delayed", cause, "finegray", "loglik", fit$loglik[2])
  add("delayed", cause, "finegray", "loglik_null", fit$loglik[1])
  add("delayed", cause, "finegray", "n", nrow(dl))
}

# 5. cumulative incidence of promotion on "careers"-shaped start/stop rows (several rows per spell; the
#    non-final rows are "censored"): survfit with id = employee_id, so standard errors count people.
#    a. the six-spell example worked by hand in tests/test_finegray.py; b. 80 simulated spells, each cut into
#    one to three rows at whole days, two groups, tied times.
toy <- data.frame(
  employee_id = c("A", "A", "B", "C", "C", "D", "E", "E", "F"),
  start = c(0, 100, 0, 0, 220, 0, 0, 120, 0), stop = c(100, 200, 150, 220, 300, 250, 120, 200, 400),
  event_type = c("censored", "promotion", "voluntary", "censored", "censored", "involuntary", "censored",
                 "other", "promotion"),
  mentoring = c(1, 1, 1, 1, 1, 0, 0, 0, 0))
set.seed(7)
m <- 80
len <- ceiling(rexp(m, 1 / 300))
type <- sample(c("promotion", "voluntary", "involuntary", "other", "censored"), m, replace = TRUE,
               prob = c(0.35, 0.2, 0.1, 0.05, 0.3))
grp <- sample(0:1, m, replace = TRUE)
sim <- do.call(rbind, lapply(seq_len(m), function(i) {
  k <- sample(0:2, 1)
  cuts <- sort(unique(c(0, if (len[i] > 3 && k > 0) sample(seq_len(len[i] - 1), min(k, len[i] - 1)), len[i])))
  nr <- length(cuts) - 1
  data.frame(employee_id = sprintf("E%03d", i), start = cuts[-(nr + 1)], stop = cuts[-1],
             event_type = c(rep("censored", nr - 1), type[i]), mentoring = grp[i])
}))
write.csv(toy, file.path(here, "finegray_careers_toy.csv"), row.names = FALSE)
write.csv(sim, file.path(here, "finegray_careers_sim.csv"), row.names = FALSE)
states <- c("censored", "involuntary", "other", "promotion", "voluntary")
for (nm in c("careers_toy", "careers_sim")) {
  d <- if (nm == "careers_toy") toy else sim
  d$state <- factor(d$event_type, levels = states)
  fit <- survfit(Surv(start, stop, state) ~ mentoring, data = d, id = employee_id)
  s <- summary(fit, times = c(100, 200, 250, 400))
  for (g in c(0, 1)) {
    rows_g <- s$strata == paste0("mentoring=", g)
    for (k in states[-1]) {
      add(nm, k, paste0("group", g), paste0("cif_", s$time[rows_g]), s$pstate[rows_g, match(k, s$states)])
      add(nm, k, paste0("group", g), paste0("se_", s$time[rows_g]), s$std.err[rows_g, match(k, s$states)])
    }
  }
}

out <- do.call(rbind, rows)
out$value <- format(out$value, digits = 17)
write.csv(out, file.path(here, "finegray_reference.csv"), row.names = FALSE)
writeLines(c(paste0("# ", R.version$version.string),
             paste0("# cmprsk ", packageVersion("cmprsk"), ", survival ", packageVersion("survival")),
             "# command: Rscript tests/reference/finegray.R (from the repository root)",
             "# data: survival::mgus2 (survival_mgus2.csv), the ?crr example (finegray_crrex.csv),",
             "#       a tied-times simulation (finegray_tied.csv), late entry (finegray_delayed.csv),",
             "#       careers-shaped rows (finegray_careers_*.csv)"),
           file.path(here, "finegray_reference_provenance.txt"))
