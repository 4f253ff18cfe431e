"""`run`: from a study folder to privacy-checked HTML reports, on studies other than the sample."""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

import alignment_research as ar
from alignment_research import run as run_module

REPO = Path(ar.__file__).resolve().parent.parent

#: Vendor column names for every canonical column of the simulated study (mapped back in study.yaml).
VENDOR_NAMES = {
    "employees": {
        "employee_id": "Employee Number", "hire_date": "Date of Hire", "termination_date": "Exit Date",
        "termination_type": "Exit Reason", "department": "Org Unit", "job_level": "Grade",
        "manager_id": "Supervisor Number", "location": "Site", "gender": "Sex", "birth_year": "Year of Birth",
    },
    "goals": {"goal_id": "Objective ID", "owner_id": "Owner", "cycle": "Review Period",
              "parent_goal_id": "Parent Objective", "weight": "Weighting", "attainment": "Achievement"},
    "reviews": {"employee_id": "Emp No", "cycle": "Review Period", "rating": "Performance Rating",
                "target_attainment": "Target Achievement"},
    "surveys": {"employee_id": "Respondent", "survey_date": "Response Date"},
    "programs": {"employee_id": "Participant", "program": "Course", "start_date": "Course Start",
                 "end_date": "Course End", "status": "Completion Status"},
    "feedback": {"employee_id": "Recipient", "date": "Feedback Date", "kind": "Feedback Type", "giver_id": "Given By"},
}


def write_study(folder: Path, *, n: int, seed: int) -> Path:
    """Simulate a study and write it to ``folder``."""
    return ar.write_simulated_study(ar.simulate_study(n_employees=n, seed=seed), folder)


def place_in_tiny_departments(folder: Path) -> None:
    """Move one employee into a new department "Legal" and two into "Audit" (1 and 2 people), as of hire: in
    ``employees.csv`` and in ``job_history.csv``, whose rows hold the department in force."""
    employees = pd.read_csv(folder / "employees.csv", dtype=str, keep_default_na=False)
    managers = set(employees["manager_id"])
    staff = employees.index[~employees["employee_id"].isin(managers)]
    employees.loc[staff[:1], "department"] = "Legal"
    employees.loc[staff[1:3], "department"] = "Audit"
    employees.to_csv(folder / "employees.csv", index=False)
    history = pd.read_csv(folder / "job_history.csv", dtype=str, keep_default_na=False)
    moved = dict(zip(employees.loc[staff[:3], "employee_id"], employees.loc[staff[:3], "department"]))
    mask = history["employee_id"].isin(moved)
    history.loc[mask, "department"] = history.loc[mask, "employee_id"].map(moved)
    history.to_csv(folder / "job_history.csv", index=False)


