"""Reconstruction metrics, per note, (chapter 03).

Spectrogram metrics take log-mel in dB, ``(n, n_mels, frames)`` or ``(n, 1, n_mels, frames)``
(numpy or torch); audio metrics take ``(n, samples)``. Every metric returns a float64 numpy
array ``(n,)``: 0 (or 100 % for frequency accuracy) for a note against itself.
``vaetone.analysis.evaluation.evaluate`` resynthesises both sides with the same Griffin-Lim inversion, so the audio
metrics compare like with like.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import find_peaks

from vaetone.config import SAMPLE_RATE
from vaetone.errors import ConfigError

EPS = 1e-7


def _spec(x) -> torch.Tensor:
    """Log-mel as float64 ``(n, n_mels, frames)``."""
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).double()
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ConfigError(f"expected log-mel (n, n_mels, frames) or (n, 1, n_mels, frames), got {tuple(x.shape)}")
    return x


def _pair(ref, est, kind=_spec) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sides converted and checked for equal shapes."""
    ref, est = kind(ref), kind(est)
    if ref.shape != est.shape:
        raise ConfigError(f"reference {tuple(ref.shape)} and estimate {tuple(est.shape)} differ in shape")
    return ref, est


def logmel_mse(ref, est) -> np.ndarray:
    """Mean squared difference over all mel bins and frames, per note (units² of the input, e.g. dB²).

    Args: ref, est: log-mel ``(n, n_mels, frames)``. Returns: ``(n,)``. Chapter: 03_training.
    """
    ref, est = _pair(ref, est)
    return (ref - est).pow(2).mean((1, 2)).numpy()


def log_spectral_distance(ref_db, est_db) -> np.ndarray:
    """Log-spectral distance in dB: RMS over mel bins of the dB difference, averaged over frames, per note.

    Args: ref_db, est_db: ``(n, n_mels, frames)`` dB. Returns: ``(n,)`` dB. Chapter: 03_training.
    """
    ref, est = _pair(ref_db, est_db)
    return (ref - est).pow(2).mean(1).sqrt().mean(1).numpy()


def spectral_convergence(ref_db, est_db) -> np.ndarray:
    """‖|S| − |Ŝ|‖_F / ‖|S|‖_F on mel magnitudes ``10**(dB/20)`` (log-mel is power dB), per note.

    Args: ref_db, est_db: ``(n, n_mels, frames)`` dB. Returns: ``(n,)``, unitless. Chapter: 03_training.
    """
    ref, est = _pair(ref_db, est_db)
    ref, est = 10 ** (ref / 20), 10 ** (est / 20)
    return ((ref - est).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1).clamp(min=EPS)).numpy()


def _audio(y) -> torch.Tensor:
    """Audio as float64 ``(n, samples)``."""
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).double()
    if y.ndim == 1:
        y = y[None]
    if y.ndim != 2:
        raise ConfigError(f"expected audio (n, samples), got {tuple(y.shape)}")
    return y


