"""Log-mel spectrograms of the notes, their normalisation, the way back to audio, and their cache.

The forward path is what torchaudio's ``MelSpectrogram`` computes (power 2, Hann window,
``center=True``, reflect padding, torchaudio's HTK filterbank without normalisation; a test
checks the equality), followed by ``10*log10(max(power, log_floor))``.
With the defaults (n_fft 1024, hop 512, 64 mels, 20-8000 Hz) a 4-s note at 16 kHz gives a
(64, 126) image in dB.

The way back (:func:`mel_to_audio`) has two steps:

1. mel power → linear power spectrogram. We start from the minimum-norm least-squares
   solution of ``fb.T @ S = mel`` (the solution torchaudio's ``InverseMelScale`` returns with
   ``torch.linalg.lstsq``), computed with a pseudo-inverse of the filterbank that is cached
   per setting, so it costs one matrix product instead of a solve per call. It is clipped at
   zero, as ``InverseMelScale`` does, and then refined by ``n_nnls`` multiplicative updates of
   non-negative least squares (Lee and Seung), ``S <- S * (fb @ mel) / (fb @ fb.T @ S)``,
   which lower the misfit ``||fb.T @ S - mel||`` while keeping ``S >= 0``. On harmonic tones
   (f0 82-660 Hz) the mean absolute misfit over the cells within 50 dB of a note's peak is
   about 5.1 dB after clipping alone and 3.8 dB after 30 updates (3.1 dB after 100).
   ``n_nnls=0`` gives exactly the clipped ``InverseMelScale`` solution (a test checks it).
2. Griffin-Lim (torchaudio, momentum 0.99) from a zero-phase start (``rand_init=False``), so
   the result is deterministic. ``n_iter=8`` is the fast path for live use (explorer).
   With 32 iterations the log-mel of the resynthesised audio is within about 3.7 dB of the
   original on those cells (5.1 dB without the NNLS updates).

Chapters: 01_data (features, plots, audio), 02_model and later (``Features.x``), 03-07 (audio).
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchaudio
from .progress import tqdm

from . import store
from .config import SAMPLE_RATE, Config
from .errors import ConfigError, DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Layout version of the feature cache file (the content version is ``store.CODE_VERSIONS``)."""
PROGRESS_MIN_NOTES = 4096
"""Show a progress bar from this many notes (log-mel: about 2 s; Griffin-Lim: notes * n_iter / 2)."""
GRIFFIN_LIM_MOMENTUM = 0.99


# ----------------------------------------------------------------------------- devices, inputs

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
        raise ConfigError("device 'cuda' was asked for but torch sees no CUDA GPU; "
                          "use device='auto' or 'cpu'")
    return device


def _as_batch(x, ndim: int, what: str) -> torch.Tensor:
    """``x`` (numpy or torch) as a float32 CPU/device tensor with a leading batch axis of ``ndim`` dims."""
    t = torch.as_tensor(x)
    if t.ndim == ndim - 1:
        t = t.unsqueeze(0)
    if ndim == 3 and t.ndim == 4 and t.shape[1] == 1:  # (n, 1, n_mels, frames) from a decoder
        t = t[:, 0]
    if t.ndim != ndim:
        raise DataError(f"{what} must have {ndim - 1} or {ndim} dimensions, got shape {tuple(t.shape)}")
    return t.float()


def _progress(n: int, progress: bool | None) -> bool:
    """Whether to show a progress bar for ``n`` notes (``progress=None``: only for many notes)."""
    return n >= PROGRESS_MIN_NOTES if progress is None else bool(progress)


# ----------------------------------------------------------------------------- forward: log-mel

@functools.lru_cache(maxsize=16)
def _filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """torchaudio's mel filterbank (HTK, no normalisation), (n_fft // 2 + 1, n_mels), on the CPU."""
    return torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, f_min, f_max, n_mels, SAMPLE_RATE,
                                                 norm=None, mel_scale="htk")


def _fb(cfg: Config, device) -> torch.Tensor:
    """The filterbank of ``cfg`` on ``device``."""
    return _filterbank(cfg.n_fft, cfg.n_mels, float(cfg.f_min), float(cfg.f_max)).to(device)


def mel_filterbank(cfg: Config) -> torch.Tensor:
    """The triangular mel filterbank used by :func:`log_mel`.

    Returns:
        (n_fft // 2 + 1, n_mels) float32 weights (HTK scale, peak 1, no area normalisation;
        the triangles sum to 1 between the first and the last band centre).
    """
    return _fb(cfg, "cpu").clone()


def mel_frequencies(cfg: Config) -> np.ndarray:
    """Centre frequencies of the mel bands of :func:`log_mel`, in Hz, shape (n_mels,)."""
    hz_to_mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731 (HTK)
    mels = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    return 700.0 * (10.0 ** (mels[1:-1] / 2595.0) - 1.0)


