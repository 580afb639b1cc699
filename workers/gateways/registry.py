"""The MLflow tracking server and model registry, through MlflowClient.

Open-source MLflow expresses approvals with version tags and aliases (`champion`); stages are
deprecated there but still used by Databricks workspace registries, so both are supported.
Methods return `workers.gateways` values; MLflow errors are translated here by `workers.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from requests import RequestException

from workers.errors import Permanent, classify
from workers.gateways import Version


class Registry:
    def __init__(self, tracking_uri: str, client: MlflowClient | None = None):
        self.tracking_uri = tracking_uri.rstrip("/")
        self.client = client or MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            yield
        except (MlflowException, RequestException, OSError) as exc:
            raise classify(exc, f"MLflow ({self.tracking_uri}) could not {what}: {exc}") from exc

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
        return f"{self.tracking_uri}/#/experiments/{experiment}/runs/{run_id}"

    def run_tags(self, run_id: str) -> dict[str, str]:
        with self._edge(f"read the tags of run {run_id}"):
            return dict(self.client.get_run(run_id).data.tags)

    def version(self, model: str, version: str) -> Version:
        with self._edge(f"read {model} version {version}"):
            v = self.client.get_model_version(model, str(version))
        tags = dict(v.tags or {})
        return Version(
            model,
            str(v.version),
            v.run_id or tags.get("mlflow_run_id", ""),
            tags,
            tuple(getattr(v, "aliases", []) or []),
            v.current_stage or "",
        )

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
        with self._edge(f"move {model} version {version} to {stage}"):
            self.client.transition_model_version_stage(model, version, stage, archive_existing_versions=True)

    def versions(self, model: str) -> list[Version]:
        with self._edge(f"list the versions of {model}"):
            found = self.client.search_model_versions(f"name='{model}'")
        return [self.version(model, v.version) for v in found]
