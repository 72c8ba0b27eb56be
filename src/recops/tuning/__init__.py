"""Hyperparameter sweeps with Optuna: search spaces (`space`), the trial objective
(`objective`) and studies (`study.run_study`).

`recops optimize model=als trials=50` or `python -m pipelines.sweep model=als sweep.trials=50`.
Modules are imported directly (this package stays import-light: no MLflow on import).
"""
