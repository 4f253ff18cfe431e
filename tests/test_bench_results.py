"""``make bench`` merges its sections into ``benchmarks/results.md`` and keeps the sections written by hand."""

import doctest
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import _common  # noqa: E402


def test_merge_examples():
    assert doctest.testmod(_common, optionflags=doctest.ELLIPSIS).failed == 0


def test_a_bench_run_replaces_its_sections_and_keeps_the_record(tmp_path):
    results = tmp_path / "results.md"
    results.write_text("# Benchmarks\n\n- date: 1 Dec\n\n## Cox\n\nold table\n\n## Session 30 (lead)\n\nby hand\n")
    new = tmp_path / "results.md.tmp"
    new.write_text("# Benchmarks\n\n- date: 4 Dec\n\n## Start-up\n\n0.1 s\n\n## Cox\n\nnew table\n")
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "_common.py"), "merge", str(new), str(results)], check=True)
    assert results.read_text() == ("# Benchmarks\n\n- date: 4 Dec\n\n## Cox\n\nnew table\n\n## Session 30 (lead)\n\n"
                                   "by hand\n\n## Start-up\n\n0.1 s\n")
    assert not new.exists()
