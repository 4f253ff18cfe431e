# Reference values for the claims scorecard (tests/test_scorecard.py).
# Run from the repository root: Rscript tests/reference/scorecard.R
# Writes tests/reference/scorecard_chickweight.csv (the data, R's datasets::ChickWeight),
# tests/reference/scorecard_reference.csv and tests/reference/scorecard_reference_provenance.txt.
suppressPackageStartupMessages(library(sandwich))
out_dir <- "tests/reference"

# 1. Inverted U with cluster-robust errors: weight on Time and Time^2, clustered by chick (50 chicks).
d <- data.frame(chick = as.integer(as.character(ChickWeight$Chick)), time = ChickWeight$Time,
                weight = ChickWeight$weight)
write.csv(d, file.path(out_dir, "scorecard_chickweight.csv"), row.names = FALSE)
lin <- lm(weight ~ time, data = d)
quad <- lm(weight ~ time + I(time^2), data = d)
v_lin <- vcovCL(lin, cluster = ~chick, type = "HC1")
v_quad <- vcovCL(quad, cluster = ~chick, type = "HC1")
b <- coef(quad)
turn <- -b[2] / (2 * b[3])
grad <- c(0, -1 / (2 * b[3]), b[2] / (2 * b[3]^2))
se_turn <- sqrt(drop(t(grad) %*% v_quad %*% grad))
rows <- data.frame(
  quantity = c("linear_estimate", "linear_std_error", "quadratic_estimate", "quadratic_std_error",
               "turning_point", "turning_point_std_error"),
  value = c(coef(lin)[2], sqrt(v_lin[2, 2]), b[3], sqrt(v_quad[3, 3]), turn, se_turn))

# 2. Holm across a family of p-values.
p <- c(0.001, 0.2, 0.013, 0.04, 0.0004, 0.6, 0.03)
holm <- p.adjust(p, "holm")
rows <- rbind(rows, data.frame(quantity = paste0("holm_", seq_along(p)), value = holm),
              data.frame(quantity = paste0("p_", seq_along(p)), value = p))

write.csv(rows, file.path(out_dir, "scorecard_reference.csv"), row.names = FALSE)
writeLines(c(
  "# Provenance of scorecard_reference.csv (written by tests/reference/scorecard.R)",
  paste("#", R.version.string),
  paste("# sandwich", as.character(packageVersion("sandwich"))),
  "# command: Rscript tests/reference/scorecard.R (from the repository root)",
  "# data: datasets::ChickWeight (weight, Time, Chick as integer) -> scorecard_chickweight.csv",
  "# linear: lm(weight ~ time), sandwich::vcovCL(cluster = ~chick, type = 'HC1')",
  "# quadratic: lm(weight ~ time + I(time^2)), vcovCL(cluster = ~chick, type = 'HC1');",
  "#   turning point -b1 / (2 b2), delta-method standard error from that covariance",
  "# holm: p.adjust(c(0.001, 0.2, 0.013, 0.04, 0.0004, 0.6, 0.03), 'holm')"
), file.path(out_dir, "scorecard_reference_provenance.txt"))
