"""From the training set to model inputs: which layers, which columns, how they are scaled.

    examples = select_examples(training_set)              # measured growth layers
    spec = InputSpec.fit(examples)                         # columns, scaling: saved with a model
    batch = spec.encode(examples, traces)                  # numpy arrays for every model

The models learn the residual of the physics baseline, never the thickness itself:

    thickness:    r_t = ln(xrd_thickness_nm / pred_thickness_nm)
    composition:  r_x = xrd_composition − pred_composition           (ternaries)

so that what physics already explains (the calibration in force, the layer's time, its cells'
temperatures) never has to be learned again, and a model trained on one tool transfers to
another. The growth rate follows from the thickness (the group-III shutters' open time is known:
rate = thickness / growth_s) and the PL peak from the composition (the band gap, epi_ml.physics).

Inputs come in two groups. CONTEXT columns are known before a layer is grown (the recipe, the
calibration in force, the tool's history); IN_SITU columns and the sensor traces
(epi_ml.features.traces) only once it has been. A prediction for a recipe has the context only;
the models are trained with the in-situ group dropped at random, so one model serves both.
No column names a tool: what differs between tools is in the calibration, so models transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from epi_ml.channels import GROUP_III
from epi_ml.features.traces import TRACE_BINS, TRACE_NAMES
from epi_ml.physics import MATERIALS

TARGETS = ("thickness", "composition")
MIN_THICKNESS_NM = 1.0  # XRD gives nothing below (epi_ml.twin.measurements, the lab's limit)

# Inputs are few and physical on purpose: with a few thousand measured layers, every column
# that only tracks time or the tool (pressure after a bake-out, charge used since a refill the
# calibration has since absorbed) is a way to overfit the weeks it was trained on.
CONTEXT = [
    "target_composition", "pred_composition", "pred_rate_ml_s", "log_pred_thickness_nm",
    "log_growth_s", "openings_per_min", "hours_since_calibration", "prev_run_residual",
    *(f"{c}_flux_share" for c in GROUP_III),
]  # fmt: skip
CELL_IN_SITU = ("T_dev", "T_dip", "power_step")
IN_SITU = [
    *(f"{c}_{q}" for c in GROUP_III for q in CELL_IN_SITU),
    "v_iii", "rheed_ratio", "rheed_rel_unc", "run_rheed_ratio", "run_rheed_ratio_gaas",
]  # fmt: skip


def derived_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The model-side columns computed from the feature table (one place for each)."""
    rate = pl.col("pred_rate_ml_s")
    open_iii = pl.sum_horizontal(pl.col(f"{c}_flux_ml_s").fill_null(0.0) for c in GROUP_III)
    # RHEED reads the day's flux where it oscillates; the run's other layers share that flux
    # (the same cells on the same day): their median reading, of the material and of GaAs (Ga)
    rheed = pl.col("rheed_rate_ml_s") / rate - 1.0
    gaas = pl.when(pl.col("material") == "GaAs").then(rheed)
    # a closed cell's thermocouple and power say nothing about the layer: absent, not noise
    closed = {
        f"{c}_{q}": pl.when(pl.col(f"open_{c}_s").fill_null(0.0) > 0).then(pl.col(f"{c}_{q}"))
        for c in GROUP_III for q in CELL_IN_SITU if f"{c}_{q}" in frame.columns
    }  # fmt: skip
    return frame.with_columns(
        **closed,
        rheed_ratio=rheed,
        run_rheed_ratio=rheed.median().over("run_id", "material"),
        run_rheed_ratio_gaas=gaas.median().over("run_id"),
        log_pred_thickness_nm=pl.col("pred_thickness_nm").log(),
        log_growth_s=pl.col("growth_s").clip(1.0).log(),
        # each opening's flux transient adds a few seconds' worth of growth (docs/twin.md)
        openings_per_min=60.0 / pl.col("growth_s").clip(1.0),
        rheed_rel_unc=pl.col("rheed_rate_unc_ml_s") / rate,
        **{
            f"{c}_flux_share": pl.col(f"{c}_flux_ml_s").fill_null(0.0) / open_iii.clip(1e-12)
            for c in GROUP_III
        },
    )


