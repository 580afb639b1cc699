"""Compute and the Jobs API's limits in config: every task gets compute, and what Databricks refuses is a
config error naming the key. The SDK's names copied into core/compute.py are held equal to the SDK's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from databricks.sdk.service import compute
from databricks.sdk.service.jobs import JobSettings

from core.compute import BOT_JOB_TAGS, CLUSTER_SPEC_FIELDS, DataSecurityMode
from core.config import ConfigError, load_config, parse_config
from tests.support.configs import edited, example
from workers.jobs.spec import FINGERPRINT_TAG, job_settings, job_tags

ROOT = Path(__file__).resolve().parents[2]
COMPUTE_FIELDS = ("job_cluster_key", "new_cluster", "existing_cluster_id", "environment_key")


def errors(data: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "config.toml")
    return str(exc.value)


# --- the SDK's names, copied because the web process must not import the SDK --------------------


def test_cluster_spec_fields_are_the_sdks():
    assert CLUSTER_SPEC_FIELDS == {f.name for f in dataclasses.fields(compute.ClusterSpec)}


def test_data_security_modes_are_the_sdks():
    assert set(DataSecurityMode.__args__) == {m.value for m in compute.DataSecurityMode}


def test_the_bot_tags_config_counts_are_the_ones_the_jobs_carry():
    assert set(job_tags("o/r", "b", "train", "s", fingerprint="f")) == set(BOT_JOB_TAGS)


# --- bug: the shipped config sent tasks with no compute -------------------------------------------


@pytest.mark.parametrize("workflow", ["train", "test", "validate", "deploy"])
def test_every_task_of_the_shipped_config_has_compute(settings, workflow):
    """Databricks refuses a task with none: "One of job_cluster_key, new_cluster, or
    existing_cluster_id must be specified"; Task.environment_key is "required for Python script,
    Python wheel and dbt tasks when using serverless compute"."""
    body = job_settings(settings, settings.repo("acme/churn-model"), "main", workflow, "a" * 40)
    for task in body["tasks"]:
        assert sum(bool(task.get(f)) for f in COMPUTE_FIELDS) == 1, task
    environments = {e["environment_key"] for e in body.get("environments", [])}
    clusters = {c["job_cluster_key"] for c in body.get("job_clusters", [])}
    for task in body["tasks"]:
        assert task.get("environment_key", next(iter(environments), None)) in environments | {None}
        assert task.get("job_cluster_key", next(iter(clusters), None)) in clusters | {None}


def test_serverless_is_the_shipped_default_with_a_versioned_environment(settings):
    body = job_settings(settings, settings.repo("acme/churn-model"), "main", "test", "a" * 40)
    [env] = JobSettings.from_dict(body).environments
    assert env.environment_key == "default" and env.spec.environment_version == "4"
    assert env.spec.dependencies and body["tasks"][0]["environment_key"] == "default"


# --- what Databricks refuses is refused when config is loaded, naming the key -----------------------

TRAIN, TEST = ["workflows", "train"], ["workflows", "test"]


@pytest.mark.parametrize(
    "path, value, message",
    [
        # REST reference: task_key "string [ 1 .. 100 ] characters ^[\w\-\_]+$"
        ([*TRAIN, "tasks", 0, "key"], "prepare.data", "workflows.train.tasks[0].key: use 1 to 100 letters"),
        ([*TRAIN, "tasks", 0, "key"], "p" * 101, "workflows.train.tasks[0].key: use 1 to 100 letters"),
        ([*TRAIN, "job_clusters"], {"small.one": {"node_type_id": "n", "num_workers": 1}}, "job cluster 'small.one'"),
        # JobSettings.max_concurrent_runs: "This value cannot exceed 1000."
        ([*TRAIN, "max_concurrent_runs"], 1001, "workflows.train.max_concurrent_runs: Input should be less than"),
        # JobSettings.tags: "A maximum of 25 tags can be added to the job." (the bot adds 6)
        ([*TRAIN, "tags"], {f"t{i}": "v" for i in range(20)}, "workflows.train.tags: at most 19 tags"),
        ([*TRAIN, "tags"], {"sha": "mine"}, "workflows.train.tags: tag 'sha' is the bot's own"),
        ([*TEST, "environments"], KeyError, "workflows.test: task 'tests' is a spark_python_task on serverless"),
        ([*TEST, "tasks", 0, "environment"], "gpu", "workflows.test: task 'tests' uses environment 'gpu'"),
        ([*TEST, "tasks", 0, "cluster"], "small", "names cluster 'small': set compute = \"job_clusters\""),
        ([*TEST, "libraries"], [{"pypi": "x"}], "serverless tasks take no `libraries`"),
        ([*TEST, "environments", "default", "environment_version"], "four", "write the version number"),
        ([*TEST, "environments", "default", "environment_version"], KeyError, "give `environment_version`"),
        ([*TEST, "environments", "default", "python"], "3.12", "environments.default.python: unknown key"),
        ([*TRAIN, "compute"], "serverless", 'need compute = "job_clusters"'),
        ([*TRAIN, "compute"], "gpu", "workflows.train.compute: Input should be"),
        ([*TRAIN, "compute"], "existing_cluster", "needs existing_cluster_id"),
        ([*TRAIN, "job_clusters"], {}, "needs at least one [job_clusters.<key>] table"),
        ([*TRAIN, "job_clusters", "small", "num_worker"], 2, "'num_worker' is not a new_cluster field"),
        ([*TRAIN, "job_clusters", "small", "autoscale"], {"min_workers": 2, "max_workers": 2}, "greater than"),
        ([*TRAIN, "job_clusters", "small", "autoscale"], {"min_workers": 1, "max_workers": 4}, "not both"),
        ([*TRAIN, "job_clusters", "small", "data_security_mode"], "SHARED", "data_security_mode: Input should be"),
        ([*TRAIN, "job_clusters", "small", "node_type_id"], KeyError, "give `node_type_id`, `instance_pool_id`"),
    ],
)
def test_what_databricks_refuses_is_a_config_error_naming_the_key(path, value, message):
    assert message in errors(edited(path, value))


