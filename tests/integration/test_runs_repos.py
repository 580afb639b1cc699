"""Runs, Git folders and outputs against the strict sandbox workspace, through databricks-sdk, real Redis
and (for the PR tests) the sandbox forge, the receiver and a Celery worker.

Each test is one bug of issue 10 that the lenient stand-in hid: the workspace now answers as Databricks
does (tests/sandbox/test_workspace_runs.py), and the bot copes.
"""

from __future__ import annotations

import itertools
import json
import textwrap
import urllib.request

import pytest

from core.config import Workflow
from devstack import waiting
from devstack.bot import start_beat, start_worker
from devstack.mlrepo import branch, git, make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.integration.test_branch_jobs import finish, names
from tests.integration.test_chatops import (
    REPO,
    as_user,
    bot_comments,
    comment,
    push_branch,
    report,
    status_of,
)
from tests.integration.test_stack_jobs import REPO as PAYLOAD_REPO
from tests.integration.test_stack_jobs import logged, push, stack  # noqa: F401 (stack is a fixture)
from tests.support.stacks import bot_settings, bot_stack, service_fixture, workspace_client
from tests.support.webhooks import post
from workers.core.state import State
from workers.errors import Permanent, Transient
from workers.jobs import branch_jobs
from workers.jobs import results as jobs_results

NOTEBOOK = textwrap.dedent("""\
    # Databricks notebook source
    import json
    print("a notebook's prints are not returned by runs/get-output")
    dbutils.notebook.exit(json.dumps({"metrics": {"score": 42}, "commit": dbutils.widgets.get("sha")}))
    """)
_triggers = itertools.count(1)


sandbox = service_fixture(start_workspace, "ws")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = make_repo(tmp_path_factory.mktemp("git") / "tiny-ml")
    (path / "notebooks").mkdir()
    (path / "notebooks" / "train.py").write_text(NOTEBOOK)
    git(path, "add", "-A")
    git(path, "commit", "-qm", "a notebook")
    return path


