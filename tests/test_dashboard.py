"""The performance dashboard: who gets a panel, what each panel shows, the funnel limits, and what the page holds."""

import base64
import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import alignment_research as ar
from alignment_research import browser
from alignment_research import dashboard as dash_module
from alignment_research.dashboard import dashboard_data, funnel_limits, render_dashboard

Z95, Z998 = stats.norm.ppf(0.975), stats.norm.ppf(0.999)


@pytest.fixture(scope="module")
def clean():
    return ar.clean_study(ar.simulate_study(n_employees=400, seed=4))


@pytest.fixture(scope="module")
def dash(clean):
    return dashboard_data(clean)


@pytest.fixture(scope="module")
def page(dash):
    return render_dashboard(dash)


def _embedded_text(html: str) -> str:
    """The page's text plus the text of every embedded SVG (where labels are drawn)."""
    svgs = [base64.b64decode(m).decode("utf-8") for m in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)]
    return re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", html) + "\n".join(svgs)


# --------------------------------------------------------------------------- who gets a panel


def _tiny_department(study, n_people: int):
    """Move ``n_people`` leavers into a department "Tiny" and rehire each into it: 2 spells (rows) per person."""
    emp = study.tables["employees"].copy()
    end = pd.Timestamp(study.config.window.end) - pd.Timedelta(days=120)
    start = pd.Timestamp(study.config.window.start)
    once = emp["employee_id"].map(emp["employee_id"].value_counts()) == 1
    leavers = emp.loc[once & emp["termination_date"].between(start + pd.Timedelta(days=200), end)
                      & emp["manager_id"].notna()].head(n_people)
    assert len(leavers) == n_people
    emp.loc[leavers.index, "department"] = "Tiny"
    rehired = leavers.assign(department="Tiny", hire_date=leavers["termination_date"] + pd.Timedelta(days=30),
                             termination_date=pd.NaT, termination_type=pd.NA)
    # without the job history, whose rows would still place these spells in their old department
    tables = {name: table for name, table in study.tables.items() if name != "job_history"}
    return dataclasses.replace(study, tables={**tables, "employees": pd.concat([emp, rehired], ignore_index=True)})


def test_a_department_of_three_people_with_six_spells_gets_no_panel():
    study = _tiny_department(ar.simulate_study(n_employees=300, seed=3), 3)
    clean = ar.clean_study(study)
    person = clean.analysis.person
    tiny = person.loc[person["department"] == "Tiny"]
    assert len(tiny) == 6 and tiny["employee_id"].nunique() == 3  # rows would pass a size of 5; people do not
    dash = dashboard_data(clean)
    # nor is a team named after it (one of them leads a team)
    assert "Tiny" not in dash.groups["label"].tolist() and "Tiny" not in set(dash.groups["department"])
    assert dash.groups["label"].str.startswith("Other departments · team").any()
    # the small one and, so that its size cannot be recovered by subtraction, the next smallest
    assert dash.left_out["department"] == 2
    assert dash.groups["kind"].eq("department").sum() == person["department"].nunique() - 2
    assert "Tiny" not in _embedded_text(render_dashboard(dash))
    assert "2 departments with fewer than 5 people are left out" in render_dashboard(dash)


def _latest_manager_by_hand(clean) -> pd.Series:
    """Per person and spell: the manager of the last job-history row dated on or before the spell's last day
    observed (termination, or the window's end), a row without a manager keeping the one before; else at hire."""
    person = clean.analysis.person
    window_end = pd.Timestamp(clean.config.window.end)
    last_day = person["termination_date"].where(person["termination_date"] <= window_end, window_end) \
        .fillna(window_end)
    ends = person.assign(last_day=last_day)[["employee_id", "spell", "last_day"]]
    rows = clean.tables["job_history"].dropna(subset=["manager_id"]).merge(ends, on=["employee_id", "spell"])
    rows = rows.loc[rows["effective_date"] <= rows["last_day"]].sort_values("effective_date", kind="stable")
    latest = rows.groupby(["employee_id", "spell"])["manager_id"].last()
    at_hire = person.set_index(["employee_id", "spell"])["manager_id"]
    return latest.reindex(at_hire.index).fillna(at_hire)


