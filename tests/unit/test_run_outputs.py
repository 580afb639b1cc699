"""Runs on the shared fakes: what a task said (by task type), fork runs, lost creates and lost runs."""

from dataclasses import replace

import pytest

from core.commands import Command
from core.vocabulary import FAILED
from tests.fakes import pull, world
from workers.core.state import State
from workers.errors import NotFound
from workers.jobs import branch_jobs
from workers.pr import chatops, runs
from workers.release import train as release

MODEL, REPO, PR, COMMENT = "churn-model", "acme/churn-model", 7, 555
STAGING, PROD = "churn-model-staging", "churn-model"  # the registries of churn-model's staging and prod stages
GOOD = (
    '{"metrics": {"accuracy": 0.9, "roc_auc": 0.8}, "champion_metrics": {"accuracy": 0.85, "roc_auc": 0.7}, '
    '"champion_version": "1", "passed": true}'
)


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.forge.roles.update(alice="write", bob="admin")
    w.registry.add_version(PROD, "1", "r1", {"accuracy": 0.85, "roc_auc": 0.7})
    w.registry.set_alias(PROD, "champion", "1")
    w.registry.add_version(STAGING, "2", "r2", {"accuracy": 0.9}, repo=REPO, commit="c" * 40, triggered_by="bob")
    return w


def with_repo(settings, **changes):
    repo = settings.repo(REPO).model_copy(update=changes)
    return settings.model_copy(update={"repos": [repo]})


def validate_in_a_notebook(w, exit_value: str, deps=None) -> str:
    """The validate run is a notebook that exits with `exit_value`; returns the version's validation status."""
    deps = deps or w.deps
    release.on_model_event(deps, release.ModelEvent("mlflow", "version_created", STAGING, "2"), "d-1")
    [(environment, run_id, _)] = w.scheduler.follows
    deps.workspaces(environment).finish(run_id, "SUCCESS", notebook_result=exit_value)
    runs.follow(deps, environment, run_id)
    return w.registry.tags[(STAGING, "2")]["validation_status"]


def test_a_notebooks_metrics_come_from_its_exit_value(w):
    # RunOutput.logs "is not supported for the notebook_task": the metrics are in notebook_output.result
    assert validate_in_a_notebook(w, GOOD) == "passed"


def test_a_notebook_that_says_it_failed_fails_validation_even_without_gates(w):
    settings = w.deps.settings
    models = {**settings.models, MODEL: settings.models[MODEL].model_copy(update={"gates": []})}
    deps = replace(w.deps, settings=settings.model_copy(update={"models": models}))
    assert validate_in_a_notebook(w, '{"passed": false, "metrics": {"accuracy": 0.9}}', deps) == "failed"


@pytest.mark.parametrize(
    "kind, logs, result, said",
    [
        ("spark_python_task", "printed\n{}", "", "printed\n{}"),
        ("python_wheel_task", "wheel", "", "wheel"),
        ("notebook_task", "", '{"metrics": {}}', '{"metrics": {}}'),
        ("", "logs", "value", "logs\nvalue"),
    ],
)
def test_what_a_task_said_is_read_by_its_type(kind, logs, result, said):
    from workers.gateways import TaskOutput
    from workers.jobs.results import _task_said

    assert _task_said(TaskOutput(logs=logs, result=result), kind) == said
    assert _task_said(TaskOutput(logs=logs, result=result, error="boom"), kind) == said + "\nboom"


@pytest.mark.parametrize("code_source", ["git", "repos"])
def test_a_forks_run_pins_its_head_commit_and_runs_from_git(w, code_source):
    settings = with_repo(w.deps.settings, pin="branch", code_source=code_source)
    fork_url = "https://github.com/someone/churn-model.git"
    started = branch_jobs.start_run(
        w.deps.workspaces,
        w.deps.state,
        settings,
        repo=REPO,
        branch="pull/7",
        sha="f" * 40,
        workflow="train",
        trigger="fork:0",
        pr=7,
        git_url=fork_url,
    )
    job = w.workspace.jobs[started.job_id]
    assert job["git_source"] == {"git_url": fork_url, "git_provider": "gitHub", "git_commit": "f" * 40}
    assert all(not t.get("spark_python_task", {}).get("python_file", "").startswith("/Repos") for t in job["tasks"])
    assert w.workspace.repos == {}  # no Git folder for `pull/7`: it is no branch


def test_a_same_repo_branch_still_follows_pin_and_code_source(w):
    settings = with_repo(w.deps.settings, pin="branch", code_source="repos")
    branch_jobs.start_run(
        w.deps.workspaces,
        w.deps.state,
        settings,
        repo=REPO,
        branch="feature/x",
        sha="a" * 40,
        workflow="train",
        trigger="t:0",
    )
    assert list(w.workspace.repos.values()) == ["feature/x"]
    assert all("git_source" not in job for job in w.workspace.jobs.values())


def test_a_create_sent_twice_leaves_one_job(w):
    w.workspace.lost_creates = 1
    repo = w.deps.settings.repo(REPO)
    made = branch_jobs.upsert_job(w.workspace, w.deps.state, w.deps.settings, repo, "lost", "train", "a" * 40)
    assert list(w.workspace.jobs) == [made.job_id] and made.outcome == "created"


def test_a_run_that_vanished_is_told_on_the_pr(w):
    chatops.run_command(
        chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-lost", 0), Command("train", line="/train")
    )
    run_id = w.scheduler.follows[-1][1]
    del w.workspace.runs[run_id]  # deleted in the workspace: runs/get answers "does not exist"
    with pytest.raises(NotFound):
        runs.follow(w.deps, "dev", run_id)
    assert f"could not follow run {run_id}" in w.forge.comment("report", "train")
    assert w.forge.statuses[-1]["state"] == "error"
    assert w.deps.state.run("dev", run_id).state in FAILED  # `/retest` may start it again


def test_a_job_written_in_prod_runs_as_prods_principal(w):
    # `/deploy prod` writes the deploy job into the prod workspace: it must run as prod's principal,
    # not as the workflow's default environment's (staging)
    settings = w.deps.settings
    repo = settings.repo(REPO)
    prod = w.deps.workspaces("prod")
    upserted = branch_jobs.upsert_job(prod, w.deps.state, settings, repo, "main", "deploy", "a" * 40)
    principal = prod.jobs[upserted.job_id]["run_as"]["service_principal_name"]
    assert principal == settings.environments["prod"].run_as_service_principal
    assert principal != settings.environments["staging"].run_as_service_principal
