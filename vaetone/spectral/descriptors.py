"""Audio descriptors of notes, on waveforms and directly on mel spectra (players: :mod:`vaetone.book.players`).

Definitions (the same in both domains, so that :func:`descriptors` on audio and
:func:`spectral_descriptors` on its log-mel agree):

- Spectral descriptors are computed per frame on the *power* spectrum and averaged over
  frames weighted by frame energy, so silent frames do not count and the centroid equals the
  centroid of the note's summed spectrum. Power (not magnitude) weighting is what makes the
  mel domain comparable: the HTK triangles sum to one across bands, so a mel band's power is
  the power of the FFT bins under it.
  ``centroid_hz`` = Σ f P / Σ P; ``bandwidth_hz`` = sqrt(Σ (f - centroid)² P / Σ P);
  ``rolloff_hz`` = the frequency below which 85 % of the power lies (linear interpolation
  between bin or band centres); ``flatness`` = geometric / arithmetic mean of the power
  spectral density (power per Hz: a mel band's power is divided by its bandwidth), in [0, 1]:
  about 0 for a sine, about 0.56 for white noise on FFT bins and nearer 1 on mel bands
  (which average many bins).
- ``rms_db``: 10·log10 of the note's mean square (dB re full scale 1.0; a sine of amplitude 1
  is -3 dB). On mel spectra the mean square comes from Parseval's relation,
  ms = 2 Σ_bands P / (n_fft Σ window²), so it covers f_min..f_max only.
- Envelope: frame RMS (waveforms: 32 ms rectangular frames every 8 ms; mel spectra: the
  feature frames, every hop_length samples). ``attack_s`` = time from the envelope's first
  reaching 10 % of its peak to its first reaching 90 % (a linear amplitude ramp of T seconds
  gives 0.8 T). ``decay_db_per_s`` = how fast the note fades after its attack, in dB per
  second (positive: decaying; 0: a held note; negative: swelling): minus the slope of a
  weighted least-squares line through the envelope in dB (re its peak) against time, from
  the end of the attack (the 90 % point) to the end of the note. Each frame weighs its
  height above a floor :data:`DECAY_RANGE_DB` below the peak (0 at and under the floor), so
  that silence and the noise floor do not pull the line; frames of the attack weigh 0 (the
  frame that holds the 90 % crossing weighs the share of it that lies after the crossing).
  An exponential decay of r dB/s gives r whatever the frame length (a window only shifts an
  exponential), and every weight moves continuously with the envelope, so the measure has
  no threshold to jump at (the time to fall 20 dB, which it replaces, jumped by more than half
  a sweep when a plateau crossed -20 dB). When only one frame lies above the floor after the
  attack, the note falls at least the whole range in one frame: the rate is then
  ``DECAY_RANGE_DB`` per frame, the limit of the fit as the second frame sinks to the floor.
- ``f0_hz`` (waveforms only): librosa's YIN on all notes at once (frames of 2048 samples,
  27.5-4186 Hz, the NSynth pitch range), the median over frames within 20 dB of the loudest.
- ``inharmonicity`` (waveforms only): the Timbre Toolbox definition,
  2/f0 · Σ_h |f_h - h·f0| a_h² / Σ_h a_h², where f_h is the strongest spectral peak
  (parabolically interpolated) within ±f0/2 of h·f0, h = 1..20, on the energy-summed power
  spectrum (2048-point FFT). 0 for a harmonic tone; about 0.6 for white noise.

Chapter: 01_data (players), 03_training (players), 04_sensitivity (descriptors of decodes),
05_ablation, 06_statistics (descriptors vs latents), 07_explorer.
"""

from __future__ import annotations

import librosa
import numpy as np
import pandas as pd
import torch

from vaetone.config import SAMPLE_RATE, Config
from vaetone.errors import DataError
from vaetone.progress import tqdm
from vaetone.spectral.melspec import PROGRESS_MIN_NOTES, _as_batch, mel_filterbank, mel_frequencies

DESCRIPTORS = (
    "centroid_hz",
    "bandwidth_hz",
    "rolloff_hz",
    "flatness",
    "rms_db",
    "f0_hz",
    "inharmonicity",
    "attack_s",
    "decay_db_per_s",
)
SPECTRAL_DESCRIPTORS = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "rms_db", "attack_s", "decay_db_per_s")
ROLLOFF = 0.85
DECAY_RANGE_DB = 40.0
"""Depth of the decay fit: frames weigh their height (dB) above this many dB below the peak."""
N_FFT, HOP = 2048, 512  # waveform STFT of the spectral descriptors, f0 and inharmonicity
ENV_WINDOW, ENV_HOP = 512, 128  # waveform RMS envelope (32 ms every 8 ms at 16 kHz)
F0_GATE_DB = -20.0
N_HARMONICS = 20


