"""Reconstruction metrics, per note, against the original (chapter 03).

Spectrogram metrics take log-mel in dB, ``(n, n_mels, frames)`` or ``(n, 1, n_mels, frames)``
(numpy or torch); audio metrics take ``(n, samples)``, the reference first: the ORIGINAL wav of
each note, the estimate second (a reconstruction resynthesised by Griffin-Lim, or the inversion
of the original's own log-mel, the "inversion only" ceiling). :func:`align_lengths` trims the
two to one length first. Every metric returns a float64 numpy array ``(n,)`` (or, for
:func:`frequency_scores`, a DataFrame of n rows): 0 (or 1 for the frequency scores) for a note
against itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from scipy.signal import find_peaks

from vaetone.config import SAMPLE_RATE
from vaetone.errors import ConfigError, DataError

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


def align_lengths(ref_audio, est_audio, max_difference: int) -> tuple[np.ndarray, np.ndarray]:
    """Both sides trimmed to the shorter length, after checking that they differ by at most ``max_difference`` samples.

    Griffin-Lim returns ``hop_length * (frames - 1)`` samples, the original wav has
    ``samples >= that`` (64000 against 64000 with the defaults; up to ``hop_length - 1`` more
    otherwise); both start at the note's onset (``center=True`` on both sides), so trimming the
    end aligns them sample for sample.

    Args: ref_audio, est_audio: ``(n, samples_ref)``, ``(n, samples_est)``; max_difference: samples
        (``cfg.hop_length``). Returns: both as float64 ``(n, min(samples_ref, samples_est))``.
    Raises: DataError when the lengths or note counts disagree by more. Chapter: 03_training.
    """
    ref, est = _audio(ref_audio).numpy(), _audio(est_audio).numpy()
    if len(ref) != len(est) or abs(ref.shape[1] - est.shape[1]) > max_difference:
        raise DataError(
            f"the original audio {ref.shape} and its resynthesis {est.shape} differ by more than "
            f"{max_difference} samples; resynthesise with the configuration the features were made with"
        )
    n = min(ref.shape[1], est.shape[1])
    return ref[:, :n], est[:, :n]


def audio_log_spectral_distance(
    ref_audio, est_audio, n_fft: int = 1024, hop_length: int = 512, floor: float = 1e-6
) -> np.ndarray:
    """Log-spectral distance in dB on audio: RMS over STFT bins of the power dB difference, averaged over frames.

    Power ``|STFT|²`` (Hann window, ``center=True``) in dB, floored at ``floor`` (the features'
    ``log_floor``, on the same scale as the log-mel), per note.
    Args: ref_audio, est_audio: ``(n, samples)``; n_fft, hop_length: samples; floor: power.
    Returns: ``(n,)`` dB. Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    a, b = (10 * torch.log10(_magnitude(y, n_fft, hop_length).pow(2).clamp(min=floor)) for y in (ref, est))
    return (a - b).pow(2).mean(1).sqrt().mean(1).numpy()


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


def match_peaks(ref_hz, est_hz, tolerance_cents: float = 50.0) -> int:
    """Number of one-to-one pairs of reference and estimate peaks within ``tolerance_cents`` of each other.

    The most pairs possible (each peak used at most once), the closest among equally many
    (Hungarian assignment on the distance in cents, with pairs beyond the tolerance priced
    out). Args: ref_hz, est_hz: peak frequencies (Hz, > 0); tolerance_cents: cents.
    Returns: the number of matched pairs. Chapter: 03_training.
    """
    ref, est = np.asarray(ref_hz, dtype=np.float64), np.asarray(est_hz, dtype=np.float64)
    if len(ref) == 0 or len(est) == 0:
        return 0
    cents = np.abs(1200 * np.log2(est[None, :] / ref[:, None]))
    inside = cents <= tolerance_cents
    if not inside.any():
        return 0
    outside_cost = tolerance_cents * (min(cents.shape) + 1) + 1.0  # dearer than all pairs inside together
    rows, cols = linear_sum_assignment(np.where(inside, cents, outside_cost))
    return int(inside[rows, cols].sum())


FREQUENCY_COLUMNS = ("freq_precision", "freq_recall", "freq_f1", "ref_peaks", "est_peaks")
"""Columns of :func:`frequency_scores`."""


def frequency_scores(
    ref_audio, est_audio, sr: int = SAMPLE_RATE, tolerance_cents: float = 50.0, ref_peaks=None, **peak_args
) -> pd.DataFrame:
    """Frequency precision, recall and F1 of the estimate's spectral peaks against the reference's, per note.

    In the spirit of the authors' earlier study (arXiv 2301.07665), which scored the accuracy of
    generated frequencies against the real notes. Peaks (:func:`spectral_peaks`; ``peak_args``
    go there) are matched one to one within ``tolerance_cents`` (:func:`match_peaks`).
    Precision = matched / estimate peaks, recall = matched / reference peaks, F1 their
    harmonic mean. Edge cases: a reference without peaks (silence) cannot be scored, so its
    three scores are NaN (left out of means and intervals); an estimate without peaks against a
    reference with peaks scores 0, 0, 0 (it reproduces none of them).

    Args: ref_audio, est_audio: ``(n, samples)`` (the reference is the original); sr: Hz;
        tolerance_cents: cents (``cfg.peak_tolerance_cents``); ref_peaks: the reference's
        :func:`spectral_peaks` if already computed (scoring several estimates against one reference).
    Returns: DataFrame of n rows, :data:`FREQUENCY_COLUMNS` (scores in [0, 1], peak counts).
    Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    rows = []
    ref_peaks = spectral_peaks(ref, sr, **peak_args) if ref_peaks is None else ref_peaks
    for p, q in zip(ref_peaks, spectral_peaks(est, sr, **peak_args), strict=True):
        if len(p) == 0:
            rows.append((np.nan, np.nan, np.nan, 0, len(q)))
            continue
        matched = match_peaks(p, q, tolerance_cents)
        precision = matched / len(q) if len(q) else 0.0
        recall = matched / len(p)
        f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
        rows.append((precision, recall, f1, len(p), len(q)))
    table = pd.DataFrame(rows, columns=list(FREQUENCY_COLUMNS))
    return table.astype({c: np.float64 for c in FREQUENCY_COLUMNS[:3]} | {c: np.int64 for c in FREQUENCY_COLUMNS[3:]})


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


def f0_error_cents(
    ref_audio, est_audio, sr: int = SAMPLE_RATE, method: str = "yin", ref_f0=None, **f0_args
) -> np.ndarray:
    """Absolute difference of the median f0 of estimate and reference, in cents, per note (NaN if unvoiced).

    Args: ref_audio, est_audio: ``(n, samples)``; method and ``f0_args``: see :func:`median_f0`;
        ref_f0: the reference's :func:`median_f0` ``(n,)`` Hz if already computed (scoring several estimates).
    Returns: ``(n,)`` cents (a semitone is 100). Chapter: 03_training.
    """
    ref, est = _pair(ref_audio, est_audio, _audio)
    f_ref = median_f0(ref, sr, method=method, **f0_args) if ref_f0 is None else np.asarray(ref_f0, np.float64)
    f_est = median_f0(est, sr, method=method, **f0_args)
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
