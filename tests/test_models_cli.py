"""The model commands and the Dagster retrain job, on a synthetic training set in the lake (the
models' numbers are tested in test_models.py), and `epi-ml predict` on a home with a real twin
campaign ingested (calibrations, refills, runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import dagster as dg
import pytest
import torch
from model_helpers import QUICK, known_residual, synthetic_training_set, write_training_set
from typer.testing import CliRunner

from epi_ml.cli import app
from epi_ml.ingest.batch import open_context
from epi_ml.models import lifecycle, registry

runner = CliRunner()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Small networks on one thread: the commands' behaviour, not the model's accuracy."""
    monkeypatch.setattr(lifecycle, "HyperParameters", lambda: QUICK)  # the CLI takes no hp
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def with_training_set(noise: float = 0.002) -> None:
    frame, traces = synthetic_training_set(480, seed=3, residual=known_residual, noise=noise)
    write_training_set(open_context(), frame, traces)


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_train_without_training_set_says_what_to_do() -> None:
    code, out = invoke("train", "--trials", "0")
    assert code == 3
    assert "no training set" in out and "epi-ml pipeline" in out


def test_train_promote_rollback_and_the_ledger() -> None:
    with_training_set()
    code, out = invoke("train", "--trials", "1")
    assert code == 0, out
    assert "growth v1: promoted to champion" in out
    assert "ok: thickness MAPE" in out and "ok: beats_physics" not in out  # reasons, in words

    code, out = invoke("models", "--json")
    assert code == 0
    (v1,) = json.loads(out)
    assert v1["version"] == 1 and v1["aliases"] == ["champion"]
    assert v1["kind"] == "hybrid_torch" and v1["device"].startswith("cpu")
    assert v1["lineage"]["runs"] and v1["lineage"]["training_set_sha256"]
    assert v1["hyperparameters"]["search"]["trials"] == 1

    code, out = invoke("train", "--trials", "0", "--seed", "1", "--no-promote")
    assert code in (0, 1), out  # judged against v1: either way it stays the challenger
    code, out = invoke("promote", "2", "--by", "tester", "--reason", "field trial")
    assert code == 0 and "v2 is the champion (was v1)" in out
    code, out = invoke("promote", "2")
    assert code == 3 and "already the champion" in out
    code, out = invoke("promote", "9")
    assert code == 2 and "no version 9" in out

    code, out = invoke("rollback", "--by", "tester", "--reason", "drifted")
    assert code == 0 and "v1 is the champion again" in out
    code, out = invoke("rollback")
    assert code == 3 and "no earlier champion" in out

    code, out = invoke("models", "--ledger", "--json")
    actions = [(r["version"], r["action"]) for r in json.loads(out)]
    assert actions[:3] == [(1, "challenger"), (1, "gate_pass"), (1, "promote")]
    assert actions[-2:] == [(2, "promote"), (1, "rollback")]
    promote_2 = next(r for r in json.loads(out) if r["action"] == "promote" and r["version"] == 2)
    assert promote_2["decided_by"] == "tester" and promote_2["reasons"] == ["field trial"]
    code, out = invoke("models")
    assert "champion" in out and "challenger" not in out.splitlines()[1]


def test_retrain_job_gate_blocks_the_promotion() -> None:
    """candidate_model -> model_evaluation (blocking check) -> champion_model, in Dagster."""
    from assets.definitions import defs

    with_training_set()
    job = defs.resolve_job_def("retrain")
    instance = dg.DagsterInstance.ephemeral()
    quick = {"ops": {"candidate_model": {"config": {"search_trials": 0, "members": 2}}}}
    done = job.execute_in_process(instance=instance, run_config=quick)
    assert done.success
    assert done.asset_materializations_for_node("champion_model")
    engine = open_context().engine
    assert registry.model_for_alias(engine, "growth", registry.CHAMPION).version == 1
    evaluation = done.asset_materializations_for_node("model_evaluation")[0].metadata
    assert evaluation["passed"].value is True
    assert "candidate" in evaluation["comparison"].value and "physics" in evaluation["comparison"].value

    # a fab's stricter threshold: the check fails, the promotion does not happen
    strict = {"ops": {**quick["ops"], "model_evaluation": {"config": {"max_thickness_mape_pct": 1e-6}}}}
    refused = job.execute_in_process(instance=instance, run_config=strict, raise_on_error=False)
    checks = {e.check_name: e for e in refused.get_asset_check_evaluations()}
    assert checks["gate_passed"].passed is False
    assert "thickness MAPE" in (checks["gate_passed"].description or "")
    assert not refused.asset_materializations_for_node("champion_model")
    assert registry.model_for_alias(engine, "growth", registry.CHAMPION).version == 1
    assert registry.model_for_alias(engine, "growth", registry.CHALLENGER).version == 2
    last = registry.ledger(engine, "growth")[-1]
    assert last["action"] == "gate_fail" and last["version"] == 2 and last["passed"] is False


