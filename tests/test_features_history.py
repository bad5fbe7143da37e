"""Sequence features (charge used since refill, previous run's residual) and refills read from
the tools' messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from sqlalchemy import select

from epi_ml.features.history import MEASUREMENT_SCHEMA, REFILL_SCHEMA, with_history
from epi_ml.ingest.batch import open_context
from epi_ml.ingest.equipment import refills_in, register_refills
from epi_ml.store import read_session
from epi_ml.store.models import Cell

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def features(*runs: tuple[str, str, float, float, float | None]) -> pl.DataFrame:
    """(run, tool, day, Ga ML deposited, baseline thickness of layer 1) -> two layers per run."""
    rows = []
    for run, tool, d, ga_ml, predicted in runs:
        for layer in (1, 2):
            rows.append({
                "run_id": run, "tool": tool, "layer": layer, "start": day(d) + timedelta(minutes=layer),
                "Ga_deposited_ml": ga_ml / 2, "Al_deposited_ml": None, "In_deposited_ml": None,
                "pred_thickness_nm": predicted if layer == 1 else None,
            })  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"start": pl.Datetime("us", "UTC")})


def measurements(*rows: tuple[str, int, float, float]) -> pl.DataFrame:
    """(run, layer, measured nm, day measured)."""
    return pl.DataFrame(
        [(r, layer, "xrd_thickness_nm", nm, 0.5, day(d)) for r, layer, nm, d in rows],
        schema=MEASUREMENT_SCHEMA,
        orient="row",
    )


def test_charge_used_counts_earlier_runs_since_the_refill_per_tool() -> None:
    table = features(
        ("A1", "MBE1", 0, 100.0, None),
        ("A2", "MBE1", 1, 50.0, None),
        ("B1", "MBE2", 1.5, 999.0, None),  # another tool: never counted for MBE1
        ("A3", "MBE1", 3, 10.0, None),  # after the refill on day 2
        ("A4", "MBE1", 4, 10.0, None),
    )
    refills = pl.DataFrame([("MBE1", "Ga", day(2))], schema=REFILL_SCHEMA, orient="row")
    out = with_history(table, refills, measurements()).filter(pl.col("layer") == 1)
    used = dict(zip(out["run_id"], out["Ga_used_before_ml"], strict=True))
    assert used == {"A1": 0.0, "A2": 100.0, "B1": 0.0, "A3": 0.0, "A4": 10.0}
    assert out.height == 5 and set(out["Al_used_before_ml"].to_list()) == {0.0}


def test_previous_residual_is_only_what_was_measured_before_the_run_began() -> None:
    table = features(
        ("A1", "MBE1", 0, 1.0, 100.0),
        ("A2", "MBE1", 1, 1.0, 100.0),
        ("A3", "MBE1", 5, 1.0, 100.0),
    )
    # A1 measured on day 2 (after A2 began, before A3): A2 cannot know it, A3 does.
    measured = measurements(("A1", 1, 104.0, 2.0), ("A2", 1, 98.0, 6.0))
    out = with_history(table, pl.DataFrame(schema=REFILL_SCHEMA), measured).filter(pl.col("layer") == 1)
    residual = dict(zip(out["run_id"], out["prev_run_residual"], strict=True))
    assert residual["A1"] is None and residual["A2"] is None
    assert residual["A3"] == pytest.approx(0.04)


def test_refills_are_read_from_operator_messages(isolated_home) -> None:  # type: ignore[no-untyped-def]
    messages = pl.DataFrame(
        {
            "time": [day(0), day(0.1), day(0.2), day(0.3)],
            "message": ["Vent for maintenance", "Refill Ga 250.0g", "Refill Al", "Run X start"],
        },
        schema={"time": pl.Datetime("us", "UTC"), "message": pl.String},
    )
    found = refills_in(messages)
    assert found.select("source", "charge_g").rows() == [("Ga", 250.0), ("Al", None)]
    ctx = open_context()
    assert register_refills(ctx.engine, "MBE1", messages) == 2
    register_refills(ctx.engine, "MBE1", messages)  # idempotent
    with read_session(ctx.engine) as session:
        cells = session.execute(select(Cell.source, Cell.kind, Cell.charge_g)).all()
    assert sorted(cells) == [("Al", "group_iii", None), ("Ga", "group_iii", 250.0)]
