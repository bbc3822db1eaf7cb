"""The built book as a reader sees it, in headless Chromium (run by `make test` after the build).

Every page loads without console errors, every image loads, every audio element has a
playable source, navigation links resolve; one screenshot per page lands in
``_build/screenshots/``. Run with ``pytest tests/browser --book-html _build/ci/html``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest


def pages(html_dir: Path) -> list[str]:
    """The pages of the book: the intro, every chapter, reproduce and references."""
    found = ["intro.html"] + sorted(f"chapters/{p.name}" for p in (html_dir / "chapters").glob("*.html"))
    return found + [p for p in ("reproduce.html", "references.html") if (html_dir / p).exists()]


def test_book_has_chapters(html_dir):
    assert len(pages(html_dir)) >= 4


def chapter_pages(html_dir: Path) -> list[str]:
    """The chapter pages of the book."""
    return sorted(f"chapters/{p.name}" for p in (html_dir / "chapters").glob("*.html"))


def test_every_numbered_figure_the_run_made_is_on_its_page(html_dir, request):
    """Each ``{glue:figure}`` of an executed chapter is a numbered <figure> holding an image or a sound grid."""
    import json
    import re

    src = request.config.getoption("--book-src")
    if not src:
        pytest.skip("needs --book-src (the staged executed notebooks)")
    for nb_path in sorted((Path(src) / "chapters").glob("*.ipynb")):
        cells = json.loads(nb_path.read_text())["cells"]
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        names = re.findall(r"```\{glue:figure\}[^\n]*\n:name: *([\w-]+)", text)
        assert names, f"{nb_path.stem} has no numbered figure"
        html = (html_dir / "chapters" / f"{nb_path.stem}.html").read_text()
        for name in names:
            m = re.search(rf'<figure[^>]*id="{name}"[^>]*>(.*?)</figure>', html, re.S)
            assert m, f"{nb_path.stem}: figure {name} is not on the page"
            assert "<img" in m.group(1) or "vaetone-sound-grid" in m.group(1), f"{nb_path.stem}: {name} is empty"
            assert "Fig. " in m.group(1), f"{nb_path.stem}: figure {name} has no number"


def test_every_chapter_opens_with_overview_and_closes_with_summary(html_dir):
    """The chapter frame: Overview first, then the work, Summary and What's next last; one toggle at most."""
    import re

    for page in chapter_pages(html_dir):
        html = (html_dir / page).read_text()
        article = html[html.index("<article") : html.index("</article>")]
        heads = [re.sub(r"<[^>]+>|#|¶", "", h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", article, re.S)]
        assert heads and heads[0] == "Overview", f"{page}: first section is {heads[:1]}, not Overview"
        assert heads[-2:] == ["Summary", "What’s next"] or heads[-2:] == ["Summary", "What's next"], (
            f"{page}: last sections are {heads[-2:]}"
        )
        toggles = article.count("tag_hide-input") + article.count("tag_hide-output")
        assert toggles <= 1, f"{page}: {toggles} collapsed cells; remove plumbing cells (remove-cell) instead"


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
        problems += [f"{page_path}: {m}" for m in _small_text(page, server, page_path)]
        problems += [f"{page_path}: {m}" for m in _overflowing_tables(page)]
        problems += [f"{page_path}: {m}" for m in _misaligned_players(page)]
        page.screenshot(path=str(shots / (page_path.replace("/", "_") + ".png")), full_page=True)
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


MIN_TEXT_PX = 12.0
"""9 pt at 96 CSS px per inch: the smallest text a figure may show at its displayed size."""


def _small_text(page, server: str, page_path: str) -> list[str]:
    """Figures whose text is drawn smaller than 9 pt at their displayed size, and figures whose text cannot be read.

    Every figure of the book is an SVG whose text stays text (font sizes in SVG user units,
    the width in its viewBox); sound-grid panels (class ``vaetone-panel``) hold no text.
    """
    from vaetone.book import style

    images = page.eval_on_selector_all(
        "article img",
        "els => els.map(e => ({src: e.getAttribute('src') || '', width: e.getBoundingClientRect().width,"
        " panel: e.classList.contains('vaetone-panel') || e.classList.contains('vaetone-explorer-panel')}))",
    )
    bad = []
    for img in images:
        if img["panel"] or img["width"] == 0:
            continue
        src = img["src"]
        if src.startswith("data:image/svg+xml"):
            svg = _data_uri_text(src)
        elif src.split("?")[0].endswith(".svg"):
            svg = page.request.get(urljoin(urljoin(server, page_path), src)).text()
        else:
            bad.append(f"figure {src[:60]} is not SVG, so its text size cannot be checked")
            continue
        sizes, natural_px = style.svg_text_sizes(svg), style.svg_width_in(svg) * 96
        if sizes and natural_px:
            text, pt = min(sizes, key=lambda s: s[1])
            shown = pt * 4 / 3 * img["width"] / natural_px  # CSS px at the displayed width
            if shown < MIN_TEXT_PX - 0.05:
                bad.append(f"figure {src[:60]}: text {text!r} drawn at {shown:.1f} px (< {MIN_TEXT_PX:.0f} px = 9 pt)")
    return bad


def _data_uri_text(src: str) -> str:
    """The text of a data: URI (base64 or percent-encoded)."""
    import base64
    from urllib.parse import unquote

    head, _, body = src.partition(",")
    return base64.b64decode(body).decode() if head.endswith(";base64") else unquote(body)


def _overflowing_tables(page) -> list[str]:
    """Tables that stick out of the text column (a table inside a scrolling box is fine)."""
    script = """els => {
        const col = document.querySelector('article.bd-article') || document.querySelector('article');
        const limit = col.getBoundingClientRect().right + 1;
        const out = [];
        for (const t of els) {
            let box = t, a = t.parentElement;
            while (a && a !== col) {
                const ox = getComputedStyle(a).overflowX;
                if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { box = a; break; }
                a = a.parentElement;
            }
            const right = box.getBoundingClientRect().right;
            const name = (t.innerText || '').slice(0, 40);
            const where = `ends at ${right.toFixed(0)} px, the column at ${limit.toFixed(0)}`;
            if (right > limit) out.push(`table ${name} ${where}`);
        }
        return out;
    }"""
    return page.eval_on_selector_all("article table", script)


def _misaligned_players(page) -> list[str]:
    """Sound grids whose players do not sit under their panels (same cell, same centre within 4 px)."""
    script = """grids => {
        const out = [];
        for (const g of grids) {
            const n = Number(g.dataset.columns);
            for (const row of g.querySelectorAll('tr.vaetone-note-row')) {
                const cells = row.querySelectorAll('td');  // the row label is a th
                if (cells.length !== n) out.push(`a row has ${cells.length} cells for ${n} columns`);
                for (const c of cells) {
                    const img = c.querySelector('img'), audio = c.querySelector('audio');
                    if (!img && !audio) continue;
                    if (!img || !audio) { out.push('a panel without its player, or a player alone'); continue; }
                    const a = img.getBoundingClientRect(), b = audio.getBoundingClientRect();
                    if (Math.abs((a.left + a.right) / 2 - (b.left + b.right) / 2) > 4 || b.top < a.bottom - 1)
                        out.push('a player is not directly under its panel');
                }
            }
        }
        return out;
    }"""
    return page.eval_on_selector_all("table.vaetone-sound-grid", script)
