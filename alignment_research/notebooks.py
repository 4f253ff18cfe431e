"""Execute the toolkit's notebooks (papermill) and render them to HTML (nbconvert)."""

from __future__ import annotations

import base64
import html as _html
import os
import re
import tempfile
from pathlib import Path

import nbformat

from .errors import AlignmentResearchError

__all__ = ["execute_notebook", "render_html", "offline_html", "notebook_title", "output_tables", "output_figures",
           "export_outputs", "find_notebooks", "notebooks_dir"]

#: Keys that papermill and Jupyter write with timestamps or durations; stripped so
#: executed notebooks are byte-stable and nbval compares only what matters.
_VOLATILE_METADATA = ("papermill", "execution")


def _kernel_manager_class():
    """A kernel manager that talks to the kernel over local IPC sockets, not TCP.

    ipykernel 7 prints "Kernel is running over TCP without encryption" for every
    TCP kernel; IPC sockets are local files (in the temporary folder, removed at
    shutdown), so the warning does not apply and users do not see it.
    """
    from jupyter_client.manager import AsyncKernelManager  # deferred: jupyter_client is only needed to execute a notebook
    from traitlets import Unicode  # deferred: traitlets comes with jupyter_client, only to execute a notebook

    class _LocalKernelManager(AsyncKernelManager):
        transport = Unicode("ipc")
        ip = Unicode(os.path.join(tempfile.gettempdir(), f"alignment-research-kernel-{os.getpid()}"))

    return _LocalKernelManager


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


def execute_notebook(
    path: str | Path,
    *,
    parameters: dict | None = None,
    output_path: str | Path | None = None,
    cwd: str | Path | None = None,
) -> Path:
    """Execute a notebook top to bottom with papermill and save it with outputs.

    Parameters
    ----------
    path : str or Path
        The notebook to run.
    parameters : dict, optional
        Values injected after the cell tagged ``parameters`` (e.g. ``{"study_dir": "/data/x"}``).
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
    import papermill as pm  # deferred: papermill takes seconds to import; only executing a notebook needs it

    path = Path(path)
    output_path = Path(output_path) if output_path is not None else path
    cwd = Path(cwd) if cwd is not None else path.parent
    env_before = os.environ.get("PYTHONHASHSEED")
    os.environ["PYTHONHASHSEED"] = "0"
    try:
        pm.execute_notebook(
            str(path),
            str(output_path),
            parameters=parameters or {},
            cwd=str(cwd),
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
            kernel_manager_class=_kernel_manager_class(),
        )
    except pm.PapermillExecutionError as err:
        raise AlignmentResearchError(
            f"{path.name}: cell {err.exec_count} failed with {err.ename}: {err.evalue}"
        ) from None
    finally:
        if env_before is None:
            os.environ.pop("PYTHONHASHSEED", None)
        else:
            os.environ["PYTHONHASHSEED"] = env_before
    nb = nbformat.read(output_path, as_version=4)
    _strip_volatile(nb)
    nbformat.write(nb, output_path)
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
    from nbconvert import HTMLExporter  # deferred: nbconvert takes seconds to import; only rendering HTML needs it

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    if no_input:
        exporter.exclude_input = True
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
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
    from .privacy import read_html_tables  # deferred: bs4 is only needed to read tables from HTML

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
