"""What GitHub really answers, on pure functions and the shared fakes: rate limits are waited out and never read
as "forbidden" or "not found"; custom roles rank by their base role; a deleted fork's PR is a fork's; form-encoded
deliveries are read; a fork's check run can be re-run; the janitor removes only on a sure answer.

Sources (cited where a test depends on them):
- GitHub REST docs, "Troubleshooting the REST API" / "Rate limits for the REST API":
  "If you exceed your primary rate limit, you will receive a 403 or 429 response, and the x-ratelimit-remaining
  header will be 0." "If you exceed a secondary rate limit, you will receive a 403 or 429 response and an error
  message that indicates that you exceeded a secondary rate limit. If the retry-after response header is present,
  you should not retry your request until after that many seconds has elapsed. If the x-ratelimit-remaining header
  is 0, you should not retry your request until after the time, in UTC epoch seconds, specified by the
  x-ratelimit-reset header. Otherwise, wait for at least one minute before retrying."
- Webhook docs: "application/x-www-form-urlencoded will send the JSON payload as a form parameter called payload."
- @octokit/webhooks-schemas `pull-request`: `head.repo` is `oneOf [repository, null]`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from github import GithubException, RateLimitExceededException

from bot.web import create_app
from core import events
from core import vocabulary as V
from core.commands import Command
from core.events import Event
from handlers import router
from tests.conftest import SECRETS, fixtures_dir
from tests.fakes import pull, world
from workers.core import permissions
from workers.core.state import State
from workers.errors import (
    MAX_RATE_LIMIT_WAIT,
    NotFound,
    Permanent,
    RateLimited,
    Transient,
    classify,
    rate_limit_wait,
    retry_countdown,
)
from workers.gateways.forge import path_segment, role_of
from workers.jobs import janitor as the_janitor
from workers.pr import chatops, runs

NOW = 1_700_000_000.0
PRIMARY = "API rate limit exceeded for user ID 1."
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
REPO = "acme/churn-model"


# --- the one classifier ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "headers", "message", "wait"),
    [
        # primary: 403 or 429, x-ratelimit-remaining 0, wait until x-ratelimit-reset (+1: within that second)
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 30)}, PRIMARY, 31),
        (429, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 30)}, PRIMARY, 31),
        # secondary: retry-after seconds when present
        (403, {"retry-after": "5"}, SECONDARY, 5),
        (429, {"Retry-After": "7"}, "", 7),
        # secondary without retry-after, and a bare 429: "wait for at least one minute"
        (403, {"x-ratelimit-remaining": "4000"}, SECONDARY, 60),
        (429, {}, "", 60),
        # bounded: one countdown stays under the broker's visibility timeout; a reset already past waits a second
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 86400)}, PRIMARY, MAX_RATE_LIMIT_WAIT),
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) - 10)}, PRIMARY, 1),
        # a 403 without these signs is a refusal, and a 404 never waits
        (403, {"x-ratelimit-remaining": "4999"}, "Must have push access to repository", None),
        (403, {}, "Resource not accessible by integration", None),
        (404, {"retry-after": "5"}, "Not Found", None),
        (502, {}, "Server Error", None),
    ],
)
def test_rate_limit_wait_follows_githubs_rules(status, headers, message, wait):
    assert rate_limit_wait(status, headers, message, NOW) == wait


def github_error(status: int, message: str, headers: dict | None = None, cls=GithubException) -> GithubException:
    """What PyGithub raises: its response headers are lower-cased (Requester)."""
    return cls(status, {"message": message}, {k.lower(): v for k, v in (headers or {}).items()})


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (github_error(403, SECONDARY, {"Retry-After": "3"}), RateLimited),
        (github_error(403, PRIMARY, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}), RateLimited),
        (github_error(403, PRIMARY, cls=RateLimitExceededException), RateLimited),
        (github_error(429, "Too Many Requests"), RateLimited),
        (github_error(403, "Must have push access to repository"), Permanent),
        (github_error(404, "Branch not found"), NotFound),
        (github_error(502, "Server Error"), Transient),
        (github_error(422, "Validation Failed"), Permanent),
    ],
)
def test_classify_tells_a_rate_limit_from_a_refusal(exc, kind):
    got = classify(exc, "GitHub said no")
    assert type(got) is kind
    assert isinstance(got, Transient) == (kind in (RateLimited, Transient))  # a rate limit is retried, never final


def test_a_rate_limit_is_retried_after_its_own_wait_not_the_backoff():
    wait = classify(github_error(403, SECONDARY, {"Retry-After": "30"}), "x")
    assert 30 <= retry_countdown(wait, retries=0) <= 33
    assert retry_countdown(Transient("502"), retries=0) <= 2  # the usual backoff: 1-2 s at first


def test_a_transient_that_knows_when_it_can_succeed_is_retried_then_not_sooner_nor_much_later():
    """A half-made copy into prod can be known abandoned 14 s from now (workers/gateways/registry.py): backing off
    instead, the retry came 105 s late in chaos (tests/reliability/test_chaos_release.py)."""
    assert 14 <= retry_countdown(Transient("a copy is still being registered", wait=14), retries=6) <= 16


# --- the gateway's small pure parts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("branch", "segment"),
    [
        ("feature/x", "feature/x"),  # `/` may stay (PyGithub's get_branch quotes the same way)
        ("fix#12", "fix%2312"),
        ("100%", "100%25"),
        ("c++", "c%2B%2B"),
        ("fonctionnalité/é", "fonctionnalit%C3%A9/%C3%A9"),
    ],
)
def test_branch_names_are_percent_encoded_in_paths(branch, segment):
    assert path_segment(branch) == segment


@pytest.mark.parametrize(
    ("answer", "role", "may_write"),
    [
        ({"permission": "write", "role_name": "write"}, "write", True),
        ({"permission": "write", "role_name": "maintain"}, "maintain", True),  # maintain reads as write
        ({"permission": "write", "role_name": "ml-engineer"}, "ml-engineer (write)", True),  # a custom role
        ({"permission": "read", "role_name": "auditor"}, "auditor (read)", False),
        ({"permission": "none", "role_name": ""}, "none", False),
    ],
)
def test_custom_roles_rank_by_their_base_permission_and_show_their_name(answer, role, may_write):
    assert role_of(answer) == role
    assert permissions.ranks_at_least(role, "write") is may_write


def test_a_refusal_names_the_custom_role(settings):
    why = permissions.permission_refusal(settings, REPO, "deploy", "ml-engineer (write)")
    assert why == f"`/deploy` needs maintain permission on {REPO}; you have ml-engineer (write)."


# --- deliveries ---------------------------------------------------------------------------------------------------------
def real_payload(name: str, repo: str = REPO) -> dict:
    """A real delivery from ../shared/fixtures/github, addressed to a configured repository."""
    data = json.loads((fixtures_dir() / "github" / f"{name}.json").read_text())
    old = data["repository"]["full_name"]
    text = json.dumps(data).replace(f'"full_name": "{old}"', f'"full_name": "{repo}"')
    return json.loads(text)


def dispatch(settings, name: str, data: dict):
    return router.dispatch(Event("github", name, str(data.get("action") or ""), "d-1", data), settings)


def test_closing_a_pr_whose_fork_was_deleted_never_touches_the_base_branch_of_that_name(settings):
    data = real_payload("pull_request__closed.payload")
    data["pull_request"]["head"].update(ref="main", repo=None)  # the fork is gone; its branch was called main
    [action] = dispatch(settings, "pull_request", data)
    assert action.task == V.REMOVE_BRANCH_JOBS
    assert action.kwargs["branch"] == f"pull/{data['number']}"  # the fork's own jobs, never main's


def test_closing_a_fork_pr_removes_its_pull_jobs(settings):
    data = real_payload("pull_request__closed.payload")
    data["pull_request"]["head"]["repo"]["full_name"] = "someone/churn-model"
    [action] = dispatch(settings, "pull_request", data)
    assert action.kwargs["branch"] == f"pull/{data['number']}"


def form_delivery(data: dict) -> tuple[bytes, dict]:
    """A delivery of a hook whose content type is `form`, signed over the form body as GitHub signs it."""
    body = urlencode({"payload": json.dumps(data)}).encode()
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "d-form",
        "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body),
    }


def test_a_form_encoded_delivery_is_read_after_its_signature():
    data = real_payload("push__with-new-branch.payload")
    body, headers = form_delivery(data)
    event = events.github_event(headers, body, SECRETS["GITHUB_WEBHOOK_SECRET"])
    assert (event.name, event.delivery_id, event.data) == ("push", "d-form", data)


def test_a_form_delivery_signed_over_its_json_instead_is_refused():
    data = real_payload("push__with-new-branch.payload")
    body, headers = form_delivery(data)
    headers["X-Hub-Signature-256"] = events.github_signature(
        SECRETS["GITHUB_WEBHOOK_SECRET"], json.dumps(data).encode()
    )
    with pytest.raises(events.Refused) as refused:
        events.github_event(headers, body, SECRETS["GITHUB_WEBHOOK_SECRET"])
    assert refused.value.status == 401


# --- chat-ops under a rate limit ----------------------------------------------------------------------------------------
@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[7] = pull(7)
    w.forge.roles.update(alice="write")
    return w


def test_help_under_a_rate_limit_is_retried_not_refused(w):
    w.forge.failures["permission"] = RateLimited("GitHub said 403 (rate limited: retry in 60 s)", 60)
    ctx = chatops.command_context(w.deps, REPO, 7, 555, "alice", "d-1")
    with pytest.raises(RateLimited):  # BotTask retries it after the wait
        chatops.run_command(ctx, Command("help", line="/help"))
    assert w.forge.comment("reply", "555-0") is None  # no refusal: her role is read again after the wait


# --- re-running a fork's check run --------------------------------------------------------------------------------------
SHA = "f" * 40


def rerun(w, pr=None):
    return runs.rerun_check(
        w.deps, check_run_id=40001, name="mlops-bot/test", repo=REPO, sha=SHA, branch="", trigger="d-2:0", pr=pr,
        user="bob",
    )  # fmt: skip


def test_a_fork_check_rerun_finds_its_pr_by_commit_and_runs_it_as_the_fork(w):
    w.forge.pulls[9] = pull(9, sha=SHA, fork=True)
    w.deps.state.grant_ok_to_test(REPO, 9, SHA)
    run_id = rerun(w)
    [record] = w.deps.state.pr_runs(REPO, 9)
    assert (record.run_id, record.branch, record.sha, record.requested_by) == (run_id, "pull/9", SHA, "bob")
    job = w.deps.workspaces(record.environment).jobs[record.job_id]
    assert job["git_source"]["git_url"] == "https://github.com/someone/churn-model.git"  # the fork's code


def test_a_fork_check_rerun_without_ok_to_test_is_refused_on_the_pr(w):
    w.forge.pulls[9] = pull(9, sha=SHA, fork=True)
    with pytest.raises(Permanent):
        rerun(w)
    assert not w.workspace.runs
    assert "/ok-to-test" in w.forge.comment("report", "test") and w.forge.statuses[-1]["state"] == "error"


def test_a_check_rerun_of_a_commit_no_open_pr_has_says_so_on_the_check(w):
    with pytest.raises(Permanent):
        rerun(w)
    [status] = w.forge.statuses
    assert (status["sha"], status["state"]) == (SHA, "error") and "names no branch" in status["description"]


# --- the janitor ----------------------------------------------------------------------------------------------------------
def managed(w, *branches: str, created_days_ago: float = 0) -> None:
    """Managed `train` jobs for these branches in the fake workspace."""
    for branch in branches:
        name = V.job_name("mlops-bot", REPO, branch, "train")
        job_id = w.workspace.create_job({"name": name, "tags": {"mlops-bot": "managed"}})
        w.workspace.created_time[job_id] = int((time.time() - created_days_ago * 86400) * 1000)


def janitor(w, forge="fake"):
    return the_janitor.clean_up(
        w.deps.workspaces,
        w.deps.state,
        w.deps.settings,
        the_janitor.branch_answers(w.forge if forge else None, w.deps.settings),
    )


def test_the_janitor_removes_nothing_while_github_rate_limits(w):
    managed(w, "feature/live", "feature/gone")
    w.forge.branches = {"feature/live"}
    w.forge.failures["branch_names"] = RateLimited("GitHub said 403 (rate limited)", 60)
    assert janitor(w) == [] and len(w.workspace.jobs) == 2
    del w.forge.failures["branch_names"]
    assert [r.job.split("/")[-2] for r in janitor(w)] == ["gone"]


def test_the_janitor_keeps_an_open_fork_prs_jobs_and_removes_a_closed_ones(w):
    managed(w, "pull/7", "pull/8")
    w.forge.pulls[7] = pull(7, fork=True)
    w.forge.pulls[8] = pull(8, fork=True, state="closed")
    removed = janitor(w)
    assert [(r.job, r.why) for r in removed] == [
        (V.job_name("mlops-bot", REPO, "pull/8", "train"), "pull request #8 is closed")
    ]  # the open pull requests, listed once: #8 is not among them


def test_without_github_the_janitor_still_applies_the_ttl(w):
    days = w.deps.settings.bot.job_ttl_days
    managed(w, "feature/old", created_days_ago=days + 1)
    removed = janitor(w, forge=None)
    assert [r.why for r in removed] == [f"never ran in the {days} days since it was made"]


def counted(w, method: str) -> list[str]:
    """The repositories the fake forge's `method` is asked about, in order."""
    asked, answer = [], getattr(w.forge, method)
    setattr(w.forge, method, lambda repo: asked.append(repo) or answer(repo))
    return asked


