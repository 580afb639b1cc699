"""GitHub JSON for issues, pull requests, comments, reactions, statuses, Apps and check runs."""

from __future__ import annotations

from . import gitops
from .gitops import ZERO
from .seed import ALL_EVENTS
from .vocabulary import REACTIONS, node_id


def subscribed_events(app: dict) -> list[str]:
    """The events an App subscribes to: its webhook's, none without one. GitHub, "Modifying a GitHub App
    registration", § Changing the webhook event subscriptions of a GitHub App: "Activate the GitHub App webhook. […]
    Under "Subscribe to Events," select the webhook events you would like your GitHub App to receive." """
    hook = app.get("webhook")
    if hook is None:
        return []
    return list(ALL_EVENTS) if "*" in hook.events else sorted(hook.events)


class IssueJson:
    """Part of Forge (mixed in): needs its state, lock and lookups."""

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
            "events": subscribed_events(app),
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

    def check_suite_json(self, rec: dict, cr: dict, prs: list, app: dict | None) -> dict:
        # webhooks-schemas check_run$*: check_suite requires these; head_branch is null when no branch has the commit
        branches = [r[11:] for r, v in gitops.list_refs(self.repo_path(rec)).items() if v == cr["head_sha"]]
        suite_id = cr["check_suite_id"]
        return {
            "id": suite_id,
            "node_id": node_id("CheckSuite", suite_id),
            "head_branch": next((b for b in branches if b), None),
            "head_sha": cr["head_sha"],
            "status": cr["status"],
            "conclusion": cr.get("conclusion"),
            "url": f"{self.base}/repos/{rec['full_name']}/check-suites/{suite_id}",
            "before": None,
            "after": cr["head_sha"],
            "pull_requests": prs,
            "app": self.app_json(app) if app else None,
            "created_at": cr.get("started_at"),
            "updated_at": cr.get("completed_at") or cr.get("started_at"),
        }

    def check_run_json(self, rec: dict, cr: dict) -> dict:
        api = f"{self.base}/repos/{rec['full_name']}"
        app = self.apps.get(cr["app_id"])
        out = cr.get("output") or {}
        prs = []
        # "Pushes to a branch in a forked repository are not detected and return an empty `pull_requests` array and
        # a `null` value for `head_branch`" (the Checks API in GitHub's OpenAPI description)
        for issue in rec["issues"].values():
            if (
                issue.get("kind") == "pr"
                and issue["state"] == "open"
                and issue["head_sha"] == cr["head_sha"]
                and issue["head_repo"] == rec["full_name"]
            ):
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
            "check_suite": self.check_suite_json(rec, cr, prs, app),
            "app": self.app_json(app) if app else None,
            "pull_requests": prs,
        }
