"""The MLflow model registry: registration, aliases and gated promotion."""
