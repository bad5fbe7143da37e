"""The `epi-ml` command. Each capability registers its commands from its own module."""

from __future__ import annotations

import json

import typer

from epi_ml import __version__
from epi_ml.settings import get_settings

app = typer.Typer(
    name="epi-ml",
    help="Process ML for molecular beam epitaxy: simulate, ingest, validate, predict, monitor.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Schema migrations of the relational store (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"epi-ml {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Settings come from EPI_ML_HOME, EPI_ML_DATABASE_URL and DAGSTER_HOME (see README)."""


@app.command()
def doctor(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Versions, torch device (CUDA name or CPU), store URL and connectivity, home folder."""
    from epi_ml.doctor import run_doctor

    report = run_doctor(get_settings())
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for name, ver in report.versions.items():
            typer.echo(f"{name:>18}  {ver}")
        typer.echo("")
        for check in report.checks:
            mark = "ok  " if check.ok else "FAIL"
            typer.echo(f"[{mark}] {check.name}: {check.detail}")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def init() -> None:
    """Create the home folder and bring the store's schema to the latest migration."""
    from epi_ml.store import redact, upgrade

    settings = get_settings()
    settings.ensure_home()
    upgrade(settings.database_url)
    typer.echo(f"home  {settings.home}")
    typer.echo(f"store {redact(settings.database_url)} (schema at head)")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from epi_ml.store import upgrade

    upgrade(get_settings().database_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="e.g. -1 or base")) -> None:
    """Revert migrations down to REVISION."""
    from epi_ml.store.db import downgrade

    downgrade(get_settings().database_url, revision)


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the store and the head revision of the code."""
    from epi_ml.store import current_revision, head_revision, make_engine

    engine = make_engine(get_settings().database_url)
    typer.echo(f"store: {current_revision(engine) or 'empty'}  code head: {head_revision()}")


# feature commands register here (one line per capability module)
_FEATURES: list[str] = ["assets.cli", "dashboard.cli"]
_FEATURES.append("epi_ml.twin.cli")  # simulate, live: the digital twin
_FEATURES.append("epi_ml.ingest.cli")  # ingest: files into the store, runs built
_FEATURES.append("epi_ml.live.cli")  # tail: live samples into the store
_FEATURES.append("epi_ml.calibration.cli")  # calibrate: Arrhenius fits, drift
_FEATURES.append("epi_ml.analysis.rheed_cli")  # rheed: growth rate from RHEED oscillations
_FEATURES.append("epi_ml.models.cli")  # train, models, promote, rollback, predict


def _register_features() -> None:
    import importlib

    for module_name in _FEATURES:
        importlib.import_module(module_name).register(app)


_register_features()
