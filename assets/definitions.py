"""The Dagster code location of epi-ml (`dagster dev -m assets.definitions`)."""

from __future__ import annotations

import dagster as dg

from assets.resources import EpiMlResource
from assets.run import MAIN_JOB
from assets.twin import twin_campaign

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.all(),
    description="Everything: the twin's campaign and what the pipeline builds from it.",
)

defs = dg.Definitions(
    assets=[twin_campaign],
    jobs=[main_job],
    resources={"epi_ml": EpiMlResource()},
)
