"""Episodes: runs of consecutive flagged samples, and the words findings use to describe them.

A check flags samples with one vectorised expression; `flagged_episodes` turns the flags into a
small frame (one row per episode), and the check writes one finding per channel from it, so a
noisy channel yields one finding with a count, not thousands.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import polars as pl

from epi_ml.findings import Finding, Severity
from epi_ml.validation.intervals import run_ids, seconds

LISTED_EPISODES = 10  # episodes spelled out in a finding's details; the count covers all


def flagged_episodes(
    frame: pl.DataFrame,
    flag: pl.Expr,
    *,
    worst: pl.Expr | None = None,
    merge_within_s: float = 0.0,
) -> pl.DataFrame:
    """Runs of consecutive flagged rows per channel (rows sorted by channel, time): channel,
    start, end, seconds, samples, low/high (of `value`), worst (max of `worst`). Episodes less
    than `merge_within_s` apart are merged (a signal chattering around a threshold)."""
    worst = pl.lit(None, pl.Float64) if worst is None else worst
    flagged = pl.col("_flag")
    episodes = (
        frame.with_columns(_flag=flag.fill_null(False), _worst=worst.cast(pl.Float64))
        .with_columns(_run=run_ids(flagged != flagged.shift().over("channel")))
        .filter(flagged)
        .group_by("channel", "_run", maintain_order=True)
        .agg(
            start=pl.col("time").first(),
            end=pl.col("time").last(),
            samples=pl.len(),
            low=pl.col("value").min(),
            high=pl.col("value").max(),
            worst=pl.col("_worst").max(),
        )
    )
    if merge_within_s > 0:
        apart = (pl.col("start") - pl.col("end").shift().over("channel")).dt.total_microseconds()
        episodes = (
            episodes.with_columns(_run=run_ids(apart > merge_within_s * 1e6))
            .group_by("channel", "_run", maintain_order=True)
            .agg(
                pl.col("start").min(),
                pl.col("end").max(),
                pl.col("samples").sum(),
                pl.col("low").min(),
                pl.col("high").max(),
                pl.col("worst").max(),
            )
        )
    return episodes.drop("_run").with_columns(seconds=seconds())


def by_channel(episodes: pl.DataFrame) -> Iterator[tuple[str, pl.DataFrame]]:
    """(channel, its episodes in time order), channels in name order."""
    for (channel,), group in episodes.sort("channel", "start").group_by(
        "channel", maintain_order=True
    ):
        yield str(channel), group


def episode_finding(
    code: str,
    severity: Severity,
    channel: str,
    spans: pl.DataFrame,
    message: str,
    *,
    hint: str = "",
    count: int | None = None,
    **details: Any,
) -> Finding:
    """One finding for a channel's episodes, spanning the first to the last; `count` defaults to
    the number of episodes."""
    return Finding(
        code,
        severity,
        message,
        hint=hint,
        channel=channel,
        start=spans.get_column("start").min(),
        end=spans.get_column("end").max(),
        count=spans.height if count is None else count,
        details=details,
    )


def listing(episodes: pl.DataFrame, **columns: str) -> list[dict[str, Any]]:
    """The first episodes as JSON-ready dicts: start, end, seconds and the named columns
    (`peak="high"` puts the episode's `high` under "peak")."""
    rows = episodes.head(LISTED_EPISODES).to_dicts()
    return [
        {
            "start": row["start"].isoformat(),
            "end": row["end"].isoformat(),
            "seconds": round(row["seconds"], 3),
            **{name: row[column] for name, column in columns.items()},
        }
        for row in rows
    ]


def when(start: datetime, end: datetime | None = None) -> str:
    """`2023-06-12 10:01:02` or `2023-06-12 10:01:02–12:20:00` (UTC)."""
    text = start.strftime("%Y-%m-%d %H:%M:%S")
    if end is None or end == start:
        return f"{text} UTC"
    tail = end.strftime("%H:%M:%S" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S")
    return f"{text}–{tail} UTC"


def spans_text(episodes: pl.DataFrame, shown: int = 3) -> str:
    """`10:01:02–12:20:00, 16:40:00–17:25:10 and 3 more` for the first few episodes."""
    rows = episodes.head(shown).to_dicts()
    parts = [when(r["start"], r["end"]).removesuffix(" UTC") for r in rows]
    more = episodes.height - len(rows)
    return ", ".join(parts) + (f" and {more} more" if more else "") + " UTC"


def duration(total_seconds: float) -> str:
    if total_seconds < 120:
        return f"{total_seconds:.0f} s"
    if total_seconds < 7200:
        return f"{total_seconds / 60:.0f} min"
    return f"{total_seconds / 3600:.1f} h"


def amount(value: float | None, unit: str = "") -> str:
    """A value with its unit in engineering-friendly precision (`1.17e-06 Torr`, `300.0 °C`)."""
    if value is None:
        return "?"
    text = (
        f"{value:.3g}"
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5)
        else f"{value:.4g}"
    )
    return f"{text} {unit}".strip()
