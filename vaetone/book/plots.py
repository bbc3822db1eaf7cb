"""Figures of the book: spectrograms, waveforms, counts, heatmaps and curves, titled and labelled with units.

Every function returns the matplotlib Figure so that a chapter can display it (and
nothing else); none of them computes results.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from vaetone.book import style
from vaetone.book.style import CHAR_IN, LINE_IN, MAX_WIDTH_IN, check_figure, wrap
from vaetone.config import SAMPLE_RATE, Config

style.use()


def spectrogram(ax, db: np.ndarray, cfg: Config, title: str = "", vmin=None, vmax=None, colorbar=True):
    """Draw one log-mel spectrogram (n_mels, frames) in dB on ``ax``: time in s, mel bands labelled in Hz."""
    db = np.asarray(db)
    seconds = db.shape[1] * cfg.hop_length / SAMPLE_RATE
    extent = (0, seconds, -0.5, db.shape[0] - 0.5)
    kw = {"origin": "lower", "aspect": "auto", "cmap": "magma", "extent": extent, "interpolation": "nearest"}
    im = ax.imshow(db, vmin=vmin, vmax=vmax, **kw)
    from vaetone.spectral.melspec import mel_frequencies

    centres = mel_frequencies(cfg)
    ticks = np.linspace(0, db.shape[0] - 1, 5).round().astype(int)
    ax.set_yticks(ticks, [f"{centres[t]:.0f}" for t in ticks])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel band centre (Hz)")
    if title:
        ax.set_title(title)
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
    """A grid of log-mel spectrograms (at most 5 columns, the column's width) with one shared dB colour scale.

    Args:
        dbs: spectrograms, each (n_mels, frames) in dB.
        titles: one title per panel (wrapped to the panel's width).
        cfg: the configuration (hop, mel range).
        suptitle: the figure's title.
        ncols: panels per row (at most 5).
    Returns:
        The Figure (x: time in s; y: mel band centre in Hz). Chapters: 01_data, 03_training, 04_sensitivity,
        05_ablation
    """
    n = len(dbs)
    fig, axes, ncols = style.panels(n, ncols, 5, 1.9 if ncols >= 5 else 2.1, sharey=True)
    stack = np.stack([np.asarray(d) for d in dbs])
    vmin, vmax = (stack.min(), stack.max()) if shared_scale else (None, None)
    panel_in = 0.8 * (MAX_WIDTH_IN - 1.4) / ncols  # titles are 10.5 pt
    for i, ax in enumerate(list(axes.flat)[:n]):
        im = spectrogram(ax, dbs[i], cfg, wrap(titles[i], panel_in), vmin, vmax, colorbar=not shared_scale)
        if i % ncols:
            ax.set_ylabel("")
        if i < n - ncols:
            ax.set_xlabel("")
    if shared_scale:
        fig.colorbar(im, ax=axes, label="power (dB)", shrink=0.9)
    fig.suptitle(suptitle)
    return check_figure(fig)


def waveform_grid(audio: np.ndarray, titles: Sequence[str], suptitle: str, ncols: int = 4, sr: int = SAMPLE_RATE):
    """A grid of waveforms (n, samples), at most 4 columns: amplitude against time in s, one shared amplitude axis.

    Returns:
        The Figure. Chapter: 01_data
    """
    n = len(audio)
    fig, axes, ncols = style.panels(n, ncols, 4, 1.6, sharex=True, sharey=True)
    t = np.arange(audio.shape[1]) / sr
    for i, ax in enumerate(list(axes.flat)[:n]):
        ax.plot(t, audio[i], lw=0.4, color="C0", rasterized=True)  # a vector path of every sample weighs MBs
        ax.set_title(wrap(titles[i], 0.8 * MAX_WIDTH_IN / ncols - 0.3))
        if i >= n - ncols:
            ax.set_xlabel("time (s)")
        if i % ncols == 0:
            ax.set_ylabel("amplitude")
    fig.suptitle(suptitle)
    return check_figure(fig)


def count_bars(tables: dict[str, pd.Series], suptitle: str):
    """Bar charts of note counts, one full-width panel per table ({title: Series indexed by category}).

    Categories that are too many to label at 9 pt are labelled every k-th (numbers) or rotated.

    Returns:
        The Figure (y: notes). Chapter: 01_data
    """
    fig, axes = plt.subplots(len(tables), 1, figsize=(MAX_WIDTH_IN, 2.1 * len(tables) + 0.4), squeeze=False)
    for ax, (title, counts) in zip(axes[:, 0], tables.items()):
        labels = [str(i) for i in counts.index]
        ax.bar(range(len(labels)), counts.values, color="C0")
        rotated = max(len(s) for s in labels) * CHAR_IN + 0.08 > (MAX_WIDTH_IN - 1.0) / len(labels)
        step = style.tick_step(labels, MAX_WIDTH_IN - 1.0, rotated)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=90 if rotated else 0)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set(title=title, ylabel="notes")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(suptitle)
    return check_figure(fig)


def heatmap(
    frame: pd.DataFrame,
    title: str,
    colorbar_label: str,
    cmap: str | None = None,
    fmt: str = "{:.2f}",
    annotate: bool = True,
    center_zero: bool | None = None,
    cap_percentile: float | None = 95.0,
):
    """A labelled heatmap of a DataFrame (rows × columns) that fits the column, with a colour bar in units.

    The scale starts at 0 for non-negative data and is centred on 0 for signed data (cmap RdBu_r unless
    given); for non-negative data, when a few cells would saturate it, it is capped at ``cap_percentile``
    (:func:`style.colour_scale`; the caption can say ``style.CAP_CAPTION``). Cells carry their values (``fmt``)
    only where 9-pt text fits in them.

    Args:
        frame: rows × columns of values; the index and column names label the axes.
        colorbar_label: what the colour means, with its unit.
        center_zero: True: centred on 0; False: from 0 (data must be non-negative); None: from the data.
        cap_percentile: percentile at which a saturating scale is capped; None: never capped.
    Returns:
        The Figure. Raises FigureError when the rows or columns are too many to label at 9 pt (show fewer
        rows, or transpose the table). Chapters: 04_sensitivity, 05_ablation, 06_statistics
    """
    values = frame.to_numpy(dtype=float)
    nrows, ncols = values.shape
    vmin, vmax, extend = style.colour_scale(values, center_zero, cap_percentile)
    cmap = cmap or ("RdBu_r" if vmin < 0 else "viridis")
    rows, cols = [str(i) for i in frame.index], [str(c) for c in frame.columns]
    figsize, cell_w, cell_h, rotated = style.heatmap_layout(rows, cols, bool(frame.index.name), title)
    fig, ax = plt.subplots(figsize=figsize)
    im = ax.imshow(values, cmap=cmap, aspect="auto", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks(range(ncols), cols, rotation=90 if rotated else 0)
    ax.set_yticks(range(nrows), rows)
    ax.set_xlabel(frame.columns.name or "")
    ax.set_ylabel(frame.index.name or "")
    texts = [fmt.format(v) for v in values.flat]
    fits = max(len(t) for t in texts) * CHAR_IN + 0.04 <= cell_w and LINE_IN <= cell_h
    if annotate and fits:
        for (r, c), v in np.ndenumerate(values):
            red, green, blue, _ = im.cmap(im.norm(v))
            light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived lightness of the cell
            ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=9, color="black" if light else "white")
    fig.colorbar(im, ax=ax, label=colorbar_label, extend=extend)
    ax.set_title(wrap(title, fig.get_figwidth() * 0.85))
    return check_figure(fig)


def curves(frame: pd.DataFrame, x: str, ys: Sequence[str], title: str, xlabel: str, ylabel: str, logy: bool = False):
    """Line plot of several columns of a DataFrame against one column (6.5 in wide).

    Returns:
        The Figure. Chapters: 03_training, 05_ablation
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for y in ys:
        ax.plot(frame[x], frame[y], marker="o", ms=3, label=y)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return check_figure(fig)


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
        The Figure (x: z_j in prior standard deviations; y: the descriptor in its unit), at most 3 panels
        per row. Chapter: 04_sensitivity
    """
    fig, axes, ncols = style.panels(len(descriptors), ncols, 3, 2.3)
    for ax, name in zip(axes.flat, descriptors):
        for k, d in enumerate(dims):
            g = curves[curves["dim"] == d].groupby("z")[name].agg(["mean", "std"])
            ax.plot(g.index, g["mean"], marker="o", ms=3, color=f"C{k}", label=f"z{d}")
            ax.fill_between(g.index, g["mean"] - g["std"], g["mean"] + g["std"], color=f"C{k}", alpha=0.15)
        ax.set_ylabel(descriptor_label(name))
        ax.grid(alpha=0.3)
    fig.supxlabel("swept value of z_j (prior standard deviations)")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside lower center", ncols=min(len(dims), 8))
    fig.suptitle(title)
    return check_figure(fig)


def bars(
    values: pd.DataFrame,
    title: str,
    xlabel: str,
    ylabel: str,
    errors: pd.DataFrame | None = None,
    logy: bool | None = None,
    width: float = 0.8,
):
    """Grouped bar chart: one group per row of ``values``, one bar per column, optional error bars.

    Args:
        values: rows = categories on the x axis (e.g. latent dimensions), columns = series.
        errors: same shape as ``values`` (e.g. standard errors or confidence half-widths), or None.
        logy: log y axis; None (default): log only where a whole series would be invisible on a linear
            axis (all values > 0 and a series' largest bar under 1/30 of the largest), and then the
            y label says "(log scale)".
    Returns:
        The Figure. Chapters: 03_training, 04_sensitivity, 05_ablation, 06_statistics
    """
    values = values.astype(float)
    n, m = values.shape
    v = values.to_numpy()
    if logy is None:
        logy = bool(np.isfinite(v).all() and (v > 0).all() and values.max().min() < values.max().max() / 30)
        ylabel = f"{ylabel} (log scale)" if logy else ylabel
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN if n * m > 12 else 6.0, 3.4))
    w = width / m
    x = np.arange(n)
    for k, col in enumerate(values.columns):
        err = None if errors is None else errors[col].to_numpy(dtype=float)
        kw = {"yerr": err, "capsize": 2, "label": str(col), "color": f"C{k}", "error_kw": {"elinewidth": 0.8}}
        ax.bar(x + (k - (m - 1) / 2) * w, values[col].to_numpy(), w, **kw)
    labels = [str(i) for i in values.index]
    wide = max(len(line) for s in labels for line in s.split("\n")) * CHAR_IN > (MAX_WIDTH_IN - 1) / n
    ax.set_xticks(x, labels, rotation=90 if wide else 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    if m > 1:  # one row of legend in headroom above the bars
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * (hi / lo) ** 0.3 if logy else hi + 0.3 * (hi - lo))
        ax.legend(loc="upper center", ncols=m)
    ax.grid(alpha=0.3, axis="y")
    return check_figure(fig)


def band_curves(
    frame: pd.DataFrame, x: str, y: str, err: str, hue: str, title: str, xlabel: str, ylabel: str, logy: bool = False
):
    """Lines of ``y`` against ``x``, one per value of ``hue``, each with a ±``err`` band (NaN: no band).

    Returns:
        The Figure. Chapter: 05_ablation
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
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
    ax.legend()
    ax.grid(alpha=0.3)
    return check_figure(fig)


def latent_histograms(mu: np.ndarray, title: str, ncols: int = 4, bins: int = 30):
    """Histograms of each latent dimension's posterior means, with the N(0, 1) prior density overlaid.

    Args:
        mu: (n, D) posterior means.
        ncols: panels per row (at most 4).
    Returns:
        The Figure (x: z_j; y: density), values beyond ±4 counted at ±4. Chapter: 06_statistics
    """
    mu = np.asarray(mu, dtype=float)
    d = mu.shape[1]
    fig, axes, ncols = style.panels(d, ncols, 4, 1.45, sharex=True, sharey=True)
    grid = np.linspace(-4, 4, 200)
    prior = np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi)
    for j, ax in enumerate(list(axes.flat)[:d]):
        ax.hist(np.clip(mu[:, j], -4, 4), bins=bins, range=(-4, 4), density=True, color="C0", alpha=0.7)
        ax.plot(grid, prior, color="C3", lw=1)
        ax.text(0.03, 0.95, f"z{j}", transform=ax.transAxes, ha="left", va="top", fontsize=10)
        ax.set_xticks([-4, -2, 0, 2, 4])
        if j % ncols == 0:
            ax.set_ylabel("density")
        if j >= d - ncols:
            ax.set_xlabel("posterior mean")
    fig.suptitle(wrap(title, MAX_WIDTH_IN * 0.8))
    return check_figure(fig)


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
        The Figure, the legend of text values below the panels. Chapter: 06_statistics
    """
    nrows, ncols = len(embeddings), len(colours)
    fig, axes = plt.subplots(nrows, ncols, figsize=(MAX_WIDTH_IN, 2.7 * nrows + 1.0), squeeze=False)
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
                    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=6, markerscale=1.5)
            else:
                sc = ax.scatter(xy["x"], xy["y"], s=8, c=values.astype(float), cmap="viridis")
                fig.colorbar(sc, ax=ax, label=name)
            ax.set_title(wrap(f"{view}, coloured by {name}", MAX_WIDTH_IN / ncols - 0.6), fontsize=9)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
    fig.suptitle(title)
    return check_figure(fig)


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
    mean, std = mean_std[["mean"]].set_axis([label], axis=1), mean_std[["std"]].set_axis([label], axis=1)
    return bars(mean, title, xlabel, ylabel, errors=std)


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
    fig, axes = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN, 3.4))
    for ax, (term, name) in zip(axes, (("recon", "Reconstruction"), ("kl", "KL"))):
        ax.plot(epochs, history[f"train_{term}"], marker="o", ms=3, label="training")
        ax.plot(epochs, history[f"valid_{term}"], marker="o", ms=3, label="validation")
        ax.set(xlabel="epoch", ylabel="nats per note", title=f"{name} term")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return check_figure(fig)


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
