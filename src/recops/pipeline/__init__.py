"""The pipeline stages as library functions: ingest, features, train, evaluate, register, drift.

`pipelines/*.py` (DVC stages) and the `recops` CLI are thin wrappers around these.
"""
