"""The book's one plotting style: figures that fit the column, with text of 9 pt or more at display size.

:func:`use` sets matplotlib's parameters (and SVG output in Jupyter); :func:`check_figure` refuses a
figure that is too wide for the column or holds text too small to read; :func:`svg_problems` finds the
same faults in a saved SVG (the build check). :mod:`vaetone.book.plots` calls :func:`use` at import.

Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 06_statistics, 08_validity
"""

from __future__ import annotations

import re
import sys
import textwrap

import matplotlib
import matplotlib.text
import numpy as np

from vaetone.errors import VaetoneError

MAX_WIDTH_IN = 7.0
"""Widest figure (inches): the text column of the book's theme in a 1280-px window is 672 CSS px = 7.0 in
(measured in Chromium), so figures are shown at 1:1 and 9 pt stays 9 pt."""

MIN_FONT_PT = 9.0
"""Smallest text (points) at display size."""

MAX_HEIGHT_IN = 11.0
"""Tallest heatmap (inches) before rows must be left out."""

CHAR_IN = 0.6 * MIN_FONT_PT / 72
"""Approximate width (inches) of one character of 9-pt text, used to lay out labels."""

LINE_IN = 1.4 * MIN_FONT_PT / 72
"""Height (inches) of one line of 9-pt text with its spacing."""

CAP_CAPTION = (
    "Where the colour bar ends in an arrow, its scale is capped at the 95th percentile of the cells, "
    "and cells in the arrow's colour exceed it."
)
"""A caption sentence for ``plots.heatmap``'s default ``cap_percentile=95``: true whether or not it capped."""


RC = {
    "font.size": 10.0,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10.0,
    "xtick.labelsize": 9.0,
    "ytick.labelsize": 9.0,
    "legend.fontsize": 9.0,
    "legend.title_fontsize": 9.0,
    "figure.titlesize": 11.0,
    "figure.labelsize": 10.0,
    "figure.dpi": 100,
    "figure.figsize": (6.4, 3.6),
    "figure.constrained_layout.use": True,
    "savefig.facecolor": "white",
    "svg.fonttype": "none",
    "svg.hashsalt": "vaetone",
    "svg.id": "vaetone",
    "axes.grid.axis": "y",
    "image.cmap": "viridis",
}
"""The rcParams :func:`use` applies: every font >= MIN_FONT_PT, text kept as text in SVGs, fixed SVG ids."""


class FigureError(VaetoneError):
    """A figure is wider than the book's column, holds text smaller than 9 pt, or cannot be laid out legibly."""


def use() -> None:
    """Apply the book's plotting style (idempotent); in IPython, also show figures inline as SVG at their size.

    Returns:
        None. Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 06_statistics, 08_validity
    """
    matplotlib.rcParams.update(RC)
    ipython = sys.modules.get("IPython")
    if ipython is None or ipython.get_ipython() is None:
        return
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # no inline backend: the kernel shows figures its own way
        return
    set_matplotlib_formats("svg", bbox_inches=None)  # "tight" would pad figures past the column


def width(fraction: float = 1.0) -> float:
    """A figure width (inches) that is ``fraction`` of the column.

    Args:
        fraction: share of the column, in (0, 1].
    Returns:
        Width in inches (MAX_WIDTH_IN * fraction). Chapters: 04_sensitivity, 05_ablation, 06_statistics
    """
    if not 0 < fraction <= 1:
        raise FigureError(f"width(fraction={fraction!r}): the fraction of the column must be in (0, 1]")
    return MAX_WIDTH_IN * fraction


def check_figure(fig):
    """Return ``fig`` if it fits the column and all its visible text is at least MIN_FONT_PT; else raise.

    Args:
        fig: a matplotlib Figure (its size in inches is its display size).
    Returns:
        The same Figure. Raises FigureError naming the width or the too-small texts.
        Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 06_statistics, 08_validity
    """
    w, _ = fig.get_size_inches()
    title = fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""
    where = f"figure {title!r}" if title else "a figure"
    if w > MAX_WIDTH_IN + 1e-6:
        raise FigureError(
            f"{where} is {w:.2f} in wide, wider than the book's column ({MAX_WIDTH_IN} in); "
            f"draw it at most style.width() inches wide (fewer columns or panels)"
        )
    small = [
        (t.get_text(), t.get_fontsize())
        for t in fig.findobj(matplotlib.text.Text)
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT - 1e-6
    ]
    if small:
        shown = ", ".join(f"{text!r} ({size:g} pt)" for text, size in small[:5])
        raise FigureError(
            f"{where} has {len(small)} text(s) smaller than {MIN_FONT_PT:g} pt: {shown}; "
            f"use at least {MIN_FONT_PT:g} pt (the style's defaults) and give the text more room"
        )
    return fig


