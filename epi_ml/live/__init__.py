"""The live path: samples of runs in progress into the store within a second of being logged.

- `buffer`: the `live_samples` table (append, incremental reads for the dashboard, trim, drop).
- `runs`: the run growing on each tool, from its messages (the same segmentation as batch ingest),
  kept in `growth_runs` with status `live` until it ends.
- `tailer`: follows the EPIC logs under the landing folder (`epi-ml tail`, `python -m epi_ml.live`).
- `mqtt`: listens to tools that publish their channels over MQTT (`epi-ml tail --mqtt HOST:PORT`).

When a run ends its partition is materialized from the files like any other (epi_ml.ingest); the
buffer is only what the dashboard shows meanwhile.
"""

from epi_ml.live.buffer import (
    append_samples,
    drop_run,
    latest_values,
    read_samples,
    trim,
)

__all__ = ["append_samples", "drop_run", "latest_values", "read_samples", "trim"]