def write_vendor_study(folder: Path, *, n: int, seed: int, tiny_departments: bool = False) -> tuple[Path, pd.DataFrame]:
    """A simulated study whose files use vendor column and file names, mapped in study.yaml.

    The employees export also carries names and birth dates (columns outside the
    contract), which must never reach a report. With ``tiny_departments``, two
    departments have 1 and 2 people (:func:`place_in_tiny_departments`).
    """
    write_study(folder, n=n, seed=seed)
    if tiny_departments:
        place_in_tiny_departments(folder)
    cfg = yaml.safe_load((folder / "study.yaml").read_text())
    files = {}
    for table, names in VENDOR_NAMES.items():
        path = folder / f"{table}.csv"
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if table == "employees":
            frame["Full Name"] = [f"Firstname{i:05d} Lastname{i:05d}" for i in range(len(frame))]
            frame["Date of Birth"] = [f"{by}-03-{(i % 27) + 1:02d}" if by else "" for i, by in
                                      enumerate(frame["birth_year"])]
            personal = frame[["Full Name", "Date of Birth"]].copy()
        path.unlink()
        new = f"hris_{table}_export.csv"
        frame.rename(columns=names).to_csv(folder / new, index=False)
        files[table] = new
    cfg["files"] = files
    cfg["column_maps"] = {table: {v: k for k, v in names.items()} for table, names in VENDOR_NAMES.items()}
    cfg["name"] = "vendor export"
    (folder / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return folder, personal


def visible_text(html: str) -> str:
    from alignment_research.privacy import _html_text

    return _html_text(html)


# --------------------------------------------------------------------------- fast checks (no notebook run)


def test_default_output_folder_is_reports_and_the_study_name_under_the_current_folder(tmp_path, monkeypatch):
    study = tmp_path / "hris export 2025"
    study.mkdir()
    (study / "study.yaml").write_text("name: Acme People 2025\nwindow: {start: 2021-01-01, end: 2024-12-31}\n")
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert ar.run.default_out_dir(study) == elsewhere / "reports" / "Acme_People_2025"
    assert ar.run.default_out_dir(tmp_path / "no_config_here") == elsewhere / "reports" / "no_config_here"
    # from the checkout, the sample's default folder is ignored by git
    monkeypatch.chdir(REPO)
    sample_out = ar.run.default_out_dir(REPO / "data" / "sample")
    assert sample_out == REPO / "reports" / "simulated"
    if (REPO / ".git").exists():
        done = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", str(sample_out / "index.html")])
        assert done.returncode == 0, f"{sample_out} is not ignored by git"


def test_reports_of_a_real_study_in_a_tracked_folder_warn():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    with pytest.warns(UserWarning, match="git does not ignore"):
        run_module._warn_if_tracked(REPO / "notebooks" / "my_reports")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_module._warn_if_tracked(REPO / "private_reports" / "x")


def test_an_unusable_study_stops_with_the_validation_messages(tmp_path):
    folder = write_study(tmp_path / "broken", n=60, seed=1)
    employees = pd.read_csv(folder / "employees.csv", dtype=str)
    employees.drop(columns=["hire_date"]).to_csv(folder / "employees.csv", index=False)
    with pytest.raises(ar.DataContractError) as info:
        ar.run_study(folder, tmp_path / "out", notebooks=["06"])
    assert "hire_date" in str(info.value)
    assert not (tmp_path / "out" / "index.html").exists()


def test_unknown_notebooks_are_named():
    with pytest.raises(ar.AlignmentResearchError, match="No notebook '99_nothing'"):
        run_module._select_notebooks(["99_nothing"])


def test_notebooks_are_found_in_reading_order():
    chosen = run_module._select_notebooks(None)
    assert [p.name for p in chosen] == sorted(p.name for p in chosen)
    assert "06_leadership_brief.ipynb" in [p.name for p in chosen]
    assert run_module._select_notebooks(["06"])[0].name == "06_leadership_brief.ipynb"


# --------------------------------------------------------------------------- one small run with a probe notebook


def _probe_notebook(folder: Path, *, leak: bool) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('study_dir = "../data/sample"')
    params.metadata["tags"] = ["parameters"]
    show = "clean.tables['employees'][['employee_id', 'department']].head(3)" if leak else "clean.counts"
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Probe report\n\nA question."),
        params,
        nbformat.v4.new_code_cell("import alignment_research as ar\nclean = ar.clean_study(ar.load_study(study_dir))"),
        nbformat.v4.new_code_cell(show),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / ("98_leak_brief.ipynb" if leak else "98_probe.ipynb")
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    study = write_study(tmp / "study", n=120, seed=5)
    result = ar.run_study(study, tmp / "out", notebooks=[_probe_notebook(tmp, leak=False)], progress=False)
    return study, result


def test_run_writes_an_index_with_study_window_quality_and_version(probe_run):
    study, result = probe_run
    cfg = ar.load_config(study)
    index = result.index.read_text(encoding="utf-8")
    text = visible_text(index)
    assert cfg.name in text
    assert f"{cfg.window.start:%Y-%m-%d} to {cfg.window.end:%Y-%m-%d}" in text
    assert f"alignment-research {ar.__version__}" in text
    assert '<a href="98_probe.html">Probe report</a>' in index
    assert '<a href="dashboard.html">Performance dashboard</a>' in index
    # the data-quality summary: rows in = rows out + rows quarantined, per table, as cleaning counted them
    shown = ar.privacy.read_html_tables(index)[0]
    expected = ar.clean_study(ar.load_study(study)).counts
    assert shown["table"].tolist() == expected["table"].tolist()
    assert shown["rows_in"].astype(int).tolist() == expected["rows_in"].tolist()
    assert (shown["rows_in"].astype(int) == shown["rows_out"].astype(int) + shown["rows_quarantined"].astype(int)).all()


def test_each_page_opens_offline_with_a_title_a_footer_and_no_local_path(probe_run):
    study, result = probe_run
    cfg = ar.load_config(study)
    page = (result.out_dir / "98_probe.html").read_text(encoding="utf-8")
    # nothing is loaded from the network: no script, stylesheet or module import from http(s)
    assert not re.search(r'<script[^>]*\ssrc="https?:', page)
    assert not re.search(r'<link[^>]*\shref="https?:', page)
    assert not re.search(r'import\(\s*"https?:', page)
    assert "cdnjs" not in page and "mathjax" not in page.lower()
    assert f"<title>{cfg.name}: Probe report</title>" in page
    footer = re.search(r'<footer class="ar-footer">(.*?)</footer>', page).group(1)
    assert cfg.name in footer and f"{cfg.window.start:%Y-%m-%d} to {cfg.window.end:%Y-%m-%d}" in footer
    assert f"alignment-research {ar.__version__}" in footer and "generated 20" in footer
    # papermill's injected cell held the absolute study path: it is not in the page
    assert str(study.resolve()) not in page and str(study) not in page
    assert "injected-parameters" not in page


def test_run_reports_stage_timings_and_writes_pages_and_exports(probe_run):
    _, result = probe_run
    assert result.timings["stage"].tolist() == ["validate and clean", "analysis tables", "98_probe", "exports",
                                                "dashboard", "index", "privacy scan"]
    assert (result.timings["seconds"] > 0).all()
    written = sorted(p.relative_to(result.out_dir).as_posix() for p in result.out_dir.rglob("*") if p.is_file())
    assert written == ["98_probe.html", "dashboard.html", "index.html", "results.xlsx", "tables/98_probe_cell04.csv"]
    assert result.reports.loc[0, "no_input"] == False  # noqa: E712 - only briefs hide code (and get a PDF)


def test_every_table_shown_is_exported_as_csv_and_in_the_workbook(probe_run):
    study, result = probe_run
    shown = ar.privacy.read_html_tables((result.out_dir / "98_probe.html").read_text(encoding="utf-8"))
    counts = next(t for t in shown if "rows_in" in t.columns)
    csv = pd.read_csv(result.out_dir / "tables" / "98_probe_cell04.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(csv, counts.reset_index(drop=True), check_dtype=False)
    book = pd.read_excel(result.out_dir / "results.xlsx", sheet_name=None, dtype=str, keep_default_na=False)
    assert book["contents"].values.tolist() == [["T001", "98_probe_cell04"]]
    pd.testing.assert_frame_equal(book["T001"], csv, check_dtype=False)
    index = result.index.read_text(encoding="utf-8")
    assert '<a href="results.xlsx">results.xlsx</a>' in index


@pytest.fixture(scope="module")
def second_run(tmp_path_factory, probe_run):
    """The probe notebook run again on the probe study (inputs unchanged), progress left to its default, with
    what it printed on stderr (not a terminal); the two tests below share this one run."""
    study, _ = probe_run
    tmp = tmp_path_factory.mktemp("again")
    nb = _probe_notebook(tmp, leak=False)
    with contextlib.redirect_stderr(io.StringIO()) as err:
        result = ar.run_study(study, tmp / "again", notebooks=[nb])
    return result, err.getvalue()


def test_a_second_run_with_unchanged_inputs_reuses_the_cleaned_tables(probe_run, second_run):
    study, first = probe_run
    again, _ = second_run
    assert again.timings["stage"].tolist()[0] == "reuse cleaned tables (inputs unchanged)"
    assert "validate and clean" not in again.timings["stage"].tolist()
    pd.testing.assert_frame_equal(again.counts, first.counts)
    manifest = ar.run.default_cache_dir(study) / ar.cache.MANIFEST_NAME
    assert manifest.is_file() and str(ar.run.default_cache_dir(study)).startswith(os.environ["XDG_CACHE_HOME"])
    assert not list(again.out_dir.rglob("*.parquet"))  # person-level tables never go to the reports
    # the validation problems are cached with the tables, for the data quality notebook (ar.open_validated)
    problems, _ = ar.open_validated(study, cache_dir=ar.run.default_cache_dir(study))
    want, _ = ar.validate_and_clean(ar.load_study(study))
    assert "problems" in json.loads(manifest.read_text())["frames"]
    pd.testing.assert_frame_equal(problems.drop(columns="value"), want.drop(columns="value"), check_exact=True)


def test_run_prints_one_line_per_stage_when_not_on_a_terminal(second_run):
    _, err = second_run
    lines = err.strip().splitlines()
    assert [line.split(": ", 1)[1].rsplit(" (", 1)[0] for line in lines] == [
        "reuse cleaned tables (inputs unchanged)", "98_probe", "exports", "dashboard", "index", "privacy scan"]


@pytest.mark.slow  # a second notebook run (~20 s); the scan itself is unit-tested in test_privacy.py
def test_a_report_that_shows_employee_ids_is_deleted_and_stops_the_run(tmp_path, probe_run):
    study, _ = probe_run
    nb = _probe_notebook(tmp_path, leak=True)
    with pytest.raises(ar.PrivacyError, match="employee_id"):
        ar.run_study(study, tmp_path / "out", notebooks=[nb], progress=False)
    assert not (tmp_path / "out" / "98_leak_brief.html").exists()
    assert not (tmp_path / "out" / "index.html").exists()


# --------------------------------------------------------------------------- full runs: every notebook


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Every notebook run once, with progress lines, on a simulated study of 400 people exported with vendor
    column and file names (and personal columns outside the contract), two of whose departments have 1 and 2
    people; the full-run tests below share it."""
    tmp = tmp_path_factory.mktemp("full")
    study, personal = write_vendor_study(tmp / "vendor", n=400, seed=77, tiny_departments=True)
    result = ar.run_study(study, tmp / "out", progress=True)
    return study, personal, result


@pytest.mark.slow
def test_run_on_a_second_simulated_study(full_run):
    _, _, result = full_run
    names = [p.name for p in run_module._select_notebooks(None)]
    assert result.reports["notebook"].tolist() == names
    for row in result.reports.itertuples():
        page = (result.out_dir / row.html).read_text(encoding="utf-8")
        assert "Traceback" not in page
        assert f'href="{row.html}"' in result.index.read_text(encoding="utf-8")
    brief = (result.out_dir / "06_leadership_brief.html").read_text(encoding="utf-8")
    # rendered without code: no code editor area, no highlighted Python, no source text
    assert not re.search(r'class="[^"]*jp-InputArea-editor', brief) and "hl-ipython3" not in brief
    assert "import alignment_research" not in brief
    assert 'src="data:image/png;base64,' in brief  # figures embedded
    stages = result.timings["stage"].tolist()
    assert stages[:2] == ["validate and clean", "analysis tables"]
    assert stages[-4:] == ["exports", "dashboard", "index", "privacy scan"]
    assert sorted(stages[2:-4]) == [n[:-6] for n in names]  # notebooks run in parallel: finishing order varies
    # the brief is also a PDF (when Chromium is here) and its figures are PNG files; every table shown is a CSV
    assert (result.out_dir / "results.xlsx").is_file() and list((result.out_dir / "tables").glob("*.csv"))
    assert len(list((result.out_dir / "figures").glob("06_leadership_brief_cell*.png"))) >= 5


@pytest.mark.slow
def test_run_on_a_study_with_vendor_column_names(full_run):
    study, personal, result = full_run
    assert "vendor export" in result.index.read_text(encoding="utf-8")
    employees = pd.read_csv(study / "hris_employees_export.csv", dtype=str)
    ids = set(employees["Employee Number"].dropna())
    for row in result.reports.itertuples():
        html = (result.out_dir / row.html).read_text(encoding="utf-8")
        found = ar.privacy.find_identifiers(html, ids=ids, names=personal["Full Name"],
                                    birth_dates=personal["Date of Birth"].replace("", pd.NA).dropna())
        assert found.empty, f"{row.html}: {found.head().to_dict('records')}"
    brief = visible_text((result.out_dir / "06_leadership_brief.html").read_text(encoding="utf-8"))
    assert "Key findings" in brief and "Caveats" in brief


@pytest.mark.slow
def test_no_rendered_table_shows_a_group_below_the_threshold(full_run):
    _, _, result = full_run
    pages = sorted(result.out_dir.glob("*.html"))
    assert len(pages) == len(result.reports) + 2  # every report, the index and the dashboard
    for page in pages:
        html = page.read_text(encoding="utf-8")
        small = ar.privacy.find_small_groups(html, min_group_size=5)
        assert small.empty, f"{page.name}: {small.to_dict('records')}"
    # the brief's department table pools Legal (1) and Audit (2) into one group; since 1 + 2 < 5 that group is
    # hidden, and so is the next smallest department (else the pool's size = total - shown)
    # (the brief shows it through ar.plain_table: "People" for n_people, "–" in every cell of a hidden group)
    brief = (result.out_dir / "06_leadership_brief.html").read_text(encoding="utf-8")
    table = next(t for t in ar.privacy.read_html_tables(brief) if "People" in t.columns)
    departments = table.iloc[:, 0].astype(str).tolist()
    assert not {"Legal", "Audit"} & set(departments)
    dash = table["People"].astype(str) == "–"
    hidden = table.loc[dash].iloc[:, 0].astype(str).tolist()
    assert "Other departments (each < 5 people)" in hidden and len(hidden) == 2
    assert (table.loc[dash].drop(columns=table.columns[0]).astype(str) == "–").all().all()


def test_notebooks_whose_tables_are_absent_are_skipped_and_listed(tmp_path):
    """Only `employees` is required: a study without the other tables still runs what it can."""
    study = write_study(tmp_path / "study", n=120, seed=8)
    for table in ["goals", "reviews", "surveys", "programs", "feedback"]:
        (study / f"{table}.csv").unlink()
    cfg = yaml.safe_load((study / "study.yaml").read_text())
    cfg["files"] = {"employees": "employees.csv"}
    (study / "study.yaml").write_text(yaml.safe_dump(cfg))
    names = ["01_data_quality", "03_engagement"]
    result = ar.run_study(study, tmp_path / "out", notebooks=names, progress=False)
    assert result.reports["skipped"].tolist() == ["", "needs goals, surveys, reviews"]
    assert sorted(p.name for p in result.out_dir.glob("*.html")) == ["01_data_quality.html", "dashboard.html", "index.html"]
    dashboard = (result.out_dir / "dashboard.html").read_text(encoding="utf-8")
    assert "The study has no goals table" in dashboard and "no feedback table" in dashboard
    assert not list((result.out_dir / "tables").glob("03_*"))  # a skipped report exports nothing
    assert "not run: the study needs goals, surveys, reviews" in visible_text(result.index.read_text(encoding="utf-8"))


def test_missing_tables_reads_the_notebook_number():
    tables = {"employees": pd.DataFrame({"employee_id": ["E1"]}), "goals": pd.DataFrame({"goal_id": []})}
    assert ar.run.missing_tables(Path("01_data_quality.ipynb"), tables) == []
    assert ar.run.missing_tables(Path("02_alignment.ipynb"), tables) == ["goals", "surveys"]


# --------------------------------------------------------------------------- nothing half-written, nothing leaked


class _NoKernels:
    """A stand-in for the kernel pool of a faked notebook stage, which gives the kernels nothing to run: starting
    them would only cost each test a kernel's start and imports (about 4 s of CPU)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def start(self):
        pass


def _write_probe_page(staging, cleaned) -> None:
    (staging / "98_probe.html").write_text("<p>new</p>", encoding="utf-8")


def _fake_notebook_stage(monkeypatch, write) -> None:
    """Replace the notebook stage: write files into the staging folder, then return the report rows."""
    from alignment_research import notebooks as notebooks_module

    def render(chosen, staging, out_dir, study_dir, cleaned, stages, **options):
        write(staging, cleaned)
        return pd.DataFrame([{"notebook": "98_probe.ipynb", "title": "Probe", "html": "98_probe.html",
                              "no_input": False, "seconds": 0.0, "skipped": ""}])

    monkeypatch.setattr(run_module, "_render_reports", render)
    monkeypatch.setattr(notebooks_module, "KernelPool", _NoKernels)


def _previous_run(out: Path) -> dict:
    out.mkdir(parents=True)
    (out / "index.html").write_text("<p>the last good run</p>", encoding="utf-8")
    return {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}


def test_a_failing_run_leaves_the_output_folder_as_it_was(tmp_path, monkeypatch):
    study = write_study(tmp_path / "study", n=60, seed=3)
    before = _previous_run(tmp_path / "out")

    def write_then_fail(staging, cleaned):
        (staging / "98_probe.html").write_text("<p>half", encoding="utf-8")
        raise ar.AlignmentResearchError("98_probe failed in cell 3")

    _fake_notebook_stage(monkeypatch, write_then_fail)
    with pytest.raises(ar.AlignmentResearchError, match="cell 3"):
        ar.run_study(study, tmp_path / "out", notebooks=["01"], progress=False)
    assert {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study"]  # no staging folder left behind


def test_a_privacy_finding_in_any_written_file_publishes_nothing_and_masks_the_id(tmp_path, monkeypatch):
    study = write_study(tmp_path / "study", n=60, seed=3)
    before = _previous_run(tmp_path / "out")
    leaked = {}

    def write_a_leak(staging, cleaned):
        leaked["id"] = cleaned.tables["employees"]["employee_id"].iloc[7]
        (staging / "98_probe.html").write_text("<p>fine</p>", encoding="utf-8")
        (staging / "results.csv").write_text(f"term,estimate\nx,0.1\n{leaked['id']},0.3\n", encoding="utf-8")

    _fake_notebook_stage(monkeypatch, write_a_leak)
    with pytest.raises(ar.PrivacyError) as info:
        ar.run_study(study, tmp_path / "out", notebooks=["01"], progress=False)
    message = str(info.value)
    assert f"results.csv: employee_id {leaked['id'][0]}" in message and "line 3" in message
    assert leaked["id"] not in message
    assert {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study"]


def test_a_successful_run_replaces_the_files_it_wrote_and_keeps_others(tmp_path, monkeypatch):
    study = write_study(tmp_path / "study", n=60, seed=3)
    _previous_run(tmp_path / "out")
    (tmp_path / "out" / "notes.txt").write_text("mine", encoding="utf-8")
    _fake_notebook_stage(monkeypatch, _write_probe_page)
    result = ar.run_study(study, tmp_path / "out", notebooks=["01"], progress=False)
    assert sorted(p.name for p in result.out_dir.iterdir()) == ["98_probe.html", "dashboard.html", "index.html", "notes.txt"]
    assert "the last good run" not in result.index.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study"]


def test_rendering_imports_are_done_before_the_dashboard_is_drawn_in_its_thread(tmp_path, monkeypatch):
    """matplotlib reads ``IPython.version_info`` when it makes a figure: a half-imported IPython (being imported by
    the rendering thread) failed a run's dashboard once ("partially initialized module 'IPython'")."""
    from alignment_research import notebooks as notebooks_module

    study = write_study(tmp_path / "study", n=60, seed=3)
    order = []
    imported, draw = notebooks_module.import_renderers, run_module._write_dashboard
    monkeypatch.setattr(notebooks_module, "import_renderers", lambda: order.append("import") or imported())
    monkeypatch.setattr(run_module, "_write_dashboard", lambda *a: order.append("draw") or draw(*a))
    _fake_notebook_stage(monkeypatch, _write_probe_page)
    ar.run_study(study, tmp_path / "out", notebooks=["01"], progress=False)
    assert order == ["import", "draw"]


def test_import_renderers_leaves_ipython_whole_for_matplotlib():
    code = ("import sys; from alignment_research.notebooks import import_renderers, RENDER_MODULES; "
            "done = import_renderers(); assert done == RENDER_MODULES, done; "
            "import IPython; print(IPython.version_info[:2] >= (8, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_a_pseudonymised_study_with_rehires_runs_end_to_end_without_leaking(tmp_path, monkeypatch):
    key = "k3y-" + "5ecret" * 6
    monkeypatch.setenv("ALIGNMENT_RESEARCH_KEY", key)
    study = write_study(tmp_path / "study", n=300, seed=1)  # seed 1 has a rehire inside the window
    cfg = yaml.safe_load((study / "study.yaml").read_text())
    cfg["pseudonymise"] = True
    (study / "study.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    employees = pd.read_csv(study / "employees.csv", dtype=str)
    spells = employees.dropna(subset=["hire_date"]).groupby("employee_id")["hire_date"].nunique()
    assert (spells >= 2).any()  # the simulator made a rehire: several spells of one employee_id
    ids = set(employees["employee_id"].dropna()) | set(employees["manager_id"].dropna())

    # 02 measures cascade alignment, where rehires with pseudonymised ids raised MergeError
    result = ar.run_study(study, tmp_path / "out", notebooks=["02"], progress=False)

    written = sorted(p for p in result.out_dir.rglob("*") if p.is_file())
    assert [p.name for p in written if p.suffix == ".html"] == ["02_alignment.html", "dashboard.html", "index.html"]
    assert {p.suffix for p in written} == {".html", ".csv", ".xlsx"}  # the exports pass the same checks below
    assert ar.privacy.scan_outputs(result.out_dir, ids=ids).empty
    for path in written:
        raw = path.read_bytes()
        assert key.encode() not in raw, path.name
        assert not [i for i in ids if i.encode() in raw], path.name
    assert "pseudonymised (keyed hash)" in visible_text(result.index.read_text(encoding="utf-8"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "study"]


def test_notebooks_are_passed_only_the_parameters_they_declare():
    """papermill prints "Passed unknown parameter" for any other; every notebook reads the cache (01 its problems too)."""
    declared = {nb.stem[:2]: run_module._declared_parameters(nb) for nb in run_module._select_notebooks(None)}
    assert len(declared) == 8 and all(names == {"study_dir", "clean_dir"} for names in declared.values())


def test_a_failing_notebook_keeps_its_executed_copy_outside_the_reports(tmp_path, probe_run):
    """The copy never passed the privacy scan, so it must not land where leaders read."""
    study, _ = probe_run
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('study_dir = "../data/sample"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise ValueError('probe failure')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "97_fail.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ar.AlignmentResearchError, match="probe failure") as raised:
        ar.run_study(study, tmp_path / "out", notebooks=[path], progress=False)
    kept = Path(re.search(r"is (\S+97_fail\.ipynb)\.", str(raised.value)).group(1))
    assert kept.is_file() and tmp_path / "out" not in kept.parents
    assert not (tmp_path / "out").exists()


def test_notebooks_start_longest_first_by_the_last_run(tmp_path):
    """Two kernels each take the next notebook: in a re-run the long ones go first so neither waits idle at the end."""
    from alignment_research import cache

    jobs = [(Path(f"{n}.ipynb"), False, {}) for n in ["01_a", "02_b", "03_c", "04_new"]]
    results = tmp_path / cache.RESULTS_FOLDER
    results.mkdir()
    (results / f"primary_analysis-{cache._code_digest()[:12]}-{'0' * 24}.pickle").write_bytes(b"")
    assert cache.has_stored_results(tmp_path)
    assert run_module._job_order(jobs, tmp_path) == jobs  # no history: reading order
    run_module._remember_durations(tmp_path, {Path("01_a.ipynb"): 3.0, Path("02_b.ipynb"): 9.5,
                                              Path("03_c.ipynb"): 6.25})
    ordered = [job[0].stem for job in run_module._job_order(jobs, tmp_path)]
    assert ordered == ["04_new", "02_b", "03_c", "01_a"]  # a notebook never timed first: it may be long
    run_module._remember_durations(tmp_path, {Path("01_a.ipynb"): 20.0})
    assert [job[0].stem for job in run_module._job_order(jobs, tmp_path)][:2] == ["04_new", "01_a"]


def test_a_first_run_starts_the_brief_and_the_careers_notebook_together(tmp_path):
    """Nothing stored yet (or only another code's results): the fixed order that keeps both kernels computing."""
    from alignment_research import cache

    names = sorted(run_module.FIRST_RUN_ORDER) + ["09_own"]
    jobs = [(Path(f"{n}.ipynb"), False, {}) for n in names]
    run_module._remember_durations(tmp_path, {Path("04_retention.ipynb"): 30.0, Path("03_engagement.ipynb"): 20.0})
    expected = ["09_own", *run_module.FIRST_RUN_ORDER]  # a notebook of the user's own first, then the fixed order
    for cache_dir in (None, tmp_path):
        assert [job[0].stem for job in run_module._job_order(jobs, cache_dir)] == expected
    results = tmp_path / cache.RESULTS_FOLDER
    results.mkdir()
    (results / f"primary_analysis-{'f' * 12}-{'0' * 24}.pickle").write_bytes(b"")  # another code's result
    assert not cache.has_stored_results(tmp_path)
    assert [job[0].stem for job in run_module._job_order(jobs, tmp_path)] == expected
    assert [n.split("_")[0] for n in run_module.FIRST_RUN_ORDER][:2] == ["06", "07"]
    assert sorted(run_module.FIRST_RUN_ORDER) == sorted(p.stem for p in run_module._select_notebooks(None))


def test_files_scanned_while_notebooks_run_are_scanned_again_only_when_changed(tmp_path):
    """Each notebook's files are scanned as soon as written; the last scan covers the rest, and any change since."""
    staging = tmp_path / "staging"
    folder = staging / ".01_probe.x"
    (folder / "tables").mkdir(parents=True)
    (folder / "01_probe.html").write_text("<p>fine</p>", encoding="utf-8")
    (folder / "tables" / "01_probe_cell02.csv").write_text("term,estimate\nx,0.1\n", encoding="utf-8")
    scanner = run_module._Scanner(staging, 5, {"ids": {"E000777"}, "names": set(), "birth_dates": []})
    scanner.scan(folder)
    assert not folder.exists() and sorted(scanner.scanned) == ["01_probe.html", "tables/01_probe_cell02.csv"]
    (staging / "index.html").write_text("<p>fine too</p>", encoding="utf-8")
    scanner.finish()  # nothing found, nothing raised
    (staging / "dashboard.html").write_text("<p>E000777 left</p>", encoding="utf-8")  # written after the early scan
    (staging / "tables" / "01_probe_cell02.csv").write_text("term,estimate\nE000777,0.1\n", encoding="utf-8")
    with pytest.raises(ar.PrivacyError) as raised:
        scanner.finish()
    assert "2 privacy finding(s)" in str(raised.value) and "E000777" not in str(raised.value)
    assert sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file()) == [
        "01_probe.html", "index.html"]  # the two changed files were deleted, and no scan folder is left
