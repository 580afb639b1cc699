import pytest

from workers.core.gates import evaluate, evaluate_all
from workers.core.records import Champion
from workers.release import policy


@pytest.mark.parametrize(
    "gate, metrics, champion, outcome, detail",
    [
        ("accuracy >= champion - 0.01", {"accuracy": 0.80}, {"accuracy": 0.805}, "pass", "0.8000 >= 0.7950"),
        ("accuracy >= champion - 0.01", {"accuracy": 0.78}, {"accuracy": 0.805}, "fail", "0.7800 >= 0.7950"),
        ("accuracy >= champion", {"accuracy": 0.80}, {"accuracy": 0.80}, "pass", "0.8000 >= 0.8000"),
        ("loss <= champion + 0.1", {"loss": 0.5}, {"loss": 0.3}, "fail", "0.5000 <= 0.4000"),
        ("roc_auc >= 0.6", {"roc_auc": 0.7}, None, "pass", "0.7000 >= 0.6000"),
        ("roc_auc >= 0.7", {"roc_auc": 0.63}, None, "fail", "0.6300 >= 0.7000"),
        # no champion: a gate against it neither passes nor fails (issue #19: a first release passed silently)
        ("accuracy >= champion - 0.01", {"accuracy": 0.1}, None, "n/a", "no champion yet"),
        ("accuracy >= champion - 0.01", {"accuracy": 0.1}, {}, "n/a", "no champion yet"),
        ("accuracy >= champion - 0.01", {"accuracy": 0.9}, {"f1": 0.5}, "n/a", "the champion has no accuracy score"),
        ("f1 > 0.5", {"accuracy": 0.9}, None, "fail", "f1 was not logged by this run"),
        ("f1 >= champion", {"accuracy": 0.9}, None, "fail", "f1 was not logged by this run"),
    ],
)
def test_gates(gate, metrics, champion, outcome, detail):
    result = evaluate(gate, metrics, champion)
    shown = "n/a" if not result.applies else "pass" if result.passed else "fail"
    assert (shown, result.detail) == (outcome, detail)
    assert result.applies or not result.passed  # a gate that does not apply is never a pass


CHAMPION = Champion("models:/churn@champion", "3", {"accuracy": 0.80, "roc_auc": 0.70})


@pytest.mark.parametrize(
    "gates, metrics, champion, passed, unchecked",
    [
        # a first release: relative gates are n/a, the absolute ones decide alone
        (["accuracy >= champion - 0.01", "roc_auc >= 0.7"], {"accuracy": 0.5, "roc_auc": 0.63}, None, False, False),
        (["accuracy >= champion - 0.01", "roc_auc >= 0.6"], {"accuracy": 0.5, "roc_auc": 0.63}, None, True, False),
        # a first release with no absolute gate: nothing decided, never a silent pass
        (["accuracy >= champion - 0.01"], {"accuracy": 0.5}, None, True, True),
        ([], {"accuracy": 0.5}, None, True, True),
        # with a champion, every gate applies
        (["accuracy >= champion - 0.01"], {"accuracy": 0.5}, CHAMPION, False, False),
        (["accuracy >= champion - 0.01"], {"accuracy": 0.85}, CHAMPION, True, False),
        ([], {"accuracy": 0.5}, CHAMPION, True, False),  # no gates asked for: as before
        (["f1 >= champion"], {"f1": 0.5}, CHAMPION, True, True),  # the champion never scored f1
    ],
)
def test_a_comparison_without_a_champion_is_decided_by_the_absolute_gates_only(
    gates, metrics, champion, passed, unchecked
):
    comparison = policy.compare(gates, metrics, champion)
    assert (comparison.passed, comparison.unchecked) == (passed, unchecked)


def test_the_validation_summary_says_which_gates_did_not_apply_and_that_nobody_but_people_decided():
    gates = ["accuracy >= champion - 0.01"]
    passed, summary = policy.validation_outcome(
        "SUCCESS", {"passed": True, "metrics": {"roc_auc": 0.63}}, policy.compare(gates, {"accuracy": 0.6}, None)
    )
    assert passed
    assert summary == (
        "passed: roc_auc=0.6300 (accuracy >= champion - 0.01: n/a — no champion yet); "
        "no gate decided: the listed approvers do"
    )
    comparison = policy.compare([*gates, "roc_auc >= 0.6"], {"accuracy": 0.6, "roc_auc": 0.63}, None)
    passed, summary = policy.validation_outcome("SUCCESS", {"metrics": {"roc_auc": 0.63}}, comparison)
    assert passed and summary == "passed: roc_auc=0.6300 (accuracy >= champion - 0.01: n/a — no champion yet)"
    comparison = policy.compare([*gates, "roc_auc >= 0.7"], {"accuracy": 0.6, "roc_auc": 0.63}, None)
    passed, summary = policy.validation_outcome("SUCCESS", {"metrics": {"roc_auc": 0.63}}, comparison)
    assert not passed and summary == "failed: roc_auc >= 0.7 (0.6300 >= 0.7000)"


def test_every_gate_of_a_list_is_evaluated_in_order():
    results = evaluate_all(["roc_auc >= 0.6", "accuracy >= champion"], {"roc_auc": 0.7, "accuracy": 0.8}, None)
    assert [(r.gate, r.applies) for r in results] == [("roc_auc >= 0.6", True), ("accuracy >= champion", False)]
