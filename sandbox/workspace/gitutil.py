"""The git steps of Repos checkouts and run checkouts, through the shared git runner."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..common.git import GitError, run_git


def git(args: list[str], cwd=None, timeout: float = 300) -> str:
    return run_git(args, cwd=cwd, timeout=timeout).stdout.decode("utf-8", "replace").strip()


def local_path(url: str) -> str | None:
    """The filesystem path for a local-path or file:// git URL, else None."""
    if url.startswith("file://"):
        p = unquote(urlparse(url).path)
        return p if os.path.exists(p) else None
    if "://" not in url and os.path.exists(url):
        return os.path.abspath(url)
    return None


def clone(url: str, dest: Path, *, shared: bool = False, no_checkout: bool = False) -> None:
    src = local_path(url) or url
    args = ["clone", "--quiet"]
    if shared and local_path(url):
        args.append("--shared")
    if no_checkout:
        args.append("--no-checkout")
    dest.parent.mkdir(parents=True, exist_ok=True)
    git([*args, "--", src, str(dest)])


def head_commit(repo: Path) -> str:
    return git(["rev-parse", "HEAD"], cwd=repo)


def current_branch(repo: Path) -> str | None:
    b = git(["rev-parse", "--abbrev-ref", "HEAD"], cwd=repo)
    return None if b == "HEAD" else b


def fetch(repo: Path) -> None:
    git(["fetch", "--quiet", "--prune", "--tags", "--force", "origin"], cwd=repo)


def checkout_branch(repo: Path, branch: str) -> None:
    try:
        git(["rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}^{{commit}}"], cwd=repo)
    except GitError:
        raise GitError(f"branch {branch!r} does not exist in the remote repository") from None
    git(["checkout", "--quiet", "-f", "-B", branch, f"refs/remotes/origin/{branch}"], cwd=repo)


def checkout_tag(repo: Path, tag: str) -> None:
    try:
        git(["rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"], cwd=repo)
    except GitError:
        raise GitError(f"tag {tag!r} does not exist in the remote repository") from None
    git(["checkout", "--quiet", "-f", "--detach", f"refs/tags/{tag}"], cwd=repo)


def checkout_commit(repo: Path, commit: str) -> None:
    try:
        git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"], cwd=repo)
    except GitError:
        try:
            git(["fetch", "--quiet", "origin", commit], cwd=repo)
        except GitError:
            raise GitError(f"commit {commit!r} does not exist in the remote repository") from None
    git(["checkout", "--quiet", "-f", "--detach", commit], cwd=repo)


def checkout_default(repo: Path) -> None:
    git(["reset", "--quiet", "--hard", "HEAD"], cwd=repo)
