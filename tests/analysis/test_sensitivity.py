"""Tests of vaetone.analysis.sensitivity: known answers on hand-made decoders that depend on z_0 alone."""

import numpy as np
import pandas as pd
import pytest
import torch

from vaetone import config
from vaetone.analysis import decoding
from vaetone.analysis import sensitivity as sens
from vaetone.errors import ConfigError, VaetoneError
from vaetone.spectral import melspec

N_MELS, N_FRAMES, D = 16, 12, 4
CFG = config.make(n_mels=N_MELS)


def bump_decoder(z: torch.Tensor) -> torch.Tensor:
    """A Gaussian bump in mel frequency (10 dB high) whose centre moves with z_0; constant in time."""
    centre = N_MELS / 2 + z[:, :1] * N_MELS / 10  # (n, 1)
    m = torch.arange(N_MELS, dtype=z.dtype, device=z.device)[None, :]
    spec = 10 * torch.exp(-((m - centre) ** 2) / (2 * 2.0**2))  # (n, n_mels)
    return spec[:, None, :, None].expand(-1, 1, -1, N_FRAMES)


def linear_decoder():
    """x = W z with every column of W zero but the first, and W's first column known."""
    gen = torch.Generator().manual_seed(1)
    w = torch.zeros(N_MELS * N_FRAMES, D)
    w[:, 0] = torch.randn(N_MELS * N_FRAMES, generator=gen)

    def decode(z):
        return (z @ w.T).reshape(len(z), 1, N_MELS, N_FRAMES)

    return decode, w[:, 0].reshape(N_MELS, N_FRAMES)


def fake_describe(x: torch.Tensor) -> pd.DataFrame:
    """Centroid (mel bin index) and mean level of each output."""
    w = x.clamp_min(0) + 1e-9
    m = torch.arange(x.shape[1], dtype=x.dtype)[None, :, None]
    return pd.DataFrame({"centroid": ((w * m).sum((1, 2)) / w.sum((1, 2))).numpy(), "level": x.mean((1, 2)).numpy()})


@pytest.fixture(scope="module")
def anchors():
    mu = torch.randn(40, D, generator=torch.Generator().manual_seed(0)) * 0.8
    return sens.anchor_points(mu, n_anchors=5, seed=0)


def test_frequency_bands_partition_the_mel_bins_and_are_labelled_in_hz():
    bands = sens.frequency_bands(64, config.Config(), n_bands=6)
    bins = np.concatenate([np.arange(64)[b.mels] for b in bands])
    assert np.array_equal(bins, np.arange(64))
    assert bands[0].lo == 20.0 and bands[-1].hi == 8000.0
    assert all(a.hi == pytest.approx(b.lo) for a, b in zip(bands, bands[1:]))
    assert bands[0].name.endswith(" Hz") and bands[0].lo < bands[0].hi
    centres = melspec.mel_frequencies(config.Config())
    for b in bands:  # every filter centre lies inside its band
        assert np.all((centres[b.mels] > b.lo) & (centres[b.mels] < b.hi))
    for a, b in zip(bands, bands[1:]):  # inner edges: halfway in Hz between the neighbouring bins' centres
        last, first = np.arange(64)[a.mels][-1], np.arange(64)[b.mels][0]
        assert first == last + 1 and a.hi == pytest.approx((centres[last] + centres[first]) / 2)
    assert [b.mels.stop - b.mels.start for b in bands] == [11, 11, 11, 11, 10, 10]  # nearly equal mel width
    with pytest.raises(ConfigError):
        sens.frequency_bands(4, config.Config(), n_bands=6)
    with pytest.raises(ConfigError, match="n_mels"):
        sens.frequency_bands(32, config.Config(), n_bands=6)  # the output must match cfg.n_mels


def test_time_regions_follow_the_note_layout():
    regions = {r.name: np.arange(126)[r.frames] for r in sens.time_regions(126, config.Config())}
    # frame t is centred at t * 512 / 16000 s = 32 ms * t
    assert regions["attack"].tolist() == [0, 1, 2, 3]
    assert regions["sustain"][[0, -1]].tolist() == [4, 93]
    assert regions["release"][[0, -1]].tolist() == [94, 125]


