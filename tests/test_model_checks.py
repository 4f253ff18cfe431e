"""The checks every fit_* function shares (_checks.py): no model returns silent nonsense.

Each rule is tested on a small inline broken input: one cluster, few clusters,
a random intercept without repeated rows, a one-level variance component, a
malformed formula, an infinite covariate, separation. Numbers are never
changed by these checks; they refuse the fit or add a caveat.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar
from alignment_research._cox import simulate_counting_process
from alignment_research.errors import ModelError, StatisticalWarning


@pytest.fixture(scope="module")
def sim():
    return simulate_counting_process(300, seed=0)


@pytest.fixture
def panel():
    """200 rows, 40 managers of 5, a 0/1 outcome and an ordinal rating."""
    rng = np.random.default_rng(7)
    n = 200
    manager = np.repeat([f"M{i:02d}" for i in range(40)], 5)
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=40)[np.repeat(np.arange(40), 5)] + rng.normal(size=n)
    return pd.DataFrame({
        "employee_id": [f"E{i % 100:03d}" for i in range(n)],
        "manager_id": manager,
        "x": x,
        "y": y,
        "left": (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int),
        "rating": np.clip(np.round(3 + x + rng.normal(size=n)), 1, 5),
        "m": 0.3 * x + rng.normal(size=n),
    })


def _no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- 1. clusters
def test_cox_with_one_cluster_is_an_error_not_a_zero_standard_error(sim):
    intervals, _ = sim
    with pytest.raises(ModelError, match=r"at least 2 clusters.*`team` has 1 distinct value"):
        ar.fit_cox(intervals.assign(team="A"), "alignment_cascade", start="start", stop="stop", cluster="team")


@pytest.mark.parametrize("fit, formula, kwargs", [
    (ar.fit_ols, "y ~ x", {}),
    (ar.fit_logit, "left ~ x", {}),
    (ar.fit_within, "y ~ x", {"unit": "employee_id"}),
])
def test_regressions_with_one_cluster_are_an_error(panel, fit, formula, kwargs):
    with pytest.raises(ModelError, match=r"cluster column `team` has 1 distinct value"):
        fit(panel.assign(team="A"), formula, cluster="team", **kwargs)


def test_discrete_time_and_mediation_with_one_cluster_are_an_error(sim, panel):
    intervals, _ = sim
    with pytest.raises(ModelError, match="`team` has 1 distinct value"):
        ar.fit_discrete_time(intervals.assign(team="A"), "alignment_cascade", cluster="team")
    with pytest.raises(ModelError, match="`team` has 1 distinct value"):
        ar.fit_mediation(panel.assign(team="A"), treatment="x", mediator="m", outcome="y", cluster="team", n_boot=5)


def test_few_clusters_warn_and_are_recorded_as_caveats(sim, panel):
    intervals, _ = sim
    teams = intervals.assign(team=intervals["manager_id"].str[-1])  # 10 clusters
    with pytest.warns(StatisticalWarning, match="Only 10 clusters in `team`"):
        cox = ar.fit_cox(teams, "alignment_cascade", start="start", stop="stop", cluster="team")
    assert len(cox.caveats) == 1 and cox.caveats[0].startswith("Only 10 clusters in `team`")
    five = panel.assign(team=panel["manager_id"].str[-1].map(lambda d: str(int(d) % 5)))
    with pytest.warns(StatisticalWarning, match="Only 5 clusters"):
        ols = ar.fit_ols(five, "y ~ x", cluster="team")
    assert ols.caveats == (ols.caveats[0],) and "fewer than about 30 clusters" in ols.caveats[0]
    # 40 clusters: no caveat
    assert ar.fit_ols(panel, "y ~ x", cluster="manager_id").caveats == ()


def test_caveat_survives_silenced_warnings_and_reaches_the_report(sim):
    intervals, _ = sim
    teams = intervals.assign(team=intervals["manager_id"].str[-1])
    cox = _no_warnings(ar.fit_cox, teams, "alignment_cascade", start="start", stop="stop", cluster="team")
    assert "Only 10 clusters" in repr(cox)
    assert "Only 10 clusters" in cox._repr_html_()
    assert "Caveat (retention model): Only 10 clusters in `team`" in str(ar.describe_caveats(retention=cox))


# --------------------------------------------------------------------------- 2. variance components
def test_mixed_with_singleton_groups_is_an_error_on_both_engines(panel):
    data = panel.assign(person=np.arange(len(panel)).astype(str))
    for engine in ("numpy", "statsmodels"):
        with pytest.raises(ModelError, match=r"`person` is not identified: every one of its 200 groups has one"):
            ar.fit_mixed(data, "y ~ x", groups="person", engine=engine)


def test_mixed_with_a_one_level_vc_is_an_error(panel):
    with pytest.raises(ModelError, match=r"variance component `division` is not identified: it has 1 level"):
        ar.fit_mixed(panel.assign(division="D1"), "y ~ x", groups="manager_id", vc="division")


def test_mixed_barely_identified_warns_the_same_on_both_engines(panel):
    # 3 managers with several rows, every other row its own group
    group = np.where(np.arange(len(panel)) < 15, panel["manager_id"], [f"S{i}" for i in range(len(panel))])
    data = panel.assign(team=group)
    texts = []
    for engine in ("numpy", "statsmodels"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", StatisticalWarning)
            res = ar.fit_mixed(data, "y ~ x", groups="team", engine=engine)
        assert any("barely identified: only 3 of its 188 groups" in str(w.message) for w in caught)
        texts.append(res.caveats[0])
    assert texts[0] == texts[1]


# --------------------------------------------------------------------------- 3. formulas
@pytest.mark.parametrize("formula, bad", [("y ~ x +", "'+'"), ("y ~ C(x", "'C(x'"), ("y ~ x + )", "')'")])
def test_malformed_formula_names_the_term_and_the_columns(panel, formula, bad):
    with pytest.raises(ModelError, match=r"could not be read at " + re.escape(bad)
                       + r".*Available columns: \['employee_id', 'left'"):
        ar.fit_ols(panel, formula)


def test_malformed_formula_in_survival_models(sim):
    intervals, _ = sim
    with pytest.raises(ModelError, match=r"could not be read at '\*'.*Available columns"):
        ar.fit_cox(intervals, "engagement + * alignment_cascade", start="start", stop="stop")
    with pytest.raises(ModelError, match=r"could not be read.*Available columns"):
        ar.fit_discrete_time(intervals, "engagement +")


def test_unknown_column_names_it(panel):
    with pytest.raises(ModelError, match=r"no column\(s\) \['engagment'\]. Available columns"):
        ar.fit_logit(panel, "left ~ engagment")


# --------------------------------------------------------------------------- 4. infinite values
def test_infinite_covariate_is_an_error_with_column_and_count(panel, sim):
    broken = panel.copy()
    broken.loc[[3, 8], "x"] = [np.inf, -np.inf]
    for fit in (ar.fit_ols, ar.fit_logit):
        with pytest.raises(ModelError, match=r"column `x` has 2 infinite value\(s\).*first in row 3.*cap"):
            fit(broken, ("y" if fit is ar.fit_ols else "left") + " ~ x")
    with pytest.raises(ModelError, match=r"column `x` has 2 infinite"):
        ar.fit_mixed(broken, "y ~ x", groups="manager_id")
    with pytest.raises(ModelError, match=r"column `x` has 2 infinite"):
        ar.fit_mediation(broken, treatment="x", mediator="m", outcome="y", n_boot=5)
    intervals, person = sim
    with pytest.raises(ModelError, match=r"column `engagement` has 1 infinite"):
        ar.fit_cox(intervals.assign(engagement=intervals["engagement"].replace(
            intervals["engagement"].iloc[0], np.inf)), "engagement", start="start", stop="stop")
    with pytest.raises(ModelError, match=r"column `exit` has 1 infinite"):
        ar.fit_km(person.assign(exit=person["exit"].astype(float).where(person.index != 5, np.inf)))


# --------------------------------------------------------------------------- 5. separation
def test_cox_category_without_events_is_a_caveat_naming_the_term(sim):
    _, person = sim
    small = person.assign(grade="a")
    idx = person.index[person["event"] == 0][:4]  # 4 people, none of whom leaves
    small.loc[idx, "grade"] = "z"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        res = ar.fit_cox(small, "alignment_cascade + C(grade)", duration="exit", entry="entry")
    assert any("C(grade)[T.z]" in str(w.message) for w in caught)
    (text,) = res.caveats
    assert "`C(grade)[T.z]` (no events among its rows (4 row(s))" in text
    assert "alignment_cascade`" not in text  # only the offending term is named


def test_logit_and_discrete_time_quasi_separation_are_caveats(panel, sim):
    data = panel.copy()
    data["rare"] = 0
    data.loc[data.index[data["left"] == 1][:3], "rare"] = 1  # 3 people, all of whom leave
    res = _no_warnings(ar.fit_logit, data, "left ~ x + rare")
    assert len(res.caveats) == 1 and "`rare` (only events among its rows (3 row(s))" in res.caveats[0]
    intervals, _ = sim
    stayers = intervals.groupby("employee_id")["event"].transform("max") == 0
    flag = (stayers & (intervals["employee_id"].str[-1] == "3")).astype(float)  # some who never leave
    res = _no_warnings(ar.fit_discrete_time, intervals.assign(flag=flag), "engagement + flag")
    assert len(res.caveats) == 1 and "`flag` (no events among its rows" in res.caveats[0]


def test_ordinal_level_all_in_the_top_category_is_a_caveat(panel):
    data = panel.copy()
    data["star"] = 0
    data.loc[data.index[data["rating"] == data["rating"].max()][:3], "star"] = 1
    res = _no_warnings(ar.fit_ordinal, data, "rating ~ x + star")
    assert any("`star` (all of its rows (3) in the highest category" in c for c in res.caveats)


def test_well_behaved_fits_carry_no_caveat(panel, sim):
    intervals, _ = sim
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        assert ar.fit_cox(intervals, "alignment_cascade + engagement", start="start", stop="stop",
                          cluster="manager_id").caveats == ()
        assert ar.fit_logit(panel, "left ~ x", cluster="manager_id").caveats == ()
        assert ar.fit_mixed(panel, "y ~ x", groups="manager_id").caveats == ()


def test_result_caveats_are_an_immutable_tuple():
    res = ar.ModelResult("x", pd.DataFrame({"term": ["a"]}), pd.DataFrame(), caveats=["one", "one", "two"])
    assert res.caveats == ("one", "two")
    assert "Caveat: two" in repr(res)


def test_cox_diverging_small_category_is_a_caveat_even_when_warnings_are_silenced(sim):
    # the 3 earliest leavers form a category: every event while they are at risk is theirs, so the
    # likelihood rises forever (monotone likelihood); the hazard ratio runs off to about e^23
    _, person = sim
    data = person.assign(grade="a")
    data.loc[person[person["event"] == 1].sort_values("exit").index[:3], "grade"] = "z"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # as the leadership brief does
        res = ar.fit_cox(data, "alignment_cascade + C(grade)", duration="exit", entry="entry")
    estimate = res.tidy()["estimate"].iloc[1]
    assert estimate > 10  # the number is left as it is ...
    (text,) = res.caveats  # ... but it carries its caveat, naming the term and the estimate where the fit stopped
    # (where a diverging fit stops, 23.3 on one machine and 33.1 on another, depends on the floating-point library)
    assert f"`C(grade)[T.z]` (log ratio {estimate:.1f}, beyond ±10: a ratio of about e^{estimate:.0f})" in text
    assert "alignment_cascade`" not in text
    assert "C(grade)[T.z]" in str(ar.describe_caveats(retention=res))


def test_cause_specific_and_km_keep_their_caveats(sim):
    intervals, person = sim
    teams = intervals.assign(team=intervals["manager_id"].str[-1])
    res = _no_warnings(ar.fit_cause_specific, teams, "alignment_cascade", start="start", stop="stop", cluster="team")
    assert [c.split(":")[0] for c in res.caveats] == ["involuntary", "voluntary"]
    assert all("Only 10 clusters in `team`" in c for c in res.caveats)
    km = _no_warnings(ar.fit_km, person.assign(team="A"), group="team")
    assert km.caveats == ("Only one group (['A']) in `team`: no log-rank test is possible.",)
