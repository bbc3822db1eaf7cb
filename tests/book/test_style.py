"""Tests of vaetone.book.style: the column's width and the 9-pt minimum, on figures and on their saved SVGs."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from vaetone.book import style  # noqa: E402
from vaetone.errors import VaetoneError  # noqa: E402


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    return buffer.getvalue()


def _figure(width_in: float, label_pt: float):
    style.use()
    fig, ax = plt.subplots(figsize=(width_in, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("time (s)", fontsize=label_pt)
    return fig


def test_use_sets_legible_fonts_and_text_as_text_in_svgs():
    style.use()
    rc = matplotlib.rcParams
    sizes = ["font.size", "xtick.labelsize", "ytick.labelsize", "legend.fontsize", "axes.titlesize"]
    assert min(float(rc[k]) for k in sizes) >= style.MIN_FONT_PT
    assert rc["svg.fonttype"] == "none" and rc["svg.hashsalt"] == "vaetone"
    style.use()  # idempotent
    assert rc["font.size"] == 10.0


def test_a_good_figure_passes_both_checks():
    fig = _figure(6.0, 10)
    assert style.check_figure(fig) is fig
    assert style.svg_problems(_svg(fig), "good.svg") == []
    plt.close(fig)


def test_a_ten_inch_figure_is_too_wide():
    fig = _figure(10.0, 10)
    with pytest.raises(style.FigureError, match="10.00 in wide"):
        style.check_figure(fig)
    assert issubclass(style.FigureError, VaetoneError)
    assert style.svg_problems(_svg(fig), "wide.svg") == ["wide.svg: 10.00 in wide, wider than the column (7.0 in)"]
    plt.close(fig)


def test_eight_point_text_is_too_small_and_named():
    fig = _figure(6.0, 8)
    with pytest.raises(style.FigureError, match=r"'time \(s\)' \(8 pt\)"):
        style.check_figure(fig)
    assert style.svg_problems(_svg(fig), "small.svg") == ["small.svg: text 'time (s)' is 8.0 pt, smaller than 9 pt"]
    plt.close(fig)


def test_width_is_a_share_of_the_column():
    assert style.width() == 7.0 and style.width(0.5) == 3.5
    with pytest.raises(style.FigureError):
        style.width(1.5)


def test_colour_scale_from_zero_centred_or_capped():
    assert style.colour_scale([[0.0, 2.0]]) == (0.0, 2.0, "neither")
    assert style.colour_scale([[-1.0, 0.5]]) == (-1.0, 1.0, "neither")
    capped = style.colour_scale([[0.1] * 19 + [10.0]])
    assert capped[0] == 0.0 and capped[1] == pytest.approx(0.1 + 0.05 * 9.9) and capped[2] == "max"
