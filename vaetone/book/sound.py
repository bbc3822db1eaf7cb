"""Sound beside its picture: HTML tables of spectrogram panels, each with its player directly under it.

A *sound grid* is one table: a header row of column titles, one row per note (its label in the
first cell), and in every cell a spectrogram panel (a PNG without text, one dB colour scale shared
by the whole grid), the ``<audio>`` player of the same note and the clip's peak level in dBFS. The
last row holds the colour bar (power, dB) and the axes of every panel (time in s, mel band range in
Hz). The players play the samples as given (:func:`vaetone.book.players.wav_bytes`): the level a
caption states is the level shown under each panel. :func:`grid_problems` is the build's check
that every row has as many panels and players as the grid has columns.

Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer, 08_validity.
"""

from __future__ import annotations

import base64
import html
import io
from html.parser import HTMLParser

import matplotlib
import numpy as np
import torch
from IPython.display import HTML

from vaetone.book.players import wav_bytes
from vaetone.book.widget import MINUS
from vaetone.config import SAMPLE_RATE, Config
from vaetone.errors import DataError

"""The minus sign of printed levels ("peak −6.0 dBFS")."""
PANEL_PX = (320, 200)
"""Pixel size of a rendered panel (width, height): about 2x its display size in a 4-5 column grid."""
COLORBAR_PX = (480, 48)
"""Display size of the colour bar's SVG (CSS px; its text is 13 px, about 9.75 pt)."""
GRID_CLASS = "vaetone-sound-grid"
EMPTY_CLASS = "vaetone-empty-cell"
TABLE_STYLE = "table-layout:fixed;width:100%;border-collapse:collapse;font-size:0.9em;margin:0.3em 0"
CELL_STYLE = "padding:2px 3px;vertical-align:top;text-align:center"


class SoundGrid(HTML):
    """An HTML sound grid for Jupyter and the static book; text/plain lists its labels.

    Attributes: ``columns`` (column titles), ``rows`` (row labels), ``cell_titles`` (per cell or None),
    ``vrange`` (the shared dB scale (vmin, vmax)).
    """

    def __init__(self, data: str, title, columns, rows, cell_titles, vrange):
        super().__init__(data)
        self.title, self.columns, self.rows, self.cell_titles, self.vrange = title, columns, rows, cell_titles, vrange

    def __repr__(self) -> str:
        head = f"sound grid: {self.title}" if self.title else "sound grid"
        parts = [head, "columns: " + " | ".join(self.columns)] if self.columns else [head]
        if self.rows:
            parts.append("rows: " + " | ".join(self.rows))
        if self.cell_titles:
            parts.append("notes: " + " | ".join(t for row in self.cell_titles for t in row if t))
        return "; ".join(parts)


# ----------------------------------------------------------------------------- pieces


