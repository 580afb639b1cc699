"""Where the workspace's sign-in is found and OAuth machine-to-machine tokens are issued.

databricks-sdk's ``oauth-m2m`` (``credentials_provider.oauth_service_principal``) reads the host's metadata at
``/.well-known/databricks-config`` (its ``oidc_endpoint``), the authorization server's metadata at
``{oidc_endpoint}/.well-known/oauth-authorization-server`` (RFC 8414; older SDKs go there directly), then posts
``grant_type=client_credentials&scope=all-apis`` to its ``token_endpoint`` (Databricks: ``/oidc/v1/token``) with the
client ID and secret as HTTP Basic auth. Errors are RFC 6749 §5.2's JSON (``error``, ``error_description``), not
Databricks' API error shape: the SDK reads ``error`` and ``error_description`` from them.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, jsonify, request

from ..oauth import SCOPE
from .web import workspace

bp = Blueprint("oidc", __name__)
WORKSPACE_ID = "1234567890123456"  # a workspace id is a number; the sandbox has one workspace
# RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control" response header field with a
# value of "no-store" in any response containing tokens, credentials, or other sensitive information"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _root() -> str:
    return request.url_root.rstrip("/")


@bp.get("/.well-known/databricks-config")
def host_metadata():
    """The host's metadata: where its OIDC endpoints are (databricks-sdk's ``HostMetadata``)."""
    return jsonify({"oidc_endpoint": f"{_root()}/oidc", "workspace_id": WORKSPACE_ID})


@bp.get("/oidc/.well-known/oauth-authorization-server")
def authorization_server():
    """RFC 8414 metadata. No ``authorization_endpoint``: "REQUIRED unless no grant types are supported that use the
    authorization endpoint", and the sandbox serves only the client credentials grant (no browser sign-in)."""
    return jsonify(
        {
            "issuer": f"{_root()}/oidc",
            "token_endpoint": f"{_root()}/oidc/v1/token",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": [SCOPE],
            "response_types_supported": [],
        }
    )


@bp.post("/oidc/v1/token")
def token():
    """The client credentials grant (RFC 6749 §4.4): a service principal's client ID and secret -> an access token."""
    form = request.form
    basic = request.headers.get("Authorization", "")
    if not form.get("grant_type"):
        return oauth_error(400, "invalid_request", "The request is missing the grant_type parameter.")
    if basic and ("client_id" in form or "client_secret" in form):
        # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each request."
        return oauth_error(400, "invalid_request", "Use one way to authenticate the client: Basic auth or the form.")
    client_id, secret = _basic(basic) if basic else (form.get("client_id", ""), form.get("client_secret", ""))
    principal = workspace.principals.signed_in(client_id, secret) if client_id else None
    if principal is None:
        reason = "unknown client or wrong client secret" if client_id else "no client authentication included"
        return oauth_error(401, "invalid_client", f"Client authentication failed: {reason}.", basic_used=bool(basic))
    if form["grant_type"] != "client_credentials":
        return oauth_error(
            400,
            "unsupported_grant_type",
            f"Grant type {form['grant_type']!r} is not supported: use client_credentials.",
        )
    scope = form.get("scope") or SCOPE  # RFC 6749 §3.3: a missing scope gets "a pre-defined default value"
    if set(scope.split()) != {SCOPE}:
        return oauth_error(400, "invalid_scope", f"Scope {scope!r} is not granted here: ask for {SCOPE}.")
    answer = jsonify(workspace.issuer.issue(principal.name, f"{_root()}/oidc", SCOPE))
    answer.headers.update(NO_STORE)
    return answer


def _basic(header: str) -> tuple[str, str]:
    """(client ID, secret) from ``Basic base64(id:secret)``; ("", "") when it is not that."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return client_id, secret


def oauth_error(status: int, error: str, description: str, basic_used: bool = False) -> Response:
    """RFC 6749 §5.2's error response."""
    answer = jsonify({"error": error, "error_description": description})
    answer.status_code = status
    answer.headers.update(NO_STORE)
    if basic_used:
        # §5.2, invalid_client: "If the client attempted to authenticate via the "Authorization" request header
        # field, the authorization server MUST respond with an HTTP 401 (Unauthorized) status code and include the
        # "WWW-Authenticate" response header field matching the authentication scheme used by the client."
        answer.headers["WWW-Authenticate"] = 'Basic realm="sandbox workspace"'
    return answer
