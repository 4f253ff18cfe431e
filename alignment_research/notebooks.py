"""Execute the toolkit's notebooks (nbclient, kernels reused) and render them to HTML (nbconvert)."""

from __future__ import annotations

import asyncio
import base64
import html as _html
import importlib
import os
import queue
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from ._docs import fill_doc
from .errors import AlignmentResearchError


def _import_nbformat():
    """Import nbformat without compiling rfc3987_syntax's grammar (1 s of CPU, several seconds on a busy machine).

    nbformat imports jsonschema, which imports rfc3987_syntax when it is
    installed, to check the ``iri`` formats of a schema; the notebook schemas
    use no ``format`` at all, and nbformat passes no format checker. While
    jsonschema is first imported here the package reads as absent (jsonschema
    then leaves those two formats unchecked); afterwards it imports normally.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # an import of it raises ImportError, which jsonschema skips
        try:
            import jsonschema  # deferred: imported here only so that it loads without the grammar
        finally:
            if sys.modules.get("rfc3987_syntax", 0) is None:
                del sys.modules["rfc3987_syntax"]
    import nbformat as module  # deferred: imported through this function, see above

    return module


nbformat = _import_nbformat()

__all__ = ["execute_notebook", "execute_notebooks", "KernelPool", "render_html", "offline_html", "notebook_title", "output_tables", "output_figures",
           "export_outputs", "find_notebooks", "notebooks_dir", "import_renderers"]

#: Keys that papermill and Jupyter write with timestamps or durations; stripped so
#: executed notebooks are byte-stable and nbval compares only what matters.
_VOLATILE_METADATA = ("papermill", "execution")


def _kernel_manager(name: str):
    """A kernel manager that talks to its kernel over local IPC sockets, not TCP.

    ipykernel 7 prints "Kernel is running over TCP without encryption" for every
    TCP kernel; IPC sockets are local files (in the temporary folder, removed at
    shutdown), so the warning does not apply and users do not see it. Each
    kernel gets its own socket prefix (``name``), so kernels started together
    never pick the same files.
    """
    from jupyter_client.manager import AsyncKernelManager  # deferred: jupyter_client is only needed to execute a notebook

    prefix = os.path.join(tempfile.gettempdir(), f"alignment-research-kernel-{os.getpid()}-{name}")
    return AsyncKernelManager(kernel_name="python3", transport="ipc", ip=prefix)


def notebooks_dir() -> Path:
    """Return the repository's ``notebooks/`` folder (the package's sibling).

    Returns
    -------
    Path
        The folder holding the ``NN_topic.ipynb`` notebooks.

    Raises
    ------
    AlignmentResearchError
        When the package is not installed from a source checkout.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.notebooks.notebooks_dir().name
    'notebooks'
    """
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    if not folder.is_dir():
        raise AlignmentResearchError(
            f"No notebooks folder at {folder}. Install the toolkit from a source checkout "
            "(`make run` does) so the notebooks are available."
        )
    return folder


def find_notebooks(folder: str | Path | None = None) -> list[Path]:
    """Return the ``NN_topic.ipynb`` notebooks of a folder in reading order.

    Parameters
    ----------
    folder : str or Path, optional
        The folder to look in; the repository's ``notebooks/`` by default.

    Returns
    -------
    list of Path
        Notebooks named two digits, an underscore and a topic, sorted.

    Examples
    --------
    >>> import alignment_research as ar
    >>> [p.name for p in ar.notebooks.find_notebooks()][:1]  # doctest: +SKIP
    ['01_data_quality.ipynb']
    """
    folder = Path(folder) if folder is not None else notebooks_dir()
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _strip_volatile(nb) -> None:
    for key in _VOLATILE_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in _VOLATILE_METADATA:
            cell.metadata.pop(key, None)


#: Run silently in a new kernel: what a fresh kernel looks like (warning filters, plot settings, working folder),
#: kept on the shell so that every later notebook can start from it.
_BASELINE_CODE = """\
def _alignment_research_baseline():
    import os, sys, warnings
    import matplotlib
    rc = {k: v for k, v in matplotlib.rcParams.items() if k not in ("backend", "interactive")}  # set by the inline backend
    return {"filters": list(warnings.filters), "rc": rc,
            "cwd": os.getcwd(), "path": list(sys.path)}
