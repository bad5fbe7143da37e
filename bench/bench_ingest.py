"""Ingest throughput and memory: epi-ml's ingest of tool logs against plain polars on the same
files, in the same run.

Baseline: `pl.read_csv` + `write_parquet` of every channel log (no hashing, no archive copy, no
date parsing, no checks, no store), the least any ingest has to do. Measured: `ingest_files`
into a fresh home each round: each file copied into the archive while hashed (fsync), read
(dates parsed in the tool's zone, tags mapped, every line checked), its table written to the lake
(atomic, fsync) and recorded in the store (SQLite). Target: at least half the baseline's rate.
Also, for information: the whole ingest of a twin campaign with its runs segmented, built and
validated. Memory: peak RSS of a process ingesting a campaign 4x larger than another; bounded by
the largest file (times the workers), not by the batch.

    python bench/bench_ingest.py --out bench-out [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from real_day import EVENT_FILES, real_day  # noqa: E402  (bench/ is on the path of a bench script)

TARGET_RATIO = 0.5
CAMPAIGN_RUNS, SMALL_RUNS = 32, 8


def channel_logs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.txt") if p.name.lower() not in EVENT_FILES and p.name != "LICENSE")


def baseline(files: list[Path], into: Path) -> None:
    for i, path in enumerate(files):
        pl.read_csv(path, skip_rows=2).write_parquet(into / f"{i}.parquet")


def fresh_home(parent: Path) -> Path:
    """A new, empty home (a new path each time: engines are cached per store URL)."""
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(dir=parent))
    os.environ["EPI_ML_HOME"] = str(home)
    from epi_ml.settings import reset_settings_cache

    reset_settings_cache()
    return home


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ingest(files: list[Path], homes: Path, landing: Path, tz: str) -> tuple[float, int]:
    """One ingest of `files` into an empty, migrated home: (seconds, rows read). Making the home
    (folders, schema migrations) is not timed."""
    from epi_ml.ingest.batch import ingest_files, open_context

    home = fresh_home(homes)
    (home / "tools.yaml").write_text(f"MBE8:\n  timezone: {tz}\n")
    ctx = open_context(landing_root=landing)
    start = time.perf_counter()
    outcomes = ingest_files(ctx, files)
    seconds = time.perf_counter() - start
    bad = [o for o in outcomes if o.status == "quarantined"]
    if bad:
        raise RuntimeError(f"{len(bad)} file(s) quarantined in the benchmark: {bad[0].findings}")
    return seconds, sum(o.rows for o in outcomes)


def interleaved(repeat: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Best time of each over `repeat` rounds, taking turns, after one warm-up each. Each run
    returns the seconds it measured."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            best[name] = min(best[name], run())
    return best


def timed(run: Callable[[], object]) -> Callable[[], float]:
    def measure() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    return measure


def child_peak(kind: str, folder: Path, home: Path) -> dict[str, float]:
    """Peak RSS of a fresh process doing `kind` (ingest | baseline) on `folder`."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(folder), str(home)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(kind: str, folder: Path, home: Path) -> None:
    files = channel_logs(folder)
    start = time.perf_counter()
    if kind == "baseline":
        home.mkdir(parents=True, exist_ok=True)
        baseline(files, home)
    else:
        from epi_ml.ingest.batch import ingest_paths, open_context

        fresh_home(home)
        ingest_paths(open_context(landing_root=folder), [folder], build=kind == "pipeline")
    print(json.dumps({"peak_mb": peak_rss_mb(), "seconds": time.perf_counter() - start}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "FOLDER", "HOME"))
    args = parser.parse_args()
    if args.child:
        run_child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return 0

    from epi_ml.twin import simulate_campaign

    results, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # 1. The real EPIC day (a tool that logs all day: 10 channel logs of ~2 MB).
        real = real_day()
        day = tmp_path / "real" / "MBE8" / "2023_06_12"
        day.mkdir(parents=True)
        for path in real.glob("*.txt"):
            shutil.copy(path, day / path.name)
        # 2. A twin campaign (tools that log only during runs: many smaller files).
        twin = tmp_path / "twin"
        simulate_campaign(twin, runs=CAMPAIGN_RUNS, seed=3, tools=2)
        small = tmp_path / "small"
        simulate_campaign(small, runs=SMALL_RUNS, seed=3, tools=2)

        for name, folder, tz in (
            (f"real EPIC day `{real.name}`", day.parent.parent, "Europe/Berlin"),
            (f"twin campaign, {CAMPAIGN_RUNS} runs on 2 tools", twin, "UTC"),
        ):
            files = channel_logs(folder)
            megabytes = sum(p.stat().st_size for p in files) / 1e6
            raw_out = tmp_path / "raw"
            raw_out.mkdir(exist_ok=True)
            rows_box: list[int] = []

            def one_ingest(files: list[Path] = files, folder: Path = folder, tz: str = tz) -> float:
                seconds, rows = ingest(files, tmp_path / "homes", folder, tz)
                rows_box.append(rows)
                return seconds

            best = interleaved(
                args.repeat,
                {"raw": timed(lambda files=files: baseline(files, raw_out)), "ingest": one_ingest},
            )
            rows = rows_box[-1]
            results.append((name, len(files), rows, megabytes, best["raw"], best["ingest"]))
            print(f"{name}: {len(files)} logs, {rows:,} rows, {megabytes:.1f} MB: "
                  f"baseline {best['raw']:.2f} s, ingest {best['ingest']:.2f} s, "
                  f"ratio {best['raw'] / best['ingest']:.2f}", flush=True)  # fmt: skip

        pipeline = child_peak("pipeline", twin, tmp_path / "home-pipeline")
        twin_rows = results[1][2]
        notes.append(
            f"Whole ingest of the twin campaign with its {CAMPAIGN_RUNS} runs segmented, built "
            f"and validated (`epi-ml ingest`): {pipeline['seconds']:.1f} s "
            f"({twin_rows / pipeline['seconds'] / 1e6:.2f} M rows/s), peak RSS "
            f"{pipeline['peak_mb']:.0f} MB."
        )
        memory = {
            (kind, label): child_peak(kind, folder, tmp_path / f"home-{kind}-{label}")
            for kind in ("baseline", "ingest")
            for label, folder in (("small", small), ("large", twin))
        }
        largest = max(p.stat().st_size for p in channel_logs(twin)) / 1e6
        sizes = {
            label: sum(p.stat().st_size for p in channel_logs(f)) / 1e6
            for label, f in (("small", small), ("large", twin))
        }

    lines = [
        "## Ingest (bench_ingest)",
        "",
        f"Best of {args.repeat}, interleaved. Baseline: polars `read_csv` + `write_parquet` of "
        "every channel log. Ingest: `ingest_files` into an empty home (archive copy + SHA-256 + "
        "fsync, read with every line checked and dates in the tool's zone, lake Parquet written "
        f"atomically, store rows). Target: ingest at least {TARGET_RATIO} x the baseline's rate.",
        "",
        "| data | logs | rows | MB | baseline | ingest | ingest rows/s | ingest MB/s | rate vs baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, n, rows, mb, t_raw, t_ing in results:
        lines.append(
            f"| {name} | {n} | {rows:,} | {mb:.1f} | {t_raw:.2f} s | {t_ing:.2f} s | "
            f"{rows / t_ing / 1e6:.2f} M | {mb / t_ing:.1f} | {t_raw / t_ing:.2f} |"
        )
    lines += [
        "",
        "Peak memory (RSS of a fresh process), a campaign 4x larger than the other; largest "
        f"single log {largest:.1f} MB:",
        "",
        "| what | small campaign | large campaign | large / small |",
        "|---|---:|---:|---:|",
        f"| data (channel logs) | {sizes['small']:.0f} MB | {sizes['large']:.0f} MB | "
        f"{sizes['large'] / sizes['small']:.1f} |",
    ]
    for kind in ("baseline", "ingest"):
        small_mb, large_mb = memory[(kind, "small")]["peak_mb"], memory[(kind, "large")]["peak_mb"]
        lines.append(f"| {kind} peak RSS | {small_mb:.0f} MB | {large_mb:.0f} MB | {large_mb / small_mb:.2f} |")
    lines += ["", *(f"- {note}" for note in notes)]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_ingest.md").write_text(text)
    worst = min(t_raw / t_ing for *_, t_raw, t_ing in results)
    if worst < TARGET_RATIO:
        print(f"below target: {worst:.2f} < {TARGET_RATIO}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
