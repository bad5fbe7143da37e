"""`epi-ml doctor`: what is installed, which device torch uses, whether the store is reachable."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from epi_ml.settings import Settings

PACKAGES = (
    "epi-ml", "torch", "polars", "pandas", "dagster", "dagster-webserver", "dash", "plotly",
    "sqlalchemy", "alembic", "psycopg", "pydantic",
)  # fmt: skip


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class DoctorReport:
    versions: dict[str, str]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "versions": self.versions,
            "checks": [c.__dict__ for c in self.checks],
        }


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def run_doctor(settings: Settings) -> DoctorReport:
    report = DoctorReport(
        versions={"python": platform.python_version()} | {p: _package_version(p) for p in PACKAGES}
    )
    report.checks.append(_device_check(settings))
    report.checks.append(_home_check(settings))
    report.checks.extend(_store_checks(settings))
    return report


def _device_check(settings: Settings) -> Check:
    try:
        import torch

        from epi_ml.device import describe_device, select_device

        device = select_device(settings.device)
        cuda = "CUDA available" if torch.cuda.is_available() else "no CUDA device"
        return Check("torch device", True, f"{describe_device(device)} ({cuda})")
    except Exception as exc:  # noqa: BLE001 - doctor reports every failure, it never raises
        return Check("torch device", False, f"{type(exc).__name__}: {exc}")


def _home_check(settings: Settings) -> Check:
    home = settings.home
    if not home.exists():
        return Check("home", False, f"{home} does not exist — run `epi-ml init`")
    probe = home / ".doctor-write-probe"
    try:
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Check("home", False, f"{home} is not writable: {exc}")
    free_gb = shutil.disk_usage(home).free / 1e9
    return Check(
        "home", True, f"{home} (writable, {free_gb:.1f} GB free; DAGSTER_HOME={settings.dagster_home})"
    )


def _store_checks(settings: Settings) -> list[Check]:
    from sqlalchemy import make_url

    from epi_ml.store import check_connection, current_revision, head_revision, make_engine, redact

    url = redact(settings.database_url)
    parsed = make_url(settings.database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return [Check("store", False, f"{url}: no database file yet — run `epi-ml init`")]
    try:
        engine = make_engine(settings.database_url)
        server = check_connection(engine)
        revision = current_revision(engine)
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        return [Check("store", False, f"{url}: cannot connect: {type(exc).__name__}: {exc}")]
    head = head_revision()
    checks = [Check("store", True, f"{url} ({server})")]
    if revision == head:
        checks.append(Check("schema", True, f"at head revision {head}"))
    else:
        checks.append(
            Check("schema", False, f"at {revision or 'no schema'}, head is {head} — run `epi-ml init`")
        )
    return checks
