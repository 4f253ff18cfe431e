"""Executing notebooks in reused kernels: each notebook sees what a fresh kernel would show it (issue 12).

``run`` starts one kernel per worker and executes several notebooks in each,
to pay the kernel start and ``import alignment_research`` once per worker. A
notebook must not see anything an earlier one left behind: variables, open
figures, warning filters, warnings already shown, plot settings, the working
folder, cell numbers. Each check below runs a notebook that changes all of
that, then one that looks, in the same kernel, and compares the second with
the same notebook executed alone in a new kernel.
"""

import nbformat
import pytest

from alignment_research.errors import AlignmentResearchError
from alignment_research.notebooks import execute_notebook, execute_notebooks

#: Changes everything a later notebook could notice.
MESSY = [
    "x = 1",  # the parameters cell
    "import os, warnings\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
    "warnings.simplefilter('ignore', UserWarning)\nmatplotlib.rcParams['figure.dpi'] = 33\n"
    "secret = 42\nfig = plt.figure()\nos.chdir('/')",
    "warnings.warn('shown once')",
    "x",
]

#: Looks at it all: names, a warning, plot settings, folder, a figure shown, a parameter.
LOOKS = [
    "x = 1",
    "import os, warnings\nimport matplotlib\nimport matplotlib.pyplot as plt\n"
    "('secret' in dir(), 'fig' in dir(), len(plt.get_fignums()), matplotlib.rcParams['figure.dpi'],"
    " os.path.basename(os.getcwd()))",
    "warnings.warn('shown once')",
    "plt.plot([0, 1], [1, 0]);",
    "x",
]


def _notebook(path, sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)
    return path


def _seen(path):
    """What each code cell showed: its number, and each output's kind, text and MIME types."""
    nb = nbformat.read(path, as_version=4)
    return [(c.execution_count, [(o.output_type, o.get("name"), o.get("text", "").split(":", 2)[-1],
                                  o.get("data", {}).get("text/plain"), sorted(o.get("data", {})))
                                 for o in c.outputs])
            for c in nb.cells if c.cell_type == "code"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    (folder / "work").mkdir()
    messy, looks = _notebook(folder / "a_messy.ipynb", MESSY), _notebook(folder / "b_looks.ipynb", LOOKS)
    seconds = execute_notebooks([messy, looks], parameters={messy: {"x": 7}, looks: {"x": 8}},
                                output_dir=folder / "reused", workers=1, cwd=folder / "work")
    alone = execute_notebook(looks, parameters={"x": 8}, output_path=folder / "alone.ipynb", cwd=folder / "work")
    return folder, seconds, alone


def test_a_notebook_in_a_reused_kernel_shows_what_it_shows_alone(executed):
    folder, _, alone = executed
    reused = _seen(folder / "reused" / "b_looks.ipynb")
    assert reused == _seen(alone)
    looked = reused[2][1][0][3]
    assert looked == "(False, False, 0, 100.0, 'work')"  # nothing left by the first notebook
    assert [n for n, _ in reused] == [1, 2, 3, 4, 5, 6]  # cell numbers from 1 again (the injected cell is 2)
    assert reused[3][1][0][:2] == ("stream", "stderr") and "shown once" in reused[3][1][0][2]  # shown again
    assert "image/png" in reused[4][1][0][4]  # the figure is drawn: the inline backend still works
    assert reused[5][1][0][3] == "8"  # the parameter injected for this notebook


def test_parameters_go_in_a_tagged_cell_after_the_parameters_cell(executed):
    folder, seconds, _ = executed
    nb = nbformat.read(folder / "reused" / "a_messy.ipynb", as_version=4)
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    assert nb.cells[1].source == "# Parameters\nx = 7\n"
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "7"
    assert sorted(p.name for p in seconds) == ["a_messy.ipynb", "b_looks.ipynb"]
    assert all(s > 0 for s in seconds.values())
    assert "papermill" not in nb.metadata and "execution" not in nb.cells[2].metadata


def test_a_failing_cell_names_the_notebook_and_cell_and_stops_the_rest(tmp_path):
    failing = _notebook(tmp_path / "a_fails.ipynb", ["x = 1", "1 / 0", "x"])
    later = _notebook(tmp_path / "b_later.ipynb", ["x = 1"])
    with pytest.raises(AlignmentResearchError, match=r"a_fails\.ipynb: cell 2 failed with ZeroDivisionError"):
        execute_notebooks([failing, later], output_dir=tmp_path / "out", workers=1, cwd=tmp_path)
    assert (tmp_path / "out" / "a_fails.ipynb").is_file()  # the copy up to the failure, for debugging
    assert not (tmp_path / "out" / "b_later.ipynb").exists()


def test_kernels_running_together_share_the_cores_blas_threads(monkeypatch):
    """Two kernels on two cores get one BLAS thread each (an oversubscribed OpenBLAS spins); the user's choice stays."""
    from alignment_research import executors, notebooks

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(executors, "available_cores", lambda: 2)
    env = notebooks._kernel_environment(kernels=2)
    assert (env["OPENBLAS_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OMP_NUM_THREADS"]) == ("1", "1", "3")
    assert env["PYTHONHASHSEED"] == "0"
    monkeypatch.setattr(executors, "available_cores", lambda: 8)
    assert notebooks._kernel_environment(kernels=2)["OPENBLAS_NUM_THREADS"] == "4"


def test_a_pool_started_ahead_imports_the_modules_without_binding_names(tmp_path):
    """``run`` starts the kernels before cleaning; their imports must not show in any notebook's namespace."""
    from alignment_research.notebooks import KernelPool

    probe = "import sys\n('colorsys' in sys.modules, 'colorsys' in dir(), 'importlib' in dir())"
    first = _notebook(tmp_path / "a_first.ipynb", ["x = 1", probe])
    second = _notebook(tmp_path / "b_second.ipynb", ["x = 1", probe])
    with KernelPool(1, cwd=tmp_path, imports=("colorsys",)) as pool:
        seconds = pool.execute([first, second], output_dir=tmp_path / "out")
    assert sorted(p.name for p in seconds) == ["a_first.ipynb", "b_second.ipynb"]
    for name in ("a_first.ipynb", "b_second.ipynb"):
        shown = _seen(tmp_path / "out" / name)
        assert shown[-1][1][0][3] == "(True, False, False)"  # imported, yet nothing bound


def test_a_pool_left_without_work_shuts_its_kernels_down(tmp_path):
    """A run that stops while cleaning (bad input) leaves no kernel behind."""
    from alignment_research.notebooks import KernelPool

    with KernelPool(2, cwd=tmp_path) as pool:
        pool.start()
    assert len(pool.threads) == 2 and all(not thread.is_alive() for thread in pool.threads)
    assert pool.errors == [] and pool.seconds == {}


def test_a_pool_left_by_an_error_starts_no_notebook_and_an_interrupt_does_not_wait(tmp_path):
    """An error shuts the started kernels down before it reaches the caller; Ctrl-C returns at once."""
    from alignment_research.notebooks import KernelPool

    never = _notebook(tmp_path / "never.ipynb", ["x = 1"])
    with pytest.raises(ValueError, match="bad input"):
        with KernelPool(1, cwd=tmp_path) as pool:
            pool.start()
            pool.todo.put(never)  # queued before the error: still not executed
            raise ValueError("bad input")
    assert pool.stop.is_set() and pool.seconds == {} and pool.errors == []
    assert not any(thread.is_alive() for thread in pool.threads)  # waited for: no kernel outlives the call
    with pytest.raises(KeyboardInterrupt):
        with KernelPool(1, cwd=tmp_path) as pool:
            pool.start()
            raise KeyboardInterrupt
    assert pool.stop.is_set()
    for thread in pool.threads:
        thread.join(timeout=120)  # not waited for by the call: the kernel stops by itself once started
        assert not thread.is_alive()


def test_a_pool_never_started_has_no_kernel(tmp_path):
    """``run`` starts the kernels only once the study passed validation: bad input starts none."""
    from alignment_research.notebooks import KernelPool

    with KernelPool(2, cwd=tmp_path) as pool:
        pass
    assert pool.threads == []
