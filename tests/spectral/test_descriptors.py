"""Tests of vaetone.spectral.descriptors: known answers on waveforms and on mel spectra, and their agreement."""

import numpy as np
import pytest
import torch

from vaetone import config
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


def decaying(rate_db_per_s, f=330.0, amp=0.5):
    """A sine whose amplitude falls by ``rate_db_per_s`` dB every second from the first sample."""
    return (10 ** (-rate_db_per_s * T / 20) * sine(f, amp)).astype(np.float32)


def both_domains(y) -> tuple:
    """(waveform descriptors, mel-domain descriptors of its log-mel) of the notes ``y``."""
    return descriptors.descriptors(y), descriptors.spectral_descriptors(melspec.log_mel(y, CFG), CFG)


@pytest.mark.parametrize("rate", [20.0, 40.0, 60.0])
def test_an_exponential_decay_of_known_rate_gives_that_rate_in_both_domains(rate):
    d, s = both_domains(np.stack([decaying(rate), decaying(rate, f=110.0, amp=0.05)]))
    assert d.decay_db_per_s.to_numpy() == pytest.approx([rate, rate], rel=0.01)
    assert s.decay_db_per_s.to_numpy() == pytest.approx([rate, rate], rel=0.02)
    assert d.attack_s.max() < 0.02


def test_a_held_note_does_not_decay():
    d, s = both_domains(np.stack([sine(330), harmonic(220)]))
    assert np.abs(d.decay_db_per_s).max() < 0.2 and np.abs(s.decay_db_per_s).max() < 0.2


def test_a_sweep_of_synthetic_decays_gives_a_strictly_monotonic_descriptor():
    rates = np.linspace(1.0, 100.0, 34)
    d, s = both_domains(np.stack([decaying(r) for r in rates]))
    for values in (d.decay_db_per_s.to_numpy(), s.decay_db_per_s.to_numpy()):
        assert np.all(np.diff(values) > 0)
        assert values == pytest.approx(rates, rel=0.03)


def test_the_decay_rate_moves_smoothly_where_the_old_threshold_time_jumped():
    """0.5 s at full level, then a plateau at L dB: L crosses -20 dB, where the time to fall 20 dB jumped."""
    levels = np.linspace(-16.0, -24.0, 33)
    y = np.stack([np.where(T < 0.5, 1.0, 10 ** (level / 20)) * sine(330) for level in levels]).astype(np.float32)
    d, s = both_domains(y)
    for values in (d.decay_db_per_s.to_numpy(), s.decay_db_per_s.to_numpy()):
        steps = np.diff(values)
        assert np.all(steps > 0)  # a deeper plateau is a faster net decay
        assert steps.max() < 1.5 * steps.min()  # evenly: no step stands out as a jump
        assert values[-1] - values[0] < 5.0  # and no step is large (dB/s over the whole 8 dB of plateau)


def test_a_small_change_of_the_envelope_gives_a_small_change_of_the_decay():
    ripple = 1 + 0.01 * np.sin(2 * np.pi * 1.3 * T)  # a 0.09 dB wobble of the envelope
    d, s = both_domains(np.stack([decaying(30.0), (decaying(30.0) * ripple).astype(np.float32)]))
    assert abs(d.decay_db_per_s[1] - d.decay_db_per_s[0]) < 0.5
    assert abs(s.decay_db_per_s[1] - s.decay_db_per_s[0]) < 0.5


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
    assert np.allclose(s.decay_db_per_s, d.decay_db_per_s, rtol=0.05, atol=0.5)
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
    fading = melspec.log_mel(decaying(20.0), CFG).requires_grad_(True)
    descriptors.spectral_descriptor_tensors(fading, CFG)["decay_db_per_s"].sum().backward()
    late = fading.grad.sum(dim=(0, 1))
    assert torch.isfinite(fading.grad).all() and late[60] < 0  # louder late frames: a slower decay
