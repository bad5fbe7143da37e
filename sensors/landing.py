"""Sensors: new files in the landing folder, new measurement files, runs waiting to be built.

Ticks are cheap: a stat of the landing tree against a per-folder cursor (no file is read except
the heads of new CSVs, to tell measurement tables apart) and one query for pending runs. Run keys
make a request idempotent: the same ready files, or the same run with the same inputs, are asked
for once.
"""

import hashlib
import json

import dagster as dg

from assets.partitions import GROWTH_RUNS
from assets.resources import EpiMlResource
from epi_ml.ingest.landing import LandedFile, landing_batch
from epi_ml.ingest.run_stages import pending_runs

LANDING_JOB, MEASUREMENTS_JOB, GROWTH_RUN_JOB = "ingest_landing", "ingest_measurements", "growth_run"
TICK_S = 15
MAX_RUNS_PER_TICK = 50  # a backlog (a whole campaign landed at once) is requested over ticks


def _landing_tick(
    context: dg.SensorEvaluationContext, epi_ml: EpiMlResource, *, measurements: bool, job: str
) -> dg.SensorResult:
    settings = epi_ml.settings()
    cursor = json.loads(context.cursor) if context.cursor else {}
    readiness = landing_batch(
        settings.landing_dir, cursor=cursor, measurements=measurements,
        settle_s=settings.landing_settle_s,
    )  # fmt: skip
    if not readiness.ready:
        waiting = f"; {len(readiness.waiting)} file(s) still being written" if readiness.waiting else ""
        return dg.SensorResult(
            skip_reason=f"nothing new in {settings.landing_dir}{waiting}",
            cursor=json.dumps(readiness.cursor),
        )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=_batch_key(readiness.ready),
                job_name=job,
                tags={"epi-ml/files": str(len(readiness.ready))},
            )
        ],
        cursor=json.dumps(readiness.cursor),
    )


@dg.sensor(
    job_name=LANDING_JOB,
    minimum_interval_seconds=TICK_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New or grown tool logs in landing/ (ready once quiet, or when a run just ended).",
)
def landing_sensor(context: dg.SensorEvaluationContext, epi_ml: EpiMlResource):
    return _landing_tick(context, epi_ml, measurements=False, job=LANDING_JOB)


@dg.sensor(
    job_name=MEASUREMENTS_JOB,
    minimum_interval_seconds=TICK_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New XRD / PL measurement tables in landing/.",
)
def measurement_sensor(context: dg.SensorEvaluationContext, epi_ml: EpiMlResource):
    return _landing_tick(context, epi_ml, measurements=True, job=MEASUREMENTS_JOB)


@dg.sensor(
    job_name=GROWTH_RUN_JOB,
    minimum_interval_seconds=TICK_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Growth runs whose inputs are complete and not built yet: one run per partition.",
)
def growth_run_sensor(context: dg.SensorEvaluationContext, epi_ml: EpiMlResource):
    pending = pending_runs(epi_ml.ingest_context())[:MAX_RUNS_PER_TICK]
    if not pending:
        return dg.SkipReason("no growth run waiting to be built")
    known = set(context.instance.get_dynamic_partitions(GROWTH_RUNS))
    new = [run_id for run_id, _ in pending if run_id not in known]
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=run_id, run_key=f"{run_id}:{fingerprint[:16]}")
            for run_id, fingerprint in pending
        ],
        dynamic_partitions_requests=[dg.DynamicPartitionsDefinition(name=GROWTH_RUNS).build_add_request(new)]
        if new
        else [],
    )


def _batch_key(files: list[LandedFile]) -> str:
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: str(f.path)):
        digest.update(f"{f.path}\0{f.size}\0{f.mtime_ns}\n".encode())
    return f"landing:{digest.hexdigest()[:24]}"


SENSORS = [landing_sensor, measurement_sensor, growth_run_sensor]
