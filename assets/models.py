"""Model assets: training set -> candidate model -> model evaluation (the gate, a blocking
check) -> champion model. Thin: epi_ml.models.lifecycle does the work.

The candidate trains in the `gpu` concurrency pool (one training at a time on the machine,
whatever launched it). The gate's check blocks the promotion when it fails: the candidate stays
registered, the ledger says why. Numeric metadata (MAPE, coverage, samples/s) is plotted by the
Dagster UI across materializations (the asset's Plots tab).
"""

import dagster as dg

from assets.features import training_set
from assets.metadata import number, table_markdown
from assets.resources import EpiMlResource
from epi_ml.models.gate import GateThresholds

GROUP = "models"
GATE_CHECK = "gate_passed"
RETRAIN_JOB = "retrain"


class CandidateConfig(dg.Config):
    search_trials: int = 6
    seed: int = 0
    device: str = "auto"
    members: int = 5


@dg.asset(
    group_name=GROUP,
    kinds={"pytorch"},
    deps=[training_set],
    pool="gpu",
    description=(
        "A candidate growth model (hybrid PyTorch: physics baseline × learned correction from the "
        "layer features and sensor traces, ensemble + split-conformal 90 % intervals), trained on "
        "the training set (CUDA when present) and registered with its lineage as the challenger."
    ),
)
def candidate_model(context: dg.AssetExecutionContext, config: CandidateConfig, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.models.lifecycle import train_candidate

    model = train_candidate(
        epi_ml.ingest_context(), seed=config.seed, device=config.device,
        search_trials=config.search_trials, members=config.members,
    )  # fmt: skip
    training = model.metrics.get("training", {})
    overall = model.metrics["evaluation"]["overall"]
    context.log.info(f"registered {model.label} ({model.device}, {training.get('training_seconds')} s)")
    return dg.MaterializeResult(
        metadata={
            "version": model.version,
            "device": model.device or "",
            "training_seconds": float(training.get("training_seconds", 0.0)),
            "samples_per_s": float(training.get("samples_per_s", 0.0)),
            "runs": len(model.lineage.get("runs", [])),
            "raw_files": len(model.lineage.get("files", {})),
            "training_set_sha256": model.lineage.get("training_set_sha256", ""),
            "artifact": dg.MetadataValue.path(model.artifact_path or ""),
            **_headline(overall),
        },
        data_version=dg.DataVersion(model.artifact_sha256 or str(model.version)),
    )


class GateConfig(dg.Config):
    """The gate's value thresholds (epi_ml.models.gate.GateThresholds); the defaults are the
    product's, a stricter fab sets its own in the launchpad or the job's config."""

    max_thickness_mape_pct: float = GateThresholds.max_thickness_mape_pct
    max_composition_mae: float = GateThresholds.max_composition_mae
    coverage_low: float = GateThresholds.coverage_low
    coverage_high: float = GateThresholds.coverage_high
    slice_tolerance: float = GateThresholds.slice_tolerance


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    deps=[candidate_model],
    check_specs=[
        dg.AssetCheckSpec(GATE_CHECK, asset="model_evaluation", blocking=True,
                          description="The gate: value thresholds, better than physics, not worse "
                                      "than the champion on any slice (tool, material, epoch)."),
    ],  # fmt: skip
    description=(
        "The latest candidate, the champion and the physics baseline on the evaluation epochs of "
        "the training set, overall and per slice; the gate's decision goes to the ledger."
    ),
)
def model_evaluation(context: dg.AssetExecutionContext, config: GateConfig, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME, evaluate_candidate

    ctx = epi_ml.ingest_context()
    challenger = registry.model_for_alias(ctx.engine, MODEL_NAME, registry.CHALLENGER)
    if challenger is None:
        raise dg.Failure("no challenger to evaluate: materialize candidate_model first")
    thresholds = GateThresholds(**config.model_dump())
    verdict = evaluate_candidate(ctx, challenger.version, thresholds=thresholds)
    decision = verdict.decision
    m = verdict.metrics
    rows = [("candidate", m["candidate"]), ("physics", m["physics"])]
    if m.get("champion"):
        rows.append((f"champion v{m['champion_version']}", m["champion"]))
    return dg.MaterializeResult(
        metadata={
            "version": challenger.version,
            "passed": decision.passed,
            "evaluation_layers": m["evaluation_layers"],
            **_headline(m["candidate"]["overall"]),
            "physics_thickness_mape_pct": float(m["physics"]["overall"]["thickness"].get("mape_pct", float("nan"))),
            "comparison": table_markdown(
                ["model", "thk MAPE %", "thk RMSE nm", "thk cover", "x MAE", "x cover"],
                [(name, number(r["overall"]["thickness"].get("mape_pct"), 3), number(r["overall"]["thickness"].get("rmse"), 2),
                  number(r["overall"]["thickness"].get("coverage"), 3), number(r["overall"]["composition"].get("mae"), 4),
                  number(r["overall"]["composition"].get("coverage"), 3)) for name, r in rows],
            ),  # fmt: skip
            "slices": table_markdown(
                ["slice", "layers", "thk MAPE %", "x MAE", "cover"],
                [(f"{kind}={key}", s["thickness"].get("n", 0), number(s["thickness"].get("mape_pct"), 3),
                  number(s["composition"].get("mae"), 4), number(s["thickness"].get("coverage"), 3))
                 for kind, groups in m["candidate"]["slices"].items() for key, s in groups.items()],
            ),  # fmt: skip
            "checks": table_markdown(["check", "result"], [(c["check"], c["reason"]) for c in decision.checks]),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_CHECK,
                passed=decision.passed,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(decision.failures) or "every check passed",
                metadata={"version": challenger.version, "failed_checks": len(decision.failures)},
            )
        ],
    )


