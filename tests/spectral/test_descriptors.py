"""Tests of vaetone.audio: descriptors with known answers, mel-domain descriptors, players."""

import base64
import io
import re
import wave

import numpy as np
import pytest
import torch

from vaetone import config
from vaetone.book import players
from vaetone.errors import DataError
from vaetone.spectral import descriptors, melspec

SR = 16000
T = np.arange(64000) / SR
CFG = config.make(device="cpu")
RNG = np.random.default_rng(0)


def sine(f, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * T)).astype(np.float32)


def harmonic(f0, n=10, tilt=0.7, amp=0.4, stretch=0.0):
    """Partials h*f0*sqrt(1 + stretch*h^2) (stretch > 0: a stiff string), amplitudes tilt^h."""
    h = np.arange(1, n + 1)
    f = f0 * h * np.sqrt(1 + stretch * h**2)
    y = ((tilt ** (h - 1))[:, None] * np.sin(2 * np.pi * f[:, None] * T)).sum(0)
    return (amp * y / np.abs(y).max()).astype(np.float32)


def noise(amp=0.1):
    return (amp * RNG.standard_normal(64000)).astype(np.float32)


def ramp(seconds):
    return np.minimum(T / seconds, 1.0).astype(np.float32)


def test_a_440_hz_sine_has_centroid_and_f0_440_and_is_not_flat():
    d = descriptors.descriptors(sine(440)).iloc[0]
    assert d.centroid_hz == pytest.approx(440, abs=3)
    assert d.rolloff_hz == pytest.approx(440, abs=8)
    assert d.f0_hz == pytest.approx(440, rel=0.005)
    assert d.flatness < 1e-3 and d.bandwidth_hz < 15 and d.inharmonicity < 0.01
    assert d.rms_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)


def test_white_noise_is_flat_and_centred_at_a_quarter_of_the_sample_rate():
    d = descriptors.descriptors(noise()).iloc[0]
    assert 0.45 < d.flatness < 0.65  # e^-gamma = 0.56 for exponentially distributed power
    assert d.centroid_hz == pytest.approx(SR / 4, rel=0.03)
    assert d.rolloff_hz == pytest.approx(0.85 * SR / 2, rel=0.03)


def test_a_louder_copy_has_rms_db_higher_by_20_log10_of_the_gain():
    y = harmonic(220)
    d = descriptors.descriptors(np.stack([y, 2.5 * y]))
    assert d.rms_db[1] - d.rms_db[0] == pytest.approx(20 * np.log10(2.5), abs=1e-6)
    for col in ("centroid_hz", "f0_hz", "attack_s", "inharmonicity"):
        assert d[col][1] == pytest.approx(d[col][0], rel=1e-4, abs=1e-6), col


@pytest.mark.parametrize("f0", [82.41, 261.63, 1046.5])
def test_f0_of_harmonic_tones_is_their_pitch(f0):
    assert descriptors.descriptors(harmonic(f0))["f0_hz"][0] == pytest.approx(f0, rel=0.01)


@pytest.mark.parametrize("seconds", [0.2, 0.5, 1.0])
def test_attack_of_a_linear_ramp_is_80_percent_of_its_length(seconds):
    d = descriptors.descriptors(ramp(seconds) * sine(330)).iloc[0]
    assert d.attack_s == pytest.approx(0.8 * seconds, abs=0.01)


def test_decay_of_an_exponential_and_the_censored_decay_of_a_held_note():
    tau = 0.4
    d = descriptors.descriptors(np.stack([np.exp(-T / tau) * sine(330), sine(330)]))
    assert d.decay_s[0] == pytest.approx(tau * np.log(10), abs=0.03)  # -20 dB after tau*ln(10)
    assert d.attack_s[0] < 0.02
    assert d.decay_s[1] == pytest.approx(4.0, abs=0.05)  # never falls: time to the end


