"""Every handler: a payload in, the actions (or the reason to ignore) out. No mocks."""

import pytest

from core import vocabulary as V
from core.events import Event
from core.routing import Action, Ignored
from handlers import router
from tests.conftest import payload


def dispatch(settings, source, name, data, action=None, delivery="d-1"):
    action = action if action is not None else str(data.get("action") or "")
    return router.dispatch(Event(source, name, action, delivery, data), settings)


def test_ping_is_answered_with_the_hook(settings):
    out = dispatch(settings, "github", "ping", payload("ping"))
    assert out == Ignored("ping: hook 42 reaches mlops-bot")


def test_push_of_a_new_branch_syncs_its_jobs(settings):
    out = dispatch(settings, "github", "push", payload("push_new_branch"))
    assert out == [
        Action(
            V.SYNC_BRANCH_JOBS,
            {"repo": "acme/churn-model", "branch": "feature/better-features", "delivery_id": "d-1", "sha": "b" * 40},
        )
    ]


def test_push_deleting_a_branch_removes_its_jobs(settings):
    [action] = dispatch(settings, "github", "push", payload("push_branch_deleted"))
    assert action.task == V.REMOVE_BRANCH_JOBS and action.kwargs["branch"] == "feature/better-features"


def test_tag_push_is_ignored(settings):
    assert dispatch(settings, "github", "push", payload("push_tag")) == Ignored("refs/tags/v1.0 is not a branch")


def test_push_to_an_unconfigured_repo_is_ignored(settings):
    data = payload("push_new_branch")
    data["repository"]["full_name"] = "someone/else"
    assert dispatch(settings, "github", "push", data) == Ignored("repository someone/else is not configured")


def test_delete_of_a_branch(settings):
    [action] = dispatch(settings, "github", "delete", payload("delete_branch"))
    assert action == Action(
        V.REMOVE_BRANCH_JOBS,
        {
            "repo": "acme/churn-model",
            "branch": "feature/better-features",
            "delivery_id": "d-1",
            "reason": "branch deleted",
        },
    )
    tag = {**payload("delete_branch"), "ref_type": "tag"}
    assert isinstance(dispatch(settings, "github", "delete", tag), Ignored)


@pytest.mark.parametrize("name", ["pull_request_opened", "pull_request_synchronize"])
def test_pull_request_update_syncs_jobs_and_runs_test_workflow(settings, name):
    actions = dispatch(settings, "github", "pull_request", payload(name))
    assert [a.task for a in actions] == [V.SYNC_BRANCH_JOBS, V.START_RUN]
    assert actions[1].kwargs == {
        "repo": "acme/churn-model",
        "branch": "feature/better-features",
        "sha": "b" * 40,
        "delivery_id": "d-1",
        "workflow": "test",
        "pr": 7,
        "requested_by": "alice",
    }


def test_fork_pull_request_waits_for_ok_to_test(settings):
    [action] = dispatch(settings, "github", "pull_request", payload("pull_request_opened_fork"))
    assert action.task == V.AWAIT_OK_TO_TEST and action.kwargs["author"] == "mallory"


def test_merged_pull_request_removes_branch_jobs(settings):
    [action] = dispatch(settings, "github", "pull_request", payload("pull_request_closed_merged"))
    assert action.task == V.REMOVE_BRANCH_JOBS and action.kwargs["reason"] == "PR #7 merged"


def test_pr_comment_with_a_command(settings):
    [action] = dispatch(settings, "github", "issue_comment", payload("issue_comment_pr"))
    assert action == Action(
        V.RUN_COMMAND,
        {
            "repo": "acme/churn-model",
            "pr": 7,
            "comment_id": 1001,
            "user": "alice",
            "delivery_id": "d-1",
            "index": 0,
            "command": {
                "name": "train",
                "dataset": "toy",
                "params": {"max_depth": "4"},
                "line": "/train toy --param max_depth=4",
            },
        },
    )


def test_pr_comment_with_a_bad_command_is_refused_with_usage(settings):
    data = payload("issue_comment_pr")
    data["comment"]["body"] = "/train toy --param\n/status"
    actions = dispatch(settings, "github", "issue_comment", data)
    assert [a.task for a in actions] == [V.REFUSE_COMMAND, V.RUN_COMMAND]
    assert actions[0].kwargs["usage"] == "/train [model] [toy|full] [--param key=value ...]"


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda d: d["comment"].update(body="Nice work"), "no command in the comment"),
        (lambda d: d["comment"].update(user={"login": "mlops-bot[bot]", "type": "Bot"}), "comment by the bot itself"),
        (lambda d: d["comment"].update(user={"login": "mlops-bot", "type": "User"}), "comment by the bot itself"),
        (lambda d: d.update(action="edited"), "comment edited: only new comments run commands"),
        (lambda d: d.update(action="deleted"), "comment deleted: only new comments run commands"),
    ],
)
def test_pr_comments_that_run_nothing(settings, change, reason):
    data = payload("issue_comment_pr")
    change(data)
    assert dispatch(settings, "github", "issue_comment", data) == Ignored(reason)


def test_comment_on_a_plain_issue_is_ignored(settings):
    out = dispatch(settings, "github", "issue_comment", payload("issue_comment_issue"))
    assert out == Ignored("comment on an issue, not a pull request")


def test_check_run_rerequested(settings):
    [action] = dispatch(settings, "github", "check_run", payload("check_run_rerequested"))
    assert action.task == V.RERUN_CHECK and action.kwargs["name"] == "mlops-bot/test" and action.kwargs["pr"] == 7


