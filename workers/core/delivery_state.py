"""What the workers remember about deliveries that never arrived (workers/delivery/): the comment reconciler's
watermarks, guards and pace, the App redelivery's watermark and counts. A part of `State`, kept apart to keep each
file small. Keys: core/keys.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from core import keys
from workers.core.pipeline_state import _text


@dataclass(frozen=True)
class Pace:
    """The reconciler's pace for one repository: how long it waits after a pass (0: it never passed), when its next
    pass is due (epoch seconds), and the ETag of its comment listing since the watermark `since` (ISO 8601)."""

    wait: int = 0
    due: float = 0.0
    since: str = ""
    etag: str = ""


def _pace(raw: dict) -> Pace:
    fields = {_text(k): _text(v) or "" for k, v in raw.items()}
    try:
        return Pace(int(fields.get("wait") or 0), float(fields.get("due") or 0), fields["since"], fields["etag"])
    except (KeyError, ValueError):  # written by no bot of today's: a pass at once, with a full listing
        return Pace()


class DeliveryMemory:
    r: redis.Redis
    _raise: Any  # State's scripts: raise a watermark, release a token's key
    _release: Any

    # --- the comment reconciler (workers/delivery/reconciler.py) --------------------------------------------------
    def note_command_handled(self, repo: str, comment_id: int) -> None:
        """A worker took a command task of this comment (live or reconciled): its delivery was not lost."""
        self.r.set(keys.command_handled(repo, comment_id), 1, ex=keys.PR_TTL)

    def command_handled(self, repo: str, comment_id: int) -> bool:
        return bool(self.r.exists(keys.command_handled(repo, comment_id)))

    def comments_watermark(self, repo: str) -> int | None:
        """Epoch seconds: every comment updated at or before it is settled; None before the first pass."""
        raw = self.r.get(keys.comments_watermark(repo))
        return int(raw) if raw is not None else None

    def raise_comments_watermark(self, repo: str, epoch: int) -> None:
        """Raise it (never lower it, even when two passes overlap)."""
        self._raise(keys=[keys.comments_watermark(repo)], args=[epoch])

    def claim_reconcile(self, repo: str) -> str | None:
        """A token for the one pass over `repo` at a time, or None while another pass holds it."""
        token = uuid.uuid4().hex
        taken = self.r.set(keys.reconcile_guard(repo), token, nx=True, ex=keys.RECONCILE_GUARD_SECONDS)
        return token if taken else None

    def release_reconcile(self, repo: str, token: str) -> None:
        self._release(keys=[keys.reconcile_guard(repo)], args=[token])

    def reconcile_paces(self, repos: Iterable[str]) -> dict[str, Pace]:
        """Every repository's pace, in one round trip (a repository never passed, or forgotten: `Pace()`)."""
        names = list(repos)
        pipe = self.r.pipeline(transaction=False)
        for repo in names:
            pipe.hgetall(keys.reconcile_pace(repo))
        return {repo: _pace(raw) for repo, raw in zip(names, pipe.execute(), strict=True)}

    def keep_reconcile_pace(self, repo: str, pace: Pace) -> None:
        key = keys.reconcile_pace(repo)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"wait": pace.wait, "due": pace.due, "since": pace.since, "etag": pace.etag})
        pipe.expire(key, keys.RECONCILE_PACE_TTL)
        pipe.execute()

    def app_webhook_covers_comments(self) -> bool | None:
        """Whether the GitHub App's webhook subscribes to `issue_comment`, as GitHub said within the hour; None: ask."""
        raw = _text(self.r.get(keys.app_webhook_comments()))
        return None if raw is None else raw == "1"

    def note_app_webhook_covers_comments(self, covers: bool, seconds: int) -> None:
        self.r.set(keys.app_webhook_comments(), "1" if covers else "0", ex=seconds)

    # --- the App redelivery (workers/delivery/redelivery.py) ------------------------------------------------------
    def app_deliveries_watermark(self) -> int | None:
        """Epoch seconds: every App webhook attempt delivered before it is judged; None before the first pass."""
        raw = self.r.get(keys.app_deliveries_watermark())
        return int(raw) if raw is not None else None

    def raise_app_deliveries_watermark(self, epoch: int) -> None:
        """Raise it (never lower it, even when two passes overlap)."""
        self._raise(keys=[keys.app_deliveries_watermark()], args=[epoch])

    def count_redelivery(self, guid: str, kept_seconds: int) -> int:
        """One more redelivery of `guid` asked for: how many so far (forgotten after `kept_seconds`)."""
        pipe = self.r.pipeline()
        pipe.incr(keys.redeliveries(guid))
        pipe.expire(keys.redeliveries(guid), kept_seconds)
        return int(pipe.execute()[0])
