"""Ingest: landing -> archive (raw bytes, content-addressed) -> readers -> validation -> store."""
