"""Feature building for a 300-run twin campaign: layer features of every run and the training set,
against a plain polars per-layer aggregation of the same sensor tables, in the same run.

Set-up (not timed as features): the campaign simulated and ingested with its runs built (the
whole ingest's time is reported too). Measured: `build_run_features` for every run (calibration in
force, shutter times, cell/substrate statistics, transients, V/III, RHEED growth rate, physics
baseline), one process, runs one after another; the RHEED estimation's share; then
`build_training_set` (sequence features, measurements joined). Baseline: for each run, read its
sensor table and compute mean/std/min/max per layer and channel with one polars join + group-by,
the least any per-layer feature builder does.

    python bench/bench_features.py --out bench-out [--runs 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["EPI_ML_HOME"] = str(home)
        from epi_ml import features as _  # noqa: F401  (imports before timing)
        from epi_ml.analysis import rheed
        from epi_ml.calibration import calibration_history
        from epi_ml.features import core
        from epi_ml.features.build import build_run_features, build_training_set
        from epi_ml.features.windows import in_windows
        from epi_ml.ingest.batch import ingest_paths, open_context
        from epi_ml.ingest.run_stages import window_of
        from epi_ml.store import read_session
        from epi_ml.store.models import Layer
        from epi_ml.twin import simulate_campaign

        campaign = Path(tmp) / "landing"
        start = time.perf_counter()
        simulate_campaign(campaign / "twin", runs=args.runs, seed=1, tools=2)
        simulated_s = time.perf_counter() - start
        ctx = open_context(landing_root=campaign)
        start = time.perf_counter()
        report = ingest_paths(ctx, [campaign])
        ingest_s = time.perf_counter() - start
        run_ids = [r.run_id for r in report.built if r.status != "quarantined"]
        history = calibration_history(ctx)

        # RHEED's share: the same calls, timed where features make them
        rheed_s = [0.0]
        estimate = rheed.growth_rate_in_window

        def timed_estimate(*a, **k):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return estimate(*a, **k)
            finally:
                rheed_s[0] += time.perf_counter() - t0

        rheed.growth_rate_in_window = timed_estimate  # type: ignore[assignment]
        start = time.perf_counter()
        layers = 0
        for run_id in run_ids:
            layers += build_run_features(ctx, run_id, history).height
        features_s = time.perf_counter() - start
        rheed.growth_rate_in_window = estimate  # type: ignore[assignment]

        start = time.perf_counter()
        dataset = build_training_set(ctx)
        training_s = time.perf_counter() - start

        # Baseline: per-layer aggregation of the same tables, plain polars
        with read_session(ctx.engine) as session:
            by_run: dict[str, list] = {}
            for layer in session.query(Layer).filter(Layer.started_at.is_not(None)):
                by_run.setdefault(layer.run_id, []).append(window_of(layer))
        rows = 0
        start = time.perf_counter()
        for run_id in run_ids:
            sensors = ctx.lake.read_run_table(run_id, "sensors")
            rows += sensors.height
            windows = core.windows_frame(sorted(by_run.get(run_id, []), key=lambda w: w.index))
            in_windows(sensors, windows).group_by("layer", "channel").agg(
                pl.col("value").mean(), pl.col("value").std().alias("std"),
                pl.col("value").min().alias("min"), pl.col("value").max().alias("max"),
            )  # fmt: skip
        baseline_s = time.perf_counter() - start

    n = len(run_ids)
    text = "\n".join(
        [
            "## Feature building (bench_features)",
            "",
            f"A twin campaign of {args.runs} runs on 2 tools (seed 1), simulated in {simulated_s:.0f} s "
            f"and ingested with every run built and validated in {ingest_s:.0f} s "
            f"({n} runs accepted). One process, runs one after another.",
            "",
            "| what | runs | layers | sensor rows | time | runs/s | layers/s | M rows/s | vs baseline |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| baseline: read + per-layer mean/std/min/max (polars) | {n} | {layers} | {rows:,} | "
            f"{baseline_s:.1f} s | {n / baseline_s:.1f} | {layers / baseline_s:.0f} | "
            f"{rows / baseline_s / 1e6:.1f} | 1.0x |",
            f"| `build_run_features` (all features) | {n} | {layers} | {rows:,} | {features_s:.1f} s | "
            f"{n / features_s:.1f} | {layers / features_s:.0f} | {rows / features_s / 1e6:.1f} | "
            f"{features_s / baseline_s:.1f}x |",
            f"| of which RHEED growth-rate estimation | | | | {rheed_s[0]:.1f} s | | | | "
            f"{rheed_s[0] / features_s:.0%} of it |",
            f"| `build_training_set` ({dataset.frame.height} layers, {dataset.measured_layers} "
            f"measured) | {dataset.runs} | | | {training_s:.1f} s | | | | |",
            "",
            f"Peak RSS of the benchmark process: {peak_rss_mb():.0f} MB. Partitions build in parallel "
            "in a deployment (one growth_run run per partition); these numbers are one core's.",
        ]
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_features.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
