"""Readers: real tool formats -> the canonical long sensor table (epi_ml.channels.SENSOR_SCHEMA)."""
