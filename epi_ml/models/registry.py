"""The model registry: versioned models, their `champion` / `challenger` aliases and the ledger.

A *model* is a name (e.g. `thickness`) with integer versions 1, 2, ... Each version records its
artifact directory and the SHA-256 of its contents (`artifact_digest`), the device it was trained
on, the feature and code versions, hyper-parameters, metrics and lineage (runs, files, training
set). Versions are never changed nor deleted; `verify_artifact` checks that the directory on disk
is still the one that was registered.

Aliases point a name at one of its versions:
- `champion`:   the version in service. It moves only through `promote` and `rollback`, so that
                the ledger always explains it (`set_alias` refuses it).
- `challenger`: a candidate evaluated against the champion (`set_challenger`).

The ledger (`promotions` table) is append-only, oldest first. Its actions:
- `gate_pass` / `gate_fail`: a gate decision about a version (`record_decision`), with `passed`,
  its reasons and the metrics it was decided on.
- `challenger`: the version became the challenger (`set_challenger`).
- `promote`:    the version became the champion; `previous_version` is the champion it replaced.
- `rollback`:   the version was restored as champion; `previous_version` is the one demoted.

Rollback follows the ledger: replaying it, a `promote` pushes its version on the champion
history and a `rollback` pops the demoted one, so successive rollbacks walk back through the
promotions (promote 1, 2, 3; rollback -> 2; rollback -> 1; rollback -> nothing to roll back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from epi_ml.store import read_session, write_session
from epi_ml.store.models import ModelAlias, ModelVersion, Promotion

CHAMPION = "champion"
CHALLENGER = "challenger"
GATE_ACTIONS = ("gate_pass", "gate_fail")
ACTIONS = (*GATE_ACTIONS, "challenger", "promote", "rollback")
REGISTER_ATTEMPTS = 3  # a registration that loses a race for a version number takes the next one
_CHUNK = 1 << 20


class ModelNotFound(LookupError):
    """No such model name, version or alias in the registry."""


class ArtifactMismatch(RuntimeError):
    """The artifact directory of a model is missing or no longer holds what was registered."""


class NothingToRollBack(RuntimeError):
    """The model has no earlier champion to restore."""


@dataclass(frozen=True)
class RegisteredModel:
    """One registered version of a model, with the aliases that point at it."""

    id: int
    name: str
    version: int
    kind: str
    artifact_path: str | None
    artifact_sha256: str | None
    device: str | None
    features_version: str | None
    code_version: str | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "artifact_path": self.artifact_path,
            "artifact_sha256": self.artifact_sha256,
            "device": self.device,
            "features_version": self.features_version,
            "code_version": self.code_version,
            "hyperparameters": self.hyperparameters,
            "metrics": self.metrics,
            "lineage": self.lineage,
            "created_at": self.created_at.isoformat(),
            "aliases": list(self.aliases),
        }


# ---------------------------------------------------------------------------------------------
# Artifacts
def artifact_digest(directory: Path) -> str:
    """SHA-256 over the sorted relative names and the bytes of every file under `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"artifact directory {directory} does not exist")
    digest = hashlib.sha256()
    files = sorted((p for p in directory.rglob("*") if p.is_file()), key=lambda p: p.as_posix())
    for path in files:
        content = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                content.update(chunk)
        # name NUL content-hash LF: unambiguous whatever the names and bytes are.
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(content.hexdigest().encode() + b"\n")
    return digest.hexdigest()


def verify_artifact(model: RegisteredModel) -> None:
    """Raise `ArtifactMismatch` when the model's artifact directory is missing or has changed."""
    path = Path(model.artifact_path) if model.artifact_path else None
    if path is None or not path.is_dir():
        raise ArtifactMismatch(
            f"artifact of {model.label} is missing: {model.artifact_path} is not a directory "
            f"(expected sha256 {model.artifact_sha256})"
        )
    found = artifact_digest(path)
    if found != model.artifact_sha256:
        raise ArtifactMismatch(
            f"artifact of {model.label} at {path} has changed since it was registered: "
            f"expected sha256 {model.artifact_sha256}, found {found}"
        )


# ---------------------------------------------------------------------------------------------
# Versions
def register_model(
    engine: Engine,
    *,
    name: str,
    kind: str,
    artifact_dir: Path,
    device: str | None,
    features_version: str | None,
    code_version: str | None,
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any],
    lineage: dict[str, Any],
) -> RegisteredModel:
    """Register the next version of `name` (1, 2, ...) with the digest of `artifact_dir`."""
    artifact_dir = Path(artifact_dir).absolute()
    sha256 = artifact_digest(artifact_dir)
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            with write_session(engine) as s:
                _lock_name(s, name)
                latest = s.scalar(
                    select(func.max(ModelVersion.version)).where(ModelVersion.name == name)
                )
                row = ModelVersion(
                    name=name, version=(latest or 0) + 1, kind=kind,
                    artifact_path=str(artifact_dir), artifact_sha256=sha256, device=device,
                    features_version=features_version, code_version=code_version,
                    hyperparameters=dict(hyperparameters), metrics=dict(metrics),
                    lineage=dict(lineage),
                )  # fmt: skip
                s.add(row)
                s.flush()
                return _registered(s, row)
        except IntegrityError:  # another writer took this version number first
            if attempt == REGISTER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def list_models(engine: Engine, name: str | None = None) -> list[RegisteredModel]:
    """Registered versions (of `name`, or of every model), newest first, with their aliases."""
    with read_session(engine) as s:
        query = select(ModelVersion).order_by(
            ModelVersion.created_at.desc(), ModelVersion.id.desc()
        )
        if name is not None:
            query = query.where(ModelVersion.name == name)
        rows = list(s.scalars(query))
        aliases: dict[int, list[str]] = {}
        ids = [row.id for row in rows]
        if ids:
            for alias in s.scalars(select(ModelAlias).where(ModelAlias.model_version_id.in_(ids))):
                aliases.setdefault(alias.model_version_id, []).append(alias.alias)
        return [_registered(s, row, aliases.get(row.id, [])) for row in rows]


def get_model(engine: Engine, name: str, version: int) -> RegisteredModel:
    """The registered `version` of `name`; raises `ModelNotFound` when there is none."""
    with read_session(engine) as s:
        return _registered(s, _version_row(s, name, version))


def model_for_alias(engine: Engine, name: str, alias: str) -> RegisteredModel | None:
    """The version of `name` that `alias` points at, or None when the alias is not set."""
    with read_session(engine) as s:
        pointer = s.get(ModelAlias, (name, alias))
        if pointer is None:
            return None
        row = s.get(ModelVersion, pointer.model_version_id)
        assert row is not None  # the foreign key guarantees it
        return _registered(s, row)


# ---------------------------------------------------------------------------------------------
# Ledger
def record_decision(
    engine: Engine,
    *,
    name: str,
    version: int,
    action: str,
    passed: bool | None,
    reasons: Sequence[str],
    metrics: dict[str, Any] | None,
    alias: str | None = None,
    previous_version: int | None = None,
    decided_by: str = "system",
) -> int:
    """Append a gate decision (`gate_pass` / `gate_fail`) about a registered version to the
    ledger; returns the row id. `promote`, `rollback` and `set_challenger` write their own rows,
    in the transaction that moves the alias."""
    if action not in GATE_ACTIONS:
        raise ValueError(
            f"record_decision records gate decisions ({', '.join(GATE_ACTIONS)}), not {action!r}: "
            "use promote(), rollback() or set_challenger() to move an alias"
        )
    with write_session(engine) as s:
        _version_row(s, name, version)
        return _append(
            s, name=name, version=version, action=action, passed=passed, reasons=reasons,
            metrics=metrics, alias=alias, previous_version=previous_version, decided_by=decided_by,
        )  # fmt: skip


def ledger(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    """Ledger rows (of `name`, or of every model), oldest first, JSON-friendly."""
    with read_session(engine) as s:
        query = select(Promotion).order_by(Promotion.id)
        if name is not None:
            query = query.where(Promotion.name == name)
        return [
            {
                "id": row.id,
                "name": row.name,
                "version": row.version,
                "action": row.action,
                "alias": row.alias,
                "previous_version": row.previous_version,
                "passed": row.passed,
                "reasons": list(row.reasons),
                "metrics": dict(row.metrics),
                "decided_by": row.decided_by,
                "decided_at": row.decided_at.isoformat(),
            }
            for row in s.scalars(query)
        ]


# ---------------------------------------------------------------------------------------------
# Aliases, promotion, rollback
def set_alias(engine: Engine, name: str, alias: str, version: int) -> None:
    """Point `alias` of `name` at `version` (insert or move). The champion moves only by
    `promote` / `rollback`, which record why in the ledger."""
    if alias == CHAMPION:
        raise ValueError(
            f"the {CHAMPION} alias of {name!r} moves only through promote() or rollback(), "
            "so that the ledger records why"
        )
    with write_session(engine) as s:
        _lock_name(s, name)
        _point(s, name, alias, _version_row(s, name, version))


def set_challenger(
    engine: Engine,
    name: str,
    version: int,
    *,
    decided_by: str = "system",
    reasons: Sequence[str] = (),
    metrics: dict[str, Any] | None = None,
) -> int:
    """Make `version` the challenger of `name`; appends a `challenger` ledger row (its id)."""
    with write_session(engine) as s:
        _lock_name(s, name)
        row = _version_row(s, name, version)
        champion = _alias_version(s, name, CHAMPION)
        if champion == version:
            raise ValueError(
                f"{name} v{version} is the {CHAMPION}; it cannot also be the challenger"
            )
        previous = _alias_version(s, name, CHALLENGER)
        _point(s, name, CHALLENGER, row)
        return _append(
            s, name=name, version=version, action="challenger", passed=None, reasons=reasons,
            metrics=metrics, alias=CHALLENGER, previous_version=previous, decided_by=decided_by,
        )  # fmt: skip


def promote(
    engine: Engine,
    name: str,
    version: int,
    *,
    decided_by: str = "system",
    reasons: Sequence[str] = (),
    metrics: dict[str, Any] | None = None,
) -> int | None:
    """Make `version` the champion of `name`; returns the previous champion's version (or None).

    Drops the challenger alias if it pointed at `version`, and appends a `promote` ledger row."""
    with write_session(engine) as s:
        _lock_name(s, name)
        row = _version_row(s, name, version)
        previous = _alias_version(s, name, CHAMPION)
        if previous == version:
            raise ValueError(f"{name} v{version} is already the {CHAMPION}: nothing to promote")
        _point(s, name, CHAMPION, row)
        _drop_alias_if(s, name, CHALLENGER, row.id)
        _append(
            s, name=name, version=version, action="promote", passed=None, reasons=reasons,
            metrics=metrics, alias=CHAMPION, previous_version=previous, decided_by=decided_by,
        )  # fmt: skip
        return previous


def rollback(
    engine: Engine, name: str, *, decided_by: str = "system", reason: str | None = None
) -> RegisteredModel:
    """Restore the champion that was in force before the current one (see the module docstring);
    appends a `rollback` ledger row whose previous_version is the version demoted."""
    with write_session(engine) as s:
        _lock_name(s, name)
        current = _alias_version(s, name, CHAMPION)
        history = _champion_history(s, name)
        if current is None or len(history) < 2:
            raise NothingToRollBack(
                f"model {name!r} has no earlier {CHAMPION} to roll back to "
                f"(current {CHAMPION}: {'none' if current is None else f'v{current}'}); "
                "see `epi-ml models`"
            )
        if history[-1] != current:
            raise RuntimeError(
                f"the {CHAMPION} alias of {name!r} points at v{current} but the ledger says "
                f"v{history[-1]}: it was moved outside promote()/rollback(); promote the intended "
                "version to record it"
            )
        restored = _version_row(s, name, history[-2])
        _point(s, name, CHAMPION, restored)
        _drop_alias_if(s, name, CHALLENGER, restored.id)
        _append(
            s, name=name, version=restored.version, action="rollback", passed=None,
            reasons=[reason] if reason else [], metrics=None, alias=CHAMPION,
            previous_version=current, decided_by=decided_by,
        )  # fmt: skip
        return _registered(s, restored)


# ---------------------------------------------------------------------------------------------
# Helpers (inside a session)
def _registered(
    s: Session, row: ModelVersion, aliases: Sequence[str] | None = None
) -> RegisteredModel:
    if aliases is None:
        aliases = s.scalars(
            select(ModelAlias.alias).where(ModelAlias.model_version_id == row.id)
        ).all()
    return RegisteredModel(
        id=row.id, name=row.name, version=row.version, kind=row.kind,
        artifact_path=row.artifact_path, artifact_sha256=row.artifact_sha256, device=row.device,
        features_version=row.features_version, code_version=row.code_version,
        hyperparameters=dict(row.hyperparameters or {}), metrics=dict(row.metrics or {}),
        lineage=dict(row.lineage or {}), created_at=row.created_at, aliases=tuple(sorted(aliases)),
    )  # fmt: skip


def _version_row(s: Session, name: str, version: int) -> ModelVersion:
    row = s.scalars(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    ).one_or_none()
    if row is not None:
        return row
    known = s.scalars(
        select(ModelVersion.version).where(ModelVersion.name == name).order_by(ModelVersion.version)
    ).all()
    if known:
        registered = ", ".join(map(str, known))
        detail = f"model {name!r} has no version {version} (registered: {registered})"
    else:
        detail = f"no model named {name!r} is registered (looking for version {version})"
    raise ModelNotFound(f"{detail}; see `epi-ml models` for the registered models")


def _lock_name(s: Session, name: str) -> None:
    """Serialize the writers of `name` (registrations, alias moves) until the transaction ends.
    PostgreSQL only: an SQLite write transaction holds the database lock (BEGIN IMMEDIATE)."""
    if s.get_bind().dialect.name == "postgresql":
        key = f"epi_ml.models:{name}"
        s.execute(text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def _alias_version(s: Session, name: str, alias: str) -> int | None:
    return s.scalar(
        select(ModelVersion.version)
        .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
        .where(ModelAlias.name == name, ModelAlias.alias == alias)
    )


def _point(s: Session, name: str, alias: str, row: ModelVersion) -> None:
    pointer = s.get(ModelAlias, (name, alias))
    if pointer is None:
        s.add(ModelAlias(name=name, alias=alias, model_version_id=row.id))
    else:
        pointer.model_version_id = row.id
    s.flush()


def _drop_alias_if(s: Session, name: str, alias: str, model_version_id: int) -> None:
    pointer = s.get(ModelAlias, (name, alias))
    if pointer is not None and pointer.model_version_id == model_version_id:
        s.delete(pointer)
        s.flush()


def _append(
    s: Session,
    *,
    name: str,
    version: int,
    action: str,
    passed: bool | None,
    reasons: Sequence[str],
    metrics: dict[str, Any] | None,
    alias: str | None,
    previous_version: int | None,
    decided_by: str,
) -> int:
    if action not in ACTIONS:
        raise ValueError(f"unknown ledger action {action!r}: expected one of {', '.join(ACTIONS)}")
    row = Promotion(
        name=name, version=version, action=action, alias=alias, previous_version=previous_version,
        passed=passed, reasons=list(reasons), metrics=dict(metrics or {}), decided_by=decided_by,
    )  # fmt: skip
    s.add(row)
    s.flush()
    return row.id


def _champion_history(s: Session, name: str) -> list[int]:
    """The champions of `name` still on the stack, oldest first, replaying the ledger."""
    history: list[int] = []
    actions = select(Promotion).where(
        Promotion.name == name, Promotion.action.in_(("promote", "rollback"))
    )
    for row in s.scalars(actions.order_by(Promotion.id)):
        if row.action == "promote":
            history.append(row.version)
        elif history:  # a rollback demoted the top and restored the one below it
            history.pop()
    return history
