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
The grants are derived from a config's stages and guard rails (`grants_for`): the table is the demo's; another
config's registry names (`dev.fraud.*`) get the same grants in their own catalogs and schemas.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service.catalog import PermissionsChange, Privilege

from core.stages import THREE_LEVELS, Model, resolve_stages
from devstack import ROOT

ADMIN = "sandbox-user@example.com"  # the principal of devstack.sandboxes.WORKSPACE_TOKEN
DEV = "0b9e6a7c-0000-4000-8000-0000000000de"
STAGING = "5e7a9d21-0000-4000-8000-0000000005a9"
PROD = "9a4f0c3d-0000-4000-8000-0000000000ef"
TOKENS = {DEV: "dapi-sp-dev", STAGING: "dapi-sp-staging", PROD: "dapi-sp-prod"}
# OAuth secrets, for machine-to-machine sign-in as them (client ID = application id); sandbox-only fixed values
OAUTH_SECRETS = {DEV: "dose-sandbox-dev", STAGING: "dose-sandbox-staging", PROD: "dose-sandbox-prod"}

USE, CREATE, EXECUTE = Privilege.USE_CATALOG, Privilege.CREATE_MODEL, Privilege.EXECUTE
WRITE = [Privilege.USE_SCHEMA, CREATE]
READ = [Privilege.USE_SCHEMA, EXECUTE]
Grant = tuple[str, str, str, list[Privilege]]  # (securable type, full name, principal, privileges)
DEMO_CONFIG = ROOT / "examples" / "demo.config.toml"


def grants_for(config: dict[str, Any], pipelines: Mapping[str, dict[str, Any]] | None = None) -> list[Grant]:
    """The Unity Catalog grants a config's stages need (`config` and `pipelines`, the repositories' own pipeline
    files by repository name, as parsed TOML), in the order they are first needed:

    - a stage's principal (its environment's `run_as_service_principal`, or its repository's) writes the stage's
      registry: USE_CATALOG on the catalog, USE_SCHEMA and CREATE_MODEL on the schema;
    - a stage that validates reads the last stage's registry, where the champion is: USE_CATALOG, USE_SCHEMA and
      EXECUTE;
    - a repository's guard-rail registry names (`dev.fraud.*`, `dev.*`): the principal of the environment named
      like the catalog writes there (on the schema, or on the whole catalog).
    """
    mlflow = config.get("mlflow") or {}
    if (mlflow.get("registry_uri") or "") != "databricks-uc":
        return []  # only Unity Catalog has grants
    environments = config.get("environments") or {}
    repos = {str(r.get("name", "")).lower(): r for r in config.get("repos") or []}
    out: dict[tuple[str, str, str], list[Privilege]] = {}

    def principal(environment: str, repo: str) -> str:
        own = repos.get(repo.lower(), {}).get("run_as_service_principal", "")
        return own or (environments.get(environment) or {}).get("run_as_service_principal", "")

    def grant(who: str, kind: str, name: str, privileges: list[Privilege]) -> None:
        if who:  # the bot itself, the metastore admin, needs no grant
            held = out.setdefault((kind, name, who), [])
            held.extend(p for p in privileges if p not in held)

    def on_schema(who: str, schema: str, privileges: list[Privilege]) -> None:
        grant(who, "catalog", schema.partition(".")[0], [USE])
        grant(who, "schema", schema, privileges)

    trains = [(config.get("models") or {}, config.get("workflows") or {}, "")]
    trains += [(p.get("models") or {}, p.get("workflows") or {}, repo) for repo, p in (pipelines or {}).items()]
    for models, workflows, file_repo in trains:
        # what resolve_stages reads of a workflow (its environment and datasets, defaults as core/config.py's)
        shapes = {
            n: SimpleNamespace(environment=w.get("environment", "dev"), datasets=w.get("datasets", []))
            for n, w in workflows.items()
        }
        for name, raw in models.items():
            repo = file_repo or raw.get("repo", "")
            model = Model.model_validate({**raw, "repo": repo})
            stages = resolve_stages(name, model, uc=True, environments=environments, workflows=shapes)
            champion = stages[-1].registry_name
            for stage in stages:
                if not THREE_LEVELS.match(stage.registry_name):
                    continue
                who = principal(stage.environment, repo)
                on_schema(who, schema_of(stage.registry_name), WRITE)
                if stage.validate_workflow and THREE_LEVELS.match(champion):
                    on_schema(who, schema_of(champion), READ)
    for repo in config.get("repos") or []:
        for glob in (repo.get("guard_rails") or {}).get("registry_names", []):
            catalog, _, rest = glob.partition(".")
            schema = rest.partition(".")[0]
            if not catalog or _WILD.search(catalog):
                continue  # no one catalog to grant on
            who = principal(catalog, repo.get("name", "")) if catalog in environments else ""
            if schema and not _WILD.search(schema):
                on_schema(who, f"{catalog}.{schema}", WRITE)
            else:
                grant(who, "catalog", catalog, [USE, *WRITE])  # inherited by every schema in it
    return [(kind, name, who, privileges) for (kind, name, who), privileges in out.items()]


_WILD = re.compile(r"[*?\[]")


def schema_of(registry_name: str) -> str:
    """`dev.ml.churn` → `dev.ml`."""
    return registry_name.rpartition(".")[0]


def demo_grants() -> list[Grant]:
    """The demo's grants (the table above), derived from examples/demo.config.toml as any config's are."""
    with open(DEMO_CONFIG, "rb") as fh:
        return grants_for(tomllib.load(fh))


def seed_grants(workspace_url: str, admin_token: str, grants: list[Grant] | None = None) -> None:
    """Grant each stage's principal what it needs (default: the demo's), through the grants API as an admin would."""
    logging.getLogger("databricks.sdk").setLevel(logging.ERROR)  # its warning about host metadata is noise here
    w = WorkspaceClient(config=Config(host=workspace_url, token=admin_token, auth_type="pat", retry_timeout_seconds=30))
    for kind, name, principal, privileges in demo_grants() if grants is None else grants:
        w.grants.update(kind, name, changes=[PermissionsChange(principal=principal, add=privileges)])