@dg.asset(
    group_name=GROUP,
    kinds={"python"},
    deps=[model_evaluation],
    description="The champion: the evaluated challenger once it passed the gate (the ledger "
    "records the promotion; `epi-ml rollback` restores the previous champion).",
)
def champion_model(context: dg.AssetExecutionContext, epi_ml: EpiMlResource) -> dg.MaterializeResult:
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME

    ctx = epi_ml.ingest_context()
    challenger = registry.model_for_alias(ctx.engine, MODEL_NAME, registry.CHALLENGER)
    decisions = [r for r in registry.ledger(ctx.engine, MODEL_NAME) if r["action"] in registry.GATE_ACTIONS]
    if challenger is None or not decisions or decisions[-1]["version"] != challenger.version \
            or not decisions[-1]["passed"]:  # fmt: skip
        raise dg.Failure("the latest challenger has no passing gate decision: materialize model_evaluation")
    previous = registry.promote(ctx.engine, MODEL_NAME, challenger.version, decided_by="dagster",
                                reasons=decisions[-1]["reasons"], metrics=decisions[-1]["metrics"])  # fmt: skip
    return dg.MaterializeResult(
        metadata={"version": challenger.version, "previous_version": previous if previous is not None else 0},
        data_version=dg.DataVersion(challenger.artifact_sha256 or str(challenger.version)),
    )


def _headline(overall: dict) -> dict[str, float]:
    thickness, composition = overall.get("thickness", {}), overall.get("composition", {})
    return {
        "thickness_mape_pct": float(thickness.get("mape_pct", float("nan"))),
        "thickness_rmse_nm": float(thickness.get("rmse", float("nan"))),
        "thickness_coverage": float(thickness.get("coverage", float("nan"))),
        "composition_mae": float(composition.get("mae", float("nan"))),
    }


retrain_job = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.assets(candidate_model, model_evaluation, champion_model),
    executor_def=dg.in_process_executor,
    description="Train a candidate on the current training set, judge it, promote it if it passes "
    "(sensors request it when enough new measured layers arrived, or on drift).",
)

MIN_NEW_LAYERS = 50  # new measured layers in the training set that make a retrain worth it


@dg.sensor(
    job=retrain_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Requests a retrain when the training set holds {MIN_NEW_LAYERS} or more measured "
    "layers than the newest registered model was trained on (or when there is no model yet).",
)
def retrain_sensor(context: dg.SensorEvaluationContext, epi_ml: EpiMlResource):
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME

    event = context.instance.get_latest_materialization_event(dg.AssetKey("training_set"))
    if event is None or event.asset_materialization is None:
        return dg.SkipReason("the training set was never materialized")
    entry = event.asset_materialization.metadata.get("measured_layers")
    measured = int(entry.value) if entry is not None else 0
    newest = registry.list_models(epi_ml.ingest_context().engine, MODEL_NAME)[:1]
    trained_on = int(newest[0].lineage.get("training_set_measured_layers", 0)) if newest else 0
    if measured - trained_on < MIN_NEW_LAYERS:
        return dg.SkipReason(
            f"{measured - trained_on} measured layers since the newest model (< {MIN_NEW_LAYERS})"
        )
    return dg.RunRequest(
        run_key=f"retrain:{measured}",  # once per training-set size
        tags={"epi_ml/reason": f"{measured - trained_on} new measured layers"},
    )


MODEL_ASSETS = [candidate_model, model_evaluation, champion_model]
