"""Layer features of twin runs against the twin's ground truth, and the training set."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from ingest_helpers import context, land, make_campaign

from epi_ml.calibration import calibration_history
from epi_ml.features.build import build_run_features, build_training_set
from epi_ml.features.core import FEATURES_VERSION, feature_columns
from epi_ml.features.history import HISTORY_COLUMNS
from epi_ml.ingest.batch import ingest_paths


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("campaign") / "twin"
    make_campaign(out)  # rheed_calibration, gaas_buffer, hemt_algaas_gaas on MBE1
    return out


@pytest.fixture(scope="module")
def truth(campaign: Path) -> dict[tuple[str, int], dict]:
    runs = json.loads((campaign / "manifest.json").read_text())["truth"]["runs"]
    return {(r["run_id"], layer["index"]): layer for r in runs for layer in r["layers"]}


@pytest.fixture
def built(campaign: Path, isolated_home: Path):  # type: ignore[no-untyped-def]
    ctx = context()
    report = ingest_paths(ctx, [land(campaign, isolated_home)])
    history = calibration_history(ctx)
    tables = {r.run_id: build_run_features(ctx, r.run_id, history) for r in report.built}
    return ctx, pl.concat(tables.values())


def test_features_of_each_layer_match_how_the_twin_grew_it(built, truth) -> None:  # type: ignore[no-untyped-def]
    _, features = built
    assert features.columns == feature_columns()
    assert set(features["features_version"]) == {FEATURES_VERSION}
    growth = features.filter(pl.col("kind") == "layer")
    assert growth.height > 20
    for row in growth.iter_rows(named=True):
        true = truth[(row["run_id"], row["layer"])]
        seconds = (datetime.fromisoformat(true["end"]) - datetime.fromisoformat(true["start"])).total_seconds()
        cells = [c for c in ("Ga", "Al", "In") if c in true["setpoints"]]
        for cell in cells:  # its shutter was open the whole layer, at the recipe's set point
            assert row[f"open_{cell}_s"] == pytest.approx(seconds, abs=1.5)
            assert row[f"{cell}_T_mean"] == pytest.approx(true["setpoints"][cell], abs=1.0)
        assert row["open_As_s"] == pytest.approx(seconds, abs=1.5)  # As on in every layer
        # V/III from the As valve scan and the cells' calibrations: the twin's true BEP ratio
        assert row["v_iii"] == pytest.approx(true["v_iii_bep"], rel=0.1)
        # The physics baseline from the calibration in force: the grown thickness within 5 %
        assert row["pred_thickness_nm"] == pytest.approx(true["thickness_nm"], rel=0.05)
        if true["composition"] is not None:
            assert row["pred_composition"] == pytest.approx(true["composition"], abs=0.01)


def test_rheed_rates_of_the_calibration_layers_are_within_2_percent(built, truth) -> None:  # type: ignore[no-untyped-def]
    _, features = built
    rheed = features.filter(pl.col("label").str.starts_with("rheed_"))
    assert rheed.height == 4
    for row in rheed.iter_rows(named=True):
        true = truth[(row["run_id"], row["layer"])]["growth_rate_ml_s"]
        assert row["rheed_rate_ml_s"] == pytest.approx(true, rel=0.02)
        assert row["rheed_rate_unc_ml_s"] > 0


def test_flux_transient_and_substrate_features_are_physical(built) -> None:  # type: ignore[no-untyped-def]
    _, features = built
    long = features.filter((pl.col("kind") == "layer") & (pl.col("duration_s") > 200))
    # An opening shutter cools the cell a little: a dip of tenths of a degree, not tens
    dips = long.get_column("Ga_T_dip").drop_nulls()
    assert len(dips) > 0 and (dips > 0).all() and (dips < 5).all()
    assert long.get_column("sub_T_mean").is_between(400, 800).all()
    assert long.get_column("hours_since_calibration").is_between(0, 48).all()


def test_the_training_set_joins_measurements_and_history(built) -> None:  # type: ignore[no-untyped-def]
    ctx, features = built
    dataset = build_training_set(ctx)
    frame = dataset.frame
    assert dataset.runs == 3 and frame.height == features.height
    assert set(HISTORY_COLUMNS) <= set(frame.columns)
    measured = frame.filter(pl.col("xrd_thickness_nm").is_not_null())
    assert dataset.measured_layers == measured.height >= 1
    assert (measured["pred_thickness_nm"] / measured["xrd_thickness_nm"] - 1).abs().max() < 0.05
    # Earlier runs' deposits count towards the cell's use; the first run starts the count
    firsts = frame.sort("start").group_by("run_id", maintain_order=True).first()
    used = firsts.get_column("Ga_used_before_ml").to_list()
    assert used[0] == 0.0 and used[1] > 0 and used[2] > used[1]
    again = build_training_set(ctx)
    assert again.sha256 == dataset.sha256  # the same inputs give the same bytes


def test_features_of_an_older_version_are_rebuilt_for_the_training_set(built) -> None:  # type: ignore[no-untyped-def]
    """After an upgrade (another FEATURES_VERSION, no traces yet) no run drops out silently."""
    ctx, features = built
    run_id = features.get_column("run_id")[0]
    old = ctx.lake.read_run_table(run_id, "features").with_columns(features_version=pl.lit("0"))
    ctx.lake.write_run_table(run_id, "features", old)
    ctx.lake.run_table_path(run_id, "traces").unlink()
    dataset = build_training_set(ctx)
    assert dataset.runs == 3 and dataset.frame.height == features.height
    assert set(dataset.frame["features_version"]) == {FEATURES_VERSION}
    assert ctx.lake.has_run_table(run_id, "traces")
    traces = pl.read_parquet(dataset.traces_path)
    assert run_id in set(traces["run_id"]) and traces.height > 0
