"""Tests of the levels of vaetone.spectral.inversion: peak_dbfs and peak_normalise (one gain for a set of sounds)."""

import math

import numpy as np
import pytest
import torch

from vaetone.errors import ConfigError, DataError
from vaetone.spectral import inversion


def test_peak_dbfs_of_full_half_and_silent_signals():
    assert inversion.peak_dbfs(np.array([0.0, -1.0, 0.5])) == 0.0
    assert inversion.peak_dbfs(torch.tensor([[0.25, -0.5]])) == pytest.approx(-6.0206, abs=1e-4)
    assert inversion.peak_dbfs(np.zeros(10)) == -math.inf


@pytest.mark.parametrize("target", [-1.0, -12.0, 0.0])
def test_peak_normalise_puts_the_loudest_sample_at_the_target_with_one_gain(target):
    audio = np.stack([0.01 * np.sin(np.linspace(0, 50, 1000)), 0.002 * np.ones(1000)])  # quiet: the gain exceeds 1
    scaled, gain = inversion.peak_normalise(audio, target)
    assert scaled.dtype == np.float32 and scaled.shape == audio.shape
    assert inversion.peak_dbfs(scaled) == pytest.approx(target, abs=1e-5)
    assert gain == pytest.approx(10 ** (target / 20) / np.abs(audio).max())
    assert np.allclose(scaled, audio * gain, atol=1e-7)  # one gain: the second sound stays 5x quieter
    loud, loud_gain = inversion.peak_normalise(torch.tensor(audio * 300))  # too loud: the gain is below 1
    assert loud_gain < 1 and inversion.peak_dbfs(loud) == pytest.approx(inversion.PEAK_DBFS, abs=1e-5)


def test_peak_normalise_leaves_silence_alone_and_refuses_bad_input(caplog):
    silent, gain = inversion.peak_normalise(np.zeros((2, 8)))
    assert gain == 1.0 and not silent.any() and "silent" in caplog.text
    with pytest.raises(ConfigError, match="at most 0 dBFS"):
        inversion.peak_normalise(np.ones(4), 3.0)
    with pytest.raises(ConfigError, match="peak_dbfs=nan"):
        inversion.peak_normalise(np.ones(4), float("nan"))
    with pytest.raises(DataError, match="NaN or inf"):
        inversion.peak_normalise(np.array([0.1, np.inf]))
