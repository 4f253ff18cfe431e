"""Execute the toolkit's notebooks (papermill) and render them to HTML (nbconvert)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat

from .errors import AlignmentResearchError

__all__ = ["execute_notebook", "render_html", "find_notebooks", "notebooks_dir"]

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


def render_html(notebook: str | Path, html_path: str | Path, *, no_input: bool = False) -> Path:
    """Render an executed notebook to a self-contained HTML file (figures embedded).

    Parameters
    ----------
    notebook : str or Path
        An executed notebook.
    html_path : str or Path
        The HTML file to write.
    no_input : bool, default False
        Hide all code (for readers of findings, not code).

    Returns
    -------
    Path
        The HTML file.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.notebooks.render_html("notebooks/06_leadership_brief.ipynb", "reports/brief.html",
    ...                no_input=True)  # doctest: +SKIP
    """
    from nbconvert import HTMLExporter  # deferred: nbconvert takes seconds to import; only rendering HTML needs it

    exporter = HTMLExporter(template_name="lab", embed_images=True)
    if no_input:
        exporter.exclude_input = True
        exporter.exclude_input_prompt = True
        exporter.exclude_output_prompt = True
    nb = nbformat.read(notebook, as_version=4)
    body, _ = exporter.from_notebook_node(nb)
    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(body, encoding="utf-8")
    return html_path

