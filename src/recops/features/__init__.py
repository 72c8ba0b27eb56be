"""Feature building: id maps, the weighted interaction matrix, item features and the split."""
