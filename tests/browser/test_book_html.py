"""The built book as a reader sees it, in headless Chromium (run by `make test` after the build).

Every page loads without console errors, every image loads, every audio element has a
playable source, navigation links resolve; one screenshot per page lands in
``_build/screenshots/``. Run with ``pytest tests/browser --book-html _build/ci/html``.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    path = request.config.getoption("--book-html")
    if not path:
        pytest.skip("browser tests need --book-html PATH (make test passes it)")
    path = Path(path)
    assert (path / "index.html").exists(), f"no built book at {path}: run the build first"
    return path


@pytest.fixture(scope="module")
def server(html_dir):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def pages(html_dir: Path) -> list[str]:
    """The pages of the book: the intro, every chapter, reproduce and references."""
    found = ["intro.html"] + sorted(f"chapters/{p.name}" for p in (html_dir / "chapters").glob("*.html"))
    return found + [p for p in ("reproduce.html", "references.html") if (html_dir / p).exists()]


def test_book_has_chapters(html_dir):
    assert len(pages(html_dir)) >= 4


def test_every_figure_the_run_made_is_on_its_page(html_dir, request):
    """Each image output of an executed chapter (not removed by a tag) is an <img> on its page."""
    import json

    src = request.config.getoption("--book-src")
    if not src:
        pytest.skip("needs --book-src (the staged executed notebooks)")
    for nb_path in sorted((Path(src) / "chapters").glob("*.ipynb")):
        cells = json.loads(nb_path.read_text())["cells"]
        shown = [
            c
            for c in cells
            if c["cell_type"] == "code" and not {"remove-output", "remove-cell"} & set(c["metadata"].get("tags", []))
        ]
        n_png = sum("image/png" in o.get("data", {}) for c in shown for o in c.get("outputs", []))
        html = (html_dir / "chapters" / f"{nb_path.stem}.html").read_text()
        assert html.count("<img") >= n_png, f"{nb_path.stem}: {html.count('<img')} images for {n_png} figures"
        if nb_path.stem not in ("02_model",):
            assert n_png >= 1, f"{nb_path.stem} shows no figure: did the kernel run without the inline backend?"


def test_every_page_as_a_reader_sees_it(html_dir, server, browser):
    shots = html_dir.parent.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    for page_path in pages(html_dir):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.on("requestfailed", lambda r, errors=errors: errors.append(f"request failed: {r.url}"))
        response = page.goto(urljoin(server, page_path), wait_until="load")
        problems += [f"{page_path}: HTTP {response.status}"] if response.status != 200 else []
        problems += [f"{page_path}: console: {e}" for e in errors]
        problems += [f"{page_path}: {m}" for m in _broken_images(page)]
        problems += [f"{page_path}: {m}" for m in _broken_audio(page)]
        problems += [f"{page_path}: {m}" for m in _broken_links(page, server, page_path)]
        page.screenshot(path=str(shots / (page_path.replace("/", "_") + ".png")), full_page=False)
        page.close()
    assert not problems, "\n".join(problems)


def _broken_images(page) -> list[str]:
    """Images that did not load (naturalWidth 0)."""
    bad = page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src.slice(0, 80))"
    )
    return [f"image did not load: {src}" for src in bad]


def _broken_audio(page) -> list[str]:
    """Audio elements without a source Chromium can decode (loads each and waits for its metadata)."""
    script = """async els => {
        const out = [];
        for (const a of els) {
            const src = a.currentSrc || a.src || (a.querySelector('source') || {}).src || '';
            if (!src) { out.push('audio element without a source'); continue; }
            const ok = await new Promise(res => {
                if (a.readyState >= 1 && a.duration > 0) return res(true);
                a.addEventListener('loadedmetadata', () => res(a.duration > 0), {once: true});
                a.addEventListener('error', () => res(false), {once: true});
                a.preload = 'metadata'; a.load();
                setTimeout(() => res(a.readyState >= 1 && a.duration > 0), 5000);
            });
            if (!ok) out.push('audio not playable: ' + src.slice(0, 60));
        }
        return out;
    }"""
    return page.eval_on_selector_all("audio", script)


def _broken_links(page, server: str, page_path: str) -> list[str]:
    """Internal links (navigation, references) whose target page does not answer 200."""
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    bad = []
    for href in set(hrefs):
        if href.startswith(("http:", "https:", "mailto:", "#", "javascript:", "data:")):
            continue
        target = urljoin(urljoin(server, page_path), href)
        if urlparse(target).netloc != urlparse(server).netloc:
            continue
        status = page.request.get(target.split("#")[0]).status
        if status != 200:
            bad.append(f"link {href} → HTTP {status}")
    return bad
