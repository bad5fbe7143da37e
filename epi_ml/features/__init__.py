"""Per-layer features: what growers and models reason with, computed by one versioned function for
training, the dashboard and the report (no train/serve skew). See `epi_ml.features.core`."""
