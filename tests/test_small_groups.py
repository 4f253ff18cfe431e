"""Leaders never see a small group: sizes count distinct people, small levels are pooled (issue 10).

The acceptance case is a simulated study in which department Legal has 3 people
and Audit 4 (``min_group_size: 5``): no number about either may reach a
leadership-facing table, sentence or figure, directly or by subtraction.
"""

import re

import numpy as np
import pandas as pd
import pytest

import alignment_research as ar

SMALL = {"Legal": 3, "Audit": 4}
OTHER = "Other departments (each < 5 people)"


def _panel(sizes: dict, *, rows_per_person: int = 7, seed: int = 0) -> pd.DataFrame:
    """A survey panel: ``sizes`` people per department, each answering ``rows_per_person`` times."""
    rng = np.random.default_rng(seed)
    parts = []
    for dept, k in sizes.items():
        for p in range(k):
            n = rows_per_person
            x = rng.integers(0, 2, n).astype(float)
            parts.append(pd.DataFrame({
                "employee_id": f"{dept}-{p}", "department": dept, "manager_id": f"M-{dept}-{p % 3}",
                "x": x, "leadership": rng.normal(3, 0.5, n),
                "engagement": 3 + 0.3 * x + rng.normal(0, 0.4, n),
            }))
    return pd.concat(parts, ignore_index=True)


def _assert_nothing_recoverable(table: pd.DataFrame, *, count: str, total: int, min_group_size: int = 5) -> None:
    """Every shown count is >= min_group_size; hidden ones are >= 2 and hold >= min_group_size people together."""
    n = pd.to_numeric(table[count], errors="coerce")
    assert (n.dropna() >= min_group_size).all(), table
    hidden = int(n.isna().sum())
    if hidden:
        assert hidden >= 2, table
        assert total - n.sum() >= min_group_size, table


# ----------------------------------------------------------------------------- group sizes count people


def test_group_sizes_count_distinct_people_not_rows():
    panel = _panel({"Sales": 6, "Legal": 3}, rows_per_person=7)
    sizes = ar.group_sizes(panel, "department").set_index("department")
    assert sizes.loc["Legal", "n"] == 3 and sizes.loc["Legal", "n_rows"] == 21
    assert sizes.loc["Sales", "n"] == 6 and sizes.loc["Sales", "n_rows"] == 42


def test_group_sizes_need_the_person_column():
    panel = _panel({"Sales": 6}).drop(columns="employee_id")
    with pytest.raises(ar.PrivacyError, match=r"no column\(s\) \['employee_id'\].*distinct people, never rows"):
        ar.group_sizes(panel, "department")


def test_size_gate_hides_a_department_of_three_people_with_21_responses():
    panel = _panel({"Sales": 20, "HR": 8, "Finance": 12, "Legal": 3}, rows_per_person=7)
    gate = ar.privacy.size_gate(panel, "department").set_index("department")
    assert gate.loc["Legal", "suppression"] == "small group" and pd.isna(gate.loc["Legal", "n"])
    # complementary: HR (the next smallest) is hidden too, so Legal = total - shown cannot be computed
    assert gate.loc["HR", "suppression"] == "complementary"
    assert gate.loc["Sales", "n"] == 20 and gate.loc["Finance", "n"] == 12
    _assert_nothing_recoverable(gate.reset_index(), count="n", total=43)


def test_suppress_small_groups_on_people_counts_two_small_groups_protect_each_other():
    sizes = ar.group_sizes(_panel({"Sales": 20, "Legal": 3, "Audit": 4}), "department")
    out = ar.suppress_small_groups(sizes, count="n", group_cols=["department"], value_cols=["n_rows"])
    assert out.set_index("department")["suppression"].fillna("").to_dict() == {
        "Audit": "small group", "Legal": "small group", "Sales": ""}
    assert out["n_rows"].isna().sum() == 2  # 21 and 28 rows: never compared with the threshold
    _assert_nothing_recoverable(out, count="n", total=27)


