"""The cache: where artefacts live, how they are keyed, and how they are written atomically.

Every artefact (rendered dataset, feature tensors, trained model, analysis results) is
stored under a folder named by a hash of the parameters that produced it plus the code
version of its stage, so a change of any parameter that matters never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from vaetone.config import Config, stage_params

CODE_VERSIONS = {"data": 3, "features": 2, "model": 1, "train": 1}
"""Bump a stage's number when its code changes what it produces; its caches are then rebuilt."""


def root() -> Path:
    """The project root: ``$VAETONE_ROOT`` if set, else the folder holding ``vaetone/``."""
    env = os.environ.get("VAETONE_ROOT")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Where rendered datasets and feature caches go (``<root>/data``, or ``$VAETONE_DATA``)."""
    env = os.environ.get("VAETONE_DATA")
    return Path(env) if env else root() / "data"


def runs_dir() -> Path:
    """Where trained models and chapter results go (``<root>/runs``, or ``$VAETONE_RUNS``)."""
    env = os.environ.get("VAETONE_RUNS")
    return Path(env) if env else root() / "runs"


def key(stage: str, cfg: Config) -> str:
    """A 12-hex-digit hash of every parameter ``stage`` depends on and of the code versions.

    Args:
        stage: "data", "features", "model" or "train".
        cfg: the configuration.
    Returns:
        e.g. ``"3f9a0c1b2d4e"``; equal for configurations that produce the same artefact.
    """
    order = list(CODE_VERSIONS)
    versions = {s: CODE_VERSIONS[s] for s in order[: order.index(stage) + 1]}
    blob = json.dumps(
        {"stage": stage, "params": stage_params(cfg, stage), "code": versions}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_id(cfg: Config) -> str:
    """The name of the run folder of a trained model: ``<dataset>-z<latent_dim>-b<beta>-s<seed>-<hash>``."""
    return f"{cfg.dataset}-z{cfg.latent_dim}-b{cfg.beta:g}-s{cfg.seed}-{key('train', cfg)}"


def run_dir(cfg: Config) -> Path:
    """The folder of the run trained with ``cfg`` (created if missing)."""
    path = runs_dir() / run_id(cfg)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash inside the block leaves ``path`` as it was (absent or the old version) and
    removes the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give files the usual mode
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    """The process umask (read without changing it for good)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=jsonable) + "\n")
    return Path(path)


def write_csv(path: str | Path, frame) -> Path:
    """Write a pandas DataFrame as CSV atomically; returns the path."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp)
    return Path(path)


def jsonable(obj: Any) -> Any:
    """JSON fallback (``json.dumps(default=...)``): numpy scalars/arrays, paths, and missing values (null)."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
