"""Tests of vaetone.book.players: inline WAV players that play the samples as given, at the level a caption states."""

import base64
import io
import re
import wave

import numpy as np
import pytest
import torch

from vaetone.book import players
from vaetone.errors import DataError
from vaetone.spectral import inversion

SR = 16000
T = np.arange(64000) / SR


def sine(f, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * T)).astype(np.float32)


def wav_of(player_html):
    src = re.findall(r'src="data:audio/wav;base64,([^"]+)"', player_html)
    out = []
    for b64 in src:
        with wave.open(io.BytesIO(base64.b64decode(b64))) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
            out.append(np.frombuffer(w.readframes(w.getnframes()), "<i2"))
    return out


def test_audio_player_is_a_labelled_inline_wav_of_the_samples_as_given():
    y = sine(440, amp=0.25)
    p = players.audio_player(y, SR, label="organ <C4> & co")
    assert "<audio controls" in p.data and "organ &lt;C4&gt; &amp; co" in p.data
    assert "organ <C4> & co" in repr(p)
    (pcm,) = wav_of(p.data)
    assert len(pcm) == 64000 and np.abs(pcm - np.round(y * 32767)).max() <= 1
    (same,) = wav_of(players.audio_player(torch.tensor(y), SR, "x").data)
    assert np.array_equal(same, pcm)  # a tensor plays as its array: nothing is rescaled


def test_audio_player_clips_with_a_warning_and_refuses_bad_input(caplog):
    (pcm,) = wav_of(players.audio_player(sine(440, amp=2.0), SR, "too loud").data)
    assert np.abs(pcm).max() == 32767 and "clipped" in caplog.text
    with pytest.raises(DataError):
        players.audio_player(np.zeros((2, 100)), SR, "stereo")


def test_audio_grid_shows_every_player_wrapped_to_the_column_width():
    items = [(f"note {i}", sine(220 * (i + 1), 0.1)) for i in range(5)]
    g = players.audio_grid(items, SR, columns=2, title="five notes")
    assert g.data.count("<audio") == 5 and "flex-wrap:wrap;max-width:24.4em" in g.data
    assert "five notes" in g.data and all(f"note {i}" in g.data for i in range(5))
    assert len(wav_of(g.data)) == 5


def test_a_grid_of_peak_normalised_sounds_plays_its_loudest_peak_at_the_stated_level():
    """Quiet Griffin-Lim-like output (peak -30 dBFS) brought to -1 dBFS by one gain; every player keeps its level."""
    sounds = np.stack([sine(220, 10 ** (-30 / 20)), sine(330, 10 ** (-36 / 20))])
    scaled, gain = inversion.peak_normalise(sounds, -1.0)
    grid = players.audio_grid([("a", scaled[0]), ("b", scaled[1])], SR)
    levels = [20 * np.log10(np.abs(pcm).max() / 32767) for pcm in wav_of(grid.data)]
    assert levels == pytest.approx([-1.0, -7.0], abs=0.01)  # gain > 1, and the 6 dB step between them kept
    assert gain == pytest.approx(10 ** (29 / 20), rel=1e-4)
