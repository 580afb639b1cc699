"""The policies as tables (workers/core/permissions.py, workers/pr/policy.py, workers/release/policy.py): who may run what, what /train and /test accept, forks, re-runs, champion."""

import pytest

from core.commands import COMMANDS, Command
from core.config import parse_config
from tests.fakes import pull, run_record, run_result
from workers.core import permissions
from workers.core.permissions import Refusal
from workers.core.records import Champion
from workers.jobs import results as jobs_results
from workers.pr import policy as pr_policy
from workers.release import policy as release_policy
from workers.release import texts as release_texts

REPO = "acme/churn-model"


@pytest.mark.parametrize(
    "role, needed, allowed",
    [
        ("admin", "write", True),
        ("maintain", "write", True),
        ("write", "write", True),
        ("triage", "write", False),
        ("read", "read", True),
        ("none", "read", False),
        ("custom-role", "read", False),
        ("write", "maintain", False),
    ],
)
def test_one_permission_rank_check(role, needed, allowed):
    assert permissions.ranks_at_least(role, needed) is allowed


@pytest.mark.parametrize(
    "command, role, expected",
    [
        ("train", "write", None),
        ("train", "read", "`/train` needs write permission on acme/churn-model; you have read."),
        ("status", "read", None),
        ("deploy", "write", "`/deploy` needs maintain permission on acme/churn-model; you have write."),
        ("ok-to-test", "triage", "`/ok-to-test` needs write permission on acme/churn-model; you have triage."),
        ("train-full", "none", "`/train-full` needs write permission on acme/churn-model; you have none."),
    ],
)
def test_command_permissions(settings, command, role, expected):
    assert permissions.permission_refusal(settings, REPO, command, role) == expected


def test_config_toml_changes_a_commands_permission_by_its_key(settings):
    configured = parse_config({"permissions": {"ok_to_test": "maintain", "train_full": "admin"}}).permissions
    changed = settings.model_copy(update={"permissions": configured})
    assert permissions.permission_refusal(changed, REPO, "ok-to-test", "write") == (
        "`/ok-to-test` needs maintain permission on acme/churn-model; you have write."
    )
    assert permissions.permission_refusal(changed, REPO, "train-full", "maintain") == (
        "`/train-full` needs admin permission on acme/churn-model; you have maintain."
    )
    assert (
        permissions.permission_refusal(changed, REPO, "train", "write") is None
    )  # the others keep their spec's default


@pytest.mark.parametrize(
    "role, listed",
    [
        ("read", ["status", "help"]),
        ("write", ["train", "test", "run", "retest", "cancel", "status", "help", "ok-to-test", "approve", "reject"]),
        ("admin", list(COMMANDS)),
    ],
)
def test_help_lists_what_the_role_may_run(settings, role, listed):
    assert permissions.commands_allowed(settings, role) == listed


@pytest.mark.parametrize(
    "command, user, role, expected",
    [
        (Command("train"), "alice", "write", ("train", "toy", {})),
        (Command("train", dataset="full"), "bob", "write", ("train", "full", {})),
        (Command("train", params={"max_depth": "3"}), "alice", "write", ("train", "toy", {"max_depth": "3"})),
        (Command("train", dataset="huge"), "alice", "write", "unknown dataset `huge`; choose one of toy, full."),
        (Command("train", dataset="full"), "alice", "write", "`/train full` costs money: only @bob may start it."),
        (
            Command("train", dataset="full"),
            "bob",
            "read",
            "`/train-full` needs write permission on acme/churn-model; you have read.",
        ),
        (
            Command("train", params={"lr": "1"}),
            "alice",
            "write",
            "parameter `lr` is not allowed for `train`; allowed: n_estimators, max_depth, learning_rate.",
        ),
    ],
)
def test_train_rules(settings, command, user, role, expected):
    if isinstance(expected, str):
        with pytest.raises(Refusal, match=expected.replace("(", r"\(").replace(")", r"\)").replace("`", ".")):
            pr_policy.train_options(settings, REPO, command, user, role)
    else:
        assert pr_policy.train_options(settings, REPO, command, user, role) == expected


def test_train_refusals_carry_the_usage_when_it_helps(settings):
    with pytest.raises(Refusal) as refused:
        pr_policy.train_options(settings, REPO, Command("train", dataset="huge"), "alice", "write")
    assert refused.value.usage == COMMANDS["train"].usage


@pytest.mark.parametrize(
    "pr_state, fork, granted, expected",
    [
        ("open", False, None, None),
        ("closed", False, None, "#7 is closed: nothing runs for it any more."),
        (
            "open",
            True,
            None,
            "this pull request comes from a fork: someone with write access must comment "
            "`/ok-to-test` for commit `aaaaaaa` first.",
        ),
        (
            "open",
            True,
            "b" * 40,
            "this pull request comes from a fork: someone with write access must comment "
            "`/ok-to-test` for commit `aaaaaaa` first.",
        ),  # granted for an older head
        ("open", True, "a" * 40, None),
    ],
)
def test_the_fork_rule(pr_state, fork, granted, expected):
    assert pr_policy.head_refusal(pull(7, fork=fork, state=pr_state), 7, granted) == expected


