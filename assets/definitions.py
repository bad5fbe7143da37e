"""The Dagster code location of epi-ml (`dagster dev -m assets.definitions`)."""

import dagster as dg

from assets.features import FEATURE_ASSETS, cell_calibrations, layer_features, training_set
from assets.growth_runs import RUN_ASSETS
from assets.ingest import landed_files, measurements
from assets.models import MODEL_ASSETS, retrain_job, retrain_sensor
from assets.resources import EpiMlResource
from assets.run import MAIN_JOB, TRAINING_JOB
from assets.twin import twin_campaign
from sensors.landing import GROWTH_RUN_JOB, LANDING_JOB, MEASUREMENTS_JOB, SENSORS

# Steps are short and share one store: run them in the run's own process, one after the other.
executor = dg.in_process_executor

main_job = dg.define_asset_job(
    MAIN_JOB,
    selection=dg.AssetSelection.assets(twin_campaign, landed_files, measurements, cell_calibrations),
    executor_def=executor,
    # Launched by hand: what is in landing/ now is ingested now, not once it has settled.
    config={"ops": {"landed_files": {"config": {"settle_s": 0}}, "measurements": {"config": {"settle_s": 0}}}},
    description="The twin's campaign into landing/, then everything that landed ingested.",
)
landing_job = dg.define_asset_job(
    LANDING_JOB, selection=[landed_files, cell_calibrations], executor_def=executor,
    description="Ingest what is ready in landing/ and update the calibration history (the "
    "landing sensor launches it).",
)  # fmt: skip
measurements_job = dg.define_asset_job(
    MEASUREMENTS_JOB, selection=[measurements], executor_def=executor,
    description="Ingest measurement tables from landing/ (the measurement sensor launches it).",
)  # fmt: skip
growth_run_job = dg.define_asset_job(
    GROWTH_RUN_JOB,
    selection=dg.AssetSelection.assets(*RUN_ASSETS, layer_features),
    executor_def=executor,
    description="One growth run: raw run -> sensor table -> validated run -> summary -> features.",
)
training_job = dg.define_asset_job(
    TRAINING_JOB,
    selection=dg.AssetSelection.assets(training_set),
    executor_def=executor,
    description="The training set: every validated run's features with its measurements.",
)
# The training set follows the day's runs and measurements; a retrain follows it (retrain_sensor).
training_schedule = dg.ScheduleDefinition(
    name="training_set_daily", job=training_job, cron_schedule="0 5 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)  # fmt: skip

defs = dg.Definitions(
    assets=[twin_campaign, landed_files, measurements, *RUN_ASSETS, *FEATURE_ASSETS, *MODEL_ASSETS],
    jobs=[main_job, landing_job, measurements_job, growth_run_job, training_job, retrain_job],
    schedules=[training_schedule],
    sensors=[*SENSORS, retrain_sensor],
    resources={"epi_ml": EpiMlResource()},
)
