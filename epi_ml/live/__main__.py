"""`python -m epi_ml.live [--mqtt HOST:PORT]`: the live tailer on the home's landing folder, as
`epi-ml serve` starts it (same options as `epi-ml tail`)."""

from __future__ import annotations

import typer

from epi_ml.live.cli import tail


def main() -> None:
    typer.run(tail)


if __name__ == "__main__":
    main()
