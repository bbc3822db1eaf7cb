"""Do the names of the dimensions hold across training seeds? A name the matched dimensions do not share is "mixed".

The sensitivity stage names each dimension of the reference seed after the descriptor its sweep
changes (:mod:`vaetone.analysis.sensitivity.labels`), and the per-run analysis of every other
seed names that seed's own dimensions the same way. After matching the seeds' dimensions to the
reference's (:func:`vaetone.analysis.seeds.match_to_reference`), a reference dimension keeps its
name across seeds only when the matched dimension of every seed carries the same name; otherwise
it is "mixed". A reference dimension that moves no descriptor ("none") stays "none" only when
every matched dimension moves none either. Names are sign-free: a matched dimension that runs the
other way still moves the same descriptor.

Chapters: 04_sensitivity, 05_ablation, 06_statistics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vaetone.analysis import seeds as seeds_mod
from vaetone.analysis.sensitivity.labels import MIXED, NOT_NAMES

LABEL = "label"
"""The column of a per-dimension table that holds a dimension's name."""


def label_table(across: seeds_mod.AcrossSeeds, column: str = LABEL) -> pd.DataFrame:
    """Every seed's name of the matched dimension, and the name that holds across seeds.

    Args:
        across: the aligned seeds (:func:`vaetone.analysis.seeds.across_seeds`); every table has ``column``.
        column: the name column.
    Returns:
        DataFrame indexed by reference dim: "seed <s>" (the name of the matched dimension in each
        seed, reference first), held_in (how many seeds share the reference's name),
        min_abs_r (the weakest match of the dimension over the seeds, |r| of the posterior means),
        label (the reference's name where every seed shares it, else "mixed").
        Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    names = {}
    for seed, table, (perm, _signs, _r) in zip(across.seeds, across.tables, across.matches):
        names[f"seed {seed}"] = table[column].astype(str).loc[list(perm)].to_numpy()
    frame = pd.DataFrame(names, index=pd.RangeIndex(len(across.matches[0][0]), name="dim"))
    reference = frame.iloc[:, 0]
    same = frame.eq(reference, axis=0)
    frame["held_in"] = same.sum(axis=1).astype(int)
    frame["min_abs_r"] = np.min(np.stack([np.asarray(m[2], dtype=float) for m in across.matches]), axis=0)
    frame["label"] = reference.where(same.all(axis=1), MIXED)
    return frame


def label_findings(table: pd.DataFrame) -> dict:
    """The quoted names across seeds: which hold, how many the reference had, how many became "mixed".

    Args:
        table: :func:`label_table`.
    Returns:
        JSON-native dict: seed_labels ({str(dim): name across seeds}), labels_held ("z5 (centroid_hz),
        z2 (rms_db)", or "none": the descriptor names that hold in every seed), n_labels_held,
        n_labels_reference (descriptor names of the reference seed), n_labels_lost (of those, the ones
        the other seeds do not share: "mixed" across seeds). Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    reference = table.iloc[:, 0]
    named = ~reference.isin(NOT_NAMES)
    held = named & ~table["label"].isin(NOT_NAMES)
    return {
        "seed_labels": {str(int(d)): str(v) for d, v in table["label"].items()},
        "labels_held": ", ".join(f"z{int(d)} ({table.loc[d, 'label']})" for d in table.index[held]) or "none",
        "n_labels_held": int(held.sum()),
        "n_labels_reference": int(named.sum()),
        "n_labels_lost": int((named & ~held).sum()),
    }


def reference_top(reference: pd.DataFrame, column: str, largest: bool, tiebreak: str | None, k: int) -> list[int]:
    """The reference seed's ``k`` most important dimensions, ordered as its own stage orders them.

    Args:
        reference: the reference seed's per-dimension table (indexed by dim); column: the score;
        largest: whether larger is more important; tiebreak: a column ordering ties (larger first), or None;
        k: how many.
    Returns:
        The dims, most important first. Chapter: 04_sensitivity.
    """
    keys, ascending = [column], [not largest]
    if tiebreak is not None and tiebreak in reference.columns:
        keys, ascending = [column, tiebreak], [not largest, False]
    return [int(d) for d in reference.sort_values(keys, ascending=ascending, kind="stable").index[:k]]


def top_names(dims: list[int], table: pd.DataFrame) -> str:
    """The dimensions with the names that hold across seeds, e.g. "z5 (flatness), z0 (mixed)".

    Args:
        dims: reference dims; table: :func:`label_table`.
    Returns:
        The phrase. Chapter: 04_sensitivity.
    """
    return ", ".join(f"z{d} ({table.loc[d, LABEL]})" for d in dims)
