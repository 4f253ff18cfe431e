"""Simulate a synthetic study with known true effects (an organisation, its goals, surveys and exits)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import config_from_dict, format_validation_error
from .errors import ConfigError
from .study import Study

__all__ = [
    "Truth",
    "SimulatedStudy",
    "default_truth",
    "load_truth",
    "simulate_study",
    "write_simulated_study",
    "SCALE_ITEMS",
]

_DAY0 = np.datetime64("1970-01-01", "D")


def _day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - _DAY0).astype(np.int64))


#: Employee programmes and their planned length in days (``low..high - 1``).
_PROGRAM_DAYS = {"coaching": (60, 181), "mentoring": (120, 366), "training": (1, 6)}

#: Survey scales: number of items and the reverse-coded items (stored as ``min + max - x``).
SCALE_ITEMS = {
    "engagement": (5, ["engagement_4"]),
    "alignment": (4, ["alignment_3"]),
    "leadership": (4, ["leadership_2"]),
    "feedback": (3, []),
}


class Truth(BaseModel):
    """Every true parameter of the simulated organisation.

    Field descriptions give the exact meaning (and scale) of each parameter;
    ``default_truth()`` holds the defaults and ``load_truth`` merges a YAML of
    overrides onto them. Effects on hazards are log-hazard ratios on the
    tenure-in-days scale; effects on survey latent scores are in Likert points.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- time --------------------------------------------------------------------------------
    window_start: dt.date = Field(dt.date(2021, 1, 1), description="first day of the observation window")
    window_end: dt.date = Field(dt.date(2024, 12, 31), description="last day of the observation window")
    history_years: int = Field(10, ge=1, le=30, description="the organisation's first hires are this many years before the window")
    survey_months: list[int] = Field([3, 9], description="months in which a survey wave opens (day 1) each window year")
    survey_field_days: int = Field(14, ge=1, le=60, description="responses arrive uniformly over this many days after a wave opens")
    survey_min_tenure_days: int = Field(30, ge=0, description="employees hired fewer days than this before a wave opens are not invited")

    # --- organisation ------------------------------------------------------------------------
    departments: dict[str, float] = Field(
        {"Sales": 0.28, "Engineering": 0.28, "Operations": 0.2, "Marketing": 0.1, "Finance": 0.08, "HR": 0.06},
        description="department name -> share of positions",
    )
    small_departments: dict[str, int] = Field(
        {},
        description="department name -> number of people: that many individual contributors (every spell of each) "
        "are moved into this extra department after the simulation, so the study has departments below the minimum "
        "group size (privacy checks); effects are unchanged, as department enters no true model",
    )
    locations: dict[str, float] = Field(
        {"London": 0.35, "New York": 0.25, "Berlin": 0.15, "Singapore": 0.15, "Toronto": 0.1},
        description="location -> share of teams",
    )
    genders: dict[str, float] = Field({"female": 0.48, "male": 0.5, "non-binary": 0.02}, description="gender -> share")
    team_span_mean: float = Field(8.0, ge=3, le=15, description="mean number of individual contributors per first-line manager")
    manager_span_mean: float = Field(5.0, ge=3, le=15, description="mean number of managers per higher-level manager")
    vacancy_days_max: int = Field(30, ge=1, le=365, description="a vacated position is refilled after 1..this many days")
    rehire_share: float = Field(0.01, ge=0, le=0.2, description="share of in-window hires of individual contributors who are rehires of an earlier voluntary leaver")

    # --- goals and cascade alignment ---------------------------------------------------------
    goals_min: int = Field(2, ge=1, description="fewest goals per employee and cycle")
    goals_max: int = Field(6, ge=1, description="most goals per employee and cycle")
    alignment_mean: float = Field(0.65, gt=0, lt=1, description="mean of the manager-level Beta propensity that a report's goal is linked to one of the manager's goals")
    alignment_concentration: float = Field(8.0, gt=0, description="a + b of that Beta distribution (larger = managers more alike)")
    alignment_person_sd: float = Field(0.5, ge=0, description="SD of the person deviation from the manager propensity, logit scale")
    alignment_manager_shift: float = Field(1.5, description="logit-scale shift of the link propensity for people in manager positions (their own goals)")
    unrelated_parent_share: float = Field(0.35, ge=0, le=1, description="share of unlinked goals whose parent is another team's goal (else no parent)")
    weight_missing_share: float = Field(0.1, ge=0, le=1, description="share of employee-cycles whose goal weights are all missing (equal weights)")

    # --- reviews -----------------------------------------------------------------------------
    rating_shares: list[float] = Field([0.05, 0.2, 0.5, 0.2, 0.05], description="share of ratings 1..5")
    performance_autocorrelation: float = Field(0.6, ge=0, lt=1, description="year-to-year correlation of the latent performance behind ratings")
    review_min_tenure_days: int = Field(90, ge=0, description="employees hired fewer days than this before a cycle's end are not rated in it")

    # --- engagement survey (latent score in Likert points) -----------------------------------
    engagement_intercept: float = Field(2.75, description="latent engagement at alignment 0, manager_program 0, manager_rating 3")
    engagement_alignment: float = Field(0.5, description="latent engagement per 1.0 of cascade alignment (current cycle)")
    engagement_manager_program: float = Field(0.2, description="latent engagement when the manager has started leadership development")
    engagement_manager_rating: float = Field(0.1, description="latent engagement per point of the manager's latest known rating (minus 3)")
    engagement_manager_sd: float = Field(0.2, ge=0, description="SD of the manager random intercept")
    engagement_person_sd: float = Field(0.3, ge=0, description="SD of the person (spell) random intercept")
    engagement_residual_sd: float = Field(0.2, ge=0, description="SD of the response-level residual")
    perceived_alignment_intercept: float = Field(2.6, description="latent perceived alignment at cascade alignment 0")
    perceived_alignment_cascade: float = Field(0.8, description="latent perceived alignment per 1.0 of cascade alignment")
    leadership_intercept: float = Field(2.9, description="latent leadership score when the manager has not started leadership development")
    leadership_manager_program: float = Field(0.4, description="latent leadership score when the manager has started leadership development")
    feedback_intercept: float = Field(3.0, description="latent feedback score at the typical feedback rate")
    feedback_rate_effect: float = Field(0.3, description="latent feedback score per unit of the log person feedback-rate multiplier")
    scale_person_sd: float = Field(0.3, ge=0, description="SD of the person intercept of the alignment, leadership and feedback scales")
    scale_residual_sd: float = Field(0.2, ge=0, description="SD of the response-level residual of those scales")
    item_sd: float = Field(0.3, ge=0, description="SD of item noise (before stochastic rounding to whole Likert points)")
    survey_response: float = Field(0.8, gt=0, le=1, description="mean probability that an invited employee responds to a wave")
    survey_response_person_sd: float = Field(0.8, ge=0, description="SD of the person response propensity, logit scale")
    item_missing: float = Field(0.03, ge=0, le=0.5, description="probability that a response skips one item of a scale")

    # --- exits (log-hazard ratios, tenure-in-days scale) -------------------------------------
    hr_alignment: float = Field(-0.8, description="voluntary exit, per 1.0 of cascade alignment of the current cycle")
    hr_engagement: float = Field(-0.4, description="voluntary exit, per point of the latest observed engagement score (minus 3)")
    hr_manager_program: float = Field(-0.3, description="voluntary exit, once the manager has started leadership development")
    hr_manager_rating: float = Field(-0.2, description="voluntary exit, per point of the manager's latest known rating (minus 3)")
    hr_job_level: dict[int, float] = Field({1: 0.0, 2: -0.15, 3: -0.3, 4: -0.6, 5: -0.9}, description="voluntary exit, by job level (1 is the reference)")
    voluntary_shape: float = Field(0.8, gt=0, description="Weibull shape k of the voluntary baseline hazard on tenure days")
    voluntary_scale_days: float = Field(1200.0, gt=0, description="Weibull scale (days): H0(t) = (t / scale) ** shape at the reference covariates")
    involuntary_rate: float = Field(0.03, ge=0, lt=1, description="yearly involuntary exit probability at own latest rating 3 (constant hazard)")
    hr_involuntary_rating: float = Field(-0.6, description="involuntary exit, per point of own latest known rating (minus 3)")
    other_rate: float = Field(0.01, ge=0, lt=1, description="yearly probability of an 'other' exit (retirement, ...), constant hazard")

    # --- programmes --------------------------------------------------------------------------
    program_selection: float = Field(0.8, description="log-odds of leadership-development enrolment per point of the manager's latest known rating")
    program_uptake: float = Field(0.05, gt=0, lt=1, description="quarterly enrolment probability of an eligible manager rated 3")
    program_days: int = Field(180, ge=1, description="length of leadership development (days)")
    employee_programs: dict[str, float] = Field(
        {"coaching": 0.05, "mentoring": 0.05, "training": 0.15},
        description="employee programme -> yearly enrolment probability",
    )
    withdrawal_share: float = Field(0.08, ge=0, le=1, description="share of programme enrolments withdrawn early")

    # --- feedback ----------------------------------------------------------------------------
    feedback_rates: dict[str, float] = Field(
        {"check_in": 6.0, "360_review": 0.5, "recognition": 1.5},
        description="feedback kind -> mean events per person-year",
    )
    feedback_rate_shape: float = Field(2.0, gt=0, description="Gamma shape of the person rate multiplier (mean 1)")
    feedback_manager_share: dict[str, float] = Field(
        {"check_in": 0.9, "360_review": 0.3, "recognition": 0.4},
        description="feedback kind -> share given by the manager (else a peer)",
    )

    @model_validator(mode="after")
    def _consistent(self):
        if self.window_end <= self.window_start:
            raise ValueError(f"window_end ({self.window_end}) must be after window_start ({self.window_start})")
        if self.goals_max < self.goals_min:
            raise ValueError(f"goals_max ({self.goals_max}) must be at least goals_min ({self.goals_min})")
        if len(self.rating_shares) != 5 or min(self.rating_shares) <= 0:
            raise ValueError(f"rating_shares needs 5 positive shares (ratings 1..5), got {self.rating_shares}")
        if not self.survey_months or not all(1 <= m <= 12 for m in self.survey_months):
            raise ValueError(f"survey_months must be months 1..12, got {self.survey_months}")
        for name in ("departments", "locations", "genders"):
            shares = getattr(self, name)
            if not shares or min(shares.values()) <= 0:
                raise ValueError(f"{name} needs at least one entry with a positive share, got {shares}")
        clash = sorted(set(self.small_departments) & set(self.departments))
        if clash:
            raise ValueError(f"small_departments must be new department names, but {clash} are already in departments")
        if any(int(k) < 1 for k in self.small_departments.values()):
            raise ValueError(f"small_departments needs at least 1 person per department, got {self.small_departments}")
        unknown = sorted(set(self.hr_job_level) - {1, 2, 3, 4, 5})
        if unknown:
            raise ValueError(f"hr_job_level keys must be job levels 1..5, got {unknown}")
        unknown = sorted(set(self.employee_programs) - set(_PROGRAM_DAYS))
        if unknown:
            raise ValueError(f"employee_programs must be among {sorted(_PROGRAM_DAYS)}, got {unknown}")
        return self


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
        job_level, log_hazard``. ``spell`` counts an id's spells from 1;
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


