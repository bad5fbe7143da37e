"""Reading a real EPIC day: epi-ml's readers against plain polars on the same files, same run.

Baseline: `pl.read_csv` + `write_parquet` of every channel log (no date parsing, no checks), the
least any ingest has to do. Measured: `read_epic_day` (dates parsed and converted from the tool's
zone to UTC, tags mapped, every line checked, findings written), `read_epic_channel` one file
after another, and a damaged copy of the day (0.1 % of lines with an extra field), which sends
every file down the slow path that locates bad lines. Target: at least half the baseline's rate.

    python bench/bench_ingest_read.py --out bench-out [--day DIR] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from real_day import EVENT_FILES, real_day  # noqa: E402  (bench/ is on the path of a bench script)

from epi_ml.readers import read_epic_channel, read_epic_day

# The full real day (shared/ next to or inside the checkout), else the trimmed copy of the tests.
TARGET_RATIO = 0.5


def interleaved(repeat: int, runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time of each run over `repeat` rounds, the runs taking turns within each round, so
    that a busy spell of this shared machine slows all of them alike."""
    for run in runs.values():
        run()  # warm-up: file cache, lazy imports, polars thread pool
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def damaged_copy(day: Path, into: Path, share: float = 0.001) -> None:
    rng = random.Random(0)
    for path in day.iterdir():
        data = path.read_bytes()
        if path.name.lower() not in EVENT_FILES and path.suffix == ".txt":
            lines = data.split(b"\r\n")
            for i in rng.sample(range(3, len(lines) - 1), max(1, int(len(lines) * share))):
                lines[i] += b",junk"
            data = b"\r\n".join(lines)
        (into / path.name).write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--day", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    day = args.day or real_day()
    logs = sorted(p for p in day.glob("*.txt") if p.name.lower() not in EVENT_FILES)
    megabytes = sum(p.stat().st_size for p in logs) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)

        def baseline() -> None:
            for i, path in enumerate(logs):
                pl.read_csv(path, skip_rows=2).write_parquet(tmp_path / f"{i}.parquet")

        rows = read_epic_day(day, tz="Europe/Berlin").sensors.height
        damaged = tmp_path / "damaged"
        damaged.mkdir()
        damaged_copy(day, damaged)
        damaged_day = read_epic_day(damaged, tz="Europe/Berlin")
        bad_lines = sum(f.count for f in damaged_day.findings if f.code == "unparseable_line")
        best = interleaved(
            args.repeat,
            {
                "raw": baseline,
                "day": lambda: read_epic_day(day, tz="Europe/Berlin"),
                "seq": lambda: [read_epic_channel(p, tz="Europe/Berlin") for p in logs],
                "bad": lambda: read_epic_day(damaged, tz="Europe/Berlin"),
            },
        )
        t_raw, t_day, t_seq, t_bad = best["raw"], best["day"], best["seq"], best["bad"]

    def rates(seconds: float) -> str:
        per_s = f"{rows / seconds / 1e6:6.2f} M rows/s  {megabytes / seconds:7.1f} MB/s"
        return f"{seconds * 1e3:8.1f} ms  {per_s}"

    ratio = t_raw / t_day
    lines = [
        f"EPIC day: {day} ({len(logs)} channel logs, {rows:,} rows, {megabytes:.1f} MB)",
        f"baseline read_csv+write_parquet   {rates(t_raw)}",
        f"read_epic_day                     {rates(t_day)}   ratio {ratio:.2f} (>= {TARGET_RATIO})",
        f"read_epic_channel, one by one     {rates(t_seq)}   ratio {t_raw / t_seq:.2f}",
        f"read_epic_day, {bad_lines} bad lines    {rates(t_bad)}   ratio {t_raw / t_bad:.2f}",
    ]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    table = [
        "| what | time | rows/s | MB/s | rate vs baseline |",
        "|---|---|---|---|---|",
        *(
            f"| {what} | {s * 1e3:.1f} ms | {rows / s / 1e6:.2f} M | {megabytes / s:.1f} "
            f"| {t_raw / s:.2f} |"
            for what, s in (
                ("baseline: polars read_csv + write_parquet", t_raw),
                ("read_epic_day (parse, UTC, map, check)", t_day),
                ("read_epic_channel, files one by one", t_seq),
                (f"read_epic_day, damaged copy ({bad_lines} bad lines)", t_bad),
            )
        ),
    ]
    (args.out / "bench_ingest_read.md").write_text(
        "## Reading an EPIC day (bench_ingest_read)\n\n"
        f"{len(logs)} channel logs of `{day.name}`, {rows:,} rows, {megabytes:.1f} MB; best of "
        f"{args.repeat}. Target: read_epic_day at least {TARGET_RATIO} x the baseline's rate.\n\n"
        + "\n".join(table)
        + "\n"
    )
    if ratio < TARGET_RATIO:
        print(f"below target: {ratio:.2f} < {TARGET_RATIO}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
