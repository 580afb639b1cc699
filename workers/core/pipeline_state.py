"""What the workers remember about repositories' own pipeline files (workers/core/pipelines.py): a part of
`State`, kept apart to keep each file small. Keys: core/keys.py."""

from __future__ import annotations

import json
from typing import Any

import redis

from core import keys


def _text(raw: Any) -> str | None:
    """A Redis answer as text (None stays None); `State` reads with it too."""
    return raw.decode() if isinstance(raw, bytes) else raw


class PipelineMemory:
    r: redis.Redis

    def pipeline_text(self, repo: str, path: str, sha: str) -> str | None:
        """The file as it was at `sha` ("" when the commit has none), or None when not kept."""
        return _text(self.r.get(keys.pipeline_file(repo, path, sha)))

    def keep_pipeline_text(self, repo: str, path: str, sha: str, text: str) -> None:
        self.r.set(keys.pipeline_file(repo, path, sha), text, ex=keys.PIPELINE_TTL)

    def release_pipeline_commit(self, repo: str, merge_sha: str) -> str | None:
        """The commit whose pipeline file decides the release of `merge_sha` (workers/core/pipelines.py)."""
        return _text(self.r.hget(keys.RELEASE_PIPELINE_COMMITS, f"{repo}@{merge_sha}"))

    def set_release_pipeline_commit(self, repo: str, merge_sha: str, decided_by: str) -> None:
        self.r.hsetnx(keys.RELEASE_PIPELINE_COMMITS, f"{repo}@{merge_sha}", decided_by)

    def note_released_model(self, model: str, repo: str, sha: str, registries: list[str]) -> None:
        """`model` of `repo` is released from the pipeline file at merge commit `sha` (the newest wins)."""
        self.r.hset(keys.RELEASED_MODELS, model, json.dumps({"repo": repo, "sha": sha, "registries": registries}))

    def released_models(self) -> dict[str, dict]:
        """Every model a repository's own pipeline released: name -> {"repo", "sha", "registries"}."""
        return {_text(k) or "": json.loads(v) for k, v in self.r.hgetall(keys.RELEASED_MODELS).items()}
