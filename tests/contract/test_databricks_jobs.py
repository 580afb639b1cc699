"""Every job the bot creates is built from databricks-sdk's dataclasses and accepted by the strict sandbox
workspace, and a bent job is refused: the check can fail.

Jobs of every workflow of config.toml, examples/demo.config.toml and the tests' config
(devstack.mlrepo.config_text), in each code source mode (git, repos) and pin (commit, branch), with
each kind of compute (as configured, serverless, job clusters, an existing cluster), are created and
reset through the bot's own gateway (`workers.gateways.workspace.Workspace`, the real SDK client).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from string import Template

import pytest
from databricks.sdk.service.jobs import JobSettings

from core.config import Settings, parse_config
from devstack import principals
from devstack.mlrepo import config_text
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import service_fixture
from workers.errors import Permanent
from workers.gateways.workspace import Workspace
from workers.jobs.spec import job_settings

ROOT = Path(__file__).resolve().parents[2]
TOKEN_ENV = "CONTRACT_DATABRICKS_TOKEN"
SHA = "0123456789abcdef0123456789abcdef01234567"
KINDS = ("as-configured", "serverless", "job_clusters", "existing_cluster")
MODES = [("git", "commit"), ("git", "branch"), ("repos", "commit"), ("repos", "branch")]
DEMO_URLS = dict(WEB_URL="http://w", FORGE_URL="http://f", MLFLOW_URL="http://m", SLACK_URL="http://s")


def config_data(name: str) -> dict:
    if name == "config.toml":
        return tomllib.loads((ROOT / "config.toml").read_text())
    if name == "demo.config.toml":
        template = Template((ROOT / "examples" / "demo.config.toml").read_text())
        return tomllib.loads(template.substitute(DEMO_URLS, WORKSPACE_URL="http://ws"))
    return tomllib.loads(config_text("http://ws", "/tmp/tiny-ml"))


def with_compute(workflow: dict, kind: str) -> dict:
    """The workflow moved onto one kind of compute, its libraries kept the way that kind takes them."""
    if kind == "as-configured":
        return workflow
    wf = copy.deepcopy(workflow)
    libraries = wf.pop("libraries", [])
    for task in wf["tasks"]:
        libraries += task.pop("libraries", [])
        task.pop("cluster", None)
        task.pop("environment", None)
    for key in ("job_clusters", "environments", "existing_cluster_id"):
        wf.pop(key, None)
    wf["compute"] = kind
    if kind == "serverless":
        deps = [lib["pypi"] for lib in libraries if "pypi" in lib]
        wf["environments"] = {"default": {"environment_version": "4", "dependencies": deps}}
        return wf
    wf["libraries"] = libraries
    if kind == "job_clusters":
        cluster = {"node_type_id": "Standard_DS3_v2", "autoscale": {"min_workers": 1, "max_workers": 2}}
        wf["job_clusters"] = {"main": {**cluster, "data_security_mode": "SINGLE_USER", "runtime_engine": "PHOTON"}}
    else:
        wf["existing_cluster_id"] = "0123-456789-contract"
    return wf


def settings_for(name: str, kind: str, url: str) -> Settings:
    """The config pointed at the sandbox (token sign-in, its run_as kept), every workflow on `kind`."""
    data = config_data(name)
    for env in data["environments"].values():
        run_as = env.get("run_as_service_principal")
        env.clear()
        env.update(host=url, token_env=TOKEN_ENV, retry_timeout_seconds=10)
        if run_as:
            env["run_as_service_principal"] = run_as
    data["workflows"] = {n: with_compute(wf, kind) for n, wf in data["workflows"].items()}
    return parse_config(data, name)


# The configs' run_as principals are the demo's: the workspace refuses a run_as naming nobody it knows
sandbox = service_fixture(start_workspace, "contract-ws", service_principals=principals.TOKENS)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, WORKSPACE_TOKEN)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("config", ["config.toml", "demo.config.toml", "tests (mlrepo.config_text)"])
def test_every_job_the_bot_creates_is_accepted(sandbox, token, config, kind):
    settings = settings_for(config, kind, sandbox.url)
    workspace = Workspace("dev", settings.environments["dev"])
    created = 0
    for repo in settings.repos:
        for code_source, pin in MODES:
            variant = repo.model_copy(update={"code_source": code_source, "pin": pin})
            for workflow in settings.repo_workflows(variant):
                body = job_settings(settings, variant, "feature/contract", workflow, SHA)
                sent = {k: v for k, v in body.items() if k != "access_control_list"}
                assert JobSettings.from_dict(sent).as_dict() == sent  # the SDK's dataclasses, nothing else
                job_id = workspace.create_job(body)
                workspace.reset_job(job_id, body)
                stored = workspace.client.jobs.get(job_id).settings
                assert stored.tasks == JobSettings.from_dict(body).tasks  # kept as sent, nothing dropped
                workspace.delete_job(job_id)
                created += 1
    assert created >= 4 * len(settings.workflows)


def bent(body: dict, how: str) -> dict:
    body = copy.deepcopy(body)
    task = body["tasks"][0]
    if how == "no compute":
        for field in ("job_cluster_key", "new_cluster", "existing_cluster_id", "environment_key"):
            task.pop(field, None)
        body.pop("environments", None)
    elif how == "serverless without environment":
        task.pop("environment_key")
    elif how == "key with a dot":
        task["task_key"] = "tests.unit"
    elif how == "26 tags":
        body["tags"].update({f"extra{i}": "x" for i in range(26)})
    elif how == "run_as nobody knows":
        body["run_as"] = {"service_principal_name": "00000000-0000-4000-8000-00000000dead"}
    elif how.startswith("schedule"):
        schedule = {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC", "pause_status": "PAUSED"}
        bad_field = {
            "schedule, 5 fields": ("quartz_cron_expression", "0 3 * * *"),
            "schedule, no zone": ("timezone_id", None),
        }
        key, value = bad_field[how]
        body["schedule"] = {k: v for k, v in {**schedule, key: value}.items() if v is not None}
    return body


@pytest.mark.parametrize(
    "how, refusal",
    [
        ("no compute", "One of job_cluster_key, new_cluster, or existing_cluster_id must be specified"),
        ("serverless without environment", "an environment is required for spark_python_task"),
        ("key with a dot", "Invalid task_key"),
        ("26 tags", "at most 25 tags"),
        ("run_as nobody knows", r"Principal: ServicePrincipalName\(00000000-0000-4000-8000-00000000dead\) does not"),
        ("schedule, 5 fields", "invalid Quartz cron expression"),
        ("schedule, no zone", "invalid timezone id"),
    ],
)
def test_a_bent_job_is_refused(sandbox, token, how, refusal):
    settings = settings_for("config.toml", "as-configured", sandbox.url)
    body = job_settings(settings, settings.repo("acme/churn-model"), "feature/bent", "test", SHA)
    workspace = Workspace("dev", settings.environments["dev"])
    with pytest.raises(Permanent, match=refusal):
        workspace.create_job(bent(body, how))


def test_job_permissions_reach_the_workspace_at_create_and_reset(sandbox, token):
    """CAN_VIEW for the mapped people and the view group, CAN_MANAGE_RUN only for `manage_run`;
    jobs/reset takes no permissions, so the gateway grants them after it (PATCH: the owner stays)."""
    settings = settings_for("config.toml", "as-configured", sandbox.url)
    workspace = Workspace("dev", settings.environments["dev"])
    repo = settings.repo("acme/churn-model")
    job_id = workspace.create_job(job_settings(settings, repo, "feature/acl", "test", SHA))

    def levels() -> dict[str, str]:
        acl = workspace.client.jobs.get_permissions(str(job_id)).access_control_list
        return {(a.user_name or a.group_name): a.all_permissions[0].permission_level.value for a in acl}

    assert levels() == {
        "sandbox-user@example.com": "IS_OWNER",
        "alice@acme.com": "CAN_VIEW",
        "bob@acme.com": "CAN_MANAGE_RUN",
        "carol@acme.com": "CAN_VIEW",
        "ml-engineers": "CAN_VIEW",
    }
    users = {**settings.databricks.users, "dave": "dave@acme.com"}
    more = settings.model_copy(update={"databricks": settings.databricks.model_copy(update={"users": users})})
    workspace.reset_job(job_id, job_settings(more, repo, "feature/acl", "test", SHA))
    assert levels()["dave@acme.com"] == "CAN_VIEW" and levels()["sandbox-user@example.com"] == "IS_OWNER"


def test_a_scheduled_job_is_accepted_and_kept(sandbox, token):
    """The default branch's job carries the workflow's schedule (paused in dev); Databricks keeps it as sent."""
    data = config_data("config.toml")
    data["workflows"]["validate"]["schedule"] = {"quartz_cron": "0 0 3 * * ?", "timezone": "Europe/Amsterdam"}
    for env in data["environments"].values():
        env.clear()
        env.update(host=sandbox.url, token_env=TOKEN_ENV, retry_timeout_seconds=10)
    settings = parse_config(data)
    repo = settings.repo("acme/churn-model")
    for environment, status in (("dev", "PAUSED"), ("prod", "UNPAUSED")):
        workspace = Workspace(environment, settings.environments[environment])
        body = job_settings(settings, repo, "main", "validate", SHA, environment=environment)
        job_id = workspace.create_job(body)
        stored = workspace.client.jobs.get(job_id).settings.schedule
        assert (stored.quartz_cron_expression, stored.timezone_id, stored.pause_status.value) == (
            "0 0 3 * * ?",
            "Europe/Amsterdam",
            status,
        )
        workspace.delete_job(job_id)
