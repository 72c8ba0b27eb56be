"""Serving: the BentoML service logic, model loading and swapping, canary, caches."""
