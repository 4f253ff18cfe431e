"""Analysis tables: person, start/stop intervals, survey panel and cycles, built without look-ahead."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ._docs import fill_doc
from .errors import DataContractError
from .executors import available_cores
from .history import HISTORY_COLUMNS, RECENT_CHANGE_DAYS, history_spans, manager_spans, managers_in_cycles
from .measures import (
    attainment_alignment,
    cascade_alignment,
    code_goals,
    feedback_rate_rows,
    item_statistics,
    scale_reliability,
    score_scales,
    team_alignment,
)
from .schema import GOAL_SUMMARY_COLUMNS
from .spells import (DAY, DAYS_PER_MONTH, assign_spell, cycle_dates, index_of, numbered_spells,
                     spell_of, stable_argsort, window_bounds)

__all__ = [
    "PROGRAMS",
    "AnalysisTables",
    "build_analysis_tables",
    "person_table",
    "interval_table",
    "survey_panel_table",
    "cycle_table",
    "career_table",
    "first_promotions",
    "CAREER_COLUMNS",
    "alignment_measures",
    "alignment_correlations",
    "attach_covariates",
]

#: Programmes that always get a ``program_<name>`` column (others found in the data are added).
PROGRAMS = ("coaching", "mentoring", "training", "leadership_development")

_BIG = np.int64(1) << 24  # tenure days per spell key block (45,000 years)

#: The ``clean`` and ``config`` parameters every builder takes, documented once.
_CLEAN_CONFIG_DOC = (
    "clean : CleanStudy or dict of str to DataFrame\n"
    "        The cleaned study, or its clean tables (then pass ``config``).\n"
    "    config : StudyConfig, optional\n"
    "        Study configuration, needed when ``clean`` is a dict of tables."
)


def _builder_doc(fn):
    """Fill the shared ``{clean_config}`` parameter block into ``fn``'s docstring."""
    fill_doc(fn, clean_config=_CLEAN_CONFIG_DOC)
    return fn


# --------------------------------------------------------------------------- the context: measures computed once


class _Timeline:
    """Change points of time-varying variables as they are gathered: ``out[name] = (keys, values, default)``.

    Keys are ``sid * _BIG + t`` (spell position, tenure day), sorted; a value applies from its day on.
    """

    def __init__(self, spells: pd.DataFrame):
        self.hire = spells["hire_date"].to_numpy("datetime64[ns]")
        self.end = spells["_end"].to_numpy("datetime64[ns]")
        self.out: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}

    def days(self, dates: np.ndarray, sid: np.ndarray) -> np.ndarray:
        """Tenure days of ``dates`` in spells ``sid``."""
        return ((dates - self.hire[sid]) / DAY).astype("int64")

    def add(self, name, sid, t, values, default=np.nan, order=None) -> None:
        """Add variable ``name``: ``values`` from day ``t`` of spells ``sid`` (ties in ``order``, else as given)."""
        sid = np.asarray(sid, np.int64)
        t = np.asarray(t, np.int64)
        values = np.asarray(values, float)
        key = sid * _BIG + t
        idx = np.lexsort((order, key)) if order is not None else stable_argsort(key)
        self.out[name] = (key[idx], values[idx], default)

    def add_each(self, names, sid, t, columns, finite_only=False) -> None:
        """``add`` of several variables known on the same days (default NaN), the days sorted once. With
        ``finite_only``, each variable's rows where its value is finite, in the order the stable sort of all
        the rows gives them (a stable sort of a subset keeps the order the sort of all gives it)."""
        key = np.asarray(sid, np.int64) * _BIG + np.asarray(t, np.int64)
        idx = stable_argsort(key)
        key = key[idx]  # the timeline's arrays are only read: variables may share them
        for name, values in zip(names, columns):
            values = np.asarray(values, float)[idx]
            ok = np.isfinite(values) if finite_only else None
            self.out[name] = (key, values, np.nan) if ok is None or ok.all() else (key[ok], values[ok], np.nan)


