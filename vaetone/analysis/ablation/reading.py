"""What chapter 05 reads off its results: the Overview's answer, the heatmaps' top dimensions, the listening grid.

The answer is built from the numbers of the reference seed's stage
(:func:`vaetone.analysis.ablation.result`) and of the across-seeds result
(:func:`vaetone.analysis.seeds.result` with ``"ablation"``), so that it is true for any run; the
dimensions are named only by the names that hold across the seeds.

Chapter: 05_ablation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vaetone.analysis.sensitivity.reading import names_clause
from vaetone.errors import DataError

HEATMAP_DIMS = 8
"""How many dimensions (the costliest, in the order chosen on the validation notes) the per-group heatmaps show."""


def _costliest(findings: Mapping[str, Any]) -> tuple[int, str]:
    """The costliest dimension (validation order) and its test cost, from ``top_abl`` ("z5: +4.03 dB² (...)")."""
    found = re.match(r"z(\d+): (.+)", str(findings["top_abl"]).split("; ")[0])
    if found is None:
        raise DataError(
            f"ablation findings: top_abl {findings['top_abl']!r} is not 'z<dim>: <cost>'; the result is from "
            "another version: delete its folder under the run's results/ to recompute"
        )
    return int(found.group(1)), found.group(2)


def overview_answer(findings: Mapping[str, Any], across: Mapping[str, Any]) -> str:
    """The chapter's answer in one sentence: the costliest dimension, the free ones, k90, and the names that hold.

    Args:
        findings: the ablation stage's findings (top_abl, base_mse (dB²), n_free, n_dims, free_pct,
            k90, recovered_test).
        across: the across-seeds ablation findings (seed_labels, n_seeds_used, n_labels_reference,
            n_labels_held, labels_held).
    Returns:
        One sentence, ending with a full stop. Chapter: 05_ablation.
    """
    dim, cost = _costliest(findings)
    name = across["seed_labels"].get(str(dim), "mixed")
    names = names_clause(across, "names of what an ablation changes")
    free = f"{findings['n_free']} of the {findings['n_dims']}"
    free = f"all {findings['n_dims']}" if findings["n_free"] == findings["n_dims"] else free
    return (
        f"Ablated alone, the costliest dimension (chosen on the validation notes), z{dim} ({name}), adds {cost} "
        f"to the test notes' log-mel MSE of {findings['base_mse']:.4g} dB², {free} dimensions each cost the "
        f"validation notes less than {findings['free_pct']:g} % of "
        f"it, keeping the {findings['k90']} dimensions chosen there recovers {findings['recovered_test']} of the "
        f"test notes' error reduction, and {names}."
    )


def top_dims_percent(table: pd.DataFrame, order: Sequence[int], k: int = HEATMAP_DIMS) -> pd.DataFrame:
    """A group × dim table of relative increases, cut to the ``k`` costliest dimensions and given in per cent.

    Args:
        table: ``by_family`` or ``by_pitch_range`` (group × dim, increase / unablated error).
        order: the dimensions, costliest first (the result's ``dimension_order``).
        k: how many dimensions to keep.
    Returns:
        group × "z<dim>" (the k costliest, in order), 100 × the relative increase (% of the group's
        unablated error). Chapter: 05_ablation.
    """
    dims = [int(d) for d in order[:k]]
    shown = 100 * table[dims]
    shown.columns = pd.Index([f"z{d}" for d in dims], name=f"ablated dimension (costliest {len(dims)})")
    return shown


def listening_grid(listening: pd.DataFrame, db, audio, names: pd.Series) -> dict:
    """The listening examples as the arguments of a sound grid: a row per note, a column per variant.

    Args:
        listening: the result's ``listening`` table (note, variant; note-major, the same variants per note).
        db: (m, n_mels, frames) dB; audio: (m, samples), one gain for all (the result's arrays).
        names: the ablation names that hold across seeds, indexed by dim
            (:func:`vaetone.analysis.seeds_labels.held_labels` with ``"ablation"``).
    Returns:
        {dbs (notes, variants, n_mels, frames), audio (notes, variants, samples), columns (the variants,
        "z5 ablated" → "z5 (mixed) ablated"), rows (the notes)}.
    Raises:
        DataError: the notes do not all have the same variants in the same order.
    Chapter: 05_ablation.
    """
    notes, variants = list(pd.unique(listening["note"])), list(pd.unique(listening["variant"]))
    if listening["variant"].tolist() != variants * len(notes) or len({len(db), len(listening), len(audio)}) != 1:
        raise DataError(
            "listening examples: every note must have the same variants in the same order, one spectrogram and "
            "one clip each; delete the ablation result's folder under the run's results/ to recompute"
        )
    shape = (len(notes), len(variants))
    return {
        "dbs": np.asarray(db).reshape(*shape, *np.shape(db)[1:]),
        "audio": np.asarray(audio).reshape(*shape, -1),
        "columns": [re.sub(r"^z(\d+) ", lambda m: f"z{m[1]} ({names.loc[int(m[1])]}) ", v) for v in variants],
        "rows": notes,
    }
