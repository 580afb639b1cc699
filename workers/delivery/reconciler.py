"""PR commands whose delivery never reached the bot → the command tasks the receiver would have queued, once.

While Redis is away the receiver answers 503, and GitHub does not redeliver on its own: the `/train` comment
is lost to the live path. Beat asks every 2 minutes; per configured repository whose pass is due:
- list the issue comments updated since a watermark, least recently updated first, one request a page
  (`GET /repos/{o}/{r}/issues/comments?since=…&sort=updated&direction=asc`; GitHub's issue comments cover PRs);
- a comment on a PR, by someone other than the bot, created after the watermark (an edit of a comment judged
  before runs nothing, as on the live path), older than GRACE_SECONDS (the live path goes first), holding
  commands no worker ever took (`State.command_handled`, noted by workers/chatops) → the live handler's own
  actions (`handlers.github.on_issue_comment_created`), queued under delivery id `reconcile:<comment id>`;
- the watermark (epoch seconds, in Redis, never expires) rises over each settled page, never up to a comment
  still in its grace period or a second that may go on past the page: a restart resumes from it; the first
  pass starts LOOK_BACK_SECONDS ago, not at the dawn of time.

What it costs GitHub at idle does not grow with the number of repositories:
- **Conditional requests.** The first page of a listing is asked with `If-None-Match`: the ETag the same URL (same
  watermark, same page) answered last time, kept in the repository's pace (`State.reconcile_paces`). GitHub's
  "Best practices for using the REST API": "Making a conditional request does not count against your primary rate
  limit if a `304` response is returned and the request was made while correctly authorized with an `Authorization`
  header." A 304 means "nothing added, edited or deleted since that listing", and only a 304 does (an error is
  raised, never read as an answer). An ETag is kept only for a listing read whole (one page, under PER_PAGE) and
  judged to the end (no comment left in its grace period): a 304 to a listing that still held work would hide it.
- **Backoff on quiet repositories.** A pass that found nothing new (a 304, or only comments judged before) doubles the
  repository's wait before its next pass, from one beat (2 minutes) up to QUIET_WAIT_MAX (30 minutes); a comment
  past the watermark, or one still in its grace period, sets it back to one beat. A repository GitHub refuses (a
  404: lost access) backs off too, as the same page asks of a resource that "repeatedly returns a `404`". The pace
  is in Redis (a hash per repository, a day's TTL): it survives restarts; the beat still fires every 2 minutes and
  a pass skips the repositories not yet due (a task run with `due_only=False` passes over every one).
  **The longest delay to repair a lost command** becomes QUIET_WAIT_MAX plus half a beat — 31 minutes — on a
  repository quiet for half an hour before it (2 to 3 minutes before this backoff); on one with a comment in the
  last few minutes it stays 2 to 3 minutes.
- **Nothing where App redelivery covers it.** A bot authenticated as a GitHub App (`[github] app_id`,
  `installation_id`) has workers/delivery/redelivery.py ask GitHub to redeliver every failed delivery of the App's
  webhook. That webhook carries the events of every repository of the installation — and the installation's token
  is the bot's only access, so every repository the bot can answer on is in it: the decision is the same for each
  configured repository (one outside the installation is one the bot can neither read nor answer on). What it does
  not show is whether the webhook subscribes to `issue_comment` (an App may be set up with repository webhooks
  instead): the reconciler asks GitHub (`GET /app`, the App's `events`) once an hour (APP_CHECK_SECONDS, kept in
  Redis). Subscribed: no pass lists anything — one request an hour in all. Not subscribed (or GitHub refused to
  say): the repositories are reconciled as with a token, and a warning says why.
  What App redelivery does not repair that this pass would: a delivery that failed more than MAX_REDELIVERIES
  times, one past the 1,000 newest attempts since its last pass (workers/delivery/redelivery.py logs both), or one
  the receiver refused with a 4xx (a wrong webhook secret). And GitHub's docs do not say whether `events` still lists
  the subscriptions of an App webhook deactivated since: such an App reads as covered.

A command's work is idempotent per comment and place (`chatops.CommandContext.trigger`), so a comment that both
the live path and the reconciler queue starts one run and gets one reply. Deliveries of other events (pushes, PR
openings) are redelivered for a bot authenticated as a GitHub App, through the App's API (workers/delivery/redelivery.py);
with a token they are not covered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from core import vocabulary as V
from core.events import Event
from core.logs import get_logger
from core.routing import Action, Ignored
from handlers.github import on_issue_comment_created
from handlers.shapes import number, text
from workers.core.context import Deps
from workers.core.delivery_state import Pace
from workers.errors import Permanent
from workers.gateways import ForgeGateway

log = get_logger("workers.delivery.reconciler")

GRACE_SECONDS = 60.0  # the live path answers in ms; a command queued behind a burst is still its to take
LOOK_BACK_SECONDS = 3600  # the first pass: an outage of the last hour is worth repairing, older ones are history
PER_PAGE = 100
MAX_PAGES = 10  # a pass reads at most 1,000 comments of a repository; the next pass goes on from the watermark
BEAT_SECONDS = next(seconds for task, seconds in V.BEAT_SCHEDULE.values() if task == V.RECONCILE_COMMENTS)
# A quiet repository is listed every 30 minutes at most: a person whose `/train` got no 👀 during an outage retries
# or asks within about that long, while 2 listings an hour (free 304s, with a token) keep 200 repositories at 400
# requests an hour even where GitHub counted them — and 5 doublings from 2 minutes get there in half an hour.
QUIET_WAIT_MAX = 1800
APP_CHECK_SECONDS = 3600  # how long GitHub's word on the App webhook's events is kept before asking again

Enqueue = Callable[[Action], None]


@dataclass(frozen=True)
class Passed:
    """One repository's pass: tasks queued, whether it found anything new, the watermark it ends at (ISO 8601) and the
    ETag of the listing since then when that listing was read whole and judged ("" otherwise)."""

    queued: int
    found: bool
    since: str
    etag: str
    unchanged: bool = False  # GitHub answered 304


def reconcile(
    deps: Deps, enqueue: Enqueue, now: float | None = None, grace: float = GRACE_SECONDS, due_only: bool = True
) -> int:
    """One pass over every configured repository no App redelivery covers whose pace says it is due (`due_only`
    False: every one); returns how many command tasks it queued."""
    if deps.forge is None:
        log.info("reconciler.skipped", reason=deps.forge_problem or "GitHub is not configured")
        return 0
    now = time.time() if now is None else now
    if app_covers_comments(deps, deps.forge):
        log.debug("reconciler.skipped", reason="the GitHub App's webhook carries comments: App redelivery covers them")
        return 0
    names = [repo.name for repo in deps.settings.repos]
    paces, queued = deps.state.reconcile_paces(names), 0
    for name in names:
        if due_only and not is_due(paces[name], now):
            continue
        try:
            queued += reconcile_repo(deps, deps.forge, name, enqueue, now, grace, paces[name])
        except Permanent as exc:  # e.g. the bot lost access to one repository: the others still get their pass
            log.warning("reconciler.failed", repo=name, reason=exc.message)
            deps.state.keep_reconcile_pace(name, next_pace(paces[name], now, found=False))
    return queued


def app_covers_comments(deps: Deps, forge: ForgeGateway) -> bool:
    """True for a bot authenticated as a GitHub App whose webhook subscribes to `issue_comment` (GitHub is asked
    once per APP_CHECK_SECONDS); a refusal reads as not covered, said in the log. A transient failure is raised."""
    github = deps.settings.github
    if not (github.app_id and github.installation_id):
        return False
    covers = deps.state.app_webhook_covers_comments()
    if covers is None:
        try:
            covers = "issue_comment" in forge.app_events()
        except Permanent as exc:
            log.warning("reconciler.app_unknown", reason=exc.message)
            covers = False
        deps.state.note_app_webhook_covers_comments(covers, APP_CHECK_SECONDS)
        if not covers:
            log.warning("reconciler.app_without_comments", reason="the App's webhook does not deliver issue_comment: "
                        "its redelivery cannot repair a lost command, the comment listings go on")  # fmt: skip
    return covers


def is_due(pace: Pace, now: float) -> bool:
    """Due once within half a beat of its time (beat fires every BEAT_SECONDS, a little early or late)."""
    return now >= pace.due - BEAT_SECONDS / 2


def next_pace(pace: Pace, now: float, found: bool) -> Pace:
    """After a pass: one beat when it found something, else twice the last wait (one beat before the first pass), at
    most QUIET_WAIT_MAX."""
    wait = BEAT_SECONDS if found else min(2 * (pace.wait or BEAT_SECONDS), QUIET_WAIT_MAX)
    return replace(pace, wait=int(wait), due=now + wait)


def reconcile_repo(
    deps: Deps, forge: ForgeGateway, repo: str, enqueue: Enqueue, now: float, grace: float, pace: Pace
) -> int:
    """One pass over one repository, unless another pass holds it; its pace kept for the next."""
    token = deps.state.claim_reconcile(repo)
    if token is None:
        return 0
    try:
        passed = _pass(deps, forge, repo, enqueue, now, grace, pace)
        paced = replace(next_pace(pace, now, passed.found), since=passed.since, etag=passed.etag)
        deps.state.keep_reconcile_pace(repo, paced)
        log.info("reconciler.pass", repo=repo, queued=passed.queued, watermark=passed.since,
                 unchanged=passed.unchanged, next_pass_in=paced.wait)  # fmt: skip
        return passed.queued
    finally:
        deps.state.release_reconcile(repo, token)


def _pass(deps: Deps, forge: ForgeGateway, repo: str, enqueue: Enqueue, now: float, grace: float, pace: Pace) -> Passed:
    state = deps.state
    mark = state.comments_watermark(repo)
    if mark is None:
        mark = int(now - LOOK_BACK_SECONDS)
        state.raise_comments_watermark(repo, mark)
    etag = pace.etag if pace.since == iso(mark) else ""  # an ETag belongs to one URL: this watermark's
    queued, page, judged = 0, 1, set[int]()  # judged: a comment listed again on the next page is not queued twice
    found, kept = False, ""
    for _ in range(MAX_PAGES):
        listing = forge.comments_since(repo, iso(mark), page, etag)
        if not listing.changed:  # 304: the very listing judged to the end when GitHub gave this ETag
            return Passed(0, False, iso(mark), etag, unchanged=True)
        batch, etag = listing.items, ""
        settled, more, stopped = _settle(deps, repo, batch, mark, now - grace, enqueue, judged)
        queued += more
        found = found or stopped or more > 0 or settled > mark
        whole = page == 1 and not stopped and len(batch) < PER_PAGE and settled == mark
        kept = listing.etag if whole else ""
        if settled > mark:
            state.raise_comments_watermark(repo, settled)
            mark, page = settled, 1
        else:  # a full page within one second: the same listing's next page
            page += 1
        if stopped or len(batch) < PER_PAGE:
            break
    return Passed(queued, found, iso(mark), kept)


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