def test_anchor_points_put_the_prior_mean_first(anchors):
    z, rows = anchors
    assert z.shape == (6, D) and rows[0] == -1 and torch.all(z[0] == 0)
    assert len(set(rows[1:])) == 5


def test_sweep_dimension_sets_only_the_swept_value(anchors):
    z, _ = anchors
    grid = sens.sweep_grid(3.0, 7)
    lat = sens.sweep_latents(z, 2, grid)
    assert torch.equal(lat[:, :, 2], grid.expand(len(z), -1))
    assert torch.equal(lat[:, :, [0, 1, 3]], z[:, None, [0, 1, 3]].expand(-1, 7, -1))
    out = sens.sweep_dimension(bump_decoder, z, 0, grid, batch_size=5)
    assert out.shape == (len(z), 7, N_MELS, N_FRAMES)
    assert torch.allclose(out[:, 3], bump_decoder(sens.sweep_latents(z, 0, grid)[:, 3])[:, 0])


def test_one_at_a_time_singles_out_dimension_0(anchors):
    z, rows = anchors
    res = sens.one_at_a_time(
        bump_decoder, z, sens.sweep_grid(3.0, 9), CFG, describe=fake_describe, rows=rows, n_bands=4, batch_size=7
    )
    overall = res.logmel.query("scope == 'all'").set_index("dim")["change"]
    assert overall[0] > 0.1 and np.all(overall[[1, 2, 3]] == 0)
    assert set(res.logmel["scope"]) == {"all", "band", "region"}
    assert (res.logmel.query("dim == 0 and scope == 'band'")["change"] > 0).all()
    matrix = sens.sensitivity_matrix(res)
    assert list(matrix.columns) == ["centroid", "level"]
    assert matrix.loc[0, "centroid"] > 0.1 and np.all(matrix.loc[[1, 2, 3]] == 0)
    # the bump centre moves by N_MELS/10 bins per unit z_0, so the centroid slope is about that
    slope = res.descriptors.query("dim == 0 and descriptor == 'centroid'")["slope"].item()
    assert slope == pytest.approx(N_MELS / 10, rel=0.25)
    assert len(res.curves) == D * len(z) * 9 and set(res.curves["row"]) == set(rows)


def test_jacobian_norms_single_out_dimension_0_and_match_the_linear_map(anchors):
    z, _ = anchors
    decode, col = linear_decoder()
    jac = sens.jacobian_norms(decode, z, CFG, n_bands=4, batch_size=4)
    overall = jac.query("scope == 'all'").set_index("dim")["jacobian_rms"]
    assert overall[0] == pytest.approx(col.pow(2).mean().sqrt().item(), rel=1e-5)
    assert np.all(overall[[1, 2, 3]] == 0)
    band = jac.query("scope == 'band' and dim == 0").iloc[0]
    assert band["jacobian_rms"] == pytest.approx(col[:4].pow(2).mean().sqrt().item(), rel=1e-5)
    assert jac.query("dim == 0")["jacobian_rms_std"].max() < 1e-5  # a linear map: same at every point
    bump = sens.jacobian_norms(bump_decoder, z, CFG).query("scope == 'all'").set_index("dim")
    assert bump.loc[0, "jacobian_rms"] > 0.1 and np.all(bump.loc[[1, 2, 3], "jacobian_rms"] == 0)


def test_sobol_total_index_of_dimension_0_is_one_and_others_zero():
    res = sens.sobol_indices(bump_decoder, D, CFG, describe=fake_describe, n=64, sigma=3.0, seed=0)
    assert res.attrs["n_evaluations"] == 64 * (D + 2)
    st = res.pivot(index="dim", columns="descriptor", values="ST")
    assert np.all(st.loc[0] > 0.95) and np.all(st.loc[[1, 2, 3]].abs() < 1e-9)
    s1 = res.pivot(index="dim", columns="descriptor", values="S1")
    assert np.all(s1.loc[0] > 0.8)
    assert set(res.columns) == {"descriptor", "dim", "S1", "S1_conf", "ST", "ST_conf"}
    assert (res["ST_conf"] >= 0).all()


