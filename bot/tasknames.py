"""Names of the Celery tasks, shared by the handlers (which enqueue) and the workers (which run).

The web process enqueues by name only, so it never imports `workers` (and its SDKs).
"""
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
