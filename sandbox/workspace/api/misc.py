"""The current user, the sandbox's fault injection endpoints, and the answers `apply_then_*` faults lose."""

from __future__ import annotations

import socket

from flask import Blueprint, Response, jsonify, request

from .web import USER, caller, error_response, workspace

bp = Blueprint("misc", __name__)


@bp.get("/api/2.0/preview/scim/v2/Me")
def me():
    """Whose token this is: the admin user, or a service principal (userName = its application id)."""
    who = caller().name
    if who != USER:
        return jsonify({"id": who, "userName": who, "displayName": who, "active": True, "emails": [], **SP_SCHEMAS})
    return jsonify(
        {
            "id": "1",
            "userName": USER,
            "displayName": "Sandbox User",
            "active": True,
            "emails": [{"value": USER, "primary": True, "type": "work"}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        }
    )


SP_SCHEMAS = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"]}


@bp.get("/sandbox/faults")
def sandbox_faults():
    return jsonify({"faults": workspace.faults.describe()})


@bp.post("/sandbox/faults")
def sandbox_faults_add():
    spec = (request.get_json(silent=True) or {}).get("spec", "")
    try:
        workspace.faults.add(spec)
    except ValueError as e:
        return error_response(400, "INVALID_PARAMETER_VALUE", str(e))
    return jsonify({"faults": workspace.faults.describe()})


@bp.after_app_request
def lose_the_answer(response: Response) -> Response:
    """`apply_then_*` faults: the request was applied; its answer is lost (connection closed) or replaced."""
    if request.path.startswith("/sandbox/") or response.status_code >= 400:
        return response  # a refused request changed nothing: no ambiguity to inject
    fault = workspace.faults.take_after(request.method, request.path)
    if fault is None:
        return response
    if fault.after == "status":
        return fault.answer()
    conn = request.environ.get("werkzeug.socket")
    if conn is not None:  # the client reads EOF where the answer should be: "Connection aborted"
        conn.shutdown(socket.SHUT_RDWR)
    return response
