"""Benchmark: ``fit_group_effects`` of the primary models (who the effects work for), this tree against another.

Usage::

    python benchmarks/bench_group_effects.py STUDY [--cache DIR] [--baseline TREE] [--repeats 3]

Opens the study (``ar.open_clean(STUDY, cache_dir=DIR)``, or cleans it when
no cache is given), takes ``primary_analysis``'s retention and engagement
data and formulas, and times ``fit_group_effects`` on them exactly as
``primary_group_effects`` calls it (8 fits each: two terms by four grouping
columns), in CPU seconds. ``--baseline TREE`` (a folder holding
``alignment_research/``, e.g. ``git archive main | tar -x -C TREE``) is
imported beside this tree under another name and timed in the same process,
alternating with it, after one warm-up call each; the outputs are compared
(``tidy()``, ``glance()``, and each fit's ``tidy()``, ``glance()`` and
covariance, exactly). Set ``OPENBLAS_NUM_THREADS=1`` as the run's kernels do.
Prints a markdown table: medians of ``--repeats`` calls and their ratio.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import alignment_research as ar  # noqa: E402
from alignment_research import primary  # noqa: E402

TERMS = ["alignment_cascade", "manager_program"]


def _inputs(study: str, cache: str | None) -> dict:
    clean = ar.open_clean(study, cache_dir=cache) if cache else ar.clean_study(ar.load_study(study))
    p = primary.primary_analysis(clean, warn=False)
    cox = dict(model="cox", start="start", stop="stop")
    return {"retention": (p.retention_data.data, p.retention_data.formula, cox),
            "engagement": (p.engagement_data.data, p.engagement_data.formula, {}),
            "person": clean.analysis.person, "min_group_size": p.min_group_size}


def _baseline_module(tree: str):
    """The baseline tree's postestimation module, imported as ``ar_baseline`` (its imports are all relative)."""
    folder = Path(tempfile.mkdtemp(prefix="bench_group_effects_"))
    shutil.copytree(Path(tree) / "alignment_research", folder / "ar_baseline")
    sys.path.insert(0, str(folder))
    return importlib.import_module("ar_baseline.postestimation")


def _call(module, inputs, outcome):
    data, formula, survival = inputs[outcome]
    start = time.process_time()
    result = module.fit_group_effects(data, formula, term=TERMS, by=list(primary.WHO_BY), baseline=inputs["person"],
                                      cluster="manager_id", min_group_size=inputs["min_group_size"], **survival)
    return time.process_time() - start, result


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.tidy(), b.tidy(), check_exact=True)
    pd.testing.assert_frame_equal(a.glance(), b.glance(), check_exact=True)
    for key, fit in a.extras["fits"].items():
        other = b.extras["fits"][key]
        pd.testing.assert_frame_equal(fit.tidy(), other.tidy(), check_exact=True)
        pd.testing.assert_frame_equal(fit.glance(), other.glance(), check_exact=True)
        np.testing.assert_array_equal(_covariance(fit), _covariance(other))


def _covariance(fit) -> np.ndarray:
    """A fit's reported covariance: OLS ``cov_params``, Cox (a ``CoxFit`` engine state) ``model.var``."""
    cov = getattr(fit, "cov_params", None)
    return np.asarray(fit.model.var if cov is None or callable(cov) else cov)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study")
    parser.add_argument("--cache")
    parser.add_argument("--baseline")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import statsmodels.regression.linear_model  # noqa: F401  (loaded by the primary analysis in a run)

    inputs = _inputs(args.study, args.cache)
    from alignment_research import postestimation

    trees = {"this tree": postestimation}
    if args.baseline:
        trees = {"baseline": _baseline_module(args.baseline), **trees}
    print("| outcome | " + " | ".join(f"{name} (CPU s, median)" for name in trees) + " | calls | ratio |")
    print("|---|" + "--:|" * len(trees) + "---|--:|")
    for outcome in ("retention", "engagement"):
        results = {name: _call(module, inputs, outcome)[1] for name, module in trees.items()}  # warm-up
        if args.baseline:
            _same(results["this tree"], results["baseline"])
        times = {name: [] for name in trees}
        for r in range(args.repeats):
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                times[name].append(_call(trees[name], inputs, outcome)[0])
        medians = {name: float(np.median(t)) for name, t in times.items()}
        calls = "; ".join(f"{name}: " + ", ".join(f"{t:.2f}" for t in ts) for name, ts in times.items())
        ratio = f"{medians['this tree'] / medians['baseline']:.2f}" if args.baseline else ""
        print(f"| {outcome} | " + " | ".join(f"{m:.2f}" for m in medians.values()) + f" | {calls} | {ratio} |",
              flush=True)
    if args.baseline:
        print("\nOutputs identical to the baseline's (tidy, glance, every fit's tidy, glance and covariance, exact).")


if __name__ == "__main__":
    main()
