"""In-memory forge state (persisted as JSON), permissions, serializers and git event processing."""

from __future__ import annotations

import base64
import copy
import json
import os
import secrets
import shlex
import sys
import threading
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from ..common import DictStore
from . import gitops
from .gitops import ZERO
from .seed import Seed, load_seed
from .webhooks import Dispatcher

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


HOOK_SH = """#!/bin/sh
# sandbox forge: report ref updates to the forge (generated, do not edit)
exec {python} "$(dirname "$0")/forge_post_receive.py"
"""

HOOK_PY = r"""# sandbox forge post-receive reporter (generated; stdlib only)
import json
import os
import sys
import urllib.request

FORGE_URL = __FORGE_URL__
REPO = __REPO__
TOKEN = __TOKEN__


def main():
    updates = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 3:
            updates.append({"old": parts[0], "new": parts[1], "ref": parts[2]})
    if not updates:
        return 0
    pusher = os.environ.get("REMOTE_USER") or os.environ.get("GIT_PUSHER") or ""
    body = json.dumps({"repo": REPO, "pusher": pusher, "updates": updates}).encode()
    req = urllib.request.Request(FORGE_URL + "/sandbox/internal/post-receive", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "X-Sandbox-Hook-Token": TOKEN})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as resp:
            resp.read()
    except Exception as exc:
        sys.stderr.write("sandbox forge: could not report push: %s\n" % exc)
    return 0


sys.exit(main())
"""


