"""Offline evaluation: vectorised ranking and beyond-accuracy metrics, metric-at-k plots."""
