"""The feature set of a configuration: normalised log-mel tensors with their metadata, cached.

The cache records the content digest of the notes the features were made from
(:attr:`vaetone.data.dataset.Dataset.digest`) and one short hash per note. Loading it checks the
digest against the notes ``cfg`` selects now (examples.json and the wavs' sizes and mtimes;
no audio is read unless a wav changed) and recomputes the features when they differ, so
features of other data are never reused.

Chapters: 01_data, 02_model and every later one (``Features.x``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vaetone import store
from vaetone.config import Config
from vaetone.data import manifest
from vaetone.errors import ConfigError, DataError
from vaetone.spectral import melspec

CACHE_FORMAT = 2
"""Layout version of the feature cache file (the content version is ``store.CODE_VERSIONS``)."""


# ----------------------------------------------------------------------------- the Features

log = logging.getLogger(__name__)


@dataclass
class Features:
    """Log-mel features of a dataset with normalisation statistics of its train split.

    Normalisation is one scalar mean and standard deviation over every value (note, band,
    frame) of the train split, not one per mel band: a single affine map keeps the relative
    level of the bands (the spectral shape the model must learn), and bands that sit at the
    floor in most notes are not blown up by their small variance.

    Attributes:
        meta: DataFrame indexed by note_str, in the row order of ``logmel``, with a ``split`` column.
        logmel: (n, n_mels, frames) float32 dB.
        mean, std: dB statistics of the train split.
        digest: the content digest of the notes they were made from (``Dataset.digest``).
    Chapters: 01_data, 02_model, 03_training and every analysis chapter.
    """

    meta: pd.DataFrame
    logmel: torch.Tensor
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
        """Normalised model input of a split, (n, 1, n_mels, frames) float32."""
        return self.normalise(self.logmel[torch.as_tensor(self.rows(split))]).unsqueeze(1)

    def normalise(self, db):
        """dB → model scale: ``(db - mean) / std`` (any shape, numpy or torch)."""
        return (db - self.mean) / self.std

    def denormalise(self, x):
        """Model scale → dB: ``x * std + mean`` (any shape, numpy or torch)."""
        return x * self.std + self.mean


def train_statistics(logmel: torch.Tensor, meta: pd.DataFrame) -> tuple[float, float]:
    """Mean and standard deviation (dB) over all values of the train split's notes.

    Args:
        logmel: (n, n_mels, frames) dB; meta: with a ``split`` column, same row order.
    Returns:
        (mean, std) as floats, computed in float64.
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


# ----------------------------------------------------------------------------- the cache


def cache_path(cfg: Config) -> Path:
    """``data_dir()/features-<key>.pt``, keyed by every data and feature parameter."""
    return store.data_dir() / f"features-{store.key('features', cfg)}.pt"


def meta_to_json(meta: pd.DataFrame) -> str:
    """A metadata table as JSON text (index, columns, values, dtypes), exact for floats."""
    return json.dumps(
        {
            "index": meta.index.tolist(),
            "index_name": meta.index.name,
            "columns": [str(c) for c in meta.columns],
            "data": {str(c): meta[c].tolist() for c in meta.columns},
            "dtypes": {str(c): str(meta[c].dtype) for c in meta.columns},
        },
        default=store.jsonable,
    )


def meta_from_json(text: str) -> pd.DataFrame:
    """Inverse of :func:`meta_to_json`."""
    d = json.loads(text)
    meta = pd.DataFrame(d["data"], index=pd.Index(d["index"], name=d["index_name"]), columns=d["columns"])
    for col, dtype in d["dtypes"].items():
        if dtype != "object" and str(meta[col].dtype) != dtype:
            meta[col] = meta[col].astype(dtype)
    return meta


