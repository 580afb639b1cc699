"""The running stack — receiver, worker, Redis, sandbox workspace — driven by signed webhooks."""

from __future__ import annotations

import time

import pytest

from devstack.bot import start_web, start_worker
from devstack.mlrepo import branch, config_text, make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from devstack.waiting import wait_until
from tests.conftest import SECRETS
from tests.integration.test_branch_jobs import names
from tests.integration.test_receiver_worker import worker_lines
from tests.support.stacks import workspace_client
from tests.support.webhooks import post

REPO = {"full_name": "acme/tiny-ml", "name": "tiny-ml", "owner": {"login": "acme"}}


def stack_env(redis_url: str, config) -> dict:
    return {
        **SECRETS,
        "REDIS_URL": redis_url,
        "MLOPS_BOT_CONFIG": str(config),
        "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN,
        "CELERY_VISIBILITY_TIMEOUT": "3",
    }


@pytest.fixture
def stack(redis_server, redis_client, tmp_path):
    """A fresh stack per test; the worker is started by the test (some tests kill it)."""
    repo = make_repo(tmp_path / "tiny-ml")
    services = []

    def start(faults=(), test_on_push=False):
        """`test_on_push`: the `test` workflow runs on a push too (else only on a pull request): a push makes its job."""
        ws = start_workspace(tmp_path, faults=list(faults))
        services.append(ws)
        config = tmp_path / "config.toml"
        text = config_text(ws.url, repo)
        config.write_text(
            text.replace('run_on = ["pull_request"]', 'run_on = ["pull_request", "push"]') if test_on_push else text
        )
        env = stack_env(redis_server.url, config)
        services.append(web := start_web(tmp_path, env))
        return ws, web, env

    yield repo, start, services, tmp_path
    for s in reversed(services):
        s.stop()


def push(signer, web, branch_name: str, sha: str, delivery: str, deleted: bool = False):
    body = {
        "ref": f"refs/heads/{branch_name}",
        "before": "0" * 40,
        "after": "0" * 40 if deleted else sha,
        "deleted": deleted,
        "created": not deleted,
        "repository": REPO,
        "pusher": {"name": "alice"},
    }
    data, headers = signer.github("push", body, delivery=delivery)
    return post(web.url + "/webhooks/github", data, headers)


def logged(worker, event: str, **match) -> list[dict]:
    return [
        entry
        for entry in worker_lines(worker)
        if entry.get("event") == event and all(entry.get(k) == v for k, v in match.items())
    ]


def test_push_creates_the_jobs_it_runs_duplicate_changes_nothing_delete_removes_them(stack, signer):
    repo, start, services, tmp = stack
    ws, web, env = start(test_on_push=True)
    services.append(worker := start_worker(tmp, env, concurrency=1))
    client = workspace_client(ws.url)
    sha = branch(repo, "feature/new")

    status, answer = push(signer, web, "feature/new", sha, "push-1")
    assert status == 202
    wait_until(lambda: logged(worker, "branch.synced", delivery_id="push-1"), timeout=30)
    # `test` runs on a push; `train` on a command only: its job waits for the first /train
    assert names(client) == ["mlops-bot/acme/tiny-ml/feature/new/test"]
    job_ids = sorted(j.job_id for j in client.jobs.list())

    status, answer = push(signer, web, "feature/new", sha, "push-1")
    assert (status, answer["status"]) == (200, "duplicate")
    time.sleep(0.5)
    assert sorted(j.job_id for j in client.jobs.list()) == job_ids

    data, headers = signer.github(
        "delete", {"ref": "feature/new", "ref_type": "branch", "repository": REPO}, delivery="delete-1"
    )
    assert post(web.url + "/webhooks/github", data, headers)[0] == 202
    wait_until(lambda: logged(worker, "branch.cleaned", delivery_id="delete-1"), timeout=30)
    assert names(client) == []


