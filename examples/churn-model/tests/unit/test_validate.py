"""validate(): the candidate and the champion are scored on the same rows; no champion is not a failure.

The registry is a fake with the MlflowClient calls validate makes; models are trained here and loaded by a
fake loader that records the rows each model is asked about. The validation run goes to a throw-away SQLite
tracking store.
"""

from types import SimpleNamespace

import pandas as pd
import pytest
from churn_model.data import VALIDATION_SEED, generate
from churn_model.evaluate import compute_metrics, score
from churn_model.features import FEATURES, build_features, x_y
from churn_model.model import train_model
from churn_model.pipeline import StepError, parse_model_uri, validate, validation_table
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

CANDIDATE = "staging.ml.churn"
CHAMPION = "prod.ml.churn"


def _missing(what: str) -> MlflowException:
    return MlflowException(f"{what} does not exist.", error_code=RESOURCE_DOES_NOT_EXIST)


class Registry:
    """The registry calls validate makes: models by name, each {"versions": {n: run_id}, "aliases": {a: n}}."""

    def __init__(self, models: dict[str, dict]):
        self.models = models

    def get_registered_model(self, name):
        if name not in self.models:
            raise _missing(f"Registered model '{name}'")
        return SimpleNamespace(name=name, aliases=dict(self.models[name]["aliases"]))

    def get_model_version(self, name, version):
        run_id = self.get_registered_model(name) and self.models[name]["versions"].get(str(version))
        if run_id is None:
            raise _missing(f"Model version '{name}/{version}'")
        return SimpleNamespace(name=name, version=str(version), run_id=run_id)

    def get_model_version_by_alias(self, name, alias):
        version = self.get_registered_model(name).aliases.get(alias)
        if version is None:
            raise _missing(f"Alias '{alias}' of '{name}'")
        return self.get_model_version(name, version)


class Recording:
    """A model that remembers the rows it scored."""

    def __init__(self, model):
        self.model, self.rows = model, []

    def predict(self, x):
        self.rows.append(x.copy())
        return self.model.predict(x)

    def predict_proba(self, x):
        self.rows.append(x.copy())
        return self.model.predict_proba(x)


class Loader:
    def __init__(self, models: dict[str, object]):
        self.models, self.loaded = models, []

    def __call__(self, uri):
        self.loaded.append(uri)
        if uri not in self.models:
            raise OSError(f"no files for {uri}")
        return self.models[uri], list(FEATURES)


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tracking")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.chdir(tmp)
        yield tmp


@pytest.fixture(scope="module")
def trained():
    """Two different models: the candidate (more trees) and the champion (fewer, shallower)."""
    x, y = x_y(build_features(generate(600, seed=11)))
    return {
        "candidate": train_model(x, y, {"n_estimators": 30, "max_depth": 3}),
        "champion": train_model(x, y, {"n_estimators": 5, "max_depth": 1}),
    }


def setup(trained, champion_aliases=None):
    registry = Registry(
        {
            CANDIDATE: {"versions": {"3": "run-c"}, "aliases": {}},
            CHAMPION: {"versions": {"1": "run-a", "2": "run-b"}, "aliases": champion_aliases or {}},
        }
    )
    loader = Loader(
        {
            f"models:/{CANDIDATE}/3": Recording(trained["candidate"]),
            f"models:/{CHAMPION}/2": Recording(trained["champion"]),
        }
    )
    return registry, loader


def run(registry, loader, champion="", **options):
    return validate(CANDIDATE, "3", champion=champion, dataset="tiny", client=registry, load_model=loader, **options)


@pytest.mark.parametrize(
    "champion",
    ["", "   ", f"models:/{CHAMPION}@champion", "models:/prod.ml.nothing@champion", f"models:/{CHAMPION}/9"],
    ids=["empty", "blank", "no-alias-yet", "no-model-yet", "no-such-version"],
)
def test_no_champion_yet_scores_the_candidate_only(tracking, trained, champion):
    registry, loader = setup(trained)
    result = run(registry, loader, champion)
    assert result["passed"] is True and all(result["checks"].values())
    assert result["champion_metrics"] is None and result["delta"] is None
    assert result["champion"] == champion.strip() and result["champion_version"] == ""
    assert "champion_error" not in result
    assert loader.loaded == [f"models:/{CANDIDATE}/3"]
    assert set(result["metrics"]) == {"accuracy", "f1", "roc_auc", "precision", "recall"}


def test_champion_is_scored_on_the_same_rows(tracking, trained):
    registry, loader = setup(trained, champion_aliases={"champion": "2"})
    result = run(registry, loader, f"models:/{CHAMPION}@champion")
    assert result["passed"] is True
    assert result["champion"] == f"models:/{CHAMPION}@champion" and result["champion_version"] == "2"
    assert loader.loaded == [f"models:/{CANDIDATE}/3", f"models:/{CHAMPION}/2"]

    candidate, champion = (loader.models[uri] for uri in loader.loaded)
    assert candidate.rows and champion.rows
    for rows in [*candidate.rows, *champion.rows]:
        pd.testing.assert_frame_equal(rows, candidate.rows[0])
    table = validation_table(VALIDATION_SEED, "tiny")
    assert len(candidate.rows[0]) == len(table) == result["rows"] == 400
    assert result["data"] == f"validation set: 400 generated rows, seed {VALIDATION_SEED} (tiny)"

    x, y = x_y(table)
    assert result["metrics"] == compute_metrics(y, *score(trained["candidate"], x))
    assert result["champion_metrics"] == compute_metrics(y, *score(trained["champion"], x))
    assert result["metrics"] != result["champion_metrics"]
    assert result["delta"] == {
        k: round(result["metrics"][k] - result["champion_metrics"][k], 6) for k in result["metrics"]
    }


def test_champion_by_version_number(tracking, trained):
    registry, loader = setup(trained)
    result = run(registry, loader, f"models:/{CHAMPION}/2")
    assert result["champion_version"] == "2" and result["champion_metrics"] is not None


def test_a_champion_that_cannot_be_loaded_is_reported_not_failed(tracking, trained):
    registry, loader = setup(trained, champion_aliases={"champion": "1"})  # version 1 has no files
    result = run(registry, loader, f"models:/{CHAMPION}@champion")
    assert result["passed"] is True
    assert result["champion_version"] == "1" and result["champion_metrics"] is None
    assert "no files for models:/prod.ml.churn/1" in result["champion_error"]


def test_a_failing_candidate_still_shows_the_champion(tracking, trained):
    registry, loader = setup(trained, champion_aliases={"champion": "2"})
    result = run(registry, loader, f"models:/{CHAMPION}@champion", min_accuracy=0.999)
    assert result["passed"] is False and result["checks"]["min_accuracy"] is False
    assert result["champion_metrics"] is not None


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("models:/prod.ml.churn@champion", ("prod.ml.churn", "champion")),
        ("models:/prod.ml.churn/4", ("prod.ml.churn", "4")),
        ("models:/churn-model/champion", ("churn-model", "champion")),
        (" models:/churn-model@prod ", ("churn-model", "prod")),
    ],
)
def test_parse_model_uri(uri, expected):
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize("uri", ["prod.ml.churn", "models:/prod.ml.churn", "models:/@champion", "runs:/abc/model"])
def test_an_unreadable_champion_uri_stops_the_step(uri, trained):
    registry, loader = setup(trained)
    with pytest.raises(StepError, match="cannot read model URI"):
        run(registry, loader, uri)
    assert loader.loaded == []