def test_panel_sizes_are_distinct_people_and_at_least_the_minimum(clean, dash):
    person = clean.analysis.person
    k = clean.config.min_group_size
    depts = dash.groups.loc[dash.groups["kind"] == "department"]
    expected = person.groupby("department")["employee_id"].nunique()
    assert dict(zip(depts["label"], depts["n"])) == expected[expected >= k].to_dict()
    teams = dash.groups.loc[dash.groups["kind"] == "team"]
    # teams follow the latest manager in force (the job history's), not the manager at hire
    latest = _latest_manager_by_hand(clean).rename("manager_id").reset_index()
    sizes = latest.groupby("manager_id")["employee_id"].nunique()
    assert not sizes.equals(person.groupby("manager_id")["employee_id"].nunique()), "the fixture has no manager change"
    # every small team is left out, and (complementary suppression within a department) maybe a few more
    assert len(teams) + dash.left_out["team"] == len(sizes)
    assert dash.left_out["team"] >= int((sizes < k).sum())
    assert not (pd.Series(sorted(teams["n"])).value_counts() - sizes.value_counts()).gt(0).any()
    assert (dash.groups["n"] >= k).all()
    # teams are named by department and number only, numbered 1.. within each department, largest first
    assert teams["label"].str.fullmatch(r"[A-Za-z &]+ · team \d\d").all()
    for _, part in teams.groupby("department"):
        numbers = part["label"].str[-2:].astype(int)
        assert sorted(numbers) == list(range(1, len(part) + 1))
        assert part.sort_values("label")["n"].is_monotonic_decreasing


def test_a_person_who_changes_manager_is_counted_once_in_the_new_managers_team(clean, dash):
    """Hand-built: one person of the largest team moves to the second largest a month before the window ends."""
    study = ar.simulate_study(n_employees=400, seed=4)
    window_end = pd.Timestamp(clean.config.window.end)
    moved_on = window_end - pd.Timedelta(days=30)
    latest = _latest_manager_by_hand(clean).rename("manager_id").reset_index()
    sizes = latest.groupby("manager_id")["employee_id"].nunique().sort_values(ascending=False)
    old, new = sizes.index[:2]
    person = clean.analysis.person.merge(latest.rename(columns={"manager_id": "latest"}), on=["employee_id", "spell"])
    spells = person["employee_id"].map(person["employee_id"].value_counts())
    history = study.tables["job_history"]
    last_change = history.groupby("employee_id")["effective_date"].max()
    mover = person.loc[(person["latest"] == old) & (spells == 1) & person["termination_date"].isna()
                       & (person["employee_id"].map(last_change) < moved_on) & (person["employee_id"] != new)].iloc[0]
    row = history.loc[history["employee_id"] == mover["employee_id"]].iloc[[-1]].assign(
        effective_date=moved_on, manager_id=new, reason="manager_change")
    moved = dataclasses.replace(study, tables={**study.tables, "job_history": pd.concat([history, row], ignore_index=True)})
    after = dashboard_data(ar.clean_study(moved))

    def team_sizes(d):
        return sorted(d.groups.loc[d.groups["kind"] == "team", "n"].tolist())

    expected = team_sizes(dash)
    expected[expected.index(sizes[old])] = sizes[old] - 1
    expected[expected.index(sizes[new])] = sizes[new] + 1
    assert team_sizes(after) == sorted(expected)
    assert sum(team_sizes(after)) == sum(team_sizes(dash))  # counted once: in the new team, no longer in the old
    departments = dash.groups.loc[dash.groups["kind"] == "department"]
    assert after.groups.loc[after.groups["kind"] == "department"].equals(departments)
    assert (after.groups["n"] >= after.min_group_size).all()
    assert "A team is the people who share their latest manager (from the job history" in render_dashboard(after)
    without = dataclasses.replace(study, tables={k: v for k, v in study.tables.items() if k != "job_history"})
    assert "share their manager when they joined" in render_dashboard(dashboard_data(ar.clean_study(without)))


def test_every_plotted_point_covers_at_least_the_minimum_of_people(dash):
    assert len(dash.series) and (dash.series["n_people"] >= dash.min_group_size).all()
    assert set(dash.series["measure"]) == {"alignment", "engagement", "feedback"}


