"""A pytest plugin for ``bench_tests.py``: the CPU and wall seconds of every test file, per process.

Loaded with ``-p _file_cpu`` (``benchmarks/`` on ``PYTHONPATH``); under pytest-xdist every worker loads
it. Each test's setup, call and teardown count towards its file (module fixtures are built in the setup
of the file's first test and torn down after its last), CPU being the user + system time of the process
and of the children it waited for (notebook kernels, process pools). With ``FILE_CPU_OUT=PREFIX`` in the
environment each process writes ``PREFIX.<worker>.json``: ``{"cpu": {file: s}, "wall": {file: s}}``.
"""

from __future__ import annotations

import json
import os
import resource
import time

import pytest

_cpu: dict[str, float] = {}
_wall: dict[str, float] = {}


def _cpu_seconds() -> float:
    """User + system seconds of this process and of its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu, wall = _cpu_seconds(), time.perf_counter()
    yield
    name = item.nodeid.split("::", 1)[0]
    _cpu[name] = _cpu.get(name, 0.0) + _cpu_seconds() - cpu
    _wall[name] = _wall.get(name, 0.0) + time.perf_counter() - wall


def pytest_sessionfinish(session):
    prefix = os.environ.get("FILE_CPU_OUT")
    if prefix:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{prefix}.{worker}.json", "w") as fh:
            json.dump({"cpu": _cpu, "wall": _wall}, fh)
