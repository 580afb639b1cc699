"""What the workers remember about per-branch jobs (workers/jobs/): a part of `State`, kept apart to keep each file
small. The job id cache (a job lost from it is found again by its name) and when the bot last started a run of each
job, which the janitor counts `[bot] job_ttl_days` from. Keys: core/keys.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

import redis

from core import keys
from workers.core.pipeline_state import _text
from workers.core.run_records import CachedJob


class JobMemory:
    r: redis.Redis

    def cached_job(self, environment: str, name: str) -> CachedJob | None:
        raw = self.r.get(keys.job(environment, name))
        return CachedJob.from_json(json.loads(raw)) if raw else None

    def cache_job(self, environment: str, name: str, job_id: int, fingerprint: str) -> None:
        pipe = self.r.pipeline()
        pipe.set(
            keys.job(environment, name),
            json.dumps(CachedJob(job_id, fingerprint, time.time()).to_json()),
            ex=keys.JOB_TTL,
        )
        pipe.sadd(keys.JOBS, keys.job_member(environment, name))
        pipe.execute()

    def forget_job(self, environment: str, name: str) -> None:
        """The job is gone (or was never made): its cached id and its last run go too."""
        pipe = self.r.pipeline()
        pipe.delete(keys.job(environment, name))
        pipe.srem(keys.JOBS, keys.job_member(environment, name))
        pipe.hdel(keys.JOB_RUNS, keys.job_member(environment, name))
        pipe.execute()

    def job_last_runs(self, environment: str) -> dict[str, float]:
        """Job name -> when the bot last started a run of it (`State.save_run` notes it), for `environment`'s jobs."""
        prefix = keys.job_member(environment, "")
        found = {_text(k) or "": float(v) for k, v in self.r.hgetall(keys.JOB_RUNS).items()}
        return {member.removeprefix(prefix): at for member, at in found.items() if member.startswith(prefix)}

    def forget_job_runs(self, environment: str, names: Iterable[str]) -> None:
        """Drop the last runs of jobs that are gone (the janitor did not find them in the workspace)."""
        members = [keys.job_member(environment, name) for name in names]
        if members:
            self.r.hdel(keys.JOB_RUNS, *members)
