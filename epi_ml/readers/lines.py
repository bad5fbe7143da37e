"""Bad lines: where they are and how they are reported.

Readers collect the lines they could not use in a *problems* frame (line, reason, text) and turn
it into findings here, so every reader words and summarises them the same way: a few bad lines are
listed one by one; many lines with the same reason become one finding with their count, their
line numbers as ranges (`lines 120-450, 900`) and the first examples in `details`.
"""

from __future__ import annotations

import polars as pl

from epi_ml.findings import Finding, Severity

PROBLEM_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.UInt32(),
    "reason": pl.String(),
    "text": pl.String(),
}
LISTED_ONE_BY_ONE = 3  # up to this many lines of one reason get a finding each
LISTED_LINES = 1000  # line numbers kept in a summary's details
EXAMPLES = 5
TEXT_CLIP = 120
SKIPPED_HINT = (
    "Left out (a bad line loses its row, a bad cell only its value); the rest of the file is kept. "
    "Fix or re-export the file to recover it."
)


def no_problems() -> pl.DataFrame:
    return pl.DataFrame(schema=PROBLEM_SCHEMA)


def problems(
    lines: pl.Series | list[int], reason: str | pl.Series, texts: pl.Series | list[str]
) -> pl.DataFrame:
    """A problems frame: one row per bad line."""
    frame = pl.DataFrame({"line": lines, "text": texts}).with_columns(
        pl.col("line").cast(pl.UInt32), pl.col("text").cast(pl.String)
    )
    reason_col = pl.lit(reason) if isinstance(reason, str) else pl.Series("reason", reason)
    return frame.with_columns(reason=reason_col).select(list(PROBLEM_SCHEMA))


def combine(*frames: pl.DataFrame) -> pl.DataFrame:
    """All problems, one per line (the first reason found for a line wins), in line order."""
    frames = tuple(f for f in frames if f.height)
    if not frames:
        return no_problems()
    return pl.concat(frames).unique("line", keep="first", maintain_order=True).sort("line")


def line_ranges(lines: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    if not lines:
        return ""
    parts, start, prev = [], lines[0], lines[0]
    for line in lines[1:] + [None]:  # type: ignore[list-item]
        if line is not None and line == prev + 1:
            prev = line
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if line is not None:
            start = prev = line
    return ", ".join(parts)


def clip(text: str | None) -> str:
    text = (text or "").replace("\x00", "\\0")
    return text if len(text) <= TEXT_CLIP else text[:TEXT_CLIP] + "…"


def line_findings(
    found: pl.DataFrame,
    *,
    file: str | None,
    channel: str | None = None,
    code: str = "unparseable_line",
    severity: Severity = Severity.WARNING,
    hint: str = SKIPPED_HINT,
    unit: str = "line",
) -> list[Finding]:
    """Findings for a problems frame, grouped by reason. `unit`: "line" for text files (the
    number goes to Finding.line), "row" for tables without lines (Parquet)."""
    findings = []
    for (reason,), group in found.sort("line").group_by("reason", maintain_order=True):
        lines = group.get_column("line").to_list()
        texts = group.get_column("text").to_list()
        where = {"file": file, "channel": channel}
        if len(lines) <= LISTED_ONE_BY_ONE:
            for line, text in zip(lines, texts, strict=True):
                findings.append(
                    Finding(
                        code,
                        severity,
                        f"{'' if unit == 'line' else f'{unit} {line}: '}{reason}: {clip(text)!r}",
                        hint=hint,
                        line=line if unit == "line" else None,
                        details={unit: line, "reason": reason, "text": clip(text)},
                        **where,
                    )
                )
            continue
        shown = lines[:LISTED_LINES]
        more = f" and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
        findings.append(
            Finding(
                code,
                severity,
                f"{len(lines)} {unit}s: {reason} ({unit}s {line_ranges(shown)}{more}); "
                f"first: {clip(texts[0])!r}",
                hint=hint,
                line=lines[0] if unit == "line" else None,
                count=len(lines),
                details={
                    "reason": reason,
                    f"{unit}s": shown,
                    "examples": [
                        {unit: n, "text": clip(t)}
                        for n, t in zip(lines[:EXAMPLES], texts[:EXAMPLES], strict=True)
                    ],
                },
                **where,
            )
        )
    return findings


def mark_truncated(found: pl.DataFrame, last_line: int, ends_with_newline: bool) -> pl.DataFrame:
    """A bad last line in a file without a final line end was cut off while being written."""
    if ends_with_newline or found.is_empty() or found.get_column("line").max() != last_line:
        return found
    return found.with_columns(
        reason=pl.when(pl.col("line") == last_line)
        .then(
            pl.lit("the file ends in the middle of this line (copied while still being written?)")
        )
        .otherwise(pl.col("reason"))
    )


# Kept rows that later checks judge, by the code of their (INFO) finding.
KEPT_ROW_REASONS: tuple[tuple[str, str], ...] = (
    ("time_steps_back", "time steps back from the line before"),
    ("repeated_line", "repeats an earlier line (same time and value)"),
    ("conflicting_line", "same time as an earlier line, another value"),
    ("non_finite_line", "value is NaN or infinite"),
)


def order_findings(
    frame: pl.DataFrame, *, file: str | None, channel: str | None = None, unit: str = "line"
) -> list[Finding]:
    """INFO findings, with line numbers, for kept rows that validation judges: time stepping back,
    repeated and conflicting rows, NaN/inf values (`frame`: line, time, value). The rows stay as
    written; validation decides what they mean for the run, this says where they are in the file."""
    if frame.is_empty():
        return []
    time, value = frame.get_column("time"), frame.get_column("value")
    back = time < time.shift(1)
    if back.any():  # unsorted: repeats can be anywhere (hashing is only paid for in this case)
        repeated = ~frame.select(pl.struct("time", "value").is_first_distinct()).to_series()
        same_time = ~time.is_first_distinct()
    else:  # in time order (the normal case): repeats are neighbours
        same_time = time == time.shift(1)
        if not same_time.any() and value.is_finite().all():
            return []  # a clean file: nothing to point at
        repeated = same_time & (value == value.shift(1))
    masks = (
        back.fill_null(False),
        repeated.fill_null(False),
        (same_time & ~repeated).fill_null(False),
        ~value.is_finite().fill_null(True),
    )
    findings: list[Finding] = []
    taken = pl.Series([False] * frame.height)
    for (code, reason), mask in zip(KEPT_ROW_REASONS, masks, strict=True):
        mask = mask & ~taken
        if not mask.any():
            continue
        taken = taken | mask
        flagged = frame.filter(mask).select(
            pl.col("line").cast(pl.UInt32),
            pl.lit(reason).alias("reason"),
            pl.format("{} {}", pl.col("time"), pl.col("value")).alias("text"),
        )
        findings += line_findings(
            flagged,
            file=file,
            channel=channel,
            code=code,
            severity=Severity.INFO,
            hint="Kept as written; validation reports what it means for the run.",
            unit=unit,
        )
    return findings
