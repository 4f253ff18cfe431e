"""The true parameters of a simulated study: `Truth`, its defaults and the YAML reader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import format_validation_error
from ..errors import ConfigError

__all__ = ["PROGRAM_DAYS", "SCALE_ITEMS", "Truth", "default_truth", "load_truth"]

#: Employee programmes and their planned length in days (``low..high - 1``).
PROGRAM_DAYS = {"coaching": (60, 181), "mentoring": (120, 366), "training": (1, 6)}

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

    # --- job history (manager changes, promotions, moves; see `alignment_research.simulate.history`) ----
    history: bool = Field(True, description="simulate the job history (job_history table); false reproduces the "
                          "simulator without history bit for bit (one manager, level, department, location per spell)")
    reorg_rate: float = Field(0.05, ge=0, description="yearly rate per team (manager position below the CEO) of a "
                              "reorganisation in the window that moves all its positions under another manager "
                              "position of the same depth")
    transfer_rate: float = Field(0.04, ge=0, description="yearly rate of a transfer of an employee (two levels or more "
                                 "below the CEO) to another team (manager position of the same depth), at most once")
    lateral_rate: float = Field(0.03, ge=0, description="yearly rate of a lateral move (a change of location, same "
                                "manager and level), at most once per spell")
    promotion_base_rate: float = Field(0.08, ge=0, description="yearly promotion rate (one job level up, to at most "
                                       "5) at latest known rating 3, without mentoring, coaching or a developed manager")
    promotion_rating: float = Field(0.5, description="promotion, log hazard ratio per point of the own latest known "
                                    "rating (minus 3; none known counts 3)")
    promotion_mentoring: float = Field(0.4, description="promotion, log hazard ratio from the start of the employee's "
                                       "own mentoring programme")
    promotion_coaching: float = Field(0.3, description="promotion, log hazard ratio from the start of the employee's "
                                      "own coaching programme")
    promotion_manager_program: float = Field(0.3, description="promotion, log hazard ratio once the manager in force "
                                             "has started leadership development")
    manager_change_exit_hr: float = Field(0.4, description="voluntary exit, log hazard ratio during the "
                                          "manager_change_exit_months after each change of the manager in force")
    manager_change_exit_months: float = Field(6.0, ge=0, description="months (of 30.4375 days) for which a manager "
                                              "change raises the voluntary exit hazard")

    # --- the essay's practices (issue 15; see `alignment_research.simulate.practices`) ----------
    # On by default (issue 15): the sample holds a true effect for every claim, some of them zero on purpose, so
    # that its scorecard can show every verdict. Every effect below is on the scale `claims_scorecard` reports, so
    # the truth and the estimand are the same quantity.
    practices: bool = Field(True, description="simulate the practices the scorecard tests (goal difficulty, "
                            "set_with and revisions; check-ins, recognitions and 360 reviews drawn before the "
                            "surveys and exits they affect; employee programmes drawn on the potential path); on by "
                            "default; false reproduces the simulator without them bit for bit (no goal columns "
                            "difficulty, set_with, revised_date)")
    goal_difficulty_shares: list[float] = Field([0.1, 0.25, 0.35, 0.2, 0.1], description="share of goals rated "
                                                "difficulty 1..5, drawn independently of everything else")
    attainment_difficulty_curvature: float = Field(-0.02, description="goal attainment (1.0 = target) per squared "
                                                   "point of difficulty from the turning point: the inverted U "
                                                   "attainment += curvature * (difficulty - turning point)^2, so the "
                                                   "square term of attainment ~ d + d^2 is this value (claim 5)")
    difficulty_turning_point: float = Field(3.5, description="difficulty (1-5) at which attainment peaks (claim 5)")
    rating_difficulty: float = Field(0.0, description="rating: no effect of goal difficulty, zero on purpose (claim "
                                     "5's rating row has a true square term of 0); kept as a declared zero")
    goal_set_with_shares: dict[str, float] = Field({"employee": 0.25, "manager": 0.45, "jointly": 0.3},
                                                   description="set_with (employee / manager / jointly) -> share of "
                                                   "goals, drawn independently of everything else")
    attainment_set_jointly: float = Field(0.04, description="goal attainment of a goal set jointly, against one set "
                                          "by the employee or the manager alone (claim 6)")
    engagement_set_jointly: float = Field(0.0, description="latent engagement from none to all of the respondent's "
                                          "goals of the survey's cycle set jointly; zero on purpose (claim 6)")
    goal_revision_share: float = Field(0.15, ge=0, le=1, description="share of goals revised mid-cycle, on a day "
                                       "uniform from the day after the goals are set to the cycle's end; a revision "
                                       "after the owner's exit is not recorded")
    attainment_revised: float = Field(-0.05, description="goal attainment of a goal revised mid-cycle (claim 7; "
                                      "negative: the claim is contradicted)")
    attainment_checkin_gap: float = Field(0.0, description="attainment per week between check-ins and per unit of "
                                          "their coefficient of variation: no effect, zero on purpose (claim 7)")
    attainment_alignment: float = Field(0.05, description="goal attainment of a goal linked to a goal of the manager "
                                        "in force (cascaded), so target attainment rises by this per 1.0 of cascade "
                                        "alignment (claim 9; survivors are selected on both, which the scorecard "
                                        "names as a threat)")
    rating_alignment: float = Field(0.0, description="rating: no effect of cascade alignment, zero on purpose "
                                    "(claim 9's rating row); kept as a declared zero")
    checkin_window_months: float = Field(3.0, gt=0, description="look-back (months of 365.25 / 12 days) of the "
                                         "check-in rate that affects engagement and exits; the scorecard's "
                                         "feedback_months must be the same for truth and estimand to agree")
    engagement_checkin_rate: float = Field(0.1, description="latent engagement per check-in a month, the rate over "
                                           "the checkin_window_months before the response day (day excluded) "
                                           "(claim 1)")
    hr_checkin_rate: float = Field(-0.15, description="voluntary exit, log hazard ratio per check-in a month over "
                                   "the checkin_window_months before each interval's start (claim 1)")
    recognition_window_months: float = Field(6.0, gt=0, description="look-back (months) of the recognition count "
                                             "that affects exits; the scorecard's recognition_months must match")
    hr_recognitions: float = Field(-0.1, description="voluntary exit, log hazard ratio per recognition received in "
                                   "the recognition_window_months before each interval's start (claim 3)")
    engagement_manager_360: float = Field(0.0, description="latent engagement of a team once its manager in force "
                                          "has had a first 360 review in the data; zero on purpose (claim 2)")
    leadership_manager_360: float = Field(0.2, description="latent leadership score once the manager in force has "
                                          "had a first 360 review in the data (claim 2)")
    own_program_effects: float = Field(0.0, description="the employee's own coaching, mentoring and training affect "
                                       "neither engagement, exit nor rating (claim 4's rows have a true effect of 0; "
                                       "programme starts are drawn on the potential path, independent of the exit, "
                                       "so there is no look-ahead); promotion effects are promotion_mentoring and "
                                       "promotion_coaching; kept as a declared zero")
    perceived_alignment_manager_program: float = Field(0.0, description="latent perceived alignment once the "
                                                       "manager in force has started leadership development: the "
                                                       "first path of claim 8's mediation, zero on purpose")
    engagement_perceived_alignment: float = Field(0.0, description="latent engagement per point of latent "
                                                  "perceived alignment (minus its intercept): the second path of "
                                                  "claim 8's mediation, zero on purpose (the true indirect effect is "
                                                  "the product, 0)")

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
        if len(self.goal_difficulty_shares) != 5 or min(self.goal_difficulty_shares) < 0 \
                or sum(self.goal_difficulty_shares) <= 0:
            raise ValueError(f"goal_difficulty_shares needs 5 shares (difficulty 1..5), got {self.goal_difficulty_shares}")
        unknown = sorted(set(self.goal_set_with_shares) - {"employee", "manager", "jointly"})
        if unknown or min(self.goal_set_with_shares.values(), default=0) < 0 \
                or sum(self.goal_set_with_shares.values()) <= 0:
            raise ValueError(f"goal_set_with_shares maps employee, manager and jointly to shares, got "
                             f"{self.goal_set_with_shares}")
        for name in ("rating_difficulty", "rating_alignment", "attainment_checkin_gap", "own_program_effects"):
            if getattr(self, name) != 0:
                raise ValueError(f"{name} is a declared zero (the simulator has no such effect), got {getattr(self, name)}")
        unknown = sorted(set(self.employee_programs) - set(PROGRAM_DAYS))
        if unknown:
            raise ValueError(f"employee_programs must be among {sorted(PROGRAM_DAYS)}, got {unknown}")
        return self


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