get_ipython().alignment_research_baseline = _alignment_research_baseline()
del _alignment_research_baseline
"""

#: Run silently before each notebook in a reused kernel: an empty namespace, no figures, the baseline's warning
#: filters (which also forgets warnings already shown), plot settings, folder and path, and cell numbers from 1.
#: Imported modules stay loaded: that is the time saved.
_RESET_CODE = """\
get_ipython().run_line_magic("reset", "-f")
def _alignment_research_reset():
    import os, sys, warnings
    import matplotlib, matplotlib.pyplot
    shell = get_ipython()
    base = shell.alignment_research_baseline
    matplotlib.pyplot.close("all")
    warnings.filters[:] = base["filters"]
    warnings._filters_mutated()
    warnings.onceregistry.clear()
    matplotlib.rcParams.update(base["rc"])
    os.chdir(base["cwd"])
    sys.path[:] = base["path"]
    shell.execution_count = 1
_alignment_research_reset()
del _alignment_research_reset
"""


def _with_parameters(nb, parameters: dict):
    """Insert a cell assigning ``parameters`` after the cell tagged ``parameters`` (at the top if none)."""
    if not parameters:
        return nb
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    nb.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    return nb


def _kernel_environment(kernels: int = 1) -> dict:
    """The environment a notebook kernel starts with when ``kernels`` of them run at once.

    ``PYTHONHASHSEED=0`` (set ordering in a kernel does not change between
    runs), and BLAS/OpenMP thread pools that share the cores between the
    kernels: ``cores // kernels`` threads each, at least one
    (:func:`alignment_research.executors.thread_limits`, as the process pools
    get them). A thread count the user set in the environment is kept.

    Parameters
    ----------
    kernels : int, default 1
        Kernels running at the same time.

    Returns
    -------
    dict
        A copy of ``os.environ`` with those variables set.

    Examples
    --------
    >>> env = _kernel_environment(kernels=2)
    >>> env["PYTHONHASHSEED"]
    '0'
    """
    from .executors import available_cores, thread_limits  # deferred: executors loads numpy, not needed at import

    return {**thread_limits(kernels, available_cores()), **os.environ, "PYTHONHASHSEED": "0"}  # the user's own settings win


class _Lane:
    """One kernel that executes notebooks one after another, each starting from a fresh namespace."""

    def __init__(self, name: str, cwd: Path, kernels: int = 1):
        self.name, self.cwd, self.kernels = name, cwd, kernels
        self.km = self.kc = None
        self.used = False

    async def start(self) -> None:
        self.km = _kernel_manager(self.name)
        env = _kernel_environment(self.kernels)
        await self.km.start_kernel(cwd=str(self.cwd), env=env, extra_arguments=["--HistoryManager.hist_file=:memory:"])
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=120)
        await self._silently(_BASELINE_CODE)

    async def _silently(self, code: str) -> None:
        reply = await self.kc.execute_interactive(code, silent=True, store_history=False, timeout=120,
                                                  output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise AlignmentResearchError(
                f"The notebook kernel could not be prepared: {reply['content'].get('ename')}: "
                f"{reply['content'].get('evalue')}"
            )

    async def execute(self, path: Path, parameters: dict, output_path: Path) -> None:
        from nbclient import NotebookClient  # deferred: nbclient is only needed to execute a notebook
        from nbclient.exceptions import CellExecutionError  # deferred: as the line above

        if self.used:
            await self._silently(_RESET_CODE)
        self.used = True
        nb = _with_parameters(nbformat.read(path, as_version=4), parameters)
        client = NotebookClient(nb, km=self.km, kernel_name="python3", record_timing=False, timeout=None)
        client.kc = self.kc  # the lane's client: nbclient neither starts another nor stops this one
        try:
            await client.async_execute()
        except CellExecutionError as err:
            failed = next((c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                          None)
            self._save(nb, output_path)
            number = failed.get("execution_count") if failed is not None else "?"
            raise AlignmentResearchError(f"{path.name}: cell {number} failed with {err.ename}: {err.evalue}") from None
        self._save(nb, output_path)

    @staticmethod
    def _save(nb, output_path: Path) -> None:
        _strip_volatile(nb)
        output_path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output_path)

    async def close(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None and self.km.has_kernel:
            await self.km.shutdown_kernel(now=False)  # removes its connection and socket files too


#: Parameter text shared by :meth:`KernelPool.execute` and :func:`execute_notebooks` (see ``_docs.fill_doc``).
_EXECUTE_DOCS = dict(
    notebooks="notebooks : list of Path\n        The notebooks, in the order they should be started.",
    parameters=("parameters : dict of Path to dict, optional\n        Parameters per notebook, assigned in a cell after "
                "the one tagged\n        ``parameters`` (tagged ``injected-parameters``)."),
    output_dir="output_dir : str or Path\n        Where the executed copies are written, under the notebooks' names.",
    after=("after : callable, optional\n        Called as ``after(notebook, executed_path, seconds)`` in the worker\n"
           "        thread once a notebook has run (to render it while others still run)."),
    seconds="dict of Path to float\n        Seconds each notebook took to execute.",
    fresh_state=("A reused kernel starts every notebook from a fresh state: an empty\n    namespace, no open figures, the "
                 "warning filters, plot settings, working\n    folder and ``sys.path`` it had when it started, and cell "
                 "numbers from 1;\n    only imported modules stay loaded. A failing notebook stops the others\n"
                 "    from being started."),
    raises=("AlignmentResearchError\n        When a cell fails (the message names the notebook, the cell and\n"
            "        the error; the executed copy up to the failure is in\n        ``output_dir``), or a kernel could "
            "not start."),
)


@fill_doc(**_EXECUTE_DOCS)
class KernelPool:
    """Notebook kernels started ahead of the notebooks they will execute, each reused for several notebooks.

    :meth:`start` starts ``workers`` kernels at once, in threads, and each
    imports the modules named in ``imports``; :meth:`execute` then hands them
    the notebooks (starting them first if need be), each kernel taking the
    next one until none is left. A caller with other work first (``run``
    builds the analysis tables) starts the pool before it, so starting the
    kernels and their imports take no time of their own.
    {fresh_state}
    The state is the one the kernel had before ``imports``; what stays
    loaded is the time saved (a kernel start and ``import
    alignment_research`` per notebook). Use it as a context manager: leaving
    it shuts down kernels that were never given work (after an interrupt it
    does not wait for them).

    Parameters
    ----------
    workers : int
        Kernels running at once.
    cwd : str or Path
        Working folder of the kernels.
    reuse_kernels : bool, default True
        False starts a new kernel for every notebook.
    imports : tuple of str, optional
        Modules each kernel imports once started, after the state a notebook
        is reset to is recorded; no name is bound in the notebooks' namespace.

    Examples
    --------
    >>> from alignment_research.notebooks import KernelPool, find_notebooks
    >>> with KernelPool(2, cwd="notebooks", imports=("alignment_research",)) as pool:  # doctest: +SKIP
    ...     pool.start()  # the kernels start while the caller does other work
    ...     seconds = pool.execute(find_notebooks()[:2], output_dir="/tmp/run")
    """

    def __init__(self, workers: int, *, cwd: str | Path, reuse_kernels: bool = True, imports: tuple = ()):
        self.kernels, self.cwd = max(1, int(workers)), Path(cwd)
        self.reuse_kernels = reuse_kernels
        self.prepare = "".join(f"__import__('importlib').import_module({name!r})\n" for name in imports)
        self.todo: queue.Queue = queue.Queue()
        self.seconds: dict = {}
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.parameters: dict = {}
        self.output_dir: Path | None = None
        self.after = None
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the kernels (in threads; this returns at once). Idempotent."""
        if not self.threads:
            self.threads = [threading.Thread(target=self._work, args=(f"lane{i}",), daemon=True)
                            for i in range(self.kernels)]
            for thread in self.threads:
                thread.start()

    def __enter__(self) -> "KernelPool":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.stop.set()  # no notebook is started after an error
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.cancel()  # an interrupt returns at once: a notebook still running ends, then its kernel stops
        else:
            self.close()  # kernels still starting, or idle, shut down (they would print a warning on exit)

    async def _lane(self, name: str) -> "_Lane":
        lane = _Lane(name, self.cwd, kernels=self.kernels)
        await lane.start()
        if self.prepare:
            await lane._silently(self.prepare)
        return lane

    async def _lane_loop(self, name: str) -> None:
        lane = None
        try:
            lane = await self._lane(name)
            while not self.stop.is_set():
                nb = await asyncio.to_thread(self.todo.get)
                if nb is None or self.stop.is_set():
                    return
                if lane.used and not self.reuse_kernels:
                    await lane.close()
                    lane = await self._lane(name)
                t0 = time.perf_counter()
                await lane.execute(nb, self.parameters.get(nb, {}), self.output_dir / nb.name)
                self.seconds[nb] = time.perf_counter() - t0
                if self.after is not None:
                    self.after(nb, self.output_dir / nb.name, self.seconds[nb])
        finally:
            if lane is not None:
                await lane.close()

    def _work(self, name: str) -> None:
        try:
            asyncio.run(self._lane_loop(name))
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, raised there
            self.errors.append(error)
            self.stop.set()
            self.todo.put(None)  # another kernel waiting for work stops too

    @fill_doc(**_EXECUTE_DOCS)
    def execute(self, notebooks, *, parameters: dict | None = None, output_dir: str | Path, after=None) -> dict:
        """Execute the notebooks in the pool's kernels, in the order given; the kernels are shut down afterwards.

        Parameters
        ----------
        {notebooks}
        {parameters}
        {output_dir}
        {after}

        Returns
        -------
        {seconds}

        Raises
        ------
        {raises}
        """
        self.parameters, self.output_dir, self.after = parameters or {}, Path(output_dir), after
        self.start()
        for nb in notebooks:
            self.todo.put(Path(nb))
        self.close()
        if self.errors:
            raise self.errors[0]
        return self.seconds

    def close(self) -> None:
        """Let each kernel finish the notebooks it was given, then shut it down (idempotent)."""
        for _ in self.threads:
            self.todo.put(None)
        for thread in self.threads:
            thread.join()

    def cancel(self) -> None:
        """Start no further notebook; each kernel shuts down once its current one (if any) ends, without waiting."""
        self.stop.set()
        for _ in self.threads:
            self.todo.put(None)


