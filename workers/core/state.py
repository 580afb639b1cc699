"""What the workers remember in Redis, and the only place they touch it (layout: `core/keys.py`).

Redis is a cache and a coordinator here, never the only copy of a fact the bot cannot re-derive:
a lost job id is found again by name, a lost run by its idempotency token, a lost comment id by
its hidden marker.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import redis

from core import audit, keys
from workers.core.delivery_state import DeliveryMemory
from workers.core.github_state import GitHubMemory
from workers.core.job_state import JobMemory
from workers.core.pipeline_state import PipelineMemory, _text
from workers.core.poll_state import PollMemory
from workers.core.records import ApprovalRequest, Lineage, Record, Release
from workers.core.run_records import RunRecord, RunResult
from workers.errors import Transient

Kept = TypeVar("Kept", bound=Record)
T = TypeVar("T")

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# a watermark only rises, even when two polls (or reconciler passes) overlap
_RAISE = "local c = redis.call('GET', KEYS[1]) if not c or tonumber(c) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end"


def _given(value: T | None, kept: T) -> T:
    return kept if value is None else value


class State(PipelineMemory, DeliveryMemory, GitHubMemory, JobMemory, PollMemory):
    def __init__(self, client: redis.Redis):
        self.r = client
        self._release = client.register_script(_RELEASE)
        self._raise = client.register_script(_RAISE)

    # --- locks ---------------------------------------------------------------------------------
    @contextmanager
    def lock(self, name: str, ttl: float = 15.0, wait: float = 10.0) -> Iterator[None]:
        """A short mutual-exclusion lock that expires by itself if its holder dies (SIGKILL)."""
        key, token = keys.lock(name), uuid.uuid4().hex
        deadline = time.monotonic() + wait
        while not self.r.set(key, token, nx=True, px=int(ttl * 1000)):
            if time.monotonic() > deadline:
                raise Transient(f"lock {name} is held by another worker")
            time.sleep(0.05)
        try:
            yield
        finally:
            self._release(keys=[key], args=[token])

    # --- runs ----------------------------------------------------------------------------------
    def save_run(self, record: RunRecord) -> None:
        """Store a run record (context + latest state), index it by branch and PR, and note that its job ran."""
        key = keys.run(record.environment, record.run_id)
        pipe = self.r.pipeline()
        pipe.set(key, json.dumps(record.to_json()), ex=keys.RUN_TTL)
        pipe.hset(keys.JOB_RUNS, keys.job_member(record.environment, record.job), str(record.started_at))
        pipe.zadd(keys.RUNS, {key: record.started_at})
        pipe.zremrangebyrank(keys.RUNS, 0, -(keys.RUNS_LIMIT + 1))
        if record.pr:
            pipe.zadd(keys.pr_runs(record.repo, record.pr), {key: record.started_at})
        pipe.execute()

    def run(self, environment: str, run_id: int) -> RunRecord | None:
        raw = self.r.get(keys.run(environment, run_id))
        return RunRecord.from_json(json.loads(raw)) if raw else None

    def update_run(
        self,
        environment: str,
        run_id: int,
        *,
        state: str | None = None,
        result: RunResult | None = None,
        finished_at: float | None = None,
        error: str | None = None,
        cancelled_by: str | None = None,
        superseded_by: int | None = None,
        deployment_id: int | None = None,
    ) -> RunRecord | None:
        """The run's record with the fields given (None: unchanged), saved; None when there is no record."""
        record = self.run(environment, run_id)
        if record is None:
            return None
        record = replace(
            record,
            state=_given(state, record.state),
            result=_given(result, record.result),
            finished_at=_given(finished_at, record.finished_at),
            error=_given(error, record.error),
            cancelled_by=_given(cancelled_by, record.cancelled_by),
            superseded_by=_given(superseded_by, record.superseded_by),
            deployment_id=_given(deployment_id, record.deployment_id),
        )
        self.r.set(keys.run(environment, run_id), json.dumps(record.to_json()), ex=keys.RUN_TTL)
        return record

    def pr_runs(self, repo: str, pr: int) -> list[RunRecord]:
        found: list = self.r.zrange(keys.pr_runs(repo, pr), 0, -1)
        if not found:
            return []
        return [RunRecord.from_json(json.loads(raw)) for raw in self.r.mget(found) if raw]

    # --- pull requests ---------------------------------------------------------------------------
    def mark_latest_run(self, repo: str, pr: int, workflow: str, run_id: int) -> None:
        """This run owns the PR's report and status for `workflow` now."""
        self.r.set(keys.pr_latest(repo, pr, workflow), run_id, ex=keys.PR_TTL)

    def latest_run(self, repo: str, pr: int, workflow: str) -> int | None:
        raw = self.r.get(keys.pr_latest(repo, pr, workflow))
        return int(raw) if raw is not None else None

    def cached_permission(self, repo: str, user: str) -> str | None:
        return _text(self.r.get(keys.permission(repo, user)))

    def cache_permission(self, repo: str, user: str, role: str, ttl: int) -> None:
        self.r.set(keys.permission(repo, user), role, ex=ttl)

    def grant_ok_to_test(self, repo: str, pr: int, sha: str) -> None:
        self.r.set(keys.ok_to_test(repo, pr), sha, ex=keys.PR_TTL)

    def note_head(self, repo: str, pr: int, sha: str, pushed_at: str) -> None:
        """The first time GitHub told of this head commit (ISO 8601, GitHub's clock); kept like the grants."""
        if pushed_at:
            self.r.set(keys.head_pushed(repo, pr, sha), pushed_at, nx=True, ex=keys.PR_TTL)

    def head_pushed_at(self, repo: str, pr: int, sha: str) -> str | None:
        return _text(self.r.get(keys.head_pushed(repo, pr, sha)))

    def ok_to_test_sha(self, repo: str, pr: int) -> str | None:
        """The head commit someone with write access said `/ok-to-test` for, if any."""
        return _text(self.r.get(keys.ok_to_test(repo, pr)))

    # --- approvals -------------------------------------------------------------------------------
    def approval(self, model: str, version: str) -> ApprovalRequest | None:
        raw = self.r.get(keys.approval(model, version))
        return ApprovalRequest.from_json(json.loads(raw)) if raw else None

    def save_approval(self, request: ApprovalRequest) -> None:
        key = keys.approval(request.name or request.model, request.version)
        pipe = self.r.pipeline()
        pipe.set(key, json.dumps(request.to_json()))
        pipe.zadd(keys.APPROVALS, {key: request.requested_at})
        if request.pr:
            pipe.zadd(keys.pr_approvals(request.repo, request.pr), {request.version: int(request.version)})
        pipe.execute()

    def pr_approval_versions(self, repo: str, pr: int) -> list[str]:
        """The versions trained from this PR, oldest first."""
        return [_text(v) or "" for v in self.r.zrange(keys.pr_approvals(repo, pr), 0, -1)]

    def audit(self, decision: str, *, once: str = "", **entry: Any) -> None:
        """Append to the audit trail (core/audit.py); with `once`, at most once."""
        audit.record(self.r, decision, once=once, **entry)

    # --- the release train: the bot's own records (no TTL: lineage must outlive the runs' cache) ---------
    def record_lineage(self, environment: str, run_id: int, record: Lineage) -> None:
        self.r.set(keys.lineage(environment, run_id), json.dumps(record.to_json()))

    def lineage(self, environment: str, run_id: int | str) -> Lineage | None:
        raw = self.r.get(keys.lineage(environment, run_id))
        return Lineage.from_json(json.loads(raw)) if raw else None

    def claim_lineage(self, registry_name: str, run_id: int | str, version: str) -> bool:
        """True when `version` is the (first) version this run vouches for in `registry_name`."""
        key = keys.lineage_claim(registry_name, run_id)
        self.r.set(key, version, nx=True)
        return _text(self.r.get(key)) == version

    def release(self, model: str, repo: str, pr: int) -> Release | None:
        raw = self.r.get(keys.release(model, repo, pr))
        return Release.from_json(json.loads(raw)) if raw else None

    def save_release(self, release: Release) -> None:
        self.r.set(keys.release(release.model, release.repo, release.pr), json.dumps(release.to_json()))

    def push_champion(self, registry_name: str, version: str) -> None:
        key = keys.champions(registry_name)
        if _text(self.r.lindex(key, -1)) != version:
            self.r.rpush(key, version)

    def champion_history(self, registry_name: str) -> list[str]:
        return [_text(v) or "" for v in self.r.lrange(keys.champions(registry_name), 0, -1)]

    def set_champion_history(self, registry_name: str, versions: list[str]) -> None:
        pipe = self.r.pipeline()
        pipe.delete(keys.champions(registry_name))
        if versions:
            pipe.rpush(keys.champions(registry_name), *versions)
        pipe.execute()

    def note_prod_origin(self, registry_name: str, version: str, origin: str) -> None:
        self.r.set(keys.prod_origin(registry_name, version), origin)

    def prod_origin(self, registry_name: str, version: str) -> str | None:
        return _text(self.r.get(keys.prod_origin(registry_name, version)))

    def live_deployment(self, repo: str, environment: str) -> int | None:
        raw = self.r.get(keys.live_deployment(repo, environment))
        return int(raw) if raw else None

    def set_live_deployment(self, repo: str, environment: str, deployment_id: int) -> None:
        self.r.set(keys.live_deployment(repo, environment), deployment_id)

    # --- the due index: work for later, sent by beat when due (no long ETA message: core/celery_app.py) ---
    def put_due(self, member: str, due_at: float) -> None:
        """Remember `member` (a task and its arguments as JSON) for `due_at`; the same member again moves it."""
        self.r.zadd(keys.DUE, {member: due_at})

    def due(self, now: float, limit: int = 200) -> list[str]:
        """Members due at `now`, earliest first."""
        found: list = self.r.zrangebyscore(keys.DUE, "-inf", now, 0, limit)
        return [_text(m) or "" for m in found]

    def send_due(self, queue: str, entries: list[tuple[str, str]], now: float) -> int:
        """Move each (member, message) still due from the index onto `queue`, in one script: a member is
        removed and its message pushed together, so two beats never send one entry twice and a crash
        between the two loses nothing. Returns how many were sent."""
        script = (
            "local sent = 0 "
            "for i = 2, #ARGV, 2 do "
            "  local due = redis.call('ZSCORE', KEYS[1], ARGV[i]) "
            "  if due and tonumber(due) <= tonumber(ARGV[1]) then "
            "    redis.call('ZREM', KEYS[1], ARGV[i]) redis.call('LPUSH', KEYS[2], ARGV[i + 1]) sent = sent + 1 "
            "  end "
            "end "
            "return sent"
        )
        if not entries:
            return 0
        args: list[str | float] = [now]
        for member, message in entries:
            args += [member, message]
        return int(self.r.register_script(script)(keys=[keys.DUE, queue], args=args))

    def due_entries(self) -> list[tuple[str, float]]:
        """Every waiting member and when it is due (the dashboard and the tests)."""
        found: list = self.r.zrange(keys.DUE, 0, -1, withscores=True)
        return [(_text(m) or "", float(s)) for m, s in found]

    # --- what a task decided before its first write ----------------------------------------------------------
    def plan(self, work: str, kind: type[Kept]) -> Kept | None:
        raw = self.r.get(keys.plan(work))
        return kind.from_json(json.loads(raw)) if raw else None

    def keep_plan(self, work: str, plan: Kept) -> Kept:
        """`plan` for `work`, unless one was kept before: then that one — a task run again after a crash (or a lost
        answer) repeats its first decision instead of deciding again on what its first run already changed."""
        self.r.set(keys.plan(work), json.dumps(plan.to_json()), nx=True, ex=keys.AUDIT_ONCE_TTL)
        return self.plan(work, type(plan)) or plan
