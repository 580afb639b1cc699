"""Is Redis keeping what the bot writes? The queue, the audit trail and the bot's own records (lineage,
approvals, watermarks) live there, so an evicting Redis (`maxmemory-policy` other than `noeviction`)
would lose them silently, and one without an append-only file loses the last writes in a crash.

Asked once per process with `CONFIG GET` (a managed Redis may refuse it: then nothing is known and
nothing is claimed). /readyz answers 503 on an evicting Redis; the worker logs both problems at start.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis


@dataclass(frozen=True)
class Durability:
    appendonly: str | None = None  # "yes" / "no"; None: Redis would not say
    policy: str | None = None  # maxmemory-policy
    problems: list[str] = field(default_factory=list)

    @property
    def evicts(self) -> bool:
        return self.policy is not None and self.policy != "noeviction"


def check(client: redis.Redis) -> Durability:
    try:
        found = {**client.config_get("appendonly"), **client.config_get("maxmemory-policy")}
    except redis.ResponseError:  # CONFIG is disabled (managed Redis): nothing known
        return Durability()
    text = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in found.items()}
    appendonly, policy = text.get("appendonly"), text.get("maxmemory-policy")
    problems = []
    if policy and policy != "noeviction":
        problems.append(
            f"Redis evicts keys (maxmemory-policy={policy}): the queue, the audit trail and the bot's records "
            "could vanish; set maxmemory-policy noeviction"
        )
    if appendonly == "no":
        problems.append(
            "Redis keeps no append-only file (appendonly no): a crash loses the last writes; set appendonly yes"
        )
    return Durability(appendonly, policy, problems)