@fill_doc(**_EXECUTE_DOCS)
def execute_notebooks(notebooks, *, parameters: dict | None = None, output_dir: str | Path, workers: int = 1,
                      cwd: str | Path | None = None, reuse_kernels: bool = True, after=None) -> dict:
    """Execute notebooks in parallel kernels, each kernel reused for several notebooks.

    ``workers`` kernels are started (a :class:`KernelPool`), and each takes
    the next notebook from the list until none is left, so list the longest
    first.
    {fresh_state}

    Parameters
    ----------
    {notebooks}
    {parameters}
    {output_dir}
    workers : int, default 1
        Kernels running at once (at most one per notebook).
    cwd : str or Path, optional
        Working folder of the kernels; the first notebook's folder by default.
    reuse_kernels : bool, default True
        False starts a new kernel for every notebook.
    {after}

    Returns
    -------
    {seconds}

    Raises
    ------
    {raises}

    Examples
    --------
    >>> import alignment_research as ar
    >>> seconds = ar.notebooks.execute_notebooks(ar.notebooks.find_notebooks()[:2], output_dir="/tmp/run",
    ...                                          workers=2)  # doctest: +SKIP
    """
    notebooks = [Path(p) for p in notebooks]
    if not notebooks:
        return {}
    cwd = Path(cwd) if cwd is not None else notebooks[0].parent
    with KernelPool(min(int(workers), len(notebooks)), cwd=cwd, reuse_kernels=reuse_kernels) as pool:
        return pool.execute(notebooks, parameters=parameters, output_dir=output_dir, after=after)


