"""What every `epi-ml` command does the same way: usage errors (exit 2) said on stderr."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer

EXIT_USAGE = 2


def usage_error(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def require_paths(paths: Iterable[Path]) -> None:
    """Exit 2 naming every path that does not exist."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        usage_error(f"no such file or folder: {', '.join(missing)}")