def default_truth() -> Truth:
    """Return the default true parameters.

    Returns
    -------
    Truth
        Defaults: voluntary log-hazard ratios ``hr_alignment=-0.8``,
        ``hr_engagement=-0.4``, ``hr_manager_program=-0.3``,
        ``hr_manager_rating=-0.2``; engagement effects ``0.5`` (alignment) and
        ``0.2`` (manager programme); selection ``0.8`` log-odds per rating point.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.default_truth().hr_alignment
    -0.8
    """
    return Truth()


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if key == "hr_job_level" and isinstance(value, dict):
            value = {int(k) if str(k).strip().isdigit() else k: v for k, v in value.items()}
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("departments", "small_departments", "locations", "genders"):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _truth_from_dict(data: dict, *, source: str) -> Truth:
    data = {k: v for k, v in data.items() if k != "derived"}
    try:
        return Truth.model_validate(_merge(Truth().model_dump(), data))
    except ValidationError as err:
        known = ", ".join(Truth.model_fields)
        raise ConfigError(format_validation_error(
            err, source, what="truth file", unknown=f"unknown parameter (misspelt?). Known parameters: {known}.",
            missing=False)) from None


def load_truth(path: str | Path) -> Truth:
    """Read true parameters from YAML, merged onto the defaults.

    Parameters
    ----------
    path : str or Path
        A YAML mapping of parameter names to values (any subset; dicts such as
        ``hr_job_level`` are merged key by key). A ``derived`` section, as
        written in ``truth.yaml``, is ignored.

    Returns
    -------
    Truth
        The defaults with the file's values in their place.

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or a key is unknown (misspelt) or a
        value has the wrong type; the message names the key.

    Examples
    --------
    >>> import alignment_research as ar, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "truth.yaml"
    >>> _ = path.write_text("hr_manager_program: 0\\n")
    >>> ar.load_truth(path).hr_manager_program
    0.0
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: truth file not found.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not readable as YAML ({err.__class__.__name__}: {err}).") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping of parameter names to values.")
    return _truth_from_dict(data, source=path.name)


# ============================================================================ organisation tree


def _group_sizes(n: int, mean: float, rng: np.random.Generator, lo: int = 3, hi: int = 15) -> np.ndarray:
    """Split ``n >= 9`` nodes into at least 3 groups of ``lo..hi`` nodes."""
    g = int(np.clip(round(n / mean), max(3, -(-n // hi)), max(3, n // lo)))
    base = np.full(g, n // g)
    base[: n % g] += 1
    # perturb: move units between random pairs while respecting bounds
    for _ in range(2 * g):
        a, b = rng.integers(0, g, size=2)
        k = int(rng.integers(0, 3))
        if a != b and base[a] - k >= lo and base[b] + k <= hi:
            base[a] -= k
            base[b] += k
    return base


def _build_tree(n_slots: int, truth: Truth, rng: np.random.Generator) -> pd.DataFrame:
    """Positions (slots) of the organisation: parent, depth, department, level, location, manager or not."""
    names = list(truth.departments)
    shares = np.array([truth.departments[d] for d in names], float)
    shares = shares / shares.sum()
    n_dept = len(names) if n_slots >= 25 * len(names) else max(1, min(len(names), n_slots // 25))
    names = names[:n_dept]
    shares = shares[:n_dept] / shares[:n_dept].sum()
    locations = list(truth.locations)
    loc_p = np.array([truth.locations[x] for x in locations], float)
    loc_p /= loc_p.sum()

    rows = [dict(slot=0, parent=-1, department=names[0] if "Operations" not in names else "Operations", kind="ceo", location=locations[0])]
    body = max(n_slots - 1, n_dept)
    counts = np.maximum(1, np.floor(shares * body).astype(int))
    counts[0] += body - counts.sum()
    for d, name in enumerate(names):
        size = int(counts[d])  # head + everyone below
        head = len(rows)
        rows.append(dict(slot=head, parent=0, department=name, kind="head", location=locations[0]))
        n_ic = size - 1
        if n_ic <= 0:
            continue
        # choose number of first-line managers so that ICs + managers fit the size
        if n_ic <= 15:
            layer_children = [("ic", n_ic)]
            ic_parents = [head]
        else:
            n_teams_guess = max(3, round(n_ic / (truth.team_span_mean + 1.2)))
            n_ics = n_ic - n_teams_guess
            # managers above first line consume a few more slots; accept a small overshoot
            sizes = _group_sizes(n_ics, truth.team_span_mean, rng)
            first_line = list(range(len(rows), len(rows) + len(sizes)))
            for s in first_line:
                rows.append(dict(slot=s, parent=-1, department=name, kind="manager", location=None))
            layer = first_line
            while len(layer) > 15:
                gs = _group_sizes(len(layer), truth.manager_span_mean, rng)
                ups = list(range(len(rows), len(rows) + len(gs)))
                for s in ups:
                    rows.append(dict(slot=s, parent=-1, department=name, kind="manager", location=None))
                pos = 0
                for u, k in zip(ups, gs):
                    for child in layer[pos : pos + k]:
                        rows[child]["parent"] = u
                    pos += k
                layer = ups
            for child in layer:
                rows[child]["parent"] = head
            ic_parents = []
            for s, k in zip(first_line, sizes):
                ic_parents += [s] * int(k)
            layer_children = [("ic", len(ic_parents))]
        for _, k in layer_children:
            parents = ic_parents if len(ic_parents) == k else [head] * k
            for p in parents:
                rows.append(dict(slot=len(rows), parent=p, department=name, kind="ic", location=None))
    tree = pd.DataFrame(rows)
    tree["parent"] = tree["parent"].astype(int)
    # depth and locations top-down (a team mostly shares its manager's location)
    parent = tree["parent"].to_numpy()
    depth = np.zeros(len(tree), int)
    for _ in range(len(tree)):
        new = np.where(parent >= 0, depth[np.maximum(parent, 0)] + 1, 0)
        if np.array_equal(new, depth):
            break
        depth = new
    tree["depth"] = depth
    loc = tree["location"].to_numpy(object)
    team_loc = rng.choice(len(locations), size=len(tree), p=loc_p)
    stay = rng.random(len(tree)) < 0.85
    for s in np.argsort(depth, kind="stable"):
        if loc[s] is None:
            loc[s] = loc[parent[s]] if stay[s] else locations[team_loc[s]]
    tree["location"] = loc
    has_child = np.zeros(len(tree), bool)
    has_child[parent[parent >= 0]] = True
    tree["is_manager"] = has_child
    # job levels: ICs 1-3, first-line managers 3-4, higher managers 4-5, heads and CEO 5
    u = rng.random(len(tree))
    first_line = np.zeros(len(tree), bool)
    ic = ~has_child
    first_line[parent[ic & (parent >= 0)]] = True
    level = np.where(u < 0.45, 1, np.where(u < 0.8, 2, 3))
    level = np.where(has_child & first_line, np.where(u < 0.6, 3, 4), level)
    level = np.where(has_child & ~first_line, np.where(u < 0.5, 4, 5), level)
    level = np.where(tree["kind"].isin(["ceo", "head"]), 5, level)
    tree["job_level"] = level
    return tree


# ============================================================================ study frame: config, assembly, messiness

_NO_DAY = np.iinfo(np.int64).max  # "no date" sentinel in internal day arrays


def _cycle_years(truth: Truth) -> list[int]:
    return list(range(truth.window_start.year - 1, truth.window_end.year + 1))


def _study_config(truth: Truth):
    scales = {}
    for name, (k, reverse) in SCALE_ITEMS.items():
        scales[name] = {"items": [f"{name}_{j}" for j in range(1, k + 1)], "reverse": list(reverse), "min": 1, "max": 5}
    cycles = [{"name": str(y), "start": f"{y}-01-01", "end": f"{y}-12-31"} for y in _cycle_years(truth)]
    return config_from_dict(
        {
            "name": "simulated",
            "window": {"start": truth.window_start.isoformat(), "end": truth.window_end.isoformat()},
            "cycles": cycles,
            "scales": scales,
            "event_types": ["voluntary"],
            "min_group_size": 5,
            "files": {t: f"{t}.csv" for t in ("employees", "goals", "reviews", "surveys", "programs", "feedback")},
            "date_formats": ["%Y-%m-%d"],
        },
        source="simulated study.yaml",
    )


def _dates(days) -> np.ndarray:
    days = np.asarray(days, dtype=np.int64)
    out = (_DAY0 + np.where(days == _NO_DAY, 0, days).astype("timedelta64[D]")).astype("datetime64[ns]")
    out[days == _NO_DAY] = np.datetime64("NaT")
    return out


def _ids(prefix: str, keys: np.ndarray, width: int) -> np.ndarray:
    return np.array([f"{prefix}{k:0{width}d}" for k in np.asarray(keys, dtype=np.int64).tolist()], dtype=object)


def _str_col(values) -> pd.Series:
    s = pd.Series(np.asarray(values, dtype=object), dtype=object)
    return s.where(s.notna(), np.nan)


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    table = table.reset_index(drop=True)
    table.index = pd.RangeIndex(2, len(table) + 2, name="row")
    return table


def _assemble(sim: dict, truth: Truth):
    """Turn the engine's integer arrays into the six canonical tables (typed, sorted, unnumbered).

    Rows are ordered by integer keys (employee number, date, ...) before the id
    strings are built; zero-padded ids sort the same way.
    """
    spells = sim["spells"]
    cyc_names = np.array([str(y) for y in _cycle_years(truth)], dtype=object)
    # employee numbers in order of first hire (a rehire keeps the number of the first spell)
    person = spells["person"].to_numpy()
    hire = spells["hire"].to_numpy()
    first_hire = pd.Series(hire).groupby(person).min().sort_values(kind="stable")
    number_of_person = pd.Series(np.arange(1, len(first_hire) + 1), index=first_hire.index)
    width = max(6, len(str(len(first_hire))))
    spell_keys = spells["spell"].to_numpy()
    lookup = np.zeros(int(spell_keys.max()) + 2 if len(spell_keys) else 1, np.int64)  # spell -> employee number
    lookup[spell_keys] = number_of_person.reindex(person).to_numpy()

    def num(spell_keys) -> np.ndarray:
        keys = np.asarray(spell_keys, np.int64)
        return np.where(keys < 0, 0, lookup[np.maximum(keys, 0)])

    id_of_number = _ids("E", np.arange(len(first_hire) + 1), width)
    id_of_number[0] = np.nan

    def sid(numbers) -> np.ndarray:
        return id_of_number[np.asarray(numbers, np.int64)]

    e_num = num(spell_keys)
    order = np.lexsort((hire, e_num))
    sp = spells.iloc[order].reset_index(drop=True)
    e_num = e_num[order]
    emp = pd.DataFrame({
        "employee_id": sid(e_num),
        "hire_date": _dates(sp["hire"]),
        "termination_date": _dates(sp["term"]),
        "termination_type": _str_col(sp["term_type"]),
        "department": _str_col(sp["department"]),
        "job_level": pd.array(sp["job_level"].to_numpy(), dtype="Int64"),
        "manager_id": sid(num(sp["manager"])),
        "location": _str_col(sp["location"]),
        "gender": _str_col(sp["gender"]),
        "birth_year": pd.array(sp["birth_year"].to_numpy(), dtype="Int64"),
        "_spell": sp["spell"].to_numpy(),
    })
    # spell number of each spell (1 = first employment, 2 = rehire)
    first_of = np.r_[True, e_num[1:] != e_num[:-1]] if len(e_num) else np.zeros(0, bool)
    run_start = np.maximum.accumulate(np.where(first_of, np.arange(len(e_num)), 0)) if len(e_num) else e_num
    spell_no = np.zeros(len(lookup), np.int64)
    spell_no[sp["spell"].to_numpy()] = np.arange(len(e_num)) - run_start + 1

    goals = sim["goals"]
    gorder = np.lexsort((goals["goal"].to_numpy(), goals["cycle"].to_numpy()))
    goals = goals.iloc[gorder].reset_index(drop=True)
    gnum = np.zeros(int(goals["goal"].max()) + 1 if len(goals) else 1, np.int64)
    gnum[goals["goal"].to_numpy()] = np.arange(1, len(goals) + 1)
    gwidth = max(7, len(str(len(goals))))
    parent = goals["parent"].to_numpy()
    goal_ids = _ids("G", np.arange(len(goals) + 1), gwidth)
    goal_ids[0] = np.nan
    parent_id = goal_ids[np.where(parent < 0, 0, gnum[np.maximum(parent, 0)])]
    gl = pd.DataFrame({
        "goal_id": goal_ids[1:],
        "owner_id": sid(num(goals["owner"])),
        "cycle": cyc_names[goals["cycle"].to_numpy()],
        "parent_goal_id": parent_id,
        "weight": goals["weight"].to_numpy(float),
        "attainment": goals["attainment"].to_numpy(float),
        "_spell": goals["owner"].to_numpy(),
    })

    rv = sim["reviews"]
    rn = num(rv["spell"])
    o = np.lexsort((rv["cycle"].to_numpy(), rn))
    reviews = pd.DataFrame({
        "employee_id": sid(rn[o]),
        "cycle": cyc_names[rv["cycle"].to_numpy()[o]],
        "rating": pd.array(rv["rating"].to_numpy()[o], dtype="Int64"),
        "target_attainment": rv["target_attainment"].to_numpy(float)[o],
        "_spell": rv["spell"].to_numpy()[o],
    })

    sv = sim["surveys"]
    items = [c for c in sv.columns if c not in ("spell", "date")]
    sn = num(sv["spell"])
    o = np.lexsort((sn, sv["date"].to_numpy()))
    surveys = pd.DataFrame({"employee_id": sid(sn[o]), "survey_date": _dates(sv["date"].to_numpy()[o])})
    for c in items:
        surveys[c] = sv[c].to_numpy(float)[o]
    surveys["_spell"] = sv["spell"].to_numpy()[o]

    pg = sim["programs"]
    pn = num(pg["spell"])
    prog_code = pd.factorize(pg["program"], sort=True)[0]
    o = np.lexsort((prog_code, pn, pg["start"].to_numpy()))
    programs = pd.DataFrame({
        "employee_id": sid(pn[o]),
        "program": _str_col(pg["program"].to_numpy()[o]),
        "start_date": _dates(pg["start"].to_numpy()[o]),
        "end_date": _dates(pg["end"].to_numpy()[o]),
        "status": _str_col(pg["status"].to_numpy()[o]),
        "_spell": pg["spell"].to_numpy()[o],
    })

    fb = sim["feedback"]
    fn = num(fb["spell"])
    kind_code = pd.factorize(fb["kind"], sort=True)[0]
    o = np.lexsort((kind_code, fn, fb["date"].to_numpy()))
    feedback = pd.DataFrame({
        "employee_id": sid(fn[o]),
        "date": _dates(fb["date"].to_numpy()[o]),
        "kind": _str_col(fb["kind"].to_numpy()[o]),
        "giver_id": sid(num(fb["giver"].to_numpy()[o])),
        "_spell": fb["spell"].to_numpy()[o],
    })

    ta = sim["true_alignment"]
    tn = num(ta["spell"])
    o = np.lexsort((ta["cycle"].to_numpy(), tn))
    true_alignment = pd.DataFrame({
        "employee_id": sid(tn[o]),
        "cycle": cyc_names[ta["cycle"].to_numpy()[o]],
        "alignment_cascade": ta["alignment_cascade"].to_numpy(float)[o],
        "alignment_org": ta["alignment_org"].to_numpy(float)[o],
    })

    ti = sim["true_intervals"].reset_index(drop=True)
    inum = num(ti["spell"])
    ino = spell_no[ti["spell"].to_numpy()]
    o = np.lexsort((ti["start"].to_numpy(), ino, inum))
    ti = ti.iloc[o].reset_index(drop=True)
    ti.insert(0, "employee_id", sid(inum[o]))
    ti["manager_id"] = sid(num(ti.pop("manager")))
    ti["spell"] = ino[o]
    lead = ["employee_id", "spell", "manager_id", "start", "stop", "event", "event_type"]
    ti = ti[lead + [c for c in ti.columns if c not in lead]]

    tables = {"employees": emp, "goals": gl, "reviews": reviews, "surveys": surveys, "programs": programs, "feedback": feedback}
    return tables, true_alignment, ti


_TERMINATION_TEXT = {
    "voluntary": ["Resignation", "quit", "Voluntary ", "Resigned", "VOLUNTARY"],
    "involuntary": ["Dismissal", "Terminated", "Layoff", " involuntary"],
    "other": ["Retirement", "End of contract", "Other"],
}


def _inject(tables: dict[str, pd.DataFrame], truth: Truth, rng: np.random.Generator, n: int):
    """Inject a few dozen realistic problems; return the tables and the log of what was injected.

    Every problem touches its own row (no row carries two problems), so each
    logged row shows exactly one rule. ``k = max(1, round(n / 1000))`` sets the
    number of exact duplicates per table; the other problems occur once or a
    few times (about 30 rows for 2,000 employees).
    """
    k = max(1, round(n / 1000))
    marks: list[tuple[str, float, str, str, str]] = []  # (table, position key, column, rule, note)
    out, extra, used = {}, {}, {}
    for name, t in tables.items():
        t = t.reset_index(drop=True).copy()
        t["_pos"] = np.arange(len(t), dtype=float)
        out[name], extra[name], used[name] = t, [], set()
    emp = out["employees"]
    managers = set(emp["manager_id"].dropna())
    leaf = (~emp["employee_id"].isin(managers) & emp["manager_id"].notna()).to_numpy()
    terminated = emp["termination_date"].notna().to_numpy()
    end = pd.Timestamp(truth.window_end)

    def choose(name, mask=None, size=1) -> np.ndarray:
        t = out[name]
        mask = np.ones(len(t), bool) if mask is None else np.asarray(mask, bool)
        cand = np.flatnonzero(mask)
        if used[name]:
            cand = cand[~np.isin(cand, np.fromiter(used[name], np.int64))]
        if len(cand) == 0:
            return cand
        chosen = np.sort(rng.choice(cand, size=min(size, len(cand)), replace=False))
        used[name].update(int(c) for c in chosen)
        return chosen

    def add_copy(name, i, rule, column="", changes=None, note=""):
        t = out[name]
        row = t.iloc[[i]].copy()
        row["_pos"] = t.at[i, "_pos"] + 0.5 + 1e-6 * len(marks)
        for c, v in (changes or {}).items():
            row[c] = v
        extra[name].append(row)
        marks.append((name, float(row["_pos"].iloc[0]), column, rule, note))

    def mark(name, i, column, rule, note=""):
        marks.append((name, float(out[name].at[i, "_pos"]), column, rule, note))

    # exact duplicate rows (an export that repeats a line)
    for i in choose("employees", leaf, k):
        add_copy("employees", i, "duplicate_row")
    for name in ("goals", "surveys", "feedback"):
        for i in choose(name, None, k):
            add_copy(name, i, "duplicate_row")
    # conflicting duplicates: the same key with different values (both rows are logged)
    for i in choose("employees", leaf):
        other = [d for d in truth.departments if d != emp.at[i, "department"]][0]
        mark("employees", i, "department", "conflicting_duplicate")
        add_copy("employees", i, "conflicting_duplicate", "department", {"department": other})
    rv = out["reviews"]
    for i in choose("reviews"):
        r = rv.at[i, "rating"]
        mark("reviews", i, "rating", "conflicting_duplicate")
        add_copy("reviews", i, "conflicting_duplicate", "rating", {"rating": pd.array([1 if r != 1 else 2], dtype="Int64")})
    # a termination before the hire
    for i in choose("employees", leaf & terminated):
        emp.at[i, "termination_date"] = emp.at[i, "hire_date"] - pd.Timedelta(days=30)
        mark("employees", i, "termination_date", "termination_before_hire")
    # implausible dates
    for i in choose("employees", leaf):
        emp.at[i, "hire_date"] = pd.Timestamp("1901-01-01")
        mark("employees", i, "hire_date", "implausible_date")
    fb = out["feedback"]
    for i in choose("feedback"):
        fb.at[i, "date"] = pd.Timestamp("2099-06-01")
        mark("feedback", i, "date", "implausible_date")
    # missing required fields
    for i in choose("employees", leaf):
        emp.at[i, "hire_date"] = pd.NaT
        mark("employees", i, "hire_date", "missing_required")
    gl = out["goals"]
    for i in choose("goals"):
        gl.at[i, "owner_id"] = np.nan
        mark("goals", i, "owner_id", "missing_required")
    # a manager_id that is nobody's employee_id
    width = len(str(emp["employee_id"].iloc[0])) if len(emp) else 7
    for i in choose("employees", leaf):
        emp.at[i, "manager_id"] = "E" + "9" * width
        mark("employees", i, "manager_id", "unknown_manager")
    # out-of-range survey answers (0 or 9 on a 1-5 scale)
    sv = out["surveys"]
    item_cols = [c for c in sv.columns if c not in ("employee_id", "survey_date", "_spell", "_pos")]
    for i in choose("surveys", None, 3 * k):
        answered = [c for c in item_cols if not np.isnan(sv.at[i, c])]
        c = answered[int(rng.integers(len(answered)))]
        sv.at[i, c] = float(rng.choice([0.0, 9.0]))
        mark("surveys", i, c, "out_of_range_answer")
    # a survey answered a week after the respondent's termination (of a spell no other problem touches)
    touched = set(emp.loc[sorted(used["employees"]), "_spell"])
    term_of = emp.drop_duplicates("_spell").set_index("_spell")["termination_date"]
    late = sv["_spell"].map(term_of)
    ok = (late.notna() & (late + pd.Timedelta(days=7) <= end) & ~sv["_spell"].isin(touched)).to_numpy()
    for i in choose("surveys", ok):
        add_copy("surveys", i, "survey_after_termination", "survey_date", {"survey_date": late.iloc[i] + pd.Timedelta(days=7)})
    # termination types typed by hand
    typed = emp["termination_type"].notna().to_numpy()
    for i in choose("employees", typed, max(2, round(0.03 * typed.sum()))):
        variants = _TERMINATION_TEXT[emp.at[i, "termination_type"]]
        emp.at[i, "termination_type"] = variants[int(rng.integers(len(variants)))]
        mark("employees", i, "termination_type", "noncanonical_category")
    # Excel serial dates (in the CSV only: the in-memory table keeps the date)
    for i in choose("employees", None, k + 1):
        mark("employees", i, "hire_date", "excel_serial_date", "written as an Excel serial day number in employees.csv only")

    injected_rows = []
    final = {}
    for name, t in out.items():
        t = pd.concat([t, *extra[name]], ignore_index=True) if extra[name] else t
        t = t.sort_values("_pos", kind="stable").reset_index(drop=True)
        row_of = pd.Series(np.arange(2, len(t) + 2), index=t["_pos"].to_numpy())
        for tn, pos, col, rule, note in marks:
            if tn == name:
                injected_rows.append((name, int(row_of[pos]), col, rule, note))
        final[name] = t.drop(columns=["_pos"])
    injected = pd.DataFrame(injected_rows, columns=["table", "row", "column", "rule", "note"])
    injected = injected.sort_values(["table", "row", "column"], kind="stable").reset_index(drop=True)
    return final, injected


# ============================================================================ the engine
#
# Positions (slots) form a fixed tree.  Each slot is filled by a sequence of employment spells:
# when an incumbent leaves, a successor is hired 1..vacancy_days_max days later.  The tree is
# simulated depth by depth (a spell's covariates only depend on its manager, one level up) and,
# within a depth, in rounds of successors.  Every quantity of a spell is drawn as a potential
# path (goals, ratings, survey responses) before its exit; the exit is then drawn by inverting the
# cumulative hazard over the covariate change points, and the paths are truncated at the exit.

_ITEM_OFFSETS = {
    "engagement": [0.1, -0.05, 0.0, -0.1, 0.05],
    "alignment": [0.05, -0.1, 0.1, -0.05],
    "leadership": [-0.05, 0.1, 0.0, -0.05],
    "feedback": [0.05, 0.0, -0.05],
}
_YEAR = 365.25
_CHUNK = 20_000  # spells simulated together


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    return np.log(p) - np.log1p(-p)


class _Engine:
    """State of one simulation run (internal)."""

    def __init__(self, truth: Truth, rng: np.random.Generator):
        self.t = truth
        self.rng = rng
        self.W0, self.W1 = _day(truth.window_start), _day(truth.window_end)
        self.years = _cycle_years(truth)
        self.C = len(self.years)
        self.cs = np.array([_day(dt.date(y, 1, 1)) for y in self.years])
        self.ce = np.array([_day(dt.date(y, 12, 31)) for y in self.years])
        self.y0 = self.years[1]  # first window year; calendar years y0.. index the "latest known" tables
        self.jan1 = np.array([_day(dt.date(y, 1, 1)) for y in range(self.y0, truth.window_end.year + 2)])
        self.waves = np.array(
            [_day(dt.date(y, m, 1)) for y in range(self.y0, truth.window_end.year + 1) for m in truth.survey_months]
        )
        self.waves = self.waves[(self.waves >= self.W0) & (self.waves <= self.W1)]
        self.H0 = self.W0 - int(round(truth.history_years * _YEAR))
        cut = np.cumsum(np.asarray(truth.rating_shares, float) / np.sum(truth.rating_shares))[:-1]
        from scipy.stats import norm

        self.rating_cuts = norm.ppf(cut)
        self.jl = np.zeros(8)
        for lvl, v in truth.hr_job_level.items():
            self.jl[int(lvl)] = v
        self.rate_inv = -np.log1p(-truth.involuntary_rate) / _YEAR
        self.rate_oth = -np.log1p(-truth.other_rate) / _YEAR
        self.items = {s: [f"{s}_{j}" for j in range(1, k + 1)] for s, (k, _) in SCALE_ITEMS.items()}
        self.S: dict[str, list] = {}  # spell arrays, appended per batch
        self.G: dict[str, list] = {}  # goal arrays
        self.R: dict[str, list] = {}  # survey responses
        self.I: list[pd.DataFrame] = []  # true intervals
        self.n_spells = 0
        self.n_goals = 0
        self.P_set: list[tuple[np.ndarray, np.ndarray]] = []  # leadership-development starts, by spell

    # ------------------------------------------------------------------ helpers
    def year_index(self, days):
        """Index into ``jan1`` of the calendar year holding each day (0 = first window year)."""
        return np.searchsorted(self.jan1, days, side="right") - 1

    @staticmethod
    def _append(store, **arrays):
        for k, v in arrays.items():
            store.setdefault(k, []).append(np.asarray(v))

    def finalise_arrays(self):
        self.sp = {k: np.concatenate(v) for k, v in self.S.items()}
        for who, start in self.P_set:
            self.sp["P"][who] = start
        self.gl = {k: np.concatenate(v) for k, v in self.G.items()} if self.G else {}
        # keep one copy: later batches append to the concatenated arrays
        self.S = {k: [v] for k, v in self.sp.items()}
        self.G = {k: [v] for k, v in self.gl.items()}
        self.R = {k: [np.concatenate(v)] for k, v in self.R.items()}

    # ------------------------------------------------------------------ incumbents
    def index_depth(self, spells: np.ndarray):
        """Sorted (slot, hire) index of the given spells, for incumbent look-ups."""
        slot = self.sp["slot"][spells]
        hire = self.sp["hire"][spells]
        order = np.lexsort((hire, slot))
        self.ix_spell = spells[order]
        self.ix_slot = slot[order]
        self.ix_key = slot[order].astype(np.int64) * (1 << 32) + (hire[order] - self.H0 + (1 << 20))

    def incumbent(self, slot, day, *, need=None):
        """The spell of ``slot`` employed on ``day``; else the next one hired; else the previous one."""
        key = slot.astype(np.int64) * (1 << 32) + (day - self.H0 + (1 << 20))
        j = np.searchsorted(self.ix_key, key, side="right") - 1
        n = len(self.ix_key)
        jj = np.clip(j, 0, n - 1)
        same = (j >= 0) & (self.ix_slot[jj] == slot)
        cur = np.where(same, self.ix_spell[jj], -1)
        covers = same & (self.sp["term"][np.maximum(cur, 0)] > day)
        if need is not None:
            covers &= need(np.maximum(cur, 0))
        jn = np.clip(j + 1, 0, n - 1)
        nxt_ok = (j + 1 < n) & (self.ix_slot[jn] == slot) & (self.sp["hire"][self.ix_spell[jn]] <= self.W1)
        nxt = np.where(nxt_ok, self.ix_spell[jn], -1)
        if need is not None:
            nxt = np.where((nxt >= 0) & need(np.maximum(nxt, 0)), nxt, -1)
        prev = cur
        if need is not None:
            prev = np.where((prev >= 0) & need(np.maximum(prev, 0)), prev, -1)
        return np.where(covers, cur, np.where(nxt >= 0, nxt, prev))

    # ------------------------------------------------------------------ one batch of new spells
    def simulate_batch(self, slot: np.ndarray, hire: np.ndarray, depth: int) -> np.ndarray:
        t, rng = self.t, self.rng
        B = len(slot)
        idx = self.n_spells + np.arange(B)
        self.n_spells += B
        C, W0, W1 = self.C, self.W0, self.W1
        level = self.tree_level[slot]
        ceo = depth == 0

        # -- manager on the spell: the parent position's incumbent at max(hire, window start)
        if ceo:
            manager = np.full(B, -1)
        else:
            manager = self.incumbent(self.tree_parent[slot], np.maximum(hire, W0))
            manager = np.where((manager >= 0) & (self.sp["term"][np.maximum(manager, 0)] > W0), manager, -1)
        has_m = manager >= 0
        m0 = np.maximum(manager, 0)

        # -- person draws
        hire_year = (hire.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
        age = np.clip(np.round(rng.normal(26 + 3.5 * (level - 1), 6, B)), 19, 64).astype(int)
        gnames = np.array(list(t.genders), dtype=object)
        gp = np.array(list(t.genders.values()), float)
        gender = gnames[rng.choice(len(gnames), B, p=gp / gp.sum())]
        u_eng = rng.normal(0, t.engagement_person_sd, B)
        u_scale = rng.normal(0, t.scale_person_sd, (B, 3))
        um_eng = rng.normal(0, t.engagement_manager_sd, B)
        um_lead = rng.normal(0, t.engagement_manager_sd, B)
        conc = t.alignment_concentration
        p_team = rng.beta(t.alignment_mean * conc, (1 - t.alignment_mean) * conc, B)
        fb_mult = rng.gamma(t.feedback_rate_shape, 1 / t.feedback_rate_shape, B)
        resp_p = _expit(_logit(min(t.survey_response, 1 - 1e-9)) + rng.normal(0, t.survey_response_person_sd, B))
        pm = np.where(has_m, self.sp["p_team"][m0] if len(self.sp) else t.alignment_mean, t.alignment_mean)
        shift = np.where(self.tree_is_manager[slot], t.alignment_manager_shift, 0.0)
        pi = _expit(_logit(pm) + shift + rng.normal(0, t.alignment_person_sd, B))

        # -- performance and ratings per cycle (potential: employed at the cycle's end)
        rho = t.performance_autocorrelation
        perf = np.empty((B, C))
        perf[:, 0] = rng.normal(size=B)
        for c in range(1, C):
            perf[:, c] = rho * perf[:, c - 1] + np.sqrt(1 - rho**2) * rng.normal(size=B)
        rating = 1 + np.searchsorted(self.rating_cuts, perf).astype(float)
        rated_pot = hire[:, None] <= self.ce[None, :] - t.review_min_tenure_days

        # -- goals per cycle (potential: every cycle from the hire on)
        pot = hire[:, None] <= self.ce[None, :]
        pi_i, pc = np.nonzero(pot)
        npairs = len(pi_i)
        lo, hi = (4, 6) if ceo else (t.goals_min, t.goals_max)
        k = rng.integers(lo, max(lo, hi) + 1, npairs)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(np.int64)
        gpair = np.repeat(np.arange(npairs), k)
        G = int(k.sum())
        gown = pi_i[gpair]
        gcyc = pc[gpair]
        gof = np.full((B, C), -1, np.int64)
        gcn = np.zeros((B, C), np.int64)
        gof[pi_i, pc] = self.n_goals + starts
        gcn[pi_i, pc] = k
        parent = np.full(G, -1, np.int64)
        if not ceo and G:
            linked = rng.random(G) < pi[gown]
            m_pair = manager[pi_i]
            m_ok = (m_pair >= 0) & (self.sp["gcn"][np.maximum(m_pair, 0), pc] > 0)
            acting = np.where(m_ok, m_pair, -1)
            miss = np.flatnonzero(~m_ok)
            if len(miss):
                cyc_m = pc[miss]

                def need(s, cyc_m=cyc_m):
                    return (self.sp["gcn"][s, cyc_m] > 0) & (self.sp["term"][s] > W0)

                dref = np.maximum(self.cs[cyc_m], hire[pi_i[miss]])
                acting[miss] = self.incumbent(self.tree_parent[slot[pi_i[miss]]], dref, need=need)
            ag = acting[gpair]
            ok = linked & (ag >= 0)
            a_ok = ag[ok]
            parent[ok] = self.sp["gof"][a_ok, gcyc[ok]] + np.floor(
                rng.random(ok.sum()) * self.sp["gcn"][a_ok, gcyc[ok]]
            ).astype(np.int64)
            unl = ~linked & (rng.random(G) < t.unrelated_parent_share)
            mg = manager[gown]
            for c in range(C):
                sel = np.flatnonzero(unl & (gcyc == c))
                pool = self.pool[c]
                if not len(sel) or not len(pool):
                    continue
                pick = pool[rng.integers(0, len(pool), len(sel))]
                bad = self.gl["owner"][pick] == mg[sel]
                pick[bad] = pool[rng.integers(0, len(pool), bad.sum())]
                bad = self.gl["owner"][pick] == mg[sel]
                parent[sel] = np.where(bad, -1, pick)
        # weights: Dirichlet shares rounded to 0.01 summing to 1.00; some employee-cycles all missing
        graw = rng.gamma(2.0, 1.0, G)
        w = np.round(graw / np.add.reduceat(graw, starts)[gpair], 2) if G else graw
        last = starts + k - 1
        if G:
            w[last] = np.round(1.0 - (np.add.reduceat(w, starts) - w[last]), 2)
        miss_w = (rng.random(npairs) < t.weight_missing_share) | (w[last] <= 0 if G else False)
        w = np.where(miss_w[gpair], np.nan, w)
        we = np.where(np.isnan(w), 1.0, w)
        par_att = np.where(parent >= 0, self.gl["attainment"][np.maximum(parent, 0)] if self.gl else 1.0, 1.0)
        att = np.round(np.clip(1 + 0.12 * perf[gown, gcyc] + 0.3 * (par_att - 1) + rng.normal(0, 0.1, G), 0, 1.6), 2)
        gpo = self.gl["owner"][np.maximum(parent, 0)] if self.gl else np.zeros(G, np.int64)
        casc = (parent >= 0) & (gpo == manager[gown]) & (manager[gown] >= 0)
        if ceo:
            reach = np.ones(G, bool)
        else:
            reach = (parent >= 0) & (self.gl["reach"][np.maximum(parent, 0)] if self.gl else False)
        tot = np.add.reduceat(we, starts) if G else np.zeros(0)
        A = np.full((B, C), np.nan)
        O = np.full((B, C), np.nan)
        TA = np.full((B, C), np.nan)
        if G:
            A[pi_i, pc] = np.add.reduceat(we * casc, starts) / tot
            O[pi_i, pc] = np.add.reduceat(we * reach, starts) / tot
            TA[pi_i, pc] = np.round(np.add.reduceat(we * att, starts) / tot, 3)
        A[~has_m] = np.nan
        self.n_goals += G

        # -- manager quantities the employee's covariates use
        P_m = np.where(has_m, self.sp["P"][m0], _NO_DAY) if not ceo else np.full(B, _NO_DAY)
        nY = len(self.jan1) - 1
        mlat = self.sp["mlatest"][m0] if not ceo else np.full((B, nY), np.nan)
        mlat = np.where(has_m[:, None], mlat, np.nan)
        um = np.where(has_m, self.sp["um_eng"][m0], 0.0) if not ceo else np.zeros(B)
        uml = np.where(has_m, self.sp["um_lead"][m0], 0.0) if not ceo else np.zeros(B)
        own_lat = self.latest(np.where(rated_pot, rating, np.nan))

        # -- survey responses (potential)
        nW = len(self.waves)
        elig = hire[:, None] <= self.waves[None, :] - t.survey_min_tenure_days
        resp = elig & (rng.random((B, nW)) < resp_p[:, None])
        ri, rw = np.nonzero(resp)
        rdate = self.waves[rw] + rng.integers(0, t.survey_field_days, len(ri))
        Yr = self.year_index(rdate)
        A_r = np.nan_to_num(A[ri, Yr + 1])
        mp_r = (rdate >= P_m[ri]).astype(float)
        mrc_r = np.nan_to_num(mlat[ri, Yr] - 3)
        def eps(sd):
            return rng.normal(0, sd, len(ri))

        lat = {
            "engagement": t.engagement_intercept + t.engagement_alignment * A_r + t.engagement_manager_program * mp_r
            + t.engagement_manager_rating * mrc_r + um[ri] + u_eng[ri] + eps(t.engagement_residual_sd),
            "alignment": t.perceived_alignment_intercept + t.perceived_alignment_cascade * A_r + u_scale[ri, 0]
            + eps(t.scale_residual_sd),
            "leadership": t.leadership_intercept + t.leadership_manager_program * mp_r + uml[ri] + u_scale[ri, 1]
            + eps(t.scale_residual_sd),
            "feedback": t.feedback_intercept + t.feedback_rate_effect * (np.log(fb_mult[ri]) - self.elog_fb)
            + u_scale[ri, 2] + eps(t.scale_residual_sd),
        }
        items, scores, stats = {}, {}, {}
        for s, (nk, reverse) in SCALE_ITEMS.items():
            x = lat[s][:, None] + np.asarray(_ITEM_OFFSETS[s])[None, :] + rng.normal(0, t.item_sd, (len(ri), nk))
            clipped = (x < 1) | (x > 5)
            x = np.clip(x, 1, 5)
            fl = np.floor(x)
            frac = x - fl
            y = np.minimum(fl + (rng.random(x.shape) < frac), 5)
            skip = rng.random(len(ri)) < t.item_missing
            j = rng.integers(0, nk, len(ri))
            y[np.flatnonzero(skip), j[skip]] = np.nan
            scores[s] = np.nanmean(y, axis=1) if len(ri) else np.zeros(0)
            for q, col in enumerate(self.items[s]):
                items[col] = (5 + 1 - y[:, q]) if col in reverse else y[:, q]
            stats[s] = (lat[s], frac * (1 - frac), clipped)

        # -- exits: competing voluntary, involuntary and other hazards
        lam, kap = t.voluntary_scale_days, t.voluntary_shape
        E = rng.exponential(size=(3, B))
        ebar = t.engagement_intercept + um + u_eng + t.engagement_alignment * pi
        eta_pre = t.hr_alignment * pi + t.hr_engagement * (ebar - 3) + self.jl[level]
        dpre = np.where(hire < W0, W0 - hire, 0).astype(float)
        Hpre = np.stack([np.exp(eta_pre) * (dpre / lam) ** kap, self.rate_inv * dpre, self.rate_oth * dpre])
        tpre = np.stack([
            lam * (E[0] / np.exp(eta_pre)) ** (1 / kap),
            E[1] / self.rate_inv if self.rate_inv > 0 else np.full(B, np.inf),
            E[2] / self.rate_oth if self.rate_oth > 0 else np.full(B, np.inf),
        ])
        tpre = np.where(E <= Hpre, tpre, np.inf)
        if ceo:
            tpre[:] = np.inf
        pre_cause = np.argmin(tpre, axis=0)
        pre_t = tpre.min(axis=0)
        pre_exit = np.isfinite(pre_t)
        term = np.full(B, _NO_DAY, np.int64)
        cause = np.full(B, -1)
        term[pre_exit] = hire[pre_exit] + np.maximum(np.ceil(pre_t[pre_exit]), 1).astype(np.int64)
        cause[pre_exit] = pre_cause[pre_exit]
        Erem = E - Hpre

        live = np.flatnonzero(~pre_exit)
        s0 = np.maximum(hire, W0)
        Rk = np.full((B, nW), _NO_DAY, np.int64)
        Rk[ri, rw] = rdate
        Sk = np.full((B, nW), np.nan)
        Sk[ri, rw] = scores["engagement"]
        L = live
        cols = [s0[L, None], np.broadcast_to(self.jan1[1:-1], (len(L), len(self.jan1) - 2)), np.minimum(Rk[L], W1),
                np.minimum(P_m[L], W1)[:, None], np.full((len(L), 1), W1)]
        bp = np.sort(np.clip(np.concatenate(cols, axis=1), s0[L, None], W1), axis=1)
        a, b = bp[:, :-1], bp[:, 1:]
        Ya = np.clip(self.year_index(a), 0, nY - 1)
        hL = hire[L][:, None]
        A_a = A[L][np.arange(len(L))[:, None], Ya + 1]
        known = Rk[L][:, None, :] <= a[:, :, None]
        lastw = np.where(known, np.arange(nW)[None, None, :], -1).max(axis=2) if nW else np.full(a.shape, -1)
        eng_obs = np.where(lastw >= 0, Sk[L][np.arange(len(L))[:, None], np.maximum(lastw, 0)], np.nan)
        eng_used = np.where(np.isnan(eng_obs), ebar[L][:, None], eng_obs)
        mp_a = (a >= P_m[L][:, None]).astype(float)
        mr_a = mlat[L][np.arange(len(L))[:, None], Ya]
        own_a = own_lat[L][np.arange(len(L))[:, None], Ya]
        eta_v = (t.hr_alignment * np.nan_to_num(A_a) + t.hr_engagement * (eng_used - 3) + t.hr_manager_program * mp_a
                 + t.hr_manager_rating * np.nan_to_num(mr_a - 3) + self.jl[level[L]][:, None])
        dH = np.stack([
            np.exp(eta_v) * (((b - hL) / lam) ** kap - ((a - hL) / lam) ** kap),
            self.rate_inv * np.exp(t.hr_involuntary_rating * np.nan_to_num(own_a - 3)) * (b - a),
            np.broadcast_to(self.rate_oth * (b - a), a.shape),
        ])
        if ceo:
            dH[:] = 0.0
        cum = np.cumsum(dH, axis=2)
        hit = cum >= Erem[:, L][:, :, None]
        anyhit = hit.any(axis=2) & (dH.sum(axis=2) > 0)
        kk = np.argmax(hit, axis=2)
        rows = np.arange(len(L))
        x = np.full((3, len(L)), np.inf)
        for q in range(3):
            kq = kk[q]
            before = cum[q, rows, kq] - dH[q, rows, kq]
            rem = Erem[q, L] - before
            ak = a[rows, kq].astype(float)
            if q == 0:
                base = ((ak - hire[L]) / lam) ** kap + rem / np.exp(eta_v[rows, kq])
                xq = hire[L] + lam * base ** (1 / kap)
            else:
                rate = dH[q, rows, kq] / np.maximum(b[rows, kq] - a[rows, kq], 1e-300)
                xq = ak + rem / np.where(rate > 0, rate, np.inf)
            x[q] = np.where(anyhit[q], np.maximum(xq, ak), np.inf)
        win_cause = np.argmin(x, axis=0)
        xw = x.min(axis=0)
        ev = np.isfinite(xw) & (xw <= W1)
        Tw = np.where(ev, np.maximum(np.ceil(np.where(ev, xw, 0)).astype(np.int64), s0[L] + 1), 0)
        term[L] = np.where(ev, Tw, _NO_DAY)
        cause[L] = np.where(ev, win_cause, -1)

        # -- the exact intervals the voluntary hazard used (spells in the data)
        end = np.where(term[L] == _NO_DAY, W1, term[L])
        stop = np.minimum(b, end[:, None])
        keep = a < stop
        last_k = keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1)  # zero-length segments leave gaps
        seg_last = np.zeros_like(keep)
        seg_last[np.arange(len(L)), last_k] = True
        seg_last &= keep
        types = np.array(["voluntary", "involuntary", "other", "censored"], dtype=object)
        ctype = types[np.where(cause[L] >= 0, cause[L], 3)]
        rr, kk2 = np.nonzero(keep)
        lastflag = seg_last[rr, kk2]
        self.I.append(pd.DataFrame({
            "spell": idx[L][rr],
            "manager": manager[L][rr],
            "start": (a[rr, kk2] - hire[L][rr]).astype(np.int64),
            "stop": (stop[rr, kk2] - hire[L][rr]).astype(np.int64),
            "event": (lastflag & (ctype[rr] == "voluntary")).astype(np.int64),
            "event_type": np.where(lastflag, ctype[rr], "censored"),
            "alignment_cascade": A_a[rr, kk2],
            "engagement": eng_obs[rr, kk2],
            "manager_program": mp_a[rr, kk2].astype(np.int64),
            "manager_rating": mr_a[rr, kk2],
            "job_level": level[L][rr].astype(np.int64),
            "log_hazard": eta_v[rr, kk2],
        }))

        # -- truncate the potential paths at the exit
        tcmp = np.where(term == _NO_DAY, np.iinfo(np.int64).max, term)
        rated = rated_pot & (tcmp[:, None] > self.ce[None, :])
        gvalid_pair = tcmp[pi_i] > self.cs[pc]
        gcn[pi_i[~gvalid_pair], pc[~gvalid_pair]] = 0
        A[(gcn == 0)] = np.nan
        O[(gcn == 0)] = np.nan
        rkeep = rdate < tcmp[ri]

        self._append(self.S, idx=idx, slot=slot, hire=hire, term=term, cause=cause, manager=manager, level=level,
                     depth=np.full(B, depth), gender=gender, birth_year=hire_year - age, p_team=p_team, um_eng=um_eng,
                     um_lead=um_lead, fb_mult=fb_mult, P=np.full(B, _NO_DAY, np.int64),
                     mlatest=self.latest(np.where(rated, rating, np.nan)), rating=np.where(rated, rating, np.nan),
                     TA=np.where(rated, TA, np.nan), gof=gof, gcn=gcn, A=A, O=O)
        self._append(self.G, owner=idx[gown], cycle=gcyc, parent=parent, weight=w, attainment=att, reach=reach,
                     valid=gvalid_pair[gpair])
        resp_cols = {"spell": idx[ri][rkeep], "date": rdate[rkeep]}
        resp_cols.update({c: v[rkeep] for c, v in items.items()})
        for s, (lv, rv, cl) in stats.items():
            resp_cols[f"_lat_{s}"] = lv[rkeep]
            resp_cols[f"_rnd_{s}"] = rv[rkeep].sum(axis=1) if len(rv) else np.zeros(0)
            resp_cols[f"_clip_{s}"] = cl[rkeep].sum(axis=1) if len(cl) else np.zeros(0)
        self._append(self.R, **resp_cols)
        return term

    def latest(self, rating: np.ndarray) -> np.ndarray:
        """Latest known rating in each window year (cycle c is known from the next year's 1 January)."""
        nY = len(self.jan1) - 1
        out = np.full((rating.shape[0], nY), np.nan)
        cur = np.full(rating.shape[0], np.nan)
        for y in range(nY):
            c = y  # cycle index c (year y0 - 1 + c) is known in window year index y >= c
            if c < rating.shape[1]:
                cur = np.where(np.isnan(rating[:, c]), cur, rating[:, c])
            out[:, y] = cur
        return out

    # ------------------------------------------------------------------ depth by depth
    def finish_depth(self, depth: int):
        """Make a depth's spells available to the next depth (look-ups, goal pools, programme starts)."""
        self.finalise_arrays()
        sp = self.sp
        at = np.flatnonzero(sp["depth"] == depth)
        in_data = sp["term"][at] > self.W0
        # leadership development: quarterly nominations, odds rising with the latest known rating
        if depth >= 1:
            cand = at[self.tree_is_manager[sp["slot"][at]] & in_data]
            P = sp["P"]
            W_years = range(self.y0, self.t.window_end.year + 1)
            quarters = [_day(dt.date(y, m, 1)) for y in W_years for m in (1, 4, 7, 10)]
            base = _logit(self.t.program_uptake)
            for q in quarters:
                yq = min(int(self.year_index(np.array([q]))[0]), sp["mlatest"].shape[1] - 1)
                r = sp["mlatest"][cand, yq]
                draw = self.rng.random(len(cand))
                start = q + self.rng.integers(0, 31, len(cand))
                elig = (sp["hire"][cand] <= q) & (sp["term"][cand] > q) & (P[cand] == _NO_DAY) & ~np.isnan(r)
                enrol = elig & (draw < _expit(base + self.t.program_selection * np.nan_to_num(r - 3)))
                enrol &= (start < sp["term"][cand]) & (start <= self.W1)
                P[cand[enrol]] = start[enrol]
                self.P_set.append((cand[enrol], start[enrol]))
        # pools of goals another team may serve ("unrelated" parents): managers' goals in the data
        mgr_ok = self.tree_is_manager[sp["slot"]] & (sp["term"] > self.W0) & (sp["depth"] == depth)
        gl = self.gl
        ok = mgr_ok[gl["owner"]] & gl["valid"]
        self.pool = [np.flatnonzero(ok & (gl["cycle"] == c)) for c in range(self.C)]
        self.index_depth(at)

    def run(self, tree: pd.DataFrame):
        from scipy.special import digamma

        t, rng = self.t, self.rng
        self.tree_parent = tree["parent"].to_numpy()
        self.tree_level = tree["job_level"].to_numpy()
        self.tree_is_manager = tree["is_manager"].to_numpy()
        self.elog_fb = float(digamma(t.feedback_rate_shape) - np.log(t.feedback_rate_shape))
        self.sp, self.gl = {}, {}
        depth = tree["depth"].to_numpy()
        for d in range(depth.max() + 1):
            slot = np.flatnonzero(depth == d)
            hire = self.H0 + (0 if d == 0 else rng.integers(0, 365, len(slot)))
            hire = np.broadcast_to(hire, slot.shape).astype(np.int64)
            while len(slot):
                # spells of one depth are independent given the depth above: chunks bound the memory
                term = np.concatenate([
                    self.simulate_batch(slot[i : i + _CHUNK], hire[i : i + _CHUNK], d) for i in range(0, len(slot), _CHUNK)
                ])
                left = term != _NO_DAY
                nxt = term[left] + rng.integers(1, t.vacancy_days_max + 1, left.sum())
                ok = nxt <= self.W1 - 1
                slot, hire = slot[left][ok], nxt[ok]
            self.finish_depth(d)


def _run_engine(n: int, truth: Truth, rng: np.random.Generator) -> dict:
    """Simulate the organisation until exactly ``n`` spells fall in the window; return internal tables."""
    ratio = 1.7  # spells in the data per position, refined after each attempt
    for _attempt in range(8):
        n_slots = max(int(np.ceil(n / ratio * 1.03)), 8)
        tree = _build_tree(n_slots, truth, rng)
        eng = _Engine(truth, rng)
        eng.run(tree)
        sp = eng.sp
        in_data = sp["term"] > eng.W0
        count = int(in_data.sum())
        leaf = ~eng.tree_is_manager[sp["slot"]]
        removable = np.flatnonzero(in_data & leaf & (sp["hire"] > eng.W0))
        excess = count - n
        if 0 <= excess <= 0.3 * len(removable):
            break
        ratio = count / len(tree)
    else:  # pragma: no cover - calibration always converges within a few attempts
        raise RuntimeError("could not calibrate the organisation size")
    drop = rng.choice(removable, size=excess, replace=False) if excess else np.zeros(0, int)
    in_data[drop] = False
    return _tables_from_engine(eng, tree, in_data, truth, rng)


def _tables_from_engine(eng: _Engine, tree: pd.DataFrame, in_data: np.ndarray, truth: Truth, rng) -> dict:
    sp, gl, W0, W1 = eng.sp, eng.gl, eng.W0, eng.W1
    spells = np.flatnonzero(in_data)
    leaf = ~eng.tree_is_manager[sp["slot"]]
    term = sp["term"]
    tend = np.where(term == _NO_DAY, W1 + 1, term)  # first day not employed (within the window)
    s0 = np.maximum(sp["hire"], W0)
    types = np.array(["voluntary", "involuntary", "other"], dtype=object)

    # -- rehires: a few in-window hires of individual contributors are earlier voluntary leavers
    person = np.arange(len(term))
    year = (np.where(term == _NO_DAY, 0, term).astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
    hire_year = sp["hire"].astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    leavers = in_data & leaf & (sp["cause"] == 0) & (term != _NO_DAY)
    joiners = np.flatnonzero(in_data & leaf & (sp["hire"] > W0))
    n_re = int(round(truth.rehire_share * len(joiners)))
    gender = sp["gender"].copy()
    birth_year = sp["birth_year"].copy()
    used = np.zeros(len(term), bool)
    for b in np.sort(rng.choice(joiners, size=min(n_re, len(joiners)), replace=False)) if n_re else []:
        ok = leavers & ~used & (year < hire_year[b]) & (term + 180 <= sp["hire"][b])
        ok[b] = False
        cand = np.flatnonzero(ok)
        if not len(cand) or used[b]:
            continue
        a = int(rng.choice(cand))
        used[a] = used[b] = True
        person[b] = person[a]
        gender[b], birth_year[b] = gender[a], birth_year[a]

    dept = tree["department"].to_numpy(object)[sp["slot"]]
    loc = tree["location"].to_numpy(object)[sp["slot"]]
    cause = sp["cause"]
    spells_df = pd.DataFrame({
        "spell": spells, "slot": sp["slot"][spells], "person": person[spells], "hire": sp["hire"][spells],
        "term": term[spells], "term_type": np.where(cause[spells] >= 0, types[np.maximum(cause[spells], 0)], None),
        "department": dept[spells], "job_level": sp["level"][spells], "manager": sp["manager"][spells],
        "location": loc[spells], "gender": gender[spells], "birth_year": birth_year[spells],
    })

    # -- goals, reviews, realised alignment
    gk = np.flatnonzero(gl["valid"] & in_data[gl["owner"]])
    goals = pd.DataFrame({"goal": gk, "owner": gl["owner"][gk], "cycle": gl["cycle"][gk], "parent": gl["parent"][gk],
                          "weight": gl["weight"][gk], "attainment": gl["attainment"][gk]})
    si, ci = np.nonzero(~np.isnan(sp["rating"][spells]))
    reviews = pd.DataFrame({"spell": spells[si], "cycle": ci, "rating": sp["rating"][spells[si], ci].astype(int),
                            "target_attainment": sp["TA"][spells[si], ci]})
    si, ci = np.nonzero(sp["gcn"][spells] > 0)
    true_alignment = pd.DataFrame({"spell": spells[si], "cycle": ci, "alignment_cascade": sp["A"][spells[si], ci],
                                   "alignment_org": sp["O"][spells[si], ci]})

    # -- survey responses
    R = {k: np.concatenate(v) for k, v in eng.R.items()}
    eng.R = {}
    rk = in_data[R["spell"]]
    surveys = pd.DataFrame({k: v[rk] for k, v in R.items() if not k.startswith("_")})
    stats = {k: v[rk] for k, v in R.items() if k.startswith("_")}

    # -- programmes: leadership development (drawn by depth) and employee programmes
    rows = []
    P = sp["P"]
    lead = spells[P[spells] != _NO_DAY]
    rows.append(_enrolments(lead, "leadership_development", P[lead], truth.program_days, truth.program_days + 1,
                            tend, W1, truth, rng))
    span = (tend - s0) / _YEAR
    for prog, rate in truth.employee_programs.items():
        p = 1 - (1 - rate) ** np.maximum(span[spells], 0)
        who = spells[rng.random(len(spells)) < p]
        start = s0[who] + np.floor(rng.random(len(who)) * (tend[who] - s0[who])).astype(np.int64)
        lo, hi = _PROGRAM_DAYS.get(prog, (30, 181))
        rows.append(_enrolments(who, prog, start, lo, hi, tend, W1, truth, rng))
    programs = pd.concat(rows, ignore_index=True)

    # -- feedback events at person-specific Poisson rates; givers usually the manager
    fb = []
    mgr = sp["manager"]
    order = np.argsort(mgr[spells], kind="stable")
    team_members = spells[order]
    team_mgr = mgr[team_members]
    for kind, rate in truth.feedback_rates.items():
        lam = rate * sp["fb_mult"][spells] * np.maximum(tend[spells] - s0[spells], 0) / _YEAR
        cnt = rng.poisson(lam)
        who = np.repeat(spells, cnt)
        date = s0[who] + np.floor(rng.random(len(who)) * (tend[who] - s0[who])).astype(np.int64)
        m = mgr[who]
        by_manager = rng.random(len(who)) < truth.feedback_manager_share.get(kind, 0.5)
        # the manager on the spell if employed then, else whoever holds the manager's position
        m_emp = (m >= 0) & (sp["hire"][np.maximum(m, 0)] <= date) & (tend[np.maximum(m, 0)] > date)
        eng.index_depth(np.flatnonzero(in_data))
        fill = eng.incumbent(eng.tree_parent[sp["slot"][who]], date)
        fill = np.where((fill >= 0) & in_data[np.maximum(fill, 0)] & (sp["hire"][np.maximum(fill, 0)] <= date)
                        & (tend[np.maximum(fill, 0)] > date), fill, -1)
        boss = np.where(m_emp, m, fill)
        # a peer: someone else with the same manager, employed on the date
        lo = np.searchsorted(team_mgr, m, side="left")
        hi = np.searchsorted(team_mgr, m, side="right")
        size = hi - lo
        pick = lo + np.floor(rng.random(len(who)) * np.maximum(size, 1)).astype(np.int64)
        peer = team_members[np.clip(pick, 0, len(team_members) - 1)] if len(team_members) else np.full(len(who), -1)
        peer_ok = (m >= 0) & (size > 1) & (peer != who) & (sp["hire"][peer] <= date) & (tend[peer] > date)
        giver = np.where(by_manager | ~peer_ok, boss, peer)
        # one event per employee, day and giver (a second one would be an exact duplicate row)
        key = ((who.astype(np.int64) << 14) + (date - eng.H0)) * (len(term) + 2) + (giver + 1)
        first = np.sort(np.unique(key, return_index=True)[1])
        fb.append(pd.DataFrame({"spell": who[first], "date": date[first], "kind": kind, "giver": giver[first]}))
    feedback = pd.concat(fb, ignore_index=True)

    ti = pd.concat(eng.I, ignore_index=True)
    eng.I = []
    ti = ti[in_data[ti["spell"].to_numpy()]]

    derived = _derived(eng, truth, spells, term, cause, tend, s0, stats, surveys, tree)
    return {"spells": spells_df, "goals": goals, "reviews": reviews, "surveys": surveys, "programs": programs,
            "feedback": feedback, "true_alignment": true_alignment, "true_intervals": ti, "derived": derived}


def _enrolments(who, program, start, lo, hi, tend, W1, truth, rng) -> pd.DataFrame:
    """Programme rows: planned length ``lo..hi-1`` days; withdrawn early, completed, or in progress."""
    who = np.asarray(who, np.int64)
    start = np.asarray(start, np.int64)
    length = rng.integers(lo, max(hi, lo + 1), len(who))
    end = start + length
    withdraw = rng.random(len(who)) < truth.withdrawal_share
    early = start + np.maximum(1, np.floor(rng.random(len(who)) * length)).astype(np.int64)
    end = np.where(withdraw, early, end)
    left_first = end >= tend[who]  # left (or window ended) before the programme ended
    employed_at_end = tend[who] > W1
    status = np.where(withdraw, "withdrawn", "completed").astype(object)
    status = np.where(left_first & employed_at_end, "in_progress", np.where(left_first, "withdrawn", status))
    end = np.where(left_first & employed_at_end, _NO_DAY, np.where(left_first, np.maximum(tend[who], start + 1), end))
    return pd.DataFrame({"spell": who, "program": program, "start": start, "end": end, "status": status})


def _implied_alpha(var_latent: float, item_var: np.ndarray) -> float:
    """Cronbach's alpha of k items = latent + independent noise (item noise plus rounding noise)."""
    k = len(item_var)
    total = k**2 * var_latent + item_var.sum()
    return float(k / (k - 1) * (1 - (k * var_latent + item_var.sum()) / total))


def _derived(eng, truth, spells, term, cause, tend, s0, stats, surveys, tree) -> dict:
    out: dict = {}
    alphas, clip_share = {}, {}
    for s, (k, _) in SCALE_ITEMS.items():
        lat = stats[f"_lat_{s}"]
        if len(lat) < 3:
            continue
        rnd = stats[f"_rnd_{s}"] / k
        item_var = np.full(k, truth.item_sd**2 + rnd.mean())
        alphas[s] = round(_implied_alpha(float(np.var(lat)), item_var), 4)
        clip_share[s] = round(float(stats[f"_clip_{s}"].sum() / (k * len(lat))), 5)
    out["implied_alpha"] = alphas
    out["clipped_item_share"] = clip_share
    # realised yearly exit rates (exits per person-year at risk)
    rates = {}
    for y in range(eng.y0, truth.window_end.year + 1):
        a, b = _day(dt.date(y, 1, 1)), _day(dt.date(y + 1, 1, 1))
        py = np.clip(np.minimum(tend[spells], b) - np.maximum(s0[spells], a), 0, None).sum() / _YEAR
        t = term[spells]
        inyear = (t != _NO_DAY) & (t >= a) & (t < b)
        rates[str(y)] = {
            "voluntary": round(float((inyear & (cause[spells] == 0)).sum() / py), 4),
            "involuntary": round(float((inyear & (cause[spells] == 1)).sum() / py), 4),
            "other": round(float((inyear & (cause[spells] == 2)).sum() / py), 4),
        }
    out["exit_rates_per_person_year"] = rates
    sp = eng.sp
    A = sp["A"][spells]
    m = sp["manager"][spells]
    has = (sp["gcn"][spells] > 0) & (m >= 0)[:, None]
    gone = has & (sp["gcn"][np.maximum(m, 0)] == 0)
    out["alignment_cascade_mean"] = {str(y): round(float(np.nanmean(np.where(has[:, c], A[:, c], np.nan))), 4)
                                     for c, y in enumerate(eng.years) if has[:, c].any()}
    out["share_manager_without_goals"] = round(float(gone.sum() / max(has.sum(), 1)), 4)
    out["engagement_latent_sd"] = round(float(np.std(stats["_lat_engagement"])), 4) if len(stats["_lat_engagement"]) else None
    out["n_positions"] = int(len(tree))
    out["n_spells_simulated"] = int(len(term))
    out["n_left_truncated"] = int((eng.sp["hire"][spells] < eng.W0).sum())
    return out


def _move_to_small_departments(employees: pd.DataFrame, small: dict[str, int], seed: int) -> pd.DataFrame:
    """Move the given number of individual contributors (all their spells) into each small department.

    People who manage nobody are drawn without replacement with a generator of
    their own (seeded from ``seed``), so the rest of the simulation draws the
    same numbers as without small departments.
    """
    managers = set(employees["manager_id"].dropna())
    candidates = np.array(sorted(set(employees["employee_id"].dropna()) - managers), dtype=object)
    wanted = sum(int(k) for k in small.values())
    if wanted > len(candidates):
        raise ConfigError(
            f"small_departments asks for {wanted} people, but the study has only {len(candidates)} individual "
            "contributors; lower the numbers or raise n_employees."
        )
    chosen = np.random.default_rng([int(seed), 0x5D]).choice(candidates, size=wanted, replace=False)
    out = employees.copy()
    start = 0
    for name, k in small.items():
        people = set(chosen[start: start + int(k)])
        out.loc[out["employee_id"].isin(people), "department"] = name
        start += int(k)
    return out


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
        True parameters; ``default_truth()`` when omitted.
    messy : bool, default True
        Inject a few dozen realistic data problems (logged in ``injected``);
        ``False`` gives perfectly clean tables.

        Departments below the minimum group size (to test what leaders see)
        come from ``truth``: ``Truth(small_departments={"Legal": 3, "Audit": 4})``
        moves 3 and 4 randomly chosen individual contributors into ``Legal``
        and ``Audit`` (see Notes).

    Returns
    -------
    SimulatedStudy
        The raw tables, study configuration, true parameters, realised
        alignment, the exact hazard intervals and the injected problems.

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
    *Organisation.* Positions form a tree (CEO, department heads, managers
    with 3-15 direct reports, individual contributors). Each position is
    filled by a sequence of employment spells from ``history_years`` before
    the window; a leaver is replaced 1..``vacancy_days_max`` days later.
    Spells that end on or before the window start are dropped (left
    truncation); ``n_employees`` spells remain (a few in-window hires of
    individual contributors are removed at random to hit the number, and
    ``rehire_share`` of the in-window hires reuse an earlier leaver's id).
    ``manager_id`` is the holder of the parent position on
    ``max(hire_date, window start)`` (one manager per spell); when that
    manager leaves, the employee keeps the id.

    *Goals.* Each cycle the CEO owns 4-6 organisation goals (no parent).
    Everyone else owns ``goals_min..goals_max`` goals; each is linked with
    probability ``pi`` to a random goal of their manager in that cycle, where
    ``logit(pi) = logit(p_manager) + alignment_manager_shift * [manager
    position] + N(0, alignment_person_sd)`` and ``p_manager ~ Beta``; an
    unlinked goal has no parent or (``unrelated_parent_share``) another
    manager's goal. If the manager on the spell has no goals in a cycle
    (left, or not yet hired) linked goals serve the position's current
    holder, which the cascade measure does not count. ``true_alignment``
    holds the realised shares exactly as the data define them.

    *Surveys.* Latent engagement on a response date ``s`` is
    ``engagement_intercept + engagement_alignment * alignment_cascade(cycle
    of s) + engagement_manager_program * manager_program(s) +
    engagement_manager_rating * (manager_rating(s) - 3) + u_manager +
    u_person + e`` (``manager_rating - 3`` counts 0 while unknown). Items add
    ``N(0, item_sd)`` and a fixed offset (zero mean per scale) and are
    rounded stochastically, so the expected scale score equals the latent
    score. Perceived ``alignment`` follows ``alignment_cascade``,
    ``leadership`` follows ``manager_program``, ``feedback`` the person's
    feedback rate. At most one item per scale is skipped.

    *Exits.* Three competing cause-specific hazards on tenure days. The
    voluntary log-hazard is ``log h0(t) + hr_alignment * alignment_cascade +
    hr_engagement * (engagement - 3) + hr_manager_program * manager_program
    + hr_manager_rating * (manager_rating - 3) + hr_job_level[job_level]``
    with a Weibull baseline ``H0(t) = (t / voluntary_scale_days) **
    voluntary_shape``. Every covariate is the value the analysis intervals
    hold under the timing conventions (``true_intervals`` lists them);
    engagement is the latest engagement score observed in the spell
    (before the first response the hazard uses the person's expected
    engagement, and ``true_intervals.engagement`` is NaN); an unknown
    manager rating counts as 3. Before the window start the covariates are
    fixed at the person's expected values. Exit times are drawn by inverting
    the cumulative hazard over the covariate change points; a continuous
    exit time ``x`` is recorded on day ``ceil(x)``. Involuntary exits have a
    constant hazard (``involuntary_rate``) times
    ``exp(hr_involuntary_rating * (own latest rating - 3))``; "other" exits
    a constant hazard.

    *Programmes.* Each quarter of the window, a manager with a known rating
    who has not enrolled starts leadership development with log-odds
    ``logit(program_uptake) + program_selection * (rating - 3)`` (rating =
    their latest known rating): selection on performance, which also drives
    their reports' engagement and exits (confounding). Employees enrol in
    coaching, mentoring and training at ``employee_programs`` yearly rates
    (no effect on exits).

    *Small departments.* ``truth.small_departments`` (name -> people) moves
    that many individual contributors (people who manage nobody; every spell
    of each) into each named extra department after the simulation, before
    problems are injected. They keep their managers, so the extra
    departments cut across the tree. Department enters no true model, so the
    true effects hold unchanged; an injected problem may still touch one of
    their rows.

    Examples
    --------
    >>> import alignment_research as ar
    >>> sim = ar.simulate_study(n_employees=300, seed=0)
    >>> sorted(sim.tables)
    ['employees', 'feedback', 'goals', 'programs', 'reviews', 'surveys']
    """
    truth = default_truth() if truth is None else truth
    if not isinstance(truth, Truth):
        raise ConfigError(f"`truth` must be a Truth (see default_truth()), not {type(truth).__name__}.")
    n_employees = int(n_employees)
    if n_employees < 10:
        raise ConfigError(f"`n_employees` must be at least 10, but {n_employees} was passed.")
    rng = np.random.default_rng(seed)
    sim = _run_engine(n_employees, truth, rng)
    tables, true_alignment, true_intervals = _assemble(sim, truth)
    if truth.small_departments:
        tables["employees"] = _move_to_small_departments(tables["employees"], truth.small_departments, seed)
    if messy:
        tables, injected = _inject(tables, truth, rng, n_employees)
    else:
        injected = pd.DataFrame({c: pd.Series(dtype=object) for c in ["table", "row", "column", "rule", "note"]})
    tables = {name: _finish(t.drop(columns=[c for c in ("_spell",) if c in t.columns])) for name, t in tables.items()}
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


def write_simulated_study(sim: SimulatedStudy, out_dir: str | Path) -> Path:
    """Write a simulated study folder: six CSV tables, ``study.yaml`` and ``truth.yaml``.

    Parameters
    ----------
    sim : SimulatedStudy
        From `simulate_study`.
    out_dir : str or Path
        Folder to write (created if missing; files are overwritten).

    Returns
    -------
    Path
        The folder.

    Notes
    -----
    Dates are ISO (``YYYY-MM-DD``) except the few cells ``sim.injected`` marks
    ``excel_serial_date``, which are written as Excel serial day numbers.
    Floats use ``%.10g``, so the files are identical bit for bit for a seed.

    Examples
    --------
    >>> import alignment_research as ar, tempfile
    >>> folder = ar.write_simulated_study(ar.simulate_study(n_employees=300, seed=0), tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())[:3]
    ['employees.csv', 'feedback.csv', 'goals.csv']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    serial = sim.injected[sim.injected["rule"] == "excel_serial_date"] if len(sim.injected) else sim.injected
    for name, table in sim.tables.items():
        frame = table.copy()
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                text = frame[col].dt.strftime("%Y-%m-%d").astype(object)
                hits = serial[(serial["table"] == name) & (serial["column"] == col)] if len(serial) else serial
                for row in hits["row"] if len(hits) else []:
                    text.loc[row] = str((frame.at[row, col] - pd.Timestamp("1899-12-30")).days)
                frame[col] = text.where(frame[col].notna(), None)
        frame.to_csv(out / f"{name}.csv", index=False, float_format="%.10g", lineterminator="\n")
    study_yaml = sim.config.to_yaml_dict()
    study_yaml["files"] = {t: f"{t}.csv" for t in sim.tables}
    (out / "study.yaml").write_text(yaml.safe_dump(study_yaml, sort_keys=False, allow_unicode=True), encoding="utf-8")
    truth = _yaml_ready(sim.truth.model_dump())
    if not truth.get("small_departments"):
        truth.pop("small_departments", None)  # the default: truth files stay as they were before the option
    truth["derived"] = _yaml_ready(sim.derived)
    header = "# True parameters of this simulated study (alignment-research simulate); `derived` is informational.\n"
    (out / "truth.yaml").write_text(header + yaml.safe_dump(truth, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out
