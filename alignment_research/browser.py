"""Open rendered reports in headless Chromium: screenshots, and what a reader's browser actually shows."""

from __future__ import annotations

import html as _html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import AlignmentResearchError

__all__ = ["find_chromium", "dump_dom", "inspect_page", "screenshot", "print_pdf", "pdf_outline"]

#: Where Debian's ``chromium`` package (and common alternatives) put the browser.
_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for a quiet, self-contained headless run (no network services, a throw-away profile).
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)

#: Runs in the page after load and writes what a reader sees into ``<pre id="ar-probe">`` as JSON.
_PROBE = r"""
<script>
window.addEventListener("load", function () {
  function visible(el) {
    var s = window.getComputedStyle(el);
    return s.display !== "none" && s.visibility !== "hidden" && (el.offsetWidth > 0 || el.offsetHeight > 0);
  }
  var imgs = Array.prototype.map.call(document.images, function (im) {
    return {src_kind: im.src.slice(0, 11) === "data:image/" ? "data" : "external",
            src_start: im.src.slice(0, 30), complete: im.complete,
            natural_width: im.naturalWidth, natural_height: im.naturalHeight, visible: visible(im)};
  });
  var codeSel = ".jp-CodeCell .jp-InputArea, div.input_area, .jp-CodeCell .jp-Editor";
  var code = Array.prototype.filter.call(document.querySelectorAll(codeSel), visible).map(function (el) {
    return (el.innerText || "").slice(0, 80);
  });
  var heads = Array.prototype.map.call(document.querySelectorAll("h1, h2, h3"), function (h) {
    return {level: Number(h.tagName.slice(1)), text: (h.innerText || "").replace(/\u00b6/g, "").trim()};
  });
  var out = {images: imgs, visible_code: code, headings: heads,
             text: document.body.innerText, height: document.documentElement.scrollHeight,
             width: document.documentElement.scrollWidth};
  var pre = document.createElement("pre");
  pre.id = "ar-probe";
  pre.style.display = "none";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def find_chromium() -> str:
    """Return the path of a headless-capable Chromium.

    Returns
    -------
    str
        The executable (``$CHROMIUM`` if set, else Debian's ``/usr/bin/chromium``
        or another Chromium/Chrome found on ``PATH``).

    Raises
    ------
    AlignmentResearchError
        When none is installed (``apt-get install chromium``).

    Examples
    --------
    >>> from alignment_research.browser import find_chromium
    >>> find_chromium()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    env = os.environ.get("CHROMIUM")
    for name in ([env] if env else []) + list(_CANDIDATES):
        path = shutil.which(name)
        if path:
            return path
    raise AlignmentResearchError(
        "No Chromium found. Install the Debian package (`apt-get install chromium`) or set CHROMIUM to the browser."
    )


