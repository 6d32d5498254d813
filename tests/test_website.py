"""The built website works in a real browser, offline.

Debian Chromium (/usr/bin/chromium) driven by Playwright, fresh user-data-dir, all background networking
off; the session's clean build (tests/book_build.py) is served by a local http.server on a free
127.0.0.1 port.  For every page: MathJax typesets without errors and its woff-v2 fonts load, every image
loads, no request fails, nothing is logged to the console as an error.  The search page finds
"receptive field" and the sidebar navigation reaches every chapter from the root.
"""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
import urllib.error
import urllib.request
from urllib.parse import urldefrag, urljoin, urlparse

import pytest

from tests.book_build import book_build, log_tail, toc_files  # noqa: F401

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SKIP_DIRS = {"_static", "_sources", "_downloads", "_images", "reports"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def site(book_build):
    """Base URL of the built site served from 127.0.0.1 on a free port."""
    # the pages are tested even if the build reported warnings (test_book_build reports those)
    handler = functools.partial(_QuietHandler, directory=str(book_build.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A Chromium context with a fresh user-data-dir (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs Debian chromium (target system-deps)")
    from playwright import sync_api  # requirements-test.txt; a missing install is a failure, not a skip
    user_data = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(user_data), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context.set_default_timeout(30_000)
        yield context
        context.close()
    shutil.rmtree(user_data, ignore_errors=True)


class PageProbe:
    """Open one page and record console errors, failed requests and responses."""

    def __init__(self, context, site):
        self.site = site
        self.page = context.new_page()
        self.console_errors: list[str] = []
        self.failed: list[str] = []
        self.responses: list[tuple[str, int]] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.on("response", self._on_response)

    def _on_response(self, response):
        self.responses.append((response.url, response.status))
        if response.status >= 400:
            self.failed.append(f"{response.url} -> HTTP {response.status}")

    def open(self, rel: str):
        self.page.goto(urljoin(self.site, rel), wait_until="load")
        if rel == "index.html":  # Jupyter Book's root index.html is a meta-refresh redirect to the root page
            self.page.wait_for_url(lambda url: not url.rstrip("/").endswith(("index.html", "127.0.0.1")) and
                                   urlparse(url).path not in ("/", "/index.html"))
            self.page.wait_for_load_state("load")
        # wait for MathJax's first typeset (if the page loads it) and for every image to settle
        self.page.evaluate("""async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
            await document.fonts.ready;
            await Promise.all(Array.from(document.images).map(img => img.complete ? null :
                new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
        }""")
        try:  # let late requests (fonts, lazy scripts) happen; animated outputs may never go idle
            self.page.wait_for_load_state("networkidle", timeout=5_000)
        except Exception:  # playwright TimeoutError: the checks below still see every request made so far
            pass
        return self.page

    def close(self):
        self.page.close()


def _html_pages(html_root: Path) -> list[str]:
    return sorted(p.relative_to(html_root).as_posix() for p in html_root.rglob("*.html")
                  if not (set(p.relative_to(html_root).parts) & SKIP_DIRS))


def test_every_page_renders_offline(book_build, site, browser):
    """Math typeset with local fonts, images loaded, no failed request, no console error, on every page."""
    pages = _html_pages(book_build.html)
    assert len(pages) >= len(toc_files()), f"too few pages: {pages}"
    problems: dict[str, list[str]] = {}
    font_responses: list[tuple[str, int]] = []
    math_pages = 0
    for rel in pages:
        probe = PageProbe(browser, site)
        page = probe.open(rel)
        found: list[str] = []
        state = page.evaluate("""() => ({
            sourceMath: document.querySelectorAll('.math, span.math, div.math').length,
            untypeset: Array.from(document.querySelectorAll('span.math, div.math'))
                .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 60)).slice(0, 5),
            containers: document.querySelectorAll('mjx-container').length,
            merrors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5),
            mjxFonts: Array.from(document.fonts).filter(f => /MJX(TEX|ZERO)/.test(f.family) && f.status === 'loaded').map(f => f.family),
            badImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
            images: document.images.length,
        })""")
        if state["merrors"]:
            found.append(f"MathJax errors: {state['merrors']}")
        if state["sourceMath"] and not state["containers"]:
            found.append(f"{state['sourceMath']} math elements but no <mjx-container>: MathJax did not typeset")
        elif state["untypeset"]:
            found.append(f"math left untypeset: {state['untypeset']}")
        if state["containers"]:
            math_pages += 1
            if not state["mjxFonts"]:
                found.append("MathJax typeset but no MJXTEX/MJXZERO font is loaded in document.fonts")
        if state["badImages"]:
            found.append(f"images not loaded: {state['badImages']}")
        if probe.failed:
            found.append(f"failed requests: {probe.failed[:5]}")
        if probe.console_errors:
            found.append(f"console errors: {probe.console_errors[:5]}")
        external = [u for u, _ in probe.responses if urlparse(u).hostname not in ("127.0.0.1", None)
                    and not u.startswith("data:")]
        if external:
            found.append(f"requests outside the site: {external[:5]}")
        font_responses += [(u, s) for u, s in probe.responses if "/woff-v2/" in u]
        if found:
            problems[rel] = found
        probe.close()
    assert not problems, "pages with problems:\n" + "\n".join(f"{k}: {v}" for k, v in problems.items())
    assert math_pages >= 4, f"only {math_pages} pages typeset math"
    woff_ok = [u for u, s in font_responses if u.split("?")[0].endswith(".woff") and s == 200]
    assert woff_ok, f"no MathJax woff-v2 font was served with HTTP 200 (font responses: {font_responses[:5]})"


def test_search_finds_receptive_field(site, browser):
    """Sphinx's client-side search returns results for "receptive field", including the chapter on it."""
    probe = PageProbe(browser, site)
    page = probe.open("search.html?q=receptive+field")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    hrefs = page.eval_on_selector_all("#search-results ul.search li a", "els => els.map(e => e.href)")
    assert hrefs, "search returned no results for 'receptive field'"
    assert any("09-receptive-field" in h for h in hrefs), f"receptive-field chapter not among results: {hrefs}"
    assert not probe.console_errors and not probe.failed, (probe.console_errors, probe.failed)
    probe.close()


def test_sidebar_navigation_reaches_every_chapter(site, browser):
    """Following only sidebar links from the site root reaches every page of _toc.yml."""
    wanted = {f + ".html" for f in toc_files()}
    seen: set[str] = set()
    queue = ["index.html"]
    probe = PageProbe(browser, site)
    while queue:
        rel = queue.pop(0)
        page = probe.open(rel)
        path = urlparse(page.url).path.lstrip("/")  # index.html redirects to the root page
        if path in seen:
            continue
        seen.add(path)
        links = page.eval_on_selector_all("nav.bd-docs-nav a[href], .bd-sidebar-primary a.reference.internal[href]",
                                          "els => els.map(e => e.href)")
        for href in links:
            url = urlparse(href)
            if url.hostname != "127.0.0.1":
                continue
            target = url.path.lstrip("/")
            if target.endswith(".html") and target not in seen and target not in queue:
                queue.append(target)
    probe.close()
    missing = sorted(wanted - seen)
    assert not missing, f"not reachable through the sidebar from the root: {missing}"


def test_internal_links_and_downloads_resolve(book_build, site):
    """Every link from a page to another file of the site (pages, downloads, images) answers HTTP 200."""
    import re
    targets: dict[str, str] = {}
    for rel in _html_pages(book_build.html):
        html = (book_build.html / rel).read_text(encoding="utf8")
        for href in re.findall(r'<a\s[^>]*href="([^"]+)"', html):
            url = urldefrag(urljoin(urljoin(site, rel), href)).url
            if urlparse(url).hostname == "127.0.0.1" and not url.endswith("/#"):
                targets.setdefault(url, rel)
    assert len(targets) > 20, f"too few internal links found: {sorted(targets)[:10]}"
    broken = []
    for url, page in sorted(targets.items()):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status != 200:
                    broken.append(f"{page} -> {url}: HTTP {response.status}")
        except urllib.error.HTTPError as err:
            broken.append(f"{page} -> {url}: HTTP {err.code}")
    assert not broken, "broken internal links:\n" + "\n".join(broken[:30])
    # the exercises page offers every released notebook as a download (checked for 200 above)
    exercises_html = (book_build.html / "book" / "exercises.html").read_text(encoding="utf8")
    assert "_downloads/" in exercises_html, "the exercises page links no download"
    assert any("/_downloads/" in u for u in targets), "no link to a download was collected"


# ------------------------------------------------------------------------------------------------
# Issue 13: figures with alt text, one search field, search results and snippets, code lines

# The figures generated at build time (tests/test_book_build.py checks none of them failed): page ->
# figure names (MyST-NB `mystnb.figure.name`, the <figure id>) that must be there, with an image loaded.
BUILT_FIGURES = {
    "book/04-conv2d-multichannel.html": ["conv2d-fig-windows", "conv2d-fig-filters", "conv2d-fig-volume"],
    "book/05-stride-padding-dilation.html": ["stride-fig-padding-2d", "stride-fig-dilation-2d"],
    "book/08-transposed-convolution.html": ["tconv-fig-zero-insertion", "tconv-fig-encoder-decoder"],
    "book/13-counting.html": ["counting-fig-seed003-network", "counting-fig-seed003-block"],
}
# Pages on which every figure image (not the frames of an animation) must carry a written alt text.
ALT_TEXT_PAGES = ["book/04-conv2d-multichannel.html", "book/05-stride-padding-dilation.html",
                  "book/08-transposed-convolution.html"]

FIGURES_JS = """() => ({
    figures: Object.fromEntries(Array.from(document.querySelectorAll('article figure[id]')).map(f => {
        const img = f.querySelector('img');
        return [f.id, {alt: img ? img.getAttribute('alt') || '' : null,
                       loaded: !!img && img.complete && img.naturalWidth > 0,
                       width: img ? img.naturalWidth : 0,
                       caption: (f.querySelector('figcaption') || {textContent: ''}).textContent.trim()}];
    })),
    images: Array.from(document.querySelectorAll('article .cell_output img'))
        .filter(i => !(i.id || '').startsWith('_anim_img'))
        .map(i => ({alt: i.getAttribute('alt') || '', src: i.getAttribute('src') || ''})),
})"""


def _written_alt(alt: str, src: str) -> bool:
    """An alt text a person wrote: a sentence, not empty and not the image's file name (Sphinx's fallback)."""
    alt = (alt or "").strip()
    return len(alt) >= 40 and " " in alt and not alt.endswith((".png", ".svg", ".jpg")) and alt not in src


def test_built_figures_have_alt_text_and_load(site, browser):
    """The figures drawn by code at build time are on their pages, loaded, captioned and described by alt text."""
    problems = []
    for rel in sorted(set(BUILT_FIGURES) | set(ALT_TEXT_PAGES)):
        probe = PageProbe(browser, site)
        state = probe.open(rel).evaluate(FIGURES_JS)
        for name in BUILT_FIGURES.get(rel, []):
            fig = state["figures"].get(name)
            if fig is None:
                problems.append(f"{rel}: figure {name!r} missing (figures: {sorted(state['figures'])})")
            elif not (fig["loaded"] and fig["width"] > 200):
                problems.append(f"{rel}: figure {name!r} image not loaded ({fig})")
            elif not _written_alt(fig["alt"], "") or len(fig["caption"]) < 40:
                problems.append(f"{rel}: figure {name!r} needs an alt text and a caption ({fig})")
        if rel in ALT_TEXT_PAGES:
            bare = [i["src"] for i in state["images"] if not _written_alt(i["alt"], i["src"])]
            if bare or not state["images"]:
                problems.append(f"{rel}: {len(bare)} of {len(state['images'])} figure images have no written alt text: {bare}")
        if probe.failed or probe.console_errors:
            problems.append(f"{rel}: {probe.failed[:3]} {probe.console_errors[:3]}")
        probe.close()
    assert not problems, "\n".join(problems)


def test_one_search_field_and_none_in_the_header_bar(site, browser):
    """Each chapter shows one search field (the sidebar's); the top header bar has none."""
    probe = PageProbe(browser, site)
    for rel in ["book/05-stride-padding-dilation.html", "book/09-receptive-field.html", "book/intro.html"]:
        state = probe.open(rel).evaluate("""() => {
            const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 &&
                                 getComputedStyle(e).visibility !== 'hidden'; };
            const fields = Array.from(document.querySelectorAll('.search-button-field, form.bd-search input')).filter(shown);
            return {visible: fields.length,
                    inHeader: fields.filter(e => e.closest('header, .bd-header')).length,
                    inSidebar: fields.filter(e => e.closest('.bd-sidebar-primary')).length,
                    header: Array.from(document.querySelectorAll('header.bd-header')).filter(shown).length};
        }""")
        assert state["visible"] == 1 and state["inSidebar"] == 1, f"{rel}: search fields shown: {state}"
        assert state["inHeader"] == 0, f"{rel}: a search field in the top header bar: {state}"
    # the one field still opens the search and finds things
    page = probe.page
    page.locator(".bd-sidebar-primary .search-button-field").first.click()
    field = page.locator(".search-button__search-container input[name=q], form.bd-search input[name=q]").locator("visible=true").first
    field.fill("dilation")
    field.press("Enter")
    page.wait_for_selector("#search-results ul.search li", timeout=30_000)
    assert not probe.console_errors and not probe.failed, (probe.console_errors, probe.failed)
    probe.close()


SEARCH_RESULTS_JS = """() => Array.from(document.querySelectorAll('#search-results ul.search li')).map(li => ({
    href: li.querySelector('a').href, title: li.querySelector('a').textContent,
    snippet: (li.querySelector('p.context') || {textContent: ''}).textContent}))"""


@pytest.mark.parametrize("query, words", [("receptive field", ("receptive", "field")),
                                          ("transposed convolution", ("transpos", "convolution")),
                                          ("pooling", ("pool",))])
def test_search_lists_each_page_once_with_a_text_snippet(site, browser, query, words):
    """Every page appears once in the results; each snippet is text of the page around the query, not the
    download menu (".pdf") and not an empty run of dots."""
    probe = PageProbe(browser, site)
    page = probe.open("search.html?q=" + query.replace(" ", "+"))
    page.wait_for_function("() => /Search finished|found/i.test((document.querySelector('#search-results') || {}).textContent || '')",
                           timeout=60_000)
    page.wait_for_function("""() => Array.from(document.querySelectorAll('#search-results ul.search li'))
                              .every(li => li.querySelector('p.context'))""", timeout=30_000)
    results = page.evaluate(SEARCH_RESULTS_JS)
    assert len(results) >= 3, f"too few results for {query!r}: {results}"
    pages = [urldefrag(r["href"]).url for r in results]
    repeated = sorted({p for p in pages if pages.count(p) > 1})
    assert not repeated, f"{query!r}: pages listed more than once: {repeated}\n" + "\n".join(r["title"] for r in results)
    for r in results:
        snippet = r["snippet"].strip()
        assert snippet and not snippet.startswith("...."), f"{query!r}: snippet of {r['title']!r} is {snippet[:60]!r}"
        assert ".pdf" not in snippet and ".ipynb" not in snippet[:40], f"{query!r}: download menu in the snippet of {r['title']!r}"
        assert len(snippet.strip(". ")) >= 40, f"{query!r}: snippet of {r['title']!r} too short: {snippet!r}"
        assert any(w in snippet.lower() for w in words), f"{query!r}: snippet of {r['title']!r} lacks the query: {snippet[:120]!r}"
    assert not probe.console_errors and not probe.failed, (probe.console_errors, probe.failed)
    probe.close()


@pytest.mark.parametrize("width", [1280, 800])
def test_code_cells_are_not_clipped(book_build, site, browser, width):
    """No code cell or text output is wider than its box: long lines wrap (checked on every page)."""
    probe = PageProbe(browser, site)
    probe.page.set_viewport_size({"width": width, "height": 900})
    clipped, checked = {}, 0
    for rel in _html_pages(book_build.html):
        state = probe.open(rel).evaluate("""() => {
            const pres = Array.from(document.querySelectorAll('article div.highlight pre, article .cell_output pre'))
                .filter(e => e.getBoundingClientRect().width > 0);
            return {count: pres.length,
                    wide: pres.filter(e => e.scrollWidth > e.clientWidth + 1).map(e =>
                        `${e.scrollWidth}px > ${e.clientWidth}px: ` + e.textContent.split('\\n').reduce((a, l) => l.length > a.length ? l : a, '').slice(0, 70))};
        }""")
        checked += state["count"]
        if state["wide"]:
            clipped[rel] = state["wide"][:3]
    probe.close()
    assert checked > 200, f"only {checked} code blocks found"
    assert not clipped, f"code wider than its cell at {width}px:\n" + "\n".join(f"{k}: {v}" for k, v in clipped.items())