def test_a_stiff_string_is_more_inharmonic_than_a_harmonic_tone():
    d = descriptors.descriptors(np.stack([harmonic(196), harmonic(196, stretch=1e-3), noise()]))
    assert d.inharmonicity[0] < 0.01
    assert d.inharmonicity[1] > 0.02
    assert d.inharmonicity[2] > 0.3


def test_descriptors_table_shape_index_and_batching():
    y = np.stack([sine(440), harmonic(110), noise(), ramp(0.3) * harmonic(330)])
    d = descriptors.descriptors(y, index=list("abcd"))
    assert list(d.columns) == list(descriptors.DESCRIPTORS) and list(d.index) == list("abcd")
    pd_small = descriptors.descriptors(y, batch_size=3, index=list("abcd"))
    assert np.allclose(d.to_numpy(), pd_small.to_numpy(), rtol=1e-4, atol=1e-6)
    assert len(descriptors.descriptors(sine(440))) == 1
    with pytest.raises(DataError):
        descriptors.descriptors(np.full(64000, np.nan, np.float32))


def test_spectral_descriptors_agree_with_waveform_descriptors():
    y = np.stack(
        [
            sine(440),
            harmonic(110),
            harmonic(330, tilt=0.9),
            ramp(0.5) * harmonic(220),
            np.exp(-T / 0.3) * harmonic(150),
            0.05 * harmonic(660),
        ]
    )
    d = descriptors.descriptors(y)
    s = descriptors.spectral_descriptors(melspec.log_mel(y, CFG), CFG)
    assert list(s.columns) == list(descriptors.SPECTRAL_DESCRIPTORS)
    assert np.allclose(s.centroid_hz, d.centroid_hz, rtol=0.01)
    assert np.allclose(s.bandwidth_hz[1:], d.bandwidth_hz[1:], rtol=0.05)  # a sine's width is window leakage
    assert np.allclose(s.rolloff_hz, d.rolloff_hz, rtol=0.05)
    assert np.allclose(s.rms_db, d.rms_db, atol=0.5)
    assert np.allclose(s.attack_s, d.attack_s, atol=0.05)
    assert np.allclose(s.decay_s, d.decay_s, atol=0.1)
    flat = descriptors.spectral_descriptors(melspec.log_mel(noise(), CFG), CFG).flatness[0]
    assert flat > 0.5 and s.flatness.max() < 0.05


def test_spectral_descriptors_accept_decoder_shapes_and_have_gradients():
    db = melspec.log_mel(np.stack([harmonic(220), harmonic(440)]), CFG)
    a = descriptors.spectral_descriptors(db, CFG)
    b = descriptors.spectral_descriptors(db.unsqueeze(1).numpy(), CFG)
    assert np.allclose(a.to_numpy(), b.to_numpy())
    x = db.clone().requires_grad_(True)
    out = descriptors.spectral_descriptor_tensors(x, CFG)
    out["centroid_hz"].sum().backward()
    g = x.grad.sum(dim=(0, 2))
    assert torch.isfinite(x.grad).all()
    assert g[-1] > 0 > g[0]  # more high-band energy raises the centroid, low-band lowers it


def wav_of(player_html):
    src = re.findall(r'src="data:audio/wav;base64,([^"]+)"', player_html)
    out = []
    for b64 in src:
        with wave.open(io.BytesIO(base64.b64decode(b64))) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
            out.append(np.frombuffer(w.readframes(w.getnframes()), "<i2"))
    return out


def test_audio_player_is_a_labelled_inline_wav_at_the_original_level():
    y = sine(440, amp=0.25)
    p = players.audio_player(y, SR, label="organ <C4> & co")
    assert "<audio controls" in p.data and "organ &lt;C4&gt; &amp; co" in p.data
    assert "organ <C4> & co" in repr(p)
    (pcm,) = wav_of(p.data)
    assert len(pcm) == 64000 and np.abs(pcm - np.round(y * 32767)).max() <= 1
    (loud,) = wav_of(players.audio_player(torch.tensor(y), SR, "x", normalise=True).data)
    assert np.abs(loud).max() == pytest.approx(32767 * 10 ** (-1 / 20), abs=2)


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
