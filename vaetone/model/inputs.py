"""What a run was trained on: the features' dataset digest and normalisation, recorded in its checkpoints.

A checkpoint that records other inputs than the current features is refused
(:func:`vaetone.model.train.read_checkpoint`), so a run is never reused on other data.

Chapter: 03_training.
"""

from __future__ import annotations


def input_record(features) -> dict | None:
    """The record of what a run is trained on: the features' dataset digest and normalisation.

    Args:
        features: a ``vaetone.spectral.features.Features`` (or anything with ``digest``,
            ``mean`` and ``std``; what lacks them is not recorded).
    Returns:
        ``{"dataset_digest": hex, "mean": dB, "std": dB}`` with None for what is unknown, or
        None when nothing is known. Chapter: 03_training.
    """
    record = {
        "dataset_digest": getattr(features, "digest", None) or None,
        "mean": getattr(features, "mean", None),
        "std": getattr(features, "std", None),
    }
    record = {k: (float(v) if k != "dataset_digest" and v is not None else v) for k, v in record.items()}
    return record if any(v is not None for v in record.values()) else None


def input_changes(theirs: dict | None, ours: dict | None) -> list[str]:
    """What differs between two :func:`input_record` values, e.g. ``["dataset digest 1a2b… → 3c4d…"]``."""
    if not isinstance(theirs, dict) or not isinstance(ours, dict):
        return []
    known = [k for k in ("dataset_digest", "mean", "std") if theirs.get(k) is not None and ours.get(k) is not None]
    changed = [k for k in known if theirs[k] != ours[k]]
    out = []
    if "dataset_digest" in changed:
        out.append(f"dataset digest {theirs['dataset_digest'][:12]} → {ours['dataset_digest'][:12]}")
    if "mean" in changed or "std" in changed:
        old, new = (f"mean {_db(r['mean'])}, std {_db(r['std'])}" for r in (theirs, ours))
        out.append(f"normalisation {old} → {new}")
    return out


def _db(value) -> str:
    """A level in dB for a message (``"?"`` when unknown)."""
    return "?" if value is None else f"{value:.6g} dB"
