"""Who calls the sandbox workspace: a token per principal, and the principal a job's tasks run as.

* The workspace's own token (``--token``) is the workspace admin, ``sandbox-user@example.com``, who is also the
  metastore admin: Unity Catalog checks none of its calls ("The caller must be a metastore admin or ...").
* ``--service-principal APP_ID=TOKEN`` (repeatable) seeds a service principal, named by its application id as
  Unity Catalog names it in grants and in ``created_by``; it may do only what it owns or was granted.
* ``--oauth-secret APP_ID=SECRET`` (repeatable) gives a seeded service principal an OAuth secret: it then signs in
  machine-to-machine at the token endpoint (``api/oidc.py``) with its application id as client ID ("The client ID
  is the same as the service principal's application ID.") and gets access tokens that act as it.
* A job's ``run_as`` names the principal its tasks run as; without one, its owner (the principal that created
  it). A task is given a token of that principal, never the caller's. A ``run_as`` naming a principal the
  workspace does not know is refused (``api/job_access.py``), as Databricks refuses it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from dataclasses import dataclass

ADMIN = "sandbox-user@example.com"


@dataclass(frozen=True)
class Principal:
    name: str  # a user's email, a service principal's application id
    admin: bool = False

    @property
    def service_principal(self) -> bool:
        return "@" not in self.name


class Principals:
    """Tokens by principal and principals by token; the admin's token is the one given with ``--token``."""

    def __init__(self, admin_token: str, service_principals: dict[str, str] | None = None):
        self.lock = threading.Lock()
        self.admin = Principal(ADMIN, admin=True)
        self._tokens: dict[str, str] = {ADMIN: admin_token}
        self._by_token: dict[str, Principal] = {admin_token: self.admin}
        self._secrets: dict[str, str] = {}  # application id -> OAuth secret
        for name, token in (service_principals or {}).items():
            self.add(name, token)

    def add_secret(self, name: str, secret: str) -> None:
        """Give service principal `name` (seeded already) an OAuth secret for machine-to-machine sign-in."""
        principal = self.named(name)
        if principal is None or not principal.service_principal:
            raise ValueError(f"--oauth-secret {name}: not a service principal of this workspace (seed it first)")
        if not secret:
            raise ValueError(f"--oauth-secret {name}: give APP_ID=SECRET")
        with self.lock:
            self._secrets[name] = secret

    def signed_in(self, client_id: str, secret: str) -> Principal | None:
        """The service principal whose client ID and OAuth secret these are, else None."""
        with self.lock:
            known = self._secrets.get(client_id)
        if known is None or not hmac.compare_digest(known.encode(), secret.encode()):
            return None
        return self.named(client_id)

    def named(self, name: str) -> Principal | None:
        with self.lock:
            token = self._tokens.get(name)
            return self._by_token[token] if token is not None else None

    def add(self, name: str, token: str = "") -> Principal:
        """A principal (again: its token is kept) with `token`, or a fresh one."""
        with self.lock:
            if name in self._tokens:
                return self._by_token[self._tokens[name]]
            token = token or "dapi-" + secrets.token_hex(16)
            if token in self._by_token:
                raise ValueError(f"the token of {name} is already {self._by_token[token].name}'s")
            principal = Principal(name)
            self._tokens[name], self._by_token[token] = token, principal
            return principal

    def of_token(self, token: str) -> Principal | None:
        with self.lock:
            return self._by_token.get(token)

    def known(self, name: str) -> bool:
        with self.lock:
            return name in self._tokens

    def token_of(self, name: str) -> str:
        """The token a task running as `name` is given ("" for nobody the workspace knows)."""
        with self.lock:
            return self._tokens.get(name, "")


def parse_service_principal(spec: str) -> tuple[str, str]:
    """``APP_ID=TOKEN`` (or ``APP_ID``: a token is made up) from the command line."""
    name, _, token = spec.partition("=")
    if not name.strip() or "@" in name:
        raise ValueError(f"--service-principal {spec!r}: give APP_ID=TOKEN (an application id, not an email)")
    return name.strip(), token.strip()


def parse_oauth_secret(spec: str) -> tuple[str, str]:
    """``APP_ID=SECRET`` from the command line."""
    name, _, secret = spec.partition("=")
    if not name.strip() or not secret.strip():
        raise ValueError(f"--oauth-secret {spec!r}: give APP_ID=SECRET")
    return name.strip(), secret.strip()


def run_as_name(settings: dict, owner: str) -> str:
    """Whom a job's tasks run as: its ``run_as`` (user, service principal or group name), else its owner."""
    run_as = settings.get("run_as") or {}
    return next((run_as[k] for k in ("service_principal_name", "user_name") if run_as.get(k)), owner)
