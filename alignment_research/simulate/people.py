"""People: a batch of new employment spells, what each person brings, their manager, and rehires.

A *spell* is one employment of one person in one position (slot), from the
hire day to the termination day. Spells are numbered engine-wide in the order
they are simulated; ``-1`` means "none" (no manager, no spell).

Person draws (one per spell, in this order from the shared generator): age
(so birth year), gender, the person's random intercept of engagement
(``engagement_person_sd``) and of the other three scales
(``scale_person_sd``), the random intercepts the person contributes *as a
manager* to their reports' engagement and leadership scores
(``engagement_manager_sd``), the Beta propensity that their reports' goals
link to theirs, a Gamma feedback-rate multiplier (mean 1), a survey response
probability and the probability that the person's own goals link to their
manager's:
``logit(link) = logit(manager's team propensity) + alignment_manager_shift *
[person in a manager position] + N(0, alignment_person_sd)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .days import NO_DAY, expit, logit

__all__ = ["Batch", "ManagerContext", "ManagerPath", "PersonDraws", "draw_person", "draw_rehires", "manager_context"]

if TYPE_CHECKING:  # annotations only
    from .engine import Engine


@dataclass
class ManagerPath:
    """The managers in force on each spell of a batch: one column per change, padded with ``NO_DAY``.

    Column 0 is the entry (the manager on ``max(hire, window start)``); a
    later column holds from its day on. Without job history there is one
    column. ``reason`` codes are those of `history` (0 for the entry).
    """

    day: np.ndarray  # (spells, changes) first day each manager is in force; NO_DAY pads
    manager: np.ndarray  # (spells, changes) manager spell, -1 for none
    parent: np.ndarray  # (spells, changes) the parent position in force
    reason: np.ndarray  # (spells, changes) reason code of the change

    @classmethod
    def static(cls, day: np.ndarray, manager: np.ndarray, parent: np.ndarray) -> "ManagerPath":
        """One manager per spell, from the given day on."""
        return cls(day=np.asarray(day, np.int64)[:, None], manager=np.asarray(manager)[:, None],
                   parent=np.asarray(parent)[:, None], reason=np.zeros((len(manager), 1), np.int64))

    def index(self, row, day) -> np.ndarray:
        """Column of the manager in force for batch rows ``row`` on ``day`` (same shapes; 0 before the entry)."""
        if self.day.shape[1] == 1:
            return np.zeros(np.broadcast_shapes(np.shape(row), np.shape(day)), np.int64)
        return np.maximum((self.day[row] <= np.asarray(day)[..., None]).sum(axis=-1) - 1, 0)

    def manager_on(self, row, day) -> np.ndarray:
        """The manager spell in force for batch rows ``row`` on ``day``."""
        return self.manager[row, self.index(row, day)]


@dataclass
class Batch:
    """New spells simulated together: one depth of the tree, one round of hires."""

    slot: np.ndarray  # position held by each spell
    hire_day: np.ndarray
    depth: int  # depth of the positions in the tree (0 = CEO)
    spell_id: np.ndarray  # engine-wide spell numbers
    job_level: np.ndarray
    manager: np.ndarray  # spell of the manager on the spell at entry, -1 for none
    path: ManagerPath | None = None  # managers in force over time (None: ``manager`` throughout)
    events: object = None  # with practices: the potential feedback events (`practices.BatchEvents`)

    @property
    def manager_path(self) -> ManagerPath:
        """The managers in force (a single column when the batch has no history)."""
        if self.path is None:
            self.path = ManagerPath.static(np.maximum(self.hire_day, 0), self.manager, np.full(self.size, -1))
        return self.path

    @property
    def size(self) -> int:
        return len(self.slot)

    @property
    def is_ceo(self) -> bool:
        return self.depth == 0

    @property
    def has_manager(self) -> np.ndarray:
        return self.manager >= 0

    @property
    def manager_row(self) -> np.ndarray:
        """The manager's spell, or 0 where there is none (a safe index; mask with ``has_manager``)."""
        return np.maximum(self.manager, 0)


