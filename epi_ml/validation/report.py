"""The outcome of validating one run: findings, statistics and the status that decides whether
the run goes on (accepted, accepted with warnings) or waits for an engineer (quarantined)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import polars as pl

from epi_ml.findings import Finding, Severity, severity_counts, status_of
from epi_ml.validation.episodes import when
from epi_ml.validation.stats import statistics_to_dict

Status = Literal["accepted", "accepted_with_warnings", "quarantined"]
SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
SUMMARY_LINES = 12  # findings spelled out in summary(); to_dict() has them all


@dataclass(frozen=True)
class ValidationReport:
    findings: list[Finding]  # most severe first
    stats: pl.DataFrame  # one row per channel, see epi_ml.validation.stats.STATS_SCHEMA
    rows: int = 0
    start: datetime | None = None
    end: datetime | None = None

    @property
    def status(self) -> Status:
        return status_of(self.findings)  # type: ignore[return-value]

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    def counts(self) -> dict[str, int]:
        return severity_counts(self.findings)

    def summary(self) -> str:
        counts = self.counts()
        span = f", {when(self.start, self.end)}" if self.start else ""
        headline = (
            f"{self.status}: {counts['error']} error(s), {counts['warning']} warning(s), "
            f"{counts['info']} note(s); {self.stats.height} channel(s), {self.rows:,} samples{span}"
        )
        lines = [headline]
        serious = [f for f in self.findings if f.severity is not Severity.INFO]
        lines += [f"  {finding}" for finding in serious[:SUMMARY_LINES]]
        if len(serious) > SUMMARY_LINES:
            lines.append(f"  ... and {len(serious) - SUMMARY_LINES} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "counts": self.counts(),
            "rows": self.rows,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "findings": [f.to_dict() for f in self.findings],
            "stats": statistics_to_dict(self.stats),
        }


def most_severe_first(findings: list[Finding]) -> list[Finding]:
    return sorted(
        findings,
        key=lambda f: (
            SEVERITY_ORDER[f.severity],
            f.channel or "",
            f.start.isoformat() if f.start else "",
            f.code,
        ),
    )
