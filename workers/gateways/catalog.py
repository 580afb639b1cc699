"""Unity Catalog's own API (`/api/2.1/unity-catalog/models…`) through databricks-sdk: the registry reads that
polling makes (workers/release/polling.py) and that MLflow's client has no cheaper form of. `registry.Registry`
uses it when the registry is Unity Catalog; MLflow's client does everything else.

What each read rests on (databricks-sdk's docstrings, which are Databricks' REST reference):
- `listed_models`: `registered_models.list(catalog_name=, schema_name=)` -- "You can list registered models under a
  particular schema"; "filtered based on the privileges of the calling user" (a model the bot may not read is
  left out, not refused); "a page may contain zero results while still providing a next_page_token. Clients must
  continue reading pages until next_page_token is absent" (the SDK's iterator does); up to 10,000 models a page.
- `versions`: `model_versions.list(full_name)` -- "There is no guarantee of a specific ordering of the elements in
  the response. The elements in the response will not contain any aliases or tags": every page is read (1,000
  versions a page) and nothing is inferred from the order.
- `aliases`: `registered_models.get(full_name, include_aliases=True)` -- "Whether to include registered model
  aliases in the response".
Each call is one request: the client is built once (MLflow's own client builds one per call, and databricks-sdk
asks `/.well-known/databricks-config` each time it is built: two requests a call). Errors are translated here by
`workers.errors`; a model that does not exist is `NotFound`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError
from requests import RequestException

from workers.errors import Permanent, classify
from workers.gateways import Version

VERSIONS_PAGE = 1000  # "the minimum of this value and a server configured value(1000, as of 1/3/2024)"


class Catalog:
    def __init__(self, registry_uri: str, client: WorkspaceClient | None = None):
        self.registry_uri = registry_uri
        self._client = client

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            yield
        except (DatabricksError, RequestException, OSError) as exc:
            raise classify(exc, f"Unity Catalog ({self.registry_uri}) could not {what}: {exc}") from exc

    def client(self) -> WorkspaceClient:
        """Signed in as MLflow's UC client is: the registry URI's profile (`databricks-uc://PROFILE`), else
        DATABRICKS_CONFIG_PROFILE, else the environment (DATABRICKS_HOST and a token, or OAuth); bounded like the
        gateway's MLflow calls (15 s a request, 30 s of retries)."""
        if self._client is None:
            from mlflow.utils.uri import get_db_info_from_uri

            profile, secret_prefix = get_db_info_from_uri(self.registry_uri)
            if secret_prefix is not None:
                raise Permanent(f"{self.registry_uri}: a secret-scope registry URI is not supported for polling")
            profile = profile or os.environ.get("DATABRICKS_CONFIG_PROFILE")
            signed_in: dict[str, Any] = {"profile": profile} if profile else {}
            try:
                config = Config(**signed_in, http_timeout_seconds=15, retry_timeout_seconds=30)
            except ValueError as exc:  # no credentials it can use
                raise Permanent(f"Unity Catalog ({self.registry_uri}): cannot sign in: {exc}") from exc
            self._client = WorkspaceClient(config=config)
        return self._client

    def listed_models(self, schema: str) -> dict[str, int]:
        """Every registered model of `schema` ("catalog.schema") the bot may read → its `updated_at` (ms), by
        lower-cased full name."""
        catalog, _, name = schema.partition(".")
        with self._edge(f"list the registered models of {schema}"):
            listed = self.client().registered_models.list(catalog_name=catalog, schema_name=name)
            return {(m.full_name or "").lower(): int(m.updated_at or 0) for m in listed}

    def versions(self, model: str) -> list[Version]:
        """Every version of `model`, newest first (sorted here), without tags or aliases."""
        with self._edge(f"list the versions of {model}"):
            found = list(self.client().model_versions.list(model, max_results=VERSIONS_PAGE))
        values = (
            Version(
                model,
                str(v.version or 0),
                v.run_id or "",
                status=v.status.value if v.status else "READY",
                source=v.source or "",
                created=int(v.created_at or 0),
                created_by=v.created_by or "",
            )
            for v in found
        )
        return sorted(values, key=lambda v: v.number, reverse=True)

    def aliases(self, model: str) -> dict[str, str]:
        """alias -> version."""
        with self._edge(f"read the aliases of {model}"):
            found = self.client().registered_models.get(model, include_aliases=True)
        return {a.alias_name: str(a.version_num) for a in found.aliases or [] if a.alias_name}
