"""Per-branch job naming, tags and settings: pure functions."""

import pytest
from databricks.sdk.service.jobs import JobAccessControlRequest, JobSettings
from hypothesis import given
from hypothesis import strategies as st

from core.compute import PARAMETER_NAME
from workers.jobs.spec import (
    FINGERPRINT_TAG,
    JOB_PARAMETERS,
    MAX_TAG_VALUE,
    idempotency_token,
    job_name,
    job_settings,
    job_tags,
    parse_job_name,
    repo_path,
    run_parameters,
    tag_value,
)

# What `git check-ref-format --branch` allows, roughly: no control chars, space, ~^:?*[\\, no "..", no "@{".
branch_char = st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters=" ~^:?*[\\\x7f")
git_branches = st.text(branch_char, min_size=1, max_size=120).filter(
    lambda b: (
        ".." not in b
        and "@{" not in b
        and "//" not in b
        and not b.startswith(("/", ".", "-"))
        and not b.endswith(("/", ".", ".lock"))
        and b != "@"
        and all(not p.startswith(".") for p in b.split("/"))
        and len(b.encode()) <= 255
    )
)


@given(git_branches)
def test_any_git_branch_round_trips_through_the_job_name(branch):
    name = job_name("mlops-bot", "acme/churn-model", branch, "train")
    assert parse_job_name("mlops-bot", name) == ("acme/churn-model", branch, "train")


@given(git_branches, git_branches)
def test_distinct_branches_give_distinct_names_and_repo_paths(a, b):
    from core.config import Repo

    if a != b:
        assert job_name("p", "o/r", a, "train") != job_name("p", "o/r", b, "train")
        repo = Repo(name="o/r")
        assert repo_path(repo, a) != repo_path(repo, b)


@given(st.text(max_size=400))
def test_tag_values_follow_databricks_rules(value):
    tag = tag_value(value)
    assert len(tag) <= MAX_TAG_VALUE
    assert all(c.isascii() and (c.isalnum() or c in " +-=._:/@") for c in tag)


def test_tags_mark_the_job_as_managed():
    tags = job_tags("acme/churn-model", "feature/ünïcode", "train", "abc123")
    assert tags == {
        "mlops-bot": "managed",
        "repo": "acme/churn-model",
        "branch": "feature/unicode",
        "workflow": "train",
        "sha": "abc123",
    }


def test_parse_job_name_rejects_foreign_jobs():
    assert parse_job_name("mlops-bot", "someone-elses-job") is None
    assert parse_job_name("mlops-bot", "mlops-bot/too/short") is None


def test_settings_from_config_are_a_valid_multi_task_job(settings):
    repo = settings.repo("acme/churn-model")
    body = job_settings(settings, repo, "feature/x", "train", "a" * 40)
    parsed = JobSettings.from_dict(body)  # the SDK's own dataclass accepts it
    assert parsed.name == "mlops-bot/acme/churn-model/feature/x/train"
    assert [t.task_key for t in parsed.tasks] == ["prepare", "train", "evaluate", "register"]
    assert parsed.tasks[1].depends_on[0].task_key == "prepare"
    assert parsed.tasks[0].job_cluster_key == "small" and parsed.job_clusters[0].new_cluster.num_workers == 1
    assert parsed.tasks[0].spark_python_task.parameters == ["--dataset", "{{job.parameters.dataset}}"]
    register = parsed.tasks[3].spark_python_task.parameters
    assert register[register.index("--branch") + 1] == "feature/x"  # literal, the job is this branch's
    assert register[register.index("--commit") + 1] == "{{job.parameters.sha}}"
    assert parsed.git_source.git_commit == "a" * 40 and parsed.git_source.git_branch is None
    assert parsed.tasks[1].libraries[0].pypi.package == "scikit-learn>=1.4"
    assert {p.name: p.default for p in parsed.parameters} == {
        "sha": "a" * 40,
        "dataset": "toy",
        "pr": "",
        "params": "",
        "requested_by": "",
        "model": "",  # the registry the run writes: each run names its stage's (a PR's: the dev registry)
    }
    assert parsed.max_concurrent_runs == 1 and parsed.timeout_seconds == 3600


def test_fingerprint_changes_with_settings_not_with_nothing(settings):
    repo = settings.repo("acme/churn-model")
    a = job_settings(settings, repo, "b", "train", "1" * 40)
    assert a == job_settings(settings, repo, "b", "train", "1" * 40)
    assert a["tags"][FINGERPRINT_TAG] != job_settings(settings, repo, "b", "train", "2" * 40)["tags"][FINGERPRINT_TAG]


def test_repos_code_source_points_tasks_at_the_branch_repo(settings):
    repo = settings.repo("acme/churn-model").model_copy(update={"code_source": "repos"})
    body = job_settings(settings, repo, "feature/x", "test", "a" * 40)
    task = body["tasks"][0]["spark_python_task"]
    assert task["source"] == "WORKSPACE"
    assert task["python_file"].startswith("/Repos/mlops-bot/churn-model-feature-x-")
    assert "git_source" not in body


def test_run_parameters_keep_only_defined_ones_and_skip_empty():
    body = {"parameters": [{"name": "sha"}, {"name": "dataset"}, {"name": "pr"}]}
    assert run_parameters(body, sha="s", dataset="", pr=7, model="m") == {"sha": "s", "pr": "7"}


def test_idempotency_token_is_stable_and_short():
    assert idempotency_token("d-1", 0) == idempotency_token("d-1", 0) != idempotency_token("d-1", 1)
    assert len(idempotency_token("x" * 500)) <= 64


def test_every_job_is_the_sdks_dataclasses_as_dict(settings):
    """Built from `databricks.sdk.service.jobs` dataclasses: a field the API does not know cannot be sent."""
    repo = settings.repo("acme/churn-model")
    for workflow in settings.workflows:
        body = job_settings(settings, repo, "feature/x", workflow, "a" * 40)
        settings_only = {k: v for k, v in body.items() if k != "access_control_list"}
        assert JobSettings.from_dict(settings_only).as_dict() == settings_only
        acl = [JobAccessControlRequest.from_dict(a).as_dict() for a in body["access_control_list"]]
        assert acl == body["access_control_list"]


def test_job_parameter_names_follow_the_api():
    """JobParameterDefinition.name: "May only contain alphanumeric characters, _, -, and ." """
    assert all(PARAMETER_NAME.match(p) for p in JOB_PARAMETERS)


def test_branch_pin_and_repos_source(settings):
    repo = settings.repo("acme/churn-model").model_copy(update={"pin": "branch"})
    body = job_settings(settings, repo, "feature/x", "test", "a" * 40)
    assert body["git_source"] == {
        "git_url": "https://github.com/acme/churn-model.git",
        "git_provider": "gitHub",
        "git_branch": "feature/x",
    }


def test_a_branch_or_value_holding_a_dynamic_value_reference_is_refused(settings):
    """Databricks resolves `{{…}}` in task parameters ("dynamic value references", docs.databricks.com/jobs/
    dynamic-value-references): a branch `feat/{{job.id}}` would arrive as the job's id, not as written."""
    from workers.errors import Permanent
    from workers.jobs.spec import job_settings, run_parameters

    repo = settings.repo("acme/churn-model")
    with pytest.raises(Permanent, match="dynamic value reference"):
        job_settings(settings, repo, "feat/{{job.id}}", "train", "a" * 40)
    body = job_settings(settings, repo, "feat/x", "train", "a" * 40)
    with pytest.raises(Permanent, match="dynamic value reference"):
        run_parameters(body, params="n_estimators={{job.id}}")
