"""Measurement CSVs (XRD, PL, ...): one row per run, layer and kind of measurement.

    run_id,layer_index,kind,value,uncertainty,measured_at
    mbe1-20240105-1,2,xrd_thickness_nm,20.3,0.2,2024-01-08T10:15:00

`layer_index` empty = a measurement of the whole run; `uncertainty` is one standard deviation in
the unit of the value; `measured_at` is optional. Units follow the kind's suffix (`_nm`) or are
fractions (`xrd_composition`). A row without run, kind or value is left out (WARNING with its line);
an unreadable optional cell loses only its value; implausible values are kept and warned about.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.readers.delimited import (
    missing,
    row_problems,
    sniff_separator,
    split_fields,
    split_header,
    to_float,
    unique_names,
)
from epi_ml.readers.lines import PROBLEM_SCHEMA, combine, line_findings, mark_truncated
from epi_ml.readers.result import ReadResult
from epi_ml.readers.source import SourceText, load_text
from epi_ml.readers.timestamps import DateOrder, check_timezone, parse_times

MEASUREMENT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "layer_index": pl.Int64(),
    "kind": pl.String(),
    "value": pl.Float64(),
    "uncertainty": pl.Float64(),
    "measured_at": pl.Datetime("us", "UTC"),
}
REQUIRED = ("run_id", "kind", "value")
ALIASES = {"run": "run_id", "layer": "layer_index", "sigma": "uncertainty", "std": "uncertainty", "measured": "measured_at"}
# Plausible ranges of the kinds epi-ml knows (value units: nm, fraction).
KINDS: dict[str, tuple[float, float]] = {
    "xrd_thickness_nm": (0.1, 1e5),
    "xrd_composition": (0.0, 1.0),
    "pl_peak_nm": (200.0, 3000.0),
    "pl_fwhm_nm": (0.0, 500.0),
    "thickness_nm": (0.1, 1e5),
}
RUN_ID = re.compile(r"^.+-\d{8}-\d+$")  # <tool>-<YYYYMMDD>-<seq>


def read_measurements(
    path: str | Path, *, tz: str = "UTC", date_order: DateOrder | None = None
) -> ReadResult:
    """A measurement CSV -> frame (MEASUREMENT_SCHEMA columns, then any extra columns as text)."""
    check_timezone(tz)
    path = Path(path)
    source = load_text(path)
    if not source.usable:
        return ReadResult(_empty(), source.findings, path)
    findings = list(source.findings)
    head = source.head_lines(30)
    header_at = next((i for i, ln in enumerate(head, 1) if ln.strip() and not ln.lstrip().startswith("#")), None)
    if header_at is None:
        return ReadResult(_empty(), [*findings, _error(source, "no_header", "no header line")], path)
    separator = sniff_separator(head[header_at - 1 :])
    raw = split_header(head[header_at - 1], separator)
    names, _ = unique_names([ALIASES.get(n.strip().lower(), n.strip().lower()) for n in raw])
    absent = [n for n in REQUIRED if n not in names]
    if absent:
        findings.append(
            _error(
                source,
                "missing_columns",
                f"no column {', '.join(map(repr, absent))} (found {raw}); a measurement needs "
                f"{', '.join(REQUIRED)}",
                line=header_at,
            )
        )
        return ReadResult(_empty(), findings, path)
    fields = split_fields(source, first_line=header_at + 1, names=names, separator=separator, quoted=True)
    rows = fields.rows.with_columns(pl.col(n).str.strip_chars() for n in names)
    problems = [fields.problems, missing(rows, "run_id", what="run_id", separator=separator)]
    problems.append(missing(rows, "kind", what="kind", separator=separator))
    value, bad_value = to_float(rows, "value", what="value", required=True)
    problems.append(bad_value)
    columns: dict[str, pl.Series] = {"value": value}
    if "layer_index" in names:
        columns["layer_index"], bad_layer = _whole_numbers(rows, "layer_index")
        problems.append(bad_layer)
    if "uncertainty" in names:
        columns["uncertainty"], bad = to_float(rows, "uncertainty", what="uncertainty")
        problems.append(bad)
    if "measured_at" in names:
        times = parse_times(rows.get_column("measured_at"), tz=tz, date_order=date_order, file=str(path))
        findings += times.findings
        columns["measured_at"] = times.utc
        reason = times.reason.replace("no time", None)
        problems.append(row_problems(rows, reason.str.replace("^", "measured_at: "), separator))
    found = mark_truncated(combine(*problems), source.last_line, source.ends_with_newline)
    findings += line_findings(found, file=str(path))

    dropped = _required_failures(found)
    table = rows.with_columns(**columns).join(dropped.to_frame("line"), on="line", how="anti", maintain_order="left")
    frame = table.select(
        [
            (pl.col(n) if n in table.columns else pl.lit(None)).cast(t).alias(n)
            for n, t in MEASUREMENT_SCHEMA.items()
        ]
        + [pl.col(n) for n in names if n not in MEASUREMENT_SCHEMA]
    )
    findings += _plausibility(table, source)
    if frame.is_empty():
        findings.append(_error(source, "no_rows", "no measurement could be read"))
    return ReadResult(frame, findings, path)


def _whole_numbers(rows: pl.DataFrame, column: str) -> tuple[pl.Series, pl.DataFrame]:
    values, bad = to_float(rows, column, what=column)
    fractional = values.is_not_null() & ((values != values.round()) | (values < 0))
    if fractional.any():
        extra = rows.filter(fractional).select(
            "line", pl.lit(f"{column} is not a whole number >= 0").alias("reason"), pl.col(column).alias("text")
        )
        bad = combine(bad, extra.cast(PROBLEM_SCHEMA))  # type: ignore[arg-type]
    return values.cast(pl.Int64, strict=False).set(fractional, None), bad


def _required_failures(found: pl.DataFrame) -> pl.Series:
    """Lines whose problem loses the whole row: a required field, or a layer index (the value
    cannot be attributed). Unreadable uncertainty or time lose only that cell."""
    cell_only = pl.col("reason").str.starts_with("uncertainty") | pl.col("reason").str.starts_with("measured_at")
    return found.filter(~cell_only).get_column("line")


def _plausibility(table: pl.DataFrame, source: SourceText) -> list[Finding]:
    findings = []
    kinds = table.get_column("kind")
    unknown = sorted(set(kinds.drop_nulls().to_list()) - set(KINDS))
    if unknown:
        findings.append(
            source.finding(
                "unknown_kind",
                Severity.WARNING,
                f"measurement kind(s) {unknown} are not known to epi-ml; kept as written",
                f"Known kinds: {', '.join(KINDS)}; check the spelling.",
            )
        )
    for kind, (low, high) in KINDS.items():
        these = table.filter((pl.col("kind") == kind) & ~pl.col("value").is_between(low, high))
        if these.is_empty():
            continue
        percent = kind == "xrd_composition" and these.get_column("value").is_between(1, 100).all()
        findings.append(
            source.finding(
                "implausible_value",
                Severity.WARNING,
                f"{these.height} {kind} value(s) outside {low:g}..{high:g} (lines "
                f"{', '.join(map(str, these.get_column('line').head(20).to_list()))}); kept",
                "Compositions are fractions (0.30, not 30 %)." if percent else "Check the unit and the value.",
                line=these.get_column("line").item(0),
                count=these.height,
            )
        )
    odd = table.filter(~pl.col("run_id").str.contains(RUN_ID.pattern)).get_column("run_id").unique(maintain_order=True)
    if len(odd):
        findings.append(
            source.finding(
                "unusual_run_id",
                Severity.WARNING,
                f"run id(s) {odd.head(5).to_list()} are not '<tool>-<YYYYMMDD>-<seq>'",
                "Use the run ids of the store so the measurements join their runs.",
                count=len(odd),
            )
        )
    key = [c for c in ("run_id", "layer_index", "kind", "measured_at") if c in table.columns]
    repeated = table.filter(pl.struct(key).is_duplicated())
    if not repeated.is_empty():
        findings.append(
            source.finding(
                "repeated_measurement",
                Severity.WARNING,
                f"{repeated.height} rows share run, layer, kind and time (lines "
                f"{', '.join(map(str, repeated.get_column('line').head(20).to_list()))}); all kept",
                "A row pasted twice, or repeated scans that need distinct times.",
                count=repeated.height,
            )
        )
    return findings


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=MEASUREMENT_SCHEMA)


def _error(source: SourceText, code: str, message: str, **kw) -> Finding:  # noqa: ANN003
    return source.finding(
        code,
        Severity.ERROR,
        message,
        "Write a header run_id,layer_index,kind,value,uncertainty,measured_at and one row per measurement.",
        **kw,
    )
