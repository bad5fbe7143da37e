"""Run the main job in-process against the Dagster instance under DAGSTER_HOME, so that the runs
`epi-ml pipeline` makes show up in the Dagster UI exactly like runs launched there."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

MAIN_JOB = "main"


def run_pipeline(instance: dg.DagsterInstance | None = None) -> Iterator[str]:
    from assets.definitions import defs

    instance = instance or dg.DagsterInstance.get()
    job = defs.resolve_job_def(MAIN_JOB)
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    for materialization in result.get_asset_materialization_events():
        key = materialization.asset_key
        yield f"materialized {key.to_user_string() if key else materialization.step_key}"
    if not result.success:
        failures = [e.message or "" for e in result.all_events if e.is_failure]
        raise RuntimeError(f"pipeline run {result.run_id} failed: " + "; ".join(failures)[:2000])
    yield f"run {result.run_id} succeeded"
