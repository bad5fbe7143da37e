"""Which tool wrote a file, and how to read that tool's files (time zone, tag map).

Files land as the fab syncs them: one folder per tool, `landing/<tool>/...` (EPIC day folders
`landing/MBE8/2023_06_12/`, or the twin's `landing/twin/MBE1/logs/...`). The tool of a file is,
in this order: the one given (`epi-ml ingest --tool`), the tool in a run id the file is named
after (`MBE1-20260105-02.csv`), the folder above a tool's structural folder (`<tool>/logs`,
`<tool>/calibrations`, ...), the folder above an EPIC day folder (`<tool>/2023_06_12`), else the
first folder under the landing root.

Per-tool settings live in `$EPI_ML_HOME/tools.yaml` (optional):

    MBE8:
      timezone: Europe/Berlin     # EPIC writes local wall-clock time without a zone
      tag_map: epic               # a map of epi_ml.readers.tagmaps.TAG_MAPS
      tags: {"Mg.PID.MV": "Mg.T"} # extra vendor tags -> canonical channels
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from epi_ml.readers.tagmaps import TAG_MAPS

TOOLS_FILE = "tools.yaml"
# Folders a tool's sync writes below the tool's own folder.
STRUCTURE_FOLDERS = frozenset({"logs", "calibrations", "recipes", "measurements", "rheed", "data"})
DAY_FOLDER = re.compile(r"^\d{4}[_-]\d{2}[_-]\d{2}$")
RUN_ID_IN_NAME = re.compile(r"(?P<tool>[A-Za-z][A-Za-z0-9_]*)-(?P<day>\d{8})-(?P<seq>\d+)")
TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class ToolConfigError(ValueError):
    """tools.yaml cannot be used; the message says where and why."""


class ToolConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    tag_map: str = "epic"
    tags: dict[str, str] = Field(default_factory=dict)
    vendor: str = "EPIC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r} (use an IANA name like Europe/Berlin)") from exc
        return zone

    @field_validator("tag_map")
    @classmethod
    def _known_map(cls, name: str) -> str:
        if name not in TAG_MAPS:
            raise ValueError(f"unknown tag map {name!r}; known: {', '.join(sorted(TAG_MAPS))}")
        return name

    def tag_mapping(self) -> dict[str, str]:
        return {**TAG_MAPS[self.tag_map], **self.tags}


def load_tool_configs(home: Path) -> dict[str, ToolConfig]:
    """`$EPI_ML_HOME/tools.yaml`, or no settings (every tool UTC, EPIC tags) when it is absent."""
    path = Path(home) / TOOLS_FILE
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ToolConfigError(f"{path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ToolConfigError(f"{path}: expected a mapping of tool name -> settings")
    configs = {}
    for name, settings in data.items():
        try:
            configs[str(name)] = ToolConfig.model_validate(settings or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ToolConfigError(f"{path}: tool {name}: {problems}") from exc
    return configs


def tool_from_path(path: Path, root: Path | None) -> str | None:
    """The tool a file belongs to by its name and folders (see the module docstring), or None."""
    if match := RUN_ID_IN_NAME.search(path.name):
        return match["tool"]
    try:
        parts = path.parent.relative_to(root).parts if root else path.parent.parts
    except ValueError:
        parts = path.parent.parts
    for i, part in enumerate(parts):
        if i > 0 and (part in STRUCTURE_FOLDERS or DAY_FOLDER.match(part)):
            return parts[i - 1] if TOOL_NAME.match(parts[i - 1]) else None
    if root is not None and parts and TOOL_NAME.match(parts[0]):
        return parts[0]
    return None


def run_id_in_name(path: Path) -> str | None:
    """The run id a file is named after (`MBE1-20260105-02_rheed.csv` -> `MBE1-20260105-02`)."""
    match = RUN_ID_IN_NAME.search(path.name)
    return match.group(0) if match else None
