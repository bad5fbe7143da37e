"""The Dagster code location: it loads, its assets materialize in-process (one partition per
growth run), the blocking check stops a quarantined run, and the sensors request what is ready."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pytest
from ingest_helpers import land, make_campaign

from assets.definitions import defs
from assets.growth_runs import CHECK_ERRORS, CHECK_WARNINGS
from assets.partitions import GROWTH_RUNS
from assets.resources import EpiMlResource
from assets.run import MAIN_JOB, run_pipeline
from assets.twin import twin_campaign
from epi_ml.features.core import FEATURES_VERSION
from sensors.landing import growth_run_sensor, landing_sensor, measurement_sensor

RUN_KEYS = ["raw_run", "sensor_table", "validated_run", "run_summary", "layer_features"]
NOW = {"ops": {"landed_files": {"config": {"settle_s": 0}}}}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("campaign") / "twin"
    make_campaign(out, runs=2)
    return out


def test_definitions_load_with_the_jobs_sensors_and_checks() -> None:
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key.to_user_string() for spec in defs.resolve_all_asset_specs()}
    assert keys == {"twin_campaign", "landed_files", "measurements", "cell_calibrations",
                    "training_set", "candidate_model", "model_evaluation", "champion_model",
                    *RUN_KEYS}  # fmt: skip
    for job in (MAIN_JOB, "ingest_landing", "ingest_measurements", "growth_run", "training", "retrain"):
        assert defs.resolve_job_def(job) is not None
    graph = defs.resolve_asset_graph()
    partitioned = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).partitions_def}
    assert partitioned == set(RUN_KEYS)
    checks = {key.name for key in graph.asset_check_keys}
    assert checks == {CHECK_ERRORS, CHECK_WARNINGS, "gate_passed"}
    assert {s.name for s in defs.sensors} == {"landing_sensor", "measurement_sensor", "growth_run_sensor",
                                             "retrain_sensor"}  # fmt: skip
    assert graph.get(dg.AssetKey("candidate_model")).pools == {"gpu"}


def test_twin_campaign_materializes_into_landing(isolated_home: Path) -> None:
    result = dg.materialize(
        [twin_campaign],
        resources={"epi_ml": EpiMlResource()},
        run_config=dg.RunConfig({"twin_campaign": {"config": {"runs": 2, "tools": 1, "seed": 3}}}),
    )
    assert result.success
    manifest = json.loads((isolated_home / "landing" / "twin" / "manifest.json").read_text())
    assert manifest["runs"] == 2 and manifest["seed"] == 3
    metadata = result.asset_materializations_for_node("twin_campaign")[0].metadata
    assert metadata["files"].value["logs"] > 0


def _ingest(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("ingest_landing").execute_in_process(instance=instance, run_config=NOW)


def test_landed_files_add_one_partition_per_run_and_each_builds(campaign: Path, isolated_home: Path) -> None:
    land(campaign, isolated_home)
    with dg.instance_for_test() as instance:
        result = _ingest(instance)
        assert result.success
        metadata = result.asset_materializations_for_node("landed_files")[0].metadata
        assert metadata["runs_new"].value == 2 and metadata["quarantined_files"].value == 0
        keys = instance.get_dynamic_partitions(GROWTH_RUNS)
        assert sorted(keys) == ["MBE1-20260105-01", "MBE1-20260105-02"]
        # Nothing new the second time: the same data version, so nothing downstream goes stale
        again = _ingest(instance)
        versions = [
            r.asset_materializations_for_node(node)[0].tags["dagster/data_version"]
            for r in (result, again)
            for node in ("landed_files", "cell_calibrations")
        ]
        assert versions[:2] == versions[2:]

        run = defs.resolve_job_def("growth_run").execute_in_process(instance=instance, partition_key=keys[0])
        assert run.success
        assert [m.asset_key.to_user_string() for m in run.get_asset_materialization_events()] == RUN_KEYS
        features = run.asset_materializations_for_node("layer_features")[0].metadata
        assert features["layers"].value > 0 and features["features_version"].value == FEATURES_VERSION
        checks = {e.check_name: e.passed for e in run.get_asset_check_evaluations()}
        assert checks[CHECK_ERRORS] is True
        table = run.asset_materializations_for_node("sensor_table")[0].metadata
        assert table["dagster/row_count"].value > 10_000
        assert instance.get_latest_materialization_event(dg.AssetKey("run_summary")) is not None


def test_a_quarantined_run_fails_its_blocking_check_and_gets_no_summary(campaign: Path, isolated_home: Path) -> None:
    landing = land(campaign, isolated_home)
    # The recipe says layer 1 is GaAs; the shutter log says the Ga shutter never opened.
    shutters = next(landing.glob("MBE1/logs/*/Shutters.txt"))
    rows = shutters.read_text().split("\n")
    header = rows[2].split(",")
    ga = header.index("Ga_Sh")
    fixed = rows[:3] + [
        ",".join("0" if i == ga else v for i, v in enumerate(r.split(","))) if r else r for r in rows[3:]
    ]
    shutters.write_text("\n".join(fixed))
    with dg.instance_for_test() as instance:
        assert _ingest(instance).success
        key = "MBE1-20260105-02"  # a GaAs buffer run
        run = defs.resolve_job_def("growth_run").execute_in_process(
            instance=instance, partition_key=key, raise_on_error=False
        )
        assert not run.success
        failed = [e for e in run.get_asset_check_evaluations() if e.check_name == CHECK_ERRORS]
        assert failed and not failed[0].passed and "shutter_mismatch" in failed[0].metadata["codes"].value
        built = [m.asset_key.to_user_string() for m in run.get_asset_materialization_events()]
        assert built == ["raw_run", "sensor_table", "validated_run"]


def _age(paths: list[Path], seconds: float) -> None:
    """Set the files' modification time to `seconds` ago."""
    when = time.time_ns() - int(seconds * 1e9)
    for path in paths:
        os.utime(path, ns=(when, when))


