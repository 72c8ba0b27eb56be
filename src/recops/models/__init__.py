"""Recommender models behind one contract (`RecModel`), built from `conf/model/*.yaml`."""

from recops.models.base import RecModel, load_model

__all__ = ["RecModel", "load_model"]
