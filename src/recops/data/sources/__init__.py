"""Data sources: each turns some external data into a `RawData` (events + optional items)."""
