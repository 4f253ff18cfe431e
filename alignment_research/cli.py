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


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"alignment-research {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Test whether goal alignment and leadership development raise engagement and retention."""


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
def validate(study_dir: Path = typer.Argument(..., metavar="STUDY", help="The study folder (with study.yaml).")):
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
    study_dir: Path = typer.Argument(..., metavar="STUDY", help="The study folder (with study.yaml)."),
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
    study_dir: Path = typer.Argument(SAMPLE, metavar="[STUDY]", help="The study folder; the bundled sample study by default."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out",
        help="Folder for the HTML reports; by default reports/ for the sample and private_reports/<study>/ "
             "(git-ignored) for any other study.",
    ),
):
    """The main job: clean the study, execute every notebook on it, render HTML reports."""
    from .run import run_study

    try:
        result = run_study(study_dir, out_dir)
    except AlignmentResearchError as e:
        _fail(e)
    out.print(f"wrote {len(result.reports)} report(s); open {result.index}")


@app.command()
def power(
    kind: str = typer.Argument("engagement", help="engagement (team-level difference in means) or cox (hazard ratio)."),
    teams: Optional[int] = typer.Option(None, "--teams", help="engagement: number of teams (managers)."),
    team_size: float = typer.Option(8, "--team-size", help="engagement: respondents per team."),
    icc: float = typer.Option(0.1, "--icc", help="engagement: intraclass correlation within teams."),
    effect: Optional[float] = typer.Option(None, "--effect", help="engagement: difference in scale points to detect."),
    sd: Optional[float] = typer.Option(None, "--sd", help="engagement: SD of the score (default 1); cox: SD of a continuous covariate."),
    n: Optional[int] = typer.Option(None, "--n", help="cox: number of employees followed."),
    hazard_ratio: Optional[float] = typer.Option(None, "--hazard-ratio", help="cox: hazard ratio to detect."),
    event_rate: float = typer.Option(0.2, "--event-rate", help="cox: share expected to leave voluntarily."),
    exposed_share: float = typer.Option(0.5, "--exposed-share", help="Share exposed (teams or employees)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Two-sided significance level."),
    target_power: Optional[float] = typer.Option(None, "--power", help="Desired power; leave out to compute power."),
):
    """Plan a study: power, sample size or minimum detectable effect (give all but one)."""
    from .power import power_cox, power_engagement

    try:
        if kind == "engagement":
            table = power_engagement(n_teams=teams, team_size=team_size, icc=icc, effect=effect,
                                     sd=1.0 if sd is None else sd, treated_share=exposed_share, alpha=alpha,
                                     power=target_power)
        elif kind == "cox":
            table = power_cox(n=n, hazard_ratio=hazard_ratio, power=target_power, event_rate=event_rate,
                              exposed_share=exposed_share, sd=sd, alpha=alpha)
        else:
            raise AlignmentResearchError(f"The value for `kind` must be one of ['engagement', 'cox'], but {kind!r} was passed.")
    except AlignmentResearchError as e:
        _fail(e)
    row = table.iloc[0]
    for key, value in row.items():
        if value is None or (isinstance(value, float) and value != value):
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        out.print(f"{key:>14}  {shown}", highlight=False)


@app.command("notebooks")
def notebooks_command(
    paths: list[Path] = typer.Argument(None, metavar="[NOTEBOOK|FOLDER]...",
                                       help="Notebooks or folders to execute in place; the repository's notebooks/ by default."),
):
    """Re-execute notebooks in place on their default study (the committed outputs; `make notebooks`)."""
    from .notebooks import execute_notebook, find_notebooks

    targets: list[Path] = []
    for p in paths or [None]:
        targets.extend(find_notebooks(p) if p is None or p.is_dir() else [p])
    try:
        for nb in targets:
            err.print(f"executing {nb}")
            execute_notebook(nb)
    except AlignmentResearchError as e:
        _fail(e)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