def test_retrain_sensor_waits_for_new_measured_layers() -> None:
    from assets.models import MIN_NEW_LAYERS, retrain_sensor
    from assets.resources import EpiMlResource

    instance = dg.DagsterInstance.ephemeral()

    def tick() -> dg.RunRequest | dg.SkipReason:
        context = dg.build_sensor_context(instance=instance, resources={"epi_ml": EpiMlResource()})
        return retrain_sensor(context)

    def materialize(measured: int) -> None:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("training_set", metadata={"measured_layers": measured})
        )

    assert isinstance(tick(), dg.SkipReason)  # never materialized
    materialize(MIN_NEW_LAYERS - 1)
    assert isinstance(tick(), dg.SkipReason)  # too few to train on
    with_training_set()
    materialize(480)  # the synthetic set's measured layers
    first = tick()
    assert isinstance(first, dg.RunRequest) and first.run_key == "retrain:480"
    lifecycle.train_candidate(open_context(), search_trials=0)  # what the request runs
    materialize(480 + MIN_NEW_LAYERS - 5)
    assert isinstance(tick(), dg.SkipReason)  # the newest model saw all but 45 of them
    materialize(480 + MIN_NEW_LAYERS + 5)
    assert isinstance(tick(), dg.RunRequest)


def test_predict_a_recipe_on_an_ingested_home(tmp_path) -> None:
    """The recipe's layers get the calibration in force, the tool's history and a registered
    model's intervals; JSON has no NaN."""
    from ingest_helpers import land, make_campaign
    from model_helpers import tiny_model

    from epi_ml.ingest.batch import ingest_paths
    from epi_ml.models.data import select_examples
    from epi_ml.settings import get_settings

    make_campaign(tmp_path / "campaign", runs=4)
    landing = land(tmp_path / "campaign", get_settings().home)
    ctx = open_context(landing_root=landing.parent)
    ingest_paths(ctx, [landing.parent])
    frame, _ = synthetic_training_set(120, seed=4)

    model = tiny_model(select_examples(frame))
    artifact = model.save(tmp_path / "model")
    registered = registry.register_model(
        ctx.engine, name="growth", kind="hybrid_torch", artifact_dir=artifact, device="cpu",
        features_version="2", code_version="test", hyperparameters={}, metrics={}, lineage={},
    )  # fmt: skip

    code, out = invoke("predict", "--recipe", "hemt_algaas_gaas", "--tool", "MBE1")
    assert code == 3 and "no champion" in out
    registry.promote(ctx.engine, "growth", registered.version)
    code, out = invoke("predict", "--recipe", "hemt_algaas_gaas", "--tool", "MBE1", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["version"] == 1 and result["tool"] == "MBE1"
    layers = result["layers"]
    assert [row["material"] for row in layers][:2] == ["GaAs", "AlAs"]
    for row in layers:
        assert row["mode"] == "recipe"
        # the untrained model is the physics baseline: same thickness, an interval around it
        assert row["thickness_nm"] == pytest.approx(row["pred_thickness_nm"], rel=1e-6)
        assert row["growth_rate_nm_s"] == pytest.approx(row["thickness_nm"] / row["duration_s"], rel=1e-6)
    algaas = [r for r in layers if r["material"] == "AlGaAs"]
    assert algaas and all(abs(r["composition"] - 0.3) < 0.05 for r in algaas)
    assert all(r["pl_peak_nm"] is not None for r in algaas)

    code, out = invoke("predict", "--recipe", "hemt_algaas_gaas")
    assert code == 0 and "hemt_algaas_gaas on MBE1" in out  # the only tool: no --tool needed
    code, out = invoke("predict", "--recipe", "hemt_algaas_gaas", "--tool", "MBE7")
    assert code == 2 and "unknown tool 'MBE7'" in out
    code, out = invoke("predict", "--recipe", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such recipe" in out
