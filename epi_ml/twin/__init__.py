"""The MBE digital twin: physics-based tools that write what real tools write (docs/twin.md).

Public API (imported lazily, so that `import epi_ml.twin` and `epi-ml --help` stay fast):

    simulate_campaign(out, runs, seed, tools, start, fmt)  -> manifest (also out/manifest.json)
    load_manifest(out)                                      -> the manifest of a written campaign
    live_run(out, tool, recipe, speed, seed, fmt)           -> grow one run live into log files
    grow_one_run(recipe, tool, seed, ...)                   -> GrownRun(state, trace, scans)
    load_recipe(name_or_path), parse_recipe(dict), library_names(), Recipe, RecipeError
    make_tool(name, index, seed) -> ToolSpec;  RunTrace;  write_run(writer, trace, state)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "simulate_campaign": "epi_ml.twin.campaign",
    "load_manifest": "epi_ml.twin.campaign",
    "live_run": "epi_ml.twin.live",
    "grow_one_run": "epi_ml.twin.single",
    "GrownRun": "epi_ml.twin.single",
    "load_recipe": "epi_ml.twin.recipe",
    "parse_recipe": "epi_ml.twin.recipe",
    "library_names": "epi_ml.twin.recipe",
    "load_library": "epi_ml.twin.recipe",
    "Recipe": "epi_ml.twin.recipe",
    "RecipeError": "epi_ml.twin.recipe",
    "make_tool": "epi_ml.twin.tools",
    "ToolSpec": "epi_ml.twin.tools",
    "RunTrace": "epi_ml.twin.run",
    "write_run": "epi_ml.twin.writers",
    "make_writer": "epi_ml.twin.writers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'epi_ml.twin' has no attribute {name!r}")
