"""The MLflow tracking server and model registry, through MlflowClient.

Open-source MLflow expresses approvals with version tags and aliases (`champion`); stages are
deprecated there but still used by Databricks workspace registries, so both are supported.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


@dataclass
class Version:
    model: str
    version: str
    run_id: str
    tags: dict[str, str]
    aliases: list[str]
    stage: str


class Registry:
    def __init__(self, tracking_uri: str, client: MlflowClient | None = None):
        self.tracking_uri = tracking_uri.rstrip("/")
        self.client = client or MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        try:
            return dict(self.client.get_run(run_id).data.metrics)
        except MlflowException:
            return {}

    def run_url(self, run_id: str) -> str:
        try:
            experiment = self.client.get_run(run_id).info.experiment_id
        except MlflowException:
            return ""
        return f"{self.tracking_uri}/#/experiments/{experiment}/runs/{run_id}"

    def version(self, model: str, version: str) -> Version:
        v = self.client.get_model_version(model, str(version))
        tags = dict(v.tags or {})
        return Version(model, str(v.version), v.run_id or tags.get("mlflow_run_id", ""), tags,
                       list(getattr(v, "aliases", []) or []), v.current_stage or "")

    def by_alias(self, model: str, alias: str) -> Version | None:
        try:
            v = self.client.get_model_version_by_alias(model, alias)
        except MlflowException:
            return None
        return self.version(model, v.version)

    def champion(self, model: str, alias: str) -> dict | None:
        """{"model", "version", "metrics"} of the version holding the champion alias, or None."""
        v = self.by_alias(model, alias)
        if v is None:
            return None
        return {"model": model, "version": v.version, "metrics": self.run_metrics(v.run_id) if v.run_id else {}}

    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model, str(version), key, str(value))

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model, alias, str(version))

    def versions(self, model: str) -> list[Version]:
        return [self.version(model, v.version) for v in self.client.search_model_versions(f"name='{model}'")]
