"""The live latent-space explorer: an ipywidgets app with one slider per latent dimension.

:class:`Renderer` decodes latent points to dB spectrograms and audio; :class:`Explorer` wires
sliders, a start note, interpolation and buttons to it. The explorer chapter builds it with
:func:`vaetone.book.explorer.live`; the static book shows the tour instead
(:func:`vaetone.book.explorer.result`).

Chapter: 07_explorer.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from vaetone.analysis.generate import slerp, to_db
from vaetone.book.players import wav_bytes
from vaetone.config import Config
from vaetone.spectral.inversion import mel_to_audio

LIVE_GL_ITERS = 8
"""Griffin-Lim iterations of a live update (fast); the full count is used on request."""
MIX_STEPS = 20
"""Steps of the interpolation slider between the start note and the 'towards' note."""
MINUS = "\u2212"
"""The minus sign of value labels ("z9 at −3.0 σ")."""
SIGMA = "\u03c3"
"""The unit of slider positions: prior standard deviations."""


def descriptor_name(descriptor: str) -> str:
    """A descriptor's readable name without its unit, e.g. "RMS level" for "rms_db", "centroid" for "centroid_hz".

    Chapter: 07_explorer.
    """
    from vaetone.book.plots import descriptor_label

    return re.sub(r"\s*\([^)]*\)$", "", descriptor_label(descriptor))


def slider_label(dim: int, descriptor: str | None = None) -> str:
    """The label of a dimension's slider: what the dimension moves, never a level.

    Args:
        dim: the latent dimension; descriptor: its name that holds across seeds
            (:func:`vaetone.analysis.seeds_labels.held_labels`): a descriptor, "mixed" (no name
            holds), "none" (moves no descriptor), or None or "" when unknown.
    Returns:
        "z9 (moves RMS level)", "z9 (mixed)", "z9 (none)" or "z9" (readable descriptor names,
        :func:`descriptor_name`). Chapter: 07_explorer.
    """
    if not descriptor:
        return f"z{dim}"
    if descriptor in ("mixed", "none"):
        return f"z{dim} ({descriptor})"
    return f"z{dim} (moves {descriptor_name(descriptor)})"


def value_text(value: float) -> str:
    """A position in prior standard deviations as text, e.g. "−3.0 σ", "+1.5 σ", "0.0 σ" (true minus).

    Chapter: 07_explorer.
    """
    text = "0.0" if round(float(value), 1) == 0 else f"{float(value):+.1f}"
    return f"{text.replace('-', MINUS)} {SIGMA}"


def value_label(dim: int, value: float) -> str:
    """A slider position as text, e.g. "z9 at −3.0 σ": where the point sits on z9, not a level.

    Args:
        dim: the latent dimension; value: its position in prior standard deviations.
    Returns:
        "z9 at −3.0 σ". Chapter: 07_explorer.
    """
    return f"z{dim} at {value_text(value)}"


@dataclass
class Renderer:
    """Decodes latent points to dB spectrograms and audio, timing each step.

    Args:
        run: the trained run (``vaetone.model.runs.Run``; its ``decode`` maps (n, D) → (n, 1, n_mels, frames)).
        feats: the Features (for ``denormalise``).
        cfg: the configuration.
    Chapter: 07_explorer.
    """

    run: object
    feats: object
    cfg: Config
    timings: dict = field(default_factory=dict)

    def spectrogram(self, z: np.ndarray) -> np.ndarray:
        """Decode latent points (n, D) → log-mel in dB (n, n_mels, frames)."""
        return to_db(self.run.decode(torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)), self.feats).numpy()

    def render(self, z: np.ndarray, n_iter: int = LIVE_GL_ITERS) -> tuple[np.ndarray, np.ndarray]:
        """Decode one latent point (D,) → (dB spectrogram (n_mels, frames), audio (samples,))."""
        t0 = time.perf_counter()
        db = self.spectrogram(z)
        t1 = time.perf_counter()
        y = mel_to_audio(torch.as_tensor(db), self.cfg, n_iter=n_iter)[0].numpy()
        self.timings.update(decode_s=t1 - t0, invert_s=time.perf_counter() - t1)
        return db[0], y


def _png(db: np.ndarray, cfg: Config, title: str, vmin: float, vmax: float) -> bytes:
    """Render one spectrogram to PNG bytes with the Agg backend (about 40 ms)."""
    from matplotlib.figure import Figure

    from vaetone.book.plots import spectrogram

    fig = Figure(figsize=(6.4, 3.0), dpi=80, layout="constrained")
    spectrogram(fig.add_subplot(), db, cfg, title, vmin=vmin, vmax=vmax)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class Explorer:
    """The ipywidgets app: one slider per latent dimension, a start point, live spectrogram and audio.

    Args:
        decoder: a :class:`Renderer`.
        mu: posterior means of the test notes (n, D), the start points.
        meta: their metadata (family, pitch, note_str), in the row order of ``mu``.
        order, labels: slider order (most important first) and labels (:func:`slider_label`);
            default: index order, labels "z0", "z1", ...
        seed: seed of the "randomise" and "prior sample" buttons.
    Chapter: 07_explorer.
    """

    def __init__(self, decoder: Renderer, mu: np.ndarray, meta, order=None, labels=None, seed: int = 0):
        import ipywidgets as w

        self.decoder, self.mu, self.meta = decoder, np.asarray(mu, dtype=np.float32), meta
        d = self.mu.shape[1]
        self.order = list(order) if order is not None else list(range(d))
        labels = labels or {i: slider_label(i) for i in range(d)}
        self.rng = np.random.default_rng(seed)
        span = decoder.cfg.sweep_sigma
        self.sliders = {
            i: w.FloatSlider(
                value=0.0,
                min=-span,
                max=span,
                step=0.05,
                description=labels[i],
                readout_format="+.1f",
                continuous_update=False,
                style={"description_width": "11em"},
                layout=w.Layout(width="420px"),
            )
            for i in self.order
        }
        names = [(f"{r.instrument_family_str} · pitch {r.pitch} · {k}", k) for k, r in meta.iterrows()]
        self.start = w.Dropdown(options=names, description="start note", layout=w.Layout(width="480px"))
        self.other = w.Dropdown(
            options=names, value=names[-1][1], description="towards", layout=w.Layout(width="480px")
        )
        self.mix = w.FloatSlider(
            value=0.0, min=0.0, max=1.0, step=1 / MIX_STEPS, description="interpolate", continuous_update=False
        )
        self.buttons = {n: w.Button(description=n) for n in ("reset", "randomise", "prior sample", "full quality")}
        self.image, self.sound = w.Image(format="png"), w.Audio(format="wav", autoplay=False, loop=False)
        self.status = w.Label()
        self._vrange = self._value_range()
        self._wire()
        self.set_start(self.start.value)

    def _value_range(self) -> tuple[float, float]:
        """A fixed dB colour scale for all updates: the range of the decoded start points."""
        db = self.decoder.spectrogram(self.mu[: min(len(self.mu), 64)])
        return float(db.min()), float(db.max())

    def _wire(self) -> None:
        """Connect widget events to updates."""
        for s in self.sliders.values():
            s.observe(lambda _: self.update(), names="value")
        self.start.observe(lambda ch: self.set_start(ch["new"]), names="value")
        self.other.observe(lambda _: self.set_mix(self.mix.value), names="value")
        self.mix.observe(lambda ch: self.set_mix(ch["new"]), names="value")
        self.buttons["reset"].on_click(lambda _: self.set_start(self.start.value))
        self.buttons["randomise"].on_click(lambda _: self.set_z(self.z + self.rng.normal(0, 0.5, self.z.shape)))
        self.buttons["prior sample"].on_click(lambda _: self.set_z(self.rng.standard_normal(self.z.shape)))
        self.buttons["full quality"].on_click(lambda _: self.update(self.decoder.cfg.griffin_lim_iters))

    @property
    def z(self) -> np.ndarray:
        """The current latent point (D,), read from the sliders."""
        z = np.zeros(len(self.sliders), dtype=np.float32)
        for i, s in self.sliders.items():
            z[i] = s.value
        return z

    def set_z(self, z: np.ndarray) -> None:
        """Move the sliders to ``z`` (clipped to their range) and update once."""
        self._quiet = True
        for i, s in self.sliders.items():
            s.value = float(np.clip(z[i], s.min, s.max))
        self._quiet = False
        self.update()

    def set_start(self, note_str: str) -> None:
        """Start from a test note's posterior mean (one update)."""
        if self.mix.value != 0.0:
            self.mix.value = 0.0  # its observer moves to the start of the path: the start note
            return
        self.set_z(self.mu[self.meta.index.get_loc(note_str)])

    def set_mix(self, t: float) -> None:
        """Interpolate (spherically) between the start note and the 'towards' note."""
        a = self.mu[self.meta.index.get_loc(self.start.value)]
        b = self.mu[self.meta.index.get_loc(self.other.value)]
        path = slerp(a, b, MIX_STEPS + 1).numpy()
        self.set_z(path[int(round(t * MIX_STEPS))])

    def update(self, n_iter: int = LIVE_GL_ITERS) -> dict:
        """Decode the current point, invert it to audio and redraw; returns the step timings (s)."""
        if getattr(self, "_quiet", False):
            return {}
        t0 = time.perf_counter()
        self.db, self.y = self.decoder.render(self.z, n_iter=n_iter)
        self.image.value = _png(self.db, self.decoder.cfg, "decoded note", *self._vrange)
        self.sound.value = wav_bytes(self.y)
        self.timings = {**self.decoder.timings, "total_s": time.perf_counter() - t0}
        self.status.value = f"update {1000 * self.timings['total_s']:.0f} ms ({n_iter} Griffin-Lim iterations)"
        return self.timings

    def widget(self):
        """The assembled app, ready to display."""
        import ipywidgets as w

        sliders = w.VBox([self.sliders[i] for i in self.order])
        controls = w.VBox([self.start, self.other, self.mix, w.HBox(list(self.buttons.values())), self.status])
        return w.VBox([controls, w.HBox([sliders, w.VBox([self.image, self.sound])])])
