"""Organization teams: whether a user is a member of a team (`teams/get-membership-for-user-in-org`).

Teams come from the seed (`[teams]` "org/team-slug" = [members]); the forge has no API to change them. GitHub's
OpenAPI description (contracts/github/openapi.json) and the REST docs (docs.github.com/en/rest/teams/members) say who
may ask and what the answer is; the sentences are quoted next to the code and in tests/sandbox/test_forge_teams.py.
"""

from __future__ import annotations

from flask import Blueprint

from ..vocabulary import ApiError
from .web import forge, need_user, reply

# "OAuth access tokens require the read:org scope" (write:org and admin:org include it)
ORG_SCOPES = frozenset({"read:org", "write:org", "admin:org"})

bp = Blueprint("teams", __name__)


def find_team(org: str, slug: str) -> tuple[str, list[str]] | None:
    """The seeded team's "org/slug" key and members; `org` "is not case sensitive"."""
    for key, members in forge.seed.teams.items():
        owner, _, name = key.partition("/")
        if owner.lower() == org.lower() and name == slug:
            return key, members
    return None


def is_org_member(org: str, login: str) -> bool:
    """A member of organization `org`: in one of its teams or its seeded `org_members`, or an admin or maintainer
    of one of its repositories (whom `author_association` calls MEMBER too)."""
    low = org.lower()
    teams = (m for key, m in forge.seed.teams.items() if key.partition("/")[0].lower() == low)
    if any(login in members for members in teams):
        return True
    if any(login in m for o, m in forge.seed.org_members.items() if o.lower() == low):
        return True
    repos = (r for r in forge.state["repos"].values() if r["owner"].lower() == low)
    return any(r.get("permissions", {}).get(login) in ("admin", "maintain") for r in repos)


def sees_teams(org: str, login: str) -> bool:
    """Whether `login` may read the org's teams. GitHub: "These endpoints are only available to authenticated members
    of the team's organization. OAuth access tokens require the read:org scope." An App installed on the
    organization's repositories reads them (as with its Members: read permission)."""
    if forge.is_app_bot(login):
        return any(r["owner"].lower() == org.lower() and r.get("seeded") for r in forge.state["repos"].values())
    return is_org_member(org, login) and bool(ORG_SCOPES & set(forge.users[login]["scopes"]))


@bp.get("/orgs/<org>/teams/<team_slug>/memberships/<username>")
def team_membership(org, team_slug, username):
    """200 {url, role, state} for a member; 404 "if user has no team membership", for a team that does not exist and
    for one the caller cannot see ("the team must be visible to the authenticated user"); 401 when anonymous."""
    login = need_user()
    found = find_team(org, team_slug)
    if found is None or not sees_teams(org, login) or username not in found[1]:
        raise ApiError(404, "Not Found")
    key, _members = found
    org_id, team_id = forge.user_id(key.partition("/")[0]), forge.state["team_ids"][key]
    # the forge has no organization owners (whose role is `maintainer`) and no invitations (state `pending`)
    return reply(
        {
            "url": f"{forge.base}/organizations/{org_id}/team/{team_id}/memberships/{username}",
            "role": "member",
            "state": "active",
        }
    )
