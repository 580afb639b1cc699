"""GitHub's limits on the real stack: private Redis, the sandbox forge (real git, signed `form` webhooks, faults),
the sandbox workspace, the receiver under gunicorn and a Celery worker; the bot is a GitHub App.

What is proved: a rate limit is waited out and answered later, never read as "no permission" or "branch gone";
a custom role ranks as its base role; a lost answer to a comment's POST leaves one comment; a listing GitHub could
not give whole is raised, never read as "no branches"; closing a deleted fork's PR leaves `main`'s jobs alone;
"Re-run" on a fork's check run runs it again; every `form` delivery is accepted. (The janitor, which lists branches
only with a token: tests/integration/test_lazy_jobs.py.)
"""

from __future__ import annotations

import json
import textwrap

import pytest
import redis
import requests
from github import Auth, Github

from core import keys
from core import vocabulary as V
from core.config import load_config
from devstack import waiting
from tests.conftest import SECRETS
from tests.support.app_keys import APP_SEED, app_key_pair
from tests.support.budget import requests_of, reset_counts, settled
from tests.support.forge_seeds import ML_ENGINEER_ROLE, users
from tests.support.pushes import push_new_commit, push_url
from tests.support.stacks import bot_stack
from workers.core.state import State
from workers.errors import NotFound, Permanent
from workers.gateways.forge import Forge
from workers.gateways.workspace import Workspace
from workers.jobs import branch_jobs

REPO = "acme/tiny-ml"
BOT = "mlops-bot[bot]"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", "dave": "ghp_dave", "erin": "ghp_erin", "frank": "ghp_frank"}
KEY_ENV = "SANDBOX_GITHUB_APP_KEY"


def wait_until(check, timeout=60.0):
    return waiting.wait_until(check, timeout, every=0.3)


def seed(src, web_url: str) -> str:
    return (
        users(TOKENS)
        + ML_ENGINEER_ROLE
        + textwrap.dedent(f"""\
        [[repos]]
        full_name = "{REPO}"
        init_from = "{src}"
        permissions = {{ alice = "write", bob = "admin", dave = "ml-engineer" }}
        [repos.webhook]
        url = "{web_url}/webhooks/github"
        secret = "{SECRETS["GITHUB_WEBHOOK_SECRET"]}"
        content_type = "form"
        events = ["push", "delete", "pull_request", "issue_comment", "check_run"]
        """)
        + APP_SEED
    )


