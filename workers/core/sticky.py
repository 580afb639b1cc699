"""The one comment the bot keeps per (kind, key) on a pull request — a run report, the release comment —
found again by a hidden marker and edited in place; its id is remembered in Redis so no listing is needed."""

from __future__ import annotations

from workers.core.state import State
from workers.gateways import ForgeGateway


def upsert(forge: ForgeGateway, state: State, repo: str, pr: int, kind: str, key: str, body: str) -> int:
    """The one comment for (kind, key), edited in place; its id is remembered so no listing is needed."""
    cid = forge.upsert_comment(repo, pr, kind, key, body, state.comment_id(repo, pr, kind, key))
    state.remember_comment(repo, pr, kind, key, cid)
    return cid
