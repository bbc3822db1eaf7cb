"""The ablation stage's scores on the test notes, each with a 95 % instrument-level bootstrap interval.

The choices come from the validation notes (:mod:`~vaetone.analysis.ablation.choice`); here the
test notes score them: the unablated error, the cost of the costliest dimensions, the cost of
the free dimensions together, the share of the error reduction that k90 dimensions recover, and
the VAE against PCA at k90, paired per note. Every interval resamples instruments
(:func:`vaetone.analysis.intervals.bootstrap`); with fewer than
:data:`~vaetone.analysis.intervals.MIN_GROUPS` test instruments it is "undefined: <reason>", never NaN.

Chapter: 05_ablation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from vaetone.analysis.ablation.choice import Choice
from vaetone.analysis.ablation.methods import (
    ablate,
    ablation_matrix,
    baseline_values,
    cumulative_table,
    kept_errors,
    reconstruction_errors,
)
from vaetone.analysis.ablation.steps import GROUP, N_QUOTED, ORDERS, AblationInputs
from vaetone.analysis.intervals import LEVEL, MIN_GROUPS, Interval, bootstrap, count_groups, significance_phrase

INTERVAL_COLUMN = f"{round(100 * LEVEL)} % interval"
"""The column of the table ``intervals`` that holds each interval as text (or why it is undefined)."""


def interval(values, groups, n_boot: int, seed: int, where: str, statistic: str | Callable = "mean") -> Interval | str:
    """An instrument-level bootstrap interval, or "undefined: <reason>" when too few instruments have a value.

    Args:
        values: (n,) per-note values, or (n, c) for a statistic of several columns; groups: (n,) instruments.
        n_boot, seed: of :func:`vaetone.analysis.intervals.bootstrap`; where: what is measured (for the reason).
        statistic: "mean" or a function of the (m[, c]) values of a resample.
    Returns:
        :class:`~vaetone.analysis.intervals.Interval` or the reason as text. Chapter: 05_ablation.
    """
    v = np.asarray(values, dtype=np.float64)
    _, n_groups = count_groups(v, groups)
    if n_groups < MIN_GROUPS:
        return (
            f"undefined: {where} rests on {n_groups} test instrument(s); an instrument-level interval "
            f"needs at least {MIN_GROUPS}"
        )
    return bootstrap(v, groups, statistic, n_boot, seed=seed, where=where)


def digits(*values: float) -> int:
    """Decimals that show about three significant figures of the largest |value| (1 to 3)."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    return 3 if top == 0 else max(1, min(3, 2 - math.floor(math.log10(top))))


def quoted(estimate: float, found: Interval | str, unit: str, sign: bool = False) -> str:
    """A number with its interval in words, e.g. "+12.3 dB² (95 % interval 8.0 to 15.1)".

    Args:
        estimate: the statistic on all notes; found: from :func:`interval`; unit: e.g. "dB²" or "%".
        sign: write the sign of the estimate (for a cost).
    Returns:
        The text, or "12.3 dB² (interval undefined: ...)". Chapter: 05_ablation.
    """
    if isinstance(found, str):
        d = digits(estimate)
        return f"{estimate:{'+' if sign else ''}.{d}f} {unit} (interval {found})"
    return found.text(digits(found.estimate, found.low, found.high), unit, sign)


def _row(quantity: str, unit: str, estimate: float, found: Interval | str, n_notes: int, n_groups: int) -> dict:
    """One row of the table ``intervals``."""
    if isinstance(found, Interval):
        d = digits(found.estimate, found.low, found.high)
        text = f"{found.low:.{d}f} to {found.high:.{d}f}"
    else:
        text = found
    return {
        "quantity": quantity,
        "unit": unit,
        "estimate": float(estimate),
        INTERVAL_COLUMN: text,
        "notes": n_notes,
        "instruments": n_groups,
    }