class _Context:
    """Clean tables, config and the measures every builder needs, each computed once."""

    def __init__(self, clean, config=None, *, n_boot: int = 1000):
        if hasattr(clean, "tables") and hasattr(clean, "config"):
            tables, config = clean.tables, (config or clean.config)
        else:
            tables = clean
        if config is None:
            raise DataContractError("Building analysis tables needs the study configuration (`config=`).")
        if "employees" not in tables:
            raise DataContractError("Building analysis tables needs the `employees` table.")
        self.tables = tables
        self.config = config
        self.n_boot = n_boot
        self.w_start, self.w_end = window_bounds(config.window)
        self.cycle_frame = cycle_dates(config.cycles) if config.cycles else pd.DataFrame(
            columns=["name", "start", "end", "order"])

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def release(self, *names: str) -> None:
        """Forget computed measures no later step needs (their memory goes back before the next tables)."""
        for name in names:
            self.__dict__.pop(name, None)

    # ---- spells -----------------------------------------------------------------
    @cached_property
    def spells(self) -> pd.DataFrame:
        emp = self.tables["employees"]
        for col in ("termination_date", "termination_type", "manager_id", "department", "job_level",
                    "gender", "location", "birth_year"):
            if col not in emp.columns:
                emp = emp.assign(**{col: pd.NA})
        sp = numbered_spells(emp).reset_index(drop=True)
        hire = sp["hire_date"].to_numpy("datetime64[ns]")
        term = sp["termination_date"].to_numpy("datetime64[ns]")
        w_start, w_end = np.datetime64(self.w_start, "ns"), np.datetime64(self.w_end, "ns")
        ended = ~np.isnat(term) & (term <= w_end)
        end_date = np.where(ended, term, w_end)
        entry = np.maximum(0, ((w_start - hire) / DAY)).astype("int64")
        exit_ = ((end_date - hire) / DAY).astype("int64")
        ttype = sp["termination_type"].astype("string").fillna("other").to_numpy(dtype=object)
        event_type = np.where(ended, ttype, "censored")
        sp["_end"] = end_date  # last day at risk (termination or window end)
        sp["_term"] = term
        sp["entry"] = entry
        sp["exit"] = exit_
        sp["event_type"] = pd.array(event_type, dtype="string")
        sp["event"] = np.isin(event_type, list(self.config.event_types)).astype("int64")
        sp["in_window"] = (exit_ > entry) & (hire <= w_end) & (end_date >= w_start)
        return sp

    @cached_property
    def employee_rank(self) -> np.ndarray | None:
        """Per spell: the rank of its employee id in sorted order, or None when the spells are not in id order.

        ``numbered_spells`` sorts by employee and hire date, so spell positions already follow
        ``employee_id, spell``; output sorted by spell position then needs no string sort.
        """
        ids = self.spells["employee_id"].astype("string")
        if ids.isna().any() or not pd.Index(ids.to_numpy(dtype=object)).is_monotonic_increasing:
            return None
        values = ids.to_numpy(dtype=object)
        return np.cumsum(np.r_[False, values[1:] != values[:-1]]).astype(np.int64)

    # ---- measures ---------------------------------------------------------------
    @cached_property
    def alignment_result(self):
        goals = self.table("goals")
        if goals is None:
            empty = pd.DataFrame({"employee_id": pd.Series(dtype="string"), "cycle": pd.Series(dtype="string"),
                                  "manager_id": pd.Series(dtype="string"), "n_goals": pd.Series(dtype="int64"),
                                  "alignment_cascade": pd.Series(dtype=float), "alignment_org": pd.Series(dtype=float)})
            return empty, pd.DataFrame({c: pd.Series(dtype="string") for c in ("goal_id", "cycle", "rule", "value")})
        cf = self.cycle_frame
        in_force = None  # the managers in force per cycle, from the history spans the tables use (built once)
        if self.history is not None and len(cf) and not cf["start"].isna().any():
            in_force = managers_in_cycles(self.table("job_history"), self.spells, cf, spans=self.history)
        res = cascade_alignment(goals, self.tables["employees"], cycles=self.config.cycles or None,
                                history=self.table("job_history"), in_force=in_force, codes=self.goal_codes)
        return res.table, res.problems

    @cached_property
    def goal_codes(self):
        """``measures.code_goals`` of the goals: owners and cycles hashed once for cascade and attainment alignment
        and the cycles table's goal summaries (None without goals)."""
        goals = self.table("goals")
        return None if goals is None else code_goals(goals)

    @cached_property
    def spell_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per spell, a code of its employee id's text; and the distinct texts (code -> text)."""
        codes, texts = pd.factorize(np.asarray(self.spells["employee_id"].astype("string").array, dtype=object))
        return codes.astype(np.int64), np.asarray(texts, dtype=object)

    @cached_property
    def alignment_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Row of the cascade-alignment table per (employee code, cycle code), -1 when none; and the code of each
        row of ``cycle_frame`` (built once, for the timeline and the cycles table)."""
        align, _ = self.alignment_result
        codes, texts = self.spell_codes
        cycle_code, cycle_texts = self.cycle_codes
        row_employee = index_of(align["employee_id"], texts)
        row_cycle = index_of(align["cycle"], np.asarray(cycle_texts, dtype=object))
        ok = (row_employee >= 0) & (row_cycle >= 0)
        table = np.full((len(texts), max(len(cycle_texts), 1)), -1, dtype=np.int64)  # pairs are unique
        table[row_employee[ok], row_cycle[ok]] = np.flatnonzero(ok)
        return table, cycle_code

    @cached_property
    def cycle_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``cycle_frame``, a code of its name; and the distinct names (code -> name)."""
        cycle_code, cycle_texts = pd.factorize(self.cycle_frame["name"].to_numpy(dtype=object))
        return cycle_code, np.asarray(cycle_texts, dtype=object)

    def review_rows(self, sid: np.ndarray, ci: np.ndarray) -> np.ndarray:
        """Row of ``reviews`` for spell ``sid``'s employee in cycle ``ci`` (a row of ``cycle_frame``); -1 when none.

        The last review of each (employee, cycle) text pair, as ``drop_duplicates(keep="last")`` and
        ``locate_pairs`` on the texts find it, from integer codes: each review's employee and cycle hashed once.
        """
        codes, texts = self.spell_codes
        cycle_code, cycle_texts = self.cycle_codes
        r = self.tables["reviews"]
        employee = index_of(r["employee_id"].astype("string"), texts)  # missing: -1
        cycle = index_of(r["cycle"].astype("string"), cycle_texts)
        rows = np.flatnonzero((employee >= 0) & (cycle >= 0))
        n_cycles = max(len(cycle_texts), 1)
        table = np.full(len(texts) * n_cycles, -1, dtype=np.int64)
        np.maximum.at(table, employee[rows] * n_cycles + cycle[rows], rows)  # rows increase: the last one stays
        return table[codes[np.asarray(sid, np.int64)] * n_cycles + cycle_code[np.asarray(ci, np.int64)]]

    def alignment_rows(self, sid: np.ndarray, ci: np.ndarray) -> np.ndarray:
        """Row of the cascade-alignment table for spell ``sid``'s employee in cycle ``ci`` (a row of
        ``cycle_frame``); -1 when it has none. What ``locate_pairs`` on the texts finds, from integer codes."""
        codes, _ = self.spell_codes
        table, cycle_code = self.alignment_table
        return table[codes[np.asarray(sid, np.int64)], cycle_code[np.asarray(ci, np.int64)]]

    @cached_property
    def scores(self) -> pd.DataFrame | None:
        surveys = self.table("surveys")
        if surveys is None or not self.config.scales:
            return None
        return score_scales(surveys, self.config.scales)

    @property
    def feedback_rates(self) -> pd.DataFrame | None:
        return None if self.feedback_rate_rows is None else self.feedback_rate_rows[0]

    @cached_property
    def feedback_rate_rows(self) -> tuple[pd.DataFrame, np.ndarray] | None:
        """``measures.feedback_rate_rows``: the feedback rates and each row's spell position; None without feedback."""
        fb = self.table("feedback")
        if fb is None:
            return None
        return feedback_rate_rows(fb, self.spells, window=self.config.window)

    @cached_property
    def programs(self) -> pd.DataFrame:
        p = self.table("programs")
        if p is None:
            return pd.DataFrame({"employee_id": pd.Series(dtype="string"), "program": pd.Series(dtype="string"),
                                 "start_date": pd.Series(dtype="datetime64[ns]")})
        return p.dropna(subset=["employee_id", "program", "start_date"])

    @cached_property
    def program_spells(self) -> pd.DataFrame | None:
        """Programme starts with ``_sid``, the spell each falls in (-1 when none); None without programmes."""
        p = self.programs
        return assign_spell(p.reset_index(drop=True), self.spells, "start_date") if len(p) else None

    @cached_property
    def survey_spells(self) -> pd.DataFrame | None:
        """Scale scores with ``_sid``, the spell each response falls in (-1 when none); None without scores."""
        if self.scores is None:
            return None
        return assign_spell(self.scores.reset_index(drop=True), self.spells, "survey_date")

    @cached_property
    def program_names(self) -> list[str]:
        found = sorted(set(self.programs["program"].astype(str)) - set(PROGRAMS))
        return list(PROGRAMS) + found

    @cached_property
    def manager_ld_start(self) -> pd.Series:
        p = self.programs
        ld = p[p["program"] == "leadership_development"]
        return ld.groupby(ld["employee_id"].astype("string"))["start_date"].min()

    @cached_property
    def spell_manager_ld_start(self) -> np.ndarray:
        """Per spell: the date its manager first started leadership development (NaT if never)."""
        return self.spells["manager_id"].astype("string").map(self.manager_ld_start).to_numpy("datetime64[ns]")

    # ---- job history: values in force ---------------------------------------------
    @cached_property
    def history(self) -> pd.DataFrame | None:
        """Job-history spans (``history.history_spans``) keyed ``sid * _BIG + t``; None without ``job_history``."""
        h = self.table("job_history")
        if h is None or not len(h):
            return None
        extra = [c for c in (self.config.covariates or {}) if c in h.columns]
        spans = history_spans(h, self.spells, extra=extra)
        spans["key"] = spans["sid"].to_numpy(np.int64) * _BIG + spans["t"].to_numpy(np.int64)
        return spans

    def in_force_values(self, column: str):
        """A history column's values, the spells' (at hire) then the history's rows, converted once per build:
        ``job_level`` as "Float64", the others as "string" (what the tables take the values in force from)."""
        cache = self.__dict__.setdefault("_in_force_values", {})
        if column not in cache:
            both = [self.spells[column].to_numpy(dtype=object), self.history[column].to_numpy(dtype=object)]
            if column == "job_level":
                num = [pd.to_numeric(pd.Series(v, dtype=object), errors="coerce") for v in both]
                cache[column] = pd.array(np.concatenate([pd.array(v, dtype="Float64").to_numpy(float, na_value=np.nan)
                                                         for v in num]), dtype="Float64")
            else:
                cache[column] = pd.array(np.concatenate(both), dtype="string")
        return cache[column]

    def prepare_tables(self) -> None:
        """Make what several tables read, so that tables built side by side find it made: the employees' ranks
        and, with a job history, the values in force."""
        _ = self.employee_rank
        if self.history is not None:
            for column in HISTORY_COLUMNS:
                self.in_force_values(column)
            self.in_force_levels()

    def in_force_levels(self):
        """``in_force_values("job_level")`` as "Int64", converted once per build (a take of it is what a take of the
        "Float64" values converted row by row gives); None when a level is not a whole number (then the rows
        taken are converted, and fail only if they hold such a level)."""
        cache = self.__dict__.setdefault("_in_force_values", {})
        if "job_level:Int64" not in cache:
            try:
                cache["job_level:Int64"] = self.in_force_values("job_level").astype("Int64")
            except (TypeError, ValueError):
                cache["job_level:Int64"] = None
        return cache["job_level:Int64"]

    def in_force(self, column: str, sid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Value of ``column`` (manager_id, department, ...) in force on tenure day ``t`` of spell ``sid``.

        The job history's row in force that day, or the spell's static value (its value at hire)
        for spells without history.
        """
        sid = np.asarray(sid, np.int64)
        static = (self.spells[column].to_numpy(dtype=object)[sid] if column in self.spells
                  else np.full(len(sid), None, dtype=object))
        h = self.history
        if h is None:
            return static
        i = _changes_in_force(h["key"].to_numpy(), sid * _BIG + np.asarray(t, np.int64), sid * _BIG)
        values = np.append(h[column].to_numpy(dtype=object), None)  # no change in force: the None at the end
        return np.where(i < len(h), values[i], static)

    # ---- the timeline: change points per variable --------------------------------
    @cached_property
    def own_timeline(self) -> tuple[dict[str, tuple[np.ndarray, np.ndarray, float]], pd.DataFrame | None]:
        """The timeline's variables read from each employee's own records, which need no goal and no job
        history: review rating, scale scores, programmes and feedback rate (see :attr:`timeline`); and the
        reviews as ``manager_id, known, rating`` events (None without reviews or cycles), for the managers'
        ratings.
        """
        sp = self.spells
        line = _Timeline(sp)
        cf = self.cycle_frame
        # own review rating: known from cycle end + 1, for cycles that end on or after hire
        reviews = self.table("reviews")
        events = None
        if reviews is not None and len(cf):
            r = reviews.dropna(subset=["employee_id", "cycle", "rating"])
            cycle = r["cycle"].astype("string")  # each text column converted once
            listed = cycle.isin(cf["name"]).to_numpy()
            r, cycle = r[listed], cycle[listed]
            known_r = (cycle.map(cf.set_index("name")["end"]) + pd.Timedelta(days=1)).to_numpy("datetime64[ns]")
            reviewed = r["employee_id"].astype("string")
            rating = r["rating"].astype(float).to_numpy()
            s = spell_of(reviewed, known_r, sp)
            mine = s >= 0
            mine[mine] = known_r[mine] > line.hire[s[mine]]  # inside the spell, after the hire day
            s = s[mine]
            line.add("rating", s, line.days(known_r[mine], s), rating[mine])
            # all of a manager's reviews (any spell), not only those inside a spell of theirs
            events = pd.DataFrame({"manager_id": reviewed.array, "known": known_r, "rating": rating})

        # survey scale scores: known from the survey date, within the spell only
        if self.survey_spells is not None:
            sv = self.survey_spells
            sv = sv[sv["_sid"] >= 0]
            s = sv["_sid"].to_numpy()
            t = line.days(sv["survey_date"].to_numpy("datetime64[ns]"), s)
            names = list(self.config.scales)  # ties in response order (a stable sort)
            line.add_each(names, s, t, [sv[name].to_numpy(float) for name in names], finite_only=True)

        # own programmes: 1 from start date (intention to treat), within the spell only
        pp = self.program_spells
        if pp is not None:
            pp = pp[pp["_sid"] >= 0]
        for name in self.program_names:
            if pp is not None:
                q = pp[pp["program"].astype(str) == name]
                s = q["_sid"].to_numpy()
                line.add(f"program_{name}", s, line.days(q["start_date"].to_numpy("datetime64[ns]"), s),
                         np.ones(len(q)), 0.0)
            else:
                line.add(f"program_{name}", [], [], [], 0.0)

        # feedback rate of each completed quarter: known from the day after the quarter ends
        if self.feedback_rate_rows is not None:
            rates, s = self.feedback_rate_rows
            line.add("feedback_rate", s, line.days(rates["known_from"].to_numpy("datetime64[ns]"), s),
                     rates["feedback_rate"].to_numpy(float))
        return line.out, events

    @cached_property
    def timeline(self) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
        """Variable -> (sorted keys sid*BIG + t, values, default). A value applies from tenure day t on.

        The employee's own variables come from :attr:`own_timeline`; the cascade alignment and the
        manager's state (rating, leadership development, changes) are added here.
        """
        sp = self.spells
        line = _Timeline(sp)
        own, events = self.own_timeline
        # cycle alignment: known from max(cycle start, hire) for cycles that end on or after hire
        cf = self.cycle_frame
        align, _ = self.alignment_result
        if len(cf):
            n_sp, n_c = len(sp), len(cf)
            sid = np.repeat(np.arange(n_sp), n_c)
            ci = np.tile(np.arange(n_c), n_sp)
            c_start = cf["start"].to_numpy("datetime64[ns]")[ci]
            c_end = cf["end"].to_numpy("datetime64[ns]")[ci]
            keep = (c_end >= line.hire[sid]) & (c_start <= line.end[sid])
            sid, ci, c_start = sid[keep], ci[keep], c_start[keep]
            known = np.maximum(c_start, line.hire[sid])
            pos = self.alignment_rows(sid, ci)
            cols = ("alignment_cascade", "alignment_org")
            line.add_each(cols, sid, line.days(known, sid),
                          [_take(align[col].to_numpy(float), pos, np.nan) for col in cols])

        if "rating" in own:
            line.out["rating"] = own["rating"]
        if events is not None:
            # manager's most recent known rating (the manager's state: known before hire counts from day 0)
            if self.history is not None:
                line.add("manager_rating", *self._manager_state(events, "known", events["rating"].to_numpy(float),
                                                                np.nan))
            else:
                links = pd.DataFrame({"manager_id": sp["manager_id"].astype("string").to_numpy(),
                                      "_sid": np.arange(len(sp))})
                mm = links.dropna(subset=["manager_id"]).merge(events, on="manager_id", how="inner")
                mm = mm[mm["known"].to_numpy("datetime64[ns]") <= line.end[mm["_sid"].to_numpy()]]
                s = mm["_sid"].to_numpy()
                known = mm["known"].to_numpy("datetime64[ns]")
                line.add("manager_rating", s, np.maximum(line.days(known, s), 0), mm["rating"].to_numpy(float),
                         order=known.astype("int64"))
        line.out.update((name, v) for name, v in own.items() if name not in ("rating", "feedback_rate"))

        # manager's leadership development: 1 from the manager's first start (state: before hire -> day 0)
        if self.history is not None:  # the manager in force: 0 again under a manager who has not started
            ld = self.manager_ld_start
            starts = pd.DataFrame({"manager_id": pd.array(ld.index, dtype="string"),
                                   "known": ld.to_numpy("datetime64[ns]")})
            line.add("manager_program", *self._manager_state(starts, "known", np.ones(len(starts)), 0.0))
            self._add_history_timelines(line.add)
        else:
            mstart = self.spell_manager_ld_start
            s = np.flatnonzero(~np.isnat(mstart))
            line.add("manager_program", s, np.maximum(line.days(mstart[s], s), 0), np.ones(len(s)), 0.0)
        if "feedback_rate" in own:
            line.out["feedback_rate"] = own["feedback_rate"]
        return line.out

    def with_covariates(self, table: pd.DataFrame, sid: np.ndarray, t: np.ndarray) -> pd.DataFrame:
        """``table`` with the study's own covariates: the value in force on day ``t`` (job history), else at hire."""
        covariates = self.config.covariates or {}
        out = attach_covariates(table, self.spells, sid, covariates)
        h = self.history
        if h is None:
            return out
        for name, kind in covariates.items():
            if name not in h:
                continue
            values = pd.Series(self.in_force(name, sid, t), dtype=object)
            if kind == "numeric":
                out[name] = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
            elif kind == "boolean":
                out[name] = values.astype("boolean").astype("Int64").array
            else:
                out[name] = pd.array(values.where(values.notna(), None), dtype="string")
        return out

    @cached_property
    def manager_spans(self) -> pd.DataFrame:
        """``history.manager_spans`` of the history spans, numbered ``span`` (for the managers' states)."""
        return manager_spans(self.history, self.spells).reset_index(names="span")

    def _manager_state(self, events: pd.DataFrame, when: str, values: np.ndarray, reset: float):
        """Change points of a manager's state (rating, programme) under the manager in force.

        ``events`` holds ``manager_id`` and the date ``when`` each value became known. Each span of a
        manager starts at the state that manager had by then (``reset`` when none), and takes each
        later value on the day it became known, within the span. Returns ``(sid, t, values, default,
        order)`` for the timeline.
        """
        sp = self.spells
        hire = sp["hire_date"].to_numpy("datetime64[ns]")
        end = sp["_end"].to_numpy("datetime64[ns]")
        spans = self.manager_spans
        ev = pd.DataFrame({"manager_id": events["manager_id"].astype("string").to_numpy(),
                           "known": events[when].to_numpy("datetime64[ns]"), "value": values})
        ev = ev.dropna(subset=["manager_id", "known"])
        left = spans.dropna(subset=["manager_id"])
        li, ri = _inner_join_rows(np.asarray(left["manager_id"].array, dtype=object),
                                  ev["manager_id"].to_numpy(dtype=object))
        pairs = pd.DataFrame({name: left[name].to_numpy()[li] for name in ("span", "sid", "t", "t_next")}
                             | {name: ev[name].to_numpy()[ri] for name in ("known", "value")}, copy=False)
        s = pairs["sid"].to_numpy(np.int64)
        day = ((pairs["known"].to_numpy("datetime64[ns]") - hire[s]) / DAY).astype(np.int64)
        t0 = pairs["t"].to_numpy(np.int64)
        inside = (day > t0) & (day < pairs["t_next"].to_numpy(np.int64)) & (
            pairs["known"].to_numpy("datetime64[ns]") <= end[s])
        # the state each span opens with: the manager's latest value known by its first day
        before = pairs[day <= t0].assign(_known=lambda f: f["known"].to_numpy("datetime64[ns]").astype(np.int64))
        opening = before.sort_values(["span", "_known"], kind="stable").drop_duplicates("span", keep="last")
        open_value = np.full(len(spans), reset, dtype=float)
        open_value[opening["span"].to_numpy()] = opening["value"].to_numpy(float)
        sid = np.r_[spans["sid"].to_numpy(np.int64), s[inside]]
        t = np.r_[spans["t"].to_numpy(np.int64), day[inside]]
        vals = np.r_[open_value, pairs["value"].to_numpy(float)[inside]]
        order = np.r_[np.zeros(len(spans), np.int64),
                      pairs["known"].to_numpy("datetime64[ns]").astype(np.int64)[inside]]
        return sid, t, vals, reset, order

    def _add_history_timelines(self, add) -> None:
        """History's own timelines: the row in force, manager changes so far, a recent change, its day."""
        h = self.history
        sid = h["sid"].to_numpy(np.int64)
        t = h["t"].to_numpy(np.int64)
        add("history_row", sid, t, np.arange(len(h), dtype=float))
        change = h["manager_change"].to_numpy(bool)
        count = h.assign(c=change.astype(np.int64)).groupby("sid", sort=False)["c"].cumsum().to_numpy(float)
        add("manager_changes", sid, t, count, 0.0)
        add("manager_change_day", sid[change], t[change], t[change].astype(float))
        # 1 from a change for RECENT_CHANGE_DAYS, unless the next change comes first (it restarts the clock)
        cs, ct = sid[change], t[change]
        next_same = np.r_[cs[1:] == cs[:-1], False] if len(cs) else np.zeros(0, bool)
        next_t = np.r_[ct[1:], 0] if len(ct) else np.zeros(0, np.int64)
        ends = ct + RECENT_CHANGE_DAYS
        lapse = ~next_same | (ends < next_t)
        add("recent_manager_change", np.r_[cs, cs[lapse]], np.r_[ct, ends[lapse]],
            np.r_[np.ones(len(cs)), np.zeros(int(lapse.sum()))], 0.0)

    def value_at(self, name: str, sid: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Value of a time-varying variable on tenure day ``t`` of spell ``sid`` (changes with day <= t)."""
        return self.covariate_columns(sid, t, [name], whole=())[name]

    @property
    def covariates(self) -> list[str]:
        """Time-varying covariates in interval order."""
        names = ["alignment_cascade", "alignment_org"] + list(self.config.scales)
        names += ["manager_program", "manager_rating", "rating"] + [f"program_{p}" for p in self.program_names]
        names += ["feedback_rate"]
        if self.history is not None:
            names += ["manager_changes", "recent_manager_change"]
        return names

    def covariate_frame(self, sid: np.ndarray, t: np.ndarray, names: list[str]) -> pd.DataFrame:
        return pd.DataFrame(self.covariate_columns(sid, t, names))

    def covariate_columns(self, sid: np.ndarray, t: np.ndarray, names: list[str],
                          whole=None) -> dict[str, np.ndarray]:
        """The covariates ``names`` on day ``t`` of spells ``sid``, as arrays (whole numbers as int64).

        ``whole``: the names returned as int64; by default the programmes and :data:`_INDICATORS`.
        The variables known on the same days share the search for the changes in force
        (:func:`_changes_in_force`).
        """
        base = np.asarray(sid, np.int64) * _BIG  # the query keys, made once for every covariate
        q = base + np.asarray(t, np.int64)
        q_sorted = _is_sorted(q)
        cols = dict.fromkeys(names)
        shared = {}  # the variables known on the same days (one keys array) together, in order of appearance
        for name in names:
            is_whole = (name.startswith("program_") or name in _INDICATORS) if whole is None else name in whole
            dtype = np.int64 if is_whole else float
            if name in self.timeline:
                shared.setdefault(id(self.timeline[name][0]), []).append((name, dtype))
            else:
                cols[name] = np.zeros(len(q), np.int64) if is_whole else np.full(len(q), np.nan)
        for group in shared.values():  # the changes in force found once per set of change days, then freed
            found = _changes_in_force(self.timeline[group[0][0]][0], q, base, q_sorted)
            for name, dtype in group:
                _, values, default = self.timeline[name]
                if dtype is not float:
                    values, default = values.astype(dtype), np.array(default).astype(dtype)
                cols[name] = np.append(values, default)[found]  # no change in force: the default at the end
            del found
        return cols


# --------------------------------------------------------------------------- builders

_BASELINE = ["department", "job_level", "gender"]

#: Time-varying covariates that are whole numbers (0/1 exposures and counts).
_INDICATORS = ("manager_program", "manager_changes", "recent_manager_change")


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array (a sort, cheaper than numpy's hash-based ``unique``)."""
    values = np.sort(values)  # equal values are alike: no need for a stable sort
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _inner_join_rows(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs of an inner join of two key columns without missing values, in ``DataFrame.merge``'s order.

    What ``merge(how="inner")`` pairs: every left row with every right row of an equal key, in left row order and,
    within a left row, in right row order; from integer codes (each column hashed once, among itself first).
    """
    left_code, keys = pd.factorize(left)
    right_code = index_of(right, np.asarray(keys, dtype=object))  # -1: no left row has the key
    rows = np.flatnonzero(right_code >= 0)
    rows = rows[stable_argsort(right_code[rows])]  # right rows by key, in right order within a key
    per_key = np.bincount(right_code[rows], minlength=len(keys))
    first = np.cumsum(per_key) - per_key  # each key's first place among ``rows``
    n = per_key[left_code]  # right rows of each left row
    li = np.repeat(np.arange(len(left)), n)
    within = np.arange(len(li)) - np.repeat(np.cumsum(n) - n, n)
    return li, rows[np.repeat(first[left_code], n) + within]


def _is_sorted(values: np.ndarray) -> bool:
    """True when ``values`` never decrease."""
    return bool(len(values) < 2 or (values[1:] >= values[:-1]).all())


def _changes_in_force(keys: np.ndarray, q: np.ndarray, base: np.ndarray, q_sorted: bool | None = None) -> np.ndarray:
    """Per query ``q = sid * _BIG + t``, the position in the sorted change keys ``keys`` of the last change at or
    before ``q`` within its spell (``base = sid * _BIG``, the spell's first key); ``len(keys)`` where none is.

    Queries in key order (``q_sorted``; tested when None), as the intervals are, count the changes at or before
    each query from where each change falls among the queries: a search per change, not per query.
    """
    if not len(keys):
        return np.zeros(len(q), dtype=np.int64)
    if _is_sorted(q) if q_sorted is None else q_sorted:
        i = np.cumsum(np.bincount(np.searchsorted(q, keys, side="left"), minlength=len(q) + 1)[:len(q)])
        i -= 1
    else:
        i = np.searchsorted(keys, q, side="right") - 1
    none = i < 0  # before the first change
    np.maximum(i, 0, out=i)
    none |= keys[i] < base  # a change of an earlier spell: this one has none yet
    i[none] = len(keys)
    return i


def _take(values: np.ndarray, pos: np.ndarray, fill) -> np.ndarray:
    """``values[pos]``, with ``fill`` where ``pos`` is -1 (not found by ``get_indexer``)."""
    if not len(values):
        return np.full(len(pos), fill)
    return np.where(pos >= 0, values[np.maximum(pos, 0)], fill)


def _text_at(col: pd.Series, sid: np.ndarray):
    """``col`` as "string" at positions ``sid``: a take from the converted column (no re-validation of every row)."""
    return col.astype("string").array.take(np.asarray(sid, dtype=np.int64))


def _id_columns(sp: pd.DataFrame, sid: np.ndarray, given: dict | None = None) -> dict:
    """``employee_id, spell, manager_id`` of the spells at positions ``sid``; those in ``given`` taken from it."""
    given = given or {}
    return {
        "employee_id": _text_at(sp["employee_id"], sid),
        "spell": sp["spell"].to_numpy()[sid].astype("int64"),
        "manager_id": given["manager_id"] if "manager_id" in given else _text_at(sp["manager_id"], sid),
    }


def _baseline(sp: pd.DataFrame, sid: np.ndarray, columns=_BASELINE, given: dict | None = None) -> dict:
    """The spells' ``columns`` (their values at hire) at positions ``sid``; those in ``given`` taken from it."""
    given = given or {}
    out = {}
    for c in columns:
        col = sp[c]
        if c in given:
            out[c] = given[c]
        elif c == "job_level" and isinstance(col.dtype, pd.Int64Dtype):
            out[c] = col.array.take(np.asarray(sid, dtype=np.int64))
        elif c == "job_level":
            out[c] = pd.array(col.to_numpy()[sid], dtype="Int64")
        else:
            out[c] = _text_at(col, sid)
    return out


def _in_force_columns(ctx: _Context, sid: np.ndarray, t: np.ndarray, names) -> dict:
    """The columns ``names`` among manager, department, level and location, in force on day ``t`` of spells ``sid``.

    The job history's row in force, else the spell's static value; empty without a job history. The builders put
    these arrays in their tables as they make them: a column replaced after the frame is made would be copied
    (``DataFrame.__setitem__`` copies what it is given), and the static values it replaced made for nothing.
    """
    names = [col for col in HISTORY_COLUMNS if col in names]
    if ctx.history is None or not names:
        return {}
    # the history row in force for each (sid, t), found once for every column; each column is converted
    # once per source (spells, history) and the rows taken from the converted values: the same values as
    # converting the values in force row by row
    sid = np.asarray(sid, np.int64)
    keys = ctx.history["key"].to_numpy()
    q = sid * _BIG + np.asarray(t, np.int64)
    i = _changes_in_force(keys, q, sid * _BIG)
    take = np.where(i < len(keys), len(ctx.spells) + i, sid)  # positions in (spells' values, then history's values)
    del i
    out = {}
    for col in names:
        if col == "job_level":
            levels = ctx.in_force_levels()
            out[col] = (levels.take(take) if levels is not None
                        else ctx.in_force_values(col).take(take).astype("Int64"))
        else:
            out[col] = ctx.in_force_values(col).take(take)
    return out


def _in_force(ctx: _Context, out: pd.DataFrame, sid: np.ndarray, t: np.ndarray) -> pd.DataFrame:
    """Replace the spell's static manager, department, level and location in ``out`` by those in force on day ``t``."""
    for col, values in _in_force_columns(ctx, sid, t, out.columns).items():
        out[col] = values
    return out


@_builder_doc
def person_table(clean, config=None) -> pd.DataFrame:
    """Build the person table: one row per employment spell observed in the window.

    Parameters
    ----------
    {clean_config}

    Returns
    -------
    DataFrame
        One row per spell with time at risk inside the window, sorted by
        ``employee_id, spell``: ``employee_id, spell, entry, exit, event,
        event_type`` (tenure days since hire; ``entry`` > 0 for people hired
        before the window; ``event`` 1 for an exit of a type in
        ``config.event_types``; ``event_type`` voluntary / involuntary / other
        / censored), ``hire_date, termination_date, department, job_level,
        gender, location, age_at_hire, manager_id, manager_ever_program`` (the
        manager started leadership development at any time in the data: only
        for demonstrating immortal-time bias), ``manager_program_entry``,
        ``ever_program_<name>`` (started during the spell, inside the window:
        immortal-time-biased by design), ``alignment_cascade_first``,
        ``alignment_org_first`` (first cycle with goals in the spell) and
        ``alignment_cascade_entry`` (known at entry).

    Notes
    -----
    A spell of zero length in the window (e.g. terminated on the window's
    first day after a hire before the window) has no time at risk and is left
    out. Timing conventions: see the design document, "Time, done right".

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.person_table(clean).columns[:6].tolist()
    ['employee_id', 'spell', 'entry', 'exit', 'event', 'event_type']
    """
    return _person(_Context(clean, config))


def _person(ctx: _Context) -> pd.DataFrame:
    sp = ctx.spells
    sid = np.flatnonzero(sp["in_window"].to_numpy())
    out = pd.DataFrame({
        "employee_id": _text_at(sp["employee_id"], sid),
        "spell": sp["spell"].to_numpy()[sid].astype("int64"),
        "entry": sp["entry"].to_numpy()[sid],
        "exit": sp["exit"].to_numpy()[sid],
        "event": sp["event"].to_numpy()[sid],
        "event_type": sp["event_type"].array[sid],
        "hire_date": sp["hire_date"].to_numpy("datetime64[ns]")[sid],
        "termination_date": sp["_term"].to_numpy()[sid],
    })
    for k, v in _baseline(sp, sid, _BASELINE + ["location"]).items():
        out[k] = v
    birth = pd.to_numeric(sp["birth_year"], errors="coerce").to_numpy(float)[sid]
    age = out["hire_date"].dt.year.to_numpy(float) - birth
    out["age_at_hire"] = pd.array(np.where(np.isfinite(age), age, np.nan), dtype="Float64").astype("Int64")
    out["manager_id"] = _text_at(sp["manager_id"], sid)
    out = _in_force(ctx, out, sid, out["entry"].to_numpy())
    out["manager_ever_program"] = out["manager_id"].isin(ctx.manager_ld_start.index).astype("int64").to_numpy()
    out["manager_program_entry"] = ctx.value_at("manager_program", sid, out["entry"].to_numpy()).astype("int64")
    # ever_program_<name>: started in [hire, end of spell in window]
    pp = ctx.program_spells
    for name in ctx.program_names:
        flag = np.zeros(len(sp), bool)
        if pp is not None:
            q = pp[(pp["program"].astype(str) == name) & (pp["_sid"] >= 0)]
            s = q["_sid"].to_numpy()
            s = s[q["start_date"].to_numpy("datetime64[ns]") <= sp["_end"].to_numpy("datetime64[ns]")[s]]
            flag[s] = True
        out[f"ever_program_{name}"] = flag[sid].astype("int64")
    for col in ("alignment_cascade", "alignment_org"):
        first = np.full(len(sp), np.nan)
        if col in ctx.timeline:
            keys, vals, _ = ctx.timeline[col]
            ok = np.isfinite(vals)
            ks, vs = keys[ok], vals[ok]
            s_of = ks // _BIG
            t_of = ks % _BIG
            inside = t_of <= sp["exit"].to_numpy()[s_of]
            s_of, vs = s_of[inside], vs[inside]
            new = np.r_[True, s_of[1:] != s_of[:-1]] if len(s_of) else np.zeros(0, bool)  # keys are sorted
            first[s_of[new]] = vs[new]
        out[f"{col}_first"] = first[sid]
    out["alignment_cascade_entry"] = (ctx.value_at("alignment_cascade", sid, out["entry"].to_numpy())
                                      if "alignment_cascade" in ctx.timeline else np.nan)
    out = ctx.with_covariates(out, sid, out["entry"].to_numpy())
    if ctx.employee_rank is not None:  # rows follow spell positions: already sorted
        return out  # its index is 0..n-1 already (a reset_index would copy every column)
    return out.sort_values(["employee_id", "spell"], kind="stable").reset_index(drop=True)


@_builder_doc
def interval_table(clean, config=None) -> pd.DataFrame:
    """Build start/stop intervals on the tenure scale with time-varying covariates.

    Each spell with time at risk in the window is split at every date on which
    a covariate may change: cycle starts (cascade alignment), cycle ends + 1 day
    (ratings known), survey dates, programme starts, the manager's
    leadership-development start, and quarter ends + 1 day (feedback rate).
    A covariate known on tenure day ``d`` applies to the interval starting at ``d``.

    Parameters
    ----------
    {clean_config}

    Returns
    -------
    DataFrame
        Rows ``(start, stop]`` tiling ``(entry, exit]`` of every spell, sorted
        by ``employee_id, spell, start``: ``employee_id, spell, manager_id,
        start, stop, event, event_type`` (the status at ``stop``: the spell's
        exit type on its last row, else ``censored``; ``event`` only on the last
        row), ``alignment_cascade, alignment_org`` (current cycle), one column
        per survey scale (latest score), ``manager_program, manager_rating,
        rating, program_<name>``, ``feedback_rate`` (latest completed quarter),
        and ``department, job_level, gender``.

    Notes
    -----
    One manager per spell: the data contract carries no manager history, so
    the spell's ``manager_id`` is taken as the manager throughout. A spell
    without a manager has ``manager_program`` 0. Own data dated before hire or
    after the spell's end (surveys, programmes, feedback) is ignored; the
    manager's rating and programme start are the manager's state, so values
    known before the hire apply from day 0.
    Suitable for ``survival::coxph(Surv(start, stop, event) ~ ... + cluster(manager_id))``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.interval_table(clean).columns[:7].tolist()
    ['employee_id', 'spell', 'manager_id', 'start', 'stop', 'event', 'event_type']
    """
    return _intervals(_Context(clean, config))


def _intervals(ctx: _Context) -> pd.DataFrame:
    return _interval_rows(ctx)[0]


def _interval_rows(ctx: _Context, *, frozen: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """The intervals table and the spell position of each of its rows.

    ``frozen``: the table's NumPy columns are made read-only before the frame is made from them, so that the
    careers table can share them (:func:`_careers`) and an edit in place fails instead of changing both tables.
    """
    sp = ctx.spells
    inw = sp["in_window"].to_numpy()
    entry = sp["entry"].to_numpy()
    exit_ = sp["exit"].to_numpy()
    parts = [np.flatnonzero(inw) * _BIG + entry[inw], np.flatnonzero(inw) * _BIG + exit_[inw]]
    for keys, _, _ in ctx.timeline.values():
        s = keys // _BIG
        t = keys % _BIG
        ok = inw[s] & (t > entry[s]) & (t < exit_[s])
        parts.append(keys[ok])
    cuts = _sorted_unique(np.concatenate(parts))
    del parts
    cs = cuts // _BIG
    same = cs[1:] == cs[:-1]
    sid = cs[:-1][same]
    del cs
    start = (cuts[:-1] % _BIG)[same]
    stop = (cuts[1:] % _BIG)[same]
    del cuts, same  # the working arrays go before the columns are made
    last = stop == exit_[sid]
    types = pd.concat([sp["event_type"].astype("string"), pd.Series(["censored"], dtype="string")]).array
    ev_type = types.take(np.where(last, sid, len(sp)))
    history = ctx.history is not None
    # the values in force (with a job history) made first, so that every column is made once, in its place
    forced = _in_force_columns(ctx, sid, start, ["manager_id", "department", "job_level", "location"])
    # the covariates, and the day of the last manager change (with a job history), found in one call
    covariates = ctx.covariate_columns(sid, start, ctx.covariates + ["manager_change_day"] * history)
    change_day = covariates.pop("manager_change_day", None)
    # every column built as an array first and the frame made once (no concat, no re-consolidation, no copies)
    cols = {
        **_id_columns(sp, sid, forced),
        "start": start.astype("int64", copy=False),  # arrays of their own already: no copy
        "stop": stop.astype("int64", copy=False),
        "event": (last & (sp["event"].to_numpy()[sid] == 1)).astype("int64"),
        "event_type": ev_type,
        **covariates,
        **_baseline(sp, sid, given=forced),
    }
    if history:
        cols["location"] = forced["location"] if "location" in forced else _text_at(sp["location"], sid)
        cols["months_since_manager_change"] = (start - change_day) / DAYS_PER_MONTH
    del forced, covariates, change_day
    if frozen:  # before the frame's blocks (views of these arrays) exist: a view of a read-only array is read-only
        for values in cols.values():
            if isinstance(values, np.ndarray):
                values.flags.writeable = False
            elif _is_python_text(values.dtype):  # the text array's own values, as numpy.asarray hands them out
                np.asarray(values).flags.writeable = False
    out = pd.DataFrame(cols, copy=False)  # the arrays are this table's own: kept as they are, not copied and stacked
    del cols
    out = ctx.with_covariates(out, sid, start)
    # cuts are sorted by spell position; spells are sorted by employee_id, spell (the index is 0..n-1 already)
    return out, sid


#: Columns that lead the careers table; the time-varying covariates of ``intervals`` follow.
CAREER_COLUMNS = ["employee_id", "spell", "episode", "manager_id", "start", "stop", "event", "event_type"]


@_builder_doc
def career_table(clean, config=None) -> pd.DataFrame:
    """Build the careers table: start/stop rows for the time to the next promotion within a spell.

    The rows are those of :func:`interval_table` (split at every job-history
    change, so a promotion always ends a row), with the event redefined: a row
    ends in ``promotion`` when a promotion takes effect on its ``stop`` day,
    and the last row of a spell ends in the spell's exit type, so exits are
    competing events. A promotion is a job-history row with reason
    ``promotion``, or one with no reason whose job level rose.

    Parameters
    ----------
    {clean_config}

    Returns
    -------
    DataFrame
        ``employee_id, spell, episode`` (1 until the spell's first promotion,
        then 2, ...; promotions before the window count), ``manager_id, start,
        stop`` (tenure days), ``event`` (1 for a promotion at ``stop``),
        ``event_type`` (promotion / voluntary / involuntary / other /
        censored), then the time-varying covariates of ``intervals``, among them
        ``program_mentoring``, ``program_coaching``, ``manager_program``,
        ``rating``, ``job_level``, ``manager_changes``. Empty, with these
        columns, when the study has no ``job_history``.

    Notes
    -----
    Its numeric and text columns shared with the intervals it was made from
    are read-only (see :class:`AnalysisTables`); ``careers.copy()`` is writable.
    Analyse it as recurrent events on the tenure scale (left-truncated at
    ``start``, clustered by ``employee_id``), e.g. the cause-specific hazard of
    promotion with ``fit_cox(careers, ..., start="start", stop="stop",
    event="event", cluster="employee_id")``, or the cumulative incidence of a
    first promotion with ``fit_cif`` on ``episode == 1``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.career_table(clean).columns[:8].tolist()
    ['employee_id', 'spell', 'episode', 'manager_id', 'start', 'stop', 'event', 'event_type']
    """
    ctx = _Context(clean, config)
    return _careers(ctx, *_interval_rows(ctx, frozen=True))


def first_promotions(careers: pd.DataFrame, *, covariates=()) -> pd.DataFrame:
    """One row per spell: the time to its first promotion in the window, exits competing.

    Parameters
    ----------
    careers : DataFrame
        The careers table (:func:`career_table`).
    covariates : sequence of str
        Columns of ``careers`` to keep at their value on the spell's first row
        (baseline values, e.g. ``job_level``, ``department``, ``gender``).

    Returns
    -------
    DataFrame
        ``employee_id, spell, entry, exit`` (tenure days), ``event_type``
        (promotion, voluntary, involuntary, other or censored) and the
        ``covariates``; spells promoted before the window (already past their
        first promotion at entry) are left out.

    Examples
    --------
    >>> import pandas as pd
    >>> careers = pd.DataFrame({"employee_id": ["E1", "E1", "E1"], "spell": 1, "episode": [1, 1, 2],
    ...                         "start": [0, 100, 200], "stop": [100, 200, 300],
    ...                         "event_type": ["censored", "promotion", "voluntary"]})
    >>> first_promotions(careers)[["entry", "exit", "event_type"]].values.tolist()
    [[0, 200, 'promotion']]
    """
    first = careers[careers["episode"] == 1]
    key = [first["employee_id"].astype("string"), first["spell"]]
    grouped = first.groupby(key, sort=False)
    out = pd.DataFrame({
        "employee_id": grouped["employee_id"].first().astype("string").to_numpy(),
        "spell": grouped["spell"].first().to_numpy(),
        "entry": grouped["start"].min().to_numpy(),
        "exit": grouped["stop"].max().to_numpy(),
        "event_type": grouped["event_type"].last().astype("string").to_numpy(),
    })
    for name in covariates:
        out[name] = grouped[name].first().to_numpy()
    return out.reset_index(drop=True)


def _careers(ctx: _Context, intervals: pd.DataFrame, sid: np.ndarray) -> pd.DataFrame:
    rest = [c for c in intervals.columns if c not in CAREER_COLUMNS]
    if ctx.history is None:
        empty = intervals.iloc[:0]
        return pd.concat([empty[["employee_id", "spell"]].assign(episode=pd.Series(dtype="int64")),
                          empty[[c for c in CAREER_COLUMNS[3:]] + rest]], axis=1)
    h = ctx.history
    promoted = h["promotion"].to_numpy(bool)
    p_key = h["key"].to_numpy()[promoted]  # sorted: spans are sorted by spell and day
    start = intervals["start"].to_numpy(np.int64)
    stop = intervals["stop"].to_numpy(np.int64)
    base = sid.astype(np.int64) * _BIG
    last = stop == ctx.spells["exit"].to_numpy()[sid]
    # np.isin(base + stop, p_key) by a sorted search among the (sorted) promotion keys: no sort of the rows' keys
    stop_key = base + stop
    at = np.minimum(np.searchsorted(p_key, stop_key), max(len(p_key) - 1, 0))
    promotion = (p_key[at] == stop_key if len(p_key) else np.zeros(len(stop_key), bool)) & ~last
    del stop_key, at
    # the episode: one more than the promotions that took effect on or before the row's start
    episode = 1 + np.searchsorted(p_key, base + start, side="right") - np.searchsorted(p_key, base, side="left")
    event_type = intervals["event_type"].astype("string").array.copy()  # set in place: no re-validation
    event_type[promotion] = "promotion"
    # the intervals' columns in career order, and the three career columns of their own. The intervals' NumPy and
    # text columns are shared when they are read-only (``_interval_rows(frozen=True)``: an edit in place of either
    # table then fails rather than changing the other unseen); the others (Int64) are copied, one array each
    # (not DataFrame.take along the columns: a 2-D take per block, five times slower here). Sharing spares a
    # copy of some 330 MB at 100,000 employees, and its first-touch page faults, the step's largest cost.
    own = {"episode": episode.astype("int64"), "event": promotion.astype("int64"), "event_type": event_type}
    return pd.DataFrame({name: own[name] if name in own else _shared_or_copied(intervals[name])
                         for name in CAREER_COLUMNS + rest}, copy=False)


def _is_python_text(dtype) -> bool:
    """A "string" dtype whose values are a NumPy array of Python str (``numpy.asarray`` gives that array)."""
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "python"


def _shared_or_copied(column: pd.Series):
    """``column``'s values, shared when they are read-only (NumPy, or text held in a NumPy array), else copied."""
    if not isinstance(column.dtype, pd.api.extensions.ExtensionDtype):
        values = column.to_numpy()
        if not values.flags.writeable:
            return values
    elif _is_python_text(column.dtype) and not np.asarray(column.array).flags.writeable:
        return column.array  # an edit in place of either table would write to a read-only array: it fails
    return column.array.copy()


def _waves(dates: pd.Series, gap_days: int = 30) -> np.ndarray:
    """Number survey waves 1, 2, ...: a new wave starts after a gap of more than ``gap_days`` without responses."""
    d = dates.to_numpy("datetime64[ns]")
    uniq = np.unique(d[~np.isnat(d)])
    if not len(uniq):
        return np.zeros(len(d), "int64")
    gaps = np.diff(uniq) / DAY > gap_days
    wave_of = np.concatenate([[1], 1 + np.cumsum(gaps)])
    return np.where(np.isnat(d), 0, wave_of[np.searchsorted(uniq, d)]).astype("int64")


@_builder_doc
def survey_panel_table(clean, config=None) -> pd.DataFrame:
    """Build the survey panel: one row per survey response with the covariates known on its date.

    Parameters
    ----------
    {clean_config}

    Returns
    -------
    DataFrame
        One row per response given during an employment spell (responses
        before hire or after the spell's termination are left out), sorted by
        ``employee_id, survey_date``: ``employee_id, spell, manager_id,
        department, job_level, gender, survey_date, wave`` (1, 2, ...; a new
        wave after 30 days without responses), ``tenure_days``, one column per
        scale score, then the covariates known on the survey date (inclusive):
        ``alignment_cascade, alignment_org, manager_program, manager_rating,
        rating, program_<name>, feedback_rate``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> "engagement" in ar.survey_panel_table(clean).columns
    True
    """
    return _survey_panel(_Context(clean, config))


def _survey_panel(ctx: _Context) -> pd.DataFrame:
    sp = ctx.spells
    scales = list(ctx.config.scales)
    sv = ctx.survey_spells
    if sv is None:  # no surveys table: the panel is empty but keeps its columns
        scores = pd.DataFrame({"employee_id": pd.Series(dtype="string"),
                               "survey_date": pd.Series(dtype="datetime64[ns]"),
                               **{s: pd.Series(dtype="float64") for s in scales}})
        sv = assign_spell(scores, sp, "survey_date")
    keep = ((sv["_sid"] >= 0) & (sv["survey_date"] <= ctx.w_end)).to_numpy()
    sid = sv["_sid"].to_numpy()[keep]
    dates = sv["survey_date"].to_numpy("datetime64[ns]")[keep]
    rows = np.flatnonzero(keep)
    if ctx.employee_rank is not None:  # sorted by employee_id, survey_date (stable) from integer keys, up front
        order = np.lexsort((dates.view("int64"), ctx.employee_rank[sid]))
        sid, dates, rows = sid[order], dates[order], rows[order]
    t = ((dates - sp["hire_date"].to_numpy("datetime64[ns]")[sid]) / DAY).astype("int64")
    names = [c for c in ctx.covariates if c not in scales]
    forced = _in_force_columns(ctx, sid, t, ["manager_id", "department", "job_level"])
    out = pd.DataFrame({
        **_id_columns(sp, sid, forced), **_baseline(sp, sid, given=forced), "survey_date": dates,
        "wave": _waves(pd.Series(dates)), "tenure_days": t, **{s: sv[s].to_numpy(float)[rows] for s in scales},
        **ctx.covariate_columns(sid, t, names),
    }, copy=False)  # the arrays are this table's own: kept as they are, not copied and stacked
    out = ctx.with_covariates(out, sid, t)
    if ctx.employee_rank is not None:  # already in order, the index 0..n-1
        return out
    return out.sort_values(["employee_id", "survey_date"], kind="stable").reset_index(drop=True)


@_builder_doc
def cycle_table(clean, config=None) -> pd.DataFrame:
    """Build the cycles table: one row per employee, spell and review cycle employed.

    Parameters
    ----------
    {clean_config}

    Returns
    -------
    DataFrame
        One row per spell at risk in the window (as in ``person``) and
        configured cycle that overlap (cycles starting after the window's end
        are left out), sorted by ``employee_id, spell,
        cycle order``: ``employee_id, spell, manager_id, department,
        job_level, cycle, n_goals, alignment_cascade, alignment_org, rating,
        attainment`` (review target attainment), ``manager_program`` (1 when
        the manager had started leadership development by the cycle's start),
        ``left_next_cycle``: 1 when the spell ended with an event-type exit
        during the following cycle, 0 when the employee was still employed
        at its start and did not, NA when not observable (no following cycle,
        it starts before the window or ends after it without an exit, or
        the employee left before it started).

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> ar.cycle_table(clean)["left_next_cycle"].dtype
    Int64Dtype()
    """
    return _cycles(_Context(clean, config))


def _cycles(ctx: _Context) -> pd.DataFrame:
    sp = ctx.spells
    cf = ctx.cycle_frame
    hire = sp["hire_date"].to_numpy("datetime64[ns]")
    term = sp["_term"].to_numpy("datetime64[ns]")
    n_sp, n_c = len(sp), len(cf)
    sid = np.repeat(np.arange(n_sp), n_c)
    ci = np.tile(np.arange(n_c), n_sp)
    c_start = cf["start"].to_numpy("datetime64[ns]")
    c_end = cf["end"].to_numpy("datetime64[ns]")
    w_start, w_end = np.datetime64(ctx.w_start, "ns"), np.datetime64(ctx.w_end, "ns")
    keep = ((c_end[ci] >= hire[sid]) & (np.isnat(term[sid]) | (c_start[ci] <= term[sid])) & (c_start[ci] <= w_end)
            & sp["in_window"].to_numpy()[sid])
    sid, ci = sid[keep], ci[keep]
    names = cf["name"].to_numpy(dtype=object)
    # every column made once, in its place, and the frame made from them (a column set on a made frame is copied)
    t_cycle = np.maximum(0, ((c_start[ci] - hire[sid]) / DAY).astype("int64"))  # at the cycle's start (or hire)
    forced = _in_force_columns(ctx, sid, t_cycle, ["manager_id", "department", "job_level"])
    cols = {**_id_columns(sp, sid, forced), **_baseline(sp, sid, ["department", "job_level"], given=forced)}
    del forced
    cols["cycle"] = pd.array(names[ci], dtype="string")
    align, _ = ctx.alignment_result
    pos = ctx.alignment_rows(sid, ci)
    cols["n_goals"] = _take(align["n_goals"].to_numpy(), pos, 0).astype("int64")
    for col in ("alignment_cascade", "alignment_org"):
        cols[col] = _take(align[col].to_numpy(float), pos, np.nan)
    reviews = ctx.table("reviews")
    if reviews is not None:
        rp = ctx.review_rows(sid, ci)  # the last review of the employee in the cycle
        r = reviews
        rating = r["rating"].astype(float).to_numpy() if "rating" in r else np.full(len(r), np.nan)
        att = r["target_attainment"].astype(float).to_numpy() if "target_attainment" in r else np.full(len(r), np.nan)
        cols["rating"] = _take(rating, rp, np.nan).astype(float, copy=False)
        cols["attainment"] = _take(att, rp, np.nan).astype(float, copy=False)
    else:
        cols["rating"] = np.full(len(sid), np.nan)
        cols["attainment"] = np.full(len(sid), np.nan)
    if ctx.history is not None:  # the manager in force when the cycle starts (or at hire)
        cols["manager_program"] = ctx.value_at("manager_program", sid, t_cycle).astype("int64")
    else:
        mstart = ctx.spell_manager_ld_start[sid]
        cols["manager_program"] = (~np.isnat(mstart) & (mstart <= c_start[ci])).astype("int64")
    # left_next_cycle
    nxt = ci + 1
    has_next = nxt < n_c
    ns = np.where(has_next, c_start[np.minimum(nxt, n_c - 1)], np.datetime64("NaT"))
    ne = np.where(has_next, c_end[np.minimum(nxt, n_c - 1)], np.datetime64("NaT"))
    t = term[sid]
    is_event = sp["event"].to_numpy()[sid] == 1
    ended_in_next = ~np.isnat(t) & (t >= ns) & (t <= np.minimum(ne, w_end))
    left_before = ~np.isnat(t) & (t < ns)
    observed_full = ne <= w_end
    value = np.where(ended_in_next, is_event.astype(float), np.where(observed_full, 0.0, np.nan))
    unobservable = ~has_next | (ns < w_start) | left_before
    value = np.where(unobservable, np.nan, value)
    missing = np.isnan(value)  # 0/1 or NaN: an Int64 column from the whole numbers and the mask
    cols["left_next_cycle"] = pd.arrays.IntegerArray(np.where(missing, 0, value).astype(np.int64), missing)
    goals = ctx.table("goals")
    if goals is not None:
        cols.update(_goal_summaries(goals, pd.Series(cols["employee_id"], copy=False),
                                    pd.Series(cols["cycle"], copy=False), ctx.goal_codes))
    out = pd.DataFrame(cols, copy=False)  # the arrays are this table's own: kept as they are, not copied and stacked
    del cols
    out = ctx.with_covariates(out, sid, t_cycle)
    if ctx.employee_rank is not None:  # rows follow spell positions, then cycle order: already sorted
        return out  # its index is 0..n-1 already (a reset_index would copy every column)
    order = np.lexsort((ci, out["spell"].to_numpy(), out["employee_id"].to_numpy(dtype=object).astype(str)))
    return out.iloc[order].reset_index(drop=True)


def _goal_summaries(goals: pd.DataFrame, employee_id: pd.Series, cycle: pd.Series, codes=None) -> dict:
    """The cycles table's summaries of the optional goal columns (GOAL_SUMMARY_COLUMNS), for the goals present.

    Per owner and cycle: mean difficulty and stretch over the goals that have one; the share of goals with a
    known ``set_with`` set jointly, by the employee, by the manager; the number of goals with a (clean, so
    mid-cycle) ``revised_date`` and its share of all the owner's goals in the cycle.
    """
    wanted = {name: col for name, col in GOAL_SUMMARY_COLUMNS.items() if col in goals}
    if not wanted:
        return {}
    # owners and cycles as integer codes of their text (code_goals, made once per build), one int64 key per
    # (owner, cycle)
    codes = code_goals(goals) if codes is None else codes
    owner_code, owner_text, cycle_code, cycle_text = codes.owner, codes.owner_text, codes.cycle, codes.cycle_text
    usable = (owner_code >= 0) & (cycle_code >= 0)
    n_cycles = np.int64(len(cycle_text))
    group = owner_code[usable] * n_cycles + cycle_code[usable]
    del owner_code, cycle_code
    # each goal's (owner, cycle) key among the keys, sorted: from a table of the keys when they are few enough
    # (the codes pandas.factorize(group, sort=True) gives, without hashing)
    n_keys = len(owner_text) * int(n_cycles)
    if n_keys <= 4 * len(group) + 1024:
        used = np.zeros(n_keys, dtype=bool)
        used[group] = True
        at, keys = (np.cumsum(used) - 1)[group], np.flatnonzero(used)
        del used
    else:
        at, keys = pd.factorize(group, sort=True)
    del group
    m = len(keys)
    counts = np.bincount(at, minlength=m).astype(float)
    summary = {}
    # means over the goals that have a value: pandas' grouped mean (compensated sums, goals in file order), grouped
    # by the codes as they are (a categorical of them: no hashing of the codes again)
    by_key = pd.Categorical.from_codes(at, categories=pd.RangeIndex(m))
    for name, col in (("goal_difficulty", "difficulty"), ("goal_stretch", "stretch")):
        if col in goals:
            values = pd.Series(goals[col].astype("float64").to_numpy()[usable], copy=False)
            summary[name] = values.groupby(by_key, observed=False, sort=True).mean().to_numpy(dtype=float)
    # sums of 0/1 flags, exact as counts
    if "set_with" in goals:
        # the values hashed once (-1: missing), then each word's goals picked by their code
        who, words = pd.factorize(goals["set_with"].to_numpy(dtype=object)[usable])
        words = np.asarray(words, dtype=object)
        known = np.bincount(at, weights=(who >= 0).astype(float), minlength=m)
        known = np.where(known > 0, known, np.nan)
        for name, word in (("share_set_jointly", "jointly"), ("share_set_by_employee", "employee"),
                           ("share_set_by_manager", "manager")):
            is_word = np.append(words == word, False)  # a missing value (code -1) takes the False at the end
            summary[name] = np.bincount(at, weights=is_word[who].astype(float), minlength=m) / known
    if "revised_date" in goals:
        revised = np.bincount(at, weights=goals["revised_date"].notna().to_numpy()[usable].astype(float), minlength=m)
        summary["goals_revised"] = revised
        summary["share_revised"] = revised / counts
    # each (employee, cycle) row's key from the same texts, found among the sorted group keys
    e_code = index_of(employee_id.astype(str).to_numpy(dtype=object), owner_text)
    c_code = index_of(cycle.astype(str).to_numpy(dtype=object), cycle_text)
    row_key = np.where((e_code >= 0) & (c_code >= 0), e_code.astype(np.int64) * n_cycles + c_code, -1)
    found = np.minimum(np.searchsorted(keys, row_key), max(m - 1, 0))
    pos = np.where((row_key >= 0) & (keys[found] == row_key), found, -1) if m else np.full(len(row_key), -1)
    out = {}
    for name in wanted:
        if name == "goals_revised":  # an employee without goals in the cycle revised none
            out[name] = pd.array(_take(summary[name], pos, 0.0).astype("int64"), dtype="Int64")
        else:
            out[name] = _take(summary[name], pos, np.nan)
    return out


# --------------------------------------------------------------------------- the researcher's own covariates


def attach_covariates(table: pd.DataFrame, spells: pd.DataFrame, sid, covariates) -> pd.DataFrame:
    """Add the study.yaml ``covariates`` to an analysis table, one value per spell (its value at hire).

    Parameters
    ----------
    table : DataFrame
        An analysis table with one row per element of ``sid``, in that order.
    spells : DataFrame
        The numbered spells (clean employees, one row per spell, by position).
    sid : array of int
        The spell position of each row of ``table``.
    covariates : dict of str to str
        study.yaml ``covariates``: name -> ``numeric``, ``category`` or ``boolean``.

    Returns
    -------
    DataFrame
        ``table`` with one column per covariate at the end: numeric as
        ``float64``, category as ``string``, boolean as ``Int64`` 0/1 (so a
        formula reads it as a number). A covariate the employees table lacks
        (it lives in job_history only) is all missing here. ``table`` is
        returned unchanged when there are no covariates.

    Notes
    -----
    Every row of a spell gets the spell's value from employees, the value
    at hire. The analysis tables then replace it, for a covariate that
    job_history carries, by the value in force on the row's day (``person``:
    at entry; ``intervals``: at the interval's start; ``survey_panel``: on
    the survey date; ``cycles``: at the cycle's start).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> spells = pd.DataFrame({"pay_band": ["B1", "B2"], "remote": pd.array([True, None], dtype="boolean")})
    >>> out = attach_covariates(pd.DataFrame({"x": [1, 2, 3]}), spells, np.array([1, 0, 1]),
    ...                         {"pay_band": "category", "remote": "boolean"})
    >>> out["pay_band"].tolist(), out["remote"].tolist()
    (['B2', 'B1', 'B2'], [<NA>, 1, <NA>])
    """
    if not covariates:
        return table
    sid = np.asarray(sid, dtype=np.int64)
    out = table.copy(deep=False)
    for name, kind in covariates.items():
        column = spells[name] if name in spells else pd.Series(pd.NA, index=spells.index, dtype=object)
        if kind == "numeric":
            out[name] = pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()[sid]
        elif kind == "boolean":
            out[name] = column.astype("boolean").astype("Int64").array.take(sid)
        else:
            out[name] = _text_at(column, sid)
    return out


# --------------------------------------------------------------------------- the bundle


@dataclass(frozen=True)
class AnalysisTables:
    """The analysis tables of a study, plus the measure tables they were built from.

    Attributes
    ----------
    person : DataFrame
        One row per employment spell (:func:`person_table`).
    intervals : DataFrame
        Start/stop rows with time-varying covariates (:func:`interval_table`).
    survey_panel : DataFrame
        One row per survey response (:func:`survey_panel_table`).
    cycles : DataFrame
        One row per employee and review cycle (:func:`cycle_table`).
    alignment : DataFrame
        Cascade alignment per employee and cycle (:func:`cascade_alignment`).
    alignment_problems : DataFrame
        Broken goal chains: ``goal_id, cycle, rule, value``.
    team_alignment : DataFrame
        Per manager and cycle (:func:`team_alignment`).
    attainment_alignment : DataFrame
        Per manager (:func:`attainment_alignment`).
    reliability : DataFrame
        Per scale (:func:`scale_reliability`).
    item_statistics : DataFrame
        Per item (:func:`item_statistics`).
    feedback_rates : DataFrame
        Per spell and quarter (:func:`feedback_rate`).
    careers : DataFrame
        Time to the next promotion, start/stop (:func:`career_table`); empty
        without ``job_history``. Its numeric and text columns that
        ``intervals`` has too (``employee_id, start, stop``, the covariates)
        are the intervals' own arrays, read-only in both tables: an edit in
        place (``.loc[...] = ...``) of one of them raises ``ValueError``
        instead of changing the other table too. Edit a copy
        (``careers.copy()``), or assign a whole new column.
    """

    person: pd.DataFrame
    intervals: pd.DataFrame
    survey_panel: pd.DataFrame
    cycles: pd.DataFrame
    alignment: pd.DataFrame
    alignment_problems: pd.DataFrame
    team_alignment: pd.DataFrame
    attainment_alignment: pd.DataFrame
    reliability: pd.DataFrame
    item_statistics: pd.DataFrame
    feedback_rates: pd.DataFrame
    careers: pd.DataFrame

    def write(self, directory, *, csv: bool = False) -> list[Path]:
        """Write every table as ``<name>.parquet`` (and ``<name>.csv`` when ``csv``) into ``directory``.

        Parameters
        ----------
        directory : str or Path
            Folder to write into (created).
        csv : bool, default False
            Also write CSV copies.

        Returns
        -------
        list of Path
            The files written.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for f in fields(self):
            table = getattr(self, f.name)
            path = directory / f"{f.name}.parquet"
            table.to_parquet(path, index=False)
            written.append(path)
            if csv:
                table.to_csv(directory / f"{f.name}.csv", index=False)
                written.append(directory / f"{f.name}.csv")
        return written


class _Beside:
    """Run a step on the second thread of ``pool`` (a one-worker ``ThreadPoolExecutor``), or at once without one.

    Calling it with a function gives what ``pool.submit`` gives: an object whose ``result()`` is the function's
    value (and raises its error).
    """

    def __init__(self, pool: ThreadPoolExecutor | None):
        self.pool = pool

    def __call__(self, fn):
        return self.pool.submit(fn) if self.pool is not None else _Done(fn())


@dataclass(frozen=True)
class _Done:
    """A step already run: its value, read as a future's (``result()``)."""

    value: object

    def result(self):
        return self.value


@_builder_doc
def build_analysis_tables(clean, config=None, *, n_boot: int = 1000, timings: dict | None = None,
                          threads: int | None = None) -> AnalysisTables:
    """Build every analysis table of a cleaned study, computing each measure once.

    Parameters
    ----------
    {clean_config}
    n_boot : int, default 1000
        Bootstrap resamples for the omega intervals of the reliability table.
    timings : dict, optional
        When given, filled with seconds per step (for benchmarks). Steps that run beside one another
        are each timed on their own clock, so their seconds overlap.
    threads : int, optional
        How many steps may run at once. With 2 or more, a second thread measures the surveys and the
        feedback (scale scores, reliability, item statistics, feedback rates) while the first measures
        the goals (cascade, team and attainment alignment); most of that work is NumPy and pandas code
        that releases Python's lock. By default 2 when this process may use two cores or more
        (:func:`alignment_research.executors.available_cores`), else 1. The tables are the same for
        any number; 1 builds one step after another, with the least memory at once.

    Returns
    -------
    AnalysisTables
        ``person, intervals, survey_panel, cycles`` and the measure tables.

    Examples
    --------
    >>> import alignment_research as ar
    >>> clean = ar.clean_study(ar.simulate_study(n_employees=300, seed=0))
    >>> at = ar.build_analysis_tables(clean, n_boot=50)
    >>> sorted(at.person["event_type"].unique())[:2]
    ['censored', 'involuntary']
    """
    ctx = _Context(clean, config, n_boot=n_boot)
    timings = {} if timings is None else timings
    threads = available_cores() if threads is None else int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}.")

    def step(name, fn):
        t0 = time.perf_counter()
        value = fn()
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return value

    t = ctx.tables
    step("spells", lambda: ctx.spells)  # every step reads the spells: made before a second thread starts

    def surveys_and_feedback():
        """The steps that read no goal: feedback rates, scale scores with their spells, the employees' own
        timeline (ratings, scores, programmes, feedback), reliability, item statistics."""
        step("feedback_rate", lambda: ctx.feedback_rate_rows)
        step("score_scales", lambda: ctx.survey_spells)
        step("own_timeline", lambda: (ctx.own_timeline, ctx.manager_ld_start))
        if not ("surveys" in t and ctx.config.scales):
            return (pd.DataFrame(columns=["scale", "n_items", "n", "cronbach_alpha"]),
                    pd.DataFrame(columns=["scale", "item", "n", "mean", "sd", "item_rest_r", "alpha_if_dropped"]))
        return (step("reliability", lambda: scale_reliability(t["surveys"], ctx.config.scales, n_boot=n_boot)),
                step("item_statistics", lambda: item_statistics(t["surveys"], ctx.config.scales)))

    def small_tables():
        """The person, cycles and survey-panel tables (the intervals are built beside them)."""
        return (step("person", lambda: _person(ctx)), step("cycles", lambda: _cycles(ctx)),
                step("survey_panel", lambda: _survey_panel(ctx)))

    # Two rounds of steps that share nothing but what is made before them; in each, a second thread (with
    # ``threads`` >= 2) runs one part while this one runs the other, and ``result`` raises its errors here.
    # The measures come first, while the big tables do not exist yet: the peak is the working memory of the
    # steps running on top of everything already built, so the large tables come last, and what made them goes
    # as soon as they are done.
    with ThreadPoolExecutor(max_workers=1) if threads > 1 else contextlib.nullcontext() as pool:
        beside = _Beside(pool)
        # 1. the surveys and feedback beside the goal measures (which make the job history's spans)
        survey_measures = beside(surveys_and_feedback)
        alignment, problems = step("cascade_alignment", lambda: ctx.alignment_result)
        team = step("team_alignment", lambda: team_alignment(alignment, cycles=ctx.config.cycles or None))
        if "goals" in t and "reviews" in t:
            att = step("attainment_alignment", lambda: attainment_alignment(
                t["goals"], t["reviews"], t["employees"], cycles=ctx.config.cycles or None, codes=ctx.goal_codes))
        else:
            att = pd.DataFrame(columns=["manager_id", "n_cycles", "n_reports", "manager_attainment",
                                        "team_attainment", "slope", "correlation"])
        rel, items = survey_measures.result()
        step("timeline", lambda: ctx.timeline)
        # 2. the person, cycles and survey-panel tables beside the intervals
        ctx.prepare_tables()
        small = beside(small_tables)
        intervals, interval_sid = step("intervals", lambda: _interval_rows(ctx, frozen=True))
        person, cycles, panel = small.result()
    rates = ctx.feedback_rates if ctx.feedback_rates is not None else pd.DataFrame(
        columns=["employee_id", "spell", "quarter", "feedback_rate"])
    # careers needs the spells and the job history only: at a million employees the rest is gigabytes
    ctx.release("timeline", "own_timeline", "scores", "survey_spells", "program_spells", "spell_manager_ld_start",
                "manager_spans", "alignment_table", "goal_codes", "_in_force_values")
    careers = step("careers", lambda: _careers(ctx, intervals, interval_sid))
    return AnalysisTables(person=person, intervals=intervals, survey_panel=panel, cycles=cycles,
                          alignment=alignment, alignment_problems=problems, team_alignment=team,
                          attainment_alignment=att, reliability=rel, item_statistics=items, feedback_rates=rates,
                          careers=careers)


# --------------------------------------------------------------------------- the three measures side by side


def alignment_measures(analysis: AnalysisTables) -> pd.DataFrame:
    """Gather the three alignment measures in one long table for comparison by group.

    Parameters
    ----------
    analysis : AnalysisTables
        The study's analysis tables (``clean.analysis``).

    Returns
    -------
    DataFrame
        ``measure, value, person_id, department, job_level`` where ``measure`` is
        ``cascade`` (per employee and cycle, from ``cycles``), ``perceived``
        (the ``alignment`` scale per survey response, from ``survey_panel``) or
        ``attainment`` (per manager: correlation of team and manager
        attainment, with the manager's department and level).

    Examples
    --------
    >>> import alignment_research as ar
    >>> at = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis
    >>> sorted(ar.alignment_measures(at)["measure"].unique())
    ['attainment', 'cascade', 'perceived']
    """
    cols = ["measure", "value", "person_id", "department", "job_level"]
    c = analysis.cycles
    parts = [pd.DataFrame({"measure": "cascade", "value": c["alignment_cascade"], "person_id": c["employee_id"],
                           "department": c["department"], "job_level": c["job_level"]})]
    sp = analysis.survey_panel
    if "alignment" in sp.columns:
        parts.append(pd.DataFrame({"measure": "perceived", "value": sp["alignment"], "person_id": sp["employee_id"],
                                   "department": sp["department"], "job_level": sp["job_level"]}))
    att = analysis.attainment_alignment
    if len(att):
        who = (analysis.cycles.sort_values(["employee_id", "spell"], kind="stable")
               .drop_duplicates("employee_id", keep="last").set_index("employee_id"))
        parts.append(pd.DataFrame({"measure": "attainment", "value": att["correlation"].to_numpy(float),
                                   "person_id": att["manager_id"].to_numpy(),
                                   "department": who["department"].reindex(att["manager_id"]).to_numpy(),
                                   "job_level": who["job_level"].reindex(att["manager_id"]).to_numpy()}))
    out = pd.concat(parts, ignore_index=True)[cols]
    out["measure"] = out["measure"].astype("string")
    out["department"] = out["department"].astype("string")
    out["job_level"] = out["job_level"].astype("Int64")
    return out


def alignment_correlations(analysis: AnalysisTables, *, method: str = "pearson") -> pd.DataFrame:
    """Correlate the three alignment measures with one another.

    Cascade and perceived alignment are paired per survey response (the
    cascade alignment known on the survey date). Attainment alignment exists
    per manager, so it is paired with the manager's team means of the other two.

    Parameters
    ----------
    analysis : AnalysisTables
        The study's analysis tables (``clean.analysis``).
    method : {"pearson", "spearman"}, default "pearson"
        Correlation coefficient.

    Returns
    -------
    DataFrame
        One row per pair: ``measure_x, measure_y, level, n, correlation``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> at = ar.clean_study(ar.simulate_study(n_employees=300, seed=0)).analysis
    >>> ar.alignment_correlations(at)["level"].tolist()
    ['survey response', 'manager', 'manager']
    """
    rows = []
    sp = analysis.survey_panel

    def corr(x, y):
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 3:
            return int(ok.sum()), np.nan
        return int(ok.sum()), float(pd.Series(x[ok]).corr(pd.Series(y[ok]), method=method))

    if "alignment" in sp.columns:
        n, r = corr(sp["alignment_cascade"].to_numpy(float), sp["alignment"].to_numpy(float))
        rows.append(("cascade", "perceived", "survey response", n, r))
        att = analysis.attainment_alignment.set_index("manager_id")["correlation"]
        casc = analysis.cycles.dropna(subset=["manager_id"]).groupby("manager_id")["alignment_cascade"].mean()
        perc = sp.dropna(subset=["manager_id"]).groupby("manager_id")["alignment"].mean()
        for name, team in (("cascade", casc), ("perceived", perc)):
            both = pd.concat([team.rename("team"), att.rename("att")], axis=1, join="inner")
            n, r = corr(both["team"].to_numpy(float), both["att"].to_numpy(float))
            rows.append((name, "attainment", "manager", n, r))
    out = pd.DataFrame(rows, columns=["measure_x", "measure_y", "level", "n", "correlation"])
    out["n"] = out["n"].astype("int64")
    return out
