"""Known-answer tests of ablation effects (descriptors, batched audio) and of the ground-truth check."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import ablation as abl
from vaetone.analysis import disentanglement, metrics
from vaetone.analysis import sensitivity as sens
from vaetone.errors import VaetoneError

N, D, M, T = 12, 3, 8, 10


def decode(z):
    """Output depends on z_0 only: the whole spectrogram's level is 2·z_0, plus a fixed ramp over bands."""
    z = torch.as_tensor(z, dtype=torch.float32)
    ramp = torch.linspace(0, 1, M)[None, :, None].expand(len(z), M, T)
    return (2 * z[:, 0, None, None] + ramp)[:, None]


def describe(x):
    x = torch.as_tensor(x)
    return pd.DataFrame(
        {
            "level": x.mean(dim=(1, 2)).numpy(),
            "tilt": (x[:, M // 2 :].mean(dim=(1, 2)) - x[:, : M // 2].mean(dim=(1, 2))).numpy(),
        }
    )


@pytest.fixture
def z():
    return torch.as_tensor(np.random.default_rng(0).standard_normal((N, D)), dtype=torch.float32)


def test_ablation_descriptor_effects_single_out_dimension_zero(z):
    moved = abl.ablation_descriptor_effects(decode, z, config.make(), describe=describe)
    assert list(moved.index) == [0, 1, 2] and list(moved.columns) == ["level", "tilt"]
    # ablating z_0 (to 0) moves the level by 2|z_0|; in units of the level's std over notes (2·std(z_0))
    expected = np.abs(z[:, 0].numpy()).mean() / z[:, 0].numpy().std()
    assert moved.loc[0, "level"] == pytest.approx(expected, rel=1e-5)
    assert moved.loc[1, "level"] == 0 and moved.loc[2, "level"] == 0
    assert moved["tilt"].isna().all()  # constant descriptor: no scale
    assert sens.top_descriptor(moved) == {0: "level", 1: "level", 2: "level"}


def test_descriptor_effects_from_the_error_pass_equal_their_own_pass(z):
    """One ablation pass with the descriptor metric beside the error gives the same table."""
    ref = decode(z)[:, 0] + 0.1
    effects = abl.ablation_effects(
        decode, z, ref, {"mse": metrics.logmel_mse, "descriptors": abl.descriptor_metric(config.make(), describe)}
    )
    assert set(effects["metric"]) == {"mse", "descriptors:level", "descriptors:tilt"}
    together = abl.descriptor_effects(effects)
    alone = abl.ablation_descriptor_effects(decode, z, config.make(), describe=describe)
    pd.testing.assert_frame_equal(together, alone)
    with pytest.raises(VaetoneError, match="descriptor_metric"):
        abl.descriptor_effects(effects[effects["metric"] == "mse"])


def test_descriptor_metric_needs_a_configuration_or_a_describe_function(z):
    est = decode(z)[:, 0]
    pd.testing.assert_frame_equal(abl.descriptor_metric(None, describe)(est, est), describe(est).astype(float))
    with pytest.raises(VaetoneError, match="configuration"):
        abl.descriptor_metric(None)


def _to_audio(db):
    return torch.as_tensor(db).reshape(len(db), -1).numpy() * 0.5


def _audio_mse(ref, est):
    return ((np.asarray(ref) - np.asarray(est)) ** 2).mean(1)


def _score(ref, est):
    return -np.abs(np.asarray(ref) - np.asarray(est)).mean(1)


def _on_audio(metric, ref_audio):
    """A log-mel metric for abl.ablation_effects that compares the estimate's audio with ref_audio."""
    return lambda ref_db, est_db: metric(ref_audio, _to_audio(est_db))


@pytest.mark.parametrize("baseline", ["zero", "permute"])
def test_audio_ablation_effects_equal_ablation_effects(z, baseline):
    ref_db = decode(z)[:, 0] + 0.1
    ref_audio = _to_audio(ref_db)
    audio_metrics = {"mse": _audio_mse, "score": _score}
    batched = abl.audio_ablation_effects(
        decode, z, ref_audio, _to_audio, audio_metrics, baseline=baseline, seed=3, higher_is_better=("score",)
    )
    wrapped = {k: _on_audio(m, ref_audio) for k, m in audio_metrics.items()}  # one resynthesis per dimension
    loop = abl.ablation_effects(decode, z, ref_db, wrapped, baseline=baseline, seed=3, higher_is_better=("score",))
    key = ["metric", "dim", "note"]
    a, b = batched.sort_values(key).reset_index(drop=True), loop.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key], b[key])
    for col in ("base", "ablated", "increase", "degradation"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-6, atol=1e-9)
    by_dim = batched[batched.metric == "mse"].groupby("dim")["increase"].mean()
    assert by_dim[0] > 0 and by_dim[1] == 0 and by_dim[2] == 0
    assert (batched[batched.metric == "score"]["degradation"] == -batched[batched.metric == "score"]["increase"]).all()


def test_ground_truth_check_ranks_and_agreement():
    mig_table = pd.DataFrame(
        {"factor": ["factor_loudness", "factor_pitch", "factor_noise"], "top_dim": [2, 0, 2], "gap": [0.5, 0.2, 0.1]}
    )
    importance = pd.DataFrame(
        {"factor_loudness": [0.1, 0.0, 0.9], "factor_pitch": [0.7, 0.3, 0.0], "factor_noise": [0.2, 0.5, 0.3]}
    )
    oat = pd.DataFrame({"rms_db": [0.1, 0.2, 0.9], "flatness": [0.5, 0.1, 0.2]})
    check = disentanglement.ground_truth_check(
        mig_table, importance, sensitivity_order=[2, 1, 0], ablation_order=[0, 2, 1], oat_matrix=oat
    )
    assert check.loc["factor_loudness", "carrier"] == 2
    assert check.loc["factor_loudness", "dci_dim"] == 2
    assert check.loc["factor_loudness", "sensitivity_rank"] == 1
    assert check.loc["factor_loudness", "ablation_rank"] == 2
    assert bool(check.loc["factor_loudness", "oat_agrees"]) is True
    assert check.loc["factor_noise", "dci_dim"] == 1
    assert bool(check.loc["factor_noise", "oat_agrees"]) is False  # flatness is moved most by dim 0
    assert pd.isna(check.loc["factor_pitch", "oat_dim"])  # no descriptor for pitch
    found = disentanglement.carriers_singled_out(check)
    assert found == {
        "carriers": [0, 2],
        "k": 2,
        "in_top_sensitivity": 1,
        "in_top_ablation": 2,
        "oat_checked": 2,
        "oat_agree": 1,
    }