def test_sobol_confidence_intervals_are_reproducible_with_seed_0():
    """SALib leaves its bootstrap unseeded for seed 0; the package's seed 0 must still reproduce."""
    runs = [sens.sobol_indices(bump_decoder, D, CFG, describe=fake_describe, n=32, seed=0) for _ in range(2)]
    assert runs[0].query("dim == 0")["ST_conf"].min() > 0  # the bootstrap does vary the estimate
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_sobol_sample_is_the_truncated_prior_and_needs_a_power_of_two():
    x = sens.sobol_sample(3, 256, sigma=2.0, seed=0)
    assert x.shape == (256 * 5, 3) and np.abs(x).max() <= 2.0
    assert abs(x.mean()) < 0.05 and 0.7 < x.std() < 0.95  # N(0,1) truncated at ±2 has std 0.88
    with pytest.raises(ConfigError):
        sens.sobol_sample(3, 100)


def test_rank_dimensions_puts_dimension_0_first(anchors):
    z, _ = anchors
    grid = sens.sweep_grid(3.0, 5)
    sweeps = sens.one_at_a_time(bump_decoder, z, grid, CFG, describe=fake_describe)
    jac = sens.jacobian_norms(bump_decoder, z, CFG)
    sob = sens.sobol_indices(bump_decoder, D, CFG, describe=fake_describe, n=32)
    ranks = sens.rank_dimensions(sweeps, jac, sob)
    assert ranks.index[0] == 0 and ranks.loc[0, "mean_rank"] == 1
    assert {"oat_logmel", "jacobian", "sobol_ST", "label", "sobol_label"} <= set(ranks.columns)
    assert (
        ranks.loc[0, "sobol_label"] in ("centroid", "level") and (ranks.loc[[1, 2, 3], "sobol_label"] == "none").all()
    )
    assert (ranks.loc[[1, 2, 3], "label"] == "none").all()  # they move nothing
    with pytest.raises(VaetoneError):
        sens.rank_dimensions()


def test_top_descriptor_skips_all_nan_rows():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [2.0, np.nan, 0.5]}, index=[4, 5, 6])
    assert sens.top_descriptor(frame) == {4: "b", 6: "a"}


def test_normalised_moves_divide_the_net_slopes_by_the_spread_over_notes(anchors):
    z, rows = anchors
    sweeps = sens.one_at_a_time(bump_decoder, z, sens.sweep_grid(3.0, 5), CFG, describe=fake_describe, rows=rows)
    moves = sens.normalised_moves(sweeps, bump_decoder, z, CFG, describe=fake_describe)
    spread = fake_describe(decoding.decode_batched(bump_decoder, z)).astype(float).std()
    expected = sens.sensitivity_matrix(sweeps, "net_slope").abs() / spread
    pd.testing.assert_frame_equal(moves, expected)
    signed = sens.net_change(sweeps, spread)
    assert signed.loc[0, "centroid"] > 0.1  # the bump moves up with z_0: the centroid rises
    pd.testing.assert_frame_equal(signed.abs(), moves)
    assert moves.loc[0, "centroid"] > 0.1 and np.all(moves.loc[[1, 2, 3]] == 0)
    constant = sens.normalised_moves(sweeps, bump_decoder, torch.zeros(3, D), CFG, describe=fake_describe)
    assert constant.isna().all().all()  # no spread over identical notes: NaN, not inf


def test_analysis_runs_the_chapter_sequence_and_singles_out_dimension_0(anchors):
    mu = torch.randn(20, D, generator=torch.Generator().manual_seed(3))
    cfg = config.make(n_mels=N_MELS, n_anchors=3, sweep_steps=5, sobol_n=32)
    res = sens.analysis(bump_decoder, mu, cfg, seed=1, describe=fake_describe)
    assert res.anchors.shape == (4, D) and res.rows[0] == -1 and len(res.grid) == 5
    assert torch.equal(res.anchors, sens.anchor_points(mu, 3, seed=1)[0])
    assert res.ranking.index[0] == 0 and res.ranking.loc[0, "mean_rank"] == 1
    assert {"oat_logmel", "oat_descriptors", "jacobian", "sobol_ST"} <= set(res.ranking.columns)
    assert res.sobol is not None and res.sobol.attrs["N"] == 32
    quick = sens.analysis(bump_decoder, mu, cfg, seed=1, sobol=False, describe=fake_describe)
    assert quick.sobol is None and "sobol_ST" not in quick.ranking and quick.ranking.index[0] == 0


