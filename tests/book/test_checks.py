"""Tests of the build-time checks (vaetone.book.checks): illegible figures and misaligned sound grids fail the build."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest

from vaetone import config
from vaetone.book import checks, sound, style


def svg_of(width_in: float, font_pt: float) -> str:
    """An SVG saved by matplotlib in the book style: one figure with one text."""
    style.use()
    fig = plt.figure(figsize=(width_in, 2))
    fig.text(0.5, 0.5, "label", fontsize=font_pt)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()


def chapter(tmp_path, outputs, tags=()):
    """A staged book folder with one executed chapter whose one code cell has ``outputs``."""
    cell = nbformat.v4.new_code_cell("x", metadata={"tags": list(tags)})
    cell.outputs = outputs
    nb = nbformat.v4.new_notebook(cells=[cell])
    (tmp_path / "chapters").mkdir(exist_ok=True)
    nbformat.write(nb, tmp_path / "chapters" / "04_x.ipynb")
    return tmp_path


def display(data, glued=False):
    meta = {"scrapbook": {"name": "fig-x"}} if glued else {}
    return nbformat.v4.new_output("display_data", data=data, metadata=meta)


def test_a_legible_svg_figure_passes(tmp_path):
    checks.check_book(chapter(tmp_path, [display({"image/svg+xml": svg_of(6, 10), "text/plain": "fig"})]))


@pytest.mark.parametrize(("width", "font", "message"), [(9, 10, "wider than the column"), (6, 7, "smaller than 9 pt")])
def test_a_wide_figure_or_small_text_fails_the_build_naming_the_cell(tmp_path, width, font, message):
    book = chapter(tmp_path, [display({"image/svg+xml": svg_of(width, font)})])
    with pytest.raises(checks.BookError, match=rf"04_x, cell 0: .*{message}"):
        checks.check_book(book)


def test_a_png_figure_on_the_page_fails_but_a_removed_one_does_not(tmp_path):
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "fig"}
    with pytest.raises(checks.BookError, match="only as PNG"):
        checks.check_book(chapter(tmp_path, [display(png)]))
    checks.check_book(chapter(tmp_path, [display(png)], tags=["remove-cell"]))
    with pytest.raises(checks.BookError, match="only as PNG"):
        checks.check_book(chapter(tmp_path, [display(png, glued=True)], tags=["remove-cell"]))


def test_a_sound_grid_missing_a_player_fails_the_build(tmp_path):
    cfg = config.make(n_mels=16)
    grid = sound.sound_grid(np.zeros((1, 2, 16, 5)), np.zeros((1, 2, 800)), cfg, ["a", "b"])
    html = grid.data
    checks.check_book(chapter(tmp_path, [display({"text/html": html, "text/plain": "grid"})]))
    broken = html.replace("<audio", "<span", 1)
    with pytest.raises(checks.BookError, match="04_x, cell 0"):
        checks.check_book(chapter(tmp_path, [display({"text/html": broken, "text/plain": "grid"})]))


def test_glue_figure_glues_once_and_closes_the_matplotlib_figure(capsys):
    from vaetone.book.findings import glue_figure

    fig = plt.figure(figsize=(2, 1))
    glue_figure("fig-x", fig)
    assert not plt.fignum_exists(fig.number)  # the inline backend will not show it a second time
    html = sound.sound_grid(np.zeros((1, 1, 16, 5)), np.zeros((1, 1, 800)), config.make(n_mels=16), ["a"])
    glue_figure("fig-y", html)  # an HTML block is glued as it is