# --------------------------------------------------------------------------- the numbers, by hand


def test_engagement_by_wave_of_a_department_by_hand(clean, dash):
    panel = clean.analysis.survey_panel
    person = clean.analysis.person
    dept = person.set_index(["employee_id", "spell"])["department"]
    panel = panel.assign(home=[dept.get((e, s)) for e, s in zip(panel["employee_id"], panel["spell"])],
                         wave=panel["survey_date"].dt.to_period("M").astype(str))
    rows = panel.loc[(panel["home"] == "Sales") & panel["engagement"].notna()]
    wave = sorted(rows["wave"].unique())[2]
    people = rows.loc[rows["wave"] == wave].groupby("employee_id")["engagement"].mean()
    half = stats.t.ppf(0.975, len(people) - 1) * people.std() / np.sqrt(len(people))
    got = dash.series.loc[(dash.series["label"] == "Sales") & (dash.series["measure"] == "engagement")
                          & (dash.series["period"] == wave)].iloc[0]
    assert got["n_people"] == len(people)
    assert got[["value", "conf_low", "conf_high"]].tolist() == pytest.approx(
        [people.mean(), people.mean() - half, people.mean() + half], abs=1e-12)


def test_alignment_funnel_limits_of_a_department_by_hand(clean, dash):
    cycles = clean.analysis.cycles.dropna(subset=["alignment_cascade"])
    person_means = cycles.groupby("employee_id")["alignment_cascade"].mean()
    target, spread = person_means.mean(), person_means.std()
    home = clean.analysis.person.set_index(["employee_id", "spell"])["department"]
    cycles = cycles.assign(home=[home.get((e, s)) for e, s in zip(cycles["employee_id"], cycles["spell"])])
    group = cycles.loc[cycles["home"] == "Finance"].groupby("employee_id")["alignment_cascade"].mean()
    row = dash.summary.loc[(dash.summary["label"] == "Finance") & (dash.summary["measure"] == "alignment")].iloc[0]
    se = spread / np.sqrt(len(group))
    assert row["value"] == pytest.approx(group.mean(), abs=1e-12) and row["precision"] == len(group)
    assert row[["lower_95", "upper_95", "lower_998", "upper_998"]].tolist() == pytest.approx(
        [target - Z95 * se, target + Z95 * se, target - Z998 * se, target + Z998 * se], abs=1e-12)


def test_feedback_cadence_and_its_limits_by_hand(clean, dash):
    rates = clean.analysis.feedback_rates
    quarters = rates["exposure_days"].sum() / 90.0
    target = rates["n_events"].sum() / quarters
    org = dash.summary.loc[(dash.summary["kind"] == "organisation") & (dash.summary["measure"] == "feedback")].iloc[0]
    assert org["value"] == pytest.approx(target, rel=1e-12)
    assert org["precision"] == pytest.approx(quarters, rel=1e-12)
    # quasi-Poisson dispersion between people: Pearson's chi-square over people / (people - 1)
    people = rates.groupby("employee_id")[["n_events", "exposure_days"]].sum()
    people = people.loc[people["exposure_days"] > 0]
    expected = target * people["exposure_days"] / 90.0
    phi = ((people["n_events"] - expected) ** 2 / expected).sum() / (len(people) - 1)
    assert phi > 1.2  # people differ: the Poisson limits alone would flag groups that differ by chance
    home = clean.analysis.person.set_index(["employee_id", "spell"])["department"]
    mine = rates.loc[[home.get((e, s)) == "Sales" for e, s in zip(rates["employee_id"], rates["spell"])]]
    exposure = mine["exposure_days"].sum() / 90.0
    row = dash.summary.loc[(dash.summary["label"] == "Sales") & (dash.summary["measure"] == "feedback")].iloc[0]
    assert row["value"] == pytest.approx(mine["n_events"].sum() / exposure, rel=1e-12)
    se = np.sqrt(phi * target / exposure)
    assert row[["lower_95", "upper_998"]].tolist() == pytest.approx([target - Z95 * se, target + Z998 * se], rel=1e-10)
    half = Z95 * np.sqrt(phi * mine["n_events"].sum()) / exposure
    assert row["conf_high"] == pytest.approx(row["value"] + half, rel=1e-10)


