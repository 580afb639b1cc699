"""A payload field of the wrong type reads as missing: the handler ignores or defaults, never raises.

Each row is a shape the receiver fuzz found raising (AttributeError, KeyError, TypeError → 500).
"""

import copy

import pytest

from core.events import Event
from core.routing import Ignored
from handlers import router
from handlers.shapes import ident, items, number, obj, text
from tests.conftest import payload


def _with(name: str, path: tuple, value, **top) -> dict:
    doc = copy.deepcopy(payload(name)) | top
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


CASES = [
    # (source, event name, action, payload, expected: an Ignored reason, or "actions")
    ("github", "push", "", _with("push_new_branch", ("ref",), 5), "push is not a branch"),
    ("github", "push", "", _with("push_new_branch", ("repository",), "acme/x"), "delivery has no repository"),
    ("github", "push", "", _with("push_new_branch", ("pusher",), ["x"]), "actions"),
    ("github", "delete", "", _with("delete_branch", ("ref_type",), {"a": 1}), "deleted ref is not a branch"),
    # no head: its repository is unknown (a fork, awaiting /ok-to-test), but no commit names what to run
    (
        "github",
        "pull_request",
        "opened",
        _with("pull_request_opened", ("pull_request", "head"), [1]),
        "head commit '' is not a full commit SHA",
    ),
    (
        "github",
        "pull_request",
        "closed",
        _with("pull_request_closed_merged", ("pull_request",), 7, number=None),
        "pull_request delivery has no PR number",
    ),
    (
        "github",
        "issue_comment",
        "created",
        _with("issue_comment_pr", ("comment", "body"), 5),
        "no command in the comment",
    ),
    (
        "github",
        "issue_comment",
        "created",
        _with("issue_comment_pr", ("comment", "user"), "x"),
        "comment author '' is not a GitHub login",
    ),
    (
        "github",
        "issue_comment",
        "created",
        _with("issue_comment_pr", ("issue",), None),
        "comment on an issue, not a pull request",
    ),
    (
        "github",
        "check_run",
        "rerequested",
        _with("check_run_rerequested", ("check_run", "pull_requests"), [5]),
        "actions",
    ),
    (
        "github",
        "check_run",
        "rerequested",
        _with("check_run_rerequested", ("check_run", "check_suite"), 1.5),
        "actions",
    ),
    ("github", "ping", "", _with("ping", ("hook_id",), {"a": [1]}), "ping: hook ? reaches mlops-bot"),
    (
        "mlflow",
        "model_version_tag",
        "set",
        {"name": "churn-model", "version": "3", "key": ["a"], "value": 1},
        "actions",
    ),
    (
        "mlflow",
        "model_version",
        "created",
        {"name": ["churn-model"], "version": {}},
        "model '' is no stage's registry_name in [models]",
    ),
    (
        "databricks",
        "registry",
        "MODEL_VERSION_TAG_SET",
        {"model_name": "churn-model", "version": "3", "tags": 5},
        "actions",
    ),
    (
        "databricks",
        "registry",
        "MODEL_VERSION_TAG_SET",
        {"model_name": "churn-model", "version": "3", "tags": [{"key": []}, 3]},
        "actions",
    ),
    (
        "databricks",
        "registry",
        "MODEL_VERSION_TAG_SET",
        {"model_name": "churn-model", "tags": [{"key": "k"}]},
        "databricks tag_set of churn-model: model version '' is not a positive whole number",
    ),
    ("slack", "block_actions", "approve", _with("slack_button", ("container",), True), "actions"),
    (
        "slack",
        "block_actions",
        "approve",
        _with("slack_button", ("actions", 0, "action_id"), ["approve"]),
        "no approve/reject button in this interaction",
    ),
    (
        "slack",
        "block_actions",
        "approve",
        _with("slack_button", ("actions",), [7, "approve"]),
        "no approve/reject button in this interaction",
    ),
]


@pytest.mark.parametrize("source, name, action, data, expected", CASES)
def test_wrong_shapes_read_as_missing(settings, source, name, action, data, expected):
    out = router.dispatch(Event(source, name, action, "d-1", data), settings)
    if expected == "actions":
        assert isinstance(out, list) and out, out
    else:
        assert out == Ignored(expected)


def test_wrong_typed_values_never_reach_an_action(settings):
    """Before issue #18 the action was queued with `pr: None`; now nothing is queued, and the answer says why."""
    data = _with("issue_comment_pr", ("issue", "number"), "7; rm -rf /")
    out = router.dispatch(Event("github", "issue_comment", "created", "d-1", data), settings)
    assert out == Ignored("PR number '7; rm -rf /' is not a positive whole number")


@pytest.mark.parametrize(
    "read, data, expected",
    [
        (obj, {"k": {"a": 1}}, {"a": 1}),
        (obj, {"k": [1]}, {}),
        (obj, "not a mapping", {}),
        (text, {"k": "v"}, "v"),
        (text, {"k": 5}, ""),
        (items, {"k": [{"a": 1}, 2, "x"]}, [{"a": 1}]),
        (items, {"k": {"a": 1}}, []),
        (number, {"k": 7}, 7),
        (number, {"k": True}, None),
        (number, {"k": "7"}, None),
        (ident, {"k": 3}, "3"),
        (ident, {"k": "3"}, "3"),
        (ident, {"k": [3]}, ""),
        (ident, {"k": False}, ""),
    ],
)
def test_shape_accessors(read, data, expected):
    assert read(data, "k") == expected
