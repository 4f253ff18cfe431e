"""The study configuration (``study.yaml``), parsed into a validated object."""

from __future__ import annotations

import datetime as dt
import re
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
    "NA_VALUES",
    "FILE_SUFFIXES",
    "HISTORY_REASONS",
    "FEEDBACK_KINDS",
    "SET_WITH",
    "COVARIATE_TYPES",
    "mask_password",
    "Analysis",
    "RetentionAnalysis",
    "EngagementAnalysis",
    "ProgrammeAnalysis",
]

#: The canonical tables of a study, in the order they are processed (``job_history`` is optional, as
#: every table but ``employees`` is; it comes last because it refers to employees only).
TABLES = ("employees", "goals", "reviews", "surveys", "programs", "feedback", "job_history")
#: Tables a study must have.
REQUIRED_TABLES = ("employees",)
#: File kinds a table may come in, in the order they are looked for.
FILE_SUFFIXES = (".csv", ".parquet", ".xlsx")
#: Default study.yaml ``na_values``: cell texts read as missing in every column of every table,
#: compared case-insensitively after stripping spaces. An empty or blank cell is always missing.
NA_VALUES = ["", "NA", "N/A", "NaN", "NaT", "<NA>", "NULL", "None", "nil", "-", "--", "?", "#N/A", "#NULL!"]
#: strptime directives (Python 3.11); a date format must use at least one that gives the year.
_DATE_DIRECTIVES = set("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")
_YEAR_DIRECTIVES = set("cGxyY")

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

#: The canonical ``reason`` of a ``job_history`` row.
HISTORY_REASONS = ("hire", "promotion", "demotion", "transfer", "manager_change", "reorganisation", "other")

#: Reasons of history changes as written in HRIS exports (lower case; spaces and hyphens read as ``_``),
#: mapped to the canonical seven. The canonical words always map to themselves.
DEFAULT_REASON_MAP = {
    "new_hire": "hire",
    "rehire": "hire",
    "hired": "hire",
    "promoted": "promotion",
    "demoted": "demotion",
    "lateral_move": "transfer",
    "lateral_transfer": "transfer",
    "move": "transfer",
    "relocation": "transfer",
    "new_manager": "manager_change",
    "change_of_manager": "manager_change",
    "manager_changed": "manager_change",
    "reorg": "reorganisation",
    "reorganization": "reorganisation",
    "restructure": "reorganisation",
    "restructuring": "reorganisation",
    "data_change": "other",
    "correction": "other",
}

#: The canonical ``kind`` of a ``feedback`` row; study.yaml ``feedback_kinds`` maps vendor words onto these.
FEEDBACK_KINDS = ("check_in", "360_review", "recognition", "other")

#: Feedback kinds as written in HRIS and feedback-tool exports (lower case; spaces and hyphens read as ``_``),
#: mapped to the canonical four. The canonical words always map to themselves; a kind neither canonical nor
#: mapped is kept as ``other`` and reported (``unmapped_feedback_kind``).
DEFAULT_FEEDBACK_KINDS = {
    "360": "360_review",
    "360_feedback": "360_review",
    "360_degree_feedback": "360_review",
    "360_degree_review": "360_review",
    "checkin": "check_in",
    "one_on_one": "check_in",
    "1_on_1": "check_in",
    "kudos": "recognition",
    "praise": "recognition",
    "shout_out": "recognition",
}

#: Who set a goal (the optional goals column ``set_with``); study.yaml ``set_with_map`` maps vendor words onto these.
SET_WITH = ("employee", "manager", "jointly")

#: ``set_with`` as written in goal-tool exports (lower case; spaces and hyphens read as ``_``), mapped to the
#: canonical three. The canonical words always map to themselves; other words are set missing (``unknown_category``).
DEFAULT_SET_WITH_MAP = {
    "self": "employee",
    "self_set": "employee",
    "employee_set": "employee",
    "bottom_up": "employee",
    "manager_set": "manager",
    "assigned": "manager",
    "cascaded": "manager",
    "top_down": "manager",
    "joint": "jointly",
    "together": "jointly",
    "collaborative": "jointly",
    "both": "jointly",
}

