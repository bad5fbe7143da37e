"""The model registry on SQLite and PostgreSQL: versions, aliases, the ledger, promote/rollback."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, delete, make_url, text, update

from epi_ml.models.registry import (
    ArtifactMismatch,
    ModelNotFound,
    NothingToRollBack,
    RegisteredModel,
    artifact_digest,
    get_model,
    ledger,
    list_models,
    model_for_alias,
    promote,
    record_decision,
    register_model,
    rollback,
    set_alias,
    set_challenger,
    verify_artifact,
)
from epi_ml.store import make_engine, upgrade, write_session
from epi_ml.store.models import ModelAlias, ModelVersion, Promotion

LINEAGE = {
    "runs": ["MBE1-20260105-01", "MBE1-20260105-02"],
    "files": {"a" * 64: "landing/Ga.T.txt"},
    "training_set_sha256": "b" * 64,
    "nested": {"split": [0.8, 0.2], "seed": 7, "ok": True, "none": None},
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def migrated_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated store per backend for the module (migrating per test would cost seconds):
    an SQLite file, or a PostgreSQL schema of its own in the session's database."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'store.db'}", None
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        database = request.getfixturevalue("postgres_database")
        _admin(database, f'CREATE SCHEMA "{schema}"')
        url = make_url(database).update_query_dict({"options": f"-csearch_path={schema}"})
        url = url.render_as_string(hide_password=False)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    if schema is not None:
        _admin(database, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _admin(url: str, statement: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(statement))
    admin.dispose()


@pytest.fixture
def engine(migrated_engine: Engine) -> Iterator[Engine]:
    """The module's store, emptied of models before each test."""
    with write_session(migrated_engine) as s:
        for table in (Promotion, ModelAlias, ModelVersion):
            s.execute(delete(table))
    yield migrated_engine


def _artifact(root: Path, tag: str) -> Path:
    directory = root / f"artifact-{tag}"
    (directory / "weights").mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"tag": tag, "hidden": 16}))
    (directory / "weights" / "model.bin").write_bytes(bytes(range(64)) + tag.encode())
    return directory


def _register(engine: Engine, root: Path, tag: str, name: str = "thickness") -> RegisteredModel:
    return register_model(
        engine, name=name, kind="hybrid_torch", artifact_dir=_artifact(root, f"{name}-{tag}"),
        device="cpu", features_version="f3", code_version="abc123",
        hyperparameters={"lr": 1e-3, "layers": [32, 16]}, metrics={"mae_nm": 0.8}, lineage=LINEAGE,
    )  # fmt: skip


def test_versions_count_up_per_name_and_every_field_round_trips(
    engine: Engine, tmp_path: Path
) -> None:
    first = _register(engine, tmp_path, "a")
    second = _register(engine, tmp_path, "b")
    other = _register(engine, tmp_path, "a", name="composition")
    assert (first.version, second.version, other.version) == (1, 2, 1)

    loaded = get_model(engine, "thickness", 1)
    assert loaded == first
    assert loaded.kind == "hybrid_torch" and loaded.device == "cpu"
    assert (loaded.features_version, loaded.code_version) == ("f3", "abc123")
    assert loaded.hyperparameters == {"lr": 1e-3, "layers": [32, 16]}
    assert loaded.metrics == {"mae_nm": 0.8}
    assert loaded.lineage == LINEAGE
    assert loaded.artifact_path == str(tmp_path / "artifact-thickness-a")
    assert loaded.artifact_sha256 == artifact_digest(tmp_path / "artifact-thickness-a")
    assert loaded.created_at.tzinfo is not None
    assert loaded.aliases == ()

    as_dict = json.loads(json.dumps(loaded.to_dict()))  # JSON-friendly
    assert as_dict["lineage"] == LINEAGE and as_dict["version"] == 1 and as_dict["aliases"] == []
    assert as_dict["created_at"] == loaded.created_at.isoformat()

    assert [(m.name, m.version) for m in list_models(engine)] == [
        ("composition", 1), ("thickness", 2), ("thickness", 1),
    ]  # fmt: skip
    assert [m.version for m in list_models(engine, "thickness")] == [2, 1]
    assert list_models(engine, "nope") == []

    missing = r"'thickness' has no version 7 \(registered: 1, 2\)"
    with pytest.raises(ModelNotFound, match=missing) as e:
        get_model(engine, "thickness", 7)
    assert "see `epi-ml models`" in str(e.value) and isinstance(e.value, LookupError)
    with pytest.raises(ModelNotFound, match=r"no model named 'nope'.*version 1.*`epi-ml models`"):
        get_model(engine, "nope", 1)


