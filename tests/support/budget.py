"""What the bot asked of the stand-in forge, as the forge itself counted it (`GET /sandbox/requests`: per user and
route template), and whether the bot is done: nothing queued and nothing held by a worker."""

from __future__ import annotations

import time

import redis
import requests

from core.queue import DEFAULT_QUEUE


def reset_counts(forge_url: str) -> None:
    requests.post(f"{forge_url}/sandbox/requests/reset", timeout=10).raise_for_status()


def requests_of(forge_url: str, login: str) -> dict[str, int]:
    """`METHOD /route/{template}` → how many requests `login` made since the last reset."""
    counts = requests.get(f"{forge_url}/sandbox/requests", timeout=10).json()
    return dict(sorted(counts["by_user_route"].get(login, {}).items()))


def settled(redis_url: str, checks: int = 3, every: float = 0.3) -> bool:
    """Idle several times in a row: nothing in the queue, nothing unacknowledged (a follower's next poll is an ETA
    message a worker holds unacked; a message between BRPOP and `unacked` is in neither for an instant)."""
    r = redis.Redis.from_url(redis_url)
    for _ in range(checks):
        if r.llen(DEFAULT_QUEUE) or r.hlen("unacked"):
            return False
        time.sleep(every)
    return True
