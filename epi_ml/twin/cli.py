"""`epi-ml simulate` and `epi-ml live`: the digital twin from the command line."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from epi_ml.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("live")(live)


def _default_out(out: Path | None) -> Path:
    return out if out is not None else get_settings().landing_dir / "twin"


def simulate(
    out: Path = typer.Option(
        None, "--out", help="Output folder (default: <EPI_ML_HOME>/landing/twin)."
    ),
    runs: int = typer.Option(20, "--runs", min=1, help="Number of growth runs over all tools."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes the same bytes."),
    tools: int = typer.Option(2, "--tools", min=1, help="Number of MBE tools (MBE1, MBE2, ...)."),
    start: str = typer.Option(
        "2026-01-05", "--start", help="First day of the campaign (YYYY-MM-DD)."
    ),
    fmt: str = typer.Option(
        "epic", "--format", help="epic (per-channel day files), csv or parquet."
    ),
    workers: int = typer.Option(
        0, "--workers", help="Processes (default: one per tool, up to the CPUs)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a previous campaign in --out."
    ),
) -> None:
    """Simulate a campaign of MBE runs with the digital twin; writes DIR/manifest.json."""
    from epi_ml.twin.campaign import simulate_campaign

    folder = _default_out(out)
    began = time.perf_counter()
    try:
        manifest = simulate_campaign(
            folder,
            runs=runs,
            seed=seed,
            tools=tools,
            start=start,
            fmt=fmt,
            workers=workers or None,
            overwrite=overwrite,
        )
    except (FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    files = manifest["files"]
    size = sum(f["bytes"] for kind in files.values() for f in kind)
    truth = manifest["truth"]
    tools_text = ", ".join(manifest["tools"])
    n_files = sum(len(v) for v in files.values())
    typer.echo(
        f"{len(truth['runs'])} runs on {tools_text} from {manifest['start']} to {manifest['end']}: "
        f"{n_files} files, {size / 1e6:.1f} MB in {time.perf_counter() - began:.1f} s"
    )
    typer.echo(
        f"faults {len(truth['faults'])}, calibrations {len(truth['calibrations'])}, "
        f"maintenance {len(truth['maintenance'])}; manifest {folder / 'manifest.json'}"
    )


def live(
    out: Path = typer.Option(
        None, "--out", help="Output folder (default: <EPI_ML_HOME>/landing/twin)."
    ),
    tool: str = typer.Option("MBE1", "--tool", help="Tool name (MBE1, MBE2, ...)."),
    recipe: str = typer.Option(
        "hemt_algaas_gaas", "--recipe", help="Library recipe name or a YAML file."
    ),
    speed: float = typer.Option(
        1.0, "--speed", min=0.001, help="Run clock / wall clock (10 = ten times faster)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed of the tool and the run."),
    fmt: str = typer.Option(
        "epic", "--format", help="epic or csv (files appended as the run grows)."
    ),
    faults: float = typer.Option(
        0.2, "--faults", min=0.0, max=1.0, help="Probability of injected faults."
    ),
    start: str = typer.Option(None, "--start", help="Run start (ISO time, UTC); default now."),
) -> None:
    """Grow one run in real time (or --speed times faster), appending to the tool's log files."""
    from epi_ml.twin.live import RUN_GAP, LiveProgress, live_run, run_start
    from epi_ml.twin.recipe import RecipeError

    folder = _default_out(out)

    def show(p: LiveProgress) -> None:
        minutes, seconds = divmod(int(p.sim_s), 60)
        state = "aborted" if p.aborted else ("done" if p.done else p.step)
        values = " ".join(f"{k}={v:.3g}" for k, v in p.readings.items())
        clock = f"{minutes:4d}:{seconds:02d} / {p.duration_s / 60:.0f} min"
        typer.echo(f"{p.run_id} {clock}  {state:<24} {values}")

    begin = run_start(folder / tool, datetime.fromisoformat(start) if start else None)
    if not start and begin > datetime.now(UTC) + timedelta(seconds=5):
        typer.echo(f"{tool}'s previous live run (sped up) ends at {begin - RUN_GAP:%Y-%m-%d %H:%M:%S}Z: "
                   f"this run starts at {begin:%H:%M:%S}Z (one run at a time on a tool)")  # fmt: skip
    try:
        result = live_run(
            folder,
            tool=tool,
            recipe=recipe,
            speed=speed,
            seed=seed,
            fmt=fmt,
            start=begin,
            fault_rate=faults,
            on_progress=show,
        )
    except (RecipeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"logs in {folder / tool}")
    if result.aborted:
        raise typer.Exit(130)
