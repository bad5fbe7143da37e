"""`epi-ml train | models | promote | rollback | predict`: the growth models from the shell.

    epi-ml train [--trials 6] [--seed 0] [--device auto] [--no-promote]
    epi-ml models [--json] [--ledger]
    epi-ml promote VERSION [--by NAME] [--reason TEXT]
    epi-ml rollback [--by NAME] [--reason TEXT]
    epi-ml predict --recipe FILE|NAME [--tool T] [--version N] [--json]

Exit status: 0 done; 1 `train` whose candidate the gate refused (it stays registered, with the
reasons in the ledger); 3 nothing to work on (no training set, no champion, nothing to roll
back); 2 usage errors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from epi_ml.cli_common import usage_error

EXIT_REFUSED, EXIT_NOTHING = 1, 3


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(models)
    app.command()(promote)
    app.command()(rollback)
    app.command()(predict)


def _context() -> Any:
    from epi_ml.ingest.batch import open_context

    return open_context()


def _fail(message: str, code: int = EXIT_NOTHING) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def train(
    trials: int = typer.Option(6, help="Hyper-parameter search trials (0: the defaults)."),
    seed: int = typer.Option(0, help="Seed of the split-free randomness (init, batches, search)."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda, cuda:N."),
    members: int | None = typer.Option(None, help="Ensemble members (default 5)."),
    no_promote: bool = typer.Option(False, "--no-promote", help="Judge but never promote."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Train a candidate on the training set, judge it at the gate, promote it when it passes."""
    from epi_ml.models.lifecycle import (
        NoTrainingSet,
        evaluate_candidate,
        promote_if_passed,
        train_candidate,
    )

    if trials < 0 or (members is not None and members < 1):
        usage_error("--trials must be >= 0 and --members >= 1")
    ctx = _context()
    try:
        candidate = train_candidate(ctx, seed=seed, device=device, search_trials=trials, members=members)
    except NoTrainingSet as exc:
        _fail(str(exc))
    except ValueError as exc:  # too few epochs to split
        _fail(str(exc))
    except RuntimeError as exc:  # e.g. --device cuda without CUDA
        usage_error(str(exc))
    verdict = evaluate_candidate(ctx, candidate.version)
    promoted = False if no_promote else promote_if_passed(ctx, verdict)
    if as_json:
        typer.echo(json.dumps(_finite({"model": candidate.to_dict(), "gate": verdict.decision.to_dict(),
                               "promoted": promoted}), indent=1, default=str))  # fmt: skip
    else:
        training = candidate.metrics.get("training", {})
        typer.echo(f"trained {candidate.name} v{candidate.version} on {candidate.device} in "
                   f"{training.get('training_seconds', 0):.1f} s ({training.get('samples_per_s', 0):,.0f} samples/s)")  # fmt: skip
        typer.echo(f"artifact {candidate.artifact_path}")
        for reason in verdict.decision.reasons:
            typer.echo(f"  {reason}")
        state = "promoted to champion" if promoted else "gate passed, not promoted (--no-promote)" \
            if verdict.decision.passed else "refused by the gate (stays registered; see `epi-ml models --ledger`)"  # fmt: skip
        typer.echo(f"{candidate.name} v{candidate.version}: {state}")
    raise typer.Exit(0 if verdict.decision.passed else EXIT_REFUSED)


def models(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    show_ledger: bool = typer.Option(False, "--ledger", help="The promotion ledger, oldest first."),
) -> None:
    """Registered model versions with their aliases, device, lineage and headline metrics."""
    from epi_ml.models import registry

    ctx = _context()
    if show_ledger:
        rows = registry.ledger(ctx.engine)
        if as_json:
            typer.echo(json.dumps(_finite(rows), indent=1, default=str))
            return
        for row in rows:
            typer.echo(f"{str(row['decided_at'])[:19]}  {row['name']} v{row['version']:<3} {row['action']:<10} "
                       f"by {row['decided_by']}" + (f" (previous v{row['previous_version']})" if row["previous_version"] else ""))  # fmt: skip
            for reason in row["reasons"] or []:
                typer.echo(f"      {reason}")
        return
    versions = registry.list_models(ctx.engine)
    if as_json:
        typer.echo(json.dumps(_finite([v.to_dict() for v in versions]), indent=1, default=str))
        return
    if not versions:
        typer.echo("no model registered yet: `epi-ml train`")
        return
    typer.echo(f"{'model':<8} {'ver':>3}  {'aliases':<19} {'trained':<16} {'device':<22} {'runs':>5} "
               f"{'thk MAPE':>8} {'x MAE':>7} {'cover':>6}")  # fmt: skip
    for v in versions:
        ev = v.metrics.get("evaluation", {}).get("overall", {})
        thk, comp = ev.get("thickness", {}), ev.get("composition", {})
        typer.echo(
            f"{v.name:<8} {v.version:>3}  {','.join(v.aliases) or '-':<19} {v.created_at:%Y-%m-%d %H:%M} "
            f"{(v.device or '-')[:22]:<22} {len(v.lineage.get('runs', [])):>5} {_num(thk.get('mape_pct'), '7.2f')}% "
            f"{_num(comp.get('mae'), '7.4f')} {_num(thk.get('coverage'), '6.2f')}"
        )