def _tick(sensor, instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:  # type: ignore[no-untyped-def]
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"epi_ml": EpiMlResource()})
    return sensor(context)


def test_landing_sensor_waits_for_files_to_settle_then_requests_one_ingest(
    campaign: Path, isolated_home: Path
) -> None:
    landing = land(campaign, isolated_home)
    files = [p for p in landing.rglob("*") if p.is_file()]
    measurement_files = list(landing.rglob("measurements/*.csv"))
    with dg.instance_for_test() as instance:
        _age(files, 0)  # just written: everything waits
        first = _tick(landing_sensor, instance)
        assert first.run_requests == [] and "still being written" in str(first.skip_reason)

        _age(files, 60)  # quiet for a minute: one ingest of every log (not the measurements)
        ready = _tick(landing_sensor, instance, first.cursor)
        [request] = ready.run_requests
        assert request.job_name == "ingest_landing" and request.run_key.startswith("landing:")
        logs = len(files) - len(measurement_files) - 1  # manifest.json is not tool data
        assert int(request.tags["epi-ml/files"]) == logs
        again = _tick(landing_sensor, instance, ready.cursor)
        assert again.run_requests == [] and "nothing new" in str(again.skip_reason)
        [measured] = _tick(measurement_sensor, instance).run_requests
        assert measured.job_name == "ingest_measurements"

        # The logger appends to a day file: asked for again once it is quiet...
        day = next(landing.rglob("logs/*/Messages.txt")).parent
        with (day / "Ga.PID.MV.txt").open("a") as handle:
            handle.write("05/01/2026 23:59:59.000,300.0\r\n")
        assert _tick(landing_sensor, instance, ready.cursor).run_requests == []
        _age([day / "Ga.PID.MV.txt"], 60)
        [grown] = _tick(landing_sensor, instance, ready.cursor).run_requests
        assert grown.run_key != request.run_key

        # ... or at once when the tool has just logged the end of a run (it logs on all day).
        with (day / "Messages.txt").open("a") as handle:
            handle.write("06/01/2026 07:00:00.000,Recipe,Run MBE1-20260106-09 end,-16777216\r\n")
        with (day / "Ga.PID.MV.txt").open("a") as handle:
            handle.write("06/01/2026 07:00:01.000,300.0\r\n")
        _age([day / "Messages.txt"], 5)
        _age([day / "Ga.PID.MV.txt"], 1)
        [ended] = _tick(landing_sensor, instance, ready.cursor).run_requests
        assert int(ended.tags["epi-ml/files"]) == 2


def test_growth_run_sensor_requests_each_pending_run_once(campaign: Path, isolated_home: Path) -> None:
    land(campaign, isolated_home)
    with dg.instance_for_test() as instance:
        assert _ingest(instance).success
        result = _tick(growth_run_sensor, instance)
        requested = {r.partition_key: r.run_key for r in result.run_requests}
        assert set(requested) == {"MBE1-20260105-01", "MBE1-20260105-02"}
        assert all(key.startswith(f"{run}:") for run, key in requested.items())
        defs.resolve_job_def("growth_run").execute_in_process(instance=instance, partition_key="MBE1-20260105-01")
        left = _tick(growth_run_sensor, instance)
        assert [r.partition_key for r in left.run_requests] == ["MBE1-20260105-02"]


def test_pipeline_runs_everything_pending_on_the_instance(isolated_home: Path) -> None:
    with dg.instance_for_test() as instance:
        lines = list(run_pipeline(instance, twin_config={"runs": 2, "tools": 1, "seed": 5}))
        assert lines[:2] == ["materialized twin_campaign", "materialized landed_files"]
        assert set(lines[2:4]) == {"materialized measurements", "materialized cell_calibrations"}
        assert sum(line.startswith("built ") for line in lines) == 2
        assert lines[-3] == "growth runs: 2 built, 0 quarantined, 0 failed"
        assert lines[-2].startswith("training set: ") and " layers of 2 runs, " in lines[-2]
        # two runs are too few to split into calibration epochs: no model, and the line says why
        assert lines[-1].startswith("model: not trained yet (") and "calibration epoch" in lines[-1]
        jobs = sorted(r.job_name for r in instance.get_runs())
        assert jobs == sorted([MAIN_JOB, "growth_run", "growth_run", "training"])
        sets = instance.get_latest_materialization_event(dg.AssetKey("training_set"))
        assert sets is not None and sets.asset_materialization.metadata["runs"].value == 2
        # Nothing pending: a second pipeline builds nothing and does not re-simulate the twin.
        again = list(run_pipeline(instance))
        assert "materialized twin_campaign" not in again
        assert again[-1] == "growth runs: 0 built, 0 quarantined, 0 failed"
    shutil.rmtree(isolated_home / "landing")
