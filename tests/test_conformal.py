"""Split conformal on grouped data: layers of one calibration epoch share that calibration's error
(an epoch offset) on top of their own noise, as in the twin and in a fab. Pure numpy, fast."""

from __future__ import annotations

import math

import numpy as np
import pytest

from epi_ml.models.conformal import (
    calibrate_normalized,
    conformal_quantile,
    grouped_bootstrap,
    interval_scale,
    mondrian_quantiles,
)
from epi_ml.models.gate import wilson_interval


def grouped_residuals(rng: np.random.Generator, epochs: int, per_epoch: int, offset_sd: float,
                      noise_sd: float) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Residuals b_e + e_i: b_e shared by the epoch's layers, e_i each layer's own; and the epoch
    of each layer."""
    offsets = rng.normal(0, offset_sd, epochs)
    group = np.repeat(np.arange(epochs), per_epoch)
    return offsets[group] + rng.normal(0, noise_sd, group.size), group


def test_calibrate_normalized_is_the_floored_split_conformal_rule() -> None:
    rng = np.random.default_rng(3)
    y, mean, spread = rng.normal(0, 1, 50), np.zeros(50), rng.uniform(0.1, 1.0, 50)
    y[:5] = np.nan  # not measured: not calibration layers
    q, floor = calibrate_normalized(y, mean, spread, 0.9)
    known = np.isfinite(y)
    assert floor == pytest.approx(np.percentile(spread[known], 90))
    scores = np.abs(y[known]) / interval_scale(spread[known], floor)
    assert q == conformal_quantile(scores, 0.9)
    assert np.mean(scores <= q) >= 0.9
    q_sum, _ = calibrate_normalized(y, mean, spread, 0.9, score="sum")
    assert q_sum == conformal_quantile(np.abs(y[known]) / (spread[known] + floor), 0.9)
    assert calibrate_normalized(np.full(5, np.nan), np.zeros(5), np.ones(5)) == (math.inf, 1.0)


def test_pooled_conformal_covers_new_epochs_on_average_but_a_test_moves_with_its_epochs() -> None:
    """Epoch offsets half the total variance, 8 calibration epochs of 40 layers, tests of 12 epochs
    of 8 layers (about the bench's composition test): the pooled quantile covers 90 % on average
    (exchangeable epochs), but one test's coverage spreads far wider than a binomial's."""
    rng = np.random.default_rng(11)
    coverages, wilson_misses, n_test = [], 0, 12 * 8
    for _ in range(600):
        cal, _ = grouped_residuals(rng, 8, 40, offset_sd=1.0, noise_sd=1.0)
        q = conformal_quantile(np.abs(cal), 0.9)
        test, _ = grouped_residuals(rng, 12, 8, offset_sd=1.0, noise_sd=1.0)
        coverages.append(np.mean(np.abs(test) <= q))
        low, high = wilson_interval(coverages[-1], n_test)
        wilson_misses += not low <= 0.9 <= high
    coverages = np.asarray(coverages)
    assert coverages.mean() == pytest.approx(0.90, abs=0.015)
    binomial_sd = math.sqrt(0.9 * 0.1 / n_test)  # 3.1 points
    assert coverages.std() > 1.8 * binomial_sd
    # the layers-as-independent (Wilson) interval misses the true 90 % far more than 5 % of tests
    assert wilson_misses / len(coverages) > 0.15


@pytest.mark.parametrize(("offset_sd", "noise_sd", "ratio"), [(1.0, 1.0, 1.15), (2.0, 0.5, 1.6)])
def test_grouped_bootstrap_interval_is_wider_than_binomial_on_grouped_data(
    offset_sd: float, noise_sd: float, ratio: float
) -> None:
    """Coverage indicators of 12 epochs of 8 layers with epoch offsets (half and 94 % of the
    variance): the epoch bootstrap's interval is wider than the binomial (Wilson) one and holds
    the true 90 % at least as often; the more the epoch dominates, the more so."""
    rng = np.random.default_rng(5)
    threshold = 1.6449 * math.hypot(offset_sd, noise_sd)  # 90 % of the residuals' distribution
    ratios, boot_holds, wilson_holds = [], 0, 0
    for _ in range(150):
        residuals, group = grouped_residuals(rng, 12, 8, offset_sd, noise_sd)
        hit = np.abs(residuals) <= threshold
        low, high = grouped_bootstrap(lambda rows: hit[rows].mean(), group, draws=300, seed=1)  # noqa: B023
        w_low, w_high = wilson_interval(hit.mean(), hit.size)
        assert low <= hit.mean() <= high
        ratios.append((high - low) / (w_high - w_low))
        boot_holds += low <= 0.9 <= high
        wilson_holds += w_low <= 0.9 <= w_high
    assert np.mean(ratios) > ratio
    assert boot_holds >= wilson_holds


def test_grouped_bootstrap_of_independent_layers_is_about_binomial() -> None:
    flat = np.random.default_rng(2).normal(0, 1, 200)
    hit = np.abs(flat) <= 1.645
    low, high = grouped_bootstrap(lambda rows: hit[rows].mean(), np.arange(200), draws=1000)
    w_low, w_high = wilson_interval(hit.mean(), hit.size)
    assert high - low == pytest.approx(w_high - w_low, rel=0.3)


def test_grouped_bootstrap_drops_undefined_draws_and_is_seeded() -> None:
    group = np.repeat(np.arange(5), 3)
    values = np.arange(15, dtype=float)
    a = grouped_bootstrap(lambda rows: values[rows].mean(), group, draws=200, seed=4)
    assert a == grouped_bootstrap(lambda rows: values[rows].mean(), group, draws=200, seed=4)
    assert 0 <= a[0] < a[1] <= 14
    assert all(math.isnan(v) for v in grouped_bootstrap(lambda rows: math.nan, group, draws=10))


def test_mondrian_covers_each_group_where_pooled_does_not() -> None:
    """Two materials with errors of different size (an Al and an In calibration): the pooled
    quantile over-covers the narrow one and under-covers the wide one; per group both are at 90 %.
    A group under MONDRIAN_MIN_LAYERS gets no quantile of its own."""
    rng = np.random.default_rng(8)
    pooled_wide, mondrian_wide, mondrian_narrow = [], [], []
    for _ in range(300):
        groups = np.array(["AlGaAs"] * 40 + ["InGaAs"] * 60 + ["GaAs"] * 5, dtype=object)
        y = rng.normal(0, np.where(groups == "InGaAs", 2.0, 1.0))
        qs = mondrian_quantiles(y, np.zeros(y.size), np.ones(y.size), 1.0, groups)
        assert set(qs) == {"AlGaAs", "InGaAs"}  # 5 GaAs layers: pooled
        pooled, _ = calibrate_normalized(y, np.zeros(y.size), np.ones(y.size))
        wide, narrow = rng.normal(0, 2.0, 50), rng.normal(0, 1.0, 50)
        pooled_wide.append(np.mean(np.abs(wide) <= pooled))
        mondrian_wide.append(np.mean(np.abs(wide) <= qs["InGaAs"]))
        mondrian_narrow.append(np.mean(np.abs(narrow) <= qs["AlGaAs"]))
    assert np.mean(mondrian_wide) == pytest.approx(0.90, abs=0.02)
    assert np.mean(mondrian_narrow) == pytest.approx(0.90, abs=0.02)
    assert np.mean(pooled_wide) < 0.87