def _save(feats: Features, path: Path, cfg: Config, notes: dict[str, str]) -> None:
    """Write the features atomically as plain tensors, numbers and text (loadable with weights_only).

    ``notes`` maps each selected note to a short hash of its entry and wav
    (:func:`vaetone.data.manifest.note_hashes`), so that a later mismatch can say what changed.
    """
    blob = {
        "format": CACHE_FORMAT,
        "key": store.key("features", cfg),
        "logmel": feats.logmel.contiguous(),
        "mean": feats.mean,
        "std": feats.std,
        "digest": feats.digest,
        "notes": json.dumps(notes, sort_keys=True),
        "meta": meta_to_json(feats.meta),
    }
    with store.atomic_path(path) as tmp:
        torch.save(blob, tmp)
    log.info("features cached in %s", path)


def _load(path: Path, cfg: Config) -> Features | None:
    """Read a cached Features; None (with a warning) when the file is unreadable or not this setting's."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("format") != CACHE_FORMAT or blob.get("key") != store.key("features", cfg):
            raise ValueError("it was written by another version or for other parameters")
        meta, logmel = meta_from_json(blob["meta"]), blob["logmel"]
        if logmel.shape[0] != len(meta) or logmel.shape[1] != cfg.n_mels:
            raise ValueError(f"logmel shape {tuple(logmel.shape)} does not match {len(meta)} notes")
        digest, notes = str(blob["digest"]), json.loads(blob["notes"])
    except Exception as exc:  # noqa: BLE001 - any unreadable cache is recomputed
        log.warning("feature cache %s is unusable (%s); recomputing it", path, exc)
        return None
    now = _current_manifest(cfg)
    if now["digest"] != digest:
        changed = manifest.describe(manifest.differences(notes, manifest.note_hashes(now)))
        log.warning(
            "feature cache %s was made from other notes (dataset digest %s → %s: %s); recomputing it",
            path,
            digest[:12],
            now["digest"][:12],
            changed,
        )
        return None
    log.info("features loaded from %s", path)
    return Features(meta, logmel.float(), float(blob["mean"]), float(blob["std"]), digest)


def _dataset(cfg: Config):
    """The notes of ``cfg`` (``vaetone.data.dataset``; a seam for tests)."""
    from vaetone.data.dataset import dataset

    return dataset(cfg)


def _current_manifest(cfg: Config) -> dict:
    """The manifest of the notes ``cfg`` selects now (``dataset.notes_manifest``; no audio read; a seam for tests)."""
    from vaetone.data.dataset import _selection, notes_manifest

    return notes_manifest(cfg, *_selection(cfg))


def dataset_digest(cfg: Config) -> str:
    """The dataset digest recorded in ``cfg``'s feature cache, once the cache is checked (or rebuilt).

    Args:
        cfg: data and feature parameters.
    Returns:
        The content digest of the notes the features were made from, equal to the current
        notes' digest (a stale cache is recomputed first). The tensor itself is memory-mapped,
        not read, when the cache is valid.
    Chapter: 01_data (the data summary's cache key).
    """
    path, now = cache_path(cfg), _current_manifest(cfg)["digest"]
    try:
        recorded = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("digest")
    except Exception:  # noqa: BLE001 - a missing or unreadable cache is rebuilt below
        recorded = None
    return now if recorded == now else load_features(cfg).digest


def load_features(cfg: Config, device=None, refresh: bool = False) -> Features:
    """The log-mel features of ``cfg``'s dataset, from the cache or computed (and cached atomically).

    Args:
        cfg: data and feature parameters (and ``device``).
        device: where to compute (default ``cfg.device``).
        refresh: recompute even when a cache file exists.
    Returns:
        :class:`Features` with train-split normalisation statistics.
    Chapters: 01_data, 02_model, 03_training and every later chapter.
    """
    path = cache_path(cfg)
    if path.exists() and not refresh:
        feats = _load(path, cfg)
        if feats is not None:
            return feats
    ds = _dataset(cfg)
    log.info("computing log-mel features of %d notes", len(ds.meta))
    logmel = melspec.log_mel(ds.audio, cfg, device=device)
    feats = Features(ds.meta.copy(), logmel, *train_statistics(logmel, ds.meta), ds.digest)
    _save(feats, path, cfg, manifest.note_hashes(_current_manifest(cfg)))
    return feats