def test_with_a_token_the_janitor_lists_a_repositorys_branches_once_per_pass(w):
    managed(w, "feature/a", "feature/b", "feature/c", "main")
    w.forge.branches = {"feature/a", "main"}
    listed, pulls = counted(w, "branch_names"), counted(w, "open_pull_numbers")
    assert sorted(r.job.split("/")[-2] for r in janitor(w)) == ["b", "c"]
    assert listed == [REPO] and pulls == []  # no pull/<n> jobs: no pull requests listed


def test_as_a_github_app_the_janitor_asks_github_nothing(w):
    """An App's deliveries remove the jobs of deleted branches, and failed ones are redelivered: no listing."""
    app = w.deps.settings.github.model_copy(update={"app_id": 1, "installation_id": 2})
    w.deps = replace(w.deps, settings=w.deps.settings.model_copy(update={"github": app}))
    managed(w, "feature/gone", "pull/8")
    listed, pulls = counted(w, "branch_names"), counted(w, "open_pull_numbers")
    assert janitor(w) == [] and listed == [] and pulls == []


# --- a push of GitHub's largest size -----------------------------------------------------------------------
def big_push(settings) -> dict:
    """A real push delivery carrying 2,048 commits: push `commits`, "The array includes a maximum of 2048 commits."
    (GitHub's OpenAPI description); "Payloads are capped at 25 MB" (webhook docs)."""
    data = json.loads((fixtures_dir() / "github" / "push__payload.json").read_text())
    data["repository"]["full_name"] = settings.repos[0].name
    data.update(ref="refs/heads/feature/big", after="1" * 40, deleted=False)
    commit = {
        "id": "a" * 40, "tree_id": "b" * 40, "distinct": True, "message": "Regenerate the feature store " * 4,
        "timestamp": "2026-11-28T10:00:00Z", "url": "https://github.com/acme/churn-model/commit/" + "a" * 40,
        "author": {"name": "Alice A.", "email": "alice@example.com", "username": "alice"},
        "committer": {"name": "GitHub", "email": "noreply@github.com", "username": "web-flow"},
        "added": [f"features/part-{i}.parquet" for i in range(3)], "removed": [], "modified": ["features/index.json"],
    }  # fmt: skip
    data["commits"] = [dict(commit, id=f"{i:040x}") for i in range(2048)]
    return data


def test_a_push_of_2048_commits_is_queued(settings, redis_client, signer, secrets):
    body, headers = signer.github("push", big_push(settings))
    assert len(body) > 1024 * 1024  # over the old default max_body_bytes
    r = (
        create_app(settings, redis_client=redis_client)
        .test_client()
        .post("/webhooks/github", data=body, headers=headers)
    )
    assert r.status_code == 202 and [t["task"] for t in r.json["tasks"]][0] == V.SYNC_BRANCH_JOBS
