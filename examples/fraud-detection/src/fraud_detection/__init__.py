"""fraud_detection: the fraud team's two models (card_fraud, ato_risk) on synthetic data, scikit-learn and MLflow."""

__version__ = "0.1.0"

#: MLflow experiment every training and validation run goes to (runs are tagged with their model).
EXPERIMENT_NAME = "/fraud-detection"
#: Environments deploy.py knows: the alias it sets on the version is the environment's name.
ENVIRONMENTS = ("dev", "staging", "prod")
#: Size of the validation set the training run and score/judge use by default.
VALIDATION_DATASET = "toy"
#: Row counts of the named datasets. `tiny` is for the project's own tests.
DATASET_SIZES: dict[str, int] = {"tiny": 800, "toy": 4_000, "full": 50_000}
#: Seed of the training data unless a step is given another.
DEFAULT_SEED = 7
