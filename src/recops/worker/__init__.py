"""Continuous training: a worker that ingests dropped files, checks drift, retrains and promotes."""
