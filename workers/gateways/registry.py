"""The MLflow tracking server and model registry, through MlflowClient: one gateway, three registries.

    registry_uri     names                   approvals with           news arrive by
    databricks-uc    catalog.schema.model    aliases + tags           polling (no registry webhooks)
    databricks       any (workspace, legacy) stages, aliases + tags   registry webhooks, or polling
    <MLflow server>  any                     aliases + tags           MLflow webhooks, or polling

Unity Catalog has no stages: a stage call is refused here with a `Permanent` that says so. Methods return
`workers.gateways` values; MLflow errors are translated here by `workers.errors`. On Unity Catalog, polling's
reads (a schema's models, a model's versions and aliases) go through its own API instead (`catalog.py`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from requests import RequestException

from workers.errors import NotFound, Permanent, Transient, classify
from workers.gateways import Version, links
from workers.gateways.catalog import Catalog

# MLflow's own defaults hold a worker slot for minutes when the server is slow or down (120 s per request,
# 7 retries with backoff factor 2; 500 s for Databricks endpoints). The bot bounds each call and lets Celery
# retry (workers/errors.py): a slow MLflow costs a slot seconds, not minutes. An operator's setting wins.
BOUNDED = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_DATABRICKS_ENDPOINT_HTTP_RETRY_TIMEOUT": "30",
}
PAGE = 50  # versions per search call
MAX_PAGES = 5
# The server answers 400 INVALID_PARAMETER_VALUE, the 3.17 client re-raises it as INTERNAL_ERROR (transient-looking)
THREE_LEVELS = "please specify all three levels"
FAILED, PENDING = "FAILED_REGISTRATION", "PENDING_REGISTRATION"
# A copy still PENDING_REGISTRATION this long after it was created was left by a task that died before it uploaded
# the files and finalized it: a task is cut at 80 s, and after 90 s (the visibility timeout) Redis hands it on anyway.
ABANDONED_AFTER_S = 90


class Registry:
    def __init__(self, tracking_uri: str, registry_uri: str = "", client: MlflowClient | None = None):
        for name, value in BOUNDED.items():
            os.environ.setdefault(name, value)
        self.tracking_uri = tracking_uri.rstrip("/")
        self.registry_uri = (registry_uri or tracking_uri).rstrip("/")
        self.uc = links.kind(self.registry_uri) == "databricks-uc"
        self.creators = links.is_databricks(self.registry_uri)  # a version's `user_id` is its creator's, server-side
        self.client = client or MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)
        if links.is_databricks(self.registry_uri):
            # the UC store downloads a models:/ source through the process-wide registry URI (docs/unity-catalog.md);
            # a worker process serves one registry
            mlflow.set_registry_uri(self.registry_uri)
        self._host: str | None = None
        self.catalog = Catalog(self.registry_uri) if self.uc else None  # polling's reads: catalog.py

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            yield
        except (MlflowException, RequestException, OSError) as exc:
            if THREE_LEVELS in str(exc):
                raise Permanent(
                    f"Unity Catalog could not {what}: model names there have three levels, catalog.schema.model"
                ) from exc
            raise classify(exc, f"MLflow ({self.registry_uri}) could not {what}: {exc}") from exc

    def host(self) -> str:
        """The Databricks workspace URL (DATABRICKS_HOST or the profile); '' for MLflow OSS or when unknown."""
        if self._host is None:
            self._host = ""
            uri = self.registry_uri if links.is_databricks(self.registry_uri) else self.tracking_uri
            if links.is_databricks(uri):
                from mlflow.utils.databricks_utils import get_databricks_host_creds

                try:
                    self._host = (get_databricks_host_creds(uri).host or "").rstrip("/")
                except Exception:  # no host configured: links are left out, never a failure
                    self._host = ""
        return self._host

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The run's metrics; {} when MLflow cannot say (the report then shows none)."""
        try:
            with self._edge(f"read run {run_id}"):
                return dict(self.client.get_run(run_id).data.metrics)
        except Permanent:  # unknown run or alias; a transient error is retried by the task
            return {}

    def run_url(self, run_id: str) -> str:
        try:
            with self._edge(f"read run {run_id}"):
                experiment = self.client.get_run(run_id).info.experiment_id
        except Permanent:  # unknown run or alias; a transient error is retried by the task
            return ""
        return links.run_link(self.tracking_uri, self.host(), experiment, run_id)

    def version_url(self, model: str, version: str) -> str:
        return links.version_link(self.registry_uri, self.host(), model, str(version))

    def run_tags(self, run_id: str) -> dict[str, str]:
        with self._edge(f"read the tags of run {run_id}"):
            return dict(self.client.get_run(run_id).data.tags)

    def version(self, model: str, version: str) -> Version:
        with self._edge(f"read {model} version {version}"):
            v = self.client.get_model_version(model, str(version))
        return _value(model, v)

    def by_alias(self, model: str, alias: str) -> Version | None:
        try:
            with self._edge(f"read alias {alias} of {model}"):
                v = self.client.get_model_version_by_alias(model, alias)
        except Permanent:  # unknown run or alias; a transient error is retried by the task
            return None
        return self.version(model, v.version)

    def champion(self, model: str, alias: str) -> dict | None:
        """{"model", "version", "metrics"} of the version holding the champion alias, or None."""
        v = self.by_alias(model, alias)
        if v is None:
            return None
        return {"model": model, "version": v.version, "metrics": self.run_metrics(v.run_id) if v.run_id else {}}

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        with self._edge(f"tag {model} version {version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(model, str(version), key, str(value))

    def set_alias(self, model: str, alias: str, version: str) -> None:
        with self._edge(f"point {alias} of {model} at version {version}"):
            self.client.set_registered_model_alias(model, alias, str(version))

    def transition_stage(self, model: str, version: str, stage: str) -> None:
        """Workspace registries still use stages: move the version there, archiving the others."""
        if self.uc:
            raise Permanent(
                f"Unity Catalog has no stages: {model} version {version} cannot move to {stage!r}; "
                "use aliases (unset [mlflow] promote_stage)"
            )
        with self._edge(f"move {model} version {version} to {stage}"):
            self.client.transition_model_version_stage(model, version, stage, archive_existing_versions=True)

    def versions(self, model: str) -> list[Version]:
        with self._edge(f"list the versions of {model}"):
            found = self.client.search_model_versions(f"name='{model}'")
        return [self.version(model, v.version) for v in found]

    def recent_versions(self, model: str, newer_than: int, max_pages: int = MAX_PAGES) -> list[Version]:
        """Versions numbered above `newer_than`, newest first, without tags or aliases on Unity Catalog; [] for a
        model that does not exist yet. Unity Catalog promises no order: every version is read (1,000 a request).
        Elsewhere a search newest first, in at most `max_pages` calls, stopping at the page that reaches
        `newer_than`."""
        if self.catalog is not None:
            try:
                return [v for v in self.catalog.versions(model) if v.number > newer_than]
            except NotFound:
                return []
        found: list[Version] = []
        token = None
        for _ in range(max_pages):
            try:
                page, token = self._search_page(model, token)
            except NotFound:  # Unity Catalog: the model is not there (yet)
                return []
            found += [v for v in page if v.number > newer_than]
            if not token or any(v.number <= newer_than for v in page):
                break  # newest first: this page reached the watermark
        return sorted(found, key=lambda v: v.number, reverse=True)

    def _search_page(self, model: str, token: str | None) -> tuple[list[Version], str | None]:
        # Databricks' registries are not asked for an order (Unity Catalog's refuses order_by); the others are
        order = {} if links.is_databricks(self.registry_uri) else {"order_by": ["version_number DESC"]}
        with self._edge(f"list the versions of {model}"):
            page = self.client.search_model_versions(f"name='{model}'", max_results=PAGE, page_token=token, **order)
        values = sorted((_value(model, v) for v in page), key=lambda v: v.number, reverse=True)
        return values, page.token or None

    def model_aliases(self, model: str) -> dict[str, str]:
        """alias -> version, in one call; {} for a model that does not exist yet."""
        if self.catalog is not None:
            try:
                return self.catalog.aliases(model)
            except NotFound:
                return {}
        try:
            with self._edge(f"read the aliases of {model}"):
                return {a: str(v) for a, v in (self.client.get_registered_model(model).aliases or {}).items()}
        except NotFound:
            return {}

    def listed_models(self, schema: str) -> dict[str, int]:
        """Every registered model of `schema` ("catalog.schema") the bot may read → its `updated_at` (ms), by
        lower-cased full name (Unity Catalog only: `catalog.Catalog.listed_models`)."""
        if self.catalog is None:
            raise Permanent(f"{self.registry_uri} is not Unity Catalog: its models are not listed by schema")
        return self.catalog.listed_models(schema)

    def copy_version(self, src_name: str, version: str, dst_name: str) -> Version:
        """`src_name` version `version` as a new version of `dst_name` (another catalog), once: a version of
        `dst_name` whose source is models:/<src>/<v> already is the copy.

        Not `copy_model_version`: in the 3.17 client it fails for versions without a `model_id`, which every
        version registered from a non-Databricks tracking store is (MLflow #22012), and leaves an empty model.
        """
        source = f"models:/{src_name}/{version}"
        with self._edge(f"read {src_name} version {version}"):
            src = self.client.get_model_version(src_name, str(version))
        existing = self._copy_of(dst_name, source, src.run_id or "")
        if existing is not None:
            return existing
        with self._edge(f"create {dst_name}"):
            try:
                self.client.create_registered_model(dst_name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        with self._edge(f"copy {source} to {dst_name}"):
            mv = self.client.create_model_version(
                dst_name,
                source=source,
                run_id=src.run_id or None,
                tags=dict(src.tags or {}),
                description=src.description or None,
            )
        return self.version(dst_name, mv.version)

    def _copy_of(self, dst_name: str, source: str, run_id: str) -> Version | None:
        """The version of `dst_name` copied from `source`, if any (by the run id when there is one: one call)."""
        what = f"run_id='{run_id}'" if run_id else f"name='{dst_name}'"
        try:
            with self._edge(f"look for a copy of {source} in {dst_name}"):
                found = list(self.client.search_model_versions(what))
        except NotFound:  # Unity Catalog: the destination model does not exist yet
            return None
        for v in found:
            if v.name != dst_name or v.source != source or v.status == FAILED:
                continue
            if v.status != PENDING:
                return self.version(dst_name, v.version)
            self._abandoned(v, source)
        return None

    def _abandoned(self, v, source: str) -> None:
        """A copy still being registered: never the copy (it has no files until it is finalized). Deleted when the
        task that made it died (it is older than ABANDONED_AFTER_S), so a new copy is made; else wait for it."""
        age_s = time.time() - int(v.creation_timestamp or 0) / 1000
        if age_s < ABANDONED_AFTER_S:  # retried once its maker, if it is gone, can be known to be gone
            wait = ABANDONED_AFTER_S - age_s + 1
            raise Transient(f"{v.name} v{v.version} (a copy of {source}) is still being registered", wait=wait)
        with self._edge(f"delete the abandoned copy {v.name} v{v.version}"):
            self.client.delete_model_version(v.name, str(v.version))


def _value(model: str, v) -> Version:
    tags = dict(_unless_searched(v, "tags") or {})
    return Version(
        model,
        str(v.version),
        v.run_id or tags.get("mlflow_run_id", ""),
        tags,
        tuple(_unless_searched(v, "aliases") or []),
        getattr(v, "current_stage", "") or "",
        str(getattr(v, "status", "") or "READY"),
        v.source or "",
        int(v.creation_timestamp or 0),
        str(getattr(v, "user_id", "") or ""),
    )


def _unless_searched(v, name: str):
    """A version's tags or aliases; None from a Unity Catalog search, whose results have neither (mlflow's
    ModelVersionSearch replaces both with methods that raise)."""
    value = getattr(v, name, None)
    return None if callable(value) else value