# ----------------------------------------------------------------------------- pooling model terms


def test_pool_small_levels_pools_and_takes_the_largest_level_as_reference():
    panel = _panel({"Engineering": 9, "Sales": 12, "HR": 6, "Legal": 3, "Audit": 4})
    pooled = ar.pool_small_levels(panel, "department")
    assert pooled.references == {"department": "Sales"}  # largest in people (not first sorted)
    assert sorted(pooled.data["department"].unique()) == ["Engineering", "HR", OTHER, "Sales"]
    assert (pooled.data["department"] == OTHER).sum() == 49  # every row of Legal and Audit
    assert pooled.pooled.to_dict("list") == {"column": ["department"] * 2, "level": ["Audit", "Legal"],
                                             "action": ["pooled", "pooled"]}
    assert pooled.term("department") == "C(department, Treatment(reference='Sales'))"
    assert pooled.apply("engagement ~ x * leadership + C(department)") == (
        "engagement ~ x + leadership + x:leadership + C(department, Treatment(reference='Sales'))")
    # a reference named in the formula gives way too: a pooled level cannot be the reference
    assert pooled.apply("engagement ~ C(department, Treatment('Legal'))") == (
        "engagement ~ C(department, Treatment(reference='Sales'))")
    assert pooled.caveats == (
        f"Two departments with fewer than 5 people each are pooled into one group, “{OTHER}”. "
        "Departments are compared with the largest, Sales.")
    assert len(panel) == len(pooled.data)  # no row lost


def test_a_pool_still_below_the_size_is_counted_with_the_reference():
    panel = _panel({"Engineering": 9, "Sales": 12, "Legal": 3})
    pooled = ar.pool_small_levels(panel, "department")
    assert sorted(pooled.data["department"].unique()) == ["Engineering", "Sales"]
    assert (pooled.data["department"] == "Sales").sum() == (12 + 3) * 7
    assert pooled.pooled["action"].tolist() == ["merged into reference"]
    assert "counted with Sales, the reference department" in pooled.caveats
    assert "Legal" not in pooled.caveats


def test_a_term_left_with_one_level_is_dropped_from_the_formula():
    panel = _panel({"Sales": 12, "Legal": 3})
    pooled = ar.pool_small_levels(panel, "department")
    assert pooled.references == {"department": None} and pooled.term("department") is None
    assert pooled.apply("engagement ~ x + C(department)") == "engagement ~ x"
    assert pooled.apply("x + C(department) - 1") == "x - 1"
    assert "Department is left out of the model" in pooled.caveats


def test_integer_levels_pool_into_text_levels():
    d = pd.DataFrame({"employee_id": [f"e{i}" for i in range(30)],
                      "job_level": pd.array([1] * 8 + [2] * 15 + [3] * 3 + [4] * 4, dtype="Int64")})
    pooled = ar.pool_small_levels(d, "job_level")
    assert pooled.references == {"job_level": "2"}
    assert sorted(pooled.data["job_level"].unique()) == ["1", "2", "Other job levels (each < 5 people)"]
    unpooled = ar.pool_small_levels(d[d["job_level"] <= 2], "job_level")
    assert unpooled.term("job_level") == "C(job_level, Treatment(reference=2))"  # integer kept, no np.int64
    assert str(unpooled.data["job_level"].dtype) == "Int64"


def test_a_formula_with_a_three_person_level_has_no_term_for_it():
    panel = _panel({"Engineering": 9, "Sales": 12, "HR": 6, "Legal": 3, "Audit": 4})
    model = ar.prepare_leadership_model(panel, "engagement ~ x + C(department)")
    fitted = ar.fit_ols(model.data, model.formula)
    labels = ar.with_labels(fitted.tidy(), data=model.data)["term"].tolist()
    assert labels == ["Intercept", "X", "Department Engineering vs Sales", "Department HR vs Sales",
                      f"Department {OTHER} vs Sales"]


