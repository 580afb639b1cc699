"""churn_model: a small but real customer-churn ML project (synthetic data, scikit-learn, MLflow)."""

__version__ = "0.1.0"

#: MLflow experiment every training and validation run goes to.
EXPERIMENT_NAME = "/churn-model"
#: Default registered model name.
MODEL_NAME = "churn-model"
#: Environments deploy.py knows: the alias it sets on the version is the environment's name.
ENVIRONMENTS = ("dev", "staging", "prod")
#: Size of the validation set validate.py scores by default (evaluate.py always scores this one).
VALIDATION_DATASET = "toy"
