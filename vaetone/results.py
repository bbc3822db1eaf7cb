"""Stage results: one frozen object per analysis stage, cached beside the artefact it was computed from.

Every stage of the book (data summary, training evaluation, sensitivity, ablation, statistics,
ground truth, across seeds) is one call ``result(cfg) -> <Stage>Result``. A result holds

* ``tables``: named pandas DataFrames (what the chapter shows and writes as CSV);
* ``findings``: a flat mapping of every number and phrase the prose quotes (JSON types, string keys);
* ``arrays``: named numpy arrays for figures and sound (spectrograms, sweeps);
* ``dimension_order``: the latent dimensions, most important first, where the stage ranks them.

:func:`cached` computes a result once and stores it under ``<folder>/results/<stage>-<key>/``,
where the key hashes the stage's name and code version, the key of the artefact it depends on
(the trained run or the dataset), the sha256 of the run's ``best.pt`` when the folder holds one
(so a retrained run never reuses the results of the weights it replaced) and the analysis
parameters it reads. The folder holds a
``manifest.json`` (written last, so a folder without one is incomplete and is rebuilt), the
findings, the tables (JSON, ``orient="split"`` with dtypes, so they load exactly as they were
computed) and the arrays (``.npz``, loaded without pickle). A result is always returned as
loaded from disk, so a first run and a rerun give identical objects.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from vaetone import store
from vaetone.config import Config
from vaetone.data.manifest import file_sha256

log = logging.getLogger(__name__)

RESULT_FORMAT = 2
"""Layout version of a result folder."""

R = TypeVar("R", bound="StageResult")


@dataclass(frozen=True)
class StageResult:
    """What one stage found: tables, quoted findings, arrays for figures and sound, and a dimension order.

    Subclasses set ``stage`` (the folder name), ``version`` (bump it when the stage's code
    changes what it computes) and ``params`` (the analysis parameters of :class:`Config` it reads,
    beyond those of the artefact it depends on).
    """

    tables: Mapping[str, pd.DataFrame]
    findings: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    dimension_order: tuple[int, ...] | None = None

    stage: ClassVar[str] = ""
    version: ClassVar[int] = 1
    params: ClassVar[tuple[str, ...]] = ()

    def table(self, name: str) -> pd.DataFrame:
        """One table by name, with a clear error naming the tables there are."""
        if name not in self.tables:
            raise KeyError(f"{type(self).__name__} has no table {name!r}; it has {sorted(self.tables)}")
        return self.tables[name]


def result_key(cls: type[StageResult], cfg: Config, upstream: str) -> str:
    """A 12-hex-digit key of a stage's result: its name, code version, upstream key and parameters."""
    blob = json.dumps(
        {
            "stage": cls.stage,
            "version": cls.version,
            "format": RESULT_FORMAT,
            "upstream": upstream,
            "params": {p: getattr(cfg, p) for p in cls.params},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cached(cls: type[R], cfg: Config, compute: Callable[[], R], *, folder: Path, upstream: str) -> R:
    """The result of ``compute()``, computed once and then loaded from ``folder/results/``.

    Args:
        cls: the stage's result class (its ``stage``, ``version`` and ``params`` make the key).
        cfg: the configuration.
        compute: builds the result when no valid cached copy exists.
        folder: the folder of the artefact the stage depends on (a run folder, or the data cache).
        upstream: the cache key of that artefact (e.g. ``store.key("train", cfg)``).
    Returns:
        The result as loaded from its folder (so that a rerun returns exactly the same object).
    """
    path = result_path(cls, cfg, folder, upstream)
    loaded = load(cls, path)
    if loaded is not None:
        return loaded
    fresh = compute()
    if not isinstance(fresh, cls):
        raise TypeError(f"the {cls.stage} stage computed a {type(fresh).__name__}, not a {cls.__name__}")
    weighted = with_weights(folder, upstream)  # compute() may have trained the run: key the weights it used
    path = Path(folder) / "results" / f"{cls.stage}-{result_key(cls, cfg, weighted)}"
    save(fresh, path, {p: getattr(cfg, p) for p in cls.params}, weighted)
    return load(cls, path)


def with_weights(folder: Path, upstream: str) -> str:
    """``upstream``, plus the sha256 of ``folder/best.pt`` when the folder holds a trained run's weights."""
    best = Path(folder) / "best.pt"
    return f"{upstream}+best.pt:{file_sha256(best)}" if best.is_file() else upstream


def result_path(cls: type[StageResult], cfg: Config, folder: Path, upstream: str) -> Path:
    """Where the result of ``cls`` for ``cfg`` is cached: ``folder/results/<stage>-<key>``.

    Args:
        cls: the stage's result class; cfg: the configuration; folder: the artefact's folder;
        upstream: the artefact's cache key (the weights in ``folder/best.pt`` are added to it).
    """
    return Path(folder) / "results" / f"{cls.stage}-{result_key(cls, cfg, with_weights(folder, upstream))}"


def save(result: StageResult, path: Path, params: Mapping[str, Any], upstream: str) -> Path:
    """Write a result folder atomically (a temporary folder, then a rename); the manifest goes last."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        (tmp / "findings.json").write_text(
            json.dumps(dict(result.findings), indent=2, sort_keys=True, default=store.jsonable) + "\n"
        )
        for name, frame in result.tables.items():
            (tmp / f"{_safe(name)}.table.json").write_text(table_to_json(frame))
            frame.to_csv(tmp / f"{_safe(name)}.csv")
        if result.arrays:
            with open(tmp / "arrays.npz", "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in result.arrays.items()})
        manifest = {
            "stage": result.stage,
            "class": type(result).__name__,
            "version": result.version,
            "format": RESULT_FORMAT,
            "upstream": upstream,
            "params": dict(params),
            "tables": list(result.tables),
            "arrays": list(result.arrays),
            "dimension_order": None if result.dimension_order is None else [int(d) for d in result.dimension_order],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=store.jsonable) + "\n")
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def load(cls: type[R], path: Path) -> R | None:
    """The result in ``path``, or None when it is missing, incomplete, unreadable or from other code."""
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text())
        if (manifest.get("stage"), manifest.get("version"), manifest.get("format")) != (
            cls.stage,
            cls.version,
            RESULT_FORMAT,
        ):
            return None
        findings = json.loads((path / "findings.json").read_text())
        tables = {
            name: table_from_json((path / f"{_safe(name)}.table.json").read_text()) for name in manifest["tables"]
        }
        arrays = {}
        if manifest["arrays"]:
            with np.load(path / "arrays.npz", allow_pickle=False) as f:
                arrays = {k: f[k] for k in manifest["arrays"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        if Path(path).exists():
            log.warning("cached %s result at %s is unreadable (%s); recomputing it", cls.stage, path, exc)
        return None
    order = manifest.get("dimension_order")
    return cls(
        tables=tables,
        findings=findings,
        arrays=arrays,
        dimension_order=None if order is None else tuple(int(d) for d in order),
    )


def _safe(name: str) -> str:
    """A table name as a file name (letters, digits, ``_`` and ``-``)."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"table name {name!r} must be letters, digits, '_' or '-'")
    return name


def table_to_json(frame: pd.DataFrame) -> str:
    """A DataFrame as JSON that :func:`table_from_json` turns back into an equal frame (MultiIndex included)."""

    def labels(index: pd.Index) -> dict:
        return {
            "values": [list(v) if isinstance(v, tuple) else v for v in index.tolist()],
            "names": list(index.names),
            "dtype": str(index.dtype) if index.nlevels == 1 else None,
        }

    blob = {
        "index": labels(frame.index),
        "columns": labels(frame.columns),
        "dtypes": [str(t) for t in frame.dtypes],
        "data": [frame.iloc[:, j].tolist() for j in range(frame.shape[1])],
        "attrs": frame.attrs,
    }
    return json.dumps(blob, default=store.jsonable)


def table_from_json(text: str) -> pd.DataFrame:
    """The DataFrame written by :func:`table_to_json`."""
    blob = json.loads(text)

    def index(spec: dict) -> pd.Index:
        if len(spec["names"]) > 1:
            return pd.MultiIndex.from_tuples([tuple(v) for v in spec["values"]], names=spec["names"])
        values = spec["values"]
        dtype = spec["dtype"] if spec["dtype"] not in (None, "object", "str", "string") else None
        return pd.Index(values, name=spec["names"][0], dtype=dtype)

    columns = index(blob["columns"])
    data = {j: pd.Series(col, dtype=_dtype(dt)) for j, (col, dt) in enumerate(zip(blob["data"], blob["dtypes"]))}
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(blob["index"]["values"])))
    frame.columns = columns
    frame.index = index(blob["index"])
    frame.attrs.update(blob.get("attrs", {}))
    return frame


def _dtype(name: str):
    """A pandas dtype from its name, with object for text columns."""
    return None if name in ("object", "str", "string") else name
