"""Run many seeded tasks sequentially, on local processes or on a Dask cluster, with identical results."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .errors import ConfigError, ModelError

__all__ = ["Task", "TaskExecutor", "make_tasks", "run_tasks", "BACKENDS", "run_bootstrap", "THREAD_VARIABLES",
           "thread_limits", "available_cores"]

#: The backends an executor can run on.
BACKENDS = ("sequential", "processes", "dask")

_PROGRESS_STEP = 10  # percent between two progress lines when stderr is not a terminal
#: Thread-pool sizes of BLAS/OpenMP set in worker processes and notebook kernels (as joblib does), so n of them
#: running at once do not each use every core.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def thread_limits(at_once: int, cores: int) -> dict[str, str]:
    """BLAS/OpenMP thread-pool sizes for ``at_once`` processes sharing ``cores``: ``cores // at_once``, at least 1.

    Two processes on two cores that each start two BLAS threads oversubscribe the machine: an OpenBLAS thread
    then spins waiting for its partner (a 7,700 x 16 SVD took 0.18 s of CPU instead of 0.004 s on a loaded
    2-core machine).

    Parameters
    ----------
    at_once : int
        Processes running at the same time (workers, kernels).
    cores : int
        Cores they share.

    Returns
    -------
    dict
        ``THREAD_VARIABLES`` -> the thread count, as text (for a process environment).

    Examples
    --------
    >>> from alignment_research.executors import thread_limits
    >>> thread_limits(2, 2)["OPENBLAS_NUM_THREADS"]
    '1'
    """
    threads = str(max(1, int(cores) // max(1, int(at_once))))
    return {name: threads for name in THREAD_VARIABLES}


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one, else every core.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> from alignment_research.executors import available_cores
    >>> available_cores() >= 1
    True
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def _name_key(name: str) -> int:
    """A stable 32-bit integer for a scenario name (Python's ``hash`` differs between processes)."""
    return int.from_bytes(hashlib.sha256(str(name).encode("utf-8")).digest()[:4], "little")


@dataclass(frozen=True)
class Task:
    """One replicate of one scenario, with the seed derived from (study seed, scenario, rep).

    Parameters
    ----------
    scenario : str
        Scenario name.
    rep : int
        Replicate number, from 0.
    seed : int
        The study's seed.
    payload : object, optional
        Whatever the task function needs besides its seed (a scenario's
        settings); it must pickle.

    Examples
    --------
    >>> t = Task("null", 3, seed=1)
    >>> bool(t.rng().integers(0, 10**6) == Task("null", 3, seed=1).rng().integers(0, 10**6))
    True
    """

    scenario: str
    rep: int
    seed: int
    payload: Any = None

    @property
    def key(self) -> tuple[str, int]:
        """``(scenario, rep)``: what identifies the task's result."""
        return (self.scenario, self.rep)

    def seed_sequence(self) -> np.random.SeedSequence:
        """The task's ``numpy.random.SeedSequence`` built from (seed, scenario, rep)."""
        return np.random.SeedSequence([int(self.seed), _name_key(self.scenario), int(self.rep)])

    def rng(self) -> np.random.Generator:
        """A fresh generator seeded from the task's seed sequence."""
        return np.random.default_rng(self.seed_sequence())

    def int_seed(self) -> int:
        """A 32-bit integer seed from the task's seed sequence (for functions that take ``seed=int``)."""
        return int(self.seed_sequence().generate_state(1, dtype=np.uint32)[0])


def make_tasks(scenarios: Iterable[str] | dict, reps: int, seed: int) -> list[Task]:
    """Build the tasks of a study: every replicate of every scenario.

    Parameters
    ----------
    scenarios : iterable of str, or dict
        Scenario names; with a dict, each value becomes its tasks' ``payload``.
    reps : int
        Replicates per scenario (positive).
    seed : int
        The study's seed.

    Returns
    -------
    list of Task
        Scenario by scenario, replicate 0 first.

    Raises
    ------
    ConfigError
        ``reps`` not a positive integer, or no scenario.

    Examples
    --------
    >>> [t.key for t in make_tasks(["a", "b"], reps=2, seed=0)]
    [('a', 0), ('a', 1), ('b', 0), ('b', 1)]
    """
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ConfigError(f"reps must be a positive integer; got {reps!r}.")
    payloads = dict(scenarios) if isinstance(scenarios, dict) else {name: None for name in scenarios}
    if not payloads:
        raise ConfigError("Give at least one scenario.")
    return [Task(str(name), rep, int(seed), payload) for name, payload in payloads.items() for rep in range(int(reps))]


class _Progress:
    """A rich bar on a terminal; otherwise one short line on stderr every 10% (as ``run`` logs its stages)."""

    def __init__(self, total: int, show: bool | None, label: str):
        terminal = sys.stderr.isatty()
        self.bar = terminal if show is None else bool(show) and terminal
        self.lines = (show is None or bool(show)) and not terminal
        self.total, self.label, self.done = total, label, 0
        self.next_pct = _PROGRESS_STEP
        self.t0 = time.perf_counter()
        self.progress = None
        if self.bar:
            from rich.console import Console  # deferred: rich is only needed when a progress bar is shown
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # deferred: as the line above, only when needed

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self.progress.start()
            self.task = self.progress.add_task(label, total=total)

    def advance(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress.advance(self.task)
        elif self.lines:
            pct = 100 * self.done // self.total
            if pct >= self.next_pct or self.done == self.total:
                seconds = time.perf_counter() - self.t0
                print(f"alignment-research {self.label}: {self.done}/{self.total} tasks ({pct}%, {seconds:.1f} s)",
                      file=sys.stderr, flush=True)
                self.next_pct = (pct // _PROGRESS_STEP + 1) * _PROGRESS_STEP

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _call(func: Callable[[Task], Any], task: Task) -> tuple[tuple[str, int], Any]:
    return task.key, func(task)


class TaskExecutor:
    """Run a function over seeded tasks: sequentially, on local processes (loky) or on a Dask cluster.

    Every task draws its random numbers from its own seed (``Task.seed_sequence``),
    so the results do not depend on the backend, the number of workers or the
    order in which tasks finish. Results stream back as they complete; a task
    whose worker process dies is run again, and each task's result is yielded
    exactly once.

    Parameters
    ----------
    backend : {"sequential", "processes", "dask"}, default "sequential"
        Where the tasks run. ``"processes"`` uses joblib's loky process pool;
        ``"dask"`` a ``dask.distributed`` scheduler.
    n_workers : int, optional
        Processes for ``"processes"`` (default: the machine's cores); for
        ``"dask"`` without ``scheduler``, the workers of a local cluster.
    scheduler : str or dask.distributed.Client, optional
        ``"dask"`` only: a scheduler address such as ``"tcp://host:8786"``, or
        a connected ``Client`` (left open when done). Without it a local
        cluster is started and closed.
    retries : int, default 3
        How many times a task whose worker died is run again before the
        study fails (process pool, and the local cluster started for
        ``"dask"``; a running scheduler uses its own
        ``distributed.scheduler.allowed-failures``, 3 by default).
    timeout : float, default 10
        Seconds to wait for a scheduler to answer.
    progress : bool, optional
        Report progress on stderr: a bar on a terminal, else one line every
        10%. Default: on.

    Raises
    ------
    ConfigError
        Unknown backend, a non-positive ``n_workers``, a scheduler for a
        non-Dask backend, or a scheduler that does not answer within
        ``timeout`` seconds.

    Examples
    --------
    >>> def draw(task):
    ...     return float(task.rng().normal())
    >>> tasks = make_tasks(["a"], reps=3, seed=7)
    >>> a = dict(TaskExecutor("sequential", progress=False).map(draw, tasks))
    >>> sorted(a) == [("a", 0), ("a", 1), ("a", 2)]
    True
    """

    def __init__(self, backend: str = "sequential", *, n_workers: int | None = None, scheduler=None,
                 retries: int = 3, timeout: float = 10.0, progress: bool | None = None):
        if backend not in BACKENDS:
            raise ConfigError(f"Unknown backend {backend!r}; use one of {list(BACKENDS)}.")
        if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, (int, np.integer))
                                      or n_workers < 1):
            raise ConfigError(f"n_workers must be a positive integer; got {n_workers!r}.")
        if scheduler is not None and backend != "dask":
            raise ConfigError(f"A scheduler is only used with backend='dask', not {backend!r}.")
        if retries < 0 or timeout <= 0:
            raise ConfigError(f"retries must be >= 0 and timeout positive; got {retries} and {timeout}.")
        self.backend, self.n_workers, self.scheduler = backend, n_workers, scheduler
        self.retries, self.timeout, self.progress = int(retries), float(timeout), progress

    def __repr__(self) -> str:
        where = f", scheduler={self.scheduler!r}" if self.scheduler is not None else ""
        return f"TaskExecutor({self.backend!r}, n_workers={self.n_workers}{where})"

    def workers(self) -> int:
        """The number of local worker processes ``"processes"`` would use."""
        return int(self.n_workers) if self.n_workers is not None else self._cores()

    @staticmethod
    def _cores() -> int:
        """The machine's cores as joblib counts them (CPU affinity and container limits included)."""
        import joblib  # deferred: only the process backend needs joblib

        return max(1, int(joblib.cpu_count()))

    def map(self, func: Callable[[Task], Any], tasks: Iterable[Task], *, label: str = "simulation"
            ) -> Iterator[tuple[tuple[str, int], Any]]:
        """Run ``func(task)`` for every task and yield ``((scenario, rep), result)`` as each completes.

        Parameters
        ----------
        func : callable
            Takes a `Task`, returns something small that pickles. Defined at
            module level (not a lambda) for the process and Dask backends.
        tasks : iterable of Task
            Each with a distinct ``(scenario, rep)``.
        label : str, default "simulation"
            Names the work in progress lines.

        Yields
        ------
        tuple
            ``((scenario, rep), result)`` in completion order.

        Raises
        ------
        ModelError
            A task's worker died more than ``retries`` times.

        Examples
        --------
        >>> def square(task):
        ...     return task.rep ** 2
        >>> sorted(TaskExecutor(progress=False).map(square, make_tasks(["s"], reps=3, seed=0)))
        [(('s', 0), 0), (('s', 1), 1), (('s', 2), 4)]
        """
        tasks = list(tasks)
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            raise ConfigError("Two tasks have the same (scenario, rep); each replicate must be run once.")
        if not tasks:
            return
        progress = _Progress(len(tasks), self.progress, label)
        run = {"sequential": self._sequential, "processes": self._processes, "dask": self._dask}[self.backend]
        seen: set[tuple[str, int]] = set()
        try:
            for key, value in run(func, tasks):
                if key in seen:  # a task re-run after a worker was lost, whose first result arrived too
                    continue
                seen.add(key)
                progress.advance()
                yield key, value
        finally:
            progress.close()

    # ------------------------------------------------------------------------------ backends
    def _sequential(self, func, tasks):
        for task in tasks:
            yield _call(func, task)

    def _processes(self, func, tasks):
        from concurrent.futures import FIRST_COMPLETED, wait  # deferred: only the process backend waits on futures
        from concurrent.futures.process import BrokenProcessPool  # deferred: as the line above, only when needed

        from joblib.externals.loky import get_reusable_executor  # deferred: joblib/loky only for the process backend

        n = self.workers()
        pending = {t.key: t for t in tasks}  # not yet returned
        order = [t.key for t in tasks]
        attempts = dict.fromkeys(pending, 0)
        window = 4 * n  # tasks in flight: memory holds at most this many unread results
        while pending:
            executor = get_reusable_executor(max_workers=n, timeout=600,  # idle workers kept 10 min between studies
                                             env=thread_limits(n, self._cores()))  # BLAS threads share the cores
            queue = [k for k in order if k in pending]
            running: dict = {}
            broken: list = []
            while queue or running:
                while queue and len(running) < window:
                    key = queue.pop(0)
                    attempts[key] += 1
                    try:
                        running[executor.submit(_call, func, pending[key])] = key
                    except (BrokenProcessPool, RuntimeError):  # the pool broke while we were submitting
                        broken.append(key)
                        queue.clear()
                        break
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    key = running.pop(future)
                    try:
                        result_key, value = future.result()
                    except BrokenProcessPool:  # a worker died: run the task again on a fresh pool
                        broken.append(key)
                        continue
                    del pending[key]
                    yield result_key, value
            for key in broken:
                if attempts[key] > self.retries:
                    raise ModelError(
                        f"Task {key} was lost {attempts[key]} times (its worker process died each time); "
                        f"it may exhaust memory or crash the interpreter."
                    )

    def _client(self):
        """A connected Client, and whether we own it (and must close it)."""
        try:
            from dask.distributed import Client, LocalCluster  # deferred: dask is only needed for the Dask backend
        except ImportError as e:  # pragma: no cover - dask is a dependency, but may be stripped from a slim install
            raise ConfigError("backend='dask' needs dask and distributed: pip install 'dask[distributed]'.") from e
        if isinstance(self.scheduler, Client):
            return self.scheduler, None
        if self.scheduler is None:
            import dask  # deferred: as the line above, only when needed

            with dask.config.set({"distributed.scheduler.allowed-failures": self.retries}):
                cluster = LocalCluster(n_workers=self.workers(), threads_per_worker=1, processes=True,
                                       dashboard_address=None)
            return Client(cluster), cluster
        if not isinstance(self.scheduler, str):
            raise ConfigError(f"scheduler must be an address such as 'tcp://host:8786' or a Client; got {self.scheduler!r}.")
        try:
            client = Client(self.scheduler, timeout=f"{self.timeout}s")
        except (OSError, TimeoutError) as e:
            raise ConfigError(
                f"Cannot reach the Dask scheduler at {self.scheduler} within {self.timeout:g} s "
                f"({type(e).__name__}); start it with `dask scheduler` or check the address."
            ) from None
        return client, True

    def _dask(self, func, tasks):
        import uuid  # deferred: only Dask keys need a unique run id

        from dask.distributed import as_completed  # deferred: dask is only needed for the Dask backend

        client, owned = self._client()
        run_id = uuid.uuid4().hex[:12]
        try:
            futures = [
                client.submit(_call, func, t, key=f"ar-task-{run_id}-{_name_key(t.scenario)}-{t.rep}",
                              pure=False)
                for t in tasks
            ]
            for future in as_completed(futures):
                try:
                    key, value = future.result()
                except Exception as e:
                    if type(e).__name__ == "KilledWorker":
                        raise ModelError(f"A task killed its Dask worker too often (the scheduler's allowed failures): {e}") from None
                    raise
                future.release()
                yield key, value
        finally:
            if owned is not None:
                client.close()
                if owned is not True:
                    owned.close()


def run_tasks(func: Callable[[Task], Any], tasks: Iterable[Task], *, backend: str = "sequential",
              n_workers: int | None = None, scheduler=None, retries: int = 3, timeout: float = 10.0,
              progress: bool | None = None) -> dict[tuple[str, int], Any]:
    """Run ``func`` over the tasks and return every result keyed by ``(scenario, rep)``, in task order.

    Parameters
    ----------
    func : callable
        Takes a `Task`; defined at module level for the process and Dask backends.
    tasks : iterable of Task
        From `make_tasks`.
    backend, n_workers, scheduler, retries, timeout, progress
        As for `TaskExecutor`.

    Returns
    -------
    dict
        ``(scenario, rep) -> result``, ordered as the tasks, whatever order they finished in.

    Examples
    --------
    >>> def draw(task):
    ...     return round(float(task.rng().uniform()), 6)
    >>> out = run_tasks(draw, make_tasks(["a"], reps=2, seed=1), progress=False)
    >>> list(out) == [("a", 0), ("a", 1)]
    True
    """
    tasks = list(tasks)
    executor = TaskExecutor(backend, n_workers=n_workers, scheduler=scheduler, retries=retries, timeout=timeout,
                            progress=progress)
    got = dict(executor.map(func, tasks))
    return {t.key: got[t.key] for t in tasks}


def _apply_statistic(task: Task):
    statistic, resample = task.payload
    return statistic(resample)


def run_bootstrap(statistic: Callable[[np.ndarray], Any], resamples, *, backend: str = "sequential",
                  n_workers: int | None = None, scheduler=None) -> list:
    """Apply a statistic to each bootstrap resample through the runner; return the results in resample order.

    The resamples (row indices) are drawn by the caller, in its own order, so
    the results do not depend on the backend, and a bootstrap moved onto the
    runner gives the numbers it gave before.

    Parameters
    ----------
    statistic : callable
        Takes one resample (an integer index array) and returns anything (None
        for a resample the statistic cannot use). Defined at module level for
        the process and Dask backends.
    resamples : iterable of numpy.ndarray
        The row indices of each resample.
    backend, n_workers, scheduler
        As for `TaskExecutor` (sequential by default: a bootstrap inside a
        fit is usually small).

    Returns
    -------
    list
        One result per resample.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0, 3.0, 10.0])
    >>> rng = np.random.default_rng(0)
    >>> means = run_bootstrap(lambda idx: float(x[idx].mean()), [rng.integers(0, 4, 4) for _ in range(3)])
    >>> len(means)
    3
    """
    tasks = [Task("bootstrap", i, 0, (statistic, np.asarray(idx))) for i, idx in enumerate(resamples)]
    if not tasks:
        return []
    return list(run_tasks(_apply_statistic, tasks, backend=backend, n_workers=n_workers, scheduler=scheduler,
                          progress=False).values())
