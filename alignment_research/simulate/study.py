"""The public entry points: `simulate_study`, `SimulatedStudy` and `write_simulated_study`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..config import TABLES, config_from_dict
from ..errors import ConfigError
from ..study import Study
from .assemble import assemble_tables, finish_tables
from .days import cycle_years
from .engine import run_engine
from .messy import inject_problems
from .organisation import move_to_small_departments
from .truth import SCALE_ITEMS, Truth, default_truth

__all__ = ["SimulatedStudy", "simulate_study", "write_simulated_study"]


@dataclass(frozen=True)
class SimulatedStudy(Study):
    """A simulated study: the raw tables plus everything that is true about them.

    Attributes
    ----------
    tables, config, path, sources
        As in `Study`. Tables are typed like the clean contract (dates
        ``datetime64[ns]``, ids ``str``) with the index = source row number.
    truth : Truth
        The true parameters.
    true_alignment : DataFrame
        ``employee_id, cycle, alignment_cascade, alignment_org``: the realised
        cascade alignment of every employee and cycle with goals.
    true_intervals : DataFrame
        The exact covariate path the voluntary hazard used, as contiguous
        ``(start, stop]`` intervals on tenure days (day 0 = hire) from entry
        to exit, split wherever a covariate may change (not merged):
        ``employee_id, spell, manager_id, start, stop, event, event_type,
        alignment_cascade, engagement, manager_program, manager_rating,
        job_level, log_hazard`` and, with job history,
        ``recent_manager_change`` (1 within ``manager_change_exit_months``
        of a change of manager). ``manager_id`` is the manager in force
        and ``manager_program`` follows them; ``job_level`` is the level
        at hire (the one the hazard uses). ``spell`` counts an id's spells from 1;
        ``event_type`` is the exit type on the last interval and
        ``"censored"`` elsewhere; ``engagement`` is NaN before the spell's
        first response and ``manager_rating`` NaN while none is known (the
        hazard then used the person's expected engagement and a rating of 3);
        ``log_hazard`` is the voluntary log relative hazard (without the
        baseline). It is the reference the analysis tables must reproduce
        on ``messy=False`` data.
    injected : DataFrame
        ``table, row, column, rule, note``: problems deliberately injected
        (``messy=True``), one row per problem cell (both rows of a
        conflicting duplicate); ``row`` is the source row number and ``rule``
        the cleaning rule id that should catch it.
    derived : dict
        Derived quantities (implied reliabilities, realised turnover, ...).
    """

    truth: Truth | None = None
    true_alignment: pd.DataFrame = field(default_factory=pd.DataFrame)
    true_intervals: pd.DataFrame = field(default_factory=pd.DataFrame)
    injected: pd.DataFrame = field(default_factory=pd.DataFrame)
    derived: dict = field(default_factory=dict)


def _study_config(truth: Truth):
    """The ``study.yaml`` configuration of a simulated study: window, cycles, the four scales, files."""
    scales = {}
    for name, (k, reverse) in SCALE_ITEMS.items():
        scales[name] = {"items": [f"{name}_{j}" for j in range(1, k + 1)], "reverse": list(reverse), "min": 1, "max": 5}
    cycles = [{"name": str(y), "start": f"{y}-01-01", "end": f"{y}-12-31"} for y in cycle_years(truth)]
    return config_from_dict(
        {
            "name": "simulated",
            "window": {"start": truth.window_start.isoformat(), "end": truth.window_end.isoformat()},
            "cycles": cycles,
            "scales": scales,
            "event_types": ["voluntary"],
            "min_group_size": 5,
            "files": {t: f"{t}.csv" for t in ("employees", "goals", "reviews", "surveys", "programs", "feedback")
                      + (("job_history",) if truth.history and "job_history" in TABLES else ())},
            "date_formats": ["%Y-%m-%d"],
        },
        source="simulated study.yaml",
    )


# ============================================================================ public API


def simulate_study(n_employees: int = 2000, seed: int = 0, truth: Truth | None = None, messy: bool = True) -> SimulatedStudy:
    """Simulate a study with known true effects.

    Parameters
    ----------
    n_employees : int, default 2000
        Number of employment spells in the data (observed in the window).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives identical tables.
    truth : Truth, optional
        True parameters; ``default_truth()`` when omitted. Departments below
        the minimum group size come from it:
        ``Truth(small_departments={"Legal": 3, "Audit": 4})``.
    messy : bool, default True
        Inject a few dozen realistic data problems (logged in ``injected``);
        ``False`` gives perfectly clean tables.

    Returns
    -------
    SimulatedStudy
        The raw tables, study configuration, true parameters, realised
        alignment, the exact hazard intervals and the injected problems.
        With ``truth.history`` (the default) the tables include
        ``job_history``; the static ``manager_id``, ``department``,
        ``job_level`` and ``location`` of ``employees`` are then the values
        at hire (its first row).

    Raises
    ------
    ConfigError
        ``n_employees`` below 10 or ``truth`` not a `Truth`.

    See Also
    --------
    write_simulated_study : Write the study folder (CSV tables, ``study.yaml``, ``truth.yaml``).
    load_truth : Read true parameters from YAML.

    Notes
    -----
    Positions form a tree; each is filled by a sequence of employment spells
    from ``history_years`` before the window, and ``n_employees`` spells fall
    in the window. Each cycle everyone owns goals, linked to their manager's
    with a person-specific probability (cascade alignment). Survey scores
    follow alignment, the manager's leadership development and rating.
    Voluntary, involuntary and other exits are competing hazards on tenure
    days; the voluntary log-hazard moves with alignment, engagement, the
    manager's programme and rating, job level (at hire) and, for some
    months, a change of manager. Managers are selected into leadership
    development on their rating (confounding). With job history, managers
    change (successions, reorganisations, transfers), people are promoted
    (on rating, their own mentoring and coaching, and their manager's
    development) and move location; goals, surveys, feedback and the exit
    hazard follow the manager in force. ``Truth(history=False)`` gives the
    simulator without history, bit for bit. The exact equations are in the
    docstrings of the modules that draw them:
    ``alignment_research.simulate.organisation``, ``.goals``, ``.surveys``,
    ``.exits``, ``.programs`` and ``.history`` (``.engine`` gives the order
    of the draws).

    Examples
    --------
    >>> import alignment_research as ar
    >>> sim = ar.simulate_study(n_employees=300, seed=0)
    >>> sorted(sim.tables)
    ['employees', 'feedback', 'goals', 'job_history', 'programs', 'reviews', 'surveys']
    """
    truth = default_truth() if truth is None else truth
    if not isinstance(truth, Truth):
        raise ConfigError(f"`truth` must be a Truth (see default_truth()), not {type(truth).__name__}.")
    n_employees = int(n_employees)
    if n_employees < 10:
        raise ConfigError(f"`n_employees` must be at least 10, but {n_employees} was passed.")
    rng = np.random.default_rng(seed)
    sim = run_engine(n_employees, truth, rng)
    tables, true_alignment, true_intervals = assemble_tables(sim, truth)
    if truth.small_departments:
        before = tables["employees"]["department"]
        tables["employees"] = move_to_small_departments(tables["employees"], truth.small_departments, seed)
        if "job_history" in tables:  # the moved people's history rows follow
            emp = tables["employees"]
            moved = emp.loc[emp["department"].ne(before), ["employee_id", "department"]].drop_duplicates("employee_id")
            history = tables["job_history"]
            new = history["employee_id"].map(moved.set_index("employee_id")["department"])
            tables["job_history"] = history.assign(department=new.where(new.notna(), history["department"]))
    if messy:
        tables, injected = inject_problems(tables, truth, rng, n_employees)
    else:
        injected = pd.DataFrame({c: pd.Series(dtype=object) for c in ["table", "row", "column", "rule", "note"]})
    tables = {name: finish_tables(t.drop(columns=[c for c in ("_spell",) if c in t.columns])) for name, t in tables.items()}
    config = _study_config(truth)
    derived = dict(sim.get("derived", {}))
    derived.update({"seed": int(seed), "n_employees": n_employees, "messy": bool(messy)})
    return SimulatedStudy(
        tables=tables, config=config, path=None, sources={t: f"{t}.csv" for t in tables},
        truth=truth, true_alignment=true_alignment, true_intervals=true_intervals, injected=injected, derived=derived,
    )


def _yaml_ready(value):
    if isinstance(value, dict):
        return {k: _yaml_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_simulated_study(sim: SimulatedStudy, out_dir: str | Path, *, omit: Sequence[str] = ()) -> Path:
    """Write a simulated study folder: the CSV tables, ``study.yaml`` and ``truth.yaml``.

    Parameters
    ----------
    sim : SimulatedStudy
        From `simulate_study`.
    out_dir : str or Path
        Folder to write (created if missing; files are overwritten).
    omit : sequence of str, default ()
        Columns to leave out of the files, as ``"table.column"``: only columns
        the data contract marks optional (the goals columns of the essay's
        claims, such as ``goals.set_with``, or a covariate). The study then
        looks like an export without them, while ``truth.yaml`` still holds
        the effects they carry, so the claims that need them come out as not
        testable. Every other file is the same bit for bit.

    Returns
    -------
    Path
        The folder.

    Notes
    -----
    ``job_history.csv`` is written when the study has one; ``study.yaml``
    lists it under ``files`` once the data contract knows the table
    (``alignment_research.config.TABLES``). Dates are ISO (``YYYY-MM-DD``) except the few cells ``sim.injected`` marks
    ``excel_serial_date``, which are written as Excel serial day numbers.
    Floats use ``%.10g``, so the files are identical bit for bit for a seed.

    Examples
    --------
    >>> import alignment_research as ar, tempfile
    >>> folder = ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['employees.csv', 'feedback.csv', 'goals.csv']
    >>> folder = ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), tempfile.mkdtemp(),
    ...                                   omit=["goals.set_with"])
    >>> "set_with" in (folder / "goals.csv").read_text().splitlines()[0]
    False
    """
    dropped = _omitted_columns(sim, omit)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    serial = sim.injected[sim.injected["rule"] == "excel_serial_date"] if len(sim.injected) else sim.injected
    for name, table in sim.tables.items():
        frame = table.drop(columns=dropped.get(name, []))
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                text = frame[col].dt.strftime("%Y-%m-%d").astype(object)
                hits = serial[(serial["table"] == name) & (serial["column"] == col)] if len(serial) else serial
                for row in hits["row"] if len(hits) else []:
                    text.loc[row] = str((frame.at[row, col] - pd.Timestamp("1899-12-30")).days)
                frame[col] = text.where(frame[col].notna(), None)
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.10g", lineterminator="\n")
    study_yaml = sim.config.to_yaml_dict()
    study_yaml["files"] = {t: f"{t}.csv" for t in sim.tables if t in TABLES}  # job_history once the contract has it
    (out / "study.yaml").write_text(yaml.safe_dump(study_yaml, sort_keys=False, allow_unicode=True), encoding="utf-8")
    truth = _yaml_ready(sim.truth.model_dump())
    if not truth.get("small_departments"):
        truth.pop("small_departments", None)  # the default: truth files stay as they were before the option
    truth["derived"] = _yaml_ready(sim.derived)
    header = "# True parameters of this simulated study (alignment-research simulate); `derived` is informational.\n"
    if omit:
        header += f"# Left out of the files (write_simulated_study omit): {', '.join(sorted(omit))}.\n"
    (out / "truth.yaml").write_text(header + yaml.safe_dump(truth, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


def _omitted_columns(sim: SimulatedStudy, omit: Sequence[str]) -> dict[str, list[str]]:
    """``omit``'s ``"table.column"`` entries by table, each checked: a written, optional column of the contract."""
    if not omit:
        return {}
    from ..schema import REQUIRED_COLUMNS  # deferred: pandera loads only when a column is left out

    dropped: dict[str, list[str]] = {}
    for entry in omit:
        table, _, column = str(entry).partition(".")
        if table not in sim.tables or column not in sim.tables[table].columns:
            written = ", ".join(f"{t}.{c}" for t in sim.tables for c in sim.tables[t].columns
                                if c not in REQUIRED_COLUMNS.get(t, ()))
            raise ConfigError(f"omit: {entry!r} is not a column of the simulated study; optional columns written: {written}")
        if column in REQUIRED_COLUMNS.get(table, ()):
            raise ConfigError(f"omit: {entry!r} is required by the data contract (schema.REQUIRED_COLUMNS); "
                             "only optional columns can be left out")
        dropped.setdefault(table, []).append(column)
    return dropped