def test_unknown_github_event_is_ignored_with_reason(settings):
    assert dispatch(settings, "github", "star", {"action": "created"}) == Ignored("no handler for github/star:created")


def test_mlflow_model_version_created(settings):
    body = payload("mlflow_model_version_created")
    [action] = dispatch(settings, "mlflow", body["entity"], body["data"], action=body["action"])
    assert action == Action(
        V.HANDLE_MODEL_EVENT,
        {
            "delivery_id": "d-1",
            "model_event": {
                "registry": "mlflow",
                "kind": "version_created",
                "model": "churn-model",
                "version": "3",
                "tags": {"branch": "feature/better-features"},
                "run_id": "r1",
                "source": "models:/m-1",
            },
        },
    )


def test_mlflow_event_for_an_unconfigured_model_is_ignored(settings):
    out = dispatch(settings, "mlflow", "model_version", {"name": "example_model", "version": "1"}, action="created")
    assert out == Ignored("model 'example_model' is no stage's registry_name in [models]")


def test_mlflow_alias_and_tag_events(settings):
    [alias] = dispatch(
        settings,
        "mlflow",
        "model_version_alias",
        {"name": "churn-model", "alias": "champion", "version": "2"},
        action="created",
    )
    assert alias.kwargs["model_event"]["kind"] == "alias_set" and alias.kwargs["model_event"]["alias"] == "champion"
    [tag] = dispatch(
        settings,
        "mlflow",
        "model_version_tag",
        {"name": "churn-model", "version": "2", "key": "k", "value": "v"},
        action="set",
    )
    assert tag.kwargs["model_event"]["tags"] == {"k": "v"}


def test_databricks_registry_event_becomes_the_same_model_event(settings):
    [action] = dispatch(
        settings, "databricks", "registry", payload("databricks_model_version_created"), action="MODEL_VERSION_CREATED"
    )
    mev = action.kwargs["model_event"]
    assert (mev["registry"], mev["kind"], mev["model"], mev["version"]) == (
        "databricks",
        "version_created",
        "churn-model",
        "3",
    )


def test_slack_command(settings):
    form = {
        "command": "/mlops",
        "text": "approve churn-model 3",
        "user_id": "U0BOB",
        "user_name": "bob",
        "channel_id": "C1",
        "response_url": "http://slack.example/r",
    }
    [action] = dispatch(settings, "slack", "command", form, action="mlops")
    assert action.task == V.RUN_SLACK_COMMAND
    assert action.kwargs["command"] == {
        "name": "approve",
        "model": "churn-model",
        "version": "3",
        "line": "/approve churn-model@3",
    }


def test_slack_command_with_bad_text_gets_usage(settings):
    form = {"command": "/mlops", "text": "approve churn-model", "user_id": "U0BOB"}
    [action] = dispatch(settings, "slack", "command", form, action="mlops")
    assert "model@version" in action.kwargs["error"]


def test_slack_button(settings):
    [action] = dispatch(settings, "slack", "block_actions", payload("slack_button"), action="approve")
    assert action.task == V.HANDLE_SLACK_BUTTON
    assert (action.kwargs["action"], action.kwargs["value"], action.kwargs["user_id"]) == (
        "approve",
        "churn-model@3",
        "U0BOB",
    )


def test_every_task_a_handler_names_is_registered_with_the_worker():
    from workers.app import app

    assert V.TASK_NAMES <= set(app.tasks)


def test_tags_the_bot_writes_itself_are_not_acted_on(settings):
    out = dispatch(
        settings,
        "mlflow",
        "model_version_tag",
        {"name": "churn-model", "version": "2", "key": "validation_status", "value": "passed"},
        action="set",
    )
    assert out == Ignored("tag validation_status is written by mlops-bot itself")


# --- what a delivery is, from its signed body (Action.key): the receiver dedupes on it (issue #18) --------------
def keys(outcome) -> set[str]:
    return {a.key for a in outcome}


def test_a_delivery_s_key_is_its_signed_content_never_its_delivery_id(settings):
    for name, fixture in [("push", "push_new_branch"), ("issue_comment", "issue_comment_pr")]:
        first, replayed = (dispatch(settings, "github", name, payload(fixture), delivery=d) for d in ("d-1", "d-2"))
        assert keys(first) == keys(replayed) and len(keys(first)) == 1 and "" not in keys(first)
    assert keys(dispatch(settings, "github", "issue_comment", payload("issue_comment_pr"))) == {
        "github:comment:acme/churn-model:1001"
    }


def test_a_pull_request_s_key_changes_with_its_action_head_and_updated_at(settings):
    data = payload("pull_request_synchronize")
    base = keys(dispatch(settings, "github", "pull_request", data))
    moved = {
        **data,
        "pull_request": {**data["pull_request"], "head": {**data["pull_request"]["head"], "sha": "c" * 40}},
    }
    later = {**data, "pull_request": {**data["pull_request"], "updated_at": "2030-01-01T00:00:00Z"}}
    assert len(base) == 1 and "" not in base
    assert keys(dispatch(settings, "github", "pull_request", moved)) != base
    assert keys(dispatch(settings, "github", "pull_request", later)) != base
    assert keys(dispatch(settings, "github", "pull_request", data, action="reopened")) != base


def test_a_check_re_run_and_a_registry_event_other_than_a_new_version_keep_the_delivery_id(settings):
    assert keys(dispatch(settings, "github", "check_run", payload("check_run_rerequested"))) == {""}
