"""The Dagster code location loads, and its assets materialize in-process."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from assets.definitions import defs
from assets.resources import EpiMlResource
from assets.run import MAIN_JOB, run_pipeline
from assets.twin import twin_campaign


def test_definitions_load_with_the_main_job() -> None:
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(MAIN_JOB) is not None
    assert dg.AssetKey("twin_campaign") in {a.key for a in defs.resolve_all_asset_specs()}


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
    assert metadata["runs"].value == 2
    assert metadata["files"].value["logs"] > 0


def test_pipeline_runs_the_main_job_on_the_instance(isolated_home: Path) -> None:
    with dg.instance_for_test() as instance:
        lines = list(run_pipeline(instance))
        assert "materialized twin_campaign" in lines
        assert lines[-1].endswith("succeeded")
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].job_name == MAIN_JOB
    assert (isolated_home / "landing" / "twin" / "manifest.json").exists()
