"""The one comment the bot keeps per (kind, key) on a pull request — a run report, a reply, the release comment —
edited in place. Its id is remembered per PR in Redis (workers/core/github_state.py), with whether GitHub's listing
of the PR's comments was read there: an edit needs no search, and a new comment no listing.

Once a PR's listing is read, a comment the ledger does not name does not exist: every comment the bot posts since
is noted there before it is posted (id 0) and after (its id), so a post whose answer was lost — the only way one
could exist unnoted — is searched for before another is made. The ledger expires whole; the next comment lists again.
"""

from __future__ import annotations

from workers.core.state import State
from workers.gateways import ForgeGateway


def upsert(forge: ForgeGateway, state: State, repo: str, pr: int, kind: str, key: str, body: str) -> int:
    """The one comment for (kind, key), edited in place, else posted."""
    known, listed = state.comment_ref(repo, pr, kind, key)
    if known == 0 or (known is None and not listed):  # a post whose answer was lost, or a PR not listed yet
        found = forge.marked_comments(repo, pr)
        known = found.get(f"{kind}:{key}")
        state.remember_listing(repo, pr, found)
    if not known:
        state.remember_comment(repo, pr, kind, key, 0)  # posting: if the answer is lost, the next attempt searches
    cid = forge.upsert_comment(repo, pr, kind, key, body, known, absent=True)
    state.remember_comment(repo, pr, kind, key, cid)
    return cid
