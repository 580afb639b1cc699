"""The audit trail: every approval decision, appended to a Redis stream and never rewritten.

Read by `mlops-bot audit` and the dashboard; written by the workers. Run Redis with AOF
(`appendonly yes`) in production so the trail survives Redis restarts; every decision is also
echoed into the model version's tags in the registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection

import redis

from core import keys

AUDIT_KEY = keys.AUDIT
PAGE = 500  # entries read per XREVRANGE


def record(
    client: redis.Redis,
    decision: str,
    *,
    model: str,
    version: str,
    actor: str,
    source: str,
    reason: str = "",
    once: str = "",
    **extra,
) -> dict | None:
    """Append one decision. With `once`, a retried task cannot append the same decision twice."""
    if once and not client.set(keys.audit_once(once), 1, nx=True, ex=keys.AUDIT_ONCE_TTL):
        return None
    entry = {
        "at": time.time(),
        "decision": decision,
        "model": model,
        "version": str(version),
        "actor": actor,
        "source": source,
        **({"reason": reason} if reason else {}),
        **{k: v for k, v in extra.items() if v not in (None, "")},
    }
    client.xadd(AUDIT_KEY, {"entry": json.dumps(entry)})
    return entry


def entries(client: redis.Redis, model: str | Collection[str] | None = None, limit: int = 1000) -> list[dict]:
    """Oldest first; with `model`, the entries of that name (or names): a registry's name (`prod.fraud.ato_risk`)
    or a model's own (`ato_risk`: every stage's registry, as the workers record it in `release_model`)."""
    names = {model} if isinstance(model, str) else set(model or ())
    out: list[dict] = []
    newest = "+"
    while len(out) < limit:  # newest first, a page at a time: the trail only grows
        page = client.xrevrange(AUDIT_KEY, max=newest, count=PAGE) or []
        for entry_id, fields in page:
            entry = json.loads((fields or {})[b"entry"])
            if not names or entry.get("model") in names or entry.get("release_model") in names:
                out.append(entry)
            newest = "(" + (entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id))
        if len(page) < PAGE:
            break
    return out[:limit][::-1]


def format_entry(e: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
    where = f" {e['repo']}#{e['pr']}" if e.get("pr") else ""
    reason = f" — {e['reason']}" if e.get("reason") else ""
    return f"{when}Z  {e['decision']:<14} {e['model']}@{e['version']:<4} by {e['actor'] or '?'} via {e['source']}{where}{reason}"