def colour_scale(values: np.ndarray, center_zero: bool | None = None, cap_percentile: float | None = 95.0):
    """The colour limits of a heatmap: from 0 for non-negative data, centred on 0 for signed data.

    Args:
        values: the cells (any shape; NaN ignored).
        center_zero: True for a scale centred on 0; None: centred when any value is negative.
        cap_percentile: for non-negative data, cap the scale at this percentile of the cells when the
            largest cell exceeds it by more than half (a few cells would saturate the scale); None: never.
    Returns:
        (vmin, vmax, extend): extend is "max" when capped (the colour bar ends in an arrow), else "neither".
        Chapters: 04_sensitivity, 05_ablation, 06_statistics
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0, "neither"
    signed = bool((finite < 0).any()) if center_zero is None else center_zero
    top = float(np.abs(finite).max()) if signed else float(finite.max())
    if top <= 0:
        return (-1.0, 1.0, "neither") if signed else (0.0, 1.0, "neither")
    if signed:
        return -top, top, "neither"
    if cap_percentile is not None:
        cap = float(np.percentile(finite, cap_percentile))
        if cap > 0 and top > 1.5 * cap:
            return 0.0, cap, "max"
    return 0.0, top, "neither"


def wrap(text: str, inches: float) -> str:
    """``text`` wrapped to lines of 9-pt text no wider than ``inches``.

    Args:
        text: a title or label.
        inches: the width available.
    Returns:
        The text with line breaks. Chapters: 04_sensitivity, 05_ablation, 06_statistics
    """
    return textwrap.fill(str(text), max(8, int(inches / CHAR_IN)))


def panels(n: int, ncols: int, max_cols: int, row_in: float, **kw):
    """A grid of ``n`` panels in at most ``max_cols`` columns at the column's full width (unused panels off).

    Args:
        n: panels; ncols: wanted columns; max_cols: most columns that stay legible; row_in: inches per row.
    Returns:
        (fig, axes (nrows, ncols), ncols). Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation
    """
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, max_cols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, row_in * nrows + 0.5), squeeze=False, **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes, ncols


def tick_step(labels: list[str], inches: float, rotated: bool) -> int:
    """Label every k-th category so that 9-pt labels fit ``inches`` (rotated: one line per label).

    Args:
        labels: the category labels; inches: the axis length; rotated: labels drawn at 90°.
    Returns:
        k >= 1. Chapter: 01_data
    """
    need = LINE_IN if rotated else max(len(s) for s in labels) * CHAR_IN + 0.08
    return max(1, int(np.ceil(need * len(labels) / max(inches, 1e-9))))


def heatmap_layout(rows: list[str], cols: list[str], row_title: bool, title: str):
    """Size a heatmap so that its 9-pt labels fit, within the column's width.

    Args:
        rows, cols: the row and column labels; row_title: whether the rows have an axis label.
        title: the heatmap's title (named in errors).
    Returns:
        (figsize in inches, cell width, cell height (in), whether column labels are rotated). Raises
        FigureError when the rows or columns are too many to label at 9 pt.
        Chapters: 04_sensitivity, 05_ablation, 06_statistics
    """
    nrows, ncols = len(rows), len(cols)
    row_in = max(len(s) for s in rows) * CHAR_IN + (LINE_IN if row_title else 0) + 0.1
    room = MAX_WIDTH_IN - row_in - 1.3  # the colour bar and its label
    cell_w = min(room / ncols, 0.75)
    col_in = max(len(s) for s in cols) * CHAR_IN + 0.06
    rotated = col_in > cell_w
    if cell_w < LINE_IN:
        raise FigureError(
            f"heatmap {title!r}: {ncols} columns cannot be labelled at {MIN_FONT_PT:g} pt within "
            f"{MAX_WIDTH_IN} in (at most {max(0, int(room / LINE_IN))}); show fewer columns, or transpose the table"
        )
    cell_h = float(np.clip(cell_w, LINE_IN + 0.02, 0.42))
    height = nrows * cell_h + (col_in if rotated else LINE_IN) + 2 * LINE_IN + 0.5
    if height > MAX_HEIGHT_IN:
        raise FigureError(
            f"heatmap {title!r}: {nrows} rows make a figure {height:.1f} in tall (at most {MAX_HEIGHT_IN} in); "
            f"show fewer rows (at most {int((MAX_HEIGHT_IN - 2) / cell_h)}), or transpose the table"
        )
    height = max(height, 2.6)  # room for the colour bar's label
    return (min(MAX_WIDTH_IN, row_in + ncols * cell_w + 1.4), height), cell_w, cell_h, rotated


_LENGTH = re.compile(r"^\s*([0-9.]+)\s*(pt|px|in)?\s*$")
_FONT = re.compile(r"font(?:-size)?\s*:\s*(?:[a-z-]+\s+)*?([0-9.]+)(px|pt)", re.IGNORECASE)
_TEXT = re.compile(r"<text\b[^>]*>(?:\s*<tspan[^>]*>)?([^<]*)", re.IGNORECASE)


def _inches(value: str) -> float:
    """An SVG length ("460.8pt", "614px", "6.4in", "614") in inches."""
    m = _LENGTH.match(value)
    if not m:
        raise FigureError(f"cannot read the SVG length {value!r}; save figures with matplotlib's SVG backend")
    number, unit = float(m.group(1)), (m.group(2) or "px")
    return number / {"pt": 72.0, "px": 96.0, "in": 1.0}[unit]


def _svg_attrs(svg_text: str) -> dict[str, str]:
    """The attributes of an SVG document's root ``<svg>`` element ({} when it has none)."""
    root = re.search(r"<svg\b[^>]*>", svg_text)
    return dict(re.findall(r'\b([\w:-]+)="([^"]*)"', root.group(0))) if root else {}


