"""Partitions: one growth run = one key of the dynamic partitions `growth_runs` (its run id)."""

import dagster as dg

GROWTH_RUNS = "growth_runs"
growth_runs = dg.DynamicPartitionsDefinition(name=GROWTH_RUNS)