@pytest.mark.parametrize(
    "fork, expected",
    [
        (False, ("feature/x", "")),
        (True, ("pull/7", "https://github.com/someone/churn-model.git")),
    ],
)
def test_a_fork_runs_its_own_code_on_a_job_of_its_own(fork, expected):
    assert pr_policy.run_source(pull(7, fork=fork), 7) == expected


@pytest.mark.parametrize(
    "runs, failed",
    [
        ([], []),
        ([{"workflow": "train", "state": "FAILED", "started_at": 1}], ["train"]),
        (
            [
                {"workflow": "train", "state": "FAILED", "started_at": 1},
                {"workflow": "train", "state": "SUCCESS", "started_at": 2},
            ],
            [],
        ),  # fixed since
        (
            [
                {"workflow": "test", "state": "TIMEDOUT", "started_at": 1},
                {"workflow": "train", "state": "RUNNING", "started_at": 2},
            ],
            ["test"],
        ),
    ],
)
def test_retest_reruns_the_newest_failed_run_of_each_workflow(runs, failed):
    assert [r.workflow for r in pr_policy.failed_latest([run_record(**run) for run in runs])] == failed


@pytest.mark.parametrize(
    "name, workflow",
    [
        ("mlops-bot/train", ("train", "")),
        ("mlops-bot/train/churn-model", None),  # a check per model is made only for a repository of several
        ("mlops-bot/nope", None),
        ("ci/train", None),
        ("train", None),
    ],
)
def test_only_the_bots_own_checks_are_rerun(settings, name, workflow):
    assert pr_policy.check_workflow(settings, name, "acme/churn-model") == workflow


CHAMPION = Champion("churn-model", "3", {"accuracy": 0.80, "roc_auc": 0.7})


@pytest.mark.parametrize(
    "metrics, champion, version, passed, compared_with",
    [
        ({"accuracy": 0.82, "roc_auc": 0.7}, CHAMPION, "4", True, "3"),
        ({"accuracy": 0.70, "roc_auc": 0.7}, CHAMPION, "4", False, "3"),
        ({"accuracy": 0.70, "roc_auc": 0.7}, CHAMPION, "3", True, None),  # the champion itself: no comparison
        ({"accuracy": 0.70, "roc_auc": 0.5}, None, "4", False, None),  # roc_auc >= 0.6 holds without a champion
    ],
)
def test_champion_and_gates(settings, metrics, champion, version, passed, compared_with):
    comparison = release_policy.compare(settings.models["churn-model"].gates, metrics, champion, version)
    assert comparison.passed is passed
    assert (comparison.champion.version if comparison.champion else None) == compared_with


@pytest.mark.parametrize(
    "result, outputs, passed, summary",
    [
        (
            "SUCCESS",
            {"metrics": {"accuracy": 0.9, "roc_auc": 0.8}},
            True,  # no champion: the relative gate is n/a, the absolute one decides
            "passed: accuracy=0.9000, roc_auc=0.8000 (accuracy >= champion - 0.01: n/a — no champion yet)",
        ),
        (
            "SUCCESS",
            {"metrics": {"accuracy": 0.9}},
            False,
            "failed: roc_auc >= 0.6 (roc_auc was not logged by this run)",
        ),
        ("FAILED", {"metrics": {"accuracy": 0.9, "roc_auc": 0.8}}, False, "failed: validation run FAILED"),
        (
            "SUCCESS",
            {"passed": False, "metrics": {"accuracy": 0.9, "roc_auc": 0.8}},
            False,
            "failed: validation run SUCCESS",
        ),
        ("SUCCESS", {"metrics": {}}, False, release_texts.VALIDATION_SAID_NOTHING),  # success alone proves nothing
    ],
)
def test_validation_outcome(settings, result, outputs, passed, summary):
    comparison = release_policy.compare(settings.models["churn-model"].gates, outputs["metrics"], None)
    assert release_policy.validation_outcome(result, outputs, comparison) == (passed, summary)


@pytest.mark.parametrize(
    "decision, actor, once",
    [
        ("validated", "mlops-bot", "validated:m:2"),
        ("approved", "bob", "approved:m:2:bob"),
        ("refused", "bob", ""),
    ],
)
def test_what_the_audit_trail_records_once(decision, actor, once):
    assert release_policy.audit_once_key(decision, "m", "2", actor) == once


def test_task_outputs_merge_the_last_json_line_of_each_task():
    said = ['log\n{"a": 1}\n{"b": 2}\n', "{not json}\n", '{"c": 3}']
    result = run_result(
        tasks=[{"key": f"t{i}", "run_id": i, "result": "SUCCESS", "output": o} for i, o in enumerate(said)]
    )
    assert jobs_results.task_outputs(result) == {"b": 2, "c": 3}
