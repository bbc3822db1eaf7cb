"""Chapter 07's static explorer in headless Chromium: sliders switch the shown picture and sound; without
JavaScript the plain grid of panels and players is what the reader gets."""

from __future__ import annotations

PAGE = "chapters/07_explorer.html"

SHOWN = """root => {
    const row = root.querySelector('.vaetone-explorer-row');
    return {img: row.querySelector('img').src, audio: row.querySelector('audio').src,
            value: row.querySelector('.vaetone-explorer-value').textContent};
}"""

MOVE = """(root, to) => {
    const input = root.querySelector('input[type=range]');
    input.value = String(to);
    input.dispatchEvent(new Event('input', {bubbles: true}));
    return input.value;
}"""


def test_moving_a_slider_switches_the_shown_spectrogram_and_sound(server, browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + PAGE)
    explorer = page.locator(".vaetone-explorer").first
    sliders = explorer.locator("input[type=range]")
    assert sliders.count() >= 1, "the static explorer built no sliders"
    assert not explorer.locator("table.vaetone-sound-grid").is_visible()  # the script hid the plain grid
    handle = explorer.element_handle()
    before = handle.evaluate(SHOWN)
    assert before["img"].startswith("data:image/png") and before["audio"].startswith("data:audio/wav")
    assert handle.evaluate(MOVE, 0) == "0"
    after = handle.evaluate(SHOWN)
    assert after["img"] != before["img"] and after["audio"] != before["audio"]
    assert " at \u2212" in after["value"] and after["value"].endswith("\u03c3")  # a position, e.g. "z5 at −3.0 σ"
    assert page.eval_on_selector(".vaetone-explorer-panel", "e => e.complete && e.naturalWidth > 0"), (
        "the switched image did not load"
    )
    assert page.evaluate(
        """async () => {
            const a = document.querySelector('.vaetone-explorer-player');
            if (a.readyState >= 1 && a.duration > 0) return true;
            return await new Promise(res => {
                a.addEventListener('loadedmetadata', () => res(a.duration > 0), {once: true});
                a.addEventListener('error', () => res(false), {once: true});
                a.load();
                setTimeout(() => res(a.readyState >= 1 && a.duration > 0), 5000);
            });
        }"""
    ), "the switched audio is not playable"  # as test_book_html._broken_audio checks every player
    assert not errors, errors
    page.close()


def test_without_javascript_the_plain_grid_shows_every_player(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server + PAGE)
    explorer = page.locator(".vaetone-explorer").first
    grid = explorer.locator("table.vaetone-sound-grid")
    assert grid.is_visible() and explorer.locator("input[type=range]").count() == 0
    columns = int(grid.get_attribute("data-columns"))
    rows = grid.locator("tr.vaetone-note-row")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert rows.nth(i).locator("audio").count() == columns
        assert rows.nth(i).locator("img.vaetone-panel").count() == columns
    players = grid.locator("audio")
    assert all(players.nth(i).is_visible() for i in range(players.count()))
    context.close()