def test_labels_read_quoted_references_with_parentheses():
    term = f"C(department, Treatment(reference='{OTHER}'))[T.Sales]"
    assert ar.term_label(term) == f"Department Sales vs {OTHER}"
    table = ar.with_labels(pd.DataFrame({"term": [term, f"C(department, Treatment(reference='Sales'))[T.{OTHER}]"]}))
    assert table["term"].tolist() == [f"Department Sales vs {OTHER}", f"Department {OTHER} vs Sales"]


def test_prepare_leadership_model_pools_text_columns_used_without_C():
    panel = _panel({"Engineering": 9, "Sales": 12, "Legal": 3, "Audit": 4})
    model = ar.prepare_leadership_model(panel, "engagement ~ x + department")
    assert model.formula == "engagement ~ x + C(department, Treatment(reference='Sales'))"


# ----------------------------------------------------------------------------- per-group tables (notebook 03)


def test_effect_by_group_counts_people_not_rows():
    # Legal: 3 people with 21 responses (above 5 rows: the old row-count gate showed it)
    panel = _panel({"Engineering": 9, "Sales": 12, "HR": 6, "Legal": 3}, rows_per_person=7)
    table = ar.effect_by_group(panel, "engagement ~ x", term="x", by="department")
    assert table["department"].tolist() == ["Engineering", "HR", "Sales", OTHER]
    other = table.set_index("department").loc[OTHER]
    assert pd.isna(other["n"]) and np.isnan(other["estimate"]) and other["note"] == "suppressed: fewer than 5 people"
    hr = table.set_index("department").loc["HR"]
    assert pd.isna(hr["n"]) and hr["note"].startswith("size hidden") and np.isfinite(hr["estimate"])
    assert table.set_index("department").loc["Sales", "n"] == 12
    _assert_nothing_recoverable(table, count="n", total=30)


def test_effect_by_group_estimates_the_pool_when_it_reaches_the_size():
    panel = _panel({"Engineering": 9, "Sales": 12, "Legal": 3, "Audit": 4}, rows_per_person=7)
    table = ar.effect_by_group(panel, "engagement ~ x", term="x", by="department").set_index("department")
    assert table.loc[OTHER, "n"] == 7 and np.isfinite(table.loc[OTHER, "estimate"])
    assert not {"Legal", "Audit"} & set(table.index)
    own = ar.fit_ols(panel[panel["department"].isin(list(SMALL))], "engagement ~ x").tidy().set_index("term")
    np.testing.assert_allclose(table.loc[OTHER, "estimate"], own.loc["x", "estimate"], rtol=1e-10)


def test_driver_analysis_counts_people_and_pools_small_groups():
    panel = _panel({"Engineering": 9, "Sales": 12, "HR": 6, "Legal": 3}, rows_per_person=7)
    res = ar.driver_analysis(panel, drivers=["x", "leadership"], by="department", n_boot=5)
    g = res.glance().set_index("group")
    assert list(g.index) == ["all", "Engineering", "HR", "Sales", OTHER]
    assert g.loc["all", "n"] == 30 and g.loc["all", "n_rows"] == 210 and g.loc["Sales", "n"] == 12
    assert g.loc[OTHER, "suppressed"] and np.isnan(g.loc[OTHER, "r_squared"])
    assert np.isnan(g.loc["HR", "n"]) and np.isfinite(g.loc["HR", "r_squared"])  # complementary: size only
    t = res.tidy()
    assert t.loc[t.group == OTHER, "estimate"].isna().all()
    _assert_nothing_recoverable(g.drop(index="all"), count="n", total=30)


# ----------------------------------------------------------------------------- report helpers


