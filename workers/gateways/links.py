"""Links to the right UI for a run and a model version, per kind of tracking or registry URI. Pure.

    kind            run                                          model version
    MLflow OSS      <tracking>/#/experiments/<exp>/runs/<run>    <registry>/#/models/<name>/versions/<v>
    Databricks      <host>/ml/experiments/<exp>/runs/<run>       <host>#mlflow/models/<name>/versions/<v>  (workspace registry)
    Unity Catalog   (tracking is Databricks or OSS, as above)    <host>/explore/data/models/<cat>/<schema>/<model>/version/<v>

Shapes as MLflow 3.17 builds them itself: the run link it prints at the end of a run
(`mlflow/tracking/_tracking_service/client.py`: `{host}/ml/experiments/{exp}` on Databricks, else
`{host}/#/experiments/{exp}`, + `/runs/{run}`) and `_construct_databricks_uc_registered_model_url` in
`mlflow/utils/databricks_utils.py` (`{host}/explore/data/models/{name with . → /}/version/{v}`), and for the legacy
workspace registry `_construct_databricks_model_version_url` there (`{host}#mlflow/models/{name}/versions/{v}`).
The Databricks docs searched (models-in-uc, workspace model registry, experiments) name these pages ("Catalog
Explorer", "Experiments") but print no URL shapes; `?o=<workspace id>` is optional and left out.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

Kind = Literal["databricks-uc", "databricks", "oss", "none"]
UC = "databricks-uc"


def kind(uri: str) -> Kind:
    """What serves this tracking or registry URI: Unity Catalog, a Databricks workspace, an MLflow server,
    or nothing with a UI (a local sqlite database or directory)."""
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else uri.lower()
    if scheme == UC:
        return "databricks-uc"
    if scheme == "databricks":
        return "databricks"
    if scheme in ("http", "https"):
        return "oss"
    return "none"


def is_databricks(uri: str) -> bool:
    return kind(uri) in ("databricks", "databricks-uc")


def run_link(tracking_uri: str, host: str, experiment_id: str, run_id: str) -> str:
    """The run's page; '' when the tracking store has no UI or the Databricks host is unknown."""
    if not (experiment_id and run_id):
        return ""
    where = kind(tracking_uri)
    if where == "oss":
        return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    if where == "databricks" and host:
        return f"{host.rstrip('/')}/ml/experiments/{experiment_id}/runs/{run_id}"
    return ""


def version_link(registry_uri: str, host: str, model: str, version: str) -> str:
    """The model version's page in the registry's own UI; '' when there is none or the host is unknown."""
    where = kind(registry_uri)
    if where == "oss":
        return f"{registry_uri.rstrip('/')}/#/models/{quote(model, safe='')}/versions/{version}"
    if not host:
        return ""
    if where == "databricks-uc" and len(parts := model.split(".")) == 3:
        return f"{host.rstrip('/')}/explore/data/models/{'/'.join(quote(p, safe='') for p in parts)}/version/{version}"
    if where == "databricks":
        return f"{host.rstrip('/')}#mlflow/models/{quote(model, safe='')}/versions/{version}"
    return ""