def _run(args: list[str], *, timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ar-chromium-") as profile:
        cmd = [find_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AlignmentResearchError(f"Chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None
    if done.returncode != 0:
        raise AlignmentResearchError(f"Chromium failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")
    return done


def dump_dom(path, *, budget_ms: int = 5000, timeout: float = 120.0) -> str:
    """Load a page in headless Chromium and return its DOM after scripts ran.

    Parameters
    ----------
    path : str or Path
        An HTML file.
    budget_ms : int, default 5000
        Virtual time given to the page to load and run its scripts.
    timeout : float, default 120.0
        Seconds before giving up.

    Returns
    -------
    str
        The serialised DOM (``--dump-dom``).

    Raises
    ------
    AlignmentResearchError
        When Chromium is missing, fails or times out.

    Examples
    --------
    >>> from alignment_research.browser import dump_dom
    >>> dom = dump_dom("reports/06_leadership_brief.html")  # doctest: +SKIP
    """
    url = Path(path).resolve().as_uri()
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout=timeout).stdout


def inspect_page(path, *, budget_ms: int = 5000, timeout: float = 120.0) -> dict:
    """Report what a reader's browser shows: images and whether they loaded, visible code, headings.

    A copy of the page with a small probe script is opened in headless
    Chromium; after the ``load`` event the script records, for every
    ``<img>``, whether its source is an embedded ``data:image/`` URI and its
    ``naturalWidth``/``naturalHeight`` (0 when it failed to load), every
    visible code area, the headings and the visible text.

    Parameters
    ----------
    path : str or Path
        An HTML file.
    budget_ms : int, default 5000
        Virtual time given to the page to load.
    timeout : float, default 120.0
        Seconds before giving up.

    Returns
    -------
    dict
        ``images`` (list of dicts: ``src_kind`` "data"/"external", ``complete``,
        ``natural_width``, ``natural_height``, ``visible``), ``visible_code``
        (list of text snippets), ``headings`` (list of ``level``, ``text``),
        ``text`` (the page's visible text), ``height`` and ``width`` (pixels).

    Raises
    ------
    AlignmentResearchError
        When Chromium is missing or fails, or the probe did not run.

    Examples
    --------
    >>> from alignment_research.browser import inspect_page
    >>> page = inspect_page("reports/06_leadership_brief.html")  # doctest: +SKIP
    >>> all(im["natural_width"] > 0 for im in page["images"])  # doctest: +SKIP
    True
    """
    path = Path(path)
    html = path.read_text(encoding="utf-8")
    probed = re.sub(r"</body>", lambda m: _PROBE + "</body>", html, count=1, flags=re.I)
    if probed == html:
        probed = html + _PROBE
    with tempfile.TemporaryDirectory(prefix="ar-page-") as tmp:
        copy = Path(tmp) / path.name
        copy.write_text(probed, encoding="utf-8")
        dom = dump_dom(copy, budget_ms=budget_ms, timeout=timeout)
    m = re.search(r'<pre id="ar-probe"[^>]*>(.*?)</pre>', dom, flags=re.S)
    if not m:
        raise AlignmentResearchError(f"{path.name}: the page did not finish loading in the browser (no probe output).")
    return json.loads(_html.unescape(m.group(1)))


def screenshot(path, out, *, width: int = 1280, height: int | None = None, timeout: float = 120.0) -> Path:
    """Save a PNG screenshot of a page as headless Chromium renders it.

    Parameters
    ----------
    path : str or Path
        An HTML file.
    out : str or Path
        The PNG to write (its folder is created).
    width : int, default 1280
        Window width in pixels.
    height : int, optional
        Window height; by default the page's full height (at most 16,000 px).
    timeout : float, default 120.0
        Seconds before giving up.

    Returns
    -------
    Path
        The PNG file.

    Raises
    ------
    AlignmentResearchError
        When Chromium is missing or fails, or no image was written.

    Examples
    --------
    >>> from alignment_research.browser import screenshot
    >>> screenshot("reports/06_leadership_brief.html", "reports/06_leadership_brief.png")  # doctest: +SKIP
    """
    path, out = Path(path), Path(out).resolve()
    if not path.exists():
        raise AlignmentResearchError(f"{path}: no such page. Render it first (`make run`).")
    if height is None:
        height = min(max(int(inspect_page(path, timeout=timeout).get("height", 0)), 600), 16000)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    _run(
        [f"--window-size={width},{height}", "--virtual-time-budget=5000", f"--screenshot={out}", path.resolve().as_uri()],
        timeout=timeout,
    )
    if not out.exists():
        raise AlignmentResearchError(f"Chromium wrote no screenshot to {out}.")
    return out


def print_pdf(path, out, *, timeout: float = 120.0) -> Path:
    """Print a page to PDF as headless Chromium lays it out for A4/Letter paper.

    Parameters
    ----------
    path : str or Path
        An HTML file.
    out : str or Path
        The PDF to write (its folder is created).
    timeout : float, default 120.0
        Seconds before giving up.

    Returns
    -------
    Path
        The PDF file.

    Raises
    ------
    AlignmentResearchError
        When Chromium is missing or fails, or no PDF was written.

    Examples
    --------
    >>> from alignment_research.browser import print_pdf
    >>> print_pdf("reports/06_leadership_brief.html", "reports/06_leadership_brief.pdf")  # doctest: +SKIP
    """
    path, out = Path(path), Path(out).resolve()
    if not path.exists():
        raise AlignmentResearchError(f"{path}: no such page. Render it first (`make run`).")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    # no header or footer from the browser: the page carries its own footer (study, window, date, version)
    # the page's headings become the PDF's bookmarks (its outline): a reader jumps to a section, a test reads them
    _run(["--no-pdf-header-footer", "--print-to-pdf-no-header", "--generate-pdf-document-outline",
          f"--print-to-pdf={out}", path.resolve().as_uri()], timeout=timeout)
    if not out.exists() or out.stat().st_size == 0:
        raise AlignmentResearchError(f"Chromium wrote no PDF for {path.name}.")
    return out


_OUTLINE_TITLE = re.compile(rb"/Title\s*(?:\(((?:[^()\\]|\\.)*)\)|<([0-9A-Fa-f]*)>)")


def pdf_outline(path) -> list[str]:
    """The titles of a PDF's outline (its bookmarks), in file order: the headings :func:`print_pdf` keeps.

    Chromium writes each title once, uncompressed, as a literal or hex
    string; the document's own title (its ``/Info`` entry) comes first.

    Parameters
    ----------
    path : str or Path
        A PDF written by :func:`print_pdf`.

    Returns
    -------
    list of str
        The titles.

    Examples
    --------
    >>> from alignment_research.browser import pdf_outline
    >>> pdf_outline("reports/06_leadership_brief.pdf")[1]  # doctest: +SKIP
    'Key findings'
    """
    titles = []
    for literal, hexa in _OUTLINE_TITLE.findall(Path(path).read_bytes()):
        if literal or not hexa:
            raw = re.sub(rb"\\([()\\])", rb"\1", literal)
            titles.append(raw.decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("latin-1"))
        else:
            raw = bytes.fromhex(hexa.decode())
            titles.append(raw[2:].decode("utf-16-be") if raw.startswith(b"\xfe\xff") else raw.decode("latin-1"))
    return titles


def _main(argv: list[str]) -> int:
    usage = "usage: python -m alignment_research.browser screenshot IN.html OUT.png | inspect IN.html"
    try:
        if len(argv) == 3 and argv[0] == "screenshot":
            print(screenshot(argv[1], argv[2]))
            return 0
        if len(argv) == 2 and argv[0] == "inspect":
            page = inspect_page(argv[1])
            page.pop("text", None)
            print(json.dumps(page, indent=2))
            return 0
    except AlignmentResearchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