# ----------------------------------------------------------------------------- shared maths (torch)


def frame_statistics(
    power: torch.Tensor, freqs: torch.Tensor, widths: torch.Tensor, floor: float
) -> dict[str, torch.Tensor]:
    """Energy-weighted centroid, bandwidth, roll-off and flatness of power spectrograms.

    Args:
        power: (n, bins, frames) power; freqs: (bins,) centre frequencies in Hz;
        widths: (bins,) bandwidths in Hz (for the flatness density); floor: power floor.
    Returns:
        {"centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness"}: (n,) tensors (differentiable
        in ``power`` except for the choice of the roll-off bin).
    """
    f = freqs[:, None]
    energy = power.sum(1)  # (n, frames)
    e = energy.clamp_min(1e-30)
    weight = energy / energy.sum(1, keepdim=True).clamp_min(1e-30)
    centroid = (f * power).sum(1) / e
    bandwidth = (((f - centroid[:, None]) ** 2 * power).sum(1) / e).clamp_min(0).sqrt()
    cum = power.cumsum(1)
    thr = ROLLOFF * energy
    k = (cum < thr[:, None]).sum(1).clamp(max=len(freqs) - 1)  # first bin reaching 85 %
    km1 = (k - 1).clamp_min(0)
    prev = torch.where(k > 0, cum.gather(1, km1[:, None]).squeeze(1), torch.zeros_like(thr))
    frac = ((thr - prev) / power.gather(1, k[:, None]).squeeze(1).clamp_min(1e-30)).clamp(0, 1)
    rolloff = freqs[km1] + frac * (freqs[k] - freqs[km1])
    density = power.clamp_min(floor) / widths[:, None]
    flatness = density.log().mean(1).exp() / density.mean(1)
    return {
        name: (v * weight).sum(1)
        for name, v in (
            ("centroid_hz", centroid),
            ("bandwidth_hz", bandwidth),
            ("rolloff_hz", rolloff),
            ("flatness", flatness),
        )
    }


