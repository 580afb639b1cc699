"""Sandbox Databricks workspace: a local, Databricks-compatible Jobs 2.2 + Repos 2.0 server.

The bot talks to it through the real ``databricks-sdk``::

    WorkspaceClient(config=Config(host="http://127.0.0.1:PORT", token="dapi-sandbox", auth_type="pat"))

CLI
---
``python -m sandbox.workspace --port P --data DIR [--token dapi-sandbox] [--service-principal APP_ID=TOKEN ...]
[--oauth-secret APP_ID=SECRET ...] [--oauth-token-lifetime SECONDS] [--mlflow-tracking-uri URI]
[--mlflow-registry-uri URI] [--save-every SECONDS] [--fault SPEC ...]`` (also ``sandbox.workspace.main(argv)``).
``--port 0`` picks a free port. When ready it prints exactly one line
``sandbox workspace listening on http://127.0.0.1:P``. SIGTERM/SIGINT stop it and kill running task processes. State (jobs, runs, repos, id counters, idempotency
tokens, task outputs) is kept in ``DIR/state.json`` (the OAuth signing key in ``DIR/oauth-signing-key``); run
checkouts and logs live in ``DIR/runs/<run_id>/``, Repos checkouts in
``DIR/repos/<repo_id>/``. After a restart, runs that were active are ``INTERNAL_ERROR``. An API write is on disk
when it is answered, unless ``--save-every SECONDS`` lets it wait that long (a clean stop writes it).

API
---
* Jobs (``/api/2.2/jobs/...`` and ``/api/2.1/jobs/...``): create, reset, update, get, list, delete,
  run-now, runs/get, runs/get-output, runs/cancel, runs/cancel-all, runs/list, runs/delete.
  Bodies are parsed and responses built with the SDK's own dataclasses.
* Repos (``/api/2.0/repos``): create (clones url: local path, ``file://`` or ``http(s)://``), get,
  update (branch/tag -> fetch + checkout; no branch/tag -> pull current branch), list
  (``path_prefix``, ``next_page_token``), delete.
* Workspace (``/api/2.0/workspace``): ``mkdirs`` (parents too; RESOURCE_ALREADY_EXISTS when a prefix is
  not a folder) and ``get-status`` (folders, Git folders and the files in them; 404
  RESOURCE_DOES_NOT_EXIST). ``/``, ``/Users``, ``/Shared``, ``/Repos`` and the user's own folders exist
  from the start; ``repos`` create answers 404 RESOURCE_DOES_NOT_EXIST "Parent directory … does not
  exist." until its folder was made.
* Unity Catalog model registry (``/api/2.0/mlflow/unity-catalog/...``, ``api/unity_catalog.py``): the calls
  MLflow's UC store makes, so ``MlflowClient(registry_uri="databricks-uc")`` runs unchanged: registered models
  (create, get, update description, delete, search, tags), model versions (create -> PENDING_REGISTRATION,
  finalize -> READY, get, update description, delete, search by ``name='...'``/``run_id='...'``, tags), aliases
  (set, get, delete), ``generate-temporary-credentials`` (``DEFAULT_STORAGE``) and the SDK-artifact-repository
  switch (false). Model files (``api/files.py``): ``/api/2.0/fs/create-upload-url``, ``create-download-url``,
  ``directories/Models/...`` and the presigned PUT/GET under ``/presigned/uc-files/`` (no token: an HMAC
  signature in the URL), kept in ``DIR/uc-files/``; registry state in ``DIR/unity_catalog.json``. Unity Catalog
  privileges are enforced on every registry call and changed through the grants API
  (``GET|PATCH /api/2.1/unity-catalog/permissions/{catalog|schema|function}/{full_name}``, ``api/uc_grants.py``);
  ``GET /api/2.1/unity-catalog/models/{full_name}[/versions[/{version}]]`` answer who created what
  (``created_by``, ``owner``: the principal whose token made the call; ``api/uc_models.py``), and
  ``GET /api/2.1/unity-catalog/models?catalog_name=&schema_name=`` lists a schema's models with ``updated_at``
  (filtered by the caller's privileges, paged, no aliases; what moves ``updated_at``: ``api/uc_models.py``). Not served:
  catalogs and schemas (any is accepted; the admin owns them), lineage, renames, serving, prompts, the 2.1 writes.
* ``GET /api/2.0/preview/scim/v2/Me`` (current user).
* OAuth machine-to-machine sign-in (``api/oidc.py``, ``oauth.py``): ``GET /.well-known/databricks-config`` (the
  host's metadata: ``oidc_endpoint``), ``GET /oidc/.well-known/oauth-authorization-server`` (RFC 8414) and
  ``POST /oidc/v1/token`` (``grant_type=client_credentials``, ``scope=all-apis``; the client ID and secret as
  HTTP Basic auth or in the form): a service principal given ``--oauth-secret APP_ID=SECRET`` gets an access
  token that acts as it for ``--oauth-token-lifetime`` seconds (default 3600, Databricks' hour). A wrong secret
  is 401 ``invalid_client``, another grant 400 ``unsupported_grant_type`` (RFC 6749 §5.2's JSON), so
  ``WorkspaceClient(host=..., client_id=..., client_secret=..., auth_type="oauth-m2m")`` runs unchanged.
* Every ``/api/`` request needs ``Authorization: Bearer <token>`` of a principal the workspace knows (else 401
  ``UNAUTHENTICATED``; an expired OAuth token says so): ``--token`` is the workspace and metastore admin's
  (``sandbox-user@example.com``), ``--service-principal APP_ID=TOKEN`` each service principal's (see
  ``principals.py``), or an OAuth access token. ``scim/v2/Me`` answers whose token it is. A principal other
  than the admin may change, run or cancel only the jobs it owns or whose permissions name it, and name no one
  but itself as a job's ``run_as``; a ``run_as`` naming a principal the workspace does not know is 404
  ``RESOURCE_DOES_NOT_EXIST`` "Principal: ServicePrincipalName(<id>) does not exist" (``api/job_access.py``).
* Errors use Databricks' shape ``{"error_code": ..., "message": ...}``. As on real Databricks, an unknown
  job/run on the Jobs API is ``400 INVALID_PARAMETER_VALUE "Job <id> does not exist."`` (the SDK turns
  that into ``ResourceDoesNotExist``/``NotFound`` for jobs/get and runs/get*, and
  ``InvalidParameterValue`` elsewhere); an unknown repo is ``404 RESOURCE_DOES_NOT_EXIST``.
* ``GET /jobs/<job_id>/runs/<run_id>``: HTML run page (the runs' ``run_page_url``).
* Sandbox-only introspection: ``GET /sandbox/requests`` (counts per ``"METHOD /path"`` since start or
  reset, /sandbox/ paths excluded), ``POST /sandbox/requests/reset``, ``GET /sandbox/faults``,
  ``POST /sandbox/faults {"spec": SPEC}`` (add a fault at run time), ``GET /sandbox/health``.

Faults
------
``--fault SPEC`` (repeatable), ``SPEC = METHOD:PATH=KIND[:COUNT]``:

* ``METHOD``: ``GET``/``POST``/... or ``*``; ``PATH``: exact path or fnmatch glob (``/api/2.2/jobs/*``);
* ``KIND``: an HTTP status (answered with the Databricks error shape; ``429`` -> ``TOO_MANY_REQUESTS``,
  ``503`` -> ``TEMPORARILY_UNAVAILABLE`` both with ``Retry-After: 1``; ``500`` -> ``INTERNAL_ERROR`` ...)
  or ``delay<SECONDS>`` (sleep, then answer normally);
* ``COUNT``: number of matching requests affected (omitted = all of them).
* also ``<status>html`` (a load balancer's HTML error page), ``apply_then_drop`` (the request is applied,
  then the connection is closed unanswered: the SDK re-sends it) and ``apply_then_<status>`` (applied,
  then answered with that error) -- see ``faults.py``.

Examples: ``POST:/api/2.2/jobs/create=429:2``, ``POST:/api/2.2/jobs/run-now=500:1``,
``GET:/api/2.2/jobs/list=delay0.5:3``. Faults are checked before authentication.

Task execution contract
-----------------------
``run-now`` creates a run (PENDING -> RUNNING -> TERMINATED, or QUEUED/SKIPPED when
``max_concurrent_runs`` (default 1) is reached: QUEUED if the job's or the request's ``queue.enabled``
is true, otherwise SKIPPED) executed by a background thread:

* Code: with ``git_source`` the repo is cloned (``--shared`` for local paths) into
  ``DIR/runs/<run_id>/checkout`` and ``git_commit`` | ``git_tag`` | ``git_branch`` is checked out; the run
  records ``git_source.git_snapshot.used_commit``. Task paths that are absolute ``/Repos/<folder>/<name>/...``
  (or ``/Workspace/Repos/...``) resolve into the Repos API checkout of that repo. Without git_source,
  the run's directory is the Repo checkout of the first /Repos task path, else ``DIR/runs/<id>/work``.
  A relative path with ``source: WORKSPACE`` (or without git_source) fails the task.
* All tasks of a run share that directory and run with cwd = its root, in ``depends_on`` order (one at a
  time), each as ``sys.executable`` subprocess in its own process group, stdout+stderr captured (no shell).
  ``run_if`` is honoured; tasks whose upstream failed end ``UPSTREAM_FAILED`` (TERMINATED).
  - ``spark_python_task``: ``python <python_file> <parameters...>``.
  - ``python_wheel_task``: entry point looked up in the checkout's ``pyproject.toml``
    (``[project.scripts]``, ``[project.gui-scripts]``, ``[project.entry-points.*]``,
    ``[tool.poetry.scripts]``), then in an installed distribution ``package_name``, else
    ``<package_name>:<entry_point>``; called with argv ``[entry_point, *parameters]`` or
    ``--k=v`` for ``named_parameters``. Its return value becomes the exit status (like a console script).
  - ``notebook_task``: runs the ``.py`` source notebook (``.py`` appended if missing) with ``dbutils``,
    ``display`` and ``getArgument`` as globals; ``dbutils.notebook.exit(v)`` sets
    ``notebook_output.result``. ``from dbutils import dbutils`` works in any task. Widgets =
    base_parameters (+ run-now ``notebook_params``) overridden by job parameters.
    See ``sandbox/workspace/shim/dbutils.py`` for what the shim supports.
  - Other task types fail with "not supported by the sandbox workspace".
* Dynamic value references in parameters / base_parameters / named_parameters / file paths:
  ``{{job.parameters.<name>}}`` (run-now ``job_parameters`` over the job's ``parameters`` defaults),
  ``{{job.id}}``, ``{{job.name}}``, ``{{job.run_id}}``, ``{{task.run_id}}``, ``{{task.name}}``,
  ``{{job.start_time.iso_date|iso_datetime|timestamp_ms}}``, ``{{job.repair_count}}``,
  ``{{tasks.<key>.run_id|result_state}}``, ``{{tasks.<key>.values.<name>}}``. An unknown reference fails
  the task. Legacy run-now ``python_params`` / ``python_named_params`` / ``notebook_params`` override.
* Task environment: the sandbox's environment plus ``DATABRICKS_JOB_ID``, ``DATABRICKS_JOB_RUN_ID``,
  ``DATABRICKS_TASK_RUN_ID``, ``DATABRICKS_TASK_KEY``, ``MLFLOW_TRACKING_URI`` and ``MLFLOW_REGISTRY_URI``
  (if given), ``DATABRICKS_HOST`` = the workspace's own base URL and ``DATABRICKS_TOKEN`` = a token of the job's
  run-as principal, or of its owner without ``run_as`` (a job runs as its run-as principal without
  configuration, never as whoever started it; other ``DATABRICKS_*`` credentials are dropped),
  ``PYTHONUNBUFFERED=1``, ``PYTHONPATH`` = ``<root>:<root>/src:<shim dir>[:old PYTHONPATH]``,
  ``SANDBOX_WIDGETS`` (JSON), ``SANDBOX_TASK_VALUES_DIR``. ``libraries`` are recorded, not installed.
  Compute is checked as Databricks checks it (``api/job_rules.py``: every task needs a cluster or,
  serverless, an environment) and then ignored: tasks run locally; an environment's ``dependencies``
  are checked for shape, not installed.

Job settings
------------
``jobs/create``, ``jobs/reset`` and ``jobs/update`` refuse what Databricks refuses (``api/job_rules.py``,
400 ``INVALID_PARAMETER_VALUE``): a task without compute, an ``environment_key`` or ``job_cluster_key``
naming nothing, a Python script or wheel task on serverless without an environment, keys outside
``^[\\w-]{1,100}$``, more than 25 tags, ``max_concurrent_runs`` outside 0..1000, job parameter names
outside ``[A-Za-z0-9_.-]``, duplicate task keys, ``depends_on`` naming no task, a ``run_as`` naming
nobody, malformed ``access_control_list`` entries. Unknown fields are dropped, not refused.
Job permissions: ``GET|PUT|PATCH /api/2.0/permissions/jobs/<id>``.
* Task ``timeout_seconds`` and job ``timeout_seconds`` -> TIMEDOUT (process group killed);
  ``runs/cancel`` (job run or task run id) kills the running task's process group -> CANCELED.
* Run result: CANCELED / TIMEDOUT / SUCCESS / SUCCESS_WITH_FAILURES (all leaves fine) / FAILED.
* ``runs/get-output`` takes a *task* run id (a job run id is rejected, as on Databricks) and returns, as
  the ``RunOutput`` docstrings say: for script and wheel tasks ``logs`` (the last 5 MB of stdout+stderr)
  and ``logs_truncated``; for notebook tasks ``notebook_output`` (``result``: the first 5 MB of the
  ``dbutils.notebook.exit`` value, absent if it was never called; ``truncated``) and **no** ``logs``;
  for all ``error`` (last line of a Python traceback, or the exit status), ``error_trace`` and ``metadata``.
* ``run-now``'s ``idempotency_token`` (at most 64 characters) returns the run an earlier call with the
  same token started; once that run is deleted (``runs/delete``) the token is refused with 400.
"""

