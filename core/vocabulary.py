"""The words the web process and the workers share, defined once: task names (beat's included),
run states, the job naming convention and its inverse, the gate grammar, the job-parameter
placeholders, and the names of the tags, statuses and check runs the bot writes itself.

Pure constants and pure functions: both processes import this module, and the handlers stay pure.
"""

from __future__ import annotations

import re

BOT = "mlops-bot"

# --- Celery task names: the web process enqueues by name and never imports `workers` ----------
SYNC_BRANCH_JOBS = "sync_branch_jobs"
REMOVE_BRANCH_JOBS = "remove_branch_jobs"
START_RUN = "start_run"
FOLLOW_RUN = "follow_run"
AWAIT_OK_TO_TEST = "await_ok_to_test"
RUN_COMMAND = "run_command"
REFUSE_COMMAND = "refuse_command"
RERUN_CHECK = "rerun_check"
HANDLE_MODEL_EVENT = "handle_model_event"
RUN_SLACK_COMMAND = "run_slack_command"
HANDLE_SLACK_BUTTON = "handle_slack_button"
CLEAN_UP_STALE_JOBS = "clean_up_stale_jobs"
POLL_REGISTRY = "poll_registry"
START_RELEASE = "start_release"
SEND_DUE_TASKS = "send_due_tasks"
RECONCILE_COMMENTS = "reconcile_comments"
REDELIVER_FAILED_DELIVERIES = "redeliver_failed_deliveries"
TASK_NAMES = frozenset(
    {
        SYNC_BRANCH_JOBS,
        REMOVE_BRANCH_JOBS,
        START_RUN,
        FOLLOW_RUN,
        AWAIT_OK_TO_TEST,
        RUN_COMMAND,
        REFUSE_COMMAND,
        RERUN_CHECK,
        HANDLE_MODEL_EVENT,
        RUN_SLACK_COMMAND,
        HANDLE_SLACK_BUTTON,
        CLEAN_UP_STALE_JOBS,
        POLL_REGISTRY,
        START_RELEASE,
        SEND_DUE_TASKS,
        RECONCILE_COMMENTS,
        REDELIVER_FAILED_DELIVERIES,
    }
)
# celery beat: entry name → (task name, seconds between runs)
BEAT_SCHEDULE = {
    "clean-up-stale-jobs": (CLEAN_UP_STALE_JOBS, 3600.0),
    "poll-registry": (POLL_REGISTRY, 60.0),  # a no-op unless [mlflow] poll = true
    "send-due-tasks": (SEND_DUE_TASKS, 2.0),  # follow-ups and retries due now (core/celery_app.py): late by ≤ 2 s
    "reconcile-comments": (
        RECONCILE_COMMENTS,
        120.0,
    ),  # PR commands whose delivery failed (workers/delivery/reconciler.py)
    "redeliver-failed": (
        REDELIVER_FAILED_DELIVERIES,
        120.0,
    ),  # an App webhook's failures (workers/delivery/redelivery.py)
}

# --- Databricks run states (life-cycle states and result states share one record field) -------
ACTIVE = frozenset({"PENDING", "QUEUED", "RUNNING", "BLOCKED", "TERMINATING"})  # may still change
TERMINAL = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})  # life-cycle states of a finished run
FAILED = frozenset({"FAILED", "TIMEDOUT", "INTERNAL_ERROR", "CANCELED"})  # worth a `/retest`
GOOD = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})  # a green status
QUIET_TASK_RESULTS = frozenset({"SUCCESS", "UPSTREAM_FAILED", "EXCLUDED", "SKIPPED"})  # no output shown

# --- names the bot writes on other systems ------------------------------------------------------
MANAGED_TAG = BOT  # Databricks job tag: the job is the bot's to reset and delete
FINGERPRINT_TAG = f"{BOT}-fingerprint"  # Databricks job tag: hash of the settings last written
STATUS_PREFIX = f"{BOT}/"  # commit status context / check run name: mlops-bot/<workflow>
# Registry version tags the bot writes itself: their webhooks echo our own decisions back.
VALIDATION_STATUS, VALIDATION_SUMMARY, VALIDATION_RUN = "validation_status", "validation_summary", "validation_run"
APPROVED_BY, APPROVED_AT, APPROVAL_SOURCE = "approved_by", "approved_at", "approval_source"
REJECTED_BY, REJECTION_REASON = "rejected_by", "rejection_reason"
BOT_TAGS = frozenset(
    {
        VALIDATION_STATUS,
        VALIDATION_SUMMARY,
        VALIDATION_RUN,
        APPROVED_BY,
        APPROVED_AT,
        APPROVAL_SOURCE,
        REJECTED_BY,
        REJECTION_REASON,
    }
)
DEPLOYED_TAG_PREFIX = "deployed_"  # deployed_<environment>_by


def deployed_tag(environment: str) -> str:
    return f"{DEPLOYED_TAG_PREFIX}{environment}_by"


def is_bot_tag(key: str) -> bool:
    return key in BOT_TAGS or key.startswith(DEPLOYED_TAG_PREFIX)


def status_context(workflow: str) -> str:
    return STATUS_PREFIX + workflow


def workflow_of_check(name: str) -> str | None:
    """The workflow of one of the bot's statuses/check runs (`mlops-bot/train` → `train`), else None."""
    return name.removeprefix(STATUS_PREFIX) if name.startswith(STATUS_PREFIX) else None


# --- per-branch job names: <prefix>/<owner>/<repo>/<branch…>/<workflow> --------------------------
def job_name(prefix: str, repo: str, branch: str, workflow: str, environment: str = "") -> str:
    """The branch is kept verbatim (slashes, unicode); workflow names have no slash, so the last
    segment is always the workflow. A workflow run by a release stage in another environment than its
    own gets `@<environment>` (`…/main/train@staging`): environments may share one workspace."""
    return f"{prefix}/{repo}/{branch}/{workflow}" + (f"@{environment}" if environment else "")


def parse_job_name(prefix: str, name: str) -> tuple[str, str, str] | None:
    """(repo, branch, workflow) of a managed job's name, or None for a job that is not ours."""
    if not name.startswith(prefix + "/"):
        return None
    return _split_job_path(name[len(prefix) + 1 :].split("/"))


def parse_any_job_name(name: str, prefix: str | None = None) -> tuple[str, str, str] | None:
    """Like parse_job_name, but when the prefix is unknown or differs, the first segment is taken as it."""
    if prefix and name.startswith(prefix + "/"):
        return parse_job_name(prefix, name)
    return _split_job_path(name.split("/")[1:])


def _split_job_path(parts: list[str]) -> tuple[str, str, str] | None:
    if len(parts) < 4:
        return None
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:-1]), parts[-1].split("@", 1)[0]


# --- promotion gates: `accuracy >= champion - 0.01`, `roc_auc >= 0.6` -----------------------------
GATE = re.compile(
    r"^\s*(?P<metric>\w+)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?:(?P<champ>champion)\s*(?:(?P<sign>[-+])\s*(?P<delta>\d+(?:\.\d*)?|\.\d+))?|(?P<number>\d+(?:\.\d*)?|\.\d+))\s*$"
)
GATE_HELP = "write `metric >= 0.8` or `metric >= champion - 0.01`"

# --- job-parameter placeholders in task parameters: `--dataset={dataset}` -------------------------
PLACEHOLDERS = (
    "branch",
    "sha",
    "dataset",
    "pr",
    "repo",
    "workflow",
    "model",
    "version",
    "environment",
    "params",
    "suite",
    "requested_by",
    "champion",
)
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
