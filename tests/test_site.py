"""The course's website: built from the committed notebooks, then read in headless Chromium.

Needs the site's tools (`pip install -r website/requirements.txt`) and a Chromium (Debian's
`chromium` package); without them the tests skip, except under CI (`CI=true`), where they fail.
Screenshots of the landing page and of one notebook page are kept in `_build/screenshots/`.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "site"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("KD_CHROMIUM", "/usr/bin/chromium")
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
PAGES = [f"notebooks/{name}" for name in NOTEBOOKS] + [f"solutions/{name}" for name in SOLUTIONS]


def _missing_tools() -> str | None:
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "mathjax", "playwright"):
        try:
            __import__(module)
        except ImportError:
            return f"the Python package {module!r} (pip install -r website/requirements.txt)"
    if shutil.which(CHROMIUM) is None:
        return f"Chromium at {CHROMIUM} (apt-get install chromium, or set KD_CHROMIUM)"
    return None


_MISSING = _missing_tools()
if _MISSING and os.environ.get("CI"):
    raise RuntimeError(f"CI builds and checks the website, but this machine lacks {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=f"website tools missing: {_MISSING}")


@pytest.fixture(scope="module")
def built_site() -> Path:
    """Build the site the README's way; any Sphinx warning (a broken page or link) fails it."""
    command = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html",
               "-c", "website", ".", str(SITE)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stderr[-5000:]}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SITE


@pytest.fixture(scope="module")
def base_url(built_site: Path):
    """Serve the built site on localhost, as `python -m http.server` would."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


DOLLAR_IN_PROSE = """article => {
    const prose = article.cloneNode(true);
    prose.querySelectorAll("pre, code, .math, mjx-container, .cell_output").forEach(e => e.remove());
    return prose.textContent.includes("$");
}"""


class LoadedPage:
    """A page opened offline: requests that leave localhost fail, and every error is kept."""

    def __init__(self, browser, base_url: str, path: str):
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"JavaScript: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.page.route("**/*", lambda route: route.continue_()
                        if route.request.url.startswith(base_url) else route.abort())
        self.page.goto(urljoin(base_url, path), wait_until="load")
        self.page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def sidebar_notebooks(self) -> list[str]:
        hrefs = self.page.eval_on_selector_all(
            "nav.bd-docs-nav li.toctree-l1 > a.reference.internal", "links => links.map(a => a.href)")
        return [Path(urlsplit(href).path).stem for href in hrefs if "/notebooks/" in href]


@pytest.fixture
def open_page(browser, base_url):
    pages: list[LoadedPage] = []

    def open_(path: str) -> LoadedPage:
        pages.append(LoadedPage(browser, base_url, path))
        return pages[-1]

    yield open_
    for loaded in pages:
        loaded.page.close()


def test_the_landing_page_introduces_the_course(open_page, base_url):
    landing = open_page("README.html")
    assert landing.errors == []
    assert landing.page.title().startswith("Knowledge distillation, hands-on")
    linked = landing.page.eval_on_selector_all("article a.reference.internal", "as => as.map(a => a.href)")
    for name in NOTEBOOKS:
        assert urljoin(base_url, f"notebooks/{name}.html") in linked, f"the landing page does not link {name}"
    for heading in ("The notebooks", "Teaching a class", "Working offline", "The course as a website"):
        assert landing.page.get_by_role("heading", name=heading).count() == 1, heading
    landing.page.screenshot(path=SCREENSHOTS / "landing.png", full_page=True)


def test_the_sites_address_opens_the_landing_page(browser, base_url):
    page = browser.new_page()
    page.goto(base_url)
    page.wait_for_url("**/README.html")
    page.close()


def _section_count(path: str) -> int:
    """How many level-2 headings the notebook's markdown cells hold, as MyST's parser reads them."""
    from markdown_it import MarkdownIt  # installed with myst_nb, which this module requires

    cells = json.loads((ROOT / f"{path}.ipynb").read_text(encoding="utf-8"))["cells"]
    markdown = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return sum(token.tag == "h2" for token in MarkdownIt().parse(markdown) if token.type == "heading_open")


@pytest.mark.parametrize("path", PAGES)
def test_every_notebook_page_renders(open_page, path):
    shown = open_page(f"{path}.html")
    assert shown.errors == []
    title = shown.page.locator("article h1").first.inner_text().rstrip("#").strip()
    assert shown.count("article h1") == 1 and shown.page.title().startswith(title)
    assert shown.count("article h2") == _section_count(path), "the notebook's sections are missing"
    assert shown.sidebar_notebooks() == NOTEBOOKS, "the sidebar does not list the notebooks in order"
    widths = shown.page.eval_on_selector_all("article img", "imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), f"{widths.count(0)} images did not load"
    if path.startswith("notebooks/"):
        assert shown.count("div.cell_output img") >= 1, "no figure rendered"
    assert shown.count("mjx-container") >= shown.count("article .math"), "equations left untypeset"
    assert shown.count("mjx-merror") == 0, "an equation failed to typeset"
    assert not shown.page.eval_on_selector("article", DOLLAR_IN_PROSE), "math left unparsed: a $ in the prose"
    assert shown.page.locator("article a[href$='.ipynb']").count() >= 1, "no link to the notebook itself"
    if path == "notebooks/02_mnist_distillation":
        shown.page.screenshot(path=SCREENSHOTS / "notebook-02.png")


def test_every_internal_link_resolves(built_site, base_url):
    """Each link between pages (and to a notebook's download) points at a file the site has."""
    targets = {}
    for html in built_site.rglob("*.html"):
        page_url = urljoin(base_url, html.relative_to(built_site).as_posix())
        for href in _internal_links(html.read_text(encoding="utf-8")):
            targets.setdefault(urljoin(page_url, href).split("#")[0], f"{html.name}: {href}")
    broken = [where for target, where in targets.items() if not _served(target)]
    assert broken == []


def _served(url: str) -> bool:
    try:
        with urlopen(url) as response:
            return response.status == 200
    except HTTPError:
        return False


def _internal_links(html: str) -> list[str]:
    links: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href")
            if tag == "a" and href and not urlsplit(href).scheme and not href.startswith("#"):
                links.append(href)

    Collector().feed(html)
    return links
