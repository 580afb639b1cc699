"""Identity like a production service: how the bot signs in (databricks-sdk unified auth, secrets from the
environment only), whom jobs run as, and who may view their runs — without any network."""

from __future__ import annotations

import pytest
from databricks.sdk.config import Config
from databricks.sdk.service.jobs import JobSettings

from core.config import ConfigError, parse_config
from core.identity import Environment
from workers.errors import Permanent
from workers.gateways.workspace import sdk_config
from workers.jobs.spec import job_settings

HOST = "https://adb-1.1.azuredatabricks.net"
SECRETS = {"DBX_SECRET": "s3cr3t", "ARM_SECRET": "arm-s3cr3t", "DBX_TOKEN": "dapi-1"}


@pytest.mark.parametrize(
    "keys, expected",
    [
        (
            {"client_id": "sp-app-id", "client_secret_env": "DBX_SECRET"},
            {"auth_type": "oauth-m2m", "client_id": "sp-app-id", "client_secret": "s3cr3t"},
        ),
        (
            {"azure_client_id": "az-app", "azure_tenant_id": "tenant", "azure_client_secret_env": "ARM_SECRET"},
            {
                "auth_type": "azure-client-secret",
                "azure_client_id": "az-app",
                "azure_tenant_id": "tenant",
                "azure_client_secret": "arm-s3cr3t",
            },
        ),
        ({"token_env": "DBX_TOKEN"}, {"auth_type": "pat", "token": "dapi-1"}),
    ],
)
def test_each_sign_in_maps_to_the_sdks_config(keys, expected):
    """Config(...) would resolve credentials at construction (OIDC discovery, a token request): the
    mapping is tested instead, and held to the names `Config` accepts."""
    kwargs = sdk_config("dev", Environment(host=HOST, **keys), SECRETS.get)
    assert kwargs == {"host": HOST, "retry_timeout_seconds": 60, **expected}
    assert set(kwargs) <= {a.name for a in Config.attributes()}


def test_a_missing_secret_names_the_variable():
    env = Environment(host=HOST, client_id="sp", client_secret_env="DBX_SECRET")
    with pytest.raises(Permanent, match=r"environment `prod`: DBX_SECRET \(client_secret_env\) is not set"):
        sdk_config("prod", env, {}.get)


@pytest.mark.parametrize(
    "keys, message",
    [
        ({}, "say how the bot signs in"),
        ({"token_env": "T", "client_id": "sp", "client_secret_env": "S"}, "one of them; got pat, oauth-m2m"),
        ({"client_id": "sp"}, "oauth-m2m sign-in also needs client_secret_env"),
        ({"azure_client_id": "a", "azure_client_secret_env": "S"}, "also needs azure_tenant_id"),
        ({"token_env": "T", "secret": "x"}, "environments.dev.secret: unknown key"),
    ],
)
def test_sign_in_errors_name_the_environment(keys, message):
    with pytest.raises(ConfigError) as exc:
        parse_config({"environments": {"dev": {"host": HOST, **keys}}})
    assert message in str(exc.value) and "environments.dev" in str(exc.value)


def test_the_shipped_config_signs_in_as_service_principals(settings):
    assert {name: env.auth_type for name, env in settings.environments.items()} == {
        "dev": "oauth-m2m",
        "staging": "oauth-m2m",
        "prod": "azure-client-secret",
    }


def test_jobs_run_as_the_environments_service_principal_or_the_repositorys(settings):
    repo = settings.repo("acme/churn-model")
    run_as = JobSettings.from_dict(job_settings(settings, repo, "main", "deploy", "a" * 40)).run_as
    assert run_as.service_principal_name == settings.environments["staging"].run_as_service_principal
    prod = JobSettings.from_dict(job_settings(settings, repo, "main", "deploy", "a" * 40, environment="prod"))
    assert prod.run_as.service_principal_name == settings.environments["prod"].run_as_service_principal
    own = repo.model_copy(update={"run_as_service_principal": "repo-sp"})
    assert JobSettings.from_dict(job_settings(settings, own, "main", "deploy", "")).run_as.service_principal_name == (
        "repo-sp"
    )


def test_job_permissions_are_least_privilege(settings):
    body = job_settings(settings, settings.repo("acme/churn-model"), "main", "train", "a" * 40)
    assert body["access_control_list"] == [
        {"user_name": "alice@acme.com", "permission_level": "CAN_VIEW"},
        {"user_name": "bob@acme.com", "permission_level": "CAN_MANAGE_RUN"},  # manage_run = ["bob"]
        {"user_name": "carol@acme.com", "permission_level": "CAN_VIEW"},
        {"group_name": "ml-engineers", "permission_level": "CAN_VIEW"},
    ]


def test_manage_run_names_only_mapped_people():
    with pytest.raises(ConfigError, match="databricks: manage_run: 'dave' is not in"):
        parse_config({"databricks": {"users": {"alice": "alice@acme.com"}, "manage_run": ["dave"]}})


def test_no_map_no_permissions(settings):
    bare = settings.model_copy(update={"databricks": type(settings.databricks)()})
    body = job_settings(bare, settings.repo("acme/churn-model"), "main", "train", "a" * 40)
    assert "access_control_list" not in body
