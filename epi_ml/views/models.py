"""What `/models` shows: the registered versions of the growth model with their aliases and key
metrics, the per-slice metrics of a version beside the champion's, the promotion ledger, the
lineage of a version, and the two writes (promote, rollback) as the CLI does them.

    view = models_view(engine)                     # ModelsView (versions newest first, ledger)
    chosen = view.version(None)                    # the champion, else the newest version
    slice_metrics(chosen, view.champion, "tool")   # long frame: slice value × model
    lineage_of(chosen)                             # Lineage: runs, files, code, hyper-parameters
    apply_action(engine, "promote", 3, user="eng") # ActionResult (the registry's own calls)

Reads go through `epi_ml.models.registry` (list_models, ledger, model_for_alias); the writes are
`registry.promote` / `registry.rollback`, the calls `epi-ml promote` / `epi-ml rollback` make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine

from epi_ml.models import registry
from epi_ml.models.lifecycle import MODEL_NAME
from epi_ml.models.metrics import SLICES
from epi_ml.store import read_session

PROMOTE, ROLLBACK = "promote", "rollback"
REGISTRY_SCHEMA = {
    "version": pl.Int64,
    "created_at": pl.Datetime("us", "UTC"),
    "aliases": pl.List(pl.String),
    "kind": pl.String,
    "device": pl.String,
    "runs": pl.Int64,
    "files": pl.Int64,
    "features_version": pl.String,
    "code_version": pl.String,
    "thickness_mape_pct": pl.Float64,
    "thickness_coverage": pl.Float64,
    "composition_mae": pl.Float64,
    "evaluation_layers": pl.Int64,
    "gate": pl.String,  # passed | failed | None (not judged)
}
LEDGER_SCHEMA = {
    "id": pl.Int64,
    "decided_at": pl.String,  # ISO, as registry.ledger gives it
    "action": pl.String,
    "version": pl.Int64,
    "previous_version": pl.Int64,
    "alias": pl.String,
    "decided_by": pl.String,
    "passed": pl.Boolean,
    "reasons": pl.List(pl.String),
}
SLICE_SCHEMA = {
    "slice": pl.String,
    "key": pl.String,
    "role": pl.String,  # chosen | champion
    "version": pl.Int64,
    "thickness_n": pl.Int64,
    "thickness_mape_pct": pl.Float64,
    "thickness_mae_nm": pl.Float64,
    "thickness_coverage": pl.Float64,
    "composition_n": pl.Int64,
    "composition_mae": pl.Float64,
    "composition_coverage": pl.Float64,
}


@dataclass
class ModelsView:
    name: str
    versions: list[registry.RegisteredModel]  # newest first
    champion: registry.RegisteredModel | None
    challenger: registry.RegisteredModel | None
    table: pl.DataFrame  # REGISTRY_SCHEMA, newest first
    ledger: pl.DataFrame  # LEDGER_SCHEMA, oldest first (as registry.ledger)
    rollback_to: int | None  # the champion a rollback would restore

    @property
    def empty(self) -> bool:
        return not self.versions

    def version(self, version: int | None) -> registry.RegisteredModel | None:
        """`version` when registered, else the champion, else the newest version."""
        for v in self.versions:
            if v.version == version:
                return v
        return self.champion or (self.versions[0] if self.versions else None)


@dataclass
class Lineage:
    version: int
    runs: list[str]
    files: int  # raw-file hashes the training set came from
    file_hashes: list[str]
    code_version: str | None
    features_version: str | None
    device: str | None
    artifact_sha256: str | None
    training_set_sha256: str | None
    layers: dict[str, Any] = field(default_factory=dict)
    epochs: dict[str, list[str]] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # the search summary left out
    search: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


def models_view(engine: Engine, name: str = MODEL_NAME) -> ModelsView:
    versions = registry.list_models(engine, name)
    rows = registry.ledger(engine, name)
    return ModelsView(
        name=name,
        versions=versions,
        champion=registry.model_for_alias(engine, name, registry.CHAMPION),
        challenger=registry.model_for_alias(engine, name, registry.CHALLENGER),
        table=registry_table(versions, rows),
        ledger=ledger_frame(rows),
        rollback_to=rollback_target(engine, name),
    )


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


def registry_table(
    versions: list[registry.RegisteredModel], ledger_rows: list[dict[str, Any]]
) -> pl.DataFrame:
    """One row per version: aliases, device, lineage sizes, headline evaluation metrics (its own
    evaluation epochs) and its latest gate decision."""
    gate: dict[int, str] = {}
    for row in ledger_rows:  # oldest first: the last decision wins
        if row["action"] in registry.GATE_ACTIONS:
            gate[row["version"]] = "passed" if row["passed"] else "failed"
    rows = []
    for v in versions:
        overall = v.metrics.get("evaluation", {}).get("overall", {})
        thk, comp = overall.get("thickness", {}), overall.get("composition", {})
        rows.append({
            "version": v.version, "created_at": v.created_at, "aliases": list(v.aliases),
            "kind": v.kind, "device": v.device, "runs": len(v.lineage.get("runs", [])),
            "files": len(v.lineage.get("files", {})), "features_version": v.features_version,
            "code_version": v.code_version, "thickness_mape_pct": _number(thk.get("mape_pct")),
            "thickness_coverage": _number(thk.get("coverage")), "composition_mae": _number(comp.get("mae")),
            "evaluation_layers": thk.get("n"), "gate": gate.get(v.version),
        })  # fmt: skip
    return pl.DataFrame(rows, schema=REGISTRY_SCHEMA) if rows else pl.DataFrame(schema=REGISTRY_SCHEMA)


def ledger_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """registry.ledger rows as a frame (same rows, same order: oldest first)."""
    if not rows:
        return pl.DataFrame(schema=LEDGER_SCHEMA)
    return pl.DataFrame([{k: r[k] for k in LEDGER_SCHEMA} for r in rows], schema=LEDGER_SCHEMA)


def rollback_target(engine: Engine, name: str = MODEL_NAME) -> int | None:
    """The version `registry.rollback` would restore (the champion before the current one, by
    the ledger's champion history), or None when there is nothing to roll back."""
    with read_session(engine) as s:
        history = registry._champion_history(s, name)
    return history[-2] if len(history) >= 2 else None


def slice_metrics(
    chosen: registry.RegisteredModel,
    champion: registry.RegisteredModel | None,
    slice_name: str = "tool",
) -> pl.DataFrame:
    """Per value of `slice_name` (tool, material, epoch): the chosen version's metrics and, when
    another version is the champion, the champion's (each on its own evaluation epochs)."""
    if slice_name not in SLICES:
        raise ValueError(f"unknown slice {slice_name!r}: one of {', '.join(SLICES)}")
    models = [("chosen", chosen)]
    if champion is not None and champion.version != chosen.version:
        models.append(("champion", champion))
    rows = []
    for role, model in models:
        slices = model.metrics.get("evaluation", {}).get("slices", {}).get(slice_name, {})
        for key, block in slices.items():
            thk, comp = block.get("thickness", {}), block.get("composition", {})
            rows.append({
                "slice": slice_name, "key": str(key), "role": role, "version": model.version,
                "thickness_n": thk.get("n", 0), "thickness_mape_pct": _number(thk.get("mape_pct")),
                "thickness_mae_nm": _number(thk.get("mae")), "thickness_coverage": _number(thk.get("coverage")),
                "composition_n": comp.get("n", 0), "composition_mae": _number(comp.get("mae")),
                "composition_coverage": _number(comp.get("coverage")),
            })  # fmt: skip
    if not rows:
        return pl.DataFrame(schema=SLICE_SCHEMA)
    return pl.DataFrame(rows, schema=SLICE_SCHEMA).sort("key", "role", descending=[False, True])


def lineage_of(model: registry.RegisteredModel) -> Lineage:
    lineage = model.lineage
    files = lineage.get("files", {}) or {}
    hp = dict(model.hyperparameters)
    search = hp.pop("search", {}) or {}
    return Lineage(
        version=model.version,
        runs=sorted(lineage.get("runs", [])),
        files=len(files),
        file_hashes=sorted(files),
        code_version=model.code_version,
        features_version=model.features_version or lineage.get("features_version"),
        device=model.device,
        artifact_sha256=model.artifact_sha256,
        training_set_sha256=lineage.get("training_set_sha256"),
        layers=dict(lineage.get("layers", {}) or {}),
        epochs={k: list(v) for k, v in (lineage.get("epochs", {}) or {}).items()},
        hyperparameters=hp,
        search=search,
    )


def apply_action(
    engine: Engine,
    action: str,
    version: int | None,
    *,
    user: str,
    name: str = MODEL_NAME,
    reason: str | None = None,
) -> ActionResult:
    """Promote `version` or roll back the champion, recorded in the ledger as decided by `user`
    (the registry's own calls, as `epi-ml promote` / `epi-ml rollback`). Never raises for what
    the registry refuses: the result says why."""
    try:
        if action == PROMOTE:
            if version is None:
                return ActionResult(False, "choose a version to promote")
            previous = registry.promote(
                engine, name, version, decided_by=user,
                reasons=[reason or "promoted from the dashboard"],
            )  # fmt: skip
            was = f" (was v{previous})" if previous is not None else ""
            return ActionResult(True, f"{name} v{version} is the champion{was}; decided by {user}")
        if action == ROLLBACK:
            restored = registry.rollback(
                engine, name, decided_by=user, reason=reason or "rolled back from the dashboard"
            )
            return ActionResult(True, f"{name} v{restored.version} is the champion again; decided by {user}")
    except (registry.ModelNotFound, registry.NothingToRollBack, ValueError, RuntimeError) as exc:
        return ActionResult(False, str(exc))
    return ActionResult(False, f"unknown action {action!r}: {PROMOTE} or {ROLLBACK}")


def when(moment: datetime | str | None) -> str:
    """A ledger or registry time as `YYYY-MM-DD HH:MM:SS` (UTC)."""
    if moment is None:
        return ""
    text = moment.isoformat() if isinstance(moment, datetime) else str(moment)
    return text[:19].replace("T", " ")
