"""The feature cache on disk: where it lives, its three files, and whether it still belongs to the notes.

A cache folder ``store.data_dir()/features-<key>/`` (written by :mod:`vaetone.spectral.prepare`)
holds ``logmel.npy`` (float16 (notes, n_mels, frames), ``np.lib.format``), ``meta.json`` (the
notes in row order, exact for floats) and ``manifest.json`` (format, key, dataset digest,
per-note hashes, train mean and std, skipped notes). Caches of older formats (the single
``features-<key>.pt`` file of format 2) are never read.

Chapter: 01_data (and every later chapter through the features).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import Config
from vaetone.data import manifest

CACHE_FORMAT = 3
"""Layout version of the feature cache (the content version is ``store.CODE_VERSIONS``)."""
LOGMEL, META, MANIFEST = "logmel.npy", "meta.json", "manifest.json"
"""The files of a cache folder."""


def cache_path(cfg: Config) -> Path:
    """``data_dir()/features-<key>``, keyed by every data and feature parameter (not ``workers``).

    Chapter: 01_data.
    """
    return store.data_dir() / f"features-{store.key('features', cfg)}"


def npy_header(shape: tuple[int, ...]) -> bytes:
    """The ``np.lib.format`` 1.0 header of a C-ordered little-endian float16 array of ``shape``.

    numpy pads it for any first dimension up to 21 digits, so its length never depends on the
    number of notes and it can be rewritten in place when the array shrinks. Chapter: 01_data.
    """
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f2")), "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def meta_to_json(meta: pd.DataFrame) -> str:
    """A metadata table as JSON text (index, columns, values, dtypes), exact for floats. Chapter: 01_data."""
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
    """Inverse of :func:`meta_to_json`. Chapter: 01_data."""
    d = json.loads(text)
    meta = pd.DataFrame(d["data"], index=pd.Index(d["index"], name=d["index_name"]), columns=d["columns"])
    for col, dtype in d["dtypes"].items():
        if dtype not in ("object", "str") and str(meta[col].dtype) != dtype:
            meta[col] = meta[col].astype(dtype)
    return meta


def write_manifest(path: Path, record: dict) -> None:
    """Write a cache's manifest.json atomically (compact JSON), with :data:`CACHE_FORMAT`. Chapter: 01_data."""
    with store.atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, **record}, sort_keys=True, default=store.jsonable) + "\n")


def read_cache(folder: Path) -> tuple[pd.DataFrame, dict]:
    """The metadata (row order of ``logmel.npy``) and the manifest of a finished cache folder.

    Raises:
        OSError, ValueError: a file is missing or unreadable. Chapter: 01_data.
    """
    record = json.loads((folder / MANIFEST).read_text())
    return meta_from_json((folder / META).read_text()), record


def open_logmel(folder: Path) -> np.ndarray:
    """The cache's log-mel as a read-only float16 memory map (notes, n_mels, frames), dB. Chapter: 01_data."""
    return np.load(folder / LOGMEL, mmap_mode="r", allow_pickle=False)


def stale(folder: Path, cfg: Config, current: Callable[[], dict]) -> str | None:
    """Why a cache folder cannot serve ``cfg`` now, or None when it can.

    Args:
        folder: the cache folder; cfg: the configuration;
        current: gives the manifest of the notes ``cfg`` selects now
            (:func:`vaetone.data.dataset.notes_manifest`; no audio read unless a wav changed).
    Returns:
        None, or the end of a sentence: "is unusable (...)" or "was made from other notes (...)".
        Chapter: 01_data.
    """
    try:
        record = json.loads((folder / MANIFEST).read_text())
        if record.get("format") != CACHE_FORMAT or record.get("key") != store.key("features", cfg):
            raise ValueError("it was written by another version or for other parameters")
        logmel = open_logmel(folder)
        if logmel.dtype != np.float16 or list(logmel.shape) != list(record["shape"]) or logmel.shape[1] != cfg.n_mels:
            raise ValueError(f"logmel shape {tuple(logmel.shape)} does not match its manifest")
        if not (folder / META).is_file():
            raise ValueError(f"{META} is missing")
        digest, notes = str(record["digest"]), record["notes"]
    except Exception as exc:  # noqa: BLE001 - any unreadable cache is recomputed
        return f"is unusable ({exc})"
    now = current()
    if now["digest"] == digest:
        return None
    changed = manifest.describe(manifest.differences(notes, manifest.note_hashes(now)))
    return f"was made from other notes (dataset digest {digest[:12]} → {now['digest'][:12]}: {changed})"
