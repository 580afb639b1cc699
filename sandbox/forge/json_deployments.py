"""GitHub JSON for deployments, deployment statuses and environments (`components/schemas/deployment`,
`deployment-status`, `environment` of the OpenAPI description)."""

from __future__ import annotations

from urllib.parse import quote

from .vocabulary import node_id


def deployment_json(forge, rec: dict, d: dict) -> dict:
    api = f"{forge.base}/repos/{rec['full_name']}"
    return {
        "url": f"{api}/deployments/{d['id']}",
        "id": d["id"],
        "node_id": node_id("Deployment", d["id"]),
        "sha": d["sha"],
        "ref": d["ref"],
        "task": d["task"],
        "payload": d["payload"],
        "original_environment": d["original_environment"],
        "environment": d["environment"],
        "description": d["description"],
        "creator": forge.user_json(d["creator"]),
        "created_at": d["created_at"],
        "updated_at": d["updated_at"],
        "statuses_url": f"{api}/deployments/{d['id']}/statuses",
        "repository_url": api,
        "transient_environment": d["transient_environment"],
        "production_environment": d["production_environment"],
        "performed_via_github_app": None,
    }


def deployment_status_json(forge, rec: dict, d: dict, s: dict) -> dict:
    api = f"{forge.base}/repos/{rec['full_name']}"
    status = {
        "url": f"{api}/deployments/{d['id']}/statuses/{s['id']}",
        "id": s["id"],
        "node_id": node_id("DeploymentStatus", s["id"]),
        "state": s["state"],
        "creator": forge.user_json(s["creator"]),
        "description": s["description"],
        "environment": s["environment"],
        "target_url": s["log_url"],
        "created_at": s["created_at"],
        "updated_at": s["created_at"],
        "deployment_url": f"{api}/deployments/{d['id']}",
        "repository_url": api,
        "environment_url": s["environment_url"],
        "log_url": s["log_url"],
        "performed_via_github_app": None,
    }
    if not status["environment_url"]:
        # optional in both descriptions; the webhook schema's `oneOf [enum "", uri]` cannot tell "" apart (formats
        # are not checked), so an unset URL is left out rather than sent empty
        del status["environment_url"]
    return status


def environment_json(forge, rec: dict, env: dict) -> dict:
    name = quote(env["name"], safe="")
    return {
        "id": env["id"],
        "node_id": node_id("Environment", env["id"]),
        "name": env["name"],
        "url": f"{forge.base}/repos/{rec['full_name']}/environments/{name}",
        "html_url": f"{forge.base}/{rec['full_name']}/deployments/activity_log?environments_filter={name}",
        "created_at": env["created_at"],
        "updated_at": env["updated_at"],
        "protection_rules": [],
        "deployment_branch_policy": None,
    }
