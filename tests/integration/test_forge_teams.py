"""The bot's GitHub gateway asks a real forge process whether a login is in a team (`@org/team-slug` approvers):
a member is True, anyone else False, and a rate limit or any other failure is raised, never read as "not a member"."""

from __future__ import annotations

import textwrap

import pytest
import requests

from core.config import GitHubSettings
from devstack.sandboxes import start_forge
from tests.support.app_keys import APP_SEED, app_key_pair
from workers.errors import NotFound, Permanent, RateLimited, Transient
from workers.gateways.forge import Forge

TOKEN_ENV, KEY_ENV = "TEAMS_GITHUB_TOKEN", "TEAMS_GITHUB_APP_KEY"
SEED = textwrap.dedent("""\
    [users.bob]
    token = "ghp_bob"
    [users.carol]
    token = "ghp_carol"
    [users.alice]
    token = "ghp_alice"
    [users."mlops-bot"]
    token = "ghp_bot"
    type = "Bot"
    [[repos]]
    full_name = "acme/tiny-ml"
    permissions = { alice = "write", bob = "admin", "mlops-bot" = "write" }
    """)
SEED += APP_SEED + '[teams]\n"acme/ml-leads" = ["bob", "carol"]\n[org_members]\nacme = ["mlops-bot"]\n'


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teams")
    tmp.joinpath("seed.toml").write_text(SEED)
    pem = app_key_pair(tmp)
    service = start_forge(tmp, tmp / "seed.toml")
    service.pem = pem
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(autouse=True)
def no_faults(forge):
    yield
    requests.delete(f"{forge.url}/sandbox/faults")


def as_token(forge, monkeypatch, token: str = "ghp_bot") -> Forge:
    monkeypatch.setenv(TOKEN_ENV, token)
    return Forge(GitHubSettings(base_url=forge.url, token_env=TOKEN_ENV))


def as_app(forge, monkeypatch) -> Forge:
    monkeypatch.setenv(KEY_ENV, forge.pem)
    return Forge(GitHubSettings(base_url=forge.url, app_id=123, installation_id=456, app_private_key_env=KEY_ENV))


def add_fault(forge, spec: str) -> None:
    assert requests.post(f"{forge.url}/sandbox/faults", json={"spec": spec}).status_code == 201


@pytest.mark.parametrize("connect", [as_token, as_app])
@pytest.mark.parametrize(
    ("org", "team", "login", "member"),
    [
        ("acme", "ml-leads", "bob", True),
        ("acme", "ml-leads", "carol", True),
        ("ACME", "ml-leads", "carol", True),  # "The organization name. The name is not case sensitive."
        ("acme", "ml-leads", "alice", False),  # a collaborator of the org's repository, not in the team
        ("acme", "ml-leads", "nobody", False),
        ("acme", "no-such-team", "bob", False),
        ("nobody-org", "ml-leads", "bob", False),
    ],
)
def test_membership(forge, monkeypatch, connect, org, team, login, member):
    assert connect(forge, monkeypatch).in_team(org, team, login) is member


def test_one_request_per_question(forge, monkeypatch):
    gateway = as_token(forge, monkeypatch)
    requests.post(f"{forge.url}/sandbox/requests/reset")
    gateway.in_team("acme", "ml-leads", "bob")
    gateway.in_team("acme", "ml-leads", "alice")
    counts = requests.get(f"{forge.url}/sandbox/requests").json()["by_route"]
    assert counts == {"GET /orgs/{org}/teams/{team_slug}/memberships/{username}": 2}


@pytest.mark.parametrize("kind", ["primary", "primary,status=429", "secondary", "secondary,status=429"])
def test_a_rate_limit_raises_and_is_not_read_as_not_a_member(forge, monkeypatch, kind):
    add_fault(forge, f"GET:/orgs/acme/teams/ml-leads/memberships/*={kind},wait=30")
    with pytest.raises(RateLimited) as limited:
        as_token(forge, monkeypatch).in_team("acme", "ml-leads", "bob")
    assert 25 <= limited.value.wait <= 32  # the 30 s GitHub asked for (+ 1 s past a primary reset)


def test_a_server_error_is_transient(forge, monkeypatch):
    add_fault(forge, "GET:/orgs/acme/teams/ml-leads/memberships/*=502")
    with pytest.raises(Transient):
        as_token(forge, monkeypatch).in_team("acme", "ml-leads", "bob")


def test_bad_credentials_are_permanent_not_false(forge, monkeypatch):
    with pytest.raises(Permanent) as refused:
        as_token(forge, monkeypatch, token="ghp_revoked").in_team("acme", "ml-leads", "bob")
    assert not isinstance(refused.value, NotFound) and "401" in refused.value.message


def test_a_bot_outside_the_organization_sees_no_team(forge, monkeypatch):
    # GitHub answers 404 to a caller that cannot see the team, the same 404 as "not a member": in_team says False,
    # so the bot's account must be a member of the organization (a token with read:org, an App with Members: read)
    assert as_token(forge, monkeypatch, token="ghp_alice").in_team("acme", "ml-leads", "bob") is False


@pytest.mark.parametrize(
    ("org", "team", "login"), [("acme", "ml-leads/memberships", "bob"), ("acme", "..", "bob"), ("acme", "", "bob")]
)
def test_a_name_that_would_change_the_path_is_refused_without_a_request(forge, monkeypatch, org, team, login):
    gateway = as_token(forge, monkeypatch)
    requests.post(f"{forge.url}/sandbox/requests/reset")
    with pytest.raises(Permanent):
        gateway.in_team(org, team, login)
    assert requests.get(f"{forge.url}/sandbox/requests").json()["total"] == 0


def test_only_the_bots_own_comment_is_found_by_its_marker(forge, monkeypatch):
    """A marker pasted into someone else's comment must not make the bot edit (or trust) that comment."""
    from workers.gateways.forge import marker

    monkeypatch.setenv(TOKEN_ENV, "ghp_bob")
    bob = Forge(GitHubSettings(base_url=forge.url, token_env=TOKEN_ENV))
    issue = bob._call("POST", "/repos/acme/tiny-ml/issues", input={"title": "markers"})["number"]
    bob.create_comment("acme/tiny-ml", issue, f"{marker('report', 'train')}\nnot the bot's report")
    monkeypatch.setenv("BOT_TOKEN_ENV", "ghp_bot")
    bot = Forge(GitHubSettings(base_url=forge.url, token_env="BOT_TOKEN_ENV"), login="mlops-bot")
    assert bot.marked_comments("acme/tiny-ml", issue) == {}
    own = bot.create_comment("acme/tiny-ml", issue, f"{marker('report', 'train')}\nthe report")
    assert bot.marked_comments("acme/tiny-ml", issue) == {"report:train": own}
