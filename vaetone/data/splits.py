"""Instruments: seeded subsets stratified by family, and the train/valid/test split by instrument.

Chapter: 01_data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from vaetone.config import Config
from vaetone.errors import DataError

SPLITS = ("train", "valid", "test")


# ---------------------------------------------------------------------------------------------
# Instruments: subsets and splits
# ---------------------------------------------------------------------------------------------

log = logging.getLogger(__name__)


def _stratified_order(families: Mapping[str, str], rng: np.random.Generator, reserve_first: bool) -> list[str]:
    """Instruments in an order that spreads over families in proportion to their sizes.

    Each family is shuffled; instrument r >= 1 of a family of n gets the key (r + u) / n with
    u uniform in [0, 1), and the order is by key. The first instrument of each family comes
    before all others (so a subset covers every family it can) or, with ``reserve_first``,
    after all others (so a family keeps one instrument in train as long as possible).
    """
    names = sorted(families)
    by_family: dict[str, list[str]] = {}
    for name in names:
        by_family.setdefault(families[name], []).append(name)
    keys = {}
    for fam in sorted(by_family):
        members = [by_family[fam][i] for i in rng.permutation(len(by_family[fam]))]
        for r, name in enumerate(members):
            u = rng.random()
            keys[name] = (r + u) / len(members) if r else (1.0 + u if reserve_first else u - 1.0)
    return sorted(names, key=lambda n: keys[n])


def subset_instruments(families: Mapping[str, str], n: int, seed: int) -> list[str]:
    """A seeded subset of ``n`` instruments, stratified by family (``max_instruments``).

    One instrument of each family first (as long as n allows), the rest in proportion to the
    families' sizes.

    Args:
        families: {instrument_str: family}.
        n: how many to keep (all when n >= len(families)).
        seed: the random seed (``split_seed``).
    Returns:
        Sorted instrument_str values. Chapter: 01_data.
    """
    order = _stratified_order(families, np.random.default_rng([seed, 1]), reserve_first=False)
    return sorted(order[:n])


def split_instruments(
    families: Mapping[str, str] | pd.Series, valid_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Assign every instrument to "train", "valid" or "test", seeded and stratified by family.

    No instrument is in two splits. With at least 3 instruments every split is non-empty and
    held-out instruments come first from large families, so each family keeps an instrument in
    train while it can.
    Args:
        families: {instrument_str: family} (a dict or a Series).
        valid_fraction, test_fraction: shares of instruments held out.
        seed: ``split_seed``.
    Returns:
        {instrument_str: split}. Chapter: 01_data.
    """
    families = dict(families)
    total = len(families)
    n_test = max(1, round(total * test_fraction)) if total >= 3 else 0
    n_valid = max(1, round(total * valid_fraction)) if total >= 2 else 0
    while n_test + n_valid > max(total - 1, 0):
        n_test, n_valid = (n_test - 1, n_valid) if n_test >= n_valid else (n_test, n_valid - 1)
    if total < 3:
        log.warning("only %d instrument(s): the test%s split is empty", total, "" if total == 2 else " and valid")
    order = _stratified_order(families, np.random.default_rng([seed, 2]), reserve_first=True)
    splits = dict.fromkeys(order, "train")
    quota = {"test": n_test, "valid": n_valid}
    turn = ["test", "valid"]
    for name in order[: n_test + n_valid]:
        pick = turn[0] if quota[turn[0]] > 0 else turn[1]
        splits[name] = pick
        quota[pick] -= 1
        turn.reverse()
    return {name: splits[name] for name in sorted(splits)}


def split_minimums(cfg: Config) -> dict[str, tuple[int, int]]:
    """The fewest (notes, instruments) each split needs for the later stages of ``cfg``.

    train: PCA with ``latent_dim`` components needs at least ``latent_dim`` notes (and two);
    valid: early stopping and the best weights need one note; test: every analysis needs two
    notes to have a spread. Each split needs an instrument. Chapters: 01_data, 03_training.
    """
    return {"train": (max(2, cfg.latent_dim), 1), "valid": (1, 1), "test": (2, 1)}


def check_split_sizes(meta: pd.DataFrame, cfg: Config, where: str) -> None:
    """Raise DataError when a split has fewer notes or instruments than later stages need.

    Called before any training (``vaetone.model.runs.trained_model``), so a dataset too small
    for the analyses fails in seconds, not after two trainings.

    Args:
        meta: the notes with their ``split`` column.
        cfg: the configuration (its ``latent_dim`` sets the training minimum).
        where: the folder the notes come from, for the message.
    Chapter: 01_data.
    """
    for split, (min_notes, min_instruments) in split_minimums(cfg).items():
        rows = meta[meta["split"] == split]
        notes, instruments = len(rows), rows["instrument_str"].nunique()
        if notes < min_notes or instruments < min_instruments:
            raise DataError(
                f"the {split} split of {where} has {notes} notes of {instruments} instruments; the later stages "
                f"need at least {min_notes} notes of {min_instruments} instrument(s) there. Select more notes "
                "(wider pitch range, more velocities or instruments) or change valid_fraction/test_fraction."
            )
