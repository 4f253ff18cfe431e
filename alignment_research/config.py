"""The study configuration (``study.yaml``), parsed into a validated object."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = [
    "TABLES",
    "REQUIRED_TABLES",
    "StudyConfig",
    "Window",
    "Cycle",
    "Scale",
    "Database",
    "load_config",
    "config_from_dict",
]

#: The six canonical tables of a study, in the order they are processed.
TABLES = ("employees", "goals", "reviews", "surveys", "programs", "feedback")
#: Tables a study must have.
REQUIRED_TABLES = ("employees",)

#: Termination types as written in HRIS exports, mapped to the canonical three.
DEFAULT_TERMINATION_MAP = {
    "voluntary": "voluntary",
    "resignation": "voluntary",
    "resigned": "voluntary",
    "quit": "voluntary",
    "retirement": "other",
    "retired": "other",
    "involuntary": "involuntary",
    "dismissal": "involuntary",
    "dismissed": "involuntary",
    "terminated": "involuntary",
    "layoff": "involuntary",
    "redundancy": "involuntary",
    "other": "other",
    "death": "other",
    "end of contract": "other",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Strict):
    """Observation window: employees are at risk from ``start`` to ``end`` inclusive."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError(f"window.end ({self.end}) must be after window.start ({self.start})")
        return self


class Cycle(_Strict):
    """A review cycle: goals are set at ``start``; ratings are known at ``end``."""

    name: str
    start: dt.date
    end: dt.date

    @field_validator("name", mode="before")
    @classmethod
    def _name_as_text(cls, value):
        return str(value)

    @model_validator(mode="after")
    def _ordered(self):
        if self.end <= self.start:
            raise ValueError(f"cycle {self.name}: end ({self.end}) must be after start ({self.start})")
        return self


class Scale(_Strict):
    """A survey scale: its items, the reverse-coded ones, and the response range."""

    items: list[str] = Field(min_length=2)
    reverse: list[str] = Field(default_factory=list)
    min: int = 1
    max: int = 5
    min_answered: float = Field(0.5, gt=0, le=1, description="share of items needed for a score")

    @model_validator(mode="after")
    def _reverse_are_items(self):
        unknown = sorted(set(self.reverse) - set(self.items))
        if unknown:
            raise ValueError(f"reverse-coded items {unknown} are not among the scale's items {self.items}")
        if self.max <= self.min:
            raise ValueError(f"max ({self.max}) must be above min ({self.min})")
        return self


class Database(_Strict):
    """Tables read from a SQL database instead of files."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///hris.db (relative to the study folder)")
    tables: dict[str, str] = Field(description="canonical table name -> database table name")

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value):
        unknown = sorted(set(value) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; allowed: {list(TABLES)}")
        return value


class StudyConfig(_Strict):
    """Everything a researcher decides about a study, validated on load.

    Parameters
    ----------
    name : str
        Short name of the study, shown in reports.
    window : Window
        Observation window (``start``, ``end``).
    cycles : list of Cycle
        Review cycles with their dates, in time order.
    scales : dict of str to Scale
        Survey scale definitions keyed by scale name (``engagement``, ...).
    event_types : list of str, default ["voluntary"]
        Termination types that count as the event; the others compete.
    min_group_size : int, default 5
        Smallest group shown to leadership; smaller cells are suppressed.
    files : dict of str to str
        Table name to file name, relative to the study folder.
    database : Database, optional
        Read these tables from a SQL database instead.
    column_maps : dict of str to dict of str to str
        Per table, the vendor's column name mapped to the canonical one.
    termination_map : dict of str to str
        Lower-case termination text to ``voluntary``, ``involuntary`` or ``other``.
    date_formats : list of str
        ``strptime`` formats tried in order; Excel serial numbers are always accepted.
    pseudonymise : bool, default False
        Replace employee ids with a keyed hash (key from ``pseudonym_key_env``).
    """

    name: str = "study"
    window: Window
    cycles: list[Cycle] = Field(default_factory=list)
    scales: dict[str, Scale] = Field(default_factory=dict)
    event_types: list[Literal["voluntary", "involuntary", "other"]] = Field(default_factory=lambda: ["voluntary"])
    min_group_size: int = Field(5, ge=1)
    files: dict[str, str] = Field(default_factory=dict)
    database: Database | None = None
    column_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    termination_map: dict[str, Literal["voluntary", "involuntary", "other"]] = Field(
        default_factory=lambda: dict(DEFAULT_TERMINATION_MAP)
    )
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"])
    earliest_plausible_date: dt.date = dt.date(1950, 1, 1)
    pseudonymise: bool = False
    pseudonym_key_env: str = "ALIGNMENT_RESEARCH_KEY"

    @field_validator("files", "column_maps")
    @classmethod
    def _known_tables(cls, value):
        unknown = sorted(set(value) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; allowed: {list(TABLES)}")
        return value

    @field_validator("termination_map", mode="before")
    @classmethod
    def _lower_keys(cls, value):
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _cycles_ordered(self):
        names = [c.name for c in self.cycles]
        if len(set(names)) != len(names):
            raise ValueError(f"cycle names must be unique, got {names}")
        starts = [c.start for c in self.cycles]
        if starts != sorted(starts):
            raise ValueError("cycles must be listed in time order")
        return self

    def to_yaml_dict(self) -> dict:
        """Return a plain dict that round-trips through ``study.yaml``."""
        return self.model_dump(mode="json", exclude_none=True)


def format_validation_error(
    err: ValidationError,
    source: str,
    *,
    what: str = "study configuration",
    unknown: str = "unknown key (misspelt?). Remove it or use one of the documented keys.",
    missing: bool = True,
) -> str:
    """Turn a pydantic error into lines naming each key, what is wrong, and the value given."""
    lines = [f"{source} is not a valid {what}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  `{where}`: {unknown}")
        elif e["type"] == "missing" and missing:
            lines.append(f"  `{where}`: required but missing.")
        else:
            given = e.get("input")
            given = "" if isinstance(given, dict) and missing else f", but {given!r} was given"
            lines.append(f"  `{where}`: {e['msg']}{given}.")
    return "\n".join(lines)


def config_from_dict(data: dict, *, source: str = "study.yaml") -> StudyConfig:
    """Validate a configuration held in a dict.

    Parameters
    ----------
    data : dict
        The parsed YAML.
    source : str, default "study.yaml"
        Name used in error messages.

    Returns
    -------
    StudyConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        Naming every misspelt key and wrong value.

    Examples
    --------
    >>> cfg = config_from_dict({"window": {"start": "2021-01-01", "end": "2024-12-31"}})
    >>> cfg.min_group_size
    5
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must hold a mapping of keys to values, not {type(data).__name__}.")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a ``study.yaml`` file.

    Parameters
    ----------
    path : str or Path
        The YAML file, or the study folder that holds ``study.yaml``.

    Returns
    -------
    StudyConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or breaks the configuration schema.

    Examples
    --------
    >>> import alignment_research as ar, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "study.yaml").write_text("window: {start: 2021-01-01, end: 2024-12-31}\\n")
    >>> ar.load_config(folder).window.end.year
    2024
    """
    path = Path(path)
    if path.is_dir():
        path = path / "study.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no study.yaml found. A study folder needs one; see README 'The study folder'.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not readable as YAML ({err.__class__.__name__}: {err}).") from None
    return config_from_dict(data, source=str(path.name))
