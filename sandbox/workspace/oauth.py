"""OAuth machine-to-machine sign-in: the access tokens the workspace's token endpoint issues, and their check.

Databricks ("Authorize service principal access to Databricks with OAuth", docs.databricks.com/dev-tools/auth/
oauth-m2m): a service principal signs in with its client ID (its application id) and an OAuth secret, and "Each
access token is valid for one hour, after which a new token is automatically requested." Databricks' access
tokens are JWTs; here they are JWTs too (HS256, signed with a key kept in the data directory, so a token stays good
across a restart of the stand-in, as a Databricks token stays good for its hour). Only the stand-in reads them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

TOKEN_LIFETIME_SECONDS = 3600  # "Each access token is valid for one hour"
SCOPE = "all-apis"  # what databricks-sdk asks for (Config.get_scopes_as_string)
HEADER = {"alg": "HS256", "typ": "JWT"}


@dataclass(frozen=True)
class Verdict:
    """Whose token it is, or why it is refused (`who` empty)."""

    who: str = ""
    reason: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(data_dir: str | os.PathLike) -> bytes:
    """The key in ``DIR/oauth-signing-key``, made on first use (0600)."""
    path = Path(data_dir) / "oauth-signing-key"
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


class Issuer:
    """Issues access tokens for a principal and tells whose a token is (its signature and expiry checked)."""

    def __init__(self, key: bytes, lifetime: int = TOKEN_LIFETIME_SECONDS):
        if lifetime <= 0:
            raise ValueError(f"the OAuth token lifetime must be positive seconds; got {lifetime}")
        self.key, self.lifetime = key, lifetime

    def issue(self, principal: str, issuer: str, scope: str = SCOPE) -> dict:
        """The token endpoint's successful answer (RFC 6749 §5.1)."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": principal,
            "client_id": principal,
            "scope": scope,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": secrets.token_hex(8),
        }
        head = _b64(json.dumps(HEADER).encode()) + "." + _b64(json.dumps(claims).encode())
        token = head + "." + _b64(self._sign(head))
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime, "scope": scope}

    def verify(self, token: str) -> Verdict:
        parts = token.split(".")
        if len(parts) != 3:
            return Verdict(reason="not an access token this workspace issued")
        head = parts[0] + "." + parts[1]
        try:
            good = hmac.compare_digest(_unb64(parts[2]), self._sign(head))
            claims = json.loads(_unb64(parts[1])) if good else {}
        except ValueError:
            return Verdict(reason="not an access token this workspace issued")
        if not good or not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            return Verdict(reason="not an access token this workspace issued")
        if claims["exp"] <= time.time():
            return Verdict(reason="the access token expired; ask the token endpoint for a new one")
        return Verdict(who=str(claims.get("sub", "")))

    def _sign(self, head: str) -> bytes:
        return hmac.new(self.key, head.encode(), hashlib.sha256).digest()
