"""A trained growth model as it is saved, loaded and served: the ensemble's weights, its input
spec, its conformal calibration, and one `predict` for layers as grown or as planned.

Artifact (a folder): `weights.pt` (tensors only: state_dicts, read back with
`torch.load(weights_only=True)`, which refuses any pickled object) and `config.json` (the input
spec, hyper-parameters, conformal quantiles, metadata). Nothing else is ever loaded.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from epi_ml.device import select_device
from epi_ml.models.conformal import calibrate_normalized, conformal_quantile, interval_scale, mondrian_quantiles
from epi_ml.models.data import TARGETS, Encoded, InputSpec
from epi_ml.models.hybrid import HybridResidualNet, HyperParameters, predict_members
from epi_ml.physics import is_direct_gap, pl_peak_nm

KIND = "hybrid_torch"
WEIGHTS, CONFIG = "weights.pt", "config.json"
MODES = ("in_situ", "recipe")
PL_TEMPERATURE_K = 300.0


@dataclass
class Conformal:
    """Per mode and target: the quantile of the normalized scores and the spread floor."""

    coverage: float
    quantile: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> target -> q
    floor: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> target -> s0
    pl_quantile_nm: float = float("inf")
    score: str = "max"  # how the spread scales the interval (epi_ml.models.conformal.interval_scale)
    # Mondrian: mode -> target -> group (the material) -> q; a layer of another group takes the
    # pooled `quantile` (models saved before 2026-12-02: none, every layer pooled)
    group_quantile: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


# Composition intervals per material: an AlGaAs layer's x error is the Al and Ga calibrations',
# an InGaAs layer's the In and Ga ones (other cells, other scans), so the two differ and a test's
# mix of them must not move the coverage. Thickness stays pooled (per material or per RHEED reading
# it covered the held-out epochs no better, leave-one-epoch-out; docs/models.md, Intervals).
MONDRIAN = {"composition": "material"}


class GrowthModel:
    def __init__(
        self,
        spec: InputSpec,
        hp: HyperParameters,
        members: list[HybridResidualNet],
        conformal: Conformal | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self.spec, self.hp, self.members = spec, hp, members
        self.conformal = conformal or Conformal(coverage=0.9)
        self.metadata = metadata or {}

    @property
    def device(self) -> torch.device:
        return next(self.members[0].parameters()).device

    # -- raw residuals -----------------------------------------------------------------------
    def residuals(self, data: Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread over the members of the scaled residuals, (n, 2) each."""
        each = predict_members(self.members, data, self.device)
        return each.mean(axis=0), each.std(axis=0)

    def calibrate(self, examples: pl.DataFrame, data_in_situ: Encoded, data_recipe: Encoded,
                  coverage: float = 0.9) -> None:  # fmt: skip
        """Split-conformal calibration on layers the members never fit, for both modes."""
        self.conformal = Conformal(coverage=coverage)
        for mode, data in zip(MODES, (data_in_situ, data_recipe), strict=True):
            mean, spread = self.residuals(data)
            self.conformal.quantile[mode], self.conformal.floor[mode] = {}, {}
            self.conformal.group_quantile[mode] = {}
            for i, target in enumerate(TARGETS):
                q, floor = calibrate_normalized(data.targets[:, i], mean[:, i], spread[:, i], coverage,
                                                self.conformal.score)  # fmt: skip
                self.conformal.quantile[mode][target], self.conformal.floor[mode][target] = q, floor
                if target in MONDRIAN:
                    self.conformal.group_quantile[mode][target] = mondrian_quantiles(
                        data.targets[:, i], mean[:, i], spread[:, i], floor,
                        examples.get_column(MONDRIAN[target]).to_numpy(), coverage, self.conformal.score,
                    )  # fmt: skip
        table = self.predict(examples, data_in_situ)
        measured = examples.get_column("pl_peak_nm").to_numpy() if "pl_peak_nm" in examples.columns else None
        if measured is not None:
            predicted = table.get_column("pl_peak_nm").to_numpy()
            self.conformal.pl_quantile_nm = conformal_quantile(np.abs(measured - predicted), coverage)

    # -- predictions -------------------------------------------------------------------------
    def predict(self, examples: pl.DataFrame, data: Encoded) -> pl.DataFrame:
        """Per layer: thickness, growth rate, composition and PL peak with their intervals.
        `examples` carries the physics baseline (pred_* columns, growth_s, material)."""
        mode = "in_situ" if data.has_in_situ.mean() >= 0.5 else "recipe"
        mean, spread = self.residuals(data)
        out: dict[str, Any] = {"mode": [mode] * len(data)}
        for i, target in enumerate(TARGETS):
            scale = self.spec.target_scale[target]
            q = self.layer_quantiles(examples, mode, target, len(data))
            floor = self.conformal.floor.get(mode, {}).get(target, 1.0)
            # too few calibration layers for the coverage asked: no interval rather than a false one
            width = interval_scale(spread[:, i], floor, self.conformal.score)
            half = np.where(np.isfinite(q), q * width, np.nan)
            out[f"r_{target}"] = mean[:, i] * scale
            out[f"r_{target}_lower"] = (mean[:, i] - half) * scale
            out[f"r_{target}_upper"] = (mean[:, i] + half) * scale
            # the members' disagreement (epistemic): relative for thickness, in x for composition
            out[f"{target}_ensemble_spread"] = spread[:, i] * scale
        frame = pl.DataFrame(out).with_columns(
            pl.Series("material", examples.get_column("material").to_list()),
            pl.Series("pred_thickness_nm", examples.get_column("pred_thickness_nm").to_numpy()),
            examples.get_column("pred_composition").cast(pl.Float64).fill_nan(None).alias("pred_composition"),
            pl.Series("growth_s", examples.get_column("growth_s").to_numpy()),
        )
        base_x = pl.col("pred_composition")
        ternary = base_x.is_not_null()
        frame = frame.with_columns(
            thickness_nm=pl.col("pred_thickness_nm") * pl.col("r_thickness").exp(),
            thickness_lower_nm=pl.col("pred_thickness_nm") * pl.col("r_thickness_lower").exp(),
            thickness_upper_nm=pl.col("pred_thickness_nm") * pl.col("r_thickness_upper").exp(),
            composition=pl.when(ternary).then((base_x + pl.col("r_composition")).clip(0, 1)),
            composition_lower=pl.when(ternary).then((base_x + pl.col("r_composition_lower")).clip(0, 1)),
            composition_upper=pl.when(ternary).then((base_x + pl.col("r_composition_upper")).clip(0, 1)),
        ).with_columns(
            (pl.col(f"thickness{s}_nm") / pl.col("growth_s")).alias(f"growth_rate{s}_nm_s")
            for s in ("", "_lower", "_upper")
        )  # fmt: skip
        return frame.with_columns(self._pl_peaks(frame)).drop(
            "pred_thickness_nm", "pred_composition", "growth_s"
        )

    def layer_quantiles(self, examples: pl.DataFrame, mode: str, target: str, n: int) -> np.ndarray:
        """Each layer's conformal quantile: its group's (Mondrian) where calibrated, else pooled."""
        pooled = self.conformal.quantile.get(mode, {}).get(target, math.inf)
        groups = self.conformal.group_quantile.get(mode, {}).get(target, {})
        if not groups or MONDRIAN.get(target) not in examples.columns:
            return np.full(n, pooled, dtype=float)
        keys = examples.get_column(MONDRIAN[target]).cast(pl.String).to_list()
        return np.array([groups.get(k, pooled) if k is not None else pooled for k in keys], dtype=float)

    def _pl_peaks(self, frame: pl.DataFrame) -> list[pl.Series]:
        peaks = []
        for material, x in zip(frame["material"].to_list(), frame["composition"].to_list(), strict=True):
            x = 0.0 if x is None or math.isnan(x) else x
            direct = bool(is_direct_gap(material, x, PL_TEMPERATURE_K))
            peaks.append(float(pl_peak_nm(material, x, PL_TEMPERATURE_K)) if direct else None)
        peak = pl.Series("pl_peak_nm", peaks, dtype=pl.Float64)
        q = self.conformal.pl_quantile_nm
        if not math.isfinite(q):
            none = pl.Series([None] * len(peak), dtype=pl.Float64)
            return [peak, none.alias("pl_peak_lower_nm"), none.alias("pl_peak_upper_nm")]
        return [peak, (peak - q).alias("pl_peak_lower_nm"), (peak + q).alias("pl_peak_upper_nm")]

    # -- artifact ----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        weights = {
            f"member{i}.{k}": v.detach().cpu().contiguous()
            for i, m in enumerate(self.members)
            for k, v in m.state_dict().items()
        }
        torch.save(weights, directory / WEIGHTS)
        config = {
            "kind": KIND,
            "spec": self.spec.to_json(),
            "hyperparameters": self.hp.to_json(),
            "members": len(self.members),
            "conformal": {
                "coverage": self.conformal.coverage,
                "quantile": self.conformal.quantile,
                "floor": self.conformal.floor,
                "pl_quantile_nm": self.conformal.pl_quantile_nm,
                "score": self.conformal.score,
                "group_quantile": self.conformal.group_quantile,
            },
            "metadata": self.metadata,
        }
        (directory / CONFIG).write_text(json.dumps(config, indent=1, sort_keys=True, default=str) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path, device: str = "auto") -> GrowthModel:
        config_path, weights_path = directory / CONFIG, directory / WEIGHTS
        for path in (config_path, weights_path):
            if not path.exists():
                raise FileNotFoundError(f"model artifact {directory} has no {path.name}; re-train or restore it")
        config = json.loads(config_path.read_text())
        if config.get("kind") != KIND:
            raise ValueError(f"{config_path}: kind {config.get('kind')!r}, expected {KIND!r}")
        spec = InputSpec.from_json(config["spec"])
        hp = HyperParameters(**config["hyperparameters"])
        target = select_device(device)
        weights = torch.load(weights_path, map_location="cpu", weights_only=True)
        members = []
        for i in range(int(config["members"])):
            model = HybridResidualNet(spec.n_context, spec.n_in_situ, len(spec.trace_names), hp)
            prefix = f"member{i}."
            model.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
            members.append(model.to(target).eval())
        c = config["conformal"]
        # artifacts saved before the score was recorded scaled by spread + floor
        conformal = Conformal(c["coverage"], c["quantile"], c["floor"], float(c["pl_quantile_nm"]),
                              c.get("score", "sum"), c.get("group_quantile", {}))  # fmt: skip
        return cls(spec, hp, members, conformal, config.get("metadata", {}))