from ..common import Server, serve
from .app import create_app
from .faults import FaultSet, parse_fault
from .oauth import TOKEN_LIFETIME_SECONDS
from .principals import parse_oauth_secret, parse_service_principal

__all__ = ["create_app", "main", "FaultSet", "parse_fault"]


def add_arguments(parser) -> None:
    parser.add_argument("--token", default="dapi-sandbox", help="the workspace admin's bearer token")
    parser.add_argument(
        "--service-principal",
        action="append",
        default=[],
        type=parse_service_principal,
        metavar="APP_ID=TOKEN",
        help="a service principal and its token, repeatable (jobs run as them; they hold only what is granted)",
    )
    parser.add_argument(
        "--oauth-secret",
        action="append",
        default=[],
        type=parse_oauth_secret,
        metavar="APP_ID=SECRET",
        help="a service principal's OAuth secret, repeatable (it signs in machine-to-machine at /oidc/v1/token)",
    )
    parser.add_argument(
        "--oauth-token-lifetime",
        type=int,
        default=TOKEN_LIFETIME_SECONDS,
        metavar="SECONDS",
        help="how long an OAuth access token is good for (Databricks: one hour)",
    )
    parser.add_argument(
        "--save-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="write jobs and runs to disk within SECONDS of an API write instead of at once (0, the default: at once)",
    )
    parser.add_argument("--mlflow-tracking-uri", default=None, help="exported to tasks as MLFLOW_TRACKING_URI")
    parser.add_argument(
        "--mlflow-registry-uri", default=None, help="exported to tasks as MLFLOW_REGISTRY_URI (e.g. databricks-uc)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="METHOD:PATH=KIND[:COUNT], repeatable (see module docs)",
    )


SERVER = Server(
    name="workspace",
    prog="python -m sandbox.workspace",
    description="Local Databricks-compatible workspace (Jobs 2.2 + Repos 2.0).",
    default_port=8765,
    build=lambda args, base_url: create_app(
        args.data,
        args.token,
        args.mlflow_tracking_uri,
        FaultSet(args.fault),
        base_url=base_url,
        mlflow_registry_uri=args.mlflow_registry_uri,
        service_principals=dict(args.service_principal),
        oauth_secrets=dict(args.oauth_secret),
        oauth_token_lifetime=args.oauth_token_lifetime,
        save_every=args.save_every,
    ),
    add_arguments=add_arguments,
    bind_options=False,
    access_log=lambda args: True,
)


def main(argv: list[str] | None = None) -> None:
    serve(SERVER, argv)
