"""epi-ml: process ML for molecular beam epitaxy (the domain core; imports no dagster and no dash)."""

__version__ = "0.1.0"
