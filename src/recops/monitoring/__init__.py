"""Data and model drift between a reference and a current window of events (Evidently + PSI)."""
