"""Figures of the book: spectrograms, waveforms, counts, heatmaps and curves, titled and labelled with units.

Every function returns the matplotlib Figure so that a chapter can display it (and
nothing else); none of them computes results.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vaetone.config import SAMPLE_RATE, Config


def spectrogram(ax, db: np.ndarray, cfg: Config, title: str = "", vmin=None, vmax=None, colorbar=True):
    """Draw one log-mel spectrogram (n_mels, frames) in dB on ``ax``: time in s, mel bands labelled in Hz."""
    db = np.asarray(db)
    seconds = db.shape[1] * cfg.hop_length / SAMPLE_RATE
    im = ax.imshow(
        db,
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=vmin,
        vmax=vmax,
        extent=(0, seconds, -0.5, db.shape[0] - 0.5),
        interpolation="nearest",
    )
    from vaetone.spectral.melspec import mel_frequencies

    centres = mel_frequencies(cfg)
    ticks = np.linspace(0, db.shape[0] - 1, 5).round().astype(int)
    ax.set_yticks(ticks, [f"{centres[t]:.0f}" for t in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band centre (Hz)")
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="power (dB)", fraction=0.046, pad=0.02)
    return im


def spectrogram_grid(
    dbs: Sequence[np.ndarray],
    titles: Sequence[str],
    cfg: Config,
    suptitle: str,
    ncols: int = 4,
    shared_scale: bool = True,
):
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.6 * nrows), squeeze=False, constrained_layout=True)
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


def waveform_grid(audio: np.ndarray, titles: Sequence[str], suptitle: str, ncols: int = 4, sr: int = SAMPLE_RATE):
    """A grid of waveforms (n, samples): amplitude against time in s, one shared amplitude axis."""
    n = len(audio)
    nrows = int(np.ceil(n / ncols))
    ncols = min(ncols, n)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(3.3 * ncols, 1.8 * nrows),
        squeeze=False,
        sharex=True,
        sharey=True,
        constrained_layout=True,
    )
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


def heatmap(
    frame: pd.DataFrame,
    title: str,
    colorbar_label: str,
    cmap: str = "viridis",
    fmt: str = "{:.2f}",
    annotate: bool = True,
    center_zero: bool = False,
):
    """A labelled heatmap of a DataFrame (rows × columns), optionally annotated with its values."""
    values = frame.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(0.7 * values.shape[1] + 2.5, 0.38 * values.shape[0] + 1.6), constrained_layout=True)
    lim = np.nanmax(np.abs(values)) if center_zero else None
    im = ax.imshow(
        values, cmap=cmap, aspect="auto", vmin=-lim if center_zero else None, vmax=lim if center_zero else None
    )
    ax.set_xticks(range(values.shape[1]), [str(c) for c in frame.columns], rotation=45, ha="right")
    ax.set_yticks(range(values.shape[0]), [str(i) for i in frame.index])
    ax.set_xlabel(frame.columns.name or "")
    ax.set_ylabel(frame.index.name or "")
    if annotate and values.size <= 400:
        for (r, c), v in np.ndenumerate(values):
            red, green, blue, _ = im.cmap(im.norm(v))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived lightness of the cell
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7, color="black" if light else "white")
    fig.colorbar(im, ax=ax, label=colorbar_label)
    ax.set_title(title)
    return fig


def curves(frame: pd.DataFrame, x: str, ys: Sequence[str], title: str, xlabel: str, ylabel: str, logy: bool = False):
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


# ---------------------------------------------------------------- chapters 04-06 (latent-space analyses)

DESCRIPTOR_LABELS = {
    "centroid_hz": "centroid (Hz)",
    "bandwidth_hz": "bandwidth (Hz)",
    "rolloff_hz": "roll-off (Hz)",
    "flatness": "flatness (ratio)",
    "rms_db": "RMS level (dB)",
    "f0_hz": "f0 (Hz)",
    "inharmonicity": "inharmonicity (ratio)",
    "attack_s": "attack time (s)",
    "decay_db_per_s": "decay rate (dB/s)",
}
"""Axis labels, with units, of the audio descriptors of :mod:`vaetone.spectral.descriptors`."""


def descriptor_label(name: str) -> str:
    """An axis label with its unit for a descriptor column, e.g. "centroid (Hz)" for "centroid_hz"."""
    return DESCRIPTOR_LABELS.get(name, name.replace("_", " "))


def sweep_curves(curves: pd.DataFrame, dims: Sequence[int], descriptors: Sequence[str], title: str, ncols: int = 4):
    """Descriptors of the decoded output along one-at-a-time sweeps: mean over anchors ± one std.

    Args:
        curves: ``sensitivity.one_at_a_time(...).curves`` (columns dim, anchor, z, one per descriptor).
        dims: the swept dimensions to draw (one line each).
        descriptors: one panel each.
        title: the figure's title.
    Returns:
        The Figure (x: z_j in prior standard deviations; y: the descriptor in its unit). Chapter: 04_sensitivity.
    """
    n = len(descriptors)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.7 * nrows), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes.flat, descriptors):
        for k, d in enumerate(dims):
            g = curves[curves["dim"] == d].groupby("z")[name].agg(["mean", "std"])
            ax.plot(g.index, g["mean"], marker="o", ms=3, color=f"C{k}", label=f"z{d}")
            ax.fill_between(g.index, g["mean"] - g["std"], g["mean"] + g["std"], color=f"C{k}", alpha=0.15)
        ax.set_xlabel("swept value of z_j (prior std)")
        ax.set_ylabel(descriptor_label(name))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    return fig


def bars(
    values: pd.DataFrame,
    title: str,
    xlabel: str,
    ylabel: str,
    errors: pd.DataFrame | None = None,
    logy: bool = False,
    width: float = 0.8,
):
    """Grouped bar chart: one group per row of ``values``, one bar per column, optional error bars.

    Args:
        values: rows = categories on the x axis (e.g. latent dimensions), columns = series.
        errors: same shape as ``values`` (e.g. standard errors or confidence half-widths), or None.
    Returns:
        The Figure. Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    values = values.astype(float)
    n, m = values.shape
    fig, ax = plt.subplots(figsize=(min(10.0, max(5.5, 0.25 * n * m + 2.5)), 3.6), constrained_layout=True)
    w = width / m
    x = np.arange(n)
    for k, col in enumerate(values.columns):
        err = None if errors is None else errors[col].to_numpy(dtype=float)
        ax.bar(
            x + (k - (m - 1) / 2) * w,
            values[col].to_numpy(),
            w,
            yerr=err,
            capsize=2,
            label=str(col),
            color=f"C{k}",
            error_kw={"elinewidth": 0.8},
        )
    ax.set_xticks(x, [str(i) for i in values.index], rotation=0 if n <= 20 else 90)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if m > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def band_curves(
    frame: pd.DataFrame, x: str, y: str, err: str, hue: str, title: str, xlabel: str, ylabel: str, logy: bool = False
):
    """Lines of ``y`` against ``x``, one per value of ``hue``, each with a ±``err`` band (NaN: no band).

    Returns:
        The Figure. Chapter: 05_ablation (cumulative ablation).
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.8), constrained_layout=True)
    for k, (name, g) in enumerate(frame.groupby(hue, sort=False)):
        g = g.sort_values(x)
        ax.plot(g[x], g[y], marker="o", ms=3, color=f"C{k}", label=str(name))
        e = g[err].to_numpy(dtype=float)
        if np.isfinite(e).any():
            ax.fill_between(g[x], g[y] - np.nan_to_num(e), g[y] + np.nan_to_num(e), color=f"C{k}", alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def latent_histograms(mu: np.ndarray, title: str, ncols: int = 8, bins: int = 30):
    """Histograms of each latent dimension's posterior means, with the N(0, 1) prior density overlaid.

    Args:
        mu: (n, D) posterior means.
    Returns:
        The Figure (x: z_j; y: density). Chapter: 06_statistics.
    """
    mu = np.asarray(mu, dtype=float)
    d = mu.shape[1]
    ncols = min(ncols, d)
    nrows = int(np.ceil(d / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.9 * ncols, 1.7 * nrows + 0.4), squeeze=False, sharex=True, constrained_layout=True
    )
    grid = np.linspace(-4, 4, 200)
    prior = np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi)
    for j, ax in enumerate(axes.flat):
        if j >= d:
            ax.axis("off")
            continue
        ax.hist(np.clip(mu[:, j], -4, 4), bins=bins, range=(-4, 4), density=True, color="C0", alpha=0.7)
        ax.plot(grid, prior, color="C3", lw=1)
        ax.set_title(f"z{j}", fontsize=8)
        ax.tick_params(labelsize=7)
        if j % ncols == 0:
            ax.set_ylabel("density", fontsize=8)
        if j >= d - ncols:
            ax.set_xlabel("posterior mean", fontsize=8)
    fig.suptitle(title)
    return fig


def embedding_scatter(
    embeddings: dict[str, pd.DataFrame],
    colours: dict[str, Sequence],
    title: str,
    axis_labels: dict[str, tuple[str, str]] | None = None,
):
    """2-D views of the latents (rows) coloured by note attributes (columns).

    Args:
        embeddings: {view name: DataFrame with columns x, y (n rows)}, e.g. PCA and t-SNE.
        colours: {attribute name: (n,) values}; text values get a legend, numbers a colour bar.
        axis_labels: {view name: (x label, y label)}; default "<view> 1", "<view> 2".
    Returns:
        The Figure. Chapter: 06_statistics.
    """
    nrows, ncols = len(embeddings), len(colours)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.2 * nrows), squeeze=False, constrained_layout=True)
    for r, (view, xy) in enumerate(embeddings.items()):
        labels = (axis_labels or {}).get(view, (f"{view} 1", f"{view} 2"))
        for c, (name, values) in enumerate(colours.items()):
            ax, values = axes[r, c], np.asarray(values)
            if values.dtype.kind in "OUS":
                for k, v in enumerate(pd.unique(values)):
                    sel = values == v
                    ax.scatter(
                        xy["x"][sel], xy["y"][sel], s=8, color=plt.cm.tab20((2 * k + k // 10) % 20), label=str(v)
                    )
                if r == 0:
                    ax.legend(fontsize=6, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            else:
                sc = ax.scatter(xy["x"], xy["y"], s=8, c=values.astype(float), cmap="viridis")
                fig.colorbar(sc, ax=ax, label=name)
            ax.set_title(f"{view}, coloured by {name}", fontsize=9)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
    fig.suptitle(title)
    return fig


def latent_views(
    pca: pd.DataFrame, tsne: pd.DataFrame, notes: pd.DataFrame, explained_variance: Sequence[float], title: str
):
    """PCA and t-SNE maps of the posterior means (rows) coloured by family, MIDI pitch and velocity (columns).

    Args:
        pca, tsne: columns x, y, one row per note (latent units; t-SNE units are arbitrary).
        notes: the same notes in the same order, with columns family, pitch, velocity.
        explained_variance: the shares (0-1) of the variance of the first two principal components.
    Returns:
        The Figure (:func:`embedding_scatter`). Chapter: 06_statistics.
    """
    evr = explained_variance
    colours = {"family": notes["family"], "pitch (MIDI)": notes["pitch"], "velocity": notes["velocity"]}
    labels = {
        "PCA": (f"PC 1 ({100 * evr[0]:.0f} % of variance)", f"PC 2 ({100 * evr[1]:.0f} %)"),
        "t-SNE": ("t-SNE 1 (arbitrary units)", "t-SNE 2 (arbitrary units)"),
    }
    return embedding_scatter({"PCA": pca, "t-SNE": tsne}, {k: v.to_numpy() for k, v in colours.items()}, title, labels)


def mean_std_bars(mean_std: pd.DataFrame, title: str, xlabel: str, ylabel: str, label: str = "mean over seeds"):
    """Bars of the ``mean`` column of a table with its ``std`` column as error bars (e.g. over seeds).

    Args:
        mean_std: rows = categories on the x axis (e.g. latent dimensions); columns mean, std.
        label: the legend name of the series.
    Returns:
        The Figure (:func:`bars`). Chapters: 04_sensitivity, 05_ablation, 06_statistics.
    """
    return bars(
        mean_std[["mean"]].set_axis([label], axis=1),
        title,
        xlabel,
        ylabel,
        errors=mean_std[["std"]].set_axis([label], axis=1),
    )


# ---------------------------------------------------------------- chapter 03 (training and evaluation)


def training_curves(history: pd.DataFrame, title: str = "Training curves"):
    """The reconstruction and KL terms per epoch on the training and validation splits, one panel each.

    Args:
        history: a run's history indexed by ``epoch``, with columns ``train_recon``, ``valid_recon``,
            ``train_kl``, ``valid_kl`` (nats per note).
    Returns:
        The Figure (x: epoch; y: nats per note). Chapter: 03_training.
    """
    epochs = history.index.to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    for ax, (term, name) in zip(axes, (("recon", "Reconstruction"), ("kl", "KL"))):
        ax.plot(epochs, history[f"train_{term}"], marker="o", ms=3, label="training")
        ax.plot(epochs, history[f"valid_{term}"], marker="o", ms=3, label="validation")
        ax.set(xlabel="epoch", ylabel="nats per note", title=f"{name} term")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def family_bars(per_family: pd.DataFrame, title: str, ylabel: str):
    """Bars of each model's error per family, the x labels stating each family's notes and instruments.

    Args:
        per_family: rows = families; one column per model, then ``n_notes`` and ``n_instruments``
            (``vaetone.analysis.scores.per_family_lsd``, without its "all" row).
    Returns:
        The Figure (:func:`bars`). Chapter: 03_training.
    """
    counts = per_family[["n_notes", "n_instruments"]]
    names = [f"{f}\n{n} notes, {i} inst." for f, (n, i) in zip(per_family.index, counts.to_numpy())]
    values = per_family.drop(columns=counts.columns).set_axis(names)
    return bars(values, title, "instrument family", ylabel)