def execute_notebook(
    path: str | Path,
    *,
    parameters: dict | None = None,
    output_path: str | Path | None = None,
    cwd: str | Path | None = None,
) -> Path:
    """Execute a notebook top to bottom in a new kernel and save it with outputs.

    Parameters
    ----------
    path : str or Path
        The notebook to run.
    parameters : dict, optional
        Values assigned after the cell tagged ``parameters`` (e.g. ``{"study_dir": "/data/x"}``).
    output_path : str or Path, optional
        Where to save the executed notebook; in place by default.
    cwd : str or Path, optional
        Working directory of the kernel; the notebook's folder by default.

    Returns
    -------
    Path
        The executed notebook.

    Raises
    ------
    AlignmentResearchError
        When a cell fails; the message names the notebook and the error.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.notebooks.execute_notebook("notebooks/01_data_quality.ipynb",
    ...                     parameters={"study_dir": "../data/sample"})  # doctest: +SKIP
    """
    path = Path(path)
    output_path = Path(output_path) if output_path is not None else path
    cwd = Path(cwd) if cwd is not None else path.parent
    with tempfile.TemporaryDirectory(prefix="ar-notebook-") as tmp:
        try:
            execute_notebooks([path], parameters={path: parameters or {}}, output_dir=tmp, cwd=cwd)
        finally:
            executed = Path(tmp) / path.name
            if executed.exists():
                output_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(executed, output_path)
    return output_path


