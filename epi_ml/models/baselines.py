"""The two references every candidate is compared with, on the same layers and the same split:

- physics: the baseline as it stands (epi_ml.baseline, the `pred_*` features): residual 0;
- gbm: gradient boosting (scikit-learn's HistGradientBoostingRegressor, which takes missing
  values as they are) on the same context and in-situ columns, one model per residual target,
  its number of trees chosen on the validation epochs.

Both get split-conformal intervals from absolute residuals on the calibration epochs, so their
coverage is comparable with the hybrid model's. They are evaluation references, not served
models (a fitted scikit-learn model only saves as a pickle, which the registry never loads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from sklearn.ensemble import HistGradientBoostingRegressor

from epi_ml.models.conformal import conformal_quantile
from epi_ml.models.data import CONTEXT, IN_SITU, TARGETS, Split, _column
from epi_ml.physics import MATERIALS

GBM_TREES = (50, 100, 200, 400)


def residual_frame(examples: pl.DataFrame, mean: np.ndarray, half: np.ndarray) -> pl.DataFrame:
    """A residual prediction (n, 2) ± half-widths (n, 2) as a table with the same columns as
    GrowthModel.predict's residual part."""
    cols: dict[str, np.ndarray] = {}
    for i, target in enumerate(TARGETS):
        cols[f"r_{target}"] = mean[:, i]
        cols[f"r_{target}_lower"] = mean[:, i] - half[:, i]
        cols[f"r_{target}_upper"] = mean[:, i] + half[:, i]
    return pl.DataFrame(cols)


def _targets(examples: pl.DataFrame) -> np.ndarray:
    return np.stack([_column(examples, f"r_{t}") for t in TARGETS], axis=1)


@dataclass
class PhysicsBaseline:
    half_width: np.ndarray  # per target

    @classmethod
    def fit(cls, examples: pl.DataFrame, split: Split, coverage: float = 0.9) -> PhysicsBaseline:
        y = _targets(examples)[split.calibration]
        return cls(np.array([conformal_quantile(np.abs(y[:, i]), coverage) for i in range(len(TARGETS))]))

    def predict(self, examples: pl.DataFrame) -> pl.DataFrame:
        n = examples.height
        return residual_frame(examples, np.zeros((n, 2)), np.tile(self.half_width, (n, 1)))


@dataclass
class GradientBoosting:
    models: list[HistGradientBoostingRegressor | None]
    half_width: np.ndarray
    columns: list[str]

    @classmethod
    def fit(cls, examples: pl.DataFrame, split: Split, seed: int = 0, coverage: float = 0.9,
            columns: list[str] | None = None) -> GradientBoosting:  # fmt: skip
        columns = columns or [*CONTEXT, *IN_SITU]
        x = _features(examples, columns)
        # a column with no value in the fitting rows (no refill yet, say) cannot be binned
        known = np.isfinite(x[split.train]).any(axis=0)[:-1]
        columns = [c for c, k in zip(columns, known, strict=True) if k]
        x = _features(examples, columns)
        y = _targets(examples)
        models: list[HistGradientBoostingRegressor | None] = []
        half = []
        for i in range(len(TARGETS)):
            fit_rows = split.train[np.isfinite(y[split.train, i])]
            val_rows = split.validation[np.isfinite(y[split.validation, i])]
            cal_rows = split.calibration[np.isfinite(y[split.calibration, i])]
            if len(fit_rows) < 10:
                models.append(None)
                half.append(np.inf)
                continue
            best, best_err = None, np.inf
            for trees in GBM_TREES:
                model = HistGradientBoostingRegressor(
                    max_iter=trees, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=10,
                    l2_regularization=1.0, early_stopping=False, random_state=seed,
                )  # fmt: skip
                model.fit(x[fit_rows], y[fit_rows, i])
                err = np.mean(np.abs(model.predict(x[val_rows]) - y[val_rows, i])) if len(val_rows) else 0.0
                if err < best_err:
                    best, best_err = model, err
            models.append(best)
            residuals = np.abs(best.predict(x[cal_rows]) - y[cal_rows, i]) if len(cal_rows) else np.array([])
            half.append(conformal_quantile(residuals, coverage))
        return cls(models, np.array(half), columns)

    def predict(self, examples: pl.DataFrame) -> pl.DataFrame:
        x = _features(examples, self.columns)
        mean = np.stack(
            [m.predict(x) if m is not None else np.zeros(len(x)) for m in self.models], axis=1
        )
        return residual_frame(examples, mean, np.tile(self.half_width, (len(x), 1)))


def _features(examples: pl.DataFrame, columns: list[str]) -> np.ndarray:
    material = examples.get_column("material").to_list()
    codes = np.array([MATERIALS.index(m) if m in MATERIALS else -1 for m in material], dtype=float)[:, None]
    return np.hstack([np.stack([_column(examples, c) for c in columns], axis=1), codes])
