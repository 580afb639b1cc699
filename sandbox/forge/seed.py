"""Seed file (TOML) loading and validation for the sandbox forge."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import gitops
from .gitops import valid_branch, valid_login, valid_name

PERMISSIONS = ("read", "triage", "write", "maintain", "admin")
# An organization's custom repository roles inherit one of these base roles.
CUSTOM_ROLE_BASES = ("read", "triage", "write", "maintain")
DEFAULT_EVENTS = ["push", "delete", "pull_request", "issue_comment"]
# what `events = ["*"]` stands for: every event the forge delivers
ALL_EVENTS = ["check_run", "create", "delete", "fork", "issue_comment", "issues", "pull_request", "push", "status"]
# A classic token's OAuth scopes unless the seed says otherwise; team memberships need `read:org` (or more).
DEFAULT_SCOPES = ("read:org", "repo", "workflow")
# GitHub makes a team's slug from its name: lowercase letters, digits and hyphens.
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


class SeedError(ValueError):
    pass


@dataclass
class SeedUser:
    login: str
    token: str
    name: str | None = None
    email: str | None = None
    type: str = "User"
    scopes: tuple[str, ...] = DEFAULT_SCOPES


@dataclass
class SeedWebhook:
    url: str
    secret: str | None
    events: list[str]
    content_type: str = "json"  # or "form": the JSON in a `payload` form field (GitHub's REST API default)


@dataclass
class SeedRepo:
    owner: str
    name: str
    default_branch: str = "main"
    init_from: Path | None = None
    description: str | None = None
    permissions: dict[str, str] = field(default_factory=dict)
    webhook: SeedWebhook | None = None
    init_from_git: bool = False  # init_from is a git repository: its branches and tags are imported, with history

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class SeedApp:
    id: int
    slug: str
    installation_id: int
    public_key: bytes | None
    name: str | None = None
    webhook: SeedWebhook | None = None  # the App's webhook: events of its installations, as GitHub sends them


@dataclass
class Seed:
    users: dict[str, SeedUser]
    repos: list[SeedRepo]
    apps: list[SeedApp]
    roles: dict[str, str] = field(default_factory=dict)  # custom repository role -> its base role
    teams: dict[str, list[str]] = field(default_factory=dict)  # "org/team-slug" -> member logins
    org_members: dict[str, list[str]] = field(default_factory=dict)  # org -> members besides its teams'


def load_seed(source: str | os.PathLike | dict | None) -> Seed:
    """Load a seed from a TOML path or an already-parsed dict (paths relative to cwd)."""
    if source is None:
        return Seed({}, [], [])
    if isinstance(source, dict):
        data, base = source, Path.cwd()
    else:
        path = Path(source)
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        base = path.resolve().parent
    return parse_seed(data, base)


def parse_seed(data: dict, base: Path) -> Seed:
    users: dict[str, SeedUser] = {}
    tokens = set()
    for login, u in (data.get("users") or {}).items():
        if not valid_login(login):
            raise SeedError(f"invalid user login {login!r}")
        token = u.get("token")
        if not token or not isinstance(token, str):
            raise SeedError(f"user {login!r} needs a token")
        if token in tokens:
            raise SeedError(f"duplicate token for user {login!r}")
        tokens.add(token)
        utype = u.get("type", "User")
        if utype not in ("User", "Bot"):
            raise SeedError(f"user {login!r}: type must be User or Bot")
        scopes = u.get("scopes", list(DEFAULT_SCOPES))
        if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
            raise SeedError(f"user {login!r}: scopes must be a list of strings")
        users[login] = SeedUser(login, token, u.get("name"), u.get("email"), utype, tuple(scopes))

    roles = parse_roles(data.get("roles") or {})
    repos: list[SeedRepo] = []
    for r in data.get("repos") or []:
        full = r.get("full_name", "")
        owner, _, name = full.partition("/")
        if not valid_login(owner) or not valid_name(name):
            raise SeedError(f"invalid repo full_name {full!r}")
        branch = r.get("default_branch", "main")
        if not valid_branch(branch):
            raise SeedError(f"invalid default_branch {branch!r}")
        init_from, from_git = None, False
        if r.get("init_from"):
            init_from = (base / r["init_from"]).resolve()
            if not init_from.is_dir():
                raise SeedError(f"init_from {str(init_from)!r} is not a directory")
            from_git = is_git_repository(init_from)
            if from_git:
                _check_default_branch(full, init_from, branch)
        perms = {}
        for login, p in (r.get("permissions") or {}).items():
            if p not in PERMISSIONS and p not in roles:
                raise SeedError(f"repo {full}: bad permission {p!r} for {login!r}")
            if not valid_login(login):
                raise SeedError(f"repo {full}: bad login {login!r}")
            perms[login] = p
        hook = parse_webhook(f"repo {full}", r["webhook"]) if r.get("webhook") else None
        repos.append(SeedRepo(owner, name, branch, init_from, r.get("description"), perms, hook, from_git))

    apps: list[SeedApp] = []
    for a in data.get("apps") or []:
        try:
            app_id, slug, inst = int(a["id"]), str(a["slug"]), int(a["installation_id"])
        except (KeyError, ValueError, TypeError) as exc:
            raise SeedError(f"app needs id, slug, installation_id: {exc}") from exc
        if not valid_login(slug):
            raise SeedError(f"invalid app slug {slug!r}")
        key = None
        if a.get("public_key_file"):
            key = (base / a["public_key_file"]).read_bytes()
        elif a.get("public_key"):
            key = str(a["public_key"]).encode()
        hook = parse_webhook(f"app {slug}", a["webhook"]) if a.get("webhook") else None
        apps.append(SeedApp(app_id, slug, inst, key, a.get("name"), hook))
    teams = parse_teams(data.get("teams") or {}, users)
    org_members = parse_org_members(data.get("org_members") or {}, users)
    return Seed(users, repos, apps, roles, teams, org_members)


def is_git_repository(path: Path) -> bool:
    """A repository's top level (`.git` is a directory, or a file in a worktree) or a bare repository; a plain
    directory, even one inside a repository, is not one."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def source_branches(path: Path) -> list[str]:
    """The branches of the git repository at `path`."""
    text = gitops.out(None, ["-C", str(path), "for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/"])
    return sorted(text.split())


