"""A model's life in the store: trained from the training set, registered with its lineage,
judged by the gate against the physics baseline and the champion, promoted or not.

    candidate = train_candidate(ctx)                  # artifact + model_versions row (+ challenger)
    verdict = evaluate_candidate(ctx, candidate.version)   # gate, ledger row gate_pass / gate_fail
    promote_if_passed(ctx, verdict)                   # champion moves, ledger row promote

Dagster runs the same three steps as assets (assets/models.py); `epi-ml train` runs them in a row.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from epi_ml import __version__
from epi_ml.features.build import TRACES_NAME, TRAINING_DATASET, TRAINING_NAME, file_sha256
from epi_ml.features.core import FEATURES_VERSION
from epi_ml.ingest.files import IngestContext
from epi_ml.models import registry
from epi_ml.models.baselines import PhysicsBaseline
from epi_ml.models.data import Split, select_examples, split_by_epoch, traces_for
from epi_ml.models.gate import GateDecision, GateThresholds, judge, thresholds_dict
from epi_ml.models.hybrid import HyperParameters
from epi_ml.models.metrics import evaluate
from epi_ml.models.predictor import KIND, GrowthModel
from epi_ml.models.train import encode_all, fit_growth_model

MODEL_NAME = "growth"
MODELS_DIR = "models"


class NoTrainingSet(RuntimeError):
    pass


@dataclass
class TrainingData:
    examples: pl.DataFrame
    traces: pl.DataFrame
    training_set_sha256: str
    traces_sha256: str
    measured_layers: int = 0  # with an XRD thickness (as the training_set asset counts them)


@dataclass
class Verdict:
    name: str
    version: int
    decision: GateDecision
    metrics: dict[str, Any] = field(default_factory=dict)  # candidate, physics, champion


def load_training_data(ctx: IngestContext) -> TrainingData:
    path = ctx.lake.dataset_path(TRAINING_DATASET, TRAINING_NAME)
    traces_path = ctx.lake.dataset_path(TRAINING_DATASET, TRACES_NAME)
    if not path.exists():
        raise NoTrainingSet(
            f"no training set at {path}: build it first (`epi-ml pipeline`, or materialize "
            "`training_set` in the Dagster UI)"
        )
    frame = pl.read_parquet(path)
    stale = frame.filter(pl.col("features_version") != FEATURES_VERSION).height
    if stale:
        raise NoTrainingSet(
            f"{path} holds {stale} layers of another features version: materialize training_set "
            "again (`epi-ml pipeline` or the Dagster UI); it rebuilds those runs' features"
        )
    traces = pl.read_parquet(traces_path) if traces_path.exists() else pl.DataFrame()
    return TrainingData(
        select_examples(frame), traces, file_sha256(path),
        file_sha256(traces_path) if traces_path.exists() else "",
        frame.filter(pl.col("xrd_thickness_nm").is_not_null()).height,
    )  # fmt: skip


def code_version() -> str:
    """The package version and, in a git checkout, the commit (+dirty)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{commit}" if commit else __version__


def lineage_of(ctx: IngestContext, data: TrainingData, split: Split) -> dict[str, Any]:
    """Runs, raw files (SHA-256 -> path as landed) and datasets the model was trained on."""
    runs = sorted(data.examples.get_column("run_id").unique().to_list())
    files: dict[str, str] = {}
    for run_id in runs:
        path = ctx.lake.run_dir(run_id) / "inputs.json"
        if path.exists():
            for item in json.loads(path.read_text()).get("inputs", []):
                files[item["sha256"]] = item.get("path") or item.get("archive_path") or ""
    return {
        "runs": runs,
        "files": files,
        "training_set_sha256": data.training_set_sha256,
        "traces_sha256": data.traces_sha256,
        "training_set_measured_layers": data.measured_layers,
        "features_version": FEATURES_VERSION,
        "layers": {**split.sizes(), "total": data.examples.height},
        "epochs": {
            part: sorted(data.examples[getattr(split, part)].get_column("epoch").unique().to_list())
            for part in ("train", "validation", "calibration", "evaluation")
        },
    }


