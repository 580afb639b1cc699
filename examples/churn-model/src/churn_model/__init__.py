"""churn_model: a small but real customer-churn ML project (synthetic data, scikit-learn, MLflow)."""

__version__ = "0.1.0"

#: MLflow experiment every training and validation run goes to.
EXPERIMENT_NAME = "/churn-model"
#: Default registered model name.
MODEL_NAME = "churn-model"
