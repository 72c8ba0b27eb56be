"""Backups of a running project (DuckDB store, MLflow store and artifacts, registry state,
reports), their verification, and restores into a new folder."""