def test_db_decoder():
    decode_db = decoding.db_decoder(bump_decoder, lambda y: y * 2 - 1, device="cpu")
    z = torch.zeros(3, D)
    assert torch.allclose(decode_db(z), bump_decoder(z) * 2 - 1) and decode_db.device.type == "cpu"


def test_decode_throughput_and_errors():
    info = decoding.decode_throughput(bump_decoder, D, n=64, batch_size=16, device="cpu")
    assert info["decodes_per_s"] > 0 and info["n"] == 64
    with pytest.raises(VaetoneError):
        sens.one_at_a_time(
            bump_decoder, torch.zeros(2, D), sens.sweep_grid(), CFG, describe=lambda x: pd.DataFrame({"a": [1.0]})
        )
    with pytest.raises(ConfigError):
        sens.sweep_grid(3.0, 1)


# --------------------------------------------------------------------------- net change and labels


def halves_decoder(z: torch.Tensor) -> torch.Tensor:
    """Low mel half at z0 + z1² + z3 + 0.2 z4 + sin(2 z4) dB, high half at z2 + z3 dB; constant in time."""
    low = z[:, 0] + z[:, 1] ** 2 + z[:, 3] + 0.2 * z[:, 4] + torch.sin(2 * z[:, 4])
    high = z[:, 2] + z[:, 3]
    halves = torch.stack([low, high], 1).repeat_interleave(N_MELS // 2, dim=1)  # (n, n_mels)
    return halves[:, None, :, None].expand(-1, 1, -1, N_FRAMES)


def halves_describe(x: torch.Tensor) -> pd.DataFrame:
    """The mean level (dB) of the low and of the high half of the mel bins."""
    half = x.shape[1] // 2
    return pd.DataFrame({"low": x[:, :half].mean((1, 2)).numpy(), "high": x[:, half:].mean((1, 2)).numpy()})


@pytest.fixture(scope="module")
def halves_sweeps():
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(2)) * 0.7
    return sens.one_at_a_time(halves_decoder, z, sens.sweep_grid(3.0, 9), CFG, describe=halves_describe)


def test_the_net_change_of_a_linear_sweep_is_its_slope_and_a_symmetric_bump_has_none(halves_sweeps):
    net = sens.sensitivity_matrix(halves_sweeps, "net_slope")
    rho = sens.sensitivity_matrix(halves_sweeps, "rho")
    assert net.loc[0, "low"] == pytest.approx(1.0) and rho.loc[0, "low"] == pytest.approx(1.0)
    assert net.loc[2, "high"] == pytest.approx(1.0) and net.loc[2, "low"] == pytest.approx(0.0, abs=1e-6)
    assert rho.loc[2, "low"] == 0.0  # constant along the sweep: no monotonic change
    # z1 moves "low" as z1²: a large mean |slope|, but no net change and ρ = 0
    mean_abs = sens.sensitivity_matrix(halves_sweeps, "slope")
    assert mean_abs.loc[1, "low"] > 2.0 and net.loc[1, "low"] == pytest.approx(0.0, abs=1e-5)
    assert rho.loc[1, "low"] == pytest.approx(0.0, abs=1e-9)
    trends = sens.anchor_trends(halves_sweeps.curves)
    assert len(trends) == 5 * 6 * 2 and set(trends.columns) == {
        "dim",
        "anchor",
        "row",
        "descriptor",
        "net_slope",
        "rho",
    }
    per_anchor = trends.query("dim == 0 and descriptor == 'low'")["net_slope"]
    assert np.allclose(per_anchor, 1.0) and len(per_anchor) == 6


