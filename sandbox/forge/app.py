"""Flask app: GitHub-compatible REST API, git smart HTTP, HTML pages and /sandbox/ introspection."""

from __future__ import annotations

import base64
import math
import re
import secrets
import subprocess
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import gitops, pages
from .core import PERM_RANK, REACTIONS, ApiError, Forge, now_iso, validation_error
from .gitops import ZERO

API_PREFIXES = ("/user", "/users/", "/repos/", "/app", "/rate_limit", "/installation")
STATUS_STATES = ("error", "failure", "pending", "success")
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CHECK_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale",
                     "timed_out")
_TEMPLATE_RE = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def create_app(data_dir, seed, base_url: str) -> Flask:
    """Build the forge Flask app. ``seed`` is a TOML path, a parsed dict or None."""
    forge = Forge(data_dir, seed, base_url)
    app = Flask("sandbox.forge")
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    app.extensions["forge"] = forge
    F = forge
    base = F.base

    # ------------------------------------------------------------ plumbing
    def kind_of(path: str) -> str:
        if path.startswith("/sandbox/"):
            return "sandbox"
        if ".git/" in path or path.endswith(".git"):
            return "git"
        if path == "/user" or any(path.startswith(p) for p in API_PREFIXES if p != "/user"):
            return "api"
        return "html"

    def err_body(status: int, message: str, errors=None) -> dict:
        body = {"message": message, "documentation_url": F.docs_url, "status": str(status)}
        if errors:
            body["errors"] = errors
        return body

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        resp = jsonify(err_body(exc.status, exc.message, exc.errors))
        resp.status_code = exc.status
        for k, v in exc.headers.items():
            resp.headers[k] = v
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if kind_of(request.path) in ("api", "sandbox"):
            msg = {404: "Not Found", 405: "Method Not Allowed", 400: "Problems parsing JSON"}.get(
                exc.code, exc.name)
            resp = jsonify(err_body(exc.code, msg))
            resp.status_code = exc.code
            return resp
        return exc

    def verify_jwt(token: str) -> dict:
        import jwt  # PyJWT, shipped with PyGithub

        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded")
        try:
            app_id = int(str(unverified.get("iss")))
        except ValueError:
            raise ApiError(401, "A JSON web token could not be decoded")
        gh_app = F.apps.get(app_id)
        if gh_app is None or not gh_app["public_key"]:
            raise ApiError(401, "Integration not found")
        try:
            jwt.decode(token, gh_app["public_key"], algorithms=["RS256"], leeway=60,
                       options={"require": ["exp", "iat", "iss"]})
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing the "
                                "future time at which the assertion expires")
        except jwt.PyJWTError:
            raise ApiError(401, "A JSON web token could not be decoded")
        return gh_app

    def token_user(token: str) -> str | None:
        login = F.tokens.get(token)
        if login:
            return login
        inst = F.installation_for_token(token)
        if inst:
            return F.apps[inst["app_id"]]["bot"] if inst["app_id"] in F.apps else None
        return None

    @app.before_request
    def _auth():
        g.request_id = f"{secrets.token_hex(2).upper()}:{secrets.token_hex(3).upper()}:" \
                       f"{secrets.token_hex(4).upper()}:{secrets.token_hex(4).upper()}"
        g.kind = kind_of(request.path)
        g.user = None
        g.app = None
        if g.kind in ("api", "html"):
            # API/HTML handlers run one at a time (git smart HTTP and /sandbox/ do not take the lock:
            # a push runs the post-receive hook, which calls back into /sandbox/internal/post-receive)
            F.lock.acquire()
            g.locked = True
        if g.kind != "api":
            return None
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, cred = header.partition(" ")
        cred = cred.strip()
        scheme = scheme.lower()
        if scheme in ("token", "bearer"):
            login = token_user(cred)
            if login:
                g.user = login
                return None
            if scheme == "bearer" and cred.count(".") == 2:
                g.app = verify_jwt(cred)
                return None
        elif scheme == "basic":
            try:
                user, _, pw = base64.b64decode(cred).decode().partition(":")
            except Exception:
                user, pw = "", ""
            login = token_user(pw) or token_user(user)
            if login:
                g.user = login
                return None
        raise ApiError(401, "Bad credentials")

    @app.teardown_request
    def _unlock(exc):
        if g.pop("locked", False):
            F.lock.release()

    @app.after_request
    def _headers(resp: Response):
        if g.get("kind") == "api":
            who = g.get("user") or (f"app:{g.app['id']}" if g.get("app") else None)
            used, reset = F.rate_used(who)
            resp.headers["X-RateLimit-Limit"] = "5000"
            resp.headers["X-RateLimit-Remaining"] = str(max(0, 5000 - used))
            resp.headers["X-RateLimit-Reset"] = str(reset)
            resp.headers["X-RateLimit-Used"] = str(used)
            resp.headers["X-RateLimit-Resource"] = "core"
            resp.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
            resp.headers["X-GitHub-Api-Version-Selected"] = "2022-11-28"
            if g.get("user") and not F.is_app_bot(g.user):
                resp.headers["X-OAuth-Scopes"] = "repo, workflow"
                resp.headers["X-Accepted-OAuth-Scopes"] = "repo"
            rule = request.url_rule.rule if request.url_rule else "(unmatched)"
            template = _TEMPLATE_RE.sub(r"{\1}", rule)
            F.count_request(f"{request.method} {template}", who)
        if g.get("request_id"):
            resp.headers["X-GitHub-Request-Id"] = g.request_id
        return resp

    def j(data, status: int = 200, headers: dict | None = None) -> Response:
        resp = jsonify(data)
        resp.status_code = status
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp

    def no_content() -> Response:
        return Response(status=204)

    def body_json() -> dict:
        if not request.get_data():
            return {}
        data = request.get_json(silent=True, force=True)
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data

    def need_user() -> str:
        if g.user is None:
            raise ApiError(401, "Requires authentication")
        return g.user

    def paginate(items: list) -> tuple[list, dict]:
        try:
            per_page = min(100, max(1, int(request.args.get("per_page", 30))))
            page = max(1, int(request.args.get("page", 1)))
        except ValueError:
            per_page, page = 30, 1
        last = max(1, math.ceil(len(items) / per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def url(p: int) -> str:
            params = {k: v for k, v in request.args.items() if k not in ("page", "per_page")}
            params["per_page"] = per_page
            params["page"] = p
            return f"{base}{request.path}?{urlencode(params)}"

        links = []
        if page < last:
            links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
        if page > 1:
            links += [f'<{url(1)}>; rel="first"', f'<{url(min(page - 1, last))}>; rel="prev"']
        return chunk, ({"Link": ", ".join(links)} if links else {})

    def repo_or_404(owner: str, repo: str) -> dict:
        return F.get_repo(owner, repo)

    def resolve_or(rec: dict, rev: str, status: int = 404, message: str = "Not Found") -> str:
        sha = gitops.resolve(F.repo_path(rec), rev)
        if sha is None:
            if status == 422:
                raise ApiError(422, message)
            raise ApiError(status, message)
        return sha

    def get_issue(rec: dict, number: int) -> dict:
        issue = rec["issues"].get(str(number))
        if issue is None:
            raise ApiError(404, "Not Found")
        return issue

    def get_pr(rec: dict, number: int) -> dict:
        issue = get_issue(rec, number)
        if issue.get("kind") != "pr":
            raise ApiError(404, "Not Found")
        return issue

    def get_comment(rec: dict, cid: int) -> dict:
        c = F.state["comments"].get(str(cid))
        if c is None or c["repo"] != rec["full_name"]:
            raise ApiError(404, "Not Found")
        return c

    # ------------------------------------------------------------ users
    @app.get("/user")
    def get_authenticated_user():
        login = need_user()
        if F.is_app_bot(login):
            raise ApiError(403, "Resource not accessible by integration")
        d = F.user_full_json(login)
        d.update({"private_gists": 0, "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0,
                  "collaborators": 0, "two_factor_authentication": False,
                  "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000}})
        return j(d)

    @app.get("/users/<login>")
    def get_user(login):
        if not F.user_exists(login):
            raise ApiError(404, "Not Found")
        return j(F.user_full_json(login))

    @app.get("/rate_limit")
    def rate_limit():
        reset = int(time.time()) + 3600
        core = {"limit": 5000, "remaining": 5000, "reset": reset, "used": 0, "resource": "core"}
        return j({"resources": {"core": core, "search": {**core, "limit": 30, "remaining": 30},
                                "graphql": {**core, "resource": "graphql"}}, "rate": core})

    # ------------------------------------------------------------ repos
    @app.get("/repos/<owner>/<repo>")
    def get_repository(owner, repo):
        rec = repo_or_404(owner, repo)
        return j(F.repo_json(rec, g.user or "", full=True) if g.user else F.repo_json(rec, full=True))

    @app.post("/repos/<owner>/<repo>/forks")
    def create_fork(owner, repo):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        if F.is_app_bot(login):
            raise ApiError(403, "Resource not accessible by integration")
        name = body.get("name") or rec["name"]
        new_owner = body.get("organization") or login
        if not gitops.valid_name(name) or not gitops.valid_login(new_owner):
            raise validation_error("Invalid fork name", resource="Repository", field="name")
        if new_owner != login and PERM_RANK[F.perm({"owner": new_owner, "permissions": {}}, login)] < 5:
            raise ApiError(403, "Must have admin rights to organization")
        with F.lock:
            full = f"{new_owner}/{name}"
            existing = F.state["repos"].get(full)
            if existing is not None:
                if existing.get("fork_of") == rec["full_name"]:
                    return j(F.repo_json(existing, login, full=True), 202)
                raise validation_error(f"{full} already exists", resource="Repository", field="name")
            if new_owner == rec["owner"]:
                raise validation_error("Cannot fork a repository into its own owner", resource="Repository")
            gitops.clone_bare(F.repo_path(rec), F.repo_path_for(full))
            ts = now_iso()
            fork = {"id": F.next_id("repo"), "owner": new_owner, "name": name, "full_name": full,
                    "created_at": ts, "updated_at": ts, "pushed_at": rec["pushed_at"],
                    "fork_of": rec["full_name"], "next_number": 1, "issues": {},
                    "default_branch": rec["default_branch"], "permissions": {}, "description": rec.get("description"),
                    "seeded": False}
            F.state["repos"][full] = fork
            F.install_hooks(fork)
            F.save()
            F.emit(rec, "fork", {"forkee": F.repo_json(fork)}, login)
            return j(F.repo_json(fork, login, full=True), 202)

    @app.get("/repos/<owner>/<repo>/collaborators/<username>/permission")
    def collaborator_permission(owner, repo, username):
        need_user()
        rec = repo_or_404(owner, repo)
        if not F.is_user(username) and not (username == rec["owner"]):
            raise ApiError(404, f"{username} is not a user")
        raw = F.perm(rec, username)
        mapped = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                  "read": "read", "none": "none"}[raw]
        rank = PERM_RANK[raw]
        user = F.user_json(username)
        user["permissions"] = {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3, "triage": rank >= 2,
                               "pull": rank >= 1}
        user["role_name"] = raw
        return j({"permission": mapped, "role_name": raw, "user": user})

    @app.get("/repos/<owner>/<repo>/installation")
    def repo_installation(owner, repo):
        rec = repo_or_404(owner, repo)
        if g.app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        if not rec.get("seeded"):
            raise ApiError(404, "Not Found")
        return j(F.installation_full_json(g.app))

    # ------------------------------------------------------------ branches / refs / commits
    @app.get("/repos/<owner>/<repo>/branches")
    def list_branches(owner, repo):
        rec = repo_or_404(owner, repo)
        api = f"{base}/repos/{rec['full_name']}"
        refs = gitops.list_refs(F.repo_path(rec), "refs/heads/")
        items = [{"name": r[11:], "commit": {"sha": s, "url": f"{api}/commits/{s}"}, "protected": False}
                 for r, s in sorted(refs.items())]
        chunk, headers = paginate(items)
        return j(chunk, headers=headers)

    @app.get("/repos/<owner>/<repo>/branches/<path:branch>")
    def get_branch(owner, repo, branch):
        rec = repo_or_404(owner, repo)
        if not gitops.valid_branch(branch):
            raise ApiError(404, "Branch not found")
        sha = gitops.ref_sha(F.repo_path(rec), f"refs/heads/{branch}")
        if sha is None:
            raise ApiError(404, "Branch not found")
        return j(F.branch_json(rec, branch, sha))

    @app.get("/repos/<owner>/<repo>/git/ref/<path:ref>")
    def get_ref(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        full = f"refs/{ref}"
        if not gitops.valid_refname(full):
            raise ApiError(404, "Not Found")
        sha = gitops.list_refs(F.repo_path(rec), full).get(full)
        if sha is None:
            raise ApiError(404, "Not Found")
        return j(F.ref_json(rec, full, sha))

    def list_refs_json(rec: dict, prefix: str) -> list:
        refs = {}
        for p in ("refs/heads/", "refs/tags/"):
            refs.update(gitops.list_refs(F.repo_path(rec), p))
        return [F.ref_json(rec, r, s) for r, s in sorted(refs.items()) if r.startswith(prefix)]

    @app.get("/repos/<owner>/<repo>/git/refs")
    def list_all_refs(owner, repo):
        rec = repo_or_404(owner, repo)
        chunk, headers = paginate(list_refs_json(rec, "refs/"))
        return j(chunk, headers=headers)

    @app.get("/repos/<owner>/<repo>/git/refs/<path:ref>")
    def list_refs_prefix(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        full = f"refs/{ref}".rstrip("/")
        items = list_refs_json(rec, full)
        exact = [i for i in items if i["ref"] == full]
        if exact:
            return j(exact[0])
        items = [i for i in items if i["ref"].startswith(full + "/")]
        if not items:
            raise ApiError(404, "Not Found")
        chunk, headers = paginate(items)
        return j(chunk, headers=headers)

    @app.get("/repos/<owner>/<repo>/git/matching-refs/<path:ref>")
    def matching_refs(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        chunk, headers = paginate(list_refs_json(rec, f"refs/{ref}"))
        return j(chunk, headers=headers)

    @app.post("/repos/<owner>/<repo>/git/refs")
    def create_ref(owner, repo):
        login = need_user()
        rec = repo_or_404(owner, repo)
        F.require(rec, login, "write")
        body = body_json()
        ref, sha = body.get("ref") or "", body.get("sha") or ""
        if not gitops.valid_refname(ref) or not (ref.startswith("refs/heads/") or ref.startswith("refs/tags/")):
            raise ApiError(422, "Reference name is invalid" if ref else "Invalid request.\n\n\"ref\" wasn't supplied.")
        path = F.repo_path(rec)
        with F.lock:
            if not gitops.valid_sha(sha) or gitops.resolve(path, sha) != sha:
                raise ApiError(422, "Object does not exist")
            if gitops.ref_sha(path, ref) is not None:
                raise ApiError(422, "Reference already exists")
            gitops.update_ref(path, ref, sha, ZERO)
            F.process_ref_updates(rec, [(ZERO, sha, ref)], login)
            return j(F.ref_json(rec, ref, sha), 201, {"Location": f"{base}/repos/{rec['full_name']}/git/{ref}"})

    @app.patch("/repos/<owner>/<repo>/git/refs/<path:ref>")
    def update_ref(owner, repo, ref):
        login = need_user()
        rec = repo_or_404(owner, repo)
        F.require(rec, login, "write")
        body = body_json()
        full = f"refs/{ref}"
        sha, force = body.get("sha") or "", bool(body.get("force", False))
        if not gitops.valid_refname(full):
            raise ApiError(422, "Reference does not exist")
        path = F.repo_path(rec)
        with F.lock:
            old = gitops.list_refs(path, full).get(full)
            if old is None:
                raise ApiError(422, "Reference does not exist")
            if not gitops.valid_sha(sha) or gitops.resolve(path, sha) != sha:
                raise ApiError(422, "Object does not exist")
            if not force and not gitops.is_ancestor(path, old, sha):
                raise ApiError(422, "Update is not a fast forward")
            if old != sha:
                gitops.update_ref(path, full, sha, old)
                F.process_ref_updates(rec, [(old, sha, full)], login)
            return j(F.ref_json(rec, full, sha))

    @app.delete("/repos/<owner>/<repo>/git/refs/<path:ref>")
    def delete_ref(owner, repo, ref):
        login = need_user()
        rec = repo_or_404(owner, repo)
        F.require(rec, login, "write")
        full = f"refs/{ref}"
        if not gitops.valid_refname(full):
            raise ApiError(422, "Reference does not exist")
        path = F.repo_path(rec)
        with F.lock:
            old = gitops.list_refs(path, full).get(full)
            if old is None:
                raise ApiError(422, "Reference does not exist")
            if full == f"refs/heads/{rec['default_branch']}":
                raise ApiError(422, "Cannot delete the default branch of a repository")
            gitops.delete_ref(path, full, old)
            F.process_ref_updates(rec, [(old, ZERO, full)], login)
        return no_content()

    @app.get("/repos/<owner>/<repo>/git/commits/<sha>")
    def get_git_commit(owner, repo, sha):
        rec = repo_or_404(owner, repo)
        if not gitops.valid_sha(sha) or gitops.resolve(F.repo_path(rec), sha) != sha:
            raise ApiError(404, "Not Found")
        return j(F.git_commit_json(rec, sha))

    @app.get("/repos/<owner>/<repo>/commits/<path:ref>")
    def get_commit(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        sha = resolve_or(rec, ref, 422, f"No commit found for SHA: {ref}")
        return j(F.commit_json(rec, sha))

    def content_item(rec: dict, commit: str, ref: str, e: dict, with_content: bool) -> dict:
        full = rec["full_name"]
        kind = {"blob": "file", "tree": "dir", "commit": "submodule"}.get(e["type"], "file")
        if e["mode"] == "120000":
            kind = "symlink"
        api = f"{base}/repos/{full}/contents/{e['path']}?ref={ref}"
        html_url = f"{base}/{full}/{'blob' if kind != 'dir' else 'tree'}/{ref}/{e['path']}"
        git_url = f"{base}/repos/{full}/git/{'blobs' if kind != 'dir' else 'trees'}/{e['sha']}"
        d = {"type": kind, "size": e["size"] if kind != "dir" else 0, "name": e["path"].rsplit("/", 1)[-1],
             "path": e["path"], "sha": e["sha"], "url": api, "git_url": git_url, "html_url": html_url,
             "download_url": f"{base}/{full}/raw/{commit}/{e['path']}" if kind == "file" else None,
             "_links": {"self": api, "git": git_url, "html": html_url}}
        if with_content and kind == "file":
            d["encoding"] = "base64"
            d["content"] = base64.encodebytes(gitops.cat_blob(F.repo_path(rec), e["sha"])).decode()
        return d

    @app.get("/repos/<owner>/<repo>/contents/")
    @app.get("/repos/<owner>/<repo>/contents/<path:path>")
    def get_contents(owner, repo, path=""):
        rec = repo_or_404(owner, repo)
        path = path.strip("/")
        if any(part in ("", ".", "..") for part in path.split("/")) and path:
            raise ApiError(404, "Not Found")
        ref = request.args.get("ref") or rec["default_branch"]
        commit = resolve_or(rec, ref, 404, f"No commit found for the ref {ref}")
        entries = gitops.ls_tree(F.repo_path(rec), commit, path)
        if not entries:
            raise ApiError(404, "Not Found")
        if len(entries) == 1 and entries[0].get("self"):
            if entries[0]["type"] == "tree":
                entries = gitops.ls_tree(F.repo_path(rec), commit, path + "/")
            else:
                return j(content_item(rec, commit, ref, entries[0], True))
        return j([content_item(rec, commit, ref, e, False) for e in entries])

    @app.get("/repos/<owner>/<repo>/pulls/<int:number>/files")
    def pull_files(owner, repo, number):
        rec = repo_or_404(owner, repo)
        pr = get_pr(rec, number)
        mi = F.pr_merge_info(rec, pr)
        full = rec["full_name"]
        files = gitops.diff_files(F.repo_path(rec), mi["base_sha"], pr["head_sha"])
        items = [{"sha": None, "filename": f["filename"], "status": f["status"], "additions": f["additions"],
                  "deletions": f["deletions"], "changes": f["additions"] + f["deletions"],
                  "blob_url": f"{base}/{full}/blob/{pr['head_sha']}/{f['filename']}",
                  "raw_url": f"{base}/{full}/raw/{pr['head_sha']}/{f['filename']}",
                  "contents_url": f"{base}/repos/{full}/contents/{f['filename']}?ref={pr['head_sha']}",
                  "patch": f["patch"]} for f in files]
        chunk, headers = paginate(items)
        return j(chunk, headers=headers)

    # ------------------------------------------------------------ statuses
    def statuses_for(rec: dict, sha: str) -> list:
        return sorted((s for s in F.state["statuses"] if s["repo"] == rec["full_name"] and s["sha"] == sha),
                      key=lambda s: s["id"], reverse=True)

    @app.post("/repos/<owner>/<repo>/statuses/<sha>")
    def create_status(owner, repo, sha):
        login = need_user()
        rec = repo_or_404(owner, repo)
        F.require(rec, login, "write")
        body = body_json()
        full_sha = gitops.resolve(F.repo_path(rec), sha) if gitops.valid_short_sha(sha) else None
        if full_sha is None:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        state = body.get("state")
        if state not in STATUS_STATES:
            raise validation_error(resource="Status", field="state", code="custom" if state else "missing_field")
        ts = now_iso()
        with F.lock:
            s = {"id": F.next_id("status"), "repo": rec["full_name"], "sha": full_sha, "state": state,
                 "target_url": body.get("target_url"), "description": (body.get("description") or None),
                 "context": body.get("context") or "default", "creator": login, "created_at": ts, "updated_at": ts}
            F.state["statuses"].append(s)
            F.save()
            branches = [{"name": r[11:], "commit": {"sha": v, "url": f"{base}/repos/{rec['full_name']}/commits/{v}"},
                         "protected": False}
                        for r, v in gitops.list_refs(F.repo_path(rec)).items() if v == full_sha]
            F.emit(rec, "status", {"id": s["id"], "sha": full_sha, "name": rec["full_name"],
                                   "target_url": s["target_url"], "context": s["context"],
                                   "description": s["description"], "state": state,
                                   "commit": F.commit_json(rec, full_sha, with_files=False),
                                   "branches": branches, "created_at": ts, "updated_at": ts}, login)
            return j(F.status_json(rec, s), 201)

    @app.get("/repos/<owner>/<repo>/commits/<path:ref>/statuses")
    @app.get("/repos/<owner>/<repo>/statuses/<path:ref>")
    def list_statuses(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        sha = resolve_or(rec, ref)
        chunk, headers = paginate([F.status_json(rec, s) for s in statuses_for(rec, sha)])
        return j(chunk, headers=headers)

    @app.get("/repos/<owner>/<repo>/commits/<path:ref>/status")
    def combined_status(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        sha = resolve_or(rec, ref)
        latest = {}
        for s in statuses_for(rec, sha):
            latest.setdefault(s["context"], s)
        states = [s["state"] for s in latest.values()]
        if any(st in ("error", "failure") for st in states):
            combined = "failure"
        elif not states or any(st == "pending" for st in states):
            combined = "pending"
        else:
            combined = "success"
        items = sorted(latest.values(), key=lambda s: s["id"])
        return j({"state": combined, "statuses": [F.status_json(rec, s) for s in items], "sha": sha,
                  "total_count": len(items), "repository": F.repo_json(rec),
                  "commit_url": f"{base}/repos/{rec['full_name']}/commits/{sha}",
                  "url": f"{base}/repos/{rec['full_name']}/commits/{sha}/status"})

    # ------------------------------------------------------------ check runs
    def require_app_token(rec: dict) -> str:
        login = need_user()
        if not F.is_app_bot(login):
            raise ApiError(403, "You must authenticate via a GitHub App.")
        F.require(rec, login, "write")
        return login

    def check_suite_id(rec: dict, head_sha: str, app_id: int) -> int:
        suites = F.state.setdefault("check_suites", {})
        key = f"{rec['full_name']}|{head_sha}|{app_id}"
        if key not in suites:
            suites[key] = F.next_id("check_suite")
        return suites[key]

    def apply_check_fields(cr: dict, body: dict) -> None:
        for k in ("name", "details_url", "external_id", "started_at", "completed_at"):
            if k in body:
                cr[k] = body[k]
        if "output" in body and isinstance(body["output"], dict):
            cr["output"] = {k: body["output"].get(k) for k in ("title", "summary", "text")}
        if "status" in body:
            if body["status"] not in CHECK_STATUSES:
                raise validation_error(resource="CheckRun", field="status", code="invalid")
            cr["status"] = body["status"]
        if body.get("conclusion") is not None:
            if body["conclusion"] not in CHECK_CONCLUSIONS:
                raise validation_error(resource="CheckRun", field="conclusion", code="invalid")
            cr["conclusion"] = body["conclusion"]
            cr["status"] = "completed"
        if cr["status"] == "completed":
            if not cr.get("conclusion"):
                raise ApiError(422, "Invalid request.\n\nNo subschema in \"anyOf\" matched.\n"
                                    "\"conclusion\" wasn't supplied.")
            cr.setdefault("completed_at", None)
            cr["completed_at"] = cr["completed_at"] or now_iso()

    @app.post("/repos/<owner>/<repo>/check-runs")
    def create_check_run(owner, repo):
        rec = repo_or_404(owner, repo)
        login = require_app_token(rec)
        body = body_json()
        if not body.get("name") or not body.get("head_sha"):
            raise validation_error(resource="CheckRun", field="name" if not body.get("name") else "head_sha",
                                   code="missing_field")
        head_sha = gitops.resolve(F.repo_path(rec), body["head_sha"]) if gitops.valid_short_sha(
            body["head_sha"]) else None
        if head_sha is None:
            raise ApiError(422, "No commit found for SHA: " + str(body["head_sha"]))
        app_id = F.users[login]["app_id"]
        with F.lock:
            cr = {"id": F.next_id("check_run"), "repo": rec["full_name"], "head_sha": head_sha, "status": "queued",
                  "conclusion": None, "app_id": app_id, "started_at": now_iso(), "completed_at": None,
                  "check_suite_id": check_suite_id(rec, head_sha, app_id), "output": {}}
            apply_check_fields(cr, body)
            F.state["check_runs"][str(cr["id"])] = cr
            F.save()
            data = F.check_run_json(rec, cr)
            F.emit(rec, "check_run", {"action": "created", "check_run": data}, login)
            return j(data, 201)

    def get_check(rec: dict, cid: int) -> dict:
        cr = F.state["check_runs"].get(str(cid))
        if cr is None or cr["repo"] != rec["full_name"]:
            raise ApiError(404, "Not Found")
        return cr

    @app.get("/repos/<owner>/<repo>/check-runs/<int:cid>")
    def get_check_run(owner, repo, cid):
        rec = repo_or_404(owner, repo)
        return j(F.check_run_json(rec, get_check(rec, cid)))

    @app.patch("/repos/<owner>/<repo>/check-runs/<int:cid>")
    def update_check_run(owner, repo, cid):
        rec = repo_or_404(owner, repo)
        login = require_app_token(rec)
        body = body_json()
        with F.lock:
            cr = get_check(rec, cid)
            if cr["app_id"] != F.users[login]["app_id"]:
                raise ApiError(403, "Invalid app_id `%s` - check run can only be modified by its creator"
                               % F.users[login]["app_id"])
            was_completed = cr["status"] == "completed"
            apply_check_fields(cr, body)
            F.save()
            data = F.check_run_json(rec, cr)
            if cr["status"] == "completed" and not was_completed:
                F.emit(rec, "check_run", {"action": "completed", "check_run": data}, login)
            return j(data)

    @app.get("/repos/<owner>/<repo>/commits/<path:ref>/check-runs")
    def list_check_runs(owner, repo, ref):
        rec = repo_or_404(owner, repo)
        sha = resolve_or(rec, ref)
        runs = [cr for cr in F.state["check_runs"].values() if cr["repo"] == rec["full_name"]
                and cr["head_sha"] == sha]
        if request.args.get("check_name"):
            runs = [cr for cr in runs if cr["name"] == request.args["check_name"]]
        if request.args.get("status"):
            runs = [cr for cr in runs if cr["status"] == request.args["status"]]
        runs.sort(key=lambda cr: cr["id"], reverse=True)
        if request.args.get("filter", "latest") == "latest":
            seen, latest = set(), []
            for cr in runs:
                if cr["name"] not in seen:
                    seen.add(cr["name"])
                    latest.append(cr)
            runs = latest
        chunk, headers = paginate(runs)
        return j({"total_count": len(runs), "check_runs": [F.check_run_json(rec, cr) for cr in chunk]},
                 headers=headers)

    # ------------------------------------------------------------ app
    @app.post("/app/installations/<int:inst_id>/access_tokens")
    def create_installation_token(inst_id):
        if g.app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        if g.app["installation_id"] != inst_id:
            raise ApiError(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
        expires = int(time.time()) + 3600
        with F.lock:
            F.state["install_tokens"][token] = {"app_id": g.app["id"], "installation_id": inst_id,
                                                "expires_at": expires}
            F.save()
        perms = F.app_json(g.app)["permissions"]
        return j({"token": token,
                  "expires_at": datetime.fromtimestamp(expires, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "permissions": perms, "repository_selection": "all"}, 201)

    @app.get("/app/installations/<int:inst_id>")
    def get_installation(inst_id):
        if g.app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        if g.app["installation_id"] != inst_id:
            raise ApiError(404, "Not Found")
        return j(F.installation_full_json(g.app))

    @app.get("/app/installations")
    def list_installations():
        if g.app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        return j([F.installation_full_json(g.app)])

    @app.get("/app")
    def get_app():
        if g.app is None:
            raise ApiError(401, "A JSON web token could not be decoded")
        return j(F.app_json(g.app))

    @app.get("/installation/repositories")
    def installation_repositories():
        login = need_user()
        if not F.is_app_bot(login):
            raise ApiError(403, "You must authenticate with an installation access token.")
        repos = [F.repo_json(r) for r in F.state["repos"].values() if r.get("seeded")]
        chunk, headers = paginate(repos)
        return j({"total_count": len(repos), "repository_selection": "all", "repositories": chunk},
                 headers=headers)

    # ------------------------------------------------------------ pulls
    def find_head_repo(rec: dict, head_owner: str, head_repo_name: str | None) -> dict | None:
        if head_owner.lower() == rec["owner"].lower() and not head_repo_name:
            return rec
        if head_repo_name:
            cand = F.find_repo(head_owner, head_repo_name)
            return cand
        cand = F.find_repo(head_owner, rec["name"])
        if cand is not None and (cand is rec or cand.get("fork_of") == rec["full_name"]):
            return cand
        for r in F.state["repos"].values():
            if r["owner"].lower() == head_owner.lower() and r.get("fork_of") == rec["full_name"]:
                return r
        return None

    @app.post("/repos/<owner>/<repo>/pulls")
    def create_pull(owner, repo):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        head_spec, base_ref = body.get("head") or "", body.get("base") or ""
        if not head_spec:
            raise validation_error(field="head", code="missing_field")
        if not base_ref:
            raise validation_error(field="base", code="missing_field")
        title = body.get("title")
        if not title:
            raise validation_error(field="title", code="missing_field")
        if ":" in head_spec:
            head_owner, head_ref = head_spec.split(":", 1)
        else:
            head_owner, head_ref = rec["owner"], head_spec
        head_repo_name = None
        if body.get("head_repo"):
            hr = str(body["head_repo"])
            head_owner, _, head_repo_name = hr.rpartition("/") if "/" in hr else (head_owner, "", hr)
        if not gitops.valid_branch(head_ref) or not gitops.valid_login(head_owner):
            raise validation_error(field="head", code="invalid")
        if not gitops.valid_branch(base_ref):
            raise validation_error(field="base", code="invalid")
        with F.lock:
            head_rec = find_head_repo(rec, head_owner, head_repo_name)
            if head_rec is None:
                raise validation_error(field="head", code="invalid")
            path = F.repo_path(rec)
            head_sha = gitops.ref_sha(F.repo_path(head_rec), f"refs/heads/{head_ref}")
            if head_sha is None:
                raise validation_error(field="head", code="invalid")
            base_sha = gitops.ref_sha(path, f"refs/heads/{base_ref}")
            if base_sha is None:
                raise validation_error(field="base", code="invalid")
            for other in rec["issues"].values():
                if (other.get("kind") == "pr" and other["state"] == "open" and other["head_repo"] ==
                        head_rec["full_name"] and other["head_ref"] == head_ref and other["base_ref"] == base_ref):
                    raise validation_error(f"A pull request already exists for {head_rec['owner']}:{head_ref}.")
            number = rec["next_number"]
            pr = {"kind": "pr", "number": number, "id": F.next_id("issue"), "pr_id": F.next_id("pull"),
                  "title": title, "body": body.get("body"), "user": login, "state": "open",
                  "head_repo": head_rec["full_name"], "head_ref": head_ref, "head_sha": head_sha,
                  "base_ref": base_ref, "base_sha": base_sha, "merged": False, "created_at": now_iso()}
            pr["updated_at"] = pr["created_at"]
            F._store_pr_head(rec, pr, head_rec, head_sha)
            if gitops.count_commits(path, base_sha, head_sha) == 0:
                gitops.delete_ref(path, f"refs/pull/{number}/head")
                raise validation_error(f"No commits between {base_ref} and {head_spec}")
            rec["next_number"] = number + 1
            rec["issues"][str(number)] = pr
            F.save()
            data = F.pr_json(rec, pr)
            F.emit(rec, "pull_request", {"action": "opened", "number": number, "pull_request": data}, login)
            return j(data, 201, {"Location": data["url"]})

    @app.get("/repos/<owner>/<repo>/pulls")
    def list_pulls(owner, repo):
        rec = repo_or_404(owner, repo)
        state = request.args.get("state", "open")
        prs = [i for i in rec["issues"].values() if i.get("kind") == "pr"]
        if state in ("open", "closed"):
            prs = [p for p in prs if p["state"] == state]
        if request.args.get("head"):
            h_owner, _, h_ref = request.args["head"].partition(":")
            if h_ref:
                prs = [p for p in prs if p["head_repo"].split("/")[0].lower() == h_owner.lower()
                       and p["head_ref"] == h_ref]
            else:
                prs = [p for p in prs if p["head_repo"].split("/")[0].lower() == h_owner.lower()]
        if request.args.get("base"):
            prs = [p for p in prs if p["base_ref"] == request.args["base"]]
        sort = request.args.get("sort", "created")
        key = "updated_at" if sort in ("updated", "long-running") else "created_at"
        desc = request.args.get("direction", "desc") == "desc"
        prs.sort(key=lambda p: (p[key], p["number"]), reverse=desc)
        chunk, headers = paginate(prs)
        return j([F.pr_json(rec, p) for p in chunk], headers=headers)

    @app.get("/repos/<owner>/<repo>/pulls/<int:number>")
    def get_pull(owner, repo, number):
        rec = repo_or_404(owner, repo)
        return j(F.pr_json(rec, get_pr(rec, number)))

    @app.get("/repos/<owner>/<repo>/pulls/<int:number>/commits")
    def pull_commits(owner, repo, number):
        rec = repo_or_404(owner, repo)
        pr = get_pr(rec, number)
        mi = F.pr_merge_info(rec, pr)
        shas = gitops.rev_list(F.repo_path(rec), pr["head_sha"], [mi["base_sha"]], limit=250)
        chunk, headers = paginate(shas)
        return j([F.commit_json(rec, s, with_files=False) for s in chunk], headers=headers)

    def edit_pull(rec: dict, pr: dict, body: dict, login: str) -> None:
        if login != pr["user"]:
            F.require(rec, login, "write")
        changes = {}
        for field in ("title", "body"):
            if field in body and body[field] != pr.get(field):
                if field == "title" and not body[field]:
                    raise validation_error(field="title", code="missing_field")
                changes[field] = {"from": pr.get(field)}
                pr[field] = body[field]
        if "base" in body and body["base"] != pr["base_ref"]:
            if not gitops.valid_branch(str(body["base"])) or gitops.ref_sha(
                    F.repo_path(rec), f"refs/heads/{body['base']}") is None:
                raise validation_error(field="base", code="invalid")
            changes["base"] = {"ref": {"from": pr["base_ref"]}, "sha": {"from": pr.get("base_sha")}}
            pr["base_ref"] = body["base"]
        if changes:
            pr["updated_at"] = now_iso()
            F.save()
            F.emit(rec, "pull_request", {"action": "edited", "number": pr["number"], "changes": changes,
                                         "pull_request": F.pr_json(rec, pr)}, login)
        state = body.get("state")
        if state == "closed" and pr["state"] == "open":
            F.close_pr(rec, pr, login)
            F.save()
        elif state == "open" and pr["state"] == "closed":
            if pr.get("merged"):
                raise validation_error("Cannot reopen a merged pull request")
            head_rec = F.state["repos"].get(pr["head_repo"])
            head_sha = head_rec and gitops.ref_sha(F.repo_path(head_rec), f"refs/heads/{pr['head_ref']}")
            if not head_sha:
                raise validation_error("state cannot be changed. The head branch was deleted.")
            F._store_pr_head(rec, pr, head_rec, head_sha)
            pr.update(state="open", closed_at=None, closed_by=None, head_sha=head_sha, updated_at=now_iso())
            F.save()
            F.emit(rec, "pull_request", {"action": "reopened", "number": pr["number"],
                                         "pull_request": F.pr_json(rec, pr)}, login)
        elif state not in (None, "open", "closed"):
            raise validation_error(field="state", code="invalid")

    @app.patch("/repos/<owner>/<repo>/pulls/<int:number>")
    def update_pull(owner, repo, number):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        with F.lock:
            pr = get_pr(rec, number)
            edit_pull(rec, pr, body, login)
            return j(F.pr_json(rec, pr))

    @app.get("/repos/<owner>/<repo>/pulls/<int:number>/merge")
    def is_merged(owner, repo, number):
        rec = repo_or_404(owner, repo)
        pr = get_pr(rec, number)
        if pr.get("merged"):
            return no_content()
        raise ApiError(404, "Not Found")

    @app.put("/repos/<owner>/<repo>/pulls/<int:number>/merge")
    def merge_pull(owner, repo, number):
        login = need_user()
        rec = repo_or_404(owner, repo)
        F.require(rec, login, "write")
        body = body_json()
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise validation_error(resource="PullRequest", field="merge_method", code="invalid")
        if method == "rebase":
            raise ApiError(405, "Rebase merges are not allowed on this repository.")
        path = F.repo_path(rec)
        with F.lock:
            pr = get_pr(rec, number)
            if pr["state"] != "open":
                raise ApiError(405, "Pull Request is not mergeable")
            if body.get("sha") and body["sha"] != pr["head_sha"]:
                raise ApiError(409, "Head branch was modified. Review and try the merge again.")
            ref = f"refs/heads/{pr['base_ref']}"
            base_sha = gitops.ref_sha(path, ref)
            if base_sha is None:
                raise ApiError(405, "Pull Request is not mergeable")
            tree = gitops.merge_tree(path, base_sha, pr["head_sha"])
            if tree is None:
                raise ApiError(405, "Pull Request is not mergeable")
            head_label = f"{pr['head_repo'].split('/')[0]}/{pr['head_ref']}"
            if method == "merge":
                title = body.get("commit_title") or f"Merge pull request #{number} from {head_label}"
                message = body.get("commit_message") if body.get("commit_message") is not None else pr["title"]
                parents = [base_sha, pr["head_sha"]]
            else:
                title = body.get("commit_title") or f"{pr['title']} (#{number})"
                if body.get("commit_message") is not None:
                    message = body["commit_message"]
                else:
                    shas = gitops.rev_list(path, pr["head_sha"], [base_sha], limit=250)
                    message = "\n\n".join("* " + gitops.commit_info(path, s)["message"] for s in shas)
                parents = [base_sha]
            full_message = title + ("\n\n" + message if message else "") + "\n"
            who = (F.user_name(login), F.user_email(login))
            new = gitops.commit_tree(path, tree, parents, full_message, who, who)
            try:
                gitops.update_ref(path, ref, new, base_sha)
            except gitops.GitError:
                raise ApiError(409, "Base branch was modified. Review and try the merge again.")
            ts = now_iso()
            pr.update(state="closed", merged=True, merged_at=ts, closed_at=ts, updated_at=ts, merged_by=login,
                      closed_by=login, merge_commit_sha=new, base_sha=base_sha)
            F.process_ref_updates(rec, [(base_sha, new, ref)], login)
            F.emit(rec, "pull_request", {"action": "closed", "number": number,
                                         "pull_request": F.pr_json(rec, pr)}, login)
            F.save()
            return j({"sha": new, "merged": True, "message": "Pull Request successfully merged"})

    # ------------------------------------------------------------ issues + comments
    @app.get("/repos/<owner>/<repo>/issues")
    def list_issues(owner, repo):
        rec = repo_or_404(owner, repo)
        state = request.args.get("state", "open")
        items = list(rec["issues"].values())
        if state in ("open", "closed"):
            items = [i for i in items if i["state"] == state]
        items.sort(key=lambda i: i["number"], reverse=request.args.get("direction", "desc") == "desc")
        chunk, headers = paginate(items)
        return j([F.issue_json(rec, i) for i in chunk], headers=headers)

    @app.post("/repos/<owner>/<repo>/issues")
    def create_issue(owner, repo):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        if not body.get("title"):
            raise validation_error(resource="Issue", field="title", code="missing_field")
        with F.lock:
            number = rec["next_number"]
            rec["next_number"] = number + 1
            ts = now_iso()
            issue = {"kind": "issue", "number": number, "id": F.next_id("issue"), "title": body["title"],
                     "body": body.get("body"), "user": login, "state": "open", "created_at": ts, "updated_at": ts}
            rec["issues"][str(number)] = issue
            F.save()
            data = F.issue_json(rec, issue)
            F.emit(rec, "issues", {"action": "opened", "issue": data}, login)
            return j(data, 201)

    @app.get("/repos/<owner>/<repo>/issues/<int:number>")
    def get_issue_route(owner, repo, number):
        rec = repo_or_404(owner, repo)
        return j(F.issue_json(rec, get_issue(rec, number)))

    @app.patch("/repos/<owner>/<repo>/issues/<int:number>")
    def update_issue(owner, repo, number):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        with F.lock:
            issue = get_issue(rec, number)
            if issue.get("kind") == "pr":
                edit_pull(rec, issue, body, login)
            else:
                if login != issue["user"]:
                    F.require(rec, login, "triage")
                changes = {}
                for field in ("title", "body"):
                    if field in body and body[field] != issue.get(field):
                        changes[field] = {"from": issue.get(field)}
                        issue[field] = body[field]
                state = body.get("state")
                action = None
                if state == "closed" and issue["state"] == "open":
                    issue.update(state="closed", closed_at=now_iso(), closed_by=login,
                                 state_reason=body.get("state_reason") or "completed")
                    action = "closed"
                elif state == "open" and issue["state"] == "closed":
                    issue.update(state="open", closed_at=None, closed_by=None, state_reason="reopened")
                    action = "reopened"
                issue["updated_at"] = now_iso()
                F.save()
                if changes:
                    F.emit(rec, "issues", {"action": "edited", "changes": changes,
                                           "issue": F.issue_json(rec, issue)}, login)
                if action:
                    F.emit(rec, "issues", {"action": action, "issue": F.issue_json(rec, issue)}, login)
            return j(F.issue_json(rec, issue))

    @app.post("/repos/<owner>/<repo>/issues/<int:number>/comments")
    def create_comment(owner, repo, number):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise validation_error(resource="IssueComment", field="body", code="missing_field")
        with F.lock:
            issue = get_issue(rec, number)
            ts = now_iso()
            c = {"id": F.next_id("comment"), "repo": rec["full_name"], "number": number, "user": login,
                 "body": text, "created_at": ts, "updated_at": ts}
            F.state["comments"][str(c["id"])] = c
            issue["updated_at"] = ts
            F.save()
            data = F.comment_json(rec, c)
            F.emit(rec, "issue_comment", {"action": "created", "issue": F.issue_json(rec, issue),
                                          "comment": data}, login)
            return j(data, 201, {"Location": data["url"]})

    @app.get("/repos/<owner>/<repo>/issues/<int:number>/comments")
    def list_comments(owner, repo, number):
        rec = repo_or_404(owner, repo)
        get_issue(rec, number)
        items = sorted((c for c in F.state["comments"].values()
                        if c["repo"] == rec["full_name"] and c["number"] == number), key=lambda c: c["id"])
        if request.args.get("since"):
            items = [c for c in items if c["updated_at"] >= request.args["since"]]
        chunk, headers = paginate(items)
        return j([F.comment_json(rec, c) for c in chunk], headers=headers)

    @app.get("/repos/<owner>/<repo>/issues/comments")
    def list_repo_comments(owner, repo):
        rec = repo_or_404(owner, repo)
        items = sorted((c for c in F.state["comments"].values() if c["repo"] == rec["full_name"]),
                       key=lambda c: c["id"])
        chunk, headers = paginate(items)
        return j([F.comment_json(rec, c) for c in chunk], headers=headers)

    @app.get("/repos/<owner>/<repo>/issues/comments/<int:cid>")
    def get_comment_route(owner, repo, cid):
        rec = repo_or_404(owner, repo)
        return j(F.comment_json(rec, get_comment(rec, cid)))

    @app.patch("/repos/<owner>/<repo>/issues/comments/<int:cid>")
    def edit_comment(owner, repo, cid):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise validation_error(resource="IssueComment", field="body", code="missing_field")
        with F.lock:
            c = get_comment(rec, cid)
            if c["user"] != login:
                raise ApiError(403, "Only the author of a comment can edit it")
            old = c["body"]
            c["body"] = text
            c["updated_at"] = now_iso()
            F.save()
            data = F.comment_json(rec, c)
            if old != text:
                issue = get_issue(rec, c["number"])
                F.emit(rec, "issue_comment", {"action": "edited", "changes": {"body": {"from": old}},
                                              "issue": F.issue_json(rec, issue), "comment": data}, login)
            return j(data)

    @app.delete("/repos/<owner>/<repo>/issues/comments/<int:cid>")
    def delete_comment(owner, repo, cid):
        login = need_user()
        rec = repo_or_404(owner, repo)
        with F.lock:
            c = get_comment(rec, cid)
            if c["user"] != login:
                F.require(rec, login, "write")
            data = F.comment_json(rec, c)
            del F.state["comments"][str(cid)]
            for rid in [k for k, r in F.state["reactions"].items() if r["comment_id"] == cid]:
                del F.state["reactions"][rid]
            F.save()
            issue = get_issue(rec, c["number"])
            F.emit(rec, "issue_comment", {"action": "deleted", "issue": F.issue_json(rec, issue),
                                          "comment": data}, login)
        return no_content()

    # ------------------------------------------------------------ reactions
    @app.post("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions")
    def create_reaction(owner, repo, cid):
        login = need_user()
        rec = repo_or_404(owner, repo)
        body = body_json()
        content = body.get("content")
        if content not in REACTIONS:
            raise validation_error(resource="Reaction", field="content", code="invalid")
        with F.lock:
            get_comment(rec, cid)
            for r in F.state["reactions"].values():
                if r["comment_id"] == cid and r["user"] == login and r["content"] == content:
                    return j(F.reaction_json(r), 200)
            r = {"id": F.next_id("reaction"), "comment_id": cid, "user": login, "content": content,
                 "created_at": now_iso()}
            F.state["reactions"][str(r["id"])] = r
            F.save()
            return j(F.reaction_json(r), 201)

    @app.get("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions")
    def list_reactions(owner, repo, cid):
        rec = repo_or_404(owner, repo)
        get_comment(rec, cid)
        items = sorted((r for r in F.state["reactions"].values() if r["comment_id"] == cid), key=lambda r: r["id"])
        if request.args.get("content"):
            items = [r for r in items if r["content"] == request.args["content"]]
        chunk, headers = paginate(items)
        return j([F.reaction_json(r) for r in chunk], headers=headers)

    @app.delete("/repos/<owner>/<repo>/issues/comments/<int:cid>/reactions/<int:rid>")
    def delete_reaction(owner, repo, cid, rid):
        login = need_user()
        rec = repo_or_404(owner, repo)
        with F.lock:
            get_comment(rec, cid)
            r = F.state["reactions"].get(str(rid))
            if r is None or r["comment_id"] != cid:
                raise ApiError(404, "Not Found")
            if r["user"] != login:
                raise ApiError(403, "Must have admin rights to Repository.")
            del F.state["reactions"][str(rid)]
            F.save()
        return no_content()

    # ------------------------------------------------------------ sandbox introspection
    def delivery_view(d: dict, with_payload: bool) -> dict:
        keys = ["id", "guid", "event", "action", "repository", "hook_id", "url", "status", "status_code",
                "response_body", "duration_ms", "delivered_at", "created_at", "redelivery", "error"]
        v = {k: d.get(k) for k in keys}
        if with_payload:
            v["request_headers"] = d.get("request_headers")
            v["response_headers"] = d.get("response_headers")
            v["payload"] = d.get("payload")
        return v

    @app.get("/sandbox/deliveries")
    def sandbox_deliveries():
        with_payload = request.args.get("payload") in ("1", "true", "yes")
        with F.lock:
            items = list(F.state["deliveries"])
        for key in ("event", "action", "guid", "repository", "status"):
            if request.args.get(key):
                items = [d for d in items if str(d.get(key)) == request.args[key]]
        return j({"pending": F.dispatcher.pending(), "deliveries": [delivery_view(d, with_payload) for d in items]})

    @app.get("/sandbox/deliveries/<guid>")
    def sandbox_delivery(guid):
        with F.lock:
            items = [delivery_view(d, True) for d in F.state["deliveries"] if d["guid"] == guid]
        if not items:
            raise ApiError(404, "Not Found")
        return j(items)

    @app.post("/sandbox/deliveries/<guid>/redeliver")
    def sandbox_redeliver(guid):
        record = F.redeliver(guid)
        return j(delivery_view(record, False), 202)

    @app.get("/sandbox/requests")
    def sandbox_requests():
        with F.stats_lock:
            return j(dict(F.request_stats))

    @app.post("/sandbox/requests/reset")
    def sandbox_requests_reset():
        F.reset_request_stats()
        return j({"reset": True})

    @app.get("/sandbox/repos")
    def sandbox_repos():
        return j([{"full_name": r["full_name"], "git_url": f"{base}/{r['full_name']}.git",
                   "path": str(F.repo_path(r)), "fork_of": r.get("fork_of")} for r in F.state["repos"].values()])

    @app.get("/sandbox/repos/<owner>/<repo>")
    def sandbox_repo(owner, repo):
        rec = repo_or_404(owner, repo)
        return j({"full_name": rec["full_name"], "git_url": f"{base}/{rec['full_name']}.git",
                  "path": str(F.repo_path(rec)), "default_branch": rec["default_branch"],
                  "fork_of": rec.get("fork_of")})

    @app.post("/sandbox/internal/post-receive")
    def sandbox_post_receive():
        if not secrets.compare_digest(request.headers.get("X-Sandbox-Hook-Token", ""), F.hook_token):
            raise ApiError(403, "Forbidden")
        body = body_json()
        rec = F.state["repos"].get(str(body.get("repo", "")))
        if rec is None:
            raise ApiError(404, "Not Found")
        updates = [(u.get("old", ""), u.get("new", ""), u.get("ref", "")) for u in body.get("updates") or []
                   if isinstance(u, dict)]
        F.process_ref_updates(rec, updates, body.get("pusher") or None)
        return j({"ok": True, "updates": len(updates)})

    @app.get("/sandbox/avatars/<login>")
    def sandbox_avatar(login):
        letter = (login[:1] or "?").upper()
        hue = sum(map(ord, login)) % 360
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" '
               f'fill="hsl({hue},50%,45%)"/><text x="20" y="27" font-size="20" text-anchor="middle" '
               f'fill="#fff" font-family="sans-serif">{pages.esc(letter)}</text></svg>')
        return Response(svg, mimetype="image/svg+xml")

    @app.get("/sandbox/docs")
    def sandbox_docs():
        return Response(pages.docs_page(), mimetype="text/html")

    # ------------------------------------------------------------ git smart HTTP
    def git_unauthorized(msg: str = "Authentication required") -> Response:
        return Response(msg + "\n", 401, {"WWW-Authenticate": 'Basic realm="sandbox forge"'},
                        mimetype="text/plain")

    def git_http(owner: str, repo_git: str, rest: str) -> Response:
        if not repo_git.endswith(".git"):
            return Response("Not Found\n", 404, mimetype="text/plain")
        rec = F.find_repo(owner, repo_git[:-4])
        if rec is None:
            return Response("Repository not found.\n", 404, mimetype="text/plain")
        service = request.args.get("service", "") if rest == "info/refs" else rest
        if service not in ("git-upload-pack", "git-receive-pack"):
            return Response("Only the smart HTTP protocol is supported\n", 403, mimetype="text/plain")
        login = None
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            login = token_user(auth.password or "") or token_user(auth.username or "")
            if login is None:
                return git_unauthorized("Invalid username or token.")
        if service == "git-receive-pack":
            if login is None:
                return git_unauthorized()
            if PERM_RANK[F.perm(rec, login)] < PERM_RANK["write"]:
                return Response(f"Permission to {rec['full_name']}.git denied to {login}.\n", 403,
                                mimetype="text/plain")
        body = request.get_data()
        env = {
            "GIT_PROJECT_ROOT": str(F.repos_root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{rec['full_name']}.git/{rest}", "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.query_string.decode("latin-1"),
            "CONTENT_TYPE": request.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": request.remote_addr or "127.0.0.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        if login:
            env["REMOTE_USER"] = login
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        if request.headers.get("Git-Protocol"):
            env["HTTP_GIT_PROTOCOL"] = request.headers["Git-Protocol"]
            env["GIT_PROTOCOL"] = request.headers["Git-Protocol"]
        proc = subprocess.run(["git", "http-backend"], input=body, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=gitops.git_env(env), timeout=600)
        raw = proc.stdout
        sep = raw.find(b"\r\n\r\n")
        sep_len = 4
        if sep < 0:
            sep, sep_len = raw.find(b"\n\n"), 2
        if sep < 0:
            return Response(proc.stderr or b"git http-backend failed\n", 500, mimetype="text/plain")
        status, headers = 200, {}
        for line in raw[:sep].decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                status = int(v.strip().split()[0])
            elif k:
                headers[k.strip()] = v.strip()
        return Response(raw[sep + sep_len:], status, headers)

    @app.route("/<owner>/<repo_git>/info/refs", methods=["GET"])
    def git_info_refs(owner, repo_git):
        return git_http(owner, repo_git, "info/refs")

    @app.route("/<owner>/<repo_git>/git-upload-pack", methods=["POST"])
    def git_upload_pack(owner, repo_git):
        return git_http(owner, repo_git, "git-upload-pack")

    @app.route("/<owner>/<repo_git>/git-receive-pack", methods=["POST"])
    def git_receive_pack(owner, repo_git):
        return git_http(owner, repo_git, "git-receive-pack")

    # ------------------------------------------------------------ HTML
    def html(text: str, status: int = 200) -> Response:
        return Response(text, status, mimetype="text/html")

    @app.get("/")
    def html_index():
        return html(pages.index_page(F))

    @app.get("/<owner>/<repo>")
    def html_repo(owner, repo):
        rec = F.find_repo(owner, repo)
        if rec is None:
            return html(pages.not_found(), 404)
        return html(pages.repo_page(F, rec))

    @app.get("/<owner>/<repo>/pull/<spec>")
    @app.get("/<owner>/<repo>/issues/<spec>")
    def html_issue(owner, repo, spec):
        rec = F.find_repo(owner, repo)
        number, _, ext = spec.partition(".")
        if rec is None or not number.isdigit() or str(int(number)) not in rec["issues"]:
            return html(pages.not_found(), 404)
        issue = rec["issues"][str(int(number))]
        if ext in ("diff", "patch") and issue.get("kind") == "pr":
            mi = F.pr_merge_info(rec, issue)
            text = gitops.diff_text(F.repo_path(rec), mi["base_sha"], issue["head_sha"])
            return Response(text, mimetype="text/plain")
        if ext:
            return html(pages.not_found(), 404)
        return html(pages.issue_page(F, rec, issue))

    @app.get("/<owner>/<repo>/raw/<sha>/<path:path>")
    def raw_file(owner, repo, sha, path):
        rec = F.find_repo(owner, repo)
        if rec is None or not gitops.valid_short_sha(sha) or ".." in path.split("/"):
            return Response("Not Found\n", 404, mimetype="text/plain")
        commit = gitops.resolve(F.repo_path(rec), sha)
        entries = gitops.ls_tree(F.repo_path(rec), commit, path) if commit else []
        if len(entries) != 1 or not entries[0].get("self") or entries[0]["type"] != "blob":
            return Response("Not Found\n", 404, mimetype="text/plain")
        return Response(gitops.cat_blob(F.repo_path(rec), entries[0]["sha"]), mimetype="text/plain")

    @app.get("/<owner>/<repo>/commit/<sha>")
    def html_commit(owner, repo, sha):
        rec = F.find_repo(owner, repo)
        if rec is None or not gitops.valid_short_sha(sha):
            return html(pages.not_found(), 404)
        full = gitops.resolve(F.repo_path(rec), sha)
        if full is None:
            return html(pages.not_found(), 404)
        return html(pages.commit_page(F, rec, full))

    return app
