"""What the bot remembers in Redis: job ids (a cache), locks, and the runs it started.

Redis is a cache and a coordinator here, never the only copy of a fact the bot cannot re-derive:
a lost job id is found again by name, a lost run by its idempotency token.
"""
from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import redis

from workers.errors import Transient

P = "mlops-bot:"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class State:
    def __init__(self, client: redis.Redis):
        self.r = client
        self._release = client.register_script(_RELEASE)

    # --- locks ---------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, ttl: float = 15.0, wait: float = 10.0) -> Iterator[None]:
        """A short mutual-exclusion lock that expires by itself if its holder dies (SIGKILL)."""
        key, token = f"{P}lock:{name}", uuid.uuid4().hex
        deadline = time.monotonic() + wait
        while not self.r.set(key, token, nx=True, px=int(ttl * 1000)):
            if time.monotonic() > deadline:
                raise Transient(f"lock {name} is held by another worker")
            time.sleep(0.05)
        try:
            yield
        finally:
            self._release(keys=[key], args=[token])

    # --- job id cache --------------------------------------------------------------------------
    def cached_job(self, environment: str, name: str) -> dict | None:
        raw = self.r.get(f"{P}job:{environment}:{name}")
        return json.loads(raw) if raw else None

    def cache_job(self, environment: str, name: str, job_id: int, fingerprint: str) -> None:
        pipe = self.r.pipeline()
        pipe.set(f"{P}job:{environment}:{name}",
                 json.dumps({"job_id": job_id, "fingerprint": fingerprint, "updated_at": time.time()}), ex=7 * 24 * 3600)
        pipe.sadd(f"{P}jobs", f"{environment}:{name}")  # the dashboard's index of per-branch jobs
        pipe.execute()

    def forget_job(self, environment: str, name: str) -> None:
        pipe = self.r.pipeline()
        pipe.delete(f"{P}job:{environment}:{name}")
        pipe.srem(f"{P}jobs", f"{environment}:{name}")
        pipe.execute()

    # --- runs ----------------------------------------------------------------------------------
    def save_run(self, record: dict) -> None:
        """Store a run record (context + latest state) and index it by branch and PR."""
        key = f"{P}run:{record['environment']}:{record['run_id']}"
        pipe = self.r.pipeline()
        pipe.set(key, json.dumps(record), ex=30 * 24 * 3600)
        pipe.zadd(f"{P}runs:recent", {key: record.get("started_at", time.time())})
        pipe.zremrangebyrank(f"{P}runs:recent", 0, -501)
        if record.get("pr"):
            pipe.zadd(f"{P}pr-runs:{record['repo']}#{record['pr']}", {key: record.get("started_at", time.time())})
        pipe.execute()

    def run(self, environment: str, run_id: int) -> dict | None:
        raw = self.r.get(f"{P}run:{environment}:{run_id}")
        return json.loads(raw) if raw else None

    def update_run(self, environment: str, run_id: int, **fields) -> dict | None:
        record = self.run(environment, run_id)
        if record is None:
            return None
        record.update(fields)
        self.r.set(f"{P}run:{environment}:{run_id}", json.dumps(record), ex=30 * 24 * 3600)
        return record

    def _records(self, keys: list) -> list[dict]:
        if not keys:
            return []
        return [json.loads(raw) for raw in self.r.mget(keys) if raw]

    def pr_runs(self, repo: str, pr: int) -> list[dict]:
        return self._records(self.r.zrange(f"{P}pr-runs:{repo}#{pr}", 0, -1))

    def recent_runs(self, limit: int = 50) -> list[dict]:
        return self._records(self.r.zrevrange(f"{P}runs:recent", 0, limit - 1))