def test_labels_rest_on_net_monotonic_change_never_on_mean_absolute_slope(halves_sweeps):
    spread = pd.Series({"low": 1.0, "high": 1.0})
    labels = sens.rank_dimensions(halves_sweeps, spread=spread)["label"].sort_index()
    # z0 moves low alone; z1 moves low back and forth (no net change); z2 moves high alone;
    # z3 moves both equally; z4 moves low with a net trend but not monotonically (sin ripple)
    assert labels.tolist() == ["low", "none", "high", "mixed", "mixed"]
    table = sens.dimension_labels(sens.net_change(halves_sweeps, spread), sens.sensitivity_matrix(halves_sweeps, "rho"))
    assert table.loc[4, "label_descriptor"] == "low" and table.loc[4, "label_runner_up"] == 0.0
    assert abs(table.loc[4, "label_rho"]) < sens.labels.LABEL_MIN_RHO <= abs(table.loc[0, "label_rho"])
    assert table.loc[3, "label_runner_up"] == pytest.approx(1.0) and table.loc[0, "label_change"] == pytest.approx(1.0)
    # halving the spread of "high" doubles its net change in spread units: z3 becomes "high"
    assert sens.rank_dimensions(halves_sweeps, spread=spread * [1.0, 0.5])["label"][3] == "high"


def test_the_dominance_rule_follows_its_constants():
    change = pd.DataFrame({"a": [1.0, 1.0, 0.04, -1.0], "b": [0.6, 0.7, 0.0, 0.2]})
    rho = pd.DataFrame({"a": [0.9, 0.9, 1.0, -0.95], "b": [0.9, 0.9, 0.0, 0.9]})
    labels = sens.dimension_labels(change, rho)
    assert labels["label"].tolist() == ["a", "mixed", "none", "a"]  # 1/0.6 >= 1.5 > 1/0.7; 0.04 < 0.05; sign-free
    assert labels.loc[3, "label_change"] == -1.0
    assert sens.dimension_labels(change, rho, ratio=1.2)["label"].tolist() == ["a", "a", "none", "a"]


def interaction_decoder(z: torch.Tensor) -> torch.Tensor:
    """Both halves at z0·z1 dB: no first-order effect, only the interaction of z0 and z1."""
    level = (z[:, 0] * z[:, 1])[:, None, None, None]
    return level.expand(-1, 1, N_MELS, N_FRAMES)


def test_sobol_names_only_significant_first_order_indices_and_sums_show_interactions():
    additive = sens.sobol_indices(halves_decoder, 5, CFG, describe=halves_describe, n=256, seed=0)
    assert sens.sobol_labels(additive).tolist() == ["low", "low", "high", "high", "low"]
    sums = sens.sobol_sums(additive)
    assert list(sums.index) == ["low", "high"] and (sums["n_dims"] == 5).all()
    assert sums.loc["high", "sum_S1"] == pytest.approx(1.0, abs=0.1) and sums.loc["high", "interaction_share"] < 0.1
    product = sens.sobol_indices(interaction_decoder, D, CFG, describe=halves_describe, n=256, seed=0)
    assert sens.sobol_labels(product).tolist() == ["interactions", "interactions", "none", "none"]
    sums = sens.sobol_sums(product)
    assert (sums["sum_S1"].abs() < 0.3).all() and (sums["sum_ST"] > 0.8).all()  # ΣS1 = 0 up to estimator noise
    assert (sums["interaction_share"] > 0.7).all() and (sums["significant_S1"] == 0).all()


def test_sobol_sums_count_negative_first_order_indices_and_those_within_noise():
    sobol = pd.DataFrame(
        {
            "descriptor": ["a"] * 3 + ["flat"] * 3,
            "dim": [0, 1, 2] * 2,
            "S1": [0.7, -0.05, -0.3, np.nan, np.nan, np.nan],
            "S1_conf": [0.1, 0.1, 0.1, np.nan, np.nan, np.nan],
            "ST": [0.9, 0.2, 0.05, np.nan, np.nan, np.nan],
            "ST_conf": [0.1, 0.1, 0.1, np.nan, np.nan, np.nan],
        }
    )
    sums = sens.sobol_sums(sobol)
    assert list(sums.index) == ["a"]  # a descriptor without variance has no sums
    row = sums.loc["a"]
    assert row["sum_S1"] == pytest.approx(0.35) and row["sum_ST"] == pytest.approx(1.15)
    assert row["interaction_share"] == pytest.approx(0.65)
    assert (row["negative_S1"], row["negative_S1_noise"], row["significant_S1"]) == (2, 1, 1)
    assert sens.sobol_labels(sobol).tolist() == ["a", "interactions", "none"]