def attack_decay(env: torch.Tensor, hop_s: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack time (10 % → 90 % of the peak) and decay rate (dB per second) of amplitude envelopes.

    Args:
        env: (n, frames) amplitude envelope (RMS); hop_s: seconds between frames.
    Returns:
        (attack_s (n,) seconds, crossings linearly interpolated between frames;
        decay_db_per_s (n,) dB/s, positive for a fading note: the weighted line fit of the
        module docstring, continuous in ``env`` and differentiable where the envelope is).
    """
    peak = env.amax(1, keepdim=True)

    def rise(level):  # fractional frame of the first env >= level
        i = (env >= level).int().argmax(1, keepdim=True)
        lo, hi = env.gather(1, (i - 1).clamp_min(0)), env.gather(1, i)
        frac = ((level - lo) / (hi - lo).clamp_min(1e-30)).clamp(0, 1)
        return torch.where(i > 0, i - 1 + frac, torch.zeros_like(frac)).squeeze(1)

    t10, t90 = rise(0.1 * peak), rise(0.9 * peak)
    return (t90 - t10) * hop_s, decay_rate(env, t90, hop_s)


def decay_rate(env: torch.Tensor, start: torch.Tensor, hop_s: float) -> torch.Tensor:
    """Minus the slope (dB/s) of the weighted line through the dB envelope after ``start`` (module docstring).

    Args:
        env: (n, frames) amplitude envelope; start: (n,) fractional frame where the fit begins
        (the end of the attack); hop_s: seconds between frames.
    Returns:
        (n,) decay rate in dB per second (0 for a constant or silent envelope).
    """
    idx = torch.arange(env.shape[1], device=env.device, dtype=env.dtype)[None]
    raw_peak = env.amax(1, keepdim=True)
    peak = raw_peak.clamp_min(1e-30)
    level = 20 * torch.log10(env.clamp_min(1e-30) / peak)  # dB re the peak, <= 0
    weight = (level + DECAY_RANGE_DB).clamp_min(0) * (idx + 1 - start[:, None]).clamp(0, 1)
    total = weight.sum(1, keepdim=True).clamp_min(1e-30)
    t = idx - (weight * idx).sum(1, keepdim=True) / total
    y = level - (weight * level).sum(1, keepdim=True) / total
    cov, var = (weight * t * y).sum(1), (weight * t * t).sum(1)
    one_frame = var <= 1e-6 * total.squeeze(1)  # a single frame above the floor: the fit's limit
    slope = torch.where(one_frame, torch.full_like(cov, -DECAY_RANGE_DB), cov / var.clamp_min(1e-30))
    return torch.where(raw_peak.squeeze(1) > 0, -slope / hop_s, torch.zeros_like(slope))


# ----------------------------------------------------------------------------- waveform descriptors


def _envelope(y: torch.Tensor) -> torch.Tensor:
    """(n, frames) RMS of ENV_WINDOW-sample frames every ENV_HOP samples (cumulative sums, float64)."""
    c = torch.nn.functional.pad((y.double() ** 2).cumsum(1), (1, 0))
    starts = torch.arange(0, y.shape[1] - ENV_WINDOW + 1, ENV_HOP)
    return ((c[:, starts + ENV_WINDOW] - c[:, starts]) / ENV_WINDOW).clamp_min(0).sqrt().float()


def inharmonicity(
    power: torch.Tensor, f0: torch.Tensor, sr: int = SAMPLE_RATE, n_harmonics: int = N_HARMONICS
) -> torch.Tensor:
    """Energy-weighted relative deviation of spectral peaks from the harmonics of f0 (0: harmonic).

    Args:
        power: (n, n_fft // 2 + 1) summed power spectrum; f0: (n,) Hz; sr: sample rate.
    Returns:
        (n,) 2/f0 · Σ_h |f_h - h f0| a_h² / Σ_h a_h², in [0, 1]; NaN where f0 is not finite.
    """
    n, k = power.shape
    df = sr / (2 * (k - 1))
    freqs = torch.arange(k, dtype=power.dtype) * df
    h = torch.arange(1, n_harmonics + 1, dtype=power.dtype)
    target = f0[:, None] * h  # (n, H)
    window = (freqs >= target[..., None] - f0[:, None, None] / 2) & (
        freqs < target[..., None] + f0[:, None, None] / 2
    )  # (n, H, k)
    logp = power.clamp_min(1e-30).log()
    peak = torch.where(window, logp[:, None], torch.tensor(-torch.inf)).argmax(-1)  # (n, H)
    a, b, c = (logp.gather(1, (peak + d).clamp(0, k - 1)) for d in (-1, 0, 1))
    delta = (0.5 * (a - c) / (a - 2 * b + c).clamp_max(-1e-12)).clamp(-0.5, 0.5)
    dev = ((peak + delta) * df - target).abs()
    amp2 = power.gather(1, peak) * (window.any(-1) & (target + f0[:, None] / 2 < sr / 2))
    return 2 / f0 * (dev * amp2).sum(1) / amp2.sum(1).clamp_min(1e-30)


def _descriptor_chunk(y: torch.Tensor, sr: int, fmin: float, fmax: float) -> dict[str, np.ndarray]:
    """All :data:`DESCRIPTORS` of a chunk of waveforms (n, samples)."""
    window = torch.hann_window(N_FFT)
    power = torch.stft(y, N_FFT, HOP, window=window, center=True, return_complex=True).abs() ** 2
    freqs = torch.arange(power.shape[1], dtype=torch.float32) * sr / N_FFT
    out = frame_statistics(power, freqs, torch.full_like(freqs, sr / N_FFT), floor=1e-10)
    out["rms_db"] = 10 * torch.log10((y.double() ** 2).mean(1) + 1e-12)
    out["attack_s"], out["decay_db_per_s"] = attack_decay(_envelope(y), ENV_HOP / sr)
    f0 = librosa.yin(y.numpy(), fmin=fmin, fmax=fmax, sr=sr, frame_length=N_FFT, hop_length=HOP)
    energy = power.sum(1).numpy()
    loud = energy >= energy.max(1, keepdims=True) * 10 ** (F0_GATE_DB / 10)
    out["f0_hz"] = torch.as_tensor(np.nanmedian(np.where(loud[:, : f0.shape[1]], f0, np.nan), axis=1))
    out["inharmonicity"] = inharmonicity(power.sum(-1), out["f0_hz"].float(), sr)
    return {name: out[name].double().numpy() for name in DESCRIPTORS}


def descriptors(
    audio,
    sr: int = SAMPLE_RATE,
    fmin: float = 27.5,
    fmax: float = 4186.0,
    index=None,
    batch_size: int = 64,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Spectral, loudness, pitch and envelope descriptors of notes (see the module docstring).

    Args:
        audio: (n, samples) or (samples,) waveforms (numpy or torch), at ``sr`` Hz.
        sr: sample rate; fmin, fmax: YIN's f0 search range in Hz.
        index: optional row labels (e.g. ``meta.index``); batch_size: notes per chunk;
        progress: tqdm bar (default: only for many notes).
    Returns:
        DataFrame (n rows) with columns centroid_hz, bandwidth_hz, rolloff_hz, flatness, rms_db (dB),
        f0_hz, inharmonicity, attack_s (seconds), decay_db_per_s (dB/s).
    Chapters: 01_data, 03_training, 04_sensitivity, 06_statistics.
    """
    y = _as_batch(audio, 2, "audio").detach().cpu()
    if not torch.isfinite(y).all():
        raise DataError("audio holds NaN or inf values; descriptors need finite waveforms")
    parts = []
    show = len(y) * 16 >= PROGRESS_MIN_NOTES if progress is None else progress
    for i in tqdm(range(0, len(y), batch_size), desc="descriptors", unit="chunk", disable=not show):
        parts.append(_descriptor_chunk(y[i : i + batch_size], sr, fmin, fmax))
    table = {name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(0) for name in DESCRIPTORS}
    return pd.DataFrame(table, index=index)


# ----------------------------------------------------------------------------- mel-domain descriptors


def spectral_descriptor_tensors(logmel_db, cfg: Config) -> dict[str, torch.Tensor]:
    """:data:`SPECTRAL_DESCRIPTORS` of log-mel spectrograms as (n,) tensors, keeping autograd.

    Centroid, bandwidth, flatness and rms_db are differentiable in ``logmel_db`` (for gradient
    sensitivity); roll-off and attack are piecewise (differentiable between crossings); the decay
    rate is differentiable wherever the envelope is above its floor.

    Args:
        logmel_db: (n, n_mels, frames), (n, 1, n_mels, frames) or (n_mels, frames) in dB, on any device.
        cfg: the feature settings they were made with.
    Returns:
        dict of (n,) tensors on the input's device.
    """
    db = _as_batch(logmel_db, 3, "logmel_db")
    dev = db.device
    power = 10.0 ** (db / 10.0)
    fb = mel_filterbank(cfg).to(dev)
    freqs = torch.as_tensor(mel_frequencies(cfg), dtype=torch.float32, device=dev)
    widths = (fb.sum(0) * SAMPLE_RATE / cfg.n_fft).clamp_min(SAMPLE_RATE / cfg.n_fft)
    out = frame_statistics(power, freqs, widths, floor=cfg.log_floor)
    window_energy = float((torch.hann_window(cfg.n_fft) ** 2).sum())
    ms = 2 * power.sum(1) / (cfg.n_fft * window_energy)  # (n, frames)
    out["rms_db"] = 10 * torch.log10(ms.mean(1) + 1e-12)
    out["attack_s"], out["decay_db_per_s"] = attack_decay(ms.sqrt(), cfg.hop_length / SAMPLE_RATE)
    return {name: out[name] for name in SPECTRAL_DESCRIPTORS}


def spectral_descriptors(logmel_db, cfg: Config, index=None) -> pd.DataFrame:
    """Descriptors of log-mel spectrograms, for thousands of decodes at once (no audio needed).

    Args:
        logmel_db: (n, n_mels, frames) or (n, 1, n_mels, frames) dB (numpy or torch, any device).
        cfg: the feature settings; index: optional row labels.
    Returns:
        DataFrame with centroid_hz, bandwidth_hz, rolloff_hz, flatness, rms_db, attack_s, decay_db_per_s
        (definitions as :func:`descriptors`, on mel bands; f0 and inharmonicity need audio).
    Chapters: 04_sensitivity, 05_ablation, 07_explorer.
    """
    with torch.no_grad():
        out = spectral_descriptor_tensors(logmel_db, cfg)
    return pd.DataFrame({k: v.double().cpu().numpy() for k, v in out.items()}, index=index)
