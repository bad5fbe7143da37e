"""`epi-ml pipeline`: everything pending, in-process, on the Dagster instance under DAGSTER_HOME,
so that its runs show in the Dagster UI exactly like the runs the sensors launch there.

First the main job (the twin's campaign when it has never been made, then the ingest of
landing/ and the calibration history), then one run of the growth_run job per pending growth run
partition (ingest stages and layer features), then the training set when runs were built, then
the retrain job (candidate model -> gate -> champion) when the training set has enough
calibration epochs of measured layers to split.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

MAIN_JOB = "main"
TRAINING_JOB = "training"
RETRAIN_JOB = "retrain"
# The runs' events are in the Dagster UI; the terminal gets a line per step and the warnings.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_pipeline(
    instance: dg.DagsterInstance | None = None, twin_config: dict[str, object] | None = None
) -> Iterator[str]:
    """Yields a line per step. `twin_config`: TwinCampaignConfig fields for a first campaign."""
    from assets.definitions import defs
    from assets.growth_runs import CHECK_ERRORS, CHECK_WARNINGS
    from assets.resources import EpiMlResource
    from epi_ml.ingest.run_stages import pending_run_ids

    instance = instance or dg.DagsterInstance.get()
    main = defs.resolve_job_def(MAIN_JOB)
    twin_made = instance.get_latest_materialization_event(dg.AssetKey("twin_campaign")) is not None
    selection = [dg.AssetKey(k) for k in ("landed_files", "measurements", "cell_calibrations")]
    if not twin_made:
        selection.insert(0, dg.AssetKey("twin_campaign"))
    ops: dict[str, object] = {name: {"config": {"settle_s": 0}} for name in ("landed_files", "measurements")}
    if twin_config and not twin_made:
        ops["twin_campaign"] = {"config": twin_config}
    run_config = {"ops": ops, **QUIET}
    result = main.execute_in_process(
        instance=instance, asset_selection=selection, run_config=run_config, raise_on_error=False
    )
    yield from _materialized(result)
    if not result.success:
        raise RuntimeError(f"pipeline run {result.run_id} failed: {_failures(result)}")

    job = defs.resolve_job_def("growth_run")
    failed, quarantined, built = [], [], 0
    for run_id in pending_run_ids(EpiMlResource().ingest_context()):
        done = job.execute_in_process(
            instance=instance, partition_key=run_id, run_config=QUIET, raise_on_error=False
        )
        checks = {e.check_name: e for e in done.get_asset_check_evaluations()}
        errors = [checks[CHECK_ERRORS]] if CHECK_ERRORS in checks and not checks[CHECK_ERRORS].passed else []
        warned = CHECK_WARNINGS in checks and not checks[CHECK_WARNINGS].passed
        if errors:
            quarantined.append(run_id)
            yield f"quarantined {run_id}: {errors[0].description or 'errors found'}"
        elif not done.success:
            failed.append(run_id)
            yield f"FAILED {run_id}: {_failures(done)}"
        else:
            built += 1
            warnings = checks[CHECK_WARNINGS].metadata["warnings"].value if warned else 0
            yield f"built {run_id}" + (f" ({warnings} warning(s), see the Dagster UI)" if warnings else "")
    yield f"growth runs: {built} built, {len(quarantined)} quarantined, {len(failed)} failed"
    if failed:
        raise RuntimeError(f"{len(failed)} growth run(s) failed: {', '.join(failed)}")
    if built:  # new runs: the training set follows
        training = defs.resolve_job_def(TRAINING_JOB)
        done = training.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False)
        if not done.success:
            raise RuntimeError(f"training set run {done.run_id} failed: {_failures(done)}")
        metadata = done.asset_materializations_for_node("training_set")[0].metadata
        yield (
            f"training set: {metadata['dagster/row_count'].value} layers of {metadata['runs'].value} "
            f"runs, {metadata['measured_layers'].value} measured"
        )
        yield from _retrain(instance, defs)


def _retrain(instance: dg.DagsterInstance, defs: dg.Definitions) -> Iterator[str]:
    """The retrain job, when the training set can be split (else a line that says why not)."""
    from assets.models import GATE_CHECK
    from assets.resources import EpiMlResource
    from epi_ml.models.data import split_by_epoch
    from epi_ml.models.lifecycle import load_training_data

    try:
        split_by_epoch(load_training_data(EpiMlResource().ingest_context()).examples)
    except ValueError as exc:
        yield f"model: not trained yet ({exc})"
        return
    done = defs.resolve_job_def(RETRAIN_JOB).execute_in_process(
        instance=instance, run_config=QUIET, raise_on_error=False
    )
    checks = {e.check_name: e for e in done.get_asset_check_evaluations()}
    candidate = done.asset_materializations_for_node("candidate_model")
    if not candidate:
        raise RuntimeError(f"retrain run {done.run_id} failed: {_failures(done)}")
    meta = candidate[0].metadata
    yield (
        f"candidate model v{meta['version'].value} on {meta['device'].value}: thickness MAPE "
        f"{meta['thickness_mape_pct'].value:.2f} % on its evaluation epochs, "
        f"{meta['training_seconds'].value:.0f} s"
    )
    gate = checks.get(GATE_CHECK)
    if gate is not None and gate.passed:
        yield f"gate passed: v{meta['version'].value} is the champion"
    else:
        yield f"gate refused v{meta['version'].value}: {gate.description if gate else _failures(done)}"


def _materialized(result: dg.ExecuteInProcessResult) -> Iterator[str]:
    for materialization in result.get_asset_materialization_events():
        key = materialization.asset_key
        yield f"materialized {key.to_user_string() if key else materialization.step_key}"


def _failures(result: dg.ExecuteInProcessResult) -> str:
    return "; ".join(e.message or "" for e in result.all_events if e.is_failure)[:2000]
