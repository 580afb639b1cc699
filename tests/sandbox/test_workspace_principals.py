"""The sandbox workspace's principals: a token each, the one a task is given, and what Unity Catalog lets each do.

Each rule rests on a sentence of Databricks' public documentation, quoted where it is tested:
* UC privileges reference / "Manage model lifecycle" (docs.databricks.com, learn.microsoft.com/azure/databricks);
* the docstrings of databricks-sdk's `RegisteredModelsAPI`, `ModelVersionsAPI` and `GrantsAPI`
  (databricks/sdk/service/catalog.py), which are the REST reference's text;
* "Manage identities, permissions, and privileges for Databricks Jobs" (docs.databricks.com/jobs/privileges).
The stand-in follows them, not the bot.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import NotFound, PermissionDenied
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.catalog import PermissionsChange, Privilege

from devstack.mlrepo import make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace

ADMIN = "sandbox-user@example.com"
OWNER, OTHER, NOBODY = "11111111-0000-4000-8000-00000000000a", "22222222-0000-4000-8000-00000000000b", "3333-c"
TOKENS = {OWNER: "dapi-owner", OTHER: "dapi-other", NOBODY: "dapi-nobody"}
UC = "/api/2.0/mlflow/unity-catalog"
CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
ENV_TASK = "import json, os\nprint(json.dumps({'token': os.environ.get('DATABRICKS_TOKEN')}))\n"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    service = start_workspace(tmp_path_factory.mktemp("ws"), service_principals=TOKENS)
    yield service
    service.stop()


def client(sandbox, token: str = WORKSPACE_TOKEN) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=sandbox.url, token=token, auth_type="pat", retry_timeout_seconds=10))


def call(sandbox, token: str, method: str, path: str, body: dict | None = None, **query) -> tuple[int, dict]:
    url = sandbox.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def grant(sandbox, kind: str, name: str, principal: str, *privileges: Privilege) -> None:
    client(sandbox).grants.update(kind, name, changes=[PermissionsChange(principal=principal, add=list(privileges))])


def create_model(sandbox, token: str, name: str) -> tuple[int, dict]:
    return call(sandbox, token, "POST", f"{UC}/registered-models/create", {"name": name})


def create_version(sandbox, token: str, name: str) -> tuple[int, dict]:
    return call(
        sandbox, token, "POST", f"{UC}/model-versions/create", {"name": name, "source": "dbfs:/m", "run_id": "r"}
    )


def denied(answer: tuple[int, dict], says: str) -> None:
    status, body = answer
    assert (status, body.get("error_code")) == (403, "PERMISSION_DENIED"), answer
    assert says in body["message"], body["message"]


@pytest.fixture(scope="module")
def owned(sandbox) -> str:
    """`own.ml.m`, created by OWNER, who was granted just what creating it takes (version 1 in it, READY)."""
    grant(sandbox, "catalog", "own", OWNER, Privilege.USE_CATALOG)
    grant(sandbox, "schema", "own.ml", OWNER, Privilege.USE_SCHEMA, Privilege.CREATE_MODEL)
    assert create_model(sandbox, TOKENS[OWNER], "own.ml.m")[0] == 200
    assert create_version(sandbox, TOKENS[OWNER], "own.ml.m")[0] == 200
    call(sandbox, TOKENS[OWNER], "POST", f"{UC}/model-versions/finalize", {"name": "own.ml.m", "version": "1"})
    return "own.ml.m"


# ---- creating a registered model ---------------------------------------------------------------------------
def test_creating_a_model_takes_use_catalog_use_schema_and_create_model(sandbox):
    # registered-models create: "The caller must be a metastore admin, or be the owner of the parent catalog
    # and schema, or have the USE_CATALOG privilege on the parent catalog and the USE_SCHEMA privilege on the
    # parent schema." and "The caller must have the CREATE MODEL or CREATE FUNCTION privilege on the parent
    # schema."
    token = TOKENS[OTHER]
    denied(create_model(sandbox, token, "mk.ml.a"), "USE CATALOG on Catalog 'mk'")
    grant(sandbox, "catalog", "mk", OTHER, Privilege.USE_CATALOG)
    denied(create_model(sandbox, token, "mk.ml.a"), "USE SCHEMA on Schema 'mk.ml'")
    grant(sandbox, "schema", "mk.ml", OTHER, Privilege.USE_SCHEMA)
    denied(create_model(sandbox, token, "mk.ml.a"), "CREATE MODEL on Schema 'mk.ml'")
    grant(sandbox, "schema", "mk.ml", OTHER, Privilege.CREATE_MODEL)
    assert create_model(sandbox, token, "mk.ml.a")[0] == 200
    assert create_model(sandbox, WORKSPACE_TOKEN, "anywhere.at.all")[0] == 200  # the metastore admin


def test_privileges_are_inherited_from_the_catalog_down(sandbox):
    # GrantsAPI: "granting a privilege on the catalog automatically grants the privilege to all current and
    # future objects within the catalog."
    grant(sandbox, "catalog", "inh", OTHER, Privilege.USE_CATALOG, Privilege.USE_SCHEMA, Privilege.CREATE_MODEL)
    assert create_model(sandbox, TOKENS[OTHER], "inh.any_schema.m")[0] == 200


# ---- versions and aliases: the owner's alone -----------------------------------------------------------------
def test_only_the_models_owner_creates_versions(sandbox, owned):
    # "Only the owner of a registered model can do the following: Create a new model version. Set an alias on a
    # registered model." (Manage model lifecycle in Unity Catalog: upgrade workflows, Required privileges)
    grant(sandbox, "catalog", "own", OTHER, Privilege.ALL_PRIVILEGES)  # everything but ownership
    denied(create_version(sandbox, TOKENS[OTHER], owned), "not an owner of Registered Model 'own.ml.m'")
    denied(create_version(sandbox, TOKENS[NOBODY], owned), "USE CATALOG on Catalog 'own'")
    status, body = create_version(sandbox, TOKENS[OWNER], owned)
    assert status == 200 and body["model_version"]["version"] == "2"


def test_only_the_models_owner_sets_or_deletes_an_alias(sandbox, owned):
    # RegisteredModelsAPI.set_alias / delete_alias: "The caller must be a metastore admin or an owner of the
    # registered model. For the latter case, the caller must also be the owner or have the USE_CATALOG
    # privilege on the parent catalog and the USE_SCHEMA privilege on the parent schema."
    alias = {"name": owned, "alias": "champion", "version": "1"}
    denied(call(sandbox, TOKENS[OTHER], "POST", f"{UC}/registered-models/alias", alias), "not an owner")
    assert call(sandbox, TOKENS[OWNER], "POST", f"{UC}/registered-models/alias", alias)[0] == 200
    gone = {"name": owned, "alias": "champion"}
    denied(call(sandbox, TOKENS[OTHER], "DELETE", f"{UC}/registered-models/alias", gone), "not an owner")
    assert call(sandbox, WORKSPACE_TOKEN, "POST", f"{UC}/registered-models/alias", alias)[0] == 200


# ---- tags: owner, or APPLY TAG -------------------------------------------------------------------------------
def test_tags_take_ownership_or_apply_tag(sandbox, owned):
    # "To add tags to Unity Catalog securable objects, you must own the object or have all of the following
    # privileges: APPLY TAG on the object, USE SCHEMA on the object's parent schema, USE CATALOG on the
    # object's parent catalog" (Apply tags to Unity Catalog securable objects)
    tag = {"name": owned, "version": "1", "key": "validation_status", "value": "passed"}
    grant(sandbox, "catalog", "own", NOBODY, Privilege.USE_CATALOG, Privilege.USE_SCHEMA, Privilege.EXECUTE)
    denied(call(sandbox, TOKENS[NOBODY], "POST", f"{UC}/model-versions/set-tag", tag), "APPLY TAG")
    denied(call(sandbox, TOKENS[NOBODY], "POST", f"{UC}/registered-models/set-tag", tag), "APPLY TAG")
    assert call(sandbox, TOKENS[OWNER], "POST", f"{UC}/model-versions/set-tag", tag)[0] == 200
    grant(sandbox, "function", owned, NOBODY, Privilege.APPLY_TAG)
    assert call(sandbox, TOKENS[NOBODY], "POST", f"{UC}/model-versions/set-tag", tag)[0] == 200


def test_manage_alone_is_not_apply_tag(sandbox, owned):
    # "Manage Unity Catalog object ownership", section "Ownership versus the MANAGE privilege" (read on
    # docs.azure.cn, in Chinese; in substance): MANAGE lets a principal edit, drop and manage privileges on an
    # object, but does not automatically grant all privileges on it; ALL PRIVILEGES does not include MANAGE.
    other = create_model(sandbox, WORKSPACE_TOKEN, "own.ml.managed")
    assert other[0] == 200
    grant(sandbox, "function", "own.ml.managed", OWNER, Privilege.MANAGE)
    tag = {"name": "own.ml.managed", "key": "k", "value": "v"}
    denied(call(sandbox, TOKENS[OWNER], "POST", f"{UC}/registered-models/set-tag", tag), "APPLY TAG")


# ---- reading: owner, or EXECUTE ------------------------------------------------------------------------------
def test_reading_a_version_takes_execute(sandbox, owned):
    # ModelVersionsAPI.get: "The caller must be a metastore admin or an owner of (or have the EXECUTE privilege
    # on) the parent registered model." -- "To load or deploy a model, the principal must have the EXECUTE
    # privilege on the registered model."
    grant(sandbox, "catalog", "own", NOBODY, Privilege.USE_CATALOG, Privilege.USE_SCHEMA)
    client(sandbox).grants.update(
        "catalog", "own", changes=[PermissionsChange(principal=NOBODY, remove=[Privilege.EXECUTE])]
    )
    q = {"name": owned, "version": "1"}
    denied(call(sandbox, TOKENS[NOBODY], "GET", f"{UC}/model-versions/get", **q), "EXECUTE")
    creds = {**q, "operation": "MODEL_VERSION_OPERATION_READ"}
    denied(
        call(sandbox, TOKENS[NOBODY], "POST", f"{UC}/model-versions/generate-temporary-credentials", creds), "EXECUTE"
    )
    grant(sandbox, "function", owned, NOBODY, Privilege.EXECUTE)
    assert call(sandbox, TOKENS[NOBODY], "GET", f"{UC}/model-versions/get", **q)[0] == 200


def test_search_shows_only_what_the_caller_may_read(sandbox, owned):
    _, found = call(sandbox, TOKENS[OTHER], "GET", f"{UC}/registered-models/search")
    names = {m["name"] for m in found.get("registered_models", [])}
    assert owned in names and "anywhere.at.all" not in names  # OTHER holds ALL PRIVILEGES on `own`, none elsewhere


# ---- who created what: server-side --------------------------------------------------------------------------
def test_created_by_is_the_principal_whose_token_made_the_call(sandbox, owned):
    # ModelVersionInfo.created_by: "The identifier of the user who created the model version"; ownership:
    # "The principal that creates an object becomes its initial owner." A service principal is named by its
    # application id ("a service principal (represented by its applicationId value)", privileges reference).
    w = client(sandbox)
    model = w.registered_models.get(owned)
    assert (model.created_by, model.owner) == (OWNER, OWNER)
    assert w.model_versions.get(owned, 1).created_by == OWNER
    assert [v.created_by for v in w.model_versions.list(owned)] == [OWNER, OWNER]
    body = {"name": owned, "source": "dbfs:/m", "run_id": "r", "user_id": ADMIN}  # a claim is not a fact
    status, made = call(sandbox, TOKENS[OWNER], "POST", f"{UC}/model-versions/create", body)
    assert status == 200 and made["model_version"]["user_id"] == OWNER  # MLflow's `ModelVersion.user_id`
    assert w.model_versions.get(owned, int(made["model_version"]["version"])).created_by == OWNER


# ---- the grants API ------------------------------------------------------------------------------------------
def test_grants_are_read_and_changed_through_the_grants_api(sandbox, owned):
    # GrantsAPI: "Access can be granted by either a metastore admin, the owner of an object, or the owner of the
    # catalog or schema that contains the object." ("Manage privileges in Unity Catalog" adds "A user with the
    # MANAGE privilege on the object.")
    got = client(sandbox).grants.get("schema", "own.ml", principal=OWNER)
    assert [(a.principal, sorted(p.value for p in a.privileges)) for a in got.privilege_assignments] == [
        (OWNER, ["CREATE_MODEL", "USE_SCHEMA"])
    ]
    with pytest.raises(PermissionDenied):  # OTHER holds ALL PRIVILEGES on the catalog: not MANAGE, not owner
        client(sandbox, TOKENS[OTHER]).grants.update(
            "function", owned, changes=[PermissionsChange(principal=OTHER, add=[Privilege.EXECUTE])]
        )
    client(sandbox, TOKENS[OWNER]).grants.update(  # the owner grants on what it owns
        "function", owned, changes=[PermissionsChange(principal=OTHER, add=[Privilege.EXECUTE])]
    )
    status, body = call(
        sandbox,
        WORKSPACE_TOKEN,
        "PATCH",
        "/api/2.1/unity-catalog/permissions/catalog/own",
        {"changes": [{"principal": "nobody-we-know", "add": ["USE_CATALOG"]}]},
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


# ---- jobs: whose token a task gets --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("git") / "env-repo", {"steps/env.py": ENV_TASK}, "env")


def run_env_task(w: WorkspaceClient, repo: Path, run_as: jobs.JobRunAs | None) -> str:
    source = jobs.GitSource(git_url=str(repo), git_provider=jobs.GitProvider.GIT_HUB, git_branch="main")
    task = jobs.Task(
        task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="steps/env.py"), new_cluster=CLUSTER
    )
    job_id = w.jobs.create(name="env", git_source=source, tasks=[task], run_as=run_as).job_id
    run_id = w.jobs.run_now(job_id).run_id
    deadline = time.monotonic() + 60
    while (run := w.jobs.get_run(run_id)).state.life_cycle_state.value not in ("TERMINATED", "INTERNAL_ERROR"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return json.loads(w.jobs.get_run_output(run.tasks[0].run_id).logs.strip().splitlines()[-1])["token"]


def test_a_task_gets_a_token_of_its_jobs_run_as_principal(sandbox, repo):
    # JobSettings.run_as: "The user or service principal that the job runs as"; Jobs privileges: "The creator
    # of the job is set for Run as."
    w = client(sandbox)
    assert run_env_task(w, repo, jobs.JobRunAs(service_principal_name=OWNER)) == TOKENS[OWNER]
    assert run_env_task(w, repo, None) == WORKSPACE_TOKEN  # created by the admin: runs as the admin
    assert run_env_task(client(sandbox, TOKENS[OTHER]), repo, None) == TOKENS[OTHER]  # its creator's


def test_a_run_as_naming_nobody_the_workspace_knows_is_refused(sandbox):
    # JobRunAs.service_principal_name: "Application ID of an active service principal."; user_name: "The email of
    # an active workspace user." Databricks answers RESOURCE_DOES_NOT_EXIST "Principal: ServicePrincipalName(...)
    # does not exist" (reported in terraform-provider-databricks#1415, dbx#744).
    w = client(sandbox)
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="x.py"), new_cluster=CLUSTER)
    nobody = jobs.JobRunAs(service_principal_name="44444444-new")
    with pytest.raises(NotFound, match=r"Principal: ServicePrincipalName\(44444444-new\) does not exist"):
        w.jobs.create(name="runs as nobody", tasks=[task], run_as=nobody)
    with pytest.raises(NotFound, match=r"Principal: UserName\(ghost@example.com\) does not exist"):
        w.jobs.create(name="runs as a ghost", tasks=[task], run_as=jobs.JobRunAs(user_name="ghost@example.com"))
    job_id = w.jobs.create(
        name="runs as its owner", tasks=[task], run_as=jobs.JobRunAs(service_principal_name=OWNER)
    ).job_id
    with pytest.raises(NotFound, match="does not exist"):
        w.jobs.reset(job_id, jobs.JobSettings(name="runs as nobody", tasks=[task], run_as=nobody))
    with pytest.raises(NotFound, match="does not exist"):
        w.jobs.update(job_id, new_settings=jobs.JobSettings(run_as=nobody))
    assert w.jobs.get(job_id).run_as_user_name == OWNER  # nothing changed


def test_nobody_but_the_admin_makes_a_job_that_runs_as_someone_else(sandbox, repo):
    # "This allows users to run jobs as the service principal, instead of as their identity" -- the Service
    # Principal User role, which no service principal here holds on another.
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="x.py"), new_cluster=CLUSTER)
    with pytest.raises(PermissionDenied):
        client(sandbox, TOKENS[OTHER]).jobs.create(
            name="escalate", tasks=[task], run_as=jobs.JobRunAs(service_principal_name=OWNER)
        )


def test_running_someone_elses_job_takes_a_permission_on_it(sandbox):
    # Jobs privileges: "The creator of the job is granted the IS OWNER permission."; CAN_MANAGE_RUN runs it.
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file="x.py"), new_cluster=CLUSTER)
    job_id = (
        client(sandbox)
        .jobs.create(name="staging job", tasks=[task], run_as=jobs.JobRunAs(service_principal_name=OWNER))
        .job_id
    )
    with pytest.raises(PermissionDenied):
        client(sandbox, TOKENS[OTHER]).jobs.run_now(job_id)
    with pytest.raises(PermissionDenied):
        client(sandbox, TOKENS[OTHER]).jobs.reset(job_id, jobs.JobSettings(name="mine now", tasks=[task]))
    owner = client(sandbox).jobs.get_permissions(str(job_id)).access_control_list[0]
    assert (owner.user_name, owner.all_permissions[0].permission_level.value) == (ADMIN, "IS_OWNER")


def test_mlflows_own_client_registers_as_the_principal_of_its_token(sandbox, owned, tmp_path):
    # How a task registers: MLflow's UC store sends model-versions/create (then the files, then finalize) to
    # the workspace with the task's DATABRICKS_TOKEN; the version is the token's principal's.
    import mlflow
    from mlflow import MlflowClient

    from tests.support.unity_catalog import log_model, uc_client_env

    with uc_client_env(sandbox.url, tmp_path) as mp:
        mp.setenv("DATABRICKS_TOKEN", TOKENS[OWNER])
        made = mlflow.register_model(log_model().model_uri, owned)
        assert MlflowClient(registry_uri="databricks-uc").get_model_version(owned, made.version).user_id == OWNER
        mp.setenv("DATABRICKS_TOKEN", TOKENS[NOBODY])  # EXECUTE and APPLY TAG on it: reads, tags, no versions
        with pytest.raises(mlflow.exceptions.MlflowException, match="PERMISSION_DENIED|not an owner"):
            mlflow.register_model(log_model().model_uri, owned)
    assert client(sandbox).model_versions.get(owned, int(made.version)).created_by == OWNER
