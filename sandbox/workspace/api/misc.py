"""Discovery, the current user and the sandbox's fault injection endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from .web import USER, error_response, workspace

bp = Blueprint("misc", __name__)


@bp.get("/.well-known/databricks-config")
def well_known():
    return error_response(404, "NOT_FOUND", "Not available in the sandbox workspace")


@bp.get("/api/2.0/preview/scim/v2/Me")
def me():
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
