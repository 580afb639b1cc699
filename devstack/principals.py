"""The demo's identities on the sandbox workspace: one service principal per stage, and the Unity Catalog grants
each needs (examples/demo.config.toml names them in `run_as_service_principal`).

    principal (application id)                     runs                           may write
    dev      0b9e6a7c-0000-4000-8000-0000000000de  a PR's /train (dev)            dev.ml.*
    staging  5e7a9d21-0000-4000-8000-0000000005a9  a merge's training, validation staging.ml.*  (reads prod.ml.*)
    prod     9a4f0c3d-0000-4000-8000-0000000000ef  deploys to prod                prod.ml.*
    the bot  sandbox-user@example.com               (signs in with the workspace's token: the metastore admin)

Each principal has a token (TOKENS) and an OAuth secret (OAUTH_SECRETS): `client_id` = its application id and that secret
sign it in with `auth_type = "oauth-m2m"`, as in production.

Each stage's principal creates its own registered model and so owns it: only an owner creates versions and
moves aliases there. The bot copies an approved version into prod and moves `champion` as the metastore admin.
"""

from __future__ import annotations

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.catalog import PermissionsChange, Privilege

ADMIN = "sandbox-user@example.com"  # the principal of devstack.sandboxes.WORKSPACE_TOKEN
DEV = "0b9e6a7c-0000-4000-8000-0000000000de"
STAGING = "5e7a9d21-0000-4000-8000-0000000005a9"
PROD = "9a4f0c3d-0000-4000-8000-0000000000ef"
TOKENS = {DEV: "dapi-sp-dev", STAGING: "dapi-sp-staging", PROD: "dapi-sp-prod"}
# OAuth secrets, for machine-to-machine sign-in as them (client ID = application id); sandbox-only fixed values
OAUTH_SECRETS = {DEV: "dose-sandbox-dev", STAGING: "dose-sandbox-staging", PROD: "dose-sandbox-prod"}

USE, CREATE, EXECUTE = Privilege.USE_CATALOG, Privilege.CREATE_MODEL, Privilege.EXECUTE
GRANTS: list[tuple[str, str, str, list[Privilege]]] = [
    # (securable type, full name, principal, privileges)
    ("catalog", "dev", DEV, [USE]),
    ("schema", "dev.ml", DEV, [Privilege.USE_SCHEMA, CREATE]),
    ("catalog", "staging", STAGING, [USE]),
    ("schema", "staging.ml", STAGING, [Privilege.USE_SCHEMA, CREATE]),
    ("catalog", "prod", STAGING, [USE]),  # validation scores the prod champion next to the candidate
    ("schema", "prod.ml", STAGING, [Privilege.USE_SCHEMA, EXECUTE]),
    ("catalog", "prod", PROD, [USE]),
    ("schema", "prod.ml", PROD, [Privilege.USE_SCHEMA, CREATE]),
]


def seed_grants(workspace_url: str, admin_token: str) -> None:
    """Grant each stage's principal what it needs, through the grants API as an admin would."""
    w = WorkspaceClient(config=Config(host=workspace_url, token=admin_token, auth_type="pat", retry_timeout_seconds=30))
    for kind, name, principal, privileges in GRANTS:
        w.grants.update(kind, name, changes=[PermissionsChange(principal=principal, add=privileges)])