def test_funnel_limits_by_hand():
    p = funnel_limits(0.8, [100, 400], kind="proportion")
    assert p["upper_95"].tolist() == pytest.approx([0.8 + Z95 * 0.04, 0.8 + Z95 * 0.02], abs=1e-12)
    assert p["lower_998"].tolist() == pytest.approx([0.8 - Z998 * 0.04, 0.8 - Z998 * 0.02], abs=1e-12)
    m = funnel_limits(3.0, [25], kind="mean", spread=0.5).iloc[0]
    assert [m["lower_95"], m["upper_998"]] == pytest.approx([3.0 - Z95 * 0.1, 3.0 + Z998 * 0.1], abs=1e-12)
    r = funnel_limits(2.0, [50], kind="rate").iloc[0]
    assert [r["lower_95"], r["upper_95"]] == pytest.approx([2.0 - Z95 * 0.2, 2.0 + Z95 * 0.2], abs=1e-12)
    r = funnel_limits(2.0, [50], kind="rate", spread=4.0).iloc[0]  # quasi-Poisson: the limits widen by sqrt(4)
    assert [r["lower_95"], r["upper_95"]] == pytest.approx([2.0 - Z95 * 0.4, 2.0 + Z95 * 0.4], abs=1e-12)
    assert funnel_limits(0.1, [1], kind="rate")["lower_95"].iloc[0] == 0.0  # a rate is never below 0
    assert funnel_limits(0.99, [4], kind="proportion")["upper_998"].iloc[0] == 1.0  # nor a share above 1
    with pytest.raises(ar.ConfigError, match="spread"):
        funnel_limits(3.0, [25], kind="mean")
    with pytest.raises(ar.ConfigError, match="kind"):
        funnel_limits(3.0, [25], kind="median")


def test_twelve_month_retention_without_censoring_has_the_binomial_precision():
    """Without censoring or late entry before 12 months, Greenwood's variance is S(1 - S)/n: the effective size is n."""
    exits = [30, 90, 100, 200, 250, 300] + [500 + i for i in range(14)]
    person = pd.DataFrame({"employee_id": [f"p{i}" for i in range(20)], "spell": 1, "entry": 0.0,
                           "exit": np.array(exits, float), "event": [1] * 6 + [0] * 14})
    membership = person[["employee_id", "spell"]].iloc[:10].assign(label="G", kind="team")
    out = dash_module._retention_measure(person, membership, 5).set_index("label")
    assert out.loc["Organisation", "value"] == pytest.approx(14 / 20, abs=1e-12)
    assert out.loc["Organisation", "precision"] == pytest.approx(20, rel=1e-9)
    assert out.loc["G", "value"] == pytest.approx(4 / 10, abs=1e-12)
    assert out.loc["G", "precision"] == pytest.approx(10, rel=1e-9)
    # a group whose 12-month outcome was seen for fewer than 5 people gets no 12-month figure
    later = person.index >= 4  # only the first 4 (who left in months 1 to 7) entered before 12 months
    late = person.assign(entry=np.where(later, 400.0, 0.0), exit=np.where(later, person["exit"].clip(lower=401.0),
                                                                          person["exit"]))
    assert dash_module._retention_measure(late, membership, 5).empty
    assert sorted(dash_module._retention_measure(late, membership, 4)["label"]) == ["G", "Organisation"]


def test_signals_are_the_groups_outside_the_998_limits(dash):
    groups = dash.summary.loc[dash.summary["kind"] != "organisation"]
    outside = (groups["value"] > groups["upper_998"]) | (groups["value"] < groups["lower_998"])
    assert (groups["signal"] != "").tolist() == outside.tolist()
    assert outside.any() and not outside.all()


# --------------------------------------------------------------------------- the page


def test_the_page_shows_no_id_and_passes_the_privacy_scan(clean, page, tmp_path):
    tables = clean.tables
    ids = set(tables["employees"]["employee_id"]) | set(tables["employees"]["manager_id"].dropna()) \
        | set(tables["feedback"]["giver_id"].dropna())
    text = _embedded_text(page)
    assert not [i for i in ids if i in text]
    (tmp_path / "dashboard.html").write_text(page, encoding="utf-8")
    assert ar.privacy.scan_outputs(tmp_path, min_group_size=clean.config.min_group_size, ids=ids).empty


