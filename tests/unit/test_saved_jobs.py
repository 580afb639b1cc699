"""check-config's estimate of saved jobs (core/saved_jobs.py): per workspace, active branches × the jobs a branch may
have + the default branches' jobs; a warning past 80 % of Databricks' limit, with the numbers behind it.

Databricks' resource limits: "Jobs | Saved jobs | 10000 | Workspace | Fixed: Yes"
(docs.databricks.com/aws/en/resources/limits).
"""

from __future__ import annotations

import textwrap
import tomllib

from bot.cli import main
from core.config import Settings, parse_config
from core.saved_jobs import (
    PIPELINE_FILE_BRANCH_JOBS,
    PIPELINE_FILE_DEFAULT_JOBS,
    SAVED_JOBS_LIMIT,
    WARN_SHARE,
    branch_workflows,
    estimate,
    saved_jobs_warnings,
)

DEV = "https://dev.cloud.databricks.com"


def organisation(repos: int, *, own_pipeline: int = 0, bot: str = "", shared_host: bool = True) -> str:
    """config.toml for `repos` repositories (train on /train, test on a pull request, validate and deploy only from
    the default branch), `own_pipeline` more with a pipeline file of their own."""
    prod = DEV if shared_host else "https://prod.cloud.databricks.com"
    text = textwrap.dedent(f"""\
        [bot]
        {bot}
        [environments.dev]
        host = "{DEV}"
        token_env = "T"
        [environments.staging]
        host = "{DEV}"
        token_env = "T"
        [environments.prod]
        host = "{prod}"
        token_env = "T"
        """)
    for name, where, run_on in (("train", "dev", "command"), ("test", "dev", "pull_request"),
                                ("validate", "staging", "model_version"), ("deploy", "prod", "command")):  # fmt: skip
        text += f'[workflows.{name}]\nenvironment = "{where}"\nrun_on = ["{run_on}"]\n'
        text += f'[workflows.{name}.environments.default]\nenvironment_version = "4"\n'
        text += f'[[workflows.{name}.tasks]]\nkey = "main"\nfile = "{name}.py"\n'
    for i in range(repos):
        text += f'[[repos]]\nname = "acme/repo-{i}"\n'
    for i in range(own_pipeline):
        text += f'[[repos]]\nname = "acme/own-{i}"\npipeline_file = "mlops-bot.toml"\n'
        text += f'[repos.guard_rails]\nregistry_names = ["dev.own{i}.*"]\n'
    return text


def settings_of(text: str) -> Settings:
    return parse_config(tomllib.loads(text))


def test_a_branch_may_have_the_jobs_of_the_workflows_that_run_where_pull_requests_train(settings):
    """The demo's config: validate and deploy run only from the default branch (issue #18)."""
    assert branch_workflows(settings, settings.repos[0]) == {"train": "dev", "test": "dev"}


def test_the_estimate_counts_each_workspace_apart():
    org = settings_of(organisation(10, shared_host=False))
    by_host = {e.host: e for e in estimate(org)}
    dev, prod = by_host[DEV], by_host["https://prod.cloud.databricks.com"]
    assert dev.environments == ("dev", "staging") and prod.environments == ("prod",)
    # a branch: train and test (dev); the default branch: train, test, validate (staging) here, deploy in prod
    assert (dev.repos, dev.branch_jobs, dev.default_jobs, dev.active_branches) == (10, 20, 30, 25)
    assert dev.saved_jobs == 25 * 20 + 30
    assert (prod.repos, prod.branch_jobs, prod.default_jobs) == (0, 0, 10)


def test_check_config_warns_past_80_percent_of_the_limit_with_the_numbers():
    """One workspace; a repository: 25 active branches × 2 jobs (train, test) + 4 on its default branch = 54."""
    assert WARN_SHARE * SAVED_JOBS_LIMIT == 8000
    assert saved_jobs_warnings(settings_of(organisation(145))) == []  # 145 × 54 = 7,830
    assert len(saved_jobs_warnings(settings_of(organisation(150)))) == 1  # 150 × 54 = 8,100
    [warning] = saved_jobs_warnings(settings_of(organisation(160)))
    assert warning == (
        f"workspace {DEV} (dev, prod, staging): about 8,640 saved jobs — 160 repositories × 25 active branches "
        "([bot] active_branches_per_repo) × 2.0 jobs per active branch + 640 on default branches — over 80% of the "
        "10,000 saved jobs Databricks allows a workspace; lower [bot] job_ttl_days, or give some repositories a "
        "workspace of their own"
    )


def test_the_expected_active_branches_are_a_setting():
    assert settings_of(organisation(1)).bot.active_branches_per_repo == 25
    org = settings_of(organisation(160, bot="active_branches_per_repo = 10"))
    assert [e.saved_jobs for e in estimate(org)] == [160 * 10 * 2 + 160 * 4] and saved_jobs_warnings(org) == []


def test_a_repository_with_its_own_pipeline_file_counts_as_the_documented_figures():
    [e] = estimate(settings_of(organisation(0, own_pipeline=3)))
    assert (e.repos, e.branch_jobs, e.default_jobs) == (
        3,
        3 * PIPELINE_FILE_BRANCH_JOBS,
        3 * PIPELINE_FILE_DEFAULT_JOBS,
    )


def test_check_config_prints_the_warning(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(organisation(160))
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "ok — 160 repo(s)" in out
    assert "  warning: workspace https://dev.cloud.databricks.com (dev, prod, staging): about 8,640 saved jobs" in out