@pytest.fixture(scope="module")
def stack(redis_server, empty_redis, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    pem = app_key_pair(tmp)
    as_app = f'app_id = 123\ninstallation_id = 456\napp_private_key_env = "{KEY_ENV}"'

    def app_config(text: str) -> str:
        return text.replace('token_env = "SANDBOX_GITHUB_TOKEN"', as_app)

    with bot_stack(tmp, redis_server.url, seed=seed, config=app_config, env={KEY_ENV: pem}) as started:
        forge = started.forge
        forge.config, forge.env, forge.tmp = started.config, started.env, tmp
        yield forge


@pytest.fixture
def bot(stack, monkeypatch, redis_server):
    """The bot's own settings, Redis state and gateways, for what a test drives in-process."""
    for name in ("SANDBOX_DATABRICKS_TOKEN", KEY_ENV):
        monkeypatch.setenv(name, stack.env[name])
    settings = load_config(stack.config)
    state = State(redis.Redis.from_url(redis_server.url))
    return settings, state, lambda env: Workspace(env, settings.environments[env]), Forge(settings.github)


def as_user(forge, login: str) -> Github:
    return Github(base_url=forge.url, auth=Auth.Token(TOKENS[login]), seconds_between_requests=0,
                  seconds_between_writes=0)  # fmt: skip


def add_fault(forge, spec: str) -> None:
    assert requests.post(f"{forge.url}/sandbox/faults", json={"spec": spec}).status_code == 201


def push_branch(forge, login: str, repo: str, branch: str, base: str = "main") -> str:
    """`git push` a new commit on `branch` (from `base`) as `login`; returns its sha."""
    checkout = forge.tmp / f"{login}-{repo.replace('/', '-')}-{branch.replace('/', '-')}"
    return push_new_commit(push_url(forge.url, repo, login, TOKENS[login]), checkout, branch, login, base)


def open_pr(forge, login: str, branch: str):
    push_branch(forge, login, REPO, branch)
    return as_user(forge, login).get_repo(REPO).create_pull(title=branch, body="", head=branch, base="main")


def bot_comments(forge, number: int, kind: str, key: str) -> list:
    issue = as_user(forge, "bob").get_repo(REPO).get_issue(number)
    return [c for c in issue.get_comments() if c.user.login == BOT and f"<!-- mlops-bot:{kind} key={key}" in c.body]


def reply_to(forge, login: str, number: int, body: str) -> tuple:
    """`login` comments `body`; the bot's one reply to it and the comment itself."""
    c = as_user(forge, login).get_repo(REPO).get_issue(number).create_comment(body)
    return wait_until(lambda: bot_comments(forge, number, "reply", f"{c.id}-0"))[0], c


# --- rate limits and roles, through chat-ops ------------------------------------------------------------------------------
def test_help_waits_out_a_rate_limit_on_the_permission_check(stack, bot):
    bot[1].r.delete(keys.permission(REPO, "alice"))  # the session's Redis may remember her role for a minute
    pr = open_pr(stack, "alice", "feature/help-limited")
    # the primary rate limit on the call that reads alice's role: 403, x-ratelimit-remaining 0, a reset 6 s away;
    # "you should not retry your request until after the time specified by the x-ratelimit-reset header"
    add_fault(stack, f"GET:/repos/{REPO}/collaborators/alice/permission=primary,wait=6")
    reply, c = reply_to(stack, "alice", pr.number, "/help")
    assert "`/train" in reply.body  # her write role was read after the reset, never taken as "none"
    [fault] = [f for f in requests.get(f"{stack.url}/sandbox/faults").json() if "alice/permission" in f["spec"]]
    assert fault["fired"] == 1  # asked once during the limit, then not again before its reset


def test_a_custom_role_with_write_as_base_may_use_write_commands(stack, bot):
    pr = open_pr(stack, "dave", "feature/custom-role")
    reply, _ = reply_to(stack, "dave", pr.number, "/help")
    assert "`/train" in reply.body and "`/deploy" not in reply.body  # ranked as write, not maintain
    assert bot[3].permission(REPO, "dave") == "ml-engineer (write)"


def test_a_train_as_an_app_costs_at_most_six_github_requests_over_its_whole_life(stack, bot, redis_server):
    """As test_chatops's count, with the bot as a GitHub App: check runs instead of commit statuses."""
    pr = open_pr(stack, "alice", "feature/train-budget")
    commit = as_user(stack, "bob").get_repo(REPO).get_commit(pr.head.sha)

    def check(name: str):
        return next((c for c in commit.get_check_runs() if c.name == name and c.status == "completed"), None)

    wait_until(lambda: check("mlops-bot/test") and settled(redis_server.url), timeout=120)  # the PR's own run
    bot[1].r.delete(keys.permission(REPO, "alice"))
    reset_counts(stack.url)
    as_user(stack, "alice").get_repo(REPO).get_issue(pr.number).create_comment("/train toy")
    done = wait_until(lambda: check("mlops-bot/train"), timeout=120)
    wait_until(lambda: settled(redis_server.url))
    spent = requests_of(stack.url, BOT)
    assert sum(spent.values()) <= 6, json.dumps(spent, indent=1)
    [rep] = bot_comments(stack, pr.number, "report", "train")
    assert "`train` — SUCCESS" in rep.body and "[Databricks run](http://127.0.0.1:" in rep.body
    assert done.conclusion == "success" and done.details_url.startswith("http://127.0.0.1:")


def exchanges(forge) -> list[dict]:
    return requests.get(f"{forge.url}/sandbox/exchanges").json()


def test_a_lost_answer_to_the_bots_first_comment_leaves_one_comment(stack):
    number = max(i.number for i in as_user(stack, "bob").get_repo(REPO).get_issues(state="all")) + 1
    # the bot's first comment on the next PR (its `test` run's report) is applied, then the connection drops
    add_fault(stack, f"POST:/repos/{REPO}/issues/{number}/comments=lose,user={BOT}:1")
    pr = open_pr(stack, "alice", "feature/lost-answer")
    [lost] = wait_until(lambda: [x for x in exchanges(stack) if x.get("lost")])
    assert lost["path"] == f"/repos/{REPO}/issues/{pr.number}/comments" and lost["status"] == 201
    marker, comment_id = lost["request"]["body"].split("\n", 1)[0], lost["response"]["id"]

    def edited_after_the_loss() -> bool:
        after = exchanges(stack)
        start = next(i for i, x in enumerate(after) if x.get("lost"))
        edit = f"/repos/{REPO}/issues/comments/{comment_id}"
        return any(x["method"] == "PATCH" and x["path"] == edit for x in after[start:])

    wait_until(edited_after_the_loss)  # the retried task found its comment by the hidden marker and edited it
    issue = as_user(stack, "bob").get_repo(REPO).get_issue(pr.number)
    assert [c.id for c in issue.get_comments() if marker in c.body] == [comment_id]


# --- the gateway's answers: only a sure "no" is "no" ----------------------------------------------------------------------
def test_the_gateway_says_no_only_when_github_does(stack, bot):
    forge = bot[3]
    assert forge.permission(REPO, "nobody-at-all") == "none"  # 404: not a user
    add_fault(stack, f"GET:/repos/{REPO}/collaborators/bob/permission=403:1")  # a refusal that is no rate limit
    with pytest.raises(Permanent):
        forge.permission(REPO, "bob")  # raised and told, never ranked as "none"
    assert "main" in forge.branch_names(REPO) and "never/was" not in forge.branch_names(REPO)
    add_fault(stack, f"GET:/repos/{REPO}/branches=404:1")
    with pytest.raises(NotFound):
        forge.branch_names(REPO)  # the repository itself is out of sight: no answer, not "no branches"


def test_a_refused_edit_of_a_known_comment_is_raised_not_posted_again(stack, bot):
    forge = bot[3]
    pr = open_pr(stack, "alice", "feature/refused-edit")
    first = forge.upsert_comment(REPO, pr.number, "report", "edit-test", "one")
    add_fault(stack, f"PATCH:/repos/{REPO}/issues/comments/{first}=403:1")
    with pytest.raises(Permanent):
        forge.upsert_comment(REPO, pr.number, "report", "edit-test", "two", known_id=first)
    assert [c.id for c in bot_comments(stack, pr.number, "report", "edit-test")] == [first]


def job_names(workspaces, settings) -> set[str]:
    return {j.name for j in workspaces("dev").managed_jobs(settings.bot.job_prefix, "mlops-bot")}


def train_job(bot, branch: str, sha: str) -> None:
    """The branch's `train` job, as its first `/train` makes it."""
    settings, state, workspaces, _ = bot
    branch_jobs.upsert_job(workspaces("dev"), state, settings, settings.repo(REPO), branch, "train", sha)


# --- forks ---------------------------------------------------------------------------------------------------------------------
def fork_pr(stack, login: str, branch: str):
    user = as_user(stack, login)
    fork = user.get_repo(REPO).create_fork()
    push_branch(stack, login, fork.full_name, branch)
    return user.get_repo(REPO).create_pull(title=branch, body="", head=f"{login}:{branch}", base="main")


def test_closing_a_deleted_forks_pr_leaves_the_base_branch_of_that_name_alone(stack, bot):
    settings, state, workspaces, _ = bot
    main_sha = as_user(stack, "bob").get_repo(REPO).get_branch("main").commit.sha
    train_job(bot, "main", main_sha)
    pr = fork_pr(stack, "frank", "main")  # the fork's branch is called main too
    train_job(bot, f"pull/{pr.number}", pr.head.sha)
    assert requests.delete(f"{stack.url}/repos/frank/tiny-ml", headers={"Authorization": "token ghp_frank"}).ok
    as_user(stack, "bob").get_repo(REPO).get_pull(pr.number).edit(state="closed")
    ours = V.job_name(settings.bot.job_prefix, REPO, f"pull/{pr.number}", "train")
    wait_until(lambda: ours not in job_names(workspaces, settings))  # the close was handled: the fork's jobs went
    assert V.job_name(settings.bot.job_prefix, REPO, "main", "train") in job_names(workspaces, settings)


def test_rerun_of_a_forks_check_run_runs_it_again(stack, bot):
    _, state, _, _ = bot
    pr = fork_pr(stack, "erin", "feature/erin")
    reply_to(stack, "bob", pr.number, "/ok-to-test")
    commit = as_user(stack, "bob").get_repo(REPO).get_commit(pr.head.sha)
    [check] = wait_until(lambda: [c for c in commit.get_check_runs() if c.status == "completed"], timeout=120)
    assert check.pull_requests == []  # a fork's check run names no pull request (GitHub's check_run payloads)
    requests.post(f"{stack.url}/sandbox/check-runs/{check.id}/rerequest", json={"sender": "bob"})
    runs = wait_until(lambda: (r := [x for x in state.pr_runs(REPO, pr.number) if x.workflow == "test"])
                      and len(r) == 2 and r, timeout=60)  # fmt: skip
    assert runs[1].branch == f"pull/{pr.number}" and runs[1].requested_by == "bob"


# --- deliveries -------------------------------------------------------------------------------------------------------------------
def test_every_form_delivery_was_accepted(stack):
    deliveries = requests.get(f"{stack.url}/sandbox/deliveries").json()["deliveries"]
    assert deliveries and all(d["status_code"] in (200, 202) for d in deliveries if d["status"] != "pending")
