"""Chapter 04's one-sentence answer and sweep-strip grid, from known findings."""

import numpy as np
import pandas as pd
import pytest

from vaetone.analysis.sensitivity import overview_answer, strip_grid
from vaetone.analysis.sensitivity.reading import names_clause
from vaetone.errors import DataError

STAGE = {"bottom_dim": "z4", "rho_min": 0.123, "rho_max": 0.876}


def across(n_seeds=3, n_ref=4, n_held=1, held="z5 (rms_db)"):
    return {
        "top_dims_across": "z5 (rms_db), z2 (mixed), z0 (mixed)",
        "n_seeds_used": n_seeds,
        "n_labels_reference": n_ref,
        "n_labels_held": n_held,
        "labels_held": held,
    }


def test_answer_names_the_top_and_bottom_dimensions_and_the_names_that_hold():
    assert overview_answer(STAGE, across()) == (
        "By the mean of four rankings (sweeps of one dimension, gradients, Sobol indices), the decoded note "
        "depends most on z5 (rms_db), z2 (mixed), z0 (mixed) and least on z4, the rankings agree to a Spearman "
        "ρ of 0.12 to 0.88, and 1 of the reference seed's 4 descriptor names holds across the 3 training seeds: "
        "z5 (rms_db)."
    )


def test_answer_states_the_negative_results():
    none_held = overview_answer(STAGE, across(n_seeds=2, n_ref=6, n_held=0, held="none"))
    assert none_held.endswith(
        "none of the reference seed's 6 descriptor names holds across the 2 training seeds, so no dimension has a name."
    )
    assert names_clause(across(n_seeds=1)) == (
        "with a single training seed no name can be checked, so no dimension has a name"
    )
    assert names_clause(across(n_ref=0, n_held=0, held="none")).startswith("the reference seed gives no dimension")
    assert "2 of the reference seed's 4 descriptor names hold across" in names_clause(across(n_held=2))


def test_strip_grid_is_dimension_major_with_the_held_names():
    strips = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(6, 2, 2)  # 2 dims x 3 values
    audio = np.arange(6 * 4, dtype=float).reshape(6, 4)
    found = {"top_dimensions": [7, 1], "strip_values": [-3.0, 0.0, 3.0]}
    g = strip_grid(strips, audio, found, pd.Series(["mixed"] * 7 + ["rms_db"]))
    assert g["rows"] == ["z7 (rms_db)", "z1 (mixed)"]
    assert g["columns"] == ["z = \u22123.0", "z = 0.0", "z = +3.0"]
    assert g["dbs"].shape == (2, 3, 2, 2) and (g["dbs"][1, 0] == strips[3]).all()
    assert (g["audio"][0, 2] == audio[2]).all()
    with pytest.raises(DataError, match="2 dimensions × 3 values"):
        strip_grid(strips[:5], audio[:5], found, pd.Series(["mixed"] * 8))