def test_describe_caveats_states_the_pooling_of_each_model():
    panel = _panel({"Engineering": 9, "Sales": 12, "Legal": 3, "Audit": 4})
    a = ar.prepare_leadership_model(panel, "engagement ~ x + C(department)")
    b = ar.prepare_leadership_model(panel[panel.department != "Audit"], "engagement ~ x + C(department)")
    text = ar.describe_caveats(pooling={"retention": a, "engagement": b})
    assert text == (
        f"In the retention model: Two departments with fewer than 5 people each are pooled into one group, “{OTHER}”. "
        "Departments are compared with the largest, Sales. In the engagement model: One department with fewer "
        "than 5 people is counted with Sales, the reference department. Departments are compared with the "
        "largest, Sales.")
    assert ar.describe_caveats(pooling={"retention": a, "engagement": a}).startswith("In both models: Two departments")


def test_programme_share_is_not_quoted_when_it_reveals_a_small_group():
    class Programme:
        def __init__(self, unmatched):
            self.row = pd.DataFrame({"n_unmatched": [unmatched], "n_enrolled": [40], "max_abs_smd_after": [0.05]})

        def glance(self):
            return self.row

    assert "some of the managers" in ar.describe_caveats(programme=Programme(2)).lower()  # 2 unmatched: hidden
    assert "25% of the managers" in ar.describe_caveats(programme=Programme(10))


def test_describe_retention_skips_groups_below_the_size_at_that_tenure():
    class KM:
        def tidy(self):
            return pd.DataFrame({"term": "retention_12_months", "group": ["High alignment", "Low alignment"],
                                 "estimate": [0.9, 0.8], "conf_low": [0.85, 0.7], "conf_high": [0.95, 0.9],
                                 "at_risk": [40, 7]})

        def glance(self):
            return pd.DataFrame({"n": [60]})

        extras = {  # gates count people (fit_km's people counts), not the spells in `at_risk`
            "people": pd.DataFrame({"group": ["High alignment", "Low alignment"], "n_people": [45, 15],
                                    "n_spells": [45, 15]}),
            "people_at_risk": pd.DataFrame({"group": ["High alignment", "Low alignment"],
                                            "term": "retention_12_months", "at_risk": [40, 7],
                                            "people_at_risk": [40, 7]}),
        }

    assert "80%" in ar.describe_retention(KM(), min_group_size=5)
    assert "80%" not in ar.describe_retention(KM(), min_group_size=10)  # the study's size, not a default of 5


# ----------------------------------------------------------------------------- acceptance: Legal 3, Audit 4


@pytest.fixture(scope="module")
def small_study():
    truth = ar.Truth(small_departments=SMALL)
    sim = ar.simulate_study(n_employees=400, seed=3, truth=truth, messy=False)
    return sim, ar.clean_study(sim)


def _no_small_department(*texts) -> None:
    for text in texts:
        for name in SMALL:
            assert not re.search(rf"\b{name}\b", str(text)), f"{name!r} in {str(text)[:300]}"


def test_simulator_makes_the_small_departments(small_study, tmp_path):
    sim, clean = small_study
    people = sim.tables["employees"].groupby("department")["employee_id"].nunique()
    assert people["Legal"] == 3 and people["Audit"] == 4
    assert ar.group_sizes(clean.analysis.intervals, "department").set_index("department").loc[list(SMALL), "n"].tolist() == [3, 4]
    folder = ar.write_simulated_study(sim, tmp_path / "s")
    assert ar.load_truth(folder / "truth.yaml").small_departments == SMALL
    assert ar.load_config(folder).min_group_size == 5
    # the default writes no key, so existing truth files (data/sample) stay as they are
    ar.write_simulated_study(ar.simulate_study(n_employees=50, seed=0, messy=False), tmp_path / "d")
    assert "small_departments" not in (tmp_path / "d" / "truth.yaml").read_text()


def test_simulator_refuses_an_existing_department_name():
    with pytest.raises(ValueError, match="small_departments must be new department names"):
        ar.Truth(small_departments={"Sales": 3})


