"""Comparison of two trees: the CPU of each model call a first ``run`` makes at 20,000 employees, stored results bypassed.

Not a ``make bench`` benchmark (those are ``bench_*.py``, one markdown section
each, no arguments needed): it times the calls named on its command line, in one
tree per process, for alternating runs of two trees by hand.

Usage (one process per tree; alternate the trees and take medians of 3)::

    PYTHONPATH=<tree> python benchmarks/compare_first_fits.py STUDY CACHE CALL [CALL ...] [--save FILE]

``STUDY`` is a study folder, ``CACHE`` its cleaned cache (``-``: clean it here).
The study is opened once and its analysis tables read before any timing; each
CALL (``primary careers scorecard who mixed2 group_ols group_cox``, in notebook
06, 03, 04 order, or one of ``dev_*``) then runs in turn and prints its CPU
(user + system) and minor page faults. The study forgets its cache folder, so
every stored result is computed, as in a first run. A call's CPU then includes the
stored results it reads, computed again: ``who`` (``who_it_works_for``) runs
``primary_analysis`` twice more (once per outcome's group fits; about 24 of its
48.6 CPU seconds at 20,000 employees on 4 Dec 2026), where a ``run`` computes it once
and reads it from the cache afterwards. ``group_cox`` and ``group_ols`` time the
group fits alone. ``--save FILE`` pickles
each call's ``tidy()``/``glance()``/frames for an exact comparison of two trees.
"""
import sys, time, resource, os, pickle, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
import alignment_research as ar
study, cache = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
save = check = None
if "--save" in args: save = args[args.index("--save") + 1]; args = args[:args.index("--save")]
if "--check" in args: check = args[args.index("--check") + 1]; args = args[:args.index("--check")]
clean = ar.open_clean(study, cache_dir=cache) if cache != "-" else ar.clean_study(ar.load_study(study))
clean.__dict__.pop("_cache_folder", None)
a = clean.analysis
_ = (a.intervals, a.careers, a.survey_panel, a.person)
def ru():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime, r.ru_minflt
def out(res):
    d = {}
    for k in ("tidy", "glance"):
        if hasattr(res, k): d[k] = getattr(res, k)()
    if isinstance(res, pd.DataFrame): d["frame"] = res
    ex = getattr(res, "extras", None)
    if isinstance(ex, dict):
        for k, v in ex.items():
            if isinstance(v, pd.DataFrame): d["x_" + k] = v
            if k == "fits":
                for kk, f in v.items():
                    d[f"fit_{kk}_tidy"] = f.tidy(); d[f"fit_{kk}_glance"] = f.glance()
    return d
iv, panel = a.intervals, a.survey_panel
calls = {
 "dev_ment_prom": lambda: ar.estimate_development_effect(clean, "mentoring", outcome="promotion", warn=False),
 "dev_coach_prom": lambda: ar.estimate_development_effect(clean, "coaching", outcome="promotion", warn=False),
 "dev_ment_ret": lambda: ar.estimate_development_effect(clean, "mentoring", outcome="retention", warn=False),
 "dev_coach_ret": lambda: ar.estimate_development_effect(clean, "coaching", outcome="retention", warn=False),
 "dev_train_ret": lambda: ar.estimate_development_effect(clean, "training", outcome="retention", warn=False),
 "group_cox": lambda: ar.fit_group_effects(iv, "alignment_cascade + engagement + manager_program + manager_rating + job_level", model="cox", start="start", stop="stop", term=["alignment_cascade", "manager_program"], by=["gender", "location", "job_level", "department"], baseline=a.person, cluster="manager_id", min_group_size=clean.config.min_group_size),
 "group_ols": lambda: ar.fit_group_effects(panel, "engagement ~ alignment_cascade + manager_program + manager_rating", term=["alignment_cascade", "manager_program"], by=["gender", "location", "job_level", "department"], baseline=a.person, cluster="manager_id", min_group_size=clean.config.min_group_size),
 "mixed2": lambda: ar.fit_mixed(panel, "engagement ~ alignment_cascade + manager_program + manager_rating", groups="employee_id", vc="manager_id"),
 "scorecard": lambda: ar.claims_scorecard(clean),
 "primary": lambda: ar.primary_analysis(clean, warn=False),
 "who": lambda: ar.who_it_works_for(clean),
 "careers": lambda: ar.describe_careers(clean),
 "program_effects": lambda: ar.estimate_program_effects(clean) if hasattr(ar, "estimate_program_effects") else None,
}
def deep(res, prefix=""):
    d = {}
    if isinstance(res, pd.DataFrame):
        d[prefix + "frame"] = res
    elif hasattr(res, "tidy"):
        d.update({prefix + k: v for k, v in out(res).items()})
    elif isinstance(res, dict):
        for k, v in res.items(): d.update(deep(v, f"{prefix}{k}."))
    elif hasattr(res, "__dataclass_fields__"):
        for k in res.__dataclass_fields__: d.update(deep(getattr(res, k), f"{prefix}{k}."))
    elif isinstance(res, (list, tuple)):
        for i, v in enumerate(res): d.update(deep(v, f"{prefix}{i}."))
    elif isinstance(res, str):
        d[prefix + "text"] = pd.DataFrame({"text": [res]})
    else:
        try: d[prefix + "repr"] = pd.DataFrame({"repr": [str(res)]})
        except Exception: pass
    return d
results = {}
tot = 0
for name in args:
    c0, f0 = ru()
    res = calls[name]()
    c1, f1 = ru()
    tot += c1 - c0
    print(f"{name:16s} cpu {c1-c0:7.2f}  flt {(f1-f0)/1e3:7.0f}k", flush=True)
    results[name] = deep(res)
print(f"TOTAL cpu {tot:.2f}  maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1e6:.2f} GB")
if save: pickle.dump(results, open(save, "wb"))
