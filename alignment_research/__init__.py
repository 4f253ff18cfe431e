"""alignment-research: do aligned goals and developed leaders raise engagement and retention?

``import alignment_research as ar`` gives the calls a researcher makes in a
notebook: load, validate and clean a study, build the analysis tables, measure,
fit models, plot, write sentences for leaders, protect small groups, simulate,
plan power and run the whole job. The list is curated (``_EXPORTS`` below,
grouped by stage). Everything else a module makes public stays reachable through
its module: ``ar.clean.strip_text``, ``ar.retention.CoxResult``,
``ar.results.TIDY_COLUMNS``.

Importing the package is cheap: no module is imported until one of its names is
first used (PEP 562 module ``__getattr__``). ``ar.fit_cox`` imports
``alignment_research.retention`` on first access; ``import alignment_research``
alone loads neither pandas' plotting stack nor nbformat, pandera or sqlalchemy,
so the command line and every notebook kernel start quickly.
"""

import ast as _ast
from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError, version as _version
from pathlib import Path as _Path

try:
    __version__ = _version("alignment-research")
except PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

#: The top-level API: public name -> the module (or subpackage) that defines it.
#: Each name must also be in that module's ``__all__`` (tests/test_public_api.py).
_EXPORTS: dict[str, str] = {
    # Errors and warnings a notebook catches or filters
    "AlignmentResearchError": "errors",
    "ConfigError": "errors",
    "DataContractError": "errors",
    "ModelError": "errors",
    "PrivacyError": "errors",
    "StatisticalWarning": "errors",
    # Loading a study: files or database, study.yaml, the data contract
    "load_study": "load",
    "read_table": "load",
    "load_config": "config",
    "config_from_dict": "config",
    "StudyConfig": "config",
    "Study": "study",
    "CleanStudy": "study",
    "table_schema": "schema",
    "data_dictionary": "schema",
    "register_dictionary": "schema",
    # Validation and cleaning: the top-level calls (the single steps live in ar.clean)
    "validate_study": "clean",
    "validate_and_clean": "clean",
    "explain_problems": "validate",
    "summarise_problems": "validate",
    "clean_study": "clean",
    "write_clean_study": "clean",
    "cleaning_summary": "clean",
    "quarantine_summary": "clean",
    "open_clean": "cache",
    "open_validated": "cache",
    # Analysis tables
    "build_analysis_tables": "tables",
    "person_table": "tables",
    "interval_table": "tables",
    "survey_panel_table": "tables",
    "cycle_table": "tables",
    "career_table": "tables",
    "first_promotions": "tables",
    "alignment_measures": "tables",
    "alignment_correlations": "tables",
    # Measures: alignment, survey scales, feedback
    "cascade_alignment": "measures",
    "team_alignment": "measures",
    "attainment_alignment": "measures",
    "score_scales": "measures",
    "scale_reliability": "measures",
    "item_statistics": "measures",
    "feedback_rate": "measures",
    "trailing_event_rate": "measures",
    "alignment_by_group": "measures",
    # Models: the shared result shape
    "ModelResult": "results",
    # Models: retention
    "fit_km": "retention",
    "fit_cox": "retention",
    "cox_survival": "retention",
    "survival_at": "retention",
    "cox_restricted_mean": "retention",
    "ph_test": "retention",
    "fit_cif": "retention",
    "fit_cause_specific": "retention",
    "fit_discrete_time": "retention",
    "immortal_time_bias": "retention",
    "survival_table": "retention",
    "cif_table": "retention",
    "logrank_test": "retention",
    "person_periods": "retention",
    "restricted_mean_survival": "retention",
    "fit_finegray": "competing",
    "retention_sensitivity": "retention",
    # Models: engagement
    "fit_ols": "engagement",
    "fit_mixed": "engagement",
    "fit_within": "engagement",
    "fit_ordinal": "engagement",
    "fit_logit": "engagement",
    "fit_glmm": "engagement",
    "fit_mediation": "engagement",
    "driver_analysis": "engagement",
    "cycle_engagement": "engagement",
    "predicted_values": "postestimation",
    "marginal_effects": "postestimation",
    "adjust_pvalues": "postestimation",
    "effect_by_group": "postestimation",
    "compare_models": "comparison",
    "fit_group_effects": "postestimation",
    "GroupEffectsResult": "postestimation",
    "wald_test": "postestimation",
    # Models: programme effects
    "program_trials": "programs",
    "fit_propensity": "programs",
    "match_trials": "programs",
    "balance_table": "programs",
    "e_value": "programs",
    "event_study": "programs",
    "estimate_program_effect": "programs",
    "estimate_program_effects": "programs",
    "development_trials": "development",
    "estimate_development_effect": "development",
    "describe_careers": "development",
    # The essay's claims, each tested: one table with verdicts
    "claims_scorecard": "scorecard",
    "claim_verdicts": "scorecard",
    "difficulty_curve": "scorecard",
    "checkin_regularity": "scorecard",
    "leader_feedback_panel": "scorecard",
    "plot_scorecard": "scorecard",
    "describe_practices": "scorecard",
    # Plots (axes-level: ``ax=`` or a new figure; ``set_theme`` is an explicit call)
    "set_theme": "plots",
    "plot_forest": "plots",
    "figure_labels": "plots",
    "plot_cleaning_summary": "clean",
    "plot_alignment_distribution": "measures",
    "plot_alignment_overview": "measures",
    "plot_survival": "retention",
    "plot_cif": "retention",
    "plot_schoenfeld": "retention",
    "plot_predicted": "postestimation",
    "plot_residuals": "postestimation",
    "plot_drivers": "engagement",
    "plot_love": "programs",
    "plot_overlap": "programs",
    "plot_event_study": "programs",
    "plot_retention": "report",
    # Reports: sentences and labels for leaders
    "describe_effect": "report",
    "describe_e_value": "report",
    "describe_retention": "report",
    "describe_study": "report",
    "describe_caveats": "report",
    "describe_who_it_works_for": "report",
    "summarise_effect": "report",
    "paragraph": "report",
    "term_label": "report",
    "with_labels": "report",
    "add_levels": "report",
    "prepare_leadership_model": "report",
    # The primary analysis (study.yaml ``analysis:``), fitted once for the brief and the notebooks
    "primary_analysis": "primary",
    "who_it_works_for": "primary",
    "primary_group_effects": "primary",
    "PrimaryAnalysis": "primary",
    "typical_profiles": "primary",
    "key_findings": "primary",
    "Findings": "primary",
    "programme_estimates": "primary",
    "describe_programme": "primary",
    "describe_programme_sensitivity": "primary",
    "format_estimate": "report",
    "retention_caption": "report",
    "compare_naive_adjusted": "report",
    "describe_naive_adjusted": "report",
    "describe_unadjusted": "report",
    "plain_table": "report",
    "compare_with_primary": "report",
    "describe_sensitivity": "report",
    # The performance dashboard: panels per department and team, funnel plots against the organisation
    "dashboard_data": "dashboard",
    "funnel_limits": "dashboard",
    "write_dashboard": "dashboard",
    # Privacy helpers a notebook needs
    "suppress_small_groups": "privacy",
    "mask_small_counts": "privacy",
    "group_sizes": "privacy",
    "pool_small_levels": "privacy",
    "pseudonymise_ids": "privacy",
    "pseudonymise_tables": "privacy",
    # Simulation: a study with known effects
    "simulate_study": "simulate",
    "write_simulated_study": "simulate",
    "default_truth": "simulate",
    "load_truth": "simulate",
    "Truth": "simulate",
    # Power
    "power_engagement": "power",
    "power_cox": "power",
    "design_effect": "power",
    "simulate_power": "power",
    "plot_power": "power",
    # Simulation studies: bias, coverage and power over many seeds, on a process pool or a Dask cluster
    "simulation_study": "simstudy",
    "SimulationStudyResult": "simstudy",
    "TaskExecutor": "executors",
    # Run: clean, execute the notebooks, render the reports
    "run_study": "run",
}