def notebook_title(nb) -> str | None:
    """Return the text of a notebook's first level-1 markdown heading (None when it has none).

    Parameters
    ----------
    nb : NotebookNode or str or Path
        A notebook, or the path of one.

    Returns
    -------
    str or None

    Examples
    --------
    >>> notebook_title("notebooks/04_retention.ipynb")
    'Retention: who stays, and do aligned goals or a developed leader change that?'
    """
    if not hasattr(nb, "cells"):
        nb = nbformat.read(nb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


#: Blocks of nbconvert's lab template that load scripts from a CDN (require.js, MathJax,
#: mermaid). The toolkit's notebooks use none of them, and a report must open offline.
_NETWORK_BLOCKS = (
    re.compile(r'<script[^>]*\ssrc="https?://[^"]*"[^>]*>\s*</script>', re.I),
    re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S),
    re.compile(r'<script type="module">(?:(?!</script>).)*?import\("https?://.*?</script>\s*'
               r"(?:<!-- End of mermaid configuration -->)?", re.S),
)

#: The footer's look: small, grey, below the last cell.
_FOOTER_STYLE = (
    "<style>.ar-footer{max-width:1200px;margin:2.5rem auto 1.5rem;padding:.8rem 1rem 0;border-top:1px solid #ddd;"
    "font:0.8rem system-ui,sans-serif;color:#666}</style>"
)


