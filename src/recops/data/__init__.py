"""Data layer: sources, validation, the DuckDB event store and the ingest pipeline."""