__all__ = list(_EXPORTS)

_HERE = _Path(__file__).parent


def _is_submodule(name: str) -> bool:
    """Whether ``name`` is a module or subpackage of this package (without importing it)."""
    return (_HERE / f"{name}.py").is_file() or (_HERE / name / "__init__.py").is_file()


def _defined_in(name: str) -> str | None:
    """The public module whose literal ``__all__`` lists ``name`` (read from source; error path only)."""
    sources = sorted(_HERE.glob("[!_]*.py")) + sorted(_HERE.glob("[!_]*/__init__.py"))
    for source in sources:
        try:
            tree = _ast.parse(source.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):  # pragma: no cover - a broken module reports itself on import
            continue
        for node in tree.body:
            if isinstance(node, _ast.Assign) and any(isinstance(t, _ast.Name) and t.id == "__all__" for t in node.targets):
                try:
                    names = _ast.literal_eval(node.value)
                except ValueError:
                    names = []
                if name in names:
                    return source.stem if source.name != "__init__.py" else source.parent.name
    return None


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        if not name.startswith("__") and _is_submodule(name):
            return _import_module(f".{name}", __name__)  # a submodule, e.g. ``ar.retention``
        home = None if name.startswith("_") else _defined_in(name)
        hint = f"; it is ar.{home}.{name}" if home else ""
        raise AttributeError(f"module 'alignment_research' has no attribute {name!r}{hint}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