def offline_html(body: str) -> str:
    """Remove every script that nbconvert's template would load from the network.

    Parameters
    ----------
    body : str
        An HTML page rendered by nbconvert.

    Returns
    -------
    str
        The page without the require.js, MathJax and mermaid loaders; figures are
        embedded already, so the page needs no network to show everything.

    Examples
    --------
    >>> offline_html('<head><script src="https://cdn.example/require.js"></script></head>')
    '<head></head>'
    """
    for block in _NETWORK_BLOCKS:
        body = block.sub("", body)
    return body


#: The modules that rendering a page imports on first use: nbconvert's exporter, and IPython's lexers and input
#: transformer, which nbconvert imports lazily while it highlights code.
RENDER_MODULES = ("nbconvert", "IPython.lib.lexers", "IPython.core.inputtransformer2")


def import_renderers() -> tuple[str, ...]:
    """Import the modules that rendering HTML imports lazily, in the calling thread.

    A module that one thread is still importing is visible, half initialised, to
    every other thread in ``sys.modules``. matplotlib checks ``IPython.version_info``
    there whenever it makes its first figure, so a figure drawn in one thread
    while another renders its first page can fail with "partially initialized
    module 'IPython'". Call this before starting threads that draw figures while
    others render pages (:func:`~alignment_research.run.run_study` does).

    Returns
    -------
    tuple of str
        The modules imported (those not installed are left out).

    Examples
    --------
    >>> from alignment_research.notebooks import import_renderers
    >>> "nbconvert" in import_renderers()
    True
    """
    done = []
    for name in RENDER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # IPython is optional for nbconvert; without it nothing imports it later either
            continue
        done.append(name)
    return tuple(done)


#: Each thread's HTML exporters (with and without code), reused: nbconvert loads and compiles its templates per exporter.
_EXPORTERS = threading.local()


def _html_exporter(no_input: bool):
    """This thread's HTML exporter showing code or not (nbconvert's own command line reuses one for many notebooks)."""
    from nbconvert import HTMLExporter  # deferred: nbconvert takes seconds to import; only rendering HTML needs it

    made = _EXPORTERS.__dict__.setdefault("made", {})
    if no_input not in made:
        exporter = HTMLExporter(template_name="lab", embed_images=True)
        if no_input:
            exporter.exclude_input = True
            exporter.exclude_input_prompt = True
            exporter.exclude_output_prompt = True
        made[no_input] = exporter
    return made[no_input]


def render_html(notebook: str | Path, html_path: str | Path, *, no_input: bool = False,
                title: str | None = None, footer: str | None = None) -> Path:
    """Render an executed notebook to a self-contained HTML file that opens offline.

    Figures are embedded, nothing is loaded from the network, the cell that
    papermill injects with the run's parameters (local paths) is left out, and
    the page carries a title and, when given, a footer.

    Parameters
    ----------
    notebook : str or Path
        An executed notebook.
    html_path : str or Path
        The HTML file to write.
    no_input : bool, default False
        Hide all code (for readers of findings, not code).
    title : str, optional
        The page title (the browser tab, bookmarks, a printed PDF's header);
        the notebook's first heading by default.
    footer : str, optional
        A line at the foot of the page (study, window, date, toolkit version).

    Returns
    -------
    Path
        The HTML file.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.notebooks.render_html("notebooks/06_leadership_brief.ipynb", "reports/brief.html",
    ...                no_input=True, title="Sample study: leadership brief")  # doctest: +SKIP
    """
    exporter = _html_exporter(no_input)
    nb = nbformat.read(notebook, as_version=4)
    # papermill's injected cell holds the run's parameters, absolute local paths among them
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    title = title or notebook_title(nb) or Path(notebook).stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = offline_html(body)
    if footer:
        body = body.replace("</body>", f'{_FOOTER_STYLE}<footer class="ar-footer">{_html.escape(footer)}</footer>\n</body>', 1)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path



def _notebook(nb):
    return nb if hasattr(nb, "cells") else nbformat.read(nb, as_version=4)


