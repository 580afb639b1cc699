"""Issue #18, "a feature branch got a prod job": branch jobs exist only where a branch's code may run.

The attack: every push made a per-branch job of every workflow of the repository. The demo's feature branch
got four — `train`, `test`, `validate` and `deploy` — and `deploy` lives in prod: it runs as the prod principal,
at the branch's commit, and everyone in `[databricks.users]` gets CAN_MANAGE_RUN on it, so unreviewed code can
be run as prod from the Databricks UI. Now a branch other than the default one has jobs only of the workflows
that run where pull requests train (the PR stage's environment, dev) and never of one only the release train
runs (`validate`, `deploy`); the release train still starts those from the default branch; the janitor removes
the ones made before, saying why.

On the real stack: the sandbox workspace over HTTP, the web process and a worker started as the demo runs them,
configured by examples/demo.config.toml; pushes are signed webhooks, the janitor is the worker's own task.
"""

from __future__ import annotations

import tomllib
from string import Template
from typing import Any

import pytest
from databricks.sdk.service.jobs import JobSettings

from core import vocabulary as V
from core.celery_app import create_celery
from core.config import load_config, parse_config
from devstack import ROOT, principals
from devstack.bot import start_web, start_worker
from devstack.mlrepo import config_text
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from devstack.waiting import wait_until
from tests.conftest import SECRETS
from tests.integration.test_branch_jobs import names
from tests.integration.test_stack_jobs import logged
from tests.support.stacks import workspace_client as sdk
from tests.support.webhooks import post
from workers.core.state import State
from workers.errors import Permanent
from workers.gateways.workspace import Workspace
from workers.jobs import branch_jobs, janitor
from workers.jobs.spec import branch_refusal, job_settings

REPO = {"full_name": "acme/churn-model", "name": "churn-model", "owner": {"login": "acme"}}
PREFIX = "mlops-bot/acme/churn-model"
FEATURE = "feature/better-features"
SHA = "b" * 40
UNUSED = "http://127.0.0.1:9"  # forge, MLflow, Slack: nothing here reaches them (no token is given for them)


@pytest.fixture(scope="module")
def stack(redis_server, tmp_path_factory):
    """The demo's configuration on the sandbox workspace, the web process and one worker."""
    tmp = tmp_path_factory.mktemp("scope")
    services = [ws := start_workspace(tmp, service_principals=principals.TOKENS)]  # the demo's run_as principals
    config = tmp / "config.toml"
    template = Template((ROOT / "examples" / "demo.config.toml").read_text())
    config.write_text(
        template.substitute(WEB_URL=UNUSED, FORGE_URL=UNUSED, MLFLOW_URL=UNUSED, SLACK_URL=UNUSED, WORKSPACE_URL=ws.url)
    )
    env = {
        **SECRETS,
        "REDIS_URL": redis_server.url,
        "MLOPS_BOT_CONFIG": str(config),
        "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
    }
    try:
        services.append(web := start_web(tmp, env))
        services.append(worker := start_worker(tmp, env, concurrency=1))
        yield ws, web, worker, load_config(config)
    finally:
        for service in reversed(services):
            service.stop()


@pytest.fixture
def world(stack, redis_client, monkeypatch):
    """The stack, an empty workspace, and the bot's own gateways and state for what the test does itself."""
    ws, web, worker, settings = stack
    monkeypatch.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)
    client = sdk(ws.url)
    for job in client.jobs.list():
        client.jobs.delete(job.job_id)
    workspaces = lambda env: Workspace(env, settings.environments[env])  # noqa: E731
    return web, worker, settings, client, workspaces, State(redis_client)


def push(signer, web, branch: str, delivery: str) -> int:
    body = {"ref": f"refs/heads/{branch}", "before": "0" * 40, "after": SHA, "created": True, "deleted": False}
    data, headers = signer.github("push", body | {"repository": REPO, "pusher": {"name": "alice"}}, delivery=delivery)
    return post(web.url + "/webhooks/github", data, headers)[0]


def test_a_feature_branch_gets_only_the_pr_stage_jobs_and_only_when_they_run(world, signer):
    web, worker, settings, client, workspaces, state = world
    assert push(signer, web, FEATURE, "scope-push-1") == 202
    wait_until(lambda: logged(worker, "branch.synced", delivery_id="scope-push-1"), timeout=60)
    # before issue #18: train, test, validate and deploy; before issue #20: train and test, whether they ran or not
    assert names(client) == []  # the demo's workflows start on a pull request or a command, not on a push
    [synced] = logged(worker, "branch.synced", delivery_id="scope-push-1")
    assert synced["jobs"] == {f"{PREFIX}/{FEATURE}/train": "absent", f"{PREFIX}/{FEATURE}/test": "absent"}
    skipped = {e["workflow"]: e["why"] for e in logged(worker, "branch.job_skipped", branch=FEATURE)}
    assert skipped == {
        "validate": "`validate` runs only from main, started by the release train: "
        "a branch's code under review never runs as a release stage",
        "deploy": "`deploy` runs only from main, started by the release train: "
        "a branch's code under review never runs as a release stage",
    }
    started = branch_jobs.start_run(  # a PR's /train, as workers/pr/chatops.py starts it: its job is made now
        workspaces, state, settings, repo="acme/churn-model", branch=FEATURE, sha=SHA, workflow="train",
        trigger="scope:train", pr=7,
    )  # fmt: skip
    assert names(client) == [f"{PREFIX}/{FEATURE}/train"]  # in dev, the PR stage's environment: no `@`
    client.jobs.cancel_run(started.run_id)


