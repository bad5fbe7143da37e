"""What a table reader returns: the frame it read and what it found on the way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from epi_ml.findings import Finding, has_errors


@dataclass
class ReadResult:
    """`frame`: for sensor readers the canonical long table (epi_ml.channels.SENSOR_SCHEMA), for
    other readers their own table. An ERROR among `findings` means the input is unusable."""

    frame: pl.DataFrame
    findings: list[Finding] = field(default_factory=list)
    path: Path | None = None

    @property
    def sensors(self) -> pl.DataFrame:
        """The frame, by the name sensor readers' callers use."""
        return self.frame

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)
