"""`epi-ml tail`: the live path from the command line (and `python -m epi_ml.live`).

    epi-ml tail [--landing PATH] [--mqtt HOST:PORT] [--poll SECONDS]

Tails the EPIC logs under the landing folder (default: the home's) and, with `--mqtt`, listens to
the tools that publish over MQTT, writing both into the live buffer until Ctrl-C (or SIGTERM, as
`epi-ml serve` stops it). Prints a line when a run starts or ends, and counts now and then.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from epi_ml.live.mqtt import MqttListener
    from epi_ml.live.tailer import Tailer

REPORT_EVERY_S = 10.0


def register(app: typer.Typer) -> None:
    app.command("tail")(tail)


def tail(
    landing: Path | None = typer.Option(
        None, help="Folder to tail (default: the home's landing folder)."
    ),
    mqtt: str | None = typer.Option(
        None,
        "--mqtt",
        envvar="EPI_ML_MQTT",
        help="HOST:PORT of an MQTT broker whose epi-ml/<tool>/<channel> topics to listen to.",
    ),
    poll: float = typer.Option(0.25, min=0.01, help="Seconds between passes over the files."),
    report_every: float = typer.Option(
        REPORT_EVERY_S, min=0.5, help="Seconds between the lines with counts."
    ),
) -> None:
    """Follow the growth runs in progress: new log lines and MQTT samples into the live buffer."""
    from epi_ml.cli_common import EXIT_USAGE
    from epi_ml.ingest.batch import open_context
    from epi_ml.ingest.tools import ToolConfigError
    from epi_ml.live.runs import LiveTools, RunEvent
    from epi_ml.live.tailer import Tailer

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)  # "at head" is no news here
    try:
        ctx = open_context()
    except ToolConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    folder = (landing or ctx.settings.landing_dir).absolute()
    folder.mkdir(parents=True, exist_ok=True)

    def show(event: RunEvent) -> None:
        if event.kind == "started":
            typer.echo(
                f"run {event.run_id} started on {event.tool_id} at {event.start:%Y-%m-%d %H:%M:%S}Z"
                f" ({event.segmented_by})"
            )
        elif event.kind == "ended" and event.end is not None:
            typer.echo(
                f"run {event.run_id} ended at {event.end:%Y-%m-%d %H:%M:%S}Z "
                f"(status {event.status})"
            )
        elif event.kind == "withdrawn":
            typer.echo(f"run {event.run_id} withdrawn (the recipe named the run otherwise)")

    tools = LiveTools(ctx.engine, ctx.configs, on_run=show)
    tailer = Tailer(folder, ctx.engine, tools=tools, poll_s=poll)
    listener = None
    if mqtt:
        from epi_ml.live.mqtt import MqttListener, parse_address

        try:
            host, port = parse_address(mqtt)
        except ValueError as exc:
            typer.echo(f"error: --mqtt {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from exc
        listener = MqttListener(ctx.engine, host, port, tools=tools)

    stop = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, and `epi-ml serve` stopping us
        signal.signal(stop_signal, lambda *_: stop.set())
    worker = threading.Thread(target=tailer.run, args=(stop,), name="tailer", daemon=True)
    worker.start()
    if listener is not None:
        listener.start()
    typer.echo(f"tailing {folder}" + (f" and mqtt {mqtt}" if mqtt else "") + "; Ctrl-C stops")
    last = ""
    try:
        while not stop.wait(report_every):
            line = _counts(tailer, listener)
            if line != last:
                typer.echo(line)
                last = line
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        worker.join()
        if listener is not None:
            listener.stop()
        typer.echo(_counts(tailer, listener))


def _counts(tailer: Tailer, listener: MqttListener | None) -> str:
    s = tailer.stats
    line = (
        f"files: {s.files} tailed, {s.samples:,} samples, {s.messages} messages, "
        f"{s.bad_lines} bad lines"
    )
    if s.store_errors:
        line += f", {s.store_errors} failed writes"
    if listener is not None:
        m = listener.stats
        line += (
            f"; mqtt: {m.samples:,} samples, {m.messages} messages, {m.bad_payloads} bad payloads, "
            f"{m.connects} connects"
        )
    return line
