"""RecOps: experiment-and-registry platform for recommender systems."""

import os

# implicit and the other CPU trainers parallelise themselves; an OpenBLAS thread pool
# underneath them slows them down. Must be set before numpy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
