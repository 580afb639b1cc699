"""Failed deliveries of the GitHub App's webhook → one redelivery each, asked of GitHub.

GitHub does not redeliver a failed delivery on its own. Its docs, "Handling failed webhook deliveries"
(https://docs.github.com/en/webhooks/using-webhooks/handling-failed-webhook-deliveries), ask for a script run on a
schedule that fetches the deliveries attempted since it last ran, finds the failed ones, and asks for their
redelivery through the REST API for GitHub App webhooks. This is that script, every 2 minutes (beat):
- only for a bot authenticated as a GitHub App (`[github] app_id`, `installation_id`): those endpoints take the
  App's JWT ("You must use a JWT to access this endpoint"); with a token it does nothing;
- list the App webhook's deliveries newest first (`GET /app/hook/deliveries`, 100 a page, `cursor` from the
  `rel="next"` link) down to a watermark kept in Redis: epoch seconds, every attempt delivered before it is judged;
  the first pass looks back LOOK_BACK_SECONDS;
- group the attempts by guid (a redelivery keeps its guid): a guid with a 2xx attempt is done, whichever attempt
  that was; any other guid with an attempt delivered since the watermark gets one redelivery of its newest attempt
  (`POST /app/hook/deliveries/{id}/attempts`), at most `[github] redeliver_per_pass` a pass;
- attempts younger than GRACE_SECONDS wait for the next pass (a redelivery asked for is attempted a moment later, and
  its answer decides); the watermark rises past what was judged, and stops at the first guid the cap left out;
- only a failure another attempt can mend is redelivered: no answer (status 0), 408, 429 or 5xx. A 4xx is the
  receiver's decision (a wrong signature, a body too large): it would be the same decision again. A guid gets at most
  MAX_REDELIVERIES (a count in Redis kept as long as GitHub keeps deliveries, 3 days): a receiver that fails the same
  delivery every time is reported in the log, not asked again every 2 minutes forever.

The receiver dedupes on the guid (`X-GitHub-Delivery`), so a redelivery of a delivery that did get through after all
queues nothing twice; the comment reconciler (workers/delivery/reconciler.py) covers PR commands for a bot with a token.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from core.logs import get_logger
from workers.core.context import Deps
from workers.delivery.reconciler import epoch, iso
from workers.gateways import ForgeGateway

log = get_logger("workers.delivery.redelivery")

GRACE_SECONDS = 30.0  # GitHub waits 10 s for an answer: an attempt older than this has its status
LOOK_BACK_SECONDS = 3600  # the first pass: a failure of the last hour is worth redelivering, older ones are history
MAX_PAGES = 10  # a pass reads at most 1,000 attempts (newest first); older ones are left behind, said in the log
GUARD = "app-webhook"  # one pass at a time, under the comment reconciler's guard (no repository is named so)
MAX_REDELIVERIES = 3
KEPT_SECONDS = 3 * 86400  # GitHub lists the deliveries of the past 3 days


def redeliver_failed(deps: Deps, now: float | None = None, grace: float = GRACE_SECONDS) -> int:
    """One pass; returns how many redeliveries it asked for."""
    github = deps.settings.github
    if not (github.app_id and github.installation_id):
        log.debug("redelivery.skipped", reason="the bot uses a token: only a GitHub App can list its deliveries")
        return 0
    if deps.forge is None:
        log.info("redelivery.skipped", reason=deps.forge_problem or "GitHub is not configured")
        return 0
    token = deps.state.claim_reconcile(GUARD)
    if token is None:
        return 0
    try:
        return _pass(deps, deps.forge, time.time() if now is None else now, grace)
    finally:
        deps.state.release_reconcile(GUARD, token)


def _pass(deps: Deps, forge: ForgeGateway, now: float, grace: float) -> int:
    kept = deps.state.app_deliveries_watermark()
    mark = kept if kept is not None else int(now - LOOK_BACK_SECONDS)
    attempts = list(listed_since(forge, mark))
    chosen, new_mark = choose(attempts, mark, now - grace, deps.settings.github.redeliver_per_pass)
    asked = [attempt for attempt in chosen if _count_one_more(deps, attempt)]
    for attempt in asked:
        forge.redeliver(attempt["id"])
        log.info("redelivery.asked", delivery_id=attempt["guid"], attempt=attempt["id"], event=attempt.get("event"))
    deps.state.raise_app_deliveries_watermark(new_mark)
    log.info("redelivery.pass", listed=len(attempts), redelivered=len(asked), watermark=iso(new_mark))
    return len(asked)


def _count_one_more(deps: Deps, attempt: dict) -> bool:
    """Count a redelivery of this guid; False (and a warning) once it has had MAX_REDELIVERIES."""
    if deps.state.count_redelivery(attempt["guid"], KEPT_SECONDS) > MAX_REDELIVERIES:
        log.warning("redelivery.gave_up", delivery_id=attempt["guid"], status_code=attempt.get("status_code"),
                    event=attempt.get("event"), reason=f"failed after {MAX_REDELIVERIES} redeliveries")  # fmt: skip
        return False
    return True


def listed_since(forge: ForgeGateway, mark: int) -> Iterator[dict]:
    """The App webhook's attempts, newest first, down to the first one delivered before `mark` (that one included:
    its guid may have succeeded then)."""
    cursor = ""
    for _ in range(MAX_PAGES):
        page, cursor = forge.app_deliveries(cursor)
        for attempt in page:
            yield attempt
            if epoch(str(attempt.get("delivered_at") or "")) < mark:
                return
        if not cursor:
            return
    log.warning("redelivery.truncated", reason=f"more than {MAX_PAGES} pages since the watermark", watermark=iso(mark))


def succeeded(attempt: dict) -> bool:
    return 200 <= int(attempt.get("status_code") or 0) < 300


def worth_again(attempt: dict) -> bool:
    """A failure another attempt can mend: no answer at all, a timeout, a rate limit or a server error."""
    code = int(attempt.get("status_code") or 0)
    return code in (0, 408, 429) or code >= 500


def choose(attempts: list[dict], mark: int, settled_before: float, cap: int) -> tuple[list[dict], int]:
    """Pure: the attempts to redeliver (the newest attempt of each guid with no 2xx attempt, when it failed in a way
    another attempt can mend, delivered between `mark` and `settled_before`, oldest first, at most `cap`) and the new
    watermark: one second past the last attempt judged, or the second of the first guid the cap left out (judged
    again next pass)."""
    done = {a["guid"] for a in attempts if succeeded(a)}
    newest: dict[str, dict] = {}
    judged = [mark - 1]
    for attempt in attempts:  # newest first: the first attempt of a guid is its newest
        when = epoch(str(attempt.get("delivered_at") or ""))
        if when < mark or when > settled_before:
            continue
        judged.append(when)
        if attempt["guid"] not in done:
            newest.setdefault(attempt["guid"], attempt)
    newest = {guid: a for guid, a in newest.items() if worth_again(a)}
    failed = sorted(newest.values(), key=lambda a: (epoch(str(a.get("delivered_at"))), a["id"]))
    if len(failed) > cap:
        return failed[:cap], epoch(str(failed[cap].get("delivered_at")))
    return failed, max(judged) + 1
