"""Tests of vaetone.book.sound: sound grids with each panel's player under it, levels shown, the build check."""

import base64
import io
import re
import wave

import numpy as np
import pytest
from PIL import Image

from vaetone import config
from vaetone.book import sound, style
from vaetone.errors import DataError

SR = 16000
CFG = config.make(n_mels=16)


def clips(n_rows, n_cols, samples=1600, amp=0.5):
    t = np.arange(samples) / SR
    return np.stack(
        [[amp * np.sin(2 * np.pi * 110 * (1 + r + c) * t) for c in range(n_cols)] for r in range(n_rows)]
    ).astype(np.float32)


def spectra(n_rows, n_cols, frames=8):
    base = np.linspace(-80.0, 0.0, 16 * frames).reshape(16, frames)
    return np.stack([[base + r - c for c in range(n_cols)] for r in range(n_rows)])


def note_rows(html):
    return re.findall(r'<tr class="vaetone-note-row">(.*?)</tr>', html)


def test_a_2x3_grid_has_six_panels_each_with_its_player_in_two_rows_of_three():
    g = sound.sound_grid(spectra(2, 3), clips(2, 3), CFG, ["a", "b", "c"], rows=["note 1", "note 2"], title="T")
    html = g.data
    assert html.count('class="vaetone-panel"') == 6 and html.count("<audio") == 6
    rows = note_rows(html)
    assert len(rows) == 2
    for label, row in zip(["note 1", "note 2"], rows):
        assert row.startswith('<th scope="row"') and f">{label}</th>" in row
        cells = re.findall(r'<td class="vaetone-cell".*?</td>', row)
        assert len(cells) == 3
        assert all(c.index('class="vaetone-panel"') < c.index("<audio") for c in cells)  # player under panel
    assert 'data-columns="3"' in html and "table-layout:fixed;width:100%" in html
    assert re.findall(r'<tr class="vaetone-head-row">.*?</tr>', html)[0].count("<th") == 4  # corner + 3 titles
    assert sound.grid_problems(html, "page") == []
    assert repr(g) == "sound grid: T; columns: a | b | c; rows: note 1 | note 2"


def test_the_panels_keep_their_size_under_the_book_style():
    style.use()  # the book style (constrained layout, tight bbox, ...) must not change a panel
    png = sound.panel_png(spectra(1, 1)[0, 0], -80.0, 0.0)
    assert Image.open(io.BytesIO(png)).size == sound.PANEL_PX


def test_the_players_play_the_samples_as_given_and_the_panels_share_one_scale_without_text():
    y = clips(1, 2, amp=0.25)
    g = sound.sound_grid(spectra(1, 2), y, CFG, ["a", "b"])
    wavs = re.findall(r'src="data:audio/wav;base64,([^"]+)"', g.data)
    with wave.open(io.BytesIO(base64.b64decode(wavs[1]))) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert np.abs(pcm - np.round(y[0, 1] * 32767)).max() <= 1
    assert g.vrange == (-81.0, 0.0)  # one scale over the whole grid: min of panel b, max of panel a
    pngs = re.findall(r'class="vaetone-panel"[^>]*src="data:image/png;base64,([^"]+)"', g.data)
    img = Image.open(io.BytesIO(base64.b64decode(pngs[0])))
    assert img.size == sound.PANEL_PX
    px = np.asarray(img.convert("RGB"), dtype=int)
    # origin lower: the bottom-left bin is the quietest (-80 dB, dark), the top-right the loudest (bright)
    assert px[-1, 0].sum() < 60 and px[0, -1].sum() > 500
    assert "rows:" not in repr(g)


def test_levels_are_shown_under_each_player_in_dbfs():
    y = clips(1, 2, amp=1.0)
    y[0, 0] *= 0.5 / np.abs(y[0, 0]).max()
    g = sound.sound_grid(spectra(1, 2), y, CFG, ["half", "full"])
    assert re.findall(r'class="vaetone-level"[^>]*>([^<]+)<', g.data) == ["peak \u22126.0 dBFS", "peak 0.0 dBFS"]
    assert sound.peak_dbfs(np.zeros(10)) == "silent"
    assert sound.peak_dbfs(np.array([0.1, -0.01])) == "peak \u221220.0 dBFS"
    assert sound.peak_dbfs(np.array([2.0])) == "peak 0.0 dBFS (clipped)"


