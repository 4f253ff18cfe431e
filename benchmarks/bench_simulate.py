"""Benchmark: simulate a study of N employees (default 100,000; ``--quick``: 10,000) and write it.

Usage: ``python benchmarks/bench_simulate.py [N_EMPLOYEES] [REPEATS] [--quick]``

Times ``simulate_study(n_employees=N, seed=1)`` ``REPEATS`` times (default 3)
and reports the median. References, timed in the same run: a study ten
times smaller (the ratio ``time(N) / (10 * time(N / 10))`` is 1 when the
generator scales linearly); the same study without job history
(``Truth(history=False)``, bit for bit the simulator before job history), so
the ratio is the cost of the history; and ``write_simulated_study`` of the
study (its CSV files), against which the simulation should take at most
about twice as long. Peak memory is measured in a separate run with
``tracemalloc`` (Python and NumPy allocations) and as the process' peak RSS.
"""

from __future__ import annotations

import tempfile

import alignment_research as ar

from _common import fmt_runs, log, median, repeat, rss_peak_mib, section, size_arguments, traced_peak_mib


def main(argv=None) -> None:
    n_employees, repeats = size_arguments(__doc__, argv)
    small = max(n_employees // 10, 10)
    log(f"bench_simulate: reference {small:,}")
    ref_times, _ = repeat(lambda: ar.simulate_study(n_employees=small, seed=1), repeats)
    log(f"bench_simulate: {n_employees:,} without history")
    off_times, _ = repeat(lambda: ar.simulate_study(n_employees=n_employees, seed=1, truth=ar.Truth(history=False)),
                          repeats)
    log(f"bench_simulate: {n_employees:,}")
    times, sim = repeat(lambda: ar.simulate_study(n_employees=n_employees, seed=1), repeats)
    log(f"bench_simulate: writing {n_employees:,}")
    with tempfile.TemporaryDirectory() as folder:
        write_times, _ = repeat(lambda: ar.write_simulated_study(sim, folder), repeats)
    rows = {name: len(table) for name, table in sim.tables.items()}
    del sim
    t_ref, t_big, t_off, t_write = median(ref_times), median(times), median(off_times), median(write_times)
    peak = traced_peak_mib(lambda: ar.simulate_study(n_employees=n_employees, seed=1))
    section(
        f"Simulate a study ({n_employees:,} employees)",
        f"`simulate_study(n_employees={n_employees:,}, seed=1)`, median of {repeats} runs. References in the same run: "
        f"the same call for a study ten times smaller (the scaling ratio time(N) / (10 x time(N/10)) is 1 when the "
        f"generator scales linearly); the same study with `Truth(history=False)` (the simulator before job history, "
        f"bit for bit); and `write_simulated_study` of the study (CSV files). Rows produced: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + ".",
        ["call", "median (s)", "runs (s)", "ratio"],
        [[f"`simulate_study` N = {small:,} (reference)", f"{t_ref:.2f}", fmt_runs(ref_times), "1.00"],
         [f"`simulate_study` N = {n_employees:,}", f"{t_big:.2f}", fmt_runs(times),
          f"{t_big / (10 * t_ref):.2f} (scaling ratio)"],
         [f"`simulate_study` N = {n_employees:,}, no job history", f"{t_off:.2f}", fmt_runs(off_times),
          f"{t_big / t_off:.2f} (with / without history)"],
         [f"`write_simulated_study` N = {n_employees:,}", f"{t_write:.2f}", fmt_runs(write_times),
          f"{t_big / t_write:.2f} (simulate / write)"]],
        memory=[f"tracemalloc peak of one N = {n_employees:,} run {peak:,.0f} MiB",
                f"process peak RSS {rss_peak_mib():,.0f} MiB"],
    )


if __name__ == "__main__":
    main()