def cumulative_errors(inp: AblationInputs, choice: Choice) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Each test note's error with the first k dimensions kept (k = 0..D): the VAE by the chosen orders, PCA.

    Args:
        inp: the decoders, the test notes' latents, PCA scores and log-mels.
        choice: the VAE's orders (ablation effect and KL), chosen on the validation notes.
    Returns:
        ({order name of :data:`ORDERS`: notes × k errors (dB²)}, the tidy curves table ``cumulative``
        of :func:`~vaetone.analysis.ablation.methods.cumulative_table`). Chapter: 05_ablation.
    """
    n_dims = inp.mu.shape[1]
    orders = {ORDERS[0]: choice.order, ORDERS[1]: choice.kl, ORDERS[2]: range(n_dims)}
    errors = {name: kept_errors(inp.decode, inp.mu, inp.ref, order) for name, order in list(orders.items())[:2]}
    errors[ORDERS[2]] = kept_errors(inp.pca_decode, inp.pca_mu, inp.ref, orders[ORDERS[2]])
    return errors, cumulative_table(errors, orders)


def cumulative_findings(errors: Mapping[str, pd.DataFrame], k90: int) -> dict:
    """The mean test errors (dB²) the prose quotes from the cumulative curves.

    Args:
        errors: from :func:`cumulative_errors`; k90: chosen on the validation notes.
    Returns:
        {vae_k90, pca_k90, vae_full, pca_full, kl_gap (largest |KL order − ablation order| over k)}.
        Chapter: 05_ablation.
    """
    vae, kl, pca = (errors[o].mean() for o in ORDERS)
    return {
        "vae_k90": float(vae[k90]),
        "pca_k90": float(pca[k90]),
        "vae_full": float(vae.iloc[-1]),
        "pca_full": float(pca.iloc[-1]),
        "kl_gap": float((kl - vae).abs().max()),
    }


def _recovered(values: np.ndarray) -> float:
    """% of the error reduction from k = 0 to all dimensions recovered at k: columns (k = 0, k, all)."""
    mean = values.mean(axis=0)
    return float(100 * (mean[0] - mean[1]) / (mean[0] - mean[2])) if mean[0] != mean[2] else math.nan


class _Rows:
    """The rows of the table ``intervals``, collected as each quoted score is measured."""

    def __init__(self, inp: AblationInputs):
        self.groups, self.n_boot, self.seed = inp.meta[GROUP].to_numpy(), inp.n_boot, inp.seed
        self.n_groups, self.rows = int(pd.unique(self.groups).size), []

    def add(self, quantity: str, unit: str, values, statistic="mean", estimate: float | None = None):
        """Measure one quantity: (its interval or the reason it is undefined, its estimate on all notes)."""
        found = interval(values, self.groups, self.n_boot, self.seed, f"the {quantity}", statistic)
        est = found.estimate if isinstance(found, Interval) else estimate
        est = float(np.mean(values)) if est is None else est
        self.rows.append(_row(quantity, unit, est, found, len(self.groups), self.n_groups))
        return found, est

    def text(self, quantity: str, unit: str, values, sign: bool = False, **kw) -> str:
        """Measure one quantity and quote it (:func:`quoted`)."""
        found, est = self.add(quantity, unit, values, **kw)
        return quoted(est, found, unit, sign)

    def table(self) -> pd.DataFrame:
        """The table ``intervals``, indexed by quantity."""
        return pd.DataFrame(self.rows).set_index("quantity")


def comparison(found: Interval | str, estimate: float, unit: str = "dB²") -> str:
    """A paired difference in words: :func:`~vaetone.analysis.intervals.significance_phrase`, or with its reason.

    Args:
        found: from :func:`interval` of the per-note differences; estimate: their mean; unit: theirs.
    Returns:
        e.g. "4.1 dB² higher (95 % interval 2.0 to 6.3 dB²; the interval excludes 0)" or
        "4.1 dB² higher (interval undefined: ...)". Chapter: 05_ablation.
    """
    if isinstance(found, Interval):
        return significance_phrase(found, unit, digits(found.estimate, found.low, found.high), "higher")
    return f"{abs(estimate):.{digits(estimate)}f} {unit} {'higher' if estimate > 0 else 'lower'} (interval {found})"


def score(inp: AblationInputs, zero_effects: pd.DataFrame, choice: Choice, errors: Mapping[str, pd.DataFrame]):
    """The quoted test scores of the validation choices, with their intervals, and the table ``intervals``.

    Args:
        inp: the test notes (their instruments: ``meta[GROUP]``), ``n_boot`` and ``seed``.
        zero_effects: the zero baseline's effects on the test notes (:func:`~.steps.baseline_effects`).
        choice: from :func:`~vaetone.analysis.ablation.choice.choose_on_valid`.
        errors: from :func:`cumulative_errors`.
    Returns:
        ({n_test, n_test_instruments, base_mse_ci, top_abl, free_cost, recovered_test, vae_vs_pca,
        order_rho (Spearman ρ of the dimensions' validation and test costs, as text)}, the table
        ``intervals``: quantity, unit, estimate, "95 % interval", notes, instruments). Chapter: 05_ablation.
    """
    rows, k, vae, pca = _Rows(inp), choice.k90, errors[ORDERS[0]], errors[ORDERS[2]]
    base = vae[vae.columns[-1]].to_numpy()
    increases = ablation_matrix(zero_effects, "logmel_mse").loc[inp.meta.index]
    base_mse = rows.text("unablated log-mel MSE", "dB²", base)
    top = [f"z{d}: {rows.text(f'cost of ablating z{d}', 'dB²', increases[d], True)}" for d in choice.order[:N_QUOTED]]
    if choice.free:
        joint = ablate(inp.mu, choice.free, baseline_values(inp.mu, "zero"))
        cost = reconstruction_errors(inp.decode, joint, inp.ref)["logmel_mse"].to_numpy() - base
        free = rows.text(f"cost of ablating the {len(choice.free)} free dimensions together", "dB²", cost, True)
        free += f", {100 * cost.mean() / base.mean():.2g} % of the unablated error"
    else:
        free = "nothing: no dimension is free on the validation notes"
    triple = np.stack([vae[0], vae[k], base], axis=1)
    quantity = f"share of the error reduction recovered with the first k90 = {k} dimension{'s' * (k != 1)} kept"
    recovered = rows.text(quantity, "%", triple, statistic=_recovered, estimate=_recovered(triple))
    diff = (vae[k] - pca[k]).to_numpy()
    found, est = rows.add(
        f"VAE − PCA log-mel MSE with k90 = {k} dimensions or components, paired per note", "dB²", diff
    )
    return {
        "n_test": len(inp.meta),
        "n_test_instruments": rows.n_groups,
        "base_mse_ci": base_mse,
        "top_abl": "; ".join(top),
        "free_cost": free,
        "recovered_test": recovered,
        "vae_vs_pca": comparison(found, est),
        "order_rho": rho_text(choice.overall["increase_mean"].corr(increases.mean(), method="spearman")),
    }, rows.table()


def rho_text(rho: float) -> str:
    """A Spearman ρ as "0.83", or "undefined (constant effects)" when it is NaN. Chapter: 05_ablation."""
    return f"{rho:.2f}" if math.isfinite(rho) else "undefined (constant effects)"


def error_bars(effects: Mapping[str, pd.DataFrame], inp: AblationInputs) -> tuple[pd.DataFrame, str]:
    """Half the width of each mean increase's instrument-level interval (dim × baseline, dB²), and the caption's phrase.

    Args:
        effects: {baseline: test effects} (:func:`~.steps.baseline_effects`); inp: the test notes, n_boot, seed.
    Returns:
        (table ``logmel_increase_ci``, "error bars: half the width of the 95 % instrument-level
        bootstrap interval" or "no error bars: undefined: ..."). Chapter: 05_ablation.
    """
    groups, widths, reason = inp.meta[GROUP].to_numpy(), {}, ""
    for b, frame in effects.items():
        matrix = ablation_matrix(frame, "logmel_mse").loc[inp.meta.index]
        found = {d: interval(matrix[d], groups, inp.n_boot, inp.seed, f"the cost of z{d}") for d in matrix.columns}
        reason = next((f for f in found.values() if isinstance(f, str)), reason)
        widths[b] = {d: (f.high - f.low) / 2 if isinstance(f, Interval) else math.nan for d, f in found.items()}
    table = pd.DataFrame(widths).rename_axis(index="dim")
    level = round(100 * LEVEL)
    phrase = f"error bars: half the width of the {level} % instrument-level bootstrap interval"
    return table, f"no error bars: {reason}" if reason else phrase
