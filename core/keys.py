"""The Redis layout, in one place: every key the web process and the workers read or write, and how
long each lives. `workers.core.state.State` is the workers' only reader/writer; `core/queue.py`,
`core/audit.py` and `bot/dashboard.py` are the web process's.

Redis is a cache and a coordinator, never the only copy of a fact the bot cannot re-derive.
"""

from __future__ import annotations

P = "mlops-bot:"
DAY = 24 * 3600

# --- written by the web process ------------------------------------------------------------------
DELIVERIES = f"{P}deliveries:recent"  # list of recent delivery records (dashboard)
DELIVERIES_LIMIT = 200
DEDUPE_PREFIX = f"{P}delivery:"  # + delivery key: "seen this delivery" (TTL: [bot] dedupe_ttl_seconds)
# + an action's signed-content key (core.routing.Action.key): "seen this body", whatever its delivery id (same TTL)
SIGNED_PREFIX = f"{P}signed:"

# --- written by the workers ----------------------------------------------------------------------
AUDIT = f"{P}audit"  # stream of approval decisions, never rewritten
JOBS = f"{P}jobs"  # set of "<environment>:<job name>" (the dashboard's index of per-branch jobs)
# hash: "<environment>:<job name>" -> when the bot last started a run of that job (epoch s). No expiry: the janitor
# counts `[bot] job_ttl_days` from it, and drops the fields of jobs that are gone
JOB_RUNS = f"{P}jobs:last-run"
RUNS = f"{P}runs:recent"  # zset of run keys by start time
RUNS_LIMIT = 500
APPROVALS = f"{P}approvals"  # zset of approval keys by request time
# zset: member = a task and its arguments as JSON, score = when it is due (epoch s); beat sends what is due
DUE = f"{P}due"

# repositories' own pipelines (core/pipeline.py): the file at a commit never changes, so it is kept by commit;
# the models a repository's default branch released, by name, so registry events and Slack find their repository
RELEASED_MODELS = f"{P}pipeline:released-models"  # hash: model name -> {"repo", "sha", "registries"} JSON
# hash: "<repo>@<merge commit>" -> the commit whose pipeline file decides that release (never rewritten)
RELEASE_PIPELINE_COMMITS = f"{P}pipeline:release-commits"
PIPELINE_TTL = 7 * DAY

JOB_TTL = 7 * DAY
RUN_TTL = 30 * DAY
PR_TTL = 30 * DAY  # the bot's comment and check run ids, the latest run per workflow, /ok-to-test grants
AUDIT_ONCE_TTL = 30 * DAY


def pipeline_file(repo: str, path: str, sha: str) -> str:
    return f"{P}pipeline:{repo}:{sha}:{path}"


def lock(name: str) -> str:
    return f"{P}lock:{name}"


def job(environment: str, name: str) -> str:
    return f"{P}job:{environment}:{name}"


def job_member(environment: str, name: str) -> str:
    return f"{environment}:{name}"


def job_from_member(member: str) -> str:
    """The job key of a member of JOBS."""
    return f"{P}job:{member}"


def run(environment: str, run_id: int | str) -> str:
    return f"{P}run:{environment}:{run_id}"


def pr_runs(repo: str, pr: int) -> str:
    return f"{P}pr-runs:{repo}#{pr}"


def pr_latest(repo: str, pr: int, workflow: str) -> str:
    return f"{P}pr-latest:{repo}#{pr}:{workflow}"


def pr_comments(repo: str, pr: int) -> str:
    """Hash: `<kind>:<key>` -> the id of the bot's comment on the PR (0: posted, its answer not yet read), and
    `listed` once GitHub's listing of the PR's comments was read into it — from then on a key it lacks has no comment
    (TTL PR_TTL, renewed by every write: all of it expires at once, and the next comment lists again)."""
    return f"{P}pr-comments:{repo}#{pr}"


def check_run(repo: str, sha: str, name: str) -> str:
    """The id of the bot's latest check run `name` on commit `sha` (as a GitHub App; TTL PR_TTL)."""
    return f"{P}check-run:{repo}@{sha}:{name}"


def permission(repo: str, user: str) -> str:
    return f"{P}perm:{repo}:{user.lower()}"


def ok_to_test(repo: str, pr: int) -> str:
    return f"{P}ok-to-test:{repo}#{pr}"


def head_pushed(repo: str, pr: int, sha: str) -> str:
    """When GitHub says a fork PR's head commit arrived (its `updated_at` on that delivery)."""
    return f"{P}head-pushed:{repo}#{pr}:{sha}"


def approval(model: str, version: str) -> str:
    return f"{P}approval:{model}:{version}"


def pr_approvals(repo: str, pr: int) -> str:
    return f"{P}pr-approvals:{repo}#{pr}"


# --- the release train (workers/release/train.py): the bot's own records, never expiring ------------------------
def lineage(environment: str, run_id: int | str) -> str:
    """JSON: what the bot knows of a training run it started (repo, commit, PR, people, registry)."""
    return f"{P}lineage:{environment}:{run_id}"


