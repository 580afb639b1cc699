"""The sandbox forge answers "is this user a member of that team" as GitHub does, never more permissively.

Oracle: GitHub's OpenAPI description (@octokit/openapi 23.0.2, contracts/github/openapi.json,
`teams/get-membership-for-user-in-org`) and the REST docs (https://docs.github.com/en/rest/teams/members, "Get team
membership for a user"). Each test quotes its sentence. Every 200 is held to the operation's `team-membership` schema.
"""

from __future__ import annotations

import re
import textwrap

import pytest
import requests
from github import Auth, Github, RateLimitExceededException, UnknownObjectException

from devstack.sandboxes import start_forge
from sandbox.forge.contract import rest_contract
from sandbox.forge.seed import SeedError, parse_seed

TEAM = "/orgs/acme/teams/ml-leads/memberships"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol", "dave": "ghp_dave", "erin": "ghp_erin"}
SEED = textwrap.dedent("""\
    [users.erin]
    token = "ghp_erin"
    scopes = ["repo"]
    [[repos]]
    full_name = "acme/churn-model"
    permissions = { alice = "write", bob = "admin" }
    [teams]
    "acme/ml-leads" = ["bob", "carol", "erin"]
    "acme/platform" = ["dave"]
    [org_members]
    acme = ["dave"]
    """)


def headers(login: str | None) -> dict:
    return {"Authorization": f"token {TOKENS[login]}"} if login else {}


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teams")
    users = "".join(f'[users.{u}]\ntoken = "{t}"\n' for u, t in TOKENS.items() if u != "erin")
    (tmp / "seed.toml").write_text(users + SEED)
    service = start_forge(tmp, tmp / "seed.toml")
    try:
        yield service
    finally:
        service.stop()


def get(forge, path: str, caller: str | None = "bob") -> requests.Response:
    """One request; a 200 is held to the documented `team-membership` schema."""
    r = requests.get(f"{forge.url}{path}", headers=headers(caller))
    if r.status_code == 200:
        assert [str(p) for p in rest_contract().response_problems("GET", path, 200, r.json())] == []
    return r


def is_github_404(r: requests.Response) -> bool:
    return r.status_code == 404 and r.json()["message"] == "Not Found"


def test_the_operation_is_the_documented_one():
    op = rest_contract().operation("GET", f"{TEAM}/carol")
    assert op is not None and op.spec["operationId"] == "teams/get-membership-for-user-in-org"
    assert set(op.spec["responses"]) == {"200", "404"}


def test_a_member_has_an_active_membership(forge):
    # 200: `team-membership` {url, role (member | maintainer), state (active | pending)}, all three required
    r = get(forge, f"{TEAM}/carol")
    assert r.status_code == 200
    assert r.json()["role"] == "member" and r.json()["state"] == "active"
    assert r.json()["url"].startswith(f"{forge.url}/organizations/") and r.json()["url"].endswith("/memberships/carol")


def test_the_organization_name_is_not_case_sensitive(forge):
    # parameter `org`: "The organization name. The name is not case sensitive."
    assert get(forge, "/orgs/ACME/teams/ml-leads/memberships/carol").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"{TEAM}/alice",  # a collaborator of the org's repository, in no team
        f"{TEAM}/dave",  # a member of the organization and of another team
        f"{TEAM}/nobody",  # no such user
        "/orgs/acme/teams/no-such-team/memberships/carol",
        "/orgs/no-such-org/teams/ml-leads/memberships/carol",
    ],
)
def test_no_membership_is_404(forge, path):
    # `teams/get-membership-for-user-in-org` responses: "404": "if user has no team membership" -- the only other
    # answer it documents; a team that does not exist gives no membership either
    assert is_github_404(get(forge, path))


def test_a_caller_outside_the_organization_cannot_see_its_teams(forge):
    # "These endpoints are only available to authenticated members of the team's organization." and "To get a
    # user's membership with a team, the team must be visible to the authenticated user." -- alice only collaborates
    assert is_github_404(get(forge, f"{TEAM}/carol", caller="alice"))
    assert get(forge, f"{TEAM}/carol", caller="dave").status_code == 200  # an org member outside the team sees it


def test_a_token_without_read_org_cannot_see_the_team(forge):
    # "OAuth access tokens require the read:org scope." erin is in the team, but her token has only `repo`
    r = get(forge, f"{TEAM}/carol", caller="erin")
    assert is_github_404(r) and r.headers["X-OAuth-Scopes"] == "repo"
    assert "read:org" in get(forge, f"{TEAM}/carol", caller="bob").headers["X-OAuth-Scopes"]


def test_an_anonymous_request_needs_authentication(forge):
    # "only available to authenticated members"; GitHub answers this URL opened without a token with 401
    # "Requires authentication" (as reported in srvaroa/labeler#160)
    r = get(forge, f"{TEAM}/carol", caller=None)
    assert r.status_code == 401 and r.json()["message"] == "Requires authentication"


def test_a_rate_limit_is_a_403_not_a_404(forge):
    spec = f"GET:{TEAM}/*=primary,user=carol:1"
    assert requests.post(f"{forge.url}/sandbox/faults", json={"spec": spec}).status_code == 201
    r = get(forge, f"{TEAM}/bob", caller="carol")
    assert r.status_code == 403 and r.headers["x-ratelimit-remaining"] == "0"
    assert "API rate limit exceeded" in r.json()["message"]
    assert get(forge, f"{TEAM}/bob", caller="carol").status_code == 200  # once only


def pygithub(forge, login: str) -> Github:
    auth = Auth.Token(TOKENS[login])
    return Github(base_url=forge.url, auth=auth, seconds_between_requests=0, seconds_between_writes=0, retry=None)


def test_through_pygithubs_requester(forge):
    requester = pygithub(forge, "dave").requester
    _headers, body = requester.requestJsonAndCheck("GET", f"{TEAM}/bob")
    assert body["state"] == "active"
    with pytest.raises(UnknownObjectException) as gone:
        requester.requestJsonAndCheck("GET", f"{TEAM}/alice")
    assert gone.value.status == 404


def test_pygithub_reads_a_403_rate_limit_as_one_not_as_not_found(forge):
    spec = f"GET:{TEAM}/*=secondary,wait=30,user=dave:1"
    assert requests.post(f"{forge.url}/sandbox/faults", json={"spec": spec}).status_code == 201
    with pytest.raises(RateLimitExceededException) as limited:
        pygithub(forge, "dave").requester.requestJsonAndCheck("GET", f"{TEAM}/bob")
    assert limited.value.status == 403 and limited.value.headers["retry-after"] == "30"


@pytest.mark.parametrize(
    ("teams", "why"),
    [
        ({"acme/ml-leads": ["zoe"]}, "zoe not among [users]"),
        ({"bob/friends": ["bob"]}, "'bob' is a user"),
        ({"acme/ML Leads": ["bob"]}, "lowercase letters, digits and hyphens"),
        ({"acme": ["bob"]}, "lowercase letters, digits and hyphens"),
        ({"acme/ml-leads": "bob"}, "must be a list of logins"),
    ],
)
def test_a_team_seed_names_seeded_users_in_an_organization(tmp_path, teams, why):
    with pytest.raises(SeedError, match=re.escape(why)):
        parse_seed({"users": {"bob": {"token": "ghp_bob"}}, "teams": teams}, tmp_path)
