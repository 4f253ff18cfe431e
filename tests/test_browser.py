"""The leadership brief as a reader's browser shows it (headless Chromium)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import alignment_research as ar
from alignment_research import browser

# Each module run renders the brief once (~40 s), so these also count as slow.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Sections a reader of the brief must find, in this order.
SECTIONS = [
    "Key findings",
    "Who stays: retention by goal alignment",
    "What goes with leaving",
    "What goes with engagement",
    "The leadership development programme",
    "Careers: mentoring, coaching and a change of manager",  # the study has a job history and enough people
    "What the evidence says about each practice",
    "Alignment by department",
    "Caveats",
]


def _need_chromium():
    try:
        return browser.find_chromium()
    except ar.AlignmentResearchError:
        pytest.skip("Chromium is not installed and could not be (apt-get install chromium); CI installs it")


@pytest.fixture(scope="module")
def brief(tmp_path_factory):
    _need_chromium()
    tmp = tmp_path_factory.mktemp("brief")
    study = ar.write_simulated_study(ar.simulate_study(n_employees=400, seed=4), tmp / "study")
    result = ar.run_study(study, tmp / "out", notebooks=["06_leadership_brief"], progress=False)
    return result.out_dir / "06_leadership_brief.html"


@pytest.fixture(scope="module")
def page(brief):
    return browser.inspect_page(brief)


def test_every_figure_is_an_embedded_image_that_loaded(page):
    images = page["images"]
    assert len(images) >= 5, "retention curves, two forest plots, the programme plot, alignment by department"
    for im in images:
        assert im["src_kind"] == "data", im["src_start"]
        assert im["complete"] and im["natural_width"] > 100 and im["natural_height"] > 100, im
        assert im["visible"]


def test_no_code_is_visible(page):
    assert page["visible_code"] == []
    assert "import alignment_research" not in page["text"]
    assert "ar." not in page["text"]


def test_the_brief_has_its_sections_in_order_and_no_errors(page):
    headings = [h["text"] for h in page["headings"] if h["level"] == 2]
    assert headings == SECTIONS
    assert page["headings"][0]["level"] == 1 and page["headings"][0]["text"].startswith("Leadership brief")
    for bad in ("Traceback", "Error", "Warning", "nan%"):
        assert bad not in page["text"], bad
    assert "95% CI" in page["text"]


def test_a_broken_image_is_caught(tmp_path):
    _need_chromium()
    html = tmp_path / "broken.html"
    html.write_text('<html><body><h2>A</h2><img src="data:image/png;base64,AAAA"><img src="missing.png"></body></html>')
    images = browser.inspect_page(html)["images"]
    assert [im["natural_width"] for im in images] == [0, 0]
    assert [im["src_kind"] for im in images] == ["data", "external"]


def test_screenshot_command(brief, tmp_path):
    out = tmp_path / "brief.png"
    done = subprocess.run(
        [sys.executable, "-m", "alignment_research.browser", "screenshot", str(brief), str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1280 and height > 2000  # the whole page, not one window


def test_inspect_command_prints_json(tmp_path):
    _need_chromium()
    html = tmp_path / "p.html"
    html.write_text("<html><body><h1>T</h1></body></html>")
    done = subprocess.run([sys.executable, "-m", "alignment_research.browser", "inspect", str(html)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["headings"] == [{"level": 1, "text": "T"}]


def test_run_prints_the_brief_to_pdf_and_exports_its_figures(brief):
    out = brief.parent
    pdf = (out / "06_leadership_brief.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages") >= 2
    figures = sorted((out / "figures").glob("06_leadership_brief_cell*.png"))
    assert len(figures) >= 5  # retention curves, two forest plots, the programme plot, alignment by department
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<a href="06_leadership_brief.pdf">' in index and '<a href="results.xlsx">' in index


def test_the_pdf_has_every_section_of_the_brief_in_order(brief):
    """The PDF's bookmarks are the brief's headings (Chromium drops the space at a line break, so compare without)."""
    squeeze = lambda text: re.sub(r"\s+", "", text)  # noqa: E731
    outline = [squeeze(t) for t in browser.pdf_outline(brief.parent / "06_leadership_brief.pdf")]
    wanted = [squeeze(s) for s in SECTIONS]
    found = [t for t in outline if t in wanted]
    assert found == wanted, outline


def test_the_brief_requests_nothing_from_the_network(brief):
    page = brief.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="https?:', page) and not re.search(r'import\(\s*"https?:', page)
    # what the browser loads: every image is embedded, and no script element points outside the file
    dom = browser.dump_dom(brief)
    assert not re.search(r'<script[^>]*\ssrc="https?:', dom)


def test_run_writes_a_dashboard_that_opens_offline_with_every_section_and_figure(brief):
    out = brief.parent
    assert '<a href="dashboard.html">Performance dashboard</a>' in (out / "index.html").read_text(encoding="utf-8")
    html = (out / "dashboard.html").read_text(encoding="utf-8")
    assert "<script" not in html and not re.search(r'(src|href)="https?:', html)
    page = browser.inspect_page(out / "dashboard.html")
    assert [h["text"] for h in page["headings"] if h["level"] == 2] == [
        "How to read this dashboard", "Organisation", "Funnel plots: what is more than noise", "Departments",
        "Manager teams", "Notes"]
    assert len(page["images"]) >= 2 + 4  # two funnel figures and at least one panel of four charts
    for im in page["images"]:
        assert im["src_kind"] == "data" and im["complete"] and im["natural_width"] > 100, im
    assert "Traceback" not in page["text"] and not re.search(r"\bnan\b", page["text"], re.I)
    dom = browser.dump_dom(out / "dashboard.html")
    assert not re.search(r'<(script|img|link|iframe)[^>]*\s(src|href)="https?:', dom)
