"""The ``alignment-research`` command line: simulate, validate, clean, run, power."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import AlignmentResearchError

app = typer.Typer(
    help="Test whether goal alignment and leadership development raise engagement and retention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

SAMPLE = Path("data/sample")


def _fail(error: Exception) -> None:
    err.print(f"[bold red]error:[/] {error}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code=1)


@app.command()
def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the study to (created)."),
    employees: int = typer.Option(2000, "--employees", min=10, help="Number of employees ever employed in the window."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files bit for bit."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="YAML of true parameters overriding the defaults."),
):
    """Write a synthetic study with known effects (all six tables, study.yaml, truth.yaml)."""
    from .simulate import load_truth, simulate_study, write_simulated_study

    try:
        params = load_truth(truth) if truth is not None else None
        study = simulate_study(n_employees=employees, seed=seed, truth=params)
        write_simulated_study(study, out_dir)
    except AlignmentResearchError as e:
        _fail(e)
    out.print(f"wrote a simulated study of {employees} employees (seed {seed}) to {out_dir}")


@app.command()
def validate(study_dir: Path = typer.Argument(..., help="The study folder (with study.yaml).")):
    """Check a study against the data contract; print every problem; exit 1 if any is fatal."""
    from .load import load_study
    from .validate import validate_study

    try:
        study = load_study(study_dir)
        problems = validate_study(study)
    except AlignmentResearchError as e:
        _fail(e)
    if problems.empty:
        out.print(f"{study_dir}: no problems found.")
        return
    for r in problems.itertuples(index=False):
        level = "FATAL" if r.fatal else "warn"
        out.print(f"{level:5} {r.file}, row {r.row}, column {r.column}: {r.rule} (value: {r.value!r})", highlight=False)
    n_fatal = int(problems["fatal"].sum())
    out.print(f"{len(problems)} problem(s), {n_fatal} fatal.")
    if n_fatal:
        raise typer.Exit(code=1)


@app.command()
def clean(
    study_dir: Path = typer.Argument(..., help="The study folder (with study.yaml)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for clean tables, cleaning_report.csv, quarantine/ and analysis/."),
):
    """Clean a study: clean tables (Parquet), cleaning report, quarantine, analysis tables."""
    from .clean import clean_study, write_clean_study
    from .load import load_study

    try:
        cleaned = clean_study(load_study(study_dir))
        write_clean_study(cleaned, out_dir)
    except AlignmentResearchError as e:
        _fail(e)
    out.print(cleaned.counts.to_string(index=False))
    out.print(f"{len(cleaned.report)} issue(s) logged; wrote {out_dir}")


@app.command()
def run(
    study_dir: Path = typer.Argument(SAMPLE, help="The study folder; the bundled sample study by default."),
    out_dir: Path = typer.Option(Path("reports"), "--out", help="Folder for the HTML reports."),
):
    """The main job: clean the study, execute every notebook on it, render HTML reports."""
    from .run import run_study

    try:
        run_study(study_dir, out_dir)
    except AlignmentResearchError as e:
        _fail(e)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
