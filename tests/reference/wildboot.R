# Reference values of the wild cluster restricted (WCR) bootstrap for tests/test_wildboot.py, base R only:
# every bootstrap sample is refitted with all the dummies (no algebraic shortcut), over all 2^12 Rademacher
# sign patterns of the 12 plants, so the numbers are exact (no random draws).
# Run from the repository root:  Rscript tests/reference/wildboot.R
# Data: datasets::CO2 (12 plants, 7 CO2 concentrations). Model:
#   lm(uptake ~ chilled + mississippi + factor(conc), weights = w), clusters = Plant (6 of 12 chilled),
#   the conc fixed effects cross the clusters; w = 1 + 0.5 (conc >= 500) + 0.25 (plant number %% 3) for
#   the weighted case (written to the data file).
# Test: H0 chilled = 0 (p_value) and chilled = -5 (p_value_minus5), CR1 t (G/(G-1) (N-1)/(N-K)), symmetric p = mean(|t*| >= |t| (1 - 1e-10)); the
# interval is the set of nulls with p > 0.05, each bound located by doubling then bisection to 1e-10 SE.
# Output:
#   tests/reference/wildboot_co2.csv        Plant, Type, Treatment, conc, uptake, w
#   tests/reference/wildboot_reference.csv  case, quantity, value (17 significant digits)
#   tests/reference/wildboot_reference_provenance.txt
here <- "tests/reference"
d <- datasets::CO2
d$w <- 1 + 0.5 * (d$conc >= 500) + 0.25 * (as.integer(d$Plant) %% 3)
write.csv(data.frame(Plant = as.character(d$Plant), Type = as.character(d$Type),
                     Treatment = as.character(d$Treatment), conc = d$conc, uptake = sprintf("%.17g", d$uptake),
                     w = sprintf("%.17g", d$w)),
          file.path(here, "wildboot_co2.csv"), row.names = FALSE, quote = FALSE)
d <- read.csv(file.path(here, "wildboot_co2.csv"))
d$chilled <- as.numeric(d$Treatment == "chilled")
d$mississippi <- as.numeric(d$Type == "Mississippi")
cl <- as.integer(factor(d$Plant, levels = unique(d$Plant)))
G <- max(cl)
X <- model.matrix(~ chilled + mississippi + factor(conc), data = d)
k <- which(colnames(X) == "chilled")
signs <- t(as.matrix(expand.grid(rep(list(c(-1, 1)), G))))  # G x 2^G: every pattern once

wcr <- function(w, alpha = 0.05) {
  r <- sqrt(w)
  Xs <- X * r
  ys <- d$uptake * r
  n <- nrow(Xs); K <- ncol(Xs)
  factor <- G / (G - 1) * (n - 1) / (n - K)
  bread <- solve(crossprod(Xs))
  h <- Xs %*% bread[, k]
  tstat <- function(Y, b0) {  # Y: n x B outcomes; CR1 t of coefficient k = b0 for each column
    beta <- bread %*% crossprod(Xs, Y)
    E <- Y - Xs %*% beta
    score <- rowsum(as.vector(h) * E, cl)
    (beta[k, ] - b0) / sqrt(factor * colSums(score^2))
  }
  est <- (bread %*% crossprod(Xs, ys))[k]
  se <- unname(est / tstat(matrix(ys), 0))
  pval <- function(b0) {
    yr <- ys - b0 * Xs[, k]
    rfit <- lm.fit(Xs[, -k, drop = FALSE], yr)
    u <- rfit$residuals
    Ystar <- (ys - u) + u * signs[cl, ]
    t0 <- abs(tstat(matrix(ys), b0))
    mean(abs(tstat(Ystar, b0)) >= t0 * (1 - 1e-10))
  }
  bound <- function(sign) {
    inside <- est; width <- 2 * se; outside <- est + sign * width
    while (pval(outside) > alpha) { inside <- outside; width <- 2 * width; outside <- est + sign * width }
    while (abs(outside - inside) > 1e-10 * se) {
      mid <- (inside + outside) / 2
      if (pval(mid) > alpha) inside <- mid else outside <- mid
    }
    (inside + outside) / 2
  }
  c(estimate = est, std_error = se, p_value = pval(0), p_value_minus5 = pval(-5), conf_low = bound(-1),
    conf_high = bound(1),
    n_boot = ncol(signs))
}
out <- rbind(
  data.frame(case = "unweighted", quantity = names(wcr(rep(1, nrow(d)))), value = wcr(rep(1, nrow(d)))),
  data.frame(case = "weighted", quantity = names(wcr(d$w)), value = wcr(d$w))
)
out$value <- sprintf("%.17g", out$value)
write.csv(out, file.path(here, "wildboot_reference.csv"), row.names = FALSE, quote = FALSE)
writeLines(c(paste("#", R.version.string), "# base R only (stats::lm.fit, datasets::CO2)",
             "# command: Rscript tests/reference/wildboot.R (from the repository root)"),
           file.path(here, "wildboot_reference_provenance.txt"))
