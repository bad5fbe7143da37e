"""Typed findings: what readers and validation report about an input.

Every finding says what is wrong, where (file, line, channel, time span) and what to do about it,
in a form that is both human-readable (`str(finding)`) and machine-readable (`finding.to_dict()`).
An input with any ERROR finding is quarantined; WARNINGs are recorded and the input goes on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    code: str  # stable machine name, e.g. "unparseable_line", "stuck_sensor", "over_range"
    severity: Severity
    message: str  # what is wrong, in words an engineer understands
    hint: str = ""  # what to do about it
    file: str | None = None
    line: int | None = None  # 1-based line number in `file`
    channel: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    count: int = 1  # how many occurrences this finding summarises
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["severity"] = self.severity.value
        for key in ("start", "end"):
            if d[key] is not None:
                d[key] = d[key].isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        d = dict(d)
        d["severity"] = Severity(d["severity"])
        for key in ("start", "end"):
            if d.get(key):
                d[key] = datetime.fromisoformat(d[key])
        return cls(**d)

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.file or "",
                f"line {self.line}" if self.line else "",
                f"channel {self.channel}" if self.channel else "",
            )
            if part
        )
        text = f"{self.severity.value.upper()} [{self.code}] {where + ': ' if where else ''}{self.message}"
        if self.count > 1:
            text += f" ({self.count} occurrences)"
        return f"{text} — {self.hint}" if self.hint else text


def worst(findings: list[Finding]) -> Severity | None:
    """The most severe level among findings, or None when there are none."""
    order = [Severity.INFO, Severity.WARNING, Severity.ERROR]
    levels = [order.index(f.severity) for f in findings]
    return order[max(levels)] if levels else None


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def status_of(findings: list[Finding]) -> str:
    """What findings mean for an input: "quarantined" with any ERROR, "accepted_with_warnings"
    with any WARNING, else "accepted"."""
    if has_errors(findings):
        return "quarantined"
    if any(f.severity is Severity.WARNING for f in findings):
        return "accepted_with_warnings"
    return "accepted"


def severity_counts(findings: list[Finding]) -> dict[str, int]:
    """{"error": n, "warning": n, "info": n}."""
    return {
        level.value: sum(f.severity is level for f in findings)
        for level in (Severity.ERROR, Severity.WARNING, Severity.INFO)
    }