def _num(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-".rjust(int(fmt.split(".")[0]) if fmt[0].isdigit() else 1)
    return format(value, fmt)


def promote(
    version: int = typer.Argument(..., help="The version to make the champion."),
    by: str = typer.Option("cli", help="Who decided (goes to the ledger)."),
    reason: str | None = typer.Option(None, help="Why (goes to the ledger)."),
) -> None:
    """Make VERSION the champion by hand (the ledger records who and why)."""
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME

    ctx = _context()
    try:
        previous = registry.promote(ctx.engine, MODEL_NAME, version, decided_by=by,
                                    reasons=[reason] if reason else ["promoted by hand"])  # fmt: skip
    except registry.ModelNotFound as exc:
        usage_error(str(exc))
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"{MODEL_NAME} v{version} is the champion" + (f" (was v{previous})" if previous else ""))


def rollback(
    by: str = typer.Option("cli", help="Who decided (goes to the ledger)."),
    reason: str | None = typer.Option(None, help="Why (goes to the ledger)."),
) -> None:
    """Restore the champion that was in force before the current one."""
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME

    ctx = _context()
    try:
        restored = registry.rollback(ctx.engine, MODEL_NAME, decided_by=by, reason=reason)
    except registry.NothingToRollBack as exc:
        _fail(str(exc))
    typer.echo(f"{MODEL_NAME} v{restored.version} is the champion again")


def predict(
    recipe: str = typer.Option(..., "--recipe", help="Recipe YAML file, or a library recipe name."),
    tool: str | None = typer.Option(None, help="The tool to grow on (default: the only one known)."),
    version: int | None = typer.Option(None, help="Model version (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Per layer of RECIPE: thickness, growth rate, composition, PL peak with 90 % intervals."""
    from epi_ml.models import registry
    from epi_ml.models.lifecycle import MODEL_NAME, load_model
    from epi_ml.models.serve import predict_recipe_layers
    from epi_ml.store import read_session
    from epi_ml.store.models import Tool
    from epi_ml.twin.recipe import RecipeError, load_recipe

    try:
        plan = load_recipe(Path(recipe) if Path(recipe).exists() else recipe)
    except RecipeError as exc:
        usage_error(str(exc))
    ctx = _context()
    with read_session(ctx.engine) as session:
        tools = sorted(t.id for t in session.query(Tool))
    if tool is None:
        if len(tools) != 1:
            usage_error(f"--tool is needed: the store knows {', '.join(tools) or 'no tool'}")
        tool = tools[0]
    elif tool not in tools:
        usage_error(f"unknown tool {tool!r}; the store knows {', '.join(tools) or 'no tool'}")
    try:
        chosen = (registry.get_model(ctx.engine, MODEL_NAME, version) if version is not None
                  else registry.model_for_alias(ctx.engine, MODEL_NAME, registry.CHAMPION))  # fmt: skip
    except registry.ModelNotFound as exc:
        usage_error(str(exc))
    if chosen is None:
        _fail("no champion model yet: `epi-ml train` (or `epi-ml promote VERSION`)")
    try:
        table = predict_recipe_layers(ctx, plan, tool, load_model(chosen))
    except (LookupError, ValueError) as exc:
        _fail(str(exc))
    header = {"recipe": plan.name, "tool": tool, "model": chosen.name, "version": chosen.version,
              "coverage": 0.9, "device": chosen.device}  # fmt: skip
    if as_json:
        typer.echo(json.dumps({**header, "layers": _finite(table.to_dicts())}, indent=1, default=str))
        return
    typer.echo(f"{plan.name} on {tool}: {chosen.name} v{chosen.version} (90 % intervals, from the recipe; "
               "- : no interval, too few calibration layers)")  # fmt: skip
    typer.echo(f"{'#':>3}  {'material':<8} {'x target':>8} {'physics nm':>10}  {'thickness nm [90 %]':<26} "
               f"{'nm/s [90 %]':<24} {'x [90 %]':<22} {'PL nm [90 %]':<20}")  # fmt: skip
    for r in table.iter_rows(named=True):
        typer.echo(
            f"{r['layer']:>3}  {r['material']:<8} {_num(r['target_composition'], '8.3f')} "
            f"{r['pred_thickness_nm']:>10.1f}  {_interval(r, 'thickness', '_nm', '.1f'):<26} "
            f"{_interval(r, 'growth_rate', '_nm_s', '.4f'):<24} {_interval(r, 'composition', '', '.3f'):<22} "
            f"{_interval(r, 'pl_peak', '_nm', '.1f'):<20}"
        )


def _finite(value: Any) -> Any:
    """JSON has no NaN: a missing number is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _interval(row: dict[str, Any], name: str, unit: str, fmt: str) -> str:
    value = row.get(f"{name}{unit}")
    if value is None:
        return "-"
    low, high = row.get(f"{name}_lower{unit}"), row.get(f"{name}_upper{unit}")
    if low is None or high is None or any(math.isnan(v) for v in (low, high)):
        return f"{value:{fmt}} [-]"
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"