@dataclass
class PersonDraws:
    """What each new spell's person brings (one value per spell)."""

    birth_year: np.ndarray
    gender: np.ndarray
    engagement_effect: np.ndarray  # person random intercept of engagement
    scale_effects: np.ndarray  # (spells, 3): person intercepts of the alignment, leadership and feedback scales
    effect_on_reports_engagement: np.ndarray  # as a manager: random intercept of the reports' engagement
    effect_on_reports_leadership: np.ndarray  # as a manager: random intercept of the reports' leadership score
    team_link_propensity: np.ndarray  # as a manager: Beta propensity that a report's goal links to theirs
    feedback_multiplier: np.ndarray  # Gamma multiplier of the person's feedback rates (mean 1)
    response_probability: np.ndarray  # probability of answering a survey wave
    link_probability: np.ndarray  # probability that one of the person's goals links to the manager's


@dataclass
class ManagerContext:
    """What the managers in force on each new spell bring to the spell's covariates.

    Arrays are by spell and column of the spell's `ManagerPath` (``path``).
    """

    program_start_day: np.ndarray  # (spells, changes) manager's leadership-development start, ``NO_DAY`` if none
    latest_rating: np.ndarray  # (spells, changes, window years): manager's latest known rating, NaN if none
    engagement_effect: np.ndarray  # (spells, changes) manager random intercept of engagement (0 without a manager)
    leadership_effect: np.ndarray  # (spells, changes) manager random intercept of the leadership score
    path: ManagerPath  # which manager is in force when


def draw_person(engine: Engine, batch: Batch) -> PersonDraws:
    """Draw what each person of the batch brings (see the module docstring for the order).

    Parameters
    ----------
    engine : Engine
        The engine (its generator and the spells of the depth above).
    batch : Batch
        The new spells.

    Returns
    -------
    PersonDraws
        One value per spell of each person-level draw.

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.people import draw_person
    >>> draw_person(engine, ceo).gender.shape
    (1,)
    """
    truth, rng, n = engine.truth, engine.rng, batch.size
    hire_year = (batch.hire_day.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970)
    age = np.clip(np.round(rng.normal(26 + 3.5 * (batch.job_level - 1), 6, n)), 19, 64).astype(int)
    gender_names = np.array(list(truth.genders), dtype=object)
    gender_shares = np.array(list(truth.genders.values()), float)
    gender = gender_names[rng.choice(len(gender_names), n, p=gender_shares / gender_shares.sum())]
    engagement_effect = rng.normal(0, truth.engagement_person_sd, n)
    scale_effects = rng.normal(0, truth.scale_person_sd, (n, 3))
    effect_on_reports_engagement = rng.normal(0, truth.engagement_manager_sd, n)
    effect_on_reports_leadership = rng.normal(0, truth.engagement_manager_sd, n)
    concentration = truth.alignment_concentration
    team_link_propensity = rng.beta(truth.alignment_mean * concentration, (1 - truth.alignment_mean) * concentration, n)
    feedback_multiplier = rng.gamma(truth.feedback_rate_shape, 1 / truth.feedback_rate_shape, n)
    response_probability = expit(logit(min(truth.survey_response, 1 - 1e-9))
                                  + rng.normal(0, truth.survey_response_person_sd, n))
    spells = engine.spells
    managers_propensity = np.where(
        batch.has_manager,
        spells["team_link_propensity"][batch.manager_row] if len(spells) else truth.alignment_mean,
        truth.alignment_mean,
    )
    shift = np.where(engine.tree_is_manager[batch.slot], truth.alignment_manager_shift, 0.0)
    link_probability = expit(logit(managers_propensity) + shift + rng.normal(0, truth.alignment_person_sd, n))
    return PersonDraws(
        birth_year=hire_year - age, gender=gender, engagement_effect=engagement_effect, scale_effects=scale_effects,
        effect_on_reports_engagement=effect_on_reports_engagement,
        effect_on_reports_leadership=effect_on_reports_leadership, team_link_propensity=team_link_propensity,
        feedback_multiplier=feedback_multiplier, response_probability=response_probability,
        link_probability=link_probability,
    )


