"""Commands follow the pipeline (issue #19), end to end: a repository whose workflows are named `fit` and
`unit-tests`, each saying which command runs it, driven by comments through the sandbox forge's API.

Its own stack (a bot configured otherwise than tests/integration/test_chatops.py's), on the session's Redis
emptied first; the helpers are that module's.
"""

from __future__ import annotations

import pytest

from tests.integration.test_chatops import REPO, as_user, bot_comments, comment, push_branch, report, status_of
from tests.integration.test_chatops import wait_until as _wait_until
from tests.support.stacks import bot_stack, workspace_client


def renamed(text: str) -> str:
    """tiny-ml's config with `train` named `fit` and `test` named `unit-tests`, each with its `command`; `fit` runs
    on a command, `unit-tests` on pull requests only (so `/test` runs it, `/run` does not)."""
    text = text.replace("[workflows.train]\n", '[workflows.fit]\ncommand = "train"\n')
    text = text.replace("[workflows.test]\n", '[workflows.unit-tests]\ncommand = "test"\n')
    return text.replace("[workflows.train.", "[workflows.fit.").replace("[workflows.test.", "[workflows.unit-tests.")


@pytest.fixture(scope="module")
def ops(redis_server, empty_redis, tmp_path_factory):
    with bot_stack(tmp_path_factory.mktemp("pipeline"), redis_server.url, config=renamed) as stack:
        yield stack.forge, stack.workspace


_branches = iter(range(1, 1000))


@pytest.fixture
def pr(ops, tmp_path):
    forge, _ = ops
    name = f"feature/p{next(_branches)}"
    push_branch(forge, "alice", REPO, name, tmp_path)
    return as_user(forge, "alice").get_repo(REPO).create_pull(title=name, body="", head=name, base="main")


def reply_to(forge, number: int, c, index: int = 0):
    return _wait_until(lambda: bot_comments(forge, number, "reply", f"{c.id}-{index}"))[0]


def test_train_and_test_run_the_workflows_their_commands_name(ops, pr):
    """The issue's case: `/train toy` and `/test` answered "no `train` workflow configured"."""
    forge, ws = ops
    report(forge, pr.number, "unit-tests", "SUCCESS")  # the PR's own pull_request workflow ran on open
    c = comment(forge, "alice", pr.number, "/train toy\n/test")
    [rep] = report(forge, pr.number, "fit", "SUCCESS")
    assert "`fit` — SUCCESS" in rep.body and "**Dataset** toy" in rep.body
    assert _wait_until(lambda: status_of(forge, pr.head.sha, "mlops-bot/fit") == "success")
    assert bot_comments(forge, pr.number, "reply", f"{c.id}-0") == []  # no refusal: the reports say it
    names = {job.settings.name.rsplit("/", 1)[-1] for job in workspace_client(ws.url).jobs.list() if job.settings}
    assert {"fit", "unit-tests"} <= names and not names & {"train", "test"}


def test_help_lists_the_commands_with_the_workflows_they_run_here(ops, pr):
    forge, _ = ops
    c = comment(forge, "alice", pr.number, "/help")
    body = reply_to(forge, pr.number, c).body
    assert "(dataset toy by default) — workflow `fit` |" in body
    assert "| run the test workflow — workflow `unit-tests` |" in body
    assert "| run one of this repository's workflows by its name — workflow `fit` |" in body


def test_run_starts_a_command_workflow_and_refuses_one_that_is_not(ops, pr):
    forge, _ = ops
    c = comment(forge, "alice", pr.number, "/run unit-tests\n/run fit --param lr=0.1")
    refused = reply_to(forge, pr.number, c, 0).body
    assert (
        '\n@alice `unit-tests` does not run on a command (its `run_on` has no `"command"`); `/run` starts `fit`.\n'
        in refused
    )
    assert "Usage: `/run <workflow> [--param key=value ...]`" in refused
    [rep] = report(forge, pr.number, "fit", "SUCCESS")
    assert "`lr=0.1`" in rep.body and "with `/run fit --param lr=0.1`" in rep.body
