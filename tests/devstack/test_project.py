"""The repository the whole loop hosts (devstack/project.py): its name, default branch and config, with clear refusals;
and the Unity Catalog grants its registry names need (devstack/principals.py), seeded into the sandbox workspace."""

from __future__ import annotations

import json
import re
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk.service.catalog import Privilege

from core.config import parse_config
from devstack import principals
from devstack.mlrepo import branch, git, make_repo
from devstack.principals import DEV, PROD, STAGING, demo_grants, grants_for
from devstack.project import PLACEHOLDERS, ProjectError, demo_project, generated_config, own_project
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace

USE, SCHEMA, CREATE, EXECUTE = Privilege.USE_CATALOG, Privilege.USE_SCHEMA, Privilege.CREATE_MODEL, Privilege.EXECUTE
URLS = {p: f"http://127.0.0.1:9/{p.lower()}" for p in PLACEHOLDERS}


def config_of(project) -> dict:
    return tomllib.loads(project.config_text(**URLS))


# --- which repository, which branch, which config ----------------------------------------------------------------
def test_your_repository_gets_the_demos_workflows_pointed_at_it(tmp_path):
    project = own_project(make_repo(tmp_path / "fraud-detection"))
    assert (project.repo, project.default_branch, project.from_git) == ("acme/fraud-detection", "main", True)
    config = config_of(project)
    [entry] = config["repos"]
    assert entry["name"] == "acme/fraud-detection"
    assert entry["git_url"] == f"{URLS['FORGE_URL']}/acme/fraud-detection.git"
    assert {m["repo"] for m in config["models"].values()} == {"acme/fraud-detection"}
    assert set(config["workflows"]) == set(config_of(demo_project())["workflows"])
    parse_config(config)  # the bot loads it


@pytest.mark.parametrize(
    ("branches", "checked_out", "default"),
    [
        (["main", "feature/x"], "feature/x", "main"),
        (["master", "develop"], "develop", "master"),
        (["trunk", "develop"], "develop", "develop"),
    ],
)
def test_the_default_branch_is_main_else_master_else_the_one_checked_out(tmp_path, branches, checked_out, default):
    repo = make_repo(tmp_path / "model")
    if branches[0] != "main":
        git(repo, "branch", "-m", "main", branches[0])
    for name in branches[1:]:
        git(repo, "branch", name)
    git(repo, "checkout", "-q", checked_out)
    project = own_project(repo)
    assert project.default_branch == default
    [entry] = config_of(project)["repos"]
    assert entry["default_branch"] == default


def test_a_repository_with_its_own_pipeline_file_gets_local_guard_rails(tmp_path):
    repo = make_repo(tmp_path / "fraud-detection", {"mlops-bot.toml": "schema_version = 1\n", "train.py": ""})
    project = own_project(repo, name="risk/fraud")
    config = config_of(project)
    assert config["repos"] == [
        {
            "name": "risk/fraud",
            "default_branch": "main",
            "code_source": "git",
            "git_url": f"{URLS['FORGE_URL']}/risk/fraud.git",
            "pipeline_file": "mlops-bot.toml",
            "guard_rails": {
                "environments": ["dev", "staging", "prod"],
                "registry_names": ["dev.*", "staging.*", "prod.*"],
            },
        }
    ]
    assert "workflows" not in config and "models" not in config  # they are the repository's own
    assert config["environments"] == config_of(demo_project())["environments"]


def test_a_pipeline_file_only_on_another_branch_is_not_the_repositorys_yet(tmp_path):
    repo = make_repo(tmp_path / "model")
    git(repo, "checkout", "-q", "-b", "feature/own-pipeline")
    (repo / "mlops-bot.toml").write_text("schema_version = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "own pipeline")
    assert "pipeline_file" not in config_of(own_project(repo))["repos"][0]


def test_a_config_template_of_your_own_is_filled_in(tmp_path):
    repo = make_repo(tmp_path / "churn")
    template = tmp_path / "mine.toml"
    template.write_text(generated_config("acme/churn", "main", has_pipeline_file=False).replace("#mlops", "#models"))
    project = own_project(repo, config=template)
    assert config_of(project)["slack"]["channel"] == "#models-approvals"
    assert config_of(project)["github"]["base_url"] == URLS["FORGE_URL"]


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ({"repo": "missing"}, "--repo {tmp}/missing: not a directory"),
        ({"name": "acme"}, "--name 'acme': write it as owner/repo"),
        ({"name": "acme/x.git"}, "--name 'acme/x.git': write it as owner/repo"),
        ({"dirname": "my model"}, "the repository name 'acme/my model': write it as owner/repo"),
        ({"empty": True}, "a git repository without a commit yet; commit something first"),
        (
            {"config": "[[repos]]\nname = 'acme/other'\n"},
            "has no [[repos]] entry named acme/churn (it names: acme/other); the bot would ignore every event",
        ),
        ({"config": "[bot]\npublic_url = '${PUBLIC}'\n"}, "the config template uses ${PUBLIC}; only ${WEB_URL}"),
        ({"config": "[bot]\npublic_url = '$5'\n"}, "write a dollar sign as $$"),
        ({"config": "[bot\n"}, "--config {tmp}/config.toml: Expected ']'"),
        (
            {
                "config": "[environments.dev]\nrun_as_service_principal = 'someone-else'\n[[repos]]\nname = 'acme/churn'\n"
            },
            "environments.dev.run_as_service_principal 'someone-else' is not one of the local workspace's",
        ),
        (
            {"config": "[[repos]]\nname = 'acme/churn'\ndefault_branch = 'trunk'\n"},
            "acme/churn's default_branch is 'trunk', and the repository's is 'main'",
        ),
    ],
)
def test_what_cannot_be_hosted_is_refused_with_the_reason(tmp_path, setup, why):
    path = tmp_path / setup.get("dirname", "churn")
    if setup.get("empty"):
        path.mkdir()
        git(path, "init", "-q", "-b", "main")
    elif "repo" not in setup:
        make_repo(path)
    config = None
    if "config" in setup:
        config = tmp_path / "config.toml"
        config.write_text(setup["config"])
    with pytest.raises(ProjectError, match=re.escape(why.replace("{tmp}", str(tmp_path)))):
        own_project(tmp_path / setup["repo"] if "repo" in setup else path, config=config, name=setup.get("name"))