def _check_default_branch(full: str, src: Path, branch: str) -> None:
    try:
        branches = source_branches(src)
    except gitops.GitError as exc:
        raise SeedError(f"repo {full}: init_from {str(src)!r} is not a git repository git can read: {exc}") from None
    if branch not in branches:
        having = ", ".join(branches) or "none"
        raise SeedError(
            f"repo {full}: init_from {str(src)!r} has no branch {branch!r} (its branches: {having}); "
            "set default_branch to one of them"
        )


def parse_webhook(where: str, wh: dict) -> SeedWebhook:
    """`webhook = {url, secret | secret_env, events, content_type}` of a repository or an App."""
    secret = wh.get("secret")
    if secret is None and wh.get("secret_env"):
        secret = os.environ.get(wh["secret_env"])
        if secret is None:
            raise SeedError(f"{where}: env var {wh['secret_env']} (webhook secret) is not set")
    events = list(wh.get("events") or DEFAULT_EVENTS)
    if not wh.get("url"):
        raise SeedError(f"{where}: webhook needs a url")
    content_type = wh.get("content_type", "json")
    if content_type not in ("json", "form"):
        raise SeedError(f"{where}: webhook content_type must be json or form")
    return SeedWebhook(wh["url"], secret, events, content_type)


def _member_logins(where: str, members, users: dict[str, SeedUser]) -> list[str]:
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise SeedError(f"{where}: members must be a list of logins")
    unknown = [m for m in members if m not in users]
    if unknown:
        raise SeedError(f"{where}: {', '.join(unknown)} not among [users]")
    return list(dict.fromkeys(members))


def _org(where: str, org: str, users: dict[str, SeedUser]) -> None:
    if not valid_login(org) or org.endswith("[bot]"):
        raise SeedError(f"{where}: invalid organization {org!r}")
    if org in users:
        raise SeedError(f"{where}: {org!r} is a user, and only organizations have teams and members")


def parse_teams(teams: dict, users: dict[str, SeedUser]) -> dict[str, list[str]]:
    """`[teams]` "org/team-slug" = [members]: an organization's teams (every member is a member of the org)."""
    out: dict[str, list[str]] = {}
    for key, members in teams.items():
        org, _, slug = key.partition("/")
        _org(f"team {key!r}", org, users)
        if not _SLUG_RE.match(slug):
            raise SeedError(f"team {key!r}: the slug must be lowercase letters, digits and hyphens")
        out[key] = _member_logins(f"team {key!r}", members, users)
    return out


def parse_org_members(orgs: dict, users: dict[str, SeedUser]) -> dict[str, list[str]]:
    """`[org_members]` org = [members]: members of an organization who are in none of its teams."""
    out: dict[str, list[str]] = {}
    for org, members in orgs.items():
        _org(f"org_members {org!r}", org, users)
        out[org] = _member_logins(f"org_members {org!r}", members, users)
    return out


def parse_roles(roles: dict) -> dict[str, str]:
    """`[roles]` name = base role: custom repository roles, as an organization defines them."""
    for name, base in roles.items():
        if name in PERMISSIONS or not valid_login(name):
            raise SeedError(f"invalid custom role name {name!r}")
        if base not in CUSTOM_ROLE_BASES:
            raise SeedError(f"custom role {name!r}: base role must be one of {', '.join(CUSTOM_ROLE_BASES)}")
    return dict(roles)
