"""Progress bars: ``tqdm.auto`` (a widget in Jupyter, text in a terminal), silenced for the book build.

The book pipeline sets ``VAETONE_PROGRESS=0`` so that executed chapters hold no progress
bars; anywhere else the bars show, unless the caller disables them.
"""

from __future__ import annotations

import os

from tqdm.auto import tqdm as _tqdm


def tqdm(*args, **kwargs):
    """A ``tqdm.auto.tqdm`` bar, disabled when the environment variable VAETONE_PROGRESS is "0"."""
    if os.environ.get("VAETONE_PROGRESS", "1") == "0":
        kwargs["disable"] = True
    return _tqdm(*args, **kwargs)
