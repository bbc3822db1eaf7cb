"""The feature set of a configuration: log-mel on a float16 memory map with its metadata and normalisation.

:func:`load_features` returns the :class:`Features` of ``cfg`` from its cache folder
(:mod:`vaetone.spectral.cache`), preparing it first when it is missing or was made from other
notes (:func:`vaetone.spectral.prepare.ensure`: the check reads examples.json and the wavs'
sizes and mtimes; no audio is read unless a wav changed). ``Features.logmel`` is then a
:class:`LogmelArray`: indexing it reads those rows from disk as float32 dB, so nothing holds all
the features in memory. A ``Features`` built from an in-memory tensor behaves the same.

Chapters: 01_data, 02_model and every later one (``Features.x``, ``Features.batches``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaetone.config import Config
from vaetone.errors import ConfigError, DataError
from vaetone.spectral.cache import LOGMEL, MANIFEST, open_logmel, read_cache
from vaetone.spectral.prepare import ensure


class LogmelArray:
    """Rows of a float16 log-mel array (a memory map), read as float32 torch tensors in dB.

    ``logmel[rows]`` (an int, a slice, a list, an int or bool array, or a tensor; or a tuple of
    them) returns a float32 tensor of those rows, (k, n_mels, frames) or (n_mels, frames);
    ``shape`` and ``len()`` work as on a tensor. Pickled, a file-backed array travels as its path
    (DataLoader workers open the same memory map).
    """

    def __init__(self, array: np.ndarray, path: str | Path | None = None):
        self.array, self.path = array, (None if path is None else Path(path))

    @classmethod
    def open(cls, path: str | Path) -> LogmelArray:
        """The array of a ``logmel.npy`` file, memory-mapped read-only."""
        return cls(np.load(path, mmap_mode="r", allow_pickle=False), path)

    def __reduce__(self):
        return (LogmelArray.open, (str(self.path),)) if self.path is not None else (LogmelArray, (self.array,))

    @property
    def shape(self) -> torch.Size:
        """(notes, n_mels, frames)."""
        return torch.Size(self.array.shape)

    @property
    def ndim(self) -> int:
        """3."""
        return self.array.ndim

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index) -> torch.Tensor:
        parts = index if isinstance(index, tuple) else (index,)
        parts = tuple(p.cpu().numpy() if isinstance(p, torch.Tensor) else p for p in parts)
        parts = tuple(np.asarray(p, dtype=None if p else np.int64) if isinstance(p, list) else p for p in parts)
        return torch.from_numpy(np.asarray(self.array[parts], dtype=np.float32))


@dataclass
class Features:
    """Log-mel features of a dataset with normalisation statistics of its train split.

    Normalisation is one scalar mean and standard deviation over every value (note, band,
    frame) of the train split, not one per mel band: a single affine map keeps the relative
    level of the bands (the spectral shape the model must learn), and bands that sit at the
    floor in most notes are not blown up by their small variance.

    Attributes:
        meta: DataFrame indexed by note_str, in the row order of ``logmel``, with a ``split`` column.
        logmel: (n, n_mels, frames) dB: a :class:`LogmelArray` on the cache's memory map, or a
            float32 tensor; ``logmel[rows]`` is a float32 tensor either way.
        mean, std: dB statistics of the train split.
        digest: the content digest of the notes they were made from (``Dataset.digest``).
    Chapters: 01_data, 02_model, 03_training and every analysis chapter.
    """

    meta: pd.DataFrame
    logmel: torch.Tensor | LogmelArray
    mean: float
    std: float
    digest: str = ""

    @property
    def n_mels(self) -> int:
        """Mel bands."""
        return int(self.logmel.shape[1])

    @property
    def n_frames(self) -> int:
        """Frames per note."""
        return int(self.logmel.shape[2])

    def rows(self, split: str | None = None) -> np.ndarray:
        """Integer row positions of a split ("train", "valid", "test"; None: all notes)."""
        if split is None:
            return np.arange(len(self.meta))
        splits = self.meta["split"].to_numpy()
        if split not in set(splits):
            raise ConfigError(f"no notes in split {split!r}; the splits here are {sorted(set(splits))}")
        return np.flatnonzero(splits == split)

    def x(self, split: str | None = None) -> torch.Tensor:
        """Normalised model input of a whole split in memory, (n, 1, n_mels, frames) float32 (small data only)."""
        return self.normalise(self.logmel[torch.as_tensor(self.rows(split))]).unsqueeze(1)

    def normalise(self, db):
        """dB → model scale: ``(db - mean) / std`` (any shape, numpy or torch)."""
        return (db - self.mean) / self.std

    def denormalise(self, x):
        """Model scale → dB: ``x * std + mean`` (any shape, numpy or torch)."""
        return x * self.std + self.mean


def train_statistics(logmel: torch.Tensor, meta: pd.DataFrame) -> tuple[float, float]:
    """Mean and standard deviation (dB) over all values of the train split's notes, of an in-memory tensor.

    Args:
        logmel: (n, n_mels, frames) dB; meta: with a ``split`` column, same row order.
    Returns:
        (mean, std) as floats, computed in float64 (the preparation accumulates the same
        numbers chunk by chunk). Chapter: 01_data.
    """
    train = np.flatnonzero(meta["split"].to_numpy() == "train")
    if len(train) == 0:
        raise DataError(
            "the dataset has no notes in the train split, so features cannot be "
            "normalised; widen the data filters (pitch range, families, instruments)"
        )
    values = logmel[torch.as_tensor(train)].double()
    std = float(values.std())
    if not std > 0:
        raise DataError("the train split's log-mel values are all equal (silent notes?); cannot normalise")
    return float(values.mean()), std


def dataset_digest(cfg: Config) -> str:
    """The dataset digest recorded in ``cfg``'s feature cache, once the cache is checked (or rebuilt).

    Args:
        cfg: data and feature parameters.
    Returns:
        The content digest of the notes the features were made from, equal to the current
        notes' digest (a stale cache is recomputed first). Reads only the cache's manifest and
        the folders' metadata when the cache is valid.
    Chapter: 01_data (the data summary's cache key).
    """
    folder, _ = ensure(cfg)  # checks the cache against the notes now, rebuilding it if stale
    return str(json.loads((folder / MANIFEST).read_text())["digest"])


def load_features(cfg: Config, refresh: bool = False) -> Features:
    """The log-mel features of ``cfg``'s dataset, on the cache's memory map (prepared first when need be).

    Args:
        cfg: data and feature parameters (and ``workers`` for a preparation).
        refresh: prepare anew even when the cache is up to date.
    Returns:
        :class:`Features` whose ``logmel`` is a :class:`LogmelArray` on ``<cache>/logmel.npy``,
        with train-split normalisation statistics.
    Chapters: 01_data, 02_model, 03_training and every later chapter.
    """
    folder, _ = ensure(cfg, refresh)
    meta, record = read_cache(folder)
    logmel = LogmelArray(open_logmel(folder), folder / LOGMEL)
    return Features(meta, logmel, float(record["mean"]), float(record["std"]), str(record["digest"]))
