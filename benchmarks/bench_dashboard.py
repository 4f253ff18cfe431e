"""Benchmark: the performance dashboard of a simulated study (default 20,000 employees; ``--quick``: 2,000).

Usage: ``python benchmarks/bench_dashboard.py [N_EMPLOYEES] [REPEATS] [--quick]``

The study is simulated (``messy=False``) and cleaned once, and its analysis
tables are built once, outside the timing. Then the two steps of the run's
``dashboard`` stage are timed ``REPEATS`` times each (median reported):
:func:`~alignment_research.dashboard.dashboard_data` (the panels' numbers and
funnel limits) and :func:`~alignment_research.dashboard.render_dashboard`
(the page, with every chart drawn). The reference, timed in the same run, is
one :func:`build_analysis_tables` of the same study: the stage the dashboard
reads from. Peak memory of one whole dashboard is measured with ``tracemalloc``.
"""

from __future__ import annotations

import statistics

import alignment_research as ar
from alignment_research.dashboard import dashboard_data, render_dashboard

from _common import fmt_runs, log, rss_peak_mib, section, size_arguments, timed, traced_peak_mib


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv, quick=2_000, full=20_000)
    log(f"bench_dashboard: simulate and clean {n_employees:,}")
    clean = ar.clean_study(ar.simulate_study(n_employees=n_employees, seed=1, messy=False))
    t_ref, _ = timed(lambda: ar.build_analysis_tables(clean))
    clean.analysis  # noqa: B018 - built once, outside the timing
    datas, renders, refs = [], [], [t_ref]
    for _ in range(repeats):
        log("bench_dashboard: dashboard_data")
        t, dash = timed(lambda: dashboard_data(clean))
        datas.append(t)
        log("bench_dashboard: render_dashboard")
        t, page = timed(lambda: render_dashboard(dash))
        renders.append(t)
    for _ in range(repeats - 1):
        refs.append(timed(lambda: ar.build_analysis_tables(clean))[0])
    ref, data, render = statistics.median(refs), statistics.median(datas), statistics.median(renders)
    peak = traced_peak_mib(lambda: render_dashboard(dashboard_data(clean)))
    kinds = dash.groups["kind"].value_counts()
    section(
        f"Performance dashboard ({n_employees:,} employees)",
        f"The run's `dashboard` stage on a simulated (`messy=False`) study: {kinds.get('department', 0)} department "
        f"and {kinds.get('team', 0)} team panels (left out: {dash.left_out['department']} departments, "
        f"{dash.left_out['team']} teams below {dash.min_group_size} people); the page is {len(page) / 1e6:.1f} MB.",
        ["step", "median s", "runs (s)", "ratio to reference"],
        [["reference: `build_analysis_tables`", f"{ref:.2f}", fmt_runs(refs), "1.0"],
         ["`dashboard_data`", f"{data:.2f}", fmt_runs(datas), f"{data / ref:.2f}"],
         ["`render_dashboard`", f"{render:.2f}", fmt_runs(renders), f"{render / ref:.2f}"]],
        memory=[f"{peak:.0f} MiB traced (one dashboard)", f"{rss_peak_mib():.0f} MiB process RSS"],
    )


if __name__ == "__main__":
    main()
