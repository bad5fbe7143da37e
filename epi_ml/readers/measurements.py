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
from epi_ml.readers.delimited import missing, row_problems, to_float, unique_names
from epi_ml.readers.lines import PROBLEM_SCHEMA, combine, line_findings, mark_truncated
from epi_ml.readers.result import ReadResult
from epi_ml.readers.tables import Table, load_table
from epi_ml.readers.timestamps import DateOrder, check_timezone, parse_time_column

MEASUREMENT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "layer_index": pl.Int64(),
    "kind": pl.String(),
    "value": pl.Float64(),
    "uncertainty": pl.Float64(),
    "measured_at": pl.Datetime("us", "UTC"),
}
REQUIRED = ("run_id", "kind", "value")
ALIASES = {
    "run": "run_id",
    "layer": "layer_index",
    "sigma": "uncertainty",
    "std": "uncertainty",
    "measured": "measured_at",
}
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
    """A measurement CSV or Parquet file -> frame (MEASUREMENT_SCHEMA columns, then any extra
    columns as text). `tz`: zone of `measured_at` times written without one."""
    check_timezone(tz)
    path = Path(path)
    table, findings = load_table(path)
    if table is None:
        return ReadResult(_empty(), findings, path)
    names, _ = unique_names(
        [ALIASES.get(n.strip().lower(), n.strip().lower()) for n in table.names]
    )
    absent = [n for n in REQUIRED if n not in names]
    if absent:
        message = (
            f"no column {', '.join(map(repr, absent))} (found {table.names}); a measurement needs "
            f"{', '.join(REQUIRED)}"
        )
        return ReadResult(_empty(), [*findings, _error(table, "missing_columns", message)], path)
    typed = table.rows.rename(dict(zip(table.names, names, strict=True)))
    rows = typed.select("line", pl.exclude("line").cast(pl.String).str.strip_chars())
    sep = table.separator
    problems = [table.problems, missing(rows, "run_id", what="run_id", separator=sep)]
    problems.append(missing(rows, "kind", what="kind", separator=sep))
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
        times = parse_time_column(
            typed.get_column("measured_at"), tz=tz, date_order=date_order, file=table.file
        )
        findings += times.findings
        columns["measured_at"] = times.utc
        reason = times.reason.replace("no time", None).str.replace("^", "measured_at: ")
        problems.append(row_problems(rows, reason, sep))
    found = combine(*problems)
    if table.unit == "line":
        found = mark_truncated(found, table.source.last_line, table.source.ends_with_newline)
    findings += line_findings(found, file=table.file, unit=table.unit)

    kept = rows.with_columns(**columns).join(
        _required_failures(found).to_frame("line"), on="line", how="anti", maintain_order="left"
    )
    frame = kept.select(
        [
            (pl.col(n) if n in kept.columns else pl.lit(None)).cast(t).alias(n)
            for n, t in MEASUREMENT_SCHEMA.items()
        ]
        + [pl.col(n) for n in names if n not in MEASUREMENT_SCHEMA]
    )
    findings += _plausibility(kept, table)
    if frame.is_empty():
        findings.append(_error(table, "no_rows", "no measurement could be read"))
    return ReadResult(frame, findings, path)


def _whole_numbers(rows: pl.DataFrame, column: str) -> tuple[pl.Series, pl.DataFrame]:
    values, bad = to_float(rows, column, what=column)
    fractional = values.is_not_null() & ((values != values.round()) | (values < 0))
    if fractional.any():
        extra = rows.filter(fractional).select(
            "line",
            pl.lit(f"{column} is not a whole number >= 0").alias("reason"),
            pl.col(column).alias("text"),
        )
        bad = combine(bad, extra.cast(PROBLEM_SCHEMA))  # type: ignore[arg-type]
    return values.cast(pl.Int64, strict=False).set(fractional, None), bad


def _required_failures(found: pl.DataFrame) -> pl.Series:
    """Lines whose problem loses the whole row: a required field, or a layer index (the value
    cannot be attributed). Unreadable uncertainty or time lose only that cell."""
    cell_only = pl.col("reason").str.starts_with("uncertainty") | pl.col("reason").str.starts_with(
        "measured_at"
    )
    return found.filter(~cell_only).get_column("line")


def _plausibility(kept: pl.DataFrame, table: Table) -> list[Finding]:
    source, unit = table.source, table.unit

    def where(rows: pl.DataFrame) -> str:
        return f"{unit}s {', '.join(map(str, rows.get_column('line').head(20).to_list()))}"

    def first_line(rows: pl.DataFrame) -> int | None:
        return rows.get_column("line").item(0) if unit == "line" else None

    findings = []
    kinds = kept.get_column("kind")
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
        these = kept.filter((pl.col("kind") == kind) & ~pl.col("value").is_between(low, high))
        if these.is_empty():
            continue
        percent = kind == "xrd_composition" and these.get_column("value").is_between(1, 100).all()
        findings.append(
            source.finding(
                "implausible_value",
                Severity.WARNING,
                f"{these.height} {kind} value(s) outside {low:g}..{high:g} ({where(these)}); kept",
                "Compositions are fractions (0.30, not 30 %)."
                if percent
                else "Check the unit and the value.",
                line=first_line(these),
                count=these.height,
            )
        )
    odd = (
        kept.filter(~pl.col("run_id").str.contains(RUN_ID.pattern))
        .get_column("run_id")
        .unique(maintain_order=True)
    )
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
    key = [c for c in ("run_id", "layer_index", "kind", "measured_at") if c in kept.columns]
    repeated = kept.filter(pl.struct(key).is_duplicated())
    if not repeated.is_empty():
        findings.append(
            source.finding(
                "repeated_measurement",
                Severity.WARNING,
                f"{repeated.height} rows share run, layer, kind and time ({where(repeated)}); "
                "all kept",
                "A row pasted twice, or repeated scans that need distinct times.",
                count=repeated.height,
            )
        )
    return findings


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=MEASUREMENT_SCHEMA)


def _error(table: Table, code: str, message: str) -> Finding:
    return table.source.finding(
        code,
        Severity.ERROR,
        message,
        "Write a header run_id,layer_index,kind,value,uncertainty,measured_at and one row per "
        "measurement.",
        line=table.header_line,
    )
