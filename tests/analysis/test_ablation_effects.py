"""Known-answer tests of what an ablation changes (the net change of descriptors, the names) and of the ground truth."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import ablation as abl
from vaetone.analysis import disentanglement, metrics
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


def test_ablation_descriptor_effects_are_the_net_signed_change(z):
    moved = abl.ablation_descriptor_effects(decode, z, config.make(), describe=describe)
    assert list(moved.index) == [0, 1, 2] and list(moved.columns) == ["level", "tilt"]
    # the level is 2·z_0 + const: linear in z_0 alone, so its standardised net change is exactly +1
    assert moved.loc[0, "level"] == pytest.approx(1.0, rel=1e-5)
    assert moved.loc[1, "level"] == 0 and moved.loc[2, "level"] == 0
    assert moved["tilt"].isna().all()  # constant descriptor: no scale
    rho = _rho(decode, z)
    assert rho.loc[0, "level"] == pytest.approx(1.0) and rho.loc[[1, 2], "level"].isna().all()
    assert abl.descriptor_labels(moved, rho) == {0: "level"}  # z_1 and z_2 move nothing: no name


def test_net_change_cancels_where_the_descriptor_does_not_follow_the_dimension():
    """A level of 2·|z_0| rises on both sides of 0: large mean |change|, no net change, so no name."""
    half = torch.as_tensor(np.random.default_rng(1).standard_normal((N // 2, D)), dtype=torch.float32)
    z = torch.cat([half, -half])  # symmetric: the changes of the two halves cancel exactly

    def vee(zz):
        return decode(torch.cat([zz[:, :1].abs(), zz[:, 1:]], dim=1))

    moved = abl.ablation_descriptor_effects(vee, z, config.make(), describe=describe)
    assert abs(moved.loc[0, "level"]) < 1e-6
    assert 0 not in abl.descriptor_labels(moved, _rho(vee, z))
    flipped = abl.ablation_descriptor_effects(lambda zz: decode(-zz), z, config.make(), describe=describe)
    assert flipped.loc[0, "level"] == pytest.approx(-1.0, rel=1e-5)  # the sign says which way


def _rho(dec, z):
    """descriptor_rho of the zero-baseline ablation of ``dec`` at ``z``."""
    effects = abl.ablation_effects(dec, z, dec(z)[:, 0], {"descriptors": abl.descriptor_metric(None, describe)})
    return abl.descriptor_rho(effects, -z)


@pytest.mark.parametrize(
    "row, rho, label",
    [
        ({"a": 1.0, "b": 0.5, "c": 0.1}, 0.9, "a"),
        ({"a": -1.0, "b": 0.6}, -0.9, "a"),  # |change| and |ρ| decide, whatever the sign
        ({"a": 1.0, "b": -0.8}, 0.9, abl.MIXED),  # no descriptor dominates
        ({"a": 1.0, "b": 0.5}, 0.3, abl.MIXED),  # dominant but not monotonic
        ({"a": 0.2, "b": np.nan}, 1.0, "a"),
        ({"a": 0.01, "b": 0.0}, 1.0, None),  # nothing moves: no name
        ({"a": np.nan, "b": np.nan}, np.nan, None),
    ],
)
def test_descriptor_labels_dominance_and_monotonicity(row, rho, label):
    moved = pd.DataFrame([row], index=pd.Index([7], name="dim"))
    labels = abl.descriptor_labels(moved, pd.DataFrame(rho, index=moved.index, columns=moved.columns))
    assert labels.get(7) == label


def test_descriptor_effects_from_the_error_pass_equal_their_own_pass(z):
    """One ablation pass with the descriptor metric beside the error gives the same table."""
    ref = decode(z)[:, 0] + 0.1
    effects = abl.ablation_effects(
        decode, z, ref, {"mse": metrics.logmel_mse, "descriptors": abl.descriptor_metric(config.make(), describe)}
    )
    assert set(effects["metric"]) == {"mse", "descriptors:level", "descriptors:tilt"}
    together = abl.descriptor_effects(effects, -z)
    alone = abl.ablation_descriptor_effects(decode, z, config.make(), describe=describe)
    pd.testing.assert_frame_equal(together, alone)
    with pytest.raises(VaetoneError, match="descriptor_metric"):
        abl.descriptor_effects(effects[effects["metric"] == "mse"], -z)
    with pytest.raises(VaetoneError, match="shifts"):
        abl.descriptor_effects(effects, -z[:3])


def test_descriptor_metric_needs_a_configuration_or_a_describe_function(z):
    est = decode(z)[:, 0]
    pd.testing.assert_frame_equal(abl.descriptor_metric(None, describe)(est, est), describe(est).astype(float))
    with pytest.raises(VaetoneError, match="configuration"):
        abl.descriptor_metric(None)


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
