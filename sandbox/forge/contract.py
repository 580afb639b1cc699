"""GitHub's published REST contract (the vendored, trimmed `@octokit/openapi` in contracts/github/), read by the
forge to refuse requests GitHub refuses, and by the contract tests to check the forge's answers and webhooks.

OpenAPI 3.0 schemas become JSON Schema (draft 7) by turning `nullable: true` into a `null` type; `$ref`s resolve
inside the one vendored document.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from jsonschema import Draft7Validator

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts" / "github"
METHODS = ("get", "post", "put", "patch", "delete")
# Path parameters that may hold a `/` (a ref such as heads/main, a file path, a branch name).
SLASHED_PARAMS = {"ref", "path", "branch"}
# Paths GitHub still answers though the OpenAPI description no longer lists them, each with the documented
# operation whose answer it gives; PyGithub calls them (Commit.get_statuses, Repository.get_git_refs).
ALIASES = {
    ("get", "/repos/{owner}/{repo}/statuses/{ref}"): "/repos/{owner}/{repo}/commits/{ref}/statuses",
    ("get", "/repos/{owner}/{repo}/git/refs"): "/repos/{owner}/{repo}/git/matching-refs/{ref}",
    ("get", "/repos/{owner}/{repo}/git/refs/{ref}"): "/repos/{owner}/{repo}/git/ref/{ref}",
}


# Where GitHub answers what its published description does not allow, confirmed on GitHub's own tracker: a pull
# request whose fork was deleted has `head.repo: null` (github/rest-api-description#161, #424 for `pull-request`,
# #1811 for `pull-request-simple`); the webhook schemas already allow it (`oneOf [repository, null]`).
KNOWN_NULLABLE = (("pull-request", ("head", "repo")), ("pull-request-simple", ("head", "repo")))


def with_known_nullables(doc: dict) -> dict:
    """The description with the `KNOWN_NULLABLE` properties marked `nullable` (nothing else changes)."""
    schemas = doc.get("components", {}).get("schemas", {})
    for name, (outer, prop) in KNOWN_NULLABLE:
        if name in schemas:
            schemas[name]["properties"][outer]["properties"][prop]["nullable"] = True
    return doc


def nullable_to_null(node):
    """OpenAPI 3.0's `nullable: true` as JSON Schema: `null` is one more allowed type (and enum value)."""
    if isinstance(node, list):
        return [nullable_to_null(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable_to_null(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict
    pattern: re.Pattern

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


@dataclass(frozen=True)
class Problem:
    """One way an exchange departs from the contract: where (`at`) and what."""

    at: str
    message: str

    def __str__(self) -> str:
        return f"{self.at}: {self.message}"


def template_pattern(template: str) -> re.Pattern:
    def param(m: re.Match) -> str:
        name = m.group(1)
        return (
            f"(?P<{name}>.*)"
            if name == "path"
            else f"(?P<{name}>.+)"
            if name in SLASHED_PARAMS
            else f"(?P<{name}>[^/]+)"
        )

    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", param, re.escape(template)) + "$")


class RestContract:
    """The vendored OpenAPI description: which operation a request is, and what its body and answers may be."""

    def __init__(self, doc: dict):
        self.doc = nullable_to_null(with_known_nullables(doc))
        ops = [
            Operation(m, path, spec, template_pattern(path))
            for path, item in self.doc["paths"].items()
            for m, spec in item.items()
            if m in METHODS
        ]
        ops += [
            Operation(m, alias, self.doc["paths"][target][m], template_pattern(alias))
            for (m, alias), target in ALIASES.items()
        ]
        # literal segments first: /commits/{ref}/status before /commits/{ref}
        self.operations = sorted(ops, key=lambda o: -len(re.sub(r"\{\w+\}", "", o.template)))

    def operation(self, method: str, path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method.lower() and op.pattern.match(path) and self._params_fit(op, path):
                return op
        return None

    def _params_fit(self, op: Operation, path: str) -> bool:
        values = op.pattern.match(path).groupdict()
        for param in self.parameters(op, "path"):
            schema = param.get("schema", {})
            if schema.get("type") == "integer" and not values.get(param["name"], "").isdigit():
                return False
        return True

    def parameters(self, op: Operation, where: str) -> list[dict]:
        params = [self.resolve(p) for p in op.spec.get("parameters", [])]
        return [p for p in params if p.get("in") == where]

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self._pointer(node["$ref"])
        return node

    def _pointer(self, ref: str):
        node = self.doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node

    def errors(self, schema: dict, instance, at: str) -> list[Problem]:
        validator = Draft7Validator({**schema, "components": self.doc["components"]})
        found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [Problem(f"{at} {'/'.join(map(str, e.absolute_path)) or '(root)'}", e.message) for e in found[:5]]

    def request_problems(self, method: str, path: str, body) -> list[Problem]:
        """What GitHub would refuse in this request: an undocumented operation or a body off its schema."""
        op = self.operation(method, path)
        if op is None:
            return [Problem(f"{method} {path}", "no documented operation")]
        spec = op.spec.get("requestBody")
        if spec is None:
            return []
        spec = self.resolve(spec)
        if body is None:
            return [Problem(op.name, "request body required")] if spec.get("required") else []
        schema = spec["content"].get("application/json", {}).get("schema")
        return self.errors(schema, body, f"{op.name} request") if schema else []

    def response_problems(self, method: str, path: str, status: int, body) -> list[Problem]:
        """What in this answer GitHub never answers: an undocumented status, or a body off its schema."""
        op = self.operation(method, path)
        if op is None:
            return [Problem(f"{method} {path}", "no documented operation")]
        responses = op.spec["responses"]
        spec = responses.get(str(status), responses.get("default"))
        if spec is None and status == 304 and method.upper() == "GET":
            # the OpenAPI lists 304 on some operations only; "Best practices for using the REST API" documents it for
            # any GET answered with an `etag`: "You can use the values of these headers to make conditional `GET`
            # requests. If the response has not changed, you will receive a `304 Not Modified` response."
            return [Problem(op.name, "304 has no body")] if body not in (None, "", b"") else []
        if spec is None:
            return [Problem(op.name, f"status {status} is not documented (documented: {', '.join(responses)})")]
        content = self.resolve(spec).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return [Problem(op.name, f"{status} has no body")] if body not in (None, "", b"") else []
        return self.errors(schema, body, f"{op.name} {status}")

    def webhook_schemas(self, event: str, action: str | None) -> list[tuple[str, dict]]:
        """The `x-webhooks` request-body schemas for this event (and action)."""
        found = []
        for key, entry in self.doc["x-webhooks"].items():
            post = entry["post"]
            if post["x-github"]["subcategory"] != event:
                continue
            schema = post["requestBody"]["content"]["application/json"]["schema"]
            enum = self.resolve(schema).get("properties", {}).get("action", {}).get("enum")
            if action is None or enum is None or action in enum:
                found.append((key, schema))
        return found


@functools.cache
def rest_contract() -> RestContract:
    return RestContract(json.loads((CONTRACTS / "openapi.json").read_text()))


class WebhookSchemas:
    """`@octokit/webhooks-schemas`: one definition per event (`push$event`) and per action (`pull_request$opened`)."""

    def __init__(self, doc: dict):
        self.doc = doc

    def definition(self, event: str, action: str | None) -> str | None:
        defs = self.doc["definitions"]
        for name in (f"{event}${action}", f"{event}$event", f"{event}_event"):
            if name in defs:
                return name
        return None

    def problems(self, event: str, payload: dict) -> list[Problem]:
        name = self.definition(event, payload.get("action"))
        if name is None:
            return [Problem(event, f"no schema for action {payload.get('action')!r}")]
        validator = Draft7Validator({"$ref": f"#/definitions/{name}", "definitions": self.doc["definitions"]})
        found = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [Problem(f"{name} {'/'.join(map(str, e.absolute_path)) or '(root)'}", e.message) for e in found[:5]]


def open_objects(node):
    """The schemas without `additionalProperties: false`: the package was frozen when GitHub moved its webhook
    descriptions into the OpenAPI (`x-webhooks`), and GitHub has added fields since (`user_view_type`, ...)."""
    if isinstance(node, list):
        return [open_objects(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {k: open_objects(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}


# States the frozen package leaves out though GitHub sends them: `inactive` is a state one creates
# (`repos/create-deployment-status`: "enum": error failure inactive in_progress queued pending success), and GitHub adds
# it itself (`auto_inactive`); the OpenAPI's own `deployment-status-created` webhook types `state` as any string.
KNOWN_WEBHOOK_STATES = (("deployment_status$created", "deployment_status", "inactive"),)


def with_known_states(doc: dict) -> dict:
    for name, prop, state in KNOWN_WEBHOOK_STATES:
        enum = doc["definitions"][name]["properties"][prop]["properties"]["state"]["enum"]
        if state not in enum:
            enum.append(state)
    return doc


@functools.cache
def webhook_schemas() -> WebhookSchemas:
    doc = open_objects(json.loads((CONTRACTS / "webhook-schemas.json").read_text()))
    return WebhookSchemas(with_known_states(doc))


def webhook_problems(event: str, payload: dict) -> list[Problem]:
    """Both published descriptions of a delivery: the webhook schemas and the OpenAPI `x-webhooks`."""
    problems = webhook_schemas().problems(event, payload)
    rest = rest_contract()
    candidates = rest.webhook_schemas(event, payload.get("action"))
    if not candidates:
        return [*problems, Problem(event, f"no x-webhooks entry for action {payload.get('action')!r}")]
    per_candidate = [rest.errors(schema, payload, f"x-webhooks {key}") for key, schema in candidates]
    return problems + min(per_candidate, key=len)