def test_a_job_cluster_passes_any_cluster_spec_field_through(settings):
    data = example()
    data["workflows"]["train"]["job_clusters"] = {
        "pooled": {
            "instance_pool_id": "0101-pool",
            "policy_id": "ABC123",
            "autoscale": {"min_workers": 1, "max_workers": 8},
            "data_security_mode": "DATA_SECURITY_MODE_DEDICATED",
            "runtime_engine": "PHOTON",
            "azure_attributes": {"availability": "SPOT_WITH_FALLBACK_AZURE"},
        }
    }
    for task in data["workflows"]["train"]["tasks"]:
        task["cluster"] = "pooled"
    parsed = parse_config(data)
    body = job_settings(parsed, parsed.repo("acme/churn-model"), "main", "train", "a" * 40)
    [cluster] = JobSettings.from_dict(body).job_clusters
    spec = cluster.new_cluster
    assert spec.instance_pool_id == "0101-pool" and spec.policy_id == "ABC123" and spec.autoscale.max_workers == 8
    assert spec.data_security_mode == compute.DataSecurityMode.DATA_SECURITY_MODE_DEDICATED
    assert spec.runtime_engine == compute.RuntimeEngine.PHOTON
    assert spec.azure_attributes.availability == compute.AzureAvailability.SPOT_WITH_FALLBACK_AZURE
    assert spec.node_type_id is None and spec.num_workers is None
    assert {t["job_cluster_key"] for t in body["tasks"]} == {"pooled"}


def test_an_existing_cluster_workflow_puts_the_cluster_on_every_task():
    data = example()
    wf = data["workflows"]["train"]
    wf.update(compute="existing_cluster", existing_cluster_id="0123-456789-abcdefgh")
    del wf["job_clusters"]
    for task in wf["tasks"]:
        del task["cluster"]
    parsed = parse_config(data)
    body = job_settings(parsed, parsed.repo("acme/churn-model"), "main", "train", "a" * 40)
    assert {t["existing_cluster_id"] for t in body["tasks"]} == {"0123-456789-abcdefgh"}
    assert "job_clusters" not in body and body["tasks"][1]["libraries"][0]["pypi"]["package"] == "scikit-learn>=1.4"


def test_a_serverless_notebook_needs_no_environment():
    data = example()
    wf = data["workflows"]["validate"]
    del wf["environments"]
    for task in wf["tasks"]:  # score and judge
        task.update(type="notebook_task", file=f"notebooks/{task['key']}.py")
    parsed = parse_config(data)
    body = job_settings(parsed, parsed.repo("acme/churn-model"), "main", "validate", "a" * 40)
    assert not any(t.get(f) for t in body["tasks"] for f in COMPUTE_FIELDS) and "environments" not in body


def test_user_tags_join_the_bots_and_the_fingerprint(settings):
    body = job_settings(settings, settings.repo("acme/churn-model"), "main", "train", "a" * 40)
    assert body["tags"]["team"] == "churn" and FINGERPRINT_TAG in body["tags"] and len(body["tags"]) <= 25


def test_the_example_configs_load():
    assert load_config(ROOT / "config.toml").workflows["test"].compute == "serverless"