def lineage_claim(registry_name: str, run_id: int | str) -> str:
    """The one version a training run vouches for in a registry (SET NX): a second version is not proven."""
    return f"{P}lineage-claim:{registry_name}:{run_id}"


def release(model: str, repo: str, pr: int) -> str:
    """JSON: one merged PR's ride through the stages (the release comment is rendered from it)."""
    return f"{P}release:{model}:{repo}#{pr}"


def champions(registry_name: str) -> str:
    """List of versions that held the champion alias, oldest first (`/rollback` goes back along it)."""
    return f"{P}champions:{registry_name}"


def prod_origin(registry_name: str, version: str) -> str:
    """`<staging name>@<version>`: the approved version a prod version was copied (or re-trained) from."""
    return f"{P}prod-origin:{registry_name}:{version}"


def live_deployment(repo: str, environment: str) -> str:
    """The id of the GitHub Deployment that last succeeded in `environment` (marked inactive when replaced)."""
    return f"{P}live-deployment:{repo}:{environment}"


def audit_once(once: str) -> str:
    return f"{P}audit-once:{once}"


# --- registry polling (workers/release/polling.py): watermark, done set, alias positions and read marks never expire ---
POLL_GUARD_SECONDS = 55  # beat asks every 60 s: a guard of exactly 60 s would make a slightly early beat skip a minute
POLL_CLAIM_SECONDS = 600  # a version's event is being handled; a worker killed mid-event frees it after this


def polled_baseline(model: str) -> str:
    """Set by the first design (a baseline + a set of seen versions); read once to derive a watermark."""
    return f"{P}polled:{model}:baseline"


def polled_versions(model: str) -> str:
    """Set of versions above the watermark whose event is done (versions at or below it are pruned)."""
    return f"{P}polled:{model}"


def polled_watermark(model: str) -> str:
    """The highest version number N such that every version <= N is settled (its event done, or none due)."""
    return f"{P}polled-watermark:{model}"


def polled_claim(model: str, version: str) -> str:
    return f"{P}polled-claim:{model}:{version}"


def polled_aliases(model: str) -> str:
    """JSON {alias: version} at the last poll."""
    return f"{P}polled-aliases:{model}"


def poll_guard(model: str) -> str:
    """SET NX EX: at most one poll of a model per POLL_GUARD_SECONDS, however many beats and workers."""
    return f"{P}poll-guard:{model}"


def listing_guard(schema: str) -> str:
    """SET NX EX: at most one listing of a Unity Catalog schema (`catalog.schema`) per POLL_GUARD_SECONDS."""
    return f"{P}poll-guard-schema:{schema}"


POLLED_AT = f"{P}polled-at"  # sorted set: model -> when it was last read (ms): the sweep reads the oldest first
POLLED_STAMPS = f"{P}polled-stamps"  # hash: model -> the `updated_at` its schema's listing showed before that read


# --- the comment reconciler (workers/delivery/reconciler.py): PR commands whose delivery never reached the bot ---
RECONCILE_GUARD_SECONDS = 110  # one pass per repository at a time; a worker killed mid-pass frees it after this


def command_handled(repo: str, comment_id: int) -> str:
    """Set when a worker takes a command task of this comment (TTL PR_TTL): the reconciler leaves it alone."""
    return f"{P}command-handled:{repo}:{comment_id}"


def comments_watermark(repo: str) -> str:
    """Epoch seconds (GitHub's `updated_at`): every comment of `repo` updated at or before it is settled."""
    return f"{P}comments-watermark:{repo}"


def app_deliveries_watermark() -> str:
    """Epoch seconds: every attempt of the App webhook delivered before it is judged (workers/delivery/redelivery.py)."""
    return f"{P}app-deliveries-watermark"


def redeliveries(guid: str) -> str:
    """How many redeliveries of delivery `guid` the bot asked for (TTL: as long as GitHub keeps deliveries)."""
    return f"{P}redelivered:{guid}"


def reconcile_guard(repo: str) -> str:
    return f"{P}reconcile-guard:{repo}"


RECONCILE_PACE_TTL = DAY  # far above the longest wait: a repository dropped from the config is forgotten a day later


def reconcile_pace(repo: str) -> str:
    """Hash: the reconciler's pace for `repo` — `wait` (seconds after a pass), `due` (epoch seconds of the next
    pass), `since` and `etag` (the ETag its comment listing since that watermark answered). TTL RECONCILE_PACE_TTL:
    a lost pace means one pass at once, with a full listing."""
    return f"{P}reconcile-pace:{repo}"


def app_webhook_comments() -> str:
    """ "1" when the GitHub App's webhook subscribes to `issue_comment` (App redelivery covers lost commands), else
    "0"; kept for an hour (workers/delivery/reconciler.py asks GitHub again then)."""
    return f"{P}reconcile-app-webhook"


# --- what a task decided before its first write (workers/core/state.py `keep_plan`) ---------------------------
def plan(work: str) -> str:
    """JSON, TTL AUDIT_ONCE_TTL: e.g. a rollback's from/to, so the task run again after a crash repeats it."""
    return f"{P}plan:{work}"
