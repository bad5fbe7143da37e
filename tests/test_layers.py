"""The layering rule: the domain core imports no dagster and no dash."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import epi_ml

ADAPTER_ENTRY_POINTS = {"epi_ml.cli"}  # registers the adapters' commands; not part of the core


def test_domain_core_imports_no_dagster_and_no_dash() -> None:
    modules = [
        m.name
        for m in pkgutil.walk_packages(epi_ml.__path__, "epi_ml.")
        if m.name not in ADAPTER_ENTRY_POINTS and ".migrations" not in m.name
    ]
    assert len(modules) > 5
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dash'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"epi_ml imports {done.stdout.strip()}"
