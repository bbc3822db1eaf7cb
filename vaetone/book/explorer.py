"""The latent-space explorer of chapter 07: the live app and its static tour, a stage result.

Live in Jupyter, :func:`live` builds the ipywidgets app (:mod:`vaetone.book.widget`) with
one slider per latent dimension, ordered by the ablation stage (:func:`vaetone.analysis.ablation.result`,
computed when missing) and labelled with the name of what the dimension's sweep moves where that
name holds across the training seeds, else "mixed" (:func:`vaetone.analysis.seeds_labels.held_labels`,
the book's one naming rule). The static book cannot
run it, so :func:`result` pre-renders a *tour*: from one test note, each of the most
important dimensions swept over ±``sweep_sigma`` while the others keep the note's posterior
mean, as dB spectrograms and audio, cached in the run folder.

Chapter: 07_explorer.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from IPython.display import HTML

from vaetone import store
from vaetone.book.widget import LIVE_GL_ITERS, Explorer, Renderer, slider_label, value_label, value_text
from vaetone.config import Config
from vaetone.devices import resolve_device
from vaetone.errors import DataError, VaetoneError
from vaetone.results import StageResult, cached
from vaetone.spectral.inversion import PEAK_DBFS, mel_to_audio, peak_normalise

__all__ = [
    "LIVE_GL_ITERS",
    "TOUR_DIMS",
    "TOUR_STEPS",
    "Explorer",
    "Renderer",
    "StaticExplorer",
    "TourResult",
    "ablation_order",
    "compute_tour",
    "live",
    "live_timing",
    "result",
    "slider_label",
    "slider_names",
    "static_explorer",
    "tour_answer",
    "value_label",
]

TOUR_DIMS = 3
"""Dimensions the tour sweeps: the first of the slider order."""
TOUR_STEPS = 5
"""Values per swept dimension, evenly spaced over ±sweep_sigma."""
TIMED_UPDATES = 5
"""Live updates whose median time the chapter quotes."""


@dataclass(frozen=True)
class TourResult(StageResult):
    """The explorer's slider order and labels and its tour, pre-rendered for the static book.

    Tables: ``sliders`` (one row per slider, most important first: dimension, label, name: the
    name that holds across seeds, "mixed" or "none") and ``tour`` (one row per swept dimension:
    dimension, label, change_db, the mean absolute dB difference between the decodes at
    +sweep_sigma and -sweep_sigma). Findings: see :func:`tour_findings`, plus tour_peak_dbfs and tour_gain_db
    (the one gain, dB, that brought the whole tour's loudest sample to tour_peak_dbfs). Arrays: ``tour_values``
    (steps,) in prior standard deviations, ``tour_db`` (dims, steps, n_mels, frames) dB, ``tour_audio`` (dims,
    steps, samples) at 16 kHz, scaled by that one gain. ``dimension_order``: the slider order.
    Chapter: 07_explorer.
    """

    stage: ClassVar[str] = "explorer_tour"
    version: ClassVar[int] = 3
    params: ClassVar[tuple[str, ...]] = ("sweep_sigma", "griffin_lim_iters", "n_seeds")


def check_order(order: Sequence[int], latent_dim: int, where: str) -> list[int]:
    """``order`` as a list of ints, checked to list every dimension 0..latent_dim-1 exactly once.

    Raises:
        VaetoneError: naming ``where`` the order came from.
    """
    dims = [int(d) for d in order]
    if sorted(dims) != list(range(latent_dim)):
        raise VaetoneError(
            f"the dimension order {dims} of {where} does not list every latent dimension 0..{latent_dim - 1} "
            "once; delete that result's folder under the run's results/ so that it is recomputed"
        )
    return dims


def ablation_order(cfg: Config) -> list[int]:
    """The slider order, from the ablation stage (computed when missing).

    Returns:
        The dimensions, most important first. Chapter: 07_explorer.
    """
    from vaetone.analysis import ablation

    found = ablation.result(cfg)
    where = f"the ablation result of run {store.run_id(cfg)}"
    return check_order(found.dimension_order or (), cfg.latent_dim, where)


def slider_names(cfg: Config) -> dict[int, str]:
    """Each dimension's name for its slider: what its sweep moves where that holds across seeds, else "mixed".

    Args:
        cfg: the configuration (``n_seeds`` seeds from ``seed``; results computed when missing).
    Returns:
        {dim: descriptor, "mixed" or "none"} (:func:`vaetone.analysis.seeds_labels.held_labels`).
    Chapter: 07_explorer.
    """
    from vaetone.analysis import seeds_labels

    return {int(d): str(name) for d, name in seeds_labels.held_labels(cfg).items()}


def sweep_points(anchor: np.ndarray, dims: Sequence[int], values: Sequence[float]) -> np.ndarray:
    """The tour's latent points: ``anchor`` with one dimension at a time set to each value.

    Args:
        anchor: (D,) start point; dims: dimensions to sweep; values: their values.
    Returns:
        (len(dims) * len(values), D) float32, dimension-major.
    """
    z = np.repeat(np.asarray(anchor, dtype=np.float32)[None], len(dims) * len(values), axis=0)
    for i, d in enumerate(dims):
        z[i * len(values) : (i + 1) * len(values), d] = values
    return z


def joined(items: Sequence[str]) -> str:
    """Names joined as prose: "a", "a and b", "a, b and c"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def tour_answer(
    labels: Sequence[str],
    change_db: Sequence[float],
    sigma: float,
    anchor: str,
    n_named: int,
    n_sliders: int,
    n_seeds: int,
) -> str:
    """The explorer chapter's answer in one sentence, built from the tour's numbers (true for any run).

    Args:
        labels: the swept dimensions' slider labels; change_db: their mean absolute dB change between the
            sweep's ends; sigma: sweep_sigma; anchor: the start note; n_named, n_sliders, n_seeds: sliders
            named after a descriptor, all sliders, seeds a name must hold across.
    Returns:
        the sentence. Chapter: 07_explorer.
    """
    moves = joined([f"{c:.1f} dB for {lab}" for lab, c in zip(labels, change_db)])
    named = (
        f"none of the {n_sliders} sliders carries a descriptor's name that holds across the {n_seeds} seeds"
        if n_named == 0
        else f"{n_named} of the {n_sliders} sliders carry a descriptor's name that holds across the {n_seeds} seeds"
    )
    return (
        f"Moving one of the {len(labels)} most important dimensions from {value_text(-sigma)} to "
        f"{value_text(sigma)} from the test note {anchor} changes its decoded spectrogram on average by "
        f"{moves}, and {named}."
    )


def tour_findings(
    order: list[int],
    labels: dict[int, str],
    top: list[int],
    anchor: str,
    values: np.ndarray,
    n_notes: int,
    cfg,
    change: Sequence[float] = (),
) -> dict:
    """What chapter 07 quotes and prints about its sliders and tour.

    Returns:
        live_iters, gl_iters (Griffin-Lim iterations of a live update and of the book's audio),
        n_sliders, n_test_notes, n_seeds (the seeds a name must hold across), n_named_sliders
        (sliders named after a descriptor), slider_order, slider_labels ({str(dim): label}),
        first_slider_label, tour_anchor (note_str), tour_dimensions (list), tour_dimension_names
        ("z5, z8 and z15"), tour_values (list, prior standard deviations), tour_check (the
        chapter's checked line) and answer (:func:`tour_answer`, from ``change``: the mean absolute dB
        change of each swept dimension between its sweep's ends). Chapter: 07_explorer.
    """
    n_named = sum(1 for d in order if labels[d].startswith(f"z{d} (moves "))
    return {
        "live_iters": LIVE_GL_ITERS,
        "gl_iters": int(cfg.griffin_lim_iters),
        "n_sliders": len(order),
        "n_test_notes": int(n_notes),
        "n_seeds": int(cfg.n_seeds),
        "n_named_sliders": n_named,
        "slider_order": order,
        "slider_labels": {str(d): labels[d] for d in order},
        "first_slider_label": labels[order[0]],
        "tour_anchor": anchor,
        "tour_dimensions": top,
        "tour_dimension_names": joined([f"z{d}" for d in top]),
        "tour_values": [float(v) for v in values],
        "tour_check": f"{len(order)} sliders; tour from {anchor} over dimensions {top}",
        "answer": tour_answer(
            [labels[d] for d in top], change, cfg.sweep_sigma, anchor, n_named, len(order), cfg.n_seeds
        ),
    }


def compute_tour(
    decode_db: Callable[[np.ndarray], np.ndarray],
    mu: np.ndarray,
    notes: Sequence[str],
    order: Sequence[int],
    names: dict[int, str],
    cfg: Config,
) -> TourResult:
    """The tour from the middle test note: the first :data:`TOUR_DIMS` of ``order`` swept (nothing read from disk).

    Args:
        decode_db: latent points (n, D) float32 → dB spectrograms (n, n_mels, frames).
        mu: posterior means of the test notes (n, D); notes: their note_str, in the same order.
        order: slider order, most important first; names: {dim: the name that holds across seeds,
            "mixed" or "none"} (:func:`slider_names`; a dim left out is shown bare).
        cfg: sweep_sigma, griffin_lim_iters, n_seeds and the feature settings of the inversion.
    Returns:
        A :class:`TourResult`. Chapter: 07_explorer.
    """
    mu = np.asarray(mu, dtype=np.float32)
    if len(notes) == 0 or len(mu) != len(notes):
        raise DataError(
            f"the tour needs test notes and one posterior mean per note, got {len(notes)} notes and {len(mu)} "
            "means; widen the test split (max_instruments, test_fraction)"
        )
    order = check_order(order, mu.shape[1], "the slider order")
    top, i = order[: min(TOUR_DIMS, len(order))], len(notes) // 2
    values = np.linspace(-cfg.sweep_sigma, cfg.sweep_sigma, TOUR_STEPS)
    db = np.asarray(decode_db(sweep_points(mu[i], top, values.tolist())), dtype=np.float32)
    audio, gain = peak_normalise(mel_to_audio(db, cfg).numpy())
    db, audio = db.reshape(len(top), len(values), *db.shape[1:]), audio.reshape(len(top), len(values), -1)
    labels = {d: slider_label(d, names.get(d)) for d in order}
    sliders = pd.DataFrame(
        {"dimension": order, "label": [labels[d] for d in order], "name": [names.get(d, "") for d in order]}
    )
    change = np.abs(db[:, -1] - db[:, 0]).mean(axis=(1, 2)).astype(float)
    tour = pd.DataFrame({"dimension": top, "label": [labels[d] for d in top], "change_db": change})
    return TourResult(
        tables={"sliders": sliders, "tour": tour},
        findings={
            **tour_findings(order, labels, top, str(notes[i]), values, len(notes), cfg, change.tolist()),
            "tour_peak_dbfs": PEAK_DBFS,
            "tour_gain_db": round(20 * float(np.log10(gain)), 1),
        },
        arrays={"tour_values": values, "tour_db": db, "tour_audio": audio},
        dimension_order=tuple(order),
    )


def _test_split(cfg: Config):
    """(features, trained run, latents of the test split) of ``cfg``."""
    from vaetone.model.runs import latents, trained_model
    from vaetone.spectral.features import load_features

    feats = load_features(cfg)
    run = trained_model(cfg, feats)
    return feats, run, latents(cfg, run, feats).split("test")


def result(cfg: Config) -> TourResult:
    """The explorer's slider order, labels and tour for ``cfg``'s run: computed once, then loaded.

    The order comes from :func:`vaetone.analysis.ablation.result`, the names from
    :func:`slider_names`; the cache key covers the trained run, that order and those names,
    ``sweep_sigma``, ``griffin_lim_iters`` and ``n_seeds``.

    Args:
        cfg: the configuration of the run.
    Returns:
        A :class:`TourResult`, cached under ``<run folder>/results/explorer_tour-<key>/``.
    Chapter: 07_explorer.
    """
    order, names = ablation_order(cfg), slider_names(cfg)
    blob = json.dumps({"order": order, "names": {str(d): n for d, n in names.items()}}, sort_keys=True)
    upstream = f"{store.key('train', cfg)}+ablation-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"

    def compute() -> TourResult:
        feats, run, test = _test_split(cfg)
        renderer = Renderer(run, feats, cfg)
        return compute_tour(renderer.spectrogram, test.mu, test.meta.index.tolist(), order, names, cfg)

    return cached(TourResult, cfg, compute, folder=store.run_dir(cfg), upstream=upstream)


def live(cfg: Config, tour: TourResult | None = None) -> Explorer:
    """The live explorer of ``cfg``'s run, starting at its test notes, sliders as in the tour result.

    Args:
        cfg: the configuration; tour: its :func:`result` (computed when None).
    Returns:
        An :class:`~vaetone.book.widget.Explorer`; display ``.widget()``. Chapter: 07_explorer.
    """
    tour = result(cfg) if tour is None else tour
    feats, run, test = _test_split(cfg)
    labels = {int(d): label for d, label in tour.findings["slider_labels"].items()}
    return Explorer(Renderer(run, feats, cfg), test.mu, test.meta, list(tour.dimension_order), labels, seed=cfg.seed)


def live_timing(app: Explorer, n: int = TIMED_UPDATES) -> dict:
    """Time live updates on this machine (it differs from machine to machine and run to run).

    Returns:
        update_ms: median of ``n`` updates (decode, inversion with LIVE_GL_ITERS, redraw), ms;
        live_device: "model on the cpu, inversion on the cpu". Chapter: 07_explorer.
    """
    times = [app.update()["total_s"] for _ in range(n)]
    where = f"model on the {app.decoder.run.device}, inversion on the {resolve_device(app.decoder.cfg).type}"
    return {"update_ms": 1000 * float(np.median(times)), "live_device": where}


EXPLORER_JS = """(function () {
  var root = document.getElementById("%(id)s");
  if (!root || root.getAttribute("data-live") === "yes") return;
  var grid = root.querySelector("table.vaetone-sound-grid"), ui = el("div", {className: "vaetone-explorer-ui"});
  var caption = grid.querySelector("caption");
  if (caption) ui.appendChild(el("div", {textContent: caption.textContent}, "font-size:0.9em"));
  function el(tag, props, css) {
    var e = Object.assign(document.createElement(tag), props || {});
    e.style.cssText = css || "";
    return e;
  }
  JSON.parse(root.getAttribute("data-rows")).forEach(function (row, r) {
    var id = root.id + "-slider-" + r, wide = "width:100%%;display:block";
    var label = el("label", {htmlFor: id, textContent: row.label}, "display:block;font-weight:bold");
    var input = el("input", {id: id, type: "range", min: 0, max: row.values.length - 1, step: 1}, "width:100%%");
    var shown = el("div", {className: "vaetone-explorer-value"}), level = el("div", {}, "font-size:0.85em");
    var img = el("img", {className: "vaetone-explorer-panel"}, wide);
    var audio = el("audio", {className: "vaetone-explorer-player", controls: true, preload: "metadata"}, wide);
    function show() {
      var cell = grid.querySelector('td[data-row="' + r + '"][data-col="' + input.value + '"]');
      img.src = cell.querySelector("img.vaetone-panel").getAttribute("src");
      img.alt = row.label + ", " + row.values[input.value];
      audio.src = cell.querySelector("audio").getAttribute("src");
      shown.textContent = row.values[input.value];
      level.textContent = cell.querySelector(".vaetone-level").textContent;
    }
    input.value = String(row.start);
    input.addEventListener("input", show);
    var box = el("div", {className: "vaetone-explorer-row"}, "display:flex;flex-wrap:wrap;gap:0.8em;margin:0.5em 0");
    var controls = el("div", {}, "flex:1 1 14em;align-self:center"), view = el("div", {}, "flex:0 0 18em");
    controls.append(label, input, shown);
    view.append(img, audio, level);
    box.append(controls, view);
    ui.appendChild(box);
    show();
  });
  var scale = grid.querySelector("tr.vaetone-scale-row td");
  if (scale) ui.appendChild(el("div", {innerHTML: scale.innerHTML}));
  grid.parentNode.insertBefore(ui, grid);
  grid.style.display = "none";
  root.setAttribute("data-live", "yes");
})();"""
"""The static explorer's script (plain JavaScript, nothing fetched): sliders over the plain grid's cells."""


class StaticExplorer(HTML):
    """The static explorer's HTML; text/plain lists its sliders and values."""

    def __init__(self, data: str, labels: list[str], values: list[str]):
        super().__init__(data)
        self.labels, self.values = labels, values

    def __repr__(self) -> str:
        return "static explorer: sliders " + " | ".join(self.labels) + "; values " + " | ".join(self.values)


def static_explorer(tour: TourResult, cfg: Config) -> StaticExplorer:
    """The tour as a page's explorer: one slider per swept dimension over its pre-rendered panels and sounds.

    Without JavaScript the reader sees the plain sound grid (:func:`vaetone.book.sound.sound_grid`; rows: the
    swept dimensions by their slider labels, columns: the sweep's values in prior standard deviations). The
    inline script (plain JavaScript, nothing fetched) builds per row a label, a range input starting at the
    centre value, the value as "z9 at −3.0 σ", one spectrogram and one player whose sources are the chosen
    grid cell's, then hides the grid.

    Args:
        tour: the :func:`result`; cfg: the feature settings (the grid's axes).
    Returns:
        a :class:`StaticExplorer` (an ``IPython.display.HTML``; glue it as a figure). Chapter: 07_explorer.
    """
    from vaetone.book.sound import sound_grid

    f, values = tour.findings, [float(v) for v in tour.arrays["tour_values"]]
    dims = f["tour_dimensions"]
    labels = [f["slider_labels"][str(d)] for d in dims]
    title = f"From the test note {f['tour_anchor']}: one row per swept dimension, the others at the note's values"
    grid = sound_grid(
        tour.arrays["tour_db"], tour.arrays["tour_audio"], cfg, [value_text(v) for v in values], labels, title
    )
    rows = [
        {"label": lab, "values": [value_label(d, v) for v in values], "start": len(values) // 2}
        for d, lab in zip(dims, labels)
    ]
    uid = "vaetone-explorer-" + hashlib.sha256(json.dumps([f["tour_check"], values]).encode()).hexdigest()[:10]
    data = (
        f'<div class="vaetone-explorer" id="{uid}" data-rows="{html.escape(json.dumps(rows))}">{grid.data}'
        f"<script>{EXPLORER_JS % {'id': uid}}</script></div>"
    )
    return StaticExplorer(data, labels, [value_text(v) for v in values])