@pytest.fixture
def world(sandbox, repo, redis_client, tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    settings, workspaces = bot_settings(tmp_path / "config.toml", sandbox.url, repo)
    return settings, State(redis_client), workspaces, workspace_client(sandbox.url)


def with_repo(settings, **changes):
    """Settings whose one repository has `changes` (code_source, pin, repos_folder …)."""
    repo = settings.repo("acme/tiny-ml").model_copy(update=changes)
    return settings.model_copy(update={"repos": [repo]})


def start(workspaces, state, settings, **kwargs) -> branch_jobs.Started:
    run = {"repo": "acme/tiny-ml", "workflow": "train", "trigger": f"runs-repos-{next(_triggers)}:0", **kwargs}
    return branch_jobs.start_run(workspaces, state, settings, **run)


def add_fault(url: str, spec: str) -> None:
    body = json.dumps({"spec": spec}).encode()
    headers = {"Content-Type": "application/json"}
    urllib.request.urlopen(urllib.request.Request(url + "/sandbox/faults", data=body, headers=headers)).close()


def fork_of(repo, tmp_path) -> tuple[str, str]:
    """A fork: a clone of `repo` with one more commit, on a branch the base repository does not have."""
    fork = tmp_path / "fork"
    git(tmp_path, "clone", "-q", str(repo), str(fork))
    git(fork, "checkout", "-q", "-b", "contribution")
    (fork / "NOTES.md").write_text("a contribution from a fork\n")
    git(fork, "add", "-A")
    git(fork, "commit", "-qm", "contribution")
    return str(fork), git(fork, "rev-parse", "HEAD")


# --- Git folders ------------------------------------------------------------------------------------


def test_repos_mode_makes_the_folder_before_the_git_folder(world, repo):
    """Bug: `code_source = "repos"` never created /Repos/<folder>; Databricks answers repos/create with
    404 RESOURCE_DOES_NOT_EXIST "Parent directory … does not exist"."""
    settings, state, workspaces, client = world
    settings = with_repo(settings, code_source="repos", repos_folder="fresh-folder")
    sha = branch(repo, "feature/folder")
    started = start(workspaces, state, settings, branch="feature/folder", sha=sha)
    assert client.workspace.get_status("/Repos/fresh-folder").object_type.value == "DIRECTORY"
    [made] = [r for r in client.repos.list(path_prefix="/Repos/fresh-folder/")]
    assert made.branch == "feature/folder" and made.head_commit_id == sha
    assert finish(workspaces, state, started.run_id).result == "SUCCESS"


# --- a job deleted behind the cache ---------------------------------------------------------------------


def test_a_job_deleted_behind_the_cache_is_made_again_and_run(world, repo):
    """Bug: run_now on a cached job id that was deleted got 400 INVALID_PARAMETER_VALUE "Job … does not
    exist" (InvalidParameterValue in the SDK), a permanent refusal, for the cache's lifetime."""
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/deleted")
    first = start(workspaces, state, settings, branch="feature/deleted", sha=sha)
    finish(workspaces, state, first.run_id)
    client.jobs.delete(first.job_id)  # someone tidied the workspace; Redis still caches the id
    second = start(workspaces, state, settings, branch="feature/deleted", sha=sha)
    assert second.job_id != first.job_id
    assert names(client).count("mlops-bot/acme/tiny-ml/feature/deleted/train") == 1
    assert finish(workspaces, state, second.run_id).result == "SUCCESS"


# --- outputs by task type -------------------------------------------------------------------------------


def test_a_notebooks_exit_value_is_what_it_said(world, repo):
    """Bug: task results were read from `logs` only, which Databricks does not return for notebook tasks
    (`RunOutput.logs`); a notebook's value is `notebook_output.result`. Its metrics were lost."""
    settings, state, workspaces, client = world
    notebook = Workflow.model_validate({"tasks": [{"key": "nb", "type": "notebook_task", "file": "notebooks/train"}]})
    settings = settings.model_copy(update={"workflows": {**settings.workflows, "nbtrain": notebook}})
    sha = branch(repo, "feature/notebook")
    started = start(workspaces, state, settings, branch="feature/notebook", sha=sha, workflow="nbtrain")
    result = finish(workspaces, state, started.run_id)
    assert result.result == "SUCCESS"
    assert jobs_results.task_outputs(result) == {"metrics": {"score": 42}, "commit": sha}
    assert "are not returned" not in result.tasks[0].output


# --- fork pull requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code_source", ["git", "repos"])
def test_a_forks_pr_runs_its_head_commit_whatever_pin_says(world, repo, tmp_path, code_source):
    """Bug: with `pin = "branch"` a fork's job asked for branch `pull/<n>`, which is no branch on GitHub
    (only refs/pull/<n>/head), and in repos mode a Git folder was asked to check it out (it checks out only
    branches and tags). A fork's run now pins the PR's head commit and runs from Git."""
    settings, state, workspaces, client = world
    settings = with_repo(settings, pin="branch", code_source=code_source, repos_folder="forks")
    fork_url, sha = fork_of(repo, tmp_path)
    started = start(workspaces, state, settings, branch="pull/7", sha=sha, git_url=fork_url, pr=7)
    source = client.jobs.get(started.job_id).settings.git_source
    assert (source.git_commit, source.git_branch, source.git_url) == (sha, None, fork_url)
    result = finish(workspaces, state, started.run_id)
    assert (result.result, result.used_commit) == ("SUCCESS", sha)
    assert list(client.repos.list(path_prefix="/Repos/forks/")) == []


# --- jobs/create has no idempotency token ---------------------------------------------------------------


def test_a_create_whose_answer_was_dropped_leaves_one_job(world, sandbox):
    """The SDK re-sends a create whose connection dropped after Databricks made the job: two jobs of one
    name. upsert_job keeps the oldest and deletes the other."""
    settings, state, workspaces, client = world
    add_fault(sandbox.url, "POST:/api/2.2/jobs/create=apply_then_drop:1")
    made = branch_jobs.upsert_job(workspaces("dev"), state, settings, settings.repo(REPO), "dropped", "train", "a" * 40)
    [job] = [j for j in client.jobs.list(name="mlops-bot/acme/tiny-ml/dropped/train")]
    assert (made.outcome, made.job_id) == ("created", job.job_id)


def test_a_create_answered_504_after_it_happened_is_found_by_name_on_retry(world, sandbox):
    """A 504 after the write: Transient, the task is retried, and the retry finds the job by its name
    (under the Redis lock) instead of creating a second one."""
    settings, state, workspaces, client = world
    repo_cfg = settings.repo(REPO)
    add_fault(sandbox.url, "POST:/api/2.2/jobs/create=apply_then_504:1")
    with pytest.raises(Transient):
        branch_jobs.upsert_job(workspaces("dev"), state, settings, repo_cfg, "gateway", "train", "a" * 40)
    again = branch_jobs.upsert_job(workspaces("dev"), state, settings, repo_cfg, "gateway", "train", "a" * 40)
    assert again.outcome == "unchanged"
    assert len(list(client.jobs.list(name="mlops-bot/acme/tiny-ml/gateway/train"))) == 1


def test_a_deleted_runs_token_is_a_permanent_refusal(world, repo):
    """Databricks refuses a deleted run's idempotency token (`RunNow.idempotency_token`): the same trigger
    cannot start it again, and the person is told rather than the task retried."""
    settings, state, workspaces, client = world
    sha = branch(repo, "feature/token")
    kwargs = dict(branch="feature/token", sha=sha, trigger="token-1:0")
    first = branch_jobs.start_run(workspaces, state, settings, repo="acme/tiny-ml", workflow="train", **kwargs)
    finish(workspaces, state, first.run_id)
    client.jobs.delete_run(first.run_id)
    with pytest.raises(Permanent, match="was deleted"):
        branch_jobs.start_run(workspaces, state, settings, repo="acme/tiny-ml", workflow="train", **kwargs)


# --- the running stack: writes answered 502/504/Unknown, or applied and unanswered ----------------------


def _pr_opened(signer, web, branch_name: str, sha: str, number: int, delivery: str):
    pr = {
        "action": "opened",
        "number": number,
        "repository": PAYLOAD_REPO,
        "pull_request": {
            "number": number,
            "user": {"login": "alice"},
            "head": {"ref": branch_name, "sha": sha, "repo": PAYLOAD_REPO},
            "base": {"ref": "main", "repo": PAYLOAD_REPO},
        },
    }
    data, headers = signer.github("pull_request", pr, delivery=delivery)
    return post(web.url + "/webhooks/github", data, headers)


@pytest.mark.parametrize(
    "faults",
    [  # each write of the flow (create, run-now, reset) meets its fault once, one stack per kind of fault
        ["POST:/api/2.2/jobs/create=504:1", "POST:/api/2.2/jobs/reset=502html:1", "POST:/api/2.2/jobs/run-now=502:1"],
        ["POST:/api/2.2/jobs/create=apply_then_drop:1", "POST:/api/2.2/jobs/run-now=apply_then_drop:1"],
        ["POST:/api/2.2/jobs/create=apply_then_504:1", "POST:/api/2.2/jobs/run-now=apply_then_504:1"],
    ],
    ids=["gateway-errors", "applied-then-dropped", "applied-then-504"],
)
def test_writes_answered_with_gateway_errors_or_lost_end_with_one_job_and_one_run(stack, signer, faults):  # noqa: F811
    """502 (Unknown), 504 (DeadlineExceeded) and an HTML 502 are transient: the task is retried. A write
    whose answer was lost is not done twice: jobs are found by name, runs by their idempotency token."""
    repo, start_stack, services, tmp = stack
    ws, web, env = start_stack(faults=faults)
    services.append(worker := start_worker(tmp, env, concurrency=1))
    services.append(start_beat(tmp, env))  # a retry due in more than 10 s waits in the due index for beat
    client = workspace_client(ws.url)
    name = "feature/gateway"
    first = branch(repo, name)
    _pr_opened(signer, web, name, first, 5, "gw-pr-1")  # its `test` run makes the branch's job, then runs
    reported = waiting.wait_until(lambda: logged(worker, "run.reported"), timeout=90)
    # on a busy machine this stack's short visibility timeout may hand the follow task out again: it reports the
    # same run again (the report is one comment, edited in place); what must hold is one run, and its success
    assert {(r["run_id"], r["result"]) for r in reported} == {(reported[0]["run_id"], "SUCCESS")}
    sha = branch(repo, name)
    push(signer, web, name, sha, "gw-push-1")  # a new commit: the job the branch has is reset, no other is made
    waiting.wait_until(lambda: logged(worker, "branch.synced", delivery_id="gw-push-1"), timeout=60)
    assert names(client) == [f"mlops-bot/acme/tiny-ml/{name}/test"]
    [job] = client.jobs.list()
    assert client.jobs.get(job.job_id).settings.tags["sha"] == sha
    assert len(list(client.jobs.list_runs(job_id=job.job_id))) == 1
    if not any("apply_then" in fault for fault in faults):
        assert len(logged(worker, "task.retry")) >= 3, "each gateway error was retried by the task"


# --- a pull request in repos mode, from a person's comment to the report -------------------------------


@pytest.fixture(scope="module")
def ops_repos(redis_server, empty_redis, tmp_path_factory):
    """Forge, strict workspace, receiver and worker; the repository runs from Git folders, `pin = "branch"`."""

    def pinned(text: str) -> str:
        return text.replace('code_source = "repos"\n', 'code_source = "repos"\npin = "branch"\n')

    tmp = tmp_path_factory.mktemp("ops-repos")
    with bot_stack(tmp, redis_server.url, code_source="repos", config=pinned) as started:
        yield started.forge, started.workspace


def test_train_in_repos_mode_runs_from_a_git_folder_in_a_folder_the_bot_made(ops_repos, tmp_path):
    """Bug: `/train` got an acknowledgement and then nothing useful: repos/create was refused for the missing folder."""
    forge, ws = ops_repos
    push_branch(forge, "alice", REPO, "feature/repos", tmp_path)
    pr = as_user(forge, "alice").get_repo(REPO).create_pull(title="r", body="", head="feature/repos", base="main")
    comment(forge, "alice", pr.number, "/train toy")
    report(forge, pr.number, "train", "SUCCESS")
    assert waiting.wait_until(lambda: status_of(forge, pr.head.sha, "mlops-bot/train") == "success", 30)
    [folder] = [
        r for r in workspace_client(ws.url).repos.list(path_prefix="/Repos/mlops-bot/") if "feature-repos" in r.path
    ]
    assert folder.branch == "feature/repos"


def test_a_forks_pr_in_repos_mode_with_pin_branch_runs_its_head_commit(ops_repos, tmp_path):
    forge, ws = ops_repos
    mallory = as_user(forge, "mallory")
    fork = mallory.get_repo(REPO).create_fork()
    sha = push_branch(forge, "mallory", fork.full_name, "idea", tmp_path)
    pr = mallory.get_repo(REPO).create_pull(title="fork", body="", head="mallory:idea", base="main")
    waiting.wait_until(lambda: bot_comments(forge, pr.number, "reply", "ok-to-test"), 30)
    comment(forge, "alice", pr.number, "/ok-to-test")
    [rep] = report(forge, pr.number, "test", "SUCCESS")
    assert f"`{sha[:7]}`" in rep.body
    assert waiting.wait_until(lambda: status_of(forge, sha, "mlops-bot/test") == "success", 30)


def test_a_run_the_bot_can_no_longer_read_is_told_on_the_pr(ops_repos, tmp_path):
    """A permanent failure while following a command-started run (here: Databricks refuses to show the run,
    403) reaches the PR: an error status and the reason in the report — not silence."""
    forge, ws = ops_repos
    push_branch(forge, "alice", REPO, "feature/lost", tmp_path)
    pr = as_user(forge, "alice").get_repo(REPO).create_pull(title="l", body="", head="feature/lost", base="main")
    sha = pr.head.sha
    report(forge, pr.number, "test", "SUCCESS")  # the PR's own `test` run is done: only ours polls now
    comment(forge, "alice", pr.number, "/train toy --param sleep=10")
    report(forge, pr.number, "train", "PENDING")  # started: its report is posted
    add_fault(ws.url, "GET:/api/2.2/jobs/runs/get=403:1")
    [rep] = report(forge, pr.number, "train", "could not follow run")
    assert "PERMISSION_DENIED" in rep.body or "Sandbox injected fault" in rep.body
    assert waiting.wait_until(lambda: status_of(forge, sha, "mlops-bot/train") == "error", 30)
