"""What the workers remember about polling registries without webhooks (workers/release/polling.py): a part of
`State`, kept apart to keep each file small. Keys: core/keys.py; none of them expires."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from core import keys
from workers.core.pipeline_state import _text


class PollMemory:
    r: redis.Redis
    _raise: Any  # State's script: a watermark only rises

    def poll_due(self, model: str) -> bool:
        """True for at most one caller per model per keys.POLL_GUARD_SECONDS."""
        return bool(self.r.set(keys.poll_guard(model), 1, nx=True, ex=keys.POLL_GUARD_SECONDS))

    def listing_due(self, schema: str) -> bool:
        """True for at most one caller per schema (`catalog.schema`) per keys.POLL_GUARD_SECONDS."""
        return bool(self.r.set(keys.listing_guard(schema), 1, nx=True, ex=keys.POLL_GUARD_SECONDS))

    def poll_marks(self) -> tuple[dict[str, str], dict[str, int]]:
        """Per model read by this design: the `updated_at` its schema's listing showed before its last read ("":
        not listed), and when that read was (ms since the epoch)."""
        pipe = self.r.pipeline()
        pipe.hgetall(keys.POLLED_STAMPS)
        pipe.zrange(keys.POLLED_AT, 0, -1, withscores=True)
        stamps, read = pipe.execute()
        return (
            {_text(k) or "": _text(v) or "" for k, v in stamps.items()},
            {_text(k) or "": int(score) for k, score in read},
        )

    def note_polled(self, model: str, at_ms: int, stamp: str | None) -> None:
        """`model` was read at `at_ms`, against a listing that showed `stamp` (None: its schema was not listed)."""
        pipe = self.r.pipeline()
        pipe.zadd(keys.POLLED_AT, {model: at_ms})
        if stamp is not None:
            pipe.hset(keys.POLLED_STAMPS, model, stamp)
        pipe.execute()

    def watermark(self, model: str) -> int | None:
        """Every version <= the watermark is settled; None before the first poll."""
        raw = self.r.get(keys.polled_watermark(model))
        if raw is not None:
            return int(raw)
        if self.r.exists(keys.polled_baseline(model)):  # polled by the first design: its seen set says how far
            seen = [
                int(v) for v in (_text(m) or "" for m in self.r.smembers(keys.polled_versions(model))) if v.isdigit()
            ]
            return max(seen, default=0)
        return None

    def set_watermark(self, model: str, watermark: int, settled: Iterable[str] = ()) -> None:
        """Raise the watermark (never lower it) and forget the done marks it now covers."""
        self._raise(keys=[keys.polled_watermark(model)], args=[watermark])
        if pruned := [v for v in settled if v.isdigit() and int(v) <= watermark]:
            self.r.srem(keys.polled_versions(model), *pruned)

    def version_done(self, model: str, version: str) -> bool:
        """Its event was handled: marked done, or covered by the watermark (another poll moved it meanwhile)."""
        pipe = self.r.pipeline()
        pipe.sismember(keys.polled_versions(model), version)
        pipe.get(keys.polled_watermark(model))
        done, mark = pipe.execute()
        return bool(done) or (mark is not None and version.isdigit() and int(version) <= int(mark))

    def claim_version(self, model: str, version: str) -> bool:
        """True for one caller at a time, and never for a version whose event was handled meanwhile."""
        if not self.r.set(keys.polled_claim(model, version), 1, nx=True, ex=keys.POLL_CLAIM_SECONDS):
            return False
        if self.version_done(model, version):  # done between the caller's check and this claim
            self.release_version(model, version)
            return False
        return True

    def finish_version(self, model: str, version: str) -> None:
        pipe = self.r.pipeline()
        pipe.sadd(keys.polled_versions(model), version)
        pipe.delete(keys.polled_claim(model, version))
        pipe.execute()

    def release_version(self, model: str, version: str) -> None:
        self.r.delete(keys.polled_claim(model, version))

    def alias_positions(self, model: str) -> dict[str, str] | None:
        """alias -> version at the last poll; None when never recorded (a model polled by the first design)."""
        raw = self.r.get(keys.polled_aliases(model))
        return json.loads(raw) if raw is not None else None

    def save_alias_positions(self, model: str, positions: dict[str, str]) -> None:
        self.r.set(keys.polled_aliases(model), json.dumps(positions, sort_keys=True))
