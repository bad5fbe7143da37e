"""`epi-ml ingest PATH...`: files and folders into the store, runs built, per-file status.

Exit status: 0 everything accepted, 3 anything quarantined (the rest was still ingested), 2 usage
errors (a path that does not exist, a bad tools.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from epi_ml.findings import Severity

REASONS_PER_FILE = 5


def register(app: typer.Typer) -> None:
    app.command()(ingest)


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders (EPIC day folders, exports)."),
    tool: str | None = typer.Option(
        None, help="The tool that wrote them, when their folders do not say (landing/<tool>/...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable report on stdout."),
    no_build: bool = typer.Option(
        False, "--no-build", help="Ingest and register runs only; build them later (pipeline)."
    ),
) -> None:
    """Ingest tool logs, calibrations, RHEED exports, recipes and measurements; build their runs."""
    from epi_ml.cli_common import require_paths, usage_error
    from epi_ml.ingest.batch import ingest_paths, open_context
    from epi_ml.ingest.tools import ToolConfigError

    require_paths(paths)
    try:
        ctx = open_context(tool=tool)
    except ToolConfigError as exc:
        usage_error(str(exc))
    report = ingest_paths(ctx, [p.absolute() for p in paths], build=not no_build)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
        raise typer.Exit(report.exit_code)
    for outcome in report.files:
        note = " (seen before)" if outcome.seen_before else ""
        what = f"{outcome.kind or outcome.format}, {outcome.rows:,} rows" if outcome.kind else ""
        typer.echo(f"{outcome.status:<24} {outcome.path}{f'  [{what}]' if what else ''}{note}")
        serious = [f for f in outcome.findings if f.severity is not Severity.INFO]
        for finding in serious[:REASONS_PER_FILE]:
            typer.echo(f"    {finding}")
        if len(serious) > REASONS_PER_FILE:
            typer.echo(f"    ... and {len(serious) - REASONS_PER_FILE} more (--json has them all)")
    new = sum(r.new for r in report.runs)
    typer.echo(f"runs: {len(report.runs)} in these logs ({new} new)")
    for run in report.built:
        counts = ", ".join(f"{n} {level}" for level, n in run.counts.items() if n)
        typer.echo(f"  {run.run_id:<24} {run.status}{f' ({counts})' if counts else ''}")
        for finding in [f for f in run.findings if f.severity is Severity.ERROR][:REASONS_PER_FILE]:
            typer.echo(f"    {finding}")
    link = report.measurements
    waiting = f", {sum(link.waiting.values())} waiting for runs {sorted(link.waiting)}" if link.waiting else ""
    typer.echo(f"measurements: {link.stored} stored{waiting}")
    counts = {s: sum(f.status == s for f in report.files) for s in ("accepted", "accepted_with_warnings", "quarantined", "skipped")}
    typer.echo("files: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    raise typer.Exit(report.exit_code)
