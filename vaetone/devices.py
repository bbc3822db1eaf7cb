"""The one device resolver: CUDA when present and asked for, else the CPU."""

from __future__ import annotations

import torch

from vaetone.config import Config
from vaetone.errors import ConfigError


def resolve_device(cfg: Config | None = None, device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: ``device`` if given, else ``cfg.device`` ("auto": CUDA when present).

    Args:
        cfg: a configuration (its ``device`` is "auto", "cpu" or "cuda"), or None for "auto".
        device: an explicit device, which wins.
    Returns:
        A ``torch.device``. Raises ConfigError when CUDA is asked for but absent.
    """
    if device is None:
        device = getattr(cfg, "device", "auto") if cfg is not None else "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    return device