def test_notebook_03_tables_show_nothing_about_legal_or_audit(small_study):
    _, clean = small_study
    panel = clean.analysis.survey_panel
    table = ar.effect_by_group(panel, "engagement ~ manager_program + alignment_cascade + manager_rating",
                               term="manager_program", by="department", cluster="manager_id",
                               min_group_size=clean.config.min_group_size)
    drivers = ar.driver_analysis(panel, drivers=["alignment", "leadership", "feedback", "alignment_cascade"],
                                 by="department", n_boot=5, seed=1, min_group_size=clean.config.min_group_size)
    pivot = drivers.tidy().pivot(index="group", columns="term", values="share")
    _no_small_department(table.to_html(), drivers.tidy().to_html(), drivers.glance().to_html(), pivot.to_html())
    total = panel.dropna(subset=["department"])["employee_id"].nunique()
    _assert_nothing_recoverable(table, count="n", total=total)
    _assert_nothing_recoverable(drivers.glance().query("group != 'all'"), count="n", total=total)
    assert ar.privacy.find_small_groups(table.to_html()).empty and ar.privacy.find_small_groups(drivers.glance().to_html()).empty


def test_notebook_06_brief_shows_nothing_about_legal_or_audit(small_study):
    import warnings

    _, clean = small_study
    tables, min_group_size = clean.analysis, clean.config.min_group_size
    iv = ar.prepare_leadership_model(
        tables.intervals, "alignment_cascade + engagement + manager_program + C(job_level) + C(department)",
        min_group_size=min_group_size)
    sp = ar.prepare_leadership_model(
        tables.survey_panel, "engagement ~ alignment_cascade + manager_program + C(job_level) + C(department)",
        min_group_size=min_group_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ar.StatisticalWarning)
        retention = ar.fit_cox(iv.data, iv.formula, start="start", stop="stop", event="event", cluster="manager_id")
        engagement = ar.fit_mixed(sp.data, sp.formula, groups="manager_id")
    people = ar.group_sizes(tables.intervals, "department").set_index("department")["n"]
    assert iv.references["department"] == people.idxmax()  # the largest department is the reference
    forest = ar.with_labels(retention.tidy(), data=iv.data)
    assert f"Department {OTHER} vs {people.idxmax()}" in forest["term"].tolist()
    # no e^52 from a department level of 3 people (pooled into OTHER). Only the department rows: with the practices
    # on (the default since issue 15) this 400-person draw has no exit at job level 5, whose ratio runs off to
    # e^-40.7 (retention.tidy() of this fit), a separation the fit reports and no small department's doing
    departments = forest[forest["term"].str.startswith("Department ")]
    assert len(departments) == 6 and departments["exp_estimate"].between(0.01, 100).all()
    ax = ar.plot_forest(forest, ratio=True)
    caveats = ar.describe_caveats(retention=retention, engagement=engagement,
                                  pooling={"retention": iv, "engagement": sp}, min_group_size=min_group_size)
    assert OTHER in caveats
    measures = ar.alignment_measures(tables)
    by_department = ar.alignment_by_group(measures, by="department", min_group_size=min_group_size)
    _no_small_department(
        forest.to_html(), ar.with_labels(engagement.tidy(), data=sp.data).to_html(), caveats,
        " ".join(t.get_text() for t in ax.get_yticklabels()), by_department.to_html(),
        " ".join(t.get_text() for t in ar.plot_alignment_distribution(
            measures, by="department", measure="cascade", min_group_size=min_group_size).get_yticklabels()),
    )
    assert ar.privacy.find_small_groups(by_department.to_html()).empty


@pytest.mark.slow
def test_run_study_renders_nothing_about_legal_or_audit(small_study, tmp_path):
    sim, _ = small_study
    folder = ar.write_simulated_study(sim, tmp_path / "study")
    result = ar.run_study(folder, tmp_path / "reports", progress=False)
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert written and result.reports["skipped"].eq("").all()
    ids = set(sim.tables["employees"]["employee_id"])
    for path in written:
        text = path.read_text(encoding="utf-8", errors="replace")
        _no_small_department(text)
        if path.suffix == ".html":
            assert ar.privacy.scan_report(path, min_group_size=5, ids=ids).empty, path.name
