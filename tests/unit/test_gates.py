import pytest

from workers.core.gates import evaluate


@pytest.mark.parametrize(
    "gate, metrics, champion, passed, detail",
    [
        ("accuracy >= champion - 0.01", {"accuracy": 0.80}, {"accuracy": 0.805}, True, "0.8000 >= 0.7950"),
        ("accuracy >= champion - 0.01", {"accuracy": 0.78}, {"accuracy": 0.805}, False, "0.7800 >= 0.7950"),
        ("accuracy >= champion", {"accuracy": 0.80}, {"accuracy": 0.80}, True, "0.8000 >= 0.8000"),
        ("loss <= champion + 0.1", {"loss": 0.5}, {"loss": 0.3}, False, "0.5000 <= 0.4000"),
        ("roc_auc >= 0.6", {"roc_auc": 0.7}, None, True, "0.7000 >= 0.6000"),
        ("accuracy >= champion - 0.01", {"accuracy": 0.1}, None, True, "no champion to compare with yet"),
        ("f1 > 0.5", {"accuracy": 0.9}, None, False, "f1 was not logged by this run"),
    ],
)
def test_gates(gate, metrics, champion, passed, detail):
    result = evaluate(gate, metrics, champion)
    assert (result.passed, result.detail) == (passed, detail)
