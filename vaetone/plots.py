"""Figures of the book: spectrograms, waveforms, counts, heatmaps and curves, titled and labelled with units.

Every function returns the matplotlib Figure so that a chapter can display it (and
nothing else); none of them computes results.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .config import SAMPLE_RATE, Config


def _mel_centres(cfg: Config) -> np.ndarray:
    """Centre frequencies (Hz) of the mel bands of the features (HTK mel scale, as torchaudio)."""
    import librosa
    return librosa.mel_frequencies(cfg.n_mels + 2, fmin=cfg.f_min, fmax=cfg.f_max, htk=True)[1:-1]


def spectrogram(ax, db: np.ndarray, cfg: Config, title: str = "", vmin=None, vmax=None, colorbar=True):
    """Draw one log-mel spectrogram (n_mels, frames) in dB on ``ax``: time in s, mel bands labelled in Hz."""
    db = np.asarray(db)
    seconds = db.shape[1] * cfg.hop_length / SAMPLE_RATE
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                   extent=(0, seconds, -0.5, db.shape[0] - 0.5), interpolation="nearest")
    centres = _mel_centres(cfg)
    ticks = np.linspace(0, db.shape[0] - 1, 5).round().astype(int)
    ax.set_yticks(ticks, [f"{centres[t]:.0f}" for t in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band centre (Hz)")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="power (dB)", fraction=0.046, pad=0.02)
    return im


def spectrogram_grid(dbs: Sequence[np.ndarray], titles: Sequence[str], cfg: Config,
                     suptitle: str, ncols: int = 4, shared_scale: bool = True):
    """A grid of log-mel spectrograms with one shared dB colour scale.

    Args:
        dbs: spectrograms, each (n_mels, frames) in dB.
        titles: one title per panel.
        cfg: the configuration (hop, mel range).
        suptitle: the figure's title.
    Returns:
        The Figure.
    """
    n = len(dbs)
    nrows = int(np.ceil(n / ncols))
    ncols = min(ncols, n)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows), squeeze=False,
                             constrained_layout=True)
    stack = np.stack([np.asarray(d) for d in dbs])
    vmin, vmax = (stack.min(), stack.max()) if shared_scale else (None, None)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        im = spectrogram(ax, dbs[i], cfg, titles[i], vmin, vmax, colorbar=not shared_scale)
        if i % ncols:
            ax.set_ylabel("")
    if shared_scale:
        fig.colorbar(im, ax=axes, label="power (dB)", shrink=0.8)
    fig.suptitle(suptitle)
    return fig


def waveform_grid(audio: np.ndarray, titles: Sequence[str], suptitle: str, ncols: int = 4,
                  sr: int = SAMPLE_RATE):
    """A grid of waveforms (n, samples): amplitude against time in s, one shared amplitude axis."""
    n = len(audio)
    nrows = int(np.ceil(n / ncols))
    ncols = min(ncols, n)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 1.8 * nrows), squeeze=False,
                             sharex=True, sharey=True, constrained_layout=True)
    t = np.arange(audio.shape[1]) / sr
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.plot(t, audio[i], lw=0.4, color="C0")
        ax.set_title(titles[i], fontsize=9)
        if i >= n - ncols:
            ax.set_xlabel("time (s)")
        if i % ncols == 0:
            ax.set_ylabel("amplitude")
    fig.suptitle(suptitle)
    return fig


def count_bars(tables: dict[str, pd.Series], suptitle: str):
    """Bar charts of note counts, one panel per table ({title: Series indexed by category})."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.2 * len(tables), 3.2), constrained_layout=True)
    for ax, (title, counts) in zip(np.atleast_1d(axes), tables.items()):
        ax.bar([str(i) for i in counts.index], counts.values, color="C0")
        ax.set_title(title)
        ax.set_ylabel("notes")
        ax.tick_params(axis="x", labelrotation=60, labelsize=8)
    fig.suptitle(suptitle)
    return fig


def heatmap(frame: pd.DataFrame, title: str, colorbar_label: str, cmap: str = "viridis",
            fmt: str = "{:.2f}", annotate: bool = True, center_zero: bool = False):
    """A labelled heatmap of a DataFrame (rows × columns), optionally annotated with its values."""
    values = frame.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.7 * values.shape[1] + 2.5, 0.38 * values.shape[0] + 1.6),
                           constrained_layout=True)
    lim = np.nanmax(np.abs(values)) if center_zero else None
    im = ax.imshow(values, cmap=cmap, aspect="auto",
                   vmin=-lim if center_zero else None, vmax=lim if center_zero else None)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in frame.columns], rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), [str(i) for i in frame.index])
    ax.set_xlabel(frame.columns.name or "")
    ax.set_ylabel(frame.index.name or "")
    if annotate and values.size <= 400:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if im.norm(v) < 0.5 else "black")
    fig.colorbar(im, ax=ax, label=colorbar_label)
    ax.set_title(title)
    return fig


def curves(frame: pd.DataFrame, x: str, ys: Sequence[str], title: str, xlabel: str, ylabel: str,
           logy: bool = False):
    """Line plot of several columns of a DataFrame against one column."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6), constrained_layout=True)
    for y in ys:
        ax.plot(frame[x], frame[y], marker="o", ms=3, label=y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig
