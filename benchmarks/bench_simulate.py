"""Benchmark: simulate a study of N employees (default 100,000).

Usage: ``python benchmarks/bench_simulate.py [N_EMPLOYEES] [REPEATS]``

Times ``simulate_study(n_employees=N, seed=1)`` ``REPEATS`` times (default 3)
and prints the median. The reference, timed in the same run, is a study ten
times smaller: the ratio ``time(N) / (10 * time(N / 10))`` is 1 when the
generator scales linearly. Peak memory is measured in a separate run with
``tracemalloc`` (Python and NumPy allocations) and as the process' peak RSS.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
import tracemalloc

import alignment_research as ar


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(n_employees: int = 100_000, repeats: int = 3) -> None:
    small = max(n_employees // 10, 10)
    t_ref = statistics.median(_timed(lambda: ar.simulate_study(n_employees=small, seed=1))[0] for _ in range(repeats))
    times = []
    for _ in range(repeats):
        elapsed, sim = _timed(lambda: ar.simulate_study(n_employees=n_employees, seed=1))
        times.append(elapsed)
        rows = {name: len(table) for name, table in sim.tables.items()}
        del sim
    t_big = statistics.median(times)
    print(f"simulate_study(n_employees={n_employees:,}): median of {repeats} runs {t_big:.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(f"reference simulate_study(n_employees={small:,}): median {t_ref:.2f} s; "
          f"scaling ratio time(N) / (10 x time(N/10)) = {t_big / (10 * t_ref):.2f}")

    tracemalloc.start()
    ar.simulate_study(n_employees=n_employees, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"peak memory: tracemalloc {peak / 1e6:.0f} MB; process peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*args)
