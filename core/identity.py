"""Who the bot is on Databricks, whom its jobs run as, and who may open their runs.

Sign-in goes through databricks-sdk's unified auth; each environment chooses one way, and every
secret comes from an environment variable whose *name* is configured here:

- ``client_id`` + ``client_secret_env``: a Databricks service principal, OAuth machine-to-machine
  (the production choice on any cloud);
- ``azure_client_id`` + ``azure_tenant_id`` + ``azure_client_secret_env``: a Microsoft Entra ID
  service principal (Azure);
- ``token_env``: a token (a service principal's or, for a sandbox, a personal access token).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

AuthKind = Literal["pat", "oauth-m2m", "azure-client-secret"]  # databricks.sdk.Config auth_type names
AUTH_HELP = (
    "say how the bot signs in: `client_id` + `client_secret_env` (OAuth service principal), "
    "`azure_client_id` + `azure_tenant_id` + `azure_client_secret_env` (Azure service principal), "
    "or `token_env`"
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(Strict):
    """One Databricks workspace: where it is, how the bot signs in, whom jobs run as."""

    host: str
    token_env: str = ""
    client_id: str = ""  # the service principal's application id
    client_secret_env: str = ""
    azure_client_id: str = ""
    azure_tenant_id: str = ""
    azure_client_secret_env: str = ""
    azure_workspace_resource_id: str = ""
    run_as_service_principal: str = ""  # application id; jobs run as it, not as the bot
    retry_timeout_seconds: int = Field(60, gt=0)

    @model_validator(mode="after")
    def _one_way_in(self) -> Environment:
        kinds = [
            kind
            for kind, given in (
                ("pat", self.token_env),
                ("oauth-m2m", self.client_id or self.client_secret_env),
                ("azure-client-secret", self.azure_client_id or self.azure_tenant_id or self.azure_client_secret_env),
            )
            if given
        ]
        if len(kinds) != 1:
            raise ValueError(AUTH_HELP + ("" if not kinds else f" (one of them; got {', '.join(kinds)})"))
        missing = [key for key in _REQUIRED[kinds[0]] if not getattr(self, key)]
        if missing:
            raise ValueError(f"{kinds[0]} sign-in also needs {', '.join(missing)}")
        return self

    @property
    def auth_type(self) -> AuthKind:
        if self.token_env:
            return "pat"
        return "oauth-m2m" if self.client_id else "azure-client-secret"


_REQUIRED = {
    "pat": ("token_env",),
    "oauth-m2m": ("client_id", "client_secret_env"),
    "azure-client-secret": ("azure_client_id", "azure_tenant_id", "azure_client_secret_env"),
}


class DatabricksAccess(Strict):
    """Job permissions, so the people who asked can open the run links the bot posts.

    Least privilege: CAN_VIEW reads runs and their output; CAN_MANAGE_RUN (cancel, repair in the
    Databricks UI) only for `manage_run`. /cancel on a PR goes through the bot and needs neither.
    """

    users: dict[str, str] = {}  # GitHub login -> Databricks user name (email): CAN_VIEW
    view_group: str = ""  # a Databricks group given CAN_VIEW on every job
    manage_run: list[str] = []  # GitHub logins (in `users`) given CAN_MANAGE_RUN instead

    @model_validator(mode="after")
    def _known(self) -> DatabricksAccess:
        for login in self.manage_run:
            if login not in self.users:
                raise ValueError(f"manage_run: {login!r} is not in [databricks.users]; map it to a Databricks user")
        for login, user in self.users.items():
            if not user.strip():
                raise ValueError(f"users.{login}: give the Databricks user name (their email)")
        return self
