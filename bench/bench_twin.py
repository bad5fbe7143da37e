"""Digital-twin simulation speed and memory.

Run by `make bench`, or alone: `python bench/bench_twin.py --out DIR`.

Scenarios, each in a fresh process so that its peak memory is its own:
- the issue's campaign: 300 runs on 2 tools (~12 weeks), EPIC format, ~1 Hz logger, 34 channels,
  RHEED at 5 Hz, shutter and message events; one worker process per tool;
- the same campaign on one worker (what running the tools in parallel buys);
- memory: one tool's worker process alone for 3 and for 12 weeks (38 and 150 runs); its peak
  must not grow with the campaign length;
- wide CSV and Parquet on 60 runs.
Baseline, measured in the same run: writing the same number of bytes to the same disk with no
simulation and no formatting, the floor any writer of these files pays.
Writes `DIR/bench_twin.md` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One scenario, run by a fresh interpreter: simulate, then report time, memory and volume as JSON.
SCENARIO = r"""
import json, resource, sys, time
from datetime import datetime
from epi_ml.twin.campaign import simulate_campaign

out, fmt = sys.argv[1], sys.argv[4]
runs, tools, workers = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[5])
began = time.perf_counter()
manifest = simulate_campaign(out, runs=runs, seed=2026, tools=tools, fmt=fmt, workers=workers)
seconds = time.perf_counter() - began
usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
files, runs_truth = manifest["files"], manifest["truth"]["runs"]
stamp = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))
hours = [(stamp(r["end"]) - stamp(r["start"])).total_seconds() for r in runs_truth]
print(json.dumps({
    "seconds": seconds,
    "peak_mb": usage[0].ru_maxrss / 1024,  # this process (workers run under the forkserver)
    "start": manifest["start"],
    "end": manifest["end"],
    "bytes": sum(f["bytes"] for kind in files.values() for f in kind),
    "log_files": len(files["logs"]),
    "runs": len(runs_truth),
    "run_hours": sum(hours) / 3600,
    "longest_run_hours": max(hours) / 3600,
}))
"""


# One tool's worker alone, for its peak memory.
TOOL_SCENARIO = r"""
import json, resource, sys
from datetime import date
from pathlib import Path
from epi_ml.twin.campaign import ToolJob, simulate_tool

job = ToolJob(Path(sys.argv[1]), 0, "MBE1", int(sys.argv[2]), 2026, date(2026, 1, 5), "epic")
result = simulate_tool(job)
print(json.dumps({
    "runs": len(result.runs),
    "last_day": result.last_day,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def count_rows(folder: Path) -> int:
    """Data rows in the EPIC/CSV log files (lines minus the 3-line EPIC or 1-line CSV header)."""
    rows = 0
    for path in folder.rglob("*"):
        if path.is_file() and "/logs/" in path.as_posix() and path.suffix in (".txt", ".csv"):
            with path.open("rb") as f:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda f=f: f.read(1 << 24), b""))
            rows += lines - (3 if path.suffix == ".txt" else 1)
    return rows


def run_scenario(runs: int, tools: int, fmt: str, workers: int, count: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-twin-") as tmp:
        out = Path(tmp) / "campaign"
        args = [str(out), str(runs), str(tools), fmt, str(workers)]
        done = subprocess.run(
            [sys.executable, "-c", SCENARIO, *args], capture_output=True, text=True, check=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if count:
            result["rows"] = count_rows(out)
        result.update(fmt=fmt, workers=workers)
        return result


def tool_memory(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-twin-") as tmp:
        done = subprocess.run(
            [sys.executable, "-c", TOOL_SCENARIO, tmp, str(runs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])


def disk_baseline(n_bytes: int) -> float:
    """Seconds to write `n_bytes` in 8 MiB blocks and flush them: no simulation, no formatting."""
    block = b"x" * (8 << 20)
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as tmp:
        began = time.perf_counter()
        with (Path(tmp) / "blob").open("wb") as f:
            for _ in range(0, n_bytes, len(block)):
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        return time.perf_counter() - began


def report(scenarios: list[tuple[str, dict]], memory: list[dict], baseline_s: float) -> str:
    headline, one_worker = scenarios[0][1], scenarios[1][1]
    short, long = memory
    lines = [
        "## Digital twin (bench/bench_twin.py)",
        "",
        "Bar (issue 3): a 12-week, 2-tool campaign (~300 runs, 1 Hz, ~40 channels) in under 60 s "
        f"on 2 cores, memory flat in the campaign length. This machine: {os.cpu_count()} CPUs.",
        "",
        "| scenario | runs | format | workers | days | run hours | files | MB | wall s "
        "| s/run | main RSS MB |",
        "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in scenarios:
        lines.append(
            f"| {name} | {r['runs']} | {r['fmt']} | {r['workers']} | {r['start']} .. {r['end']} "
            f"| {r['run_hours']:.0f} | {r['log_files']} | {r['bytes'] / 1e6:.0f} "
            f"| {r['seconds']:.1f} | {r['seconds'] / r['runs']:.3f} | {r['peak_mb']:.0f} |"
        )
    rows = headline["rows"]
    gigabytes = headline["bytes"] / 1e9
    lines += [
        "",
        f"- Headline: {headline['runs']} runs ({headline['run_hours']:.0f} h of logged runs), "
        f"{rows / 1e6:.1f} M log rows and {gigabytes:.2f} GB in **{headline['seconds']:.1f} s** "
        f"({rows / headline['seconds'] / 1e6:.2f} M rows/s); the bar is 60 s.",
        f"- Baseline (same run, same disk): writing {gigabytes:.2f} GB of plain bytes takes "
        f"{baseline_s:.1f} s; the twin takes {headline['seconds'] / max(baseline_s, 1e-9):.1f}x "
        "that, simulation and exact EPIC formatting included.",
        f"- Tools in parallel: {one_worker['seconds']:.1f} s on one worker, "
        f"{headline['seconds']:.1f} s on two.",
        f"- Memory of one tool's worker: {short['peak_mb']:.0f} MB peak for {short['runs']} runs "
        f"(to {short['last_day']}), {long['peak_mb']:.0f} MB for {long['runs']} runs (to "
        f"{long['last_day']}): runs are streamed to disk one at a time, the peak follows the "
        f"longest run ({headline['longest_run_hours']:.1f} h), not the campaign. The main process "
        f"(table, last column) only gathers the ground truth for the manifest.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--quick", action="store_true", help="small campaigns: a smoke test")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    full = 30 if args.quick else 300
    wide = 6 if args.quick else 60
    scenarios = [
        ("issue campaign, 2 workers", run_scenario(full, 2, "epic", 2, count=True)),
        ("same, 1 worker", run_scenario(full, 2, "epic", 1)),
        ("wide CSV", run_scenario(wide, 2, "csv", 2)),
        ("Parquet", run_scenario(wide, 2, "parquet", 2)),
    ]
    memory = [tool_memory(full // 8), tool_memory(full // 2)]
    text = report(scenarios, memory, disk_baseline(scenarios[0][1]["bytes"]))
    (args.out / "bench_twin.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
