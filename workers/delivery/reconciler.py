"""PR commands whose delivery never reached the bot → the command tasks the receiver would have queued, once.

While Redis is away the receiver answers 503, and GitHub does not redeliver on its own: the `/train` comment
is lost to the live path. Every 2 minutes (beat), per configured repository:
- list the issue comments updated since a watermark, least recently updated first, one request a page
  (`GET /repos/{o}/{r}/issues/comments?since=…&sort=updated&direction=asc`; GitHub's issue comments cover PRs);
- a comment on a PR, by someone other than the bot, created after the watermark (an edit of a comment judged
  before runs nothing, as on the live path), older than GRACE_SECONDS (the live path goes first), holding
  commands no worker ever took (`State.command_handled`, noted by workers/chatops) → the live handler's own
  actions (`handlers.github.on_issue_comment_created`), queued under delivery id `reconcile:<comment id>`;
- the watermark (epoch seconds, in Redis, never expires) rises over each settled page, never up to a comment
  still in its grace period or a second that may go on past the page: a restart resumes from it; the first
  pass starts LOOK_BACK_SECONDS ago, not at the dawn of time.

A command's work is idempotent per comment and place (`chatops.CommandContext.trigger`), so a comment that both
the live path and the reconciler queue starts one run and gets one reply. Deliveries of other events (pushes, PR
openings) are redelivered for a bot authenticated as a GitHub App, through the App's API (workers/delivery/redelivery.py);
with a token they are not covered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from core.events import Event
from core.logs import get_logger
from core.routing import Action, Ignored
from handlers.github import on_issue_comment_created
from handlers.shapes import number, text
from workers.core.context import Deps
from workers.errors import Permanent
from workers.gateways import ForgeGateway

log = get_logger("workers.delivery.reconciler")

GRACE_SECONDS = 60.0  # the live path answers in ms; a command queued behind a burst is still its to take
LOOK_BACK_SECONDS = 3600  # the first pass: an outage of the last hour is worth repairing, older ones are history
PER_PAGE = 100
MAX_PAGES = 10  # a pass reads at most 1,000 comments of a repository; the next pass goes on from the watermark

Enqueue = Callable[[Action], None]


def reconcile(deps: Deps, enqueue: Enqueue, now: float | None = None, grace: float = GRACE_SECONDS) -> int:
    """One pass over every configured repository; returns how many command tasks it queued."""
    if deps.forge is None:
        log.info("reconciler.skipped", reason=deps.forge_problem or "GitHub is not configured")
        return 0
    now = time.time() if now is None else now
    queued = 0
    for repo in deps.settings.repos:
        try:
            queued += reconcile_repo(deps, deps.forge, repo.name, enqueue, now, grace)
        except Permanent as exc:  # e.g. the bot lost access to one repository: the others still get their pass
            log.warning("reconciler.failed", repo=repo.name, reason=exc.message)
    return queued


def reconcile_repo(deps: Deps, forge: ForgeGateway, repo: str, enqueue: Enqueue, now: float, grace: float) -> int:
    """One pass over one repository, unless another pass holds it."""
    token = deps.state.claim_reconcile(repo)
    if token is None:
        return 0
    try:
        return _pass(deps, forge, repo, enqueue, now, grace)
    finally:
        deps.state.release_reconcile(repo, token)


def _pass(deps: Deps, forge: ForgeGateway, repo: str, enqueue: Enqueue, now: float, grace: float) -> int:
    state = deps.state
    mark = state.comments_watermark(repo)
    if mark is None:
        mark = int(now - LOOK_BACK_SECONDS)
        state.raise_comments_watermark(repo, mark)
    queued, page, judged = 0, 1, set[int]()  # judged: a comment listed again on the next page is not queued twice
    for _ in range(MAX_PAGES):
        batch = forge.comments_since(repo, iso(mark), page)
        settled, more, stopped = _settle(deps, repo, batch, mark, now - grace, enqueue, judged)
        queued += more
        if settled > mark:
            state.raise_comments_watermark(repo, settled)
            mark, page = settled, 1
        else:  # a full page within one second: the same listing's next page
            page += 1
        if stopped or len(batch) < PER_PAGE:
            break
    log.info("reconciler.pass", repo=repo, queued=queued, watermark=iso(mark))
    return queued


def _settle(
    deps: Deps, repo: str, batch: list[dict], mark: int, newest: float, enqueue: Enqueue, judged: set[int]
) -> tuple[int, int, bool]:
    """Judge a page in order → (watermark, tasks queued, stop). The watermark may rise to the last settled second
    strictly below the first comment still in its grace period (the pass stops there) or, on a full page, below
    the page's last second (the next page may hold more of it)."""
    queued, below, stopped = 0, None, False
    seconds: list[int] = []
    for comment in batch:
        updated = epoch(text(comment, "updated_at"))
        if updated > newest:
            below, stopped = updated, True
            break
        comment_id = number(comment, "id") or 0
        if comment_id not in judged:
            judged.add(comment_id)
            queued += _judge(deps, repo, comment, comment_id, mark, enqueue)
        seconds.append(updated)
    if below is None and len(batch) >= PER_PAGE and seconds:
        below = seconds[-1]
    return max([s for s in seconds if below is None or s < below] + [mark]), queued, stopped


def _judge(deps: Deps, repo: str, comment: Mapping[str, Any], comment_id: int, mark: int, enqueue: Enqueue) -> int:
    """Queue the comment's command tasks unless the comment was judged before, holds none, or a worker took them."""
    if epoch(text(comment, "created_at")) <= mark:
        return 0  # created before the watermark: judged then; an edit runs nothing, as on the live path
    outcome = on_issue_comment_created(as_event(repo, comment), deps.settings)
    if isinstance(outcome, Ignored) or deps.state.command_handled(repo, comment_id):
        return 0
    for action in outcome:
        enqueue(action)
    log.info(
        "reconciler.queued",
        delivery_id=f"reconcile:{comment_id}",
        repo=repo,
        comment_id=comment_id,
        tasks=[a.task for a in outcome],
    )
    return len(outcome)


def as_event(repo: str, comment: Mapping[str, Any]) -> Event:
    """A listed comment as the `issue_comment` `created` delivery GitHub would have sent: a PR's comment links to
    `/pull/<n>` (an issue's to `/issues/<n>`), and its `issue_url` ends with the number."""
    html_url = text(comment, "html_url")
    tail = text(comment, "issue_url").rstrip("/").rsplit("/", 1)[-1]
    issue: dict[str, Any] = {"number": int(tail) if tail.isdigit() else None}
    if "/pull/" in html_url:
        issue["pull_request"] = {"html_url": html_url.split("#", 1)[0]}
    data = {"repository": {"full_name": repo}, "issue": issue, "comment": dict(comment)}
    return Event("github", "issue_comment", "created", f"reconcile:{number(comment, 'id') or 0}", data)


def epoch(stamp: str) -> int:
    """GitHub's ISO 8601 time (`2026-11-28T13:00:00Z`) as epoch seconds; 0 when missing or unreadable."""
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
