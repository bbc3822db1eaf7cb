"""Build-time checks of the executed chapters: legible figures and sound grids that match their pictures.

:func:`check_book` runs in :func:`vaetone.book.pipeline.build` before Jupyter Book, so a figure
wider than the column, text smaller than the book's minimum, a figure only as PNG (whose text
cannot be checked) or a sound grid whose players do not line up with its panels fails the
build with the chapter and cell named, instead of reaching a reader's browser.

Chapters: all.
"""

from __future__ import annotations

from pathlib import Path

from vaetone.errors import VaetoneError


class BookError(VaetoneError):
    """The executed chapters would make an illegible or misaligned page."""


def _removed(cell) -> bool:
    tags = set(cell.get("metadata", {}).get("tags", []))
    return bool({"remove-cell", "remove-output"} & tags)


def output_problems(output: dict, where: str, shown: bool) -> list[str]:
    """Problems of one cell output: its SVG (:func:`vaetone.book.style.svg_problems`), its sound grids
    (:func:`vaetone.book.sound.grid_problems`), or a PNG figure that reaches the page.

    Args:
        output: a notebook output; where: "chapter, cell N" for the message; shown: the output reaches the
            page (its cell is not removed, or it is glued).
    """
    from vaetone.book import sound, style

    data = output.get("data", {})
    problems = []
    if "image/svg+xml" in data:
        svg = data["image/svg+xml"]
        problems += style.svg_problems(svg if isinstance(svg, str) else "".join(svg), where)
    html = data.get("text/html", "")
    html = html if isinstance(html, str) else "".join(html)
    if "vaetone-sound-grid" in html:
        problems += sound.grid_problems(html, where)
    if shown and "image/png" in data and "image/svg+xml" not in data:
        problems.append(
            f"{where}: a figure only as PNG, whose text size cannot be checked; draw it with vaetone.book.plots "
            "(the book style saves SVG)"
        )
    return problems


def notebook_problems(path: Path) -> list[str]:
    """Every problem of one executed chapter (see :func:`output_problems`)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    problems = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            glued = "scrapbook" in output.get("metadata", {})
            problems += output_problems(output, f"{Path(path).stem}, cell {i}", glued or not _removed(cell))
    return problems


def check_book(staging: Path) -> None:
    """Check every executed chapter of a staged book.

    Raises:
        BookError: listing each problem with its chapter and cell, and what to do.
    """
    problems = [p for nb in sorted((Path(staging) / "chapters").glob("*.ipynb")) for p in notebook_problems(nb)]
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise BookError(
            f"{len(problems)} problem(s) in the executed chapters would reach readers:\n  {shown}\n"
            "fix the figure or grid in vaetone/book (or the chapter's call), re-execute the chapter, and build again"
        )