# --- Unity Catalog grants from the config's registry names --------------------------------------------------------
def test_the_demos_grants_are_derived_from_its_stages():
    """devstack/principals.py's table: each stage's principal writes its own schema; staging reads prod's."""
    assert demo_grants() == [
        ("catalog", "dev", DEV, [USE]),
        ("schema", "dev.ml", DEV, [SCHEMA, CREATE]),
        ("catalog", "staging", STAGING, [USE]),
        ("schema", "staging.ml", STAGING, [SCHEMA, CREATE]),
        ("catalog", "prod", STAGING, [USE]),
        ("schema", "prod.ml", STAGING, [SCHEMA, EXECUTE]),
        ("catalog", "prod", PROD, [USE]),
        ("schema", "prod.ml", PROD, [SCHEMA, CREATE]),
    ]


FRAUD_PIPELINE = """\
schema_version = 1
[workflows.train]
run_on = ["command"]
[workflows.validate]
run_on = ["model_version"]
[workflows.deploy]
environment = "staging"
[models.fraud]
[[models.fraud.stages]]
name = "dev"
registry_name = "dev.fraud.fraud"
[[models.fraud.stages]]
name = "staging"
registry_name = "staging.fraud.fraud"
validate = "validate"
[[models.fraud.stages]]
name = "prod"
registry_name = "prod.fraud.fraud"
"""


def fraud_config(registry_names: list[str]) -> dict:
    central = tomllib.loads(generated_config("acme/fraud-detection", "main", has_pipeline_file=True))
    central["repos"][0]["guard_rails"]["registry_names"] = registry_names
    return central


def test_a_pipeline_files_registry_names_get_the_demos_grants_in_their_own_schema():
    grants = grants_for(
        fraud_config(["dev.fraud.*", "staging.fraud.*", "prod.fraud.*"]),
        {"acme/fraud-detection": tomllib.loads(FRAUD_PIPELINE)},
    )
    assert grants == [
        ("catalog", "dev", DEV, [USE]),
        ("schema", "dev.fraud", DEV, [SCHEMA, CREATE]),
        ("catalog", "staging", STAGING, [USE]),
        ("schema", "staging.fraud", STAGING, [SCHEMA, CREATE]),
        ("catalog", "prod", STAGING, [USE]),
        ("schema", "prod.fraud", STAGING, [SCHEMA, EXECUTE]),
        ("catalog", "prod", PROD, [USE]),
        ("schema", "prod.fraud", PROD, [SCHEMA, CREATE]),
    ]


def test_guard_rails_alone_grant_their_catalogs_or_schemas():
    """Without a pipeline file to read (or before it names its models), the guard rails say where it may write."""
    assert grants_for(fraud_config(["dev.*", "staging.fraud.*", "*.shared.*"])) == [
        ("catalog", "dev", DEV, [USE, SCHEMA, CREATE]),  # every schema of the catalog
        ("catalog", "staging", STAGING, [USE]),
        ("schema", "staging.fraud", STAGING, [SCHEMA, CREATE]),
    ]


def test_a_registry_outside_unity_catalog_needs_no_grants():
    config = fraud_config(["dev.*"])
    config["mlflow"]["registry_uri"] = "http://127.0.0.1:5000"
    assert grants_for(config, {"acme/fraud-detection": tomllib.loads(FRAUD_PIPELINE)}) == []


UC = "/api/2.0/mlflow/unity-catalog"


def create_model(url: str, token: str, name: str) -> int:
    req = urllib.request.Request(
        f"{url}{UC}/registered-models/create",
        data=json.dumps({"name": name}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_fraud_examples_principals_write_their_own_registries_and_only_those(tmp_path: Path):
    repo = make_repo(tmp_path / "fraud-detection", {"mlops-bot.toml": FRAUD_PIPELINE})
    branch(repo, "feature/x")
    project = own_project(repo)
    text = project.config_text(**URLS)
    service = start_workspace(
        tmp_path / "ws", mlflow_registry_uri="databricks-uc", service_principals=principals.TOKENS
    )
    try:
        principals.seed_grants(service.url, WORKSPACE_TOKEN, project.grants(text))
        tokens = {who: principals.TOKENS[p] for who, p in (("dev", DEV), ("staging", STAGING), ("prod", PROD))}
        assert create_model(service.url, tokens["dev"], "dev.fraud.fraud") == 200
        assert create_model(service.url, tokens["dev"], "staging.fraud.fraud") == 403  # a PR's code: dev only
        assert create_model(service.url, tokens["staging"], "staging.fraud.fraud") == 200
        assert create_model(service.url, tokens["staging"], "prod.fraud.fraud") == 403  # it reads prod, no more
        assert create_model(service.url, tokens["prod"], "prod.fraud.fraud") == 200
    finally:
        service.stop()
