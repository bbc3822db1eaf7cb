"""Quoted numbers into the page: every finding of a stage result glued under its own name.

A chapter calls :func:`glue_findings` on ``r.findings`` and quotes them with
``{glue:text}`name``` in its prose; no chapter cell computes a number the prose quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def gluable(value: Any) -> bool:
    """True for the values a sentence can quote: numbers, text and booleans (not lists or mappings)."""
    return isinstance(value, (int, float, str, bool))


def glue_findings(findings: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Glue every quotable finding (``glue(prefix + name, value, display=False)``); returns the names.

    Args:
        findings: a stage result's ``findings``.
        prefix: prepended to each name (when one page quotes two results with the same names).
    Chapters: all.
    """
    from myst_nb import glue

    names = []
    for name, value in findings.items():
        if gluable(value):
            glue(prefix + name, value, display=False)
            names.append(prefix + name)
    return names


def glue_figure(name: str, figure: Any) -> None:
    """Glue a figure (a matplotlib Figure or an HTML block such as a sound grid) for a ``{glue:figure}``.

    A matplotlib figure is closed once glued, so that the notebook holds it once (not again as
    the cell's own output). Chapters: all.
    """
    from myst_nb import glue

    glue(name, figure, display=False)
    if type(figure).__module__.startswith("matplotlib"):
        import matplotlib.pyplot as plt

        plt.close(figure)
