"""The MLflow "models from code" file of a recops recommender.

MLflow copies this file into the logged model and runs it when someone calls
`mlflow.pyfunc.load_model`: it only imports the installed `recops` package and sets the model
(no pickled object is stored). RecOps's own loading never runs it (see `model_files`).
"""

import mlflow.models

from recops.tracking.pyfunc import RecommenderPyfunc

mlflow.models.set_model(RecommenderPyfunc())