def test_a_run_of_a_release_workflow_on_a_branch_is_refused_saying_why(world):
    """What a push workflow, a check's re-run or any later path could ask: the run is refused, no job is made."""
    _, _, settings, client, workspaces, state = world
    for workflow, environment in (("deploy", "prod"), ("validate", "staging"), ("deploy", "")):
        with pytest.raises(Permanent, match=f"`{workflow}` runs only from main, started by the release train"):
            branch_jobs.start_run(
                workspaces, state, settings, repo="acme/churn-model", branch=FEATURE, sha=SHA, workflow=workflow,
                trigger=f"scope:{workflow}:{environment}", environment=environment,
            )  # fmt: skip
    assert names(client) == []


def test_the_release_train_still_validates_and_deploys_from_the_default_branch(world):
    """The release train's own calls (workers/release/train.py: validation in staging; workers/release/promotion.py:
    deploy in prod), as it makes them: on the default branch at the merge commit, in the stage's environment. The
    whole train, merge to prod deploy, is the demo's story (tests/e2e/test_loop.py)."""
    _, _, settings, client, workspaces, state = world
    common: dict[str, Any] = dict(
        repo="acme/churn-model", branch="main", sha=SHA, pr=7, requested_by=V.BOT, supersede=False
    )
    validation = branch_jobs.start_run(
        workspaces, state, settings, workflow="validate", trigger="d-merge:validate", environment="staging",
        model="staging.ml.churn", version="3", dataset="full", **common,
    )  # fmt: skip
    deploy = branch_jobs.start_run(
        workspaces, state, settings, workflow="deploy", trigger="d-approve:deploy", environment="prod",
        model="prod.ml.churn", version="2", **common,
    )  # fmt: skip
    assert (validation.environment, deploy.environment) == ("staging", "prod")
    assert names(client) == [f"{PREFIX}/main/deploy@prod", f"{PREFIX}/main/validate@staging"]
    for started in (validation, deploy):
        client.jobs.cancel_run(started.run_id)


def test_the_janitor_removes_a_branch_deploy_job_made_before_saying_why(world, redis_server):
    _, worker, settings, client, workspaces, state = world
    repo = settings.repo("acme/churn-model")
    assert repo is not None
    # what every push made before issue #18: the branch's jobs of every workflow, in each workflow's environment
    for workflow in ("train", "test", "validate", "deploy"):
        client.jobs.create(**_as_sdk(job_settings(settings, repo, "feature/old", workflow, SHA)))
    client.jobs.create(**_as_sdk(job_settings(settings, repo, "main", "deploy", SHA)))
    prod = janitor.stale_jobs(workspaces("prod"), state, settings, lambda r, b: None)
    whys = {name: why for _, name, why, _ in prod}
    assert whys == {
        f"{PREFIX}/feature/old/{w}": f"`{w}` runs only from main, started by the release train: "
        "a branch's code under review never runs as a release stage"
        for w in ("validate", "deploy")
    }
    create_celery(redis_server.url).send_task(V.CLEAN_UP_STALE_JOBS)
    wait_until(lambda: logged(worker, "janitor.done"), timeout=60)
    assert names(client) == [f"{PREFIX}/feature/old/test", f"{PREFIX}/feature/old/train", f"{PREFIX}/main/deploy"]


def _as_sdk(body: dict) -> dict:
    """jobs/create's body as the SDK's keyword arguments."""
    settings = JobSettings.from_dict(body)
    fields = {k: getattr(settings, k) for k in body if k != "access_control_list" and hasattr(settings, k)}
    return fields


# --- the rule, as a table (pure: spec.branch_refusal) --------------------------------------------------------


def _tiny_ml(environments: str = "dev", workflow_environment: str = "dev"):
    """The tests' repository without models (devstack.mlrepo.config_text), its `test` workflow in another environment."""
    data = tomllib.loads(config_text("http://ws", "/tmp/tiny-ml"))
    for env in environments.split(","):
        data["environments"].setdefault(env, dict(data["environments"]["dev"]))
    data["workflows"]["test"]["environment"] = workflow_environment
    return parse_config(data)


@pytest.mark.parametrize(
    "config, branch, workflow, refused",
    [
        ("config.toml", "feature/x", "train", ""),
        ("config.toml", "feature/x", "test", ""),
        ("config.toml", "feature/x", "validate", "runs only from main"),  # in dev, but only the train runs it
        ("config.toml", "pull/7", "deploy", "runs only from main"),  # a fork's pull request
        ("config.toml", "main", "deploy", ""),
        ("config.toml", "main", "validate", ""),
        ("no models, dev only", "feature/x", "test", ""),
        ("no models, test in prod", "feature/x", "test", "runs in prod, where only main's code runs"),
        ("no models, test in prod", "main", "test", ""),
        ("no models, test in ci", "feature/x", "test", ""),
    ],
)
def test_which_workflows_a_branch_may_have_jobs_of(config, branch, workflow, refused):
    settings = {
        "config.toml": lambda: load_config(ROOT / "config.toml"),
        "no models, dev only": _tiny_ml,
        "no models, test in prod": lambda: _tiny_ml("dev,prod", "prod"),
        "no models, test in ci": lambda: _tiny_ml("dev,ci", "ci"),
    }[config]()
    repo = settings.repo("acme/churn-model") or settings.repo("acme/tiny-ml")
    assert repo is not None
    why = branch_refusal(settings, repo, branch, workflow)
    assert (refused in why) if refused else why == "", why
