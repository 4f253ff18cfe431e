# Reference values of the restricted mean survival time for tests/test_retention.py (base R + survival only).
# Input: tests/reference/retention_input_person.csv (from retention_data.py).
# Run from the repository root:  Rscript tests/reference/rmst.R
# Output: tests/reference/rmst_reference.csv with columns case, group, horizon, rmean, se
# (summary(survfit(...), rmean = horizon)$table[, c("rmean", "se(rmean)")]).
suppressPackageStartupMessages(library(survival))
here <- "tests/reference"
person <- read.csv(file.path(here, "retention_input_person.csv"), stringsAsFactors = FALSE)
late <- person[person$entry > 100, ]  # only late entrants: the curve is 1 from tenure 0 to the first entry

rows <- list()
add <- function(case, fit, horizon) {
  tab <- summary(fit, rmean = horizon)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  group <- if (is.null(rownames(tab))) "all" else sub("^department=", "", rownames(tab))
  rows[[length(rows) + 1]] <<- data.frame(case = case, group = group, horizon = horizon,
                                          rmean = tab[, "rmean"], se = tab[, "se(rmean)"])
}
add("right_censored", survfit(Surv(exit, event) ~ 1, data = person), 730.5)
add("delayed_entry", survfit(Surv(entry, exit, event) ~ 1, data = person), 1461)
add("delayed_entry_by_department", survfit(Surv(entry, exit, event) ~ department, data = person), 730.5)
add("late_entrants", survfit(Surv(entry, exit, event) ~ 1, data = late), 730.5)
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "rmst_reference.csv"), row.names = FALSE)
writeLines(c(paste("# R", R.version$major, ".", R.version$minor, sep = ""),
             paste("# survival", packageVersion("survival"))),
           file.path(here, "rmst_reference_provenance.txt"))
