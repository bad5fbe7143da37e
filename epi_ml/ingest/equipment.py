"""Equipment events in a tool's messages: cell refills, which start a new charge of a cell.

Operators log maintenance in the tool's message log (docs/twin.md "Messages"):

    Refill Ga 250.0g          (the charge loaded; `Refill Ga` without the mass also counts)

Each becomes a row of `cells` (tool, source, installed_at = the message time, charge_g): the
refill epoch from which a cell's used charge is counted (epi_ml.features) and which splits
calibration histories. Idempotent: a refill already recorded is not recorded twice.
"""

from __future__ import annotations

import re

import polars as pl
from sqlalchemy import Engine

from epi_ml.channels import DOPANTS, GROUP_III
from epi_ml.store import write_session
from epi_ml.store.models import Cell
from epi_ml.store.repo import ensure_tool, insert_ignore

REFILL = re.compile(r"^\s*Refill (?P<cell>[A-Za-z][A-Za-z0-9]*)(?:\s+(?P<grams>\d+(?:\.\d+)?)\s*g)?\b")


def cell_kind(source: str) -> str:
    if source in GROUP_III:
        return "group_iii"
    if source in DOPANTS:
        return "dopant"
    return "cracker" if source in ("As", "Sb", "P") else "other"


def refills_in(messages: pl.DataFrame) -> pl.DataFrame:
    """The refill messages: time, source, charge_g (null when the message gives no mass)."""
    schema = {"time": pl.Datetime("us", "UTC"), "source": pl.String, "charge_g": pl.Float64}
    if messages.is_empty() or "message" not in messages.columns:
        return pl.DataFrame(schema=schema)
    found = (
        messages.select("time", pl.col("message").str.extract_groups(REFILL.pattern).alias("m"))
        .unnest("m")
        .filter(pl.col("cell").is_not_null())
        .select("time", pl.col("cell").alias("source"), pl.col("grams").cast(pl.Float64).alias("charge_g"))
        .unique(maintain_order=True)
    )
    return found.cast(schema)  # type: ignore[arg-type]


def register_refills(engine: Engine, tool_id: str, messages: pl.DataFrame) -> int:
    """Record the refills logged in `messages` as the tool's cell epochs; returns how many."""
    refills = refills_in(messages)
    if refills.is_empty():
        return 0
    with write_session(engine) as session:
        ensure_tool(session, tool_id)
        for row in refills.iter_rows(named=True):
            insert_ignore(
                session,
                Cell,
                {
                    "tool_id": tool_id,
                    "source": row["source"],
                    "kind": cell_kind(row["source"]),
                    "charge_g": row["charge_g"],
                    "installed_at": row["time"],
                },
            )
    return refills.height
