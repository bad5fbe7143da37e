"""Fitting a growth model: split by calibration epoch, scale, search, train the ensemble,
calibrate its intervals.

    result = fit_growth_model(examples, traces, search_trials=8)
    result.model.predict(...)            # epi_ml.models.predictor.GrowthModel

The hyper-parameter search (Optuna, TPE sampler with a median pruner) trains one member per
trial on the fitting epochs and scores it on the validation epochs, pruning trials whose
validation loss lags; its budget is a number of trials and a time limit. The ensemble then
trains with the best parameters, members seeded `seed·1000 + i`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from epi_ml.device import describe_device, select_device
from epi_ml.models.data import Encoded, InputSpec, Split, split_by_epoch, traces_for
from epi_ml.models.hybrid import HyperParameters, TrainReport, train_member
from epi_ml.models.predictor import GrowthModel

log = logging.getLogger(__name__)
SEARCH_EPOCHS = 150  # a trial's epoch budget: enough to rank, short enough to try several


@dataclass
class TrainingResult:
    model: GrowthModel
    split: Split
    report: TrainReport
    device: str
    search: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.report.seconds


def encode_all(spec: InputSpec, examples: pl.DataFrame, traces: np.ndarray) -> tuple[Encoded, Encoded]:
    """The layers as grown (with their sensors) and as recipes (context only)."""
    return spec.encode(examples, traces), spec.encode(examples, traces, in_situ=False)


def fit_growth_model(
    examples: pl.DataFrame,
    traces: pl.DataFrame,
    hp: HyperParameters | None = None,
    seed: int = 0,
    device: str = "auto",
    search_trials: int = 0,
    search_timeout_s: float | None = None,
    coverage: float = 0.9,
) -> TrainingResult:
    hp = hp or HyperParameters()
    split = split_by_epoch(examples)
    trace_array = traces_for(examples, traces)
    spec = InputSpec.fit(examples[split.train], trace_array[split.train])
    in_situ, recipe = encode_all(spec, examples, trace_array)
    target = select_device(device)
    train, validation = in_situ.take(split.train), in_situ.take(split.validation)

    search: dict[str, Any] = {}
    if search_trials > 0:
        hp, search = search_hyperparameters(spec, train, validation, hp, seed, target, search_trials, search_timeout_s)
    report = TrainReport()
    members = [
        train_member(spec, train, validation, hp, seed * 1000 + i, target, report)[0]
        for i in range(hp.members)
    ]
    model = GrowthModel(spec, hp, members)
    # The conformal calibration pools the calibration and the validation epochs: the validation
    # epochs only chose each member's stopping epoch (and the search's parameters), which barely
    # bends their scores, and twice the layers make the quantile far less noisy (bench_models).
    conformal = np.concatenate([split.validation, split.calibration])
    model.calibrate(examples[conformal], in_situ.take(conformal), recipe.take(conformal), coverage)
    model.metadata.update(
        {
            "device": describe_device(target),
            "mixed_precision": "bfloat16" if target.type == "cuda" else None,
            "seed": seed,
            "split": split.sizes(),
            "epochs": report.epochs,
            "training_seconds": round(report.seconds, 3),
            "samples_per_s": round(report.samples_per_s, 1),
            "search": search,
        }
    )
    return TrainingResult(model, split, report, describe_device(target), search)


def search_hyperparameters(
    spec: InputSpec,
    train: Encoded,
    validation: Encoded,
    base: HyperParameters,
    seed: int,
    device: Any,
    trials: int,
    timeout_s: float | None,
) -> tuple[HyperParameters, dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        hp = replace(
            base,
            hidden=trial.suggest_categorical("hidden", [16, 32, 64]),
            trace_channels=trial.suggest_categorical("trace_channels", [8, 16]),
            dropout=trial.suggest_float("dropout", 0.1, 0.4),
            learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
            weight_decay=trial.suggest_float("weight_decay", 1e-3, 0.3, log=True),
            max_epochs=min(base.max_epochs, SEARCH_EPOCHS),
        )

        def on_epoch(epoch: int, loss: float) -> None:
            trial.report(loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        return train_member(spec, train, validation, hp, seed * 1000 + 999, device, on_epoch=on_epoch)[1]

    study = optuna.create_study(
        direction="minimize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=20),
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, timeout=timeout_s)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return base, {"trials": len(study.trials), "completed": 0}
    best = study.best_trial
    hp = replace(base, **best.params)
    summary = {
        "trials": len(study.trials),
        "completed": len(done),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        "best_validation_loss": round(float(best.value), 5),
        "best": best.params,
        "seconds": round(time.perf_counter() - started, 1),
    }
    log.info("hyper-parameter search: %s", summary)
    return hp, summary
