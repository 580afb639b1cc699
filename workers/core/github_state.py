"""What the workers remember of what the bot wrote on GitHub: its comments on each pull request and its check runs,
by id, so that an edit needs no search and a new comment no listing (workers/core/sticky.py). A part of `State`,
kept apart to keep each file small. Keys: core/keys.py."""

from __future__ import annotations

import redis

from core import keys

LISTED = "listed"  # the ledger's field saying GitHub's listing was read into it (no `kind:key` is spelt so)


class GitHubMemory:
    r: redis.Redis

    def comment_ref(self, repo: str, pr: int, kind: str, key: str) -> tuple[int | None, bool]:
        """(the id of the bot's `kind`/`key` comment on the PR — 0 when it was posted and the answer not read — or None;
        whether every comment the bot has there is in this ledger, so that None means there is none)."""
        raw, listed = self.r.hmget(keys.pr_comments(repo, pr), [f"{kind}:{key}", LISTED])
        return (int(raw) if raw is not None else None), listed is not None

    def remember_comment(self, repo: str, pr: int, kind: str, key: str, comment_id: int) -> None:
        self._note_comments(repo, pr, {f"{kind}:{key}": comment_id})

    def remember_listing(self, repo: str, pr: int, found: dict[str, int]) -> None:
        """GitHub's listing of the PR's comments, read: the bot's comments there by `kind:key` (`marked_comments`)."""
        self._note_comments(repo, pr, {**found, LISTED: 1})

    def _note_comments(self, repo: str, pr: int, fields: dict[str, int]) -> None:
        key = keys.pr_comments(repo, pr)
        pipe = self.r.pipeline()  # one transaction: the ledger and its expiry
        pipe.hset(key, mapping={name: value for name, value in fields.items()})  # typed as redis-py asks
        pipe.expire(key, keys.PR_TTL)
        pipe.execute()

    def check_run_id(self, repo: str, sha: str, name: str) -> int | None:
        raw = self.r.get(keys.check_run(repo, sha, name))
        return int(raw) if raw else None

    def remember_check_run(self, repo: str, sha: str, name: str, check_run_id: int) -> None:
        self.r.set(keys.check_run(repo, sha, name), check_run_id, ex=keys.PR_TTL)