def test_pr_opened_runs_the_test_workflow_to_success_through_the_follower(stack, signer):
    repo, start, services, tmp = stack
    ws, web, env = start()
    services.append(worker := start_worker(tmp, env, concurrency=2))
    sha = branch(repo, "feature/pr")
    pr = {
        "action": "opened",
        "number": 3,
        "repository": REPO,
        "pull_request": {
            "number": 3,
            "user": {"login": "alice"},
            "head": {"ref": "feature/pr", "sha": sha, "repo": REPO},
            "base": {"ref": "main", "repo": REPO},
        },
    }
    data, headers = signer.github("pull_request", pr, delivery="pr-1")
    assert post(web.url + "/webhooks/github", data, headers)[0] == 202
    reports = wait_until(lambda: logged(worker, "run.reported"), timeout=60)
    # a busy machine may hand the follow task out again past this stack's 3 s visibility timeout: the same run,
    # reported again (one comment, edited in place)
    assert len({r["run_id"] for r in reports}) == 1
    reported = reports[0]
    assert (reported["result"], reported["workflow"], reported["branch"], reported["pr"]) == (
        "SUCCESS",
        "test",
        "feature/pr",
        3,
    )
    assert reported["tasks"] == {"prepare": "SUCCESS"}
    # the follower re-schedules itself instead of sleeping: every poll is its own short task
    polls = logged(worker, "task.done", task="follow_run")
    assert polls and all(entry.get("task") == "follow_run" for entry in polls)


@pytest.mark.parametrize(
    "fault, event",
    [
        ("POST:/api/2.2/jobs/create=delay4:1", "push"),
        ("POST:/api/2.2/jobs/run-now=delay4:1", "pull_request"),
    ],
)
def test_worker_killed_mid_call_leaves_exactly_one_job_and_one_run(stack, signer, fault, event):
    repo, start, services, tmp = stack
    ws, web, env = start(faults=[fault], test_on_push=event == "push")
    first = start_worker(tmp, env, concurrency=1, name="worker-a")
    services.append(first)
    client = workspace_client(ws.url)
    sha = branch(repo, "feature/crash")
    if event == "push":
        push(signer, web, "feature/crash", sha, "crash-1")
    else:
        pr = {
            "action": "opened",
            "number": 4,
            "repository": REPO,
            "pull_request": {
                "number": 4,
                "user": {"login": "alice"},
                "head": {"ref": "feature/crash", "sha": sha, "repo": REPO},
                "base": {"ref": "main", "repo": REPO},
            },
        }
        data, headers = signer.github("pull_request", pr, delivery="crash-1")
        post(web.url + "/webhooks/github", data, headers)
    task = "sync_branch_jobs" if event == "push" else "start_run"
    wait_until(lambda: logged(first, "task.started", task=task), timeout=30)
    time.sleep(1.0)  # inside the slow Databricks call
    first.kill()  # SIGKILL: no ack, no clean-up
    # kombu hands unacked messages back once they are older than the visibility timeout (3 s here),
    # checking at worker start and then only every ~100 s: start the new worker after that.
    time.sleep(4)
    services.append(second := start_worker(tmp, env, concurrency=1, name="worker-b"))
    wait_until(lambda: logged(second, "task.done", task=task), timeout=120)
    time.sleep(1.0)
    if event == "push":  # the push's job sync and its run of `test` both needed the job: made once
        assert names(client) == ["mlops-bot/acme/tiny-ml/feature/crash/test"]
    else:
        [job] = [j for j in client.jobs.list() if j.settings.name.endswith("/feature/crash/test")]
        assert len(list(client.jobs.list_runs(job_id=job.job_id))) == 1


def test_rerequested_check_run_runs_its_workflow_again(stack, signer):
    repo, start, services, tmp = stack
    ws, web, env = start()
    services.append(worker := start_worker(tmp, env, concurrency=2))
    sha = branch(repo, "feature/check")
    body = {
        "action": "rerequested",
        "repository": REPO,
        "sender": {"login": "alice"},
        "check_run": {
            "id": 9,
            "name": "mlops-bot/train",
            "head_sha": sha,
            "check_suite": {"head_branch": "feature/check"},
            "pull_requests": [],
        },
    }
    data, headers = signer.github("check_run", body, delivery="check-1")
    assert post(web.url + "/webhooks/github", data, headers)[0] == 202
    reports = wait_until(lambda: logged(worker, "run.reported", workflow="train"), timeout=60)
    assert len({r["run_id"] for r in reports}) == 1  # reported again at most, after a redelivery: one run
    reported = reports[0]
    assert (reported["result"], reported["branch"]) == ("SUCCESS", "feature/check")
