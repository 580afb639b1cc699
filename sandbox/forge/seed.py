"""Seed file (TOML) loading and validation for the sandbox forge."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .gitops import valid_branch, valid_login, valid_name

PERMISSIONS = ("read", "triage", "write", "maintain", "admin")
# An organization's custom repository roles inherit one of these base roles.
CUSTOM_ROLE_BASES = ("read", "triage", "write", "maintain")
DEFAULT_EVENTS = ["push", "delete", "pull_request", "issue_comment"]


class SeedError(ValueError):
    pass


@dataclass
class SeedUser:
    login: str
    token: str
    name: str | None = None
    email: str | None = None
    type: str = "User"


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


@dataclass
class Seed:
    users: dict[str, SeedUser]
    repos: list[SeedRepo]
    apps: list[SeedApp]
    roles: dict[str, str] = field(default_factory=dict)  # custom repository role -> its base role


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
        users[login] = SeedUser(login, token, u.get("name"), u.get("email"), utype)

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
        init_from = None
        if r.get("init_from"):
            init_from = (base / r["init_from"]).resolve()
            if not init_from.is_dir():
                raise SeedError(f"init_from {str(init_from)!r} is not a directory")
        perms = {}
        for login, p in (r.get("permissions") or {}).items():
            if p not in PERMISSIONS and p not in roles:
                raise SeedError(f"repo {full}: bad permission {p!r} for {login!r}")
            if not valid_login(login):
                raise SeedError(f"repo {full}: bad login {login!r}")
            perms[login] = p
        hook = None
        wh = r.get("webhook")
        if wh:
            secret = wh.get("secret")
            if secret is None and wh.get("secret_env"):
                secret = os.environ.get(wh["secret_env"])
                if secret is None:
                    raise SeedError(f"repo {full}: env var {wh['secret_env']} (webhook secret) is not set")
            events = list(wh.get("events") or DEFAULT_EVENTS)
            if not wh.get("url"):
                raise SeedError(f"repo {full}: webhook needs a url")
            content_type = wh.get("content_type", "json")
            if content_type not in ("json", "form"):
                raise SeedError(f"repo {full}: webhook content_type must be json or form")
            hook = SeedWebhook(wh["url"], secret, events, content_type)
        repos.append(SeedRepo(owner, name, branch, init_from, r.get("description"), perms, hook))

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
        apps.append(SeedApp(app_id, slug, inst, key, a.get("name")))
    return Seed(users, repos, apps, roles)


def parse_roles(roles: dict) -> dict[str, str]:
    """`[roles]` name = base role: custom repository roles, as an organization defines them."""
    for name, base in roles.items():
        if name in PERMISSIONS or not valid_login(name):
            raise SeedError(f"invalid custom role name {name!r}")
        if base not in CUSTOM_ROLE_BASES:
            raise SeedError(f"custom role {name!r}: base role must be one of {', '.join(CUSTOM_ROLE_BASES)}")
    return dict(roles)
