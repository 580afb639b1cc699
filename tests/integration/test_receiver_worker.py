"""gunicorn receiver → private Redis → a real Celery worker, as the Procfile runs them."""

import json
import time
from pathlib import Path

import pytest

from devstack.bot import start_web, start_worker
from devstack.waiting import wait_until
from tests.conftest import ROOT, SECRETS, payload
from tests.support.webhooks import post


@pytest.fixture(scope="module")
def stack(redis_server, empty_redis, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stack")
    env = {**SECRETS, "REDIS_URL": redis_server.url, "MLOPS_BOT_CONFIG": str(ROOT / "config.toml")}
    web = start_web(workdir, env)
    worker = start_worker(workdir, env, concurrency=1)
    yield web, worker
    web.stop()
    worker.stop()


def worker_lines(worker) -> list[dict]:
    out = []
    for line in Path(worker.log_path).read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_train_comment_is_queued_run_by_the_worker_and_deduped(stack, signer):
    web, worker = stack
    body, headers = signer.github("issue_comment", payload("issue_comment_pr"), delivery="e2e-1")
    status, answer = post(web.url + "/webhooks/github", body, headers)
    assert status == 202 and answer["tasks"][0]["task"] == "run_command"
    task_id = answer["tasks"][0]["id"]

    def started():
        return [
            entry
            for entry in worker_lines(worker)
            if entry.get("event") == "task.started" and entry.get("task_id") == task_id
        ]

    [line] = wait_until(started)
    assert line["task"] == "run_command" and line["delivery_id"] == "e2e-1"

    status, answer = post(web.url + "/webhooks/github", body, headers)
    assert (status, answer["status"]) == (200, "duplicate")
    time.sleep(0.5)
    assert (
        len(
            [
                entry
                for entry in worker_lines(worker)
                if entry.get("event") == "task.started" and entry.get("delivery_id") == "e2e-1"
            ]
        )
        == 1
    )
