"""The files of a run folder and how they are written and checked: ``checkpoint.pt``, ``best.pt``, ``history.csv``.

Both .pt files carry a header (:func:`header`): the layout version, the run id, the training
parameters, the code versions, the input size and what the run was trained on
(:func:`~vaetone.model.inputs.input_record`). :func:`read_checkpoint` loads them with
``weights_only=True`` and refuses a file whose header does not match, saying what to delete.

Chapter: 03_training.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from vaetone import store
from vaetone.config import Config, stage_params
from vaetone.errors import CheckpointError
from vaetone.model.inputs import input_changes

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
HISTORY = "history.csv"
LATENTS = "latents.npz"
"""The cached posterior means and standard deviations of every note (written by runs.latents)."""
FORMAT = 1
"""Layout version of checkpoint.pt / best.pt."""


def header(cfg: Config, shape: tuple[int, int], inputs: dict | None = None) -> dict:
    """What identifies a run in its files: parameters, code versions, input size and inputs (``input_record``).

    Args:
        cfg: the configuration; shape: (n_mels, frames) of the features; inputs: ``input_record``.
    Returns:
        ``{"format", "run_id", "params", "code_versions", "input_shape", "inputs"}``. Chapter: 03_training.
    """
    return {
        "format": FORMAT,
        "run_id": store.run_id(cfg),
        "params": stage_params(cfg, "train"),
        "code_versions": dict(store.CODE_VERSIONS),
        "input_shape": [int(s) for s in shape],
        "inputs": inputs,
    }


def save(path: Path, obj: dict) -> None:
    """``torch.save`` atomically (tensors, dicts, lists, numbers and strings only). Chapter: 03_training."""
    with store.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def read_checkpoint(path: Path, cfg: Config, shape: tuple[int, int], inputs: dict | None = None) -> dict:
    """Load ``checkpoint.pt`` or ``best.pt`` with ``weights_only=True`` and check it belongs to ``cfg``.

    Args:
        path: the file; cfg: the configuration; shape: (n_mels, frames) of the features;
        inputs: :func:`~vaetone.model.inputs.input_record` of the current features (None: not checked).
    Raises:
        CheckpointError: the file is unreadable, not a vaetone checkpoint, or from another code
            version, configuration, input size or input data (dataset digest, normalisation);
            the message names the mismatch and what to delete.
    Chapter: 03_training.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds on corrupt files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: "
            f"{str(exc)[:200]}); delete this file to retrain the run (a damaged best.pt is rebuilt from "
            "checkpoint.pt by itself)"
        ) from exc
    want = header(cfg, shape)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a vaetone checkpoint of format {FORMAT}; delete it to retrain")
    if ckpt.get("code_versions") != want["code_versions"]:
        raise CheckpointError(
            f"checkpoint {path} was written by code versions {ckpt.get('code_versions')}, "
            f"this code is {want['code_versions']}; delete it to retrain"
        )
    theirs = ckpt.get("params", {})
    diff = [
        f"{k}={theirs.get(k)!r} (this configuration: {v!r})" for k, v in want["params"].items() if theirs.get(k) != v
    ]
    if diff:
        raise CheckpointError(
            f"checkpoint {path} is from another configuration: "
            + "; ".join(diff)
            + ". It does not belong in this run folder; move or delete it."
        )
    if ckpt.get("input_shape") != want["input_shape"]:
        raise CheckpointError(
            f"checkpoint {path} was trained on inputs {ckpt.get('input_shape')} "
            f"(n_mels, frames), the features are {want['input_shape']}; delete it to retrain"
        )
    changes = input_changes(ckpt.get("inputs"), inputs)
    if changes:
        raise CheckpointError(
            f"run {path.parent} was trained on other features than this configuration's now: "
            + "; ".join(changes)
            + ". The notes (their audio or examples.json) changed since it was trained. To retrain it on the "
            f"current features, delete {path.parent / CHECKPOINT} and {path.parent / BEST}."
        )
    return ckpt


def load_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
    """``model.load_state_dict(state)`` with a CheckpointError naming ``path`` on any mismatch. Chapter: 03_training."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"weights in {path} do not fit the model: {str(exc)[:300]}") from exc


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The history records as a DataFrame indexed by epoch. Chapter: 03_training."""
    return pd.DataFrame(history).set_index("epoch") if history else pd.DataFrame()
