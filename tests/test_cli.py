"""The epi-ml command line and settings."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from epi_ml.cli import app
from epi_ml.settings import Settings
from epi_ml.store import head_revision

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("doctor", "init", "db"):
        assert command in result.output


def test_doctor_fails_before_init_and_passes_after(isolated_home: Path) -> None:
    before = runner.invoke(app, ["doctor", "--json"])
    assert before.exit_code == 1
    report = json.loads(before.output)
    failing = {c["name"] for c in report["checks"] if not c["ok"]}
    assert failing == {"home", "store"}
    assert not isolated_home.exists(), "doctor must not create anything"

    assert runner.invoke(app, ["init"]).exit_code == 0
    after = runner.invoke(app, ["doctor", "--json"])
    assert after.exit_code == 0, after.output
    report = json.loads(after.output)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["torch device"]["detail"].startswith(("cpu", "NVIDIA", "Tesla"))
    assert str(isolated_home) in checks["home"]["detail"]
    assert "sqlite" in checks["store"]["detail"] and checks["schema"]["ok"]
    assert report["versions"]["torch"] != "not installed"


def test_settings_defaults_live_under_the_home(isolated_home: Path) -> None:
    settings = Settings()
    assert settings.home == isolated_home.resolve()
    assert settings.database_url == f"sqlite:///{isolated_home.resolve() / 'epi-ml.db'}"
    assert settings.dagster_home == isolated_home.resolve() / "dagster"


def test_settings_read_the_environment(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EPI_ML_DATABASE_URL", "postgresql+psycopg://u:secret@db/epi")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dg"))
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u:secret@db/epi"
    assert settings.dagster_home == tmp_path / "dg"


def test_db_downgrade_and_upgrade_from_the_cli(isolated_home: Path) -> None:
    head = head_revision()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert f"store: {head}" in runner.invoke(app, ["db", "current"]).output
    assert runner.invoke(app, ["db", "downgrade", "--", "-1"]).exit_code == 0
    assert f"store: {head}" not in runner.invoke(app, ["db", "current"]).output
    assert runner.invoke(app, ["db", "downgrade", "base"]).exit_code == 0
    assert "store: empty" in runner.invoke(app, ["db", "current"]).output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert f"store: {head}" in runner.invoke(app, ["db", "current"]).output