def train_candidate(
    ctx: IngestContext,
    *,
    name: str = MODEL_NAME,
    seed: int = 0,
    device: str = "auto",
    search_trials: int = 6,
    search_timeout_s: float | None = 300,
    members: int | None = None,
    hp: HyperParameters | None = None,
) -> registry.RegisteredModel:
    """Fit on the training set, save the artifact, register it (the challenger). `hp`: the
    starting hyper-parameters (the search explores around them), `members` overrides theirs."""
    data = load_training_data(ctx)
    hp = hp or HyperParameters()
    hp = hp if members is None else replace(hp, members=members)
    result = fit_growth_model(data.examples, data.traces, hp, seed=seed, device=device,
                              search_trials=search_trials, search_timeout_s=search_timeout_s)  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    directory = ctx.settings.home / MODELS_DIR / name / f"{stamp}-{data.training_set_sha256[:12]}"
    model = result.model
    model.metadata.update({"features_version": FEATURES_VERSION, "code_version": code_version()})
    model.save(directory)
    metrics = _own_metrics(model, data, result.split)
    registered = registry.register_model(
        ctx.engine, name=name, kind=KIND, artifact_dir=directory, device=result.device,
        features_version=FEATURES_VERSION, code_version=code_version(),
        hyperparameters={**result.model.hp.to_json(), "search": result.search},
        metrics=metrics, lineage=lineage_of(ctx, data, result.split),
    )  # fmt: skip
    registry.set_challenger(ctx.engine, name, registered.version)
    return registry.get_model(ctx.engine, name, registered.version)


def _own_metrics(model: GrowthModel, data: TrainingData, split: Split) -> dict[str, Any]:
    rows = split.evaluation
    examples = data.examples[rows]
    traces = traces_for(examples, data.traces)
    in_situ, recipe = encode_all(model.spec, examples, traces)
    return {
        "evaluation": evaluate(examples, model.predict(examples, in_situ)),
        "evaluation_recipe": evaluate(examples, model.predict(examples, recipe))["overall"],
        "training": {k: v for k, v in model.metadata.items() if k in (
            "device", "mixed_precision", "epochs", "training_seconds", "samples_per_s", "split")},
    }  # fmt: skip


def load_model(model: registry.RegisteredModel, device: str = "auto") -> GrowthModel:
    registry.verify_artifact(model)
    return GrowthModel.load(Path(model.artifact_path or ""), device=device)


def evaluate_candidate(
    ctx: IngestContext,
    version: int,
    *,
    name: str = MODEL_NAME,
    thresholds: GateThresholds | None = None,
) -> Verdict:
    """The gate on the evaluation epochs of the current training set: candidate, physics
    baseline and champion on the same layers. Appends gate_pass / gate_fail to the ledger."""
    thresholds = thresholds or GateThresholds()
    candidate = registry.get_model(ctx.engine, name, version)
    data = load_training_data(ctx)
    split = split_by_epoch(data.examples)
    examples = data.examples[split.evaluation]
    traces = traces_for(examples, data.traces)
    physics = PhysicsBaseline.fit(data.examples, split)
    metrics: dict[str, Any] = {
        "candidate": _evaluate_model(load_model(candidate), examples, traces),
        "physics": evaluate(examples, physics.predict(examples)),
        "champion": None,
        "thresholds": thresholds_dict(thresholds),
        "evaluation_layers": examples.height,
    }
    champion = registry.model_for_alias(ctx.engine, name, registry.CHAMPION)
    notes = []
    if candidate.lineage.get("training_set_sha256") not in (None, data.training_set_sha256):
        notes.append(f"v{version} was trained on an earlier training set; evaluated on the current one")
    if champion is not None and champion.version != version:
        if champion.features_version != FEATURES_VERSION:
            notes.append(f"champion v{champion.version} reads features version "
                         f"{champion.features_version}: compared with the physics baseline only")  # fmt: skip
        else:
            metrics["champion"] = _evaluate_model(load_model(champion), examples, traces)
            metrics["champion_version"] = champion.version
    decision = judge(metrics["candidate"], metrics["physics"], metrics["champion"], thresholds)
    for note in notes:
        decision.checks.append({"check": "champion_comparable", "passed": True, "reason": f"note: {note}"})
    registry.record_decision(
        ctx.engine, name=name, version=version,
        action="gate_pass" if decision.passed else "gate_fail", passed=decision.passed,
        reasons=decision.reasons, metrics=_ledger_metrics(metrics),
        previous_version=champion.version if champion else None,
    )  # fmt: skip
    return Verdict(name, version, decision, metrics)


def _evaluate_model(model: GrowthModel, examples: pl.DataFrame, traces: Any) -> dict[str, Any]:
    in_situ, _ = encode_all(model.spec, examples, traces)
    return evaluate(examples, model.predict(examples, in_situ))


def _ledger_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """What the ledger keeps of an evaluation: the overall numbers of each model."""
    return {
        k: (v["overall"] if isinstance(v, dict) and "overall" in v else v)
        for k, v in metrics.items()
    }


def promote_if_passed(ctx: IngestContext, verdict: Verdict, decided_by: str = "gate") -> bool:
    if not verdict.decision.passed:
        return False
    registry.promote(ctx.engine, verdict.name, verdict.version, decided_by=decided_by,
                     reasons=verdict.decision.reasons, metrics=_ledger_metrics(verdict.metrics))  # fmt: skip
    return True
