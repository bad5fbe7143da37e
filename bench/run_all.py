"""`make bench`: run every bench/bench_*.py and collect their results into docs/benchmarks.md.

Each benchmark script takes `--out DIR` and writes `DIR/<name>.md` (a markdown section with its
numbers and the baseline it was compared with in the same run). This script adds the machine the
numbers came from, because these machines are shared and the numbers mean little without it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks.md"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        memory = f"{mem_kb / 1024**2:.0f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        gpu = "torch not installed"
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory} RAM, GPU: {gpu}; "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--only", nargs="*", help="names of benchmarks to run (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    sections, failed = [], []
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(script), "--out", str(args.out)])
        print(f"   {script.stem}: exit {done.returncode} in {time.perf_counter() - start:.1f} s")
        result = args.out / f"{script.stem}.md"
        if done.returncode != 0 or not result.exists():
            failed.append(script.stem)
            continue
        sections.append(result.read_text().strip())

    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (bench/run_all.py). Every number is compared with a baseline "
        "measured in the same run, because these machines are shared and noisy.\n\n"
        f"- Measured: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
        f"- Machine: {machine_description()}\n"
    )
    if sections and not args.only:
        DOCS.write_text(header + "\n" + "\n\n".join(sections) + "\n")
        print(f"wrote {DOCS}")
    elif sections:
        print("\n\n".join(sections))
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
