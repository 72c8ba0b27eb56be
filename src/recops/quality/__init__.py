"""The data-quality report before training (`recops validate`)."""
