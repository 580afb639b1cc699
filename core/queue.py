"""Dedupe a delivery and enqueue its actions in one atomic Redis call.

The web process writes Celery protocol-2 messages itself — the same JSON envelope that
`celery.send_task` writes to a Redis broker — so that "seen this delivery?" and "queue its tasks"
happen in one round trip: either both or neither. Kombu's publish path costs ~350 µs per
message here (it builds a Redis client per publish); this costs one EVALSHA.
A real Celery worker consumes these messages (tests/integration/test_receiver_worker.py).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from dataclasses import dataclass

import redis
from redis.exceptions import NoScriptError

from core import keys
from core.routing import Action
from core.vocabulary import BOT

DEFAULT_QUEUE = BOT
DEDUPE_PREFIX = keys.DEDUPE_PREFIX
SIGNED_PREFIX = keys.SIGNED_PREFIX
RECENT_KEY = keys.DELIVERIES
RECENT_LIMIT = keys.DELIVERIES_LIMIT

# KEYS[1] delivery's dedupe key, KEYS[2] recent-deliveries list, KEYS[3..2+n] signed-content keys, then queues
# ARGV[1] ttl, ARGV[2] delivery record (JSON), ARGV[3] n, ARGV[4..] messages, one per queue key
# Seen is seen by either name: the delivery id (a retry) or the signed body (a replay under a new id).
_SUBMIT = f"""
local n = tonumber(ARGV[3])
for i = 3, 2 + n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
for i = 3, 2 + n do redis.call('SET', KEYS[i], KEYS[1], 'EX', tonumber(ARGV[1])) end
for i = 3 + n, #KEYS do redis.call('LPUSH', KEYS[i], ARGV[i - n + 1]) end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, {RECENT_LIMIT - 1})
return 1
"""


compact = json.JSONEncoder(separators=(",", ":")).encode  # json.dumps(…, separators=…) builds an encoder per call


def celery_message(task: str, kwargs: dict, queue: str = DEFAULT_QUEUE, task_id: str | None = None) -> str:
    """One Celery protocol-2 message as the Redis transport stores it (JSON serializer only)."""
    task_id = task_id or str(uuid.uuid4())
    body = compact([[], kwargs, _EMBED])
    # Short reprs: Celery would saferepr the arguments, which costs and may echo payload text into logs.
    kwargsrepr = "{" + ", ".join(sorted(kwargs)) + "}"
    return _TEMPLATE % {
        "body": '"' + base64.b64encode(body.encode()).decode() + '"',  # base64: nothing to escape
        "task": json.dumps(task),
        "id": json.dumps(task_id),
        "kwargsrepr": json.dumps(kwargsrepr),
        "queue": json.dumps(queue),
        "tag": '"' + str(uuid.uuid4()) + '"',  # kombu's delivery tag: a uuid4, as its publish path makes one
    }


_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


_ORIGIN = f"mlops-bot-web@{socket.gethostname()}:{os.getpid()}"
# The envelope is the same for every message but for these fields: build it once.
_TEMPLATE = json.dumps(
    {
        "body": "@body",
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": "@task",
            "id": "@id",
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": "@id",
            "parent_id": None,
            "argsrepr": "()",
            "kwargsrepr": "@kwargsrepr",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": "@id",
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": "@queue"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": "@tag",
        },
    },
    separators=(",", ":"),
).replace("%", "%%")
for _field in ("body", "task", "id", "kwargsrepr", "queue", "tag"):
    _TEMPLATE = _TEMPLATE.replace(f'"@{_field}"', f"%({_field})s")


@dataclass
class Submitted:
    queued: bool  # False: this delivery id, or its signed content, was seen before; nothing was enqueued
    task_ids: list[str]


class Queue:
    """Enqueue actions for a delivery exactly once (per dedupe TTL), by its delivery id and by its signed content."""

    def __init__(self, client: redis.Redis, queue: str = DEFAULT_QUEUE, dedupe_ttl: int = 7 * 24 * 3600):
        self.client = client
        self.queue = queue
        self.dedupe_ttl = dedupe_ttl
        self._submit = client.register_script(_SUBMIT)

    def submit(self, delivery_key: str, actions: list[Action], record: dict) -> Submitted:
        """Queue `actions` unless `delivery_key` or any of the actions' signed-content keys was seen: one EVALSHA."""
        signed = sorted({SIGNED_PREFIX + a.key for a in actions if a.key})
        task_ids = [str(uuid.uuid4()) for _ in actions]
        messages = [celery_message(a.task, a.kwargs, self.queue, tid) for a, tid in zip(actions, task_ids, strict=True)]
        entry = compact({**record, "tasks": [a.task for a in actions]})
        keys = [DEDUPE_PREFIX + delivery_key, RECENT_KEY, *signed] + [self.queue] * len(messages)
        queued = self._evalsha(keys, [self.dedupe_ttl, entry, len(signed), *messages])
        return Submitted(bool(queued), task_ids if queued else [])

    def _evalsha(self, keys: list[str], args: list) -> int:
        """The submit script, as `Script.__call__` runs it — EVALSHA, and SCRIPT LOAD once after Redis lost its
        script cache (NOSCRIPT) — with the client's retry on a pooled connection, but without redis-py's
        per-command bookkeeping (observability, events), which cost ~13 µs of a delivery's ~60 µs round trip."""
        pool = self.client.connection_pool
        conn = pool.get_connection()

        def evalsha() -> int:
            conn.send_command("EVALSHA", self._submit.sha, len(keys), *keys, *args)
            return conn.read_response()

        def load() -> None:
            conn.send_command("SCRIPT", "LOAD", _SUBMIT)
            self._submit.sha = conn.read_response()

        def on_error(_error: Exception) -> None:
            conn.disconnect()  # the retry connects afresh, as the client's own command path does

        try:
            try:
                return conn.retry.call_with_retry(evalsha, on_error)
            except NoScriptError:
                conn.retry.call_with_retry(load, on_error)
                return conn.retry.call_with_retry(evalsha, on_error)
        finally:
            pool.release(conn)

    def record(self, record: dict) -> None:
        """Remember an ignored or refused delivery for the dashboard (best effort, one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(RECENT_KEY, compact(record))
        pipe.ltrim(RECENT_KEY, 0, RECENT_LIMIT - 1)
        pipe.execute()