def select_examples(training_set: pl.DataFrame) -> pl.DataFrame:
    """Growth layers with a physics baseline, the model columns and the residual targets
    (null where not measured). Rows with neither target measured are kept out."""
    layers = training_set.filter(
        (pl.col("kind") == "layer")
        & (pl.col("pred_thickness_nm") > 0)
        & pl.col("growth_s").is_not_null()
    )
    layers = derived_columns(layers).with_columns(
        r_thickness=pl.when(pl.col("xrd_thickness_nm") >= MIN_THICKNESS_NM).then(
            (pl.col("xrd_thickness_nm") / pl.col("pred_thickness_nm")).log()
        ),
        r_composition=pl.col("xrd_composition") - pl.col("pred_composition"),
        epoch=epoch_key(),
    )
    measured = pl.col("r_thickness").is_not_null() | pl.col("r_composition").is_not_null()
    return layers.filter(measured).sort("start", "run_id", "layer")


def epoch_key() -> pl.Expr:
    """A layer's calibration epoch: its tool and the calibration scan in force. Layers of one
    epoch share the errors of that calibration, so they are never split between training and
    validation (a random split would leak them)."""
    calibrated = pl.col("start") - pl.duration(
        seconds=(pl.col("hours_since_calibration").fill_null(0.0) * 3600).round(0).cast(pl.Int64)
    )
    return pl.concat_str(
        [pl.col("tool"), pl.lit("@"), calibrated.dt.strftime("%Y-%m-%dT%H")], ignore_nulls=True
    )


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    validation: np.ndarray
    calibration: np.ndarray
    evaluation: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in asdict(self).items()}


SPLIT_SHARES = {"validation": 0.15, "calibration": 0.2, "evaluation": 0.15}


def split_by_epoch(examples: pl.DataFrame, shares: dict[str, float] | None = None) -> Split:
    """Whole calibration epochs in time order: the earliest to fit, the next for early stopping,
    then the conformal calibration, the latest for the gate's evaluation (closest to what the
    model will serve, and never seen by the members, the search or the calibration)."""
    shares = shares or SPLIT_SHARES
    first = examples.group_by("epoch").agg(pl.col("start").min()).sort("start", "epoch")
    epochs = first.get_column("epoch").to_list()
    held = [max(1, round(len(epochs) * shares[k])) for k in ("validation", "calibration", "evaluation")]
    if len(epochs) < sum(held) + 1:
        raise ValueError(
            f"{len(epochs)} calibration epoch(s) of measured layers: a model needs at least "
            f"{sum(held) + 1} (fit, validation, calibration, evaluation); ingest more runs with "
            "XRD results"
        )
    bounds = np.cumsum([len(epochs) - sum(held), *held])
    part = {e: int(np.searchsorted(bounds, i, side="right")) for i, e in enumerate(epochs)}
    which = np.array([part[e] for e in examples.get_column("epoch").to_list()])
    rows = np.arange(examples.height)
    return Split(*(rows[which == k] for k in range(4)))


