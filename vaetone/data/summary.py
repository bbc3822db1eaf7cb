"""What the data chapter shows: counts by family, source, pitch, velocity and split; example notes.

Chapter: 01_data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vaetone.config import FAMILIES, SOURCES
from vaetone.data.dataset import Dataset
from vaetone.data.splits import SPLITS

# ---------------------------------------------------------------------------------------------
# What the data chapter shows
# ---------------------------------------------------------------------------------------------


def summary_tables(meta: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Counts of notes and instruments by family, source, pitch, velocity and split.

    Args:
        meta: ``Dataset.meta`` (a ``split`` column is optional).
    Returns:
        {"family", "source": DataFrame(instruments, notes) in NSynth order, absent ones as 0;
         "pitch", "velocity": DataFrame(notes); "split": DataFrame(instruments, notes, families);
         "family_split": notes by family x split}. Chapter: 01_data.
    """

    def by(column: str, order: Sequence | None = None) -> pd.DataFrame:
        table = meta.groupby(column).agg(instruments=("instrument_str", "nunique"), notes=("note_str", "size"))
        if order is not None:
            table = table.reindex(order, fill_value=0)
        table.index.name = column.replace("instrument_", "").replace("_str", "")
        return table

    tables = {
        "family": by("instrument_family_str", FAMILIES),
        "source": by("instrument_source_str", SOURCES),
        "pitch": by("pitch")[["notes"]],
        "velocity": by("velocity")[["notes"]],
    }
    if "split" in meta:
        split = by("split", SPLITS)
        split["families"] = (
            meta.groupby("split")["instrument_family_str"].nunique().reindex(SPLITS).fillna(0).astype(int)
        )
        tables["split"] = split
        tables["family_split"] = pd.crosstab(meta["instrument_family_str"], meta["split"]).reindex(
            index=FAMILIES, columns=SPLITS, fill_value=0
        )
        tables["family_split"].index.name, tables["family_split"].columns.name = "family", "split"
    return tables


def examples_per_family(
    ds: Dataset, n: int = 1, split: str | None = None, pitch: int = 60, velocity: int = 100
) -> pd.DataFrame:
    """Pick ``n`` example notes per family (from different instruments), near a given pitch and velocity.

    Args:
        ds: the dataset.
        n: notes per family.
        split: only from this split (default: any).
        pitch, velocity: preferred MIDI pitch and velocity; the closest notes are taken.
    Returns:
        Rows of ``ds.meta`` in NSynth family order, with a column ``row``: their position in
        ``ds.audio`` (``ds.audio[df["row"]]``). Chapter: 01_data.
    """
    meta = ds.meta.assign(row=np.arange(len(ds.meta)))
    if split is not None:
        meta = meta[meta["split"] == split]
    meta = meta.assign(
        _dp=(meta["pitch"] - pitch).abs(), _dv=(meta["velocity"] - velocity).abs(), _fam=meta["instrument_family"]
    )
    best = (
        meta.sort_values(["_fam", "_dp", "_dv", "instrument_str", "pitch"])
        .drop_duplicates("instrument_str")
        .groupby("_fam", sort=True)
        .head(n)
    )
    return best.drop(columns=["_dp", "_dv", "_fam"])
