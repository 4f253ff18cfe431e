"""The command line: help that explains, a simulate -> validate -> clean round trip, clean failures."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from alignment_research.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "command, options",
    [("simulate", ["--employees", "--seed", "--out", "--truth"]), ("validate", ["STUDY"]),
     ("clean", ["--out"]), ("run", ["--out"])],
)
def test_every_command_explains_its_options(command, options):
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in options:
        assert option in result.output


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "s"
    result = runner.invoke(app, ["simulate", "--employees", "150", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_simulate_writes_the_whole_study_folder(small_study):
    names = {p.name for p in small_study.iterdir()}
    assert {"employees.csv", "goals.csv", "reviews.csv", "surveys.csv", "programs.csv", "feedback.csv",
            "study.yaml", "truth.yaml"} <= names
    assert pd.read_csv(small_study / "employees.csv")["employee_id"].notna().all()


def test_validate_then_clean_round_trip(small_study, tmp_path):
    result = runner.invoke(app, ["validate", str(small_study)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "clean"
    result = runner.invoke(app, ["clean", str(small_study), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "employees.parquet").exists() and (out / "cleaning_report.csv").exists()
    for name in ["person", "intervals", "survey_panel", "cycles"]:
        assert (out / "analysis" / f"{name}.parquet").exists(), name
    counts = pd.read_parquet(out / "employees.parquet")
    assert len(counts) > 0


def test_a_missing_study_is_a_clear_error_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nowhere: no such study folder" in result.output


def test_a_misspelt_truth_key_is_a_clear_error(tmp_path):
    truth = tmp_path / "truth.yaml"
    truth.write_text("hr_alignmnt: -0.5\n")
    result = runner.invoke(app, ["simulate", "--employees", "50", "--out", str(tmp_path / "x"), "--truth", str(truth)])
    assert result.exit_code == 1
    assert "hr_alignmnt" in result.output and "Traceback" not in result.output


def test_notebooks_command_executes_in_place(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Probe"), nbformat.v4.new_code_cell("1 + 1")]
    path = tmp_path / "01_probe.ipynb"
    nbformat.write(nb, path)
    result = runner.invoke(app, ["notebooks", str(tmp_path)])
    assert result.exit_code == 0, result.output
    executed = nbformat.read(path, as_version=4)
    assert executed.cells[1].outputs[0]["data"]["text/plain"] == "2"
    assert "papermill" not in executed.metadata


# ----------------------------------------------------------------- no traceback ever reaches the user
@pytest.mark.parametrize("command", ["validate", "clean"])
def test_an_unexpected_error_is_one_line_and_a_traceback_file(command, tmp_path, monkeypatch):
    import tempfile

    import alignment_research.load as load

    def broken(path):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(load, "load_study", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    study = tmp_path / "study"
    study.mkdir()
    args = [command, str(study)] + (["--out", str(tmp_path / "out")] if command == "clean" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    logs = list((tmp_path / "tmp").glob(f"alignment-research-{command}-*.log"))
    assert len(logs) == 1
    assert result.output.strip() == (
        f"internal error in {command}: RuntimeError: a bug over two lines; the full traceback was written to {logs[0]}; "
        "please report it"
    )
    assert "Traceback (most recent call last)" in logs[0].read_text() and "a bug" in logs[0].read_text()
    assert list(study.iterdir()) == []  # nothing written into the study folder


def test_ctrl_c_exits_130_quietly(tmp_path, monkeypatch):
    import alignment_research.load as load

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr(load, "load_study", interrupted)
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 130
    assert result.output == ""


def test_messages_with_brackets_are_printed_as_they_are(tmp_path):
    bad = tmp_path / "[bold]study[/]"
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: no such study folder" in " ".join(result.output.split())
    assert "Traceback" not in result.output
