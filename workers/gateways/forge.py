"""GitHub (or GitHub Enterprise, or the sandbox forge) through PyGithub, with safe retries.

PyGithub's default GithubRetry repeats POSTs on 5xx (11 identical comments seen here): only
idempotent methods are retried by the transport; writes are made idempotent by the caller
(comments are found again by a hidden marker, statuses are idempotent on GitHub).
Calls go through PyGithub's requester so each method costs exactly the requests it names; every
error is translated at this edge by `workers.errors` (rate limits, 403 or 429 → RateLimited with the
wait GitHub asks for; 5xx/network → Transient; 404 → NotFound; other statuses → Permanent). Nothing
sleeps here: a rate-limited task is retried by Celery after that wait.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any
from urllib.parse import quote

from github import Auth, Github

from core.config import GitHubSettings
from workers.errors import NotFound, Permanent
from workers.escaping import GITHUB_COMMENT_MAX, truncate
from workers.gateways import GitIdentity, Listing, Pull, PullCommit
from workers.gateways.github_http import (
    NEXT_LINK,
    SAFE_RETRY,
    exchange,
    github_client,
    header,
    listing_if_changed,
    next_cursor,
)

MARKER = "<!-- mlops-bot:{kind} key={key} -->"
MARKED = re.compile(r"<!-- mlops-bot:(\S+) key=(.+?) -->")  # a comment's first line, as `upsert_comment` writes it
CHECK_RUN_SUMMARY_MAX = 65_535  # check runs: "output.summary … The maximum length is 65535 characters"
# The payload entry naming what a deployment delivers (a model version, a release step): one deployment per key.
DEPLOYMENT_KEY = "key"
COMMIT = re.compile(r"[0-9a-f]{40}")
PULL_COMMITS_MAX = 250  # pulls/list-commits: "Lists a maximum of 250 commits for a pull request"
LISTING_PAGES = 100  # a repository's branches or open pull requests: 10,000 at most, or no answer


def marker(kind: str, key: str) -> str:
    return MARKER.format(kind=kind, key=key)


def path_segment(name: str) -> str:
    """A branch name as it goes into a URL path: percent-encoded (`#`, `%`, `+`, unicode…), `/` kept."""
    return quote(name, safe="/")


def role_of(answer: dict) -> str:
    """The role to rank and show: `permission` is the base role GitHub ranks by; `role_name` may be a
    custom role (`ml-engineer`), shown with its base role as `ml-engineer (write)`."""
    base, name = answer.get("permission") or "none", answer.get("role_name") or ""
    if not name:
        return base
    return name if name in ("admin", "maintain", "write", "triage", "read", base) else f"{name} ({base})"


def identity_of(user: dict | None, git: dict | None) -> GitIdentity:
    """A commit's `author` (or `committer`): the account GitHub linked (null, or `{}`, when none) and git's own."""
    user, git = user or {}, git or {}
    return GitIdentity(user.get("login") or "", user.get("type") or "", git.get("name") or "", git.get("email") or "")


def pull_commit_of(d: dict) -> PullCommit:
    commit = d.get("commit") or {}
    return PullCommit(
        d["sha"],
        identity_of(d.get("author"), commit.get("author")),
        identity_of(d.get("committer"), commit.get("committer")),
        commit.get("message") or "",
    )


def pull_of(d: dict) -> Pull:
    """A pull request answer as a `Pull`; an unknown head repository (a deleted fork) is a fork."""
    head, base = d["head"], d["base"]
    head_repo = (head.get("repo") or {}).get("full_name", "")
    return Pull(
        d["number"],
        d["state"],
        d["user"]["login"],
        head["sha"],
        head["ref"],
        head_repo,
        (head.get("repo") or {}).get("clone_url", ""),
        not head_repo or head_repo.lower() != base["repo"]["full_name"].lower(),
        d.get("html_url", ""),
    )


class Forge:
    def __init__(self, cfg: GitHubSettings, client: Github | None = None, login: str = ""):
        self.cfg = cfg
        self.gh = client or github_client(cfg)
        self.uses_app = bool(cfg.app_id and cfg.installation_id)
        # the bot's own login ([bot] login; an App's is `<slug>[bot]`): only its comments are found by marker
        self.logins = {login.lower(), f"{login.lower()}[bot]"} if login else set()
        self._as_app: Github | None = None  # the App itself (its JWT), for the App's own endpoints

    def _call(self, verb: str, url: str, **kwargs) -> Any:
        return self._exchange(self.gh, verb, url, **kwargs)[1]

    _exchange = staticmethod(exchange)  # transport and error translation: workers/gateways/github_http.py

    # --- reads ---------------------------------------------------------------------------------
    def pull(self, repo: str, number: int) -> Pull:
        return pull_of(self._call("GET", f"/repos/{repo}/pulls/{number}"))

    def open_pulls_with_head(self, repo: str, sha: str) -> list[Pull]:
        """The open pull requests of `repo` whose head is commit `sha`, a fork's included: asked by commit,
        then (the commit of a fork may be unknown to that listing) among the open pull requests."""
        by_commit = self._call("GET", f"/repos/{repo}/commits/{sha}/pulls", parameters={"per_page": 100})
        found = [p for p in map(pull_of, by_commit) if p.state == "open" and p.head_sha == sha]
        for page in range(1, 4) if not found else ():
            batch = self._call(
                "GET", f"/repos/{repo}/pulls", parameters={"state": "open", "per_page": 100, "page": page}
            )
            found += [p for p in map(pull_of, batch) if p.head_sha == sha]
            if len(batch) < 100:
                break
        return found

    def pull_commits(self, repo: str, number: int) -> list[PullCommit]:
        """The pull request's commits as GitHub lists them (250 at most), every page: one request a page, following the
        Link header's `rel="next"` as PyGithub's `pull.get_commits()` does — read here as plain JSON, since PyGithub's
        `Commit` objects complete themselves with a request each."""
        pages = self._every_page(f"/repos/{repo}/pulls/{int(number)}/commits?per_page=100")
        return [pull_commit_of(d) for d in pages][:PULL_COMMITS_MAX]

    def file_at(self, repo: str, path: str, ref: str) -> str | None:
        """The text of file `path` at commit `ref`, or None when that commit has no such file (GitHub's 404).
        The contents API returns a file up to 1 MB base64-encoded in `content`."""
        if not COMMIT.fullmatch(ref):  # it goes into the query: only a commit SHA may
            raise Permanent(f"not a commit SHA: {ref[:60]!r}")
        try:
            d = self._call("GET", f"/repos/{repo}/contents/{quote(path)}", parameters={"ref": ref})
        except NotFound:
            return None
        if not isinstance(d, dict) or d.get("type") != "file":
            raise Permanent(f"{path} at {ref[:12]} in {repo} is not a file")
        return base64.b64decode(d.get("content") or "").decode("utf-8", errors="replace")

    def commit_parents(self, repo: str, sha: str) -> list[str]:
        """The parents of commit `sha`, first parent first (repos/get-commit's `parents`)."""
        if not COMMIT.fullmatch(sha):
            raise Permanent(f"not a commit SHA: {sha[:60]!r}")
        return [p["sha"] for p in self._call("GET", f"/repos/{repo}/commits/{sha}").get("parents", [])]

    def permission(self, repo: str, user: str) -> str:
        """admin | maintain | write | triage | read | none, or `custom-role (base role)`; an unknown user
        (404) has none; any other error (a rate limit, a 403 for the bot itself) is raised, never "none"."""
        try:
            d = self._call("GET", f"/repos/{repo}/collaborators/{user}/permission")
        except NotFound:
            return "none"
        return role_of(d)

    def branch_names(self, repo: str) -> set[str]:
        """Every branch of `repo` (repos/list-branches, every page): the janitor's one listing of a repository."""
        return {d["name"] for d in self._every_page(f"/repos/{repo}/branches?per_page=100")}

    def open_pull_numbers(self, repo: str) -> set[int]:
        """The numbers of `repo`'s open pull requests (pulls/list, every page), for a fork's `pull/<n>` jobs."""
        return {d["number"] for d in self._every_page(f"/repos/{repo}/pulls?state=open&per_page=100")}

    def _every_page(self, url: str) -> list[dict]:
        """Every page of a listing (the Link header's `rel="next"`), one request each, up to LISTING_PAGES; an error
        on any page is raised and a longer listing is refused (Permanent): a part of a listing is no answer."""
        out: list[dict] = []
        for _ in range(LISTING_PAGES):
            headers, page = self._exchange(self.gh, "GET", url)
            out.extend(page)
            found = NEXT_LINK.search(next((v for k, v in headers.items() if k.lower() == "link"), ""))
            if not (found and page):
                return out
            url = found.group(1)
        raise Permanent(f"GitHub: {url.split('?')[0]} lists more than {LISTING_PAGES * 100} entries")

    def in_team(self, org: str, team_slug: str, login: str) -> bool:
        """True when `login` is an active member of team `org/team_slug`. GitHub answers 404 alike for no membership,
        no such team and a team the bot cannot see (its user outside the org, a token without `read:org`, an App
        without Members: read): all False. Any other error (a rate limit, 401, 5xx) is raised, never "not a member"."""
        if any(not name or "/" in name or name in (".", "..") for name in (org, team_slug, login)):
            # a `/` or a dot segment would ask another path; GitHub allows none in these names
            raise Permanent(f"Not a GitHub team and login: @{org}/{team_slug}, {login!r}")
        path = f"/orgs/{path_segment(org)}/teams/{path_segment(team_slug)}/memberships/{path_segment(login)}"
        try:
            d = self._call("GET", path)
        except NotFound:
            return False
        return d.get("state") == "active"  # `pending`: invited, not a member yet

    def comments(self, repo: str, pr: int) -> list[dict]:
        out: list[dict] = []
        page = 1
        while True:
            batch = self._call("GET", f"/repos/{repo}/issues/{pr}/comments", parameters={"per_page": 100, "page": page})
            out.extend(batch)
            if len(batch) < 100:
                return out
            page += 1

    def comments_since(self, repo: str, since: str, page: int = 1, etag: str = "") -> Listing:
        """One page (100) of the repository's issue and PR comments updated at or after `since` (ISO 8601), least
        recently updated first, and its ETag: one request. With the `etag` this same page answered before, a 304
        (`changed` False: nothing was added, edited or deleted since) costs no rate limit."""
        parameters = {"since": since, "sort": "updated", "direction": "asc", "per_page": 100, "page": page}
        return listing_if_changed(self.gh, f"/repos/{repo}/issues/comments", parameters, etag)

    def marked_comments(self, repo: str, pr: int) -> dict[str, int]:
        """The bot's own comments on the PR by their marker's `kind:key` (a marker pasted into someone else's comment
        is not one): one request a page of 100."""
        found: dict[str, int] = {}
        for c in self.comments(repo, pr):
            author = str(((c.get("user") or {}).get("login")) or "").lower()
            mark = MARKED.match(c.get("body") or "")
            if mark and (not self.logins or author in self.logins):
                found.setdefault(f"{mark[1]}:{mark[2]}", c["id"])
        return found

    # --- writes (each idempotent) --------------------------------------------------------------
    # Every comment body leaves through these two: cut to GitHub's limit (beyond it GitHub answers 422), the marker
    # at the top kept, with a visible "… (truncated)".
    def create_comment(self, repo: str, pr: int, body: str) -> int:
        body = truncate(body, GITHUB_COMMENT_MAX)
        return self._call("POST", f"/repos/{repo}/issues/{pr}/comments", input={"body": body})["id"]

    def edit_comment(self, repo: str, comment_id: int, body: str) -> None:
        body = truncate(body, GITHUB_COMMENT_MAX)
        self._call("PATCH", f"/repos/{repo}/issues/comments/{comment_id}", input={"body": body})

    def upsert_comment(
        self, repo: str, pr: int, kind: str, key: str, body: str, known_id: int | None = None, absent: bool = False
    ) -> int:
        """One comment per (kind, key), found by its hidden marker and edited in place (`absent`: the caller knows
        there is no other, e.g. from `marked_comments`: posted without a search)."""
        text = f"{marker(kind, key)}\n{body}"
        if known_id:
            try:
                self.edit_comment(repo, known_id, text)
                return known_id
            except NotFound:
                pass  # deleted by someone: find or create it again (a 403 is raised: no duplicate)
        found = None if absent else self.marked_comments(repo, pr).get(f"{kind}:{key}")
        if found:
            self.edit_comment(repo, found, text)
            return found
        return self.create_comment(repo, pr, text)

    def set_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str = "",
        check_run_id: int | None = None,
    ) -> int | None:  # fmt: skip
        """A commit status; as a GitHub App, a check run of the same name (statuses are for tokens), whose id it
        returns: `check_run_id`, one it returned before, is updated without a search."""
        if not COMMIT.fullmatch(sha):  # it goes into the URL path: only a commit SHA may
            raise Permanent(f"not a commit SHA: {sha[:60]!r}")
        if self.uses_app:
            return self._set_check_run(repo, sha, context, state, description, target_url, check_run_id)
        body = {"state": state, "context": context, "description": description[:140]}
        if target_url:
            body["target_url"] = target_url
        self._call("POST", f"/repos/{repo}/statuses/{sha}", input=body)
        return None

    def _set_check_run(
        self, repo: str, sha: str, name: str, state: str, summary: str, url: str, cid: int | None
    ) -> int:
        """A run that starts (`pending`) gets a check run of its own: "For two check runs with the same name, only the
        most recent check run is displayed in the UI" (GitHub, 2020-09-14, new limits affecting the Checks API)."""
        output = {"title": summary[:140], "summary": truncate(summary, CHECK_RUN_SUMMARY_MAX)}
        body: dict = {"name": name, "head_sha": sha, "output": output, **({"details_url": url} if url else {})}
        if state == "pending":
            body["status"] = "in_progress"
        else:
            body.update(
                status="completed", conclusion={"success": "success", "failure": "failure"}.get(state, "neutral")
            )
        if not cid and state != "pending":  # the latest of that name on the commit (the listing's default filter)
            found = self._call("GET", f"/repos/{repo}/commits/{sha}/check-runs", parameters={"check_name": name})
            cid = next((r["id"] for r in found.get("check_runs", [])), None)
        if cid:  # still there: GitHub's REST API deletes no check run
            return int(self._call("PATCH", f"/repos/{repo}/check-runs/{cid}", input=body)["id"])
        return int(self._call("POST", f"/repos/{repo}/check-runs", input=body)["id"])

    # --- deployments: the repository's Environments page shows what runs where ------------------------------
    def create_deployment(self, repo: str, sha: str, environment: str, description: str, payload: dict) -> int:
        """The deployment of commit `sha` to `environment` for `payload["key"]`: found first, so a retried task
        makes no second one, else created. No merge (`auto_merge` defaults to true on GitHub) and no status check
        (`required_contexts` defaults to every context): the bot deploys the commit it validated, as it is."""
        key = payload.get(DEPLOYMENT_KEY)
        found = self._call(
            "GET",
            f"/repos/{repo}/deployments",
            parameters={"sha": sha, "environment": environment, "per_page": 100},
        )
        for d in found:
            if isinstance(d.get("payload"), dict) and d["payload"].get(DEPLOYMENT_KEY) == key:
                return int(d["id"])
        body = {
            "ref": sha,
            "environment": environment,
            "description": description[:140],
            "payload": payload,
            "auto_merge": False,
            "required_contexts": [],
            "production_environment": environment.partition("/")[0] == "prod",  # `prod/<model>` too
        }
        return int(self._call("POST", f"/repos/{repo}/deployments", input=body)["id"])

    def set_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        description: str,
        log_url: str = "",
        environment_url: str = "",
    ) -> None:
        """A deployment status (error failure inactive in_progress queued pending success); a success marks the
        environment's earlier successful deployments inactive (`auto_inactive`) — but GitHub leaves production
        deployments (`prod`) alone: mark the one replaced `inactive` yourself. A repeat adds the same state again."""
        body: dict = {"state": state, "description": description[:140]}
        if log_url:
            body["log_url"] = log_url
        if environment_url:
            body["environment_url"] = environment_url
        if state == "success":
            body["auto_inactive"] = True
        self._call("POST", f"/repos/{repo}/deployments/{deployment_id}/statuses", input=body)

    # --- the App webhook's deliveries: GitHub's "You must use a JWT to access this endpoint" ------------------
    def app_deliveries(self, cursor: str = "", per_page: int = 100) -> tuple[list[dict], str]:
        """One page of the App webhook's deliveries, newest first, and the cursor of the next page ("" on the last)."""
        parameters: dict[str, Any] = {"per_page": per_page, **({"cursor": cursor} if cursor else {})}
        headers, page = self._exchange(self._app(), "GET", "/app/hook/deliveries", parameters=parameters)
        return page, next_cursor(header(headers, "link"))

    def app_events(self) -> list[str]:
        """The webhook events the App subscribes to (`GET /app` with the App's JWT: `events`)."""
        return [str(e) for e in self._exchange(self._app(), "GET", "/app")[1].get("events") or []]

    def redeliver(self, delivery_id: int) -> None:
        """Ask GitHub to deliver that delivery again (a new attempt, same guid): 202, the attempt comes later."""
        self._exchange(self._app(), "POST", f"/app/hook/deliveries/{int(delivery_id)}/attempts")

    def _app(self) -> Github:
        if self._as_app is None:
            if not (self.cfg.app_id and self.cfg.installation_id):
                raise Permanent("GitHub: the App's webhook deliveries need App auth ([github] app_id, installation_id)")
            key = os.environ.get(self.cfg.app_private_key_env)
            if not key:
                raise Permanent(f"GitHub App: {self.cfg.app_private_key_env} is not set")
            self._as_app = Github(
                base_url=self.cfg.base_url,
                auth=Auth.AppAuth(self.cfg.app_id, key),
                retry=SAFE_RETRY,
                timeout=15,
                seconds_between_requests=self.cfg.seconds_between_requests,
                seconds_between_writes=self.cfg.seconds_between_writes,
            )
        return self._as_app
