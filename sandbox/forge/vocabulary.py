"""The forge's shared vocabulary: permission ranks, reactions, id bases, timestamps, node ids and API errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

PERM_RANK = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
ID_BASES = {
    "repo": 100,
    "issue": 2000,
    "pull": 5000,
    "comment": 10000,
    "reaction": 20000,
    "status": 30000,
    "check_run": 40000,
    "check_suite": 45000,
    "delivery": 1,
    "user": 1000,
    "hook": 500,
    "deployment": 60000,
    "deployment_status": 70000,
    "environment": 80000,
    "team": 90000,
}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode().rstrip("=")


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def validation_error(
    message: str | None = None, *, resource: str = "PullRequest", field: str | None = None, code: str = "custom"
) -> ApiError:
    err = {"resource": resource, "code": code}
    if field:
        err["field"] = field
    if message and code == "custom":
        err["message"] = message
    return ApiError(422, "Validation Failed", [err])
