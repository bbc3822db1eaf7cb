"""Labelled audio players for notebooks and the HTML book: WAV bytes, one player, a grid.

The players play the samples exactly as given (16-bit PCM of the values, no normalisation),
so the level a caption states is the level of the array passed in: set it beforehand with
:func:`vaetone.spectral.inversion.peak_normalise` (one gain per set of sounds). Unlike
``IPython.display.Audio``, which scales every clip to its own peak, nothing here rescales.

Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import wave

import numpy as np
import torch
from IPython.display import HTML

from vaetone.config import SAMPLE_RATE
from vaetone.errors import DataError

# ----------------------------------------------------------------------------- players

log = logging.getLogger(__name__)


def wav_bytes(y, sr: int = SAMPLE_RATE) -> bytes:
    """A mono 16-bit PCM WAV file of ``y`` as given (samples in [-1, 1]; louder ones are clipped, with a warning).

    Args:
        y: (samples,) or (1, samples) waveform; sr: sample rate in Hz.
    Returns:
        the WAV file's bytes (sample value v is stored as round(32767 v)).
    Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer.
    """
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float64)
    if y.ndim > 2 or (y.ndim == 2 and 1 not in y.shape) or not np.isfinite(y).all():
        raise DataError(f"a player needs one finite mono waveform (samples,), got shape {y.shape}")
    y = y.reshape(-1)
    peak = float(np.abs(y).max()) if y.size else 0.0
    if peak > 1:
        log.warning(
            "waveform peaks at %.2f > 1: clipped for playback (scale it first with "
            "vaetone.spectral.inversion.peak_normalise)",
            peak,
        )
    pcm = (np.clip(y, -1, 1) * 32767).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


class AudioPlayer(HTML):
    """An HTML audio player (or grid of them) with labels; text/plain shows the labels."""

    def __init__(self, data: str, labels: list[str]):
        super().__init__(data)
        self.labels = labels

    def __repr__(self) -> str:
        return "audio: " + "; ".join(self.labels)


def _player_html(y, sr: int, label: str) -> str:
    """One labelled ``<audio>`` element with the WAV inlined as a data URI (survives into static HTML).

    The element is built as ``IPython.display.Audio`` builds its own, so it is shown wherever that is.
    """
    b64 = base64.b64encode(wav_bytes(y, sr)).decode("ascii")
    return (
        f'<figure class="vaetone-audio" style="display:inline-block;margin:0.2em 0.5em 0.2em 0;width:11.5em">'
        f'<figcaption style="font-size:0.85em;overflow-wrap:anywhere">{html.escape(label)}</figcaption>'
        f'<audio controls="controls" style="width:11em"><source src="data:audio/wav;base64,{b64}" type="audio/wav"/>'
        "Your browser does not support the audio element.</audio></figure>"
    )


def audio_player(y, sr: int = SAMPLE_RATE, label: str = "") -> AudioPlayer:
    """A labelled audio player that Jupyter shows and the static HTML book keeps; it plays ``y`` as given.

    Args:
        y: (samples,) waveform in [-1, 1]; sr: sample rate in Hz; label: caption shown above it.
    Returns:
        An ``IPython.display.HTML`` (display it, or make it a cell's last expression).
    Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer.
    """
    return AudioPlayer(_player_html(y, sr, label), [label])


def audio_grid(items, sr: int = SAMPLE_RATE, columns: int = 3, title: str | None = None) -> AudioPlayer:
    """Several labelled players side by side, wrapping to the page width (at most ``columns`` per row).

    Every waveform is played as given: levels set before (:func:`vaetone.spectral.inversion.peak_normalise`)
    are the levels heard.

    Args:
        items: list of (label, waveform); sr: sample rate; columns: players per row at most;
        title: optional caption above the players.
    Returns:
        An ``IPython.display.HTML`` block of players.
    Chapters: 01_data, 03_training, 04_sensitivity, 05_ablation, 07_explorer.
    """
    items = list(items)
    players = "".join(_player_html(y, sr, label) for label, y in items)
    caption = f'<p style="margin:0.2em 0">{html.escape(title)}</p>' if title else ""
    block = (
        f'<div class="vaetone-audio-grid">{caption}<div style="display:flex;flex-wrap:wrap;'
        f'max-width:{12.2 * columns}em">{players}</div></div>'
    )
    return AudioPlayer(block, [str(label) for label, _ in items])
