"""Regenerate contracts/github/ from pinned npm packages: GitHub's REST OpenAPI description, webhook schemas
and example deliveries, trimmed to what the bot and the sandbox forge use.

    python contracts/update.py            # fetch the pinned tarballs from the npm registry, write contracts/github/
    python contracts/update.py --from DIR # use tarballs already in DIR (npm pack @octokit/openapi@23.0.2 ...)

Stdlib only. Tests read only the vendored copy: node is not on every machine and CI has no network.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
OUT = Path(__file__).resolve().parent / "github"
PINS = {
    "@octokit/openapi": "23.0.2",
    "@octokit/webhooks-schemas": "7.6.1",
    "@octokit/webhooks-examples": "7.6.1",
}
OPENAPI_DOC = "package/generated/api.github.com.json"
SCHEMAS_DOC = "package/schema.json"
EXAMPLES_DOC = "package/api.github.com/index.json"

# The REST operations the bot calls (workers/gateways/forge.py, PyGithub's App auth) and the forge serves
# (sandbox/forge/api/); tests/contract/test_routes.py keeps this list and the forge's routes in step.
OPERATIONS = [
    ("get", "/user"),
    ("get", "/users/{username}"),
    ("get", "/rate_limit"),
    ("get", "/app"),
    ("get", "/app/installations"),
    ("get", "/app/installations/{installation_id}"),
    ("post", "/app/installations/{installation_id}/access_tokens"),
    ("get", "/installation/repositories"),
    ("get", "/app/hook/deliveries"),
    ("get", "/app/hook/deliveries/{delivery_id}"),
    ("post", "/app/hook/deliveries/{delivery_id}/attempts"),
    ("get", "/repos/{owner}/{repo}"),
    ("delete", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/installation"),
    ("post", "/repos/{owner}/{repo}/forks"),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("get", "/repos/{owner}/{repo}/branches"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/status"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/statuses"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    ("get", "/repos/{owner}/{repo}/git/matching-refs/{ref}"),
    ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("post", "/repos/{owner}/{repo}/git/refs"),
    ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("delete", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("get", "/repos/{owner}/{repo}/issues"),
    ("post", "/repos/{owner}/{repo}/issues"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("patch", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("get", "/repos/{owner}/{repo}/issues/comments"),
    ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("delete", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("post", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"),
    ("delete", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions/{reaction_id}"),
    ("get", "/repos/{owner}/{repo}/pulls"),
    ("post", "/repos/{owner}/{repo}/pulls"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/merge"),
    ("put", "/repos/{owner}/{repo}/pulls/{pull_number}/merge"),
    ("get", "/repos/{owner}/{repo}/deployments"),
    ("post", "/repos/{owner}/{repo}/deployments"),
    ("get", "/repos/{owner}/{repo}/deployments/{deployment_id}"),
    ("get", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("post", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("get", "/repos/{owner}/{repo}/environments"),
    ("get", "/orgs/{org}/teams/{team_slug}/memberships/{username}"),
]

# Events the bot subscribes to (handlers/github.py) and the ones the forge can send (sandbox/forge/README.md).
BOT_EVENTS = ["push", "delete", "ping", "pull_request", "issue_comment", "check_run", "installation"]
FORGE_EVENTS = ["create", "status", "fork", "issues", "deployment", "deployment_status"]
# Events whose example deliveries are kept: the bot's, and the deployments the forge sends (the release train).
EXAMPLE_EVENTS = [*BOT_EVENTS, "deployment", "deployment_status"]
# Webhook actions whose OpenAPI schemas are kept: the ones the forge sends or the bot handles (size: ~30 kB each).
HOOK_ACTIONS = {
    "pull_request": {"opened", "reopened", "synchronize", "edited", "closed"},
    "issue_comment": {"created", "edited", "deleted"},
    "check_run": {"created", "completed", "rerequested"},
    "issues": {"opened", "edited", "closed", "reopened"},
    "installation": {"created", "deleted"},
}
# Documentation keys: dropped to keep the vendored copy small; they never change what validates.
DOC_KEYS = {"description", "summary", "example", "examples", "externalDocs", "x-github", "tags", "title"}


def fetch_tarball(name: str, version: str) -> bytes:
    meta = json.load(urllib.request.urlopen(f"{REGISTRY}/{name}/{version}", timeout=60))
    data = urllib.request.urlopen(meta["dist"]["tarball"], timeout=300).read()
    algo, _, want = meta["dist"]["integrity"].partition("-")
    if base64.b64encode(hashlib.new(algo, data).digest()).decode() != want:
        sys.exit(f"{name}@{version}: tarball does not match the registry's integrity {meta['dist']['integrity']}")
    return data


def local_tarball(folder: Path, name: str, version: str) -> bytes:
    return (folder / f"{name[1:].replace('/', '-')}-{version}.tgz").read_bytes()


def member_json(tarball: bytes, member: str):
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        return json.load(tar.extractfile(member))


def strip_docs(node, in_properties: bool = False):
    """A copy without documentation keys (property *names* such as `description` are kept)."""
    if isinstance(node, list):
        return [strip_docs(v) for v in node]
    if not isinstance(node, dict):
        return node
    if in_properties:
        return {k: strip_docs(v) for k, v in node.items()}
    return {
        k: strip_docs(v, in_properties=k in ("properties", "patternProperties"))
        for k, v in node.items()
        if not (k in DOC_KEYS and not isinstance(v, dict | list) or k in ("examples", "example", "x-github"))
    }


def refs_in(node) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.add(node["$ref"])
        for v in node.values():
            found |= refs_in(v)
    elif isinstance(node, list):
        for v in node:
            found |= refs_in(v)
    return found


def pointer(doc: dict, ref: str):
    node = doc
    for part in ref.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def closure(doc: dict, roots) -> dict[str, object]:
    """Every local `$ref` reachable from ``roots``, ref -> stripped target."""
    todo, seen = list(refs_in(roots)), {}
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen[ref] = strip_docs(pointer(doc, ref))
        todo.extend(refs_in(seen[ref]) - seen.keys())
    return seen


def put(doc: dict, ref: str, value) -> None:
    parts = ref.lstrip("#/").split("/")
    for part in parts[:-1]:
        doc = doc.setdefault(part, {})
    doc[parts[-1]] = value


def webhook_event(entry: dict) -> str:
    """The event name (X-GitHub-Event) of an `x-webhooks` entry."""
    return entry["post"]["x-github"]["subcategory"]


def kept_webhook(key: str, entry: dict) -> bool:
    event = webhook_event(entry)
    if event not in BOT_EVENTS + FORGE_EVENTS:
        return False
    action = key.removeprefix(event.replace("_", "-")).lstrip("-").replace("-", "_")
    return event not in HOOK_ACTIONS or action in HOOK_ACTIONS[event]


def trim_webhook(entry: dict) -> dict:
    # the event name stays: tests look an event's schemas up by it
    return {"post": {**strip_docs(entry["post"]), "x-github": {"subcategory": webhook_event(entry)}}}


def trim_openapi(openapi: dict) -> dict:
    paths: dict = {}
    for method, path in OPERATIONS:
        paths.setdefault(path, {})[method] = strip_docs(openapi["paths"][path][method])
    hooks = {k: trim_webhook(v) for k, v in openapi["x-webhooks"].items() if kept_webhook(k, v)}
    out = {"openapi": openapi["openapi"], "info": {"version": openapi["info"]["version"]}, "paths": paths}
    out["x-webhooks"] = hooks
    for ref, target in sorted(closure(openapi, [paths, hooks]).items()):
        put(out, ref, target)
    return out


def schema_names(schemas: dict) -> list[str]:
    names = set()
    for event in BOT_EVENTS + FORGE_EVENTS:
        names |= {k for k in schemas["definitions"] if re.fullmatch(rf"{event}(_event|\$\w+)", k)}
    return sorted(names)


def trim_schemas(schemas: dict) -> dict:
    roots = {name: schemas["definitions"][name] for name in schema_names(schemas)}
    defs = {ref.split("/")[-1]: t for ref, t in closure(schemas, list(roots.values())).items()}
    defs.update({name: strip_docs(node) for name, node in roots.items()})
    return {"$schema": schemas["$schema"], "definitions": dict(sorted(defs.items()))}


def trim_examples(examples: list) -> dict:
    return {e["name"]: e["examples"] for e in examples if e["name"] in EXAMPLE_EVENTS}


def write_json(name: str, data) -> None:
    (OUT / name).write_text(json.dumps(data, indent=None, separators=(",", ":"), sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="folder", type=Path, help="read tarballs from this folder")
    args = parser.parse_args(argv)
    tarballs = {
        name: local_tarball(args.folder, name, v) if args.folder else fetch_tarball(name, v) for name, v in PINS.items()
    }
    OUT.mkdir(parents=True, exist_ok=True)
    write_json("openapi.json", trim_openapi(member_json(tarballs["@octokit/openapi"], OPENAPI_DOC)))
    write_json("webhook-schemas.json", trim_schemas(member_json(tarballs["@octokit/webhooks-schemas"], SCHEMAS_DOC)))
    write_json(
        "webhook-examples.json", trim_examples(member_json(tarballs["@octokit/webhooks-examples"], EXAMPLES_DOC))
    )
    versions = {
        name: {"version": PINS[name], "tarball_sha256": hashlib.sha256(data).hexdigest()}
        for name, data in tarballs.items()
    }
    versions["@octokit/openapi"]["document"] = OPENAPI_DOC
    (OUT / "VERSIONS.json").write_text(json.dumps(versions, indent=2) + "\n")
    for path in sorted(OUT.iterdir()):
        print(f"{path.stat().st_size:>10,}  {path.relative_to(OUT.parent.parent)}")


if __name__ == "__main__":
    main()