def _magnitude(y: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """|STFT| ``(n, n_fft//2+1, frames)`` with a Hann window."""
    window = torch.hann_window(n_fft, dtype=y.dtype)
    return torch.stft(y, n_fft, hop, window=window, center=True, return_complex=True).abs()


def multires_stft_distance(ref_audio, est_audio, fft_sizes=(512, 1024, 2048)) -> np.ndarray:
    """Multi-resolution STFT distance, per note: mean over FFT sizes of spectral convergence + log-magnitude L1.

    Args:
        ref_audio, est_audio: ``(n, samples)``.
        fft_sizes: window lengths (hop = n_fft / 4, Hann window).
    Returns:
        ``(n,)``, 0 for identical signals (unitless). Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    total = torch.zeros(len(ref), dtype=torch.float64)
    for n_fft in fft_sizes:
        a, b = _magnitude(ref, n_fft, n_fft // 4), _magnitude(est, n_fft, n_fft // 4)
        sc = (a - b).flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1).clamp(min=EPS)
        lm = (torch.log(a + EPS) - torch.log(b + EPS)).abs().flatten(1).mean(1)
        total += sc + lm
    return (total / len(fft_sizes)).numpy()


def spectral_peaks(
    audio,
    sr: int = SAMPLE_RATE,
    n_fft: int = 4096,
    threshold_db: float = -30.0,
    prominence_db: float = 10.0,
    f_min: float = 20.0,
) -> list[np.ndarray]:
    """Frequencies (Hz) of the peaks of each note's time-averaged magnitude spectrum.

    Peaks are local maxima of the dB spectrum at most ``-threshold_db`` below the note's maximum,
    standing ``prominence_db`` above their surroundings, above ``f_min``; their frequency is
    refined by parabolic interpolation.

    Args: audio: ``(n, samples)``; sr: Hz. Returns: one array of Hz per note. Chapter: 03_training.
    """
    y = _audio(audio)
    spec = 20 * torch.log10(_magnitude(y, n_fft, n_fft // 4).mean(2) + EPS).numpy()
    lo = int(np.ceil(f_min * n_fft / sr))
    out = []
    for s in spec:
        k, _ = find_peaks(s, height=s.max() + threshold_db, prominence=prominence_db)
        k = k[(k >= lo) & (k < len(s) - 1)]
        a, b, c = s[k - 1], s[k], s[k + 1]
        denom = a - 2 * b + c
        delta = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
        out.append((k + delta) * sr / n_fft)
    return out


def frequency_accuracy(
    ref_audio, est_audio, sr: int = SAMPLE_RATE, tolerance_cents: float = 50.0, **peak_args
) -> np.ndarray:
    """Share of the reference's spectral peaks (harmonics) that the estimate reproduces, per note.

    In the spirit of the authors' earlier study (arXiv 2301.07665): a reference peak counts as
    reproduced when the estimate has a peak within ``tolerance_cents`` of it (see
    :func:`spectral_peaks` for the peak picking; ``peak_args`` go there).
    Args: ref_audio, est_audio: ``(n, samples)``; sr: Hz.
    Returns: ``(n,)`` in [0, 1]; NaN for a reference without peaks (silence). Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    acc = []
    for p, q in zip(spectral_peaks(ref, sr, **peak_args), spectral_peaks(est, sr, **peak_args)):
        if len(p) == 0:
            acc.append(np.nan)
        elif len(q) == 0:
            acc.append(0.0)
        else:
            cents = np.abs(1200 * np.log2(q[None, :] / p[:, None])).min(1)
            acc.append(float(np.mean(cents <= tolerance_cents)))
    return np.asarray(acc, dtype=np.float64)


def median_f0(
    audio, sr: int = SAMPLE_RATE, fmin: float = 30.0, fmax: float = 4200.0, method: str = "yin", gate_db: float = 30.0
) -> np.ndarray:
    """Median fundamental frequency (Hz) of each note's voiced part.

    ``method="yin"`` (fast, librosa.yin; frames within ``gate_db`` of the note's loudest frame
    count as voiced) or ``"pyin"`` (librosa.pyin's voicing decision; ~0.3 s per note).
    Args: audio: ``(n, samples)``; sr, fmin, fmax: Hz.
    Returns: ``(n,)`` Hz, NaN where no frame is voiced. Chapter: 03_training.
    """
    import librosa

    y = _audio(audio).numpy().astype(np.float32)
    kw = dict(fmin=fmin, fmax=min(fmax, sr / 2 - 1), sr=sr, frame_length=2048, hop_length=512)
    if method == "pyin":
        f0, voiced, _ = librosa.pyin(y, **kw)
        f0 = np.where(voiced, f0, np.nan)
    elif method == "yin":
        f0 = librosa.yin(y, **kw)
        rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=512)[:, 0]
        db = 20 * np.log10(rms + EPS)
        f0 = np.where(db >= db.max(1, keepdims=True) - gate_db, f0, np.nan)
    else:
        raise ConfigError(f"method={method!r} is not one of ['yin', 'pyin']")
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(f) if np.isfinite(f).any() else np.nan for f in f0])


def f0_error_cents(ref_audio, est_audio, sr: int = SAMPLE_RATE, method: str = "yin", **f0_args) -> np.ndarray:
    """Absolute difference of the median f0 of estimate and reference, in cents, per note (NaN if unvoiced).

    Args: ref_audio, est_audio: ``(n, samples)``; method and ``f0_args``: see :func:`median_f0`.
    Returns: ``(n,)`` cents (a semitone is 100). Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    f_ref, f_est = median_f0(ref, sr, method=method, **f0_args), median_f0(est, sr, method=method, **f0_args)
    with np.errstate(all="ignore"):
        return np.abs(1200 * np.log2(f_est / f_ref))


def f0_range(cfg) -> dict:
    """The f0 search range for ``cfg``'s notes: an octave either side of the pitch range.

    The lower end stays above 1.25 x the frame rate (sr / hop_length, 31.25 Hz by default):
    Griffin-Lim leaves a modulation at the frame rate that pitch trackers mistake for an f0.
    Returns ``{"fmin": Hz, "fmax": Hz}``.
    """
    fmin = max(_midi_hz(cfg.pitch_min) / 2, 1.25 * SAMPLE_RATE / cfg.hop_length)
    return {"fmin": fmin, "fmax": min(_midi_hz(cfg.pitch_max) * 2, SAMPLE_RATE / 2 - 1)}


def _midi_hz(midi: float) -> float:
    """Frequency (Hz) of a MIDI note number (A4 = 69 = 440 Hz)."""
    return 440.0 * 2 ** ((midi - 69) / 12)
