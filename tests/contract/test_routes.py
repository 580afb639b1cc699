"""The forge serves only documented operations, and the vendored copy holds every operation it is said to."""

from __future__ import annotations

import json
import re

import pytest

from sandbox.forge.api.hooks import kind_of
from sandbox.forge.app import create_app
from sandbox.forge.contract import ALIASES, CONTRACTS, rest_contract

SAMPLES = {"int": "1", "path": "heads/main"}


def sample_path(rule: str) -> str:
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLES.get(m.group(1) or "", "x"), rule)


@pytest.fixture(scope="module")
def api_routes(tmp_path_factory) -> list[tuple[str, str]]:
    app = create_app(tmp_path_factory.mktemp("forge"), None, "http://127.0.0.1:1")
    return [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if kind_of(sample_path(rule.rule)) == "api"
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def test_every_forge_api_route_is_a_documented_operation(api_routes):
    contract = rest_contract()
    assert len(api_routes) > 40
    assert [(m, r) for m, r in api_routes if contract.operation(m, sample_path(r)) is None] == []


def test_aliases_name_documented_operations():
    paths = rest_contract().doc["paths"]
    assert all(method in paths[target] for (method, _), target in ALIASES.items())


def test_versions_are_pinned_with_a_checksum():
    versions = json.loads((CONTRACTS / "VERSIONS.json").read_text())
    assert set(versions) == {"@octokit/openapi", "@octokit/webhooks-schemas", "@octokit/webhooks-examples"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v["version"]) for v in versions.values())
    assert all(re.fullmatch(r"[0-9a-f]{64}", v["tarball_sha256"]) for v in versions.values())


def test_vendored_copy_stays_small():
    assert sum(p.stat().st_size for p in CONTRACTS.iterdir()) < 2_000_000
