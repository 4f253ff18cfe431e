"""The ``alignment-research`` command line: simulate, validate, clean, run, power."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Optional

import click
import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import AlignmentResearchError, DataContractError

__all__ = ["app"]

app = typer.Typer(
    help="Test whether goal alignment and leadership development raise engagement and retention.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

SAMPLE = Path("data/sample")


def _say(text: str, *, console: Console = out) -> None:
    """Print text as it is (no rich markup, no highlighting, no wrapping)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _fail(error: Exception | str) -> None:
    err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code=1)


def _print_version(value: bool) -> None:
    if value:
        _say(f"alignment-research {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Test whether goal alignment and leadership development raise engagement and retention."""


def _internal_error(command: str, error: BaseException) -> None:
    """One line for the user; the traceback goes to a file in the temporary folder (never the study)."""
    try:
        fd, path = tempfile.mkstemp(prefix=f"alignment-research-{command}-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(traceback.format_exception(error)))
        where = f"the full traceback was written to {path}"
    except OSError:
        where = "the traceback could not be written to the temporary folder"
    message = " ".join(str(error).split())
    message = message if len(message) <= 300 else message[:297] + "..."
    _say(f"internal error in {command}: {type(error).__name__}: {message}; {where}; please report it", console=err)
    raise typer.Exit(code=1)


def _guarded(func):
    """Run a command so that no traceback reaches the user.

    The toolkit's own errors print their message and exit 1; any other
    exception is an internal error: one line naming it and where its
    traceback was written, exit 1. Ctrl-C exits 130 without a word.
    """
    command = func.__name__.removesuffix("_command")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except AlignmentResearchError as e:
            _fail(e)
        except KeyboardInterrupt:
            raise typer.Exit(code=130) from None
        except BrokenPipeError:  # output piped into `head`, which stopped reading
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(code=1) from None
        except Exception as e:  # noqa: BLE001 - the last resort: a bug, reported in one line
            _internal_error(command, e)

    return wrapper


@app.command()
@_guarded
def simulate(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the study to (created)."),
    employees: int = typer.Option(2000, "--employees", min=10, help="Number of employees ever employed in the window."),
    seed: int = typer.Option(0, "--seed", help="Random seed; the same seed gives the same files bit for bit."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="YAML of true parameters overriding the defaults."),
    omit: list[str] = typer.Option(
        [], "--omit", help="Leave an optional column out of the files, as table.column (e.g. goals.set_with); repeatable."
    ),
):
    """Write a synthetic study with known effects (all six tables, study.yaml, truth.yaml)."""
    from .simulate import load_truth, simulate_study, write_simulated_study  # deferred: lazy loading for a fast CLI start

    params = load_truth(truth) if truth is not None else None
    study = simulate_study(n_employees=employees, seed=seed, truth=params)
    write_simulated_study(study, out_dir, omit=omit)
    left_out = f", without {', '.join(omit)}" if omit else ""
    _say(f"wrote a simulated study of {employees} employees (seed {seed}){left_out} to {out_dir}")


@app.command()
@_guarded
def validate(
    study_dir: Path = typer.Argument(..., metavar="STUDY", help="The study folder (with study.yaml)."),
    examples: int = typer.Option(5, "--examples", min=0, help="Problems shown per rule, file and column."),
    show_all: bool = typer.Option(False, "--all", help="Show every problem, not only the examples."),
    output: Optional[Path] = typer.Option(
        None, "--output", help="Write every problem to this CSV (file, table, row, column, rule, value, action, hint)."
    ),
):
    """Check a study against the data contract: a summary by rule with hints, then examples.

    Exit code 0: the study is usable (no problems, or warnings only: cleaning
    fixes, sets to missing, flags or quarantines those rows). Exit code 1: it
    is not (a file unreadable, a table or required column missing, a
    required column mostly unreadable, study.yaml invalid); fix the fatal
    problems and run again.
    """
    from .clean import validate_study  # deferred: lazy loading for a fast CLI start
    from .load import load_study  # deferred: lazy loading for a fast CLI start
    from .validate import (  # deferred: lazy loading for a fast CLI start
        PROBLEM_FILE_COLUMNS,
        explain_problems,
        format_problems,
        problems_from_error,
    )

    try:
        problems = validate_study(load_study(study_dir))
    except DataContractError as e:
        if e.problems.empty:
            raise
        # every file-level problem of the study, shown like the row-level ones (not only the first ten)
        _say("\n".join(line for line in str(e).splitlines() if not line.startswith("  ")))
        problems = problems_from_error(e)
    explained = explain_problems(problems)
    if problems.empty:
        _say(f"{study_dir}: no problems found.")
    else:
        _say(format_problems(explained, examples=None if show_all else examples))
    if output is not None:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            explained[PROBLEM_FILE_COLUMNS].to_csv(output, index=False)
        except OSError as e:
            _fail(f"cannot write {output}: {e.strerror or e}")
        _say(f"wrote {len(problems)} problem(s) to {output}")
    if problems["fatal"].any():
        raise typer.Exit(code=1)


@app.command()
@_guarded
def clean(
    study_dir: Path = typer.Argument(..., metavar="STUDY", help="The study folder (with study.yaml)."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for clean tables, cleaning_report.csv, quarantine/ and analysis/."),
):
    """Clean a study: clean tables (Parquet), cleaning report, quarantine, analysis tables."""
    from .clean import clean_study, write_clean_study  # deferred: lazy loading for a fast CLI start
    from .load import load_study  # deferred: lazy loading for a fast CLI start

    cleaned = clean_study(load_study(study_dir))
    write_clean_study(cleaned, out_dir)
    _say(cleaned.counts.to_string(index=False))
    _say(f"{len(cleaned.report)} issue(s) logged; wrote {out_dir}")


@app.command()
@_guarded
def run(
    study_dir: Path = typer.Argument(SAMPLE, metavar="[STUDY]", help="The study folder; the bundled sample study by default."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out",
        help="Folder for the HTML reports; by default reports/<study name from study.yaml> under the current folder "
             "(git-ignored) for any other study.",
    ),
    cache: Optional[Path] = typer.Option(
        None, "--cache",
        help="Folder caching the cleaned tables (reused while the inputs are unchanged); "
             "by default under ~/.cache/alignment-research/.",
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Clean in memory; write and reuse no cache."),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, help="Notebooks executed at once (default: the machine's cores)."
    ),
):
    """The main job: clean the study, execute every notebook on it, render HTML reports."""
    from .run import run_study  # deferred: lazy loading for a fast CLI start

    result = run_study(study_dir, out_dir, cache_dir=False if no_cache else cache, workers=workers)
    _say(f"wrote {len(result.reports)} report(s); open {result.index}")


@app.command()
@_guarded
def power(
    kind: str = typer.Argument(
        "engagement",
        help="engagement (team-level difference in means), cox (hazard ratio), or simulate (power by simulation over --grid).",
    ),
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
    grid: Optional[Path] = typer.Option(
        None, "--grid", help="simulate: YAML of lists (n_teams, effect; team_size, icc, attrition, sd, treated_share, alpha)."
    ),
    reps: int = typer.Option(500, "--reps", help="simulate: simulated trials per design."),
    backend: str = typer.Option("processes", "--backend", help="simulate: sequential, processes or dask."),
    workers: Optional[int] = typer.Option(None, "--workers", help="simulate: local processes (default: the machine's cores)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="simulate: Dask scheduler address, e.g. tcp://host:8786."),
    seed: int = typer.Option(0, "--seed", help="simulate: random seed (results are identical on every backend)."),
    out_dir: Path = typer.Option(Path("power_simulation"), "--out", help="simulate: folder for power_simulation.csv and .png."),
):
    """Plan a study: power, sample size or minimum detectable effect (give all but one), or power by simulation."""
    from .power import power_cox, power_engagement  # deferred: lazy loading for a fast CLI start

    if kind == "simulate":
        _power_simulate(grid, reps=reps, backend=backend, workers=workers, scheduler=scheduler, seed=seed,
                        out_dir=out_dir)
        return
    if kind == "engagement":
        table = power_engagement(n_teams=teams, team_size=team_size, icc=icc, effect=effect,
                                 sd=1.0 if sd is None else sd, treated_share=exposed_share, alpha=alpha,
                                 power=target_power)
    elif kind == "cox":
        table = power_cox(n=n, hazard_ratio=hazard_ratio, power=target_power, event_rate=event_rate,
                          exposed_share=exposed_share, sd=sd, alpha=alpha)
    else:
        raise AlignmentResearchError(
            f"The value for `kind` must be one of ['engagement', 'cox', 'simulate'], but {kind!r} was passed."
        )
    row = table.iloc[0]
    for key, value in row.items():
        if value is None or (isinstance(value, float) and value != value):
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        _say(f"{key:>14}  {shown}")


def _power_simulate(grid: Path | None, *, reps: int, backend: str, workers: int | None, scheduler: str | None,
                    seed: int, out_dir: Path) -> None:
    """``power simulate``: the grid's simulated and analytic power as CSV and PNG."""
    from .power import plot_power, simulate_power  # deferred: lazy loading for a fast CLI start

    if grid is None:
        raise AlignmentResearchError("power simulate needs --grid GRID.yaml (lists of n_teams and effect, at least).")
    table = simulate_power(grid, reps=reps, seed=seed, backend=backend, n_workers=workers, scheduler=scheduler)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        csv, png = out_dir / "power_simulation.csv", out_dir / "power_simulation.png"
        table.to_csv(csv, index=False)
        import matplotlib  # deferred: plotting only for this command

        matplotlib.use("Agg")
        ax = plot_power(table)
        ax.figure.savefig(png, dpi=120, bbox_inches="tight")
    except OSError as e:
        _fail(f"cannot write to {out_dir}: {e.strerror or e}")
    _say(f"simulated {len(table)} design(s) x {reps} trials ({backend}); wrote {csv} and {png}")


@app.command("notebooks")
@_guarded
def notebooks_command(
    paths: list[Path] = typer.Argument(None, metavar="[NOTEBOOK|FOLDER]...",
                                       help="Notebooks or folders to execute in place; the repository's notebooks/ by default."),
):
    """Re-execute notebooks in place on their default study (the committed outputs; `make notebooks`)."""
    from .notebooks import execute_notebook, find_notebooks  # deferred: lazy loading for a fast CLI start

    targets: list[Path] = []
    for p in paths or [None]:
        targets.extend(find_notebooks(p) if p is None or p.is_dir() else [p])
    for nb in targets:
        _say(f"executing {nb}", console=err)
        execute_notebook(nb)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
