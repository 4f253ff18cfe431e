# Reference values of multiway cluster-robust covariances for tests/test_estimators.py and
# tests/test_engagement.py (R + sandwich only), on sandwich's own PetersenCL data.
# Run from the repository root:  Rscript tests/reference/multiway.R
# Output:
#   tests/reference/multiway_data.csv       PetersenCL (firm, year, x, y) plus
#       yb = as.integer(y > 0) (a 0/1 outcome for the logit) and
#       region = (firm + year) %% 5 (a third cluster dimension, crossed with both);
#   tests/reference/multiway_reference.csv  case, model, cluster, multi0, fix, row, col, value:
#       every entry of sandwich::vcovCL(fit, cluster = ~ ..., type = "HC1", ...);
#   tests/reference/multiway_reference_provenance.txt  R and sandwich versions.
# Numbers are written with 17 significant digits (write.csv keeps only 15); the glm is iterated to
# epsilon = 1e-14 (its default 1e-8 leaves the logit variance about 1e-10 from the optimum).
suppressPackageStartupMessages(library(sandwich))
here <- "tests/reference"
data("PetersenCL", package = "sandwich")
d <- PetersenCL
d$yb <- as.integer(d$y > 0)
d$region <- (d$firm + d$year) %% 5
g17 <- function(v) sprintf("%.17g", v)
write.csv(data.frame(firm = d$firm, year = d$year, x = g17(d$x), y = g17(d$y), yb = d$yb, region = d$region),
          file.path(here, "multiway_data.csv"), row.names = FALSE, quote = FALSE)
# read back what the tests read, so R and Python fit the same numbers
d <- read.csv(file.path(here, "multiway_data.csv"))

fits <- list(lm = lm(y ~ x, data = d), logit = glm(yb ~ x, data = d, family = binomial,
                                                 control = glm.control(epsilon = 1e-14, maxit = 100)))
cases <- list(
  list(cluster = "firm", multi0 = FALSE, fix = FALSE),
  list(cluster = "firm + year", multi0 = FALSE, fix = FALSE),
  list(cluster = "firm + year", multi0 = TRUE, fix = FALSE),
  list(cluster = "firm + year + region", multi0 = FALSE, fix = FALSE),
  list(cluster = "firm + year + region", multi0 = FALSE, fix = TRUE)
)
rows <- list()
for (model in names(fits)) {
  for (cs in cases) {
    v <- vcovCL(fits[[model]], cluster = as.formula(paste("~", cs$cluster)), type = "HC1",
                multi0 = cs$multi0, fix = cs$fix)
    case <- paste0(model, ": ", cs$cluster, if (cs$multi0) " (multi0)" else "", if (cs$fix) " (fix)" else "")
    for (i in seq_len(nrow(v))) for (j in seq_len(ncol(v))) {
      rows[[length(rows) + 1]] <- data.frame(case = case, model = model, cluster = cs$cluster,
                                             multi0 = cs$multi0, fix = cs$fix,
                                             row = rownames(v)[i], col = colnames(v)[j], value = g17(v[i, j]))
    }
  }
  rows[[length(rows) + 1]] <- data.frame(case = paste0(model, ": coefficients"), model = model, cluster = "",
                                         multi0 = FALSE, fix = FALSE, row = names(coef(fits[[model]])),
                                         col = "estimate", value = g17(coef(fits[[model]])))
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "multiway_reference.csv"), row.names = FALSE)
writeLines(c(paste("# R", R.version$major, ".", R.version$minor, sep = ""),
             paste("# sandwich", packageVersion("sandwich")),
             "# vcovCL defaults used unless the case says otherwise: cadjust = TRUE, multi0 = FALSE, fix = FALSE"),
           file.path(here, "multiway_reference_provenance.txt"))