def svg_width_in(svg_text: str) -> float:
    """The width of an SVG document in inches (0 when it has no ``<svg width=...>``).

    Chapters: all (the build check and the browser test).
    """
    attrs = _svg_attrs(svg_text)
    return _inches(attrs["width"]) if "width" in attrs else 0.0


def svg_text_sizes(svg_text: str) -> list[tuple[str, float]]:
    """Every text of an SVG figure with its font size in pt at the figure's natural size.

    Returns:
        [(text, pt), ...] in document order (matplotlib with ``svg.fonttype="none"`` keeps text as
        ``<text style="font-size: 9px">``, 1 user unit = 1 pt). Chapters: all (the build check and the browser test).
    """
    view = _svg_attrs(svg_text).get("viewBox", "").split()
    width_in = svg_width_in(svg_text)
    scale = width_in * 72.0 / float(view[2]) if len(view) == 4 and float(view[2]) > 0 else 1.0  # pt per user unit
    sizes = []
    for m in re.finditer(r"<text\b[^>]*>", svg_text, re.IGNORECASE):
        size = _FONT.search(m.group(0))
        if size is not None:
            text = _TEXT.match(svg_text, m.start())
            pt = float(size.group(1)) * (4 / 3 if size.group(2).lower() == "pt" else 1.0) * scale
            sizes.append((text.group(1).strip() if text else "", pt))
    return sizes


def svg_problems(svg_text: str, where: str) -> list[str]:
    """Problems of one saved SVG figure: wider than the column, or a text smaller than MIN_FONT_PT.

    Args:
        svg_text: the SVG document (matplotlib writes width in pt and 1 user unit = 1 pt).
        where: what to name in each message (a file or page and figure).
    Returns:
        One message per problem (empty when the figure is fine). Chapters: all (the build check).
    """
    if re.search(r"<svg\b[^>]*>", svg_text) is None:
        return [f"{where}: no <svg> element; is this an SVG figure?"]
    width_in = svg_width_in(svg_text)
    if not width_in:
        return [f"{where}: the <svg> element has no width; save it with matplotlib's SVG backend"]
    problems = []
    if width_in > MAX_WIDTH_IN + 1e-6:
        problems.append(f"{where}: {width_in:.2f} in wide, wider than the column ({MAX_WIDTH_IN} in)")
    for label, pt in svg_text_sizes(svg_text):
        if pt < MIN_FONT_PT - 1e-6:
            problems.append(f"{where}: text {label!r} is {pt:.1f} pt, smaller than {MIN_FONT_PT:g} pt")
    return problems
