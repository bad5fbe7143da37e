"""`epi-ml dashboard`: serve the Dash app (registered by epi_ml/cli.py)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command()(dashboard)


def dashboard(
    host: str = typer.Option("127.0.0.1", help="Interface; anything but localhost needs credentials."),
    port: int = typer.Option(8050, help="Port."),
) -> None:
    """Serve the monitoring dashboard."""
    from dashboard.__main__ import main

    raise typer.Exit(main(["--host", host, "--port", str(port)]))