def _array(x, what: str, ndim: int) -> np.ndarray:
    """``x`` (array, tensor or nested lists) as a finite float array with ``ndim`` dimensions, else DataError."""
    try:
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"sound grid: {what} is ragged or not numeric ({err}); pass equal-sized arrays") from None
    if a.ndim != ndim or 0 in a.shape:
        raise DataError(f"sound grid: {what} must have {ndim} non-empty dimensions, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"sound grid: {what} holds NaN or infinite values; check the decoder or inversion output")
    return a


def peak_dbfs(y) -> str:
    """The peak level of a clip as it is played, e.g. "peak −6.0 dBFS" (true minus; "silent" when all zero).

    Args:
        y: (samples,) waveform in [-1, 1] (louder samples are clipped when played, and marked so).
    Returns:
        the text shown under the clip's player. Chapters: 01_data, 04_sensitivity, 07_explorer.
    """
    peak = float(np.abs(np.asarray(y, dtype=np.float64)).max()) if np.size(y) else 0.0
    if peak == 0:
        return "silent"
    level = round(20 * np.log10(min(peak, 1.0)), 1) + 0.0
    return f"peak {level:.1f} dBFS".replace("-", MINUS) + (" (clipped)" if peak > 1 else "")


def panel_png(db: np.ndarray, vmin: float, vmax: float, size=PANEL_PX) -> bytes:
    """One spectrogram (n_mels, frames) in dB as a PNG without any text (imshow, origin lower, magma).

    Args:
        db: (n_mels, frames) dB; vmin, vmax: the dB colour scale; size: (width, height) in pixels.
    Returns:
        PNG bytes. Chapters: 07_explorer.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] / 100, size[1] / 100), dpi=100, layout="none")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    buf = io.BytesIO()
    with matplotlib.rc_context({"savefig.bbox": "standard", "savefig.pad_inches": 0}):
        fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _ticks(vmin: float, vmax: float) -> list[float]:
    """Round tick values inside [vmin, vmax] (about five)."""
    from matplotlib.ticker import MaxNLocator

    return [float(t) for t in MaxNLocator(5).tick_values(vmin, vmax) if vmin - 1e-9 <= t <= vmax + 1e-9]


def colorbar_svg(vmin: float, vmax: float) -> str:
    """The grid's colour bar as SVG text: the magma scale from ``vmin`` to ``vmax`` dB, ticked, "power (dB)".

    Args:
        vmin, vmax: the shared dB scale of the grid's panels.
    Returns:
        an SVG document (text 13 px at its display size of COLORBAR_PX). Chapters: 07_explorer.
    """
    from matplotlib import colormaps

    w, h = COLORBAR_PX
    x0, x1 = 8.0, w - 100.0
    cmap = colormaps["magma"]
    stops = "".join(
        f'<stop offset="{t:.2f}" stop-color="#{"".join(f"{int(round(255 * c)):02x}" for c in cmap(t)[:3])}"/>'
        for t in np.linspace(0, 1, 11)
    )
    span = vmax - vmin if vmax > vmin else 1.0
    ticks = ""
    for t in _ticks(vmin, vmax):
        x = x0 + (x1 - x0) * (t - vmin) / span
        label = f"{t:.0f}".replace("-", MINUS)
        ticks += (
            f'<line x1="{x:.1f}" y1="18" x2="{x:.1f}" y2="23" stroke="#333"/>'
            f'<text x="{x:.1f}" y="37" text-anchor="middle">{label}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="13px" fill="#222">'
        f'<defs><linearGradient id="g">{stops}</linearGradient></defs>'
        f'<rect x="{x0}" y="4" width="{x1 - x0}" height="14" fill="url(#g)" stroke="#333" stroke-width="0.5"/>'
        f'{ticks}<text x="{x1 + 10}" y="16">power (dB)</text></svg>'
    )


def _uri(kind: str, data: bytes) -> str:
    """A base64 data URI."""
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _cell(r: int, c: int, db, y, vmin, vmax, sr: int, title: str | None) -> str:
    """One note's cell: optional title, panel, player, peak level."""
    head = f'<div style="font-size:0.85em;overflow-wrap:anywhere">{html.escape(title)}</div>' if title else ""
    alt = html.escape(f"spectrogram: {title}" if title else f"spectrogram, row {r + 1}, column {c + 1}")
    return (
        f'<td class="vaetone-cell" data-row="{r}" data-col="{c}" style="{CELL_STYLE}">{head}'
        f'<img class="vaetone-panel" alt="{alt}" src="{_uri("image/png", panel_png(db, vmin, vmax))}" '
        'style="width:100%;display:block"/>'
        f'<audio class="vaetone-player" controls="controls" preload="metadata" style="width:100%;display:block" '
        f'src="{_uri("audio/wav", wav_bytes(y, sr))}"></audio>'
        f'<div class="vaetone-level" style="font-size:0.85em">{html.escape(peak_dbfs(np.clip(y, -1, 1)))}</div></td>'
    )


def axes_text(frames: int, cfg: Config) -> str:
    """The axes of every panel, e.g. "each panel: time 0–4.0 s left to right; mel bands 20–8000 Hz bottom to top".

    Args:
        frames: the panels' frame count; cfg: hop_length, f_min, f_max.
    Returns:
        the line under the colour bar. Chapters: 07_explorer.
    """
    seconds = frames * cfg.hop_length / SAMPLE_RATE
    return (
        f"each panel: time 0\u2013{seconds:.1f} s left to right; "
        f"mel bands {cfg.f_min:.0f}\u2013{cfg.f_max:.0f} Hz bottom to top"
    )


def _table(dbs, audio, cfg, columns, rows, cell_titles, title, present, kind, sr) -> SoundGrid:
    """The HTML table of a checked grid; ``present[r][c]`` False leaves a cell empty."""
    n_rows, n_cols = dbs.shape[:2]
    shown = [dbs[r, c] for r in range(n_rows) for c in range(n_cols) if present[r][c]]
    vmin, vmax = float(np.min(shown)), float(np.max(shown))
    label_col = rows is not None
    colgroup = '<col style="width:7.5em"/>' if label_col else ""
    out = [
        f'<table class="{GRID_CLASS}" data-columns="{n_cols}" data-kind="{kind}" style="{TABLE_STYLE}">',
        f'<caption style="caption-side:top;text-align:left;font-size:0.9em">{html.escape(title)}</caption>'
        if title
        else "",
        f"<colgroup>{colgroup}{'<col/>' * n_cols}</colgroup>",
    ]
    if columns is not None:
        corner = '<th class="vaetone-corner"></th>' if label_col else ""
        heads = "".join(f'<th style="font-size:0.85em;{CELL_STYLE}">{html.escape(t)}</th>' for t in columns)
        out.append(f'<tr class="vaetone-head-row">{corner}{heads}</tr>')
    for r in range(n_rows):
        cells = (
            f'<th scope="row" style="font-size:0.85em;text-align:left;overflow-wrap:anywhere;vertical-align:middle">'
            f"{html.escape(rows[r])}</th>"
            if label_col
            else ""
        )
        for c in range(n_cols):
            t = cell_titles[r][c] if cell_titles is not None else None
            cells += (
                _cell(r, c, dbs[r, c], audio[r, c], vmin, vmax, sr, t)
                if present[r][c]
                else f'<td class="{EMPTY_CLASS}"></td>'
            )
        out.append(f'<tr class="vaetone-note-row">{cells}</tr>')
    frames = dbs.shape[-1]
    out.append(
        f'<tr class="vaetone-scale-row"><td colspan="{n_cols + label_col}" style="padding:4px 3px">'
        f'<img class="vaetone-colorbar" alt="colour bar: power (dB) from {vmin:.0f} to {vmax:.0f}" '
        f'src="{_uri("image/svg+xml", colorbar_svg(vmin, vmax).encode())}" '
        f'style="width:{COLORBAR_PX[0]}px;max-width:100%;display:block"/>'
        f'<div style="font-size:0.85em">{html.escape(axes_text(frames, cfg))}</div></td></tr></table>'
    )
    return SoundGrid("".join(out), title, list(columns or []), list(rows or []), cell_titles, (vmin, vmax))


def _labels(labels, n: int, what: str, fix: str) -> list[str]:
    """``labels`` as n strings, else DataError."""
    labels = [str(x) for x in labels]
    if len(labels) != n:
        raise DataError(f"sound grid: {len(labels)} {what} for {n}; {fix}")
    return labels


# ----------------------------------------------------------------------------- public


def sound_grid(dbs, audio, cfg: Config, columns, rows=None, title=None, cell_titles=None, sr: int = SAMPLE_RATE):
    """A table of spectrogram panels, each with its player under it: one labelled row per note set.

    Args:
        dbs: (n_rows, n_cols, n_mels, frames) dB (array, tensor or nested lists).
        audio: (n_rows, n_cols, samples) in [-1, 1], played as given (no normalisation).
        cfg: hop_length, f_min, f_max (the axes line under the colour bar).
        columns: the n_cols column titles; rows: the n_rows row labels (None only when n_rows == 1).
        title: optional caption above the table; cell_titles: optional (n_rows, n_cols) titles above each panel.
        sr: sample rate in Hz.
    Returns:
        a :class:`SoundGrid` (an ``IPython.display.HTML``; glue it like a figure).
    Raises:
        DataError: shapes of dbs and audio, or the counts of columns, rows or cell_titles, disagree.
    Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer, 08_validity.
    """
    dbs, audio = (
        _array(dbs, "dbs (n_rows, n_cols, n_mels, frames)", 4),
        _array(audio, "audio (n_rows, n_cols, samples)", 3),
    )
    if dbs.shape[:2] != audio.shape[:2]:
        raise DataError(
            f"sound grid: spectrograms {dbs.shape[:2]} and audio {audio.shape[:2]} differ in (rows, columns); "
            "pass one clip per spectrogram, in the same order"
        )
    n_rows, n_cols = dbs.shape[:2]
    columns = _labels(columns, n_cols, "column titles", "pass one title per column")
    if rows is None and n_rows > 1:
        raise DataError(f"sound grid: {n_rows} rows need row labels; pass rows=[one label per note row]")
    rows = None if rows is None else _labels(rows, n_rows, "row labels", "pass one label per row")
    if cell_titles is not None:
        cell_titles = [_labels(t, n_cols, "cell titles in a row", "pass one per column") for t in cell_titles]
        _labels(cell_titles, n_rows, "rows of cell titles", "pass one list per row")
    present = [[True] * n_cols for _ in range(n_rows)]
    return _table(dbs, audio, cfg, columns, rows, cell_titles, title, present, "grid", sr)


def sound_cells(dbs, audio, titles, cfg: Config, ncols: int = 4, title=None, sr: int = SAMPLE_RATE):
    """A flat list of notes laid out row-major, ``ncols`` per row, each panel titled; trailing cells left empty.

    Args:
        dbs: (n, n_mels, frames) dB; audio: (n, samples) played as given; titles: n panel titles.
        cfg: the axes (see :func:`sound_grid`); ncols: panels per row; title: optional caption; sr: Hz.
    Returns:
        a :class:`SoundGrid` without column titles or row labels.
    Raises:
        DataError: counts or shapes disagree, or ncols < 1.
    Chapters: 01_data, 03_training, 05_ablation, 08_validity.
    """
    dbs, audio = _array(dbs, "dbs (n, n_mels, frames)", 3), _array(audio, "audio (n, samples)", 2)
    n = len(dbs)
    if len(audio) != n:
        raise DataError(f"sound cells: {n} spectrograms and {len(audio)} clips; pass one clip per spectrogram")
    titles = _labels(titles, n, "titles", "pass one title per note")
    if int(ncols) < 1:
        raise DataError(f"sound cells: ncols={ncols} must be at least 1")
    ncols = min(int(ncols), n)
    n_rows = -(-n // ncols)
    pad = n_rows * ncols - n
    grid_db = np.concatenate([dbs, np.repeat(dbs[-1:], pad, axis=0)]).reshape(n_rows, ncols, *dbs.shape[1:])
    grid_y = np.concatenate([audio, np.repeat(audio[-1:], pad, axis=0)]).reshape(n_rows, ncols, -1)
    present = [[r * ncols + c < n for c in range(ncols)] for r in range(n_rows)]
    cell_titles = [[titles[r * ncols + c] if present[r][c] else "" for c in range(ncols)] for r in range(n_rows)]
    return _table(grid_db, grid_y, cfg, None, None, cell_titles, title, present, "cells", sr)


class _GridParser(HTMLParser):
    """Collects, per sound-grid table, its attributes and per note row the cells' classes and counts."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "table" and GRID_CLASS in classes:
            self.tables.append({"attrs": a, "rows": [], "heads": None, "row": None})
        if not self.tables:
            return
        t = self.tables[-1]
        if tag == "tr":
            t["row"] = "note" if "vaetone-note-row" in classes else "head" if "vaetone-head-row" in classes else None
            if t["row"] == "note":
                t["rows"].append({"label": "", "cells": []})
            elif t["row"] == "head":
                t["heads"] = 0
        elif tag == "th" and t["row"] == "head" and "vaetone-corner" not in classes:
            t["heads"] += 1
        elif tag == "td" and t["row"] == "note":
            self.cell = {"empty": EMPTY_CLASS in classes, "img": 0, "audio": 0}
            t["rows"][-1]["cells"].append(self.cell)
        elif tag == "img" and self.cell is not None and "vaetone-panel" in classes:
            self.cell["img"] += 1
        elif tag == "audio" and self.cell is not None:
            self.cell["audio"] += 1

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif tag == "tr" and self.tables:
            self.tables[-1]["row"] = None


def grid_problems(html: str, where: str) -> list[str]:
    """What is wrong with the sound grids of a page: rows whose panels and players do not match the columns.

    Args:
        html: a page's HTML; where: its name in the messages.
    Returns:
        one message per problem (empty when every note row has ``data-columns`` cells, each with one
        panel and one player; empty cells only trailing in the last row of a ``sound_cells`` grid).
    Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer, 08_validity.
    """
    parser = _GridParser()
    parser.feed(html)
    problems = []
    for k, t in enumerate(parser.tables, 1):
        name = f"{where}: sound grid {k}"
        try:
            n = int(t["attrs"].get("data-columns", ""))
        except ValueError:
            problems.append(f"{name} has no data-columns count; build it with vaetone.book.sound")
            continue
        cells_kind = t["attrs"].get("data-kind") == "cells"
        if not t["rows"]:
            problems.append(f"{name} has no note rows")
        if t["heads"] is not None and t["heads"] != n:
            problems.append(f"{name} has {t['heads']} column titles for {n} columns")
        for i, row in enumerate(t["rows"], 1):
            cells = row["cells"]
            if len(cells) != n:
                problems.append(f"{name}, row {i}: {len(cells)} cells for {n} columns")
            empty = [c["empty"] for c in cells]
            if any(empty):
                trailing = empty == sorted(empty) and i == len(t["rows"])
                if not (cells_kind and trailing):
                    problems.append(f"{name}, row {i}: empty cells other than the last row's trailing ones")
            for j, c in enumerate(cells, 1):
                if not c["empty"] and (c["img"], c["audio"]) != (1, 1):
                    problems.append(f"{name}, row {i}, column {j}: {c['img']} panels and {c['audio']} players (1 each)")
    return problems
