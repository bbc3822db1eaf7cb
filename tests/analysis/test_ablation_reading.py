"""Chapter 05's one-sentence answer, its heatmap tables and its listening grid, from known inputs."""

import numpy as np
import pandas as pd
import pytest

from vaetone.analysis.ablation import listening_grid, overview_answer, top_dims_percent
from vaetone.errors import DataError

STAGE = {
    "top_abl": "z3: +4.03 dB² (95 % interval 1.13 to 5.96); z1: +1.00 dB² (95 % interval 0.5 to 1.5)",
    "base_mse": 634.3753,
    "n_free": 5,
    "n_dims": 8,
    "free_pct": 1.0,
    "k90": 2,
    "recovered_test": "95.1 % (95 % interval 86.4 to 97.0)",
}
ACROSS = {
    "seed_labels": {"3": "centroid_hz", "1": "mixed"},
    "n_seeds_used": 3,
    "n_labels_reference": 2,
    "n_labels_held": 1,
    "labels_held": "z3 (centroid_hz)",
}


def test_answer_quotes_the_costliest_dimension_with_its_held_name_and_the_scores():
    assert overview_answer(STAGE, ACROSS) == (
        "Ablated alone, the costliest dimension (chosen on the validation notes), z3 (centroid_hz), adds +4.03 dB² "
        "(95 % interval 1.13 to 5.96) to the test notes' log-mel MSE of 634.4 dB², 5 of the 8 dimensions each cost "
        "the validation notes less than 1 % of it, keeping the 2 dimensions chosen there recovers 95.1 % (95 % "
        "interval 86.4 to 97.0) of the test notes' error reduction, and 1 of the reference seed's 2 names of what "
        "an ablation changes holds across the 3 training seeds: z3 (centroid_hz)."
    )


def test_answer_states_that_no_name_holds_and_that_every_dimension_is_free():
    lost = {**ACROSS, "n_labels_held": 0, "labels_held": "none", "seed_labels": {"3": "mixed"}}
    text = overview_answer({**STAGE, "n_free": 8}, lost)
    assert "z3 (mixed)" in text and "all 8 dimensions each cost" in text
    assert text.endswith("holds across the 3 training seeds, so no dimension has a name.")
    with pytest.raises(DataError, match="top_abl"):
        overview_answer({**STAGE, "top_abl": "none"}, ACROSS)


def test_top_dims_percent_keeps_the_costliest_in_order_in_per_cent():
    table = pd.DataFrame([[0.1, 0.02, 0.5], [0.0, 0.01, 1.0]], index=["a", "b"], columns=[0, 1, 2])
    shown = top_dims_percent(table, (2, 0, 1), k=2)
    assert shown.columns.tolist() == ["z2", "z0"]
    assert np.allclose(shown.to_numpy(), [[50.0, 10.0], [100.0, 0.0]])


def test_listening_grid_has_a_row_per_note_and_a_column_per_variant():
    variants = ["original", "reconstruction", "z3 ablated", "top 1 kept"]
    table = pd.DataFrame({"note": ["n1"] * 4 + ["n2"] * 4, "variant": variants * 2})
    db, audio = np.arange(8 * 2 * 3).reshape(8, 2, 3), np.arange(8 * 5).reshape(8, 5)
    g = listening_grid(table, db, audio, pd.Series(["mixed", "none", "mixed", "rms_db"]))
    assert g["rows"] == ["n1", "n2"]
    assert g["columns"] == ["original", "reconstruction", "z3 (rms_db) ablated", "top 1 kept"]
    assert (g["dbs"][1, 2] == db[6]).all() and (g["audio"][0, 3] == audio[3]).all()
    with pytest.raises(DataError, match="same variants"):
        listening_grid(table.iloc[:7], db[:7], audio[:7], pd.Series(["mixed"] * 4))