@dataclass
class Encoded:
    """Model inputs of n layers: `context` (n, Fc), `in_situ` (n, Fs), `traces` (n, C, L),
    targets (n, 2) with NaN where not measured, `has_in_situ` (n,) 1 where sensors were read."""

    context: np.ndarray
    in_situ: np.ndarray
    traces: np.ndarray
    targets: np.ndarray
    has_in_situ: np.ndarray

    def take(self, rows: np.ndarray) -> Encoded:
        return Encoded(*(getattr(self, k)[rows] for k in self.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.context)


@dataclass
class InputSpec:
    """Columns and scaling of a model's inputs and targets; JSON with the model's weights."""

    context: list[str]
    in_situ: list[str]
    materials: list[str]
    trace_names: list[str]
    trace_bins: int
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    trace_scale: dict[str, float] = field(default_factory=dict)
    target_scale: dict[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, examples: pl.DataFrame, traces: np.ndarray | None = None) -> InputSpec:
        spec = cls(list(CONTEXT), list(IN_SITU), list(MATERIALS), list(TRACE_NAMES), TRACE_BINS)
        for name in spec.context + spec.in_situ:
            values = _column(examples, name)
            finite = values[np.isfinite(values)]
            if finite.size == 0:  # never seen (no refill yet, say): encoded as absent
                spec.center[name], spec.scale[name] = 0.0, 1.0
                continue
            spec.center[name] = float(np.median(finite))
            # the spread of the central 98 %: a fault's outliers must not set the scale
            low, high = np.percentile(finite, [1, 99])
            spread = float(np.clip(finite, low, high).std())
            spec.scale[name] = spread if spread > 0 else 1.0
        if traces is not None and traces.size:
            for i, name in enumerate(spec.trace_names):
                rms = float(np.sqrt(np.mean(traces[:, i, :] ** 2)))
                spec.trace_scale[name] = rms if rms > 0 else 1.0
        for target in TARGETS:
            values = examples.get_column(f"r_{target}").drop_nulls().to_numpy()
            # robust (interquartile) scale: the few layers a fault ruined are not the typical error
            iqr = float(np.subtract(*np.percentile(values, [75, 25]))) / 1.349 if values.size > 3 else 0.0
            spec.target_scale[target] = iqr if iqr > 0 else 0.01
        return spec

    @property
    def n_context(self) -> int:
        return len(self.context) * 2 + len(self.materials)  # values, presence flags, material

    @property
    def n_in_situ(self) -> int:
        return len(self.in_situ) * 2

    def encode(self, examples: pl.DataFrame, traces: np.ndarray | None = None, in_situ: bool = True) -> Encoded:
        """Scaled inputs; NaN -> 0 with a presence flag per column. `traces`: (n, C, L) raw
        deviations or None; `in_situ=False` encodes the layers as a recipe (context only)."""
        n = examples.height
        material = examples.get_column("material").to_list()
        onehot = np.array([[m == k for k in self.materials] for m in material], dtype=np.float32)
        context = np.hstack([self._block(examples, self.context), onehot.reshape(n, -1)])
        situ = self._block(examples, self.in_situ)
        if traces is None:
            traces = np.zeros((n, len(self.trace_names), self.trace_bins), dtype=np.float32)
        scale = np.array([self.trace_scale.get(t, 1.0) for t in self.trace_names], dtype=np.float32)
        scaled_traces = (np.nan_to_num(traces) / scale[None, :, None]).astype(np.float32)
        has = np.full(n, 1.0 if in_situ else 0.0, dtype=np.float32)
        if not in_situ:
            situ[:] = 0.0
            scaled_traces[:] = 0.0
        targets = np.stack(
            [
                _column(examples, f"r_{t}") / self.target_scale[t] if f"r_{t}" in examples.columns
                else np.full(n, np.nan)
                for t in TARGETS
            ],
            axis=1,
        ).astype(np.float32)  # fmt: skip
        return Encoded(context.astype(np.float32), situ, scaled_traces, targets, has)

    def _block(self, examples: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
        values = np.stack([_column(examples, name) for name in names], axis=1) if names else np.zeros((examples.height, 0))
        center = np.array([self.center[c] for c in names])
        scale = np.array([self.scale[c] for c in names])
        present = np.isfinite(values)
        scaled = np.where(present, (values - center) / scale, 0.0)
        # outliers of a fault must not saturate the network
        scaled = np.clip(scaled, -10.0, 10.0)
        return np.hstack([scaled, present.astype(float)]).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputSpec:
        return cls(**data)


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


def traces_for(examples: pl.DataFrame, traces: pl.DataFrame, names: Sequence[str] = TRACE_NAMES,
               bins: int = TRACE_BINS) -> np.ndarray:  # fmt: skip
    """(n, C, L) array of the examples' traces from a long table run_id, layer, channel, bin,
    value (zeros where a layer or bin has none)."""
    out = np.zeros((examples.height, len(names), bins), dtype=np.float32)
    if traces.is_empty():
        return out
    rows = examples.select("run_id", "layer").with_row_index("row")
    index = {n: i for i, n in enumerate(names)}
    joined = traces.join(rows, on=["run_id", "layer"], how="inner").filter(
        pl.col("channel").is_in(list(names))
    )
    r = joined.get_column("row").to_numpy()
    c = np.array([index[n] for n in joined.get_column("channel").to_list()], dtype=int)
    b = joined.get_column("bin").to_numpy()
    out[r, c, b] = joined.get_column("value").to_numpy()
    return out
