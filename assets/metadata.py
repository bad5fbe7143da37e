"""Findings and tables as Dagster metadata (Markdown the UI renders)."""

from collections.abc import Iterable

import dagster as dg

from epi_ml.findings import Finding, Severity

MAX_ROWS = 40


def findings_markdown(findings: Iterable[Finding], limit: int = MAX_ROWS) -> dg.MetadataValue:
    rows = [f for f in findings if f.severity is not Severity.INFO] or list(findings)
    if not rows:
        return dg.MetadataValue.md("no findings")
    lines = ["| severity | code | where | what | what to do |", "|---|---|---|---|---|"]
    for f in rows[:limit]:
        where = " ".join(p for p in (_name(f.file), f"line {f.line}" if f.line else "", f.channel or "") if p)
        lines.append(f"| {f.severity.value} | {f.code} | {_cell(where)} | {_cell(f.message)} | {_cell(f.hint)} |")
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more")
    return dg.MetadataValue.md("\n".join(lines))


def table_markdown(header: list[str], rows: Iterable[Iterable[object]], limit: int = MAX_ROWS) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = list(rows)
    lines += ["| " + " | ".join(_cell(str(v)) for v in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more")
    return dg.MetadataValue.md("\n".join(lines))


def _name(path: str | None) -> str:
    return path.rsplit("/", 1)[-1] if path else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def number(value: object, digits: int) -> str:
    """A table cell: the value to `digits` decimals, empty when unknown."""
    return "" if value is None else f"{value:.{digits}f}"  # type: ignore[str-format]
