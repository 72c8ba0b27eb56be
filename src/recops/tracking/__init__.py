"""MLflow integration: store resolution, run logging, the pyfunc flavour of a Recommender."""