def test_concurrent_registrations_get_distinct_versions(engine: Engine, tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def writer(w: int) -> None:
        try:
            barrier.wait()
            for i in range(3):
                _register(engine, tmp_path, f"w{w}-{i}")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(m.version for m in list_models(engine, "thickness")) == [1, 2, 3, 4, 5, 6]


def test_artifact_digest_is_stable_and_verify_detects_changes(tmp_path: Path) -> None:
    directory = _artifact(tmp_path, "thickness-a")
    model = RegisteredModel(
        id=1, name="thickness", version=1, kind="gbm", artifact_path=str(directory),
        artifact_sha256=artifact_digest(directory), device="cpu", features_version=None,
        code_version=None, hyperparameters={}, metrics={}, lineage={}, created_at=datetime.now(UTC),
    )  # fmt: skip
    assert artifact_digest(directory) == model.artifact_sha256  # same bytes, same digest
    verify_artifact(model)

    (directory / "weights" / "model.bin").write_bytes(b"retrained")
    with pytest.raises(ArtifactMismatch, match="has changed") as e:
        verify_artifact(model)
    assert str(directory) in str(e.value) and model.artifact_sha256 in str(e.value)
    assert artifact_digest(directory) in str(e.value)

    # A renamed file with the same bytes is a change too.
    (directory / "weights" / "model.bin").write_bytes(bytes(range(64)) + b"thickness-a")
    verify_artifact(model)
    (directory / "config.json").rename(directory / "config2.json")
    with pytest.raises(ArtifactMismatch):
        verify_artifact(model)

    shutil.rmtree(directory)
    with pytest.raises(ArtifactMismatch, match="is missing"):
        verify_artifact(model)


def test_gate_decisions_promote_and_rollback_fill_the_ledger(
    engine: Engine, tmp_path: Path
) -> None:
    for tag in "abc":
        _register(engine, tmp_path, tag)
    _register(engine, tmp_path, "a", name="composition")
    with pytest.raises(NothingToRollBack, match="no earlier champion"):
        rollback(engine, "thickness")

    gate_fail = record_decision(
        engine, name="thickness", version=1, action="gate_fail", passed=False,
        reasons=["coverage 0.81 < 0.9"], metrics={"coverage": 0.81},
    )  # fmt: skip
    gate_pass = record_decision(
        engine, name="composition", version=1, action="gate_pass", passed=True, reasons=[],
        metrics=None, decided_by="ci",
    )  # fmt: skip
    assert gate_fail < gate_pass
    for action in ("ship", "promote"):  # promotions go through promote(), which moves the alias
        with pytest.raises(ValueError, match="records gate decisions"):
            record_decision(engine, name="thickness", version=1, action=action, passed=True,
                            reasons=[], metrics=None)  # fmt: skip
    with pytest.raises(ModelNotFound):
        record_decision(engine, name="thickness", version=9, action="gate_pass", passed=True,
                        reasons=[], metrics=None)  # fmt: skip
    assert [(r["name"], r["action"], r["passed"]) for r in ledger(engine)] == [
        ("thickness", "gate_fail", False), ("composition", "gate_pass", True),
    ]  # fmt: skip
    assert [r["id"] for r in ledger(engine, "composition")] == [gate_pass]

    assert promote(engine, "thickness", 1, reasons=["first model"]) is None
    with pytest.raises(NothingToRollBack):
        rollback(engine, "thickness")
    assert promote(engine, "thickness", 2) == 1
    set_challenger(engine, "thickness", 3, reasons=["gate passed"])
    assert get_model(engine, "thickness", 3).aliases == ("challenger",)
    assert promote(engine, "thickness", 3, decided_by="alice", metrics={"mae_nm": 0.5}) == 2
    assert model_for_alias(engine, "thickness", "challenger") is None  # promoted: no longer one
    assert model_for_alias(engine, "thickness", "champion").version == 3  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="already the champion"):
        promote(engine, "thickness", 3)

    restored = rollback(engine, "thickness", decided_by="bob", reason="drift on MBE1")
    assert restored.version == 2 and restored.aliases == ("champion",)
    assert rollback(engine, "thickness").version == 1
    with pytest.raises(NothingToRollBack, match="current champion: v1"):
        rollback(engine, "thickness")
    assert model_for_alias(engine, "thickness", "champion").version == 1  # type: ignore[union-attr]

    # A promotion after rollbacks starts from the restored champion.
    assert promote(engine, "thickness", 3) == 1
    assert rollback(engine, "thickness").version == 1

    rows = ledger(engine, "thickness")
    assert [(r["action"], r["version"], r["previous_version"]) for r in rows] == [
        ("gate_fail", 1, None), ("promote", 1, None), ("promote", 2, 1), ("challenger", 3, None),
        ("promote", 3, 2), ("rollback", 2, 3), ("rollback", 1, 2), ("promote", 3, 1),
        ("rollback", 1, 3),
    ]  # fmt: skip
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[0]["reasons"] == ["coverage 0.81 < 0.9"]
    assert rows[0]["metrics"] == {"coverage": 0.81} and rows[0]["passed"] is False
    assert rows[1]["reasons"] == ["first model"] and rows[1]["alias"] == "champion"
    assert rows[1]["passed"] is None and rows[1]["decided_by"] == "system"
    assert rows[4]["decided_by"] == "alice" and rows[4]["metrics"] == {"mae_nm": 0.5}
    assert rows[5]["decided_by"] == "bob" and rows[5]["reasons"] == ["drift on MBE1"]
    assert json.loads(json.dumps(rows)) == rows