class RouteStats:
    """API requests since start or reset, per route template and per user (`GET /sandbox/requests`)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> dict:
        with self._lock:
            self._stats = {"total": 0, "by_route": {}, "by_user": {}, "by_user_route": {}, "since": now_iso()}
        return {"reset": True}

    def count(self, route: str, user: str | None) -> None:
        u = user or "(anonymous)"
        with self._lock:
            st = self._stats
            st["total"] += 1
            st["by_route"][route] = st["by_route"].get(route, 0) + 1
            st["by_user"][u] = st["by_user"].get(u, 0) + 1
            per = st["by_user_route"].setdefault(u, {})
            per[route] = per.get(route, 0) + 1

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
    "deliveries": [],
    "install_tokens": {},
}


class Forge:
    def __init__(self, data_dir: str | os.PathLike, seed, base_url: str):
        self.store = DictStore(data_dir, STATE_DEFAULTS)
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
            self.users[login] = {"login": login, "type": u.type, "name": u.name, "email": u.email}
            self.tokens[u.token] = login
            self.user_id(login)
        for app in self.seed.apps:
            bot = f"{app.slug}[bot]"
            self.apps[app.id] = {
                "id": app.id,
                "slug": app.slug,
                "installation_id": app.installation_id,
                "public_key": app.public_key,
                "bot": bot,
                "name": app.name or app.slug,
            }
            self.users[bot] = {"login": bot, "type": "Bot", "name": None, "email": None, "app_id": app.id}
            self.user_id(bot)
        for sr in self.seed.repos:
            rec = self.state["repos"].get(sr.full_name)
            path = self.repo_path_for(sr.full_name)
            if rec is None or not path.exists():
                gitops.init_bare(path, sr.default_branch)
                owner_email = self.user_email(sr.owner)
                gitops.import_directory(
                    path,
                    sr.init_from,
                    sr.default_branch,
                    "Initial commit",
                    (sr.owner, owner_email),
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
        for full, rec in self.state["repos"].items():
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
        return f"{self.user_id(login)}+{login}@users.noreply.sandbox.local"

    def user_name(self, login: str) -> str:
        u = self.users.get(login)
        return (u or {}).get("name") or login

    def login_for_person(self, name: str, email: str) -> str | None:
        for login in self.users:
            if email and email == self.user_email(login):
                return login
        if name in self.users:
            return name
        return None

    # ------------------------------------------------------------------ auth / permissions
    def installation_for_token(self, token: str) -> dict | None:
        info = self.state["install_tokens"].get(token)
        if info and info["expires_at"] > time.time():
            return info
        return None

    def perm(self, rec: dict, login: str | None) -> str:
        if login is None:
            return "read"
        if login == rec["owner"]:
            return "admin"
        u = self.users.get(login)
        if u and u.get("app_id") is not None and rec.get("seeded"):
            return "write"
        return rec.get("permissions", {}).get(login, "none")

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

    # ------------------------------------------------------------------ serializers
    def user_json(self, login: str | None) -> dict | None:
        if login is None:
            return None
        uid = self.user_id(login)
        q = login.replace("[", "%5B").replace("]", "%5D")
        utype = self.user_type(login)
        api = f"{self.base}/users/{q}"
        html = f"{self.base}/apps/{login[:-5]}" if login.endswith("[bot]") else f"{self.base}/{q}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("User" if utype != "Bot" else "Bot", uid),
            "avatar_url": f"{self.base}/sandbox/avatars/{q}",
            "gravatar_id": "",
            "url": api,
            "html_url": html,
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": utype,
            "user_view_type": "public",
            "site_admin": False,
        }

    def org_json(self, login: str) -> dict:
        api = f"{self.base}/orgs/{login}"
        return {
            "login": login,
            "id": self.user_id(login),
            "node_id": node_id("Organization", self.user_id(login)),
            "url": api,
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events",
            "hooks_url": f"{api}/hooks",
            "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}",
            "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.base}/sandbox/avatars/{login}",
            "description": None,
        }

    def user_full_json(self, login: str) -> dict:
        d = self.user_json(login)
        u = self.users.get(login, {})
        d.update(
            {
                "name": u.get("name"),
                "company": None,
                "blog": "",
                "location": None,
                "email": u.get("email"),
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": sum(1 for r in self.state["repos"].values() if r["owner"] == login),
                "public_gists": 0,
                "followers": 0,
                "following": 0,
                "created_at": "2020-01-01T00:00:00Z",
                "updated_at": "2020-01-01T00:00:00Z",
            }
        )
        return d

    def repo_json(self, rec: dict, viewer: str | None = None, *, full: bool = False, push_style: bool = False) -> dict:
        full_name = rec["full_name"]
        api = f"{self.base}/repos/{full_name}"
        html = f"{self.base}/{full_name}"
        clone = f"{self.base}/{full_name}.git"
        open_issues = sum(1 for i in rec["issues"].values() if i["state"] == "open")
        forks = sum(1 for r in self.state["repos"].values() if r.get("fork_of") == full_name)
        d = {
            "id": rec["id"],
            "node_id": node_id("Repository", rec["id"]),
            "name": rec["name"],
            "full_name": full_name,
            "private": False,
            "owner": self.user_json(rec["owner"]),
            "html_url": html,
            "description": rec.get("description"),
            "fork": bool(rec.get("fork_of")),
            "url": api,
            "forks_url": f"{api}/forks",
            "keys_url": f"{api}/keys{{/key_id}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "teams_url": f"{api}/teams",
            "hooks_url": f"{api}/hooks",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "events_url": f"{api}/events",
            "assignees_url": f"{api}/assignees{{/user}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "tags_url": f"{api}/tags",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "languages_url": f"{api}/languages",
            "stargazers_url": f"{api}/stargazers",
            "contributors_url": f"{api}/contributors",
            "subscribers_url": f"{api}/subscribers",
            "subscription_url": f"{api}/subscription",
            "commits_url": f"{api}/commits{{/sha}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "comments_url": f"{api}/comments{{/number}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "merges_url": f"{api}/merges",
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "downloads_url": f"{api}/downloads",
            "issues_url": f"{api}/issues{{/number}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "labels_url": f"{api}/labels{{/name}}",
            "releases_url": f"{api}/releases{{/id}}",
            "deployments_url": f"{api}/deployments",
            "created_at": rec["created_at"],
            "updated_at": rec["updated_at"],
            "pushed_at": rec["pushed_at"],
            "git_url": clone,
            "ssh_url": clone,
            "clone_url": clone,
            "svn_url": html,
            "homepage": None,
            "size": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "language": None,
            "has_issues": True,
            "has_projects": False,
            "has_downloads": True,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "forks_count": forks,
            "mirror_url": None,
            "archived": False,
            "disabled": False,
            "open_issues_count": open_issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "web_commit_signoff_required": False,
            "topics": [],
            "visibility": "public",
            "forks": forks,
            "open_issues": open_issues,
            "watchers": 0,
            "default_branch": rec["default_branch"],
            "custom_properties": {},
        }
        if push_style:
            for k in ("created_at", "pushed_at"):
                d[k] = int(datetime.strptime(d[k], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
            d["stargazers"] = 0
            d["master_branch"] = rec["default_branch"]
            d["owner"] = {"name": rec["owner"], "email": self.user_email(rec["owner"]), **d["owner"]}
        if viewer is not None:
            p = PERM_RANK[self.effective_perm(rec, viewer)]
            d["permissions"] = {"admin": p >= 5, "maintain": p >= 4, "push": p >= 3, "triage": p >= 2, "pull": p >= 1}
        if full:
            d["network_count"] = forks
            d["subscribers_count"] = 0
            if rec.get("fork_of"):
                parent = self.state["repos"].get(rec["fork_of"])
                if parent:
                    d["parent"] = self.repo_json(parent)
                    root = parent
                    while root.get("fork_of") and root["fork_of"] in self.state["repos"]:
                        root = self.state["repos"][root["fork_of"]]
                    d["source"] = self.repo_json(root)
        return d

    def installation_json(self) -> dict | None:
        if not self.apps:
            return None
        app = next(iter(self.apps.values()))
        return {"id": app["installation_id"], "node_id": node_id("Installation", app["installation_id"])}

    def commit_json(self, rec: dict, sha: str, with_files: bool = True) -> dict:
        path = self.repo_path(rec)
        info = gitops.commit_info(path, sha)
        api = f"{self.base}/repos/{rec['full_name']}"
        html = f"{self.base}/{rec['full_name']}"
        a_login = self.login_for_person(info["author"]["name"], info["author"]["email"])
        c_login = self.login_for_person(info["committer"]["name"], info["committer"]["email"])
        d = {
            "sha": sha,
            "node_id": node_id("Commit", int(sha[:8], 16)),
            "commit": {
                "author": {**info["author"], "date": gitops.to_utc_z(info["author"]["date"])},
                "committer": {**info["committer"], "date": gitops.to_utc_z(info["committer"]["date"])},
                "message": info["message"],
                "tree": {"sha": info["tree"], "url": f"{api}/git/trees/{info['tree']}"},
                "url": f"{api}/git/commits/{sha}",
                "comment_count": 0,
                "verification": {
                    "verified": False,
                    "reason": "unsigned",
                    "signature": None,
                    "payload": None,
                    "verified_at": None,
                },
            },
            "url": f"{api}/commits/{sha}",
            "html_url": f"{html}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "author": self.user_json(a_login),
            "committer": self.user_json(c_login),
            "parents": [
                {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"} for p in info["parents"]
            ],
        }
        if with_files:
            files = gitops.changed_files(path, sha, info["parents"])
            adds = sum(f["additions"] for f in files)
            dels = sum(f["deletions"] for f in files)
            d["stats"] = {"total": adds + dels, "additions": adds, "deletions": dels}
            d["files"] = [
                {
                    "sha": None,
                    "filename": f["filename"],
                    "status": f["status"],
                    "additions": f["additions"],
                    "deletions": f["deletions"],
                    "changes": f["additions"] + f["deletions"],
                    "blob_url": f"{html}/blob/{sha}/{f['filename']}",
                    "raw_url": f"{html}/raw/{sha}/{f['filename']}",
                    "contents_url": f"{api}/contents/{f['filename']}?ref={sha}",
                }
                for f in files
            ]
        return d

    def git_commit_json(self, rec: dict, sha: str) -> dict:
        info = gitops.commit_info(self.repo_path(rec), sha)
        api = f"{self.base}/repos/{rec['full_name']}"
        return {
            "sha": sha,
            "node_id": node_id("Commit", int(sha[:8], 16)),
            "url": f"{api}/git/commits/{sha}",
            "html_url": f"{self.base}/{rec['full_name']}/commit/{sha}",
            "author": {**info["author"], "date": gitops.to_utc_z(info["author"]["date"])},
            "committer": {**info["committer"], "date": gitops.to_utc_z(info["committer"]["date"])},
            "tree": {"sha": info["tree"], "url": f"{api}/git/trees/{info['tree']}"},
            "message": info["message"],
            "parents": [
                {"sha": p, "url": f"{api}/git/commits/{p}", "html_url": f"{self.base}/{rec['full_name']}/commit/{p}"}
                for p in info["parents"]
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }

    def branch_json(self, rec: dict, name: str, sha: str) -> dict:
        api = f"{self.base}/repos/{rec['full_name']}"
        return {
            "name": name,
            "commit": self.commit_json(rec, sha, with_files=False),
            "_links": {"self": f"{api}/branches/{name}", "html": f"{self.base}/{rec['full_name']}/tree/{name}"},
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
            "protection_url": f"{api}/branches/{name}/protection",
        }

    def ref_json(self, rec: dict, ref: str, sha: str) -> dict:
        api = f"{self.base}/repos/{rec['full_name']}"
        return {
            "ref": ref,
            "node_id": node_id("Ref", zlib.crc32(ref.encode())),
            "url": f"{api}/git/{ref}",
            "object": {"sha": sha, "type": "commit", "url": f"{api}/git/commits/{sha}"},
        }

    def reactions_summary(self, url: str, comment_id: int | None) -> dict:
        d = {"url": url, "total_count": 0, **{k: 0 for k in REACTIONS}}
        if comment_id is not None:
            for r in self.state["reactions"].values():
                if r["comment_id"] == comment_id:
                    d[r["content"]] += 1
                    d["total_count"] += 1
        return d

    def issue_json(self, rec: dict, issue: dict) -> dict:
        full = rec["full_name"]
        api = f"{self.base}/repos/{full}/issues/{issue['number']}"
        is_pr = issue.get("kind") == "pr"
        html = f"{self.base}/{full}/{'pull' if is_pr else 'issues'}/{issue['number']}"
        d = {
            "url": api,
            "repository_url": f"{self.base}/repos/{full}",
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": html,
            "id": issue["id"],
            "node_id": node_id("Issue", issue["id"]),
            "number": issue["number"],
            "title": issue["title"],
            "user": self.user_json(issue["user"]),
            "labels": [],
            "state": issue["state"],
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": self.comment_count(rec, issue["number"]),
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
            "closed_at": issue.get("closed_at"),
            "author_association": self.author_association(rec, issue["user"]),
            "active_lock_reason": None,
            "body": issue.get("body"),
            "closed_by": self.user_json(issue.get("closed_by")),
            "reactions": self.reactions_summary(f"{api}/reactions", None),
            "timeline_url": f"{api}/timeline",
            "performed_via_github_app": None,
            "state_reason": issue.get("state_reason"),
        }
        if is_pr:
            d["draft"] = False
            prurl = f"{self.base}/repos/{full}/pulls/{issue['number']}"
            d["pull_request"] = {
                "url": prurl,
                "html_url": html,
                "diff_url": f"{html}.diff",
                "patch_url": f"{html}.patch",
                "merged_at": issue.get("merged_at"),
            }
        return d

    def comment_count(self, rec: dict, number: int) -> int:
        return sum(
            1 for c in self.state["comments"].values() if c["repo"] == rec["full_name"] and c["number"] == number
        )

    def pr_part(self, rec_for_repo: dict | None, owner: str, ref: str, sha: str) -> dict:
        return {
            "label": f"{owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self.user_json(owner),
            "repo": self.repo_json(rec_for_repo) if rec_for_repo else None,
        }

    def pr_merge_info(self, rec: dict, pr: dict) -> dict:
        """Mergeability + diff stats, cached per (base sha, head sha)."""
        path = self.repo_path(rec)
        if pr["state"] == "open":
            base_sha = gitops.ref_sha(path, f"refs/heads/{pr['base_ref']}") or pr.get("base_sha") or ZERO
        else:
            base_sha = pr.get("base_sha") or ZERO
        head_sha = pr["head_sha"]
        key = (rec["full_name"], base_sha, head_sha)
        cached = self._merge_cache.get(key)
        if cached is None:
            info = {
                "base_sha": base_sha,
                "mergeable": None,
                "additions": 0,
                "deletions": 0,
                "changed_files": 0,
                "commits": 0,
            }
            try:
                info.update(gitops.diff_stats(path, base_sha, head_sha))
                info["mergeable"] = gitops.merge_tree(path, base_sha, head_sha) is not None
            except gitops.GitError:
                pass
            self._merge_cache[key] = cached = info
        return cached

    def pr_json(self, rec: dict, pr: dict) -> dict:
        full = rec["full_name"]
        n = pr["number"]
        api = f"{self.base}/repos/{full}/pulls/{n}"
        html = f"{self.base}/{full}/pull/{n}"
        issue_api = f"{self.base}/repos/{full}/issues/{n}"
        head_rec = self.state["repos"].get(pr["head_repo"])
        head_owner = pr["head_repo"].split("/")[0]
        mi = self.pr_merge_info(rec, pr)
        is_open = pr["state"] == "open"
        mergeable = mi["mergeable"] if is_open else None
        if pr.get("merged"):
            mstate = "unknown"
        elif mergeable is None:
            mstate = "unknown"
        else:
            mstate = "clean" if mergeable else "dirty"
        statuses_url = f"{self.base}/repos/{full}/statuses/{pr['head_sha']}"
        return {
            "url": api,
            "id": pr["pr_id"],
            "node_id": node_id("PullRequest", pr["pr_id"]),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_api,
            "number": n,
            "state": pr["state"],
            "locked": False,
            "title": pr["title"],
            "user": self.user_json(pr["user"]),
            "body": pr.get("body"),
            "created_at": pr["created_at"],
            "updated_at": pr["updated_at"],
            "closed_at": pr.get("closed_at"),
            "merged_at": pr.get("merged_at"),
            "merge_commit_sha": pr.get("merge_commit_sha"),
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [],
            "milestone": None,
            "draft": False,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.base}/repos/{full}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments",
            "statuses_url": statuses_url,
            "head": self.pr_part(head_rec, head_owner, pr["head_ref"], pr["head_sha"]),
            "base": self.pr_part(rec, rec["owner"], pr["base_ref"], mi["base_sha"]),
            "_links": {
                "self": {"href": api},
                "html": {"href": html},
                "issue": {"href": issue_api},
                "comments": {"href": f"{issue_api}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{self.base}/repos/{full}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": statuses_url},
            },
            "author_association": self.author_association(rec, pr["user"]),
            "auto_merge": None,
            "active_lock_reason": None,
            "merged": bool(pr.get("merged")),
            "mergeable": mergeable,
            "rebaseable": mergeable,
            "mergeable_state": mstate,
            "merged_by": self.user_json(pr.get("merged_by")),
            "comments": self.comment_count(rec, n),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": mi["commits"],
            "additions": mi["additions"],
            "deletions": mi["deletions"],
            "changed_files": mi["changed_files"],
        }

    def comment_json(self, rec: dict, c: dict) -> dict:
        full = rec["full_name"]
        issue = rec["issues"].get(str(c["number"]), {})
        kind = "pull" if issue.get("kind") == "pr" else "issues"
        url = f"{self.base}/repos/{full}/issues/comments/{c['id']}"
        return {
            "url": url,
            "html_url": f"{self.base}/{full}/{kind}/{c['number']}#issuecomment-{c['id']}",
            "issue_url": f"{self.base}/repos/{full}/issues/{c['number']}",
            "id": c["id"],
            "node_id": node_id("IssueComment", c["id"]),
            "user": self.user_json(c["user"]),
            "created_at": c["created_at"],
            "updated_at": c["updated_at"],
            "author_association": self.author_association(rec, c["user"]),
            "body": c["body"],
            "reactions": self.reactions_summary(f"{url}/reactions", c["id"]),
            "performed_via_github_app": None,
        }

    def reaction_json(self, r: dict) -> dict:
        return {
            "id": r["id"],
            "node_id": node_id("Reaction", r["id"]),
            "user": self.user_json(r["user"]),
            "content": r["content"],
            "created_at": r["created_at"],
        }

    def status_json(self, rec: dict, s: dict) -> dict:
        return {
            "url": f"{self.base}/repos/{rec['full_name']}/statuses/{s['sha']}",
            "avatar_url": f"{self.base}/sandbox/avatars/{s['creator']}",
            "id": s["id"],
            "node_id": node_id("StatusContext", s["id"]),
            "state": s["state"],
            "description": s.get("description"),
            "target_url": s.get("target_url"),
            "context": s["context"],
            "created_at": s["created_at"],
            "updated_at": s["updated_at"],
            "creator": self.user_json(s["creator"]),
        }

    def app_json(self, app: dict) -> dict:
        owner = next((r["owner"] for r in self.state["repos"].values() if r.get("seeded")), app["slug"])
        return {
            "id": app["id"],
            "slug": app["slug"],
            "node_id": node_id("Integration", app["id"]),
            "client_id": f"Iv1.{app['id']:08d}",
            "owner": self.user_json(owner),
            "name": app["name"],
            "description": "",
            "external_url": f"{self.base}/apps/{app['slug']}",
            "html_url": f"{self.base}/apps/{app['slug']}",
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
            "permissions": {
                "checks": "write",
                "contents": "write",
                "issues": "write",
                "metadata": "read",
                "pull_requests": "write",
                "statuses": "write",
            },
            "events": ["push", "pull_request", "issue_comment", "check_run"],
            "installations_count": 1,
        }

    def installation_full_json(self, app: dict) -> dict:
        inst = app["installation_id"]
        owner = next((r["owner"] for r in self.state["repos"].values() if r.get("seeded")), app["slug"])
        return {
            "id": inst,
            "account": self.user_json(owner),
            "repository_selection": "all",
            "access_tokens_url": f"{self.base}/app/installations/{inst}/access_tokens",
            "repositories_url": f"{self.base}/installation/repositories",
            "html_url": f"{self.base}/settings/installations/{inst}",
            "app_id": app["id"],
            "app_slug": app["slug"],
            "target_id": self.user_id(owner),
            "target_type": self.user_type(owner),
            "permissions": self.app_json(app)["permissions"],
            "events": self.app_json(app)["events"],
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def check_run_json(self, rec: dict, cr: dict) -> dict:
        api = f"{self.base}/repos/{rec['full_name']}"
        app = self.apps.get(cr["app_id"])
        out = cr.get("output") or {}
        prs = []
        for issue in rec["issues"].values():
            if issue.get("kind") == "pr" and issue["state"] == "open" and issue["head_sha"] == cr["head_sha"]:
                prs.append(
                    {
                        "url": f"{api}/pulls/{issue['number']}",
                        "id": issue["pr_id"],
                        "number": issue["number"],
                        "head": {
                            "ref": issue["head_ref"],
                            "sha": issue["head_sha"],
                            "repo": {"id": rec["id"], "url": api, "name": rec["name"]},
                        },
                        "base": {
                            "ref": issue["base_ref"],
                            "sha": issue.get("base_sha") or ZERO,
                            "repo": {"id": rec["id"], "url": api, "name": rec["name"]},
                        },
                    }
                )
        return {
            "id": cr["id"],
            "name": cr["name"],
            "node_id": node_id("CheckRun", cr["id"]),
            "head_sha": cr["head_sha"],
            "external_id": cr.get("external_id") or "",
            "url": f"{api}/check-runs/{cr['id']}",
            "html_url": f"{self.base}/{rec['full_name']}/runs/{cr['id']}",
            "details_url": cr.get("details_url") or f"{self.base}/{rec['full_name']}/runs/{cr['id']}",
            "status": cr["status"],
            "conclusion": cr.get("conclusion"),
            "started_at": cr.get("started_at"),
            "completed_at": cr.get("completed_at"),
            "output": {
                "title": out.get("title"),
                "summary": out.get("summary"),
                "text": out.get("text"),
                "annotations_count": 0,
                "annotations_url": f"{api}/check-runs/{cr['id']}/annotations",
            },
            "check_suite": {"id": cr["check_suite_id"]},
            "app": self.app_json(app) if app else None,
            "pull_requests": prs,
        }

    # ------------------------------------------------------------------ webhooks
    def emit(self, rec: dict, event: str, payload: dict, sender: str | None) -> None:
        with self.lock:
            hook = self.webhooks.get(rec["full_name"])
            if hook is None:
                return
            if event not in hook.events and "*" not in hook.events:
                return
            body = dict(payload)
            body.setdefault("repository", self.repo_json(rec))
            body["sender"] = self.user_json(sender or rec["owner"])
            inst = self.installation_json()
            if inst:
                body["installation"] = inst
            if self.user_type(rec["owner"]) == "Organization":
                body["organization"] = self.org_json(rec["owner"])
            raw = json.dumps(body).encode()
            built = Dispatcher.build(rec["hook_id"], rec["id"], hook.url, hook.secret, event, raw)
            record = {
                "id": self.next_id("delivery"),
                **built,
                "event": event,
                "action": body.get("action"),
                "repository": rec["full_name"],
                "hook_id": rec["hook_id"],
                "status": "pending",
                "status_code": None,
                "response_body": None,
                "duration_ms": None,
                "delivered_at": None,
                "redelivery": False,
                "created_at": now_iso(),
                "payload": raw.decode(),
            }
            self.state["deliveries"].append(record)
            self.save_soon()
            self.dispatcher.enqueue(record, raw)

    def redeliver(self, guid: str) -> dict:
        with self.lock:
            orig = next((d for d in self.state["deliveries"] if d["guid"] == guid), None)
            if orig is None:
                raise ApiError(404, "Not Found")
            raw = orig["payload"].encode()
            hook = self.webhooks.get(orig["repository"])
            url = hook.url if hook else orig["url"]
            headers = dict(orig["request_headers"])
            record = {
                **orig,
                "id": self.next_id("delivery"),
                "url": url,
                "request_headers": headers,
                "status": "pending",
                "status_code": None,
                "response_body": None,
                "duration_ms": None,
                "delivered_at": None,
                "redelivery": True,
                "created_at": now_iso(),
            }
            self.state["deliveries"].append(record)
            self.save_soon()
            self.dispatcher.enqueue(record, raw)
            return record

    def _delivery_done(self, record: dict, result: dict) -> None:
        with self.lock:
            record.update(result)
            self.save_soon()

    # ------------------------------------------------------------------ git events
    def push_commit_json(self, rec: dict, sha: str) -> dict:
        path = self.repo_path(rec)
        info = gitops.commit_info(path, sha)
        files = gitops.changed_files(path, sha, info["parents"])

        def person(p):
            d = {"name": p["name"], "email": p["email"]}
            login = self.login_for_person(p["name"], p["email"])
            if login:
                d["username"] = login
            return d

        return {
            "id": sha,
            "tree_id": info["tree"],
            "distinct": True,
            "message": info["message"],
            "timestamp": info["committer"]["date"],
            "url": f"{self.base}/{rec['full_name']}/commit/{sha}",
            "author": person(info["author"]),
            "committer": person(info["committer"]),
            "added": [f["filename"] for f in files if f["status"] == "added"],
            "removed": [f["filename"] for f in files if f["status"] == "removed"],
            "modified": [f["filename"] for f in files if f["status"] == "modified"],
        }

    def process_ref_updates(self, rec: dict, updates: list[tuple[str, str, str]], pusher: str | None) -> None:
        """Fire push/create/delete webhooks and update PRs after refs changed in ``rec``'s bare repo."""
        with self.lock:
            pusher = pusher if pusher and self.user_exists(pusher) else rec["owner"]
            path = self.repo_path(rec)
            for old, new, ref in updates:
                if not (gitops.valid_refname(ref) and (gitops.valid_sha(old) and gitops.valid_sha(new))):
                    continue
                if not (ref.startswith("refs/heads/") or ref.startswith("refs/tags/")):
                    continue
                created, deleted = old == ZERO, new == ZERO
                short = ref.split("/", 2)[2]
                ref_type = "branch" if ref.startswith("refs/heads/") else "tag"
                commits, head = [], None
                forced = False
                if not deleted:
                    if created:
                        others = [s for r, s in gitops.list_refs(path).items() if r != ref]
                        shas = gitops.rev_list(path, new, others, limit=20)
                    else:
                        forced = not gitops.is_ancestor(path, old, new)
                        shas = gitops.rev_list(path, new, [old], limit=20)
                    commits = [self.push_commit_json(rec, s) for s in shas]
                    head = commits[-1] if commits and commits[-1]["id"] == new else self.push_commit_json(rec, new)
                rec["pushed_at"] = now_iso()
                compare = (
                    f"{self.base}/{rec['full_name']}/compare/{short}"
                    if created
                    else f"{self.base}/{rec['full_name']}/compare/{old[:12]}...{new[:12]}"
                )
                self.emit(
                    rec,
                    "push",
                    {
                        "ref": ref,
                        "before": old,
                        "after": new,
                        "repository": self.repo_json(rec, push_style=True),
                        "pusher": {"name": pusher, "email": self.user_email(pusher)},
                        "created": created,
                        "deleted": deleted,
                        "forced": forced,
                        "base_ref": None,
                        "compare": compare,
                        "commits": commits,
                        "head_commit": head,
                    },
                    pusher,
                )
                if created:
                    self.emit(
                        rec,
                        "create",
                        {
                            "ref": short,
                            "ref_type": ref_type,
                            "master_branch": rec["default_branch"],
                            "description": rec.get("description"),
                            "pusher_type": "user",
                        },
                        pusher,
                    )
                if deleted:
                    self.emit(rec, "delete", {"ref": short, "ref_type": ref_type, "pusher_type": "user"}, pusher)
                if ref_type == "branch":
                    self._sync_prs(rec, short, old, new, pusher)
            self.save_soon()

    def _sync_prs(self, rec: dict, branch: str, old: str, new: str, pusher: str) -> None:
        deleted = new == ZERO
        for base_rec in list(self.state["repos"].values()):
            base_path = self.repo_path(base_rec)
            for pr in base_rec["issues"].values():
                if pr.get("kind") != "pr" or pr["state"] != "open":
                    continue
                if pr["head_repo"] == rec["full_name"] and pr["head_ref"] == branch:
                    if deleted:
                        self.close_pr(base_rec, pr, pusher)
                        continue
                    if new != pr["head_sha"]:
                        before = pr["head_sha"]
                        self._store_pr_head(base_rec, pr, rec, new)
                        pr["head_sha"] = new
                        pr["updated_at"] = now_iso()
                        self.emit(
                            base_rec,
                            "pull_request",
                            {
                                "action": "synchronize",
                                "number": pr["number"],
                                "before": before,
                                "after": new,
                                "pull_request": self.pr_json(base_rec, pr),
                            },
                            pusher,
                        )
                if base_rec is rec and pr["base_ref"] == branch and pr["state"] == "open":
                    if deleted:
                        self.close_pr(base_rec, pr, pusher)
                    elif gitops.is_ancestor(base_path, pr["head_sha"], new):
                        # head reachable from base: GitHub marks the PR as merged
                        ts = now_iso()
                        pr.update(
                            state="closed",
                            merged=True,
                            merged_at=ts,
                            closed_at=ts,
                            updated_at=ts,
                            merged_by=pusher,
                            closed_by=pusher,
                            merge_commit_sha=new,
                            base_sha=old if old != ZERO else new,
                        )
                        self.emit(
                            base_rec,
                            "pull_request",
                            {"action": "closed", "number": pr["number"], "pull_request": self.pr_json(base_rec, pr)},
                            pusher,
                        )

    def _store_pr_head(self, base_rec: dict, pr: dict, head_rec: dict, sha: str) -> None:
        path = self.repo_path(base_rec)
        dst = f"refs/pull/{pr['number']}/head"
        if head_rec is base_rec:
            gitops.update_ref(path, dst, sha)
        else:
            gitops.fetch_into(path, self.repo_path(head_rec), sha, dst)

    def close_pr(self, rec: dict, pr: dict, actor: str) -> None:
        ts = now_iso()
        pr["base_sha"] = gitops.ref_sha(self.repo_path(rec), f"refs/heads/{pr['base_ref']}") or pr.get("base_sha")
        pr.update(state="closed", closed_at=ts, updated_at=ts, closed_by=actor, merged=False)
        self.emit(
            rec,
            "pull_request",
            {"action": "closed", "number": pr["number"], "pull_request": self.pr_json(rec, pr)},
            actor,
        )

    # ------------------------------------------------------------------ rate limit
    def rate_used(self, user: str | None) -> tuple[int, int]:
        key = user or "(anonymous)"
        now = int(time.time())
        with self._rate_lock:
            window = self._rate.get(key)
            if window is None or window[0] <= now:
                window = [now + 3600, 0]
                self._rate[key] = window
            window[1] += 1
            return window[1], window[0]
