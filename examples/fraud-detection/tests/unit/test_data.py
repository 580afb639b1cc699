"""The synthetic data: the same seed gives the same rows, fraud is rare, each model has its own features."""

import pytest
from fraud_detection.models import MODELS
from fraud_detection.pipeline import StepError, prepare, validation_table


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_rows_and_a_rare_positive_class(name):
    spec = MODELS[name]
    first, again, other = spec.generate(800, 7), spec.generate(800, 7), spec.generate(800, 8)
    assert first.equals(again) and not first.equals(other)
    assert 0.02 < first[spec.target].mean() < 0.1


@pytest.mark.parametrize("name", list(MODELS))
def test_the_feature_table_holds_the_models_inputs_typed(name):
    spec = MODELS[name]
    table = spec.build_features(spec.generate(200, 3))
    assert list(table.columns) == [spec.id_column, *spec.features, spec.target]
    assert all(table[c].dtype == "float64" for c in spec.numeric)
    assert not table[list(spec.numeric)].isna().any().any()


def test_the_models_features_and_validation_seeds_differ():
    card, ato = MODELS["card_fraud"], MODELS["ato_risk"]
    assert not set(card.features) & set(ato.features) - {"channel"}
    assert card.validation_seed != ato.validation_seed
    assert len(validation_table(card, "tiny")) == 800


def test_prepare_writes_a_stratified_split_per_model(tmp_path):
    spec = MODELS["ato_risk"]
    result = prepare(spec, "tiny", tmp_path, lineage={"repo": "acme/fraud-detection", "pr": ""})
    assert (result["rows"], result["train_rows"], result["holdout_rows"]) == (800, 640, 160)
    assert (tmp_path / "ato_risk" / "data" / "train.csv").exists()
    assert result["lineage"] == {"repo": "acme/fraud-detection"}  # an empty value is not recorded
    train = spec.read_table(tmp_path / "ato_risk" / "data" / "train.csv")
    assert abs(train[spec.target].mean() - result["positive_rate"]) < 0.01


def test_the_validation_seed_is_never_trained_on(tmp_path):
    spec = MODELS["card_fraud"]
    with pytest.raises(StepError, match="reserved for card_fraud's validation set"):
        prepare(spec, "tiny", tmp_path, seed=spec.validation_seed)
