"""GitHub (or GitHub Enterprise, or the sandbox forge) through PyGithub, with safe retries.

PyGithub's default GithubRetry repeats POSTs on 5xx (11 identical comments seen here): only
idempotent methods are retried by the transport; writes are made idempotent by the caller.
"""
from __future__ import annotations

import os

from github import Auth, Github, GithubException, UnknownObjectException
from urllib3.util.retry import Retry

from bot.config import GitHubSettings
from workers.errors import Permanent

SAFE_RETRY = Retry(total=3, backoff_factor=0.5, status_forcelist=(502, 503, 504),
                   allowed_methods=frozenset({"GET", "HEAD"}), raise_on_status=False)


def github_client(cfg: GitHubSettings) -> Github:
    if cfg.app_id and cfg.installation_id:
        key = os.environ.get(cfg.app_private_key_env)
        if not key:
            raise Permanent(f"GitHub App: {cfg.app_private_key_env} is not set")
        auth = Auth.AppAuth(cfg.app_id, key).get_installation_auth(cfg.installation_id)
    else:
        token = os.environ.get(cfg.token_env)
        if not token:
            raise Permanent(f"GitHub: {cfg.token_env} is not set")
        auth = Auth.Token(token)
    return Github(base_url=cfg.base_url, auth=auth, retry=SAFE_RETRY, timeout=15,
                  seconds_between_requests=cfg.seconds_between_requests,
                  seconds_between_writes=cfg.seconds_between_writes)


class Forge:
    def __init__(self, cfg: GitHubSettings, client: Github | None = None):
        self.cfg = cfg
        self.gh = client or github_client(cfg)

    def branch_exists(self, repo: str, branch: str) -> bool:
        try:
            self.gh.get_repo(repo, lazy=True).get_branch(branch)
            return True
        except UnknownObjectException:
            return False
        except GithubException as exc:
            if exc.status == 404:
                return False
            raise
