import argparse

from churn_model.lineage import add_lineage_arguments, databricks_context, default_workdir, lineage_from


def _args(argv):
    parser = argparse.ArgumentParser()
    add_lineage_arguments(parser)
    return parser.parse_args(argv)


def test_options_then_env_and_empty_values_dropped():
    args = _args(["--repo", "acme/churn-model", "--branch", "", "--pr", "7", "--triggered-by", " "])
    env = {"DATABRICKS_JOB_RUN_ID": "42", "MLOPS_BRANCH": "feat/x", "MLOPS_COMMIT": ""}
    assert lineage_from(args, env) == {"repo": "acme/churn-model", "branch": "feat/x", "pr": "7", "job_run_id": "42"}


def test_option_wins_over_env():
    args = _args(["--job-run-id", "9"])
    assert lineage_from(args, {"DATABRICKS_JOB_RUN_ID": "42"}) == {"job_run_id": "9"}


def test_databricks_context_and_workdir():
    env = {"DATABRICKS_JOB_ID": "1", "DATABRICKS_JOB_RUN_ID": "42", "DATABRICKS_TASK_KEY": "train"}
    assert databricks_context(env) == {
        "databricks_job_id": "1",
        "databricks_job_run_id": "42",
        "databricks_task_key": "train",
    }
    assert str(default_workdir(env)) == ".mlops-run/42"
    assert str(default_workdir({})) == ".mlops-run/local"
