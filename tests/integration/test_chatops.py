"""PR chat-ops end to end: people comment through the sandbox forge's API, the bot answers there.

Real processes: private Redis, sandbox forge (real git, signed webhooks), sandbox workspace (really
runs the tasks), the receiver under gunicorn and a Celery worker. Everything is read back through
the forge's API as a person would see it.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from github import Auth, Github

from core import keys
from devstack import waiting
from tests.support.budget import requests_of, reset_counts, settled
from tests.support.pushes import push_new_commit, push_url
from tests.support.stacks import bot_stack


def wait_until(check, timeout=60.0):
    return waiting.wait_until(check, timeout, every=0.3)


TOKENS = {
    "alice": "ghp_alice",
    "bob": "ghp_bob",
    "carol": "ghp_carol",
    "mallory": "ghp_mallory",
    "mlops-bot": "ghp_bot",
}
REPO = "acme/tiny-ml"


@pytest.fixture(scope="module")
def ops(redis_server, empty_redis, tmp_path_factory):
    with bot_stack(tmp_path_factory.mktemp("ops"), redis_server.url) as stack:
        forge = stack.forge
        forge.config, forge.redis_url = stack.config, redis_server.url  # for tests that call the bot's code directly
        yield forge, stack.workspace


def as_user(forge, login: str) -> Github:
    return Github(
        base_url=forge.url, auth=Auth.Token(TOKENS[login]), seconds_between_requests=0, seconds_between_writes=0
    )


_branches = iter(range(1, 1000))


def push_branch(forge, login: str, repo: str, branch: str, workdir) -> str:
    """`git push` a new branch with one commit, as `login`, over HTTP; returns its sha."""
    checkout = workdir / f"{login}-{branch.replace('/', '-')}"
    return push_new_commit(push_url(forge.url, repo, login, TOKENS[login]), checkout, branch, login)


@pytest.fixture
def pr(ops, tmp_path):
    """A fresh branch pushed by alice and her PR for it."""
    forge, _ = ops
    name = f"feature/t{next(_branches)}"
    push_branch(forge, "alice", REPO, name, tmp_path)
    return as_user(forge, "alice").get_repo(REPO).create_pull(title=name, body="", head=name, base="main")


def comment(forge, login: str, number: int, body: str):
    return as_user(forge, login).get_repo(REPO).get_issue(number).create_comment(body)


def bot_comments(forge, number: int, kind: str = "", key: str = "") -> list:
    marker = f"<!-- mlops-bot:{kind} key={key}" if kind else "<!-- mlops-bot:"
    issue = as_user(forge, "bob").get_repo(REPO).get_issue(number)
    return [c for c in issue.get_comments() if c.user.login == "mlops-bot" and marker in c.body]


def report(forge, number: int, workflow: str, containing: str, timeout=90.0):
    def check():
        found = bot_comments(forge, number, "report", workflow)
        return found if found and containing in found[0].body else None

    return wait_until(check, timeout)


def status_of(forge, sha: str, context: str) -> str | None:
    statuses = [s for s in as_user(forge, "bob").get_repo(REPO).get_commit(sha).get_statuses() if s.context == context]
    return statuses[0].state if statuses else None  # newest first


def test_train_toy_by_a_writer_reports_success_once_with_its_status(ops, pr):
    forge, _ = ops
    sha = pr.head.sha
    c = comment(forge, "alice", pr.number, "Let's see.\n/train toy --param lr=0.1")
    [rep] = report(forge, pr.number, "train", "SUCCESS")
    assert "`train` — SUCCESS" in rep.body and f"`{sha[:7]}`" in rep.body and "**Dataset** toy" in rep.body
    assert "| `prepare` | ✅ SUCCESS |" in rep.body and "| `train` | ✅ SUCCESS |" in rep.body
    assert "[Databricks run](http://127.0.0.1:" in rep.body
    wait_until(lambda: status_of(forge, sha, "mlops-bot/train") == "success")
    assert len(bot_comments(forge, pr.number, "report", "train")) == 1
    assert bot_comments(forge, pr.number, "reply", f"{c.id}-0") == []  # the report is the answer: no reply


def test_a_train_costs_at_most_six_github_requests_over_its_whole_life(ops, pr):
    """The forge counts what the bot asks of it, from the comment to the final report and status: the PR's first
    `/train`, by someone whose role the bot has not cached (the most it costs)."""
    forge, _ = ops
    report(forge, pr.number, "test", "SUCCESS")  # the PR's own `test` run: reported, and nothing left to do
    wait_until(lambda: settled(forge.redis_url))
    redis.Redis.from_url(forge.redis_url).delete(keys.permission(REPO, "alice"))
    reset_counts(forge.url)
    comment(forge, "alice", pr.number, "/train toy")
    report(forge, pr.number, "train", "SUCCESS")
    wait_until(lambda: status_of(forge, pr.head.sha, "mlops-bot/train") == "success")
    wait_until(lambda: settled(forge.redis_url))
    spent = requests_of(forge.url, "mlops-bot")
    assert sum(spent.values()) <= 6, json.dumps(spent, indent=1)
    # what people read is all there: the outcome and the run's link in the report, the final status
    [rep] = bot_comments(forge, pr.number, "report", "train")
    assert "`train` — SUCCESS" in rep.body and "[Databricks run](http://127.0.0.1:" in rep.body
    assert status_of(forge, pr.head.sha, "mlops-bot/train") == "success"


def test_a_read_only_user_is_refused_with_a_reply_and_nothing_starts(ops, pr):
    forge, ws = ops
    c = comment(forge, "carol", pr.number, "/train toy")
    [reply] = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))
    assert "@carol `/train` needs write permission on acme/tiny-ml; you have read." in reply.body
    time.sleep(1)
    assert bot_comments(forge, pr.number, "report", "train") == []


def test_malformed_and_unknown_commands_get_the_usage(ops, pr):
    forge, _ = ops
    c = comment(forge, "alice", pr.number, "/train toy --param\n/trian")
    first = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    second = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-1"))[0]
    assert (
        "needs key=value" in first.body and "Usage: `/train [model] [toy|full] [--param key=value ...]`" in first.body
    )
    assert "unknown command `/trian`" in second.body


def test_two_commands_in_one_comment_are_both_answered(ops, pr):
    forge, _ = ops
    c = comment(forge, "bob", pr.number, "/help\n/status")
    help_ = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    status = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-1"))[0]
    # a table cell: its `|` is escaped (GitHub splits cells on it even inside code)
    assert "`/train [model] [toy\\|full] [--param key=value ...]`" in help_.body and "`/cancel`" in help_.body
    assert "Runs for this pull request" in status.body or "No runs" in status.body


def test_help_lists_only_what_the_commenter_may_use(ops, pr):
    forge, _ = ops
    c = comment(forge, "carol", pr.number, "/help")
    reply = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "`/status`" in reply.body and "`/train" not in reply.body


def test_train_full_is_limited_to_listed_users(ops, pr):
    forge, _ = ops
    c = comment(forge, "alice", pr.number, "/train full")
    reply = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "only @bob may start it" in reply.body


def test_unknown_dataset_and_param_are_refused(ops, pr):
    forge, _ = ops
    c = comment(forge, "alice", pr.number, "/train huge\n/train toy --param depth=3")
    first = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    second = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-1"))[0]
    assert "unknown dataset `huge`; choose one of toy, full" in first.body
    assert "parameter `depth` is not allowed" in second.body


def test_a_failed_run_shows_the_failing_tasks_output(ops, pr):
    forge, _ = ops
    comment(forge, "alice", pr.number, "/train toy --param fail=1")
    [rep] = report(forge, pr.number, "train", "FAILED")
    assert "<details><summary>Output of <code>train</code> (FAILED)</summary>" in rep.body
    assert "loss exploded at epoch 3" in rep.body
    wait_until(lambda: status_of(forge, pr.head.sha, "mlops-bot/train") == "failure")


def test_a_new_command_supersedes_the_older_run(ops, pr):
    forge, ws = ops
    comment(forge, "alice", pr.number, "/train toy --param sleep=30")
    wait_until(lambda: bot_comments(forge, pr.number, "report", "train"))
    comment(forge, "alice", pr.number, "/train toy")
    [rep] = report(forge, pr.number, "train", "SUCCESS")
    assert "sleep" not in rep.body  # the report belongs to the newer run
    assert len(bot_comments(forge, pr.number, "report", "train")) == 1


def test_cancel_stops_the_prs_active_runs(ops, pr):
    forge, _ = ops
    report(forge, pr.number, "test", "SUCCESS")  # the PR's own test run is done: only the train run is active
    comment(forge, "alice", pr.number, "/train toy --param sleep=30")
    wait_until(lambda: bot_comments(forge, pr.number, "report", "train"))
    c = comment(forge, "alice", pr.number, "/cancel")
    reply = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "cancelled 1 run(s): `train`" in reply.body
    report(forge, pr.number, "train", "CANCELED")


def test_status_lists_the_runs(ops, pr):
    forge, _ = ops
    report(forge, pr.number, "test", "SUCCESS")  # the PR's own `test` workflow ran on open
    c = comment(forge, "alice", pr.number, "/status")
    reply = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "| `test` |" in reply.body and "SUCCESS" in reply.body


def test_fork_pr_runs_nothing_until_ok_to_test(ops, tmp_path):
    forge, ws = ops
    mallory = as_user(forge, "mallory")
    fork = mallory.get_repo(REPO).create_fork()
    push_branch(forge, "mallory", fork.full_name, "evil", tmp_path)
    pr = mallory.get_repo(REPO).create_pull(title="fork", body="", head="mallory:evil", base="main")
    wait_until(lambda: bot_comments(forge, pr.number, "reply", "ok-to-test"))
    c = comment(forge, "alice", pr.number, "/train toy")
    refusal = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "comes from a fork" in refusal.body and "/ok-to-test" in refusal.body
    c = comment(forge, "mallory", pr.number, "/ok-to-test")
    refusal = wait_until(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-0"))[0]
    assert "`/ok-to-test` needs write permission" in refusal.body
    comment(forge, "alice", pr.number, "/ok-to-test")
    report(forge, pr.number, "test", "SUCCESS")  # the fork's code ran once a writer said so
    comment(forge, "alice", pr.number, "/train toy")
    report(forge, pr.number, "train", "SUCCESS")


def test_report_is_edited_not_duplicated_when_reporting_repeats(ops, pr):
    """A retried follow/report task edits the one report comment in place."""
    import redis as redis_lib

    from core.config import load_config
    from workers.core.state import State
    from workers.gateways.forge import Forge
    from workers.pr.feedback import report_run

    forge, _ = ops
    [before] = report(forge, pr.number, "test", "SUCCESS")
    settings = load_config(forge.config)
    state = State(redis_lib.Redis.from_url(forge.redis_url))
    [record] = [r for r in state.pr_runs(REPO, pr.number) if r.workflow == "test"]
    bot = Forge(settings.github, as_user(forge, "mlops-bot"))
    for _ in range(2):  # as if the task ran again after a crash
        assert report_run(record, record.result, forge=bot, state=state, settings=settings) == "pr"
    [after] = bot_comments(forge, pr.number, "report", "test")
    assert after.id == before.id and after.body == before.body