def manager_context(engine: Engine, batch: Batch) -> ManagerContext:
    """Look up, for each new spell, what its manager (simulated one depth earlier) brings.

    Parameters
    ----------
    engine : Engine
        The engine (the spells of the depth above).
    batch : Batch
        The new spells.

    Returns
    -------
    ManagerContext
        The manager's programme start, latest known ratings and random
        intercepts (none for the CEO or a spell without manager).

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine, first_batch
    >>> engine, tree = example_engine()
    >>> ceo = first_batch(engine, tree)
    >>> from alignment_research.simulate.days import NO_DAY
    >>> from alignment_research.simulate.people import manager_context
    >>> bool(manager_context(engine, ceo).program_start_day[0, 0] == NO_DAY)
    True
    """
    n, spells, path = batch.size, engine.spells, batch.manager_path
    if batch.is_ceo:
        return ManagerContext(np.full((n, 1), NO_DAY), np.full((n, 1, engine.n_years), np.nan), np.zeros((n, 1)),
                              np.zeros((n, 1)), path)
    has, row = path.manager >= 0, np.maximum(path.manager, 0)
    return ManagerContext(
        program_start_day=np.where(has, spells["leadership_start_day"][row], NO_DAY),
        latest_rating=np.where(has[..., None], spells["latest_rating"][row], np.nan),
        engagement_effect=np.where(has, spells["effect_on_reports_engagement"][row], 0.0),
        leadership_effect=np.where(has, spells["effect_on_reports_leadership"][row], 0.0),
        path=path,
    )


def draw_rehires(engine: Engine, in_data: np.ndarray, leaf: np.ndarray, truth, rng: np.random.Generator):
    """Make a few in-window hires of individual contributors rehires of earlier voluntary leavers.

    Parameters
    ----------
    engine : Engine
        The engine after its run.
    in_data : numpy.ndarray
        Boolean by spell: the spell is in the data.
    leaf : numpy.ndarray
        Boolean by spell: the spell's position manages nobody.
    truth : Truth
        The true parameters (``rehire_share``).
    rng : numpy.random.Generator
        The run's generator.

    Returns
    -------
    person : numpy.ndarray
        The person number of every spell: its own spell number unless a
        rehire, then the earlier spell's.
    gender : numpy.ndarray
        Gender by spell (a rehire takes over the earlier spell's).
    birth_year : numpy.ndarray
        Birth year by spell (likewise).

    Examples
    --------
    >>> from alignment_research.simulate.engine import example_engine
    >>> engine, tree = example_engine()
    >>> in_data = engine.spells["term_day"] > engine.window_start_day
    >>> from alignment_research.simulate.people import draw_rehires
    >>> leaf = ~engine.tree_is_manager[engine.spells["slot"]]
    >>> person, gender, birth_year = draw_rehires(engine, in_data, leaf, engine.truth, engine.rng)
    >>> len(person) == engine.n_spells
    True
    """
    spells = engine.spells
    term_day, hire_day = spells["term_day"], spells["hire_day"]
    person = np.arange(len(term_day))
    term_year = (np.where(term_day == NO_DAY, 0, term_day).astype("datetime64[D]").astype("datetime64[Y]").astype(int)
                 + 1970)
    hire_year = hire_day.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970
    leavers = in_data & leaf & (spells["exit_cause"] == 0) & (term_day != NO_DAY)
    joiners = np.flatnonzero(in_data & leaf & (hire_day > engine.window_start_day))
    n_rehires = int(round(truth.rehire_share * len(joiners)))
    gender = spells["gender"].copy()
    birth_year = spells["birth_year"].copy()
    used = np.zeros(len(term_day), bool)
    for joiner in np.sort(rng.choice(joiners, size=min(n_rehires, len(joiners)), replace=False)) if n_rehires else []:
        ok = leavers & ~used & (term_year < hire_year[joiner]) & (term_day + 180 <= hire_day[joiner])
        ok[joiner] = False
        candidates = np.flatnonzero(ok)
        if not len(candidates) or used[joiner]:
            continue
        earlier = int(rng.choice(candidates))
        used[earlier] = used[joiner] = True
        person[joiner] = person[earlier]
        gender[joiner], birth_year[joiner] = gender[earlier], birth_year[earlier]
    return person, gender, birth_year
