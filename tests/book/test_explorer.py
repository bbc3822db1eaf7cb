"""Tests of vaetone.book.explorer and its widget: the app driven as a user would drive it, the tour stage."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

import vaetone
from vaetone import config, store
from vaetone.book import explorer
from vaetone.errors import DataError, VaetoneError

N_MELS, N_FRAMES = 16, 32


class OneDimRun:
    """A decoder whose output depends on z_0 alone: a loud band whose position moves with z_0."""

    device = "cpu"

    def decode(self, z):
        z = torch.as_tensor(z, dtype=torch.float32)
        centre = (N_MELS - 1) / 2 + 2.0 * z[:, :1]  # (n, 1)
        bands = torch.arange(N_MELS, dtype=torch.float32)[None]  # (1, M)
        level = torch.exp(-0.5 * ((bands - centre) / 1.5) ** 2)  # (n, M)
        return level[:, None, :, None].expand(-1, 1, N_MELS, N_FRAMES) * 4.0 - 2.0


class Feats:
    def denormalise(self, x):
        return x * 15.0 - 40.0


@pytest.fixture
def app():
    cfg = config.make(n_mels=N_MELS, latent_dim=3, griffin_lim_iters=4)
    meta = pd.DataFrame(
        {"instrument_family_str": ["brass", "reed"], "pitch": [60, 64]}, index=["brass_a-060-100", "reed_b-064-100"]
    )
    mu = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.5]], dtype=np.float32)
    return explorer.Explorer(explorer.Renderer(OneDimRun(), Feats(), cfg), mu, meta, seed=0)


def test_moving_an_inactive_dimension_changes_nothing_and_the_active_one_changes_the_sound(app):
    db0, wav0 = app.db.copy(), app.sound.value
    app.sliders[1].value = 2.5  # z_1 does not enter the decoder
    np.testing.assert_allclose(app.db, db0, atol=1e-6)
    app.sliders[0].value = 2.0  # z_0 moves the loud band up by 4 mel bands
    assert np.abs(app.db - db0).max() > 20  # dB
    assert np.argmax(app.db[:, 0]) == np.argmax(db0[:, 0]) + 4
    assert bytes(app.sound.value) != bytes(wav0) and bytes(app.image.value).startswith(b"\x89PNG")


def test_start_note_reset_prior_and_interpolation(app):
    app.start.value = "reed_b-064-100"
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-6)
    app.sliders[0].value = -2.0
    app.buttons["reset"].click()
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-6)
    app.start.value, app.other.value = "brass_a-060-100", "reed_b-064-100"
    app.mix.value = 1.0
    np.testing.assert_allclose(app.z, [1.0, -1.0, 0.5], atol=1e-4)  # the far end of the path
    app.buttons["prior sample"].click()
    assert np.all(np.abs(app.z) <= app.decoder.cfg.sweep_sigma)
    assert set(app.timings) == {"decode_s", "invert_s", "total_s"}


def test_live_timing_is_the_median_of_five_updates_and_names_the_devices(app, monkeypatch):
    times = iter([0.5, 0.1, 0.3, 0.2, 0.4])
    monkeypatch.setattr(app, "update", lambda: {"total_s": next(times)})
    timing = explorer.live_timing(app)
    assert timing["update_ms"] == pytest.approx(300.0)
    assert timing["live_device"] == "model on the cpu, inversion on the cpu"


def test_labels_name_what_a_dimension_moves_and_values_read_as_positions():
    assert explorer.slider_label(9, "rms_db") == "z9 (moves RMS level)"
    assert explorer.slider_label(1, "centroid_hz") == "z1 (moves centroid)"
    assert explorer.slider_label(5, "decay_db_per_s") == "z5 (moves decay rate)"
    assert explorer.slider_label(2, "mixed") == "z2 (mixed)" and explorer.slider_label(4, "none") == "z4 (none)"
    assert explorer.slider_label(3) == explorer.slider_label(3, "") == "z3"
    assert explorer.value_label(9, -3.0) == "z9 at \u22123.0 \u03c3"  # a position, not "rms_db = -3.0"
    assert explorer.value_label(9, 1.5) == "z9 at +1.5 \u03c3"
    assert explorer.value_label(0, 0.0) == explorer.value_label(0, -0.01) == "z0 at 0.0 \u03c3"


def test_widget_sliders_follow_the_given_order_and_labels():
    cfg = config.make(n_mels=N_MELS, latent_dim=3, griffin_lim_iters=4)
    meta = pd.DataFrame({"instrument_family_str": ["brass"], "pitch": [60]}, index=["brass_a-060-100"])
    labels = {2: "z2 (moves RMS level)", 0: "z0", 1: "z1 (mixed)"}
    app = explorer.Explorer(explorer.Renderer(OneDimRun(), Feats(), cfg), np.zeros((1, 3)), meta, [2, 0, 1], labels)
    shown = app.widget().children[1].children[0].children
    assert [s.description for s in shown] == ["z2 (moves RMS level)", "z0", "z1 (mixed)"]


# ----------------------------------------------------------------------------- the tour, known answers


@pytest.fixture
def ka_tour(one_dim_decoder):
    """The tour of the known-answer decoder (z_0 alone moves a bump) from 5 notes at the origin."""
    cfg = config.make(n_mels=16, latent_dim=4, griffin_lim_iters=2, sweep_sigma=3.0)
    notes = [f"note_{i}" for i in range(5)]
    decode_db = lambda z: one_dim_decoder(torch.as_tensor(z))[:, 0].numpy()
    names = {0: "centroid_hz", 2: "rms_db", 1: "mixed", 3: "none"}
    return explorer.compute_tour(decode_db, np.zeros((5, 4), np.float32), notes, [2, 0, 1, 3], names, cfg)


def test_the_tour_of_the_known_answer_decoder_moves_only_under_z0(ka_tour):
    k0 = ka_tour.findings["tour_dimensions"].index(0)
    db = ka_tour.arrays["tour_db"]
    # bump centre 8 + 1.6 z_0: z_0 = -3, -1.5, 0, 1.5, 3 puts the peak in bands 3, 6, 8, 10, 13
    assert np.argmax(db[k0, :, :, 0], axis=1).tolist() == [3, 6, 8, 10, 13]
    for k in (0, 2):  # z2 and z1 do not enter the decoder: five identical spectrograms
        np.testing.assert_array_equal(db[k], np.broadcast_to(db[k0, 2], db[k].shape))
    tour = ka_tour.table("tour").set_index("dimension")
    assert tour.loc[2, "change_db"] == tour.loc[1, "change_db"] == 0.0 and tour.loc[0, "change_db"] > 1.0
    assert tour.loc[0, "label"] == "z0 (moves centroid)"


def test_the_tour_findings_quote_the_order_labels_anchor_and_values(ka_tour):
    f = ka_tour.findings
    assert ka_tour.dimension_order == (2, 0, 1, 3)
    assert f["tour_dimensions"] == [2, 0, 1] and f["tour_dimension_names"] == "z2, z0 and z1"
    assert f["tour_anchor"] == "note_2" and f["tour_values"] == [-3.0, -1.5, 0.0, 1.5, 3.0]
    assert f["tour_check"] == "4 sliders; tour from note_2 over dimensions [2, 0, 1]"
    labels = {"2": "z2 (moves RMS level)", "0": "z0 (moves centroid)", "1": "z1 (mixed)", "3": "z3 (none)"}
    assert f["slider_labels"] == labels and f["first_slider_label"] == "z2 (moves RMS level)"
    assert (f["n_named_sliders"], f["n_seeds"]) == (2, 3)
    assert ka_tour.table("sliders")["name"].tolist() == ["rms_db", "centroid_hz", "mixed", "none"]
    assert (f["live_iters"], f["gl_iters"], f["n_sliders"], f["n_test_notes"]) == (8, 2, 4, 5)
    assert ka_tour.table("sliders")["dimension"].tolist() == [2, 0, 1, 3]
    assert ka_tour.arrays["tour_db"].shape == (3, 5, 16, 12)
    assert ka_tour.arrays["tour_audio"].shape == (3, 5, 512 * 11)
    # one gain for the whole tour: its loudest sample at -1 dBFS, relative levels kept
    assert np.abs(ka_tour.arrays["tour_audio"]).max() == pytest.approx(10 ** (-1 / 20), rel=1e-5)
    assert f["tour_peak_dbfs"] == -1.0 and isinstance(f["tour_gain_db"], float)


def test_the_tour_rejects_a_bad_order_and_an_empty_test_split(one_dim_decoder):
    cfg = config.make(n_mels=16, latent_dim=4, griffin_lim_iters=2)
    decode_db = lambda z: one_dim_decoder(torch.as_tensor(z))[:, 0].numpy()
    with pytest.raises(VaetoneError, match=r"every latent dimension 0\.\.3"):
        explorer.compute_tour(decode_db, np.zeros((3, 4)), ["a", "b", "c"], [0, 1, 1, 2], {}, cfg)
    with pytest.raises(DataError, match="test split"):
        explorer.compute_tour(decode_db, np.zeros((0, 4)), [], [0, 1, 2, 3], {}, cfg)


# ----------------------------------------------------------------------------- order and names from the stages


def fake_ablation(monkeypatch, order, names):
    """Make the ablation result return a fixed order, and the names that hold across seeds ``names``
    ({str(dim): name}; the other dims "mixed"); returns the list of configs asked for."""
    from vaetone.analysis import ablation, seeds_labels

    asked = []

    def result(cfg):
        asked.append(cfg)
        return SimpleNamespace(dimension_order=tuple(order), findings={"dimension_descriptor": {"0": "unchecked"}})

    def held_labels(cfg, analysis="sensitivity"):
        assert analysis == "sensitivity"  # the sliders are sweeps: they carry the sweeps' names
        return pd.Series([names.get(str(d), "mixed") for d in range(cfg.latent_dim)], name="label")

    monkeypatch.setattr(ablation, "result", result, raising=False)
    monkeypatch.setattr(seeds_labels, "held_labels", held_labels)
    return asked


def test_the_slider_order_comes_from_the_ablation_result_and_the_names_from_the_seeds(monkeypatch, isolated_store):
    cfg = config.make(dataset="synthetic", latent_dim=3)
    asked = fake_ablation(monkeypatch, (2, 0, 1), {"2": "rms_db", "1": "none"})
    assert explorer.ablation_order(cfg) == [2, 0, 1] and asked == [cfg]
    assert explorer.slider_names(cfg) == {0: "mixed", 1: "none", 2: "rms_db"}  # not the reference seed's "unchecked"
    fake_ablation(monkeypatch, (2, 0), {})
    with pytest.raises(VaetoneError, match="ablation result of run synthetic-z3"):
        explorer.ablation_order(cfg)


def test_the_package_reads_no_chapter_output():
    root = Path(vaetone.__file__).parent
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "_sensitivity.json" not in text and "_ablation.json" not in text, path


# ----------------------------------------------------------------------------- the stage result on a tiny run


def tour_folders(cfg, cache: Path) -> set[str]:
    """The complete tour results of ``cfg``'s run (checking first that runs go to the test's ``cache``)."""
    assert store.runs_dir().is_relative_to(cache), store.runs_dir()
    return {p.name for p in (store.run_dir(cfg) / "results").glob("explorer_tour-*") if (p / "manifest.json").exists()}


def test_the_tour_result_is_cached_and_keyed_by_its_parameters_and_order(tiny_cfg, stage_store, monkeypatch):
    fake_ablation(monkeypatch, (3, 1, 0, 2), {"3": "rms_db", "1": "centroid_hz", "0": "mixed"})
    assert store.runs_dir().is_relative_to(stage_store)
    first = explorer.result(tiny_cfg)
    f = first.findings
    assert first.dimension_order == (3, 1, 0, 2) and f["tour_dimensions"] == [3, 1, 0]
    assert f["slider_labels"] == {
        "3": "z3 (moves RMS level)", "1": "z1 (moves centroid)", "0": "z0 (mixed)", "2": "z2 (mixed)"
    }  # fmt: skip
    n_test, frames = f["n_test_notes"], first.arrays["tour_db"].shape[-1]
    assert n_test > 0 and first.arrays["tour_db"].shape == (3, 5, tiny_cfg.n_mels, frames)
    assert first.arrays["tour_audio"].shape == (3, 5, tiny_cfg.hop_length * (frames - 1))
    assert np.isfinite(first.arrays["tour_audio"]).all() and f["gl_iters"] == tiny_cfg.griffin_lim_iters

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached tour was recomputed")

    compute_tour = explorer.compute_tour
    monkeypatch.setattr(explorer, "compute_tour", no_recompute)
    again = explorer.result(tiny_cfg)
    assert again.findings == first.findings and again.dimension_order == first.dimension_order
    np.testing.assert_array_equal(again.arrays["tour_audio"], first.arrays["tour_audio"])
    monkeypatch.setattr(explorer, "compute_tour", compute_tour)

    before = tour_folders(tiny_cfg, stage_store)
    wider = explorer.result(dataclasses.replace(tiny_cfg, sweep_sigma=2.0))
    assert wider.findings["tour_values"] == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert len(tour_folders(tiny_cfg, stage_store) - before) == 1
    fake_ablation(monkeypatch, (0, 1, 2, 3), {})
    reordered = explorer.result(tiny_cfg)
    assert reordered.findings["tour_dimensions"] == [0, 1, 2] and len(tour_folders(tiny_cfg, stage_store) - before) == 2
    fake_ablation(monkeypatch, (0, 1, 2, 3), {"0": "rms_db"})  # another name holds: a new tour result
    renamed = explorer.result(tiny_cfg)
    assert renamed.findings["first_slider_label"] == "z0 (moves RMS level)"
    assert len(tour_folders(tiny_cfg, stage_store) - before) == 3


def test_the_live_explorer_takes_the_tour_order_and_labels(tiny_cfg, stage_store, monkeypatch):
    fake_ablation(monkeypatch, (1, 3, 2, 0), {"1": "attack_s"})
    tour = explorer.result(tiny_cfg)
    app = explorer.live(tiny_cfg, tour)
    assert app.order == [1, 3, 2, 0] and app.sliders[1].description == "z1 (moves attack time)"
    assert len(app.mu) == tour.findings["n_test_notes"] and app.db.shape[0] == tiny_cfg.n_mels


# ----------------------------------------------------------------------------- the answer and the static explorer


def test_the_answer_sentence_is_built_from_the_tour_numbers_including_negative_results():
    text = explorer.tour_answer(["z3 (moves RMS level)", "z1 (mixed)"], [6.04, 0.0], 3.0, "brass-060", 0, 8, 2)
    assert text == (
        "Moving one of the 2 most important dimensions from \u22123.0 \u03c3 to +3.0 \u03c3 from the test note "
        "brass-060 changes its decoded spectrogram on average by 6.0 dB for z3 (moves RMS level) and 0.0 dB for "
        "z1 (mixed), and none of the 8 sliders carries a descriptor's name that holds across the 2 seeds."
    )
    assert explorer.tour_answer(["z0"], [1.25], 2.0, "n", 3, 4, 5).endswith(
        "by 1.2 dB for z0, and 3 of the 4 sliders carry a descriptor's name that holds across the 5 seeds."
    )


def test_the_tour_answer_quotes_its_own_changes(ka_tour):
    change = ka_tour.table("tour").set_index("dimension")["change_db"]
    assert ka_tour.findings["answer"] == (
        "Moving one of the 3 most important dimensions from \u22123.0 \u03c3 to +3.0 \u03c3 from the test note note_2 "
        f"changes its decoded spectrogram on average by 0.0 dB for z2 (moves RMS level), {change[0]:.1f} dB for "
        "z0 (moves centroid) and 0.0 dB for z1 (mixed), and 2 of the 4 sliders carry a descriptor's name that "
        "holds across the 3 seeds."
    )


def test_the_static_explorer_holds_the_plain_grid_and_a_script_over_its_cells(ka_tour):
    import html as html_lib
    import json
    import re

    from vaetone.book import sound

    cfg = config.make(n_mels=16, latent_dim=4, griffin_lim_iters=2, sweep_sigma=3.0)
    page = explorer.static_explorer(ka_tour, cfg)
    text = page.data
    assert text.startswith('<div class="vaetone-explorer"') and text.count("<script>") == 1
    assert text.count('class="vaetone-panel"') == 15 and text.count("<audio") == 15
    assert sound.grid_problems(text, "07") == [] and 'data-columns="5"' in text
    heads = re.findall(r'<tr class="vaetone-head-row">(.*?)</tr>', text)[0]
    assert re.findall(r">([^<]+)</th>", heads) == [
        "\u22123.0 \u03c3",
        "\u22121.5 \u03c3",
        "0.0 \u03c3",
        "+1.5 \u03c3",
        "+3.0 \u03c3",
    ]
    assert re.findall(r'<th scope="row"[^>]*>([^<]+)</th>', text) == [
        "z2 (moves RMS level)",
        "z0 (moves centroid)",
        "z1 (mixed)",
    ]
    rows = json.loads(html_lib.unescape(re.search(r'data-rows="([^"]*)"', text).group(1)))
    assert [r["start"] for r in rows] == [2, 2, 2] and rows[1]["values"][0] == "z0 at \u22123.0 \u03c3"
    uid = re.search(r'id="(vaetone-explorer-[0-9a-f]{10})"', text).group(1)
    script = text[text.index("<script>") :]
    assert f'getElementById("{uid}")' in script and "http" not in script and "fetch" not in script
    assert repr(page).startswith("static explorer: sliders z2 (moves RMS level) | z0 (moves centroid) | z1 (mixed)")