def test_the_page_reads_in_words(page):
    """No raw column name, no True/False cell and no 0/1 legend anywhere a reader looks (page text and chart text)."""
    text = _embedded_text(page)
    text = re.sub(r"<style.*?</style>", " ", text, flags=re.S)
    visible = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))
    raw = re.findall(r"\b(?:n_people|n_events|suppressed|suppression|manager_id|employee_id|exposure_days|"
                     r"alignment_cascade|engagement_\d|[a-z]+_[a-z]+)\b", visible)
    assert not raw, f"raw names on the dashboard: {sorted(set(raw))}"
    assert not re.search(r"\b(?:True|False|NaN|nan)\b", visible)
    assert "Engagement" in visible and "12-month retention" in visible


def test_the_page_is_self_contained(page, dash):
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:|//)", page)
    assert not re.search(r"https?://", re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+", "", page))
    images = re.findall(r"<img src='([^']*)'", page)
    assert len(images) == 2 + 4 * len(dash.groups)  # two funnel figures, four charts per panel
    assert all(src.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for src in images)
    for label in dash.groups["label"]:
        assert f"<h3>{label} (" in page.replace("&amp;", "&")
    # team panels are folded by department (opened with a click, no script)
    teams = dash.groups.loc[dash.groups["kind"] == "team"]
    assert page.count("<details>") == teams["department"].nunique()


def test_a_study_with_only_employees_says_what_is_missing():
    study = ar.simulate_study(n_employees=120, seed=8)
    clean = ar.clean_study(dataclasses.replace(study, tables={"employees": study.tables["employees"]}))
    dash = dashboard_data(clean)
    assert sorted(dash.missing) == ["alignment", "engagement", "feedback"]
    assert set(dash.summary["measure"]) == {"retention"}
    page = render_dashboard(dash)
    assert "The study has no goals table" in page and "no feedback table" in page
    assert _embedded_text(page).count("not in this study") == 9 * len(dash.groups)  # 3 charts, their alt text, 3 rows


# --------------------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_in_a_browser_every_section_is_present_and_every_figure_loads(clean, dash, page, tmp_path):
    try:
        browser.find_chromium()
    except ar.AlignmentResearchError:
        pytest.skip("Chromium is not installed and could not be (apt-get install chromium); CI installs it")
    path = tmp_path / "dashboard.html"
    path.write_text(page, encoding="utf-8")
    seen = browser.inspect_page(path)
    assert [h["text"] for h in seen["headings"] if h["level"] == 2] == [
        "How to read this dashboard", "Organisation", "Funnel plots: what is more than noise", "Departments",
        "Manager teams", "Notes"]
    panels = [h["text"] for h in seen["headings"] if h["level"] == 3]
    assert panels[:2] == ["Departments", "Manager teams"] and len(panels) == 2 + len(dash.groups)
    assert len(seen["images"]) == 2 + 4 * len(dash.groups)
    for im in seen["images"]:
        assert im["src_kind"] == "data" and im["complete"] and im["natural_width"] > 100, im
    dom = browser.dump_dom(path)
    assert not re.search(r'<(script|img|link|iframe)[^>]*\s(src|href)="https?:', dom)
    shot = browser.screenshot(path, tmp_path / "dashboard.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == 1280


def test_a_teams_department_is_its_reports_most_common_one_first_name_on_a_tie():
    rng = np.random.default_rng(5)
    person = pd.DataFrame({"manager_id": rng.choice(["m1", "m2", "m3", "m4", None], 400),
                           "department": rng.choice(["Sales", "Legal", "Ops", None], 400)})
    person.loc[person["manager_id"] == "m4", "department"] = None  # no report's department known
    person = pd.concat([person, pd.DataFrame({"manager_id": ["m5"] * 4, "department": ["Sales", "Legal"] * 2})])
    got = dash_module._modal_department(person)
    expected = person.dropna(subset=["manager_id"]).groupby("manager_id")["department"].agg(
        lambda s: s.mode().iloc[0] if s.notna().any() else None).dropna()
    assert got.to_dict() == expected.to_dict()
    assert got["m5"] == "Legal" and "m4" not in got.index