def test_aliases_are_listed_and_the_champion_moves_only_through_promote(
    engine: Engine, tmp_path: Path
) -> None:
    for tag in "ab":
        _register(engine, tmp_path, tag)
    promote(engine, "thickness", 1)
    set_alias(engine, "thickness", "shadow", 1)
    set_alias(engine, "thickness", "canary", 2)
    set_alias(engine, "thickness", "canary", 1)  # moved
    by_version = {m.version: m.aliases for m in list_models(engine, "thickness")}
    assert by_version == {1: ("canary", "champion", "shadow"), 2: ()}
    assert get_model(engine, "thickness", 1).aliases == ("canary", "champion", "shadow")
    assert model_for_alias(engine, "thickness", "nope") is None

    with pytest.raises(ValueError, match="promote"):
        set_alias(engine, "thickness", "champion", 2)
    with pytest.raises(ModelNotFound):
        set_alias(engine, "thickness", "canary", 9)
    with pytest.raises(ValueError, match="cannot also be the challenger"):
        set_challenger(engine, "thickness", 1)

    # An alias moved behind the registry's back is refused by rollback, not silently followed.
    promote(engine, "thickness", 2)
    first_id = get_model(engine, "thickness", 1).id
    with write_session(engine) as s:
        champion = update(ModelAlias).where(ModelAlias.alias == "champion")
        s.execute(champion.values(model_version_id=first_id))
    with pytest.raises(RuntimeError, match="outside promote"):
        rollback(engine, "thickness")
