"""In-memory forge state (persisted as JSON), permissions, serializers and git event processing."""

from __future__ import annotations

import collections
import copy
import json
import os
import secrets
import shlex
import sys
import threading
import time
from pathlib import Path

from ..common import DictStore
from . import gitops
from .events import ForgeEvents
from .faults import FaultSet
from .hook_script import HOOK_PY, HOOK_SH
from .json_issues import IssueJson
from .json_repos import RepoJson
from .seed import Seed, load_seed
from .vocabulary import ID_BASES, PERM_RANK, ApiError, now_iso
from .webhooks import Dispatcher

EXCHANGES_KEPT = 2000


class RouteStats:
    """API requests since start or reset, per route template and per user (`GET /sandbox/requests`), and the
    last exchanges themselves (`GET /sandbox/exchanges`). A `304 Not Modified` is a request like any other, and is
    counted apart too (`not_modified…`): GitHub does not count it against an authorized caller's rate limit."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> dict:
        with self._lock:
            self._stats = {"total": 0, "by_route": {}, "by_user": {}, "by_user_route": {}, "since": now_iso()}
            self._stats.update(not_modified=0, not_modified_by_route={}, not_modified_by_user={})
            self._exchanges: collections.deque = collections.deque(maxlen=EXCHANGES_KEPT)
        return {"reset": True}

    def record(self, exchange: dict) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def exchanges(self) -> list[dict]:
        with self._lock:
            return list(self._exchanges)

    def count(self, route: str, user: str | None, not_modified: bool = False) -> None:
        u = user or "(anonymous)"
        with self._lock:
            st = self._stats
            st["total"] += 1
            st["by_route"][route] = st["by_route"].get(route, 0) + 1
            st["by_user"][u] = st["by_user"].get(u, 0) + 1
            per = st["by_user_route"].setdefault(u, {})
            per[route] = per.get(route, 0) + 1
            if not_modified:
                st["not_modified"] += 1
                st["not_modified_by_route"][route] = st["not_modified_by_route"].get(route, 0) + 1
                st["not_modified_by_user"][u] = st["not_modified_by_user"].get(u, 0) + 1

    def snapshot(self) -> dict:
        with self._lock:
            return copy.deepcopy(self._stats)


STATE_DEFAULTS = {
    "ids": {},
    "user_ids": {},
    "repos": {},
    "comments": {},
    "reactions": {},
    "statuses": [],
    "check_runs": {},
    "deployments": {},
    "environments": {},
    "deliveries": [],
    "install_tokens": {},
}


class Forge(RepoJson, IssueJson, ForgeEvents):
    def __init__(self, data_dir: str | os.PathLike, seed, base_url: str, faults: FaultSet | None = None):
        self.store = DictStore(data_dir, copy.deepcopy(STATE_DEFAULTS))  # two forges in one process share no list
        self.data = self.store.data_dir
        self.repos_root = self.data / "repos"
        self.repos_root.mkdir(exist_ok=True)
        self.base = base_url.rstrip("/")
        self.docs_url = f"{self.base}/sandbox/docs"
        self.seed: Seed = seed if isinstance(seed, Seed) else load_seed(seed)
        self.lock = self.store.lock
        self.state = self.store.state
        self.hook_token = self.state.setdefault("hook_token", secrets.token_hex(16))
        self.webhooks: dict[str, object] = {}
        self.users: dict[str, dict] = {}
        self.tokens: dict[str, str] = {}
        self.apps: dict[int, dict] = {}
        self._merge_cache: dict[tuple, object] = {}
        self.stats = RouteStats()
        self.faults = faults or FaultSet()
        self._rate_lock = threading.Lock()
        self._rate: dict[str, list] = {}
        self._apply_seed()
        self.dispatcher = Dispatcher(self._delivery_done)
        self.store.save()

    def save_soon(self) -> None:
        # Deliveries keep their payloads, so the file grows large: writing it per request would slow the API.
        self.store.save_soon()

    def next_id(self, kind: str) -> int:
        with self.lock:
            cur = self.state["ids"].get(kind, ID_BASES.get(kind, 1))
            self.state["ids"][kind] = cur + 1
            return cur

    def user_id(self, login: str) -> int:
        with self.lock:
            ids = self.state["user_ids"]
            if login not in ids:
                ids[login] = self.next_id("user")
            return ids[login]

    # ------------------------------------------------------------------ seed
    def _apply_seed(self) -> None:
        for login, u in self.seed.users.items():
            self.users[login] = {"login": login, "type": u.type, "name": u.name, "email": u.email, "scopes": u.scopes}
            self.tokens[u.token] = login
            self.user_id(login)
        team_ids = self.state.setdefault("team_ids", {})
        for key in self.seed.teams:
            if key not in team_ids:
                team_ids[key] = self.next_id("team")
            self.user_id(key.partition("/")[0])
        for app in self.seed.apps:
            bot = f"{app.slug}[bot]"
            self.apps[app.id] = {
                "id": app.id,
                "slug": app.slug,
                "installation_id": app.installation_id,
                "public_key": app.public_key,
                "bot": bot,
                "name": app.name or app.slug,
                "webhook": app.webhook,
                "hook_id": self.state.setdefault("app_hook_ids", {}).setdefault(str(app.id), self.next_id("hook")),
            }
            self.users[bot] = {"login": bot, "type": "Bot", "name": None, "email": None, "app_id": app.id}
            self.user_id(bot)
        for sr in self.seed.repos:
            rec = self.state["repos"].get(sr.full_name)
            path = self.repo_path_for(sr.full_name)
            if rec is None or not path.exists():
                gitops.init_bare(path, sr.default_branch)
                if sr.init_from is not None and sr.init_from_git:
                    gitops.import_git(path, sr.init_from)
                else:
                    gitops.import_directory(
                        path,
                        sr.init_from,
                        sr.default_branch,
                        "Initial commit",
                        (sr.owner, self.user_email(sr.owner)),
                        readme=f"# {sr.name}\n",
                    )
                ts = now_iso()
                rec = {
                    "id": self.next_id("repo"),
                    "owner": sr.owner,
                    "name": sr.name,
                    "full_name": sr.full_name,
                    "created_at": ts,
                    "updated_at": ts,
                    "pushed_at": ts,
                    "fork_of": None,
                    "next_number": 1,
                    "issues": {},
                }
                self.state["repos"][sr.full_name] = rec
            rec["default_branch"] = sr.default_branch
            rec["permissions"] = dict(sr.permissions)
            rec["description"] = sr.description
            rec["seeded"] = True
            self.user_id(sr.owner)
            if sr.webhook:
                rec.setdefault("hook_id", self.next_id("hook"))
                self.webhooks[sr.full_name] = sr.webhook
        for rec in self.state["repos"].values():
            self.install_hooks(rec)

    def install_hooks(self, rec: dict) -> None:
        hooks = self.repo_path(rec) / "hooks"
        hooks.mkdir(exist_ok=True)
        py = (
            HOOK_PY.replace("__FORGE_URL__", json.dumps(self.base))
            .replace("__REPO__", json.dumps(rec["full_name"]))
            .replace("__TOKEN__", json.dumps(self.hook_token))
        )
        (hooks / "forge_post_receive.py").write_text(py)
        sh = hooks / "post-receive"
        sh.write_text(HOOK_SH.format(python=shlex.quote(sys.executable)))
        sh.chmod(0o755)

    # ------------------------------------------------------------------ lookup helpers
    def repo_path_for(self, full_name: str) -> Path:
        owner, name = full_name.split("/", 1)
        return self.repos_root / owner / f"{name}.git"

    def repo_path(self, rec: dict) -> Path:
        return self.repo_path_for(rec["full_name"])

    def find_repo(self, owner: str, name: str) -> dict | None:
        repos = self.state["repos"]
        rec = repos.get(f"{owner}/{name}")
        if rec is None:
            low = f"{owner}/{name}".lower()
            for full, r in repos.items():
                if full.lower() == low:
                    return r
        return rec

    def get_repo(self, owner: str, name: str) -> dict:
        rec = self.find_repo(owner, name)
        if rec is None:
            raise ApiError(404, "Not Found")
        return rec

    def is_user(self, login: str) -> bool:
        return login in self.users

    def user_type(self, login: str) -> str:
        if login in self.users:
            return self.users[login]["type"]
        if any(r["owner"] == login for r in self.state["repos"].values()):
            return "Organization"
        return "User"

    def user_exists(self, login: str) -> bool:
        return login in self.users or any(r["owner"] == login for r in self.state["repos"].values())

    def user_email(self, login: str) -> str:
        u = self.users.get(login)
        if u and u.get("email"):
            return u["email"]
        return self.noreply_email(login)

    def user_name(self, login: str) -> str:
        u = self.users.get(login)
        return (u or {}).get("name") or login

    def noreply_email(self, login: str) -> str:
        return f"{self.user_id(login)}+{login}@users.noreply.sandbox.local"

    def login_for_person(self, name: str, email: str) -> str | None:
        """The account a commit's author (or committer) links to: by email only, as GitHub does ("GitHub uses the email
        address in the commit header to link the commit to a GitHub user"): the user's email or their no-reply
        address. A git name links nobody — it is whatever the committer typed."""
        wanted = email.strip().lower()
        for login in self.users:
            if wanted and wanted in (self.user_email(login).lower(), self.noreply_email(login).lower()):
                return login
        return None

    # ------------------------------------------------------------------ auth / permissions
    def installation_for_token(self, token: str) -> dict | None:
        info = self.state["install_tokens"].get(token)
        if info and info["expires_at"] > time.time():
            return info
        return None

    def role_name(self, rec: dict, login: str | None) -> str:
        """The user's role on the repository: a base role, or a custom role's name."""
        if login is None:
            return "read"
        if login == rec["owner"]:
            return "admin"
        u = self.users.get(login)
        if u and u.get("app_id") is not None and rec.get("seeded"):
            return "write"
        return rec.get("permissions", {}).get(login, "none")

    def perm(self, rec: dict, login: str | None) -> str:
        """The base role access is checked against (a custom role grants its base role's access)."""
        role = self.role_name(rec, login)
        return self.seed.roles.get(role, role)

    def effective_perm(self, rec: dict, login: str | None) -> str:
        """Permission for access checks: public repos are readable by everyone."""
        p = self.perm(rec, login)
        return p if PERM_RANK[p] >= 1 else "read"

    def require(self, rec: dict, login: str | None, level: str) -> None:
        if login is None:
            raise ApiError(401, "Requires authentication")
        if PERM_RANK[self.effective_perm(rec, login)] < PERM_RANK[level]:
            raise ApiError(
                403,
                "Must have admin rights to Repository."
                if level == "admin"
                else "Resource not accessible by integration"
                if self.is_app_bot(login)
                else "Must have push access to repository",
            )

    def is_app_bot(self, login: str | None) -> bool:
        return bool(login and self.users.get(login, {}).get("app_id") is not None)

    def author_association(self, rec: dict, login: str) -> str:
        if login == rec["owner"]:
            return "OWNER"
        p = rec.get("permissions", {}).get(login)
        if p:
            if p in ("admin", "maintain") and self.user_type(rec["owner"]) == "Organization":
                return "MEMBER"
            return "COLLABORATOR"
        for issue in rec["issues"].values():
            if issue.get("kind") == "pr" and issue.get("merged") and issue["user"] == login:
                return "CONTRIBUTOR"
        return "NONE"

    # ------------------------------------------------------------------ rate limit
    def rate_used(self, user: str | None, spend: bool = True) -> tuple[int, int]:
        """(requests used in the caller's hour, its reset): this request counted, unless `spend` is False."""
        key = user or "(anonymous)"
        now = int(time.time())
        with self._rate_lock:
            window = self._rate.get(key)
            if window is None or window[0] <= now:
                window = [now + 3600, 0]
                self._rate[key] = window
            window[1] += 1 if spend else 0
            return window[1], window[0]
