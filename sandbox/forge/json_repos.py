"""GitHub JSON for users, orgs, repositories, installations, commits, branches and refs."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

from . import gitops
from .vocabulary import PERM_RANK, node_id


def unsigned() -> dict:
    """The `verification` of a commit: the sandbox signs nothing."""
    return {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None}


class RepoJson:
    """Part of Forge (mixed in): needs its state, lock and lookups."""

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
                "verification": unsigned(),
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
            d["files"] = [self.file_json(rec, sha, f) for f in files]
        return d

    def file_json(self, rec: dict, sha: str, f: dict) -> dict:
        """A file a commit (or a pull request's head `sha`) changed."""
        api, html = f"{self.base}/repos/{rec['full_name']}", f"{self.base}/{rec['full_name']}"
        return {
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
            "verification": unsigned(),
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
