"""What chapter 04 reads off its results: the Overview's one-sentence answer and the sweep strips as a sound grid.

The answer is built from the numbers of the reference seed's stage
(:func:`vaetone.analysis.sensitivity.result`) and of the across-seeds result
(:func:`vaetone.analysis.seeds.result` with ``"sensitivity"``), so that it is true for any run:
it names dimensions only by the names that hold across the seeds, and says so when none does.

Chapter: 04_sensitivity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vaetone.errors import DataError

MINUS = "\u2212"
"""The typographic minus of the sweep values in the column titles."""


def names_clause(across: Mapping[str, Any], what: str = "descriptor names") -> str:
    """How many of the reference seed's names hold across the seeds, in words (for any count, zero included).

    Args:
        across: findings of the across-seeds result: n_seeds_used, n_labels_reference,
            n_labels_held, labels_held ("z5 (rms_db), ..." or "none").
        what: what the names are ("descriptor names", "names of what an ablation changes").
    Returns:
        e.g. "1 of the reference seed's 6 descriptor names holds across the 3 training seeds:
        z5 (rms_db)" or "none of the reference seed's 6 descriptor names holds across the 2 training
        seeds, so no dimension has a name". Chapters: 04_sensitivity, 05_ablation.
    """
    n_seeds, n_ref, n_held = (int(across[k]) for k in ("n_seeds_used", "n_labels_reference", "n_labels_held"))
    if n_seeds < 2:
        return "with a single training seed no name can be checked, so no dimension has a name"
    if n_ref == 0:
        return f"the reference seed gives no dimension a name, so none holds across the {n_seeds} training seeds"
    if n_held == 0:
        return (
            f"none of the reference seed's {n_ref} {what} holds across the {n_seeds} training seeds, "
            "so no dimension has a name"
        )
    verb = "holds" if n_held == 1 else "hold"
    held = across["labels_held"]
    return f"{n_held} of the reference seed's {n_ref} {what} {verb} across the {n_seeds} training seeds: {held}"


def overview_answer(findings: Mapping[str, Any], across: Mapping[str, Any]) -> str:
    """The chapter's answer in one sentence: the most and least influential dimensions and the names that hold.

    Args:
        findings: the sensitivity stage's findings (bottom_dim, rho_min, rho_max).
        across: the across-seeds sensitivity findings (top_dims_across, n_seeds_used,
            n_labels_reference, n_labels_held, labels_held).
    Returns:
        One sentence, ending with a full stop. Chapter: 04_sensitivity.
    """
    return (
        f"By the mean of four rankings (sweeps of one dimension, gradients, Sobol indices), the decoded note "
        f"depends most on {across['top_dims_across']} and least on {findings['bottom_dim']}, the rankings agree "
        f"to a Spearman ρ of {findings['rho_min']:.2f} to {findings['rho_max']:.2f}, and {names_clause(across)}."
    )


def strip_grid(strips, audio, findings: Mapping[str, Any], names: pd.Series) -> dict:
    """The sweep strips of the top dimensions as the arguments of :func:`vaetone.book.sound.sound_grid`.

    Args:
        strips: (n_top·steps, n_mels, frames) dB, dimension-major (the result's ``strips``).
        audio: (n_top·steps, samples), the same decodes as sound (the result's ``strip_audio``).
        findings: the stage's findings (top_dimensions, strip_values).
        names: the names that hold across seeds, indexed by dim (:func:`vaetone.analysis.seeds_labels.held_labels`).
    Returns:
        {dbs (n_top, steps, n_mels, frames), audio (n_top, steps, samples), columns ("z = −3.0", ...),
        rows ("z5 (mixed)", ...)}.
    Raises:
        DataError: the strips do not hold one panel per (top dimension, value).
    Chapter: 04_sensitivity.
    """
    top, values = list(findings["top_dimensions"]), list(findings["strip_values"])
    strips, audio = np.asarray(strips), np.asarray(audio)
    if len(strips) != len(top) * len(values) or len(audio) != len(strips):
        raise DataError(
            f"sweep strips: {len(strips)} panels and {len(audio)} clips for {len(top)} dimensions × {len(values)} "
            "values; the sensitivity result is inconsistent: delete its folder under the run's results/ to recompute"
        )
    return {
        "dbs": strips.reshape(len(top), len(values), *strips.shape[1:]),
        "audio": audio.reshape(len(top), len(values), -1),
        "columns": [f"z = {v:+.1f}".replace("-", MINUS) if v else "z = 0.0" for v in values],
        "rows": [f"z{d} ({names.loc[int(d)]})" for d in top],
    }