def _numbered_code_cells(nb):
    """Code cells with their number: the execution count a report shows as ``[n]:``, else the position."""
    cells = [c for c in _notebook(nb).cells if c.cell_type == "code"]
    return [(c.get("execution_count") or i, c) for i, c in enumerate(cells, start=1)]


def _outputs_of_type(nb, mime: str) -> list[tuple[int, str]]:
    """Every output of one MIME type, joined into one string, with the number of its code cell."""
    out = []
    for number, cell in _numbered_code_cells(nb):
        for output in cell.get("outputs", []):
            value = output.get("data", {}).get(mime)
            if value:
                out.append((number, "".join(value) if isinstance(value, list) else value))
    return out


def output_tables(nb) -> list[tuple[int, "pd.DataFrame"]]:
    """Return every table a notebook shows: ``(cell number, table)`` in reading order.

    A table is an HTML ``<table>`` in a code cell's output (a DataFrame, a
    model's summary), read as the reader sees it: every cell as text.

    Parameters
    ----------
    nb : NotebookNode or str or Path
        An executed notebook, or its path.

    Returns
    -------
    list of (int, DataFrame)
        The number of the code cell (its execution count, shown as ``[n]:``
        in the analyst reports), and the table.

    Examples
    --------
    >>> tables = output_tables("notebooks/04_retention.ipynb")
    >>> len(tables) > 0 and all(len(t) for _, t in tables)
    True
    """
    from .privacy import read_html_tables  # deferred: lxml is only needed to read tables from HTML

    return [(number, table) for number, html in _outputs_of_type(nb, "text/html")
            for table in read_html_tables(html) if len(table.columns)]


def output_figures(nb) -> list[tuple[int, bytes]]:
    """Return every PNG figure a notebook shows: ``(cell number, PNG bytes)`` in reading order.

    Parameters
    ----------
    nb : NotebookNode or str or Path
        An executed notebook, or its path.

    Returns
    -------
    list of (int, bytes)

    Examples
    --------
    >>> figures = output_figures("notebooks/06_leadership_brief.ipynb")
    >>> all(png[:8] == b"\\x89PNG\\r\\n\\x1a\\n" for _, png in figures)
    True
    """
    return [(number, base64.b64decode(png)) for number, png in _outputs_of_type(nb, "image/png")]


def export_outputs(notebook, folder, *, figures: bool = False) -> list[Path]:
    """Write a notebook's tables as CSV (``tables/``) and, if asked, its figures as PNG (``figures/``).

    Files are named ``<notebook>_cell<NN>[_<k>]``, so each can be traced to
    the cell of the report that shows it.

    Parameters
    ----------
    notebook : str or Path
        An executed notebook.
    folder : str or Path
        The output folder (``tables/`` and ``figures/`` are made under it).
    figures : bool, default False
        Also write every figure as a PNG file.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> files = export_outputs("notebooks/04_retention.ipynb", tempfile.mkdtemp())
    >>> files[0].parent.name, files[0].suffix
    ('tables', '.csv')
    """
    notebook, folder = Path(notebook), Path(folder)
    nb = _notebook(notebook)
    stem = notebook.stem
    written = []

    def name(number: int, k: int, count: int) -> str:
        return f"{stem}_cell{number:02d}" + (f"_{k}" if count > 1 else "")

    for kind, items, suffix in (("tables", output_tables(nb), ".csv"),
                                ("figures", output_figures(nb) if figures else [], ".png")):
        per_cell: dict[int, int] = {}
        for number, _ in items:
            per_cell[number] = per_cell.get(number, 0) + 1
        seen: dict[int, int] = {}
        for number, item in items:
            seen[number] = seen.get(number, 0) + 1
            path = folder / kind / (name(number, seen[number], per_cell[number]) + suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".csv":
                item.to_csv(path, index=False)
            else:
                path.write_bytes(item)
            written.append(path)
    return written
