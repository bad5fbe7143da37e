"""The local Dagster instance under DAGSTER_HOME (the embedded default; deploy/ has the fab's)."""

from __future__ import annotations

from pathlib import Path

LOCAL_INSTANCE_YAML = """\
# Written by epi-ml for the embedded default (SQLite storage under this folder).
# A fab uses deploy/dagster.postgres.yaml instead.
telemetry:
  enabled: false
concurrency:
  pools:
    # Assets in a pool (training uses pool "gpu") run one at a time.
    default_limit: 1
"""


def ensure_instance_config(dagster_home: Path) -> Path:
    """Write dagster.yaml for the local instance unless the user already has one."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    return config