def n_frames(cfg: Config, samples: int = 64000) -> int:
    """Frames of a note of ``samples`` samples (``center=True``): ``1 + samples // hop_length``."""
    return 1 + samples // cfg.hop_length


def mel_power(y: torch.Tensor, cfg: Config) -> torch.Tensor:
    """Mel power spectrogram, (n, n_mels, frames), on the device of ``y`` (n, samples).

    The computation of ``torchaudio.transforms.MelSpectrogram(power=2, center=True,
    pad_mode="reflect", norm=None, mel_scale="htk")`` (same STFT call, same torchaudio
    filterbank), written out so that the power and the band sums avoid its transposed copies.
    """
    window = torch.hann_window(cfg.n_fft, device=y.device)
    spec = torch.stft(y, cfg.n_fft, cfg.hop_length, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    return _fb(cfg, y.device).T @ (spec.real ** 2 + spec.imag ** 2)


def log_mel(audio, cfg: Config, device=None, batch_size: int | None = None,
            progress: bool | None = None) -> torch.Tensor:
    """Log-mel spectrograms in dB: ``10*log10(max(mel_power, log_floor))``, batched.

    Args:
        audio: (n, samples) or (samples,) float waveforms at 16 kHz (numpy or torch).
        cfg: uses n_fft, hop_length, n_mels, f_min, f_max, log_floor, device.
        device: where to compute (default: ``cfg.device``, i.e. CUDA when present).
        batch_size: notes per chunk (default 32 on the CPU, where small chunks stay in cache, 512 on a GPU).
        progress: show a tqdm bar (default: only for many notes).
    Returns:
        (n, n_mels, frames) float32 CPU tensor in dB; 126 frames for a 4-s note with the defaults.
    Used by: 01_data (and :func:`features` for every later chapter).
    """
    y = _as_batch(audio, 2, "audio")
    if not torch.isfinite(y).all():
        raise DataError("audio holds NaN or inf values; the loader should have skipped such notes")
    dev = resolve_device(cfg, device)
    batch_size = batch_size or (512 if dev.type == "cuda" else 32)
    out = torch.empty(len(y), cfg.n_mels, n_frames(cfg, y.shape[-1]))
    starts = range(0, len(y), batch_size)
    for i in tqdm(starts, desc="log-mel", unit="chunk", disable=not _progress(len(y), progress)):
        with torch.no_grad():
            power = mel_power(y[i:i + batch_size].to(dev, non_blocking=True), cfg)
            out[i:i + batch_size] = 10.0 * torch.log10(power.clamp_min(cfg.log_floor)).cpu()
    return out


# ----------------------------------------------------------------------------- backward: audio

@functools.lru_cache(maxsize=16)
def _mel_pinv(n_fft: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Pseudo-inverse of the filterbank's transpose, (n_freq, n_mels) float32, computed in float64."""
    return torch.linalg.pinv(_filterbank(n_fft, n_mels, f_min, f_max).T.double()).float()


def mel_to_linear(power: torch.Tensor, cfg: Config, n_nnls: int = 30) -> torch.Tensor:
    """Linear power spectrogram from mel power: min-norm least squares, clipped, then NNLS updates.

    Args:
        power: (n, n_mels, frames) mel power (not dB).
        cfg: the feature settings.
        n_nnls: multiplicative non-negative least-squares updates (0: torchaudio InverseMelScale's answer).
    Returns:
        (n, n_fft // 2 + 1, frames) non-negative power, on the device of ``power``.
    """
    dev = power.device
    pinv = _mel_pinv(cfg.n_fft, cfg.n_mels, float(cfg.f_min), float(cfg.f_max)).to(dev)
    fb = _fb(cfg, dev)
    spec = torch.relu(pinv @ power)
    if n_nnls > 0:
        # a small positive start everywhere, so that bins clipped to 0 can still grow
        spec = spec + 1e-3 * spec.mean(dim=(-2, -1), keepdim=True) + 1e-12
        target = fb @ power
        for _ in range(n_nnls):
            spec = spec * target / (fb @ (fb.T @ spec) + 1e-20)
    return spec


def mel_to_audio(logmel_db, cfg: Config, n_iter: int | None = None, n_nnls: int = 30, device=None,
                 batch_size: int | None = None, progress: bool | None = None) -> torch.Tensor:
    """Audio from log-mel spectrograms: dB → power → linear spectrogram → Griffin-Lim (deterministic).

    Args:
        logmel_db: (n, n_mels, frames), (n, 1, n_mels, frames) or (n_mels, frames) in dB.
        cfg: the feature settings; ``cfg.griffin_lim_iters`` when ``n_iter`` is None.
        n_iter: Griffin-Lim iterations (32 for the book; 8 is the fast path for live use).
        n_nnls: NNLS refinement steps of the mel inversion (see the module docstring).
        device: where to compute (default ``cfg.device``). CPU results are deterministic.
        batch_size: notes per chunk (default 16 on the CPU, 256 on a GPU).
        progress: tqdm bar (default: only when it takes more than a couple of seconds).
    Returns:
        (n, hop_length * (frames - 1)) float32 CPU waveforms at 16 kHz (64000 samples for 126 frames).
    Used by: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer.
    """
    db = _as_batch(logmel_db, 3, "logmel_db")
    if db.shape[1] != cfg.n_mels:
        raise ConfigError(f"logmel_db has {db.shape[1]} mel bands but cfg.n_mels={cfg.n_mels}; "
                          "pass the configuration the spectrograms were made with")
    n_iter = cfg.griffin_lim_iters if n_iter is None else int(n_iter)
    dev = resolve_device(cfg, device)
    length = cfg.hop_length * (db.shape[-1] - 1)
    window = torch.hann_window(cfg.n_fft, device=dev)
    out = torch.empty(len(db), length)
    batch_size = batch_size or (256 if dev.type == "cuda" else 16)
    show = _progress(len(db) * n_iter // 2, progress)
    for i in tqdm(range(0, len(db), batch_size), desc="Griffin-Lim", unit="chunk", disable=not show):
        with torch.no_grad():
            power = 10.0 ** (db[i:i + batch_size].to(dev) / 10.0)
            spec = mel_to_linear(power, cfg, n_nnls)
            y = torchaudio.functional.griffinlim(
                spec, window, cfg.n_fft, cfg.hop_length, cfg.n_fft, 2.0, n_iter,
                GRIFFIN_LIM_MOMENTUM, length, False)
        out[i:i + batch_size] = y.cpu()
    return out


# ----------------------------------------------------------------------------- the Features

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
    Used by: 01_data, 02_model, 03_training and every analysis chapter.
    """
    meta: pd.DataFrame
    logmel: torch.Tensor
    mean: float
    std: float

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
        raise DataError("the dataset has no notes in the train split, so features cannot be "
                        "normalised; widen the data filters (pitch range, families, instruments)")
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
    return json.dumps({"index": meta.index.tolist(), "index_name": meta.index.name,
                       "columns": [str(c) for c in meta.columns],
                       "data": {str(c): meta[c].tolist() for c in meta.columns},
                       "dtypes": {str(c): str(meta[c].dtype) for c in meta.columns}}, default=store.jsonable)


def meta_from_json(text: str) -> pd.DataFrame:
    """Inverse of :func:`meta_to_json`."""
    d = json.loads(text)
    meta = pd.DataFrame(d["data"], index=pd.Index(d["index"], name=d["index_name"]), columns=d["columns"])
    for col, dtype in d["dtypes"].items():
        if dtype != "object" and str(meta[col].dtype) != dtype:
            meta[col] = meta[col].astype(dtype)
    return meta


def _save(feats: Features, path: Path, cfg: Config) -> None:
    """Write the features atomically as plain tensors, numbers and text (loadable with weights_only)."""
    blob = {"format": CACHE_FORMAT, "key": store.key("features", cfg), "logmel": feats.logmel.contiguous(),
            "mean": feats.mean, "std": feats.std, "meta": meta_to_json(feats.meta)}
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
    except Exception as exc:  # noqa: BLE001 - any unreadable cache is recomputed
        log.warning("feature cache %s is unusable (%s); recomputing it", path, exc)
        return None
    log.info("features loaded from %s", path)
    return Features(meta, logmel.float(), float(blob["mean"]), float(blob["std"]))


def _dataset(cfg: Config):
    """The notes of ``cfg`` (``vaetone.data.dataset``; a seam for tests)."""
    from . import data
    return data.dataset(cfg)


def features(cfg: Config, device=None, refresh: bool = False) -> Features:
    """The log-mel features of ``cfg``'s dataset, from the cache or computed (and cached atomically).

    Args:
        cfg: data and feature parameters (and ``device``).
        device: where to compute (default ``cfg.device``).
        refresh: recompute even when a cache file exists.
    Returns:
        :class:`Features` with train-split normalisation statistics.
    Used by: 01_data, 02_model, 03_training and every later chapter.
    """
    path = cache_path(cfg)
    if path.exists() and not refresh:
        feats = _load(path, cfg)
        if feats is not None:
            return feats
    ds = _dataset(cfg)
    log.info("computing log-mel features of %d notes", len(ds.meta))
    logmel = log_mel(ds.audio, cfg, device=device)
    feats = Features(ds.meta.copy(), logmel, *train_statistics(logmel, ds.meta))
    _save(feats, path, cfg)
    return feats
