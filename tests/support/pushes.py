"""A person's `git push` to the sandbox forge over HTTP: one new commit on a branch, which the forge answers with
its signed push delivery."""

from __future__ import annotations

from pathlib import Path

from devstack.mlrepo import git


def push_url(forge_url: str, repo: str, login: str, token: str) -> str:
    """The clone URL of `repo` with `login`'s credentials in it, as a person configures a remote."""
    return forge_url.replace("http://", f"http://{login}:{token}@") + f"/{repo}.git"


def push_new_commit(url: str, checkout: Path, branch: str, login: str, base: str = "") -> str:
    """Clone `url` (its `base` branch, else the default one) into `checkout`, commit NOTES.md ("<branch> by
    <login>") on `branch` and push it; the commit's sha."""
    git(checkout.parent, "clone", "-q", *(["-b", base] if base else []), url, str(checkout))
    if branch != base:
        git(checkout, "checkout", "-q", "-b", branch)
    (checkout / "NOTES.md").write_text(f"{branch} by {login}\n")
    git(checkout, "add", "-A")
    git(checkout, "commit", "-qm", f"work on {branch}")
    git(checkout, "push", "-q", "origin", branch)
    return git(checkout, "rev-parse", "HEAD")