#: The types a study.yaml ``covariates`` entry may declare.
COVARIATE_TYPES = ("numeric", "category", "boolean")


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

    @field_validator("url")
    @classmethod
    def _parses(cls, value):
        from sqlalchemy.engine import make_url  # deferred: sqlalchemy is heavy and only a database source needs it
        from sqlalchemy.exc import ArgumentError  # deferred: sqlalchemy is heavy and only a database source needs it

        try:
            make_url(value)
        except (ArgumentError, ValueError) as err:
            why = f" ({err})" if isinstance(err, ValueError) else ""
            raise ValueError(
                f"not a SQLAlchemy URL{why}; write dialect[+driver]://user@host/database, "
                "e.g. sqlite:///hris.db or postgresql://analyst@db.example.org/hris"
            ) from None
        return value

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value):
        unknown = sorted(set(value) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; allowed: {list(TABLES)}")
        return value


# ---------------------------------------------------------------- analysis: the primary analysis

#: Default right-hand side of the primary retention (Cox) model on ``intervals``.
PRIMARY_RETENTION_FORMULA = (
    "alignment_cascade + engagement + manager_program + manager_rating + C(job_level) + C(department)"
)
#: Default formula of the primary engagement (mixed) model on ``survey_panel``.
PRIMARY_ENGAGEMENT_FORMULA = "engagement ~ alignment_cascade + manager_program + C(job_level) + C(department)"


class RetentionAnalysis(_Strict):
    """The primary retention model: a Cox model of voluntary exit on the ``intervals`` table.

    Parameters
    ----------
    formula : str
        Right-hand side of the model (time-varying covariates of ``intervals``).
        Default: cascade alignment, engagement, the manager's programme, the
        manager's review rating, job level and department.
    cluster : str or None, default "manager_id"
        Column whose groups get cluster-robust standard errors (None: model-based).
    """

    formula: str = PRIMARY_RETENTION_FORMULA
    cluster: str | None = "manager_id"

    @field_validator("formula")
    @classmethod
    def _right_hand_side(cls, value):
        if "~" in value:
            raise ValueError(f"give only the right-hand side of the retention model (the event is fixed), got {value!r}")
        if not value.strip():
            raise ValueError("the retention formula is empty; name at least one covariate")
        return value


class EngagementAnalysis(_Strict):
    """The primary engagement model: a linear mixed model on the ``survey_panel`` table.

    Parameters
    ----------
    formula : str
        ``engagement ~ ...``. Default: cascade alignment, the manager's
        programme, job level and department.
    groups : str, default "manager_id"
        Column of the random intercept (employees of one manager resemble each other).
    """

    formula: str = PRIMARY_ENGAGEMENT_FORMULA
    groups: str = "manager_id"

    @field_validator("formula")
    @classmethod
    def _two_sided(cls, value):
        if "~" not in value:
            raise ValueError(f"the engagement formula needs an outcome: 'engagement ~ ...', got {value!r}")
        return value


class ProgrammeAnalysis(_Strict):
    """The primary programme design (see :func:`estimate_program_effect`).

    Parameters
    ----------
    program : str, default "leadership_development"
        The programme, as named in the ``programs`` table.
    outcomes : list of {"retention", "engagement"}, default both
        Outcomes whose programme effect is estimated with this design.
    design : {"matched", "ipw"}, default "matched"
        How enrolling managers are compared with not-yet-enrolled ones.
    ratio : int, default 3
        Controls matched to each enrolling manager.
    caliper : float, default 0.2
        Matching caliper in SDs of the logit propensity.
    """

    program: str = "leadership_development"
    outcomes: list[Literal["retention", "engagement"]] = Field(
        default_factory=lambda: ["retention", "engagement"], min_length=1)
    design: Literal["matched", "ipw"] = "matched"
    ratio: int = Field(3, ge=1)
    caliper: float = Field(0.2, gt=0)


class Analysis(_Strict):
    """The study's primary analysis (``analysis:`` in study.yaml).

    The leadership brief and the analyst notebooks report exactly these
    models; every other model is shown as a labelled sensitivity analysis.

    Parameters
    ----------
    retention : RetentionAnalysis
        The primary retention model.
    engagement : EngagementAnalysis
        The primary engagement model.
    programme : ProgrammeAnalysis
        The primary programme design; its hazard ratio is *the* programme
        effect on exits.
    months : int, default 12
        Tenure (months) at which the brief reads retention ("still here after 12 months").
    horizon_months : int, default 36
        Horizon (months) of the restricted mean tenure ("stay on average N months longer over 3 years").
    """

    retention: RetentionAnalysis = Field(default_factory=RetentionAnalysis)
    engagement: EngagementAnalysis = Field(default_factory=EngagementAnalysis)
    programme: ProgrammeAnalysis = Field(default_factory=ProgrammeAnalysis)
    months: int = Field(12, ge=1, le=120)
    horizon_months: int = Field(36, ge=1, le=240)

    @model_validator(mode="after")
    def _horizon_after_months(self):
        if self.horizon_months < self.months:
            raise ValueError(f"horizon_months ({self.horizon_months}) must be at least months ({self.months})")
        return self


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
        Table name to file name, relative to the study folder. A path must stay
        inside the study folder (symbolic links are followed before checking).
    allow_outside_paths : bool, default False
        Allow ``files`` entries and a ``sqlite`` database outside the study
        folder (absolute paths, ``..``, links pointing out). Such sources are
        recorded in ``Study.outside_sources`` and listed on ``index.html``.
    database : Database, optional
        Read these tables from a SQL database instead.
    column_maps : dict of str to dict of str to str
        Per table, the vendor's column name mapped to the canonical one. Every
        vendor column named must exist in the file.
    sheets : dict of str to str
        Per table read from an ``.xlsx`` workbook, the sheet that holds it. Needed
        when the workbook has more than one sheet with data.
    na_values : list of str
        Cell texts read as missing in every column of every table (files and
        database), compared case-insensitively after stripping spaces; an
        empty or blank cell is always missing. The list replaces the default
        :data:`NA_VALUES`; quote entries in YAML (``["-", "?"]``).
    termination_map : dict of str to str
        Lower-case termination text to ``voluntary``, ``involuntary`` or ``other``.
    reason_map : dict of str to str
        Vendor text of a ``job_history`` ``reason`` (compared in lower case, with
        spaces and hyphens read as ``_``) to one of ``hire``, ``promotion``,
        ``demotion``, ``transfer``, ``manager_change``, ``reorganisation``,
        ``other``; entries are added to the defaults (``reorg`` ->
        ``reorganisation``, ...), and the canonical words map to themselves.
    feedback_kinds : dict of str to str
        Vendor text of a ``feedback`` ``kind`` (compared in lower case, with
        spaces and hyphens read as ``_``) to one of ``check_in``,
        ``360_review``, ``recognition``, ``other``; entries are added to the
        defaults (``360`` -> ``360_review``, ``kudos`` -> ``recognition``, ...),
        and the canonical words map to themselves. A kind neither canonical
        nor mapped is kept as ``other`` and reported
        (``unmapped_feedback_kind``).
    set_with_map : dict of str to str
        Vendor text of the optional goals column ``set_with`` (compared as
        ``feedback_kinds``) to ``employee``, ``manager`` or ``jointly``;
        entries are added to the defaults (``joint`` -> ``jointly``, ...),
        and the canonical words map to themselves. Other words are set
        missing (``unknown_category``).
    covariates : dict of str to str
        Extra columns of ``employees`` and/or ``job_history`` to carry into the
        analysis tables, each with its type: ``numeric``, ``category`` or
        ``boolean`` (e.g. ``{pay_band: category, remote: boolean}``). A name
        must not be a column of the contract; a name in neither table stops
        cleaning (``missing_covariate``).
    date_formats : list of str
        ``strptime`` formats tried in order; Excel serial numbers are always accepted.
        Each must use only strptime directives and include the year
        (``%Y``, ``%y``, ``%G``, ``%c`` or ``%x``).
    pseudonymise : bool, default False
        Replace employee ids with a keyed hash (key from ``pseudonym_key_env``).
    analysis : Analysis
        The primary analysis (outcome models, covariates, programme design);
        documented defaults when omitted. See :class:`Analysis`.
    """

    name: str = "study"
    window: Window
    cycles: list[Cycle] = Field(default_factory=list)
    scales: dict[str, Scale] = Field(default_factory=dict)
    event_types: list[Literal["voluntary", "involuntary", "other"]] = Field(default_factory=lambda: ["voluntary"])
    min_group_size: int = Field(5, ge=1)
    files: dict[str, str] = Field(default_factory=dict)
    allow_outside_paths: bool = False
    database: Database | None = None
    column_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    sheets: dict[str, str] = Field(default_factory=dict)
    na_values: list[str] = Field(default_factory=lambda: list(NA_VALUES))
    termination_map: dict[str, Literal["voluntary", "involuntary", "other"]] = Field(
        default_factory=lambda: dict(DEFAULT_TERMINATION_MAP)
    )
    reason_map: dict[str, Literal[HISTORY_REASONS]] = Field(default_factory=lambda: dict(DEFAULT_REASON_MAP))
    feedback_kinds: dict[str, Literal[FEEDBACK_KINDS]] = Field(default_factory=lambda: dict(DEFAULT_FEEDBACK_KINDS))
    set_with_map: dict[str, Literal[SET_WITH]] = Field(default_factory=lambda: dict(DEFAULT_SET_WITH_MAP))
    covariates: dict[str, Literal[COVARIATE_TYPES]] = Field(default_factory=dict)
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"])
    earliest_plausible_date: dt.date = dt.date(1950, 1, 1)
    pseudonymise: bool = False
    pseudonym_key_env: str = "ALIGNMENT_RESEARCH_KEY"
    # --- the primary analysis (issue 14) ---
    analysis: Analysis = Field(default_factory=Analysis)

    @field_validator("files", "column_maps", "sheets")
    @classmethod
    def _known_tables(cls, value):
        unknown = sorted(set(value) - set(TABLES))
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; allowed: {list(TABLES)}")
        return value

    @field_validator("files")
    @classmethod
    def _file_kinds(cls, value):
        for table, name in value.items():
            if not name.strip():
                raise ValueError(f"`files.{table}` is empty; give the file name, e.g. {table}.csv")
            if Path(name).suffix.lower() not in FILE_SUFFIXES:
                raise ValueError(
                    f"`files.{table}` names {name!r}, not a file kind that can be read; "
                    f"use one of {list(FILE_SUFFIXES)} (export it from the HRIS as CSV UTF-8)"
                )
        return value

    @field_validator("sheets", mode="before")
    @classmethod
    def _sheet_names_as_text(cls, value):
        if isinstance(value, dict):
            return {k: str(v) if isinstance(v, (int, float)) else v for k, v in value.items()}
        return value

    @field_validator("na_values", mode="before")
    @classmethod
    def _markers_as_text(cls, value):
        # YAML reads a bare null as None and 0 as a number; the user meant the text in the cell
        if isinstance(value, list):
            return ["null" if v is None else str(v) if isinstance(v, (int, float)) else v for v in value]
        return value

    @field_validator("date_formats")
    @classmethod
    def _strptime_formats(cls, value):
        if not value:
            raise ValueError("give at least one date format, e.g. ['%Y-%m-%d']")
        for i, fmt in enumerate(value):
            problem = _date_format_problem(fmt)
            if problem:
                raise ValueError(
                    f"entry {i} ({fmt!r}) {problem}; write formats with strptime directives, "
                    "e.g. '%Y-%m-%d' or '%d/%m/%Y'"
                )
        return value

    @field_validator("termination_map", mode="before")
    @classmethod
    def _lower_keys(cls, value):
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
        return value

    @field_validator("reason_map", mode="before")
    @classmethod
    def _reason_keys(cls, value):
        # the user's entries are added to the defaults, keyed as cleaning compares them
        if isinstance(value, dict):
            return {**DEFAULT_REASON_MAP, **{_snake(k): v for k, v in value.items()}}
        return value

    @field_validator("feedback_kinds", mode="before")
    @classmethod
    def _feedback_keys(cls, value):
        if isinstance(value, dict):
            return {**DEFAULT_FEEDBACK_KINDS, **{_snake(k): _lower(v) for k, v in value.items()}}
        return value

    @field_validator("set_with_map", mode="before")
    @classmethod
    def _set_with_keys(cls, value):
        if isinstance(value, dict):
            return {**DEFAULT_SET_WITH_MAP, **{_snake(k): _lower(v) for k, v in value.items()}}
        return value

    @field_validator("covariates", mode="before")
    @classmethod
    def _covariate_names(cls, value):
        if not isinstance(value, dict):
            return value
        out = {}
        for name, kind in value.items():
            name = str(name).strip()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(
                    f"covariate name {name!r} is not a column name a formula can use; "
                    "use letters, digits and _ (map the vendor's name with `column_maps`)"
                )
            if name in _CONTRACT_COLUMNS:
                raise ValueError(
                    f"{name!r} is a column of the data contract, used already; "
                    "`covariates` names extra columns only (e.g. pay_band, remote)"
                )
            out[name] = str(kind).strip().lower() if isinstance(kind, str) else kind
        return out

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


#: Columns of the contract (and the analysis tables' keys) a covariate may not be named after.
_CONTRACT_COLUMNS = frozenset({
    "employee_id", "hire_date", "termination_date", "termination_type", "department", "job_level", "manager_id",
    "location", "gender", "birth_year", "effective_date", "reason", "spell", "entry", "exit", "event",
    "event_type", "start", "stop", "cycle", "survey_date", "wave",
})


def _lower(value):
    """A map's target as written by hand (``Jointly``, `` 360_review``): trimmed lower-case text; others as given."""
    return value.strip().lower() if isinstance(value, str) else value


def _snake(text) -> str:
    """A category's text as cleaning compares it: lower case, words joined by ``_``."""
    return "_".join(str(text).strip().lower().replace("-", " ").split())


def _date_format_problem(fmt: str) -> str | None:
    """What is wrong with a strptime date format, or None."""
    directives = []
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            i += 1
            continue
        if i + 1 == len(fmt):
            return "ends with a lone '%'"
        code = fmt[i + 1]
        if code not in _DATE_DIRECTIVES:
            return f"uses %{code}, which is not a strptime directive"
        if code != "%":
            directives.append(code)
        i += 2
    if not directives:
        return "has no % directive"
    if not _YEAR_DIRECTIVES & set(directives):
        return "has no year (%Y, %y, %G, %c or %x)"
    sample = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    try:
        dt.datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as err:
        return f"cannot be used to read dates ({err})"
    return None


#: ``scheme://user:password@`` in a URL; the password is never shown in a message.
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def mask_password(text: str) -> str:
    """Replace the password of every URL in a text by ``***``.

    Parameters
    ----------
    text : str
        Any text, e.g. an error message that quotes ``database.url``.

    Returns
    -------
    str
        The text with ``scheme://user:password@`` written as ``scheme://user:***@``.

    Examples
    --------
    >>> mask_password("postgresql://analyst:s3cret@db.example.org/hris")
    'postgresql://analyst:***@db.example.org/hris'
    """
    return _URL_PASSWORD.sub(r"\1***@", text)


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
    return mask_password("\n".join(lines))


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


class _DatesAsTextLoader(yaml.SafeLoader):
    """YAML's safe loader, except that dates stay text.

    PyYAML builds ``2021-02-30`` into a date itself and fails with a bare
    ``ValueError``; as text it reaches validation, which names the key.
    """


_DatesAsTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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
        data = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_DatesAsTextLoader)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: not readable as YAML ({err.__class__.__name__}: {err}).") from None
    return config_from_dict(data, source=str(path.name))
