# Reference values for alignment_research.measures (scale reliability), from R psych.
# Regenerate with:  Rscript tests/reference/measures.R   (from the repository root)
# Writes tests/reference/measures_input.csv (the fixed data set: two Likert scales, complete
# responses, generated here with a fixed seed) and tests/reference/measures_output.csv
# (tidy long form: scale, item, quantity, value).
suppressMessages(library(psych))
here <- "tests/reference"

set.seed(20261129)
n <- 300
f <- rnorm(n)
likert <- function(lam) pmin(5, pmax(1, round(3 + lam * f + rnorm(n, sd = sqrt(1 - lam^2)))))
engagement <- sapply(c(0.8, 0.7, 0.6, 0.5, 0.4), likert)
colnames(engagement) <- paste0("engagement_", 1:5)
g <- rnorm(n)
alignment <- sapply(c(0.7, 0.6, 0.5), function(lam) pmin(5, pmax(1, round(3 + lam * g + rnorm(n, sd = sqrt(1 - lam^2))))))
colnames(alignment) <- paste0("alignment_", 1:3)
data <- data.frame(engagement, alignment)
write.csv(data, file.path(here, "measures_input.csv"), row.names = FALSE)

rows <- list()
add <- function(scale, item, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(scale = scale, item = as.character(item), quantity = quantity,
                                          value = as.numeric(unlist(value))[1])
}
for (scale in c("engagement", "alignment")) {
  x <- as.matrix(data[, grep(paste0("^", scale, "_"), names(data))])
  a <- psych::alpha(x)                                  # psych::alpha(x)
  add(scale, NA, "raw_alpha", a$total$raw_alpha)        # a$total$raw_alpha
  add(scale, NA, "std_alpha", a$total$std.alpha)        # a$total$std.alpha
  add(scale, NA, "average_r", a$total$average_r)        # a$total$average_r
  add(scale, NA, "feldt_lower", a$feldt$lower.ci)       # a$feldt$lower.ci (95%)
  add(scale, NA, "feldt_upper", a$feldt$upper.ci)       # a$feldt$upper.ci (95%)
  fa1 <- psych::fa(x, nfactors = 1, fm = "minres")      # one-factor minres
  add(scale, NA, "omega_total", 1 - sum(fa1$uniquenesses) / sum(cor(x)))  # = psych::omega(x, nfactors = 1)$omega.tot
  for (j in seq_len(ncol(x))) {
    item <- colnames(x)[j]
    add(scale, item, "r_drop", a$item.stats[item, "r.drop"])        # a$item.stats$r.drop
    add(scale, item, "alpha_drop", a$alpha.drop[item, "raw_alpha"]) # a$alpha.drop$raw_alpha
    add(scale, item, "mean", a$item.stats[item, "mean"])
    add(scale, item, "sd", a$item.stats[item, "sd"])
    add(scale, item, "loading", fa1$loadings[j, 1])
  }
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "measures_output.csv"), row.names = FALSE)
cat("R", R.version$major, ".", R.version$minor, " psych ", as.character(packageVersion("psych")), "\n", sep = "")
