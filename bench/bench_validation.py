"""Validation speed on a long run: a 6-hour run, 64 channels at 1 Hz (~1.4M samples).

Baseline in the same run: plain polars per-channel statistics (group_by + min/max/mean/std/quantiles)
over the same frame — the least any validator must do. The ratio says what the checks cost on top.
"""

from __future__ import annotations

import argparse
import time
import resource
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from epi_ml.channels import SENSOR_SCHEMA
from epi_ml.validation import validate_run

HOURS = 6
CHANNELS = 64
REPEATS = 3


def synthetic_run(seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = HOURS * 3600
    t0 = int(datetime(2026, 1, 5, 8, tzinfo=UTC).timestamp() * 1e6)
    times = t0 + (np.arange(n) * 1e6).astype(np.int64)
    frames = []
    cells = ["Ga", "Al", "In", "Si", "Be", "As"]
    for i in range(CHANNELS):
        cell = cells[i % len(cells)]
        quantity = ["T", "T_set", "power", "T_lip"][(i // len(cells)) % 4]
        name = f"{cell}{i // 24 or ''}.{quantity}"
        base = {"T": 900.0, "T_set": 900.0, "power": 40.0, "T_lip": 950.0}[quantity]
        values = base + rng.normal(0, 0.08, n) + 5 * np.sin(np.arange(n) / 3000)
        frames.append(pl.DataFrame({"time": times, "channel": [name] * n, "value": values}))
    frame = pl.concat(frames).with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
    return frame.cast(SENSOR_SCHEMA).unique(subset=["time", "channel"], keep="first")


def baseline_stats(frame: pl.DataFrame) -> pl.DataFrame:
    v = pl.col("value")
    return frame.group_by("channel").agg(
        pl.len(), v.min().alias("min"), v.max().alias("max"), v.mean().alias("mean"),
        v.std().alias("std"), v.quantile(0.01).alias("p1"), v.quantile(0.99).alias("p99"),
    )  # fmt: skip


def best_of(fn, frame: pl.DataFrame) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args()
    frame = synthetic_run()
    rows = frame.height
    t_base = best_of(baseline_stats, frame)
    t_val = best_of(validate_run, frame)
    report = validate_run(frame)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    section = (
        f"## Validation ({HOURS} h run, {CHANNELS} channels at 1 Hz, {rows:,} samples)\n\n"
        "| what | best of 3 | samples/s | vs baseline |\n|---|---:|---:|---:|\n"
        f"| baseline: polars per-channel stats | {t_base:.2f} s | {rows / t_base:,.0f} | 1.0x |\n"
        f"| `validate_run` (all checks + stats) | {t_val:.2f} s | {rows / t_val:,.0f} | "
        f"{t_val / t_base:.1f}x |\n\n"
        f"Status of the synthetic run: `{report.status}` ({len(report.findings)} findings). "
        f"Peak RSS of the benchmark process: {peak_rss_mb:.0f} MB "
        f"(the frame itself is {frame.estimated_size() / 1e6:.0f} MB).\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_validation.md").write_text(section)
    print(section)


if __name__ == "__main__":
    main()
