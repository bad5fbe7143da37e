"""CLI commands that drive Dagster: `epi-ml pipeline`, `epi-ml serve`, `epi-ml demo`.

Registered by epi_ml/cli.py; dagster is imported inside the commands so that `epi-ml --help`
stays fast and the domain core never depends on it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import typer

from assets.instance import ensure_instance_config
from epi_ml.settings import get_settings

DAGSTER_PORT = 3000
DASHBOARD_PORT = 8050
LIVE_POLL_S = 0.1  # the tailer that `serve` starts (bench_dashboard runs it the same way)


def register(app: typer.Typer) -> None:
    app.command()(pipeline)
    app.command()(serve)
    app.command()(demo)


def pipeline() -> None:
    """Materialize everything pending, in-process: the same assets the Dagster UI runs."""
    from assets.run import run_pipeline

    settings = get_settings()
    settings.ensure_home()
    settings.export_dagster_home()
    ensure_instance_config(settings.dagster_home)
    for line in run_pipeline():
        typer.echo(line)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface for the UIs (localhost by default)."),
    dagster_port: int = typer.Option(DAGSTER_PORT, help="Dagster UI port."),
    dashboard_port: int = typer.Option(DASHBOARD_PORT, help="Dashboard port."),
) -> None:
    """Serve the Dagster UI (webserver + daemon, sensors on), the dashboard and the live tailer
    until Ctrl-C."""
    settings = get_settings()
    settings.ensure_home()
    ensure_instance_config(settings.dagster_home)
    env = os.environ | {"DAGSTER_HOME": str(settings.dagster_home), "EPI_ML_HOME": str(settings.home)}
    bin_dir = os.path.dirname(sys.executable)
    commands = [
        [f"{bin_dir}/dagster", "dev", "-m", "assets.definitions", "-h", host, "-p", str(dagster_port)],
    ]
    if _has_dashboard():
        commands.append(
            [sys.executable, "-m", "dashboard", "--host", host, "--port", str(dashboard_port)]
        )
    # The live tailer: samples of runs in progress into the store within a second (the
    # sensors only ingest files once they are complete). It polls every 0.1 s for the dashboard:
    # a sample on screen within a second, p95 (bench_dashboard); a poll is a stat per log file.
    commands.append([sys.executable, "-m", "epi_ml.live", "--poll", str(LIVE_POLL_S)])
    # `kill`, `systemctl stop` and `docker stop` send SIGTERM, which would end this process
    # without its `finally`: the children, each in its own session, would outlive it and keep
    # their ports. Treated as Ctrl-C, it stops them all.
    signal.signal(signal.SIGTERM, _interrupt)
    # A shell script's `epi-ml serve &` starts it with SIGINT ignored, and the children would
    # inherit that and ignore the SIGINT that stops them; a handled signal is reset on exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    processes = [subprocess.Popen(cmd, env=env, start_new_session=True) for cmd in commands]
    typer.echo(f"Dagster UI  http://{host}:{dagster_port}")
    if _has_dashboard():
        typer.echo(f"Dashboard   http://{host}:{dashboard_port}")
    typer.echo(f"Live tailer {settings.landing_dir} -> the store")
    typer.echo("Ctrl-C stops them all.")
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGINT, 130)]
    raise typer.Exit(1 if failed else 0)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo(
    host: str = typer.Option("127.0.0.1", help="Interface for the UIs."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Run the pipeline, do not serve."),
) -> None:
    """The twin's campaign into landing/, the whole pipeline, then the UIs."""
    pipeline()
    if not no_serve:
        serve(host=host, dagster_port=DAGSTER_PORT, dashboard_port=DASHBOARD_PORT)


def _has_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("dashboard.__main__") is not None
