"""The growth models on synthetic training sets: the network learns, the intervals cover, the gate
refuses a worse candidate, the registry keeps the lineage, artifacts load back safely.

Every training set here is made in the test (`synthetic_training_set`): layers of GaAs, AlGaAs
and InGaAs over 16+ calibration epochs, with a known thickness residual of chosen feature columns
and of the Ga.T_dev sensor trace. The networks are small and run on one CPU thread (torch's thread
pool only costs time for networks this size, and a lot on a shared 2-core machine).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import pickle
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch
from model_helpers import (
    CPU,
    QUICK,
    SMALL,
    T0,
    TOOL,
    known_residual,
    synthetic_training_set,
    tiny_model,
    write_training_set,
)

from epi_ml import __version__
from epi_ml.device import describe_device, select_device
from epi_ml.features.build import TRACES_NAME, TRAINING_DATASET
from epi_ml.features.core import FEATURES_VERSION
from epi_ml.features.traces import TRACE_BINS, TRACE_NAMES
from epi_ml.ingest.batch import open_context
from epi_ml.models import lifecycle, registry
from epi_ml.models.baselines import PhysicsBaseline, residual_frame
from epi_ml.models.conformal import conformal_quantile, empirical_coverage
from epi_ml.models.data import InputSpec, select_examples, split_by_epoch, traces_for
from epi_ml.models.gate import GateThresholds, judge
from epi_ml.models.hybrid import HybridResidualNet, HyperParameters, masked_loss, train_member
from epi_ml.models.metrics import evaluate
from epi_ml.models.predictor import KIND, GrowthModel
from epi_ml.models.train import encode_all, fit_growth_model
from epi_ml.physics import pl_peak_nm


def thickness_mape(examples: pl.DataFrame, residuals: pl.DataFrame) -> float:
    return evaluate(examples, residuals)["overall"]["thickness"]["mape_pct"]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def known() -> SimpleNamespace:
    """A model fitted to the known residual (no noise), with traces."""
    frame, traces = synthetic_training_set(480, seed=1, residual=known_residual)
    examples = select_examples(frame)
    result = fit_growth_model(examples, traces, SMALL, seed=0, device="cpu")
    return SimpleNamespace(frame=frame, traces=traces, examples=examples, result=result)


# ---------------------------------------------------------------------------------------------
# Data
def test_split_keeps_epochs_whole_and_in_time_order() -> None:
    frame, _ = synthetic_training_set(240, seed=2, with_traces=False)
    examples = select_examples(frame)
    assert examples.get_column("epoch").n_unique() == 16
    split = split_by_epoch(examples)
    parts = [split.train, split.validation, split.calibration, split.evaluation]
    assert sorted(np.concatenate(parts).tolist()) == list(range(examples.height))
    epochs = [set(examples[p].get_column("epoch").to_list()) for p in parts]
    assert [len(e) for e in epochs] == [9, 2, 3, 2]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not epochs[i] & epochs[j]
            assert examples[parts[i]]["start"].max() < examples[parts[j]]["start"].min()
    with pytest.raises(ValueError, match="calibration epoch"):
        split_by_epoch(examples.filter(pl.col("start") < T0 + timedelta(days=6)))


def test_traces_for_places_channels_and_bins() -> None:
    frame, traces = synthetic_training_set(48, seed=3)
    examples = select_examples(frame).reverse()  # rows in another order than the traces
    array = traces_for(examples, traces)
    assert array.shape == (examples.height, len(TRACE_NAMES), TRACE_BINS)
    row = examples.row(5, named=True)
    mine = (pl.col("run_id") == row["run_id"]) & (pl.col("layer") == row["layer"])
    mine &= pl.col("channel") == "Ga.T_dev"
    expected = traces.filter(mine).sort("bin").get_column("value").to_numpy()
    np.testing.assert_allclose(array[5, TRACE_NAMES.index("Ga.T_dev")], expected, rtol=1e-6)
    assert not array[:, TRACE_NAMES.index("Al.T_dev")].any()  # absent channel: zeros
    assert not traces_for(examples, pl.DataFrame()).any()


# ---------------------------------------------------------------------------------------------
# 1. The network can overfit one batch
def test_network_overfits_one_batch() -> None:
    frame, traces = synthetic_training_set(96, seed=4)
    examples = select_examples(frame).head(32)
    array = traces_for(examples, traces)
    spec = InputSpec.fit(examples, array)
    batch = spec.encode(examples, array)
    targets = np.random.default_rng(0).normal(0, 1, (32, 2)).astype(np.float32)
    targets[(examples["material"] == "GaAs").to_numpy(), 1] = np.nan  # binaries: no composition
    batch.targets = targets
    hp = HyperParameters(
        hidden=32, trace_channels=8, dropout=0.0, weight_decay=0.0, learning_rate=1e-2,
        batch_size=32, max_epochs=150, patience=150, members=1,
    )  # fmt: skip
    arrays = (batch.context, batch.in_situ, batch.traces, batch.has_in_situ)
    inputs = [torch.as_tensor(x) for x in arrays]

    untrained = HybridResidualNet(spec.n_context, spec.n_in_situ, len(spec.trace_names), hp).eval()
    with torch.no_grad():
        assert not untrained(*inputs).any()  # the output layer starts at zero: physics
        start = float(masked_loss(untrained(*inputs), torch.as_tensor(targets), hp.huber_delta))
    assert start > 0.3

    model, best = train_member(spec, batch, batch, hp, seed=0, device=CPU)
    with torch.no_grad():
        final = float(masked_loss(model(*inputs), torch.as_tensor(targets), hp.huber_delta))
    assert final == pytest.approx(best, rel=1e-4)  # the best state is the one returned
    assert final < 0.05 * start, (start, final)


def test_masked_loss_ignores_unmeasured_targets() -> None:
    predicted = torch.tensor([[0.5, 100.0], [1.0, 3.0]], requires_grad=True)
    targets = torch.tensor([[0.0, math.nan], [1.0, math.nan]])
    loss = masked_loss(predicted, targets, delta=2.0)
    assert float(loss.detach()) == pytest.approx(0.5 * 0.5**2 / 2)  # mean over the two measured
    loss.backward()
    assert predicted.grad is not None and predicted.grad[:, 1].abs().sum() == 0
    nothing = masked_loss(predicted, torch.full((2, 2), math.nan), delta=2.0)
    assert float(nothing.detach()) == 0.0


# ---------------------------------------------------------------------------------------------
# 2. It learns a known function, traces included
def test_learns_known_residual_and_uses_the_traces(known: SimpleNamespace) -> None:
    examples, traces, result = known.examples, known.traces, known.result
    model, split = result.model, result.split
    held = examples[split.evaluation]
    array = traces_for(held, traces)
    in_situ, recipe = encode_all(model.spec, held, array)
    zeroed = model.spec.encode(held, np.zeros_like(array))

    physics = thickness_mape(held, PhysicsBaseline.fit(examples, split).predict(held))
    hybrid_mape = thickness_mape(held, model.predict(held, in_situ))
    without_traces = thickness_mape(held, model.predict(held, zeroed))
    as_recipe = thickness_mape(held, model.predict(held, recipe))

    assert physics > 1.0  # the residual is large enough to matter
    assert hybrid_mape < 0.3 * physics, (hybrid_mape, physics)
    assert hybrid_mape < 0.5 * without_traces, (hybrid_mape, without_traces)
    # trained with the in-situ group dropped at random: the context alone still helps
    assert as_recipe < physics, (as_recipe, physics)
    assert model.predict(held, recipe).get_column("mode").unique().to_list() == ["recipe"]
    assert result.report.epochs and len(model.members) == SMALL.members


def test_binary_layers_get_no_composition_and_a_pl_peak(known: SimpleNamespace) -> None:
    held = known.examples[known.result.split.evaluation]
    data = known.result.model.spec.encode(held, traces_for(held, known.traces))
    gaas = known.result.model.predict(held, data).filter(pl.col("material") == "GaAs")
    assert gaas.height > 0
    assert gaas["composition"].null_count() == gaas.height
    gaas_peak = float(pl_peak_nm("GaAs", 0.0))
    np.testing.assert_allclose(gaas["pl_peak_nm"].to_numpy(), gaas_peak, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# 3. Conformal coverage
@pytest.mark.parametrize("n", [10, 50])
def test_conformal_quantile_covers_fresh_points(n: int) -> None:
    rng = np.random.default_rng(n)
    covered = []
    for _ in range(2000):
        q = conformal_quantile(np.abs(rng.normal(0, 1, n)), 0.9)
        fresh = rng.normal(0, 1, 20)
        covered.append(empirical_coverage(fresh, -q * np.ones(20), q * np.ones(20)))
    expected = math.ceil((n + 1) * 0.9) / (n + 1)  # 0.909 and 0.902: the finite-sample rule
    assert np.mean(covered) == pytest.approx(0.90, abs=0.02)
    assert np.mean(covered) == pytest.approx(expected, abs=0.01)


def test_conformal_quantile_finite_sample_rule() -> None:
    assert conformal_quantile(np.arange(1.0, 6.0), 0.9) == math.inf  # n = 5: rank 6 > 5
    assert conformal_quantile(np.arange(1.0, 9.0), 0.9) == math.inf  # n = 8: rank 9 > 8
    assert conformal_quantile(np.arange(1.0, 10.0), 0.9) == 9.0  # n = 9: rank 9, the largest
    assert conformal_quantile(np.arange(1.0, 20.0), 0.9) == 18.0  # n = 19: rank 18
    scores = np.array([*np.arange(1.0, 10.0), math.nan, math.inf])
    assert conformal_quantile(scores, 0.9) == 9.0  # non-finite scores are not counted
    assert conformal_quantile(np.array([]), 0.9) == math.inf
    with pytest.raises(ValueError, match="coverage"):
        conformal_quantile(np.ones(10), 1.0)


def test_growth_model_intervals_cover_the_evaluation_layers() -> None:
    frame, traces = synthetic_training_set(
        2000, epochs=20, seed=7, with_traces=False, noise=0.01,
        residual=lambda a, b, c: 0.01 * np.tanh(a),
    )  # fmt: skip
    examples = select_examples(frame)
    hp = replace(SMALL, batch_size=256)
    result = fit_growth_model(examples, traces, hp, seed=1, device="cpu")
    model, split = result.model, result.split
    held = examples[split.evaluation]
    assert held.height >= 250
    in_situ, recipe = encode_all(model.spec, held, traces_for(held, traces))
    assert math.isfinite(model.conformal.quantile["in_situ"]["thickness"])
    thick = evaluate(held, model.predict(held, in_situ))["overall"]["thickness"]
    assert 0.85 <= thick["coverage"] <= 0.95, thick
    recipe_thick = evaluate(held, model.predict(held, recipe))["overall"]["thickness"]
    assert 0.80 <= recipe_thick["coverage"] <= 0.97, recipe_thick


# ---------------------------------------------------------------------------------------------
# 4. The gate
@pytest.fixture(scope="module")
def gate_metrics() -> SimpleNamespace:
    """Metrics (metrics.evaluate) on the evaluation layers of a synthetic set: the physics
    baseline, a champion with small errors, a candidate = physics + noise, a better one."""
    frame, _ = synthetic_training_set(480, seed=5, residual=known_residual, with_traces=False)
    examples = select_examples(frame)
    split = split_by_epoch(examples)
    held = examples[split.evaluation]
    truth = np.stack(
        [held["r_thickness"].to_numpy(), held["r_composition"].fill_null(np.nan).to_numpy()], axis=1
    )
    rng = np.random.default_rng(0)

    def residuals(mean: np.ndarray, sd: tuple[float, float]) -> pl.DataFrame:
        predicted = mean + rng.normal(0, 1, mean.shape) * np.array(sd)
        half = np.nanquantile(np.abs(predicted - truth), 0.9, axis=0)  # intervals that cover 90 %
        return residual_frame(held, predicted, np.tile(half, (len(held), 1)))

    physics = evaluate(held, PhysicsBaseline.fit(examples, split).predict(held))
    return SimpleNamespace(
        held=held,
        physics=physics,
        champion=evaluate(held, residuals(truth, (0.003, 0.001))),
        worse=evaluate(held, residuals(np.zeros_like(truth), (0.004, 0.002))),
        better=evaluate(held, residuals(truth, (0.001, 0.0005))),
    )


def test_gate_refuses_a_worse_candidate_and_says_why(gate_metrics: SimpleNamespace) -> None:
    g, t = gate_metrics, GateThresholds()
    decision = judge(g.worse, g.physics, g.champion, t)
    assert not decision.passed
    failed = {c["check"]: c for c in decision.checks if not c["passed"]}
    assert "beats_physics" in failed
    assert any("physics baseline" in r for r in decision.failures)
    # per slice, with the numbers it was decided on
    key = "GaAs"
    check = failed[f"vs_champion:material={key}:thickness_mape_pct"]
    ours = g.worse["slices"]["material"][key]["thickness"]
    theirs = g.champion["slices"]["material"][key]["thickness"]
    assert check["value"] == ours["mape_pct"]
    limit = theirs["mape_pct"] * (1 + t.slice_tolerance) + t.slice_allowance_mape_pct
    assert check["limit"] == pytest.approx(limit)
    assert check["reason"].startswith("FAIL: material GaAs: thickness mape_pct")
    assert f"{ours['mape_pct']:.4g}" in check["reason"]
    assert f"{theirs['mape_pct']:.4g}" in check["reason"] and f"{limit:.4g}" in check["reason"]
    assert f"{ours['n']} layers" in check["reason"]
    assert "vs_champion:overall=all:thickness_mape_pct" in failed
    assert any(name.startswith("vs_champion:epoch=") for name in failed)
    # without a champion it still fails on the physics baseline
    assert not judge(g.worse, g.physics, None, t).passed


def test_gate_passes_a_better_candidate(gate_metrics: SimpleNamespace) -> None:
    g = gate_metrics
    decision = judge(g.better, g.physics, g.champion, GateThresholds())
    assert decision.passed, decision.failures
    names = [c["check"] for c in decision.checks]
    overall = {"thickness_mape_pct", "composition_mae", "thickness_coverage", "beats_physics"}
    assert overall <= set(names)
    slices = [n for n in names if n.startswith("vs_champion:")]
    assert len(slices) >= 10  # overall, tool, 3 materials, the epochs; thickness and composition
    assert all(r.startswith("ok: ") for r in decision.reasons)
    # the champion itself against a better one is refused
    assert not judge(g.champion, g.physics, g.better, GateThresholds()).passed


def test_gate_decisions_in_the_ledger(gate_metrics: SimpleNamespace, tmp_path: Path) -> None:
    g = gate_metrics
    ctx = open_context()
    versions = []
    for i in (1, 2):
        directory = tiny_model(g.held, seed=i).save(tmp_path / f"v{i}")
        versions.append(registry.register_model(
            ctx.engine, name="growth", kind=KIND, artifact_dir=directory, device="cpu",
            features_version=FEATURES_VERSION, code_version="test", hyperparameters={},
            metrics={}, lineage={"runs": []},
        ).version)  # fmt: skip
    assert versions == [1, 2]
    good = judge(g.champion, g.physics, None)
    bad = judge(g.worse, g.physics, None)
    assert good.passed and not bad.passed
    registry.record_decision(
        ctx.engine, name="growth", version=1, action="gate_pass", passed=True,
        reasons=good.reasons, metrics={"candidate": g.champion["overall"]},
    )  # fmt: skip
    registry.promote(ctx.engine, "growth", 1, reasons=good.reasons)
    registry.record_decision(
        ctx.engine, name="growth", version=2, action="gate_fail", passed=False,
        reasons=bad.reasons, metrics={"candidate": g.worse["overall"]}, previous_version=1,
    )  # fmt: skip
    rows = registry.ledger(ctx.engine, "growth")
    assert [(r["version"], r["action"], r["passed"]) for r in rows] == [
        (1, "gate_pass", True), (1, "promote", None), (2, "gate_fail", False),
    ]  # fmt: skip
    failed = rows[-1]
    assert failed["reasons"] == bad.reasons and any(r.startswith("FAIL") for r in failed["reasons"])
    assert failed["previous_version"] == 1
    assert failed["metrics"]["candidate"]["thickness"]["mape_pct"] == pytest.approx(
        g.worse["overall"]["thickness"]["mape_pct"]
    )
    assert registry.model_for_alias(ctx.engine, "growth", registry.CHAMPION).version == 1


def test_evaluate_candidate_refuses_a_model_of_shuffled_targets(
    known: SimpleNamespace, tmp_path: Path
) -> None:
    ctx = open_context()
    write_training_set(ctx, known.frame, known.traces)
    # the same layers with the measurements shuffled between them: nothing left to learn
    order = np.random.default_rng(0).permutation(known.frame.height)
    ratio = (known.frame["xrd_thickness_nm"] / known.frame["pred_thickness_nm"]).to_numpy()[order]
    shuffled = known.frame.with_columns(xrd_thickness_nm=pl.col("pred_thickness_nm") * ratio)
    noise_model = fit_growth_model(
        select_examples(shuffled), known.traces, SMALL, seed=0, device="cpu"
    ).model

    for i, model in enumerate((known.result.model, noise_model), start=1):
        registry.register_model(
            ctx.engine, name="growth", kind=KIND, artifact_dir=model.save(tmp_path / f"v{i}"),
            device="cpu", features_version=FEATURES_VERSION, code_version="test",
            hyperparameters=model.hp.to_json(), metrics={}, lineage={},
        )  # fmt: skip
    # a noise-free synthetic set: the champion's intervals are narrow; judge accuracy here
    lenient = GateThresholds(coverage_low=0.5, coverage_high=1.0)
    first = lifecycle.evaluate_candidate(ctx, 1, thresholds=lenient)
    assert first.decision.passed, first.decision.failures
    assert lifecycle.promote_if_passed(ctx, first)

    verdict = lifecycle.evaluate_candidate(ctx, 2, thresholds=lenient)
    assert not verdict.decision.passed
    assert verdict.metrics["champion_version"] == 1
    assert any("vs champion" in r for r in verdict.decision.failures)
    assert not lifecycle.promote_if_passed(ctx, verdict)
    assert registry.model_for_alias(ctx.engine, "growth", registry.CHAMPION).version == 1

    rows = registry.ledger(ctx.engine, "growth")
    assert [(r["version"], r["action"]) for r in rows] == [
        (1, "gate_pass"), (1, "promote"), (2, "gate_fail"),
    ]  # fmt: skip
    last = rows[-1]
    assert last["passed"] is False and last["reasons"] and last["previous_version"] == 1
    assert any(r.startswith("FAIL") for r in last["reasons"])
    assert set(last["metrics"]) >= {"candidate", "physics", "champion"}
    mape = {k: last["metrics"][k]["thickness"]["mape_pct"] for k in ("candidate", "champion")}
    assert mape["candidate"] > mape["champion"]


# ---------------------------------------------------------------------------------------------
# 5. Training a candidate: the registry row and its lineage
def test_train_candidate_registers_lineage() -> None:
    ctx = open_context()
    frame, traces = synthetic_training_set(240, seed=8, residual=known_residual)
    unmeasured = frame.head(3).with_columns(
        run_id=pl.lit(f"{TOOL}-20260401-01"), xrd_thickness_nm=None, xrd_composition=None
    )
    interrupt = frame.head(1).with_columns(kind=pl.lit("interrupt"), layer=pl.lit(99, pl.Int64))
    frame = pl.concat([frame, unmeasured, interrupt])
    path = write_training_set(ctx, frame, traces)
    examples = select_examples(frame)

    model = lifecycle.train_candidate(ctx, search_trials=2, members=2, device="auto", hp=QUICK)

    assert (model.name, model.version, model.kind) == ("growth", 1, KIND)
    assert model.aliases == (registry.CHALLENGER,)
    assert registry.model_for_alias(ctx.engine, "growth", registry.CHALLENGER).version == 1
    assert registry.ledger(ctx.engine, "growth")[-1]["action"] == "challenger"
    assert model.device == describe_device(select_device("auto"))
    assert model.features_version == FEATURES_VERSION
    assert model.code_version is not None and model.code_version.startswith(__version__)
    hp = model.hyperparameters
    assert hp["members"] == 2 and hp["search"]["trials"] == 2 and "completed" in hp["search"]
    split = split_by_epoch(examples)
    thick = model.metrics["evaluation"]["overall"]["thickness"]
    assert thick["n"] == split.evaluation.size and math.isfinite(thick["mape_pct"])
    assert model.metrics["evaluation_recipe"]["thickness"]["n"] == split.evaluation.size

    lineage = model.lineage
    runs = sorted(examples.get_column("run_id").unique().to_list())
    assert lineage["runs"] == runs and f"{TOOL}-20260401-01" not in runs
    assert lineage["training_set_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    traces_path = ctx.lake.dataset_path(TRAINING_DATASET, TRACES_NAME)
    assert lineage["traces_sha256"] == hashlib.sha256(traces_path.read_bytes()).hexdigest()
    assert lineage["features_version"] == FEATURES_VERSION
    assert lineage["layers"] == {**split.sizes(), "total": examples.height}
    assert len(lineage["epochs"]["evaluation"]) == 2

    registry.verify_artifact(model)
    loaded = lifecycle.load_model(model, device="cpu")
    assert len(loaded.members) == 2 and loaded.metadata["features_version"] == FEATURES_VERSION


# ---------------------------------------------------------------------------------------------
# 6. Artifacts
class _Payload:
    """Unpickling this touches a file: what weights_only must refuse to do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_saved_model_predicts_the_same_and_refuses_pickles(
    known: SimpleNamespace, tmp_path: Path
) -> None:
    model = known.result.model
    held = known.examples[known.result.split.evaluation]
    array = traces_for(held, known.traces)
    directory = model.save(tmp_path / "artifact")

    loaded = GrowthModel.load(directory, device="cpu")
    assert loaded.spec == model.spec and loaded.hp == model.hp
    assert loaded.conformal == model.conformal
    for data in encode_all(loaded.spec, held, array):
        before, after = model.predict(held, data), loaded.predict(held, data)
        assert before.columns == after.columns
        for name, column in before.to_dict().items():
            if column.dtype.is_numeric():
                np.testing.assert_allclose(
                    after[name].to_numpy(), column.to_numpy(), rtol=1e-6, err_msg=name
                )
            else:
                assert after[name].to_list() == column.to_list()

    # an artifact saved before the score was recorded keeps its intervals: spread + floor
    legacy = tmp_path / "legacy"
    shutil.copytree(directory, legacy)
    config = json.loads((legacy / "config.json").read_text())
    assert config["conformal"].pop("score") == "max"
    config["conformal"].pop("group_quantile")  # nor per-material quantiles: every layer pooled
    (legacy / "config.json").write_text(json.dumps(config))
    old = GrowthModel.load(legacy, device="cpu")
    assert old.conformal.score == "sum" and old.conformal.group_quantile == {}
    in_situ = encode_all(old.spec, held, array)[0]
    mean, spread = old.residuals(in_situ)
    q, floor = old.conformal.quantile["in_situ"]["thickness"], old.conformal.floor["in_situ"]["thickness"]
    scale = old.spec.target_scale["thickness"]
    np.testing.assert_allclose(old.predict(held, in_situ)["r_thickness_upper"].to_numpy(),
                               (mean[:, 0] + q * (spread[:, 0] + floor)) * scale, rtol=1e-5)  # fmt: skip

    ctx = open_context()
    registered = registry.register_model(
        ctx.engine, name="growth", kind=KIND, artifact_dir=directory, device="cpu",
        features_version=FEATURES_VERSION, code_version="test", hyperparameters={}, metrics={},
        lineage={},
    )  # fmt: skip
    registry.verify_artifact(registered)
    assert registered.artifact_sha256 == registry.artifact_digest(directory)

    marker = tmp_path / "unpickled"
    torch.save({"member0.head.weight": _Payload(marker)}, directory / "weights.pt")
    with pytest.raises(registry.ArtifactMismatch, match="changed"):
        registry.verify_artifact(registered)
    with pytest.raises(pickle.UnpicklingError):
        GrowthModel.load(directory, device="cpu")
    with pytest.raises(pickle.UnpicklingError):  # a plain pickle, not torch's zip format
        (directory / "weights.pt").write_bytes(pickle.dumps(_Payload(marker)))
        GrowthModel.load(directory, device="cpu")
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# 7. Devices
def test_select_device_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match="'cuda:1'"):
        select_device("cuda:1")
    assert select_device("auto") == CPU and select_device("cpu") == CPU
    assert describe_device(CPU).startswith("cpu (")


def test_select_device_as_the_machine_has_it() -> None:
    if torch.cuda.is_available():
        assert select_device("cuda").type == "cuda" and select_device("auto").type == "cuda"
    else:
        with pytest.raises(RuntimeError, match="EPI_ML_DEVICE=auto or cpu"):
            select_device("cuda")


def test_gate_refuses_a_coverage_only_when_it_is_shown_to_be_outside_the_band(
    gate_metrics: SimpleNamespace,
) -> None:
    g = gate_metrics

    def coverage_check(share: float, n: int) -> dict:
        candidate = copy.deepcopy(g.better)
        candidate["overall"]["thickness"] |= {"coverage": share, "n": n}
        checks = judge(candidate, g.physics, None, GateThresholds()).checks
        return next(c for c in checks if c["check"] == "thickness_coverage")

    assert coverage_check(58 / 60, 60)["passed"]  # 96.7 %: within noise of 90 % on 60 layers
    refused = coverage_check(40 / 60, 60)  # 66.7 %: too narrow intervals, beyond doubt
    assert not refused["passed"] and "95 % interval" in refused["reason"]
    assert not coverage_check(1.0, 300)["passed"]  # every layer inside: far too wide intervals
    assert coverage_check(0.9, 100)["passed"]