def test_the_scale_row_has_the_colour_bar_and_the_axes_from_the_config():
    cfg = config.make(n_mels=16, hop_length=512, f_min=20.0, f_max=8000.0)
    g = sound.sound_grid(spectra(1, 2, frames=125), clips(1, 2), cfg, ["a", "b"])
    assert "each panel: time 0\u20134.0 s left to right; mel bands 20\u20138000 Hz bottom to top" in g.data
    uri = re.findall(r'class="vaetone-colorbar"[^>]*src="data:image/svg\+xml;base64,([^"]+)"', g.data)[0]
    text = base64.b64decode(uri).decode()
    assert "power (dB)" in text and 'font-size="13px"' in text
    assert re.findall(r'text-anchor="middle">([^<]+)<', text) == ["\u221280", "\u221260", "\u221240", "\u221220", "0"]
    assert 'colspan="2"' in g.data  # no row labels: the scale spans the two columns


def test_mismatched_shapes_and_labels_raise_data_errors():
    with pytest.raises(DataError, match="differ in"):
        sound.sound_grid(spectra(2, 3), clips(2, 2), CFG, ["a", "b", "c"], rows=["x", "y"])
    with pytest.raises(DataError, match="2 column titles for 3"):
        sound.sound_grid(spectra(2, 3), clips(2, 3), CFG, ["a", "b"], rows=["x", "y"])
    with pytest.raises(DataError, match="1 row labels for 2"):
        sound.sound_grid(spectra(2, 3), clips(2, 3), CFG, ["a", "b", "c"], rows=["x"])
    with pytest.raises(DataError, match="need row labels"):
        sound.sound_grid(spectra(2, 3), clips(2, 3), CFG, ["a", "b", "c"])
    with pytest.raises(DataError, match="cell titles"):
        sound.sound_grid(spectra(1, 2), clips(1, 2), CFG, ["a", "b"], cell_titles=[["only one"]])
    with pytest.raises(DataError, match="4 non-empty dimensions"):
        sound.sound_grid(spectra(1, 2)[0], clips(1, 2), CFG, ["a", "b"])
    bad = spectra(1, 2)
    bad[0, 1, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        sound.sound_grid(bad, clips(1, 2), CFG, ["a", "b"])
    with pytest.raises(DataError, match="ragged"):
        sound.sound_grid([[np.zeros((16, 8)), np.zeros((16, 9))]], clips(1, 2), CFG, ["a", "b"])


def test_sound_cells_lays_notes_out_row_major_with_titles_and_empty_trailing_cells():
    dbs, y = spectra(1, 5)[0], clips(1, 5)[0]
    g = sound.sound_cells(dbs, y, [f"note {i}" for i in range(5)], CFG, ncols=3, title="five")
    rows = note_rows(g.data)
    assert len(rows) == 2 and 'data-columns="3"' in g.data and 'data-kind="cells"' in g.data
    assert [re.findall(r">(note \d)</div>", r) for r in rows] == [["note 0", "note 1", "note 2"], ["note 3", "note 4"]]
    assert rows[1].endswith('<td class="vaetone-empty-cell"></td>') and g.data.count("<audio") == 5
    assert sound.grid_problems(g.data, "p") == []
    assert "notes: note 0 | note 1 | note 2 | note 3 | note 4" in repr(g)
    with pytest.raises(DataError, match="4 titles for 5"):
        sound.sound_cells(dbs, y, ["a"] * 4, CFG)


def test_grid_problems_finds_a_missing_player_a_short_row_and_misplaced_empty_cells():
    html = sound.sound_grid(spectra(2, 3), clips(2, 3), CFG, ["a", "b", "c"], rows=["x", "y"]).data
    no_player = re.sub(r"<audio [^>]*></audio>", "", html, count=1)
    assert sound.grid_problems(no_player, "ch04") == [
        "ch04: sound grid 1, row 1, column 1: 1 panels and 0 players (1 each)"
    ]
    row2 = note_rows(html)[1]
    short = html.replace(row2, row2[: row2.rindex('<td class="vaetone-cell"')])
    assert sound.grid_problems(short, "ch04") == ["ch04: sound grid 1, row 2: 2 cells for 3 columns"]
    first = re.findall(r'<td class="vaetone-cell".*?</td>', html)[0]
    holed = html.replace(first, '<td class="vaetone-empty-cell"></td>')
    assert "empty cells other than the last row's trailing ones" in sound.grid_problems(holed, "x")[0]
    assert sound.grid_problems("<p>no grids</p>", "x") == []
