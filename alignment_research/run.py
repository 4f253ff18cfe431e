"""The main job: validate and clean a study, execute every notebook on it, render privacy-checked HTML reports."""

from __future__ import annotations

import ast
import datetime
import hashlib
import html as _html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import __version__
from .cache import cache_is_current, cache_lock, has_stored_results, read_clean_cache, study_fingerprint, write_clean_cache
from .config import load_config
from .errors import AlignmentResearchError, DataContractError, PrivacyError
from .load import load_study, outside_sources
from .privacy import prepare_search, scan_outputs

__all__ = ["run_study", "RunResult", "default_out_dir", "default_cache_dir", "sample_study_dir", "missing_tables", "NOTEBOOK_NEEDS"]

#: Notebooks whose stem contains this are for leadership: rendered without code.
BRIEF_MARK = "brief"

#: Raw columns that hold names or birth dates (extra vendor columns); their values are searched in reports.
_NAME_COLUMNS = re.compile(r"^(first_?name|last_?name|full_?name|surname|given_?name|name|employee_?name|manager_?name)$", re.I)
_BIRTH_COLUMNS = re.compile(r"^(birth_?date|date_?of_?birth|dob)$", re.I)


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_study` wrote and how long each stage took.

    Attributes
    ----------
    out_dir : Path
        The folder holding the reports.
    index : Path
        ``index.html``, linking every report.
    reports : pandas.DataFrame
        One row per notebook: ``notebook``, ``title``, ``html``, ``no_input``, ``seconds``.
    timings : pandas.DataFrame
        One row per stage: ``stage``, ``seconds``.
    counts : pandas.DataFrame
        Rows in, out and quarantined per table (``CleanStudy.counts``).
    """

    out_dir: Path
    index: Path
    reports: pd.DataFrame
    timings: pd.DataFrame
    counts: pd.DataFrame


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def sample_study_dir() -> Path:
    """Return the bundled sample study folder (``data/sample/`` of the checkout).

    Returns
    -------
    Path
        The folder; it may not exist in an installation without the repository.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.run.sample_study_dir().parts[-2:]
    ('data', 'sample')
    """
    return _repo_root() / "data" / "sample"


def _is_sample(study_dir: Path) -> bool:
    try:
        return study_dir.resolve() == sample_study_dir().resolve()
    except OSError:  # pragma: no cover
        return False


def _folder_name(text: str) -> str:
    """A study name as a folder name: letters, digits, ``-`` and ``_``; other runs become ``_``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", str(text)).strip("_")
    return name or "study"


def default_out_dir(study_dir) -> Path:
    """Return where reports of a study go when no folder is given: ``./reports/<study name>``.

    The folder is under the current directory, named after ``name:`` in the
    study's ``study.yaml`` (the folder's own name when the file cannot be
    read), so running the toolkit from elsewhere never writes into its own
    checkout. Inside the checkout ``/reports/`` is ignored by git, and ``run``
    warns when a real study's reports would land in a tracked folder.

    Parameters
    ----------
    study_dir : str or Path
        The study folder.

    Returns
    -------
    Path
        ``<current directory>/reports/<study name>``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.run.default_out_dir("data/sample").parts[-2:]
    ('reports', 'simulated')
    """
    study_dir = Path(study_dir)
    try:
        name = load_config(study_dir / "study.yaml").name
    except (AlignmentResearchError, OSError):
        name = study_dir.resolve().name
    return Path.cwd() / "reports" / _folder_name(name)


def _warn_if_tracked(out_dir: Path) -> None:
    """Warn when reports of a real study would land in a folder git does not ignore."""
    root = _repo_root()
    try:
        out_dir.resolve().relative_to(root)
    except ValueError:
        return  # outside the checkout: not our repository's business
    if not (root / ".git").exists() or shutil.which("git") is None:
        return
    probe = out_dir.resolve() / "index.html"
    done = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", str(probe)], capture_output=True)
    if done.returncode == 1:
        warnings.warn(
            f"Reports of a study other than the sample are being written to {out_dir}, which git does not ignore. "
            "Use --out private_reports/<name> (ignored) so reports from real data never enter the repository.",
            UserWarning,
            stacklevel=3,
        )


def _select_notebooks(notebooks) -> list[Path]:
    from .notebooks import find_notebooks, notebooks_dir  # deferred: nbformat takes seconds to import; only running notebooks needs it

    folder = notebooks_dir()
    available = find_notebooks(folder)
    if notebooks is None:
        if not available:
            raise AlignmentResearchError(f"No NN_topic.ipynb notebooks in {folder}; nothing to run.")
        return available
    chosen = []
    for item in [notebooks] if isinstance(notebooks, (str, Path)) else notebooks:
        p = Path(item)
        if p.suffix == ".ipynb" and p.exists():
            chosen.append(p.resolve())
            continue
        hits = [nb for nb in available if nb.stem == p.stem or nb.stem.startswith(f"{p.stem}_") or nb.name == p.name]
        if not hits:
            raise AlignmentResearchError(
                f"No notebook {item!r} in {folder}; available: {[nb.stem for nb in available]}."
            )
        chosen.extend(hits)
    return chosen


#: Tables each notebook needs beyond ``employees`` (only ``employees`` is required by the
#: data contract); a notebook whose tables the study lacks is skipped and listed as such.
NOTEBOOK_NEEDS = {
    "01": (),
    "02": ("goals", "surveys"),
    "03": ("goals", "surveys", "reviews"),
    "04": ("goals", "surveys", "reviews"),
    "05": ("goals", "surveys", "reviews", "programs"),
    "06": ("goals", "surveys", "reviews", "programs"),
    "07": ("job_history", "reviews", "programs"),
    "08": ("feedback", "programs"),  # the scorecard itself never needs more than employees; two diagnostic cells do
}


def missing_tables(notebook: Path, tables: dict) -> list[str]:
    """Return the tables a notebook needs that the cleaned study lacks (empty or absent).

    Parameters
    ----------
    notebook : Path
        A ``NN_topic.ipynb`` notebook.
    tables : dict of str to DataFrame
        The clean tables (``CleanStudy.tables``).

    Returns
    -------
    list of str
        Names of the needed tables with no rows; empty when the notebook can run.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> missing_tables(Path("03_engagement.ipynb"), {"employees": pd.DataFrame({"a": [1]})})
    ['goals', 'surveys', 'reviews']
    """
    needs = NOTEBOOK_NEEDS.get(notebook.stem[:2], ("goals", "surveys", "reviews", "programs"))
    return [t for t in needs if t not in tables or tables[t] is None or len(tables[t]) == 0]


def _declared_parameters(path: Path) -> set[str]:
    """Names assigned in a notebook's ``parameters`` cell (a notebook is passed no other)."""
    import nbformat  # deferred: nbformat takes seconds to import; only reading a notebook needs it

    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    return set()


def _title(path: Path) -> str:
    from .notebooks import notebook_title  # deferred: nbformat takes seconds to import; only reading a notebook needs it

    return notebook_title(path) or path.stem.split("_", 1)[-1].replace("_", " ").capitalize()


def _page_footer(config) -> str:
    """The line at the foot of every report: study, window, generation date, toolkit version."""
    today = datetime.date.today()
    return (f"{config.name} · observation window {config.window.start:%Y-%m-%d} to {config.window.end:%Y-%m-%d}"
            f" · generated {today:%Y-%m-%d} · alignment-research {__version__}")


def _personal_values(study, cleaned=None) -> dict:
    """Collect ids, names and birth dates of the raw study (and the clean tables' pseudonyms), to search for them."""
    ids: set = set()
    names: set[str] = set()
    births: list = []
    for table in study.tables.values():
        for col in table.columns:
            key = re.sub(r"[\s\-.]+", "_", str(col).strip())
            if col in {"employee_id", "manager_id", "owner_id", "giver_id"}:
                ids |= set(table[col].dropna().tolist())
            elif _NAME_COLUMNS.match(key):
                names |= {str(v).strip() for v in table[col].dropna()}
            elif _BIRTH_COLUMNS.match(key):
                births.extend(table[col].dropna().tolist())
    if cleaned is not None and cleaned.config.pseudonymise:  # a pseudonym is an individual's id too
        for table in cleaned.tables.values():
            for col in {"employee_id", "manager_id", "owner_id", "giver_id"} & set(table.columns):
                ids |= set(table[col].dropna().tolist())
    return {"ids": ids, "names": names, "birth_dates": births}


class _Stages:
    """Time stages; show a rich progress bar on stderr when wanted."""

    def __init__(self, total: int, show: bool, lines: bool = False):
        self.rows: list[dict] = []
        self.show = show
        self.lines = lines and not show  # one plain line per stage, for logs and pipes
        self.progress = None
        self.total = total
        self.lock = threading.Lock()  # notebooks report from their worker threads

    @contextmanager
    def running(self):
        if self.show:
            from rich.console import Console  # deferred: rich is only needed when a progress bar is shown
            from rich.progress import (  # deferred: as above, only for a progress bar
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            with self.progress:
                self.task = self.progress.add_task("run", total=self.total)
                yield self
        else:
            yield self

    @contextmanager
    def stage(self, name: str):
        if self.progress is not None:
            self.progress.update(self.task, description=name)
        t0 = time.perf_counter()
        yield
        self.done(name, time.perf_counter() - t0)

    def done(self, name: str, seconds: float) -> None:
        """Record a stage that ran elsewhere (a notebook executed in a kernel, the dashboard in a thread)."""
        with self.lock:
            self.rows.append({"stage": name, "seconds": seconds})
            if self.progress is not None:
                self.progress.console.print(f"  [green]✓[/] {name} [dim]({seconds:.1f} s)[/]", highlight=False)
                self.progress.advance(self.task)
            elif self.lines:
                print(f"alignment-research run: {name} ({seconds:.1f} s)", file=sys.stderr, flush=True)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["stage", "seconds"])


def _load_and_clean(study_dir: Path):
    from .clean import validate_and_clean  # deferred: clean loads pandera, pyarrow, matplotlib; notebook workers import run without them

    study = load_study(study_dir)
    problems, cleaned = validate_and_clean(study)  # one pass: validation reuses the cleaning
    if cleaned is None or ("fatal" in problems.columns and problems["fatal"].astype(bool).any()):
        fatal = problems.loc[problems["fatal"].astype(bool)] if "fatal" in problems.columns else problems
        raise DataContractError(
            f"{study_dir.name}: the study cannot be used as it is ({len(fatal)} fatal problem(s)); "
            f"`alignment-research validate {study_dir}` lists them all. Fix them and run again.",
            fatal[[c for c in ["file", "row", "column", "rule", "value"] if c in fatal.columns]],
        )
    return study, cleaned, problems


def default_cache_dir(study_dir) -> Path:
    """Return where ``run`` caches a study's cleaned tables.

    The cache holds person-level clean tables, so it never goes into the
    reports folder that is passed on: it lives in the user's cache folder
    (``$XDG_CACHE_HOME`` or ``~/.cache``), under ``alignment-research/``, one
    folder per study path.

    Parameters
    ----------
    study_dir : str or Path
        The study folder.

    Returns
    -------
    Path
        ``<cache home>/alignment-research/<study folder name>-<12 hex of its path hash>``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> ar.run.default_cache_dir("data/sample").parent.name
    'alignment-research'
    """
    folder = Path(study_dir).resolve()
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    return home / "alignment-research" / f"{folder.name}-{digest}"


def _clean_once(study_dir: Path, cache_dir: Path | None, stages, usable=None) -> tuple:
    """Validate and clean the study, or reuse the cache when its inputs are unchanged.

    ``usable()`` is called as soon as the study is known to pass validation
    (at once when the cache is reused), before the analysis tables are built.
    The cache is locked meanwhile: a second ``run`` of the same study waits, then reuses what this one wrote.
    """
    usable = usable or (lambda: None)
    with cache_lock(cache_dir):
        fingerprint = study_fingerprint(study_dir) if cache_dir is not None else None
        if cache_dir is not None and cache_is_current(cache_dir, fingerprint):
            usable()
            with stages.stage("reuse cleaned tables (inputs unchanged)"):
                return load_study(study_dir), read_clean_cache(cache_dir, study_dir)
        with stages.stage("validate and clean"):
            study, cleaned, problems = _load_and_clean(study_dir)
        usable()
        with stages.stage("analysis tables"):
            cleaned.analysis  # noqa: B018 - built once here; every notebook reads them from the cache
            if cache_dir is not None and fingerprint["files"] is not None:  # the problems too, for notebook 01
                write_clean_cache(cleaned, cache_dir, fingerprint, problems=problems)
    return study, cleaned


def run_study(study_dir=None, out_dir=None, *, notebooks=None, progress: bool | None = None,
              cache_dir=None, workers: int | None = None) -> RunResult:
    """Run the whole analysis of a study and write HTML reports for readers.

    Validates and cleans the study (stopping with the validation messages when
    it is unusable), executes every notebook of the repository's
    ``notebooks/`` folder (``NN_topic.ipynb``) against the study, in
    parallel kernels that are each reused for several notebooks (a fresh
    namespace for each), renders each to a self-contained HTML file (figures
    embedded as data URIs; the leadership brief without code), checks every
    report for employee ids, names, birth dates and groups below the study's
    minimum size, and writes ``index.html`` linking them with the study name,
    observation window, data-quality summary and toolkit version.

    Parameters
    ----------
    study_dir : str or Path, optional
        The study folder; the bundled sample (``data/sample/``) by default.
    out_dir : str or Path, optional
        Folder for the reports (created). By default ``reports/<study name>``
        under the current directory; see :func:`default_out_dir`.
    notebooks : list of str or Path, optional
        Run only these notebooks (paths, or names such as ``"06"`` or
        ``"06_leadership_brief"``); all by default.
    progress : bool, optional
        Show a progress bar with the elapsed time of each stage on stderr. By
        default a bar when stderr is a terminal, and otherwise one plain line
        per stage (for logs); ``False`` is silent.
    cache_dir : str, Path or False, optional
        Where the cleaned and analysis tables are cached (Parquet with a
        manifest of input hashes, config hash and toolkit version); a re-run
        with unchanged inputs reuses them. :func:`default_cache_dir` by
        default; ``False`` cleans in memory and passes nothing to the notebooks.
    workers : int, optional
        Notebooks executed at once, each kernel taking the next notebook
        (a re-run: the longest of the last run first; a first run:
        ``FIRST_RUN_ORDER``); by default the machine's cores (at most the
        number of notebooks). The dashboard is drawn meanwhile.

    Returns
    -------
    RunResult
        ``out_dir``, ``index``, ``reports`` (notebook, title, html, no_input, skipped,
        seconds), ``timings`` (stage, seconds) and ``counts``.

    Raises
    ------
    DataContractError
        The study breaks the data contract (fatal validation problems).
    ConfigError
        ``study.yaml`` is missing or invalid.
    PrivacyError
        A file the run wrote (a report, ``index.html``, any export) shows an
        employee id (the study's own ids, or their pseudonyms), a name, a birth
        date or a group smaller than ``min_group_size``. Nothing is published:
        the offending files are deleted and the message lists each file, what
        was found (masked) and where.
    AlignmentResearchError
        A notebook failed (the message names it and the cell); its partly
        executed copy is kept in a private temporary folder named in the message.

    Notes
    -----
    Notebooks are executed on copies (the committed notebooks are untouched)
    with the kernel's working directory set to ``notebooks/`` and the
    parameter ``study_dir`` set to the study's absolute path. Executed copies
    are discarded after rendering. Everything is written into a hidden sibling
    folder (``.<out>.partial-*``), scanned there with
    :func:`~alignment_research.privacy.scan_outputs` (each notebook's files,
    the dashboard and the PDF as soon as they are written, the rest last; a
    file changed after its scan is scanned again), and moved into
    ``out_dir`` only when the whole run succeeded; a failed run leaves
    ``out_dir`` as it was (only a failed notebook's executed copy is kept, in
    a private temporary folder named in the error, for the researcher; never the reports folder). Command line: ``alignment-research run [STUDY] --out DIR``.

    Examples
    --------
    >>> import alignment_research as ar
    >>> result = ar.run_study("data/sample", "reports")  # doctest: +SKIP
    >>> result.timings  # doctest: +SKIP
    """
    study_dir = Path(study_dir) if study_dir is not None else sample_study_dir()
    if not study_dir.exists():
        raise AlignmentResearchError(f"{study_dir}: no such study folder.")
    study_dir = study_dir.resolve()
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(study_dir)
    chosen = _select_notebooks(notebooks)
    if not _is_sample(study_dir):
        _warn_if_tracked(out_dir)
    terminal = sys.stderr.isatty()
    show = progress if progress is not None else terminal
    stages = _Stages(total=6 + len(chosen), show=show, lines=progress is None and not terminal)
    if cache_dir is None:
        cache_dir = default_cache_dir(study_dir)
    cache_dir = Path(cache_dir) if cache_dir is not False else None
    from .notebooks import KernelPool, import_renderers, notebooks_dir  # deferred: nbformat and nbconvert take seconds to import; only running notebooks needs them

    kernels = max(1, min(workers or os.cpu_count() or 1, len(chosen)))
    with stages.running(), KernelPool(kernels, cwd=notebooks_dir(), imports=_KERNEL_IMPORTS) as pool:
        # the kernels start, and import what the notebooks use, once the study is known to be usable: while this
        # process builds the analysis tables (or reads the cached ones); bad input starts none
        study, cleaned = _clean_once(study_dir, cache_dir, stages, usable=pool.start)
        with _staging_dir(out_dir) as staging, _threads() as background:
            # the dashboard is drawn in this process while the kernels execute the notebooks and this thread renders
            # them: rendering's lazy imports happen here first, so the drawing thread never meets a half-imported one
            import_renderers()
            scanner = _Scanner(staging, cleaned.config.min_group_size, _personal_values(study, cleaned))
            drawing = background.start(_write_dashboard, staging, cleaned, scanner)
            printing = _Printing(background, scanner)  # each brief's PDF, started as soon as its page is written
            reports = _render_reports(chosen, staging, out_dir, study_dir, cleaned, stages, pool=pool,
                                      cache_dir=cache_dir, printing=printing, scanner=scanner)
            with stages.stage("exports"):
                exports = _write_exports(staging, reports, printing=printing)
            dashboard = drawing.result()
            stages.done("dashboard", drawing.seconds)
            with stages.stage("index"):
                _write_index(staging, study_dir, cleaned, reports, __version__, exports=exports, dashboard=dashboard)
            with stages.stage("privacy scan"):
                scanner.finish()  # the files not scanned yet; any finding in any file stops the run here
            _publish(staging, out_dir, stale=[f"{nb.stem}.html" for nb, r in zip(chosen, reports.itertuples())
                                               if r.skipped])
    return RunResult(out_dir, out_dir / "index.html", reports, stages.table(), cleaned.counts.copy())


class _Background:
    """A call running in a thread: ``result()`` waits for it and returns its value or raises its error."""

    def __init__(self, func, *args):
        self.value = self.error = None
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, args=(func, *args), daemon=True)
        self.thread.start()

    def _run(self, func, *args) -> None:
        t0 = time.perf_counter()
        try:
            self.value = func(*args)
        except BaseException as error:  # noqa: BLE001 - raised in the caller's thread by result()
            self.error = error
        self.seconds = time.perf_counter() - t0

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


class _Threads:
    """Calls started in threads, all waited for by :func:`_threads` on leaving."""

    def __init__(self):
        self.jobs: list[_Background] = []

    def start(self, func, *args) -> _Background:
        job = _Background(func, *args)
        self.jobs.append(job)
        return job


@contextmanager
def _threads():
    """Yield a :class:`_Threads`; on leaving, wait for every call (so none writes into a removed folder)."""
    threads = _Threads()
    try:
        yield threads
    finally:
        for job in threads.jobs:
            job.thread.join()


class _Printing(dict):
    """The briefs' PDFs being printed (and scanned): page name to its job, started with ``print(html)``."""

    def __init__(self, threads: _Threads, scanner: _Scanner | None = None):
        super().__init__()
        self.threads, self.scanner = threads, scanner

    def print(self, html: Path) -> None:
        self[html.name] = self.threads.start(_print_pdf, html, html.with_suffix(".pdf"), self.scanner)


@contextmanager
def _staging_dir(out_dir: Path):
    """Yield a fresh sibling folder of ``out_dir`` to write into; remove it whatever happens.

    Everything a run writes goes there first, so a run that fails (a notebook
    error, a privacy finding, an interrupt) leaves ``out_dir`` as it was: no
    half-written or unchecked file ever lands in it.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: What each notebook kernel imports as soon as it has started (while the study is cleaned): the modules the
#: notebooks use, so that their first cells do not wait for them.
_KERNEL_IMPORTS = ("alignment_research.cache", "alignment_research.tables", "alignment_research.plots",
                   "alignment_research.primary", "alignment_research.scorecard")

#: File in the cache folder recording how long each notebook took last time, so the longest start first.
_DURATIONS_NAME = "notebook_seconds.json"


#: The order of a first run (no result stored yet), when the notebooks compute the results they share. The brief
#: starts at once (it is the longest, and fits the primary analysis first); the careers notebook beside it fits the
#: development effects that the brief's careers and practices sections and the levers notebook read, and needs
#: nothing the brief is computing, so neither kernel waits for the other's lock; the retention and engagement
#: notebooks follow, once the primary analysis they start from is stored.
FIRST_RUN_ORDER = ("06_leadership_brief", "07_careers", "04_retention", "03_engagement", "08_levers",
                   "02_alignment", "01_data_quality", "05_leadership_program")


def _job_order(jobs: list, cache_dir: Path | None) -> list:
    """Order notebooks for the kernels: a re-run's longest first, a first run's as :data:`FIRST_RUN_ORDER`.

    With a kernel per worker taking the next notebook, starting the long ones
    first keeps both kernels busy to the end instead of leaving one waiting
    for a long notebook started last. A re-run orders them by the seconds each
    took last time. In a first run the shared results are not stored yet: the
    notebook that first asks for one computes it, and another asking for it
    meanwhile waits, so the order is the one that keeps both kernels working
    (unknown notebooks first, in the order given, then those of the list).
    """
    if cache_dir is None or not has_stored_results(cache_dir):
        rank = {name: i for i, name in enumerate(FIRST_RUN_ORDER)}
        return sorted(jobs, key=lambda job: rank.get(job[0].stem, -1))
    try:
        last = json.loads((cache_dir / _DURATIONS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        last = {}
    return sorted(jobs, key=lambda job: -float(last.get(job[0].name, float("inf"))))


def _remember_durations(cache_dir: Path | None, seconds: dict) -> None:
    if cache_dir is None or not cache_dir.is_dir():
        return
    path = cache_dir / _DURATIONS_NAME
    try:
        known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        known = {}
    known.update({nb.name: round(value, 2) for nb, value in seconds.items()})
    try:
        path.write_text(json.dumps(known, indent=1, sort_keys=True), encoding="utf-8")
    except OSError:  # pragma: no cover - a read-only cache only loses the ordering hint
        pass


def _render_reports(chosen, staging: Path, out_dir: Path, study_dir: Path, cleaned, stages, *, pool,
                    cache_dir: Path | None = None, printing: dict | None = None, scanner=None) -> pd.DataFrame:
    """Execute each notebook on a copy and render it to HTML in ``staging``; one row per notebook.

    Notebooks run in parallel in the kernels of ``pool``
    (:class:`~alignment_research.notebooks.KernelPool`), each kernel reused
    for the next notebook with a fresh namespace; each is rendered
    as soon as it has run, while the others still run. They read the cleaned
    study from ``cache_dir``. A brief's PDF is started in a thread once its page
    is written, and put in ``printing`` (page name to the job). With a
    ``scanner`` (:class:`_Scanner`), each notebook's files are privacy-scanned
    as soon as they are written.
    """
    from .notebooks import export_outputs, render_html  # deferred: nbformat takes seconds to import; only running notebooks needs it

    offered = {"study_dir": str(study_dir)}
    if cache_dir is not None:
        offered["clean_dir"] = str(cache_dir)
    rows, jobs = {}, []
    for nb in chosen:
        no_input = BRIEF_MARK in nb.stem
        lacking = missing_tables(nb, cleaned.tables)
        if lacking:
            with stages.stage(f"{nb.stem} (skipped)"):
                pass
            rows[nb] = {"notebook": nb.name, "title": _title(nb), "html": None, "no_input": no_input,
                        "seconds": 0.0, "skipped": "needs " + ", ".join(lacking)}
        else:  # each notebook gets only the parameters it declares (read once); study_dir always
            declared = _declared_parameters(nb) | {"study_dir"}
            jobs.append((nb, no_input, {k: v for k, v in offered.items() if k in declared}))
    footer = _page_footer(cleaned.config)
    titles = {nb: _title(nb) for nb, _, _ in jobs}  # each notebook is read once for its heading
    hides_code = {nb: no_input for nb, no_input, _ in jobs}

    def render(nb: Path, executed: Path, seconds: float) -> None:
        """Runs in the notebook's worker thread as soon as it has executed."""
        t0 = time.perf_counter()
        # written to a folder of their own first, so they are scanned while other notebooks still run
        with scanner.folder(nb.stem) if scanner is not None else nullcontext(staging) as folder:
            render_html(executed, folder / f"{nb.stem}.html", no_input=hides_code[nb],
                        title=f"{cleaned.config.name}: {titles[nb]}", footer=footer)
            export_outputs(executed, folder, figures=hides_code[nb])  # every table shown; the brief's figures too
        html = staging / f"{nb.stem}.html"
        if hides_code[nb] and printing is not None:
            printing.print(html)
        seconds += time.perf_counter() - t0
        stages.done(nb.stem, seconds)
        rows[nb] = {"notebook": nb.name, "title": titles[nb], "html": html.name, "no_input": hides_code[nb],
                    "seconds": seconds, "skipped": ""}

    ordered_jobs = _job_order(jobs, cache_dir)
    with tempfile.TemporaryDirectory(prefix="ar-run-") as tmp:
        try:
            seconds = pool.execute([nb for nb, _, _ in ordered_jobs],
                                   parameters={nb: parameters for nb, _, parameters in ordered_jobs},
                                   output_dir=tmp, after=render)
        except AlignmentResearchError as error:
            failed = [nb for nb, _, _ in jobs if nb.name in str(error).split(":", 1)[0]]
            executed = Path(tmp) / failed[0].name if failed else None
            if executed is None or not executed.exists():
                raise
            # The executed copy may show ids and it never passed the privacy scan, so it is kept for the
            # researcher in a private temporary folder, never in the reports folder.
            kept = Path(tempfile.mkdtemp(prefix="alignment-research-failed-")) / executed.name
            shutil.copy(executed, kept)
            raise AlignmentResearchError(
                f"{error} The executed copy, for debugging (not privacy-checked), is {kept}."
            ) from None
    _remember_durations(cache_dir, seconds)
    ordered = [rows[nb] for nb in chosen]  # reading order, whatever order they finished in
    return pd.DataFrame(ordered, columns=["notebook", "title", "html", "no_input", "seconds", "skipped"])


class _Scanner:
    """The privacy scan of every file a run writes: each notebook's files while other notebooks run, the rest last.

    ``scan(folder)`` scans a notebook's files, written to a folder of their
    own inside ``staging`` laid out as in ``staging``, then moves them into
    ``staging``. ``finish()`` scans every file of ``staging`` not scanned yet,
    or changed since (the index, the dashboard, the workbook, the PDF), and
    raises on any finding of either, as one scan of the whole folder would.
    """

    def __init__(self, staging: Path, min_group_size: int, personal: dict):
        self.staging, self.min_group_size = staging, min_group_size
        self.personal = prepare_search(**personal)  # once for every scan of the run
        self.scanned: dict[str, tuple[int, int]] = {}  # file -> (size, mtime) when scanned
        self.found: list[pd.DataFrame] = []
        self.lock = threading.Lock()

    def _scan(self, folder: Path) -> pd.DataFrame:
        return scan_outputs(folder, min_group_size=self.min_group_size, **self.personal)

    @contextmanager
    def folder(self, name: str):
        """Yield a new folder to write files into; on leaving without error, scan them and move them in."""
        folder = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.staging))
        try:
            yield folder
            self.scan(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def scan(self, folder: Path) -> None:
        found = self._scan(folder)
        with self.lock:
            self.found.append(found)
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = path.relative_to(folder).as_posix()
                target = self.staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                stat = target.stat()
                self.scanned[name] = (stat.st_size, stat.st_mtime_ns)
        shutil.rmtree(folder, ignore_errors=True)

    def finish(self) -> None:
        rest = Path(tempfile.mkdtemp(prefix=".privacy-scan-", dir=self.staging))
        try:
            for path in sorted(p for p in self.staging.rglob("*") if p.is_file() and rest not in p.parents):
                name = path.relative_to(self.staging).as_posix()
                stat = path.stat()
                if self.scanned.get(name) == (stat.st_size, stat.st_mtime_ns):
                    continue
                (rest / name).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, rest / name)
                except OSError:  # pragma: no cover - a file system without hard links
                    shutil.copy2(path, rest / name)
            found = self._scan(rest)
        finally:
            shutil.rmtree(rest, ignore_errors=True)
        found = [f for f in [*self.found, found] if not f.empty]
        if found:
            _raise_on_findings(self.staging, pd.concat(found, ignore_index=True))


def _raise_on_findings(staging: Path, found: pd.DataFrame) -> None:
    """Delete the files of ``staging`` with findings and raise PrivacyError listing them."""
    offending = sorted(found["file"].unique())
    for name in offending:
        (staging / name).unlink(missing_ok=True)
    lines = "\n".join(f"  {r.file}: {r.kind} {r.found} in {r.where}" for r in found.head(20).itertuples())
    more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
    raise PrivacyError(
        f"{len(found)} privacy finding(s) in the files this run wrote, so nothing was published: "
        f"{offending} were deleted and the output folder was left as it was. Show group tables through "
        f"ar.suppress_small_groups() and never show ids, names or birth dates (found values are masked here):\n"
        f"{lines}{more}"
    )


def _publish(staging: Path, out_dir: Path, *, stale: list[str]) -> None:
    """Move the checked files of ``staging`` into ``out_dir`` (one rename when ``out_dir`` is new)."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    for name in stale:  # reports of an earlier run that this run skipped
        (out_dir / name).unlink(missing_ok=True)
    for folder in EXPORT_FOLDERS:  # the exports are all remade by every run: none of an earlier run is kept
        if (staging / folder).exists() and (out_dir / folder).is_dir():
            shutil.rmtree(out_dir / folder)
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = out_dir / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


#: Folders of a run's exports: every table shown (CSV) and the brief's figures (PNG).
EXPORT_FOLDERS = ("tables", "figures")

#: The workbook that gathers every table shown in the reports, one sheet each.
WORKBOOK_NAME = "results.xlsx"


def _print_pdf(html: Path, pdf: Path, scanner: _Scanner | None = None) -> Path:
    """Print a page to PDF; with a scanner, into a folder of its own, scanned, then moved beside the page."""
    from .browser import print_pdf  # deferred: only printing the brief needs the browser helpers

    if scanner is None:
        return print_pdf(html, pdf)
    with scanner.folder(pdf.stem) as folder:
        print_pdf(html, folder / pdf.name)
    return pdf


def _write_exports(staging: Path, reports: pd.DataFrame, *, printing: dict | None = None) -> dict:
    """Gather the tables into ``results.xlsx`` and print each brief to PDF; return what was written.

    Every file lands in ``staging``, so it passes the same privacy scan as the
    pages. Without Chromium the PDF is left out and the index says so. A PDF
    already being printed (``printing``: page name to a background job) is
    waited for, not printed again.
    """
    printing = printing or {}
    exports = {"workbook": None, "pdfs": [], "tables": 0, "figures": 0, "pdf_note": ""}
    csvs = sorted((staging / "tables").glob("*.csv")) if (staging / "tables").is_dir() else []
    exports["tables"] = len(csvs)
    exports["figures"] = len(list((staging / "figures").glob("*.png"))) if (staging / "figures").is_dir() else 0
    if csvs:
        contents = pd.DataFrame({"sheet": [f"T{i:03d}" for i in range(1, len(csvs) + 1)],
                                 "table": [c.stem for c in csvs]})
        with pd.ExcelWriter(staging / WORKBOOK_NAME, engine="openpyxl") as book:
            contents.to_excel(book, sheet_name="contents", index=False)
            for sheet, csv in zip(contents["sheet"], csvs):
                pd.read_csv(csv, dtype=str, keep_default_na=False).to_excel(book, sheet_name=sheet, index=False)
        exports["workbook"] = WORKBOOK_NAME
    for r in reports.itertuples():
        if r.no_input and r.html and (staging / r.html).exists():
            pdf = Path(r.html).with_suffix(".pdf").name
            try:
                if r.html in printing:
                    printing[r.html].result()
                else:
                    _print_pdf(staging / r.html, staging / pdf)
                exports["pdfs"].append(pdf)
            except AlignmentResearchError as err:
                exports["pdf_note"] = f"No PDF of the brief: {err}"
    return exports


#: The performance dashboard's file name in the reports folder.
DASHBOARD_NAME = "dashboard.html"


def _write_dashboard(staging: Path, cleaned, scanner: _Scanner | None = None) -> str:
    """Write the performance dashboard into ``staging`` (it passes the same privacy scan as the pages)."""
    from .dashboard import write_dashboard  # deferred: the dashboard draws with matplotlib; notebook workers import run without it

    if scanner is None:
        write_dashboard(cleaned, staging / DASHBOARD_NAME, footer=_page_footer(cleaned.config))
        return DASHBOARD_NAME
    with scanner.folder("dashboard") as folder:
        write_dashboard(cleaned, folder / DASHBOARD_NAME, footer=_page_footer(cleaned.config))
    return DASHBOARD_NAME


def _downloads_html(exports: dict | None) -> str:
    if not exports:
        return ""
    esc = _html.escape
    items = [f'<li><a href="{esc(p)}">{esc(p)}</a>: the brief, ready to print or pass on</li>' for p in exports["pdfs"]]
    if exports["workbook"]:
        items.append(f'<li><a href="{WORKBOOK_NAME}">{WORKBOOK_NAME}</a>: every table shown in the reports '
                     f'({exports["tables"]}, one sheet each; also as CSV in <code>tables/</code>)</li>')
    if exports["figures"]:
        items.append(f'<li><code>figures/</code>: the brief\'s {exports["figures"]} figures as PNG</li>')
    if exports["pdf_note"]:
        items.append(f"<li><em>{esc(exports['pdf_note'])}</em></li>")
    return "<h2>Downloads</h2>\n<ul>\n" + "\n".join(items) + "\n</ul>\n" if items else ""


def _write_index(out_dir: Path, study_dir: Path, cleaned, reports: pd.DataFrame, version: str, *,
                 exports: dict | None = None, dashboard: str | None = None) -> Path:
    config = cleaned.config
    esc = _html.escape
    counts = cleaned.counts.copy()
    quality = counts.to_html(index=False, classes="counts", border=0)
    n_issues = len(cleaned.report)
    links = "\n".join(
        (f'<li>{esc(r.title)} <em>(not run: the study {esc(r.skipped)})</em></li>' if r.skipped else
         f'<li><a href="{esc(r.html)}">{esc(r.title)}</a>'
         f'{" <em>(for leadership, no code)</em>" if r.no_input else ""}</li>')
        for r in reports.itertuples()
    )
    cycles = ", ".join(c.name for c in config.cycles) or "none configured"
    dashboard_html = (
        f'<h2>Dashboard</h2>\n<p><a href="{esc(dashboard)}">Performance dashboard</a>: alignment, engagement, feedback and '
        f'12-month retention for every department and manager team of at least {config.min_group_size} people, '
        "with funnel plots against the organisation's average.</p>\n" if dashboard else ""
    )
    outside = outside_sources(config, study_dir)
    outside_html = (
        "<h2>Sources read from outside the study folder</h2>\n<ul>\n"
        + "\n".join(f"<li>{esc(t)}: <code>{esc(where)}</code></li>" for t, where in outside.items())
        + "\n</ul>\n"
        if outside else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(config.name)}: alignment-research reports</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #222; }}
table.counts {{ border-collapse: collapse; }} table.counts td, table.counts th {{ padding: .2rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }}
table.counts td:first-child, table.counts th:first-child {{ text-align: left; }}
dt {{ font-weight: 600; float: left; width: 14rem; }} dd {{ margin-left: 14rem; }}
</style></head>
<body>
<h1>{esc(config.name)}</h1>
<p>Do employees whose performance targets are aligned with their leaders' goals, and whose leaders went through
leadership development, stay longer and stay more engaged, and by how much?</p>
<h2>Reports</h2>
<ul>
{links}
</ul>
{dashboard_html}{_downloads_html(exports)}<h2>Study</h2>
<dl>
<dt>Study</dt><dd>{esc(config.name)} (folder <code>{esc(study_dir.name)}</code>)</dd>
<dt>Observation window</dt><dd>{config.window.start:%Y-%m-%d} to {config.window.end:%Y-%m-%d}</dd>
<dt>Review cycles</dt><dd>{esc(cycles)}</dd>
<dt>Event</dt><dd>{esc(", ".join(config.event_types))} exit</dd>
<dt>Smallest group shown</dt><dd>{config.min_group_size} people; smaller groups are suppressed</dd>
<dt>Employee ids</dt><dd>{"pseudonymised (keyed hash)" if config.pseudonymise else "as in the source files (never shown in reports)"}</dd>
<dt>Toolkit</dt><dd>alignment-research {esc(version)}</dd>
</dl>
<h2>Data quality</h2>
<p>Every row read is either used or set aside in quarantine with its reason: rows in = rows out + rows quarantined.
Cleaning logged {n_issues} issue(s); see the data-quality report.</p>
{quality}
{outside_html}</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
