"""Log-mel spectrograms: torchaudio's MelSpectrogram (power 2, Hann window, HTK filterbank) in dB.

With the defaults (n_fft 1024, hop 512, 64 mels, 20-8000 Hz) a 4-s note at 16 kHz gives a
(64, 126) image in dB: ``10*log10(max(power, log_floor))``. A test checks the equality with
torchaudio's ``MelSpectrogram``.

Chapter: 01_data and every later one.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torchaudio

from vaetone.config import SAMPLE_RATE, Config
from vaetone.devices import resolve_device
from vaetone.errors import DataError
from vaetone.progress import tqdm

PROGRESS_MIN_NOTES = 4096
"""Show a progress bar from this many notes (log-mel: about 2 s; Griffin-Lim: notes * n_iter / 2)."""


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
    return torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1, f_min, f_max, n_mels, SAMPLE_RATE, norm=None, mel_scale="htk"
    )


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
    pad_mode="reflect", norm=None, mel_scale="htk")`` (the same STFT of the same reflect-padded
    signal, the same torchaudio filterbank), written out so that the padding, the power and the
    band sums avoid its slower kernels and transposed copies.
    """
    window, half = torch.hann_window(cfg.n_fft, device=y.device), cfg.n_fft // 2
    by_hand = y.shape[-1] > half  # center=True's reflect padding, written out: its kernel is slow on the CPU
    if by_hand:
        y = torch.cat([y[:, 1 : half + 1].flip(-1), y, y[:, -half - 1 : -1].flip(-1)], -1)
    spec = torch.stft(
        y, cfg.n_fft, cfg.hop_length, window=window, center=not by_hand, pad_mode="reflect", return_complex=True
    )
    squares = torch.view_as_real(spec).pow_(2)  # in place: re**2 and im**2 side by side, no temporaries
    return _fb(cfg, y.device).T @ (squares[..., 0] + squares[..., 1])


def log_mel(
    audio, cfg: Config, device=None, batch_size: int | None = None, progress: bool | None = None
) -> torch.Tensor:
    """Log-mel spectrograms in dB: ``10*log10(max(mel_power, log_floor))``, batched.

    Args:
        audio: (n, samples) or (samples,) float waveforms at 16 kHz (numpy or torch).
        cfg: uses n_fft, hop_length, n_mels, f_min, f_max, log_floor, device.
        device: where to compute (default: ``cfg.device``, i.e. CUDA when present).
        batch_size: notes per chunk (default 32 on the CPU, where small chunks stay in cache, 512 on a GPU).
        progress: show a tqdm bar (default: only for many notes).
    Returns:
        (n, n_mels, frames) float32 CPU tensor in dB; 126 frames for a 4-s note with the defaults.
    Chapter: 01_data (and :func:`features` for every later chapter).
    """
    y = _as_batch(audio, 2, "audio")
    if not torch.isfinite(y.sum()) and not torch.isfinite(y).all():  # the sum: one pass, no copy
        raise DataError("audio holds NaN or inf values; the loader should have skipped such notes")
    dev = resolve_device(cfg, device)
    batch_size = batch_size or (512 if dev.type == "cuda" else 32)
    out = torch.empty(len(y), cfg.n_mels, n_frames(cfg, y.shape[-1]))
    starts = range(0, len(y), batch_size)
    for i in tqdm(starts, desc="log-mel", unit="chunk", disable=not _progress(len(y), progress)):
        with torch.no_grad():
            power = mel_power(y[i : i + batch_size].to(dev, non_blocking=True), cfg)
            out[i : i + batch_size] = power.clamp_min_(cfg.log_floor).log10_().mul_(10.0).cpu()  # in place
    return out
